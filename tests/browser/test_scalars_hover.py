"""Scalars in a real browser, on event files from the real writers (tests/test_scalars_compare.py):
the hover names both sides and their difference, the difference strip, panels titled by run, a drag
that zooms, and a layout where no text runs into other text.

Screenshots of each view are kept in SHOTS for a person to look at (the tests check the overlaps).
"""
from __future__ import annotations

import re
import tempfile
from pathlib import Path

import numpy as np
import pytest
from playwright.sync_api import expect

from tests.browser import harness
from tests.browser.conftest import UI_TIMEOUT_MS, assert_no_error_boxes, choose_pair
from tests.test_scalars_compare import PAIR_A, PAIR_B, TF_STEPS, TORCH_STEPS, tf_value, torch_value, write_pairs
from twinboard.scalars import ema

SHOTS = Path(tempfile.gettempdir()) / "twinboard-scalars-compare"
SMOOTHING = 0.6  # the page's default

FIND = "const el = PLOTS.find(e => String(e.layout.title.text || '').replace(/<[^>]*>/g, '') === title);"
POINT_JS = """([title, axis, step]) => {
  FIND
  const fl = el._fullLayout, xa = fl[axis], ya = fl[axis.replace('x', 'y')], box = el.getBoundingClientRect();
  return {x: box.left + xa._offset + xa.l2p(step), y: box.top + ya._offset + ya._length / 2};
}""".replace("FIND", FIND).replace("PLOTS", harness.PLOTS_JS)
HOVER_JS = """(title) => { FIND const h = el.querySelector('.hoverlayer'); return h ? h.textContent : ''; }""" \
    .replace("FIND", FIND).replace("PLOTS", harness.PLOTS_JS)
# Boxes of every piece of text plotly placed outside the plot areas: title and its note, panel titles
# and other annotations, legend, axis titles and each axis' tick labels; pairs that overlap.
OVERLAPS_JS = """(title) => {
  FIND
  const parts = [];
  const add = (name, node) => { if (node) { const r = node.getBoundingClientRect();
    if (r.width > 0 && r.height > 0) parts.push({name, r}); } };
  add('title', el.querySelector('.gtitle'));
  add('note', el.querySelector('.gtitle-subtitle'));
  el.querySelectorAll('.annotation').forEach((n, i) => add('annotation ' + n.textContent, n));
  add('legend', el.querySelector('.legend'));
  el.querySelectorAll('.g-xtitle, .g-x2title, .g-x3title, .g-x4title')
    .forEach(n => add('axis title ' + n.textContent, n));
  el.querySelectorAll('.xaxislayer-above, .x2axislayer-above, .x3axislayer-above, .x4axislayer-above')
    .forEach((n, i) => add('x tick labels ' + i, n));
  const hit = (a, b) => a.left < b.right - 1 && b.left < a.right - 1 && a.top < b.bottom - 1 && b.top < a.bottom - 1;
  const out = [];
  for (let i = 0; i < parts.length; i++) for (let j = i + 1; j < parts.length; j++)
    if (hit(parts[i].r, parts[j].r)) out.push(parts[i].name + ' / ' + parts[j].name);
  return {names: parts.map(p => p.name), overlaps: out};
}""".replace("FIND", FIND).replace("PLOTS", harness.PLOTS_JS)
NUMBER = r"([+-−]?\d[\d,]*\.?\d*(?:e[+-]?\d+)?)"


@pytest.fixture(scope="module")
def pairs(logdir) -> Path:
    """The two pairs (and the long one) written into the served logdir, before the page lists runs."""
    return write_pairs(logdir)


def smoothed(values) -> np.ndarray:
    return ema(np.asarray(values, dtype=np.float32).astype(np.float64), SMOOTHING)


TORCH = smoothed([torch_value(s) for s in range(TORCH_STEPS)])
TF = smoothed([tf_value(s) for s in range(TF_STEPS)])


def number(text: str) -> float:
    return float(text.replace(",", "").replace("−", "-"))


def hover(page, title: str, axis: str, step: int) -> str:
    """Move the mouse over `step` on `axis` of the chart titled `title`; the hover box's text."""
    at = page.evaluate(POINT_JS, [title, axis, step])
    page.mouse.move(at["x"], at["y"])
    page.wait_for_function(f"(title) => {{ {FIND} const h = el.querySelector('.hoverlayer');"
                           " return h && h.textContent.includes('Δ'); }".replace("PLOTS", harness.PLOTS_JS),
                           arg=title, timeout=10_000)
    return page.evaluate(HOVER_JS, title)


