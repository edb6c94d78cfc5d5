"""Maths on histograms in Twinboard's columnar form (`edges` k+1 ascending, `counts` k; see
twinboard.histograms): re-binning onto common edges, TensorBoard's distribution bands, sampling
steps, and grouping tags by layer. Pure functions: arrays in, arrays or DataFrames out.
"""
from __future__ import annotations

import re
from typing import TYPE_CHECKING, Iterable

import numpy as np
import pandas as pd

if TYPE_CHECKING:
    from twinboard.histograms.reader import HistogramSeries

# TensorBoard's distribution dashboard: normal CDF at (-inf, -1.5, -1, -0.5, 0, 0.5, 1, 1.5, inf) sd.
BASIS_POINTS = (0, 668, 1587, 3085, 5000, 6915, 8413, 9332, 10000)


def rebin(edges: np.ndarray, counts: np.ndarray, new_edges: np.ndarray) -> np.ndarray:
    """Counts on `new_edges` (m+1 ascending) from (edges, counts), preserving counts.

    Each source bucket's count is spread over the target buckets in proportion to overlap (uniform
    density within a bucket); a zero-width bucket goes whole to the target bucket holding it (the
    last target bucket is closed on the right). Mass outside [new_edges[0], new_edges[-1]] is lost,
    so pass edges that cover the data (`common_edges`) when the total must be kept.
    """
    t = np.asarray(new_edges, dtype=np.float64)
    e = np.asarray(edges, dtype=np.float64)
    c = np.asarray(counts, dtype=np.float64)
    out = np.zeros(max(t.size - 1, 0))
    if c.size == 0 or out.size == 0:
        return out
    left, width = e[:-1], np.diff(e)
    wide = width > 0
    if wide.any():  # share of each source bucket lying below each target edge: (k, m+1)
        below = np.clip((t[None, :] - left[wide, None]) / width[wide, None], 0.0, 1.0)
        out += c[wide] @ np.diff(below, axis=1)
    if not wide.all():
        points = left[~wide]
        idx = np.searchsorted(t, points, side="right") - 1
        idx[points == t[-1]] = out.size - 1
        inside = (idx >= 0) & (idx < out.size)
        np.add.at(out, idx[inside], c[~wide][inside])
    return out


def common_edges(edge_arrays: Iterable[np.ndarray], buckets: int = 30) -> np.ndarray:
    """`buckets` equal-width buckets spanning every histogram given (a unit span when all are
    one point), so `rebin` onto them keeps every count."""
    spans = [(e[0], e[-1]) for e in edge_arrays if len(e)]
    if not spans:
        return np.linspace(-0.5, 0.5, buckets + 1)
    lo, hi = min(s[0] for s in spans), max(s[1] for s in spans)
    if hi <= lo:
        pad = 0.5 * max(abs(lo), 1.0) * 0.1
        lo, hi = lo - pad, hi + pad
    return np.linspace(lo, hi, buckets + 1)


def compress(edges: np.ndarray, counts: np.ndarray, bps=BASIS_POINTS) -> np.ndarray:
    """Values at basis points (1/100 %), TensorBoard's `compress_histogram` exactly: linear
    interpolation within the bucket where the cumulative weight crosses each basis point."""
    counts = np.asarray(counts, dtype=np.float64)
    if counts.size == 0 or counts.sum() <= 0:
        return np.zeros(len(bps))
    minmin, maxmax = edges[0], edges[-1]
    right = edges[1:]
    weights = (counts * bps[-1] / counts.sum()).cumsum()
    out: list[float] = []
    j = 0
    while j < len(bps):
        i = int(np.searchsorted(weights, bps[j], side="right"))
        while i < len(weights):
            cum, prev = weights[i], (weights[i - 1] if i > 0 else 0.0)
            if cum == prev:
                i += 1
                continue
            lhs = minmin if (not i or not prev) else max(right[i - 1], minmin)
            rhs = min(right[i], maxmax)
            out.append(lhs + (bps[j] - prev) * float(rhs - lhs) / (cum - prev))
            j += 1
            break
        else:
            break
    out += [maxmax] * (len(bps) - j)
    return np.asarray(out, dtype=np.float64)


def distribution(series: HistogramSeries, bps=BASIS_POINTS) -> pd.DataFrame:
    """One row per step: `step`, then the value at each basis point (columns named by bp)."""
    rows = [compress(e, c, bps) for e, c in zip(series.edges, series.counts) if len(c)]
    steps = [s for s, c in zip(series.steps, series.counts) if len(c)]
    df = pd.DataFrame(np.asarray(rows).reshape(len(rows), len(bps)), columns=list(bps))
    df.insert(0, "step", np.asarray(steps, dtype=np.int64))
    return df


def sample_indices(n: int, cap: int) -> np.ndarray:
    """At most `cap` indices into n items, evenly spread, first and last always kept."""
    if n <= cap:
        return np.arange(n)
    return np.unique(np.linspace(0, n - 1, max(cap, 2)).round().astype(int))


def nearest_step(steps: np.ndarray, target: int) -> int | None:
    """The logged step closest to `target` (the smaller one on a tie); None when nothing is logged.
    `steps` in any order: a series is in write order, not sorted (twinboard.events)."""
    if len(steps) == 0:
        return None
    steps = np.asarray(steps)
    distance = np.abs(steps - target)
    return int(steps[distance == distance.min()].min())


def nearest_index(steps: np.ndarray, target: int) -> int | None:
    """Index of the record at `nearest_step(steps, target)`: of a step logged twice (a restarted
    run), the one written last. None when nothing is logged."""
    near = nearest_step(steps, target)
    return None if near is None else int(np.flatnonzero(np.asarray(steps) == near)[-1])


_LAYERED = re.compile(r"^(weights|grads)/(.+)/([^/]+)$")


def layer_of(tag: str) -> str:
    """`weights/dense0/kernel` -> `dense0`; anything else is grouped by its first path part."""
    m = _LAYERED.match(tag)
    if m:
        return m.group(2)
    return tag.split("/", 1)[0] if "/" in tag else "(other)"
