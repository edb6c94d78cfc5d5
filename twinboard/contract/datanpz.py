"""A task=file ``.npz`` (``np.savez(path, x_train=..., y_train=..., x_val=..., y_val=...)``), read
with every cap applied before the cost it bounds: the zip's directory before zipfile parses it, each
array's shape and dtype from its .npy header before a byte of its data is read (a header claiming a
billion rows costs nothing), then each array's data against its CRC-32 (np.savez's stored arrays
are read in place, without a copy; np.savez_compressed's are inflated once, no further than their
declared size). Pickles are never loaded: an object array is refused from its header.
``twinboard.contract.datafile`` holds the caps, the errors and the summary.
"""
from __future__ import annotations

import io
import math
import struct
import zipfile
import zlib

import numpy as np

from twinboard.contract.datafile import (
    ARRAYS, LABEL_KINDS, MAX_CLASSES, MAX_DIRECTORY_BYTES, MAX_FEATURES, MAX_ROWS, MAX_VALUES, NUMBER_KINDS,
    DataFileError, first_bad)


def read_npz(payload: bytes, name: str) -> tuple[dict[str, np.ndarray], int]:
    """The four arrays of `payload` (y 1-D), checked, and the number of classes (0: regression)."""
    arrays = _read_npz(payload, name)
    return arrays, _check_values(arrays, name)


def _directory_size(payload: bytes) -> int | None:
    """Bytes of the zip's central directory as its end record says (zip64's when it defers); None
    without an end record. zipfile parses the whole directory into objects: bounded before it does."""
    tail = payload[-(22 + 0xFFFF):]
    at = tail.rfind(b"PK\x05\x06")
    if at < 0 or at > len(tail) - 22:
        return None
    size = struct.unpack_from("<I", tail, at + 12)[0]
    if size == 0xFFFFFFFF and at >= 20 and tail[at - 20:at - 16] == b"PK\x06\x07":  # the zip64 locator
        (offset,) = struct.unpack_from("<Q", tail, at - 12)
        record = payload[offset:offset + 56]
        if len(record) == 56 and record[:4] == b"PK\x06\x06":
            size = struct.unpack_from("<Q", record, 40)[0]
    return size


def _read_npz(payload: bytes, name: str) -> dict[str, np.ndarray]:
    directory = _directory_size(payload)
    if directory is None:
        raise DataFileError(name, "", "not a .npz: no zip directory (np.savez writes one)")
    if directory > MAX_DIRECTORY_BYTES:
        raise DataFileError(name, "", f"its zip directory takes {directory:,} bytes; four arrays need "
                                      f"under {MAX_DIRECTORY_BYTES:,}")
    try:
        zf = zipfile.ZipFile(io.BytesIO(payload))
        infos = zf.infolist()
    except (zipfile.BadZipFile, OSError, EOFError, ValueError) as exc:
        raise DataFileError(name, "", f"not a readable .npz (zip) file: {exc}") from None
    members: dict[str, zipfile.ZipInfo] = {}
    for info in infos:
        key = info.filename[:-4] if info.filename.endswith(".npy") else None
        if key not in ARRAYS:
            raise DataFileError(name, info.filename[:100], f"unexpected entry: a .npz holds {', '.join(ARRAYS)} "
                                                           "and nothing else")
        if key in members:
            raise DataFileError(name, key, "appears twice")
        if info.flag_bits & 0x1:
            raise DataFileError(name, key, "encrypted")
        members[key] = info
    missing = [a for a in ARRAYS if a not in members]
    if missing:
        raise DataFileError(name, missing[0], f"missing; a .npz needs {', '.join(ARRAYS)} "
                                              "(np.savez(path, x_train=..., y_train=..., x_val=..., y_val=...))")
    headers = {a: _npy_header(zf, members[a], name, a) for a in ARRAYS}
    _check_layout(headers, name)  # shapes, dtypes and sizes: every cap before any data is read
    return {a: _npy_data(zf, payload, members[a], name, a, headers[a]) for a in ARRAYS}


Header = tuple[tuple[int, ...], np.dtype, bool, int]  # shape, dtype, Fortran order, data offset


def _npy_header(zf: zipfile.ZipFile, info: zipfile.ZipInfo, name: str, array: str) -> Header:
    try:
        with zf.open(info) as f:
            version = np.lib.format.read_magic(f)
            if version == (1, 0):
                shape, fortran, dtype = np.lib.format.read_array_header_1_0(f)
            elif version == (2, 0):
                shape, fortran, dtype = np.lib.format.read_array_header_2_0(f)
            else:  # 3.0 exists for structured dtypes' unicode field names, refused anyway
                raise ValueError(f"npy format version {version[0]}.{version[1]}; numbers are written as 1.0 or 2.0")
            offset = f.tell()
    except (ValueError, TypeError, SyntaxError, OSError, EOFError, zipfile.BadZipFile, NotImplementedError) as exc:
        raise DataFileError(name, array, f"not a readable .npy array: {str(exc)[:200]}") from None
    if dtype.hasobject:
        raise DataFileError(name, array, "holds Python objects (dtype object); only numbers are read, and "
                                         "never with pickles")
    if dtype.fields is not None or dtype.subdtype is not None or dtype.kind not in NUMBER_KINDS:
        raise DataFileError(name, array, f"dtype {dtype}: only plain numbers (bool, integers, floats) are accepted")
    data = math.prod(shape) * dtype.itemsize
    if info.file_size - offset != data:
        raise DataFileError(name, array, f"its header says {_shape(shape)} {dtype} ({data:,} bytes) but it holds "
                                         f"{max(info.file_size - offset, 0):,} bytes of data")
    return tuple(int(n) for n in shape), dtype, bool(fortran), offset


