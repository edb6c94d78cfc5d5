"""Who may sign in to a team server: the users file, its argon2id hashes, and the solo-mode stand-in.

The file is ``<logdir>/.twinboard/users.json`` ($TWINBOARD_USERS overrides), so a server's users travel
with its logdir and a hidden folder is skipped by run discovery and by ``tensorboard --logdir``::

    {"users": {"alice": {"role": "admin", "password_hash": "$argon2id$...", "created": 1712345678.9}}}

Why argon2id (argon2-cffi's defaults, RFC 9106's low-memory profile: 64 MiB, 3 passes, ~0.1 s here):
a stolen users file costs an attacker that much memory and time per guess. Every change is a
read-modify-write under an exclusive lock (two admins in two shells lose nothing) and lands with
``write_json`` (temp file + fsync + rename: a reader sees the old file or the new one; mode 0600,
so the hashes stay readable by the server's account only).
"""
from __future__ import annotations

import contextlib
import functools
import hashlib
import os
import re
import threading
import time
from collections.abc import Iterator
from dataclasses import dataclass, field
from pathlib import Path

import argon2

from twinboard import config
from twinboard.contract.files import read_json, write_json

AUTH_DIR = ".twinboard"  # under the logdir: hidden, so run discovery and TensorBoard skip it
USERS_JSON = "users.json"
VIEWER, RUNNER, ADMIN = "viewer", "runner", "admin"
ROLES = (VIEWER, RUNNER, ADMIN)  # weakest first; what each may do is twinboard.auth.roles
NAME_RE = re.compile(r"[A-Za-z0-9._-]{1,32}")
MIN_PASSWORD, MAX_PASSWORD = 8, 1024  # chars; the cap bounds what one sign-in attempt costs to hash
_TRUE, _FALSE = ("1", "true", "yes", "on"), ("", "0", "false", "no", "off")

_hasher = argon2.PasswordHasher()  # argon2id; parameters are stored in each hash, so they can change later
_lock = threading.Lock()  # Streamlit sessions are threads of one process; flock alone covers processes


class AuthError(ValueError):
    """A refused change to the users file: a bad name, role or password, an unknown or duplicate user,
    the last admin removed, or an unreadable file. The message names the bad value."""


@dataclass(frozen=True)
class User:
    name: str  # 1-32 chars of [A-Za-z0-9._-]: safe in a file, a cookie, a log line
    role: str  # one of ROLES
    password_hash: str = field(default="", repr=False)  # argon2id PHC string; "" for the solo stand-in
    created: float = 0.0  # unix s

    @property
    def fingerprint(self) -> str:
        """16 hex chars that change whenever the password is set (the hash has a fresh salt each time):
        sessions carry it, so a new password signs out every old session."""
        return hashlib.sha256(self.password_hash.encode()).hexdigest()[:16]


LOCAL_ADMIN = User("local", ADMIN)  # solo mode: the one implicit user, allowed everything


def team_mode() -> bool:
    """True when $TWINBOARD_TEAM is 1/true/yes/on (`twinboard serve --team` sets it). Any other
    non-empty value is a ValueError rather than solo mode: a typo must not open the server to all."""
    raw = os.environ.get("TWINBOARD_TEAM", "").strip().lower()
    if raw in _TRUE:
        return True
    if raw in _FALSE:
        return False
    raise ValueError(f"TWINBOARD_TEAM={raw!r}: use 1 (team mode) or 0 (solo)")


def auth_dir(logdir: str | os.PathLike | None = None) -> Path:
    """``<logdir>/.twinboard``, created 0700 if missing (it holds the hashes, secret and audit log)."""
    path = Path(logdir if logdir is not None else config.logdir()) / AUTH_DIR
    path.mkdir(mode=0o700, parents=True, exist_ok=True)
    return path


def users_path(logdir: str | os.PathLike | None = None) -> Path:
    """$TWINBOARD_USERS if set, else ``<logdir>/.twinboard/users.json``."""
    override = os.environ.get("TWINBOARD_USERS", "").strip()
    if override:
        return Path(override).expanduser().absolute()
    return auth_dir(logdir) / USERS_JSON


def validate_name(name: str) -> str:
    if not isinstance(name, str) or not NAME_RE.fullmatch(name):
        raise AuthError(f"user name {str(name)[:40]!r}: use 1-32 letters, digits, '.', '_' or '-'")
    return name


def validate_role(role: str) -> str:
    if role not in ROLES:
        raise AuthError(f"role {str(role)[:40]!r}: must be one of {', '.join(ROLES)}")
    return role


def _validate_password(password: str) -> str:
    if not isinstance(password, str) or not MIN_PASSWORD <= len(password) <= MAX_PASSWORD:
        raise AuthError(f"password: must be {MIN_PASSWORD} to {MAX_PASSWORD} characters")
    return password