def shot(page, name: str) -> Path:
    SHOTS.mkdir(parents=True, exist_ok=True)
    path = SHOTS / f"{name}.png"
    page.screenshot(path=str(path))
    return path


def no_overlaps(page, title: str, where: str) -> list[str]:
    found = page.evaluate(OVERLAPS_JS, title)
    assert not found["overlaps"], f"{where}: text runs into text: {found['overlaps']} (parts {found['names']})"
    return found["names"]


def open_pair(page, server, label: str) -> None:
    harness.open_page(page, server, "Scalars")
    choose_pair(page, "scalars", label)
    page.wait_for_function(f"() => {harness.PLOTS_JS}.some(el => (el._fullData || []).some(t => t._length > 100))",
                           timeout=UI_TIMEOUT_MS)
    harness.wait_idle(page, UI_TIMEOUT_MS)


def drag(page, title: str, first: int, last: int, done) -> None:
    """Drag across chart `title` from step `first` to `last` until `done` (a locator) shows the zoom.

    A drag that lands while Streamlit swaps a chart for its rerun's copy is lost in plotly (the page
    logs "reading '_hoverlayer'"), as a person's would be; the person drags again, and so does this."""
    for attempt in range(3):
        harness.wait_idle(page, UI_TIMEOUT_MS)
        start = page.evaluate(POINT_JS, [title, "xaxis", first])
        end = page.evaluate(POINT_JS, [title, "xaxis", last])
        page.mouse.move(start["x"], start["y"])
        page.mouse.down()
        page.mouse.move(end["x"], end["y"], steps=8)
        page.mouse.up()
        try:
            expect(done).not_to_have_count(0, timeout=UI_TIMEOUT_MS // 6 if attempt < 2 else UI_TIMEOUT_MS)
            return
        except AssertionError:
            if attempt == 2:
                raise


def click(page, key: str) -> None:
    """Flip a sidebar toggle or checkbox and wait for the page run it starts."""
    page.locator(f".st-key-{key} label").first.click()
    page.wait_for_timeout(300)
    harness.wait_idle(page, UI_TIMEOUT_MS)


def test_hover_shows_both_sides_and_their_difference(page, server, pairs):
    open_pair(page, server, PAIR_A)
    step = 120
    left = hover(page, "loss/train", "xaxis", step)
    pattern = (rf"PyTorch: {NUMBER}.*TensorFlow: {NUMBER} at step {step}.*Δ PyTorch − TensorFlow: {NUMBER}")
    got = [number(g) for g in re.search(pattern, left).groups()]
    np.testing.assert_allclose(got, [TORCH[step], TF[step], TORCH[step] - TF[step]], rtol=1e-3)
    shot(page, "side-by-side-hover")
    right = hover(page, "loss/train", "xaxis2", 100)  # the TensorFlow panel names PyTorch's value too
    got = re.search(rf"TensorFlow: {NUMBER}.*PyTorch: {NUMBER} at step 100.*Δ PyTorch − TensorFlow: {NUMBER}",
                    right).groups()
    np.testing.assert_allclose([number(g) for g in got], [TF[100], TORCH[100], TORCH[100] - TF[100]], rtol=1e-3)
    no_overlaps(page, "loss/train", "side by side")

    click(page, "scalars_overlay")
    page.wait_for_function(f"() => {harness.PLOTS_JS}.every(el => !el._fullLayout.xaxis2)", timeout=UI_TIMEOUT_MS)
    both = hover(page, "loss/train", "xaxis", step)
    got = re.search(rf"PyTorch : {NUMBER}.*TensorFlow : {NUMBER}.*Δ PyTorch − TensorFlow: {NUMBER}", both).groups()
    np.testing.assert_allclose([number(g) for g in got], [TORCH[step], TF[step], TORCH[step] - TF[step]], rtol=1e-3)
    page.mouse.move(5, 5)
    shot(page, "overlay")
    assert "legend" in no_overlaps(page, "loss/train", "overlay")
    assert_no_error_boxes(page, "Scalars page, overlay")


def test_difference_strip_and_the_wall_clock_axis_keep_clear_of_each_other(page, server, pairs):
    from tests.test_scalars_compare import LONG

    open_pair(page, server, LONG)  # sampled: the chart carries its 'sampled: n of N points' note
    expect(page.get_by_text(re.compile("sampled: .* of 3,000 points"))).not_to_have_count(0)
    names = no_overlaps(page, "loss/train", "long pair, side by side")
    assert "note" in names and "annotation PyTorch" in names
    click(page, "scalars_difference")
    page.wait_for_function(f"() => {harness.PLOTS_JS}.some(el => el._fullLayout.yaxis3)", timeout=UI_TIMEOUT_MS)
    shot(page, "difference-strip")
    no_overlaps(page, "loss/train", "difference strip")
    page.locator(".st-key-scalars_x_axis label", has_text="Wall").click()
    page.wait_for_function(f"() => {harness.PLOTS_JS}.some(el => el._fullLayout.xaxis3.type === 'date')",
                           timeout=UI_TIMEOUT_MS)
    harness.wait_idle(page, UI_TIMEOUT_MS)
    click(page, "scalars_overlay")
    page.wait_for_function(f"() => {harness.PLOTS_JS}.every(el => !el._fullLayout.xaxis2)", timeout=UI_TIMEOUT_MS)
    shot(page, "wall-clock-overlay-strip")
    names = no_overlaps(page, "loss/train", "wall clock, overlay, strip")
    assert {"legend", "axis title wall time (UTC)", "note"} <= set(names), names
    assert_no_error_boxes(page, "Scalars page, difference strip")


def test_any_two_runs_are_titled_by_run(page, server, pairs):
    harness.open_page(page, server, "Scalars")
    choose_pair(page, "scalars", "Any two runs…")
    for key, run in (("scalars_left", f"{PAIR_A}/tensorflow"), ("scalars_right", f"{PAIR_B}/tensorflow")):
        combo = page.locator(f".st-key-{key} input[role='combobox']")
        harness.choose_option(page, combo, run, timeout=UI_TIMEOUT_MS)
        expect(combo).to_have_value(run)
    titles = page.locator(".js-plotly-plot .annotation")
    expect(titles.filter(has_text=f"{PAIR_A}/tensorflow").first).to_be_visible(timeout=UI_TIMEOUT_MS)
    expect(titles.filter(has_text=f"{PAIR_B}/tensorflow").first).to_be_visible()
    assert not titles.filter(has_text=re.compile(r"^TensorFlow$")).count()
    text = hover(page, "loss/train", "xaxis", 60)
    assert f"{PAIR_A}/tensorflow:" in text and f"{PAIR_B}/tensorflow:" in text, text
    page.mouse.move(5, 5)
    shot(page, "any-two-runs")
    no_overlaps(page, "loss/train", "any two runs")
    assert_no_error_boxes(page, "Scalars page, any two runs")


def test_dragging_across_a_chart_zooms_every_chart(page, server, pairs):
    open_pair(page, server, PAIR_A)
    thumbs = page.locator(".st-key-scalars_steps [data-testid='stSliderThumbValue']")
    drag(page, "loss/train", 60, 100, thumbs)
    expect(thumbs).to_have_count(2, timeout=UI_TIMEOUT_MS)  # the zoom is on, and its slider shows the drag
    lo, hi = (int(t.replace(",", "")) for t in thumbs.all_inner_texts())
    assert 55 <= lo <= 65 and 95 <= hi <= 105, (lo, hi)
    full = f"""([lo, hi]) => {harness.PLOTS_JS}.length === 2 && {harness.PLOTS_JS}.every(el =>
        (el._fullData || []).every(t => t._length === 0 || (Math.min(...t.x) >= lo && Math.max(...t.x) <= hi)))"""
    page.wait_for_function(full, arg=[lo, hi], timeout=UI_TIMEOUT_MS)  # every chart re-read at that range
    shot(page, "dragged-zoom")
    # Zoomed out again, a drag past TensorFlow's last step: its panel says there is nothing there.
    click(page, "scalars_zoom")
    page.wait_for_function(f"() => {harness.PLOTS_JS}.some(el => el._fullData.some(t => t._length === {TORCH_STEPS}))",
                           timeout=UI_TIMEOUT_MS)
    empty = page.locator(".js-plotly-plot .annotation", has_text=re.compile(r"no points between step 1\d\d and 1\d\d"))
    drag(page, "loss/train", TF_STEPS + 10, TF_STEPS + 40, empty)
    expect(empty.first).to_be_visible(timeout=UI_TIMEOUT_MS)
    expect(empty).to_have_count(2, timeout=UI_TIMEOUT_MS)  # loss/train and loss/val: TensorFlow's panels
    shot(page, "dragged-past-tensorflow")
    assert_no_error_boxes(page, "Scalars page after a drag")
