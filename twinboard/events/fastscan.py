"""The fast scalar path: a compiled walk over TFRecord frames that decodes `Event` protobufs by hand.

`decode()` checks both CRCs of every record and writes each plain scalar it finds (tensorboardX /
torch `simple_value`, or a float32/float64 scalar tensor of the scalars plugin as tf.summary and
Keras write it) straight into growable numpy columns, with tags interned to small ints. The kernel
(`_fastscan_kernel.scan`) handles a deliberately narrow, well-formed subset of the wire format; any
record outside it (graphs, text, images, audio, hparams, a repeated or unknown field, a non-ASCII
string that protobuf would UTF-8-check, ...) is handed whole to `fallback`, the protobuf path in
`twinboard.events.scalars`, so results equal that path's by construction. Histograms (tensorboardX
`histo`, TF2 histogram tensors) are recognised and skipped in the kernel: common, never scalars.

The compiled kernel is loaded (or built) by `twinboard.events.native`; without it `decode()`
runs the protobuf path over every record, never with a different result.
"""
from __future__ import annotations

import contextlib
import os
import struct
import threading
from typing import Callable, Iterator

import numpy as np

from twinboard.events import native
from twinboard.contract import CorruptRecordError, check_length, iter_frames

# Kernel status codes (res[0]); the same numbers as in _fastscan_kernel.
DONE, FULL, FALLBACK, NEW_TAG, BAD_LENGTH_CRC, BAD_DATA_CRC = range(6)

# What one record handed to the protobuf path yields: (wall_time, step, [(tag, value), ...]).
Fallback = Callable[[bytes, int], tuple[float, int, list[tuple[str, float]]]]


def _crc_tables() -> np.ndarray:
    """Slicing-by-8 tables for CRC32C (Castagnoli, reflected polynomial 0x82F63B78), shape (8, 256)."""
    t = np.zeros((8, 256), np.uint32)
    for i in range(256):
        c = i
        for _ in range(8):
            c = (c >> 1) ^ 0x82F63B78 if c & 1 else c >> 1
        t[0, i] = c
    for k in range(1, 8):
        for i in range(256):
            t[k, i] = (int(t[k - 1, i]) >> 8) ^ int(t[0, int(t[k - 1, i]) & 0xFF])
    return t


_CRC = _crc_tables()


def fnv1a(data: bytes) -> int:
    """64-bit FNV-1a as a signed int64: the hash the kernel files tags under."""
    h = 0xCBF29CE484222325
    for b in data:
        h = ((h ^ b) * 0x100000001B3) & 0xFFFFFFFFFFFFFFFF
    return h - (1 << 64) if h >= 1 << 63 else h


class Tags:
    """Interned tag strings. Ids are dense and never change; the arrays are what the kernel probes.

    The kernel looks a tag up by bytes in an open-addressing table (`ht_id`, `ht_hash`, power-of-two
    size, at most half full) after first trying `succ[previous id]`, the tag that followed last time.
    """

    def __init__(self) -> None:
        self.names: list[str] = []
        self._ids: dict[str, int] = {}
        self.ht_id = np.full(64, -1, np.int32)
        self.ht_hash = np.zeros(64, np.int64)
        self.pool = np.zeros(4096, np.uint8)  # utf-8 bytes of every tag, back to back
        self.used = 0
        self.off = np.zeros(64, np.int64)
        self.len = np.zeros(64, np.int64)
        self.hash = np.zeros(64, np.int64)
        self.succ = np.full(64, -1, np.int32)

    def __len__(self) -> int:
        return len(self.names)

    def __contains__(self, tag: str) -> bool:
        return tag in self._ids

    def id(self, tag: str, raw: bytes | None = None, h: int | None = None) -> int:
        i = self._ids.get(tag)
        if i is not None:
            return i
        raw = tag.encode("utf-8") if raw is None else raw
        h = fnv1a(raw) if h is None else h
        i = len(self.names)
        self.names.append(tag)
        self._ids[tag] = i
        if i >= len(self.off):
            n = 2 * len(self.off)
            self.off, self.len, self.hash = (np.resize(a, n) for a in (self.off, self.len, self.hash))
            self.succ = np.concatenate([self.succ, np.full(n - len(self.succ), -1, np.int32)])
        if self.used + len(raw) > len(self.pool):
            self.pool = np.resize(self.pool, 2 * (self.used + len(raw)))
        self.pool[self.used:self.used + len(raw)] = np.frombuffer(raw, np.uint8)
        self.off[i], self.len[i], self.hash[i] = self.used, len(raw), h
        self.used += len(raw)
        if 2 * len(self.names) > len(self.ht_id):
            self._rehash(2 * len(self.ht_id))
        else:
            self._place(i)
        return i

    def _place(self, i: int) -> None:
        mask = len(self.ht_id) - 1
        j = int(self.hash[i]) & mask
        while self.ht_id[j] >= 0:
            j = (j + 1) & mask
        self.ht_id[j], self.ht_hash[j] = i, self.hash[i]

    def _rehash(self, size: int) -> None:
        self.ht_id = np.full(size, -1, np.int32)
        self.ht_hash = np.zeros(size, np.int64)
        for i in range(len(self.names)):
            self._place(i)


