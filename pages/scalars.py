"""Scalars: every tag of a pair, PyTorch beside (or over) TensorFlow, smoothed, bounded, live."""
from __future__ import annotations

import streamlit as st

from pages.common import pick_more_pairs, pick_pair, side_label
from twinboard import charts, events, launcher, runs
from twinboard.config import logdir
from twinboard.records import CorruptRecordError
from twinboard.smoothing import MAX_POINTS, MAX_SMOOTHING

REFRESH_S = 2.0  # chart refresh interval while a selected run is queued or running
ACTIVE = ("queued", "running")


def _store(root) -> events.ScalarStore:
    """One incremental store per session and logdir: a refresh reads only the bytes added since."""
    stores = st.session_state.setdefault("scalars_stores", {})
    if str(root) not in stores:
        stores[str(root)] = events.ScalarStore(root)
    return stores[str(root)]


def _refresh(store: events.ScalarStore, report: bool = True) -> bool:
    """Read what is new; a failure is reported (when `report`), never raised: the store keeps what it had."""
    try:
        store.refresh()
    except (CorruptRecordError, OSError, ValueError) as err:
        if report:
            st.error(f"Could not read the event files: {err}", icon=":material/error:")
        return False
    for problem in store.problems() if report else ():
        st.warning(problem, icon=":material/warning:")
    return True


def _tags(store: events.ScalarStore, pairs: list[runs.Pair]) -> list[str]:
    known = set(store.runs())
    return sorted({t for p in pairs for r in p.runs if r.name in known for t in store.tags(r.name)})


def _jobs(root, pairs: list[runs.Pair]) -> list[launcher.JobStatus]:
    """The launcher jobs behind the shown runs (uploads and copied-in folders have none)."""
    jobs = []
    for run_id in sorted({r.group for p in pairs for r in p.runs if r.source == "local"}):
        try:
            jobs.extend(launcher.get_run(run_id, logdir=root).frameworks.values())
        except launcher.LauncherError:
            continue  # not a launcher run (a folder of event files someone copied in)
    return jobs


def _live(root, pairs: list[runs.Pair]) -> bool:
    return any(j.state in ACTIVE for j in _jobs(root, pairs))


def _run_starts(store: events.ScalarStore, pairs: list[runs.Pair]) -> dict[str, float | None]:
    """Each shown run's first event time over all its tags: the origin of relative time."""
    known = set(store.runs())
    return {r.name: charts.first_wall_time([store.series(r.name, t).wall_time for t in store.tags(r.name)])
            for p in pairs for r in p.runs if r.name in known}


def _curves(store: events.ScalarStore, pairs: list[runs.Pair], tag: str,
            starts: dict[str, float | None]) -> list[charts.Curve]:
    curves = []
    known = set(store.runs())
    for i, pair in enumerate(pairs):
        colors = charts.side_colors(pair.left.framework, pair.right.framework)
        for side, run in enumerate(pair.runs):
            if run.name not in known or tag not in store.tags(run.name):
                continue
            s = store.series(run.name, tag)
            name = side_label(run) if len(pairs) == 1 else f"{side_label(run)} · {pair.label}"
            curves.append(charts.Curve(name, side, colors[side], s.step, s.wall_time, s.value,
                                       charts.pair_dash(i), starts.get(run.name)))
    return curves


def _step_slider(store: events.ScalarStore, pairs: list[runs.Pair], tags: list[str], root) -> tuple[int, int] | None:
    """A step range to show at full resolution. Its ends are the steps seen, stretched to a launcher
    job's total, so they stay put while a run grows (a slider whose ends change starts afresh)."""
    known = set(store.runs())
    bounds = charts.step_bounds([store.series(r.name, t).step for p in pairs for r in p.runs
                                 if r.name in known for t in tags if t in store.tags(r.name)])
    if bounds is None:
        return None
    total = max((j.total_steps or 0 for j in _jobs(root, pairs)), default=0)
    lo, hi = min(bounds[0], 0), max(bounds[1], total)
    if lo >= hi:
        return None
    kept = st.session_state.get("scalars_steps_kept")
    value = tuple(kept) if kept and lo <= kept[0] <= kept[1] <= hi else (lo, hi)
    steps = st.sidebar.slider("Steps", lo, hi, value, key="scalars_steps")
    st.session_state["scalars_steps_kept"] = steps  # the range survives a change of the ends
    return None if tuple(steps) == (lo, hi) else tuple(steps)


