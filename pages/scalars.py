"""Scalars: every tag of a pair, PyTorch beside (or over) TensorFlow, smoothed, bounded, live.

Tags are ours, through each run's tag mapping (twinboard.scalars.curves), so an uploaded Keras run
and a local run share one chart on the epoch or samples-seen axis."""
from __future__ import annotations

import streamlit as st

from pages.common import scalar_store, tag_filter
from pages.pair_picker import pick_more_pairs, pick_pair
from twinboard import runs, scalars
from twinboard.config import logdir
from twinboard.contract import CorruptRecordError
from twinboard.scalars import MAX_POINTS, MAX_SMOOTHING
from twinboard.text import code, md

# Chart refresh interval while a run is live: p95 append-to-screen <= 2 s needs <= ~1.5 s (bench/live_latency).
REFRESH_S = 1.0
AXIS_NAMES = {"step": "Step", "epoch": "Epoch", "samples": "Samples", "relative": "Relative", "wall": "Wall"}


def _store(root) -> scalars.RunStores:
    """This session's view of the folders it shows; the folders' stores are shared (scalar_store)."""
    stores = st.session_state.setdefault("scalars_stores", {})
    if str(root) not in stores:
        stores[str(root)] = scalars.RunStores(root, lambda folder: scalar_store(str(folder)))
    return stores[str(root)]


def _refresh(store: scalars.RunStores, folders: list[str], report: bool = True) -> bool:
    """Read what is new; a failure is reported (when `report`), never raised: the store keeps what it had."""
    try:
        store.refresh(folders)
    except (CorruptRecordError, OSError, ValueError) as err:
        if report:
            st.error(f"Could not read the event files: {md(err, 1000)}", icon=":material/error:")
        return False
    for problem in store.problems() if report else ():
        st.warning(md(problem, 1000), icon=":material/warning:")
    return True


def _total_steps(root, pairs: list[runs.Pair]) -> int:
    return max((j.total_steps or 0 for jobs in runs.pair_jobs(pairs, root).values() for j in jobs), default=0)


def _zoom_slider(store: scalars.RunStores, root, pairs: list[runs.Pair], mapped: dict, tags: list[str],
                 x_axis: str) -> tuple[float, float] | None:
    """A range to show at full resolution, in the x axis' units (steps on a time axis)."""
    bounds = scalars.zoom_bounds(store, mapped, tags, x_axis, _total_steps(root, pairs))
    if bounds is None:
        return None
    lo, hi = bounds
    kept_by_axis = st.session_state.setdefault("scalars_steps_kept", {})  # the range per x axis
    kept = kept_by_axis.get(x_axis)
    value = tuple(map(type(hi), kept)) if kept and lo <= kept[0] <= kept[1] <= hi else (lo, hi)
    label = {"epoch": "Epochs", "samples": "Samples seen"}.get(x_axis, "Steps")
    chosen = st.sidebar.slider(label, lo, hi, value, key="scalars_steps")
    kept_by_axis[x_axis] = chosen  # the range survives a change of the ends
    return None if tuple(chosen) == (lo, hi) else tuple(chosen)


def _take_dragged_range() -> None:
    """A range dragged on a chart (`_dragged` keeps it) becomes the zoom slider's, before the slider
    is drawn: the drag and the slider are one zoom."""
    dragged = st.session_state.pop("scalars_dragged", None)
    if dragged is not None:
        x_axis, chosen = dragged
        st.session_state["scalars_zoom"] = True
        st.session_state.setdefault("scalars_steps_kept", {})[x_axis] = chosen
        st.session_state["scalars_steps"] = chosen


def _dragged(box: dict, tag: str, curves: list, view: dict, bounds) -> None:
    """A box dragged across `tag`'s chart: zoom every chart to its x range (a full run of the page,
    so the slider shows it), or say why not."""
    try:
        chosen = scalars.box_range(box, view["x_axis"], curves, bounds, view["overlay"]) if bounds else None
    except ValueError as err:
        st.warning(md(err), icon=":material/warning:")
        return
    if chosen is None:
        st.info(f"The range dragged on {md(tag)} holds no points: nothing to zoom into.")
        return
    st.session_state["scalars_dragged"] = (view["x_axis"], chosen)
    st.rerun()


