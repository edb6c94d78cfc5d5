"""twinboard.parity and parity_charts on hand-made series and settings: alignment, the relative
difference and its edge cases, where curves part, the tables, and the settings diff."""
from __future__ import annotations

import json
import math

import numpy as np
import pytest

from twinboard import parity
from twinboard.events import Series
from twinboard.scalars import MAX_POINTS
from twinboard.text import code


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
    s = parity.summarize(d, tol=parity.Tolerance(rtol=0.1, atol=0))
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
    s = parity.summarize(d, parity.Tolerance(1e-3, 0))
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


def rel(tol: float) -> parity.Tolerance:
    return parity.Tolerance(rtol=tol, atol=0.0)  # relative only: the rule before atol existed


def test_first_part_skips_nan_and_counts_divergence():
    left = series([10, 20, 30, 40], [1.0, np.nan, 1.0, 1.0])
    right = series([10, 20, 30, 40], [1.0, np.nan, 0.5, -1.0])  # relative 0.5 at 30, 2 at 40
    d = parity.differences(left, right)
    assert parity.first_part(d, rel(0.1)) == 30
    assert parity.first_part(d, rel(0.5)) == 40  # strictly beyond the tolerance
    assert parity.first_part(d, rel(2.0)) is None
    d = parity.differences(left, series([10, 20, 30, 40], [1.0, 1.0, 1.0, 1.0]))  # one side NaN at 20
    assert parity.first_part(d, rel(1e-4)) == 20
    assert parity.first_part(d, parity.Tolerance(rtol=0.1, atol=1e9)) == 20  # diverged: beyond any tolerance


def test_summary_counts_divergence_and_identical_steps():
    left = series([1, 2, 3, 4], [1.0, 1.0, np.nan, 2.0])
    right = series([1, 2, 3, 4], [1.0, 1.0 + 1e-9, 1.0, 2.0])
    s = parity.summarize(parity.differences(left, right), rel(1e-6))
    assert s.identical == 2 and s.diverged == 1 and s.first_part == 3
    assert s.max_rel == pytest.approx(1e-9 / (1 + 1e-9)) and s.max_rel_step == 2  # finite max


# --- the tolerance: |a - b| <= atol + rtol * max(|a|, |b|) ----------------------------------------
def test_a_loss_converging_near_1e6_does_not_part_with_an_absolute_floor():
    # A float32 loss decaying to ~1e-6; the other side differs by last digits: 3e-7 absolute near the
    # end, relative ~0.2. Relative-only says they part and reports a max relative difference near 1/4;
    # the allclose rule with float32's default atol (1e-5) says they agree.
    steps = np.arange(1, 201)
    a = 2.3 * np.exp(-steps / 14.0) + 1e-6
    b = a + np.where(steps > 150, 3e-7, 1e-7 * a)
    d = parity.differences(series(steps, a), series(steps, b))
    relative_only = parity.summarize(d, rel(1e-5))
    assert relative_only.first_part is not None and relative_only.max_rel > 0.1
    f32 = parity.DEFAULT_TOL["float32"]
    s = parity.summarize(d, f32)
    assert s.first_part is None and s.worst <= 1.0 and s.max_abs == pytest.approx(3e-7, rel=1e-6)
    # The first parting step follows the same rule: with atol below 3e-7 the tail parts, at step 151.
    tight = parity.Tolerance(rtol=1e-5, atol=1e-7)
    assert parity.first_part(d, tight) == 151
    share = parity.tolerance_share(d, tight)
    allowed = 1e-7 + 1e-5 * np.maximum(np.abs(a), np.abs(b))
    np.testing.assert_allclose(share, np.abs(a - b) / allowed, rtol=1e-9)
    # Symmetric: neither side is the reference.
    assert parity.first_part(parity.differences(series(steps, b), series(steps, a)), tight) == 151


def test_tolerance_edges_and_validation():
    tiny = 2.0 ** -40  # exact in binary: 2 + tiny - 2 == tiny
    d = parity.differences(series([1, 2, 3], [0.0, 1.0, 2.0]), series([1, 2, 3], [0.0, 1.0, 2.0 + tiny]))
    exact = parity.Tolerance(rtol=0, atol=0)
    assert parity.first_part(d, exact) == 3  # nothing allowed: any difference parts, equal steps do not
    assert parity.tolerance_share(d, exact)[:2].tolist() == [0.0, 0.0]
    assert parity.first_part(d, parity.Tolerance(0, tiny)) is None  # atol alone, inclusive
    assert parity.first_part(d, parity.Tolerance(0, tiny / 2)) == 3
    for bad in (-1e-5, float("nan"), float("inf"), "1e-5", True):
        with pytest.raises(ValueError, match=r"rtol=.*must be a finite number >= 0"):
            parity.Tolerance(rtol=bad, atol=0)
    with pytest.raises(ValueError, match="atol=-1"):
        parity.Tolerance(rtol=0, atol=-1)
    with pytest.raises(TypeError, match="Tolerance"):
        parity.summarize(d, 1e-5)  # a bare float would silently mean the old relative-only rule


