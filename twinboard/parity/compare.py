"""Parity of a matched pair: where two runs' curves part, their final metrics, speed and settings.

Pure functions over numpy columns and dicts (the page reads the files and draws): a series is any
object with `.step` and `.value` arrays in write order, as `events.Series`; a side's scalars are a
`{tag: series}` dict. "Left" is the PyTorch side of a pair, "right" the TensorFlow side.

Relative difference, per step: ``|a - b| / max(|a|, |b|, floor)``. Symmetric, 0 where the two are
equal (both 0 included), never a division by zero. A step one side lacks has no difference (NaN);
a step where exactly one side is NaN/inf (it diverged) differs infinitely, and counts as parting.

The settings diff and its explanations are in twinboard.parity_settings (re-exported here).
"""
from __future__ import annotations

import math
from dataclasses import dataclass
from typing import Any, Mapping

import numpy as np
import pandas as pd

# MISSING: a table cell's "no value"; the effects rank why settings differ (twinboard.parity.settings).
from twinboard.parity.settings import MISSING, NOT_MATCHED, NUMBERS, Reason

LOSS_TAG = "loss/train"
FP64_TAG = "loss/train_fp64"  # float64 runs: a DT_DOUBLE tensor every step, both sides
SERIOUS = (NOT_MATCHED, NUMBERS)  # setting effects that can make the curves part
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


def fmt(v: float, digits: int = 6) -> str:
    """A number for a table cell: `digits` significant digits; MISSING for NaN/None."""
    if v is None or (isinstance(v, float) and math.isnan(v)):
        return MISSING
    return f"{v:.{digits}g}"


# --- what the page says --------------------------------------------------------------------------
TOLERANCES = [10.0 ** -k for k in range(15, 0, -1)]  # 1e-15 ... 1e-1, relative: the tolerance slider's stops
DEFAULT_TOL = {"float64": 1e-10, "float32": 1e-5}  # above each precision's measured floor (2e-13, 1.5e-6)


def common_tags(left: Mapping[str, Any], right: Mapping[str, Any]) -> list[str]:
    """The tags both sides logged that can be compared step by step (perf/* are timings: never equal)."""
    return sorted((set(left) & set(right)) - {t for t in left if t.startswith("perf/")})


def precision_of(tag: str | None, values) -> str:
    """'float64' for the fp64 tag or values wider than float32 (`values`: one side's), else 'float32'."""
    return "float64" if tag == FP64_TAG or (tag and not float32_limited(values)) else "float32"


def precision_note(tag: str, precision: str) -> str:
    """What differences comparing `tag` can show, given the precision its values were written in."""
    if tag == FP64_TAG:
        return (f"Comparing `{tag}`: float64 tensors written every step, so differences down to "
                "~1e-16 relative show.")
    if precision == "float32":
        return (f"Comparing `{tag}`: float32 event scalars, rounded to ~6e-8 relative when written, "
                "so differences below ~1e-7 relative cannot show (a float64 run also writes "
                f"`{FP64_TAG}` at full precision).")
    return f"Comparing `{tag}` (values wider than float32)."


def summary_notes(s: Summary) -> list[str]:
    """The summary's footnotes: gaps on the log axis, diverged steps, steps only one side logged."""
    notes = []
    if s.identical:
        notes.append(f"{s.identical:,} bit-identical steps (difference 0) leave gaps on the log axis")
    if s.diverged:
        notes.append(f"{s.diverged:,} steps where only one side is NaN/inf (counted as parted, drawn as gaps)")
    if s.only_left or s.only_right:
        notes.append(f"steps logged by one side only: {s.only_left:,} left, {s.only_right:,} right (not compared)")
    return notes


def parting_text(diff: pd.DataFrame, s: Summary, reasons: list[Reason]) -> str:
    """Where the curves part (s.first_part must be a step) and the differing settings that can explain it."""
    serious = [k for r in reasons if r.effect in SERIOUS for k in r.keys]
    because = " Settings that change the numbers: " + ", ".join(f"`{k}`" for k in serious) + "." if serious else ""
    rel = float(diff.loc[diff.step == s.first_part, "rel_diff"].iloc[0])
    return (f"The two curves part at step **{s.first_part:,}** (relative difference {fmt(rel, 3)} "
            f"> {s.tol:.0e}).{because}")


def column_names(left: str, right: str, left_run: str, right_run: str) -> tuple[str, str]:
    """Column names for the two sides (`left`, `right`: their labels), made unique with the runs'
    names when the labels are the same, and by position when the runs are too."""
    a, b = left, right
    if a == b:
        a, b = f"{a} · {left_run}", f"{b} · {right_run}"
    return (a, b) if a != b else (f"{a} (left)", f"{b} (right)")


def step_text(left_step, right_step) -> str:
    """The final step of each side for a table cell: one number when they agree."""
    x, y = (MISSING if pd.isna(v) else f"{int(v):,}" for v in (left_step, right_step))
    return x if x == y else f"{x} / {y}"


def final_shown(table: pd.DataFrame, names: tuple[str, str]) -> pd.DataFrame:
    """`final_metrics` as text for a table: one column per side (`names`), float64 with all its digits."""
    def digits(tag: str) -> int:
        return 17 if tag == FP64_TAG else 8
    a, b = names
    return pd.DataFrame({
        "metric": table["metric"],
        "step": [step_text(x, y) for x, y in zip(table["left_step"], table["right_step"])],
        a: [fmt(v, digits(t)) for t, v in zip(table["metric"], table["left"])],
        b: [fmt(v, digits(t)) for t, v in zip(table["metric"], table["right"])],
        "abs diff": [fmt(v, 3) for v in table["abs_diff"]],
        "rel diff": [fmt(v, 3) for v in table["rel_diff"]],
    })


def speed_shown(table: pd.DataFrame, names: tuple[str, str], ratio: str) -> pd.DataFrame:
    """`speed_table` as text for a table: one column per side (`names`), the ratio column named `ratio`."""
    a, b = names
    return pd.DataFrame({"measure": table["measure"],
                         a: [fmt(v, 4) for v in table["left"]],
                         b: [fmt(v, 4) for v in table["right"]],
                         ratio: [fmt(v, 3) for v in table["ratio"]],
                         "points": table["points"]})
