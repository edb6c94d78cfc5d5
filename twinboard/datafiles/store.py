"""The data folder, ``<logdir>/data/``: list its files with their summaries, save an upload, delete.

A save checks the bytes first (``twinboard.contract.datafile``: the trainers' own checker), then
stages them in a hidden temporary file in the data folder, fsyncs, and links it to its name, which
fails if the name is taken: a file is never replaced, so a run queued on it trains on what was
checked. A refusal leaves the folder as it was. Quotas: at most TWINBOARD_DATA_MAX_BYTES a file (the
checker's caps when unset: 256 MiB a .npz, 64 MiB a .csv) and TWINBOARD_DATA_QUOTA_BYTES for the
folder (1 GiB), saves in progress (their temporary files) included, checked before the write and
again, against what others staged meanwhile, before the link.

Summaries are cached by the file's signature (size, mtime, inode): checking a 256 MiB .npz takes
seconds, and the Launch page lists the folder on every rerun.

Reading a quota from the environment, measuring the folder, sweeping leftovers and wording a refused
write are twinboard.uploads.storage's, shared with the uploads folder; imported where they are used,
since the CLI imports this module on every start and the uploads package loads pandas and pyarrow.
"""
from __future__ import annotations

import errno
import functools
import os
import tempfile
from dataclasses import dataclass
from pathlib import Path

from twinboard.contract.datafile import DataFileError, DataSummary, check_name, read_data, read_path, size_cap
from twinboard.contract.files import DATA_DIR

QUOTA_BYTES = 1 << 30  # the data folder, all files together; env TWINBOARD_DATA_QUOTA_BYTES
TMP_SUFFIX = ".tmp"  # a save in progress: .<name>.XXXX.tmp in the data folder
STALE_TMP_S = 3600  # a temporary file this old is left over from a save that died; removed by the next save


@dataclass(frozen=True)
class DataEntry:
    """One file of the data folder: its summary when it passes the check, else why not."""
    name: str
    bytes: int
    modified: float
    summary: DataSummary | None
    error: str | None


def data_dir(logdir: str | os.PathLike) -> Path:
    return Path(logdir) / DATA_DIR


def limits(name: str = "") -> tuple[int, int]:
    """(the most one file may have, the data folder's quota) in bytes; `name` picks the checker's
    cap for its kind (the smaller, a .csv's, without a name). DataFileError for a bad variable."""
    from twinboard.uploads.limits import UploadRefused
    from twinboard.uploads.storage import env_bytes
    cap = size_cap(name) if name else min(size_cap("a.npz"), size_cap("a.csv"))
    try:
        most, quota = env_bytes("TWINBOARD_DATA_MAX_BYTES", cap), env_bytes("TWINBOARD_DATA_QUOTA_BYTES", QUOTA_BYTES)
    except UploadRefused as err:  # said as the data folder says every refusal
        raise DataFileError(err.path, "", err.reason) from None
    return min(most, cap), quota


def usage(logdir: str | os.PathLike) -> int:
    """Bytes of the files in the data folder, saves in progress included."""
    from twinboard.uploads.storage import tree_bytes
    return tree_bytes(data_dir(logdir))


@functools.lru_cache(maxsize=256)
def _checked(path: str, signature: tuple[int, int, int]) -> DataSummary | DataFileError:
    try:
        return read_path(path).summary
    except DataFileError as err:  # cached too: a bad file is not read again until it changes
        return err


def summary_of(logdir: str | os.PathLike, name: str) -> DataSummary:
    """The checked summary of data file `name` (a .csv's without a target: DataSummary.for_target
    picks one); read once per version of the file. DataFileError when it is missing or fails the check."""
    path = data_dir(logdir) / check_name(name)
    try:
        st = path.stat()
    except OSError:
        raise DataFileError(name, "", "not in the data folder") from None
    out = _checked(str(path), (st.st_size, st.st_mtime_ns, st.st_ino))
    if isinstance(out, DataFileError):
        raise out
    return out


