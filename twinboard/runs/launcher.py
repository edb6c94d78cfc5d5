"""Matched training runs as background jobs: launch, queue, status, stop; all state on disk.

A run folder `<logdir>/<run-id>/` holds `run.json` (id, created, spec, backend: the static facts) and
`spec.json` (what both trainers read). Each framework job goes through a `Backend`; nothing outside
the backend sees a pid or a local path of a running trainer. `LocalBackend` (twinboard.runs.local:
one detached dispatcher per logdir running a FIFO queue of whole pairs, liveness from /proc) is the
default and, so far, the only one. The outcome and status types live in twinboard.runs.state; callers take every name from
`twinboard.runs`.
"""
from __future__ import annotations

import logging
import os
import re
import shlex
import shutil
import socket
import sys
import time
from pathlib import Path
from typing import Protocol, Sequence

from twinboard import config
from twinboard.contract import FRAMEWORKS, RUN_JSON, SPEC_JSON, UPLOADS, RunSpec, SpecError, read_json, write_json
from twinboard.contract.limits import check_spec
from twinboard.datafiles import check_launch as check_data
from twinboard.runs import plugins
from twinboard.runs.local import LocalBackend
from twinboard.runs.ray_backend import RayBackend
from twinboard.runs.state import (
    TERMINAL, Failed, Finished, JobStatus, Launched, LauncherError, LaunchRefused, RunNotFound, RunStatus, Stopped,
    TimedOut)

log = logging.getLogger(__name__)

TRAINER_MODULES = {"torch": "trainers.torch_trainer", "tensorflow": "trainers.tf_trainer"}
_SAFE_NAME = re.compile(r"[A-Za-z0-9][A-Za-z0-9._-]{0,99}")
MAX_OWNER_CHARS = 200  # a user name from the auth layer; it is written to run.json and every ticket


# --- backends -----------------------------------------------------------------------------------
class Backend(Protocol):
    """Where trainers run. A cluster backend (Ray jobs, logs on shared storage) implements the same."""
    name: str

    def submit(self, run_dir: Path, logdir: Path, commands: dict[str, list[str]],
               owner: str | None = None, **options) -> Failed | None:
        """Start or queue the jobs: None, or Failed with the jobs recorded as failed. Raises LaunchRefused
        (nothing started: the run folder goes) or OSError, having taken back its own files. `options`:
        the backend's own (the Ray cluster's address), given only when the launch names them."""
    def jobs(self, run_dir: Path, frameworks: list[str], created: float) -> dict[str, JobStatus]:
        """Every job's status, read at one moment: never one half of a pair started and the other not."""
    def request_stop(self, run_dir: Path, framework: str, grace: float) -> None: ...
    def kill(self, run_dir: Path, framework: str) -> None: ...
    def pid(self, run_dir: Path, framework: str) -> int | None: ...


BACKENDS: dict[str, Backend] = {"local": LocalBackend(), "ray": RayBackend()}


# --- the API the pages and the CLI call ---------------------------------------------------------
def trainer_command(framework: str, spec_path: Path, template: Sequence[str] | str | None = None) -> list[str]:
    """The trainer's argv. `template` (or $TWINBOARD_TRAINER_CMD) replaces the default; `{python}`,
    `{framework}` and `{spec}` in it are filled in, and the spec path is appended if `{spec}` is absent."""
    template = template if template is not None else os.environ.get("TWINBOARD_TRAINER_CMD") or None
    if template is None:
        return [sys.executable, "-m", TRAINER_MODULES[framework], str(spec_path)]
    parts = shlex.split(template) if isinstance(template, str) else list(template)
    argv = [p.replace("{python}", sys.executable).replace("{framework}", framework).replace("{spec}", str(spec_path))
            for p in parts]
    return argv if any("{spec}" in p for p in parts) else [*argv, str(spec_path)]


def _root(logdir: Path | str | None) -> Path:
    if logdir is None:
        return config.logdir()
    root = Path(logdir).expanduser().absolute()
    root.mkdir(parents=True, exist_ok=True)
    return root