def test_default_tolerances_per_precision_are_slider_stops():
    f32, f64 = parity.DEFAULT_TOL["float32"], parity.DEFAULT_TOL["float64"]
    assert (f32.rtol, f32.atol) == (1e-5, 1e-5) and (f64.rtol, f64.atol) == (1e-10, 1e-12)
    for t in (f32, f64):
        assert t.rtol in parity.RTOLS and t.atol in parity.ATOLS
    assert parity.ATOLS[0] == 0.0  # relative only, when asked for
    assert str(f32) == "rtol 1e-05, atol 1e-05"


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


# --- layout: NCHW against NHWC is the same model ---------------------------------------------------
def cnn_settings(framework: str, layout: str, conv1_shape: list, conv1_params: int = 1168) -> dict:
    return {"framework": framework, "dtype": "float32", "seed": 0, "data_layout": layout,
            "layers": [{"name": "conv0", "type": "Conv2d", "output_shape": [None, 8, 8, 8], "params": 80},
                       {"name": "conv1", "type": "Conv2d", "output_shape": conv1_shape, "params": conv1_params},
                       {"name": "dense0", "type": "Linear", "output_shape": [None, 32], "params": 32800}],
            "total_params": 34048 + conv1_params}


def test_a_layout_only_shape_difference_is_equal():
    # What the two trainers write for one matched CNN: torch NCHW [N, 16, 8, 8], Keras NHWC [N, 8, 8, 16].
    d = parity.settings_diff(cnn_settings("torch", "NCHW", [None, 16, 8, 8]),
                             cnn_settings("tensorflow", "NHWC", [None, 8, 8, 16])).set_index("setting")
    row = d.loc["layers.conv1.output_shape"]
    assert row["differs"] and row["effect"] == parity.LAYOUT  # shown, greyed: not a numbers difference
    assert "NCHW against NHWC" in row["why"]
    assert d.loc["data_layout", "effect"] == parity.LAYOUT
    reasons = parity.why_they_differ(d.reset_index())
    assert not [r for r in reasons if r.effect in (parity.NOT_MATCHED, parity.NUMBERS)]
    said = parity.verdict(reasons, None, (True, True))
    assert "built the same" in said.text and "not built" not in said.text
    assert "layout only" in parity.cosmetic_note(reasons).lower() and "conv1.output_shape" in parity.cosmetic_note(reasons)


def test_a_real_shape_difference_is_still_reported():
    torch = cnn_settings("torch", "NCHW", [None, 16, 8, 8])
    cases = {  # right side's conv1 shape and layout
        "more channels": ([None, 8, 8, 32], "NHWC"),
        "permuted, but both sides say NCHW": ([None, 8, 8, 16], "NCHW"),
        "another rank": ([None, 1024], "NHWC"),
    }
    for why, (shape, layout) in cases.items():
        d = parity.settings_diff(torch, cnn_settings("tensorflow", layout, shape)).set_index("setting")
        assert d.loc["layers.conv1.output_shape", "effect"] == parity.NOT_MATCHED, why
        said = parity.verdict(parity.why_they_differ(d.reset_index()), None, (True, True))
        assert said.level == "warning" and "not built the same" in said.text, why
        assert code("layers.conv1.output_shape") in said.text, why
    d = parity.settings_diff(torch, cnn_settings("tensorflow", "NHWC", [None, 8, 8, 16], conv1_params=1200))
    said = parity.verdict(parity.why_they_differ(d), None, (True, True))
    assert code("layers.conv1.params") in said.text and code("total_params") in said.text
    # Without data layouts (the explanation alone, an upload), NCHW against NHWC is allowed either way.
    assert parity.explanation("layers.conv1.output_shape", [4, 16, 8, 8], [4, 8, 8, 16])[0] == parity.LAYOUT
    assert parity.explanation("layers.conv1.output_shape", [4, 8, 8, 16], [4, 16, 8, 8])[0] == parity.LAYOUT
    assert parity.explanation("layers.conv1.output_shape", [4, 16], [4, 17])[0] == parity.NOT_MATCHED
    assert parity.shape_explanation([None, 10], [32, 10])[0] == parity.LAYOUT  # an unknown size


