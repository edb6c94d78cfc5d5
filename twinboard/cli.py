"""`twinboard` (or `python -m twinboard`): serve the app, launch pairs and face-offs, list, stop, import,
export, manage team users.

A thin layer over the library (twinboard.runs, twinboard.uploads).

Subcommands live in COMMANDS: name -> Command(help, add_arguments, run). Adding one (`import`, say)
is one `add_arguments(parser)` and one `run(args) -> exit status`, registered with `command(...)`.
Every RunSpec field gets a `launch` flag of the same name (`batch_size` -> `--batch-size`), typed from
the field's annotation, so a new field needs no new plumbing here.
"""
from __future__ import annotations

import argparse
import dataclasses
import os
import sys
import time
import typing
from pathlib import Path
from typing import Callable, NamedTuple

from twinboard.contract import RunSpec, SpecError, check_spec, check_values, field_bounds
from twinboard.contract.limits import LIMITS_DIR, LIMITS_JSON
from twinboard.contract.files import UPLOADS
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


# --- subcommands --------------------------------------------------------------------------------
def _launch_arguments(p: argparse.ArgumentParser) -> None:
    p.add_argument("--name", help="run id to use instead of <time>-<task>-<model>-<optimizer>")
    p.add_argument("--wait", action="store_true", help="block until both end; exit 1 unless both finished")
    p.add_argument("--timeout", type=float, help="with --wait: give up after this many seconds")
    p.add_argument("--backend", choices=("local", "ray"), default="local",
                   help="local: this machine's queue; ray: a Ray cluster (pip install twinboard[ray])")
    p.add_argument("--address", help="with --backend ray: ray://HOST:PORT, HOST:PORT or auto "
                                     "[$TWINBOARD_RAY_ADDRESS, else auto]")
    add_spec_arguments(p)


@command("launch", "start a matched PyTorch/TensorFlow pair in the background", _launch_arguments)
def _launch(args: argparse.Namespace) -> int:
    try:
        spec = spec_from_args(args)
    except SpecError as err:
        args.parser.exit(2, f"{args.parser.prog}: error: {spec_error_text(err)}\n")  # argparse's status
    outcome = runs.launch(spec, args.logdir, args.name, backend=args.backend, address=args.address)
    if isinstance(outcome, runs.Failed):
        print(f"launch failed: {outcome.stderr}", file=sys.stderr)
        return 1
    print(outcome.run_dir)
    if not args.wait:
        return 0
    try:
        _show_progress(outcome.run_id, args.timeout, args.logdir)
        results = runs.wait(outcome.run_id, 0, args.logdir)
    except KeyboardInterrupt:
        print(f"still running; stop it with: twinboard stop {outcome.run_id}", file=sys.stderr)
        return 130
    for fw, result in results.items():
        print(f"{fw}: {_outcome_text(result)}")
    return 0 if all(isinstance(r, runs.Finished) for r in results.values()) else 1


def _show_progress(run_id: str, timeout: float | None, logdir: Path | None, every_s: float = 1.0) -> None:
    """One line per framework whenever its state or step moves (at most every `every_s`), until both
    jobs end or `timeout` seconds pass: `torch: running 40/300`."""
    deadline = None if timeout is None else time.monotonic() + timeout
    shown: dict[str, str] = {}
    while True:
        run = runs.get_run(run_id, logdir)
        for fw, job in run.frameworks.items():
            text = job.describe()
            if shown.get(fw) != text and job.state not in runs.TERMINAL:
                print(f"{fw}: {text}", flush=True)
            shown[fw] = text
        if all(j.state in runs.TERMINAL for j in run.frameworks.values()):
            return
        if deadline is not None and time.monotonic() >= deadline:
            return
        time.sleep(every_s if deadline is None else max(0.0, min(every_s, deadline - time.monotonic())))


def _outcome_text(result: object) -> str:
    if isinstance(result, runs.Failed):
        detail = "\n  ".join(result.stderr.splitlines()[-5:])
        return f"failed (exit {result.exit_code})" + (f"\n  {detail}" if detail else "")
    if isinstance(result, runs.TimedOut):
        return "timed out, still running"
    return type(result).__name__.lower()


