"""Scalars from TensorBoard event files into numpy columns: one-shot (`read_scalars`) or incremental
over a whole logdir (`ScalarStore`).

What counts as a scalar (both the compiled path in `fastscan` and the protobuf path here):
- a `Summary.Value` whose `simple_value` is set (tensorboardX, torch.utils.tensorboard, TF1), or
- a `Summary.Value` holding a tensor of dtype DT_FLOAT or DT_DOUBLE with every dimension of size 1
  and exactly one element (`tensor_content` of 4 or 8 bytes, or one `float_val` / `double_val`),
  whose metadata, if present, names the "scalars" plugin or none (tf.summary.scalar, Keras'
  TensorBoard callback, torch `new_style=True`, float64 scalars written with `tf.summary.write`).
Everything else (histograms, images, text, graphs, hparams, ...) is skipped here.

A run is a folder holding event files, named by its posix path relative to the logdir ("." for files
directly in it). Each series keeps every point in write order, NOT sorted by step: a step logged
twice (a restarted run) appears twice (the policy for repeated steps: `twinboard.events`).
"""
from __future__ import annotations

import mmap
import os
import threading
from collections import namedtuple
from pathlib import Path

import numpy as np

from twinboard.events import fastscan
from twinboard.contract import CorruptRecordError
from twinboard.contract.files import is_event_file
from twinboard.events.problems import Problem

Series = namedtuple("Series", ["step", "wall_time", "value"])
Series.__doc__ = """One tag of one run: read-only numpy arrays step (int64), wall_time (float64, unix
seconds), value (float64), in write order (see the module docstring)."""

_MMAP_FROM = 1 << 20  # reading more than 1 MiB: map the file instead of copying it into memory
_WINDOW = 256 << 20  # decode a big file this many bytes at a time
_DT_FLOAT, _DT_DOUBLE = 1, 2
# Map every page of a big read at once (one fault per page costs ~10 ms on a 50 MB file).
_MAP_FLAGS = mmap.MAP_SHARED | getattr(mmap, "MAP_POPULATE", 0)


# ------------------------------------------------------------------------------------------------
# The protobuf path: the reference the compiled path must equal, and its fallback for odd records.

def scalar_value(value) -> float | None:
    """The scalar a `Summary.Value` holds, or None when it holds something else (see module doc)."""
    kind = value.WhichOneof("value")
    if kind == "simple_value":
        return float(value.simple_value)
    if kind != "tensor":
        return None
    if value.HasField("metadata") and value.metadata.plugin_data.plugin_name not in ("", "scalars"):
        return None
    t = value.tensor
    if t.tensor_shape.unknown_rank or any(d.size != 1 for d in t.tensor_shape.dim):
        return None
    if t.dtype == _DT_FLOAT:
        code, size, vals = "<f4", 4, t.float_val
    elif t.dtype == _DT_DOUBLE:
        code, size, vals = "<f8", 8, t.double_val
    else:
        return None
    if t.tensor_content:
        if len(t.tensor_content) != size:
            return None
        return float(np.frombuffer(t.tensor_content, code)[0])  # numpy widens float32 like numba
    return float(vals[0]) if len(vals) == 1 else None


def record_scalars(data: bytes, offset: int = 0, path: str | os.PathLike = "<buffer>"
                   ) -> tuple[float, int, list[tuple[str, float]]]:
    """(wall_time, step, [(tag, value), ...]) of one serialized Event, parsed with protobuf.

    Raises CorruptRecordError (naming `path` and `offset`) when the bytes are not an Event.
    """
    from google.protobuf.message import DecodeError
    from tensorboard.compat.proto import event_pb2

    event = event_pb2.Event()
    try:
        event.ParseFromString(data)
    except DecodeError as exc:
        raise CorruptRecordError(path, offset, f"not an Event protobuf ({exc})") from None
    if event.WhichOneof("what") != "summary":
        return event.wall_time, event.step, []
    out = []
    for v in event.summary.value:
        x = scalar_value(v)
        if x is not None:
            out.append((v.tag, x))
    return event.wall_time, event.step, out


