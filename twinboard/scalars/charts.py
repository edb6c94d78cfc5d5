"""Plotly figures for scalar curves, and the styling every chart shares. Pure: data in, figure out.

Other views add their own builder modules (`hist_charts.py`, ...) and take their colours from here,
so PyTorch and TensorFlow look the same on every page.

A figure draws `Curve`s: one tag of one event run, as read. `prepare` turns a curve into what the
browser gets (smoothed over the whole series, sliced to the step range, at most `MAX_POINTS` points
per series); `scalar_figure` lays the curves out side by side (one panel per side, one shared y
range) or overlaid.
"""
from __future__ import annotations

import base64
import re
from collections.abc import Callable, Hashable
from dataclasses import dataclass

import numpy as np
import plotly.graph_objects as go
import plotly.io as pio

from twinboard.scalars.smoothing import MAX_POINTS, downsample, ema

# --- shared styling ------------------------------------------------------------------------------
FRAMEWORK_COLORS = {"torch": "#EE4C2C", "tensorflow": "#FF8F00"}  # PyTorch's red, TensorFlow's orange
OTHER_COLORS = ("#2E6FD8", "#7B3FC4")  # a side whose framework is unknown (uploads), left / right
DASHES = ("solid", "dash", "dot", "dashdot", "longdash", "longdashdot")  # one per compared pair
RAW_OPACITY = 0.25  # the unsmoothed series, drawn faintly behind the smoothed one
FEW_POINTS = 30  # a series this short is drawn with markers as well as lines
# Lines are SVG (go.Scatter), not WebGL: at <= MAX_POINTS a series SVG is fast enough, and a page of
# WebGL charts runs into the browser's limit of ~16 live GL contexts and draws some of them blank.
X_AXES = {"step": "step", "epoch": "epoch", "samples": "samples seen", "relative": "relative time (s)",
          "wall": "wall time (UTC)"}
# Axes whose x comes from the run's tag mapping (tagmap.to_x: an uploaded Keras run logs step = epoch),
# handed over as Curve.x; the zoom range is in their units. The time axes come from wall_time.
MAPPED_AXES = ("step", "epoch", "samples")
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
    """x of each point on `axis` from what a series holds; epoch and samples need the run's mapping
    (Curve.x) and raise here."""
    if axis == "step":
        return np.asarray(step)
    if axis == "relative":
        return relative_time(wall_time, start)
    if axis == "wall":
        return wall_datetime(wall_time)
    if axis in MAPPED_AXES:
        raise ValueError(f"x axis {axis!r} needs each point's x from the run's tag mapping (Curve.x)")
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


def x_bounds(xs: list[np.ndarray]) -> tuple[int, int] | tuple[float, float] | None:
    """(first, last) finite x over several series: ints when every x is whole (steps, samples),
    floats otherwise (epochs of a run logged per step). None when they hold no finite points."""
    parts = [a[np.isfinite(a)] for a in (np.asarray(x, dtype=np.float64) for x in xs) if a.size]
    parts = [a for a in parts if a.size]
    if not parts:
        return None
    lo, hi = min(float(a.min()) for a in parts), max(float(a.max()) for a in parts)
    whole = all(np.array_equal(a, np.round(a)) for a in parts)
    return (int(lo), int(hi)) if whole else (lo, hi)


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
    x: np.ndarray | None = None  # float64, each point's x on a MAPPED_AXES axis (tagmap.to_x); None = step
    key: Hashable | None = None  # names this curve's data: equal keys, equal points (PreparedCache)


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
            step_range: tuple[float, float] | None = None, max_points: int = MAX_POINTS) -> Prepared:
    """Smooth the whole series, slice to `step_range` (inclusive; in x units on a MAPPED_AXES axis,
    in steps on a time axis), downsample each series."""
    step = np.asarray(curve.step)
    value = np.asarray(curve.value, dtype=np.float64)
    pos = None  # each point's x on a mapped axis
    if x_axis in MAPPED_AXES and curve.x is not None:
        pos = np.asarray(curve.x, dtype=np.float64)
    elif x_axis in MAPPED_AXES and x_axis != "step":
        raise ValueError(f"x axis {x_axis!r} needs each point's x from the run's tag mapping (Curve.x)")
    smooth = ema(value, smoothing) if smoothing > 0 else None
    keep = slice(None)
    if step_range is not None:
        at = step if pos is None else pos
        keep = (at >= step_range[0]) & (at <= step_range[1])
    step, wall, value = step[keep], np.asarray(curve.wall_time, dtype=np.float64)[keep], value[keep]
    if pos is not None:
        x = pos = pos[keep]
    else:
        x = x_values(step, wall, x_axis, curve.start if curve.start is not None else
                     (float(np.min(curve.wall_time)) if len(curve.wall_time) else None))

    def sample(y: np.ndarray) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
        idx = downsample(step if pos is None else pos, y, max_points)
        return x[idx], _plottable(y[idx]), step[idx]

    raw_x, raw_y, raw_step = sample(value)
    if smooth is None:
        return Prepared(raw_x, raw_y, raw_step, None, None, None, raw_y.size, value.size)
    sx, sy, ss = sample(smooth[keep])
    return Prepared(raw_x, raw_y, raw_step, sx, sy, ss, sy.size, value.size)