class Columns:
    """Growable output columns: one row per scalar, in the order records appear in the file."""

    def __init__(self, capacity: int = 1024) -> None:
        capacity = max(16, int(capacity))
        self.tag = np.empty(capacity, np.int32)
        self.step = np.empty(capacity, np.int64)
        self.wall_time = np.empty(capacity, np.float64)
        self.value = np.empty(capacity, np.float64)
        self.n = 0

    def grow(self, need: int) -> None:
        cap = len(self.tag)
        if self.n + need <= cap:
            return
        cap = max(2 * cap, self.n + need)
        for name in ("tag", "step", "wall_time", "value"):
            old = getattr(self, name)
            new = np.empty(cap, old.dtype)
            new[:self.n] = old[:self.n]
            setattr(self, name, new)

    def append(self, tag: int, step: int, wall_time: float, value: float) -> None:
        self.grow(1)
        n = self.n
        self.tag[n], self.step[n], self.wall_time[n], self.value[n] = tag, step, wall_time, value
        self.n = n + 1


def decode(buf, start: int, tags: Tags, out: Columns, fallback: Fallback, *,
           path: str | os.PathLike = "<buffer>", base: int = 0, check_crc: bool = True,
           pure: bool = False) -> int:
    """Decode the complete records of `buf` from `start`; return the offset just past the last one.

    `buf` is anything exposing a buffer (bytes, mmap, uint8 array); `base` is the file offset of
    buf[0], used in error messages. A half-written tail is left alone. A CRC mismatch, or a length
    over the contract's MAX_RECORD, raises `CorruptRecordError` naming the record's file offset,
    after `out` got every earlier scalar.
    `pure=True` forces the protobuf path (tests compare the two).
    """
    arr = buf if isinstance(buf, np.ndarray) else np.frombuffer(buf, np.uint8)
    if arr.dtype != np.uint8 or arr.ndim != 1 or not arr.flags.c_contiguous:
        raise ValueError("decode() needs a contiguous buffer of bytes")
    kernels = None if pure else native.kernel()
    if kernels is None:
        return _decode_pure(arr, start, tags, out, fallback, path, base, check_crc)
    return _decode_native(kernels["scan"], arr, start, tags, out, fallback, path, base, check_crc)


