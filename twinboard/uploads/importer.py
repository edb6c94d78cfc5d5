"""Safe import of uploaded event files, and the uploads folder: import, list, rename, delete.

An upload is extracted into a hidden temporary folder inside the logdir (`.tmp-upload-XXXX`, so the
final rename is atomic on one filesystem) and moved to `uploads/<name>/` only when every entry was
accepted; any refusal removes the temporary folder and leaves the logdir exactly as it was.

Which entries are accepted, and what refuses the whole upload, is twinboard.uploads.archives. On top
of that an upload with no event file, or a name in use, is refused too;
`twinboard_mapping.json` is always written by us (default rules for the layout found); one the
archive brings is not used, since its regexes would run on every page.

Quotas: everything under `<logdir>/uploads` may hold at most TWINBOARD_UPLOADS_QUOTA_BYTES, and one
owner's uploads (the owner is recorded in the upload's folder, twinboard.auth.set_owner) at most
TWINBOARD_UPLOADS_QUOTA_PER_USER_BYTES. Imports still in progress (their hidden temporary folders)
count too, so two sessions cannot both fill the same room. The room left is checked before a byte is
written, against every entry's bytes while they are written (a small archive that expands to a GiB
stops at the quota), and once more, against what the others wrote meanwhile, before the final rename.
A write the logdir refuses (disk full, read-only) is a refusal like any other: nothing is left behind.
"""
from __future__ import annotations

import errno
import os
import re
import shutil
import tempfile
import time
from dataclasses import dataclass, field
from pathlib import Path, PurePosixPath
from typing import Iterable

from twinboard import auth, config, tagmap
from twinboard.contract.files import UPLOADS, is_event_file
from twinboard.uploads.archives import Extraction, Source
from twinboard.uploads.limits import Limits, UploadRefused
from twinboard.uploads.storage import disk_refusal, env_bytes, sweep_stale, tree_bytes

TMP_PREFIX = ".tmp-upload-"
TRASH_PREFIX = ".tmp-delete-"
STALE_TMP_S = 6 * 3600  # a temporary folder nothing was written into for this long is left over
_NAME = re.compile(r"[A-Za-z0-9_-][A-Za-z0-9_.-]{0,99}")
QUOTA_BYTES = 10 << 30  # all uploads together; env TWINBOARD_UPLOADS_QUOTA_BYTES
QUOTA_PER_USER_BYTES = 2 << 30  # one owner's uploads; env TWINBOARD_UPLOADS_QUOTA_PER_USER_BYTES


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



def import_upload(files: list[tuple[str, Source]], name: str | None = None, logdir: str | os.PathLike | None = None,
                  *, max_total_bytes: int | None = None, max_files: int | None = None,
                  max_ratio: float | None = None, steps_per_epoch: float | None = None,
                  batch_size: int | None = None, owner: str | None = None) -> ImportResult:
    """Import (filename, content) items as `<logdir>/uploads/<name>/`, or refuse and change nothing.

    Archives keep their folder structure; raw files land at the top of the upload. A mapping file
    (`twinboard_mapping.json`, default rules for the layout found; steps_per_epoch read off Keras
    logs when not given) is written with the upload, replacing any the archive brings.
    Caps default to the module constants / environment; arguments override both. `owner` (a user
    name, team mode) is recorded in the upload's folder and counted against the per-user quota.
    """
    if not files:
        raise UploadRefused("<upload>", "no files given")
    name = validate_name(name or default_name([fn for fn, _ in files]))
    root = _root(logdir)
    dest = root / UPLOADS / name
    if os.path.lexists(dest):
        raise UploadRefused(name, f"an upload named {name!r} already exists; choose another name")
    limits = Limits.from_env(max_total_bytes=max_total_bytes, max_files=max_files, max_ratio=max_ratio)
    quota = quotas()
    room, why = _room(root, owner, quota, None)
    if room <= 0:
        raise UploadRefused(name, why)
    try:
        root.mkdir(parents=True, exist_ok=True)
        sweep_stale_tmp(root)
        tmp = Path(tempfile.mkdtemp(prefix=TMP_PREFIX, dir=root))
    except OSError as e:
        raise disk_refusal(name, e) from None
    try:
        try:
            if owner is not None:  # first, so other sessions count what this import writes as its owner's
                try:
                    auth.set_owner(tmp, owner)
                except auth.AuthError as e:
                    raise UploadRefused(str(owner)[:40], f"cannot own an upload: {e}") from None
            job = Extraction(tmp, limits, room, why)
            for filename, data in files:
                job.add(filename, data)
            if not job.events:
                raise UploadRefused(files[0][0], "holds no event file (a file whose name contains 'tfevents')")
            if job.skipped:
                shown = ", ".join(job.skipped[:5]) + (f" and {len(job.skipped) - 5} more" if len(job.skipped) > 5 else "")
                job.warnings.append(f"skipped {len(job.skipped)} entries that are neither event nor projector files: {shown}")
            runs = sorted({PurePosixPath(e).parent.as_posix() for e in job.events})
            _write_mapping(tmp, runs, job.warnings, steps_per_epoch, batch_size)
            room, why = _room(root, owner, quota, tmp)  # what other imports wrote meanwhile
            if job.bytes > room:
                raise UploadRefused(name, why)
            (root / UPLOADS).mkdir(exist_ok=True)
            try:
                os.rename(tmp, dest)  # atomic; fails on a non-empty folder that appeared meanwhile
            except OSError as e:
                if e.errno in (errno.EEXIST, errno.ENOTEMPTY):
                    raise UploadRefused(name, f"an upload named {name!r} already exists; choose another name") from None
                raise
        except OSError as e:  # the logdir refused a write: a refusal that says why
            raise disk_refusal(name, e) from None
    except BaseException:
        shutil.rmtree(tmp, ignore_errors=True)
        raise
    return ImportResult(name, dest, runs, job.files, job.bytes, job.warnings)


