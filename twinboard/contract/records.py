"""TFRecord framing, the layout of every event file: written by the trainers, read by the dashboard.

A record is: uint64 length (little-endian), uint32 masked CRC32C of those 8 bytes, `length` bytes
of data (one serialized `Event`), uint32 masked CRC32C of the data. A writer that is still going
leaves a half-written last record; `iter_frames` and `split_records` stop before it, so only a CRC
mismatch in a *complete* record is corruption. The incremental reader over a file is
`twinboard.events.RecordReader`.

A length past the end of the bytes at hand is ambiguous: a writer may still be writing that record,
or a hostile file claims more than it holds. The rule: a length over MAX_RECORD is corruption at
once (no writer writes a 256 MiB event: TensorBoard's own images and graphs stay far below, and
protobuf refuses messages over 2 GiB anyway), so no reader ever buffers or waits for a claimed size
above it; a length within MAX_RECORD that runs past the end is a pending tail, left for the next
read (and reported as truncated by a store once the file has gone quiet). A length is only read
after its own CRC matched, so a random byte flip is caught there first.
"""
from __future__ import annotations

import os
import struct
from typing import BinaryIO, Iterator

import google_crc32c

HEADER = 12  # uint64 length + uint32 length CRC
FOOTER = 4  # uint32 data CRC
MASK_DELTA = 0xA282EAD8  # TFRecord's CRC mask: rotate right by 15 bits, then add this
MAX_RECORD = 256 << 20  # bytes of one record's data; a length above this is corruption (see above)


class CorruptRecordError(ValueError):
    """A complete record whose CRC does not match: the file is damaged at `offset`."""

    def __init__(self, path: str | os.PathLike, offset: int, reason: str):
        self.path, self.offset, self.reason = str(path), offset, reason
        super().__init__(f"{path}: corrupt record at byte {offset}: {reason}")


def masked_crc32c(data: bytes | memoryview) -> int:
    """TFRecord's masked CRC32C of `data` (a rotated CRC: a CRC over bytes holding CRCs stays useful)."""
    return mask(google_crc32c.value(bytes(data)))


def mask(crc: int) -> int:
    """TFRecord's mask of a plain CRC32C (for a CRC computed piece by piece with google_crc32c.extend)."""
    return (((crc >> 15) | (crc << 17)) + MASK_DELTA) & 0xFFFFFFFF


def check_length(length: int, path: str | os.PathLike, offset: int) -> None:
    """Raise CorruptRecordError when a record's (CRC-checked) length is over MAX_RECORD."""
    if length > MAX_RECORD:
        raise CorruptRecordError(path, offset, f"record claims {length} bytes of data, more than the "
                                               f"{MAX_RECORD} any event writer writes (crafted or damaged)")


def frame(data: bytes) -> bytes:
    """One record as a writer lays it out, as tensorboardX's RecordWriter.write does: length, masked
    CRC32C of the length, data, masked CRC32C of the data."""
    head = struct.pack("<Q", len(data))
    return head + struct.pack("<I", masked_crc32c(head)) + data + struct.pack("<I", masked_crc32c(data))


def iter_frames(buf, path: str | os.PathLike = "<buffer>", base: int = 0, start: int = 0,
                check_crc: bool = True) -> Iterator[tuple[int, memoryview, int]]:
    """(offset, data, next_offset) for each complete record of `buf` from `start`, in order.

    Offsets index `buf`; `base` is the file offset of buf[0], used only in error messages. Stops
    before a half-written tail; raises `CorruptRecordError` at the first record whose CRC fails or
    whose length is over MAX_RECORD, after yielding every record before it.
    """
    view = memoryview(buf).cast("B") if not isinstance(buf, (bytes, bytearray)) else memoryview(buf)
    pos, n = start, len(view)
    while pos + HEADER <= n:
        (length,) = struct.unpack_from("<Q", view, pos)
        if check_crc:
            (len_crc,) = struct.unpack_from("<I", view, pos + 8)
            if masked_crc32c(view[pos:pos + 8]) != len_crc:
                raise CorruptRecordError(path, base + pos, "length CRC mismatch")
        check_length(length, path, base + pos)
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


def verify_file(f: BinaryIO, path: str | os.PathLike = "<file>", first_max: int = 4096,
                window: int = 1 << 20) -> tuple[int, int, bytes | None]:
    """Check both CRCs of every complete record of an open file in bounded memory: `window` bytes
    at a time, a record longer than that in pieces, never held whole.

    Returns (complete records, the offset just past the last of them, the first record's data when
    it is at most `first_max` bytes, else None). Raises CorruptRecordError at the first bad record.
    """
    size = os.fstat(f.fileno()).st_size
    records, base, first = 0, 0, None
    while size - base >= HEADER:
        buf = os.pread(f.fileno(), min(window, size - base), base)
        pos = 0
        for at, data, pos in iter_frames(buf, path, base):
            if records == 0 and len(data) <= first_max:
                first = bytes(data)
            records += 1
        if pos == 0:  # the window ends inside its first record, whose header iter_frames checked
            (length,) = struct.unpack_from("<Q", buf)
            end = base + HEADER + length
            if end + FOOTER > size:
                break  # a half-written tail
            crc, at = 0, base + HEADER
            while at < end:
                piece = os.pread(f.fileno(), min(window, end - at), at)
                crc, at = google_crc32c.extend(crc, piece), at + len(piece)
            if mask(crc) != struct.unpack("<I", os.pread(f.fileno(), FOOTER, end))[0]:
                raise CorruptRecordError(path, base, "data CRC mismatch")
            records, pos = records + 1, HEADER + length + FOOTER
        base += pos
    return records, base, first
