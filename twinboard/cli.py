"""`twinboard` (or `python -m twinboard`): serve the app, launch pairs and face-offs, list, stop, import,
export, manage team users.

A thin layer over the library. Subcommands live in COMMANDS: name -> Command(help, add_arguments, run).
Adding one is one `add_arguments(parser)` and one `run(args) -> exit status`, registered with
`command(...)`, best beside the package it drives: twinboard/runs/cli.py (launch, faceoff, runs, stop,
export) and twinboard/sweeps/cli.py (sweep) register theirs when imported, at the end of this module.
Here: the registry, the RunSpec flags every launching command shares, serve, and two commands with
no cheap home: import (twinboard.uploads loads pandas when imported, which every command would pay)
and users (twinboard.auth imports its own cli module, and the dashboard imports auth).
Every RunSpec field gets a flag of the same name (`batch_size` -> `--batch-size`), typed from the
field's annotation, so a new field needs no new plumbing.
"""
from __future__ import annotations

import argparse
import dataclasses
import os
import sys
import typing
from pathlib import Path
from typing import Callable, NamedTuple

from twinboard.contract import RunSpec, SpecError, check_spec, check_values, field_bounds
from twinboard.contract.limits import LIMITS_DIR, LIMITS_JSON
from twinboard.contract.files import UPLOADS
from twinboard import config


class Command(NamedTuple):
    help: str
    add_arguments: Callable[[argparse.ArgumentParser], None]
    run: Callable[[argparse.Namespace], int]


COMMANDS: dict[str, Command] = {}
# The order `twinboard --help` lists them in. Several modules register commands, in the order they are
# imported; those not named here come after these, in that order.
HELP_ORDER = ("launch", "faceoff", "runs", "stop", "import", "serve", "export", "users", "sweep")


def command(name: str, help: str, add_arguments: Callable[[argparse.ArgumentParser], None]):
    """Decorator: register `run` as subcommand `name`."""
    def register(run: Callable[[argparse.Namespace], int]) -> Callable[[argparse.Namespace], int]:
        COMMANDS[name] = Command(help, add_arguments, run)
        return run
    return register


# --- RunSpec flags ------------------------------------------------------------------------------
def add_spec_arguments(parser: argparse.ArgumentParser) -> None:
    """One flag per RunSpec field; unset flags keep the RunSpec default (they are left out of the Namespace).

    Each help ends in [default; bounds]: the built-in limits, as the parser is built before --logdir
    is known; the launch itself is checked against the logdir's own limits (spec_from_args)."""
    group = parser.add_argument_group(
        "run spec (RunSpec fields; [default; bounds], the built-in limits: an admin may change them in "
        f"<logdir>/{LIMITS_DIR}/{LIMITS_JSON})")
    hints = typing.get_type_hints(RunSpec)
    for f in dataclasses.fields(RunSpec):
        kind = hints.get(f.name, type(f.default))
        low, high = field_bounds(f.name)
        bounds, ends = "", f.metadata.get("open", "")
        if isinstance(high, float):  # the open ends as the error messages write them: lr in (0, 10)
            bounds = f"; in {'(' if 'min' in ends else '['}{low:g}, {high:g}{')' if 'max' in ends else ']'}"
        elif high is not None:
            bounds = f"; {low} to {high}"
        if "items" in f.metadata:
            bounds = f"; up to {field_bounds(f.metadata['items'])[1]} values, each{bounds[1:]}"
        kwargs: dict = {"dest": f"spec.{f.name}", "default": argparse.SUPPRESS,
                        "help": f"{f.metadata.get('help', '')} [{f.default!r}{bounds}]".replace("%", "%%")}
        if typing.get_origin(kind) is tuple:
            item = next((a for a in typing.get_args(kind) if a is not Ellipsis), str)
            kwargs.update(nargs="*", type=item, metavar=item.__name__.upper())
        elif kind is bool:
            kwargs.update(action=argparse.BooleanOptionalAction)
        else:
            kwargs.update(type=kind, metavar=kind.__name__.upper())
        group.add_argument(flag(f.name), **kwargs)


