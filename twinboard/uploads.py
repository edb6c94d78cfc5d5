"""Safe import of uploaded event files: archives (.zip, .tar.gz/.tgz, .tar) or raw event files.

An upload is extracted into a hidden temporary folder inside the logdir (`.tmp-upload-XXXX`, so the
final rename is atomic on one filesystem) and moved to `uploads/<name>/` only when every entry was
accepted; any refusal removes the temporary folder and leaves the logdir exactly as it was.

What is accepted, entry by entry:
- event files (a name holding `tfevents`): TFRecord framing and the CRC of every record are checked,
  and the first record must be a TensorBoard `file_version` Event. A truncated last record (a run
  copied while still being written) is accepted with a warning.
- projector and run files (`EXTRA_SUFFIXES`: .pbtxt, .tsv, .png, .json), within the caps.
- anything else (checkpoints, .DS_Store, __MACOSX/, hidden files, profiler dumps) is NOT extracted:
  it is skipped and listed in one warning. Still counted against the file cap and the ratio cap.
- `twinboard_mapping.json` is always written by us (default rules for the layout found); one the
  archive brings is not used, since its regexes would run on every page.
What refuses the whole upload (UploadRefused names the entry and the reason): a `..` or absolute
path, a symlink, hard link, device file, fifo or other special entry, an encrypted zip entry, a
damaged entry, a corrupt event file, an upload over the caps on uncompressed bytes, number of
entries or compression ratio (declared sizes are checked first, and bytes are counted again while
extracting: headers are never trusted alone), an upload with no event file, or a name in use.
"""
from __future__ import annotations

import gzip
import io
import os
import re
import shutil
import stat
import struct
import tarfile
import tempfile
import time
import zipfile
import zlib
from dataclasses import dataclass, field
from pathlib import Path, PurePosixPath
from typing import BinaryIO, Iterable, Union

from twinboard import config, tagmap
from twinboard.records import FOOTER, HEADER, CorruptRecordError, split_records

MAX_TOTAL_BYTES = 1 << 30  # uncompressed bytes written per upload; env TWINBOARD_UPLOAD_MAX_BYTES
MAX_FILES = 10_000  # entries (files and folders) per upload; env TWINBOARD_UPLOAD_MAX_FILES
MAX_RATIO = 100.0  # uncompressed / compressed bytes; env TWINBOARD_UPLOAD_MAX_RATIO
RATIO_FLOOR = 1 << 20  # ratios are only judged past this many uncompressed bytes (tiny files compress well)
EXTRA_SUFFIXES = (".pbtxt", ".tsv", ".png", ".json")  # projector config/metadata/sprites, run json
UPLOADS = "uploads"
TMP_PREFIX = ".tmp-upload-"
CHUNK = 1 << 20
_NAME = re.compile(r"[A-Za-z0-9_-][A-Za-z0-9_.-]{0,99}")
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


@dataclass
class ImportResult:
    name: str  # the upload's name: logs/uploads/<name>
    path: Path  # its folder
    runs: list[str]  # event runs inside, relative to path ("." for files at its top)
    files: int  # files written
    bytes: int  # bytes written
    warnings: list[str] = field(default_factory=list)  # accepted, but worth telling (truncated tails, skips)


@dataclass(frozen=True)
class UploadInfo:
    name: str
    path: Path
    runs: list[str]  # event runs relative to path
    files: int
    bytes: int
    modified: float  # unix seconds


def validate_name(name: str) -> str:
    if not isinstance(name, str) or not _NAME.fullmatch(name):
        raise UploadRefused(str(name), "an upload name takes letters, digits, '-', '_' and '.', "
                                       "1-100 characters, and may not start with '.'")
    return name


def default_name(filenames: Iterable[str]) -> str:
    """The first archive's name without its extension, made valid; `upload-<time>` for raw files."""
    for fn in filenames:
        base = PurePosixPath(fn.replace("\\", "/")).name
        low = base.lower()
        for ext in (".tar.gz", ".tgz", ".zip", ".tar"):
            if low.endswith(ext) and len(base) > len(ext):
                stem = re.sub(r"[^A-Za-z0-9_.-]+", "-", base[:-len(ext)]).lstrip(".")[:100]
                if _NAME.fullmatch(stem):
                    return stem
    return time.strftime("upload-%Y%m%d-%H%M%S")


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


class _Import:
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
        if "tfevents" in rel.name:
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


