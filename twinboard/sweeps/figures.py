"""The Sweeps page's figures: parallel coordinates over the pairs, and a configuration's seed
aggregate per framework (mean line, band), drawn like the Scalars charts (framework colours, steps
on x). Pure: tables and aggregates in, plotly figures out; every visitor-made text goes through
twinboard.text.html.
"""
from __future__ import annotations

import math

import numpy as np
import pandas as pd
import plotly.graph_objects as go

from twinboard.contract.files import FRAMEWORK_LABELS, FRAMEWORKS
from twinboard.scalars import FRAMEWORK_COLORS
from twinboard.sweeps.stats import BANDS, Aggregate, tag_words
from twinboard.text import html

BAND_ALPHA = 0.18
MAX_CATEGORIES = 60  # ticks a categorical axis shows; a 500-pair sweep has at most 50 values a field


def _rgba(hex_color: str, alpha: float) -> str:
    r, g, b = (int(hex_color[i:i + 2], 16) for i in (1, 3, 5))
    return f"rgba({r},{g},{b},{alpha})"


def _dimension(label: str, values: pd.Series) -> dict:
    """A parcoords axis: numbers as they are, anything else as evenly spaced named ticks."""
    numeric = pd.to_numeric(values, errors="coerce")
    if numeric.notna().all() and not values.map(lambda v: isinstance(v, (bool, np.bool_))).any():
        finite = numeric[np.isfinite(numeric)]
        lo, hi = (float(finite.min()), float(finite.max())) if len(finite) else (0.0, 1.0)
        return {"label": html(label, 60), "values": numeric.to_numpy(dtype=float), "range": [lo, hi or lo + 1]}
    names = list(dict.fromkeys(map(str, values)))[:MAX_CATEGORIES]
    codes = values.map(lambda v: names.index(str(v)) if str(v) in names else -1)
    return {"label": html(label, 60), "values": codes.to_numpy(dtype=float), "tickvals": list(range(len(names))),
            "ticktext": [html(n, 30) for n in names], "range": [0, max(len(names) - 1, 1)]}


def parallel_figure(table: pd.DataFrame, fields: list[str], metric_columns: list[str], color_by: str) -> go.Figure:
    """One line per pair across the grid's fields, its seed and `metric_columns`, coloured by `color_by`.
    Pairs with no value yet in `color_by` are grey at the low end of the scale."""
    dims = [_dimension(f, table[f]) for f in fields]
    dims.append(_dimension("seed", table["seed"]))
    for col in metric_columns:
        values = pd.to_numeric(table[col], errors="coerce")
        finite = values[np.isfinite(values)]
        lo, hi = (float(finite.min()), float(finite.max())) if len(finite) else (0.0, 1.0)
        dims.append({"label": html(col, 60), "values": values.fillna(lo).to_numpy(dtype=float),
                     "range": [lo, hi if hi > lo else lo + 1e-9]})
    color = pd.to_numeric(table[color_by], errors="coerce") if color_by in table else pd.Series(np.nan, table.index)
    finite = color[np.isfinite(color)]
    fill = float(finite.min()) if len(finite) else 0.0
    fig = go.Figure(go.Parcoords(
        dimensions=dims, line={"color": color.fillna(fill).to_numpy(dtype=float), "colorscale": "Viridis",
                               "showscale": True, "colorbar": {"title": {"text": html(color_by, 60), "side": "right"}}},
        labelangle=-12, labelside="top"))
    fig.update_layout(height=420, margin={"l": 60, "r": 40, "t": 80, "b": 30},
                      title={"text": f"{len(table)} pairs, coloured by {html(color_by, 80)}", "x": 0})
    return fig


