"""What one upload may cost, and the refusal when it would cost more.

The caps (per upload: uncompressed bytes, entries, compression ratio; `Limits`, from the environment)
and the two guards that make archive parsers keep to them while they read: `TarBudget` for tar
headers, `central_directory_size` for zip directories (twinboard.uploads.archives says why each is
needed). What the files kept in the logdir add up to, and a write the logdir refused, are
twinboard.uploads.storage's.
"""
from __future__ import annotations

import os
import struct
import tarfile
from dataclasses import dataclass
from typing import BinaryIO

MAX_TOTAL_BYTES = 1 << 30  # uncompressed bytes written per upload; env TWINBOARD_UPLOAD_MAX_BYTES
MAX_FILES = 10_000  # entries (files and folders) per upload; env TWINBOARD_UPLOAD_MAX_FILES
MAX_RATIO = 100.0  # uncompressed / compressed bytes; env TWINBOARD_UPLOAD_MAX_RATIO
RATIO_FLOOR = 1 << 20  # ratios are only judged past this many uncompressed bytes (tiny files compress well)
CHUNK = 1 << 20  # bytes read at a time from an upload
HEADER_ROOM = 64 << 10  # tar header bytes (long names, PAX records) per member; real ones take < 10 KiB
ZIP_ENTRY_BYTES = 1024  # central directory bytes one entry may take (46 + its name, extra, comment)


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


class TarBudget:
    """The decompressed tar stream as tarfile reads it, within the total `cap` (headers and padding
    included: a gzip bomb stops here) and the header room (module docstring): `limit` moves on by
    each member's data and HEADER_ROOM when tarfile hands the member over (`allow`)."""

    def __init__(self, raw: BinaryIO, cap: int, archive: str):
        self.raw, self.cap, self.archive, self.where = raw, cap, archive, archive
        self.count, self.after = 0, None
        self.limit = HEADER_ROOM + tarfile.RECORDSIZE  # tarfile reads ahead up to one record

    def read(self, n: int = CHUNK) -> bytes:
        data = self.raw.read(min(n, CHUNK) if n >= 0 else CHUNK)
        self.count += len(data)
        if self.count > self.cap:
            raise UploadRefused(self.where, f"expands past {self.cap} bytes (uncompressed size cap)")
        if self.count > self.limit:
            at = f"after entry {self.after!r}" if self.after else "at its start"
            raise UploadRefused(self.archive, f"a tar header {at} takes more than {HEADER_ROOM} bytes "
                                              "(a GNU long name or PAX record that large is crafted)")
        return data

    def allow(self, member: tarfile.TarInfo) -> None:
        self.after = member.name[:200]
        blocks = -(-max(member.size, 0) // tarfile.BLOCKSIZE) * tarfile.BLOCKSIZE
        self.limit = self.count + blocks + HEADER_ROOM + tarfile.RECORDSIZE


def central_directory_size(f: BinaryIO, size: int) -> int:
    """Bytes of a zip's central directory as its end record says (zip64's when it defers), which
    zipfile reads and parses whole; 0 when there is no end record (zipfile refuses it anyway)."""
    tail_len = min(size, 22 + 0xFFFF)  # the end record, then a comment of at most 64 KiB
    f.seek(size - tail_len)
    tail = f.read(tail_len)
    at = tail.rfind(b"PK\x05\x06")
    cd = struct.unpack_from("<I", tail, at + 12)[0] if 0 <= at <= len(tail) - 22 else 0
    if cd == 0xFFFFFFFF and at >= 20 and tail[at - 20:at - 16] == b"PK\x06\x07":  # zip64 locator
        f.seek(struct.unpack_from("<Q", tail, at - 12)[0])
        record = f.read(56)
        if record[:4] == b"PK\x06\x06" and len(record) == 56:
            cd = struct.unpack_from("<Q", record, 40)[0]
    f.seek(0)
    return cd

