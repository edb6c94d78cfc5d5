"""The values both trainers compute the same way, in numpy, whatever the framework: histogram
buckets (tf.summary.histogram's rule) and accuracy/train of held steps.

The same code on both sides, so a difference between the two runs' histograms or accuracies is
the training's, never the bookkeeping's. Imports numpy only.
"""
from __future__ import annotations

import numpy as np


# --- histograms ----------------------------------------------------------------------------------
HISTOGRAM_BINS = 30  # equal-width bins over [min, max], as tf.summary.histogram's default


def finite_values(values: np.ndarray) -> np.ndarray:
    """Flattened, non-finite values dropped: a diverged run must not die writing a histogram."""
    flat = np.asarray(values).reshape(-1)
    return flat if np.isfinite(flat).all() else flat[np.isfinite(flat)]


def histogram_buckets(values: np.ndarray, k: int = HISTOGRAM_BINS) -> np.ndarray:
    """[k, 3] float64 rows (left edge, right edge, count) for one array; see histogram_many."""
    return histogram_many([values], k)[0][0]


def histogram_many(arrays: list[np.ndarray], k: int = HISTOGRAM_BINS) -> tuple[np.ndarray, np.ndarray]:
    """Buckets of several arrays at once: ([n, k, 3] (left edge, right edge, count), [n, 3] (num,
    sum, sum of squares)). tf.summary.histogram's format and rule (tensorboard.plugins.histogram.
    summary_v2._buckets): k equal-width buckets over [min, max], bucket floor((x - min) / width)
    with the maximum clamped into the last; one distinct value v gives edges v and every count in
    the last bucket; no values gives zeros. Non-finite values are dropped (a diverged run must not
    die writing a histogram). Vectorised over the arrays: one histogram step writes ~24 of them."""
    flats = [finite_values(a).astype(np.float64, copy=False) for a in arrays]
    n = len(flats)
    sizes = np.array([f.size for f in flats])
    out, stats = np.zeros((n, k, 3)), np.zeros((n, 3))
    full = np.flatnonzero(sizes)
    if not full.size:
        return out, stats
    v = np.concatenate([flats[i] for i in full])
    starts = np.concatenate([[0], np.cumsum(sizes[full])[:-1]])
    lo, hi = np.minimum.reduceat(v, starts), np.maximum.reduceat(v, starts)
    seg = np.repeat(np.arange(full.size), sizes[full])
    width = np.where(hi > lo, (hi - lo) / k, 1.0)
    idx = np.floor((v - lo[seg]) / width[seg]).astype(np.intp)
    np.clip(idx, 0, k - 1, out=idx)
    counts = np.bincount(seg * k + idx, minlength=full.size * k).reshape(full.size, k).astype(np.float64)
    edges = lo[:, None] + (hi - lo)[:, None] * (np.arange(k + 1) / k)[None, :]
    edges[:, -1] = hi
    single = hi == lo
    edges[single] = hi[single, None]
    counts[single] = 0.0
    counts[single, -1] = sizes[full][single]
    out[full, :, 0], out[full, :, 1], out[full, :, 2] = edges[:, :-1], edges[:, 1:], counts
    stats[full, 0] = sizes[full]
    stats[full, 1] = np.add.reduceat(v, starts)
    stats[full, 2] = np.add.reduceat(v * v, starts)
    return out, stats


# --- accuracy of held steps ----------------------------------------------------------------------
def batch_accuracies(pred: np.ndarray, labels: np.ndarray, sizes: list[int]) -> list[float]:
    """accuracy/train of several held steps at once: `pred` the argmax of their concatenated logits
    (the first maximum wins a tie, in numpy, torch and TF alike), `labels` their concatenated
    targets, `sizes` each step's batch size; hits / batch size in float64. Computed at a flush: an
    argmax per step in the loop costs ~18 us."""
    correct = np.asarray(pred) == labels
    if len(set(sizes)) == 1:  # always, but for a spec whose batch is the whole set
        hits = np.count_nonzero(correct.reshape(len(sizes), sizes[0]), axis=1).tolist()
    else:
        ends = np.cumsum(sizes)
        hits = [np.count_nonzero(correct[e - n:e]) for e, n in zip(ends, sizes)]
    return [h / n for h, n in zip(hits, sizes)]
