"""What each mode cost and whether it computed the same: the speed table and the break-even lines.

Every number is read from what the trainers recorded, none is modelled:
- import and first-step time: settings.json `import_s` / `first_step_s` (seconds), else the scalars
  `perf/import_s` / `perf/first_step_s` written at step 1. The first step holds torch.compile's
  compiling and tf.function's tracing, which is why it is measured on its own.
- step time: the `perf/step_ms` points. Each is the MEAN step time since the previous point (the
  trainers sample about once a second), so p50 and p95 are percentiles of per-second means, not of
  single steps. Trainers that record the first step leave it out of these points; older runs (no
  first-step record) had it in their first point, which is then left out, so that a 20 s compile is
  never averaged into a step time.
- samples per second: the median of `perf/samples_per_s` over the same points.
- peak memory: the largest `perf/rss_mb` (the trainer's resident set, MB).
- final loss and accuracy: the last `loss/train` (`loss/train_fp64` for float64 runs), `loss/val`,
  `accuracy/val`.
- agreement: the largest relative difference |a - b| / max(|a|, |b|) of the train loss from the
  eager run of the same framework, at the steps both logged, and the first step where the curves
  part beyond Parity's default tolerance for the precision (twinboard.parity).
"""
from __future__ import annotations

import math
from typing import Mapping, Sequence

import numpy as np
import pandas as pd

from twinboard import parity
from twinboard.contract import FRAMEWORK_LABELS
from twinboard.parity.compare import last_per_step
from twinboard.speed.faceoff import ModeRun

STEP_TAG, SPS_TAG, RSS_TAG = "perf/step_ms", "perf/samples_per_s", "perf/rss_mb"
IMPORT_TAG, FIRST_TAG = "perf/import_s", "perf/first_step_s"
LOSS_TAG, FP64_TAG = "loss/train", parity.FP64_TAG
VAL_LOSS_TAG, VAL_ACC_TAG = "loss/val", "accuracy/val"
MODE_LABELS = {("torch", "eager"): "eager", ("torch", "compile"): "torch.compile",
               ("tensorflow", "eager"): "eager", ("tensorflow", "function"): "tf.function",
               ("tensorflow", "xla"): "XLA (jit_compile)"}
REFERENCE = "reference"  # the `loss agrees` cell of the eager run the others are compared with

# Numeric columns, in the order the page and the CLI show them (with `label`, `run`, `ran as` first).
NUMBERS = ["import s", "first step s", "step ms p50", "step ms p95", "samples/s p50", "peak RSS MB",
           "final train loss", "val loss", "val accuracy", "loss max rel diff vs eager"]
COLUMNS = ["label", "framework", "mode", "run", "ran as", *NUMBERS, "loss agrees", "perf points", "fw", "mode_key"]


def mode_label(run: ModeRun) -> str:
    """'PyTorch torch.compile', 'TensorFlow XLA (jit_compile)'; an upload side by its run name."""
    if run.framework is None:
        return run.name
    return f"{FRAMEWORK_LABELS[run.framework]} {MODE_LABELS.get((run.framework, run.mode), run.mode)}"


def labels(runs: Sequence[ModeRun]) -> list[str]:
    """mode_label of each run, numbered where two runs share one (`PyTorch eager #1`, `#2`, in
    `runs`' order); the table's `run` column says which run each is."""
    plain = [mode_label(r) for r in runs]
    return [f"{lb} #{plain[:i + 1].count(lb)}" if plain.count(lb) > 1 else lb for i, lb in enumerate(plain)]


def points(series) -> pd.Series:
    """A series' values by step, sorted; a step written twice keeps its last write."""
    return last_per_step(series.step, series.value) if series is not None else pd.Series(dtype=float)


def steady(run: ModeRun, tag: str = STEP_TAG) -> np.ndarray:
    """The per-second perf points of `tag` that hold no first step, in step order: all of them from a
    trainer that records the first step apart, all but the first from an older one."""
    values = points(run.scalars.get(tag)).to_numpy()
    return values if math.isfinite(_recorded(run, "first_step_s", FIRST_TAG)) else values[1:]


def _recorded(run: ModeRun, key: str, tag: str) -> float:
    """settings.json[key] (seconds), else the first point of the scalar `tag`, else NaN."""
    value = run.settings.get(key)
    if isinstance(value, (int, float)) and not isinstance(value, bool):
        return float(value)
    s = points(run.scalars.get(tag))
    return float(s.iloc[0]) if len(s) else math.nan


