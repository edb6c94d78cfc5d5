"""Everything a visitor can change, as one call each that checks the user's role first and records
what happened: the server side of team mode.

Pages (and the CLI) call these instead of the runs/uploads/tagmap functions behind them, so a hidden
control is not the only guard: a viewer whose session asks to launch, or a runner asking to stop a
colleague's run, is refused here with PermissionDenied, before anything is written. In solo mode
(no TWINBOARD_TEAM) every check passes and the local admin owns what it makes.

Not imported by ``twinboard.auth`` itself, which stays free of the runs and uploads packages:
``from twinboard.auth import actions``.
"""
from __future__ import annotations

import os
from pathlib import Path

from twinboard import config, datafiles, runs, tagmap, uploads
from twinboard.auth.audit import record
from twinboard.auth.owners import owner_of
from twinboard.auth.roles import (DELETE_DATA, DELETE_RUN, DELETE_UPLOAD, EDIT_MAPPING, LAUNCH, RENAME_UPLOAD, STOP,
                                  UPLOAD, require)
from twinboard.auth.users import User
from twinboard.contract import DATA_DIR, RunSpec

Logdir = str | os.PathLike | None
SAVE_DATA = "save_data"  # the audit log's verb for a data file saved; the role it needs is LAUNCH's


def _root(logdir: Logdir) -> Path:
    return Path(logdir) if logdir is not None else config.logdir()


def launch(user: User, spec: RunSpec, name: str | None = None, logdir: Logdir = None, **kwargs):
    """runs.launch for `user` (needs LAUNCH); the run records its owner, and its queue cap is per owner."""
    require(user, LAUNCH)
    out = runs.launch(spec, logdir, name, owner=user.name, **kwargs)
    if isinstance(out, runs.Launched):  # run.json holds the owner
        record(user, LAUNCH, out.run_id, logdir=_root(logdir))
    return out


def stop(user: User, run_id: str, logdir: Logdir = None, grace: float = 5.0) -> runs.RunStatus:
    """runs.stop for `user`: their own run (runner) or any (admin)."""
    require(user, STOP, owner_of(_root(logdir) / run_id))
    status = runs.stop(run_id, logdir, grace)
    record(user, STOP, run_id, logdir=_root(logdir))
    return status


def delete_run(user: User, run_id: str, logdir: Logdir = None) -> Path:
    """runs.delete_run for `user`: their own run (runner) or any (admin)."""
    require(user, DELETE_RUN, owner_of(_root(logdir) / run_id))
    path = runs.delete_run(run_id, _root(logdir))
    record(user, DELETE_RUN, run_id, logdir=_root(logdir))
    return path


def import_upload(user: User, files, name: str | None = None, logdir: Logdir = None, **kwargs):
    """uploads.import_upload for `user` (needs UPLOAD); the upload records its owner (the per-user quota)."""
    require(user, UPLOAD)
    result = uploads.import_upload(files, name, logdir, owner=user.name, **kwargs)
    record(user, UPLOAD, f"{uploads.UPLOADS}/{result.name}", logdir=_root(logdir), files=result.files,
           bytes=result.bytes)
    return result


def _upload_owner(name: str, logdir: Logdir) -> str | None:
    return owner_of(runs.safe_path(_root(logdir), f"{uploads.UPLOADS}/{name}"))


def rename_upload(user: User, old: str, new: str, logdir: Logdir = None) -> Path:
    require(user, RENAME_UPLOAD, _upload_owner(old, logdir))
    path = uploads.rename_upload(old, new, logdir)
    record(user, RENAME_UPLOAD, f"{uploads.UPLOADS}/{old}", logdir=_root(logdir), to=new)
    return path


def delete_upload(user: User, name: str, logdir: Logdir = None) -> None:
    require(user, DELETE_UPLOAD, _upload_owner(name, logdir))
    uploads.delete_upload(name, logdir)
    record(user, DELETE_UPLOAD, f"{uploads.UPLOADS}/{name}", logdir=_root(logdir))


def save_mapping(user: User, upload: str, mapping: tagmap.Mapping, logdir: Logdir = None) -> Path:
    """Save an upload's tag mapping (its own file, read by every visitor's charts): the upload's owner
    or an admin."""
    require(user, EDIT_MAPPING, _upload_owner(upload, logdir))
    folder = runs.safe_path(_root(logdir), f"{uploads.UPLOADS}/{upload}")
    path = tagmap.save(mapping, folder)
    record(user, EDIT_MAPPING, f"{uploads.UPLOADS}/{upload}", logdir=_root(logdir), rules=len(mapping.rules))
    return path


def save_data_file(user: User, name: str, payload: bytes, logdir: Logdir = None) -> datafiles.DataSummary:
    """datafiles.save_data_file for `user`: needs LAUNCH, as a data file exists to be launched on (a
    viewer may not fill the disk). Recorded with its size and sha256, so the log says which bytes."""
    require(user, LAUNCH)
    summary = datafiles.save_data_file(_root(logdir), name, payload)
    record(user, SAVE_DATA, f"{DATA_DIR}/{name}", logdir=_root(logdir), bytes=summary.bytes, sha256=summary.sha256)
    return summary


def delete_data_file(user: User, name: str, logdir: Logdir = None) -> None:
    """datafiles.delete_data_file for `user`: an admin's (a data file records no owner, and every run
    may be launched on it). Runs made from it keep their own link to its bytes; queued ones fail."""
    require(user, DELETE_DATA)
    datafiles.delete_data_file(_root(logdir), name)
    record(user, DELETE_DATA, f"{DATA_DIR}/{name}", logdir=_root(logdir))
