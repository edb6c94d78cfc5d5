"""A task=file data file (``<logdir>/data/<name>``), checked: by the dashboard when it is uploaded
and before a launch, by both trainers when they load it. One checker, so what the page accepted is
what the trainers read, and a file refused anywhere is refused for the same reason in the same words.

- A ``.npz`` (``twinboard.contract.datanpz``) holds exactly ``x_train``, ``y_train``, ``x_val`` and
  ``y_val`` (``np.savez(path, x_train=..., ...)``): x ``[rows, features]`` of numbers; y ``[rows]``
  (or ``[rows, 1]``) of whole numbers 0..K-1 for classification (an integer or bool dtype), of floats
  for regression. Read with pickles off: an object array is refused, never unpickled.
- A ``.csv`` (``twinboard.contract.datacsv``): a header, numbers only, one target column (the
  trainers split its rows by the seed, as they split the built-in tasks).

Everything is bounded before it costs memory: the file's bytes (the caller reads at most
MAX_FILE_BYTES + 1), the zip's central directory, and each array's shape and dtype from its .npy
header, before a byte of its data is read. Values are checked next: NaN and infinity, floats past
float32's range (a float32 run would see infinity), labels below 0 or past MAX_CLASSES, rows that
do not pair up. A refusal is a DataFileError whose message names the file and the array or column.

Standard library and numpy only: the trainers import it before their framework.
"""
from __future__ import annotations

import hashlib
import os
import re
from dataclasses import dataclass, field, replace
from pathlib import Path
from typing import Mapping

import numpy as np

from twinboard.contract.costs import model_costs, spec_costs
from twinboard.contract.spec import DATA_NAME_RE, RunSpec, bad_value

# Caps, in what they cost the 2-core, 24 GB machine this was built on. 32M values of x is 256 MB in
# float64; each trainer holds it once more in spec.dtype. Checking a 247 MiB .npz took 0.39 s and
# +92 MiB over its bytes (np.savez's stored arrays are read in place), a 60 MiB .csv 0.83 s, +58 MiB.
MAX_FILE_BYTES = 256 << 20  # a .npz: 32M float64 values and their labels
MAX_CSV_BYTES = 64 << 20  # a .csv: ~19 bytes a number as text, ~3.5M numbers; more belongs in a .npz
MAX_ROWS = 1_000_000  # rows of each split (a .npz) or of the whole file (a .csv): n_samples' limit
MAX_FEATURES = 10_000  # columns of x
MAX_VALUES = 32_000_000  # numbers of x_train and x_val together (a .csv: rows x columns)
MAX_CLASSES = 1000  # labels 0..999
MAX_DIRECTORY_BYTES = 64 << 10  # a .npz's zip directory: four entries take ~400 bytes
ARRAYS = ("x_train", "y_train", "x_val", "y_val")
FLOAT32_MAX = float(np.finfo(np.float32).max)
NUMBER_KINDS = "biuf"  # bool, signed and unsigned integers, floats: what a model can be fed
LABEL_KINDS = "biu"  # y of these kinds is class labels; a float y is regression


class DataFileError(ValueError):
    """A data file that cannot be trained on; nothing was written or changed. `file` is its name,
    `where` the array or column at fault ("" for the file as a whole), `reason` the rest."""

    def __init__(self, file: str, where: str, reason: str):
        self.file, self.where, self.reason = str(file)[:200], str(where)[:200], reason
        super().__init__(f"{self.file}: {self.where}: {reason}" if where else f"{self.file}: {reason}")


@dataclass(frozen=True)
class DataSummary:
    """What a checked file holds: enough for a list, a select box and a launch's costs."""
    name: str
    kind: str  # "npz" or "csv"
    bytes: int
    sha256: str  # of the file's bytes as read: both trainers record theirs (settings.json data.file)
    features: int
    train_rows: int  # a .npz: x_train's rows; a .csv: all its rows (split by the seed when trained)
    val_rows: int  # a .npz: x_val's rows; a .csv: 0, as val_fraction decides at training
    classes: int | None  # K for classification, 0 for regression; None: a .csv before its target is chosen
    target: str = ""  # a .csv's target column
    columns: tuple[str, ...] = ()  # a .csv's header
    class_columns: Mapping[str, int] = field(default_factory=dict)  # a .csv: columns that are labels -> K

    def for_target(self, target: str) -> "DataSummary":
        """A .csv's summary once `target` is its target column; DataFileError naming it otherwise."""
        if self.kind != "csv":
            if target:
                raise DataFileError(self.name, "target", "a .npz brings its own y_train and y_val; leave "
                                                         "the target empty")
            return self
        if target not in self.columns:
            shown = ", ".join(repr(c) for c in self.columns[:20]) + (" ..." if len(self.columns) > 20 else "")
            raise DataFileError(self.name, f"column {str(target)[:100]!r}", f"no such column; the columns are {shown}")
        return replace(self, target=target, classes=self.class_columns.get(target, 0))

    def task_text(self) -> str:
        """'classification (10 classes)', 'regression', or for a .csv without a target the choice left."""
        if self.classes is None:
            return "classification or regression, by the target column"
        return f"classification ({self.classes} classes)" if self.classes else "regression"

    def describe(self) -> str:
        """One line: rows, features, the task, the hash's first 12 digits."""
        rows = (f"{self.train_rows:,} train + {self.val_rows:,} validation rows" if self.kind == "npz"
                else f"{self.train_rows:,} rows (split by the seed)")
        return f"{rows}, {self.features:,} features, {self.task_text()}, sha256 {self.sha256[:12]}"