def launch(spec: RunSpec, logdir: Path | str | None = None, name: str | None = None, *,
           backend: str = "local", trainer_cmd: Sequence[str] | str | None = None,
           owner: str | None = None, address: str | None = None, extra: dict | None = None) -> Launched | Failed:
    """Start a matched pair (or queue it): a run folder with run.json and spec.json, one job per framework.

    `backend` "local" (this machine's queue) or "ray" (`address`: the cluster, ray://HOST:PORT,
    HOST:PORT, http://HOST:8265 or auto; default $TWINBOARD_RAY_ADDRESS, else auto; recorded in run.json).
    `extra`: more facts for run.json, written before any trainer starts (a sweep's id and configuration,
    which the trainers' hparams records name); the launcher's own keys win.
    `owner` (the signed-in user, in team mode) is recorded in run.json and counted against the
    per-user queue cap. A refused or failed launch (a cap, a full disk, a read-only logdir) leaves no
    run folder behind; one whose trainers cannot be started leaves the run with both jobs failed."""
    if backend not in BACKENDS:
        return Failed(None, f"backend {backend!r}: one of {', '.join(BACKENDS)}")
    if address is not None and backend != "ray":
        return Failed(None, f"an address is for the ray backend; the {backend} backend runs on this machine")
    if owner is not None and (not isinstance(owner, str) or not 0 < len(owner) <= MAX_OWNER_CHARS):
        return Failed(None, f"owner {str(owner)[:MAX_OWNER_CHARS]!r}: a user name of 1 to {MAX_OWNER_CHARS} characters")
    if name is not None and (not _SAFE_NAME.fullmatch(name) or name == UPLOADS):
        return Failed(None, f"run name {name!r}: use up to 100 letters, digits, '.', '_' or '-', not starting "
                            f"with '.' or '-', and not {UPLOADS!r}")
    run_dir = root = checked = None
    try:
        root = _root(logdir)
        try:  # this server's limits (an admin may lower them); RunSpec itself checked the hard ceilings
            check_spec(spec, root)
            check_data(spec, root)  # task=file: the data file is there, passes the check, costs within limits
        except SpecError as err:
            return Failed(None, str(err))
        if name is not None and (root / name).exists():  # a name the user chose is never silently changed
            return Failed(None, f"a run named {name!r} exists already; choose another name")
        if plugins.is_plugin(spec.model):  # both models built and checked first: a refusal makes nothing
            checked = plugins.preflight(spec, root)  # PluginRefused is a LaunchRefused
        base = name or f"{time.strftime('%Y%m%d-%H%M%S')}-{spec.task}-{spec.model}-{spec.optimizer}"
        for n in range(1, 10_000):  # two automatic names in one second: -2, -3 ...
            candidate = root / (base if n == 1 else f"{base}-{n}")
            try:
                candidate.mkdir()
            except FileExistsError:
                continue
            run_dir = candidate  # ours from here on: a launch that fails removes it
            break
        else:
            return Failed(None, f"{base}: 9999 runs of that name exist already")
        spec.save(run_dir / SPEC_JSON)
        if checked is not None:  # plan.json and (init=shared) init.npz: what both trainers read
            checked.install(run_dir)
        commands = {fw: trainer_command(fw, run_dir / SPEC_JSON, trainer_cmd) for fw in FRAMEWORKS}
        write_json(run_dir / RUN_JSON, {
            **(extra or {}), "id": run_dir.name, "name": name, "created": time.time(), "spec": spec.to_dict(),
            "backend": backend, "frameworks": list(FRAMEWORKS), "host": socket.gethostname(), "owner": owner,
            **({"address": address} if address is not None else {})})
        options = {"address": address} if address is not None else {}
        failure = BACKENDS[backend].submit(run_dir, root, commands, owner, **options)
    except (OSError, LaunchRefused) as err:
        if run_dir is not None:  # ours, made a moment ago: nothing half-made is left to list
            shutil.rmtree(run_dir, ignore_errors=True)
        if isinstance(err, LaunchRefused):
            return Failed(None, str(err))
        return Failed(None, f"cannot create the run in {run_dir or root or logdir or 'the logdir'}: {err}")
    finally:
        if checked is not None:
            checked.discard()
    return failure or Launched(run_dir.name, run_dir)


