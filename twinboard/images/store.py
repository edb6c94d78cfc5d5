"""Images and PR curves from event files, read incrementally: `MediaStore` over a logdir, and the
one-shot `read_images` / `read_pr_curves`.

The store follows twinboard.histograms' HistogramStore: each refresh reads the bytes appended since
the last; a complete record with a bad CRC stops that file at the last good record; a file that
ends in an incomplete record and has not been written for `stale_after` seconds is reported as
truncated; a replaced file (another inode, or shorter) is read afresh; every record is kept in write
order, a repeated step twice (the policy: twinboard.events). Trouble is listed by `problems()`.

Memory: a record over MAX_RECORD is passed over unread; images are kept as their encoded bytes
(checked against formats' caps first) up to MAX_STORE_BYTES a store, past which further images are
left out and the first file that met the budget says so.
"""
from __future__ import annotations

import os
import threading
from collections.abc import Iterable
from dataclasses import dataclass, field
from pathlib import Path

import numpy as np
import pandas as pd

from twinboard.events import Problem, Record, RecordReader
from twinboard.events.growing import TailedFile, read_new, run_event_files
from twinboard.images import formats

MAX_RECORD = 64 << 20  # bytes of one event this reader parses
MAX_STORE_BYTES = 512 << 20  # encoded image bytes one store keeps


@dataclass(frozen=True)
class ImageRecord:
    step: int
    wall_time: float
    description: str
    pictures: tuple[formats.Picture, ...]


@dataclass(frozen=True)
class CurveRecord:
    step: int
    wall_time: float
    description: str
    data: np.ndarray  # float64 [6, T]: formats.PR_ROWS


_File = TailedFile


@dataclass
class _Tag:
    kind: str  # "images" or "pr_curves"
    by_file: dict[str, list] = field(default_factory=dict)  # event file -> its records, in file order


