"""twinboard.parity and parity_charts on hand-made series and settings: alignment, the relative
difference and its edge cases, where curves part, the tables, and the settings diff."""
from __future__ import annotations

import json
import math

import numpy as np
import pandas as pd
import pytest

from twinboard import parity
from twinboard.events import Series
from twinboard.scalars import MAX_POINTS


def series(steps, values) -> Series:
    return Series(np.asarray(steps, np.int64), np.zeros(len(steps)), np.asarray(values, np.float64))


# --- alignment -----------------------------------------------------------------------------------
def test_align_keeps_every_step_and_flags_the_missing_side():
    left = series([1, 2, 3, 4], [1.0, 2.0, 3.0, 4.0])
    right = series([1, 3, 4, 5], [1.0, 3.5, 4.0, 6.0])
    d = parity.differences(left, right)
    assert d["step"].tolist() == [1, 2, 3, 4, 5]
    assert d["has_left"].tolist() == [True, True, True, True, False]
    assert d["has_right"].tolist() == [True, False, True, True, True]
    assert np.isnan(d["rel_diff"][1]) and np.isnan(d["rel_diff"][4])  # absent: no difference
    assert d["rel_diff"].tolist()[0] == 0.0 and d["rel_diff"].tolist()[3] == 0.0
    assert d["rel_diff"][2] == pytest.approx(0.5 / 3.5)
    s = parity.summarize(d, tol=0.1)
    assert (s.compared, s.only_left, s.only_right, s.identical) == (3, 1, 1, 2)
    assert s.first_part == 3 and s.max_rel_step == 3 and s.final_step == 4 and s.final_rel == 0.0


def test_align_sorts_by_step_and_keeps_the_last_write_of_a_repeated_step():
    # A restarted run logs steps 2-3 again; the later writes win, even a NaN one.
    left = series([1, 2, 3, 2, 3], [1.0, 9.0, 9.0, 2.0, np.nan])
    right = series([3, 1, 2], [3.0, 1.0, 2.0])
    d = parity.align(left, right)
    assert d["step"].tolist() == [1, 2, 3]
    assert d["left"].tolist()[:2] == [1.0, 2.0] and np.isnan(d["left"][2])
    assert d["has_left"].all()  # logged a NaN: present, unlike a missing step


def test_align_of_empty_series():
    d = parity.differences(series([], []), series([1], [1.0]))
    s = parity.summarize(d, 1e-3)
    assert s.compared == 0 and s.first_part is None and math.isnan(s.max_rel) and s.final_step is None


# --- the relative difference ---------------------------------------------------------------------
def test_rel_diff_formula():
    a = np.array([1.0, 2.0, -2.0, 1e-3, 100.0])
    b = np.array([1.1, 2.0, 2.0, 2e-3, 99.0])
    expected = np.abs(a - b) / np.maximum(np.abs(a), np.abs(b))
    np.testing.assert_array_equal(parity.rel_diff(a, b), expected)
    np.testing.assert_array_equal(parity.rel_diff(b, a), expected)  # symmetric
    assert parity.rel_diff([1.0], [1.1])[0] == pytest.approx(0.1 / 1.1)
    assert parity.rel_diff([2.0], [-2.0])[0] == 2.0


def test_rel_diff_zero_and_tiny_values_use_the_floor():
    assert parity.rel_diff([0.0], [0.0])[0] == 0.0  # no 0/0
    assert parity.rel_diff([0.0], [1e-20])[0] == pytest.approx(1e-20 / parity.REL_FLOOR)
    assert parity.rel_diff([0.0], [1e-20], floor=1e-30)[0] == 1.0
    assert parity.rel_diff([0.0], [0.5])[0] == 1.0


def test_rel_diff_non_finite():
    nan, inf = np.nan, np.inf
    a = np.array([nan, nan, 1.0, inf, inf, inf])
    b = np.array([nan, 1.0, nan, inf, -inf, 1.0])
    r = parity.rel_diff(a, b)
    assert np.isnan(r[0])  # both NaN: nothing to say
    assert r[1] == inf and r[2] == inf  # one side diverged: parted
    assert r[3] == 0.0 and r[4] == inf and r[5] == inf
    ad = parity.abs_diff(a, b)
    assert np.isnan(ad[0]) and ad[1] == inf and ad[3] == 0.0


def test_first_part_skips_nan_and_counts_divergence():
    d = pd.DataFrame({"step": [10, 20, 30, 40], "rel_diff": [0.0, np.nan, 1e-3, 1.0]})
    assert parity.first_part(d, 1e-4) == 30
    assert parity.first_part(d, 1e-3) == 40  # strictly beyond the tolerance
    assert parity.first_part(d, 2.0) is None
    d.loc[1, "rel_diff"] = np.inf
    assert parity.first_part(d, 1e-4) == 20