def _charts(root, pairs: list[runs.Pair], mappings: dict, folders: list[str], tags_seen: list[str],
            groups: dict[str, list[str]], view: dict, live: bool) -> None:
    """The charts: a fragment, rerun every REFRESH_S while `live`, that reads only new bytes."""
    store = _store(root)
    if not _refresh(store, folders):
        return
    mapped = scalars.map_runs(store, root, pairs, mappings)
    if scalars.mapped_tags(mapped) != tags_seen or runs.pairs_are_live(pairs, root) != live:
        st.rerun()  # new tags (the controls list them) or a run ended (the timer stops): a full run
    starts = scalars.run_starts(store, mapped) if view["x_axis"] == "relative" else {}
    panels = scalars.panel_titles(pairs)  # a matched pair's frameworks, else the runs' names
    problems: set[str] = set()  # runs the x axis cannot place: said once, above the charts
    cache = st.session_state.setdefault("scalars_prepared", scalars.PreparedCache())
    cache.rotate()
    figures, drawn = {}, {}
    for tag in (t for tags in groups.values() for t in tags):
        drawn[tag], cannot = scalars.tag_curves(store, pairs, mapped, tag, view["x_axis"], starts)
        problems.update(cannot)
        figures[tag] = scalars.scalar_figure(tag, drawn[tag], smoothing=view["smoothing"], x_axis=view["x_axis"],
                                            log_y=view["log_y"], overlay=view["overlay"],
                                            panel_titles=panels, step_range=view["steps"], cache=cache,
                                            encode=True, difference=view["difference"])
    for problem in sorted(problems):  # markdown whose run names are escaped (scalars.tag_curves)
        st.warning(problem, icon=":material/warning:")
    for group, tags in groups.items():
        with st.expander(f"**{md(group)}** · {len(tags)}", expanded=True):
            cols = st.columns(2) if view["overlay"] else [st.container()]
            for i, tag in enumerate(tags):
                event = cols[i % len(cols)].plotly_chart(figures[tag], key=f"scalars_chart_{tag}",
                                                         config={"displaylogo": False}, on_select="rerun",
                                                         selection_mode="box")
                if event and event.selection.box:
                    bounds = scalars.zoom_bounds(store, mapped, list(figures), view["x_axis"],
                                                 _total_steps(root, pairs))
                    _dragged(event.selection.box[0], tag, drawn[tag], view, bounds)


def main() -> None:
    st.title("Scalars")
    root = logdir()
    pair = pick_pair("scalars")
    if pair is None:
        return
    pairs = [pair, *pick_more_pairs("scalars", pair)]
    mappings, problems = scalars.load_mappings(root, pairs)
    for problem in problems:  # markdown whose names are escaped (scalars.load_mappings)
        st.warning(problem, icon=":material/warning:")
    folders = scalars.folders(root, pairs, mappings)
    store = _store(root)
    _refresh(store, folders, report=False)  # the charts' fragment reports problems, once
    mapped = scalars.map_runs(store, root, pairs, mappings)
    tags = scalars.mapped_tags(mapped)
    if not tags:
        st.info("No scalars in these runs yet. A run that has just started writes its first ones "
                "within a few steps; this page updates by itself while it runs.", icon=":material/hourglass:")
    side = st.sidebar
    side.divider()
    shown, pattern = tag_filter(tags, "scalars_filter")
    overlay = side.toggle("Overlay the two sides", key="scalars_overlay",
                          help="One chart per tag; off: PyTorch and TensorFlow panels with one y range")
    smoothing = side.slider("Smoothing", 0.0, MAX_SMOOTHING, 0.6, step=0.001, format="%.3f",
                            key="scalars_smoothing",
                            help="TensorBoard's debiased exponential moving average; 0 = off. "
                                 "The raw series is drawn faintly behind.")
    axes = list(scalars.X_AXES)  # first shown: what an upload's mapping suggests (Keras: epoch)
    x_axis = side.radio("X axis", axes, index=axes.index(scalars.first_axis(mappings)), key="scalars_x_axis",
                        horizontal=True, format_func=AXIS_NAMES.get,
                        help="Epoch and samples seen come from each run's spec (uploads: from the "
                             "mapping set on the Upload page)")
    log_y = side.toggle("Log-scale y", key="scalars_log_y")
    difference = side.checkbox("Difference strip", key="scalars_difference",
                               help="Under each chart: left minus right (PyTorch minus TensorFlow) at the "
                                    "steps both sides logged, on the chart's x axis")
    steps = None
    _take_dragged_range()
    if side.toggle("Zoom in", key="scalars_zoom",
                   help=f"Charts send at most {MAX_POINTS:,} points a series; a narrower range (in the x "
                        "axis' units, steps on a time axis) shows more detail, at full resolution once "
                        "it holds fewer points. Drag across a chart to zoom to that range."):
        steps = _zoom_slider(store, root, pairs, mapped, shown, x_axis)
    side.button("Refresh now", key="scalars_refresh", icon=":material/refresh:")
    if pattern and not shown:
        st.info(f"No tag matches {code(pattern)}.")
    view = {"overlay": overlay, "smoothing": smoothing, "x_axis": x_axis, "log_y": log_y, "steps": steps,
            "difference": difference}
    live = runs.pairs_are_live(pairs, root)
    st.fragment(run_every=REFRESH_S if live else None)(_charts)(
        root, pairs, mappings, folders, tags, scalars.group_tags(shown), view, live)


main()