class MediaStore:
    """Every image and PR curve under a logdir, read incrementally; thread-safe (one store may be
    shared by every browser session)."""

    def __init__(self, logdir: str | os.PathLike, stale_after: float = 30.0, max_bytes: int = MAX_STORE_BYTES):
        self.logdir, self.stale_after, self.max_bytes = Path(logdir), stale_after, max_bytes
        self.bytes = 0
        self._files: dict[Path, _File] = {}
        self._data: dict[str, dict[str, _Tag]] = {}
        self._plugins: dict[tuple[str, str], str] = {}  # (run, tag) -> plugin, first seen
        self._described: dict[tuple[str, str], str] = {}  # (run, tag) -> description, latest seen
        self._problems: dict[tuple[str, str], Problem] = {}
        self._lock = threading.RLock()

    def refresh(self, runs: Iterable[str] | None = None) -> int:
        """Read what was appended since the last call (only these runs if given); new records."""
        with self._lock:
            found = 0
            for run, path in self._event_files(runs):
                state = self._files.get(path)
                if state is None:
                    state = self._files[path] = _File(RecordReader(path, max_record=MAX_RECORD), run)
                found += self._read(state)
            return found

    def add_file(self, path: str | os.PathLike, run: str) -> int:
        """Read one event file as (part of) `run`, outside the logdir walk."""
        with self._lock:
            path = Path(path)
            state = self._files.setdefault(path, _File(RecordReader(path, max_record=MAX_RECORD), run))
            return self._read(state)

    def tags(self, run: str, kind: str = formats.IMAGES_PLUGIN) -> list[str]:
        """The run's tags of one kind: formats.IMAGES_PLUGIN or formats.PR_PLUGIN."""
        with self._lock:
            return sorted(t for t, entry in self._data.get(run, {}).items() if entry.kind == kind)

    def runs(self) -> list[str]:
        with self._lock:
            return sorted(r for r, tags in self._data.items() if tags)

    def get(self, run: str, tag: str) -> list:
        """The tag's records (ImageRecord or CurveRecord) in write order: a run's files in name order."""
        with self._lock:
            entry = self._data.get(run, {}).get(tag)
            if entry is None:
                return []
            return [r for f in sorted(entry.by_file, key=lambda p: (os.path.basename(p), p)) for r in entry.by_file[f]]

    def problems(self, runs: Iterable[str] | None = None) -> list[Problem]:
        with self._lock:
            wanted = None if runs is None else set(runs)
            return [p for (path, _), p in sorted(self._problems.items())
                    if wanted is None or self._files[Path(path)].run in wanted]

    def images_frame(self, runs: Iterable[str] | None = None) -> pd.DataFrame:
        """One row an image: run, tag, step, wall_time, index, format, width, height, data, description."""
        rows = [(run, tag, r.step, r.wall_time, p.index, p.format, p.width, p.height, p.data, r.description)
                for run, tag, r in self._records(runs, formats.IMAGES_PLUGIN) for p in r.pictures]
        return pd.DataFrame(rows, columns=["run", "tag", "step", "wall_time", "index", "format", "width",
                                           "height", "data", "description"])

    def curves_frame(self, runs: Iterable[str] | None = None) -> pd.DataFrame:
        """One row a PR curve: run, tag, step, wall_time, thresholds, then tp, fp, tn, fn, precision,
        recall (float64 arrays of `thresholds` values, for thresholds 0 .. 1), description."""
        rows = [(run, tag, r.step, r.wall_time, r.data.shape[1], *r.data, r.description)
                for run, tag, r in self._records(runs, formats.PR_PLUGIN)]
        return pd.DataFrame(rows, columns=["run", "tag", "step", "wall_time", "thresholds", *formats.PR_ROWS,
                                           "description"])

    def _records(self, runs, kind: str):
        for run in (self.runs() if runs is None else runs):
            for tag in self.tags(run, kind):
                for r in self.get(run, tag):
                    yield run, tag, r

    # -- internals --
    def _event_files(self, runs: Iterable[str] | None) -> list[tuple[str, Path]]:
        return run_event_files(self.logdir, runs)

    def _read(self, state: _File) -> int:
        return read_new(state, self._problems, lambda records: self._ingest(state, records),
                        lambda: self._forget(state), self.stale_after, "images and PR curves after it are not shown")

    def _forget(self, state: _File) -> None:
        key = str(state.reader.path)
        for entry in self._data.get(state.run, {}).values():
            for r in entry.by_file.pop(key, []):
                self.bytes -= sum(len(p.data) for p in getattr(r, "pictures", ()))
        state.reader.offset, state.broken_at = 0, None
        for kind in ("corrupt", "truncated", "decode", "budget"):
            self._problems.pop((key, kind), None)

    def _ingest(self, state: _File, records: list[Record]) -> int:
        from tensorboard.compat.proto import event_pb2  # protobufs only; never imports TensorFlow

        found, run, key = 0, state.run, str(state.reader.path)
        for at, length, data in records:
            if data is None:
                self._problems[(key, "decode")] = Problem.too_big(key, at, length, MAX_RECORD, "image event")
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
                if v.HasField("metadata"):  # TF writes it with a tag's first value only; our trainers
                    # when the description changes: the plugin is the first's, the description the latest
                    if v.metadata.plugin_data.plugin_name:
                        self._plugins.setdefault((run, v.tag), v.metadata.plugin_data.plugin_name)
                    if v.metadata.summary_description:
                        self._described[(run, v.tag)] = v.metadata.summary_description
                plugin = self._plugins.get((run, v.tag), "")
                if kind != "image" and not (kind == "tensor" and plugin in (formats.IMAGES_PLUGIN, formats.PR_PLUGIN)):
                    continue
                try:
                    record = self._record(kind, plugin, int(ev.step), float(ev.wall_time),
                                          self._described.get((run, v.tag), ""), v)
                except ValueError as e:
                    self._problems[(key, "decode")] = Problem(key, at, f"tag {v.tag!r}: {e}")
                    continue
                if record is None:
                    self._problems[(key, "budget")] = Problem(
                        key, at, f"images past {self.max_bytes >> 20} MiB in memory are not kept (tag {v.tag!r} "
                                 "onwards)")
                    continue
                entry = self._data.setdefault(run, {}).setdefault(
                    v.tag, _Tag(formats.IMAGES_PLUGIN if isinstance(record, ImageRecord) else formats.PR_PLUGIN))
                entry.by_file.setdefault(key, []).append(record)
                found += 1
        return found

    def _record(self, kind: str, plugin: str, step: int, wall: float, description: str, value):
        """An ImageRecord or CurveRecord of the value; None when its images would pass the budget."""
        if kind == "image" or plugin == formats.IMAGES_PLUGIN:
            pictures = tuple(formats.pictures_of(value))
            size = sum(len(p.data) for p in pictures)
            if self.bytes + size > self.max_bytes:
                return None
            self.bytes += size
            return ImageRecord(step, wall, description, pictures)
        return CurveRecord(step, wall, description, formats.pr_curve_of(value))


def _one_shot(path: str | os.PathLike, strict: bool) -> MediaStore:
    path = Path(path)
    store = MediaStore(path if path.is_dir() else path.parent, stale_after=float("inf"))
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


def read_images(path: str | os.PathLike, strict: bool = True) -> pd.DataFrame:
    """Every image in an event file, or under a folder (runs named relative to it; a file's own run
    is "."): DataFrame[run, tag, step, wall_time, index, format, width, height, data (the encoded
    bytes), description], one row an image, in write order. Both encodings (formats).

    strict: raise the first problem as a CorruptRecordError naming the file and the byte (a damaged
    record, or an image over formats' caps, with the reason); else keep what is readable and list
    the Problems in `df.attrs["problems"]`. A half-written last record is never an error."""
    store = _one_shot(path, strict)
    df = store.images_frame()
    df.attrs["problems"] = store.problems()
    return df


def read_pr_curves(path: str | os.PathLike, strict: bool = True) -> pd.DataFrame:
    """Every PR curve in an event file or under a folder: DataFrame[run, tag, step, wall_time,
    thresholds, tp, fp, tn, fn, precision, recall, description]; `strict` as read_images."""
    store = _one_shot(path, strict)
    df = store.curves_frame()
    df.attrs["problems"] = store.problems()
    return df
