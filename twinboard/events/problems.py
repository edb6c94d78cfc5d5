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

from twinboard.contract import CorruptRecordError, split_records
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
    reader that reads again meets it again: damage is reported, never skipped)."""
    try:
        return reader.read(), None
    except CorruptRecordError as err:
        with open(reader.path, "rb") as f:
            good = os.pread(f.fileno(), err.offset - reader.offset, reader.offset)
        records, _ = split_records(good, reader.path, reader.offset)
        reader.offset = err.offset
        return records, err
