"""Parity of a matched pair: where two runs' curves part, their final metrics, speed and settings.

Pure functions over numpy columns and dicts (the page reads the files and draws): a series is any
object with `.step` and `.value` arrays in write order, as `events.Series`; a side's scalars are a
`{tag: series}` dict. "Left" is the PyTorch side of a pair, "right" the TensorFlow side.

Relative difference, per step: ``|a - b| / max(|a|, |b|, floor)``. Symmetric, 0 where the two are
equal (both 0 included), never a division by zero. A step one side lacks has no difference (NaN);
a step where exactly one side is NaN/inf (it diverged) differs infinitely, and counts as parting.

Whether a step is within tolerance (`Tolerance`): ``|a - b| <= atol + rtol * max(|a|, |b|)``,
numpy.allclose's rule in its symmetric form (neither side is the reference, so max(|a|, |b|) stands
where allclose has |b|). The absolute floor is what keeps a loss that converges towards 0 from
"parting": at 1e-6 a last-digit difference is relative 1, and meaningless.

The settings diff and its explanations are in twinboard.parity.settings; the page's sentences in
twinboard.parity.text.
"""
from __future__ import annotations

import math
from dataclasses import dataclass
from typing import Any, Mapping

import numpy as np
import pandas as pd

from twinboard.parity.settings import MISSING  # a table cell's "no value"

LOSS_TAG = "loss/train"
FP64_TAG = "loss/train_fp64"  # float64 runs: a DT_DOUBLE tensor every step, both sides
REL_FLOOR = 1e-12  # denominator floor of the relative difference (values this small count as 0)
FINAL_TAG_ORDER = (LOSS_TAG, FP64_TAG, "loss/val", "accuracy/train", "accuracy/val")
SPEED_TAGS = {"perf/step_ms": "median time per step (ms)",
              "perf/samples_per_s": "median throughput (samples/s)"}


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


@dataclass(frozen=True)
class Tolerance:
    """Two values agree when |a − b| <= atol + rtol · max(|a|, |b|) (see the module docstring)."""
    rtol: float  # relative part: a share of the larger magnitude
    atol: float  # absolute floor, in the series' units (a loss's)

    def __post_init__(self):
        for name in ("rtol", "atol"):
            v = getattr(self, name)
            if isinstance(v, bool) or not isinstance(v, (int, float)) or not math.isfinite(v) or v < 0:
                raise ValueError(f"Tolerance {name}={v!r}: must be a finite number >= 0")

    def allowed(self, a, b) -> np.ndarray:
        """atol + rtol · max(|a|, |b|), elementwise: the largest |a − b| that still agrees (NaN in, NaN out)."""
        a, b = np.asarray(a, np.float64), np.asarray(b, np.float64)
        with np.errstate(invalid="ignore"):
            return self.atol + self.rtol * np.maximum(np.abs(a), np.abs(b))

    def __str__(self) -> str:
        return f"rtol {self.rtol:.0e}, atol {_tol_text(self.atol)}"


def _tol_text(v: float) -> str:
    return "0" if v == 0 else f"{v:.0e}"


def tolerance_share(diff: pd.DataFrame, tol: Tolerance) -> np.ndarray:
    """Per step, |a − b| over what `tol` allows there: <= 1 agrees, > 1 parts. NaN where a side has no
    point (or both are NaN); inf where exactly one side is NaN/inf, or where nothing is allowed
    (rtol = atol = 0) and the values differ."""
    absd = diff["abs_diff"].to_numpy(np.float64)
    allowed = tol.allowed(diff["left"], diff["right"])
    with np.errstate(divide="ignore", invalid="ignore"):
        share = absd / allowed
    share[absd == 0] = 0.0  # 0/0 where exact equality is asked: agrees
    share[np.isposinf(absd)] = np.inf  # diverged: inf/inf would be NaN
    share[np.isnan(absd)] = np.nan
    return share


def first_part(diff: pd.DataFrame, tol: Tolerance) -> int | None:
    """The first step beyond `tol` (|a − b| > atol + rtol·max(|a|, |b|); NaN steps skipped), or None."""
    over = np.flatnonzero(tolerance_share(diff, tol) > 1.0)  # NaN > 1 is False; inf counts
    return int(diff["step"].iloc[over[0]]) if over.size else None