def _run_status(run_dir: Path) -> RunStatus:
    run = read_json(run_dir / RUN_JSON)
    if run is None or not isinstance(run.get("spec"), dict) or not isinstance(run.get("created"), (int, float)):
        raise LauncherError(f"{run_dir.name}: unreadable run.json")
    frameworks = [str(fw) for fw in (run.get("frameworks") if isinstance(run.get("frameworks"), list) else FRAMEWORKS)]
    try:
        jobs = _backend(run.get("backend", "local")).jobs(run_dir, frameworks, run["created"])
    except (LauncherError, OSError, ValueError, TypeError, KeyError, AttributeError) as err:
        jobs = {fw: JobStatus("failed", error=f"unreadable jobs: {err}") for fw in frameworks}
    return RunStatus(run_dir.name, run_dir, run["spec"], float(run["created"]), jobs, str(run.get("backend", "local")))


def _backend(name: object) -> Backend:
    if name not in BACKENDS:
        raise LauncherError(f"unknown backend {name!r}")
    return BACKENDS[name]


def list_runs(logdir: Path | str | None = None) -> list[RunStatus]:
    """Every launcher run in the logdir, oldest first; folders without a readable run.json are skipped."""
    root, runs = _root(logdir), []
    for run_dir in root.iterdir():
        if run_dir.name.startswith(".") or run_dir.name == UPLOADS or not (run_dir / RUN_JSON).is_file():
            continue
        try:
            runs.append(_run_status(run_dir))
        except LauncherError as err:
            log.warning("skipping %s", err)
    return sorted(runs, key=lambda r: (r.created, r.run_id))


def get_run(run_id: str, logdir: Path | str | None = None) -> RunStatus:
    root = _root(logdir)
    if not _SAFE_NAME.fullmatch(run_id or "") or not (root / run_id / RUN_JSON).is_file():
        raise RunNotFound(f"no run {run_id!r} in {root}")
    return _run_status(root / run_id)


def stop(run_id: str, logdir: Path | str | None = None, grace: float = 5.0) -> RunStatus:
    """Stop both jobs: a queued one leaves the queue; a running one gets SIGTERM on its process group,
    SIGKILL after `grace` seconds. Returns once every job has ended (the state it ended in)."""
    run = get_run(run_id, logdir)
    backend = _backend(run.backend)
    for fw, job in run.frameworks.items():
        if job.state not in TERMINAL:  # a job found dead stays failed; it is not "stopped"
            backend.request_stop(run.run_dir, fw, grace)
    deadline = time.monotonic() + grace + 5.0  # the dispatcher escalates at `grace`; this is if it cannot
    # Each job, not the pair's one state: a pair whose other side failed reads "failed" at once.
    while time.monotonic() < deadline and any(
            j.state not in TERMINAL for j in get_run(run_id, logdir).frameworks.values()):
        time.sleep(0.05)
    for fw, job in get_run(run_id, logdir).frameworks.items():
        if job.state not in TERMINAL:
            backend.kill(run.run_dir, fw)
    return get_run(run_id, logdir)


def wait(run_id: str, timeout: float | None = None, logdir: Path | str | None = None,
         poll: float = 0.25) -> dict[str, Finished | Failed | Stopped | TimedOut]:
    """Block until both jobs end (or `timeout` s pass); each framework's outcome."""
    deadline = None if timeout is None else time.monotonic() + timeout
    while True:
        run = get_run(run_id, logdir)
        if all(j.state in TERMINAL for j in run.frameworks.values()) or (
                deadline is not None and time.monotonic() >= deadline):
            break
        time.sleep(poll)
    out: dict[str, Finished | Failed | Stopped | TimedOut] = {}
    for fw, job in run.frameworks.items():
        if job.state == "finished":
            out[fw] = Finished(job.exit_code)
        elif job.state == "failed":
            out[fw] = Failed(job.exit_code, job.error or "")
        elif job.state == "stopped":
            out[fw] = Stopped(job.exit_code)
        else:
            out[fw] = TimedOut(_backend(run.backend).pid(run.run_dir, fw))
    return out
