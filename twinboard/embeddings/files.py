"""A projector entry's files read within caps: the tensor (TSV or raw float32), the metadata TSV and
the sprite image.

Run folders may come from uploads, so every file is hostile until measured, and each cap is checked
before its cost is paid: file sizes from the file system, rows and columns counted on the raw bytes
in one streaming pass, a sprite's pixels from its PNG/JPEG header (a 164 KB PNG can hold 13000 x 13000
pixels: 1.45 GB decoded). `Budget` bounds what one `read_embeddings` call keeps across all entries.
Every refusal is an EmbeddingError naming the file and the number that is over.
"""
from __future__ import annotations

import codecs
from pathlib import Path

import numpy as np
import pandas as pd

MAX_POINTS = 100_000  # rows of one tensor (the trainers export a few thousand)
MAX_DIM = 4096  # columns of one tensor
MAX_VALUES = 10_000_000  # floats of one tensor: 40 MB as float32
MAX_TENSOR_BYTES = 256 << 20  # a TSV tensor file (~10-20 bytes a value) or a raw .bytes file
MAX_METADATA_BYTES = 8 << 20  # a metadata TSV (decoded text can take 4x: one astral character)
MAX_METADATA_CELLS = 1_000_000  # rows x columns kept as Python strings (~60 bytes each)
MAX_SPRITE_BYTES = 32 << 20
MAX_SPRITE_PIXELS = 4096 * 4096  # decoded as RGBA, then grey float32: ~150 MB at the cap
MAX_LOADED_BYTES = 256 << 20  # arrays one read keeps, every entry together
_CHUNK = 1 << 20
_LINES = 4096  # TSV lines parsed at a time into the preallocated array


class EmbeddingError(ValueError):
    """A projector config or one of its files that cannot be read; the message names the file."""


class Budget:
    """What one read may still allocate; `take` refuses (EmbeddingError) before the allocation."""

    def __init__(self, limit: int | None = None):
        self.limit = MAX_LOADED_BYTES if limit is None else limit
        self.left = self.limit

    def take(self, nbytes: int, what: str) -> None:
        if nbytes > self.left:
            raise EmbeddingError(f"{what} needs {nbytes} bytes; the embeddings read before it leave "
                                 f"{self.left} of the {self.limit} one read may hold")
        self.left -= nbytes


def _size(path: Path, cap: int, what: str) -> int:
    if not path.is_file():
        raise EmbeddingError(f"{what} {path.name} is missing")
    size = path.stat().st_size
    if size > cap:
        raise EmbeddingError(f"{what} {path.name} is {size} bytes, over the cap of {cap}")
    return size


def _scan_lines(path: Path) -> tuple[int, int]:
    """(lines holding anything, tabs in the first of them + 1), counted on the bytes, streaming;
    stops counting past MAX_POINTS lines (the caller refuses those) or a first line past MAX_DIM."""
    lines, cols, tail = 0, 0, b""
    with open(path, "rb") as f:
        while chunk := f.read(_CHUNK):
            parts = (tail + chunk).split(b"\n")
            tail = parts.pop()
            for part in parts:  # a chunk's lines; blank ones are not rows
                if part.strip():
                    lines += 1
                    cols = cols or part.count(b"\t") + 1
            if lines > MAX_POINTS or cols > MAX_DIM:
                return lines, cols
            if not cols and tail.count(b"\t") >= MAX_DIM:  # a first line of endless tabs
                return lines, tail.count(b"\t") + 1
        if tail.strip():
            lines, cols = lines + 1, cols or tail.count(b"\t") + 1
    return lines, cols


def _is_text(path: Path) -> bool:
    """TensorBoard's rule, on the first 64 KiB: not UTF-8 means raw float32."""
    with open(path, "rb") as f:
        head = f.read(64 << 10)
    try:
        codecs.getincrementaldecoder("utf-8")().decode(head, final=False)
    except UnicodeDecodeError:
        return False
    return True


def read_tensor(path: Path, shape: list[int], budget: Budget) -> np.ndarray:
    """[N, D] float32 from a TSV (one row a line) or a raw little-endian float32 file."""
    _size(path, MAX_TENSOR_BYTES, "tensor file")
    if path.suffix == ".bytes" or not _is_text(path):
        return _read_bytes(path, shape, budget)
    rows, cols = _scan_lines(path)
    if rows == 0:
        raise EmbeddingError(f"tensor file {path.name} is empty")
    _check_shape(path, rows, cols)
    budget.take(rows * cols * 4, f"tensor file {path.name}")
    out = np.empty((rows, cols), np.float32)
    at, block = 0, []
    with open(path, encoding="utf-8", errors="strict") as f:
        try:
            for line in f:
                if not line.strip():
                    continue
                fields = line.rstrip("\r\n").split("\t", cols)
                if len(fields) != cols:
                    raise EmbeddingError(f"tensor file {path.name}: row {at + len(block) + 1} has "
                                         f"{len(fields) if len(fields) <= cols else 'more'} columns, "
                                         f"the first has {cols}")
                block.append(fields)
                if len(block) == _LINES:
                    out[at:at + len(block)] = np.array(block, dtype=np.float32)
                    at, block = at + len(block), []
            if block:
                out[at:at + len(block)] = np.array(block, dtype=np.float32)
        except (ValueError, UnicodeDecodeError) as e:  # a word where a number should be
            raise EmbeddingError(f"tensor file {path.name}: {e}") from e
    return out


