"""The face-off's figures: first step, step time (p50 with a p95 whisker) and peak memory as bars, and
the step-time points of every mode as boxes. Data in (a speed_table, the runs), plotly figure out.

Bars are coloured by framework (scalars.FRAMEWORK_COLORS, the colours of every page) and hatched by
mode, so two modes of one framework stay apart without a second palette. Each bar is labelled with
the number it stands for; a measure a run has not recorded gets no bar and says so in the hover.
Labels come from run names, so they go through `text.html` (plotly reads them as HTML).
"""
from __future__ import annotations

import math
from typing import Sequence

import numpy as np
import pandas as pd
import plotly.graph_objects as go

from twinboard.contract import FRAMEWORK_LABELS
from twinboard.scalars import FRAMEWORK_COLORS, OTHER_COLORS
from twinboard.speed.faceoff import ModeRun
from twinboard.speed.measures import labels, steady
from twinboard.text import html

# Hatching a mode: eager plain (the reference), the compiled modes hatched, XLA crossed.
MODE_PATTERNS = {"eager": "", "compile": "/", "function": "/", "xla": "x"}
HEIGHT = 340
SPREAD_FOR_LOG = 30  # largest / smallest value past which a time axis goes logarithmic (XLA at 500 ms by 1 ms)
CONFIG = {"displaylogo": False}


def tick(label: str) -> str:
    """A row's label as an axis tick: HTML-escaped, the framework on one line and the mode under it."""
    return html(label).replace(" ", "<br>", 1)


def number(v: float, unit: str) -> str:
    """'0.423 s', '31.5 s', '1,190 MB': three significant digits, never an exponent."""
    return f"{v:,.0f} {unit}" if abs(v) >= 1000 else f"{v:.3g} {unit}"


def wide(values) -> bool:
    """Whether positive `values` span more than SPREAD_FOR_LOG: then a linear axis flattens the small ones."""
    v = np.asarray([x for x in values if x is not None and math.isfinite(x) and x > 0], dtype=float)
    return len(v) > 1 and v.max() / v.min() > SPREAD_FOR_LOG


def color(framework: str | None) -> str:
    return FRAMEWORK_COLORS.get(framework or "", OTHER_COLORS[0])


def _layout(fig: go.Figure, title: str, y_title: str, log_y: bool = False) -> go.Figure:
    fig.update_layout(title={"text": title, "x": 0.0, "xanchor": "left"}, height=HEIGHT, barmode="group",
                      margin={"l": 10, "r": 10, "t": 50, "b": 10}, showlegend=True,
                      legend={"orientation": "h", "yanchor": "top", "y": -0.25, "x": 0})
    fig.update_yaxes(title_text=y_title, type="log" if log_y else "linear", dtick=1 if log_y else None)  # decades
    fig.update_xaxes(tickangle=0, tickfont={"size": 10})  # framework over mode (tick): short enough to stay level
    return fig


def _bars(table: pd.DataFrame, column: str, unit: str, whisker: str | None = None) -> list[go.Bar]:
    """One bar trace per framework over the table's rows (x: their labels, in the table's order)."""
    traces = []
    for fw, rows in table.groupby("fw", sort=False, dropna=False):
        fw = None if isinstance(fw, float) else fw  # groupby gives NaN for a None key
        y = rows[column].to_numpy(dtype=float)
        shown = [number(v, unit) if math.isfinite(v) else "not recorded" for v in y]
        bar = go.Bar(
            x=[tick(lb) for lb in rows["label"]], y=[v if math.isfinite(v) else None for v in y],
            name=html(FRAMEWORK_LABELS.get(fw, "other")), marker_color=color(fw),
            marker_pattern_shape=[MODE_PATTERNS.get(m, ".") for m in rows["mode_key"]],
            text=[s if math.isfinite(v) else "" for s, v in zip(shown, y)], textposition="outside",
            customdata=shown, hovertemplate="%{x}<br>%{customdata}<extra></extra>")
        if whisker is not None:
            top = rows[whisker].to_numpy(dtype=float)
            up = np.where(np.isfinite(top) & np.isfinite(y), top - y, np.nan)
            bar.update(error_y={"type": "data", "symmetric": False, "array": [v if math.isfinite(v) else None
                                                                               for v in up],
                                "arrayminus": [0.0] * len(up), "thickness": 1.5, "width": 6},
                       customdata=[f"p50 {s}, p95 {number(t, unit)}" if math.isfinite(t) else s
                                   for s, t in zip(shown, top)])
        traces.append(bar)
    return traces


def first_step_figure(table: pd.DataFrame, log_y: bool = True) -> go.Figure:
    """First step time of each run (s): where compiling and tracing are paid. Log y by default:
    a compiled first step can be 1000x an eager one."""
    fig = go.Figure(_bars(table, "first step s", "s"))
    return _layout(fig, "First step (s): compiling and tracing happen here", "seconds" + (" (log)" if log_y else ""),
                   log_y)


def step_time_figure(table: pd.DataFrame, log_y: bool | None = None) -> go.Figure:
    """Step time p50 (bar) and p95 (whisker), ms, of the per-second means (measures.steady). Log y
    (None: when the times are `wide`) keeps a 1 ms mode readable beside a 500 ms one."""
    log_y = wide([*table["step ms p50"], *table["step ms p95"]]) if log_y is None else log_y
    fig = go.Figure(_bars(table, "step ms p50", "ms", whisker="step ms p95"))
    return _layout(fig, "Step time: p50, whisker to p95 (ms, of per-second means)",
                   "ms per step" + (" (log)" if log_y else ""), log_y)


def memory_figure(table: pd.DataFrame) -> go.Figure:
    """Peak resident memory of each trainer (MB, the largest perf/rss_mb)."""
    fig = go.Figure(_bars(table, "peak RSS MB", "MB"))
    return _layout(fig, "Peak memory (trainer RSS, MB)", "MB")


def step_box_figure(runs: Sequence[ModeRun], log_y: bool | None = None) -> go.Figure:
    """Every run's perf/step_ms points (measures.steady: no first step among them), as a box with the
    points beside it: each point the mean step time of about a second of training."""
    log_y = wide(np.concatenate([steady(r) for r in runs] or [[]])) if log_y is None else log_y
    fig = go.Figure()
    shown_fw: set = set()
    for run, label in zip(runs, labels(runs)):
        y = steady(run)
        fig.add_trace(go.Box(
            y=y, name=tick(label), marker_color=color(run.framework), boxpoints="all", jitter=0.4,
            pointpos=-1.6, legendgroup=run.framework or "other", showlegend=False,
            hovertemplate="%{y:.3g} ms<extra>" + html(label) + "</extra>"))
        shown_fw.add(run.framework)
    for fw in [f for f in FRAMEWORK_COLORS if f in shown_fw]:  # a legend of frameworks, not of boxes
        fig.add_trace(go.Scatter(x=[None], y=[None], mode="markers", marker_color=color(fw),
                                 name=FRAMEWORK_LABELS[fw], legendgroup=fw))
    return _layout(fig, "Step times (ms; each point a per-second mean)",
                   "ms per step" + (" (log)" if log_y else ""), log_y)