def _charts(root, pairs: list[runs.Pair], tags_seen: list[str], groups: dict[str, list[str]],
            view: dict, live: bool) -> None:
    """The charts: a fragment, rerun every REFRESH_S while `live`, that reads only new bytes."""
    store = _store(root)
    if not _refresh(store):
        return
    if _tags(store, pairs) != tags_seen or _live(root, pairs) != live:
        st.rerun()  # new tags (the controls list them) or a run ended (the timer stops): a full run
    starts = _run_starts(store, pairs) if view["x_axis"] == "relative" else {}
    panels = (side_label(pairs[0].left), side_label(pairs[0].right))
    if len(pairs) > 1:
        panels = (f"{panels[0]} side", f"{panels[1]} side")
    for group, tags in groups.items():
        with st.expander(f"**{group}** · {len(tags)}", expanded=True):
            cols = st.columns(2) if view["overlay"] else [st.container()]
            for i, tag in enumerate(tags):
                fig = charts.scalar_figure(tag, _curves(store, pairs, tag, starts),
                                           smoothing=view["smoothing"], x_axis=view["x_axis"],
                                           log_y=view["log_y"], overlay=view["overlay"],
                                           panel_titles=panels, step_range=view["steps"])
                cols[i % len(cols)].plotly_chart(fig, key=f"scalars_chart_{tag}",
                                                 config={"displaylogo": False})


def scalars_page() -> None:
    st.title("Scalars")
    root = logdir()
    pair = pick_pair("scalars")
    if pair is None:
        return
    pairs = [pair, *pick_more_pairs("scalars", pair)]
    store = _store(root)
    _refresh(store, report=False)  # the charts' fragment reports problems, once
    tags = _tags(store, pairs)
    if not tags:
        st.info("No scalars in these runs yet. A run that has just started writes its first ones "
                "within a few steps; this page updates by itself while it runs.", icon=":material/hourglass:")
    side = st.sidebar
    side.divider()
    pattern = side.text_input("Filter tags (regex)", key="scalars_filter", placeholder="e.g. loss|acc")
    try:
        shown = charts.filter_tags(tags, pattern)
    except charts.TagFilterError as err:
        side.error(str(err))
        shown = tags
    overlay = side.toggle("Overlay the two sides", key="scalars_overlay",
                          help="One chart per tag; off: PyTorch and TensorFlow panels with one y range")
    smoothing = side.slider("Smoothing", 0.0, MAX_SMOOTHING, 0.6, step=0.001, format="%.3f",
                            key="scalars_smoothing",
                            help="TensorBoard's debiased exponential moving average; 0 = off. "
                                 "The raw series is drawn faintly behind.")
    x_axis = side.radio("X axis", list(charts.X_AXES), key="scalars_x_axis", horizontal=True,
                        format_func=lambda a: {"step": "Step", "relative": "Relative", "wall": "Wall"}[a])
    log_y = side.toggle("Log-scale y", key="scalars_log_y")
    steps = None
    if side.toggle("Zoom to steps", key="scalars_zoom",
                   help=f"Charts send at most {MAX_POINTS:,} points a series; a narrower step range "
                        "shows more detail, at full resolution once it holds fewer points."):
        steps = _step_slider(store, pairs, shown, root)
    side.button("Refresh now", key="scalars_refresh", icon=":material/refresh:")
    if pattern and not shown:
        st.info(f"No tag matches `{pattern}`.")
    view = {"overlay": overlay, "smoothing": smoothing, "x_axis": x_axis, "log_y": log_y,
            "steps": steps}
    live = _live(root, pairs)
    st.fragment(run_every=REFRESH_S if live else None)(_charts)(
        root, pairs, tags, charts.group_tags(shown), view, live)


scalars_page()
