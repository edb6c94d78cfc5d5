"""Reading event files that grow, for the stores that keep what they read (histograms, images):
which files a set of runs holds, and one file's new records since the last read, with every
problem (unreadable, corrupt, truncated) kept as a Problem by (path, kind) rather than raised.
"""
from __future__ import annotations

import os
import time
from dataclasses import dataclass
from pathlib import Path
from typing import Callable, Iterable

from twinboard.contract import event_files
from twinboard.events.problems import Problem
from twinboard.events.records import Record, RecordReader


@dataclass
class TailedFile:
    reader: RecordReader
    run: str
    broken_at: tuple[int, float] | None = None  # (size, mtime) when corruption was found
    inode: int | None = None  # a different inode or a shorter file: the file was replaced


def run_event_files(logdir: Path, runs: Iterable[str] | None) -> list[tuple[str, Path]]:
    """(run, event file) of the named runs (each checked to lie inside the logdir), or of every run."""
    from twinboard.runs import list_event_runs, safe_path

    if runs is None:
        folders = [(r.name, r.path) for r in list_event_runs(logdir)]
    else:
        folders = [(r, safe_path(logdir, r)) for r in runs]
    return [(name, p) for name, folder in folders for p in event_files(folder)]


def read_new(state: TailedFile, problems: dict[tuple[str, str], Problem], ingest: Callable[[list[Record]], int],
             forget: Callable[[], None], stale_after: float, not_shown: str) -> int:
    """Ingest `state`'s records written since the last call, batch by batch (a big file never sits in
    memory whole); how many `ingest` took. A replaced file (another inode, or shorter) is `forget`-ten
    and read afresh; a corrupt one is not read again until it changes, the good records before the
    bad one kept (`not_shown`: what the corrupt Problem says is lost); a tail left incomplete for
    `stale_after` seconds is reported as truncated."""
    path, key = state.reader.path, str(state.reader.path)
    try:
        st = os.stat(path)
    except OSError as e:
        problems[(key, "io")] = Problem(key, None, f"cannot be read: {e.strerror}")
        return 0
    problems.pop((key, "io"), None)
    if st.st_size < state.reader.offset or state.inode not in (None, st.st_ino):
        forget()
    state.inode = st.st_ino
    if state.broken_at == (st.st_size, st.st_mtime):
        return 0  # unchanged since it was found corrupt: the bad bytes are not read again
    found = 0
    while True:
        try:
            records, err = state.reader.frames()
        except OSError as e:  # vanished since the stat above: try again next refresh
            problems[(key, "io")] = Problem(key, None, f"cannot be read: {e.strerror}")
            return found
        found += ingest(records)
        if err is not None or not records:
            break
    if err is None:
        state.broken_at = None
        problems.pop((key, "corrupt"), None)
    else:
        state.broken_at = (st.st_size, st.st_mtime)
        problems[(key, "corrupt")] = Problem.corrupt(err, not_shown)
    pending = state.reader.pending_bytes()
    if pending and state.broken_at is None and time.time() - st.st_mtime > stale_after:
        problems[(key, "truncated")] = Problem(
            key, state.reader.offset, f"ends in an incomplete record ({pending} bytes): truncated?")
    else:
        problems.pop((key, "truncated"), None)
    return found
