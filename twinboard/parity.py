"""Parity of a matched pair: where two runs' curves part, their final metrics, speed and settings.

Pure functions over numpy columns and dicts (the page reads the files and draws): a series is any
object with `.step` and `.value` arrays in write order, as `events.Series`; a side's scalars are a
`{tag: series}` dict. "Left" is the PyTorch side of a pair, "right" the TensorFlow side.

Relative difference, per step: ``|a - b| / max(|a|, |b|, floor)``. Symmetric, 0 where the two are
equal (both 0 included), never a division by zero. A step one side lacks has no difference (NaN);
a step where exactly one side is NaN/inf (it diverged) differs infinitely, and counts as parting.
"""
from __future__ import annotations

import fnmatch
import json
import math
from dataclasses import dataclass
from pathlib import Path
from typing import Any, Callable, Mapping

import numpy as np
import pandas as pd

LOSS_TAG = "loss/train"
FP64_TAG = "loss/train_fp64"  # float64 runs: a DT_DOUBLE tensor every step, both sides
REL_FLOOR = 1e-12  # denominator floor of the relative difference (values this small count as 0)
FINAL_TAG_ORDER = (LOSS_TAG, FP64_TAG, "loss/val", "accuracy/train", "accuracy/val")
SPEED_TAGS = {"perf/step_ms": "median time per step (ms)",
              "perf/samples_per_s": "median throughput (samples/s)"}
MISSING = "—"  # a setting one side does not report
SETTINGS_FILE = "settings.json"


class SettingsError(ValueError):
    """A settings.json that exists but cannot be used; the message names the file and why."""


# --- series --------------------------------------------------------------------------------------
def last_per_step(step: np.ndarray, value: np.ndarray) -> pd.Series:
    """value indexed by step, sorted; a step written twice (a restarted run) keeps its last write."""
    s = pd.Series(np.asarray(value, dtype=np.float64), index=np.asarray(step, dtype=np.int64))
    return s[~s.index.duplicated(keep="last")].sort_index()


def align(left, right) -> pd.DataFrame:
    """Two series on one step axis, sorted by step: columns step, left, right, has_left, has_right.

    `left`/`right` are NaN where that side logged no point at the step (has_* False) and where it
    logged a NaN (has_* True): the flags tell the two apart.
    """
    a, b = last_per_step(left.step, left.value), last_per_step(right.step, right.value)
    steps = a.index.union(b.index)
    return pd.DataFrame({"step": steps.to_numpy(np.int64),
                         "left": a.reindex(steps).to_numpy(), "right": b.reindex(steps).to_numpy(),
                         "has_left": steps.isin(a.index), "has_right": steps.isin(b.index)})


def rel_diff(a, b, floor: float = REL_FLOOR) -> np.ndarray:
    """|a - b| / max(|a|, |b|, floor), elementwise. 0 where a == b (0 and 0, equal infinities);
    inf where exactly one side is non-finite (one run diverged) or the infinities have opposite
    signs; NaN where both are NaN."""
    a, b = np.atleast_1d(np.asarray(a, np.float64)), np.atleast_1d(np.asarray(b, np.float64))
    with np.errstate(invalid="ignore", over="ignore"):
        out = np.abs(a - b) / np.maximum(np.maximum(np.abs(a), np.abs(b)), floor)
    return _nonfinite_rules(a, b, out)


def abs_diff(a, b) -> np.ndarray:
    """|a - b|, elementwise, with the same rules for non-finite values as `rel_diff`."""
    a, b = np.atleast_1d(np.asarray(a, np.float64)), np.atleast_1d(np.asarray(b, np.float64))
    with np.errstate(invalid="ignore", over="ignore"):
        out = np.abs(a - b)
    return _nonfinite_rules(a, b, out)


def _nonfinite_rules(a: np.ndarray, b: np.ndarray, out: np.ndarray) -> np.ndarray:
    out[a == b] = 0.0
    out[np.isfinite(a) != np.isfinite(b)] = np.inf
    out[np.isinf(a) & np.isinf(b) & (a != b)] = np.inf
    out[np.isnan(a) & np.isnan(b)] = np.nan
    return out


def differences(left, right, floor: float = REL_FLOOR) -> pd.DataFrame:
    """`align` plus abs_diff and rel_diff (NaN at steps only one side logged)."""
    df = align(left, right)
    both = (df["has_left"] & df["has_right"]).to_numpy()
    df["abs_diff"] = np.where(both, abs_diff(df["left"], df["right"]), np.nan)
    df["rel_diff"] = np.where(both, rel_diff(df["left"], df["right"], floor), np.nan)
    return df


