"""Is a pair still training? One answer for every page: it decides whether a page keeps refreshing.

A side is live when the launcher job behind it is queued or running, or, for a trainer started by
hand (a folder with no launcher run), when its status.json says running and was updated within the
last STALE_S seconds. A launcher run's own status.json is not consulted: a trainer killed mid-run
leaves "running" there, and the launcher already knows better.
"""
from __future__ import annotations

import os
import time
from collections.abc import Iterable

from twinboard.contract.files import read_status
from twinboard.runs import launcher
from twinboard.runs.discovery import Pair
from twinboard.runs.state import JobStatus, LauncherError

STALE_S = 60.0  # s: a status.json "running" older than this is a trainer that died without saying so


def _groups(pairs: Iterable[Pair]) -> list[str]:
    """The run folders behind the pairs' local sides (uploads never have a launcher run)."""
    return sorted({r.group for p in pairs for r in p.runs if r.source == "local"})


def pair_jobs(pairs: Iterable[Pair], logdir: str | os.PathLike) -> dict[str, list[JobStatus]]:
    """The launcher jobs behind the pairs, by run id; a group that is no launcher run (event files
    copied in, a trainer started by hand) is left out."""
    found = {}
    for run_id in _groups(pairs):
        try:
            found[run_id] = list(launcher.get_run(run_id, logdir).frameworks.values())
        except (LauncherError, OSError, ValueError):
            continue  # not a launcher run, or its run.json went away while being read
    return found


def reports_running(folder: str | os.PathLike, now: float | None = None) -> bool:
    """Whether a framework folder's status.json says running and was updated in the last STALE_S s."""
    status = read_status(folder) or {}
    try:
        updated = float(status.get("updated", 0))
    except (TypeError, ValueError):
        return False
    return status.get("state") == "running" and (time.time() if now is None else now) - updated < STALE_S


def pairs_are_live(pairs: Iterable[Pair], logdir: str | os.PathLike) -> bool:
    """Whether any side of `pairs` may still be written to (see the module docstring)."""
    pairs = list(pairs)
    jobs = pair_jobs(pairs, logdir)
    if any(job.active for group in jobs.values() for job in group):
        return True
    return any(reports_running(r.path) for p in pairs for r in p.runs if r.group not in jobs)


def pair_is_live(pair: Pair, logdir: str | os.PathLike) -> bool:
    """Whether either side of `pair` is still training: the page showing it keeps refreshing."""
    return pairs_are_live([pair], logdir)
