"""TFRecord framing, the layout of every event file: written by the trainers, read by the dashboard.

A record is: uint64 length (little-endian), uint32 masked CRC32C of those 8 bytes, `length` bytes
of data (one serialized `Event`), uint32 masked CRC32C of the data. A writer that is still going
leaves a half-written last record; `iter_frames` and `split_records` stop before it, so only a CRC
mismatch in a *complete* record is corruption. The incremental reader over a file is
`twinboard.events.RecordReader`.
"""
from __future__ import annotations

import os
import struct
from typing import Iterator

import google_crc32c

HEADER = 12  # uint64 length + uint32 length CRC
FOOTER = 4  # uint32 data CRC
MASK_DELTA = 0xA282EAD8  # TFRecord's CRC mask: rotate right by 15 bits, then add this


class CorruptRecordError(ValueError):
    """A complete record whose CRC does not match: the file is damaged at `offset`."""

    def __init__(self, path: str | os.PathLike, offset: int, reason: str):
        self.path, self.offset, self.reason = str(path), offset, reason
        super().__init__(f"{path}: corrupt record at byte {offset}: {reason}")


def masked_crc32c(data: bytes | memoryview) -> int:
    """TFRecord's masked CRC32C of `data` (a rotated CRC: a CRC over bytes holding CRCs stays useful)."""
    crc = google_crc32c.value(bytes(data))
    return (((crc >> 15) | (crc << 17)) + MASK_DELTA) & 0xFFFFFFFF


def frame(data: bytes) -> bytes:
    """One record as a writer lays it out, as tensorboardX's RecordWriter.write does: length, masked
    CRC32C of the length, data, masked CRC32C of the data."""
    head = struct.pack("<Q", len(data))
    return head + struct.pack("<I", masked_crc32c(head)) + data + struct.pack("<I", masked_crc32c(data))


def iter_frames(buf, path: str | os.PathLike = "<buffer>", base: int = 0, start: int = 0,
                check_crc: bool = True) -> Iterator[tuple[int, memoryview, int]]:
    """(offset, data, next_offset) for each complete record of `buf` from `start`, in order.

    Offsets index `buf`; `base` is the file offset of buf[0], used only in error messages. Stops
    before a half-written tail; raises `CorruptRecordError` at the first record whose CRC fails,
    after yielding every record before it.
    """
    view = memoryview(buf).cast("B") if not isinstance(buf, (bytes, bytearray)) else memoryview(buf)
    pos, n = start, len(view)
    while pos + HEADER <= n:
        (length,) = struct.unpack_from("<Q", view, pos)
        if check_crc:
            (len_crc,) = struct.unpack_from("<I", view, pos + 8)
            if masked_crc32c(view[pos:pos + 8]) != len_crc:
                raise CorruptRecordError(path, base + pos, "length CRC mismatch")
        end = pos + HEADER + length + FOOTER
        if end > n:
            return  # half-written: wait for the writer
        data = view[pos + HEADER:end - FOOTER]
        if check_crc:
            (data_crc,) = struct.unpack_from("<I", view, end - FOOTER)
            if masked_crc32c(data) != data_crc:
                raise CorruptRecordError(path, base + pos, "data CRC mismatch")
        yield pos, data, end
        pos = end


def split_records(buf: bytes | memoryview, path: str | os.PathLike = "<buffer>", base: int = 0,
                  check_crc: bool = True) -> tuple[list[bytes], int]:
    """Complete records in `buf` and the number of bytes they span (a partial tail is left).

    `base` is the file offset of buf[0], used only in error messages.
    """
    out: list[bytes] = []
    pos = 0
    for _, data, pos in iter_frames(buf, path, base, 0, check_crc):
        out.append(bytes(data))
    return out, pos