def _faceoff_arguments(p: argparse.ArgumentParser) -> None:
    p.add_argument("--wait", action="store_true",
                   help="block until every pair ends, with progress, then print the speed table; exit 1 unless "
                        "all finished")
    p.add_argument("--timeout", type=float, help="with --wait: give up after this many seconds, all pairs together")
    add_spec_arguments(p)


@command("faceoff", "train one spec in every execution mode (PyTorch eager, torch.compile; TensorFlow eager, "
                    "tf.function, XLA) as three grouped pairs", _faceoff_arguments)
def _faceoff(args: argparse.Namespace) -> int:
    from twinboard import speed

    chosen = [f for f in speed.MODE_FIELDS.values() if f"spec.{f}" in vars(args)]
    if chosen:  # the face-off sets both modes itself, once for each pair
        args.parser.exit(2, f"{args.parser.prog}: error: {flag(chosen[0])}: a face-off runs every mode; leave it out\n")
    try:
        spec = spec_from_args(args)
        logdir = Path(args.logdir or config.logdir())
        faceoff = speed.launch_faceoff(spec, logdir)
    except SpecError as err:
        args.parser.exit(2, f"{args.parser.prog}: error: {spec_error_text(err)}\n")
    print(f"face-off {faceoff.group}:")
    for run in faceoff.launched:
        print(run.run_dir, flush=True)
    for name, failed in faceoff.failed:
        print(f"faceoff: {name}: launch failed: {failed.stderr}", file=sys.stderr)
    if faceoff.failed or not args.wait:
        return 1 if faceoff.failed else 0
    deadline = None if args.timeout is None else time.monotonic() + args.timeout
    try:
        for run in faceoff.launched:  # the queue runs them in this order, one pair at a time
            print(f"{run.run_id}:", flush=True)
            left = None if deadline is None else max(0.0, deadline - time.monotonic())
            _show_progress(run.run_id, left, logdir)
        results = {run.run_id: runs.wait(run.run_id, 0, logdir) for run in faceoff.launched}
    except KeyboardInterrupt:
        ids = " ".join(r.run_id for r in faceoff.launched)
        print(f"still running; stop them with: twinboard stop RUN, for RUN in {ids}", file=sys.stderr)
        return 130
    for run_id, outcomes in results.items():
        for fw, result in outcomes.items():
            print(f"{run_id} {fw}: {_outcome_text(result)}")
    measured = speed.read_runs(speed.group_folders(logdir, faceoff.group))
    table = speed.speed_table(measured)
    print(f"\n{speed.table_text(table)}\n\n{speed.lines_text(speed.framework_lines(measured, table))}")
    print("(step times: p50 and p95 of per-second means, the first step apart; first step and import in "
          "seconds; the Speed page has the charts)")
    return 0 if all(isinstance(r, runs.Finished) for o in results.values() for r in o.values()) else 1


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


def _export_arguments(p: argparse.ArgumentParser) -> None:
    p.add_argument("runs", nargs="+", metavar="RUN",
                   help="with -o: event runs as listed in the app (`<run-id>/torch`, `uploads/bob/train`), or a run "
                        "id for both of its frameworks; without -o: run ids whose models to export for deployment")
    p.add_argument("-o", "--output", type=Path,
                   help="file to write the scalars to: .csv or .parquet. Without it, each RUN's trained models are "
                        "exported in every deployment format of both frameworks and measured, into "
                        "<run>/<framework>/export/ (the Deploy page shows them)")
    p.add_argument("--tag", action="append", dest="tags", help="with -o: keep only this tag (repeatable) [all]")
    p.add_argument("--mapped", action="store_true", help="with -o: uploads' tags through their tag mapping")
    p.add_argument("--timeout", type=float, help="without -o: give up on a run's export after this many seconds")


@command("export", "write the scalars of runs to one CSV or Parquet file (-o), or export runs' models for "
                   "deployment", _export_arguments)
