"""Maths on histograms (twinboard.histmath), on generated data: re-binning keeps counts and means,
point masses land where TensorBoard puts them, the distribution compression matches percentiles.
Read-back from the real writers: test_histograms.py."""
from __future__ import annotations

import numpy as np
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from twinboard.histograms import BASIS_POINTS, common_edges, compress, layer_of, nearest_index, nearest_step, rebin, sample_indices


@st.composite
def histograms(draw):
    k = draw(st.integers(1, 40))
    widths = draw(st.lists(st.one_of(st.just(0.0), st.floats(1e-3, 10)), min_size=k, max_size=k))
    start = draw(st.floats(-100, 100))
    edges = start + np.concatenate([[0.0], np.cumsum(widths)])
    counts = np.asarray(draw(st.lists(st.integers(0, 10_000), min_size=k, max_size=k)), float)
    return edges, counts


@settings(max_examples=100, deadline=None)
@given(histograms(), st.integers(1, 80), st.floats(0, 5), st.floats(0, 5))
def test_rebin_preserves_total_and_mean(hist, m, pad_lo, pad_hi):
    edges, counts = hist
    target = np.linspace(edges[0] - pad_lo, edges[-1] + pad_hi + 1e-9, m + 1)
    out = rebin(edges, counts, target)
    assert out.shape == (m,) and np.all(out >= -1e-9)
    assert out.sum() == pytest.approx(counts.sum(), rel=1e-12, abs=1e-9)
    if counts.sum():
        src_mean = (counts * (edges[:-1] + edges[1:]) / 2).sum() / counts.sum()
        dst_mean = (out * (target[:-1] + target[1:]) / 2).sum() / out.sum()
        assert abs(src_mean - dst_mean) <= np.diff(target).max() / 2 + 1e-6 * (1 + abs(src_mean))


def test_rebin_on_common_edges_of_two_writers_keeps_both_totals():
    values = np.random.default_rng(3).normal(2.0, 0.5, 5000)
    a_counts, a_edges = np.histogram(values, bins=np.geomspace(1e-3, 10, 200))  # tbx-like, uneven
    b_counts, b_edges = np.histogram(values, bins=30)  # TF2-like
    edges = common_edges([a_edges, b_edges], 40)
    for e, c in ((a_edges, a_counts), (b_edges, b_counts)):
        out = rebin(e, c, edges)
        assert out.sum() == pytest.approx(c.sum(), rel=1e-12)
        mean = (out * (edges[:-1] + edges[1:]) / 2).sum() / out.sum()
        assert abs(mean - values[(values >= e[0]) & (values <= e[-1])].mean()) < np.diff(edges).max()


def test_rebin_point_masses_and_boundaries():
    edges = np.array([0.0, 1.0, 2.0, 3.0])
    # a point mass on an inner target edge goes right; on the last edge, into the last bucket
    assert rebin(np.array([1.0, 1.0]), np.array([5.0]), edges).tolist() == [0, 5, 0]
    assert rebin(np.array([3.0, 3.0]), np.array([5.0]), edges).tolist() == [0, 0, 5]
    assert rebin(np.array([0.5, 2.5]), np.array([4.0]), edges).tolist() == [1, 2, 1]
    assert rebin(np.array([]), np.array([]), edges).tolist() == [0, 0, 0]
    assert common_edges([np.array([2.0, 2.0])], 4)[[0, -1]].tolist() == pytest.approx([1.9, 2.1])


def test_compress_matches_numpy_percentiles_on_a_fine_histogram():
    values = np.random.default_rng(7).standard_normal(200_000)
    counts, edges = np.histogram(values, bins=2000)
    got = compress(edges, counts.astype(float))
    want = np.percentile(values, np.asarray(BASIS_POINTS) / 100)
    assert np.all(np.abs(got - want) <= np.diff(edges).max() + 1e-12)


def test_small_helpers():
    assert layer_of("weights/dense0/kernel") == "dense0" and layer_of("grads/out/bias") == "out"
    assert layer_of("misc/thing") == "misc"
    idx = sample_indices(120, 30)
    assert len(idx) == 30 and idx[0] == 0 and idx[-1] == 119 and np.all(np.diff(idx) > 0)
    assert sample_indices(5, 30).tolist() == [0, 1, 2, 3, 4]
    assert nearest_step(np.array([0, 10, 20]), 14) == 10 and nearest_step(np.array([0, 10]), 5) == 0
    assert nearest_step(np.array([], dtype=int), 3) is None
    restarted = np.array([0, 10, 20, 10, 20, 30])  # write order: a restart logged 10 and 20 again
    assert nearest_step(restarted, 14) == 10 and nearest_step(np.array([10, 0]), 5) == 0  # any order
    assert nearest_index(restarted, 14) == 3 and nearest_index(restarted, 21) == 4  # the later record
    assert nearest_index(np.array([], dtype=int), 3) is None