def first_part(diff: pd.DataFrame, tol: float) -> int | None:
    """The first step whose relative difference exceeds `tol` (NaN steps skipped), or None."""
    over = np.flatnonzero(diff["rel_diff"].to_numpy() > tol)  # NaN > tol is False; inf counts
    return int(diff["step"].iloc[over[0]]) if over.size else None


@dataclass(frozen=True)
class Summary:
    compared: int  # steps both sides logged
    only_left: int  # steps only the left side logged
    only_right: int
    identical: int  # compared steps with bit-identical values (relative difference 0)
    max_rel: float  # the largest finite relative difference; nan when there is none
    max_rel_step: int | None
    final_rel: float  # at the last compared step
    final_step: int | None
    first_part: int | None  # the first step over `tol`
    tol: float
    diverged: int  # compared steps where exactly one side is NaN/inf


def summarize(diff: pd.DataFrame, tol: float) -> Summary:
    has_l, has_r = diff["has_left"].to_numpy(), diff["has_right"].to_numpy()
    both = has_l & has_r
    rel = diff["rel_diff"].to_numpy()[both]
    steps = diff["step"].to_numpy()[both]
    finite = np.isfinite(rel)
    if finite.any():
        i = int(np.argmax(np.where(finite, rel, -1.0)))
        max_rel, max_step = float(rel[i]), int(steps[i])
    else:
        max_rel, max_step = math.nan, None
    return Summary(
        compared=int(both.sum()), only_left=int((has_l & ~has_r).sum()),
        only_right=int((has_r & ~has_l).sum()), identical=int((rel == 0).sum()),
        max_rel=max_rel, max_rel_step=max_step,
        final_rel=float(rel[-1]) if rel.size else math.nan,
        final_step=int(steps[-1]) if steps.size else None,
        first_part=first_part(diff, tol), tol=tol, diverged=int(np.isposinf(rel).sum()))


def choose_tag(left_tags, right_tags) -> str | None:
    """The series to compare: loss/train_fp64 when both sides have it, else loss/train, else None."""
    common = set(left_tags) & set(right_tags)
    return next((t for t in (FP64_TAG, LOSS_TAG) if t in common), None)


def float32_limited(values: np.ndarray) -> bool:
    """Whether every finite value is exactly a float32 (an event scalar stored as float32)."""
    v = np.asarray(values, dtype=np.float64)
    v = v[np.isfinite(v)]
    return bool(v.size) and bool(np.all(v.astype(np.float32).astype(np.float64) == v))


# --- tables --------------------------------------------------------------------------------------
def _last(series) -> tuple[int, float] | None:
    s = last_per_step(series.step, series.value)
    return (int(s.index[-1]), float(s.iloc[-1])) if len(s) else None


def metric_tags(left: Mapping[str, Any], right: Mapping[str, Any]) -> list[str]:
    """Tags for the final-metrics table: known ones first, then the rest; perf/* and lr left out."""
    tags = (set(left) | set(right)) - {"lr"}
    tags = {t for t in tags if not t.startswith("perf/")}
    rank = {t: i for i, t in enumerate(FINAL_TAG_ORDER)}
    return sorted(tags, key=lambda t: (rank.get(t, len(rank)), t))


def final_metrics(left: Mapping[str, Any], right: Mapping[str, Any]) -> pd.DataFrame:
    """One row per metric: the last value (at its last step) of each side and their differences.

    Columns: metric, left_step, left, right, right_step, abs_diff, rel_diff (NaN where missing).
    """
    rows = []
    for tag in metric_tags(left, right):
        a = _last(left[tag]) if tag in left else None
        b = _last(right[tag]) if tag in right else None
        la, lb = (a[1] if a else math.nan), (b[1] if b else math.nan)
        both = a is not None and b is not None
        rows.append({"metric": tag, "left_step": a[0] if a else None, "left": la, "right": lb,
                     "right_step": b[0] if b else None,
                     "abs_diff": float(abs_diff([la], [lb])[0]) if both else math.nan,
                     "rel_diff": float(rel_diff([la], [lb])[0]) if both else math.nan})
    return pd.DataFrame(rows, columns=["metric", "left_step", "left", "right", "right_step",
                                       "abs_diff", "rel_diff"])


def _median(series) -> float:
    v = np.asarray(series.value, dtype=np.float64) if series is not None else np.empty(0)
    v = v[np.isfinite(v)]
    return float(np.median(v)) if v.size else math.nan


