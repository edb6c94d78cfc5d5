"""Who owns a run or an upload: ``<folder>/.owner.json``, ``{"owner": "alice", "since": 1712345678.9}``.

Why a file of its own in the folder rather than a central table: it moves with the folder (a renamed
upload keeps its owner, a copied logdir keeps everyone's), it is written once by whoever created the
folder, and a hidden name keeps it out of TensorBoard's way. A run's ``run.json`` may also carry an
``owner`` field (the launcher records who launched it); ``.owner.json`` wins when both exist.
"""
from __future__ import annotations

import os
import time
from pathlib import Path

from twinboard.auth.users import NAME_RE, User, validate_name
from twinboard.contract.files import RUN_JSON, read_json, write_json

OWNER_JSON = ".owner.json"


def set_owner(folder: str | os.PathLike, user: User | str) -> None:
    """Record `user` (a User or a name) as the owner of `folder`, atomically. The folder must exist."""
    name = validate_name(user.name if isinstance(user, User) else user)
    folder = Path(folder)
    if not folder.is_dir():
        raise FileNotFoundError(f"{folder}: no such folder to own")
    write_json(folder / OWNER_JSON, {"owner": name, "since": time.time()})


def owner_of(folder: str | os.PathLike) -> str | None:
    """The owner's name, or None: no record (made in solo mode or before team mode), or one that is
    not a valid name (a hand-edit). None means only an admin may change it in team mode."""
    folder = Path(folder)
    for path in (folder / OWNER_JSON, folder / RUN_JSON):
        owner = (read_json(path) or {}).get("owner")
        if isinstance(owner, str) and NAME_RE.fullmatch(owner):
            return owner
    return None
