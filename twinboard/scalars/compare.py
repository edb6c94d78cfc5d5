"""The two sides of a pair, point against point: what each side logged where the other did (hover),
their difference at the steps both logged (the difference strip), what the panels are called, and
which range a box dragged on a chart means. Pure: numpy and plain values in, the same out.

Points meet by their *key*: the x on a mapped axis (step, epoch, samples seen), the step on a time
axis (two runs' clocks never agree, their steps do). Differences are always left minus right
(PyTorch minus TensorFlow), whichever side is hovered.
"""
from __future__ import annotations

import math
from collections.abc import Mapping, Sequence

import numpy as np

from twinboard.contract import FRAMEWORK_LABELS
from twinboard.runs import EventRun, Pair
from twinboard.scalars.charts import MAPPED_AXES, Curve
from twinboard.scalars.prepared import start_of
from twinboard.text import html

# Plotly axis ids: the panels (left, right; overlay draws both sides on "x") and the strips under them.
PANEL_AXES = ("x", "x2")
STRIP_AXES = ("x3", "x4")
MAX_TITLE_CHARS = 60  # a panel title or legend entry from a run name; longer ones keep both ends
MAX_TAG_CHARS = 120  # a chart's title, the tag (from an upload's event files, so from a visitor)
MAX_BOX_TEXT = 40  # a box corner as the browser sends it (a number, or a date string on the wall axis)


def _sorted(keys: np.ndarray) -> tuple[np.ndarray | None, np.ndarray]:
    """(order, keys[order]): a stable sort, so among equal keys (a restarted run's repeated steps)
    the one written last comes last. Order None: the keys were in order already (the usual case;
    checking costs ~0.1 ms at 100k points, sorting ~5 ms, on every live refresh of every chart)."""
    if keys.size < 2 or bool(np.all(keys[1:] >= keys[:-1])):
        return None, keys
    order = np.argsort(keys, kind="stable")
    return order, keys[order]


def nearest(keys: np.ndarray, other_keys: np.ndarray) -> np.ndarray:
    """For each of `keys`, the index in `other_keys` of the point to compare with: the one at the
    same key (the last written, when a key repeats), else the nearest (the earlier one on a tie).
    Empty `other_keys`: an empty result."""
    other_keys = np.asarray(other_keys, dtype=np.float64)
    keys = np.asarray(keys, dtype=np.float64)
    if other_keys.size == 0:
        return np.empty(0, dtype=np.int64)
    order, sk = _sorted(other_keys)
    after = np.searchsorted(sk, keys, side="right")  # first point past the key
    at_or_before = np.clip(after - 1, 0, sk.size - 1)
    past = np.clip(after, 0, sk.size - 1)
    take_past = np.abs(sk[past] - keys) < np.abs(keys - sk[at_or_before])
    picked = np.where(take_past, past, at_or_before)
    return picked if order is None else order[picked]


