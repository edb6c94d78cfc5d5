"""What the Parity page says: the verdict at a glance, where the curves part, the footnotes, and the
tables as text. Pure: a `Summary`, the settings' `Reason`s and frames in, markdown strings and
DataFrames of strings out. "Left" is the PyTorch side of a pair. Tags and settings keys come from
the runs' files (an upload's, so a visitor's): the markdown quotes them as text (`twinboard.text`).
"""
from __future__ import annotations

import fnmatch
from dataclasses import dataclass

import pandas as pd

from twinboard.parity.compare import FP64_TAG, Summary, fmt, tolerance_share
from twinboard.parity.settings import (
    LAYOUT, MISSING, MODEL_KEYS, NAMING, NOT_MATCHED, NUMBERS, ROUNDING, Reason)
from twinboard.text import code


def precision_note(tag: str, precision: str) -> str:
    """What differences comparing `tag` can show, given the precision its values were written in."""
    if tag == FP64_TAG:
        return (f"Comparing `{FP64_TAG}`: float64 tensors written every step, so differences down to "
                "~1e-16 relative show.")
    if precision == "float32":
        return (f"Comparing {code(tag)}: float32 event scalars, rounded to ~6e-8 relative when written, "
                "so differences below ~1e-7 relative cannot show (a float64 run also writes "
                f"`{FP64_TAG}` at full precision).")
    return f"Comparing {code(tag)} (values wider than float32)."


def tolerance_rule(s: Summary) -> str:
    """The rule the verdict applies, with the numbers in it."""
    return f"|a − b| ≤ atol + rtol·max(|a|, |b|), {s.tol}"


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


def parting_text(diff: pd.DataFrame, s: Summary) -> str:
    """Where the curves part and by how much (s.first_part must be a step)."""
    row = diff.loc[diff.step == s.first_part].iloc[0]
    allowed = float(s.tol.allowed(row["left"], row["right"]))
    share = float(tolerance_share(diff.loc[diff.step == s.first_part], s.tol)[0])
    by = ("one side is NaN/inf there" if share == float("inf") else
          f"they differ by {fmt(row['abs_diff'], 3)} ({fmt(row['rel_diff'], 3)} relative), over the "
          f"{fmt(allowed, 3)} the tolerance allows there")
    return f"The two curves part at step **{s.first_part:,}**: {by}."


def _keys(keys: list[str]) -> str:
    return ", ".join(code(k, 200) for k in keys)


def _is_model_key(key: str) -> bool:
    return any(fnmatch.fnmatchcase(key, p) for p in MODEL_KEYS)


@dataclass(frozen=True)
class Verdict:
    level: str  # "success" (matched and within tolerance), "warning" or "info" (nothing to judge yet)
    text: str  # markdown: a bold headline, then one sentence each on the model, the settings, the curves


def verdict(reasons: list[Reason], s: Summary | None, settings_known: tuple[bool, bool],
            diff: pd.DataFrame | None = None) -> Verdict:
    """The comparison at a glance. `reasons`: `why_they_differ` of the settings diff; `s`, `diff`:
    the compared series' summary and differences, None when no series is compared yet."""
    by_effect: dict[str, list[str]] = {}
    for r in reasons:
        by_effect.setdefault(r.effect, []).extend(r.keys)
    unmatched = by_effect.get(NOT_MATCHED, [])
    not_built = [k for k in unmatched if _is_model_key(k)]
    other_run = [k for k in unmatched if not _is_model_key(k)]
    numbers = by_effect.get(NUMBERS, [])
    parts = s is not None and s.first_part is not None
    within = s is not None and s.compared > 0 and not parts
    sentences = []
    if not all(settings_known):
        sentences.append("Settings unknown for " + ("both sides" if not any(settings_known) else "one side")
                         + ", so only the curves are compared.")
    else:
        if not_built:
            sentences.append(f"The two models are not built the same: {_keys(not_built)} differ.")
        else:
            layout = " (in each framework's own layout: NCHW against NHWC)" if by_effect.get(LAYOUT) else ""
            sentences.append("The two models are built the same: the same layers, output shapes and "
                             f"parameter counts{layout}.")
        if other_run:
            sentences.append(f"Not the same experiment: {_keys(other_run)} differ.")
        if numbers:
            sentences.append(f"Settings that change the numbers differ: {_keys(numbers)}.")
        elif not unmatched:
            rounding = by_effect.get(ROUNDING, [])
            sentences.append("No setting that changes the numbers differs" + (
                f"; {_keys(rounding)} change the rounding only." if rounding else "."))
    if within:
        sentences.append(f"The curves agree within tolerance at all {s.compared:,} compared steps "
                         f"({tolerance_rule(s)}).")
    elif parts:
        sentences.append(parting_text(diff, s) if diff is not None else
                         f"The two curves part at step **{s.first_part:,}**.")
        if all(settings_known) and not unmatched and not numbers:
            sentences.append("No setting explains it, so this is rounding that grew step by step (training "
                             "amplifies last-bit differences); a float64 run shows whether the two sides "
                             "compute the same thing.")
    known = all(settings_known)  # without settings nothing says the pair is matched: the curves only
    if not_built or other_run:
        headline, level = "Not the same run.", "warning"
    elif numbers:
        headline, level = "Matched models, different numerics.", "warning"
    elif parts:
        headline, level = "Matched, but the curves part." if known else "The curves part.", "warning"
    elif within:
        headline, level = "Matched, within tolerance." if known else "Within tolerance.", "success"
    else:
        headline, level = "Nothing compared yet.", "info"
    return Verdict(level, f"**{headline}** " + " ".join(sentences))


def cosmetic_note(reasons: list[Reason]) -> str | None:
    """One line naming the settings that differ only in naming or layout (expected between two
    frameworks, so not listed with their reasons); None when there are none."""
    parts = []
    for effect, what in ((NAMING, "Differ in name only (expected between two frameworks)"),
                         (LAYOUT, "In layout only (the same shapes, channels first against channels last)")):
        keys = [k for r in reasons if r.effect == effect for k in r.keys]
        if keys:
            parts.append(f"{what}: {_keys(keys)}.")
    return " ".join(parts) or None


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


# settings.json's execution_mode (the RunSpec's torch_mode / tf_mode values) in the words people use.
MODE_WORDS = {"eager": "eager", "compile": "torch.compile", "function": "tf.function",
              "xla": "tf.function with XLA (jit_compile)"}


def mode_text(mode: object) -> str:
    """'tf.function' for "function"; older runs wrote the words themselves; None -> 'unknown'."""
    return MODE_WORDS.get(mode, str(mode)) if mode else "unknown"
