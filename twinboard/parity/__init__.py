"""Parity of a pair: per-step differences, where the curves part (within a `Tolerance`: |a − b| ≤
atol + rtol·max(|a|, |b|)), the settings diff and why it matters, the verdict at a glance, figures.

`read_settings` and `SettingsError` are the run-folder contract's (`twinboard.contract.files`), named
here because the settings diff starts from them."""
from twinboard.contract.files import read_settings, SettingsError
from twinboard.parity.charts import curves_figure, difference_figure, settings_table
from twinboard.parity.compare import (
    ATOLS, DEFAULT_TOL, FP64_TAG, REL_FLOOR, RTOLS, Summary, Tolerance, abs_diff, align, choose_tag, common_tags,
    differences, final_metrics, first_part, float32_limited, fmt, precision_of, rel_diff, speed_table,
    summarize, tolerance_share)
from twinboard.parity.settings import (
    COSMETIC, EFFECT_ORDER, LAYOUT, MISSING, NAMING, NOT_MATCHED, NUMBERS, ROUNDING, SPEED, UNKNOWN_EFFECT,
    explanation, flatten, Reason, settings_diff, shape_explanation, why_they_differ)
from twinboard.parity.text import (
    MODE_WORDS, mode_text,
    column_names, cosmetic_note, final_shown, parting_text, precision_note, speed_shown, summary_notes,
    tolerance_rule, verdict, Verdict)
