"""Plotly figures for histograms. Pure: a `HistogramSeries` (or two) in, a figure out.

Every histogram is re-binned (counts kept, `histograms.rebin`) onto the equal-width edges the caller
passes, as TensorBoard's histogram dashboard does, so steps and frameworks line up bucket by bucket;
pass the same edges to both sides of a pair. Modes, after TensorBoard:
- offset: a ridge, one filled curve per step, later steps lower and in front;
- overlay: every step on one axis, coloured from light (early) to full colour (late);
- distributions: percentile bands over steps (min-max, 7-93 %, 16-84 %, 31-69 %) and the median;
- compare (not in TensorBoard, its issue 6206): two frameworks' histograms of one tensor on one axis.
Thinned figures say so ("30 of 120 steps"). Titles and side labels are plain text (tags and run
names come from uploads): the figures escape them (`twinboard.text.html`).
"""
from __future__ import annotations

import numpy as np
import pandas as pd
import plotly.graph_objects as go

from twinboard.histograms.maths import common_edges, rebin, sample_indices
from twinboard.histograms.reader import HistogramSeries
from twinboard.text import html

MAX_OFFSET_STEPS = 30  # ridges drawn in offset mode; more steps are sampled evenly
MAX_OVERLAY_STEPS = 50  # curves drawn in overlay mode
RIDGE_HEIGHT = 3.0  # tallest ridge, in gaps between drawn steps (ridges overlap like TensorBoard's)
# (lower bp, upper bp, label, opacity): nested bands, outermost first, as the distribution dashboard
BANDS = ((0, 10000, "min–max", 0.15), (668, 9332, "7–93 %", 0.2), (1587, 8413, "16–84 %", 0.25),
         (3085, 6915, "31–69 %", 0.3))
HEIGHT = 360  # px, every histogram figure


def _rgb(color: str) -> tuple[int, int, int]:
    c = color.lstrip("#")
    return int(c[0:2], 16), int(c[2:4], 16), int(c[4:6], 16)


def blend(color: str, toward_white: float, alpha: float = 1.0) -> str:
    """`color` (#rrggbb) mixed with white by `toward_white` in [0, 1], as an rgba() string."""
    r, g, b = (round(v + (255 - v) * toward_white) for v in _rgb(color))
    return f"rgba({r},{g},{b},{alpha})"


def _note(fig: go.Figure, text: str) -> None:
    """A line of small print above the plot, right-aligned: what was thinned or re-binned."""
    fig.add_annotation(text=text, xref="paper", yref="paper", x=1, y=1.0, xanchor="right",
                       yanchor="bottom", showarrow=False, font=dict(size=11, color="#666"))


def _layout(fig: go.Figure, title: str, xtitle: str, ytitle: str) -> go.Figure:
    fig.update_layout(title=dict(text=html(title), font=dict(size=14)), height=HEIGHT,
                      margin=dict(l=50, r=20, t=60, b=40), xaxis_title=xtitle, yaxis_title=ytitle)
    return fig


def empty_figure(title: str, why: str) -> go.Figure:
    fig = go.Figure()
    fig.add_annotation(text=why, xref="paper", yref="paper", x=0.5, y=0.5, showarrow=False)
    fig.update_xaxes(visible=False)
    fig.update_yaxes(visible=False)
    return _layout(fig, title, "", "")


def _drawn(series: HistogramSeries, edges: np.ndarray, cap: int) -> tuple[np.ndarray, np.ndarray, str]:
    """The non-empty steps to draw (at most `cap`), their counts re-binned on `edges` ([steps, m]),
    and the note saying how many."""
    nonempty = np.flatnonzero([len(c) > 0 for c in series.counts])
    pick = nonempty[sample_indices(len(nonempty), cap)]
    note = (f"{len(pick)} of {len(nonempty)} steps (evenly sampled)" if len(pick) < len(nonempty)
            else f"{len(pick)} step{'s' * (len(pick) != 1)}")
    return series.steps[pick], rebinned(series, pick, edges), note


def rebinned(series: HistogramSeries, idx: np.ndarray, edges: np.ndarray) -> np.ndarray:
    """(len(idx), m) counts of the chosen steps on `edges` (m+1)."""
    rows = [rebin(series.edges[i], series.counts[i], edges) for i in idx]
    return np.asarray(rows).reshape(len(idx), len(edges) - 1)


def offset_figure(series: HistogramSeries, edges: np.ndarray, color: str, title: str,
                  cap: int = MAX_OFFSET_STEPS) -> go.Figure:
    """TensorBoard's offset mode: one filled curve per step, baseline at its step, later in front."""
    steps, mat, note = _drawn(series, edges, cap)
    if len(steps) == 0:
        return empty_figure(title, "no histograms logged yet")
    centers = (edges[:-1] + edges[1:]) / 2
    # Steps are in write order: a restarted run's repeated steps are not sorted (twinboard.events).
    gap = (steps.max() - steps.min()) / (len(steps) - 1) if len(steps) > 1 else 1.0
    scale = RIDGE_HEIGHT * (gap or 1.0) / (mat.max() or 1.0)  # counts -> step units
    fig = go.Figure()
    for k, (step, row) in enumerate(zip(steps, mat)):
        late = k / max(len(steps) - 1, 1)  # 0 for the first drawn step, 1 for the last
        # The y axis is reversed (later steps lower): a ridge rises toward earlier steps.
        fig.add_trace(go.Scatter(
            x=np.concatenate([[edges[0]], centers, [edges[-1]]]),
            y=np.concatenate([[step], step - row * scale, [step]]),
            customdata=np.concatenate([[0.0], row, [0.0]]), fill="toself", mode="lines",
            fillcolor=blend(color, 0.85 * (1 - late)),
            line=dict(color=blend(color, 0.5 * (1 - late)), width=0.8),
            name=f"step {step}", showlegend=False,
            hovertemplate=f"step {step}<br>value %{{x:.4g}}<br>count %{{customdata:.4g}}<extra></extra>"))
    # Ticks only at drawn steps: the first ridge rises above its own step, where the axis would
    # otherwise label steps that do not exist (a "-20").
    ticks = steps[np.unique(np.linspace(0, len(steps) - 1, min(len(steps), 8)).round().astype(int))]
    fig.update_yaxes(autorange="reversed", tickmode="array", tickvals=ticks.tolist())
    _note(fig, note)
    return _layout(fig, title, "value", "step")


