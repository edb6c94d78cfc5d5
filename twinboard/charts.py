"""Plotly figures for scalar curves, and the styling every chart shares. Pure: data in, figure out.

Other views add their own builder modules (`hist_charts.py`, ...) and take their colours from here,
so PyTorch and TensorFlow look the same on every page.

A figure draws `Curve`s: one tag of one event run, as read. `prepare` turns a curve into what the
browser gets (smoothed over the whole series, sliced to the step range, at most `MAX_POINTS` points
per series); `scalar_figure` lays the curves out side by side (one panel per side, one shared y
range) or overlaid.
"""
from __future__ import annotations

import re
from dataclasses import dataclass

import numpy as np
import plotly.graph_objects as go
from plotly.subplots import make_subplots

from twinboard.smoothing import MAX_POINTS, downsample, ema

# --- shared styling ------------------------------------------------------------------------------
FRAMEWORK_COLORS = {"torch": "#EE4C2C", "tensorflow": "#FF8F00"}  # PyTorch's red, TensorFlow's orange
OTHER_COLORS = ("#2E6FD8", "#7B3FC4")  # a side whose framework is unknown (uploads), left / right
DASHES = ("solid", "dash", "dot", "dashdot", "longdash", "longdashdot")  # one per compared pair
RAW_OPACITY = 0.25  # the unsmoothed series, drawn faintly behind the smoothed one
# Lines are SVG (go.Scatter), not WebGL: at <= MAX_POINTS a series SVG is fast enough, and a page of
# WebGL charts runs into the browser's limit of ~16 live GL contexts and draws some of them blank.
X_AXES = {"step": "step", "relative": "relative time (s)", "wall": "wall time (UTC)"}
TAG_GROUP_ORDER = ("loss", "accuracy", "lr", "perf")  # TensorBoard sorts alphabetically; ours first


class TagFilterError(ValueError):
    """The tag filter is not a valid regular expression; the message names it."""


def side_colors(left_framework: str | None, right_framework: str | None) -> tuple[str, str]:
    """Line colours for the two sides of a pair: the framework's own where known and distinct."""
    left = FRAMEWORK_COLORS.get(left_framework or "", OTHER_COLORS[0])
    right = FRAMEWORK_COLORS.get(right_framework or "", OTHER_COLORS[1])
    return (left, OTHER_COLORS[1] if right == left else right)


def pair_dash(index: int) -> str:
    return DASHES[index % len(DASHES)]


# --- tags ----------------------------------------------------------------------------------------
def filter_tags(tags: list[str], pattern: str) -> list[str]:
    """Tags matching `pattern` anywhere (re.search, case-insensitive, like TensorBoard's filter)."""
    if not pattern.strip():
        return list(tags)
    try:
        rx = re.compile(pattern, re.IGNORECASE)
    except re.error as e:
        raise TagFilterError(f"tag filter {pattern!r} is not a valid regular expression: {e}") from e
    return [t for t in tags if rx.search(t)]


def group_tags(tags: list[str]) -> dict[str, list[str]]:
    """Tags by prefix (the part before the first '/'), as TensorBoard groups its cards.

    `loss/train` -> `loss`; a tag without '/' is a group of its own (`lr`). Known groups first
    (loss, accuracy, lr, perf), then the rest alphabetically; tags sorted within a group.
    """
    groups: dict[str, list[str]] = {}
    for tag in sorted(set(tags)):
        groups.setdefault(tag.split("/", 1)[0], []).append(tag)
    rank = {g: i for i, g in enumerate(TAG_GROUP_ORDER)}
    return {g: groups[g] for g in sorted(groups, key=lambda g: (rank.get(g, len(rank)), g))}


# --- x axis and ranges ---------------------------------------------------------------------------
def relative_time(wall_time: np.ndarray, start: float | None = None) -> np.ndarray:
    """Seconds since `start` (the run's first event), or since the series' first point."""
    wall_time = np.asarray(wall_time, dtype=np.float64)
    if start is None:
        start = float(wall_time[0]) if wall_time.size else 0.0
    return wall_time - start


def wall_datetime(wall_time: np.ndarray) -> np.ndarray:
    """Unix seconds as datetime64[ms] (UTC), which plotly draws as a date axis."""
    ms = np.round(np.asarray(wall_time, dtype=np.float64) * 1000.0)
    return ms.astype("int64").astype("datetime64[ms]")


