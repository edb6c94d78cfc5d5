"""Reading an upload's archives (.zip, .tar.gz/.tgz, .tar) and raw files, entry by entry, within caps.

`Extraction` writes the accepted entries of one upload into a folder (twinboard.uploads gives it a
hidden temporary one and renames it into place) and refuses the whole upload, by raising
UploadRefused naming the entry and the reason, at the first entry it cannot accept.

What is accepted, entry by entry:
- event files (a name holding `tfevents`): TFRecord framing and the CRC of every record are checked,
  and the first record must be a TensorBoard `file_version` Event. A truncated last record (a run
  copied while still being written) is accepted with a warning.
- projector and run files (`EXTRA_SUFFIXES`: .pbtxt, .tsv, .png, .json), within the caps.
- anything else (checkpoints, .DS_Store, __MACOSX/, hidden files, profiler dumps) is NOT extracted:
  it is skipped and listed in one warning. Still counted against the file cap and the ratio cap.
What refuses the whole upload: a `..` or absolute path, a symlink, hard link, device file, fifo or
other special entry, an encrypted zip entry, a damaged entry, a corrupt event file, an upload over
the caps on uncompressed bytes, number of entries or compression ratio (declared sizes are checked
first, and bytes are counted again while extracting: headers are never trusted alone).
"""
from __future__ import annotations

import gzip
import io
import os
import re
import stat
import struct
import tarfile
import zipfile
import zlib
from dataclasses import dataclass
from pathlib import Path, PurePosixPath
from typing import BinaryIO, Union

from twinboard.contract.files import is_event_file
from twinboard.contract import FOOTER, HEADER, CorruptRecordError, split_records

MAX_TOTAL_BYTES = 1 << 30  # uncompressed bytes written per upload; env TWINBOARD_UPLOAD_MAX_BYTES
MAX_FILES = 10_000  # entries (files and folders) per upload; env TWINBOARD_UPLOAD_MAX_FILES
MAX_RATIO = 100.0  # uncompressed / compressed bytes; env TWINBOARD_UPLOAD_MAX_RATIO
RATIO_FLOOR = 1 << 20  # ratios are only judged past this many uncompressed bytes (tiny files compress well)
EXTRA_SUFFIXES = (".pbtxt", ".tsv", ".png", ".json")  # projector config/metadata/sprites, run json
CHUNK = 1 << 20
Source = Union[bytes, os.PathLike, str, BinaryIO]  # archive/file content: bytes, a path or a binary file


class UploadRefused(ValueError):
    """The upload was refused and nothing changed; `path` is the entry (or name) at fault."""

    def __init__(self, path: str, reason: str):
        self.path, self.reason = str(path), reason
        super().__init__(f"{path}: {reason}")


@dataclass(frozen=True)
class Limits:
    max_total_bytes: int = MAX_TOTAL_BYTES  # uncompressed bytes written
    max_files: int = MAX_FILES  # entries, skipped ones included
    max_ratio: float = MAX_RATIO  # uncompressed / compressed, per entry and per archive

    @classmethod
    def from_env(cls, **overrides) -> "Limits":
        """Module defaults, overridden by the environment, overridden by non-None arguments."""
        env = {"max_total_bytes": ("TWINBOARD_UPLOAD_MAX_BYTES", int),
               "max_files": ("TWINBOARD_UPLOAD_MAX_FILES", int),
               "max_ratio": ("TWINBOARD_UPLOAD_MAX_RATIO", float)}
        values = {}
        for key, (var, kind) in env.items():
            raw = os.environ.get(var, "").strip()
            try:
                values[key] = kind(raw) if raw else getattr(cls, key)
            except ValueError:  # refused like an upload, so the page and the CLI report it the same way
                raise UploadRefused(var, f"{raw!r} is not a number; fix the environment variable") from None
            if overrides.get(key) is not None:
                values[key] = overrides[key]
        return cls(**values)



