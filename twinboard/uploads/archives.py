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
first, and bytes are counted again while extracting: headers are never trusted alone), or over the
room the uploads quota leaves (`room`, from twinboard.uploads.importer). A write the logdir refuses
(disk full, read-only, no permission) refuses the upload too, saying which (`disk_refusal`).

Tar headers: tarfile reads a member's GNU long name or PAX records whole, itself, before it hands
us the member (1 MB of gzip made one 3.1 GB long name). So tarfile reads through `TarBudget`: after
each member it may read that member's data (tar sizes are exact) and then at most HEADER_ROOM bytes
of headers; a header that needs more is refused while it is being read. Only the stream's byte
count is relied on, not how tarfile buffers; header chains (a long name naming a long name...)
are bounded by the same room. Zip: zipfile parses the whole central directory before an entry can
be counted, so its size (from the end record) is checked against the file count cap first.
"""
from __future__ import annotations

import gzip
import io
import os
import re
import stat
import tarfile
import zipfile
import zlib
from pathlib import Path, PurePosixPath
from typing import BinaryIO, Union

from twinboard.contract import CorruptRecordError, is_event_file, verify_file
from twinboard.uploads.limits import (
    CHUNK, RATIO_FLOOR, ZIP_ENTRY_BYTES, Limits, TarBudget, UploadRefused, central_directory_size)
from twinboard.uploads.storage import disk_refusal

EXTRA_SUFFIXES = (".pbtxt", ".tsv", ".png", ".json")  # projector config/metadata/sprites, run json
FIRST_RECORD_MAX = 4096  # bytes of an event file's first record: a file_version Event takes ~30
Source = Union[bytes, os.PathLike, str, BinaryIO]  # archive/file content: bytes, a path or a binary file


def _open(data: Source) -> tuple[BinaryIO, int]:
    if isinstance(data, (bytes, bytearray, memoryview)):
        return io.BytesIO(bytes(data)), len(data)
    if isinstance(data, (str, os.PathLike)):
        f = open(data, "rb")
        return f, os.fstat(f.fileno()).st_size
    size = data.seek(0, io.SEEK_END)
    data.seek(0)
    return data, size


class Extraction:
    """One upload being extracted into `tmp`; every method refuses by raising UploadRefused."""

    def __init__(self, tmp: Path, limits: Limits, room: int | None = None, room_reason: str = ""):
        """`room`: bytes the uploads quota leaves this upload (None: no quota), refused past with
        `room_reason`."""
        self.tmp, self.limits = tmp, limits
        self.room, self.room_reason = room, room_reason
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
        if self.room is not None and total > self.room:
            raise UploadRefused(where, f"declares {size} bytes; {self.room_reason}")
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
        try:
            dest.parent.mkdir(parents=True, exist_ok=True)
        except (FileExistsError, NotADirectoryError):  # a file already sits where this entry needs a folder
            raise UploadRefused(where, "clashes with another entry (a file where a folder should be)") from None
        except OSError as e:
            raise disk_refusal(where, e) from None
        try:
            with open(dest, "xb") as out:  # x: a duplicate entry never overwrites
                self._copy(src, out, declared, where, source_size, source_start)
        except (FileExistsError, IsADirectoryError):
            raise UploadRefused(where, "appears twice in the upload (or clashes with a folder)") from None
        except OSError as e:  # reading errors became refusals in _copy: this is the disk
            raise disk_refusal(where, e) from None
        self.files += 1
        if what == "event":
            self.check_event(dest, where)
            self.events.append(rel.as_posix())

    def _copy(self, src: BinaryIO, out: BinaryIO, declared: int, where: str, source_size: int,
              source_start: int) -> None:
        lim, written = self.limits, 0
        while True:
            try:
                chunk = src.read(CHUNK)
            except (OSError, EOFError, zlib.error, zipfile.BadZipFile, tarfile.TarError, NotImplementedError) as e:
                raise UploadRefused(where, f"cannot be extracted: {e}") from None
            if not chunk:
                return
            written += len(chunk)
            self.bytes += len(chunk)
            if written > declared:
                raise UploadRefused(where, f"holds more data than the {declared} bytes its header declares")
            if self.bytes > lim.max_total_bytes:
                raise UploadRefused(where, f"upload exceeds {lim.max_total_bytes} bytes (uncompressed size cap)")
            if self.room is not None and self.bytes > self.room:
                raise UploadRefused(where, self.room_reason)
            expanded = self.bytes - source_start
            if expanded > RATIO_FLOOR and expanded > lim.max_ratio * max(source_size, 1):
                raise UploadRefused(where, f"archive expands over {lim.max_ratio:.0f}:1 (compression ratio cap)")
            out.write(chunk)

    def check_event(self, path: Path, where: str) -> None:
        """Every record's framing and CRCs, in bounded memory (contract.verify_file); the first
        must be a file_version Event."""
        from google.protobuf.message import DecodeError
        from tensorboard.compat.proto import event_pb2  # protobufs only, no TensorFlow

        try:
            with open(path, "rb") as f:
                records, end, first = verify_file(f, where, FIRST_RECORD_MAX, CHUNK)
        except CorruptRecordError as e:
            raise UploadRefused(where, f"not a valid event file: {e.reason} at byte {e.offset}") from None
        size = path.stat().st_size
        if records == 0 and size:
            raise UploadRefused(where, "not an event file: no complete TFRecord in it")
        if records:
            ev = event_pb2.Event()
            try:
                ev.ParseFromString(first or b"")
            except DecodeError:
                ev.Clear()
            if not ev.file_version.startswith("brain.Event:"):
                raise UploadRefused(where, "not a TensorBoard event file (first record is no file_version Event)")
        if size == 0:
            self.warnings.append(f"{where}: empty event file")
        elif size > end:
            self.warnings.append(f"{where}: last record truncated ({size - end} bytes ignored); "
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
        # zipfile parses the whole central directory into ZipInfo objects (~300 bytes for each 47
        # bytes of it: 47 MB made 314 MB) before an entry can be counted: bound it by its size first.
        most = self.limits.max_files * ZIP_ENTRY_BYTES + (1 << 20)
        if (cd := central_directory_size(f, size)) > most:
            raise UploadRefused(archive, f"its central directory takes {cd} bytes, more than "
                                         f"{self.limits.max_files} entries need (file count cap)")
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
        stream = TarBudget(gzip.GzipFile(fileobj=f, mode="rb") if gz else f, cap, archive)
        try:
            with tarfile.open(fileobj=stream, mode="r|") as tf:
                for m in tf:
                    stream.allow(m)
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
        except RecursionError:  # headers naming headers; HEADER_ROOM keeps chains far shorter
            raise UploadRefused(archive, "a chain of tar headers too long to follow (crafted archive?)") from None
