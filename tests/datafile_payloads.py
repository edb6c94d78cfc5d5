"""Data-file payloads shared by the data-file tests (tests/test_datafile_*.py): one good classification
set, .npz and .csv bytes built from it, and a snapshot of a logdir's files to show nothing was written."""
from __future__ import annotations

import io
from pathlib import Path

import numpy as np

RNG = np.random.default_rng(7)
X = RNG.normal(size=(80, 5))
Y = (X[:, 0] > 0).astype(np.int64) + (X[:, 1] > 0)  # 3 classes
GOOD = {"x_train": X[:64], "y_train": Y[:64], "x_val": X[64:], "y_val": Y[64:]}


def npz(compressed: bool = False, **arrays) -> bytes:
    buf = io.BytesIO()
    (np.savez_compressed if compressed else np.savez)(buf, **arrays)
    return buf.getvalue()


def with_(**changes) -> bytes:
    """GOOD with arrays replaced (None: left out)."""
    return npz(**{k: v for k, v in {**GOOD, **changes}.items() if v is not None})


def csv_bytes(header: str = "a,b,c,d,e,price", rows=None) -> bytes:
    rows = X if rows is None else rows
    body = "".join(",".join(f"{v:.17g}" for v in r) + f",{2 * r[0] + r[1]:.17g}\n" for r in rows)
    return (header + "\n" + body).encode()


def folder(logdir: Path) -> dict[str, bytes]:
    """Every file under the logdir (hidden ones too), with its bytes."""
    return {str(p.relative_to(logdir)): p.read_bytes() for p in sorted(logdir.rglob("*")) if p.is_file()}
