"""Histograms from event files, both encodings, in one columnar form, read incrementally.

Two writers, two encodings, one result: every histogram becomes `edges` (float64, k+1, ascending)
and `counts` (float64, k), bucket i covering [edges[i], edges[i+1]]; a zero-width bucket is a point
mass. Empty leading/trailing buckets are dropped, so edges[0] and edges[-1] are the observed min/max
where the writer recorded them. An empty histogram (no values) has k = 0 and edges of length 0.

- tensorboardX / torch.utils.tensorboard / TF1 write `Summary.Value.histo` (HistogramProto): bucket i
  covers (bucket_limit[i-1], bucket_limit[i]], the first bucket's left edge is `min`. Their default
  bins are exponential (±1e-12 * 1.1**n, TF1 adds ±DBL_MAX), so outer edges lie far outside the
  data: they are clipped to min/max (an all-zero bias becomes a point mass at 0).
- TF2's tf.summary.histogram writes a `tensor` [k, 3] = (left edge, right edge, count), plugin
  "histograms"; a single value gives k buckets [v, v] with the count in the last.

Re-binning, distribution bands and the rest of the maths on this form are in twinboard.histograms.maths.
"""
from __future__ import annotations

import math
import os
from dataclasses import dataclass, field
from typing import Iterable

import numpy as np
import pandas as pd

from twinboard.events.growing import GrowingStore

PLUGIN = "histograms"
# What one histogram may hold, checked before anything is allocated: writers use 30 (TF2) to ~1,550
# (TF1/tensorboardX exponential) buckets, so these only stop crafted records.
MAX_BUCKETS = 100_000
MAX_RECORD = 32 << 20  # bytes of one event this reader parses; bigger ones (graphs?) are passed over
_EMPTY = np.zeros(0)
_DTYPES = {1: "<f4", 2: "<f8", 19: "<f2"}  # DT_FLOAT, DT_DOUBLE, DT_HALF