def _export(args: argparse.Namespace) -> int:
    if args.output is None:
        return _deploy_export(args)
    from twinboard import uploads

    root = Path(args.logdir or config.logdir())
    known = {r.name: r for r in runs.list_event_runs(root)}
    selection = []
    for name in args.runs:
        found = [known[name]] if name in known else [known[k] for k in known if k.startswith(name + "/")]
        if not found:
            print(f"export: no event run {name!r} in {root} (see `twinboard runs`)", file=sys.stderr)
            return 1
        selection += [(r.name, r.path) for r in found]
    suffix = args.output.suffix.lower()
    if suffix not in (".csv", ".parquet"):
        print(f"export: {args.output}: the file name must end in .csv or .parquet", file=sys.stderr)
        return 2
    df = uploads.collect(selection, args.tags, mapped=args.mapped, logdir=root)
    data = uploads.to_csv_bytes(df) if suffix == ".csv" else uploads.to_parquet_bytes(df)
    args.output.write_bytes(data)
    print(f"exported {len(df)} scalars of {len(selection)} runs to {args.output}")
    return 0


def _deploy_export(args: argparse.Namespace) -> int:
    """The deployment export of ended runs, one after another: twinboard.deploy.export_run starts the
    trainer-side exporters (this process imports no framework)."""
    from twinboard import deploy

    if args.tags or args.mapped:
        print("export: --tag and --mapped choose scalars, for -o FILE; without -o the models are exported",
              file=sys.stderr)
        return 2
    root = Path(args.logdir or config.logdir())
    found = []
    for run_id in args.runs:
        try:
            run = runs.get_run(run_id, root)
        except runs.RunNotFound:
            print(f"export: no run {run_id!r} in {root} (a run id from `twinboard runs`; uploads hold no model "
                  "to export)", file=sys.stderr)
            return 1
        if run.active:
            print(f"export: {run_id} is still {run.state}: export it once it has ended", file=sys.stderr)
            return 1
        unfinished = [fw for fw, job in run.frameworks.items()
                      if job.state != "finished" and not deploy.weights_path(run.run_dir / fw, fw).is_file()]
        if unfinished:
            print(f"export: {run_id}: {', '.join(unfinished)} did not finish and saved no weights; training it "
                  "again would make a model the run never had", file=sys.stderr)
            return 1
        found.append(run)
    status = 0
    for run in found:
        frameworks = tuple(run.frameworks) or ("torch", "tensorflow")
        retrain = [fw for fw in frameworks if not deploy.weights_path(run.run_dir / fw, fw).is_file()]
        note = (f"; no saved weights for {', '.join(retrain)}: trained again from spec.json first (the same seed, "
                "the same model)" if retrain else "")
        print(f"{run.run_id}: exporting {', '.join(frameworks)}{note}", flush=True)
        for done in deploy.export_run(run.run_dir, frameworks, args.timeout):
            ok, lines = deploy.outcome_lines(run.run_dir, done)
            print("\n".join(lines), file=sys.stdout if ok else sys.stderr)
            status = max(status, 0 if ok else 1)
        agreement, _ = deploy.read_agreement(run.run_dir)
        if agreement is not None:
            print(f"  agreement, ONNX vs TFLite: {'; '.join(deploy.agreement_lines(agreement))}")
    return status


def _users_arguments(p: argparse.ArgumentParser) -> None:
    p.add_argument("users_args", nargs=argparse.REMAINDER, metavar="add|list|remove|set-role|passwd ...",
                   help="`twinboard users add NAME --role admin|runner|viewer` and the like (users --help)")


@command("users", "manage team-mode users (names, roles, passwords)", _users_arguments)
def _users(args: argparse.Namespace) -> int:
    from twinboard import auth

    logdir = ["--logdir", str(args.logdir)] if args.logdir else []
    return auth.cli_users([*args.users_args, *logdir])


from twinboard.sweeps import cli as _sweep_cli  # noqa: F401  (registers `sweep`)


# --- entry point --------------------------------------------------------------------------------
def build_parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(prog="twinboard", description=__doc__.splitlines()[0])
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
