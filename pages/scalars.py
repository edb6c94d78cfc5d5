"""Scalars: every tag of a pair, PyTorch beside (or over) TensorFlow, smoothed, bounded, live.

Series are looked up by OUR tag through each run's tag mapping (tagmap: an upload's saved mapping,
companion folders included; a local run's tags are ours already), so an uploaded Keras run (step =
epoch) and a local run (step = batch) share one chart on the epoch or samples-seen axis."""
from __future__ import annotations

from pathlib import Path

import streamlit as st

from pages.common import pick_more_pairs, pick_pair, side_label
from twinboard import events, runs, scalars, tagmap
from twinboard.config import logdir
from twinboard.events import CorruptRecordError
from twinboard.scalars import MAX_POINTS, MAX_SMOOTHING

REFRESH_S = 1.0  # chart refresh interval while a run is live: p95 append-to-screen <= 2 s needs <= ~1.5 s (bench/live_latency)
ACTIVE = ("queued", "running")


class RunStores:
    """The scalars of the shown runs only: one incremental ScalarStore per shown folder (its
    sub-folders included), so a page over two runs of a big logdir reads and holds two runs, not
    the logdir (issue 7: 20 runs of 1M scalars). Runs are named as in the logdir (`<run-id>/torch`,
    `uploads/k/validation`): the names tagmap's rules match."""

    def __init__(self, root) -> None:
        self.root = Path(root)
        self.folders: list[str] = []  # what the last refresh read, posix relative to root
        self._stores: dict[str, events.ScalarStore] = {}
        self._runs: dict[str, tuple[events.ScalarStore, str]] = {}  # run -> (its store, its name there)

    def refresh(self, folders: list[str] | None = None) -> int:
        """Read what is new in `folders` (default: the last ones); stores of other folders are
        dropped (memory goes with what is shown). Returns the number of new points."""
        self.folders = list(self.folders if folders is None else folders)
        self._stores = {f: self._stores.get(f) or events.ScalarStore(self.root / f) for f in self.folders}
        try:
            return sum(store.refresh() for store in self._stores.values())
        finally:
            self._runs = {_join(f, run): (store, run) for f, store in self._stores.items() for run in store.runs()}

    def runs(self) -> list[str]:
        return sorted(self._runs)

    def tags(self, run: str) -> list[str]:
        store, name = self._runs.get(run, (None, ""))
        return store.tags(name) if store else []

    def series(self, run: str, tag: str) -> events.Series:
        store, name = self._runs[run]
        return store.series(name, tag)

    def problems(self) -> list[str]:
        return [p for store in self._stores.values() for p in store.problems()]


def _join(folder: str, run: str) -> str:
    return folder if run == "." else run if folder == "." else f"{folder}/{run}"


def _store(root) -> RunStores:
    """One set of incremental stores per session and logdir: a refresh reads only the bytes added since."""
    stores = st.session_state.setdefault("scalars_stores", {})
    if str(root) not in stores:
        stores[str(root)] = RunStores(root)
    return stores[str(root)]


def _folders(root, pairs: list[runs.Pair], mappings: dict[str, tagmap.Mapping]) -> list[str]:
    """The folders to read: the shown runs and their companions, less those inside another."""
    names = {n for r in _shown_runs(pairs) for n in tagmap.source_runs(r.name, r.path, root, mappings[r.name])}
    return sorted(n for n in names if not any(n.startswith(f"{o}/") or (o == "." and n != ".") for o in names))


def _refresh(store: RunStores, folders: list[str], report: bool = True) -> bool:
    """Read what is new; a failure is reported (when `report`), never raised: the store keeps what it had."""
    try:
        store.refresh(folders)
    except (CorruptRecordError, OSError, ValueError) as err:
        if report:
            st.error(f"Could not read the event files: {err}", icon=":material/error:")
        return False
    for problem in store.problems() if report else ():
        st.warning(problem, icon=":material/warning:")
    return True


def _shown_runs(pairs: list[runs.Pair]) -> list[runs.EventRun]:
    return list({r.name: r for p in pairs for r in p.runs}.values())


def _mappings(root, pairs: list[runs.Pair]) -> dict[str, tagmap.Mapping]:
    """Each shown run's tag mapping; a bad mapping file is named, and that run shown as logged."""
    out = {}
    for run in _shown_runs(pairs):
        try:
            out[run.name] = tagmap.mapping_for_run(run.path, root)
        except tagmap.MappingError as err:
            st.warning(f"`{run.name}`: {err}. Its tags are shown as logged.", icon=":material/warning:")
            out[run.name] = tagmap.Mapping()
    return out


def _mapped(store: RunStores, root, pairs: list[runs.Pair],
            mappings: dict[str, tagmap.Mapping]) -> dict[str, tagmap.MappedRun]:
    """Each shown run's tags (ours) and the stored series behind them, companions included."""
    known = set(store.runs())

    def tags_of(run: str) -> list[str]:
        return store.tags(run) if run in known else []
    return {r.name: tagmap.map_run(r.name, r.path, root, mappings[r.name], tags_of)
            for r in _shown_runs(pairs)}


