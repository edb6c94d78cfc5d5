"""The settings half of parity: the diff of the two sides' settings.json (read by
`twinboard.contract.files.read_settings`, named `parity.read_settings` too), and why each difference
matters (EXPLANATIONS: what a differing setting does to the comparison, and the default responsible).
Pure functions over dicts and DataFrames; "left" is the PyTorch side of a pair.
"""
from __future__ import annotations

import fnmatch
import json
from dataclasses import dataclass
from typing import Any, Callable, Mapping

import pandas as pd

from twinboard.contract import layout_only, sizes_agree

MISSING = "—"  # a setting one side does not report


def flatten(d: Mapping[str, Any], prefix: str = "") -> dict[str, Any]:
    """Nested dicts to dotted keys: {"optimizer": {"eps": 1e-8}} -> {"optimizer.eps": 1e-8}.

    A list of dicts that each have a "name" is keyed by those names (`layers.dense0.type`); other
    lists of dicts by position (`x.0.y`); lists of plain values, and empty dicts, are leaves.
    """
    out: dict[str, Any] = {}
    for key, value in d.items():
        name = f"{prefix}{key}"
        if isinstance(value, Mapping) and value:
            out.update(flatten(value, name + "."))
        elif isinstance(value, list) and value and all(isinstance(v, Mapping) for v in value):
            names = [v.get("name") for v in value]
            by_name = all(isinstance(n, str) and n for n in names) and len(set(names)) == len(names)
            for i, item in enumerate(value):
                sub = {k: v for k, v in item.items() if not (by_name and k == "name")}
                out.update(flatten(sub, f"{name}.{names[i] if by_name else i}."))
        else:
            out[name] = value
    return out


def _merged_keys(a: list[str], b: list[str]) -> list[str]:
    """Keys of `a` in order, each key only in `b` placed after its predecessor in `b`."""
    order, seen = list(a), set(a)
    for i, key in enumerate(b):
        if key in seen:
            continue
        prev = next((b[j] for j in range(i - 1, -1, -1) if b[j] in seen), None)
        order.insert(order.index(prev) + 1 if prev is not None else 0, key)
        seen.add(key)
    return order


def _canon(v: Any) -> str:
    """Equality key for a setting value: numbers compare by value (1 == 1.0), booleans by identity."""
    if isinstance(v, (int, float)) and not isinstance(v, bool):
        return repr(float(v))
    return json.dumps(v, sort_keys=True, default=str)


def show_value(v: Any) -> str:
    """A setting value as the table shows it: strings as they are, the rest as JSON."""
    return v if isinstance(v, str) else json.dumps(v, default=str, ensure_ascii=False)


def settings_diff(left: Mapping[str, Any] | None, right: Mapping[str, Any] | None) -> pd.DataFrame:
    """Every setting either side reports, one row per dotted key: setting, left, right (display
    strings, MISSING where a side lacks the key), differs (bool), and for differing rows effect
    and why (see `explanation`); both "" elsewhere. Rows in the left side's order.

    Empty (with the same columns) when neither side has settings.
    """
    fl, fr = flatten(left or {}), flatten(right or {})
    layouts = (fl.get("data_layout"), fr.get("data_layout"))
    rows = []
    for key in _merged_keys(list(fl), list(fr)):
        in_l, in_r = key in fl, key in fr
        differs = in_l != in_r or (in_l and _canon(fl[key]) != _canon(fr[key]))
        if left is None or right is None:
            differs = False  # one side unknown: nothing is known to differ
        effect, why = ("", "")
        if differs:
            effect, why = shape_explanation(fl.get(key), fr.get(key), layouts) if is_shape_key(key) else \
                explanation(key, fl.get(key), fr.get(key))
        rows.append({"setting": key, "left": show_value(fl[key]) if in_l else MISSING,
                     "right": show_value(fr[key]) if in_r else MISSING, "differs": differs,
                     "effect": effect, "why": why})
    return pd.DataFrame(rows, columns=["setting", "left", "right", "differs", "effect", "why"])


# What a differing setting does to the comparison. Keys are dotted settings keys or fnmatch patterns,
# first match wins. Effects, most serious first: the runs are not the same experiment; the numbers
# differ; rounding only; speed only; the same thing in each framework's layout; naming only.
NOT_MATCHED, NUMBERS, ROUNDING, SPEED, LAYOUT, NAMING = (
    "not the same run", "changes the numbers", "rounding only", "speed only", "layout only", "naming only")
