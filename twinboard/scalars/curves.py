"""The curves of the shown pairs: each run's tag mapping, its tags (ours), the series behind them,
and the `Curve`s a chart draws.

Series are looked up by OUR tag through each run's tag mapping (tagmap: an upload's saved mapping,
companion folders included; a local run's tags are ours already), so an uploaded Keras run (step =
epoch) and a local run (step = batch) share one chart on the epoch or samples-seen axis.
"""
from __future__ import annotations

import os
from collections.abc import Callable

import numpy as np

from twinboard import tagmap
from twinboard.runs import EventRun, Pair
from twinboard.scalars.charts import MAPPED_AXES, Curve, first_wall_time, pair_dash, side_colors, x_bounds
from twinboard.scalars.compare import curve_name
from twinboard.scalars.store import RunStores
from twinboard.text import code, md

UNITS_OF_THEIR_OWN = ("epoch", "samples")  # x axes whose zoom range is not in steps


def shown_runs(pairs: list[Pair]) -> list[EventRun]:
    """Every run of the pairs once, in order."""
    return list({r.name: r for p in pairs for r in p.runs}.values())


def load_mappings(root: str | os.PathLike, pairs: list[Pair]) -> tuple[dict[str, tagmap.Mapping], list[str]]:
    """Each shown run's tag mapping, and a problem per bad mapping file (that run is shown as logged),
    as markdown whose names (the run's, the mapping's) show as text."""
    out, problems = {}, []
    for run in shown_runs(pairs):
        try:
            out[run.name] = tagmap.mapping_for_run(run.path, root)
        except tagmap.MappingError as err:
            problems.append(f"{code(run.name)}: {md(err, 1000)}. Its tags are shown as logged.")
            out[run.name] = tagmap.Mapping()
    return out, problems


def first_axis(mappings: dict[str, tagmap.Mapping]) -> str:
    """The x axis to offer first: what an upload's mapping suggests (Keras: epoch), else step."""
    return next((m.x_axis for m in mappings.values() if m.x_axis != "step"), "step")


def folders(root: str | os.PathLike, pairs: list[Pair], mappings: dict[str, tagmap.Mapping]) -> list[str]:
    """The folders to read: the shown runs and their companions, less those inside another."""
    names = {n for r in shown_runs(pairs) for n in tagmap.source_runs(r.name, r.path, root, mappings[r.name])}
    return sorted(n for n in names if not any(n.startswith(f"{o}/") or (o == "." and n != ".") for o in names))


def map_runs(store: RunStores, root: str | os.PathLike, pairs: list[Pair],
             mappings: dict[str, tagmap.Mapping]) -> dict[str, tagmap.MappedRun]:
    """Each shown run's tags (ours) and the stored series behind them, companions included."""
    return {r.name: tagmap.map_run(r.name, r.path, root, mappings[r.name], store.tags) for r in shown_runs(pairs)}


def mapped_tags(mapped: dict[str, tagmap.MappedRun]) -> list[str]:
    """Every tag (ours) of the shown runs, sorted."""
    return sorted({t for m in mapped.values() for t in m.tags})


def tag_series(store: RunStores, run: tagmap.MappedRun, tag: str, x_axis: str):
    """(step, wall_time, value, x) of our `tag`; x on a mapped axis, None on a time axis.
    Raises tagmap.MappingError when the run's mapping cannot place it on `x_axis`."""
    return tagmap.mapped_series(run, tag, store.series, x_axis if x_axis in MAPPED_AXES else None)


def run_starts(store: RunStores, mapped: dict[str, tagmap.MappedRun]) -> dict[str, float | None]:
    """Each shown run's first event time over all its series: the origin of relative time."""
    return {name: first_wall_time([store.series(src, t).wall_time for src in m.sources for t in store.tags(src)])
            for name, m in mapped.items()}


def tag_curves(store: RunStores, pairs: list[Pair], mapped: dict[str, tagmap.MappedRun], tag: str,
               x_axis: str, starts: dict[str, float | None],
               label: Callable[[EventRun], str] | None = None) -> tuple[list[Curve], list[str]]:
    """The curves of our `tag`, one per side of each pair that has it, and a problem per run whose
    mapping cannot place it on `x_axis` (that run is not drawn; markdown, names shown as text). A
    side is named by `label(run)`, by default compare.curve_name: its framework in a matched pair,
    else the run's name."""
    curves, problems = [], []
    for i, pair in enumerate(pairs):
        colors = side_colors(pair.left.framework, pair.right.framework)
        for side, run in enumerate(pair.runs):
            if tag not in mapped[run.name].tags:
                continue
            try:
                step, wall, value, x = tag_series(store, mapped[run.name], tag, x_axis)
            except tagmap.MappingError as err:
                problems.append(f"{code(run.name)} is not drawn on this x axis: {md(err, 1000)}")
                continue
            if label is None:
                name = curve_name(pairs, i, run)
            else:
                name = label(run) if len(pairs) == 1 else f"{label(run)} · {pair.label}"
            # The same buffer and length hold the same points (a store only appends): a key for
            # PreparedCache, so a live refresh redraws only the series that grew.
            key = (run.name, tag, mapped[run.name].mapping, len(value), value.__array_interface__["data"][0])
            curves.append(Curve(name, side, colors[side], step, wall, value, pair_dash(i), starts.get(run.name),
                                x, key, pair=i))
    return curves, problems


def zoom_bounds(store: RunStores, mapped: dict[str, tagmap.MappedRun], tags: list[str], x_axis: str,
                total_steps: int = 0) -> tuple[int, int] | tuple[float, float] | None:
    """The range a zoom slider spans, in the x axis' units (steps on a time axis), over `tags` of
    the shown runs. On steps its upper end is stretched to `total_steps` (a launcher job's total),
    so the ends stay put while a run grows (a slider whose ends change starts afresh). None when
    there is nothing to zoom into."""
    arrays: list[np.ndarray] = []
    for m in mapped.values():
        for t in tags:
            if t not in m.tags:
                continue
            try:
                step, _, _, x = tag_series(store, m, t, x_axis)
            except tagmap.MappingError:
                continue
            arrays.append(step if x is None else x)
    bounds = x_bounds(arrays)
    if bounds is None:
        return None
    kind = type(bounds[1])  # int for whole steps or samples, float for epochs of per-step logs
    lo, hi = kind(min(bounds[0], 0)), kind(max(bounds[1], 0 if x_axis in UNITS_OF_THEIR_OWN else total_steps))
    return (lo, hi) if lo < hi else None
