"""The pictures a trainer writes at an evaluation, drawn and PNG-encoded with numpy and zlib.

One encoder for both trainers, so PyTorch's and TensorFlow's event files hold the same bytes for the
same pixels (a difference between two pictures is the training's, never the encoder's), and no
imaging library is imported into a training process. A picture is a Canvas: one byte a pixel,
grey or an index into a palette of 256 colours (PNG colour types 0 and 3), so zlib (level 1: flat
pictures compress nearly as well as at level 9) reads a third of what RGB would give it. Small on
purpose: a digits tile is 8x8 pixels drawn 3x, a confusion cell 16 pixels.

Labels are drawn into the pictures with a 3x5 pixel font of the digits and '>' (class ids are
numbers), so TensorBoard, which shows no per-step caption, shows them too. Every drawing is made of
whole-array operations, a fixed number of them whatever the number of tiles: the evaluation thread
holds the GIL as briefly as it can while the training loop runs beside it.
"""
from __future__ import annotations

import struct
import zlib
from dataclasses import dataclass
from functools import lru_cache

import numpy as np

ZLIB_LEVEL = 1
SCALE = 3  # screen pixels a sample pixel
GAP = 2  # pixels between tiles
TILE_COLUMNS = 8
MAX_CONFUSION_CLASSES = 100  # beyond this a confusion picture is no use (the text task's vocabulary)

_FONT_ROWS = {  # 3 wide, 5 high; '#' lit
    "0": ("###", "#.#", "#.#", "#.#", "###"), "1": (".#.", "##.", ".#.", ".#.", "###"),
    "2": ("###", "..#", "###", "#..", "###"), "3": ("###", "..#", ".##", "..#", "###"),
    "4": ("#.#", "#.#", "###", "..#", "..#"), "5": ("###", "#..", "###", "..#", "###"),
    "6": ("###", "#..", "###", "#.#", "###"), "7": ("###", "..#", ".#.", ".#.", ".#."),
    "8": ("###", "#.#", "###", "#.#", "###"), "9": ("###", "#.#", "###", "..#", "###"),
    ">": ("#..", ".#.", "..#", ".#.", "#.."), " ": ("...", "...", "...", "...", "..."),
}
FONT = {ch: np.array([[c == "#" for c in row] for row in rows]) for ch, rows in _FONT_ROWS.items()}

# Palettes: LEVELS shades, then the colours text is drawn in.
LEVELS = 250
GREEN, RED, WHITE, BLACK = LEVELS, LEVELS + 1, LEVELS + 2, LEVELS + 3
_MARKS = [(60, 200, 90), (235, 70, 60), (255, 255, 255), (0, 0, 0)]


def _palette(low, high) -> bytes:
    ramp = np.linspace(0.0, 1.0, LEVELS)[:, None]
    shades = np.rint(np.asarray(low, float) + ramp * (np.asarray(high, float) - np.asarray(low, float)))
    return np.concatenate([shades, np.asarray(_MARKS, float)]).astype(np.uint8).tobytes()


GREYS = _palette((0, 0, 0), (255, 255, 255))  # tiles: black to white
BLUES = _palette((255, 255, 255), (8, 48, 107))  # confusion cells: white (none) to dark blue (all)
_TO_LEVEL = np.rint(np.arange(256) * (LEVELS - 1) / 255).astype(np.uint8)  # grey byte -> GREYS index


@dataclass(frozen=True)
class Canvas:
    pixels: np.ndarray  # uint8 [h, w]: grey, or palette indices
    palette: bytes | None = None  # 3 bytes a colour; None: grey

    @property
    def channels(self) -> int:
        return 1 if self.palette is None else 3  # as a viewer shows it

    def png(self) -> bytes:
        return png(self.pixels, self.palette)


# --- PNG ------------------------------------------------------------------------------------------
def _chunk(kind: bytes, body: bytes) -> bytes:
    return struct.pack(">I", len(body)) + kind + body + struct.pack(">I", zlib.crc32(kind + body))


def png(pixels: np.ndarray, palette: bytes | None = None) -> bytes:
    """uint8 [h, w] as PNG bytes: 8-bit grey, or indices into `palette` (RGB triples); no filter,
    one IDAT."""
    a = np.asarray(pixels)
    if a.ndim != 2 or a.dtype != np.uint8 or 0 in a.shape:
        raise ValueError(f"png: expected uint8 [h, w], got {a.dtype} {list(a.shape)}")
    h, w = a.shape
    rows = np.zeros((h, 1 + w), np.uint8)  # each row: filter type 0, then its bytes
    rows[:, 1:] = a
    header = struct.pack(">IIBBBBB", w, h, 8, 0 if palette is None else 3, 0, 0, 0)
    plte = b"" if palette is None else _chunk(b"PLTE", palette)
    return (b"\x89PNG\r\n\x1a\n" + _chunk(b"IHDR", header) + plte
            + _chunk(b"IDAT", zlib.compress(rows.tobytes(), ZLIB_LEVEL)) + _chunk(b"IEND", b""))


# --- drawing --------------------------------------------------------------------------------------
def text_width(text: str) -> int:
    return 4 * len(text) - 1 if text else 0


def draw_text(canvas: np.ndarray, top: int, left: int, text: str, value: int) -> None:
    """`text` (digits, '>' and spaces; anything else is a space) into a [h, w] canvas at (top,
    left) as `value`, clipped at its edges."""
    for i, ch in enumerate(text):
        view = canvas[top:top + 5, left + 4 * i:left + 4 * i + 3]
        view[FONT.get(ch, FONT[" "])[:view.shape[0], :view.shape[1]]] = value


