"""Parity of a pair: per-step differences, where the curves part, the settings diff and why it matters, figures."""
from twinboard.parity.charts import curves_figure, difference_figure
from twinboard.parity.compare import (
    FP64_TAG, REL_FLOOR, abs_diff, align, choose_tag, differences, final_metrics, first_part,
    float32_limited, fmt, rel_diff, speed_table, summarize)
from twinboard.parity.settings import (
    EFFECT_ORDER, MISSING, NAMING, NOT_MATCHED, NUMBERS, ROUNDING, SPEED, UNKNOWN_EFFECT, explanation,
    flatten, read_settings, Reason, settings_diff, SettingsError, why_they_differ)
