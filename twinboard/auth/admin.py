"""The Admin page's side of team mode (pages/admin.py): checked, recorded changes to users and limits,
and the tables the page shows (users, limits, quotas, upload usage, the audit log).

Like twinboard.auth.actions, every change checks the acting user's role first (``require``: a forced
widget message from a non-admin is refused here, not only by the page) and is recorded in the audit
log once it succeeded. The users functions and save_limits record nothing themselves (the `users`
CLI records its own changes, as user "cli"), so each change here is recorded exactly once.

The table builders are pure: rows as lists of dicts (what st.dataframe takes), computed from what the
caller read. Not imported by ``twinboard.auth`` itself, which stays free of the uploads package:
``from twinboard.auth import admin``.
"""
from __future__ import annotations

import dataclasses
import json
import os
import time
from collections.abc import Iterable, Mapping
from pathlib import Path

from twinboard import config, uploads
from twinboard.auth import users
from twinboard.auth.audit import record
from twinboard.auth.owners import owner_of
from twinboard.auth.roles import MANAGE_USERS, SET_QUOTA, require
from twinboard.contract import limits as limits_file
from twinboard.contract.costs import BUDGETS
from twinboard.contract.spec import CEILINGS, DEFAULT_LIMITS, RunSpec, field_help
from twinboard.text import size
from twinboard.uploads import quotas  # what the importer enforces

Logdir = str | os.PathLike | None
LIMITS_TARGET = "limits.json"  # the audit log's target of a limits change
NOBODY = "(nobody)"  # the audit log's user of a failed sign-in
NO_OWNER = "(no owner)"  # uploads made in solo mode or before team mode
_FLOAT_FIELDS = {f.name for f in dataclasses.fields(RunSpec) if f.type == "float"}


def _root(logdir: Logdir) -> Path:
    return Path(logdir) if logdir is not None else config.logdir()


def _when(t: float | None) -> str:
    return time.strftime("%Y-%m-%d %H:%M:%S", time.localtime(t)) if t else ""


# --- users: checked and recorded ------------------------------------------------------------------
def add_user(actor: users.User | None, name: str, password: str, role: str, *, logdir: Logdir = None) -> users.User:
    require(actor, MANAGE_USERS)
    user = users.add_user(name, password, role, logdir=logdir)
    record(actor, MANAGE_USERS, user.name, logdir=logdir, command="add", role=user.role)
    return user


def set_role(actor: users.User | None, name: str, role: str, *, logdir: Logdir = None) -> users.User:
    """AuthError for the last admin's demotion (users.set_role's rule); nothing is recorded then."""
    require(actor, MANAGE_USERS)
    user = users.set_role(name, role, logdir=logdir)
    record(actor, MANAGE_USERS, user.name, logdir=logdir, command="set-role", role=user.role)
    return user


def set_password(actor: users.User | None, name: str, password: str, *, logdir: Logdir = None) -> users.User:
    """A new password ends the user's open sessions. The password itself is never recorded."""
    require(actor, MANAGE_USERS)
    user = users.set_password(name, password, logdir=logdir)
    record(actor, MANAGE_USERS, user.name, logdir=logdir, command="passwd")
    return user


def remove_user(actor: users.User | None, name: str, *, logdir: Logdir = None) -> None:
    """AuthError for the last admin (users.remove_user's rule)."""
    require(actor, MANAGE_USERS)
    users.remove_user(name, logdir=logdir)
    record(actor, MANAGE_USERS, name, logdir=logdir, command="remove")


def user_rows(found: Iterable[users.User]) -> list[dict]:
    """The users table: name, role, created (local time); never a hash."""
    return [{"name": u.name, "role": u.role, "created": _when(u.created)} for u in found]


# --- limits ---------------------------------------------------------------------------------------
def save_limits(actor: users.User | None, changes: Mapping[str, float | None], *,
                logdir: Logdir = None) -> dict[str, float]:
    """limits.save_limits for an admin (SET_QUOTA): None sets a limit back to its default. LimitsError
    (file untouched, nothing recorded) for a bad name or value. Returns the limits now in force."""
    require(actor, SET_QUOTA)
    changes = dict(changes)
    in_force = limits_file.save_limits(_root(logdir), changes)
    record(actor, SET_QUOTA, LIMITS_TARGET, logdir=logdir, changes=changes)
    return in_force


def reset_all(current: Mapping[str, float]) -> dict[str, None]:
    """The changes that put every limit back to its default (and drop any entry the file holds)."""
    return {name: None for name in {*DEFAULT_LIMITS, *current}}


def is_whole(name: str) -> bool:
    """Whether limit `name` takes whole numbers (every one but those of float RunSpec fields)."""
    return name not in _FLOAT_FIELDS


def limit_help(name: str) -> str:
    return BUDGETS[name].help if name in BUDGETS else field_help(name)


def limit_rows(current: Mapping[str, float]) -> list[dict]:
    """One row a limit, in RunSpec's order then the budgets': its name, what it bounds, the value in
    force, the built-in default, the hard ceiling, and whether the logdir's file changes it."""
    return [{"limit": name, "bounds": limit_help(name), "current": current.get(name, default),
             "default": default, "ceiling": CEILINGS[name], "changed": current.get(name, default) != default}
            for name, default in DEFAULT_LIMITS.items()]


