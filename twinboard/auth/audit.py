"""The audit log: who did what, when, to which run or upload; one JSON object per line.

``<logdir>/.twinboard/audit.jsonl``, append-only. Each line is written by ONE ``os.write`` to a file
opened with O_APPEND: the kernel moves to the end and writes in one step, so lines from Streamlit's
session threads, the CLI and a second server process never interleave or overwrite each other (no
lock needed; on a local file system; NFS does not promise O_APPEND across machines). A line is bounded (MAX_LINE_BYTES) because details can carry visitor input.

    {"time": 1712345678.9, "user": "alice", "role": "runner", "action": "stop", "target": "run-7",
     "details": {"grace_s": 5}}

It records in solo mode too (user "local"), so a logdir's history does not depend on how it was served.
"""
from __future__ import annotations

import json
import os
import time
from pathlib import Path

from twinboard.auth.users import User, auth_dir

AUDIT_JSONL = "audit.jsonl"
MAX_LINE_BYTES = 4096  # one line: small enough for a page to show whole
MAX_TEXT = 300  # chars kept of any one string in details (names, regexes, messages)
MAX_LIMIT = 10_000  # lines read_audit returns at most
_BLOCK = 64 * 1024  # bytes read at a time from the end of the file


def audit_path(logdir=None) -> Path:
    return auth_dir(logdir) / AUDIT_JSONL


def _clip(value):
    if isinstance(value, str):
        return value if len(value) <= MAX_TEXT else value[:MAX_TEXT] + "…"
    if isinstance(value, (list, tuple)):
        return [_clip(v) for v in value[:50]]
    if isinstance(value, dict):
        return {str(k)[:MAX_TEXT]: _clip(v) for k, v in list(value.items())[:50]}
    if value is None or isinstance(value, (bool, int, float)):
        return value
    return _clip(str(value))  # a Path, an exception, a dataclass: its text


def record(user: User | None, action: str, target: str | None = None, *, logdir=None, **details) -> dict:
    """Append one line: time (unix s), user, role, action, target and `details` (JSON-able or shown
    as text; long strings clipped). `user` None: nobody signed in (a failed sign-in). Returns the entry."""
    entry = {"time": round(time.time(), 3), "user": user.name if user else None,
             "role": user.role if user else None, "action": str(action), "target": _clip(target)}
    if details:
        entry["details"] = _clip(details)
    line = (json.dumps(entry, ensure_ascii=False, default=str) + "\n").encode()
    if len(line) > MAX_LINE_BYTES:  # too many details even after clipping: keep the who/what/when
        entry["details"] = {"clipped": True}
        line = (json.dumps(entry, ensure_ascii=False) + "\n").encode()
    fd = os.open(audit_path(logdir), os.O_WRONLY | os.O_APPEND | os.O_CREAT, 0o600)
    try:
        written = os.write(fd, line)
    finally:
        os.close(fd)
    if written != len(line):  # a full disk: a short write would leave half a line; say so
        raise OSError(f"audit log: wrote {written} of {len(line)} bytes")
    return entry


def read_audit(limit: int = 200, *, logdir=None) -> list[dict]:
    """The last `limit` entries, newest first, reading only the file's tail. Lines that are not JSON
    objects (a disk that filled mid-line) are skipped."""
    limit = max(0, min(int(limit), MAX_LIMIT))
    path = audit_path(logdir)
    if limit == 0 or not path.exists():
        return []
    buf = b""
    with open(path, "rb") as f:
        pos = f.seek(0, os.SEEK_END)
        while pos > 0 and buf.count(b"\n") <= limit:  # limit + 1 newlines hold `limit` whole lines
            step = min(_BLOCK, pos)
            pos -= step
            f.seek(pos)
            buf = f.read(step) + buf
    lines = buf.split(b"\n")
    if pos > 0:
        lines = lines[1:]  # starts mid-line
    out = []
    for raw in reversed(lines):
        if not raw.strip():
            continue
        try:
            entry = json.loads(raw)
        except ValueError:
            continue
        if isinstance(entry, dict):
            out.append(entry)
            if len(out) == limit:
                break
    return out