def _tags(mapped: dict[str, tagmap.MappedRun]) -> list[str]:
    return sorted({t for m in mapped.values() for t in m.tags})


def _series(store: RunStores, run: tagmap.MappedRun, tag: str, x_axis: str):
    """(step, wall_time, value, x) of our `tag`; x on a mapped axis, None on a time axis."""
    return tagmap.mapped_series(run, tag, store.series, x_axis if x_axis in scalars.MAPPED_AXES else None)


def _jobs(root, pairs: list[runs.Pair]) -> list[runs.JobStatus]:
    """The launcher jobs behind the shown runs (uploads and copied-in folders have none)."""
    jobs = []
    for run_id in sorted({r.group for p in pairs for r in p.runs if r.source == "local"}):
        try:
            jobs.extend(runs.get_run(run_id, logdir=root).frameworks.values())
        except runs.LauncherError:
            continue  # not a launcher run (a folder of event files someone copied in)
    return jobs


def _live(root, pairs: list[runs.Pair]) -> bool:
    return any(j.state in ACTIVE for j in _jobs(root, pairs))


def _run_starts(store: RunStores, mapped: dict[str, tagmap.MappedRun]) -> dict[str, float | None]:
    """Each shown run's first event time over all its series: the origin of relative time."""
    known = set(store.runs())
    return {name: scalars.first_wall_time([store.series(src, t).wall_time for src in m.sources
                                          if src in known for t in store.tags(src)])
            for name, m in mapped.items()}


def _curves(store: RunStores, pairs: list[runs.Pair], mapped: dict[str, tagmap.MappedRun],
            tag: str, starts: dict[str, float | None], x_axis: str, problems: set[str]) -> list[scalars.Curve]:
    """The curves of our `tag`; a run whose mapping cannot place it on `x_axis` adds to `problems`."""
    curves = []
    for i, pair in enumerate(pairs):
        colors = scalars.side_colors(pair.left.framework, pair.right.framework)
        for side, run in enumerate(pair.runs):
            if tag not in mapped[run.name].tags:
                continue
            try:
                step, wall, value, x = _series(store, mapped[run.name], tag, x_axis)
            except tagmap.MappingError as err:
                problems.add(f"`{run.name}` is not drawn on this x axis: {err}")
                continue
            name = side_label(run) if len(pairs) == 1 else f"{side_label(run)} · {pair.label}"
            # The same buffer and length hold the same points (a store only appends): a key for
            # PreparedCache, so a live refresh redraws only the series that grew.
            key = (run.name, tag, mapped[run.name].mapping, len(value), value.__array_interface__["data"][0])
            curves.append(scalars.Curve(name, side, colors[side], step, wall, value,
                                       scalars.pair_dash(i), starts.get(run.name), x, key))
    return curves


def _zoom_slider(store: RunStores, pairs: list[runs.Pair], mapped: dict[str, tagmap.MappedRun],
                 tags: list[str], root, x_axis: str) -> tuple[float, float] | None:
    """A range to show at full resolution, in the x axis' units (steps on a time axis). On steps its
    ends are stretched to a launcher job's total, so they stay put while a run grows (a slider whose
    ends change starts afresh)."""
    arrays = []
    for m in mapped.values():
        for t in tags:
            try:
                step, _, _, x = _series(store, m, t, x_axis) if t in m.tags else (None,) * 4
            except tagmap.MappingError:
                continue
            if step is not None:
                arrays.append(step if x is None else x)
    bounds = scalars.x_bounds(arrays)
    if bounds is None:
        return None
    in_steps = x_axis not in ("epoch", "samples")
    total = max((j.total_steps or 0 for j in _jobs(root, pairs)), default=0) if in_steps else 0
    kind = type(bounds[1])  # int for whole steps or samples, float for epochs of per-step logs
    lo, hi = kind(min(bounds[0], 0)), kind(max(bounds[1], total))
    if lo >= hi:
        return None
    kept_by_axis = st.session_state.setdefault("scalars_steps_kept", {})  # the range per x axis
    kept = kept_by_axis.get(x_axis)
    value = tuple(map(kind, kept)) if kept and lo <= kept[0] <= kept[1] <= hi else (lo, hi)
    label = {"epoch": "Epochs", "samples": "Samples seen"}.get(x_axis, "Steps")
    chosen = st.sidebar.slider(label, lo, hi, value, key="scalars_steps")
    kept_by_axis[x_axis] = chosen  # the range survives a change of the ends
    return None if tuple(chosen) == (lo, hi) else tuple(chosen)


