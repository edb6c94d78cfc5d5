"""Records of an event file: the plain, always-correct path, incremental and CRC-checked.

The framing itself (layout, masked CRC, `split_records`, MAX_RECORD) is the run-folder contract's
(`twinboard.contract.records`); here, reading a file that a writer may still be appending to:
`RecordReader` stops before a half-written last record and picks it up on the next call.

Memory is bounded whatever the file holds: the file is read WINDOW bytes at a time, and a record is
only read whole when it is complete on disk and no longer than MAX_RECORD (a longer length is
corruption, from the contract) or the reader's own `max_record`. A record over `max_record` is
passed over unread and returned as a `Record` with `data=None`, so a reader that has no use for
huge records (histograms, graphs) never holds one, yet can say where it was.
"""
from __future__ import annotations

import os
import struct
from pathlib import Path
from typing import Iterator, NamedTuple

from twinboard.contract.records import FOOTER, HEADER, MAX_RECORD, CorruptRecordError, iter_frames

WINDOW = 4 << 20  # bytes read from the file at a time (its records are copied out once more)


class Record(NamedTuple):
    offset: int  # file offset of the record's header
    length: int  # bytes of data
    data: bytes | None  # the data (one serialized Event); None: longer than the reader's max_record


class RecordReader:
    """Reads one event file incrementally: each read returns only records appended since.

    `max_record`: records with more data than this are not read (see the module docstring).
    """

    def __init__(self, path: str | os.PathLike, offset: int = 0, max_record: int = MAX_RECORD):
        self.path = Path(path)
        self.offset = offset  # bytes consumed: always the end of the last complete record
        self.max_record = min(int(max_record), MAX_RECORD)

    def read(self) -> list[bytes]:
        """Every complete record appended since the last call (records over max_record left out).
        Raises CorruptRecordError at a damaged record, with the offset left where it was."""
        out: list[bytes] = []
        start = self.offset
        while True:
            records, err = self.frames()
            if err is not None:
                self.offset = start
                raise err
            if not records:
                return out
            out += [r.data for r in records if r.data is not None]

    def frames(self, max_bytes: int = WINDOW) -> tuple[list[Record], CorruptRecordError | None]:
        """The next complete records, spanning about `max_bytes` of the file (at least one record
        when one is complete), and None; or, at a damaged record, the records before it and the
        error. The offset moves past what is returned, so it rests on the damage when there is one:
        reading again meets it again (damage is reported, never skipped). [] at the end or before
        a half-written tail. OSError when the file cannot be opened."""
        out: list[Record] = []
        with open(self.path, "rb") as f:
            fd, size, used = f.fileno(), os.fstat(f.fileno()).st_size, 0
            while used < max_bytes and size - self.offset >= HEADER:
                buf = os.pread(fd, min(WINDOW, max(max_bytes - used, HEADER), size - self.offset), self.offset)
                pos = 0  # bytes of buf consumed
                try:
                    for at, data, pos in iter_frames(buf, self.path, self.offset):
                        n = len(data)
                        out.append(Record(self.offset + at, n, bytes(data) if n <= self.max_record else None))
                    if pos == 0:  # the window ends inside its first record
                        pos = self._one(fd, buf, size, out)
                except CorruptRecordError as err:
                    self.offset += pos
                    return out, err
                del buf  # before the next window is read: one window in memory at a time
                if pos == 0:
                    break  # the next record is still being written
                self.offset += pos
                used += pos
        return out, None

    def _one(self, fd: int, buf: bytes, size: int, out: list[Record]) -> int:
        """The record at self.offset, longer than a window (its header is checked: iter_frames
        stopped only because the window ends inside it): read alone when it is complete and
        wanted, passed over unread when over max_record. Returns its size; 0 while it is pending."""
        (length,) = struct.unpack_from("<Q", buf)
        span = HEADER + length + FOOTER
        if self.offset + span > size:
            return 0
        if length > self.max_record:  # not wanted: its data is never read (nor its CRC checked)
            out.append(Record(self.offset, length, None))
        else:
            (_, data, _), = iter_frames(os.pread(fd, span, self.offset), self.path, self.offset)
            out.append(Record(self.offset, length, bytes(data)))
        return span

    def pending_bytes(self) -> int:
        """Bytes past the last complete record (a truncated tail when the writer is gone)."""
        try:
            return max(0, os.path.getsize(self.path) - self.offset)
        except OSError:
            return 0


def iter_events(path: str | os.PathLike) -> Iterator["event_pb2.Event"]:  # noqa: F821
    """Every complete Event in a file, parsed with the protobufs tensorboard ships (no TF import).
    Raises CorruptRecordError at a damaged record, after yielding those before it."""
    from tensorboard.compat.proto import event_pb2

    reader = RecordReader(path)
    while True:
        records, err = reader.frames()
        for r in records:
            ev = event_pb2.Event()
            ev.ParseFromString(r.data)
            yield ev
        if err is not None:
            raise err
        if not records:
            return
