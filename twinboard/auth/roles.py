"""What each role may do: one table and one check, used by pages AND by the library calls behind them.

A page hides a control the user may not use, but hiding is a courtesy: the check that counts is
``require(user, action, owner)`` on the server side, before anything changes, because a visitor can
replay any widget message a page once rendered.

    viewer  sees everything, changes nothing
    runner  launches and uploads; stops, deletes, renames and re-maps only what they own
    admin   everything, including quotas, users and the audit log

Solo mode (no $TWINBOARD_TEAM) has one implicit local admin and allows everything.
"""
from __future__ import annotations

from twinboard.auth.users import ADMIN, ROLES, RUNNER, VIEWER, User, team_mode

# Actions: the names the audit log records, so they read as verbs.
LAUNCH = "launch"  # start a matched pair (or a sweep)
STOP = "stop"  # stop a run's trainers; owner: the run's
DELETE_RUN = "delete_run"  # owner: the run's
UPLOAD = "upload"  # import event files as a new upload
RENAME_UPLOAD = "rename_upload"  # owner: the upload's
DELETE_UPLOAD = "delete_upload"  # owner: the upload's
DELETE_DATA = "delete_data"  # a file of the data folder: no owner is recorded, so an admin's
EDIT_MAPPING = "edit_mapping"  # an upload's tag mapping; owner: the upload's
SET_QUOTA = "set_quota"
MANAGE_USERS = "manage_users"
VIEW_AUDIT = "view_audit"  # the audit log names who did what: admins only
ACTIONS = (LAUNCH, STOP, DELETE_RUN, UPLOAD, RENAME_UPLOAD, DELETE_UPLOAD, DELETE_DATA, EDIT_MAPPING, SET_QUOTA,
           MANAGE_USERS, VIEW_AUDIT)

# role -> (actions allowed on anything, actions allowed only on what the user owns)
PERMISSIONS: dict[str, tuple[frozenset[str], frozenset[str]]] = {
    VIEWER: (frozenset(), frozenset()),
    RUNNER: (frozenset({LAUNCH, UPLOAD}),
             frozenset({STOP, DELETE_RUN, RENAME_UPLOAD, DELETE_UPLOAD, EDIT_MAPPING})),
    ADMIN: (frozenset(ACTIONS), frozenset()),
}
assert set(PERMISSIONS) == set(ROLES)


class PermissionDenied(Exception):
    """A user tried an action their role does not allow. Not a PermissionError: that is an OSError,
    and code catching file errors must not swallow a refusal."""

    def __init__(self, user: User | None, action: str, owner: str | None = None):
        self.user, self.action, self.owner = user, action, owner
        if user is None:
            text = f"sign in first: nobody may {action.replace('_', ' ')} anonymously"
        else:
            text = f"{user.name} ({user.role}) may not {action.replace('_', ' ')}"
            if owner is not None or action in PERMISSIONS[RUNNER][1]:
                text += f" what {owner} owns" if owner else " what has no recorded owner"
        super().__init__(text)


def allowed(user: User | None, action: str, owner: str | None = None) -> bool:
    """May `user` do `action` to a thing owned by `owner` (a user name; None: unknown or not owned)?

    Always True in solo mode. In team mode: False for nobody signed in; owner-scoped actions need
    ``owner == user.name`` unless the role allows them on anything (a thing with no recorded owner,
    such as a run made before team mode, is an admin's to change). ValueError for an unknown action:
    a typo in a caller must fail loudly, not quietly deny or allow."""
    if action not in ACTIONS:
        raise ValueError(f"unknown action {action!r}: one of {', '.join(ACTIONS)}")
    if not team_mode():
        return True
    if user is None or user.role not in PERMISSIONS:
        return False
    anything, own = PERMISSIONS[user.role]
    return action in anything or (action in own and owner is not None and owner == user.name)


def require(user: User | None, action: str, owner: str | None = None) -> User | None:
    """`allowed(...)` or raise PermissionDenied (its message names the user, role and action).
    Returns `user`, so a call site can read ``user = require(current_user(), STOP, owner_of(run))``."""
    if not allowed(user, action, owner):
        raise PermissionDenied(user, action, owner)
    return user
