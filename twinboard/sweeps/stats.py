"""Seeds against the framework: the aggregate of a configuration's seeds, and the framework gap with
a confidence interval across seeds, said in words. Pure: numbers in, numbers and sentences out.

The gap is paired by seed: seed s gives both frameworks the same split, batch order and (init=shared)
the same initial weights, so tf(s) - torch(s) removes what the seed does to both, and the spread of
those differences is the seed noise the gap must stand out of. The interval is Student's t over the
n seeds finished on both sides (mean +- t(0.975, n-1) * sd / sqrt(n)): with 5 seeds it is 2.78
standard errors wide each way, so a small sweep says "within seed noise" unless the gap is large.
"""
from __future__ import annotations

import math
from collections.abc import Mapping, Sequence
from dataclasses import dataclass

import numpy as np

CONFIDENCE = 0.95
NEGLIGIBLE = 1e-6  # a gap within this share of the metric's size, interval and all, is float rounding
BANDS = {"minmax": "min-max over seeds", "ci95": "95% interval of the mean"}
_TAG_WORDS = {"accuracy/val": "val accuracy", "accuracy/train": "train accuracy", "loss/val": "val loss",
              "loss/train": "train loss"}


def t_quantile(n: int) -> float:
    """t(0.975) with n-1 degrees of freedom (nan below 2 seeds)."""
    if n < 2:
        return math.nan
    # scipy.special, not scipy.stats: 0.13 s to import against 0.5 s, on a page's first render.
    from scipy.special import stdtrit

    return float(stdtrit(n - 1, 0.5 + CONFIDENCE / 2))


@dataclass(frozen=True)
class Aggregate:
    """One framework's curve over seeds: at each step the mean, the band's ends and how many seeds."""
    step: np.ndarray
    mean: np.ndarray
    low: np.ndarray
    high: np.ndarray
    n: np.ndarray


def aggregate(curves: Sequence[tuple[np.ndarray, np.ndarray]], band: str = "minmax") -> Aggregate:
    """Mean over seeds at every step any seed logged (a seed without that step is left out there),
    with a min-max band or a 95% interval of the mean (no band where a single seed has the step)."""
    if band not in BANDS:
        raise ValueError(f"band {band!r}: one of {', '.join(BANDS)}")
    curves = [(np.asarray(s), np.asarray(v, dtype=float)) for s, v in curves if len(s)]
    if not curves:
        empty = np.zeros(0)
        return Aggregate(empty.astype(np.int64), empty, empty, empty, empty.astype(np.int64))
    steps = np.unique(np.concatenate([s for s, _ in curves]))
    grid = np.full((len(curves), len(steps)), np.nan)
    for i, (s, v) in enumerate(curves):
        last = {int(k): x for k, x in zip(s, v)}  # a repeated step: the last written, as every view takes it
        idx = np.searchsorted(steps, np.fromiter(last, dtype=steps.dtype, count=len(last)))
        grid[i, idx] = np.fromiter(last.values(), dtype=float, count=len(last))
    n = np.sum(~np.isnan(grid), axis=0)
    with np.errstate(invalid="ignore"), _quiet():
        mean = np.nanmean(grid, axis=0)
        if band == "minmax":
            low, high = np.nanmin(grid, axis=0), np.nanmax(grid, axis=0)
        else:
            sd = np.nanstd(grid, axis=0, ddof=1)
            half = np.array([t_quantile(int(k)) for k in n]) * sd / np.sqrt(np.maximum(n, 1))
            half = np.where(n >= 2, half, 0.0)
            low, high = mean - half, mean + half
    return Aggregate(steps, mean, low, high, n)


class _quiet:
    """numpy's 'Mean of empty slice' / 'Degrees of freedom <= 0' warnings: nan is the answer we want."""
    def __enter__(self):
        import warnings

        self._ctx = warnings.catch_warnings()
        self._ctx.__enter__()
        warnings.simplefilter("ignore", RuntimeWarning)

    def __exit__(self, *exc):
        return self._ctx.__exit__(*exc)