EFFECT_ORDER = (NOT_MATCHED, NUMBERS, ROUNDING, SPEED, LAYOUT, NAMING)
COSMETIC = (LAYOUT, NAMING)  # effects expected between two frameworks: the same model, written differently
Explained = tuple[str, str]  # (effect, why)
NOT_BUILT_THE_SAME = "The two models are not built the same."
RNN_INIT = ("Different initial weights: torch draws every recurrent tensor from U(±1/√hidden); Keras starts "
            "kernel glorot_uniform, recurrent_kernel orthogonal and biases zeros (an LSTM's forget gate at 1). "
            "init=shared loads one init.npz on both sides.")
LSTM_BIASES = ("torch's LSTM holds two biases, b_ih and b_hh (4·hidden each), Keras' LSTM one: the same "
               "function, but torch trains 4·hidden more numbers, gives both the same gradient (so their sum "
               "moves twice as far a step) and starts from the sum of two U(±1/√hidden) draws. init=shared "
               "runs a two-bias Keras cell, so the counts match there.")
EXPLANATIONS: dict[str, Explained | Callable[[Any, Any], Explained]] = {
    "init": (NUMBERS, "Different initial weights, so the curves differ from the first step: Keras "
                      "Dense starts from glorot_uniform with zero bias, torch Linear from "
                      "kaiming_uniform(a=√5) with bias U(±1/√fan_in). init=shared loads one init.npz "
                      "on both sides."),
    "init_sha256": (NUMBERS, "The two sides did not load the same init.npz (or one drew its own)."),
    "optimizer.eps": (NUMBERS, "Adam's epsilon default differs: torch.optim.Adam 1e-8, keras Adam 1e-7."),
    "optimizer.eps_placement": (NUMBERS, "Keras Adam adds epsilon to √v before the bias correction "
                                         "(lr·√(1-β₂ᵗ)/(1-β₁ᵗ)·m/(√v+ε)), torch after it "
                                         "(lr/(1-β₁ᵗ)·m/(√v/√(1-β₂ᵗ)+ε)): the main Adam gap, ~1e-3 "
                                         "relative in float64."),
    "optimizer.update": (NUMBERS, "Momentum convention: torch keeps buf = μ·buf + g and steps "
                                  "p -= lr·buf; Keras keeps m = μ·m - lr·g and steps p += m. Equal "
                                  "in exact arithmetic at constant lr, rounded differently."),
    "optimizer.hyperparameter_dtype": lambda a, b: (
        (NUMBERS, "Keras casts Python-float hyperparameters to float32 even in a float64 run: "
                  "momentum 0.9 becomes 0.8999999761581421 (a 1.6e-5 relative gap measured over "
                  "200 float64 steps).")
        if _mentions("float32", a) != _mentions("float32", b) else
        (ROUNDING, "The hyperparameters are held in different types on each side, at the run's "
                   "precision on both: at most a last-bit difference.")),
    "optimizer.weight_decay_form": (NUMBERS, "Keras applies decoupled weight decay (p -= lr·wd·p), "
                                             "torch adds coupled L2 to the gradient (g += wd·p)."),
    "optimizer.implementation": lambda a, b: (
        (ROUNDING, "TensorFlow runs torch's optimizer arithmetic written out op for op "
                   "(init=shared): only the ops' rounding can differ.")
        if _mentions("arithmetic", a) or _mentions("arithmetic", b) else
        (NUMBERS, "Each framework's own optimizer code with its own defaults; the optimizer rows "
                  "say which arithmetic differs.")),
    "optimizer.*": (NUMBERS, "A different optimizer hyperparameter."),
    "dtype": (NUMBERS, "float32 against float64: ~1e-7 relative differences per step are expected."),
    "loss.function": (NUMBERS, "A different loss function."),
    "loss.reduction": (NUMBERS, "A different loss reduction (mean against sum scales the gradients)."),
    "loss.implementation": (NAMING, "Each framework's own loss op; on identical logits they agree "
                                    "to the bit."),
    "math_library": (ROUNDING, "Different matmul kernels sum in a different order (MKL against "
                               "Eigen/oneDNN): ulp-level differences (~1e-16 float64, ~1e-7 "
                               "float32) that grow slowly; they cannot be removed and are harmless."),
    "threads.*": (ROUNDING, "Thread counts change the summation order (torch's float32 results "
                            "change between 1 and 2 threads) as well as the speed."),
    "execution_mode": (SPEED, "Eager against a compiled graph: the same arithmetic; it changes the "
                              "time per step (eager TensorFlow is ~20x slower than tf.function)."),
    "requested_mode": (SPEED, "The execution mode each side was asked for (eager, compile, function, xla)."),
    "mode_note": (SPEED, "How each side ran its mode (backend, compile cache): speed only."),
    "import_s": (SPEED, "Seconds to import the framework, measured in each trainer process."),
    "first_step_s": (SPEED, "Seconds to the end of the first step (model build, tracing or compiling "
                            "included), measured in each trainer process."),
    "device": (SPEED, "Different devices: speed, and the kernels' rounding."),
    "data_layout": (LAYOUT, "NCHW against NHWC (channels first against channels last): the same "
                            "arithmetic; the first dense kernel after the convolutions is reordered "
                            "to match."),
    "layers.*.type": (NAMING, "Each framework's name for the same layer (Linear / Dense, Conv2d / "
                              "Conv2D)."),
    "layers.*.output_shape": lambda a, b: shape_explanation(a, b),  # without the data layouts: either way round
    "layers.*": (NOT_MATCHED, NOT_BUILT_THE_SAME),
    "total_params": (NOT_MATCHED, "The two models do not have the same number of parameters."),
    "seed": (NOT_MATCHED, "Different seeds: different data split, batch order and initial weights."),
    "data.shuffle": (NAMING, "Described differently; check the batch order is the same."),
    "data.*": (NOT_MATCHED, "The two sides did not train on the same data."),
    "batch_size": (NOT_MATCHED, "Different batch sizes: the steps are not comparable."),
    "epochs": (NOT_MATCHED, "Different lengths of training."),
    "steps_per_epoch": (NOT_MATCHED, "Different numbers of steps per epoch."),
    "total_steps": (NOT_MATCHED, "Different lengths of training."),
    "model": (NOT_MATCHED, "Different models."),
    "batch_norm.implementation": lambda a, b: (
        (ROUNDING, "TensorFlow runs torch's BatchNorm2d arithmetic in a Keras layer (init=shared: "
                   "trainers.models.cnn_bn.TorchBatchNorm): the same momentum, eps and unbiased running "
                   "variance; only the ops' rounding differs.")
        if _mentions("TorchBatchNorm", a) or _mentions("TorchBatchNorm", b) else
        (NUMBERS, "Each framework's own BatchNorm layer with its defaults; the batch_norm rows say which "
                  "arithmetic differs (momentum, eps, running variance).")),
    "batch_norm.momentum": (NUMBERS, "Opposite conventions: torch's momentum is the new batch's weight "
                            "(running = 0.9·running + 0.1·batch), Keras' the old value's (moving = 0.99·moving "
                            "+ 0.01·batch). The defaults 0.1 and 0.99 are not the same setting (that would be "
                            "Keras 0.9): Keras' running statistics move 10x slower, so eval-mode results "
                            "(loss/val, exports) differ even when training matches."),
    "batch_norm.batch_weight": (NUMBERS, "The weight each batch's statistics get in the running average: "
                                "torch 0.1, Keras 1 − 0.99 = 0.01. After 44 steps Keras' moving mean has moved "
                                "36% of the way from its start, torch's 99%."),
    "batch_norm.update": (NAMING, "The same exponential average written in each framework's convention; "
                          "batch_norm.batch_weight is the comparable number."),
    "batch_norm.eps": (NUMBERS, "BatchNorm's epsilon under the square root: torch 1e-5, Keras 1e-3. It changes "
                       "every normalised value, in training and in eval, most in channels whose variance is small."),
    "batch_norm.running_variance": (NUMBERS, "torch stores the unbiased batch variance (÷(n−1)) in running_var, "
                                    "Keras the biased one (÷n) in moving_variance; n is batch × height × width "
                                    "(2048 values a channel at batch 32 on 8x8), a 1.0005 factor seen only in "
                                    "eval mode."),
    "batch_norm.*": (NUMBERS, "A BatchNorm setting differs."),
    "layer_defaults.*initializer": (NUMBERS, "Each framework's default initializer for this kind of layer "
                                    "(torch kaiming_uniform(a=√5), bias U(±1/√fan_in); Keras glorot_uniform, zero "
                                    "bias; BatchNorm ones and zeros on both): the runs start from different "
                                    "weights. init=shared loads one init.npz on both sides."),
    "layer_defaults.gru.implementation": (NAMING, "Each framework's GRU: torch.nn.GRU against Keras' GRUCell "
                                                  "(reset_after=True, torch's form), its [2, 3h] bias held as two "
                                                  "variables; the rows beside it say what differs."),
    "layer_defaults.gru.gate_order": (LAYOUT, "torch stacks a GRU's gates r, z, n (rows of weight_ih/hh), Keras "
                                              "z, r, h (columns of kernel/recurrent_kernel): the same gates; "
                                              "init=shared swaps torch's r and z blocks when the weights load."),
    "layer_defaults.gru.update": (ROUNDING, "The same new state, (1-z)·n + z·h, written (h - n)·z + n by torch "
                                            "and z·h + (1-z)·hh by Keras: last-bit differences (float64 losses "
                                            "agree to ~1e-15 over 200 steps)."),
    "layer_defaults.lstm.implementation": (NAMING, "Each framework's LSTM (with init=shared a Keras cell written "
                                                   "to torch's formulas); the rows beside it say what differs."),
    "layer_defaults.lstm.biases": (NUMBERS, LSTM_BIASES),
    "layer_defaults.lstm.gates_sum": (ROUNDING, "The gates' pre-activations added in another order (torch "
                                                "(W_hh·h + b_hh) + (W_ih·x + b_ih), Keras (x·kernel + "
                                                "h·recurrent_kernel) + bias): last-bit differences."),
    "layer_defaults.lstm.unit_forget_bias": (NUMBERS, "Keras' LSTM starts the forget gate's bias at 1 "
                                                      "(unit_forget_bias=True), so the cell keeps its memory early "
                                                      "in training; torch draws it from U(±1/√hidden) like every "
                                                      "other bias."),
    "layer_defaults.gru.initializers.*": (NUMBERS, RNN_INIT),
    "layer_defaults.lstm.initializers.*": (NUMBERS, RNN_INIT),
    "layer_defaults.out": (NUMBERS, "The output layer's initial weights: torch's Linear kaiming_uniform(a=√5) "
                                    "with bias U(±1/√fan_in), Keras' Dense glorot_uniform with zero bias."),
    "layers.lstm.params": (NUMBERS, LSTM_BIASES),
    "layers.lstm.tensors": (NUMBERS, LSTM_BIASES),
    "layer_defaults.implementation": (NAMING, "Each framework's own classes for the same layers; the rows below "
                                              "say where their arithmetic differs."),
    "layer_defaults.attention_layout": (LAYOUT, "The same attention weights in each framework's layout: torch packs "
                                                "query, key and value into in_proj_weight [3d, d] (rows q, k, v) and "
                                                "keeps out_proj as [d, d] (out, in); Keras holds per-head kernels "
                                                "[d, heads, head_dim], biases [heads, head_dim] and an output kernel "
                                                "[heads, head_dim, d]. The shared weights are transposed and "
                                                "reshaped to match."),
    "layer_defaults.attention_kernel": (ROUNDING, "Each framework's attention arithmetic: torch's "
                                                  "scaled_dot_product_attention (on CPU a blocked kernel with an "
                                                  "online softmax) against Keras' einsum, softmax, einsum. The same "
                                                  "maths summed in another order: 200 float64 steps agree to ~5e-16."),
    "layer_defaults.attention_scale": (NUMBERS, "Keras' MultiHeadAttention hands 1/√head_dim to tf.cast as a Python "
                                                "float, which makes it float32 first even in a float64 run "
                                                "(0.1767766922712326 against torch's 0.17677669529663687 for "
                                                "head_dim 32): every attention logit 1.7e-8 off, the loss ~1e-8. "
                                                "init=shared runs ExactScaleAttention, the stock layer with the "
                                                "scale in float64."),
    "layer_defaults.layer_norm_eps": (NUMBERS, "LayerNorm's epsilon: torch's nn.LayerNorm 1e-5, Keras' "
                                               "LayerNormalization 1e-3, added to the variance under the square "
                                               "root: every normalised value moves by ~½·Δε/σ² (5e-4 where σ² is 1). "
                                               "init=shared gives Keras torch's 1e-5."),
    "layer_defaults.gelu": lambda a, b: (
        (NUMBERS, "tf.nn.gelu, what Keras' 'gelu' runs (approximate=False), multiplies by 1/√2 rounded to float32 "
                  "even in a float64 run: 1.7e-8 relative inside erf. init=shared runs torch's formula with its "
                  "constant in the run dtype (torch_gelu). Note keras.ops.gelu alone defaults to the tanh "
                  "approximation; the string 'gelu' and keras.activations.gelu are exact.")
        if _mentions("float32", a) or _mentions("float32", b) else
        (ROUNDING, "The exact GELU written two ways (x·½·(1+erf(x/√2)) against ½·x·erfc(−x/√2)): last-bit "
                   "differences.")),
    "layer_defaults.inference": (ROUNDING, "In eval mode without gradients torch's nn.TransformerEncoderLayer runs "
                                           "a fused inference kernel (torch._transformer_encoder_layer_fwd); Keras "
                                           "runs the training layers with training=False. The same maths: "
                                           "validation values differ in the last bits."),
    "layer_defaults.initializers.*": (NUMBERS, "Each framework's default initializers (init=native): torch draws "
                                               "embeddings from N(0, 1), in_proj from xavier_uniform over the packed "
                                               "[3d, d] and Linear weights from kaiming_uniform(a=√5); Keras draws "
                                               "embeddings from U(±0.05) and kernels from glorot_uniform, whose fans "
                                               "for the 3-D attention kernels [d, heads, head_dim] make them ~3x "
                                               "narrower than torch's at d=64. init=shared loads one init.npz."),
    "batch_norm": (NOT_MATCHED, "Different normalisation layers."),
    "clip_norm": (NUMBERS, "Gradient clipping differs: torch's clip_grad_norm_ scales every gradient by one "
                           "factor from their global norm, Keras' clipnorm clips each variable's gradient on "
                           "its own. Once clipping is active the updates differ."),
    "dropout": (NOT_MATCHED, "Different dropout."),
    "framework": (NAMING, "The two sides are different frameworks, as they should be."),
    "framework_version": (NAMING, "Each framework's version."),
    "logger": (NAMING, "Each side's event-file writer."),
    "python": (NAMING, "Different Python versions."),
    "log_every": (NAMING, "Different logging cadences: fewer steps can be compared."),
    "histogram_every": (NAMING, "Different histogram cadences."),
    "histogram_bins": (NAMING, "Different histogram bin counts."),
}
UNKNOWN_EFFECT = (NUMBERS, "Not a known setting: it may change the numbers.")
MODEL_KEYS = ("layers.*", "total_params", "model", "batch_norm", "dropout")  # how a model is built