def _decode_native(kernel, arr, start, tags, out, fallback, path, base, check_crc) -> int:
    pos, end = start, len(arr)
    out.grow(max(64, (end - start) // 40))  # ~52 bytes per scalar record; FULL grows it further
    res = np.zeros(6, np.int64)
    a_buf, a_res, a_tab = arr.ctypes.data, res.ctypes.data, _CRC.ctypes.data
    while True:
        kernel(a_buf, pos, end, check_crc, a_tab,
               tags.ht_id.ctypes.data, tags.ht_hash.ctypes.data, len(tags.ht_id) - 1,
               tags.pool.ctypes.data, tags.off.ctypes.data, tags.len.ctypes.data,
               tags.succ.ctypes.data, out.tag.ctypes.data, out.step.ctypes.data,
               out.wall_time.ctypes.data, out.value.ctypes.data, out.n, len(out.tag), a_res)
        status, pos, out.n, a, b, h = res.tolist()
        if status == DONE:
            if end - pos >= 12:  # stopped before a record it could not finish: pending, or a
                # crafted length (its CRC matched) that no writer writes: corruption, as in iter_frames
                check_length(struct.unpack("<Q", arr[pos:pos + 8].tobytes())[0], path, base + pos)
            return pos
        if status == FULL:
            out.grow(max(1024, len(out.tag)))
        elif status == NEW_TAG:
            raw = arr[a:a + b].tobytes()
            try:
                tag = raw.decode("utf-8")
            except UnicodeDecodeError:  # protobuf refuses it as well: let that path say so
                tag = None
            if tag is None or tag in tags:  # (known already: hashes disagree; never loop on it)
                pos = _fallback_record(arr, pos, tags, out, fallback, base)
            else:
                tags.id(tag, raw, h)
        elif status == FALLBACK:
            pos = _fallback_record(arr, pos, tags, out, fallback, base)
        elif status == BAD_LENGTH_CRC:
            raise CorruptRecordError(path, base + pos, "length CRC mismatch")
        else:
            raise CorruptRecordError(path, base + pos, "data CRC mismatch")


def _fallback_record(arr, pos, tags, out, fallback, base) -> int:
    """Parse the complete, CRC-checked record at `pos` with the protobuf path; return its end."""
    (length,) = struct.unpack("<Q", arr[pos:pos + 8].tobytes())
    wall_time, step, values = fallback(arr[pos + 12:pos + 12 + length].tobytes(), base + pos)
    for tag, value in values:
        out.append(tags.id(tag), step, wall_time, value)
    return pos + 12 + length + 4


def _decode_pure(arr, start, tags, out, fallback, path, base, check_crc) -> int:
    pos = start
    for offset, data, nxt in iter_frames(arr, path=path, base=base, start=start, check_crc=check_crc):
        wall_time, step, values = fallback(bytes(data), base + offset)
        for tag, value in values:
            out.append(tags.id(tag), step, wall_time, value)
        pos = nxt
    return pos


_SCRATCH_LOCK = threading.Lock()
_SCRATCH: list[Columns] = []
_SCRATCH_KEEP = 2_000_000  # rows (56 MB) a process keeps between reads; fresh pages cost ~6 ms/24 MB


@contextlib.contextmanager
def scratch() -> Iterator[Columns]:
    """Empty Columns to decode into, reused between reads (one set per process; a concurrent
    reader gets a fresh one). Copy out what you keep before leaving the block."""
    if not _SCRATCH_LOCK.acquire(blocking=False):
        yield Columns()
        return
    try:
        cols = _SCRATCH.pop() if _SCRATCH else Columns()
        cols.n = 0
        yield cols
        if len(cols.tag) <= _SCRATCH_KEEP:
            _SCRATCH.append(cols)
    finally:
        _SCRATCH_LOCK.release()


def group_by_tag(out: Columns, layout: list[int], headroom: bool = False):
    """The rows of `out` with each tag's rows made contiguous, in fresh arrays: tags in the order
    `layout` lists their ids (every id in out.tag must be listed), each tag's rows in their original
    order. With `headroom`, each tag's slot is followed by room for about an eighth more rows, so a
    column that keeps its slot can take later appends in place.
    Returns (counts, starts, slots) per tag id and the arrays (step, wall_time, value)."""
    n = out.n
    ids = out.tag[:n]
    ntags = max(layout) + 1 if layout else 0
    counts = np.bincount(ids, minlength=ntags)
    slots = counts + (counts // 8 + 1024 if headroom else 0)
    starts = np.zeros(ntags, np.int64)
    in_layout = slots[layout]
    starts[layout] = np.cumsum(in_layout) - in_layout
    total = int(in_layout.sum())
    step, wall_time, value = np.empty(total, np.int64), np.empty(total), np.empty(total)
    kernels = native.kernel()
    if kernels is None:  # a stable sort by layout position (16-bit keys sort by radix, O(n))
        rank = np.empty(ntags, np.int64)
        rank[layout] = np.arange(len(layout))
        key = rank[ids]
        order = np.argsort(key.astype(np.int16) if ntags < 32768 else key, kind="stable")
        at = 0
        for t in layout:
            c, s = int(counts[t]), int(starts[t])
            rows = order[at:at + c]
            step[s:s + c], wall_time[s:s + c], value[s:s + c] = (
                out.step[rows], out.wall_time[rows], out.value[rows])
            at += c
    else:
        cursor = starts.copy()
        kernels["group"](ids.ctypes.data, out.step.ctypes.data, out.wall_time.ctypes.data,
                         out.value.ctypes.data, n, cursor.ctypes.data, step.ctypes.data,
                         wall_time.ctypes.data, value.ctypes.data)
    return counts, starts, slots, step, wall_time, value


def warm() -> bool:
    """Build (or check) the compiled kernel and run it once; True when the fast path works.
    `python -m twinboard.events.warmup` calls this during set-up so no user waits for the compiler."""
    if native.kernel() is None:
        return False
    from twinboard.contract import frame

    # file_version, simple_value, a scalar tensor with metadata, a histogram: what writers emit.
    records = [
        "09000000000000f03f1a0d627261696e2e4576656e743a32",
        "0900000000000000401001" "2a0b0a090a026c7215cdcccc3d",
        "10022a270a250a0a62617463685f6c6f7373420a0801120022040000803f4a0b0a090a077363616c617273",
        "2a1c0a1a0a0168" "2a15" "09000000000000f03f" "3208000000000000f03f" "3a00",
    ]
    tags, out = Tags(), Columns(16)
    data = b"".join(frame(bytes.fromhex(r)) for r in records)
    decode(data, 0, tags, out, lambda d, o: (0.0, 0, []))
    return out.n == 2 and tags.names == ["lr", "batch_loss", "h"]