class PreparedCache:
    """Prepared curves kept from one page run to the next, by Curve.key and view: a live refresh
    smooths and samples again only the series that grew (each is ~5 ms at 100k points).
    Call `rotate()` once a run; what a run did not use is dropped after it."""

    def __init__(self) -> None:
        self._last: dict = {}
        self._now: dict = {}

    def rotate(self) -> None:
        self._last, self._now = self._now, {}

    def get(self, key: Hashable, compute: Callable[[], Prepared]) -> Prepared:
        if key not in self._now:
            self._now[key] = self._last[key] if key in self._last else compute()
        return self._now[key]


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
            " · zoom in for full detail")


_TYPED = {"int8": "i1", "uint8": "u1", "int16": "i2", "uint16": "u2", "int32": "i4", "uint32": "u4",
          "float32": "f4", "float64": "f8"}  # numpy dtype -> plotly.js typed array


def typed_array(a: np.ndarray):
    """`a` as the typed array spec ({"dtype", "bdata": base64}) plotly sends to the browser, made as
    plotly's own `to_typed_array_spec` makes it (int64 narrowed to the smallest int that holds it);
    an array it would send otherwise (datetimes, ints past int32) comes back as it is."""
    a = np.asarray(a)
    if a.size == 0:
        return a
    if a.dtype == np.int64:
        lo, hi = int(a.min()), int(a.max())
        for t in (np.int8, np.int16, np.int32):
            if np.iinfo(t).min <= lo and hi <= np.iinfo(t).max:
                a = a.astype(t)
                break
        else:
            return a
    code = _TYPED.get(str(a.dtype))
    if code is None or a.ndim != 1:
        return a
    return {"dtype": code, "bdata": base64.b64encode(np.ascontiguousarray(a)).decode("ascii")}


_LINE_TEMPLATES: dict[str, dict] = {}


def line_template() -> dict:
    """The default plotly template (Streamlit's, once streamlit is imported) cut to what a line chart
    uses: its layout and its scatter defaults. Streamlit copies and walks a chart's whole template
    each time it sends one; the other trace types' defaults never apply here (halves that cost)."""
    name = str(pio.templates.default)
    if name not in _LINE_TEMPLATES:
        full = pio.templates[name].to_plotly_json() if name != "None" else {}
        _LINE_TEMPLATES[name] = {"layout": full.get("layout", {}),
                                 "data": {k: v for k, v in full.get("data", {}).items() if k == "scatter"}}
    return _LINE_TEMPLATES[name]