def to_grey(images: np.ndarray) -> np.ndarray:
    """Samples [n, h, w] of any float range as uint8, one range for all (the data's, e.g. digits'
    pixel intensities 0..1), so tiles compare across samples and frameworks."""
    a = np.asarray(images, dtype=np.float64)
    lo, hi = float(np.nanmin(a)) if a.size else 0.0, float(np.nanmax(a)) if a.size else 1.0
    span = hi - lo if hi > lo else 1.0
    return np.nan_to_num((a - lo) / span * 255.0).clip(0, 255).astype(np.uint8)


@lru_cache(maxsize=8)
def label_strips(n_classes: int, value: int) -> np.ndarray:
    """uint8 [n_classes, 5, width]: each class id written as `value` on 0, left-aligned."""
    out = np.zeros((n_classes, 5, text_width(str(n_classes - 1))), np.uint8)
    for k in range(n_classes):
        draw_text(out[k], 0, 0, str(k), value)
    out.flags.writeable = False
    return out


def tile_grid(tiles: np.ndarray, labels: np.ndarray | None = None, pred: np.ndarray | None = None,
              n_classes: int = 0, columns: int = TILE_COLUMNS, scale: int = SCALE) -> Canvas:
    """Grey uint8 tiles [n, h, w] (n >= 1) on a black grid, `scale`x, row by row. With `labels` and
    `pred`, each is captioned true > predicted (green, white, red) on a GREYS palette."""
    n, h, w = tiles.shape
    cols = min(columns, n)
    rows = -(-n // cols)
    th, tw = h * scale, w * scale
    captioned = labels is not None and pred is not None
    cell_h, cell_w = th + (7 if captioned else 0) + GAP, tw + GAP
    cells = np.zeros((rows * cols, cell_h, cell_w), np.uint8)
    cells[:n, :th, :tw] = (_TO_LEVEL[tiles] if captioned else tiles).repeat(scale, axis=1).repeat(scale, axis=2)
    if captioned:
        true_strip, pred_strip = label_strips(n_classes, GREEN), label_strips(n_classes, RED)
        lw = true_strip.shape[2]
        band = np.zeros((n, 5, 2 * lw + 8), np.uint8)
        band[:, :, :lw] = true_strip[labels]
        band[:, :, lw + 1:lw + 4] = FONT[">"] * np.uint8(WHITE)
        band[:, :, lw + 5:2 * lw + 5] = pred_strip[pred]
        fit = min(band.shape[2], cell_w)
        cells[:n, th + 1:th + 6, :fit] = band[:, :, :fit]
    canvas = np.zeros((rows * cell_h + GAP, cols * cell_w + GAP), np.uint8)
    canvas[GAP:, GAP:] = cells.reshape(rows, cols, cell_h, cell_w).transpose(0, 2, 1, 3).reshape(
        rows * cell_h, cols * cell_w)
    return Canvas(canvas, GREYS if captioned else None)


@lru_cache(maxsize=8)
def _confusion_frame(n_classes: int, cell: int) -> tuple[np.ndarray, int]:
    """The black frame of a confusion picture with the class ids along the top and the left (when
    a cell is wide enough for them), and the margin they take."""
    label = text_width(str(n_classes - 1)) + 2 if cell >= 8 else 0
    frame = np.full((label + n_classes * cell, label + n_classes * cell), BLACK, np.uint8)
    if label:
        for k in range(n_classes):
            draw_text(frame, 1, label + k * cell + (cell - text_width(str(k))) // 2, str(k), WHITE)
            draw_text(frame, label + k * cell + (cell - 5) // 2, 1, str(k), WHITE)
    frame.flags.writeable = False
    return frame, label


def confusion_picture(matrix: np.ndarray, cell: int | None = None) -> Canvas:
    """A [C, C] count matrix (rows: true class, columns: predicted), each row shaded by its own
    total on BLUES (white: none of the class, dark blue: all of it); the class ids along the top
    and the left when they fit."""
    c = matrix.shape[0]
    cell = cell or max(4, min(16, 160 // max(c, 1)))
    totals = matrix.sum(axis=1, keepdims=True)
    share = np.divide(matrix, totals, out=np.zeros(matrix.shape), where=totals > 0)
    frame, label = _confusion_frame(c, cell)
    canvas = frame.copy()
    canvas[label:, label:] = np.rint(share * (LEVELS - 1)).astype(np.uint8).repeat(cell, axis=0).repeat(cell, axis=1)
    return Canvas(canvas, BLUES)


def filter_picture(weight: np.ndarray, scale: int = 8) -> Canvas:
    """A first conv layer's kernels, torch layout [out, in, kh, kw], as grey tiles (one per output
    channel and input channel), each on a symmetric scale: mid grey is 0, white its largest
    positive weight, black its largest negative."""
    w = np.asarray(weight, dtype=np.float64)
    tiles = w.reshape(-1, w.shape[2], w.shape[3])
    peak = np.abs(tiles).max(axis=(1, 2), keepdims=True)
    peak[peak == 0] = 1.0
    grey = (127.5 + tiles / peak * 127.5).clip(0, 255).astype(np.uint8)
    return tile_grid(grey, columns=w.shape[1] * max(1, 8 // w.shape[1]), scale=scale)