# --- quotas and usage -----------------------------------------------------------------------------
def _setting(label: str, var: str, default: str, read, show=str) -> dict:
    try:
        value = show(read())
    except ValueError as err:  # UploadRefused is one: launches / uploads are refused until it is fixed
        value = f"not usable: {err}"
    return {"quota": label, "in force": value, "default": default, "set by": var,
            "from environment": bool(os.environ.get(var, "").strip())}


def upload_quotas() -> tuple[int, int]:
    """(all uploads, one owner's) in bytes; UploadRefused (a ValueError) for an unusable variable. The
    importer's own reading of them, so the page cannot disagree with what it enforces."""
    return quotas()


def quota_rows() -> list[dict]:
    """The queue caps and upload quotas in force (read from the environment now, as launches and
    uploads read them), each with its default and variable; an unusable value says why."""
    def upload_cap(field):
        return lambda: getattr(uploads.Limits.from_env(), field)

    return [
        _setting("Trainer processes at once", "TWINBOARD_MAX_PROCS", str(config.DEFAULT_MAX_PROCS), config.max_procs),
        _setting("Pairs waiting, all users", "TWINBOARD_MAX_QUEUED", str(config.DEFAULT_MAX_QUEUED),
                 config.max_queued),
        _setting("Pairs waiting, one user", "TWINBOARD_MAX_QUEUED_PER_USER",
                 str(config.DEFAULT_MAX_QUEUED_PER_USER), config.max_queued_per_user),
        _setting("Uploads, all together", "TWINBOARD_UPLOADS_QUOTA_BYTES", size(uploads.QUOTA_BYTES),
                 lambda: upload_quotas()[0], size),
        _setting("Uploads, one owner's", "TWINBOARD_UPLOADS_QUOTA_PER_USER_BYTES",
                 size(uploads.QUOTA_PER_USER_BYTES), lambda: upload_quotas()[1], size),
        _setting("One upload, uncompressed", "TWINBOARD_UPLOAD_MAX_BYTES", size(uploads.Limits.max_total_bytes),
                 upload_cap("max_total_bytes"), size),
        _setting("One upload, entries", "TWINBOARD_UPLOAD_MAX_FILES", f"{uploads.Limits.max_files:,}",
                 upload_cap("max_files"), lambda n: f"{n:,}"),
        _setting("One upload, compression ratio", "TWINBOARD_UPLOAD_MAX_RATIO", f"{uploads.Limits.max_ratio:g}:1",
                 upload_cap("max_ratio"), lambda r: f"{r:g}:1"),
    ]


def upload_usage(logdir: Logdir = None) -> tuple[int, dict[str, tuple[int, int]]]:
    """(bytes all uploads hold, owner -> (uploads, bytes)), from uploads.usage, which the quotas are
    enforced with (imports in progress count). Uploads with no recorded owner are under NO_OWNER."""
    root = _root(logdir)
    total, _ = uploads.usage(root)
    counts: dict[str, int] = {}
    for upload in uploads.list_uploads(root):
        owner = owner_of(upload.path) or NO_OWNER
        counts[owner] = counts.get(owner, 0) + 1
    owned = {owner: (n, uploads.usage(root, owner)[1]) for owner, n in sorted(counts.items()) if owner != NO_OWNER}
    if NO_OWNER in counts:
        owned[NO_OWNER] = (counts[NO_OWNER], max(0, total - sum(b for _, b in owned.values())))
    return total, owned


def usage_summary(logdir: Logdir = None) -> tuple[int, list[dict]]:
    """(bytes all uploads hold, the usage table): upload_usage and usage_rows, with the per-user
    quota in force (no share when its variable is unusable: quota_rows says why)."""
    total, per_owner = upload_usage(logdir)
    try:
        per_user = upload_quotas()[1]
    except ValueError:
        per_user = None
    return total, usage_rows(per_owner, per_user)


def usage_rows(per_owner: Mapping[str, tuple[int, int]], quota_per_user: int | None) -> list[dict]:
    """The usage table: owner, uploads, size, bytes, and the share of the per-user quota (None when the
    quota is not known, and for NO_OWNER, whose uploads no per-user quota counts)."""
    return [{"owner": owner, "uploads": n, "size": size(held), "bytes": held,
             "of per-user quota": (round(100 * held / quota_per_user, 1) if quota_per_user and owner != NO_OWNER
                                   else None)}
            for owner, (n, held) in per_owner.items()]


# --- the audit log --------------------------------------------------------------------------------
def audit_choices(entries: Iterable[dict]) -> tuple[list[str], list[str]]:
    """(users, actions) found in `entries`, sorted: the page's filter options."""
    entries = list(entries)
    return (sorted({str(e.get("user") or NOBODY) for e in entries}),
            sorted({str(e.get("action")) for e in entries}))


def audit_rows(entries: Iterable[dict], by_users: Iterable[str] = (), by_actions: Iterable[str] = ()) -> list[dict]:
    """The entries (newest first, as read_audit gives them) whose user and action are among those
    chosen (nothing chosen: all), as table rows; details as compact JSON."""
    by_users, by_actions = set(by_users), set(by_actions)
    rows = []
    for e in entries:
        who, action = str(e.get("user") or NOBODY), str(e.get("action"))
        if (by_users and who not in by_users) or (by_actions and action not in by_actions):
            continue
        details = e.get("details")
        rows.append({"time": _when(e.get("time") if isinstance(e.get("time"), (int, float)) else None),
                     "user": who, "role": e.get("role") or "", "action": action,
                     "target": "" if e.get("target") is None else str(e.get("target")),
                     "details": json.dumps(details, ensure_ascii=False, default=str) if details else ""})
    return rows
