"""A task=file ``.csv``: a header row naming every column, then numbers only, comma-separated (cells
may be quoted; blank lines are skipped; UTF-8, a byte-order mark allowed). One column is the target
(RunSpec.target), the others are the features. ``twinboard.contract.datafile`` holds the caps, the
errors and the summary; this is the parsing.

Classification or regression is decided by the target's values, and the summary says which: a
column whose values are all whole numbers from 0 to CLASS_VALUES - 1 (two of them at least) is
class labels, K = its largest value + 1; any other column is a regression target. A count such as
"rooms" (1..8) therefore reads as classes: scale it, or write it as 1.0 and 1.5 ..., to regress on it.

numpy's C parser (``np.loadtxt``) reads the numbers as the bytes are decoded: 0.14 s and +10 MiB
for 10 MB of 10 columns, 0.83 s and +58 MiB for 60 MB, measured on the 2-core machine. When it
refuses a cell, the text is scanned once more with the csv module to name the row and column.
"""
from __future__ import annotations

import csv
import io
import warnings

import numpy as np

from twinboard.contract.datafile import (
    MAX_FEATURES, MAX_ROWS, MAX_VALUES, CheckedData, DataFileError, DataSummary, first_bad)

CLASS_VALUES = 20  # a target of whole numbers 0..19 is class labels ("few values"); more, regression
MAX_NAME_CHARS = 100  # a column name, as RunSpec.target allows


def read_csv(payload: bytes, name: str, digest: str, target: str = "") -> CheckedData:
    """The checked table of `payload` (file `name`, its sha256 `digest`): summary and, with a
    `target`, arrays x (the other columns, file order) and y (int64 labels or float64 targets)."""
    try:
        stream = _text(payload)
        header = _header(stream, name)
        table = _numbers(stream, payload, header, name)
    except UnicodeDecodeError:
        try:
            payload.decode("utf-8")
        except UnicodeDecodeError as exc:  # decoded whole only now, to say where
            raise DataFileError(name, "", f"not UTF-8 text (byte {exc.start:,})") from None
        raise
    for c, column in enumerate(header):
        found = first_bad(table[:, c])
        if found:
            (row,), why = found
            raise DataFileError(name, f"column {column!r}", f"data row {row + 1:,} holds {table[row, c]}: {why}")
    whole = (table == np.rint(table)).all(axis=0)
    low, high = table.min(axis=0), table.max(axis=0)
    labels = {column: int(high[c]) + 1 for c, column in enumerate(header)
              if whole[c] and low[c] >= 0 and 1 <= high[c] < CLASS_VALUES}
    summary = DataSummary(name, "csv", len(payload), digest, len(header) - 1, len(table), 0, None,
                          columns=tuple(header), class_columns=labels)
    if not target:
        return CheckedData(summary, {})
    summary = summary.for_target(target)
    at = header.index(target)
    y = table[:, at]
    return CheckedData(summary, {"x": np.delete(table, at, axis=1),
                                 "y": y.astype(np.int64) if summary.classes else y})


def _text(payload: bytes) -> io.TextIOWrapper:
    """The payload as text, decoded as it is read: a whole decoded copy would double the peak."""
    return io.TextIOWrapper(io.BytesIO(payload), encoding="utf-8-sig", newline=None)


def _header(stream: io.TextIOWrapper, name: str) -> list[str]:
    try:
        header = next(csv.reader(stream), None)
    except csv.Error as exc:  # a header cell past the csv module's 128 KiB field limit, a stray NUL
        raise DataFileError(name, "header", f"cannot be read: {exc}") from None
    if not header:
        raise DataFileError(name, "header", "missing: the first line names the columns")
    header = [cell.strip() for cell in header]
    if not 2 <= len(header) <= MAX_FEATURES + 1:
        count = f"{len(header):,} column{'s' * (len(header) != 1)}"
        raise DataFileError(name, "header", f"{count}: needs 2 to {MAX_FEATURES + 1:,} (the features and the target)")
    seen: set[str] = set()
    for i, column in enumerate(header):
        if not column or len(column) > MAX_NAME_CHARS or not column.isprintable():
            raise DataFileError(name, f"column {i + 1}", f"name {column[:MAX_NAME_CHARS]!r}: needs 1 to "
                                                         f"{MAX_NAME_CHARS} printable characters")
        if column in seen:
            raise DataFileError(name, f"column {column!r}", "named twice in the header")
        seen.add(column)
    return header


def _numbers(stream: io.TextIOWrapper, payload: bytes, header: list[str], name: str) -> np.ndarray:
    """The data rows as float64 [rows, columns], read no further than the row cap."""
    most = min(MAX_ROWS, MAX_VALUES // len(header))
    try:
        with warnings.catch_warnings():  # blank lines and an empty table warn; they are handled here
            warnings.simplefilter("ignore")
            table = np.loadtxt(stream, delimiter=",", dtype=np.float64, comments=None, quotechar='"',
                               ndmin=2, max_rows=most + 1)
    except UnicodeDecodeError:
        raise
    except ValueError as exc:
        raise _locate(payload, header, name) or DataFileError(name, "", f"cannot read its numbers: {exc}") from None
    if len(table) == 0:
        raise DataFileError(name, "", "no data rows under the header")
    if len(table) > most:
        why = f" ({MAX_VALUES:,} numbers in all)" if most < MAX_ROWS else ""
        raise DataFileError(name, "", f"more than {most:,} data rows{why}")
    if table.shape[1] != len(header):
        raise DataFileError(name, "data row 1", f"holds {_values(table.shape[1])}; the header names "
                                                f"{len(header)} columns")
    return table


def _locate(payload: bytes, header: list[str], name: str) -> DataFileError | None:
    """The first cell or row np.loadtxt refused, found again with the csv module; None if not found."""
    rows = csv.reader(_text(payload))
    next(rows, None)
    count = 0
    try:
        for row in rows:
            if not row or not "".join(row).strip():
                continue
            count += 1
            if len(row) != len(header):
                return DataFileError(name, f"data row {count:,}", f"holds {_values(len(row))}; the header names "
                                                                  f"{len(header)} columns")
            for column, cell in zip(header, row):
                try:
                    float(cell)
                except ValueError:
                    what = "is empty" if not cell.strip() else f"holds {cell[:50]!r}"
                    return DataFileError(name, f"column {column!r}", f"data row {count:,} {what}: numbers only")
    except csv.Error as exc:
        return DataFileError(name, f"data row {count + 1:,}", f"cannot be read: {exc}")
    return None


def _values(n: int) -> str:
    return f"{n} value" if n == 1 else f"{n} values"
