"""Some tags of some runs of one folder, read once: what a run card's final metrics and a sweep's
pair curves both need (twinboard.runs.summary, twinboard.sweeps.results).

Those two modules are imported by the CLI and the trainer supervisors, which must not pay for numpy
and the compiled decoder's loader: they import this module inside the function that reads.
"""
from __future__ import annotations

import os
from collections.abc import Iterable, Sequence

from twinboard.events.problems import Problem
from twinboard.events.scalars import ScalarStore, Series


def read_tag_series(folder: str | os.PathLike, runs: Iterable[str], tags: Sequence[str]
                    ) -> tuple[dict[str, dict[str, Series]], list[Problem]]:
    """(run -> tag -> Series, problems): each of `tags` that each of `runs` (sub-folders of `folder`,
    as ScalarStore names them: "torch", "tensorflow") has logged, in the order of `tags`; a run or tag
    without a point is left out. A one-shot read (no spare room kept after a series); a Series is a
    read-only view into the store's arrays, which may hold other tags of the same file: copy what is
    kept for long."""
    store = ScalarStore(folder, headroom=False)
    store.refresh()
    out: dict[str, dict[str, Series]] = {}
    for run in runs:
        have = set(store.tags(run))  # [] for a run without event files
        for tag in (t for t in tags if t in have):
            out.setdefault(run, {})[tag] = store.series(run, tag)
    return out, store.problems()
