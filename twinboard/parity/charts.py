"""Plotly figures and styled tables for the Parity page. Pure: a `parity.differences` frame (or the
settings diff) in, a figure (or a pandas Styler) out.

Both figures are drawn against the step; the tolerance (atol + rtol·max(|a|, |b|), a `Tolerance`)
is a dashed line per step on the absolute panel, where a step beyond it is exactly a step that parts; each series goes to the browser as at most `MAX_POINTS`
points (MinMaxLTTB over log10 of the relative difference, which keeps its spikes). Zero differences
(bit-identical steps) and NaN/inf have no place on a log axis: they are drawn as gaps. Tags and side
names are plain text (an upload's): the figures escape them for plotly (`twinboard.text.html`).
"""
from __future__ import annotations

import numpy as np
import pandas as pd
import plotly.graph_objects as go
from plotly.subplots import make_subplots

from twinboard.parity.compare import Tolerance
from twinboard.parity.settings import LAYOUT, NAMING, NOT_MATCHED, NUMBERS, ROUNDING, SPEED
from twinboard.scalars import DIFF_COLOR, MAX_POINTS, downsample, side_colors
from twinboard.text import html

# A difference is neither side: neither framework's colour, nor one that passes for it (a blue beside
# TensorFlow's, a violet that deuteranopia turns into it). Black beside the grey tolerance line, and
# the scalars' difference grey alone on the relative panel.
DIFF_COLORS = {"abs": "#000000", "rel": DIFF_COLOR}
TOL_COLOR = "#888888"
PART_COLOR = "#D62728"
# A differing setting's row, by its effect: red changes the numbers or the experiment, yellow rounding
# or speed only, grey layout or naming only.
ROW_COLORS = {NOT_MATCHED: "#F8C9C4", NUMBERS: "#FAD9D5", ROUNDING: "#FFF1C9", SPEED: "#FFF1C9",
              LAYOUT: "#ECEEF2", NAMING: "#ECEEF2"}


def _log_plottable(y) -> np.ndarray:
    """Values a log axis can draw; everything else (0, negative, NaN, inf) becomes a gap (NaN)."""
    y = np.asarray(y, dtype=np.float64).copy()
    y[~(np.isfinite(y) & (y > 0))] = np.nan
    return y


def _plottable(y) -> np.ndarray:
    y = np.asarray(y, dtype=np.float64).copy()
    y[~np.isfinite(y)] = np.nan
    return y