def x_values(step: np.ndarray, wall_time: np.ndarray, axis: str, start: float | None = None) -> np.ndarray:
    if axis == "step":
        return np.asarray(step)
    if axis == "relative":
        return relative_time(wall_time, start)
    if axis == "wall":
        return wall_datetime(wall_time)
    raise ValueError(f"x axis {axis!r}: must be one of {', '.join(X_AXES)}")


def first_wall_time(wall_times: list[np.ndarray]) -> float | None:
    """The earliest wall time among a run's series: the origin of its relative time."""
    firsts = [float(np.min(w)) for w in wall_times if len(w)]
    return min(firsts) if firsts else None


def step_bounds(steps: list[np.ndarray]) -> tuple[int, int] | None:
    """(first, last) step over several series, or None when they hold no points."""
    lows = [int(np.min(s)) for s in steps if len(s)]
    highs = [int(np.max(s)) for s in steps if len(s)]
    return (min(lows), max(highs)) if lows else None


def y_range(arrays: list[np.ndarray], log: bool = False, pad: float = 0.05) -> list[float] | None:
    """One y range [lo, hi] for every panel, in plotly's units (log10 of the values when `log`).

    Finite values only (and only positive ones on a log axis); padded by `pad` of the span, or
    by 10% of the value for a flat line (a constant lr of 0.05 spans 0.045-0.055). None when
    nothing is drawable.
    """
    parts = [np.asarray(a, dtype=np.float64).ravel() for a in arrays]
    vals = np.concatenate(parts) if parts else np.empty(0)
    vals = vals[np.isfinite(vals)]
    if log:
        vals = np.log10(vals[vals > 0])
    if vals.size == 0:
        return None
    lo, hi = float(vals.min()), float(vals.max())
    span = hi - lo
    margin = span * pad if span > 0 else (0.5 if log else abs(lo) * 0.1 or 1.0)
    return [lo - margin, hi + margin]


# --- curves --------------------------------------------------------------------------------------
@dataclass(frozen=True, eq=False)
class Curve:
    """One tag of one event run, as read (numpy arrays of equal length, in file order)."""
    name: str  # legend entry: "PyTorch", or "PyTorch · <run>" when several pairs are compared
    side: int  # 0 = left panel (PyTorch side), 1 = right panel (TensorFlow side)
    color: str
    step: np.ndarray  # int64
    wall_time: np.ndarray  # float64, unix seconds
    value: np.ndarray  # float64
    dash: str = "solid"
    start: float | None = None  # the run's first event (unix s): origin of relative time


@dataclass(frozen=True, eq=False)
class Prepared:
    """A curve as sent to the browser: raw and smoothed points, each sampled on its own."""
    raw_x: np.ndarray
    raw_y: np.ndarray
    raw_step: np.ndarray
    smooth_x: np.ndarray | None  # None when smoothing is off
    smooth_y: np.ndarray | None
    smooth_step: np.ndarray | None
    shown: int  # points of the main (smoothed, else raw) series sent
    total: int  # points of that series in the step range

    @property
    def sampled(self) -> bool:
        return self.shown < self.total


def prepare(curve: Curve, smoothing: float = 0.0, x_axis: str = "step",
            step_range: tuple[int, int] | None = None, max_points: int = MAX_POINTS) -> Prepared:
    """Smooth the whole series, slice to `step_range` (inclusive), downsample each series."""
    step = np.asarray(curve.step)
    value = np.asarray(curve.value, dtype=np.float64)
    smooth = ema(value, smoothing) if smoothing > 0 else None
    keep = slice(None)
    if step_range is not None:
        keep = (step >= step_range[0]) & (step <= step_range[1])
    step, wall, value = step[keep], np.asarray(curve.wall_time, dtype=np.float64)[keep], value[keep]
    x = x_values(step, wall, x_axis, curve.start if curve.start is not None else
                 (float(np.min(curve.wall_time)) if len(curve.wall_time) else None))

    def sample(y: np.ndarray) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
        idx = downsample(step, y, max_points)
        return x[idx], _plottable(y[idx]), step[idx]

    raw_x, raw_y, raw_step = sample(value)
    if smooth is None:
        return Prepared(raw_x, raw_y, raw_step, None, None, None, raw_y.size, value.size)
    sx, sy, ss = sample(smooth[keep])
    return Prepared(raw_x, raw_y, raw_step, sx, sy, ss, sy.size, value.size)


