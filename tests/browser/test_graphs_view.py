"""The Graphs page in Chromium on a finished real pair: both graphs drawn at a readable size (labels of
at least 10 px as rendered, not shrunk to the column), labels apart, and a click on a scope's box
opens it. Screenshots of before and after the click are kept in SHOTS for a person to look at."""
from __future__ import annotations

import tempfile
from pathlib import Path

from playwright.sync_api import expect

from tests.browser import harness
from tests.browser.conftest import UI_TIMEOUT_MS, assert_no_error_boxes, choose_pair

SHOTS = Path(tempfile.gettempdir()) / "twinboard-graphs-view"
MIN_FONT_PX = 10

# Per graph chart shown (the ones whose figure has a trace named "nodes"): the node names drawn, and
# for each node label as rendered: its text, its font size in screen pixels (CSS size times the SVG's
# screen scale, so an SVG shrunk to fit would show here), its box, and whether it lies in the plot area.
GRAPHS_JS = """() => PLOTS.filter(el => (el.data || []).some(t => t.name === 'nodes')).map(el => {
  const i = el.data.findIndex(t => t.name === 'nodes');
  const full = (el._fullData || []).find(t => t.index === i) || {};
  const layer = el.querySelectorAll('g.scatterlayer g.trace')[i];
  const plot = el.querySelector('g.draglayer .nsewdrag, rect.nsewdrag').getBoundingClientRect();
  const labels = [...(layer ? layer.querySelectorAll('g.textpoint text') : [])].map(t => {
    const r = t.getBoundingClientRect();
    const sizes = [t, ...t.querySelectorAll('tspan')].map(e => parseFloat(getComputedStyle(e).fontSize)
                                                            * Math.abs(e.getScreenCTM().a));
    return {text: t.textContent, px: Math.min(...sizes), line_px: r.height / Math.max(1, t.querySelectorAll('tspan.line').length),
            box: [r.left, r.top, r.right, r.bottom], x: (r.left + r.right) / 2, y: (r.top + r.bottom) / 2,
            inside: r.left >= plot.left - 1 && r.right <= plot.right + 1 && r.top >= plot.top - 1 && r.bottom <= plot.bottom + 1};
  });
  return {names: Array.from(full.customdata || el.data[i].customdata || []), labels: labels};
})""".replace("PLOTS", harness.PLOTS_JS)


def _graphs(page) -> list[dict]:
    return page.evaluate(GRAPHS_JS)


def _overlapping(labels: list[dict]) -> list[tuple[str, str]]:
    out = []
    for i, a in enumerate(labels):
        for b in labels[i + 1:]:
            (l1, t1, r1, b1), (l2, t2, r2, b2) = a["box"], b["box"]
            if l1 < r2 - 1 and l2 < r1 - 1 and t1 < b2 - 1 and t2 < b1 - 1:
                out.append((a["text"], b["text"]))
    return out


def test_graphs_are_readable_and_a_click_opens_a_scope(page, server, finished_run):
    SHOTS.mkdir(exist_ok=True)
    harness.open_page(page, server, "Graphs")
    choose_pair(page, "graphs", finished_run)
    page.wait_for_function(f"() => ({GRAPHS_JS})().filter(g => g.labels.length >= 3).length === 2",
                           timeout=UI_TIMEOUT_MS)
    assert_no_error_boxes(page, "Graphs page")
    charts = page.locator("[data-testid='stPlotlyChart']")
    charts.first.scroll_into_view_if_needed()
    page.screenshot(path=str(SHOTS / "before.png"), full_page=True)

    before = _graphs(page)
    for side, graph in zip(("PyTorch", "TensorFlow"), before):
        shown = [label for label in graph["labels"] if label["inside"]]
        assert len(shown) >= 3, f"{side}: only {len(shown)} node labels in view: {graph['labels']}"
        small = [(label["text"], round(label["px"], 1)) for label in shown if label["px"] < MIN_FONT_PX]
        assert not small, f"{side}: labels under {MIN_FONT_PX} px as rendered: {small}"
        assert all(label["line_px"] >= MIN_FONT_PX for label in shown), shown  # drawn that tall, too
        assert not _overlapping(shown), f"{side}: labels drawn over each other: {_overlapping(shown)}"

    left = before[0]
    scope = next((n for n in left["names"] if n.endswith("Linear[dense0]")), None)
    assert scope, f"no dense0 scope on the PyTorch side: {left['names']}"
    label = next(lb for lb in left["labels"] if lb["text"].startswith("+ Linear[dense0]"))
    assert label["inside"], label
    expand_box = page.locator("[class*='st-key-graphs_expand_0_'] [data-testid='stMultiSelect']")
    expect(expand_box).not_to_contain_text(scope)
    page.mouse.move(label["x"], label["y"])  # plotly clicks the point under the pointer's hover
    page.mouse.click(label["x"], label["y"])
    opened = f"""() => {{
      const g = ({GRAPHS_JS})()[0];
      return !!g && !g.names.includes({scope!r}) && g.names.some(n => n.startsWith({scope + '/'!r}))
             && g.labels.length > {len(left['labels'])};
    }}"""
    page.wait_for_function(opened, timeout=UI_TIMEOUT_MS)
    harness.wait_idle(page)
    # the scope is now listed in that side's "Expand scopes" (its key ends with the graph picked)
    expect(expand_box).to_contain_text(scope)
    after = _graphs(page)
    assert len(after[0]["names"]) > len(left["names"])
    assert after[1]["names"] == before[1]["names"]  # the other side is left as it was
    inside = [lb for lb in after[0]["labels"] if lb["inside"]]
    assert any(scope + "/" in n for n in after[0]["names"]) and not _overlapping(inside)
    assert all(lb["px"] >= MIN_FONT_PX for lb in inside)
    assert_no_error_boxes(page, "Graphs page after opening a scope")
    charts.first.scroll_into_view_if_needed()
    page.screenshot(path=str(SHOTS / "after.png"), full_page=True)