def _last(run: ModeRun, tag: str) -> float:
    s = points(run.scalars.get(tag))
    return float(s.iloc[-1]) if len(s) else math.nan


def _percentile(values: np.ndarray, q: float) -> float:
    values = values[np.isfinite(values)]
    return float(np.percentile(values, q)) if len(values) else math.nan


def loss_tag(run: ModeRun, other: ModeRun | None = None) -> str:
    """`loss/train_fp64` when every run given wrote it (float64 runs), else `loss/train`."""
    both = [r for r in (run, other) if r is not None]
    return FP64_TAG if all(FP64_TAG in r.scalars for r in both) else LOSS_TAG


def reference(runs: Sequence[ModeRun], framework: str | None) -> ModeRun | None:
    """The eager run of `framework` the other modes are compared with: the first in `runs`' order."""
    return next((r for r in runs if r.framework == framework and r.framework and r.mode == "eager"), None)


def loss_agreement(run: ModeRun, ref: ModeRun) -> parity.Summary | None:
    """Parity's summary of `run`'s train loss against `ref`'s (None when either has none logged)."""
    tag = loss_tag(run, ref)
    if tag not in run.scalars or tag not in ref.scalars:
        return None
    diff = parity.differences(ref.scalars[tag], run.scalars[tag])
    tol = parity.DEFAULT_TOL[parity.precision_of(tag, ref.scalars[tag].value)]
    return parity.summarize(diff, tol)


def agreement_text(summary: parity.Summary | None) -> str:
    """A `loss agrees` cell: 'yes (within rtol 1e-05, atol 1e-05)', 'parts at step 57', ..."""
    if summary is None or summary.compared == 0:
        return "no common steps"
    if summary.first_part is None:
        return f"yes (within rtol {summary.tol.rtol:.0e}, atol {summary.tol.atol:.0e})"
    return f"parts at step {summary.first_part:,}"


def speed_table(runs: Sequence[ModeRun]) -> pd.DataFrame:
    """One row a run, in `runs`' order (read_runs orders them by framework and mode): COLUMNS.

    NaN where a run has not recorded a measure (yet). `fw` and `mode_key` are the raw framework and
    mode names, for the figures; `perf points` counts the step-time points p50 and p95 summarize."""
    rows = []
    for run, label in zip(runs, labels(runs)):
        ref = reference(runs, run.framework)
        summary = loss_agreement(run, ref) if ref is not None and ref is not run else None
        step = steady(run)
        agrees = REFERENCE if ref is run else agreement_text(summary) if ref is not None else "no eager run"
        rows.append({
            "label": label, "framework": FRAMEWORK_LABELS.get(run.framework, str(run.framework)),
            "mode": MODE_LABELS.get((run.framework, run.mode), run.mode), "run": run.run_id,
            "ran as": run.execution or "not recorded",
            "import s": _recorded(run, "import_s", IMPORT_TAG),
            "first step s": _recorded(run, "first_step_s", FIRST_TAG),
            "step ms p50": _percentile(step, 50), "step ms p95": _percentile(step, 95),
            "samples/s p50": _percentile(steady(run, SPS_TAG), 50),
            "peak RSS MB": float(np.nanmax(v)) if len(v := points(run.scalars.get(RSS_TAG)).to_numpy()) else math.nan,
            "final train loss": _last(run, loss_tag(run)), "val loss": _last(run, VAL_LOSS_TAG),
            "val accuracy": _last(run, VAL_ACC_TAG),
            "loss max rel diff vs eager": summary.max_rel if summary is not None else math.nan,
            "loss agrees": agrees, "perf points": int(np.isfinite(step).sum()),
            "fw": run.framework, "mode_key": run.mode})
    return pd.DataFrame(rows, columns=COLUMNS)


# --- the plain-language lines -------------------------------------------------------------------
def break_even(first_compiled_s: float, first_eager_s: float, step_compiled_ms: float,
               step_eager_ms: float) -> float:
    """Steps after which the compiled mode's extra first step is paid back by its faster steps:
    (first_compiled - first_eager) / (step_eager - step_compiled); 0 when its first step is not
    slower either; inf ("never") when its steps are not faster; NaN when a number is missing."""
    values = (first_compiled_s, first_eager_s, step_compiled_ms, step_eager_ms)
    if not all(math.isfinite(v) for v in values):
        return math.nan
    saved_s = (step_eager_ms - step_compiled_ms) / 1e3
    extra_s = first_compiled_s - first_eager_s
    if saved_s <= 0:
        return 0.0 if extra_s <= 0 and saved_s == 0 else math.inf
    return max(0.0, math.ceil(round(extra_s / saved_s, 6)))  # 19.95 / 0.0005 is 39900.000000000004