# --- quotas ----------------------------------------------------------------------------------------
def quotas() -> tuple[int, int]:
    """(all uploads, one owner's) in bytes: module defaults overridden by the environment."""
    return (env_bytes("TWINBOARD_UPLOADS_QUOTA_BYTES", QUOTA_BYTES),
            env_bytes("TWINBOARD_UPLOADS_QUOTA_PER_USER_BYTES", QUOTA_PER_USER_BYTES))


def usage(logdir: str | os.PathLike | None = None, owner: str | None = None,
          skip: Path | None = None) -> tuple[int, int]:
    """(bytes held by all uploads, bytes held by `owner`'s), imports in progress included (their
    hidden temporary folders in the logdir), `skip` (this import's own folder) left out."""
    root = _root(logdir)
    folders = [p for p in _subdirs(root / UPLOADS) if not p.name.startswith(".")]
    folders += [p for p in _subdirs(root) if p.name.startswith(TMP_PREFIX) and p != skip]
    total = mine = 0
    for folder in folders:
        size = tree_bytes(folder)
        total += size
        if owner is not None and auth.owner_of(folder) == owner:
            mine += size
    return total, mine


def _room(root: Path, owner: str | None, quota: tuple[int, int], skip: Path | None) -> tuple[int, str]:
    """Bytes this upload may still write, and the refusal that says which quota is full."""
    total, mine = usage(root, owner, skip)
    room = quota[0] - total
    why = (f"the uploads would hold more than the quota of {quota[0]} bytes "
           f"(TWINBOARD_UPLOADS_QUOTA_BYTES; {total} are in use): delete an upload first")
    if owner is not None and quota[1] - mine < room:
        room = quota[1] - mine
        why = (f"{owner}'s uploads would hold more than the per-user quota of {quota[1]} bytes "
               f"(TWINBOARD_UPLOADS_QUOTA_PER_USER_BYTES; {mine} are in use): delete one of them first")
    return room, why


def _subdirs(folder: Path) -> list[Path]:
    try:
        return [Path(e.path) for e in os.scandir(folder) if e.is_dir(follow_symlinks=False)]
    except OSError:
        return []


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
def sweep_stale_tmp(root: Path, now: float | None = None) -> list[str]:
    """Remove the temporary folders a killed import or delete left in `root`: those where nothing was
    written for STALE_TMP_S. Returns the names removed."""
    return sweep_stale(root, lambda name: name.startswith((TMP_PREFIX, TRASH_PREFIX)), STALE_TMP_S, now)


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
            runs = sorted({p.parent.relative_to(d).as_posix() for p in files if is_event_file(p)})
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
    trash = Path(tempfile.mkdtemp(prefix=TRASH_PREFIX, dir=src.parent.parent))
    os.rename(src, trash / name)
    shutil.rmtree(trash)