def flag(field: str) -> str:
    """The command-line flag of a RunSpec field: batch_size -> --batch-size."""
    return "--" + field.replace("_", "-")


def spec_error_text(err: SpecError) -> str:
    """A SpecError in the command line's own words: `--lr 20.0: must be in (0, 10)`."""
    if err.field is None:
        return str(err)
    value = " ".join(map(str, err.value)) if isinstance(err.value, (list, tuple)) else err.value
    return f"{flag(err.field)} {value}: {err.why}".replace(" :", ":")


def spec_from_args(args: argparse.Namespace) -> RunSpec:
    """The RunSpec the flags describe, within the logdir's limits (SpecError naming the field if not)."""
    given = {k.removeprefix("spec."): v for k, v in vars(args).items() if k.startswith("spec.")}
    logdir = getattr(args, "logdir", None) or config.logdir()
    check_values(given, logdir)  # --epochs 10**9: name this server's limit, not RunSpec's higher ceiling
    spec = RunSpec(**given)
    check_spec(spec, logdir)  # what the fields cost together
    return spec


# --- subcommands kept here (the rest register from the modules imported at the end) -----------
def _import_arguments(p: argparse.ArgumentParser) -> None:
    p.add_argument("files", nargs="+", type=Path, metavar="ARCHIVE_OR_FILE",
                   help=".zip, .tar.gz/.tgz/.tar, or event files (all go into one upload)")
    p.add_argument("--name", help="upload name: logs/uploads/NAME (default: the archive's name)")
    p.add_argument("--steps-per-epoch", type=float, help="stored in the tag mapping, for x = epoch/step")
    p.add_argument("--batch-size", type=int, help="stored in the tag mapping, for x = samples seen")
    p.add_argument("--max-bytes", type=int, help="uncompressed size cap [$TWINBOARD_UPLOAD_MAX_BYTES or 1 GiB]")
    p.add_argument("--max-files", type=int, help="entry count cap [$TWINBOARD_UPLOAD_MAX_FILES or 10000]")
    p.add_argument("--max-ratio", type=float, help="compression ratio cap [$TWINBOARD_UPLOAD_MAX_RATIO or 100]")


@command("import", "import event files or an archive of them as logs/uploads/NAME", _import_arguments)
def _import(args: argparse.Namespace) -> int:
    from twinboard import uploads

    try:
        missing = next((f for f in args.files if not f.is_file()), None)
        if missing is not None:
            raise uploads.UploadRefused(str(missing), "no such file")
        result = uploads.import_upload(
            [(f.name, f) for f in args.files], args.name, args.logdir, max_total_bytes=args.max_bytes,
            max_files=args.max_files, max_ratio=args.max_ratio, steps_per_epoch=args.steps_per_epoch,
            batch_size=args.batch_size)
    except uploads.UploadRefused as err:
        print(f"import refused, nothing changed: {err}", file=sys.stderr)
        return 1
    for warning in result.warnings:
        print(f"warning: {warning}", file=sys.stderr)
    names = [f"{UPLOADS}/{result.name}" + ("" if r == "." else f"/{r}") for r in result.runs]
    print(f"imported {result.name}: {result.files} files, {result.bytes} bytes, runs: {', '.join(names)}")
    print(result.path)
    return 0


REPO = Path(__file__).resolve().parents[1]  # app.py, pages/ and .streamlit/ live beside the package