@dataclass(frozen=True)
class Summary:
    compared: int  # steps both sides logged
    only_left: int  # steps only the left side logged
    only_right: int
    identical: int  # compared steps with bit-identical values (relative difference 0)
    max_rel: float  # the largest finite relative difference; nan when there is none
    max_rel_step: int | None
    max_abs: float  # the largest finite absolute difference; nan when there is none
    max_abs_step: int | None
    worst: float  # the largest finite `tolerance_share` (<= 1: within tolerance); nan when none
    worst_step: int | None
    final_rel: float  # at the last compared step
    final_step: int | None
    first_part: int | None  # the first step beyond `tol`
    tol: Tolerance
    diverged: int  # compared steps where exactly one side is NaN/inf


def _finite_max(values: np.ndarray, steps: np.ndarray) -> tuple[float, int | None]:
    finite = np.isfinite(values)
    if not finite.any():
        return math.nan, None
    i = int(np.argmax(np.where(finite, values, -1.0)))
    return float(values[i]), int(steps[i])


def summarize(diff: pd.DataFrame, tol: Tolerance) -> Summary:
    if not isinstance(tol, Tolerance):
        raise TypeError(f"summarize: tol={tol!r} must be a parity.Tolerance(rtol, atol)")
    has_l, has_r = diff["has_left"].to_numpy(), diff["has_right"].to_numpy()
    both = has_l & has_r
    rel = diff["rel_diff"].to_numpy()[both]
    steps = diff["step"].to_numpy()[both]
    max_rel, max_rel_step = _finite_max(rel, steps)
    max_abs, max_abs_step = _finite_max(diff["abs_diff"].to_numpy()[both], steps)
    worst, worst_step = _finite_max(tolerance_share(diff, tol)[both], steps)
    return Summary(
        compared=int(both.sum()), only_left=int((has_l & ~has_r).sum()),
        only_right=int((has_r & ~has_l).sum()), identical=int((rel == 0).sum()),
        max_rel=max_rel, max_rel_step=max_rel_step, max_abs=max_abs, max_abs_step=max_abs_step,
        worst=worst, worst_step=worst_step,
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


def fmt(v: float, digits: int = 6) -> str:
    """A number for a table cell: `digits` significant digits; MISSING for NaN/None."""
    if v is None or (isinstance(v, float) and math.isnan(v)):
        return MISSING
    return f"{v:.{digits}g}"


# --- choices the page offers ----------------------------------------------------------------------
RTOLS = [10.0 ** -k for k in range(15, 0, -1)]  # 1e-15 ... 1e-1: the rtol slider's stops
ATOLS = [0.0] + [10.0 ** -k for k in range(16, 0, -1)]  # 0, 1e-16 ... 1e-1: the atol slider's stops
# Defaults per precision. rtol above the matched pairs' measured relative differences (float64: 8e-12
# after 440 CNN steps, 2e-13 MLP; float32: 2.5e-5 after 150 CNN steps, 1.5e-6 MLP, docs/NOTES.md);
# float32's atol is torch.testing.assert_close's (1e-5): a float32 loss's last digits near 1e-6 are
# noise. float64's atol 1e-12 keeps a converged float64 loss (1e-6 and below) sensitive to 1e-18.
DEFAULT_TOL = {"float64": Tolerance(rtol=1e-10, atol=1e-12), "float32": Tolerance(rtol=1e-5, atol=1e-5)}


def common_tags(left: Mapping[str, Any], right: Mapping[str, Any]) -> list[str]:
    """The tags both sides logged that can be compared step by step (perf/* are timings: never equal)."""
    return sorted((set(left) & set(right)) - {t for t in left if t.startswith("perf/")})


def precision_of(tag: str | None, values) -> str:
    """'float64' for the fp64 tag or values wider than float32 (`values`: one side's), else 'float32'."""
    return "float64" if tag == FP64_TAG or (tag and not float32_limited(values)) else "float32"