def speed_table(left: Mapping[str, Any], right: Mapping[str, Any]) -> pd.DataFrame:
    """Median time per step and throughput of each side, from perf/* (NaN where a side lacks it).

    Columns: measure, left, right, ratio (right / left), points (logged points, left / right).
    The median, not the mean: the first steps (allocation, tracing) and a busy machine make outliers.
    """
    rows = []
    for tag, label in SPEED_TAGS.items():
        a, b = _median(left.get(tag)), _median(right.get(tag))
        ratio = b / a if a and math.isfinite(a) and math.isfinite(b) else math.nan
        n = [len(s.step) if (s := side.get(tag)) is not None else 0 for side in (left, right)]
        rows.append({"measure": label, "tag": tag, "left": a, "right": b, "ratio": ratio,
                     "points": f"{n[0]} / {n[1]}"})
    return pd.DataFrame(rows, columns=["measure", "tag", "left", "right", "ratio", "points"])


# --- settings ------------------------------------------------------------------------------------
def read_settings(folder: str | Path) -> dict | None:
    """`<folder>/settings.json` as a dict; None when there is none (uploads, other tools).
    Raises SettingsError for a file that is not a JSON object."""
    path = Path(folder) / SETTINGS_FILE
    try:
        text = path.read_text(encoding="utf-8")
    except FileNotFoundError:
        return None
    except (OSError, UnicodeDecodeError) as exc:
        raise SettingsError(f"{path}: cannot read it ({exc})") from None
    try:
        data = json.loads(text)
    except json.JSONDecodeError as exc:
        raise SettingsError(f"{path}: not valid JSON ({exc})") from None
    if not isinstance(data, dict):
        raise SettingsError(f"{path}: holds a JSON {type(data).__name__}, not an object")
    return data


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
    rows = []
    for key in _merged_keys(list(fl), list(fr)):
        in_l, in_r = key in fl, key in fr
        differs = in_l != in_r or (in_l and _canon(fl[key]) != _canon(fr[key]))
        if left is None or right is None:
            differs = False  # one side unknown: nothing is known to differ
        effect, why = explanation(key, fl.get(key), fr.get(key)) if differs else ("", "")
        rows.append({"setting": key, "left": show_value(fl[key]) if in_l else MISSING,
                     "right": show_value(fr[key]) if in_r else MISSING, "differs": differs,
                     "effect": effect, "why": why})
    return pd.DataFrame(rows, columns=["setting", "left", "right", "differs", "effect", "why"])


# What a differing setting does to the comparison. Keys are dotted settings keys or fnmatch patterns,
# first match wins. Effects, most serious first: the runs are not the same experiment; the numbers
# differ; rounding only; speed only; naming only.
NOT_MATCHED, NUMBERS, ROUNDING, SPEED, NAMING = ("not the same run", "changes the numbers",
                                                 "rounding only", "speed only", "naming only")
EFFECT_ORDER = (NOT_MATCHED, NUMBERS, ROUNDING, SPEED, NAMING)
Explained = tuple[str, str]  # (effect, why)
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
    "device": (SPEED, "Different devices: speed, and the kernels' rounding."),
    "data_layout": (NAMING, "NCHW against NHWC: the same arithmetic; the first dense kernel after "
                            "the convolutions is reordered to match."),
    "layers.*.type": (NAMING, "Each framework's name for the same layer (Linear / Dense, Conv2d / "
                              "Conv2D)."),
    "layers.*": (NOT_MATCHED, "The two models are not built the same."),
    "total_params": (NOT_MATCHED, "The two models do not have the same number of parameters."),
    "seed": (NOT_MATCHED, "Different seeds: different data split, batch order and initial weights."),
    "data.shuffle": (NAMING, "Described differently; check the batch order is the same."),
    "data.*": (NOT_MATCHED, "The two sides did not train on the same data."),
    "batch_size": (NOT_MATCHED, "Different batch sizes: the steps are not comparable."),
    "epochs": (NOT_MATCHED, "Different lengths of training."),
    "steps_per_epoch": (NOT_MATCHED, "Different numbers of steps per epoch."),
    "total_steps": (NOT_MATCHED, "Different lengths of training."),
    "model": (NOT_MATCHED, "Different models."),
    "batch_norm": (NOT_MATCHED, "Different normalisation layers."),
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


def fmt(v: float, digits: int = 6) -> str:
    """A number for a table cell: `digits` significant digits; MISSING for NaN/None."""
    if v is None or (isinstance(v, float) and math.isnan(v)):
        return MISSING
    return f"{v:.{digits}g}"
