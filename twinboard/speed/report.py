"""The face-off as plain text, for `twinboard faceoff --wait`: the speed table and the lines."""
from __future__ import annotations

import math

import pandas as pd

from twinboard.contract import FRAMEWORK_LABELS

# Columns of the text table: what fits a terminal. The page shows all of them.
TEXT_COLUMNS = ["label", "import s", "first step s", "step ms p50", "step ms p95", "samples/s p50",
                "peak RSS MB", "final train loss", "val accuracy", "loss agrees"]


def cell(value: object) -> str:
    """A number with 4 significant digits (whole from 10,000), '-' where nothing was recorded; text as it is."""
    if isinstance(value, float):
        if math.isnan(value):
            return "-"
        return f"{value:,.0f}" if abs(value) >= 10_000 else f"{value:.4g}"  # 32,000 samples/s, not 3.2e+04
    return str(value)


def table_text(table: pd.DataFrame) -> str:
    """The speed table's TEXT_COLUMNS as aligned text, one row a run."""
    rows = [TEXT_COLUMNS] + [[cell(r[c]) for c in TEXT_COLUMNS] for _, r in table.iterrows()]
    widths = [max(len(row[i]) for row in rows) for i in range(len(TEXT_COLUMNS))]
    return "\n".join("  ".join(v.ljust(w) for v, w in zip(row, widths)).rstrip() for row in rows)


def lines_text(lines: list[tuple[str, str]]) -> str:
    return "\n".join(f"{FRAMEWORK_LABELS.get(fw, fw)}: {line}" for fw, line in lines)
