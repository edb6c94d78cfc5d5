"""The `twinboard` commands that launch, watch and stop pairs, and export what ended runs left:
launch, faceoff, runs, stop, export.

Registered in twinboard.cli's COMMANDS by importing this module (twinboard.cli does, last). The face-off
and both exports live here, not beside twinboard.speed, twinboard.uploads and twinboard.deploy: those
packages load pandas and plotly when imported, and every `twinboard` command would pay for it before
parsing its flags. They are imported inside the commands that need them, as twinboard.auth is by users.
"""
from __future__ import annotations

import argparse
import sys
import time
from pathlib import Path

from twinboard import config, runs
from twinboard.cli import add_spec_arguments, command, flag, spec_error_text, spec_from_args
from twinboard.contract import SpecError


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
