"""A curve as it goes to the browser: smoothed over the whole series, sliced to the zoom range, each
series sampled to at most `MAX_POINTS` points; kept from one page run to the next; encoded as plotly's
typed arrays. Pure: numpy in, numpy out."""
from __future__ import annotations

import base64
from collections.abc import Callable, Hashable
from dataclasses import dataclass

import numpy as np

from twinboard.scalars.charts import MAPPED_AXES, Curve, x_values
from twinboard.scalars.smoothing import MAX_POINTS, downsample, ema


@dataclass(frozen=True, eq=False)
class Prepared:
    """A curve as sent to the browser: raw and smoothed points, each sampled on its own, and the
    whole shown series (in the range, not sampled) that the other side's hover and the difference
    strip look values up in."""
    raw_x: np.ndarray
    raw_y: np.ndarray
    raw_step: np.ndarray
    smooth_x: np.ndarray | None  # None when smoothing is off
    smooth_y: np.ndarray | None
    smooth_step: np.ndarray | None
    shown: int  # points of the main (smoothed, else raw) series sent
    total: int  # points of that series in the step range
    # The whole main series in the range (views of the store's arrays when nothing is sliced or
    # smoothed): where the two sides meet is decided on all points, not on two different samples.
    full_step: np.ndarray | None = None  # int64
    full_key: np.ndarray | None = None  # what pairs the sides: x on a mapped axis, the step on a time axis
    full_wall: np.ndarray | None = None  # float64 unix s, for x on a time axis
    full_y: np.ndarray | None = None  # float64, smoothed when smoothing is on

    @property
    def sampled(self) -> bool:
        return self.shown < self.total

    @property
    def main(self) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
        """(x, y, step) of the series drawn in full colour: the smoothed one, else the raw one."""
        if self.smooth_y is None:
            return self.raw_x, self.raw_y, self.raw_step
        return self.smooth_x, self.smooth_y, self.smooth_step


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
        x = x_values(step, wall, x_axis, start_of(curve))

    def sample(y: np.ndarray) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
        idx = downsample(step if pos is None else pos, y, max_points)
        return x[idx], _plottable(y[idx]), step[idx]

    raw_x, raw_y, raw_step = sample(value)
    full = {"full_step": step, "full_key": step if pos is None else pos, "full_wall": wall}
    if smooth is None:
        return Prepared(raw_x, raw_y, raw_step, None, None, None, raw_y.size, value.size, **full, full_y=value)
    sx, sy, ss = sample(smooth[keep])
    return Prepared(raw_x, raw_y, raw_step, sx, sy, ss, sy.size, value.size, **full, full_y=smooth[keep])


def start_of(curve: Curve) -> float | None:
    """The origin of the curve's relative time: its run's first event, else its own first point."""
    if curve.start is not None:
        return curve.start
    return float(np.min(curve.wall_time)) if len(curve.wall_time) else None


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
    """`a` as the typed array spec ({"dtype", "bdata": base64[, "shape"]}) plotly sends to the browser,
    made as plotly's own `to_typed_array_spec` makes it (int64 narrowed to the smallest int that holds
    it; a 2-d array, the hover's customdata, with its shape); an array it would send otherwise
    (datetimes, ints past int32) comes back as it is."""
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
    if code is None or a.ndim not in (1, 2):
        return a
    spec = {"dtype": code, "bdata": base64.b64encode(np.ascontiguousarray(a)).decode("ascii")}
    if a.ndim == 2:
        spec["shape"] = str(a.shape)[1:-1]
    return spec