def scalar_figure(tag: str, curves: list[Curve], *, smoothing: float = 0.0, x_axis: str = "step",
                  log_y: bool = False, overlay: bool = False,
                  panel_titles: tuple[str, str] = ("PyTorch", "TensorFlow"),
                  step_range: tuple[float, float] | None = None, max_points: int = MAX_POINTS,
                  height: int = 340, cache: PreparedCache | None = None, encode: bool = False) -> go.Figure:
    """One tag: curves side by side (two panels, one shared y range) or overlaid on one chart.

    The figure is written as plotly's JSON structure and wrapped without re-validation: validating
    (and `make_subplots`) cost ~60 ms a chart, most of a live refresh of ten charts (issue 7).
    tests/test_charts.py validates what this builds. With a `cache`, curves that carry a key
    reuse the points prepared for them in the previous page run. `encode`: the traces' arrays as
    plotly's typed array specs already (`typed_array`), so st.plotly_chart does not convert each
    one again (~0.5 ms an array in plotly's own path); the JSON sent is the same.
    """
    def prepared_(c: Curve) -> Prepared:
        def compute() -> Prepared:
            return prepare(c, smoothing, x_axis, step_range, max_points)
        if cache is None or c.key is None:
            return compute()
        return cache.get((c.key, c.start, smoothing, x_axis, step_range, max_points), compute)

    prepared = [prepared_(c) for c in curves]
    traces = []
    for curve, prep in zip(curves, prepared):
        axes = {} if overlay else {"xaxis": "x" if curve.side == 0 else "x2",
                                   "yaxis": "y" if curve.side == 0 else "y2"}
        label = f"{curve.name} ({prep.shown:,} of {prep.total:,})" if prep.sampled else curve.name
        hover = "step %{customdata:,}<br>%{y:.5g}<extra>" + curve.name + "</extra>"
        line = {"color": curve.color, "dash": curve.dash, "width": 1.8}
        # A few points (a short run's perf/*, one validation point) get markers: a lone point
        # drawn as a line is invisible.
        shown_mode = "lines+markers" if len(prep.raw_y) <= FEW_POINTS else "lines"
        marker = {"size": 5, "color": curve.color}
        raw = {"type": "scatter", "x": prep.raw_x, "y": prep.raw_y, "customdata": prep.raw_step,
               "mode": "lines", "legendgroup": curve.name, **axes}
        if prep.smooth_y is None:
            traces.append({**raw, "mode": shown_mode, "marker": marker, "name": label, "showlegend": True,
                           "opacity": 1.0, "line": line, "hovertemplate": hover})
            continue
        traces.append({**raw, "name": f"{curve.name} (raw)", "showlegend": False, "opacity": RAW_OPACITY,
                       "line": {**line, "width": 1}, "hoverinfo": "skip"})
        traces.append({"type": "scatter", "x": prep.smooth_x, "y": prep.smooth_y,
                       "customdata": prep.smooth_step, "mode": shown_mode, "marker": marker, "name": label,
                       "legendgroup": curve.name, "line": line, "hovertemplate": hover, **axes})
    if encode:
        for trace in traces:
            for k in ("x", "y", "customdata"):
                trace[k] = typed_array(trace[k])
    note = sampling_note(prepared, max_points)
    title = {"text": tag, "x": 0.0, "xanchor": "left"}
    if note:
        title["subtitle"] = {"text": note}
    # Side by side, one pair: the panel titles name the sides, a legend would only repeat them.
    legend = overlay or len({c.dash for c in curves}) > 1
    top = 40 + (22 if note else 0) + (0 if overlay else 22)  # px: title, subtitle, panel titles
    layout = {"template": line_template(), "title": title, "height": height + (40 if legend else 0),
              "hovermode": "x unified",
              "margin": {"l": 10, "r": 10, "t": top, "b": 10}, "showlegend": legend,
              "legend": {"orientation": "h", "yanchor": "top", "y": -0.2, "x": 0}}
    x_title = {"title": {"text": X_AXES.get(x_axis, x_axis)}}
    arrays = [a for p in prepared for a in (p.raw_y, p.smooth_y) if a is not None]
    rng = y_range(arrays, log=log_y)
    y = {**({"type": "log"} if log_y else {}), **({"range": rng} if rng is not None else {})}
    if overlay:
        layout.update(xaxis=x_title, yaxis=y)
    else:  # what make_subplots(1, 2, shared_yaxes=True, horizontal_spacing=0.03) lays out
        gap = 0.03
        width = (1 - gap) / 2
        layout.update(
            xaxis={**x_title, "anchor": "y", "domain": [0.0, width]},
            xaxis2={**x_title, "anchor": "y2", "domain": [1 - width, 1.0], "matches": "x"},  # zoom together
            yaxis={**y, "anchor": "x", "domain": [0.0, 1.0]},
            yaxis2={**y, "anchor": "x2", "domain": [0.0, 1.0], "matches": "y", "showticklabels": False},
            annotations=[{"text": text, "x": (0.5 * width if i == 0 else 1 - 0.5 * width), "y": 1.0,
                          "xref": "paper", "yref": "paper", "xanchor": "center", "yanchor": "bottom",
                          "showarrow": False, "font": {"size": 16}}
                         for i, text in enumerate(panel_titles)])
    return go.Figure({"data": traces, "layout": layout}, _validate=False)
