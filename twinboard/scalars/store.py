"""The scalars of the shown runs: incremental stores, one per folder, seen as one store of runs.

A page reads only the folders it shows (issue 7: a page over two runs of a big logdir reads and
holds two runs, not the logdir). Each folder's `LockedStore` is meant to be shared by every session
that shows it (the pages cache one per folder); a session's `RunStores` is its view of the folders
it shows now, with runs named as in the logdir (`<run-id>/torch`, `uploads/k/validation`): the
names tagmap's rules match.
"""
from __future__ import annotations

import os
import threading
from collections.abc import Callable
from pathlib import Path

from twinboard.events import ScalarStore, Series


class LockedStore:
    """A ScalarStore that threads may share: one call at a time. ScalarStore serialises its
    refreshes but not its queries, and a query that walks a run's tags while another session's
    refresh adds one would fail (Streamlit runs each session in a thread of its own)."""

    def __init__(self, folder: str | os.PathLike) -> None:
        self._store = ScalarStore(folder)
        self._lock = threading.Lock()

    def refresh(self) -> int:
        with self._lock:
            return self._store.refresh()

    def runs(self) -> list[str]:
        with self._lock:
            return self._store.runs()

    def tags(self, run: str) -> list[str]:
        with self._lock:
            return self._store.tags(run)

    def series(self, run: str, tag: str) -> Series:
        with self._lock:
            return self._store.series(run, tag)

    def problems(self) -> list[str]:
        with self._lock:
            return self._store.problems()


def join_run(folder: str, run: str) -> str:
    """The logdir name of `run` (a name inside the store of `folder`)."""
    return folder if run == "." else run if folder == "." else f"{folder}/{run}"


class RunStores:
    """Several folders' stores as one: runs by their logdir names. `open_store(path)` gives the store
    of a folder (its sub-folders included): a page passes one that returns the shared store."""

    def __init__(self, root: str | os.PathLike,
                 open_store: Callable[[Path], ScalarStore | LockedStore] = ScalarStore) -> None:
        self.root = Path(root)
        self.folders: list[str] = []  # what the last refresh read, posix relative to root
        self._open = open_store
        self._stores: dict[str, ScalarStore | LockedStore] = {}
        self._runs: dict[str, tuple[ScalarStore | LockedStore, str]] = {}  # run -> (its store, its name there)

    def refresh(self, folders: list[str] | None = None) -> int:
        """Read what is new in `folders` (default: the last ones); other folders' stores are let go
        (memory goes with what is shown). Returns the number of new points."""
        self.folders = list(self.folders if folders is None else folders)
        self._stores = {f: self._stores.get(f) or self._open(self.root / f) for f in self.folders}
        try:
            return sum(store.refresh() for store in self._stores.values())
        finally:
            self._runs = {join_run(f, run): (store, run) for f, store in self._stores.items()
                          for run in store.runs()}

    def runs(self) -> list[str]:
        return sorted(self._runs)

    def tags(self, run: str) -> list[str]:
        """The tags of `run`; none for a run the shown folders do not hold."""
        store, name = self._runs.get(run, (None, ""))
        return store.tags(name) if store else []

    def series(self, run: str, tag: str) -> Series:
        store, name = self._runs[run]
        return store.series(name, tag)

    def problems(self) -> list[str]:
        return [p for store in self._stores.values() for p in store.problems()]
