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
from collections.abc import Iterable
from dataclasses import dataclass, field

import numpy as np
import pandas as pd

from twinboard.events import Problem
from twinboard.events.growing import GrowingStore
from twinboard.histograms.maths import nearest_index
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


@dataclass
class _Tag:
    kind: str  # "images" or "pr_curves"
    by_file: dict[str, list] = field(default_factory=dict)  # event file -> its records, in file order


class MediaStore(GrowingStore):
    """Every image and PR curve under a logdir, read incrementally; thread-safe (one store may be
    shared by every browser session). The reading: GrowingStore."""

    max_record, event_name = MAX_RECORD, "image event"
    not_shown = "images and PR curves after it are not shown"
    problem_kinds = (*GrowingStore.problem_kinds, "budget")

    def __init__(self, logdir: str | os.PathLike, stale_after: float = 30.0, max_bytes: int = MAX_STORE_BYTES):
        super().__init__(logdir, stale_after)
        self.max_bytes = max_bytes
        self.bytes = 0
        self._described: dict[tuple[str, str], str] = {}  # (run, tag) -> description, latest seen

    def tags(self, run: str, kind: str = formats.IMAGES_PLUGIN) -> list[str]:
        """The run's tags of one kind: formats.IMAGES_PLUGIN or formats.PR_PLUGIN."""
        with self._lock:
            return sorted(t for t, entry in self._data.get(run, {}).items() if entry.kind == kind)

    def get(self, run: str, tag: str) -> list:
        """The tag's records (ImageRecord or CurveRecord) in write order: a run's files in name order."""
        with self._lock:
            entry = self._data.get(run, {}).get(tag)
            return [] if entry is None else self._in_write_order(entry)

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
    def _dropped(self, entry: _Tag, records: list) -> None:
        self.bytes -= sum(len(p.data) for r in records for p in getattr(r, "pictures", ()))

    def _take(self, run: str, key: str, at: int, ev, value, kind: str) -> int:
        """An image (either encoding) or PR curve becomes a record of its tag, images while within
        the byte budget; other values are passed over."""
        if value.HasField("metadata") and value.metadata.summary_description:
            # our trainers write metadata again when the description changes: keep the latest
            self._described[(run, value.tag)] = value.metadata.summary_description
        plugin = self._plugins.get((run, value.tag), "")
        if kind != "image" and not (kind == "tensor" and plugin in (formats.IMAGES_PLUGIN, formats.PR_PLUGIN)):
            return 0
        record = self._record(kind, plugin, int(ev.step), float(ev.wall_time),
                              self._described.get((run, value.tag), ""), value)
        if record is None:
            self._problems[(key, "budget")] = Problem(
                key, at, f"images past {self.max_bytes >> 20} MiB in memory are not kept (tag {value.tag!r} "
                         "onwards)")
            return 0
        entry = self._data.setdefault(run, {}).setdefault(
            value.tag, _Tag(formats.IMAGES_PLUGIN if isinstance(record, ImageRecord) else formats.PR_PLUGIN))
        entry.by_file.setdefault(key, []).append(record)
        return 1

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


def nearest_record(records: list, step: int):
    """The record (an ImageRecord or CurveRecord of one tag) at the step nearest `step` (of a step
    logged twice, the last written), or None when there is none."""
    i = nearest_index(np.array([r.step for r in records], np.int64), step)
    return None if i is None else records[i]


def read_images(path: str | os.PathLike, strict: bool = True) -> pd.DataFrame:
    """Every image in an event file, or under a folder (runs named relative to it; a file's own run
    is "."): DataFrame[run, tag, step, wall_time, index, format, width, height, data (the encoded
    bytes), description], one row an image, in write order. Both encodings (formats).

    strict: raise the first problem as a CorruptRecordError naming the file and the byte (a damaged
    record, or an image over formats' caps, with the reason); else keep what is readable and list
    the Problems in `df.attrs["problems"]`. A half-written last record is never an error."""
    store = MediaStore.read_once(path, strict)
    df = store.images_frame()
    df.attrs["problems"] = store.problems()
    return df


def read_pr_curves(path: str | os.PathLike, strict: bool = True) -> pd.DataFrame:
    """Every PR curve in an event file or under a folder: DataFrame[run, tag, step, wall_time,
    thresholds, tp, fp, tn, fn, precision, recall, description]; `strict` as read_images."""
    store = MediaStore.read_once(path, strict)
    df = store.curves_frame()
    df.attrs["problems"] = store.problems()
    return df