def import_upload(files: list[tuple[str, Source]], name: str | None = None, logdir: str | os.PathLike | None = None,
                  *, max_total_bytes: int | None = None, max_files: int | None = None,
                  max_ratio: float | None = None, steps_per_epoch: float | None = None,
                  batch_size: int | None = None) -> ImportResult:
    """Import (filename, content) items as `<logdir>/uploads/<name>/`, or refuse and change nothing.

    Archives keep their folder structure; raw files land at the top of the upload. A mapping file
    (`twinboard_mapping.json`, default rules for the layout found; steps_per_epoch read off Keras
    logs when not given) is written with the upload, replacing any the archive brings.
    Caps default to the module constants / environment; arguments override both.
    """
    if not files:
        raise UploadRefused("<upload>", "no files given")
    name = validate_name(name or default_name([fn for fn, _ in files]))
    root = _root(logdir)
    dest = root / UPLOADS / name
    if os.path.lexists(dest):
        raise UploadRefused(name, f"an upload named {name!r} already exists; choose another name")
    limits = Limits.from_env(max_total_bytes=max_total_bytes, max_files=max_files, max_ratio=max_ratio)
    root.mkdir(parents=True, exist_ok=True)
    tmp = Path(tempfile.mkdtemp(prefix=TMP_PREFIX, dir=root))
    try:
        job = _Import(tmp, limits)
        for filename, data in files:
            job.add(filename, data)
        if not job.events:
            raise UploadRefused(files[0][0], "holds no event file (a file whose name contains 'tfevents')")
        if job.skipped:
            shown = ", ".join(job.skipped[:5]) + (f" and {len(job.skipped) - 5} more" if len(job.skipped) > 5 else "")
            job.warnings.append(f"skipped {len(job.skipped)} entries that are neither event nor projector files: {shown}")
        runs = sorted({PurePosixPath(e).parent.as_posix() for e in job.events})
        _write_mapping(tmp, runs, job.warnings, steps_per_epoch, batch_size)
        (root / UPLOADS).mkdir(exist_ok=True)
        try:
            os.rename(tmp, dest)  # atomic; fails on a non-empty folder that appeared meanwhile
        except OSError:
            raise UploadRefused(name, f"an upload named {name!r} already exists; choose another name") from None
    except BaseException:
        shutil.rmtree(tmp, ignore_errors=True)
        raise
    return ImportResult(name, dest, runs, job.files, job.bytes, job.warnings)


def _write_mapping(tmp: Path, runs: list[str], warnings: list[str], spe: float | None, bs: int | None) -> None:
    """The default mapping for the layout found. A mapping file the archive brings is replaced: its
    regexes would run on every page, and a hostile one (catastrophic backtracking) could hang the app."""
    path = tmp / tagmap.MAPPING_FILE
    if path.exists():
        path.unlink()
        warnings.append(f"{tagmap.MAPPING_FILE} from the upload was not used (only mappings made here are "
                        "trusted); default rules written, edit them on the Upload page")
    if spe is None:  # Keras: validation/ holds both epoch_* and evaluation_*_vs_iterations
        for run in runs:
            if run.rsplit("/", 1)[-1] == "validation" and spe is None:
                spe = tagmap.infer_steps_per_epoch(tagmap.folder_scalars(tmp / run, run))
    tagmap.save(tagmap.default_mapping(runs, spe, bs), path)


# --- managing uploads ------------------------------------------------------------------------------
def _root(logdir: str | os.PathLike | None) -> Path:
    return Path(logdir) if logdir is not None else config.logdir()


def _upload_dir(name: str, logdir: str | os.PathLike | None) -> Path:
    return _root(logdir) / UPLOADS / validate_name(name)


def list_uploads(logdir: str | os.PathLike | None = None) -> list[UploadInfo]:
    base = _root(logdir) / UPLOADS
    out = []
    for d in sorted(base.iterdir() if base.is_dir() else []):
        if d.is_dir() and not d.name.startswith("."):
            files = [p for p in d.rglob("*") if p.is_file()]
            runs = sorted({p.parent.relative_to(d).as_posix() for p in files if "tfevents" in p.name})
            out.append(UploadInfo(d.name, d, runs, len(files), sum(p.stat().st_size for p in files),
                                  d.stat().st_mtime))
    return out


def rename_upload(old: str, new: str, logdir: str | os.PathLike | None = None) -> Path:
    src, dest = _upload_dir(old, logdir), _upload_dir(new, logdir)
    if not src.is_dir():
        raise UploadRefused(old, "no such upload")
    if os.path.lexists(dest):
        raise UploadRefused(new, f"an upload named {new!r} already exists; choose another name")
    os.rename(src, dest)
    return dest


def delete_upload(name: str, logdir: str | os.PathLike | None = None) -> None:
    """Move aside (atomic, hidden) then remove, so a half-deleted upload is never listed."""
    src = _upload_dir(name, logdir)
    if not src.is_dir():
        raise UploadRefused(name, "no such upload")
    trash = Path(tempfile.mkdtemp(prefix=".tmp-delete-", dir=src.parent.parent))
    os.rename(src, trash / name)
    shutil.rmtree(trash)