@dataclass(frozen=True)
class Gap:
    """TensorFlow minus PyTorch over the seeds finished on both sides."""
    n: int
    mean: float  # nan when n == 0
    low: float  # nan when n < 2
    high: float
    sd: float  # of the per-seed differences (nan below 2)

    @property
    def within_noise(self) -> bool | None:
        """True when the interval holds 0; None when there is no interval."""
        if self.n < 2 or math.isnan(self.low):
            return None
        return self.low <= 0 <= self.high


def gap(torch: Mapping[int, float], tensorflow: Mapping[int, float]) -> Gap:
    """The paired gap: tf(seed) - torch(seed) for every seed with a finite value on both sides."""
    seeds = [s for s in torch if s in tensorflow and math.isfinite(torch[s]) and math.isfinite(tensorflow[s])]
    d = np.array([tensorflow[s] - torch[s] for s in seeds], dtype=float)
    if not len(d):
        return Gap(0, math.nan, math.nan, math.nan, math.nan)
    mean = float(d.mean())
    if len(d) < 2:
        return Gap(1, mean, math.nan, math.nan, math.nan)
    sd = float(d.std(ddof=1))
    half = t_quantile(len(d)) * sd / math.sqrt(len(d))
    return Gap(len(d), mean, mean - half, mean + half, sd)


def tag_words(tag: str) -> str:
    return _TAG_WORDS.get(tag, tag)


def _amount(tag: str, value: float) -> tuple[str, str]:
    """(number, unit) of a difference: accuracy in percentage points, anything else as it is."""
    if tag.startswith("accuracy"):
        v = abs(value) * 100
        return f"{v:.2g}" if v < 0.1 else f"{v:.1f}", " points"
    return f"{abs(value):.3g}", ""


def _bound(tag: str, value: float) -> str:
    if tag.startswith("accuracy"):
        return f"{value * 100:.2g}" if abs(value * 100) < 0.1 else f"{value * 100:.1f}"
    return f"{value:.3g}"


def negligible(g: Gap, level: float = 1.0) -> bool:
    """Whether the gap, and its interval, are within NEGLIGIBLE of the metric's size: float rounding."""
    if g.n == 0:
        return False
    tol = NEGLIGIBLE * max(1.0, abs(level) if math.isfinite(level) else 1.0)
    return all(abs(v) <= tol for v in ([g.mean] if g.n < 2 else [g.mean, g.low, g.high]))


def verdict(tag: str, g: Gap, level: float = 1.0) -> str:
    """The gap in one plain sentence, e.g. "TensorFlow's final val accuracy is 0.4 points lower than
    PyTorch's, within seed noise (95% CI -1.1..0.3)". `level`: the metric's size (PyTorch's mean), below
    NEGLIGIBLE of which a gap is float rounding, not a difference."""
    what = f"final {tag_words(tag)}"
    if g.n == 0:
        return f"No seed has finished on both sides yet: no {what} to compare."
    if g.n >= 2 and g.sd == 0 and g.mean == 0:
        return f"TensorFlow's {what} equals PyTorch's in all {g.n} seeds."
    if negligible(g, level):
        tol = NEGLIGIBLE * max(1.0, abs(level) if math.isfinite(level) else 1.0)
        return f"TensorFlow's {what} matches PyTorch's to float rounding (within {tol:.0e}) in " + (
            f"all {g.n} seeds." if g.n > 1 else "its one seed.")
    amount, unit = _amount(tag, g.mean)
    if g.mean == 0:
        head = f"TensorFlow's {what} is the same as PyTorch's on average"
    else:
        head = f"TensorFlow's {what} is {amount}{unit} {'higher' if g.mean > 0 else 'lower'} than PyTorch's"
    if g.n < 2:
        return f"{head}, in one seed only: run more seeds to tell it from seed noise."
    ci = f"{int(CONFIDENCE * 100)}% CI {_bound(tag, g.low)}..{_bound(tag, g.high)}{unit}"
    if g.within_noise:
        return f"{head}, within seed noise ({ci}, {g.n} seeds)."
    return f"{head}, more than seed noise explains ({ci}, {g.n} seeds)."
