"""What a reader could not read, one type for every reader: `Problem(path, offset, message)`.

Every store and reader of event files (ScalarStore, HistogramStore, GraphScanner) and the embeddings
reader carry on past a file they cannot fully read, keep what came before the trouble, and list the
trouble in `problems()`, a list of Problem. The one-shot readers (`read_scalars`, `read_histograms`,
`read_graphs`) raise the first one instead, as `Problem.error()`: a CorruptRecordError naming the
file and the byte.
"""
from __future__ import annotations

import os
from dataclasses import dataclass

from twinboard.contract import CorruptRecordError
from twinboard.events.records import RecordReader

_CORRUPT = "corrupt record at byte {offset}: "  # how a corrupt record's message starts


@dataclass(frozen=True)
class Problem:
    """A file, or a part of one, that a reader could not use; str() is `<path>: <message>`."""
    path: str  # the file
    offset: int | None  # byte where its trouble starts (the record); None: the file could not be opened
    message: str  # what is wrong, for the user, without the path

    def __str__(self) -> str:
        return f"{self.path}: {self.message}"

    @classmethod
    def corrupt(cls, err: CorruptRecordError, consequence: str = "") -> Problem:
        """A damaged record; str() is str(err), then `; <consequence>` when given."""
        message = _CORRUPT.format(offset=err.offset) + err.reason
        return cls(err.path, err.offset, f"{message}; {consequence}" if consequence else message)

    @classmethod
    def too_big(cls, path: str | os.PathLike, offset: int, length: int, cap: int, what: str) -> Problem:
        """A record passed over unread: `length` bytes, more than the `cap` a reader of `what` takes."""
        return cls(str(path), offset, f"record at byte {offset} holds {length} bytes, more than the "
                                      f"{cap} a {what} may take; not read")

    def error(self) -> CorruptRecordError | OSError:
        """The problem as the exception a one-shot reader raises: CorruptRecordError at `offset`
        (a corrupt record's error as it was raised), OSError for a file that could not be opened."""
        if self.offset is None:
            return OSError(str(self))
        return CorruptRecordError(self.path, self.offset,
                                  self.message.removeprefix(_CORRUPT.format(offset=self.offset)))


def read_intact(reader: RecordReader) -> tuple[list[bytes], CorruptRecordError | None]:
    """The records appended since `reader`'s last read, and None; or, when one of them is damaged,
    the complete records before it and the error, with the reader's offset left at the damage (a
    reader that reads again meets it again: damage is reported, never skipped). Records over the
    reader's max_record are left out. Holds them all: a store that may meet big files reads
    `reader.frames()` batch by batch instead."""
    out: list[bytes] = []
    while True:
        records, err = reader.frames()
        out += [r.data for r in records if r.data is not None]
        if err is not None or not records:
            return out, err