def decode(buf, start: int, tags: fastscan.Tags, out: fastscan.Columns, *, path="<buffer>",
           base: int = 0, pure: bool = False) -> int:
    """Scalars of the complete records in `buf[start:]` appended to `out`; returns the end offset.

    The compiled path unless `pure` (or numba is unavailable); both give identical columns.
    """
    def fallback(data: bytes, offset: int):
        return record_scalars(data, offset, path)

    return fastscan.decode(buf, start, tags, out, fallback, path=path, base=base, pure=pure)


# ------------------------------------------------------------------------------------------------
# Incremental store over a logdir.

class _Column:
    """One (run, tag) series in growable arrays; `files` counts points per file for ordering."""

    __slots__ = ("step", "wall_time", "value", "n", "files")

    def __init__(self) -> None:
        self.step = np.empty(0, np.int64)
        self.wall_time = np.empty(0, np.float64)
        self.value = np.empty(0, np.float64)
        self.n = 0
        self.files: dict[str, int] = {}  # file name -> points it contributed

    def add(self, fname: str, step, wall_time, value, k: int | None = None,
            adopt: bool = False) -> None:
        """Insert one file's new points: the first `k` of the arrays (all by default). `adopt`:
        the arrays are fresh and nobody else writes to them, so an empty column may keep them as
        they are, and what lies past `k` is room for appends."""
        if adopt and self.n == 0:
            self.step, self.wall_time, self.value = step, wall_time, value
            self.n = len(step) if k is None else k
            self.files[fname] = self.n
            return
        if k is not None:
            step, wall_time, value = step[:k], wall_time[:k], value[:k]
        k = len(step)
        # Files are concatenated in name order: new points of a file go after every point of the
        # files that sort before it, or at the end when it is the last file (the usual case).
        at = sum(c for f, c in self.files.items() if f <= fname)
        self.files[fname] = self.files.get(fname, 0) + k
        n = self.n
        if at == n and n + k <= len(self.step):  # room to append in place: O(k)
            self.step[n:n + k], self.wall_time[n:n + k], self.value[n:n + k] = step, wall_time, value
        else:  # new arrays, so Series handed out earlier keep their data untouched
            cap = len(self.step)
            if n + k > cap:  # doubling keeps appends amortised O(k)
                cap = max(2 * cap, n + k, 64)
            for name, new in (("step", step), ("wall_time", wall_time), ("value", value)):
                old = getattr(self, name)
                arr = np.empty(cap, old.dtype)
                arr[:at] = old[:at]
                arr[at:at + k] = new
                arr[at + k:n + k] = old[at:n]
                setattr(self, name, arr)
        self.n = n + k

    def series(self) -> Series:
        parts = []
        for a in (self.step, self.wall_time, self.value):
            v = a[:self.n]
            v.flags.writeable = False
            parts.append(v)
        return Series(*parts)


class _File:
    __slots__ = ("path", "run", "name", "offset", "broken")

    def __init__(self, path: Path, run: str) -> None:
        self.path, self.run, self.name = path, run, path.name
        self.offset = 0  # end of the last complete record read
        self.broken: CorruptRecordError | None = None