def is_shape_key(key: str) -> bool:
    return fnmatch.fnmatchcase(key, "layers.*.output_shape")


def shape_explanation(left: Any, right: Any, layouts: tuple[Any, Any] = (None, None)) -> Explained:
    """(effect, why) for a layer's differing output_shape: layout only when the two are the same shape
    in each side's `data_layout` (`twinboard.contract.shapes_agree`, the Graphs page's rule too),
    else the models are not built the same."""
    if not layout_only(left, right, layouts):
        return (NOT_MATCHED, NOT_BUILT_THE_SAME)
    if sizes_agree(left, right):
        return (LAYOUT, "The same output shape; one side leaves a size unknown (None).")
    known = [str(x) for x in layouts if x]
    how = " against ".join(known) if len(known) == 2 else "NCHW against NHWC"
    return (LAYOUT, f"The same output shape in each framework's layout ({how}: channels first "
                    "against channels last).")


def _mentions(word: str, value: Any) -> bool:
    return isinstance(value, str) and word in value


def explanation(key: str, left: Any = None, right: Any = None) -> Explained:
    """(effect, why) for a settings key whose values differ: the exact key first, then patterns in
    order; an entry that is a function of the two values is called with them."""
    entry = EXPLANATIONS.get(key)
    if entry is None:
        entry = next((v for pattern, v in EXPLANATIONS.items()
                      if any(c in pattern for c in "*?[") and fnmatch.fnmatchcase(key, pattern)),
                     UNKNOWN_EFFECT)
    return entry(left, right) if callable(entry) else entry


@dataclass(frozen=True)
class Reason:
    effect: str  # one of EFFECT_ORDER
    keys: tuple[str, ...]  # the differing settings it explains
    text: str


def why_they_differ(diff: pd.DataFrame) -> list[Reason]:
    """The explanations for the differing rows of `settings_diff`, one per distinct text, most
    serious effect first (settings order within an effect)."""
    by_text: dict[tuple[str, str], list[str]] = {}
    for key, effect, why in diff.loc[diff["differs"], ["setting", "effect", "why"]].itertuples(index=False):
        by_text.setdefault((effect, why), []).append(key)
    rank = {e: i for i, e in enumerate(EFFECT_ORDER)}
    reasons = [Reason(effect, tuple(keys), text) for (effect, text), keys in by_text.items()]
    return sorted(reasons, key=lambda r: rank.get(r.effect, len(rank)))  # stable: settings order