def test_summary_counts_divergence_and_identical_steps():
    left = series([1, 2, 3, 4], [1.0, 1.0, np.nan, 2.0])
    right = series([1, 2, 3, 4], [1.0, 1.0 + 1e-9, 1.0, 2.0])
    s = parity.summarize(parity.differences(left, right), 1e-6)
    assert s.identical == 2 and s.diverged == 1 and s.first_part == 3
    assert s.max_rel == pytest.approx(1e-9 / (1 + 1e-9)) and s.max_rel_step == 2  # finite max


def test_choose_tag_prefers_float64_on_both_sides():
    assert parity.choose_tag({"loss/train", "loss/train_fp64"}, {"loss/train", "loss/train_fp64"}) \
        == "loss/train_fp64"
    assert parity.choose_tag({"loss/train", "loss/train_fp64"}, {"loss/train"}) == "loss/train"
    assert parity.choose_tag({"epoch_loss"}, {"loss/train"}) is None


def test_float32_limited():
    assert parity.float32_limited(np.float32([0.1, 2.3]).astype(np.float64))
    assert not parity.float32_limited(np.array([0.1, 2.3]))
    assert not parity.float32_limited(np.array([np.nan]))  # nothing to judge


# --- tables --------------------------------------------------------------------------------------
def test_final_metrics_last_value_per_side():
    left = {"loss/train": series([1, 2, 2], [3.0, 2.0, 1.0]), "accuracy/val": series([2], [0.5]),
            "perf/step_ms": series([1], [1.0]), "lr": series([1], [0.1]), "custom": series([5], [7.0])}
    right = {"loss/train": series([1, 2], [3.0, 1.5]), "loss/val": series([2], [0.9])}
    t = parity.final_metrics(left, right).set_index("metric")
    assert list(t.index) == ["loss/train", "loss/val", "accuracy/val", "custom"]  # no perf/*, no lr
    row = t.loc["loss/train"]
    assert (row.left_step, row.left, row.right, row.right_step) == (2, 1.0, 1.5, 2)
    assert row.abs_diff == 0.5 and row.rel_diff == pytest.approx(0.5 / 1.5)
    assert np.isnan(t.loc["loss/val", "left"]) and np.isnan(t.loc["loss/val", "rel_diff"])


def test_speed_table_medians_and_ratio():
    left = {"perf/step_ms": series([1, 2, 3], [100.0, 2.0, 2.0]),  # a slow first step: median ignores it
            "perf/samples_per_s": series([1, 2, 3], [320.0, 16000.0, 16000.0])}
    right = {"perf/step_ms": series([1, 2], [1.0, np.nan])}
    t = parity.speed_table(left, right).set_index("tag")
    assert t.loc["perf/step_ms", "left"] == 2.0 and t.loc["perf/step_ms", "right"] == 1.0
    assert t.loc["perf/step_ms", "ratio"] == 0.5 and t.loc["perf/step_ms", "points"] == "3 / 2"
    assert t.loc["perf/samples_per_s", "left"] == 16000.0
    assert np.isnan(t.loc["perf/samples_per_s", "right"]) and np.isnan(t.loc["perf/samples_per_s", "ratio"])
    assert parity.speed_table({}, {})["left"].isna().all()


def test_fmt():
    assert parity.fmt(float("nan")) == parity.MISSING and parity.fmt(None) == parity.MISSING
    assert parity.fmt(1 / 3, 3) == "0.333"


# --- settings ------------------------------------------------------------------------------------
TORCH = {
    "framework": "torch", "dtype": "float64", "seed": 0, "init": "native: kaiming_uniform(a=sqrt(5))",
    "threads": {"intra_op": 1, "inter_op": 1},
    "optimizer": {"name": "adam", "lr": 0.003, "betas": [0.9, 0.999], "eps": 1e-08, "amsgrad": False},
    "layers": [{"name": "dense0", "type": "Linear", "output_shape": [None, 64], "params": 4160},
               {"name": "out", "type": "Linear", "output_shape": [None, 10], "params": 650}],
    "only_torch": None,
}
KERAS = {
    "framework": "tensorflow", "dtype": "float64", "seed": 0, "init": "native: glorot_uniform, zeros",
    "threads": {"intra_op": 1, "inter_op": 1.0},  # 1 == 1.0: the same setting
    "optimizer": {"name": "adam", "lr": 0.003, "betas": [0.9, 0.999], "eps": 1e-07, "amsgrad": 0},
    "layers": [{"name": "dense0", "type": "Dense", "output_shape": [None, 64], "params": 4160},
               {"name": "out", "type": "Dense", "output_shape": [None, 10], "params": 650}],
    "only_keras": "x",
}


def test_flatten_dotted_keys():
    flat = parity.flatten(TORCH)
    assert flat["optimizer.eps"] == 1e-08 and flat["threads.intra_op"] == 1
    assert flat["optimizer.betas"] == [0.9, 0.999]  # a list of values is one setting
    assert flat["layers.dense0.type"] == "Linear" and flat["layers.out.output_shape"] == [None, 10]
    assert "layers.dense0.name" not in flat
    assert parity.flatten({"a": [{"x": 1}, {"x": 2}], "e": {}}) == {"a.0.x": 1, "a.1.x": 2, "e": {}}