def _serve_arguments(p: argparse.ArgumentParser) -> None:
    p.add_argument("--port", type=int, default=8501, help="port [8501]")
    p.add_argument("--address", default="127.0.0.1",
                   help="interface to listen on [127.0.0.1, this machine only]; 0.0.0.0 exposes it to the "
                        "network: put it behind a TLS proxy (README, 'Running it for a team')")
    p.add_argument("--team", action="store_true",
                   help="team mode: every visitor signs in (users: `twinboard users add`), roles and an audit log")
    p.add_argument("streamlit_args", nargs=argparse.REMAINDER, metavar="-- STREAMLIT_OPTION",
                   help="after --, options passed to `streamlit run` (e.g. --server.fileWatcherType none)")


@command("serve", "serve the dashboard (what `make run` does)", _serve_arguments)
def _serve(args: argparse.Namespace) -> int:
    logdir = Path(args.logdir or config.logdir()).expanduser().absolute()
    logdir.mkdir(parents=True, exist_ok=True)
    os.environ["TWINBOARD_LOGDIR"] = str(logdir)
    if args.team:
        os.environ["TWINBOARD_TEAM"] = "1"
    os.chdir(REPO)  # streamlit reads .streamlit/config.toml from the working directory
    extra = [a for a in args.streamlit_args if a != "--"]
    sys.argv = ["streamlit", "run", str(REPO / "app.py"), "--server.headless", "true",
                "--server.port", str(args.port), "--server.address", args.address,
                "--browser.gatherUsageStats", "false", "--client.showErrorDetails", "none",
                "--client.toolbarMode", "viewer", *extra]
    # Streamlit treats an app with a pages/ folder beside its main script as a legacy (v1) multipage
    # app until app.py first calls st.navigation. On a fresh server whose first request is a page URL
    # (a bookmark, a reload after a restart) app.py never runs, and every visitor got the legacy
    # folder navigation until a restart. app.py always navigates with st.Page, so say so up front.
    from streamlit.runtime.pages_manager import PagesManager
    from streamlit.web import cli as streamlit_cli

    PagesManager.uses_pages_directory = False
    mode = "team mode, sign-in required" if args.team else "solo, no sign-in"
    print(f"twinboard: serving {logdir} on http://{args.address}:{args.port} ({mode})", flush=True)
    return streamlit_cli.main(prog_name="streamlit")


def _users_arguments(p: argparse.ArgumentParser) -> None:
    p.add_argument("users_args", nargs=argparse.REMAINDER, metavar="add|list|remove|set-role|passwd ...",
                   help="`twinboard users add NAME --role admin|runner|viewer` and the like (users --help)")


@command("users", "manage team-mode users (names, roles, passwords)", _users_arguments)
def _users(args: argparse.Namespace) -> int:
    from twinboard import auth

    logdir = ["--logdir", str(args.logdir)] if args.logdir else []
    return auth.cli_users([*logdir, *args.users_args])  # users takes --logdir before its action


# --- entry point --------------------------------------------------------------------------------
def build_parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(prog="twinboard", description=__doc__.splitlines()[0])
    parser.add_argument("--logdir", type=Path, help="default: $TWINBOARD_LOGDIR, else ./logs")
    sub = parser.add_subparsers(dest="command", required=True, metavar="COMMAND")
    for name in sorted(COMMANDS, key=lambda n: HELP_ORDER.index(n) if n in HELP_ORDER else len(HELP_ORDER)):
        cmd = COMMANDS[name]
        p = sub.add_parser(name, help=cmd.help, description=cmd.help)
        cmd.add_arguments(p)
        p.set_defaults(handler=cmd.run, parser=p)
    return parser


def main(argv: list[str] | None = None) -> int:
    args = build_parser().parse_args(argv)
    return args.handler(args)


# The modules that register the other commands import the helpers above from here, so they come last.
import twinboard.runs.cli  # noqa: E402, F401  (registers launch, faceoff, runs, stop, export)
import twinboard.sweeps.cli  # noqa: E402, F401  (registers sweep)

if __name__ == "__main__":  # `python -m twinboard.cli`: the commands registered in twinboard.cli, not here
    sys.exit(twinboard.cli.main())