def _charts(root, pairs: list[runs.Pair], mappings: dict[str, tagmap.Mapping], folders: list[str],
            tags_seen: list[str], groups: dict[str, list[str]], view: dict, live: bool) -> None:
    """The charts: a fragment, rerun every REFRESH_S while `live`, that reads only new bytes."""
    store = _store(root)
    if not _refresh(store, folders):
        return
    mapped = _mapped(store, root, pairs, mappings)
    if _tags(mapped) != tags_seen or _live(root, pairs) != live:
        st.rerun()  # new tags (the controls list them) or a run ended (the timer stops): a full run
    starts = _run_starts(store, mapped) if view["x_axis"] == "relative" else {}
    panels = (side_label(pairs[0].left), side_label(pairs[0].right))
    if len(pairs) > 1:
        panels = (f"{panels[0]} side", f"{panels[1]} side")
    problems: set[str] = set()  # runs the x axis cannot place: said once, above the charts
    cache = st.session_state.setdefault("scalars_prepared", scalars.PreparedCache())
    cache.rotate()
    figures = {}
    for tag in (t for tags in groups.values() for t in tags):
        curves = _curves(store, pairs, mapped, tag, starts, view["x_axis"], problems)
        figures[tag] = scalars.scalar_figure(tag, curves, smoothing=view["smoothing"], x_axis=view["x_axis"],
                                            log_y=view["log_y"], overlay=view["overlay"],
                                            panel_titles=panels, step_range=view["steps"], cache=cache,
                                            encode=True)
    for problem in sorted(problems):
        st.warning(problem, icon=":material/warning:")
    for group, tags in groups.items():
        with st.expander(f"**{group}** · {len(tags)}", expanded=True):
            cols = st.columns(2) if view["overlay"] else [st.container()]
            for i, tag in enumerate(tags):
                cols[i % len(cols)].plotly_chart(figures[tag], key=f"scalars_chart_{tag}",
                                                 config={"displaylogo": False})


def scalars_page() -> None:
    st.title("Scalars")
    root = logdir()
    pair = pick_pair("scalars")
    if pair is None:
        return
    pairs = [pair, *pick_more_pairs("scalars", pair)]
    mappings = _mappings(root, pairs)
    folders = _folders(root, pairs, mappings)
    store = _store(root)
    _refresh(store, folders, report=False)  # the charts' fragment reports problems, once
    mapped = _mapped(store, root, pairs, mappings)
    tags = _tags(mapped)
    if not tags:
        st.info("No scalars in these runs yet. A run that has just started writes its first ones "
                "within a few steps; this page updates by itself while it runs.", icon=":material/hourglass:")
    side = st.sidebar
    side.divider()
    pattern = side.text_input("Filter tags (regex)", key="scalars_filter", placeholder="e.g. loss|acc")
    try:
        shown = scalars.filter_tags(tags, pattern)
    except scalars.TagFilterError as err:
        side.error(str(err))
        shown = tags
    overlay = side.toggle("Overlay the two sides", key="scalars_overlay",
                          help="One chart per tag; off: PyTorch and TensorFlow panels with one y range")
    smoothing = side.slider("Smoothing", 0.0, MAX_SMOOTHING, 0.6, step=0.001, format="%.3f",
                            key="scalars_smoothing",
                            help="TensorBoard's debiased exponential moving average; 0 = off. "
                                 "The raw series is drawn faintly behind.")
    axes = list(scalars.X_AXES)  # first shown: what an upload's mapping suggests (Keras: epoch)
    first = next((m.x_axis for m in mappings.values() if m.x_axis != "step"), "step")
    x_axis = side.radio("X axis", axes, index=axes.index(first), key="scalars_x_axis", horizontal=True,
                        format_func=lambda a: {"step": "Step", "epoch": "Epoch", "samples": "Samples",
                                               "relative": "Relative", "wall": "Wall"}[a],
                        help="Epoch and samples seen come from each run's spec (uploads: from the "
                             "mapping set on the Upload page)")
    log_y = side.toggle("Log-scale y", key="scalars_log_y")
    steps = None
    if side.toggle("Zoom in", key="scalars_zoom",
                   help=f"Charts send at most {MAX_POINTS:,} points a series; a narrower range (in the x "
                        "axis' units, steps on a time axis) shows more detail, at full resolution once "
                        "it holds fewer points."):
        steps = _zoom_slider(store, pairs, mapped, shown, root, x_axis)
    side.button("Refresh now", key="scalars_refresh", icon=":material/refresh:")
    if pattern and not shown:
        st.info(f"No tag matches `{pattern}`.")
    view = {"overlay": overlay, "smoothing": smoothing, "x_axis": x_axis, "log_y": log_y,
            "steps": steps}
    live = _live(root, pairs)
    st.fragment(run_every=REFRESH_S if live else None)(_charts)(
        root, pairs, mappings, folders, tags, scalars.group_tags(shown), view, live)


scalars_page()
