"""The trainer process around the training: the command line, the files the dashboard reads while a
run is live (status.json, settings.json, written atomically) and the exit codes.

Standard library only: a bad spec is refused before the seconds-long framework
import. ``trainers.common`` builds the shared loop on top of this and re-exports these names.
"""
from __future__ import annotations

import argparse
import json
import os
import signal
import sys
import time
import traceback
from dataclasses import dataclass
from pathlib import Path
from typing import Any, Callable

from twinboard.contract import RunSpec, SpecError

FRAMEWORK_DIRS = {"torch": "torch", "tensorflow": "tensorflow"}  # framework -> event folder name
STATUS_MIN_INTERVAL_S = 0.5  # status.json rewrites on log steps are throttled to this (each costs ~0.1 ms)


# --- command line --------------------------------------------------------------------------------
@dataclass(frozen=True)
class Paths:
    spec_path: Path  # the run's spec.json
    run_dir: Path  # the folder holding spec.json (and init.npz)
    logdir: Path  # the framework's event folder: run_dir/<framework> unless --logdir


def parse_args(framework: str, argv: list[str] | None = None) -> tuple[RunSpec, Paths]:
    """Reads and validates the spec; on any problem prints one line and exits 2."""
    p = argparse.ArgumentParser(prog=f"python -m trainers.{'torch' if framework == 'torch' else 'tf'}_trainer",
                                description=f"Train one {framework} run described by a spec.json.")
    p.add_argument("spec", type=Path, help="path to the run's spec.json")
    p.add_argument("--logdir", type=Path, default=None,
                   help=f"event folder (default: the spec's folder / {FRAMEWORK_DIRS[framework]})")
    args = p.parse_args(argv)
    spec_path = args.spec.resolve()
    logdir = (args.logdir or spec_path.parent / FRAMEWORK_DIRS[framework]).resolve()
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


# --- files written atomically --------------------------------------------------------------------
def atomic_write_bytes(path: Path, payload: bytes) -> None:
    """Readers never see a half-written file: write a private temp file, then rename over."""
    path.parent.mkdir(parents=True, exist_ok=True)
    tmp = path.with_name(f".{path.name}.{os.getpid()}.tmp")
    tmp.write_bytes(payload)
    os.replace(tmp, path)


def atomic_write_json(path: Path, obj: Any) -> None:
    atomic_write_bytes(path, (json.dumps(obj, indent=2, sort_keys=False) + "\n").encode())


class StatusFile:
    """``<logdir>/status.json``: {"state", "step", "total_steps", "updated", "error"}."""

    def __init__(self, logdir: Path, total_steps: int):
        self.path = Path(logdir) / "status.json"
        self.total_steps = total_steps
        self.step = 0  # the last step reported to running(); a failure is reported at it
        self._last = 0.0

    def _write(self, state: str, step: int, error: str | None) -> None:
        self._last = time.time()
        atomic_write_json(self.path, {"state": state, "step": int(step), "total_steps": int(self.total_steps),
                                      "updated": self._last, "error": error})

    def running(self, step: int, force: bool = False) -> None:
        self.step = step
        # Throttled: at log_every=1 a rewrite per step would cost more than the step itself.
        if force or time.time() - self._last >= STATUS_MIN_INTERVAL_S:
            self._write("running", step, None)

    def finished(self, step: int) -> None:
        self._write("finished", step, None)

    def failed(self, step: int | None, error: str) -> None:
        self._write("failed", self.step if step is None else step, error)


# --- settings.json -------------------------------------------------------------------------------
SETTINGS_KEYS = (
    "framework", "framework_version", "logger", "execution_mode", "device", "threads", "math_library",
    "dtype", "seed", "init", "init_sha256", "optimizer", "loss", "model", "layers", "total_params",
    "batch_norm", "dropout", "data_layout", "data", "batch_size", "epochs", "steps_per_epoch",
    "total_steps", "log_every", "histogram_every", "histogram_bins", "validation", "python",
)


def write_settings(logdir: Path, **settings: Any) -> dict[str, Any]:
    """Both trainers pass exactly SETTINGS_KEYS, so the Parity page can diff them key by key."""
    missing = [k for k in SETTINGS_KEYS if k not in settings]
    extra = [k for k in settings if k not in SETTINGS_KEYS]
    assert not missing and not extra, f"settings keys: missing {missing}, unexpected {extra}"
    ordered = {k: settings[k] for k in SETTINGS_KEYS}
    atomic_write_json(Path(logdir) / "settings.json", ordered)
    return ordered


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
