"""Histograms, Embeddings, Graphs and Parity of a finished real pair: each draws real charts, both sides."""
from __future__ import annotations

from playwright.sync_api import expect

from tests.browser import harness
from tests.browser.conftest import UI_TIMEOUT_MS, assert_no_error_boxes, choose_pair

# True once, for every title prefix, a plotly chart whose title starts with it holds a trace of at least
# `min_points` points as plotly.js drew it (`_fullData[i]._length`): a drawn chart, not an empty frame.
CHARTS_JS = """([prefixes, minPoints]) => {
  const figs = PLOTS.map(el => ({
    title: String((el.layout && el.layout.title && (el.layout.title.text || el.layout.title)) || '')
             .replace(/<[^>]*>/g, ''),
    points: Math.max(0, ...(el._fullData || []).map(t => t._length || 0)),
  }));
  return prefixes.every(p => figs.some(f => f.title.startsWith(p) && f.points >= minPoints));
}""".replace("PLOTS", harness.PLOTS_JS)


def _charts_drawn(page, prefixes: list[str], min_points: int = 1) -> list[dict]:
    page.wait_for_function(CHARTS_JS, arg=[prefixes, min_points], timeout=UI_TIMEOUT_MS)
    return harness.plotly_figures(page)


def test_histograms_draws_both_sides(page, server, finished_run):
    harness.open_page(page, server, "Histograms")
    choose_pair(page, "hist", finished_run)
    figs = _charts_drawn(page, ["PyTorch · weights/", "TensorFlow · weights/"], min_points=2)
    assert_no_error_boxes(page, "Histograms page")
    assert len(figs) >= 4, figs  # kernel and bias of the first layer, weights and grads, both sides


def test_embeddings_projects_the_same_samples_on_both_sides(page, server, finished_run):
    harness.open_page(page, server, "Embeddings")
    choose_pair(page, "emb", finished_run)
    figs = _charts_drawn(page, ["PyTorch · PCA", "TensorFlow · PCA"], min_points=10)
    assert_no_error_boxes(page, "Embeddings page")
    points = {f["title"].split(" · ")[0]: max(t["n"] for t in f["traces"]) for f in figs
              if f["title"] and " · PCA" in f["title"]}
    assert points["PyTorch"] == points["TensorFlow"], figs  # the same validation samples on each side
    expect(page.get_by_text("How alike are the two embeddings?")).to_be_visible()


def test_graphs_draws_both_models(page, server, finished_run):
    harness.open_page(page, server, "Graphs")
    choose_pair(page, "graphs", finished_run)
    page.wait_for_function("""() => [...document.querySelectorAll('[data-testid="stPlotlyChart"] .js-plotly-plot')]
        .filter(el => (el._fullData || []).some(t => t.name === 'nodes' && (t._length || 0) > 0)).length >= 2""",
                           timeout=UI_TIMEOUT_MS)
    nodes = [t["n"] for fig in harness.plotly_figures(page) for t in fig["traces"] if t["name"] == "nodes"]
    assert len(nodes) == 2 and all(n >= 3 for n in nodes), nodes  # input, layers, output at least, each side
    assert_no_error_boxes(page, "Graphs page")


def test_parity_charts_the_pair(page, server, finished_run):
    harness.open_page(page, server, "Parity")
    choose_pair(page, "parity", finished_run)
    harness.wait_idle(page)
    drawn = f"() => {harness.PLOTS_JS}.some(el => (el._fullData || []).some(t => (t._length || 0) > 1))"
    page.wait_for_function(drawn, timeout=UI_TIMEOUT_MS)
    assert_no_error_boxes(page, "Parity page")