def _load(path: Path) -> dict[str, dict]:
    """name -> record. {} for a missing file; AuthError for one that exists but cannot be read,
    so a hand-edit gone wrong is reported instead of being overwritten with an empty list."""
    if not path.exists():
        return {}
    data = read_json(path)
    users = data.get("users") if data is not None else None
    if not isinstance(users, dict):
        raise AuthError(f"{path}: not a Twinboard users file (fix or remove it)")
    return users


def _user(name: str, rec: dict) -> User | None:
    try:
        return User(name, validate_role(rec["role"]), str(rec["password_hash"]), float(rec.get("created", 0)))
    except (AuthError, KeyError, TypeError, ValueError):
        return None  # a malformed entry signs nobody in


@contextlib.contextmanager
def _editing(logdir) -> Iterator[dict[str, dict]]:
    """Yield the users for editing, then write them back, all under the lock (threads and processes)."""
    path = users_path(logdir)
    path.parent.mkdir(parents=True, exist_ok=True)
    with _lock, open(path.with_name(path.name + ".lock"), "a") as lock_file:
        try:
            import fcntl
            fcntl.flock(lock_file, fcntl.LOCK_EX)  # released when the file closes
        except ImportError:  # not POSIX: the thread lock still covers one server process
            pass
        users = _load(path)
        yield users
        write_json(path, {"users": users}, mode=0o600)  # password hashes: the server's user only


def _existing(users: dict, name: str) -> dict:
    if validate_name(name) not in users:
        raise AuthError(f"no user named {name!r}")
    return users[name]


def _admins_left(users: dict, without: str) -> int:
    return sum(1 for n, rec in users.items() if n != without and rec.get("role") == ADMIN)


def add_user(name: str, password: str, role: str = VIEWER, *, logdir=None) -> User:
    """Add a user; AuthError if the name is taken or anything is invalid."""
    validate_name(name)
    validate_role(role)
    _validate_password(password)
    with _editing(logdir) as users:
        if name in users:
            raise AuthError(f"user {name!r} already exists")
        users[name] = {"role": role, "password_hash": _hasher.hash(password), "created": time.time()}
        return _user(name, users[name])


def set_password(name: str, password: str, *, logdir=None) -> User:
    """New password (and so a new fingerprint: the user's open sessions end)."""
    _validate_password(password)
    with _editing(logdir) as users:
        _existing(users, name)["password_hash"] = _hasher.hash(password)
        return _user(name, users[name])


def set_role(name: str, role: str, *, logdir=None) -> User:
    """Change a role (sessions pick it up on their next page load). The last admin cannot be demoted."""
    validate_role(role)
    with _editing(logdir) as users:
        rec = _existing(users, name)
        if rec.get("role") == ADMIN and role != ADMIN and not _admins_left(users, name):
            raise AuthError(f"{name!r} is the last admin; make another admin first")
        rec["role"] = role
        return _user(name, rec)


def remove_user(name: str, *, logdir=None) -> None:
    """Remove a user (their sessions end; what they own stays, owned by a name nobody has)."""
    with _editing(logdir) as users:
        if _existing(users, name).get("role") == ADMIN and not _admins_left(users, name):
            raise AuthError(f"{name!r} is the last admin; make another admin first")
        del users[name]


def list_users(*, logdir=None) -> list[User]:
    """Every well-formed user, by name."""
    users = _load(users_path(logdir))
    return [u for n in sorted(users) if (u := _user(n, users[n])) is not None]


def get_user(name: str, *, logdir=None) -> User | None:
    """The user named `name`, or None (an invalid name included)."""
    if not isinstance(name, str) or not NAME_RE.fullmatch(name):
        return None
    rec = _load(users_path(logdir)).get(name)
    return _user(name, rec) if isinstance(rec, dict) else None


@functools.cache
def _dummy_hash() -> str:
    """Verified against for unknown names. Made on first use, with the current parameters (so it costs
    what a real verify costs), not at import: importing twinboard.auth stays cheap."""
    return _hasher.hash("twinboard: a password nobody has")


def verify(name: str, password: str, *, logdir=None) -> User | None:
    """The user if `password` is theirs, else None. An unknown name still costs one argon2 verify
    (against a dummy hash), so response time does not tell which names exist."""
    user = get_user(name, logdir=logdir)
    if not isinstance(password, str) or len(password) > MAX_PASSWORD:
        password = ""  # never hash an unbounded input; "" matches no stored password
    try:
        _hasher.verify(user.password_hash if user else _dummy_hash(), password)
    except argon2.exceptions.VerificationError:  # a wrong password
        return None
    except argon2.exceptions.InvalidHashError:  # a hand-edited hash
        return None
    return user
