"""Parity of a pair: per-step differences, where the curves part, the settings diff and why it matters, figures.

`read_settings` and `SettingsError` are the run-folder contract's (`twinboard.contract.files`), named
here because the settings diff starts from them."""
from twinboard.contract.files import read_settings, SettingsError
from twinboard.parity.charts import curves_figure, difference_figure, settings_table
from twinboard.parity.compare import (
    DEFAULT_TOL, FP64_TAG, TOLERANCES, REL_FLOOR, abs_diff, align, choose_tag, column_names, common_tags, differences,
    final_metrics, final_shown, first_part, float32_limited, fmt, parting_text, precision_note, precision_of,
    rel_diff, speed_shown, speed_table, summarize, summary_notes)
from twinboard.parity.settings import (
    EFFECT_ORDER, MISSING, NAMING, NOT_MATCHED, NUMBERS, ROUNDING, SPEED, UNKNOWN_EFFECT, explanation,
    flatten, Reason, settings_diff, why_they_differ)