def difference_figure(diff: pd.DataFrame, tag: str, tol: Tolerance, first_part: int | None,
                      max_points: int = MAX_POINTS, height: int = 460) -> go.Figure:
    """Absolute (top) and relative (bottom) difference per step, both on log y; what `tol` allows at
    each step (atol + rtol·max(|a|, |b|)) as a dashed line on the absolute panel, and the first step
    beyond it as a vertical line on both."""
    fig = make_subplots(rows=2, cols=1, shared_xaxes=True, vertical_spacing=0.08,
                        subplot_titles=(f"|PyTorch − TensorFlow| of {html(tag, 120)}",
                                        "relative: |a − b| / max(|a|, |b|)"))
    step = diff["step"].to_numpy()
    rel = _log_plottable(diff["rel_diff"])
    absd = _log_plottable(diff["abs_diff"])
    allowed = _log_plottable(tol.allowed(diff["left"], diff["right"]))  # atol = rtol = 0: nothing to draw
    with np.errstate(divide="ignore", invalid="ignore"):
        idx = np.union1d(downsample(step, np.log10(rel), max_points // 2),
                         downsample(step, np.log10(absd), max_points // 2))
    for row, (name, y) in enumerate((("absolute", absd), ("relative", rel)), start=1):
        key = "abs" if row == 1 else "rel"
        fig.add_trace(go.Scattergl(
            x=step[idx], y=y[idx], mode="lines+markers" if idx.size <= 200 else "lines",
            name=f"{name} difference", line={"color": DIFF_COLORS[key], "width": 1.6},
            marker={"size": 4}, connectgaps=False,
            hovertemplate="step %{x:,}<br>%{y:.3e}<extra>" + html(name) + "</extra>"), row=row, col=1)
    with np.errstate(divide="ignore", invalid="ignore"):  # its own points: drawn at bit-identical steps too
        at = downsample(step, np.log10(allowed), max_points // 2)
    fig.add_trace(go.Scattergl(
        x=step[at], y=allowed[at], mode="lines", name=f"tolerance ({tol})",
        line={"color": TOL_COLOR, "dash": "dash", "width": 1}, connectgaps=True,
        hovertemplate="step %{x:,}<br>%{y:.3e}<extra>tolerance</extra>"), row=1, col=1)
    if first_part is not None:
        for row in (1, 2):
            fig.add_vline(x=first_part, line={"color": PART_COLOR, "dash": "dot", "width": 1.2},
                          row=row, col=1)
        fig.add_annotation(x=first_part, y=1.0, yref="paper", text=f"part at step {first_part:,}",  # inside
                           showarrow=False, font={"color": PART_COLOR}, xanchor="left", yanchor="top",  # the panel:
                           xshift=4)  # above it, the subplot title
    fig.update_yaxes(type="log", exponentformat="e")
    fig.update_xaxes(title_text="step", row=2, col=1)
    fig.update_layout(height=height, showlegend=True, hovermode="x unified",
                      legend={"orientation": "h", "yanchor": "top", "y": -0.12, "x": 0},
                      margin={"l": 10, "r": 10, "t": 50, "b": 10})
    return fig


def curves_figure(diff: pd.DataFrame, tag: str, names: tuple[str, str] = ("PyTorch", "TensorFlow"),
                  frameworks: tuple[str | None, str | None] = ("torch", "tensorflow"),
                  log_y: bool = False, max_points: int = MAX_POINTS, height: int = 320) -> go.Figure:
    """The two series overlaid (raw, on their common step axis), in the frameworks' colours."""
    fig = go.Figure()
    colors = side_colors(*frameworks)
    step = diff["step"].to_numpy()
    for side, (col, name) in enumerate(zip(("left", "right"), names)):
        name = html(name, 100)
        has = diff[f"has_{col}"].to_numpy()
        s, y = step[has], diff[col].to_numpy()[has]
        idx = downsample(s, y, max_points)
        fig.add_trace(go.Scattergl(
            x=s[idx], y=_log_plottable(y[idx]) if log_y else _plottable(y[idx]), mode="lines",
            name=name, line={"color": colors[side], "width": 1.8, "dash": "solid" if side == 0 else "dash"},
            hovertemplate="step %{x:,}<br>%{y:.10g}<extra>" + name + "</extra>"))
    fig.update_layout(title={"text": html(tag, 120), "x": 0.0, "xanchor": "left"}, height=height,
                      hovermode="x unified", margin={"l": 10, "r": 10, "t": 50, "b": 10},
                      legend={"orientation": "h", "yanchor": "top", "y": -0.15, "x": 0})
    fig.update_xaxes(title_text="step")
    if log_y:
        fig.update_yaxes(type="log")
    return fig


def settings_table(diff: pd.DataFrame, names: tuple[str, str], only_diff: bool = False):
    """The settings diff (`settings_diff`) as a table: columns setting, <left name>, <right name>,
    differs, effect; rows that differ coloured by effect (ROW_COLORS). `only_diff`: those rows only."""
    a, b = names
    rows = (diff[diff["differs"]] if only_diff else diff).reset_index(drop=True)
    shown = rows.rename(columns={"left": a, "right": b})[["setting", a, b, "differs", "effect"]]
    colors = [ROW_COLORS.get(e, "") if d else "" for d, e in zip(rows["differs"], rows["effect"])]
    return shown.style.apply(  # r.name is the row's position: the index was reset above
        lambda r: [f"background-color: {colors[r.name]}" if colors[r.name] else ""] * len(r), axis=1)
