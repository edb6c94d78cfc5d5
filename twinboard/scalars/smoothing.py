"""What gets drawn from a long, noisy scalar series: TensorBoard's smoothing, then a bounded sample.

Order matters and the pages keep it: smooth the *whole* series (so a zoomed view shows the same
smoothed values as the full one), slice to the visible step range, then downsample each series
that goes to the browser to at most `MAX_POINTS` points.
"""
from __future__ import annotations

import numpy as np
import pandas as pd
from tsdownsample import MinMaxLTTBDownsampler

MAX_POINTS = 2000  # per series sent to the browser (issue 7): plotly stays fast, the page stays small
MAX_SMOOTHING = 0.999  # TensorBoard's slider stops here; at 1 the EMA never moves off its start


def ema(values: np.ndarray, weight: float) -> np.ndarray:
    """TensorBoard's debiased exponential moving average (vz_line_chart2's `resmoothDataset`).

    For each finite value, in order: ``last = last * w + (1 - w) * value``, ``num_accum += 1``,
    ``smoothed = last / (1 - w ** num_accum)``. Non-finite values (NaN, +-inf) are passed through
    unchanged and do not count; a constant series is returned as is (TensorBoard #786);
    ``weight == 0`` is off.

    The loop is pandas' `ewm(alpha=1 - w, adjust=True)` over the finite values: its weights
    ``w**i / sum(w**i)`` are the same debiased EMA, computed in compiled code (100k points ~1 ms).
    """
    if not 0 <= weight < 1:
        raise ValueError(f"smoothing weight {weight!r} must be in [0, 1)")
    values = np.asarray(values, dtype=np.float64)
    out = values.copy()
    if weight == 0 or values.size == 0 or np.all(values == values[0]):
        return out
    finite = np.isfinite(values)
    if finite.all():  # the usual case: no masking copies (100k points: ~2.5 ms instead of ~4)
        return pd.Series(values).ewm(alpha=1.0 - weight, adjust=True).mean().to_numpy()
    if finite.any():
        out[finite] = pd.Series(values[finite]).ewm(alpha=1.0 - weight, adjust=True).mean().to_numpy()
    return out


def _nonfinite_run_starts(y: np.ndarray) -> np.ndarray:
    """Index of the first point of every run of non-finite values (where a curve breaks off)."""
    bad = ~np.isfinite(y)
    starts = bad & ~np.concatenate(([False], bad[:-1]))
    return np.flatnonzero(starts)


def downsample(x: np.ndarray, y: np.ndarray, n_out: int = MAX_POINTS) -> np.ndarray:
    """Sorted indices of at most `n_out` points that keep the shape of y(x).

    MinMaxLTTB (tsdownsample) over the finite points, plus, always: the first and the last point,
    the global minimum and maximum, and the first point of each stretch of NaN/inf (so a diverged
    run still shows where it broke; at most a tenth of the budget goes to those). `x` should be
    non-decreasing (steps); when it is not (a restarted run) the point order stands in for it.
    """
    x = np.asarray(x)
    y = np.asarray(y, dtype=np.float64)
    n = y.size
    if n_out < 1:
        raise ValueError(f"n_out={n_out!r}: must be >= 1")
    if n <= n_out:
        return np.arange(n)
    mask = np.isfinite(y)
    if mask.all():  # the usual case: positions are indices, no copies of x and y (~3x faster)
        finite, breaks = None, np.empty(0, np.int64)
        extremes = [0, n - 1, int(np.argmin(y)), int(np.argmax(y))]
    else:
        finite = np.flatnonzero(mask)
        breaks = _nonfinite_run_starts(y)
        if breaks.size > n_out // 10:
            breaks = breaks[np.linspace(0, breaks.size - 1, max(n_out // 10, 1)).astype(np.int64)]
        extremes = [0, n - 1]
        if finite.size:
            fy = y[finite]
            extremes += [int(finite[np.argmin(fy)]), int(finite[np.argmax(fy)])]
    # Compulsory points in priority order (a budget of 1-4 keeps the first ones).
    must = list(dict.fromkeys([*extremes, *breaks.tolist()]))
    if len(must) >= n_out:
        return np.sort(np.asarray(must[:n_out], dtype=np.int64))
    fixed = np.sort(np.asarray(must, dtype=np.int64))
    budget = n_out - fixed.size
    n_finite = n if finite is None else finite.size
    if n_finite <= budget:
        picked = np.arange(n) if finite is None else finite
    elif budget < 3:  # LTTB needs 3 (first, last, one bucket); take evenly spaced instead
        picked = np.linspace(0, n_finite - 1, budget).astype(np.int64)
        picked = picked if finite is None else finite[picked]
    else:
        fx = x if finite is None else x[finite]
        if fx.dtype.kind not in "iuf" or bool((fx[1:] < fx[:-1]).any()):
            fx = np.arange(n) if finite is None else finite  # positions stand in for a non-monotonic or odd-typed x
        fy = y if finite is None else y[finite]
        picked = MinMaxLTTBDownsampler().downsample(np.ascontiguousarray(fx), np.ascontiguousarray(fy),
                                                    n_out=budget).astype(np.int64)
        picked = picked if finite is None else finite[picked]
    return np.union1d(fixed, picked)  # <= fixed.size + budget == n_out