def common(left_keys: np.ndarray, right_keys: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """(left indices, right indices) of the keys both sides logged, in the left side's order; a
    repeated key meets the other side's last point at it."""
    left_keys = np.asarray(left_keys, dtype=np.float64)
    right_keys = np.asarray(right_keys, dtype=np.float64)
    if left_keys.size == 0 or right_keys.size == 0:
        return np.empty(0, dtype=np.int64), np.empty(0, dtype=np.int64)
    ri = nearest(left_keys, right_keys)
    same = right_keys[ri] == left_keys
    return np.flatnonzero(same), ri[same]


def hover_columns(own_step: np.ndarray, own_key: np.ndarray, own_y: np.ndarray, side: int,
                  other_key: np.ndarray, other_y: np.ndarray) -> np.ndarray:
    """(n, 4) float64 for a hovered series: its step, the other side's key and value at the nearest
    point, and left minus right. One row per point drawn (the sampled series); the other side is
    looked up in its whole series."""
    idx = nearest(own_key, other_key)
    if idx.size == 0:
        return np.column_stack([np.asarray(own_step, np.float64), *(np.full(len(own_step), np.nan),) * 3])
    them = np.asarray(other_y, dtype=np.float64)[idx]
    own_y = np.asarray(own_y, dtype=np.float64)
    with np.errstate(invalid="ignore"):  # inf - inf: NaN, as it should be
        diff = own_y - them if side == 0 else them - own_y
    cols = np.column_stack([np.asarray(own_step, np.float64), np.asarray(other_key, np.float64)[idx],
                            them, diff])
    cols[np.isinf(cols)] = np.nan  # JSON has no infinity; plotly draws NaN as a gap, shows it as NaN
    return np.ascontiguousarray(cols)


# --- names ---------------------------------------------------------------------------------------
def is_matched(pair: Pair) -> bool:
    """Both sides of one launcher run folder (`<run>/torch` beside `<run>/tensorflow`)."""
    return (pair.left.framework, pair.right.framework) == ("torch", "tensorflow") and \
        "/" in pair.left.name and pair.left.group == pair.right.group


def short(text: str, limit: int = MAX_TITLE_CHARS) -> str:
    """`text` cut to `limit` characters, keeping both ends (run names differ at the start, the date,
    and at the end, the framework folder)."""
    if len(text) <= limit:
        return text
    half = (limit - 1) // 2
    return f"{text[:half]}…{text[len(text) - (limit - 1 - half):]}"


def side_title(pair: Pair, run: EventRun) -> str:
    """What a side is called: its framework for the two sides of one matched run, else the run's
    name (two runs of one framework, or uploads, would otherwise both be 'TensorFlow')."""
    if is_matched(pair) and run.framework:
        return FRAMEWORK_LABELS[run.framework]
    return short(run.name)


def panel_titles(pairs: Sequence[Pair]) -> tuple[str, str]:
    """The two panels' titles: the first pair's side titles; when several pairs share the panels,
    what the sides have in common ('PyTorch side'), else 'left side' / 'right side'."""
    titles = [tuple(side_title(p, r) for r in p.runs) for p in pairs]
    if len(titles) == 1:
        return titles[0]
    if all(is_matched(p) for p in pairs):
        return f"{titles[0][0]} side", f"{titles[0][1]} side"
    return "left side", "right side"


def curve_name(pairs: Sequence[Pair], index: int, run: EventRun) -> str:
    """A legend entry: the side's title, and the pair's label when several pairs are drawn."""
    name = side_title(pairs[index], run)
    return name if len(pairs) == 1 else f"{name} · {short(pairs[index].label)}"


# --- a box dragged on a chart --------------------------------------------------------------------
def _corner(v: object, x_axis: str) -> float:
    """One end of the box in the axis' units (unix s on the wall axis); ValueError naming it."""
    text = repr(v)[:MAX_BOX_TEXT]
    if isinstance(v, bool) or not isinstance(v, (int, float, str)) or len(str(v)) > MAX_BOX_TEXT:
        raise ValueError(f"selected range end {text} is not a number or a date")
    if x_axis == "wall" and isinstance(v, str):
        try:  # plotly sends dates as 'YYYY-MM-DD HH:MM:SS.fff' in the axis' (UTC) time
            ms = np.datetime64(v.strip().replace(" ", "T"), "ms").astype(np.int64)
        except (ValueError, OverflowError):
            raise ValueError(f"selected range end {text} is not a date") from None
        return float(ms) / 1000.0
    try:
        out = float(v)
    except ValueError:
        raise ValueError(f"selected range end {text} is not a number") from None
    if not math.isfinite(out):
        raise ValueError(f"selected range end {text} is not a finite number")
    return out


def box_side(xref: object, overlay: bool) -> int | None:
    """The side a box was drawn on (from its axis id), None for both (overlay); ValueError otherwise."""
    if overlay:
        if xref in (PANEL_AXES[0], STRIP_AXES[0]):
            return None
    elif xref in PANEL_AXES + STRIP_AXES:
        return (PANEL_AXES + STRIP_AXES).index(xref) % 2
    raise ValueError(f"selected range on axis {repr(xref)[:MAX_BOX_TEXT]}: not a panel of this chart")


def box_range(box: Mapping, x_axis: str, curves: list[Curve], bounds: tuple, overlay: bool = False):
    """The zoom range (`bounds`' type, inside `bounds`) that a box dragged across a chart selects,
    or None when it holds no point. On a mapped axis the box's x ends, rounded inward to whole units
    when the bounds are whole; on a time axis (the range is in steps) the first and last step of the
    points of the box's side inside it. ValueError names a malformed box (it comes from the browser)."""
    ends = box.get("x") if isinstance(box, Mapping) else None
    if not isinstance(ends, (list, tuple)) or len(ends) != 2:
        raise ValueError(f"selected range {repr(ends)[:MAX_BOX_TEXT]}: expected [start, end]")
    side = box_side(box.get("xref"), overlay)
    a, b = sorted(_corner(v, x_axis) for v in ends)
    if x_axis in MAPPED_AXES:
        lo, hi = a, b
    else:
        steps = []
        for c in curves:
            if side is not None and c.side != side:
                continue
            wall = np.asarray(c.wall_time, dtype=np.float64)
            x = wall - (start_of(c) or 0.0) if x_axis == "relative" else wall  # as prepare() draws it
            steps.append(np.asarray(c.step)[(x >= a) & (x <= b)])
        inside = np.concatenate(steps) if steps else np.empty(0)
        if inside.size == 0:
            return None
        lo, hi = float(inside.min()), float(inside.max())
    kind = type(bounds[1])
    if kind is int:
        lo, hi = math.ceil(lo), math.floor(hi)
    lo, hi = max(kind(lo), bounds[0]), min(kind(hi), bounds[1])
    return (lo, hi) if lo <= hi else None


def label(text: str, limit: int = MAX_TITLE_CHARS) -> str:
    """A name as plotly text that shows as itself, at most `limit` characters long (run names and
    tags come from folders and files that visitors upload and name)."""
    return html(short(text, limit), limit=None)
