"""When two layer output shapes are the same shape: the rule the Graphs page's layers table and the
Parity page's settings diff share.

Shapes come as the trainers and graphs report them: settings.json `layers[].output_shape` is a list
with None for an unknown size (`[null, 16, 8, 8]`), a graph's `_output_shapes` a string (`[?, 16, 8,
8]`, `-1` for unknown). Each trainer also writes its `data_layout` into settings.json: torch's
convolutions are NCHW (channels first), Keras' NHWC (channels last), so one matched CNN reports
`[N, 16, 8, 8]` on one side and `[N, 8, 8, 16]` on the other: the same tensor in two layouts.
Standard library only, like the rest of the contract.
"""
from __future__ import annotations

import re
from typing import Any, Sequence

# (from, to) -> the axes of a `from` shape in `to` order, for 4-D image tensors.
PERMUTATIONS = {("NCHW", "NHWC"): (0, 2, 3, 1), ("NHWC", "NCHW"): (0, 3, 1, 2)}
Dims = list  # [int | None]: a shape's sizes, None where unknown


def dims(shape: Any) -> Dims | None:
    """A shape's sizes (None for an unknown one), or None when the shape itself is unknown ("", "?",
    None). Accepts a list/tuple of sizes or the text "[a, b, ...]"; a negative or non-integer size
    counts as unknown."""
    if shape is None:
        return None
    if isinstance(shape, str):
        text = shape.strip()
        if text in ("", "?"):
            return None
        parts: Sequence[Any] = [p.strip() for p in text.strip("[]()").split(",") if p.strip()]
        return [int(p) if re.fullmatch(r"\d+", p) else None for p in parts]
    if isinstance(shape, (list, tuple)):
        return [d if isinstance(d, int) and not isinstance(d, bool) and d >= 0 else None for d in shape]
    return None


def _same(x: Dims, y: Dims) -> bool:
    return len(x) == len(y) and all(p is None or q is None or p == q for p, q in zip(x, y))


def sizes_agree(a: Any, b: Any) -> bool:
    """Same rank and sizes, an unknown size matching anything (no layout change); unknown shapes agree."""
    da, db = dims(a), dims(b)
    return da is None or db is None or _same(da, db)


def _norm(layout: Any) -> str | None:
    return layout.strip().upper() if isinstance(layout, str) and layout.strip() else None


def shapes_agree(a: Any, b: Any, layouts: tuple[Any, Any] = (None, None)) -> bool:
    """Whether `a` and `b` are the same shape: unknown sizes match anything, and a 4-D shape agrees
    with its twin in the other side's layout.

    `layouts`: each side's `data_layout` (settings.json). Known on both sides, only the permutation
    between them is allowed (two NCHW models whose shapes are permuted are NOT the same); unknown on
    either side (uploads, graphs without settings), NCHW against NHWC is allowed either way round.
    An unknown shape agrees with any shape: nothing is known to differ.
    """
    if sizes_agree(a, b):
        return True
    da, db = dims(a), dims(b)
    if len(da) != 4 or len(db) != 4:
        return False
    la, lb = (_norm(x) for x in layouts)
    if la and lb:
        perms = [PERMUTATIONS[(la, lb)]] if (la, lb) in PERMUTATIONS else []
    else:
        perms = list(PERMUTATIONS.values())
    return any(_same([da[i] for i in p], db) for p in perms)


def layout_only(a: Any, b: Any, layouts: tuple[Any, Any] = (None, None)) -> bool:
    """Whether two known shapes that are written differently are nevertheless the same shape
    (`shapes_agree`): the difference is the layout, or a size one side leaves unknown. False when
    either shape is unknown: a shape one side does not report is not a layout."""
    known = dims(a) is not None and dims(b) is not None
    return known and a != b and shapes_agree(a, b, layouts)