def _check_shape(path: Path, rows: int, cols: int) -> None:
    if rows > MAX_POINTS or cols > MAX_DIM or rows * cols > MAX_VALUES:
        raise EmbeddingError(f"tensor file {path.name} holds {rows} x {cols} values, over the caps "
                             f"({MAX_POINTS} points, {MAX_DIM} dimensions, {MAX_VALUES} values)")


def _read_bytes(path: Path, shape: list[int], budget: Budget) -> np.ndarray:
    if len(shape) != 2 or min(shape) < 1:
        raise EmbeddingError(f"{path.name}: raw float32 tensor needs a 2-D tensor_shape, got {shape}")
    _check_shape(path, *shape)
    size = path.stat().st_size
    if size != shape[0] * shape[1] * 4:
        raise EmbeddingError(f"{path.name}: {size // 4} floats, tensor_shape {shape} needs "
                             f"{shape[0] * shape[1]}")
    budget.take(size, f"tensor file {path.name}")
    return np.fromfile(path, dtype="<f4").reshape(shape)


def read_metadata(path: Path, n: int, budget: Budget) -> pd.DataFrame:
    """TensorBoard's rule: a header row iff the first line has a tab; one column has none.
    Rows and columns are counted on the bytes and checked before a string is made."""
    _size(path, MAX_METADATA_BYTES, "metadata file")
    with open(path, "rb") as f:
        raw = f.read()
    count = raw.count(b"\n") + (1 if raw and not raw.endswith(b"\n") else 0)  # before any split
    first = raw[:raw.find(b"\n")] if b"\n" in raw else raw
    header = count > 0 and b"\t" in first
    if count - header != n:
        raise EmbeddingError(f"metadata file {path.name} has {count - header} rows for {n} points")
    width = first.count(b"\t") + 1 if header else 1
    if n * width > MAX_METADATA_CELLS:
        raise EmbeddingError(f"metadata file {path.name} has {n} rows x {width} columns, over the cap "
                             f"of {MAX_METADATA_CELLS} cells")
    budget.take(len(raw) * 4 + n * width * 64, f"metadata file {path.name}")
    lines = raw.split(b"\n")[:count]
    del raw

    def cells(line: bytes) -> list[str]:
        text = line.decode("utf-8", "replace").rstrip("\r")
        return (text.split("\t", width)[:width] + [""] * width)[:width]

    names = _unique(cells(lines[0])) if header else ["label"]
    rows = [cells(ln) for ln in lines[header:]]
    return pd.DataFrame(rows, columns=names, dtype=str)


def _unique(names: list[str]) -> list[str]:
    seen: dict[str, int] = {}
    out = []
    for i, raw in enumerate(names):
        name = raw or f"column {i}"
        seen[name] = seen.get(name, 0) + 1
        out.append(name if seen[name] == 1 else f"{name} ({seen[name]})")
    return out


def read_sprite(path: Path, dims: list[int], n: int, budget: Budget) -> np.ndarray:
    """Cuts the row-major sprite into [N, h, w] grey images in [0, 1]; its size is read from the
    image header and checked before a pixel is decoded."""
    from PIL import Image

    if len(dims) != 2 or min(dims) < 1:
        raise EmbeddingError(f"sprite {path.name}: single_image_dim must be [width, height], got {dims}")
    _size(path, MAX_SPRITE_BYTES, "sprite")
    w, h = dims
    try:
        with Image.open(path, formats=["PNG", "JPEG"]) as im:  # reads the header only
            width, height = im.size
            if width * height > MAX_SPRITE_PIXELS:
                raise EmbeddingError(f"sprite {path.name} is {width}x{height} pixels, over the cap of "
                                     f"{MAX_SPRITE_PIXELS} (4096x4096)")
            budget.take(width * height * 4, f"sprite {path.name}")
            grey = im.convert("L")
        pixels = np.asarray(grey, dtype=np.float32)
        del grey
    except (OSError, SyntaxError, ValueError, Image.DecompressionBombError) as e:
        if isinstance(e, EmbeddingError):
            raise
        raise EmbeddingError(f"sprite {path.name}: not a readable PNG or JPEG ({e})") from e
    pixels /= 255.0
    cols, rows = width // w, height // h
    if cols * rows < n:
        raise EmbeddingError(f"sprite {path.name} ({width}x{height}) holds "
                             f"{cols * rows} images of {w}x{h}, fewer than {n} points")
    tiles = pixels[:rows * h, :cols * w].reshape(rows, h, cols, w).transpose(0, 2, 1, 3)
    return np.ascontiguousarray(tiles.reshape(rows * cols, h, w)[:n])


def checked_size(path: Path, cap: int, what: str) -> int:
    """The size of a file that must exist and stay under `cap` (the projector config)."""
    return _size(path, cap, what)
