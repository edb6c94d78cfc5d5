"""Scalars of any selection of runs and tags as ONE CSV or ONE Parquet file.

Both formats carry the same five columns, in this order and with these types, so a file read back
equals the frame written: run (str), tag (str), step (int64), wall_time (float64, unix seconds),
value (float64). Rows are sorted by run, tag, step (stable: equal steps keep their order).
"""
from __future__ import annotations

import io
import os
from collections.abc import Iterable
from pathlib import Path

import numpy as np
import pandas as pd
import pyarrow as pa
import pyarrow.parquet as pq

from twinboard.contract.files import UPLOADS

COLUMNS = ("run", "tag", "step", "wall_time", "value")
SCHEMA = pa.schema([("run", pa.string()), ("tag", pa.string()), ("step", pa.int64()),
                    ("wall_time", pa.float64()), ("value", pa.float64())])


def normalize(df: pd.DataFrame) -> pd.DataFrame:
    """The five columns with the export's types and order; KeyError names a missing column."""
    missing = [c for c in COLUMNS if c not in df.columns]
    if missing:
        raise KeyError(f"scalars frame lacks column(s) {', '.join(missing)}; has {list(df.columns)}")
    out = pd.DataFrame({
        "run": df["run"].astype(str).to_numpy(dtype=object),
        "tag": df["tag"].astype(str).to_numpy(dtype=object),
        "step": df["step"].to_numpy(dtype=np.int64),
        "wall_time": df["wall_time"].to_numpy(dtype=np.float64),
        "value": df["value"].to_numpy(dtype=np.float64),
    })
    out["run"], out["tag"] = out["run"].astype("str"), out["tag"].astype("str")
    return out.sort_values(["run", "tag", "step"], kind="stable").reset_index(drop=True)


def to_csv_bytes(df: pd.DataFrame) -> bytes:
    """UTF-8 CSV with a header row; floats at full precision (read back exactly), NaN as `NaN`."""
    return normalize(df).to_csv(index=False, lineterminator="\n", na_rep="NaN").encode("utf-8")


def to_parquet_bytes(df: pd.DataFrame) -> bytes:
    table = pa.Table.from_pandas(normalize(df), schema=SCHEMA, preserve_index=False)
    buf = io.BytesIO()
    pq.write_table(table, buf, compression="zstd")
    return buf.getvalue()


def read_csv_bytes(data: bytes) -> pd.DataFrame:
    df = pd.read_csv(io.BytesIO(data), dtype={"run": "str", "tag": "str", "step": "int64",
                                              "wall_time": "float64", "value": "float64"},
                     keep_default_na=False, na_values={"wall_time": ["NaN"], "value": ["NaN"]})
    return normalize(df)


def read_parquet_bytes(data: bytes) -> pd.DataFrame:
    return normalize(pq.read_table(io.BytesIO(data)).to_pandas())


def collect(selection: Iterable[tuple[str, str | os.PathLike]], tags: Iterable[str] | None = None,
            mapped: bool = False, logdir: str | os.PathLike | None = None) -> pd.DataFrame:
    """Scalars of (run name, run folder) pairs, `run` set to the name, kept to `tags` (None = all).

    A run is its folder's own event files (sub-folders are runs of their own, as in runs.py).

    mapped=True renames tags through each run's tag mapping (uploads) and reads its companion
    folders (Keras validation/ beside train/); steps stay as logged. `tags` then means our tags.
    """
    from twinboard import tagmap
    from twinboard.config import logdir as default_logdir

    root = Path(logdir) if logdir is not None else default_logdir()
    frames = []
    for name, path in selection:
        if mapped:
            df = tagmap.read_mapped(path, name, root)
        else:
            df = tagmap.folder_scalars(path, name)
        frames.append(df[list(COLUMNS)])
    if not frames:
        return normalize(pd.DataFrame({c: [] for c in COLUMNS}))
    df = pd.concat(frames, ignore_index=True)
    if tags is not None:
        df = df[df["tag"].astype(str).isin(list(tags))]
    return normalize(df)


def retarget(selection: Iterable[str], old: str, new: str | None) -> list[str]:
    """An export selection (run names relative to the logdir) after upload `old` was renamed to
    `new`, or deleted (new=None): its runs follow the new name, or leave the selection; order kept.

    `uploads/old/train` -> `uploads/new/train`; `uploads/old` itself (files at its top) likewise;
    `uploads/older/...` and local runs are left alone."""
    prefix = f"{UPLOADS}/{old}"
    out = []
    for name in selection:
        if name == prefix or name.startswith(prefix + "/"):
            if new is None:
                continue
            name = f"{UPLOADS}/{new}{name[len(prefix):]}"
        if name not in out:
            out.append(name)
    return out