# --- decoding ----------------------------------------------------------------------------------
def trim(edges: np.ndarray, counts: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """Drop empty leading and trailing buckets (k+1 edges, k counts in; the same shape out)."""
    nz = np.flatnonzero(counts > 0)
    if nz.size == 0:
        return _EMPTY, _EMPTY
    i, j = nz[0], nz[-1] + 1
    return edges[i:j + 1].copy(), counts[i:j].copy()


def from_histo(histo) -> tuple[np.ndarray, np.ndarray]:
    """A HistogramProto (tensorboardX, torch.utils.tensorboard, TF1) as (edges, counts)."""
    if max(len(histo.bucket_limit), len(histo.bucket)) > MAX_BUCKETS:
        raise ValueError(f"histogram has {max(len(histo.bucket_limit), len(histo.bucket))} buckets, "
                         f"over the cap of {MAX_BUCKETS}")
    limits = np.asarray(histo.bucket_limit, dtype=np.float64)
    counts = np.asarray(histo.bucket, dtype=np.float64)
    k = min(limits.size, counts.size)
    if k == 0:
        return _EMPTY, _EMPTY
    limits, counts = limits[:k], counts[:k]
    first = histo.min if histo.min <= limits[0] else limits[0]  # inconsistent min: zero width
    edges, counts = trim(np.concatenate([[first], limits]), counts)
    if counts.size == 0:
        return edges, counts
    lo, hi = histo.min, histo.max
    # Clip the far-out writer edges to the data, when min/max agree with the buckets they fall in.
    if lo <= hi and edges[0] <= lo <= edges[1] and edges[-2] <= hi <= edges[-1]:
        edges = np.clip(edges, lo, hi)
    return _finite(edges), counts


def from_buckets(array: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """TF2's [k, 3] (left, right, count) tensor as (edges, counts); gaps become empty buckets."""
    a = np.asarray(array, dtype=np.float64)
    if a.ndim != 2 or a.shape[1] != 3:
        raise ValueError(f"histogram tensor has shape {list(a.shape)}, expected [k, 3]")
    if a.shape[0] > MAX_BUCKETS:
        raise ValueError(f"histogram has {a.shape[0]} buckets, over the cap of {MAX_BUCKETS}")
    nz = np.flatnonzero(a[:, 2] > 0)
    if nz.size == 0:
        return _EMPTY, _EMPTY
    a = a[nz[0]:nz[-1] + 1]
    left, right, counts = a[:, 0], a[:, 1], a[:, 2]
    if np.array_equal(left[1:], right[:-1]):
        edges = np.concatenate([left[:1], right])
    else:  # not contiguous (hand-made data): insert empty buckets in gaps, clamp overlaps
        e, c = [left[0]], []
        for lft, rgt, n in zip(left, right, counts):
            if lft > e[-1]:
                e.append(lft), c.append(0.0)
            e.append(max(rgt, e[-1])), c.append(n)
        edges, counts = np.asarray(e), np.asarray(c)
    return _finite(edges), counts.copy()


def _finite(edges: np.ndarray) -> np.ndarray:
    if edges.size and not np.isfinite(edges[[0, -1]]).all():
        fin = edges[np.isfinite(edges)]
        edges = np.clip(edges, fin.min(), fin.max()) if fin.size else np.zeros_like(edges)
    return edges


def tensor_to_array(t, max_values: int = 3 * MAX_BUCKETS) -> np.ndarray:
    """A TensorProto of float/double/half as an ndarray, without TensorFlow. The shape it claims is
    checked against `max_values` and against the values really there before anything is allocated
    (a 77-byte record may claim [10**12, 3])."""
    shape = [int(d.size) for d in t.tensor_shape.dim]
    if t.dtype not in _DTYPES:
        raise ValueError(f"histogram tensor has dtype enum {t.dtype}, expected float/double/half")
    if any(d < 0 for d in shape):
        raise ValueError(f"histogram tensor has shape {shape}, with an unknown size")
    n = math.prod(shape)  # Python ints: no overflow whatever the dims
    if n > max_values:
        raise ValueError(f"histogram tensor claims shape {shape} ({n} values), over the cap of {max_values}")
    if t.tensor_content:
        width = np.dtype(_DTYPES[t.dtype]).itemsize
        if len(t.tensor_content) != n * width:
            raise ValueError(f"histogram tensor holds {len(t.tensor_content)} bytes for shape {shape} "
                             f"({n * width} expected)")
        a = np.frombuffer(t.tensor_content, dtype=_DTYPES[t.dtype]).astype(np.float64)
    else:
        vals = t.half_val if t.dtype == 19 else t.double_val if t.dtype == 2 else t.float_val
        if len(vals) > n:
            raise ValueError(f"histogram tensor holds {len(vals)} values for shape {shape}")
        a = np.asarray(vals, dtype=np.uint16).view(np.float16) if t.dtype == 19 else np.asarray(vals)
        a = a.astype(np.float64)
    if 0 < a.size < n:  # TF's short form: the last value repeats (n is within the cap)
        a = np.concatenate([a, np.full(n - a.size, a[-1])])
    if a.size != n:
        raise ValueError(f"histogram tensor holds {a.size} values for shape {shape}")
    return a.reshape(shape)


# --- the incremental store --------------------------------------------------------------------
@dataclass
class HistogramSeries:
    """One tag of one run in write order, not sorted by step: a step logged twice (a restarted run)
    appears twice, the older first (the policy: `twinboard.events`)."""
    steps: np.ndarray  # int64 (n,)
    wall_times: np.ndarray  # float64 (n,), unix seconds
    edges: list[np.ndarray]  # n arrays of k_i + 1 edges (k_i may differ by step)
    counts: list[np.ndarray]  # n arrays of k_i counts

    def __len__(self) -> int:
        return len(self.steps)


Row = tuple[int, float, np.ndarray, np.ndarray]  # step, wall_time, edges, counts


@dataclass
class _Tag:
    by_file: dict[str, list[Row]] = field(default_factory=dict)  # event file -> its rows, in file order
    cached: HistogramSeries | None = None


class HistogramStore(GrowingStore):
    """Every histogram under a logdir, read incrementally: `refresh()` reads only appended bytes.

    Thread-safe (one store may be shared by every browser session). A complete record with a bad
    CRC stops that file at the last good record and is reported by `problems()`; so is a file that
    ends in an incomplete record and has not been written for `stale_after` seconds. A step logged
    twice is kept twice, in write order (see `twinboard.events`). The reading: GrowingStore.
    """

    max_record, event_name, not_shown = MAX_RECORD, "histogram event", "histograms after it are not shown"

    def tags(self, run: str) -> list[str]:
        with self._lock:
            return sorted(self._data.get(run, {}))

    def get(self, run: str, tag: str) -> HistogramSeries:
        with self._lock:
            entry = self._data.get(run, {}).get(tag)
            if entry is None:
                return HistogramSeries(np.zeros(0, np.int64), np.zeros(0), [], [])
            if entry.cached is None:
                rows = self._in_write_order(entry)
                entry.cached = HistogramSeries(np.array([r[0] for r in rows], np.int64),
                                               np.array([r[1] for r in rows], np.float64),
                                               [r[2] for r in rows], [r[3] for r in rows])
            return entry.cached

    def frame(self, runs: Iterable[str] | None = None) -> pd.DataFrame:
        """Columnar: run, tag, step, wall_time, edges, counts (one row per histogram)."""
        rows = []
        for run in (self.runs() if runs is None else runs):
            for tag in self.tags(run):
                s = self.get(run, tag)
                rows += [(run, tag, int(st), float(w), e, c)
                         for st, w, e, c in zip(s.steps, s.wall_times, s.edges, s.counts)]
        return pd.DataFrame(rows, columns=["run", "tag", "step", "wall_time", "edges", "counts"])

    # -- internals --
    def _dropped(self, entry: _Tag, records: list[Row]) -> None:
        entry.cached = None

    def _take(self, run: str, key: str, at: int, ev, value, kind: str) -> int:
        """A histogram of either encoding becomes a row of its tag; other values are passed over."""
        if kind == "histo":
            edges, counts = from_histo(value.histo)
        elif kind == "tensor" and self._plugins.get((run, value.tag)) == PLUGIN:
            edges, counts = from_buckets(tensor_to_array(value.tensor))
        else:
            return 0
        tag = self._data.setdefault(run, {}).setdefault(value.tag, _Tag())
        tag.by_file.setdefault(key, []).append((int(ev.step), float(ev.wall_time), edges, counts))
        tag.cached = None
        return 1


def read_histograms(path: str | os.PathLike, strict: bool = True) -> pd.DataFrame:
    """Every histogram in an event file, or under a folder (runs named relative to it; a file's
    own run is "."). DataFrame[run, tag, step, wall_time, edges (k+1), counts (k)].

    strict: raise CorruptRecordError (naming the file and the byte) on a damaged file; else keep
    what is readable and list the trouble (Problems) in `df.attrs["problems"]`. A half-written last
    record is never an error.
    """
    store = HistogramStore.read_once(path, strict)
    df = store.frame()
    df.attrs["problems"] = store.problems()
    return df