def overlay_figure(series: HistogramSeries, edges: np.ndarray, color: str, title: str,
                   cap: int = MAX_OVERLAY_STEPS) -> go.Figure:
    """TensorBoard's overlay mode: every step's curve on one axis, coloured by step."""
    steps, mat, note = _drawn(series, edges, cap)
    if len(steps) == 0:
        return empty_figure(title, "no histograms logged yet")
    centers = (edges[:-1] + edges[1:]) / 2
    lo, hi = int(steps.min()), int(steps.max())  # write order: a restarted run's steps go back
    fig = go.Figure()
    for step, row in zip(steps, mat):
        late = (step - lo) / ((hi - lo) or 1)
        fig.add_trace(go.Scatter(x=centers, y=row, mode="lines", name=f"step {step}", showlegend=False,
                                 line=dict(color=blend(color, 0.8 * (1 - late)), width=1.5),
                                 hovertemplate=f"step {step}<br>value %{{x:.4g}}<br>count %{{y:.4g}}"
                                               "<extra></extra>"))
    # An invisible marker carries the step colour bar.
    fig.add_trace(go.Scatter(x=[None], y=[None], mode="markers", showlegend=False, hoverinfo="skip",
                             marker=dict(color=[lo], cmin=lo, cmax=hi if hi > lo else lo + 1,
                                         colorscale=[[0, blend(color, 0.8)], [1, blend(color, 0.0)]],
                                         showscale=True, colorbar=dict(title="step", thickness=12))))
    _note(fig, note)
    return _layout(fig, title, "value", "count")


def distribution_figure(dist: pd.DataFrame, color: str, title: str) -> go.Figure:
    """The distribution dashboard: nested percentile bands over steps and the median line.

    `dist` is `histograms.distribution(series)`: a `step` column and one column per basis point.
    """
    if dist.empty:
        return empty_figure(title, "no histograms logged yet")
    x = dist["step"].to_numpy()
    fig = go.Figure()
    for lo, hi, label, alpha in BANDS:
        fig.add_trace(go.Scatter(x=x, y=dist[lo], mode="lines", line=dict(width=0), showlegend=False,
                                 legendgroup=label, hoverinfo="skip"))
        fig.add_trace(go.Scatter(x=x, y=dist[hi], mode="lines", line=dict(width=0), fill="tonexty",
                                 fillcolor=blend(color, 0.0, alpha), name=label, legendgroup=label,
                                 customdata=dist[lo], hovertemplate=f"{label}: %{{customdata:.4g}} – "
                                                                    "%{y:.4g}<extra></extra>"))
    fig.add_trace(go.Scatter(x=x, y=dist[5000], mode="lines", name="median",
                             line=dict(color=blend(color, 0.0), width=2),
                             hovertemplate="step %{x}<br>median %{y:.4g}<extra></extra>"))
    fig.update_layout(hovermode="x unified", showlegend=False)  # the page's caption names the bands
    return _layout(fig, title, "step", "value")


def compare_figure(sides: list[tuple[str, str, int, np.ndarray, np.ndarray]], buckets: int,
                   title: str) -> go.Figure:
    """Histograms of one tensor from two writers on one axis, re-binned onto common edges.

    `sides`: (label, colour, step, edges, counts) per side. Counts are kept exactly by the re-binning;
    the figure says how many common buckets it used and which step each side shows.
    """
    sides = [s for s in sides if len(s[4])]
    if not sides:
        return empty_figure(title, "no histogram at this step on either side")
    edges = common_edges([s[3] for s in sides], buckets)
    fig = go.Figure()
    for k, (label, color, step, e, c) in enumerate(sides):
        counts, label = rebin(e, c, edges), html(label, 100)
        # A stair outline over the bucket edges (last count repeated to close the last step), so
        # two near-identical histograms stay readable where filled bars would hide each other.
        fig.add_trace(go.Scatter(
            x=edges, y=np.append(counts, counts[-1]), mode="lines", line_shape="hv",
            line=dict(color=color, width=2, dash="solid" if k == 0 else "dash"), fill="tozeroy",
            fillcolor=blend(color, 0.0, 0.18), name=f"{label}, step {step}",
            hovertemplate=f"{label} step {step}<br>from %{{x:.4g}}<br>count %{{y:.4g}}<extra></extra>"))
    fig.update_layout(legend=dict(x=0.01, y=0.99, bgcolor="rgba(255,255,255,0.7)"))
    shown = ", ".join(f"{html(label, 100)} step {step}" for label, _, step, _, _ in sides)
    _note(fig, f"re-binned onto {buckets} common buckets (counts kept); {shown}")
    return _layout(fig, title, "value", "count")

