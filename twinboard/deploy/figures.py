"""The Deploy page's figures: one bar chart per measure (size, latency, throughput, accuracy), every
artifact of both sides on one axis, PyTorch's first and coloured as on every page; and quantization's
trade as points, size against validation accuracy. Data in (tables.artifact_table), plotly out.

Artifact names come from deploy.json files, so they go through `text.html` (plotly reads HTML).
A measure an artifact did not record gets no bar, and its hover says why.
"""
from __future__ import annotations

import math

import pandas as pd
import plotly.graph_objects as go

from twinboard.contract import FRAMEWORK_LABELS
from twinboard.deploy.tables import FLOAT_OF
from twinboard.scalars import FRAMEWORK_COLORS, OTHER_COLORS
from twinboard.text import html

HEIGHT = 320
SPREAD_FOR_LOG = 30  # largest / smallest past which an axis goes logarithmic (SavedModel 500 µs by LiteRT 2 µs)
CONFIG = {"displaylogo": False}
MEASURES = {  # figure key -> (column, title, axis title, whisker column)
    "size": ("size KB", "File size", "KB", None),
    "latency": ("latency µs p50", "Single-sample latency (p50, whisker to p99)", "µs", "latency µs p99"),
    "throughput": ("samples/s (batch 256)", "Throughput at batch 256", "samples / s", None),
    "accuracy": ("val accuracy", "Validation accuracy", "accuracy", None),
}


def _value(v) -> float | None:
    return None if v is None or (isinstance(v, float) and math.isnan(v)) else float(v)


def short(v: float | None) -> str:
    """A bar's label: 3 significant digits, thousands and millions as k and M (1.03M, 539k, 0.978)."""
    if v is None:
        return ""
    for div, unit in ((1e6, "M"), (1e3, "k")):
        if abs(v) >= div:
            return f"{v / div:.3g}{unit}"
    return f"{v:.3g}"


def _wide(values: list[float]) -> bool:
    v = [x for x in values if x is not None and x > 0]
    return len(v) > 1 and max(v) / min(v) > SPREAD_FOR_LOG


def bar_figure(table: pd.DataFrame, measure: str) -> go.Figure:
    """One bar an artifact, grouped by side; `measure` is a MEASURES key."""
    column, title, axis, whisker = MEASURES[measure]
    fig = go.Figure()
    values = []
    for fw, rows in table.groupby("fw", sort=False):
        ys = [_value(v) for v in rows[column]]
        values += ys
        ticks = [html(a) for a in rows["artifact"]]  # the colour says the side; names differ across sides
        hover = [html(f"{FRAMEWORK_LABELS.get(fw, fw)} {a}: " + (f"{y:.4g} {axis}" if y is not None else
                                                                 f"not measured ({e or 'not recorded'})"))
                 for a, y, e in zip(rows["artifact"], ys, rows["note"])]
        error_y = None
        if whisker is not None:
            up = [(_value(w) - y) if y is not None and _value(w) is not None else None
                  for y, w in zip(ys, rows[whisker])]
            error_y = {"type": "data", "symmetric": False, "array": up, "arrayminus": [0] * len(up)}
        fig.add_bar(x=ticks, y=ys, name=html(FRAMEWORK_LABELS.get(fw, fw)), error_y=error_y,
                    marker_color=FRAMEWORK_COLORS.get(fw, OTHER_COLORS[0]), hovertext=hover, hoverinfo="text",
                    text=[short(y) for y in ys], textposition="outside")
    log = measure != "accuracy" and _wide(values)
    # Each artifact is its own category, held by one side only: overlaid, each bar takes the full slot.
    fig.update_layout(title={"text": title, "x": 0.0, "xanchor": "left"}, height=HEIGHT, barmode="overlay",
                      margin={"l": 10, "r": 10, "t": 50, "b": 10}, showlegend=True,
                      legend={"orientation": "h", "yanchor": "top", "y": -0.35, "x": 0})
    fig.update_yaxes(title_text=axis + (" (log)" if log else ""), type="log" if log else "linear",
                     range=[0, 1.05] if measure == "accuracy" else None)
    fig.update_xaxes(tickangle=-30, tickfont={"size": 10})
    return fig


def quantization_figure(table: pd.DataFrame) -> go.Figure | None:
    """Each quantized artifact and its float twin as points, size (x) against validation accuracy (y):
    int8's gain in size and its cost in accuracy read off one chart. None when there is nothing to draw."""
    family = set(FLOAT_OF) | set(FLOAT_OF.values())
    table = table[table["key"].isin(family) & table["size KB"].notna() & table["val accuracy"].notna()]
    if table.empty:
        return None
    fig = go.Figure()
    for fw, rows in table.groupby("fw", sort=False):
        names = [html(a) for a in rows["artifact"]]
        fig.add_scatter(x=rows["size KB"], y=rows["val accuracy"], mode="markers+text", text=names,
                        textposition="top center", name=html(FRAMEWORK_LABELS.get(fw, fw)),
                        marker={"size": 11, "color": FRAMEWORK_COLORS.get(fw, OTHER_COLORS[0])},
                        hovertext=[f"{n}: {s:.1f} KB, accuracy {a:.4f}" for n, s, a in
                                   zip(names, rows["size KB"], rows["val accuracy"])], hoverinfo="text")
    fig.update_layout(title={"text": "Size against accuracy (quantization's trade)", "x": 0.0, "xanchor": "left"},
                      height=HEIGHT, margin={"l": 10, "r": 10, "t": 50, "b": 10},
                      legend={"orientation": "h", "yanchor": "top", "y": -0.25, "x": 0})
    fig.update_xaxes(title_text="file size, KB", rangemode="tozero")
    lo, hi = float(table["val accuracy"].min()), float(table["val accuracy"].max())
    pad = max((hi - lo) * 0.3, 0.002)  # room for the labels above and below the points
    fig.update_yaxes(range=[lo - pad, hi + pad])
    fig.update_yaxes(title_text="validation accuracy")
    return fig