def _ms(v: float) -> str:
    return (f"{v:,.0f} ms" if abs(v) >= 1000 else f"{v:.3g} ms") if math.isfinite(v) else "(not measured)"


def _s(v: float) -> str:
    return f"{v:,.0f} s" if abs(v) >= 1000 else f"{v:.3g} s"


def mode_sentence(row: Mapping, eager: Mapping, total_steps: int | None) -> str:
    """What compiling cost `row` against `eager` (both speed_table rows) and when it paid off."""
    name = row["mode"]
    n = break_even(row["first step s"], eager["first step s"], row["step ms p50"], eager["step ms p50"])
    if math.isnan(n):
        return f"{name}: not measured yet (both need a first step and a step-time point)."
    extra = row["first step s"] - eager["first step s"]
    first = (f"compiling took {_s(extra)} (first step {_s(row['first step s'])} against "
             f"{_s(eager['first step s'])} eager)" if extra > 0 else
             f"its first step took {_s(row['first step s'])} against {_s(eager['first step s'])} eager")
    steps = f"p50 {_ms(row['step ms p50'])} against {_ms(eager['step ms p50'])}"
    if math.isinf(n):
        return f"{name}: {first} and never paid for itself: its steps are not faster ({steps})."
    if n == 0:
        return f"{name}: {first} and was ahead from the start ({steps})."
    if total_steps and n > total_steps:
        return (f"{name}: {first}; it would pay for itself after {int(n):,} steps ({steps}), and this run "
                f"had only {total_steps:,}.")
    run_had = f"; this run had {total_steps:,}" if total_steps else ""
    return f"{name}: {first} and paid for itself after {int(n):,} steps ({steps}{run_had})."


def agreement_sentence(row: Mapping) -> str:
    rel, agrees = row["loss max rel diff vs eager"], row["loss agrees"]
    if agrees.startswith("yes") and rel == 0:
        return "its loss is identical to eager's at every step."
    if agrees.startswith("yes"):
        return f"its loss matches eager's ({agrees[5:-1]}; largest relative difference {rel:.2g})."
    if agrees.startswith("parts"):
        return f"its loss differs from eager's: it {agrees}, by up to {rel:.2%} (relative)."
    return f"loss against eager: {agrees}."


def framework_lines(runs: Sequence[ModeRun], table: pd.DataFrame) -> list[tuple[str, str]]:
    """(framework, one line) for each framework: its framework_sentences joined."""
    return [(fw, " ".join(parts)) for fw, parts in framework_sentences(runs, table)]


def framework_sentences(runs: Sequence[ModeRun], table: pd.DataFrame) -> list[tuple[str, list[str]]]:
    """(framework, sentences) for each framework, a sentence for each run but its eager reference: for
    another mode, what compiling cost, when it paid off, and whether its loss agrees; for a second
    eager run, the timing spread between two identical runs (the noise the differences have to beat).
    `table` is speed_table(runs)."""
    out = []
    for fw in dict.fromkeys(r.framework for r in runs if r.framework):
        ref = reference(runs, fw)
        rows = [(r, row) for r, (_, row) in zip(runs, table.iterrows()) if r.framework == fw]
        eager = next(row for r, row in rows if r is ref) if ref is not None else None
        if eager is None:
            out.append((fw, [f"No eager {FRAMEWORK_LABELS[fw]} run to compare its modes with."]))
            continue
        parts = []
        for r, row in rows:
            if r is ref:
                continue
            if r.mode == "eager":
                parts.append(f"{row['label']} ({r.run_id}) stepped at p50 {_ms(row['step ms p50'])} against "
                             f"{_ms(eager['step ms p50'])} for #1: the spread between two identical runs; "
                             + agreement_sentence(row))
                continue
            total = r.settings.get("total_steps") if isinstance(r.settings.get("total_steps"), int) else None
            parts.append(mode_sentence(row, eager, total)[:-1] + "; " + agreement_sentence(row))
        if parts:
            out.append((fw, parts))
    return out
