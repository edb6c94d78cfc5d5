"""Visitors' files kept in the logdir under a quota: what the uploads folder (event files, this
package) and the data folder (task=file's data, twinboard.datafiles) both need.

- `env_bytes`: a quota or cap in bytes from the environment, its default when unset.
- `tree_bytes`: the bytes a folder holds, the quota's measure.
- `sweep_stale`: removes what a save or import that died left behind (hidden staging files or
  folders no one has written into for a while).
- `disk_words` / `disk_refusal`: a write the logdir's file system refused, said in words.

Here, in the uploads package, rather than in twinboard.contract.files: the trainers never write these
files; only a visitor's upload does, bounded and staged the way this package does it. The data folder
imports this module when it saves or measures, not when it is imported: this package loads pandas
and pyarrow, and the CLI imports twinboard.datafiles (through the launcher's check) on every start.
"""
from __future__ import annotations

import errno
import os
import shutil
import time
from collections.abc import Callable
from pathlib import Path

from twinboard.uploads.limits import UploadRefused


def env_bytes(var: str, default: int) -> int:
    """$var as a number of bytes >= 0, `default` when unset; UploadRefused naming the variable
    (the data folder says it as its own DataFileError)."""
    raw = os.environ.get(var, "").strip()
    try:
        value = int(raw) if raw else default
    except ValueError:
        value = -1
    if value < 0:
        raise UploadRefused(var, f"{raw[:50]!r} is not a number of bytes; fix the environment variable")
    return value


def tree_bytes(folder: str | os.PathLike) -> int:
    """Bytes of the files under `folder` (links not followed; a file vanishing meanwhile counts 0,
    a missing folder 0)."""
    total = 0
    for dirpath, _, filenames in os.walk(folder):
        for fn in filenames:
            try:
                total += os.lstat(os.path.join(dirpath, fn)).st_size
            except OSError:
                pass
    return total


def sweep_stale(folder: Path, is_staging: Callable[[str], bool], age_s: float, now: float | None = None) -> list[str]:
    """Remove the entries of `folder` whose names `is_staging` accepts (hidden, so no page shows them)
    when nothing was written into them for `age_s` seconds: left by a save or import that died. One
    still being filled by another session is recent and stays. Links are left alone. The names removed."""
    now = time.time() if now is None else now
    removed = []
    try:
        candidates = [p for p in folder.iterdir() if is_staging(p.name) and not p.is_symlink()]
    except OSError:
        return removed
    for path in candidates:
        try:
            newest = max([path.lstat().st_mtime] + [os.lstat(os.path.join(d, f)).st_mtime
                                                    for d, dirs, files in os.walk(path) for f in dirs + files])
            if now - newest < age_s:
                continue
            if path.is_dir():
                shutil.rmtree(path, ignore_errors=True)
            else:
                path.unlink()
        except OSError:  # removed meanwhile
            continue
        removed.append(path.name)
    return removed


def disk_words(err: OSError, folder: str = "the logdir") -> str | None:
    """Why the logdir's file system refused a write, in words (`folder`: where a permission is
    missing); None for a refusal not named here."""
    return {errno.ENOSPC: "no space left on the device that holds the logdir",
            errno.EDQUOT: "the disk quota on the logdir's file system is used up",
            errno.EROFS: "the logdir is on a read-only file system",
            errno.EACCES: f"no permission to write in {folder}",
            errno.EPERM: f"no permission to write in {folder}",
            errno.EFBIG: "a file is too large for the logdir's file system"}.get(err.errno)


def disk_refusal(where: str, err: OSError) -> UploadRefused:
    """A write the logdir's file system refused, as an upload's refusal that says why in words."""
    return UploadRefused(where, f"{disk_words(err) or f'cannot write to the logdir ({err.strerror or err})'}; "
                                "nothing was imported")
