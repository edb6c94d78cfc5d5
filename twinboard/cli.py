"""`python -m twinboard`: launch a matched pair, list runs, stop one. A thin layer over twinboard.launcher.

Subcommands live in COMMANDS: name -> Command(help, add_arguments, run). Adding one (`import`, say)
is one `add_arguments(parser)` and one `run(args) -> exit status`, registered with `command(...)`.
Every RunSpec field gets a `launch` flag of the same name (`batch_size` -> `--batch-size`), typed from
the field's annotation, so a new field needs no new plumbing here.
"""
from __future__ import annotations

import argparse
import dataclasses
import inspect
import re
import sys
import typing
from pathlib import Path
from typing import Callable, NamedTuple

from twinboard.contract import RunSpec, SpecError
from twinboard import config, runs


class Command(NamedTuple):
    help: str
    add_arguments: Callable[[argparse.ArgumentParser], None]
    run: Callable[[argparse.Namespace], int]


COMMANDS: dict[str, Command] = {}


def command(name: str, help: str, add_arguments: Callable[[argparse.ArgumentParser], None]):
    """Decorator: register `run` as subcommand `name`."""
    def register(run: Callable[[argparse.Namespace], int]) -> Callable[[argparse.Namespace], int]:
        COMMANDS[name] = Command(help, add_arguments, run)
        return run
    return register


# --- RunSpec flags ------------------------------------------------------------------------------
def _field_comments() -> dict[str, str]:
    """The comment after each RunSpec field, as its flag's help (the dataclass documents itself)."""
    try:
        source = inspect.getsource(RunSpec)
    except (OSError, TypeError):
        return {}
    return dict(re.findall(r"^\s+(\w+): [^\n#]*#\s*(.+)$", source, re.MULTILINE))


def add_spec_arguments(parser: argparse.ArgumentParser) -> None:
    """One flag per RunSpec field; unset flags keep the RunSpec default (they are left out of the Namespace)."""
    group = parser.add_argument_group("run spec (RunSpec fields; defaults in brackets)")
    hints = typing.get_type_hints(RunSpec)
    comments = _field_comments()
    for f in dataclasses.fields(RunSpec):
        kind = hints.get(f.name, type(f.default))
        kwargs: dict = {"dest": f"spec.{f.name}", "default": argparse.SUPPRESS,
                        "help": f"{comments.get(f.name, '')} [{f.default!r}]".replace("%", "%%")}
        if typing.get_origin(kind) is tuple:
            item = next((a for a in typing.get_args(kind) if a is not Ellipsis), str)
            kwargs.update(nargs="*", type=item, metavar=item.__name__.upper())
        elif kind is bool:
            kwargs.update(action=argparse.BooleanOptionalAction)
        else:
            kwargs.update(type=kind, metavar=kind.__name__.upper())
        group.add_argument("--" + f.name.replace("_", "-"), **kwargs)


def spec_from_args(args: argparse.Namespace) -> RunSpec:
    given = {k.removeprefix("spec."): v for k, v in vars(args).items() if k.startswith("spec.")}
    return RunSpec(**given)


# --- subcommands --------------------------------------------------------------------------------
def _launch_arguments(p: argparse.ArgumentParser) -> None:
    p.add_argument("--name", help="run id to use instead of <time>-<task>-<model>-<optimizer>")
    p.add_argument("--wait", action="store_true", help="block until both end; exit 1 unless both finished")
    p.add_argument("--timeout", type=float, help="with --wait: give up after this many seconds")
    add_spec_arguments(p)


@command("launch", "start a matched PyTorch/TensorFlow pair in the background", _launch_arguments)
def _launch(args: argparse.Namespace) -> int:
    try:
        spec = spec_from_args(args)
    except SpecError as err:
        args.parser.exit(2, f"{args.parser.prog}: error: {err}\n")  # argparse's status for bad input
    outcome = runs.launch(spec, args.logdir, args.name)
    if isinstance(outcome, runs.Failed):
        print(f"launch failed: {outcome.stderr}", file=sys.stderr)
        return 1
    print(outcome.run_dir)
    if not args.wait:
        return 0
    try:
        results = runs.wait(outcome.run_id, args.timeout, args.logdir)
    except KeyboardInterrupt:
        print(f"still running; stop it with: python -m twinboard stop {outcome.run_id}", file=sys.stderr)
        return 130
    for fw, result in results.items():
        print(f"{fw}: {_outcome_text(result)}")
    return 0 if all(isinstance(r, runs.Finished) for r in results.values()) else 1


def _outcome_text(result: object) -> str:
    if isinstance(result, runs.Failed):
        detail = "\n  ".join(result.stderr.splitlines()[-5:])
        return f"failed (exit {result.exit_code})" + (f"\n  {detail}" if detail else "")
    if isinstance(result, runs.TimedOut):
        return "timed out, still running"
    return type(result).__name__.lower()


@command("runs", "list launched runs and the state of each framework", lambda p: None)
def _runs(args: argparse.Namespace) -> int:
    found = runs.list_runs(args.logdir)
    if not found:
        print(f"no runs in {args.logdir or config.logdir()}")
        return 0
    width = max(len(r.run_id) for r in found)
    print(f"{'RUN':<{width}}  " + "  ".join(f"{fw.upper():<18}" for fw in runs.FRAMEWORKS))
    for run in found:
        cells = [run.frameworks[fw].describe() if fw in run.frameworks else "-" for fw in runs.FRAMEWORKS]
        print(f"{run.run_id:<{width}}  " + "  ".join(f"{c:<18}" for c in cells))
    return 0


def _stop_arguments(p: argparse.ArgumentParser) -> None:
    p.add_argument("run", help="run id (the folder name under the logdir)")
    p.add_argument("--grace", type=float, default=5.0, help="seconds between SIGTERM and SIGKILL [5.0]")


@command("stop", "stop a run (queued jobs leave the queue, running ones end)", _stop_arguments)
def _stop(args: argparse.Namespace) -> int:
    try:
        run = runs.stop(args.run, args.logdir, args.grace)
    except runs.LauncherError as err:
        print(f"stop: {err}", file=sys.stderr)
        return 1
    for fw, job in run.frameworks.items():
        print(f"{fw}: {job.describe()}")
    return 0


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
    print(f"imported {result.name}: {result.files} files, {result.bytes} bytes, runs: {', '.join(result.runs)}")
    print(result.path)
    return 0


# --- entry point --------------------------------------------------------------------------------
def build_parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(prog="python -m twinboard", description=__doc__.splitlines()[0])
    parser.add_argument("--logdir", type=Path, help="default: $TWINBOARD_LOGDIR, else ./logs")
    sub = parser.add_subparsers(dest="command", required=True, metavar="COMMAND")
    for name, cmd in COMMANDS.items():
        p = sub.add_parser(name, help=cmd.help, description=cmd.help)
        cmd.add_arguments(p)
        p.set_defaults(handler=cmd.run, parser=p)
    return parser


def main(argv: list[str] | None = None) -> int:
    args = build_parser().parse_args(argv)
    return args.handler(args)


if __name__ == "__main__":
    sys.exit(main())