@dataclass(frozen=True)
class CheckedData:
    """A checked file's arrays as read: a .npz's x_train, y_train, x_val, y_val (y 1-D; int64 labels,
    float regression targets); a .csv's x and y (its target; y only once a target is chosen)."""
    summary: DataSummary
    arrays: Mapping[str, np.ndarray]


def check_name(name: str) -> str:
    """`name` when it is a data file's name (DATA_NAME_RE: no folders, no leading dot); else DataFileError."""
    if not isinstance(name, str) or not re.fullmatch(DATA_NAME_RE, name):
        raise DataFileError(str(name)[:100], "", "not a data file name: letters, digits, '.', '_' and '-' "
                                                 "(at most 100, not starting with '.' or '-'), ending .npz or .csv")
    return name


def size_cap(name: str) -> int:
    return MAX_CSV_BYTES if name.endswith(".csv") else MAX_FILE_BYTES


def read_data(payload: bytes, name: str, target: str = "") -> CheckedData:
    """Check `payload`, the bytes of data file `name`, and return its arrays and summary. A .csv's
    `target` picks its target column ("" checks every column and leaves the choice: summary.columns,
    class_columns). DataFileError naming the array or column for anything a run cannot use."""
    check_name(name)
    if len(payload) > size_cap(name):
        raise DataFileError(name, "", f"{len(payload):,} bytes, more than a {name[-4:]} file may have "
                                      f"({size_cap(name):,})")
    digest = hashlib.sha256(payload).hexdigest()
    if name.endswith(".csv"):
        from twinboard.contract.datacsv import read_csv  # the CSV half; it imports this module

        return read_csv(payload, name, digest, target)
    from twinboard.contract.datanpz import read_npz  # the .npz half; it imports this module

    arrays, classes = read_npz(payload, name)
    summary = DataSummary(name, "npz", len(payload), digest, int(arrays["x_train"].shape[1]),
                          len(arrays["x_train"]), len(arrays["x_val"]), classes)
    return CheckedData(summary.for_target(target), arrays)


def read_path(path: str | os.PathLike, target: str = "") -> CheckedData:
    """read_data on the file at `path`, read once (the hash is of the bytes checked) and no further
    than its cap allows. DataFileError for a missing or unreadable file too."""
    path = Path(path)
    name = check_name(path.name)
    try:
        with open(path, "rb") as f:
            size = os.fstat(f.fileno()).st_size
            if size > size_cap(name):  # said with its true size; a growing file stops at the cap below
                raise DataFileError(name, "", f"{size:,} bytes, more than a {name[-4:]} file may have "
                                              f"({size_cap(name):,})")
            payload = f.read(size_cap(name) + 1)
    except OSError as exc:
        why = ("not in the data folder" if isinstance(exc, FileNotFoundError)
               else f"cannot read it ({exc.strerror or type(exc).__name__})")
        raise DataFileError(name, "", why) from None  # no server path: the Launch page shows it
    return read_data(payload, name, target)


# --- values --------------------------------------------------------------------------------------
def first_bad(values: np.ndarray) -> tuple[tuple[int, ...], str] | None:
    """The index of the first value no run can use, and why: NaN or infinity, or a float64 past
    float32's range. None when every value is usable (integers always are)."""
    if values.dtype.kind != "f":
        return None
    bad = ~np.isfinite(values)
    why = "NaN and infinity cannot be trained on"
    if not bad.any() and values.dtype.itemsize > 4:
        bad = (values > FLOAT32_MAX) | (values < -FLOAT32_MAX)  # np.abs would copy the whole array
        why = f"beyond float32's range (±{FLOAT32_MAX:.3g}): a float32 run would see infinity"
    if not bad.any():
        return None
    return tuple(int(i) for i in np.unravel_index(int(bad.argmax()), values.shape)), why


# --- what a run on it costs ----------------------------------------------------------------------
def split_rows(summary: DataSummary, val_fraction: float) -> tuple[int, int]:
    """(train rows, validation rows) a run trains on: a .npz's own split, a .csv's rows split as
    trainers.data splits them (at least one validation row)."""
    if summary.kind == "npz":
        return summary.train_rows, summary.val_rows
    n_val = max(1, int(round(summary.train_rows * val_fraction)))
    return summary.train_rows - n_val, n_val


def check_data_costs(spec: RunSpec, summary: DataSummary, maxima: Mapping[str, float], note: str = "") -> None:
    """SpecError naming a field when `spec` trained on `summary`'s file costs more than `maxima` (the
    admin's limits before a launch, the ceilings in a trainer). spec_costs counts the training rows;
    the validation split's forward pass is bounded here, as it is one batch of all its rows."""
    if summary.classes is None:
        raise bad_value("target", spec.target, "a .csv needs its target column")
    train, val = split_rows(summary, spec.val_fraction)
    if train < 1:
        raise bad_value("val_fraction", spec.val_fraction, f"{summary.train_rows} rows with {val} held out for "
                                                           "validation leave none to train on")
    outputs = summary.classes or 1
    for name, (amount, blame, how) in spec_costs(spec, (train, summary.features, outputs)).items():
        if amount > maxima[name]:
            what = "steps" if name == "steps" else name.replace("_", " ")
            raise bad_value(blame, getattr(spec, blame), f"{how} = {amount} {what}, more than the "
                                                         f"{maxima[name]} allowed{note}")
    built = model_costs(spec.model, spec.hidden, summary.features, outputs)
    if built is not None and val * sum(built[1]) > maxima["activations"]:
        raise bad_value("data", spec.data, f"validation: {val} rows x {sum(built[1])} layer outputs = "
                                           f"{val * sum(built[1])} activations, more than the "
                                           f"{maxima['activations']} allowed{note}")
