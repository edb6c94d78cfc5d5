"""Deleting a launcher run: its whole folder, never while one of its jobs may still write there.

The folder is first moved aside, under a hidden name (`.deleting-<run-id>-<token>`) that every
listing skips, by one rename (atomic on one filesystem), and only then removed: a page refreshing
meanwhile sees the run or nothing, never half a run, and a removal cut short leaves a hidden
leftover that the next delete sweeps, not a broken run. Links are never followed: a run folder that
is a link is refused, and the removal unlinks links inside the folder instead of entering them
(`shutil.rmtree` works on file descriptors on Linux), so nothing outside the logdir is touched.
"""
from __future__ import annotations

import logging
import os
import re
import secrets
import shutil
from pathlib import Path

from twinboard.contract.files import RUN_JSON, UPLOADS
from twinboard.runs.launcher import get_run
from twinboard.runs.state import LauncherError, RunNotFound

log = logging.getLogger(__name__)

DELETING_PREFIX = ".deleting-"  # prefix of a folder being removed; hidden, so no listing shows it
_RUN_ID = re.compile(r"[A-Za-z0-9][A-Za-z0-9._-]{0,99}")  # the launcher's run names: one path component


def delete_run(run_id: str, logdir: str | os.PathLike) -> Path:
    """Delete the launcher run `run_id` (its folder `<logdir>/<run-id>/` and everything in it).

    Refuses, with a LauncherError that names the run and says why: a name that is not one folder of
    the logdir (`..`, `a/b`, `uploads`), a folder that is a link, a folder without run.json
    (RunNotFound), a run with a queued or running job (stop it first). Returns the path it had.
    """
    root = Path(logdir).absolute()
    if not isinstance(run_id, str) or not _RUN_ID.fullmatch(run_id) or run_id == UPLOADS:
        raise LauncherError(f"{str(run_id)[:200]!r} is not a run name: runs are folders directly in {root}, "
                            f"named with letters, digits, '.', '_' or '-'")
    folder = root / run_id
    if folder.is_symlink():
        raise LauncherError(f"{run_id!r} is a link, not a run folder; Twinboard deletes only folders "
                            f"inside {root}")
    if not (folder / RUN_JSON).is_file():
        raise RunNotFound(f"no run {run_id!r} in {root}")
    busy = [fw for fw, job in get_run(run_id, root).frameworks.items() if job.active]
    if busy:
        raise LauncherError(f"{run_id!r} still has a queued or running job ({', '.join(busy)}); stop it first")
    _sweep(root)
    aside = root / f"{DELETING_PREFIX}{run_id}-{secrets.token_hex(4)}"
    try:
        os.rename(folder, aside)
    except OSError as err:
        raise LauncherError(f"cannot delete {run_id!r}: {err.strerror or err}") from None
    if aside.is_symlink():  # swapped for a link after the checks above: remove the link, not its target
        aside.unlink()
        raise LauncherError(f"{run_id!r} turned into a link while being deleted; removed the link only")
    try:
        shutil.rmtree(aside)
    except OSError as err:  # hidden and swept by the next delete; the run is gone from every listing
        log.warning("run %s moved aside to %s but not fully removed: %s", run_id, aside, err)
    return folder


def _sweep(root: Path) -> None:
    """Remove what an earlier delete moved aside but could not finish removing."""
    try:
        leftovers = [p for p in root.iterdir() if p.name.startswith(DELETING_PREFIX)]
    except OSError:
        return
    for path in leftovers:
        if path.is_symlink():
            path.unlink(missing_ok=True)
        else:
            shutil.rmtree(path, ignore_errors=True)
