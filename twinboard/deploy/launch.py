"""`twinboard export RUN` without -o: export a run that has ended, in both frameworks.

The dashboard's process imports no framework, so the export runs where the training ran: one
`python -m trainers.deploy FRAMEWORK <run>/spec.json` process per framework, both at once (each
measures with one thread), their output in <run>/<framework>.export.log. Each loads the weights the
run saved at the end of training, or, for a run that saved none, trains it again from its spec.json
(trainers/deploy/__main__.py says why that is the same model).
"""
from __future__ import annotations

import subprocess
import sys
import time
from dataclasses import dataclass
from pathlib import Path

from twinboard.contract import FRAMEWORKS, SPEC_JSON
from twinboard.contract.deploy import EXPORT_MODULE, weights_path

REPO = Path(__file__).resolve().parents[2]  # where `trainers` is importable from
LOG_SUFFIX = ".export.log"
TAIL_CHARS = 2000


@dataclass(frozen=True)
class Exported:
    framework: str
    exit_code: int | None  # None: still running at the timeout (killed)
    seconds: float
    log: Path
    retrained: bool  # no saved weights: the run was trained again

    @property
    def ok(self) -> bool:
        return self.exit_code == 0

    def tail(self) -> str:
        try:
            return self.log.read_text(errors="replace")[-TAIL_CHARS:]
        except OSError:
            return ""


def export_command(framework: str, spec_path: Path) -> list[str]:
    return [sys.executable, "-m", EXPORT_MODULE, framework, str(spec_path)]


def export_run(run_dir: Path, frameworks: tuple[str, ...] = FRAMEWORKS, timeout: float | None = None) -> list[Exported]:
    """Start one exporter per framework, wait for both (up to `timeout` s, then kill them)."""
    run_dir = Path(run_dir)
    spec_path = run_dir / SPEC_JSON
    started = time.monotonic()
    procs = []
    for fw in frameworks:
        log = run_dir / f"{fw}{LOG_SUFFIX}"
        with open(log, "wb") as out:
            procs.append((fw, log, not weights_path(run_dir / fw, fw).is_file(),
                          subprocess.Popen(export_command(fw, spec_path), cwd=REPO, stdin=subprocess.DEVNULL,
                                           stdout=out, stderr=subprocess.STDOUT)))
    results = []
    try:
        for fw, log, retrained, proc in procs:
            left = None if timeout is None else max(0.0, timeout - (time.monotonic() - started))
            try:
                code: int | None = proc.wait(left)
            except subprocess.TimeoutExpired:
                code = None
            results.append(Exported(fw, code, time.monotonic() - started, log, retrained))
    finally:  # a timeout or Ctrl-C: no exporter outlives the command
        for _fw, _log, _retrained, proc in procs:
            if proc.poll() is None:
                proc.kill()
                proc.wait()
    return results


def outcome_lines(run_dir: Path, done: Exported) -> tuple[bool, list[str]]:
    """(ok, lines) for the command line: each artifact's size, latency and accuracy, or why it is
    missing; a failed exporter's last log lines."""
    from twinboard.deploy.reader import read_deploy

    if not done.ok:
        what = "timed out" if done.exit_code is None else f"failed (exit {done.exit_code})"
        return False, [f"  {done.framework}: {what} after {done.seconds:.0f} s; log {done.log}",
                       *(f"    {line}" for line in done.tail().splitlines()[-8:])]
    dep, why = read_deploy(Path(run_dir) / done.framework, done.framework)
    if dep is None:
        return False, [f"  {done.framework}: no deploy.json written ({why or 'missing'}); log {done.log}"]
    lines = [f"  {done.framework}: {len(dep.artifacts)} artifacts in {dep.folder} ({done.seconds:.0f} s)"]
    for a in dep.artifacts:
        if a["error"]:
            lines.append(f"    {a['format']}: not available: {a['error']}")
            continue
        size = f"{a['bytes'] / 1e3:,.1f} KB, " if a["bytes"] is not None else ""
        lat = f"p50 {a['latency_us_p50']:.3g} us" if a["latency_us_p50"] is not None else "latency not measured"
        acc = f", val accuracy {a['val_accuracy']:.4f}" if a["val_accuracy"] is not None else ""
        lines.append(f"    {a['format']}: {size}{lat}{acc}")
    return True, lines
