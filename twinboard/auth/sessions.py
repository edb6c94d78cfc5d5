"""Signed session tokens: what a browser keeps (in a cookie) so a reload keeps its user signed in.

A token is ``v1.<payload>.<signature>``, both parts base64url (cookie-safe, no padding):
payload = JSON ``[name, fingerprint, expiry]``, signature = HMAC-SHA256(secret, "v1." + payload).

Why stateless and signed, rather than a session table: the server keeps nothing per session, any
number of server processes sharing the logdir accept each other's tokens, and a restart signs nobody
out. What still ends a session early:

- a changed password: the token carries the password hash's fingerprint (fresh salt each time);
- a removed user: the name no longer resolves;
- a new secret: delete ``<logdir>/.twinboard/secret`` and every token ever issued stops working.

The role is NOT in the token: it is read from the users file on each check, so a demotion applies
at the user's next page load.
"""
from __future__ import annotations

import base64
import hashlib
import hmac
import json
import os
import secrets
import tempfile
import time

from twinboard.auth.users import AuthError, User, auth_dir, get_user

SECRET_FILE = "secret"
SECRET_BYTES = 32
TOKEN_TTL_S = 12 * 3600  # default session length: a working day, then sign in again
MAX_TOKEN_CHARS = 512  # a cookie is visitor input: bound it before decoding (a real one is ~130)
_VERSION = "v1"


def _b64(data: bytes) -> str:
    return base64.urlsafe_b64encode(data).rstrip(b"=").decode("ascii")


def _unb64(text: str) -> bytes:
    return base64.urlsafe_b64decode(text + "=" * (-len(text) % 4))


def secret(logdir=None) -> bytes:
    """The server's signing key: 32 random bytes in ``<logdir>/.twinboard/secret`` (0600), made on
    first use. Created as a private temp file, then hard-linked into place: a link never replaces an
    existing file, so two processes starting at once agree on one secret and neither reads a half-written one."""
    path = auth_dir(logdir) / SECRET_FILE
    if not path.exists():
        fd, tmp = tempfile.mkstemp(prefix=".secret.", dir=path.parent)  # mkstemp: mode 0600
        try:
            os.write(fd, secrets.token_bytes(SECRET_BYTES))
            os.fsync(fd)
            os.close(fd)
            try:
                os.link(tmp, path)
            except FileExistsError:  # another process won the race: use theirs
                pass
        finally:
            os.unlink(tmp)
    key = path.read_bytes()
    if len(key) < SECRET_BYTES:
        raise AuthError(f"{path}: shorter than {SECRET_BYTES} bytes; delete it (signs everyone out) to make a new one")
    return key


def _sign(key: bytes, body: str) -> str:
    return _b64(hmac.new(key, body.encode("ascii"), hashlib.sha256).digest())


def make_token(user: User, ttl_s: float = TOKEN_TTL_S, *, logdir=None, now: float | None = None) -> str:
    """A token for `user`, valid for `ttl_s` seconds from `now` (default: the current time)."""
    if ttl_s <= 0:
        raise ValueError(f"ttl_s={ttl_s}: must be > 0")
    expiry = int((time.time() if now is None else now) + ttl_s)
    payload = _b64(json.dumps([user.name, user.fingerprint, expiry], separators=(",", ":")).encode())
    body = f"{_VERSION}.{payload}"
    return f"{body}.{_sign(secret(logdir), body)}"


def token_expiry(token: str) -> int | None:
    """The unix second a well-formed token expires (unverified: for a cookie's max-age only)."""
    try:
        return int(json.loads(_unb64(token.split(".")[1]))[2])
    except (AttributeError, IndexError, TypeError, ValueError):
        return None


def user_from_token(token: str | None, *, logdir=None, now: float | None = None) -> User | None:
    """The signed-in user a token stands for, or None: missing, malformed, tampered with, expired,
    user removed, or password changed since it was made. Never raises for a bad token."""
    if not isinstance(token, str) or not token or len(token) > MAX_TOKEN_CHARS:
        return None
    parts = token.split(".")
    if len(parts) != 3 or parts[0] != _VERSION:
        return None
    body = f"{parts[0]}.{parts[1]}"
    try:
        if not hmac.compare_digest(_sign(secret(logdir), body), parts[2]):
            return None
        name, fingerprint, expiry = json.loads(_unb64(parts[1]))
        expired = float(expiry) <= (time.time() if now is None else now)
    except (TypeError, ValueError, UnicodeError):  # binascii.Error is a ValueError
        return None
    if expired or not isinstance(name, str) or not isinstance(fingerprint, str):
        return None
    user = get_user(name, logdir=logdir)
    if user is None or not hmac.compare_digest(user.fingerprint, fingerprint):
        return None
    return user
