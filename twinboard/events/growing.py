"""Reading event files that grow, for the stores that keep what they read (histograms, images):
which files a set of runs holds, and one file's new records since the last read, with every
problem (unreadable, corrupt, truncated) kept as a Problem by (path, kind) rather than raised.

`GrowingStore` is what those stores share: the files read so far, the refresh over a logdir, the
Event parsing and plugin bookkeeping, problems by run, and the lock; a store adds only its own
records (`_take`) and what dropping a replaced file's records means for them (`_dropped`).
"""
from __future__ import annotations

import os
import threading
import time
from dataclasses import dataclass
from pathlib import Path
from typing import Any, Callable, Iterable

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


def _file_order(path: str) -> tuple[str, str]:
    """A run's files in name order (TensorBoard's names start with the creation time), as ScalarStore."""
    return os.path.basename(path), path


class GrowingStore:
    """Records of the event files under a logdir, read incrementally: `refresh()` reads only appended
    bytes. Thread-safe (one store may be shared by every browser session): every public method holds
    the RLock. A subclass sets the class fields below and implements `_take` (and `_dropped`)."""

    max_record: int  # bytes of one event the store parses; a bigger record is passed over unread
    event_name: str  # what the store reads, for the Problem of a record over max_record ("image event")
    not_shown: str  # what a corrupt file's Problem says is lost ("histograms after it are not shown")
    problem_kinds: tuple[str, ...] = ("corrupt", "truncated", "decode")  # cleared when a file is replaced

    def __init__(self, logdir: str | os.PathLike, stale_after: float = 30.0):
        self.logdir = Path(logdir)
        self.stale_after = stale_after
        self._files: dict[Path, TailedFile] = {}
        self._data: dict[str, dict[str, Any]] = {}  # run -> tag -> the store's entry, with .by_file
        self._plugins: dict[tuple[str, str], str] = {}  # (run, tag) -> plugin, first metadata seen
        self._problems: dict[tuple[str, str], Problem] = {}  # (path, kind) -> the latest trouble
        self._lock = threading.RLock()

    def refresh(self, runs: Iterable[str] | None = None) -> int:
        """Read what was appended since the last call (only these runs if given); new records."""
        with self._lock:
            found = 0
            for run, path in run_event_files(self.logdir, runs):
                state = self._files.get(path)
                if state is None:
                    state = self._files[path] = TailedFile(RecordReader(path, max_record=self.max_record), run)
                found += self._read(state)
            return found

    def add_file(self, path: str | os.PathLike, run: str) -> int:
        """Read one event file as (part of) `run`, outside the logdir walk."""
        with self._lock:
            path = Path(path)
            state = self._files.setdefault(path, TailedFile(RecordReader(path, max_record=self.max_record), run))
            return self._read(state)

    def runs(self) -> list[str]:
        with self._lock:
            return sorted(r for r, tags in self._data.items() if tags)

    def problems(self, runs: Iterable[str] | None = None) -> list[Problem]:
        """One per trouble in a file (of these runs, if given), by file: path, byte offset, message."""
        with self._lock:
            wanted = None if runs is None else set(runs)
            return [p for (path, _), p in sorted(self._problems.items())
                    if wanted is None or self._files[Path(path)].run in wanted]

    @classmethod
    def read_once(cls, path: str | os.PathLike, strict: bool):
        """A store of one event file (its run is ".") or of a folder's runs, read to the end, for
        the one-shot readers; strict: raise its first Problem (Problem.error()) if it has one."""
        path = Path(path)
        store = cls(path if path.is_dir() else path.parent, stale_after=float("inf"))
        if path.is_dir():
            store.refresh()
        elif path.is_file():
            store.add_file(path, ".")
        else:
            raise FileNotFoundError(f"{str(path)!r} is neither an event file nor a folder")
        problems = store.problems()
        if strict and problems:
            raise problems[0].error()
        return store

    # -- for subclasses --
    def _in_write_order(self, entry) -> list:
        """An entry's records in write order: a run's files in name order, each file's in file order."""
        return [r for f in sorted(entry.by_file, key=_file_order) for r in entry.by_file[f]]

    def _take(self, run: str, key: str, at: int, ev, value, kind: str) -> int:
        """Keep what the store wants of one summary value (`kind`: its oneof field, never
        simple_value) of Event `ev` at byte `at` of file `key`; how many records it kept. A value it
        cannot decode raises ValueError, which becomes the file's "decode" Problem."""
        raise NotImplementedError

    def _dropped(self, entry, records: list) -> None:
        """`records` of `entry` were dropped (their file was replaced): undo what keeping them did."""

    # -- internals --
    def _read(self, state: TailedFile) -> int:
        return read_new(state, self._problems, lambda records: self._ingest(state, records),
                        lambda: self._forget(state), self.stale_after, self.not_shown)

    def _forget(self, state: TailedFile) -> None:
        key = str(state.reader.path)
        for entry in self._data.get(state.run, {}).values():
            self._dropped(entry, entry.by_file.pop(key, []))
        state.reader.offset, state.broken_at = 0, None
        for kind in self.problem_kinds:
            self._problems.pop((key, kind), None)

    def _ingest(self, state: TailedFile, records: list[Record]) -> int:
        """The store's records of `records` (from state.reader.frames()); a bad one becomes a Problem."""
        from tensorboard.compat.proto import event_pb2  # protobufs only; never imports TensorFlow

        found, run, key = 0, state.run, str(state.reader.path)
        for at, length, data in records:
            if data is None:
                self._problems[(key, "decode")] = Problem.too_big(key, at, length, self.max_record, self.event_name)
                continue
            ev = event_pb2.Event()
            try:
                ev.ParseFromString(data)
            except Exception:  # noqa: BLE001  (protobuf's DecodeError; the CRC was fine, the payload is not)
                self._problems[(key, "decode")] = Problem(key, at, "holds a record that is not an Event")
                continue
            if not ev.HasField("summary"):
                continue
            for v in ev.summary.value:
                kind = v.WhichOneof("value")
                if kind == "simple_value":  # the common case, a tensorboardX scalar: skip it fast
                    continue
                if v.HasField("metadata") and v.metadata.plugin_data.plugin_name:
                    # TF writes a tag's metadata with its first value only, so remember it per run
                    self._plugins.setdefault((run, v.tag), v.metadata.plugin_data.plugin_name)
                try:
                    found += self._take(run, key, at, ev, v, kind)
                except ValueError as e:
                    self._problems[(key, "decode")] = Problem(key, at, f"tag {v.tag!r}: {e}")
        return found