def test_graphs_and_parity_share_one_shape_rule():
    from twinboard import contract, graphs

    assert graphs.shapes_agree is contract.shapes_agree
    assert contract.shapes_agree("[32, 16, 8, 8]", [32, 8, 8, 16])  # graph text against settings list
    assert contract.shapes_agree([None, 16, 8, 8], [None, 8, 8, 16], ("NCHW", "NHWC"))
    assert contract.shapes_agree([None, 8, 8, 16], [None, 16, 8, 8], ("NHWC", "NCHW"))
    assert not contract.shapes_agree([None, 16, 8, 8], [None, 8, 8, 16], ("NCHW", "NCHW"))
    assert not contract.layout_only(None, [1, 2]) and not contract.layout_only([1, 2], [1, 2])


def test_verdict_wording():
    matched = parity.settings_diff(cnn_settings("torch", "NCHW", [None, 16, 8, 8]),
                                   cnn_settings("tensorflow", "NHWC", [None, 8, 8, 16]))
    steps = np.arange(1, 11)
    d = parity.differences(series(steps, 1.0 / steps), series(steps, 1.0 / steps + 1e-7))
    ok = parity.verdict(parity.why_they_differ(matched), parity.summarize(d, parity.DEFAULT_TOL["float32"]),
                        (True, True), d)
    assert ok.level == "success"
    assert ok.text.startswith("**Matched, within tolerance.** The two models are built the same")
    assert "agree within tolerance at all 10 compared steps" in ok.text and "rtol 1e-05, atol 1e-05" in ok.text
    tight = parity.summarize(d, rel(1e-9))
    parts = parity.verdict(parity.why_they_differ(matched), tight, (True, True), d)
    assert parts.level == "warning" and "part at step **1**" in parts.text and "rounding" in parts.text
    numbers = parity.verdict(parity.why_they_differ(parity.settings_diff(TORCH, KERAS)), tight, (True, True), d)
    assert f"Settings that change the numbers differ: {code('init')}, {code('optimizer.eps')}" in numbers.text
    unknown = parity.verdict([], parity.summarize(d, parity.DEFAULT_TOL["float32"]), (True, False), d)
    assert unknown.text.startswith("**Within tolerance.** Settings unknown for one side")
    assert "built the same" not in unknown.text and "Matched" not in unknown.text
    assert parity.verdict([], None, (False, False)).level == "info"


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
    fig = parity.difference_figure(d, "loss/train", rel(1e-6), parity.first_part(d, rel(1e-6)))
    json.loads(fig.to_json())  # serialisable: no inf
    relative = fig.data[1].y
    assert relative[0] is None or np.isnan(relative[0])  # identical step: a gap on the log axis
    tolerance = fig.data[2]  # what the tolerance allows per step, dashed on the absolute panel
    assert tolerance.line.dash == "dash" and tolerance.yaxis == "y"
    assert tolerance.y[0] == pytest.approx(1e-6) and tolerance.y[1] == pytest.approx(1.5e-6)
    assert fig.layout.yaxis.type == "log" and fig.layout.yaxis2.type == "log"
    curves = parity.curves_figure(d, "loss/train", log_y=True)
    json.loads(curves.to_json())
    assert [len(t.x) for t in curves.data] == [5, 5]


def test_differences_are_drawn_in_no_framework_colour():
    """A difference is neither side: grey or black, which no colour vision confuses with PyTorch's
    vermillion or TensorFlow's blue (a blue or a violet would pass for TensorFlow's)."""
    from twinboard.parity.charts import DIFF_COLORS

    d = parity.differences(series([1, 2, 3], [1.0, 2.0, 3.0]), series([1, 2, 3], [1.0, 2.5, 3.5]))
    fig = parity.difference_figure(d, "loss/train", rel(1e-6), None)
    drawn = {t.line.color for t in fig.data[:2]}
    assert drawn == set(DIFF_COLORS.values())
    for color in drawn:
        rgb = [int(color[i:i + 2], 16) for i in (1, 3, 5)]
        assert max(rgb) - min(rgb) < 16, color  # no hue: a grey (or black)


def test_figures_send_at_most_max_points():
    n = 50_000
    steps = np.arange(1, n + 1)
    rng = np.random.default_rng(0)
    a = np.exp(-steps / n)
    d = parity.differences(series(steps, a), series(steps, a * (1 + rng.uniform(0, 1e-6, n))))
    fig = parity.difference_figure(d, "loss/train", rel(1e-7), parity.first_part(d, rel(1e-7)))
    assert all(len(t.x) <= MAX_POINTS for t in fig.data)
    curves = parity.curves_figure(d, "loss/train")
    assert all(len(t.x) <= MAX_POINTS for t in curves.data)