def _shape(shape: tuple[int, ...]) -> str:
    return "[" + ", ".join(str(n) for n in shape) + "]"


def _check_layout(headers: dict[str, Header], name: str) -> None:
    for split in ("train", "val"):
        xs, ys = headers[f"x_{split}"][0], headers[f"y_{split}"][0]
        if len(xs) != 2:
            raise DataFileError(name, f"x_{split}", f"shape {_shape(xs)}: needs 2 dimensions, [rows, features] "
                                                    "(x.reshape(len(x), -1) flattens images)")
        if not (len(ys) == 1 or (len(ys) == 2 and ys[1] == 1)):
            raise DataFileError(name, f"y_{split}", f"shape {_shape(ys)}: needs [rows] or [rows, 1]: one label "
                                                    "or one regression target a row")
        if xs[0] != ys[0]:
            raise DataFileError(name, f"y_{split}", f"{ys[0]:,} rows but x_{split} has {xs[0]:,}")
        if not 1 <= xs[0] <= MAX_ROWS:
            raise DataFileError(name, f"x_{split}", f"{xs[0]:,} rows: needs 1 to {MAX_ROWS:,}")
        if not 1 <= xs[1] <= MAX_FEATURES:
            raise DataFileError(name, f"x_{split}", f"{xs[1]:,} features: needs 1 to {MAX_FEATURES:,}")
    xt, xv = headers["x_train"][0], headers["x_val"][0]
    if xt[1] != xv[1]:
        raise DataFileError(name, "x_val", f"{xv[1]:,} features but x_train has {xt[1]:,}")
    if xt[0] * xt[1] + xv[0] * xv[1] > MAX_VALUES:
        raise DataFileError(name, "x_train", f"x_train and x_val hold {xt[0] * xt[1] + xv[0] * xv[1]:,} numbers, "
                                             f"more than {MAX_VALUES:,}")
    kinds = {a: "labels" if headers[a][1].kind in LABEL_KINDS else "targets" for a in ("y_train", "y_val")}
    if kinds["y_train"] != kinds["y_val"]:
        raise DataFileError(name, "y_val", f"holds {headers['y_val'][1]} {kinds['y_val']} but y_train holds "
                                           f"{headers['y_train'][1]} {kinds['y_train']}: integers for classes, "
                                           "floats for regression, the same in both")


def _npy_data(zf: zipfile.ZipFile, payload: bytes, info: zipfile.ZipInfo, name: str, array: str,
              header: Header) -> np.ndarray:
    """The array's data: read in place from `payload` when stored (np.savez: no copy, the CRC checked
    as zipfile would), decompressed once when deflated (np.savez_compressed)."""
    shape, dtype, fortran, offset = header
    if info.compress_type == zipfile.ZIP_STORED:
        at = info.header_offset
        if payload[at:at + 4] != b"PK\x03\x04" or at + 30 > len(payload):
            raise DataFileError(name, array, "its zip entry is damaged")
        n, extra = struct.unpack_from("<HH", payload, at + 26)
        view = memoryview(payload)[at + 30 + n + extra:at + 30 + n + extra + info.file_size]
        if len(view) != info.file_size:
            raise DataFileError(name, array, "ends early: the file is cut short")
        if zlib.crc32(view) != info.CRC:
            raise DataFileError(name, array, "cannot be read: its CRC-32 does not match (the file is damaged)")
        raw = view[offset:]
    else:
        try:
            with zf.open(info) as f:
                f.read(offset)
                raw = f.read(info.file_size - offset)  # to the end: zipfile checks the CRC there
        except (OSError, EOFError, zipfile.BadZipFile, NotImplementedError, zlib.error) as exc:
            raise DataFileError(name, array, f"cannot be read: {str(exc)[:200]}") from None
    if len(raw) != info.file_size - offset:
        raise DataFileError(name, array, "ends early: the file is cut short")
    out = np.frombuffer(raw, dtype).reshape(shape, order="F" if fortran else "C")
    return out.reshape(len(out)) if array.startswith("y") else out



def _check_values(arrays: dict[str, np.ndarray], name: str) -> int:
    """NaN/inf and range in every array, labels in 0..MAX_CLASSES-1; the number of classes (0: regression)."""
    for a in ARRAYS:
        found = first_bad(arrays[a])
        if found:
            at, why = found
            raise DataFileError(name, a, f"{a}[{', '.join(map(str, at))}] = {arrays[a][at]}: {why}")
    if arrays["y_train"].dtype.kind not in LABEL_KINDS:
        return 0
    top = 0
    for a in ("y_train", "y_val"):
        y = arrays[a].astype(np.int64) if arrays[a].dtype.kind == "b" else arrays[a]
        low, high = int(y.min()), int(y.max())
        if low < 0:
            raise DataFileError(name, a, f"{a}[{int(y.argmin())}] = {low}: class labels run from 0")
        if high >= MAX_CLASSES:
            raise DataFileError(name, a, f"{a}[{int(y.argmax())}] = {high}: at most {MAX_CLASSES} classes, "
                                         f"labels 0 to {MAX_CLASSES - 1} (float labels mean regression)")
        top = max(top, high)
    if top < 1:
        raise DataFileError(name, "y_train", "every label is 0: classification needs 2 classes or more "
                                             "(float targets mean regression)")
    return top + 1
