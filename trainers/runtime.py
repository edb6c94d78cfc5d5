"""The trainer process around the training: the command line, status.json (rewritten while a run is
live, atomically, as the run-folder contract writes every JSON file) and the exit codes.

Standard library and the contract only: a bad spec is refused before the seconds-long framework
import. ``trainers.loop`` builds the shared loop on top of this.
"""
from __future__ import annotations

import argparse
import signal
import sys
import time
import traceback
from dataclasses import dataclass
from pathlib import Path
from typing import Callable

from twinboard.contract import FRAMEWORKS, STATUS_JSON, RunSpec, SpecError, write_json

STATUS_MIN_INTERVAL_S = 0.5  # status.json rewrites on log steps are throttled to this (each ~0.4 ms with its fsync)


# --- command line --------------------------------------------------------------------------------
@dataclass(frozen=True)
class Paths:
    spec_path: Path  # the run's spec.json
    run_dir: Path  # the folder holding spec.json (and init.npz)
    logdir: Path  # the framework's event folder: run_dir/<framework> unless --logdir (the contract
    # names each framework's event folder after the framework: FRAMEWORKS)


def parse_args(framework: str, argv: list[str] | None = None) -> tuple[RunSpec, Paths]:
    """Reads and validates the spec; on any problem prints one line and exits 2."""
    assert framework in FRAMEWORKS, framework
    p = argparse.ArgumentParser(prog=f"python -m trainers.{'torch' if framework == 'torch' else 'tf'}_trainer",
                                description=f"Train one {framework} run described by a spec.json.")
    p.add_argument("spec", type=Path, help="path to the run's spec.json")
    p.add_argument("--logdir", type=Path, default=None,
                   help=f"event folder (default: the spec's folder / {framework})")
    args = p.parse_args(argv)
    spec_path = args.spec.resolve()
    logdir = (args.logdir or spec_path.parent / framework).resolve()
    paths = Paths(spec_path, spec_path.parent, logdir)
    try:
        spec = RunSpec.load(spec_path)
    except (SpecError, OSError, ValueError, TypeError) as exc:
        kind = "bad spec" if isinstance(exc, (SpecError, ValueError, TypeError)) else "cannot read spec"
        msg = f"{framework} trainer: {kind} {spec_path}: {exc}"
        print(msg, file=sys.stderr)
        if spec_path.parent.is_dir():  # let the dashboard see why, when it can
            StatusFile(logdir, 0).failed(0, msg)
        sys.exit(2)
    return spec, paths


# --- status.json ---------------------------------------------------------------------------------
class StatusFile:
    """``<logdir>/status.json``: {"state", "step", "total_steps", "updated", "error"}."""

    def __init__(self, logdir: Path, total_steps: int):
        self.path = Path(logdir) / STATUS_JSON
        self.total_steps = total_steps
        self.step = 0  # the last step reported to running(); a failure is reported at it
        self._last = 0.0

    def _write(self, state: str, step: int, error: str | None) -> None:
        self._last = time.time()
        # A spec refused before the trainer made its event folder is still reported there.
        self.path.parent.mkdir(parents=True, exist_ok=True)
        write_json(self.path, {"state": state, "step": int(step), "total_steps": int(self.total_steps),
                               "updated": self._last, "error": error}, sort_keys=False)

    def running(self, step: int, force: bool = False) -> None:
        self.step = step
        # Throttled: at log_every=1 a rewrite per step would cost more than the step itself.
        if force or time.time() - self._last >= STATUS_MIN_INTERVAL_S:
            self._write("running", step, None)

    def finished(self, step: int) -> None:
        self._write("finished", step, None)

    def failed(self, step: int | None, error: str) -> None:
        self._write("failed", self.step if step is None else step, error)


# --- exit codes ----------------------------------------------------------------------------------
def run_guarded(framework: str, body: Callable[[RunSpec, Paths, StatusFile], None],
                argv: list[str] | None = None) -> int:
    """Spec errors exit 2; any other failure marks status.json failed, prints one line and the
    traceback to stderr, and exits 1. SIGTERM (the launcher's stop) counts as a failure too."""
    spec, paths = parse_args(framework, argv)
    status = StatusFile(paths.logdir, 0)

    def on_term(signum, _frame):
        raise KeyboardInterrupt(f"stopped by signal {signum}")

    signal.signal(signal.SIGTERM, on_term)
    try:
        body(spec, paths, status)
        return 0
    except BaseException as exc:  # noqa: BLE001 - reported and turned into an exit status
        if isinstance(exc, SystemExit) and not exc.code:
            return 0
        msg = f"{type(exc).__name__}: {exc}"
        try:
            status.failed(None, msg)
        except OSError:
            pass
        print(f"{framework} trainer failed: {msg}", file=sys.stderr)
        traceback.print_exc(file=sys.stderr)
        return 1
