"""Team mode: users, roles, sessions, the sign-in delay, the audit log and who owns what.

Solo use (the default) has no sign-in: one implicit local admin (LOCAL_ADMIN) may do everything.
`twinboard serve --team` sets TWINBOARD_TEAM=1 (read by ``team_mode()``); then every visitor signs
in, and every change is checked with ``require(user, ACTION, owner)`` on the server side and
recorded with ``record(user, ACTION, target, **details)``. MLflow's basic-auth server is the model;
past it: argon2id hashes, signed stateless sessions that a password change ends, a per-name
sign-in delay, ownership by folder, an append-only audit log, and a last admin that cannot be removed.

- ``users``: the users file (``<logdir>/.twinboard/users.json``), User, add/change/remove, verify.
- ``roles``: viewer / runner / admin, the action names, allowed() and require().
- ``sessions``: make_token() / user_from_token(), HMAC-SHA256 with a per-logdir secret.
- ``throttle``: sign_in() with the growing delay after failures.
- ``audit``: record() and read_audit() on ``<logdir>/.twinboard/audit.jsonl``.
- ``owners``: set_owner() / owner_of() a run or upload folder.
- ``cli``: cli_users(argv), the `twinboard users` command.

Standard library and argon2-cffi only: no framework, no Streamlit (the page side is pages/signin.py).
"""
from twinboard.auth.audit import read_audit, record
from twinboard.auth.cli import cli_users
from twinboard.auth.owners import owner_of, set_owner
from twinboard.auth.roles import (
    ACTIONS,
    DELETE_DATA,
    DELETE_RUN,
    DELETE_UPLOAD,
    EDIT_MAPPING,
    LAUNCH,
    MANAGE_USERS,
    RENAME_UPLOAD,
    SET_QUOTA,
    STOP,
    UPLOAD,
    VIEW_AUDIT,
    PermissionDenied,
    allowed,
    require,
)
from twinboard.auth.sessions import TOKEN_TTL_S, make_token, user_from_token
from twinboard.auth.throttle import SignIn, sign_in
from twinboard.auth.users import (
    ADMIN,
    LOCAL_ADMIN,
    ROLES,
    RUNNER,
    VIEWER,
    AuthError,
    User,
    add_user,
    get_user,
    list_users,
    remove_user,
    set_password,
    set_role,
    team_mode,
    users_path,
    verify,
)