def _plottable(y: np.ndarray) -> np.ndarray:
    """+-inf as NaN: plotly draws a gap for either, but JSON has no infinity."""
    y = y.astype(np.float64, copy=True)
    y[np.isinf(y)] = np.nan
    return y


def sampling_note(prepared: list[Prepared], max_points: int = MAX_POINTS) -> str:
    """'' when every series is drawn in full, else 'sampled: 2,000 of 100,001 points …'."""
    sampled = [p for p in prepared if p.sampled]
    if not sampled:
        return ""
    big = max(sampled, key=lambda p: p.total)
    return (f"sampled: {big.shown:,} of {big.total:,} points (MinMaxLTTB, ≤{max_points:,} per series)"
            " · zoom to steps for full detail")


def scalar_figure(tag: str, curves: list[Curve], *, smoothing: float = 0.0, x_axis: str = "step",
                  log_y: bool = False, overlay: bool = False,
                  panel_titles: tuple[str, str] = ("PyTorch", "TensorFlow"),
                  step_range: tuple[int, int] | None = None, max_points: int = MAX_POINTS,
                  height: int = 340) -> go.Figure:
    """One tag: curves side by side (two panels, one shared y range) or overlaid on one chart."""
    prepared = [prepare(c, smoothing, x_axis, step_range, max_points) for c in curves]
    if overlay:
        fig = go.Figure()
    else:
        fig = make_subplots(rows=1, cols=2, shared_yaxes=True, horizontal_spacing=0.03,
                            subplot_titles=panel_titles)
    for curve, prep in zip(curves, prepared):
        where = {} if overlay else {"row": 1, "col": curve.side + 1}
        label = f"{curve.name} ({prep.shown:,} of {prep.total:,})" if prep.sampled else curve.name
        hover = "step %{customdata:,}<br>%{y:.5g}<extra>" + curve.name + "</extra>"
        smoothed = prep.smooth_y is not None
        fig.add_trace(go.Scatter(
            x=prep.raw_x, y=prep.raw_y, customdata=prep.raw_step, mode="lines",
            name=curve.name + (" (raw)" if smoothed else ""), legendgroup=curve.name,
            showlegend=not smoothed, opacity=RAW_OPACITY if smoothed else 1.0,
            line={"color": curve.color, "dash": curve.dash, "width": 1 if smoothed else 1.8},
            hovertemplate=hover if not smoothed else None, hoverinfo=None if not smoothed else "skip",
        ), **where)
        if smoothed:
            fig.add_trace(go.Scatter(
                x=prep.smooth_x, y=prep.smooth_y, customdata=prep.smooth_step, mode="lines",
                name=label, legendgroup=curve.name,
                line={"color": curve.color, "dash": curve.dash, "width": 1.8}, hovertemplate=hover,
            ), **where)
        elif prep.sampled:
            fig.data[-1].name = label
    note = sampling_note(prepared, max_points)
    title = {"text": tag, "x": 0.0, "xanchor": "left"}
    if note:
        title["subtitle"] = {"text": note}
    # Side by side, one pair: the panel titles name the sides, a legend would only repeat them.
    legend = overlay or len({c.dash for c in curves}) > 1
    top = 40 + (22 if note else 0) + (0 if overlay else 22)  # px: title, subtitle, panel titles
    fig.update_layout(title=title, height=height + (40 if legend else 0), hovermode="x unified",
                      margin={"l": 10, "r": 10, "t": top, "b": 10}, showlegend=legend,
                      legend={"orientation": "h", "yanchor": "top", "y": -0.2, "x": 0})
    fig.update_xaxes(title_text=X_AXES.get(x_axis, x_axis))
    if not overlay:
        fig.update_xaxes(matches="x")  # both panels scroll and zoom together
    if log_y:
        fig.update_yaxes(type="log")
    arrays = [a for p in prepared for a in (p.raw_y, p.smooth_y) if a is not None]
    rng = y_range(arrays, log=log_y)
    if rng is not None:
        fig.update_yaxes(range=rng)  # one range on both panels (shared_yaxes links them too)
    return fig
