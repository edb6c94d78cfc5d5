"""`twinboard users ...`: manage a team server's users from a shell on the server.

The shell is the way in for the first admin (nobody can sign in to add one), and the way back in
for a team that lost its last admin's password. Passwords never go on the command line (where `ps`
and shell history would see them): they are typed twice at a getpass prompt, or piped with
``--password-stdin``. Every change is recorded in the audit log as user "cli".

    twinboard users add NAME --role ROLE [--password-stdin]
    twinboard users list
    twinboard users remove NAME
    twinboard users set-role NAME ROLE
    twinboard users passwd NAME [--password-stdin]
"""
from __future__ import annotations

import argparse
import getpass
import sys
import time
from pathlib import Path

from twinboard.auth import users
from twinboard.auth.audit import record
from twinboard.auth.roles import MANAGE_USERS

CLI_USER = users.User("cli", users.ADMIN)  # who the audit log says made a change from the shell


def build_parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(prog="twinboard users", description="Manage team-mode users.")
    parser.add_argument("--logdir", type=Path, help="default: $TWINBOARD_LOGDIR, else ./logs "
                        "(users file: $TWINBOARD_USERS, else <logdir>/.twinboard/users.json)")
    sub = parser.add_subparsers(dest="action", required=True, metavar="ACTION")
    add = sub.add_parser("add", help="add a user")
    add.add_argument("name")
    add.add_argument("--role", choices=users.ROLES, default=users.VIEWER, help="default: %(default)s")
    add.add_argument("--password-stdin", action="store_true", help="read the password from stdin's first line")
    sub.add_parser("list", help="list users")
    remove = sub.add_parser("remove", help="remove a user (their sessions end)")
    remove.add_argument("name")
    set_role = sub.add_parser("set-role", help="change a user's role")
    set_role.add_argument("name")
    set_role.add_argument("role", choices=users.ROLES)
    passwd = sub.add_parser("passwd", help="set a user's password (their sessions end)")
    passwd.add_argument("name")
    passwd.add_argument("--password-stdin", action="store_true", help="read the password from stdin's first line")
    return parser


def _password(args: argparse.Namespace) -> str:
    if args.password_stdin:
        return sys.stdin.readline().rstrip("\r\n")
    first = getpass.getpass(f"password for {args.name}: ")
    if getpass.getpass("again: ") != first:
        raise users.AuthError("the two passwords differ")
    return first


def _os_user() -> str | None:
    try:
        return getpass.getuser()
    except (KeyError, OSError):  # a container user with no name
        return None


def cli_users(argv: list[str]) -> int:
    """Run one `users` command; 0 on success, 1 when refused (message on stderr), 2 for bad usage.
    `argv` is what follows `twinboard users` (a leading "users" is accepted too)."""
    argv = list(argv)
    if argv[:1] == ["users"]:
        argv = argv[1:]
    try:
        args = build_parser().parse_args(argv)
    except SystemExit as exit_:  # --help, or a usage error argparse already explained
        return exit_.code if isinstance(exit_.code, int) else 2
    logdir = args.logdir
    try:
        if args.action == "list":
            found = users.list_users(logdir=logdir)
            if not found:
                print(f"no users in {users.users_path(logdir)}")
            for u in found:
                print(f"{u.name:<32} {u.role:<7} {time.strftime('%Y-%m-%d %H:%M', time.localtime(u.created))}")
            return 0
        if args.action == "add":
            user = users.add_user(args.name, _password(args), args.role, logdir=logdir)
            done = f"added {user.name} ({user.role})"
        elif args.action == "remove":
            users.remove_user(args.name, logdir=logdir)
            done = f"removed {args.name}"
        elif args.action == "set-role":
            user = users.set_role(args.name, args.role, logdir=logdir)
            done = f"{user.name} is now {user.role}"
        else:  # passwd
            users.set_password(args.name, _password(args), logdir=logdir)
            done = f"new password for {args.name}"
    except users.AuthError as err:
        print(f"twinboard users {args.action}: {err}", file=sys.stderr)
        return 1
    except (EOFError, KeyboardInterrupt):
        print(f"twinboard users {args.action}: cancelled, nothing changed", file=sys.stderr)
        return 1
    record(CLI_USER, MANAGE_USERS, args.name, logdir=logdir, command=args.action, os_user=_os_user(),
           role=getattr(args, "role", None))
    print(done)
    return 0