class ScalarStore:
    """Every scalar under a logdir (or one run folder, or one event file), kept up to date by
    `refresh()`, which reads only the bytes appended since the previous call.

    A half-written last record is left for the next refresh. A file with a corrupt record (a CRC
    that fails, or a length over the contract's MAX_RECORD: crafted, never waited for) keeps the
    points before it, is not read again, and is listed by `problems()`; other files carry on.
    A step logged twice is kept twice, in write order (see `twinboard.events`).
    """

    def __init__(self, logdir: str | os.PathLike, *, headroom: bool = True) -> None:
        """`headroom=False`: no spare room kept after each series (a one-shot read)."""
        self.root = Path(logdir)
        self._headroom = headroom
        self._tags = fastscan.Tags()
        self._files: dict[Path, _File] = {}
        self._runs: dict[str, dict[str, _Column]] = {}
        self._problems: list[Problem] = []  # one per file not read to its end, in the order found
        self._lock = threading.Lock()  # one refresh at a time (Streamlit may call from two threads)

    # -- reading --------------------------------------------------------------------------------
    def refresh(self) -> int:
        """Read what was appended since the last call; returns the number of new points."""
        with self._lock:
            return self._refresh()

    def _refresh(self) -> int:
        new = 0
        for path, run in self._discover():
            f = self._files.get(path)
            if f is None:
                f = self._files[path] = _File(path, run)
                self._runs.setdefault(run, {})
            if f.broken is None:
                new += self._read(f)
        return new

    def _discover(self) -> list[tuple[Path, str]]:
        """(file, run) for every event file, in name order; linked folders are followed once."""
        root = self.root
        if root.is_file():
            return [(root, ".")]
        found = []
        stack, seen = [root], set()
        while stack:
            d = stack.pop()
            try:
                real = os.path.realpath(d)
                if real in seen:
                    continue
                seen.add(real)
                entries = sorted(os.scandir(d), key=lambda e: e.name)
            except OSError:
                continue
            run = None
            for e in entries:
                try:
                    if e.is_dir():
                        # Hidden folders hold the launcher's queue and uploads being staged
                        # (.tmp-upload-*): never runs, and a refused upload must not flash up.
                        if not e.name.startswith("."):
                            stack.append(Path(e.path))
                    elif is_event_file(e.name) and e.is_file():
                        run = run or (d.relative_to(root).as_posix() if d != root else ".")
                        found.append((Path(e.path), run))
                except OSError:
                    continue
        return found

    def _read(self, f: _File) -> int:
        try:
            size = os.path.getsize(f.path)
        except OSError:
            return 0
        if size < f.offset:
            f.broken = CorruptRecordError(f.path, size, f"file shrank below the {f.offset} bytes "
                                                        "already read; keeping what was read")
            self._problems.append(Problem.corrupt(f.broken))
            return 0
        if size - f.offset < 12:
            return 0
        new = 0
        try:
            with open(f.path, "rb") as fh:
                if size - f.offset < _MMAP_FROM:
                    data = os.pread(fh.fileno(), size - f.offset, f.offset)
                    return self._decode(f, data, 0, f.offset)
                mm = mmap.mmap(fh.fileno(), size, flags=_MAP_FLAGS, prot=mmap.PROT_READ)
                try:
                    arr = np.frombuffer(mm, np.uint8)
                    # Windows of at most _WINDOW bytes bound the scratch columns on huge files.
                    window = _WINDOW
                    while f.broken is None and size - f.offset >= 12:
                        start = f.offset
                        new += self._decode(f, arr[:min(size, start + window)], start, 0)
                        if f.offset == start:  # one record longer than the window (or a tail)
                            if start + window >= size:
                                break
                            window *= 2
                finally:
                    del arr
                    try:
                        mm.close()
                    except BufferError:  # a view survives in a traceback; GC will close it
                        pass
        except OSError:
            pass  # vanished or unreadable right now: try again next refresh
        return new

    def _decode(self, f: _File, buf, start: int, base: int) -> int:
        """Decode buf[start:] (buf[0] is file offset `base`) into the columns; advance f.offset."""
        with fastscan.scratch() as out:
            try:
                f.offset = base + decode(buf, start, self._tags, out, path=f.path, base=base)
            except CorruptRecordError as exc:
                f.broken = exc
                f.offset = exc.offset
                self._problems.append(Problem.corrupt(exc))
            self._store(f, out)
            return out.n

    def _store(self, f: _File, out: fastscan.Columns) -> None:
        """Hand the rows in `out` (one file's new points, all tags mixed) to their columns."""
        n = out.n
        if n == 0:
            return
        cols = self._runs[f.run]
        names = self._tags.names
        ids = out.tag[:n]
        if n < 256:  # a refresh's few points: one pass per tag present
            for tid in np.unique(ids).tolist():
                idx = np.flatnonzero(ids == tid)
                col = cols.get(names[tid]) or cols.setdefault(names[tid], _Column())
                col.add(f.name, out.step[idx], out.wall_time[idx], out.value[idx])
            return
        # Many points: make each tag's rows contiguous (tags in name order) in one O(n) pass. A new
        # column keeps its slot of those fresh arrays, with room after it for appends (a store
        # that lives on), so the first refresh after a big read does not copy the whole series.
        present = np.flatnonzero(np.bincount(ids, minlength=len(names))).tolist()
        layout = sorted(present, key=names.__getitem__)
        counts, starts, slots, step, wt, val = fastscan.group_by_tag(out, layout, self._headroom)
        for tid in layout:
            c, s, e = int(counts[tid]), int(starts[tid]), int(starts[tid] + slots[tid])
            col = cols.get(names[tid]) or cols.setdefault(names[tid], _Column())
            col.add(f.name, step[s:e], wt[s:e], val[s:e], k=c, adopt=True)

    # -- queries --------------------------------------------------------------------------------
    def runs(self) -> list[str]:
        """Folders holding event files, as posix paths relative to the logdir, sorted."""
        return sorted(self._runs)

    def tags(self, run: str) -> list[str]:
        """Tags of `run` with at least one scalar point, sorted."""
        return sorted(self._runs.get(run, {}))

    def series(self, run: str, tag: str) -> Series:
        """The points of one tag in write order. Raises KeyError for an unknown run or tag."""
        try:
            return self._runs[run][tag].series()
        except KeyError:
            raise KeyError(f"no scalar series {tag!r} in run {run!r}") from None

    def problems(self) -> list[Problem]:
        """One per file that could not be read to its end (path, byte offset, message)."""
        return list(self._problems)