def aggregate_figure(config: str, aggregates: dict[str, Aggregate], tag: str, band: str,
                     height: int = 320) -> go.Figure:
    """One configuration: each framework's mean over seeds with its band (BANDS[band])."""
    fig = go.Figure()
    for fw in FRAMEWORKS:
        agg = aggregates.get(fw)
        if agg is None or not len(agg.step):
            continue
        color, name = FRAMEWORK_COLORS[fw], FRAMEWORK_LABELS[fw]
        x = agg.step.astype(float)
        has_band = np.isfinite(agg.low) & np.isfinite(agg.high)
        if has_band.any() and len(x) > 1:
            fig.add_trace(go.Scatter(
                x=np.concatenate([x[has_band], x[has_band][::-1]]),
                y=np.concatenate([agg.high[has_band], agg.low[has_band][::-1]]),
                fill="toself", fillcolor=_rgba(color, BAND_ALPHA), line={"width": 0}, hoverinfo="skip",
                name=f"{name} {BANDS[band]}", legendgroup=fw, showlegend=False))
        most = int(agg.n.max()) if len(agg.n) else 0
        fig.add_trace(go.Scatter(
            x=x, y=agg.mean, mode="lines+markers" if len(x) < 30 else "lines",
            line={"color": color, "width": 2}, marker={"size": 4}, name=f"{name} (mean of {most} seeds)",
            legendgroup=fw, customdata=np.stack([agg.low, agg.high, agg.n], axis=1),
            hovertemplate=f"{name} step %{{x}}<br>mean %{{y:.4g}}<br>band %{{customdata[0]:.4g}}.."
                          "%{customdata[1]:.4g}<br>%{customdata[2]} seeds<extra></extra>"))
    fig.update_layout(
        height=height, margin={"l": 50, "r": 10, "t": 60, "b": 40}, hovermode="x unified",
        title={"text": html(config, 120), "x": 0,
               "subtitle": {"text": f"{html(tag_words(tag))}: mean over seeds, band: {BANDS[band]}",
                            "font": {"size": 11, "color": "#666"}}},
        legend={"orientation": "h", "y": -0.25}, xaxis_title="step", yaxis_title=html(tag))
    if not fig.data:
        fig.add_annotation(text="no logged values yet", showarrow=False, xref="paper", yref="paper", x=0.5, y=0.5)
    return fig


def gap_figure(gaps: pd.DataFrame, tag: str) -> go.Figure:
    """Each configuration's gap (TensorFlow - PyTorch) with its 95% interval: a dot on a line, zero marked."""
    scale = 100.0 if tag.startswith("accuracy") else 1.0
    unit = " (points)" if scale == 100 else ""
    y = [html(c, 80) for c in gaps["configuration"]] if len(gaps) else []
    mean = gaps["gap (TF - PT)"].to_numpy(dtype=float) * scale if len(gaps) else np.zeros(0)
    lo = gaps["95% CI low"].to_numpy(dtype=float) * scale if len(gaps) else np.zeros(0)
    hi = gaps["95% CI high"].to_numpy(dtype=float) * scale if len(gaps) else np.zeros(0)
    err_plus = np.where(np.isfinite(hi), hi - mean, 0)
    err_minus = np.where(np.isfinite(lo), mean - lo, 0)
    colors = ["#888" if not math.isfinite(a) or not math.isfinite(b) or a <= 0 <= b else "#C00"
              for a, b in zip(lo, hi)]
    fig = go.Figure(go.Scatter(
        x=mean, y=y, mode="markers", marker={"size": 9, "color": colors},
        error_x={"type": "data", "array": err_plus, "arrayminus": err_minus, "thickness": 1.5},
        hovertemplate="%{y}<br>gap %{x:.3g}<extra></extra>"))
    fig.add_vline(x=0, line={"color": "#999", "dash": "dot"})
    fig.update_layout(
        height=max(200, 40 + 28 * len(y)), margin={"l": 10, "r": 10, "t": 50, "b": 40},
        title={"text": f"TensorFlow - PyTorch, final {html(tag_words(tag))}{unit}: 95% CI across seeds "
                       "(red: beyond seed noise)", "x": 0, "font": {"size": 13}},
        yaxis={"autorange": "reversed", "automargin": True})
    return fig
