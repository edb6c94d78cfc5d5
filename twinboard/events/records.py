"""Records of an event file: the plain, always-correct path, incremental and CRC-checked.

The framing itself (layout, masked CRC, `split_records`) is the run-folder contract's
(`twinboard.contract.records`); here, reading a file that a writer may still be appending to:
`RecordReader.read` stops before a half-written last record and picks it up on the next call.
"""
from __future__ import annotations

import os
from pathlib import Path
from typing import Iterator

from twinboard.contract.records import split_records


class RecordReader:
    """Reads one event file incrementally: each `read()` returns only records appended since."""

    def __init__(self, path: str | os.PathLike, offset: int = 0):
        self.path = Path(path)
        self.offset = offset  # bytes consumed: always the end of the last complete record

    def read(self) -> list[bytes]:
        with open(self.path, "rb") as f:
            f.seek(self.offset)
            buf = f.read()
        records, used = split_records(buf, self.path, self.offset)
        self.offset += used
        return records

    def pending_bytes(self) -> int:
        """Bytes past the last complete record (a truncated tail when the writer is gone)."""
        try:
            return max(0, os.path.getsize(self.path) - self.offset)
        except OSError:
            return 0


def iter_events(path: str | os.PathLike) -> Iterator["event_pb2.Event"]:  # noqa: F821
    """Every complete Event in a file, parsed with the protobufs tensorboard ships (no TF import)."""
    from tensorboard.compat.proto import event_pb2

    for data in RecordReader(path).read():
        ev = event_pb2.Event()
        ev.ParseFromString(data)
        yield ev