def read_scalars(path: str | os.PathLike):
    """Every scalar under `path` (a logdir, a run folder or one event file) as a DataFrame with
    columns run, tag (categoricals), step (int64), wall_time (float64), value (float64); rows grouped
    by run then tag (both sorted), each series in write order. Raises CorruptRecordError for a
    damaged file and FileNotFoundError for a missing path. A half-written tail is not an error."""
    import pandas as pd

    if not os.path.exists(path):
        raise FileNotFoundError(f"no such file or folder: {path}")
    store = ScalarStore(path, headroom=False)
    store.refresh()
    problems = store.problems()
    if problems:
        raise problems[0].error()
    run_names, tag_names, run_codes, tag_codes, parts = [], [], [], [], []
    for run in store.runs():
        for tag in store.tags(run):
            s = store.series(run, tag)
            parts.append(s)
            run_codes.append((len(run_names), len(s.step)))
            tag_codes.append(tag)
        run_names.append(run)
    tag_names = sorted(set(tag_codes))
    tag_index = {t: i for i, t in enumerate(tag_names)}
    lengths = np.array([len(p.step) for p in parts], np.int64)

    def cat(codes, categories):
        return pd.Categorical.from_codes(np.repeat(np.asarray(codes, np.int32), lengths), categories)

    def col(i, dtype):
        return _join([p[i] for p in parts], dtype)

    return pd.DataFrame({
        "run": cat([r for r, _ in run_codes], run_names),
        "tag": cat([tag_index[t] for t in tag_codes], tag_names),
        "step": col(0, np.int64),
        "wall_time": col(1, np.float64),
        "value": col(2, np.float64),
    }, copy=False)


def _join(pieces: list[np.ndarray], dtype) -> np.ndarray:
    """np.concatenate, except that pieces which are consecutive slices of one array (one file's
    tags, as _store lays them out) come back as a view of it: no copy of a big single-file read."""
    if not pieces:
        return np.empty(0, dtype)
    base = pieces[0].base
    if base is not None and all(p.base is base for p in pieces) and base.ndim == 1:
        ptr = [p.__array_interface__["data"][0] for p in pieces]
        if all(ptr[i] + pieces[i].nbytes == ptr[i + 1] for i in range(len(pieces) - 1)):
            start = (ptr[0] - base.__array_interface__["data"][0]) // base.itemsize
            if base.strides == (base.itemsize,) and start >= 0:
                return base[start:start + sum(len(p) for p in pieces)]
    return np.concatenate(pieces)