def list_data_files(logdir: str | os.PathLike) -> list[DataEntry]:
    """The data folder's .npz and .csv files, by name, each with its summary or the check's refusal.
    Other files (temporary ones, names the contract does not allow) are not listed."""
    out = []
    try:
        names = sorted(os.listdir(data_dir(logdir)))
    except OSError:
        return []
    for name in names:
        try:
            check_name(name)
            st = (data_dir(logdir) / name).stat()
        except (DataFileError, OSError):
            continue
        try:
            summary, error = summary_of(logdir, name), None
        except DataFileError as err:
            summary, error = None, err.reason if not err.where else f"{err.where}: {err.reason}"
        out.append(DataEntry(name, st.st_size, st.st_mtime, summary, error))
    return out


def _refusal(name: str, err: OSError) -> DataFileError:
    from twinboard.uploads.storage import disk_words
    why = disk_words(err, "the logdir's data folder") or f"cannot write it ({err.strerror or err})"
    return DataFileError(name, "", f"{why}; nothing was saved")


def _room(logdir, name: str, size: int, quota: int, staged: int = 0) -> None:
    used = usage(logdir) - staged
    if used + size > quota:
        raise DataFileError(name, "", f"{size:,} bytes would take the data folder to {used + size:,}, past its "
                                      f"quota of {quota:,} (TWINBOARD_DATA_QUOTA_BYTES); delete a file first")


def _link(tmp: Path, path: Path) -> None:
    """`tmp` under `path`'s name, never over an existing file: a hard link (atomic); a rename after a
    last look where the file system has no hard links."""
    taken = DataFileError(path.name, "", "a data file of that name was saved meanwhile; nothing was replaced")
    try:
        os.link(tmp, path)
        return
    except FileExistsError:
        raise taken from None
    except OSError as err:
        if err.errno not in (errno.EPERM, errno.EOPNOTSUPP, errno.ENOTSUP, errno.EMLINK):
            raise
    if path.exists():
        raise taken
    os.rename(tmp, path)


def save_data_file(logdir: str | os.PathLike, name: str, payload: bytes) -> DataSummary:
    """Check `payload` as data file `name` and add it to the data folder; its summary. DataFileError,
    the folder unchanged, for a bad name or file, a name in use, a cap or the quota, a refused write."""
    from twinboard.uploads.storage import sweep_stale
    check_name(name)
    most, quota = limits(name)
    if len(payload) > most:
        raise DataFileError(name, "", f"{len(payload):,} bytes, more than a data file may have here ({most:,})")
    folder = data_dir(logdir)
    if (folder / name).exists():  # asked again at the link, which cannot replace it
        raise DataFileError(name, "", "a data file of that name exists; delete it first or rename yours")
    summary = read_data(payload, name).summary  # the whole check, before a byte is written
    _room(logdir, name, len(payload), quota)
    tmp = None
    try:
        folder.mkdir(exist_ok=True)
        sweep_stale(folder, lambda n: n.startswith(".") and n.endswith(TMP_SUFFIX), STALE_TMP_S)
        fd, tmp = tempfile.mkstemp(prefix=f".{name}.", suffix=TMP_SUFFIX, dir=folder)
        with os.fdopen(fd, "wb") as f:
            os.fchmod(f.fileno(), 0o644)
            f.write(payload)
            f.flush()
            os.fsync(f.fileno())
        _room(logdir, name, len(payload), quota, staged=len(payload))  # others' saves meanwhile
        _link(Path(tmp), folder / name)
    except OSError as err:
        raise _refusal(name, err) from None
    finally:
        if tmp is not None:
            try:
                os.unlink(tmp)
            except OSError:
                pass
    return summary


def delete_data_file(logdir: str | os.PathLike, name: str) -> None:
    """Remove data file `name`. Runs already started keep what they read; queued ones will fail,
    saying the file is missing. DataFileError for a bad name or a missing file."""
    try:
        os.unlink(data_dir(logdir) / check_name(name))
    except FileNotFoundError:
        raise DataFileError(name, "", "not in the data folder") from None
    except OSError as err:
        raise DataFileError(name, "", f"cannot delete it ({err.strerror or err})") from None
