"""The styling every chart shares, and what a scalar chart draws: tags, x axes, ranges, `Curve`s.

Other views (histograms, parity, ...) take their colours from here, so PyTorch and TensorFlow look
the same on every page.

A figure draws `Curve`s: one tag of one event run, as read. `prepared.prepare` turns a curve into
what the browser gets (smoothed over the whole series, sliced to the step range, at most
`MAX_POINTS` points per series); `figure.scalar_figure` lays the curves out side by side (one panel
per side, one shared y range) or overlaid; `compare` pairs the two sides' points (hover, difference).
"""
from __future__ import annotations

from collections.abc import Hashable
from dataclasses import dataclass

import numpy as np

from twinboard import tagmap

# --- shared styling ------------------------------------------------------------------------------
# Okabe & Ito's colour-blind-safe palette. The two frameworks were red and orange, one line to many
# eyes (a distance of ~23 in CIELAB under simulated deuteranopia); vermillion and blue stay > 90
# apart under protanopia, deuteranopia and tritanopia (tests/test_chart_axes_sides.py simulates them).
FRAMEWORK_COLORS = {"torch": "#D55E00", "tensorflow": "#0072B2"}  # vermillion (PyTorch's red-orange), blue
# A side whose framework is unknown (uploads), left / right; the right one also marks the second of two
# runs of one framework. Teal (Paul Tol's) and black: > 45 apart from both framework colours and from
# each other under protanopia and deuteranopia (the blue and violet used before were one colour there).
OTHER_COLORS = ("#44AA99", "#000000")
DIFF_COLOR = "#555555"  # the difference strip: neither framework's colour, a difference is neither
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
    """The tag filter is not a valid RE2 regular expression, or is too long; the message names it."""


def side_colors(left_framework: str | None, right_framework: str | None) -> tuple[str, str]:
    """Line colours for the two sides of a pair: the framework's own where known and distinct."""
    left = FRAMEWORK_COLORS.get(left_framework or "", OTHER_COLORS[0])
    right = FRAMEWORK_COLORS.get(right_framework or "", OTHER_COLORS[1])
    return (left, OTHER_COLORS[1] if right == left else right)


def pair_dash(index: int) -> str:
    return DASHES[index % len(DASHES)]


# --- tags ----------------------------------------------------------------------------------------
def filter_tags(tags: list[str], pattern: str) -> list[str]:
    """Tags matching `pattern` anywhere (a search, case-insensitive, like TensorBoard's filter).

    RE2 (tagmap.compile_pattern), not Python's re: a visitor's `(.+)+X` must not hold the server
    for minutes. TagFilterError names the pattern when it is bad or over the length cap."""
    if not pattern.strip():
        return list(tags)
    try:
        rx = tagmap.compile_pattern(pattern, "tag filter", ignore_case=True)
    except tagmap.PatternError as e:
        raise TagFilterError(str(e)) from None
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
    pair: int = 0  # which compared pair it belongs to: hover and difference pair the sides of one pair
