"""Histograms: weights and gradients per layer, PyTorch beside TensorFlow, in TensorBoard's offset,
overlay and distribution views, and (what TensorBoard cannot, its issue 6206) both frameworks'
histograms of one tensor on one axis."""
from __future__ import annotations

import re

import streamlit as st

from pages.common import live_view, tag_filter
from pages.pair_picker import pick_pair
from twinboard import histograms, runs, scalars
from twinboard.histograms import HistogramSeries, HistogramStore, common_edges, distribution, layer_of, nearest_index
from twinboard.text import code, md

MODES = {"offset": "Offset", "overlay": "Overlay", "distributions": "Distributions",
         "compare": "Both on one axis"}
REFRESH_S = 2.0  # seconds between live refreshes while a side of the pair is still training


@st.cache_resource(show_spinner=False)
def _store(root: str) -> HistogramStore:
    """One store per logdir for every session: a refresh reads only bytes appended since the last."""
    return HistogramStore(root)


def _natural(text: str) -> list:
    return [int(p) if p.isdigit() else p for p in re.split(r"(\d+)", text)]


def _tag_order(tag: str) -> tuple:
    """weights before grads, kernel before bias: the order a reader scans a layer in."""
    parts = tag.split("/")
    return (parts[0] != "weights", parts[0] != "grads", parts[-1] != "kernel", _natural(tag))


def _figure(mode: str, series: HistogramSeries, edges, color: str, title: str):
    if mode == "offset":
        return histograms.offset_figure(series, edges, color, title)
    if mode == "overlay":
        return histograms.overlay_figure(series, edges, color, title)
    return histograms.distribution_figure(distribution(series), color, title)


def view(pair: runs.Pair, root) -> None:
    """Everything that changes as trainers write: re-run alone by live_view's fragment timer while
    the pair trains."""
    store = _store(str(root))
    # A matched pair's sides are its frameworks, any other two runs are their names (two TensorFlow
    # runs are not both 'TensorFlow'): the Scalars page's titles. Text: through md/code in markdown.
    sides = [(run, scalars.side_title(pair, run)) for run in pair.runs]
    colors = scalars.side_colors(pair.left.framework, pair.right.framework)
    names = [pair.left.name, pair.right.name]
    try:
        store.refresh(names)
    except runs.OutsideLogdirError as err:
        st.error(md(err, 1000))
        return
    for problem in store.problems(names):
        st.warning(f"{code(problem.path)} {md(problem.message, 1000)}", icon=":material/warning:")
    tags = sorted(set(store.tags(names[0])) | set(store.tags(names[1])))
    if not tags:
        st.info(f"No histograms in {code(names[0])} or {code(names[1])} yet. Trainers write them every "
                "`histogram_every` steps.")
        return

    top = st.columns([4, 3, 2, 2], vertical_alignment="bottom")
    mode = top[0].radio("View", list(MODES), format_func=MODES.get, horizontal=True, key="hist_mode")
    shown, pattern = tag_filter(tags, "hist_filter", top[1], "Filter tags (regular expression)",
                                "kernel$ or ^grads", error_at=st)
    if not shown:
        st.info(f"No histogram tag matches {code(pattern)}; there are {len(tags)}.")
        return
    layers: dict[str, list[str]] = {}
    for tag in shown:
        layers.setdefault(layer_of(tag), []).append(tag)
    layer = top[2].selectbox("Layer", sorted(layers, key=_natural), key="hist_layer")
    buckets = top[3].slider("Buckets", 10, 100, 30, step=5, key="hist_buckets",
                            help="Equal-width buckets every histogram is re-binned onto (counts kept)")
    layer_tags = sorted(layers[layer], key=_tag_order)
    series = {tag: [store.get(run.name, tag) for run, _ in sides] for tag in layer_tags}

    if mode == "compare":
        _compare(series, sides, colors, buckets)
        return
    st.caption(f"Left: {md(sides[0][1])} {code(names[0])} · right: {md(sides[1][1])} {code(names[1])}; "
               + ("later steps lower and in front." if mode == "offset" else
                  "colour goes from light (early) to full (late)." if mode == "overlay" else
                  "bands: min–max, 7–93 %, 16–84 %, 31–69 % of values; line: median."))
    for tag, pair_series in series.items():
        st.markdown(f"**{md(tag)}**")
        # One x range and bucket grid for both sides, so the two panels compare bucket by bucket.
        edges = common_edges([e for s in pair_series for e in s.edges], buckets)
        for col, (run, label), color, s in zip(st.columns(2), sides, colors, pair_series):
            if len(s) == 0:
                col.info(f"{md(label)}: {code(tag)} is not logged in {code(run.name)}.")
                continue
            fig = _figure(mode, s, edges, color, f"{label} · {tag}")  # plain text: the figure escapes it
            col.plotly_chart(fig, key=f"hist_{mode}_{tag}_{run.name}", width="stretch")


def _compare(series: dict[str, list[HistogramSeries]], sides, colors, buckets: int) -> None:
    """Both sides of each tensor at one chosen step, re-binned onto common buckets."""
    steps = sorted({int(x) for pair_series in series.values() for s in pair_series for x in s.steps})
    if not steps:
        st.info("No histograms logged for this layer yet.")
        return
    step = (st.select_slider("Step", options=steps, value=steps[-1], key="hist_step")
            if len(steps) > 1 else steps[0])
    for tag, pair_series in series.items():
        st.markdown(f"**{md(tag)}**")
        shown, notes = [], []
        for (run, label), color, s in zip(sides, colors, pair_series):
            i = nearest_index(s.steps, step)  # a repeated step: the record written last
            if i is None:
                notes.append(f"{md(label)} did not log {code(tag)}")
                continue
            near = int(s.steps[i])
            shown.append((label, color, near, s.edges[i], s.counts[i]))
            notes.append(f"{md(label)} shows step {near}" + ("" if near == step else " (nearest logged)"))
        fig = histograms.compare_figure(shown, buckets, tag)
        st.plotly_chart(fig, key=f"hist_compare_{tag}", width="stretch")
        st.caption(f"Step {step}: " + "; ".join(notes) + ".")


def main() -> None:
    st.title("Histograms")
    pair = pick_pair("hist")
    if pair is None:
        return
    live_view(view, pair, "hist_live", "histograms", REFRESH_S)


main()
