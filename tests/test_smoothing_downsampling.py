"""Smoothing against TensorBoard's own EMA, and downsampling that keeps endpoints, extremes and the
point where a run diverged (twinboard.scalars.smoothing). Figures: test_chart_figures.py."""
import math

import numpy as np
import pytest

from twinboard.scalars import MAX_POINTS, downsample, ema


def tensorboard_ema(values, w):
    """vz_line_chart2's resmoothDataset, transcribed line by line (the reference)."""
    last = 0.0 if len(values) else math.nan
    num_accum = 0
    is_constant = all(v == values[0] for v in values)
    out = []
    for v in values:
        if is_constant or not math.isfinite(v):
            out.append(v)
            continue
        last = last * w + (1 - w) * v
        num_accum += 1
        debias_weight = 1 - w ** num_accum if w != 1 else 1
        out.append(last / debias_weight)
    return out


# --- EMA -----------------------------------------------------------------------------------------
def test_ema_hand_computed():
    # w = 0.5 over [1, 2, 4]:
    #   last = 0.5            debias 0.5   -> 1
    #   last = 0.25 + 1 = 1.25  debias 0.75  -> 5/3
    #   last = 0.625 + 2 = 2.625 debias 0.875 -> 3
    np.testing.assert_allclose(ema(np.array([1.0, 2.0, 4.0]), 0.5), [1.0, 5 / 3, 3.0], rtol=1e-12)


def test_ema_passes_non_finite_through_and_counts_only_finite_points():
    values = [1.0, math.nan, 2.0, math.inf, 4.0, -math.inf]
    got = ema(np.array(values), 0.5)
    # NaN / inf in place; the finite ones smooth as if the others were not there
    assert math.isnan(got[1]) and got[3] == math.inf and got[5] == -math.inf
    np.testing.assert_allclose(got[[0, 2, 4]], [1.0, 5 / 3, 3.0], rtol=1e-12)
    np.testing.assert_allclose(got, tensorboard_ema(values, 0.5), rtol=1e-12)


@pytest.mark.parametrize("w", [0.0, 0.3, 0.6, 0.9, 0.99, 0.999])
def test_ema_matches_tensorboard_on_noisy_series(w):
    rng = np.random.default_rng(0)
    values = np.cumsum(rng.normal(size=3000)) + 100
    values[[5, 400, 401, 2999]] = [np.nan, np.inf, np.nan, -np.inf]
    np.testing.assert_allclose(ema(values, w), tensorboard_ema(values.tolist(), w), rtol=1e-9)


def test_ema_off_constant_and_empty():
    v = np.array([3.0, 1.0, 2.0])
    np.testing.assert_array_equal(ema(v, 0.0), v)
    np.testing.assert_array_equal(ema(np.full(5, 7.0), 0.9), np.full(5, 7.0))
    assert ema(np.array([]), 0.9).size == 0
    with pytest.raises(ValueError, match="1"):
        ema(v, 1.0)


# --- downsampling --------------------------------------------------------------------------------
def noisy(n, seed=0):
    rng = np.random.default_rng(seed)
    x = np.arange(n, dtype=np.int64) * 10
    y = np.sin(np.arange(n) / 5000) + rng.normal(scale=0.1, size=n)
    return x, y


@pytest.mark.parametrize("n", [2001, 10_000, 250_000])
def test_downsample_bound_endpoints_and_extremes(n):
    x, y = noisy(n)
    y[n // 3] = 50.0  # a spike LTTB alone might drop
    y[n // 2] = -50.0
    idx = downsample(x, y, MAX_POINTS)
    assert len(idx) <= MAX_POINTS
    assert len(idx) > MAX_POINTS * 0.9  # and it uses the budget
    assert np.all(np.diff(idx) > 0)
    assert idx[0] == 0 and idx[-1] == n - 1
    assert np.argmax(y) in idx and np.argmin(y) in idx


def test_downsample_short_series_is_untouched():
    x, y = noisy(1500)
    np.testing.assert_array_equal(downsample(x, y), np.arange(1500))


def test_downsample_keeps_where_a_run_diverged():
    x, y = noisy(50_000)
    y[30_000:] = np.nan
    idx = downsample(x, y, 500)
    assert len(idx) <= 500 and 30_000 in idx and idx[-1] == 49_999
    assert np.nanargmax(y) in idx and np.nanargmin(y) in idx


def test_downsample_tiny_budgets_and_unsorted_x():
    x, y = noisy(10_000)
    for k in (1, 2, 3, 4, 5, 10):
        idx = downsample(x, y, k)
        assert len(idx) <= k and idx[0] == 0
    x_restarted = np.concatenate([x[:5000], x[:5000]])  # a run that restarted from step 0
    idx = downsample(x_restarted, y, 1000)
    assert len(idx) <= 1000 and idx[-1] == 9999