def _open(data: Source) -> tuple[BinaryIO, int]:
    if isinstance(data, (bytes, bytearray, memoryview)):
        return io.BytesIO(bytes(data)), len(data)
    if isinstance(data, (str, os.PathLike)):
        f = open(data, "rb")
        return f, os.fstat(f.fileno()).st_size
    size = data.seek(0, io.SEEK_END)
    data.seek(0)
    return data, size


class _Capped(io.RawIOBase):
    """Counts the decompressed bytes of a tar stream; refuses past `cap` (tar headers and padding
    included), so a gzip bomb is stopped however its members are declared."""

    def __init__(self, raw: BinaryIO, cap: int, where: str):
        self.raw, self.cap, self.where, self.count = raw, cap, where, 0

    def readable(self) -> bool:
        return True

    def readinto(self, b) -> int:
        data = self.raw.read(len(b))
        self.count += len(data)
        if self.count > self.cap:
            raise UploadRefused(self.where, f"expands past {self.cap} bytes (uncompressed size cap)")
        b[:len(data)] = data
        return len(data)


class Extraction:
    """One upload being extracted into `tmp`; every method refuses by raising UploadRefused."""

    def __init__(self, tmp: Path, limits: Limits):
        self.tmp, self.limits = tmp, limits
        self.entries = self.files = self.bytes = 0  # entries seen, files written, bytes written
        self.events: list[str] = []  # event files written (paths relative to tmp)
        self.skipped: list[str] = []
        self.warnings: list[str] = []

    # --- entry checks ----------------------------------------------------------------------------
    def count(self, where: str) -> None:
        self.entries += 1
        if self.entries > self.limits.max_files:
            raise UploadRefused(where, f"more than {self.limits.max_files} entries (file count cap)")

    @staticmethod
    def safe_rel(where: str) -> PurePosixPath:
        """The entry's path relative to the upload, or a refusal for `..`, absolute or drive paths."""
        name = where.replace("\\", "/")
        if "\x00" in name or name.startswith("/") or re.match(r"[A-Za-z]:", name):
            raise UploadRefused(where, "absolute path; entries must stay inside the upload")
        parts = [p for p in name.split("/") if p not in ("", ".")]
        if ".." in parts:
            raise UploadRefused(where, "path contains '..'; entries must stay inside the upload")
        return PurePosixPath(*parts) if parts else PurePosixPath(".")

    def kind(self, rel: PurePosixPath, where: str) -> str | None:
        """"event", "extra", or None (skipped, remembered for one warning)."""
        if any(p.startswith(".") or p == "__MACOSX" for p in rel.parts) or rel == PurePosixPath("."):
            self.skipped.append(where)
            return None
        if is_event_file(rel.name):
            return "event"
        if rel.suffix.lower() in EXTRA_SUFFIXES:
            return "extra"
        self.skipped.append(where)
        return None

    def check_declared(self, where: str, total: int, size: int, compressed: int) -> None:
        """Before reading an entry: `total` = bytes the upload would hold with it, from headers."""
        lim = self.limits
        if total > lim.max_total_bytes:
            raise UploadRefused(where, f"declares {size} bytes; the upload would exceed "
                                       f"{lim.max_total_bytes} bytes (uncompressed size cap)")
        if size > RATIO_FLOOR and size > lim.max_ratio * max(compressed, 1):
            raise UploadRefused(where, f"compression ratio {size / max(compressed, 1):.0f}:1 "
                                       f"is over the cap of {lim.max_ratio:.0f}:1 (zip bomb?)")

    # --- writing ---------------------------------------------------------------------------------
    def write(self, rel: PurePosixPath, src: BinaryIO, declared: int, where: str, what: str,
              source_size: int, source_start: int) -> None:
        """Copy one entry, counting real bytes against the declared size, the total cap and the
        archive's ratio (source_start: bytes written before this archive began)."""
        dest = self.tmp.joinpath(*rel.parts)
        lim = self.limits
        try:
            dest.parent.mkdir(parents=True, exist_ok=True)
        except OSError:  # a file already sits where this entry needs a folder
            raise UploadRefused(where, "clashes with another entry (a file where a folder should be)") from None
        try:
            with open(dest, "xb") as out:  # x: a duplicate entry never overwrites
                written = 0
                while chunk := src.read(CHUNK):
                    written += len(chunk)
                    self.bytes += len(chunk)
                    if written > declared:
                        raise UploadRefused(where, f"holds more data than the {declared} bytes its header declares")
                    if self.bytes > lim.max_total_bytes:
                        raise UploadRefused(where, f"upload exceeds {lim.max_total_bytes} bytes (uncompressed size cap)")
                    expanded = self.bytes - source_start
                    if expanded > RATIO_FLOOR and expanded > lim.max_ratio * max(source_size, 1):
                        raise UploadRefused(where, f"archive expands over {lim.max_ratio:.0f}:1 (compression ratio cap)")
                    out.write(chunk)
        except (FileExistsError, IsADirectoryError):
            raise UploadRefused(where, "appears twice in the upload (or clashes with a folder)") from None
        except (OSError, EOFError, zlib.error, zipfile.BadZipFile, tarfile.TarError, NotImplementedError) as e:
            raise UploadRefused(where, f"cannot be extracted: {e}") from None
        self.files += 1
        if what == "event":
            self.check_event(dest, where)
            self.events.append(rel.as_posix())

    def check_event(self, path: Path, where: str) -> None:
        """Every record's framing and CRCs; the first must be a file_version Event."""
        from google.protobuf.message import DecodeError
        from tensorboard.compat.proto import event_pb2  # protobufs only, no TensorFlow

        size, base, records, buf = path.stat().st_size, 0, 0, b""
        with open(path, "rb") as f:
            while True:
                want = CHUNK
                if len(buf) >= HEADER:  # read a big record in one go rather than by CHUNKs
                    want = max(CHUNK, HEADER + struct.unpack_from("<Q", buf)[0] + FOOTER - len(buf))
                chunk = f.read(min(want, size - base - len(buf)))
                if not chunk:
                    break
                buf += chunk
                try:
                    recs, used = split_records(buf, where, base)
                except CorruptRecordError as e:
                    raise UploadRefused(where, f"not a valid event file: {e.reason} at byte {e.offset}") from None
                if recs and records == 0:
                    ev = event_pb2.Event()
                    try:
                        ev.ParseFromString(recs[0])
                    except DecodeError:
                        ev.Clear()
                    if not ev.file_version.startswith("brain.Event:"):
                        raise UploadRefused(where, "not a TensorBoard event file (first record is no file_version Event)")
                records += len(recs)
                buf, base = buf[used:], base + used
        if records == 0 and size:
            raise UploadRefused(where, "not an event file: no complete TFRecord in it")
        if size == 0:
            self.warnings.append(f"{where}: empty event file")
        elif size > base:
            self.warnings.append(f"{where}: last record truncated ({size - base} bytes ignored); "
                                 "copied while still being written?")

    # --- sources ---------------------------------------------------------------------------------
    def add(self, filename: str, data: Source) -> None:
        low = filename.lower()
        f, size = _open(data)
        try:
            start = self.bytes
            if low.endswith(".zip"):
                self.zip(f, size, filename, start)
            elif low.endswith((".tar.gz", ".tgz", ".tar")):
                self.tar(f, size, filename, start, gz=not low.endswith(".tar"))
            else:
                self.raw(f, size, filename, start)
        finally:
            if isinstance(data, (str, os.PathLike)):
                f.close()

    def raw(self, f: BinaryIO, size: int, filename: str, start: int) -> None:
        rel = PurePosixPath(PurePosixPath(filename.replace("\\", "/")).name)
        self.count(filename)
        what = self.kind(rel, filename)
        if what is None:
            self.skipped.pop()
            raise UploadRefused(filename, "not an event file (name holding 'tfevents'), projector file "
                                          f"({', '.join(EXTRA_SUFFIXES)}) or archive (.zip, .tar.gz, .tgz, .tar)")
        self.check_declared(filename, self.bytes + size, size, size)
        self.write(rel, f, size, filename, what, size, start)

    def zip(self, f: BinaryIO, size: int, archive: str, start: int) -> None:
        try:
            zf = zipfile.ZipFile(f)
            infos = zf.infolist()
        except (zipfile.BadZipFile, OSError, EOFError) as e:
            raise UploadRefused(archive, f"not a readable zip archive: {e}") from None
        plan, declared, expands = [], 0, 0  # declared: bytes to write; expands: all entries
        for info in infos:  # headers first: cheap refusals before a byte is written
            where = f"{archive}:{info.filename}"
            self.count(where)
            mode = info.external_attr >> 16
            if stat.S_ISLNK(mode):
                raise UploadRefused(where, "symbolic link; links are not accepted")
            if any(t(mode) for t in (stat.S_ISCHR, stat.S_ISBLK, stat.S_ISFIFO, stat.S_ISSOCK)):
                raise UploadRefused(where, "device file, fifo or socket; only files and folders are accepted")
            if info.flag_bits & 0x1:
                raise UploadRefused(where, "encrypted entry")
            rel = self.safe_rel(info.filename)
            expands += info.file_size
            if expands > RATIO_FLOOR and expands > self.limits.max_ratio * size:
                raise UploadRefused(where, f"archive declares over {self.limits.max_ratio:.0f}:1 "
                                           "expansion (compression ratio cap; zip bomb?)")
            what = None if info.is_dir() else self.kind(rel, where)
            self.check_declared(where, self.bytes + declared + (info.file_size if what else 0),
                                info.file_size, info.compress_size)
            if what:
                declared += info.file_size
                plan.append((info, rel, where, what))
        for info, rel, where, what in plan:
            try:
                src = zf.open(info)
            except (zipfile.BadZipFile, NotImplementedError, OSError, RuntimeError) as e:
                raise UploadRefused(where, f"cannot be extracted: {e}") from None
            with src:
                self.write(rel, src, info.file_size, where, what, size, start)

    def tar(self, f: BinaryIO, size: int, archive: str, start: int, gz: bool) -> None:
        lim = self.limits
        # Headers and padding: 512-byte blocks per member plus the final record; PAX headers fit in slack.
        cap = lim.max_total_bytes + 2048 * lim.max_files + (1 << 20)
        expands = 0  # member bytes so far, skipped ones included
        stream = _Capped(gzip.GzipFile(fileobj=f, mode="rb") if gz else f, cap, archive)
        try:
            with tarfile.open(fileobj=io.BufferedReader(stream, CHUNK), mode="r|") as tf:
                for m in tf:
                    where = stream.where = f"{archive}:{m.name}"
                    self.count(where)
                    if m.issym():
                        raise UploadRefused(where, f"symbolic link (to {m.linkname!r}); links are not accepted")
                    if m.islnk():
                        raise UploadRefused(where, f"hard link (to {m.linkname!r}); links are not accepted")
                    if m.ischr() or m.isblk() or m.isfifo():
                        raise UploadRefused(where, "device file or fifo; only files and folders are accepted")
                    if m.issparse() or not (m.isreg() or m.isdir()):
                        raise UploadRefused(where, f"unsupported tar entry type {m.type!r}")
                    rel = self.safe_rel(m.name)
                    what = self.kind(rel, where) if m.isreg() else None
                    expands += m.size  # tar sizes are exact: the stream holds just that many bytes
                    if expands > RATIO_FLOOR and expands > lim.max_ratio * size:
                        raise UploadRefused(where, f"archive would expand over {lim.max_ratio:.0f}:1 "
                                                   "(compression ratio cap; tar bomb?)")
                    self.check_declared(where, self.bytes + (m.size if what else 0), m.size, size)
                    if what:
                        self.write(rel, tf.extractfile(m), m.size, where, what, size, start)
        except (tarfile.TarError, OSError, EOFError, zlib.error) as e:
            raise UploadRefused(archive, f"not a readable tar archive: {e}") from None