def test_settings_diff_flags_exactly_the_differing_keys():
    d = parity.settings_diff(TORCH, KERAS)
    differing = set(d.loc[d["differs"], "setting"])
    assert differing == {"framework", "init", "optimizer.eps", "optimizer.amsgrad", "layers.dense0.type",
                         "layers.out.type", "only_torch", "only_keras"}  # False vs 0 differ; 1 vs 1.0 not
    rows = d.set_index("setting")
    assert rows.loc["only_torch", "left"] == "null" and rows.loc["only_torch", "right"] == parity.MISSING
    assert rows.loc["only_keras", "left"] == parity.MISSING and rows.loc["only_keras", "right"] == "x"
    assert rows.loc["optimizer.eps", ["left", "right"]].tolist() == ["1e-08", "1e-07"]
    assert rows.loc["optimizer.betas", "left"] == "[0.9, 0.999]"
    keys = list(d["setting"])  # a key only the right side has follows its predecessor there
    assert keys.index("only_keras") == keys.index("layers.out.params") + 1
    assert (d.loc[~d["differs"], ["effect", "why"]] == "").all().all()


def test_settings_diff_with_unknown_sides():
    d = parity.settings_diff(TORCH, None)
    assert not d["differs"].any() and (d["right"] == parity.MISSING).all()
    assert parity.settings_diff(None, None).empty


def test_explanations_name_the_defaults():
    d = parity.settings_diff(TORCH, KERAS)
    reasons = parity.why_they_differ(d)
    by_key = {k: r for r in reasons for k in r.keys}
    assert by_key["init"].effect == parity.NUMBERS and "glorot_uniform" in by_key["init"].text
    assert "1e-7" in by_key["optimizer.eps"].text
    assert by_key["layers.dense0.type"] is by_key["layers.out.type"]  # one line for both layers
    assert by_key["framework"].effect == parity.NAMING
    assert by_key["only_torch"].effect == parity.UNKNOWN_EFFECT[0]
    effects = [r.effect for r in reasons]
    assert effects == sorted(effects, key=parity.EFFECT_ORDER.index)  # most serious first
    # Context decides: float32 hyperparameters on one side only change the numbers.
    assert parity.explanation("optimizer.hyperparameter_dtype", "Python float (double)",
                              "float32 (Keras casts)")[0] == parity.NUMBERS
    assert parity.explanation("optimizer.hyperparameter_dtype", "Python float (double)",
                              "tf constants of the run dtype")[0] == parity.ROUNDING
    assert parity.explanation("data.n_train")[0] == parity.NOT_MATCHED


def test_read_settings(tmp_path):
    assert parity.read_settings(tmp_path) is None
    (tmp_path / "settings.json").write_text(json.dumps(TORCH))
    assert parity.read_settings(tmp_path) == TORCH
    (tmp_path / "settings.json").write_text("{not json")
    with pytest.raises(parity.SettingsError, match="not valid JSON"):
        parity.read_settings(tmp_path)
    (tmp_path / "settings.json").write_text("[1]")
    with pytest.raises(parity.SettingsError, match="not an object"):
        parity.read_settings(tmp_path)


# --- figures -------------------------------------------------------------------------------------
def test_difference_figure_survives_zero_nan_and_inf():
    left = series([1, 2, 3, 4, 5], [1.0, 1.0, np.nan, 0.0, 2.0])
    right = series([1, 2, 3, 4, 6], [1.0, 1.5, 1.0, 0.0, 2.0])
    d = parity.differences(left, right)
    fig = parity.difference_figure(d, "loss/train", 1e-6, parity.first_part(d, 1e-6))
    json.loads(fig.to_json())  # serialisable: no inf
    rel = fig.data[1].y
    assert rel[0] is None or np.isnan(rel[0])  # identical step: a gap on the log axis
    assert fig.layout.yaxis.type == "log" and fig.layout.yaxis2.type == "log"
    curves = parity.curves_figure(d, "loss/train", log_y=True)
    json.loads(curves.to_json())
    assert [len(t.x) for t in curves.data] == [5, 5]


def test_figures_send_at_most_max_points():
    n = 50_000
    steps = np.arange(1, n + 1)
    rng = np.random.default_rng(0)
    a = np.exp(-steps / n)
    d = parity.differences(series(steps, a), series(steps, a * (1 + rng.uniform(0, 1e-6, n))))
    fig = parity.difference_figure(d, "loss/train", 1e-7, parity.first_part(d, 1e-7))
    assert all(len(t.x) <= MAX_POINTS for t in fig.data)
    curves = parity.curves_figure(d, "loss/train")
    assert all(len(t.x) <= MAX_POINTS for t in curves.data)
