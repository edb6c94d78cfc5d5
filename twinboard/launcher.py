"""Matched training runs as background processes: launch, queue, status, stop; all state on disk.

A run folder `<logdir>/<run-id>/` holds `run.json` (id, created, spec, backend: the static facts) and
`spec.json` (what both trainers read). Each framework job goes through a `Backend`; nothing outside
this module sees a pid or a local path of a running trainer. `LocalBackend`, the default, keeps per job:

  <fw>.job.json         the job's facts, rewritten atomically, only by its owner: the launcher until the
                        supervisor registers, then the supervisor (state, pids, times, exit code, error)
  <fw>.stop             stop requested (written by `stop`)
  <fw>.stdout/.stderr   the trainer's output; <fw>.supervisor.log the supervisor's own
  <logdir>/.queue/      FIFO tickets `0000000042.json` and slot files `slot-<i>` held with flock

Per job a small detached supervisor (`python -m twinboard.launcher supervise RUN_DIR FW`, its own
session, so restarting the app kills nothing) waits until its ticket heads the queue and a slot is
free, spawns the trainer in its own process group holding the slot's flock (the kernel frees the slot
when both die, so a crash never leaks one), waits, and records the outcome. Status is derived on every
read from the job file, the trainer's `<fw>/status.json` and a liveness check (pid alive, not a zombie,
same start time and boot, so a reused pid is not mistaken for the trainer): a job whose processes are
gone with no recorded end is `failed` ("process died"), or `stopped` if a stop was requested.
"""
from __future__ import annotations

import fcntl
import json
import logging
import os
import re
import shlex
import signal
import socket
import subprocess
import sys
import time
from contextlib import contextmanager
from dataclasses import dataclass, field
from pathlib import Path
from typing import Callable, Iterator, Protocol, Sequence

from trainers.spec import RunSpec
from twinboard import config

log = logging.getLogger(__name__)

FRAMEWORKS = ("torch", "tensorflow")
TRAINER_MODULES = {"torch": "trainers.torch_trainer", "tensorflow": "trainers.tf_trainer"}
STATES = ("queued", "running", "finished", "failed", "stopped")
TERMINAL = frozenset({"finished", "failed", "stopped"})
UPLOADS = "uploads"  # <logdir>/uploads/ holds imported event files, not launcher runs
REPO = Path(__file__).resolve().parents[1]  # cwd and PYTHONPATH of every child: `-m trainers.X` resolves
POLL_S = 0.2  # how often a supervisor looks at its queue ticket, its stop file and its trainer
REGISTER_S = 60.0  # a job whose supervisor has not registered after this long never will
REGISTER_WAIT_S = 10.0  # launch() waits this long for the supervisors to register
STDERR_LINES = 20  # lines of the trainer's stderr kept as a failed job's error
_SAFE_NAME = re.compile(r"[A-Za-z0-9][A-Za-z0-9._-]{0,99}")


# --- outcomes and status ------------------------------------------------------------------------
@dataclass(frozen=True)
class Launched:
    run_id: str
    run_dir: Path


@dataclass(frozen=True)
class Failed:
    exit_code: int | None  # None: no exit status (never started, died unobserved)
    stderr: str  # the stderr tail or the reason


@dataclass(frozen=True)
class Finished:
    exit_code: int | None  # 0, or None if the supervisor died and the trainer's status.json says finished


@dataclass(frozen=True)
class Stopped:
    exit_code: int | None


@dataclass(frozen=True)
class TimedOut:
    pid: int | None  # the trainer's local pid while it runs; None when queued or not a local process


class LauncherError(Exception):
    """A run that cannot be read or found; the message names it."""


class RunNotFound(LauncherError, LookupError):
    pass


@dataclass(frozen=True)
class JobStatus:
    state: str  # one of STATES
    step: int | None = None  # last step the trainer reported in status.json
    total_steps: int | None = None  # the trainer's total, from status.json; None until it says
    exit_code: int | None = None  # trainer's exit status; negative: killed by that signal
    error: str | None = None  # failed: stderr tail (last 20 lines), else status.json's error, else why
    started: float | None = None  # unix s the trainer process started
    ended: float | None = None  # unix s it ended (or was found gone)

    def describe(self) -> str:
        """`running 40/120`, `failed (exit 3)`: one short phrase for tables and the CLI."""
        of = f" {self.step or 0}/{self.total_steps}" if self.total_steps else ""
        if self.state == "failed":
            return "failed" + (f" (exit {self.exit_code})" if self.exit_code is not None else "")
        return self.state + ("" if self.state == "queued" else of)


@dataclass(frozen=True)
class RunStatus:
    run_id: str
    run_dir: Path
    spec: dict
    created: float  # unix s
    frameworks: dict[str, JobStatus] = field(default_factory=dict)
    backend: str = "local"

    @property
    def state(self) -> str:
        """One state for the pair: the first of failed, running, queued, stopped that any job is in."""
        states = {job.state for job in self.frameworks.values()}
        return next((s for s in ("failed", "running", "queued", "stopped") if s in states), "finished")


# --- small files --------------------------------------------------------------------------------
def _read_json(path: Path) -> dict | None:
    """The object in a JSON file; None if missing, unreadable or not an object."""
    try:
        data = json.loads(path.read_text())
    except (OSError, ValueError):
        return None
    return data if isinstance(data, dict) else None


def _write_json(path: Path, data: dict) -> None:
    """Atomically: a reader sees the old file or the new one, never half of one."""
    tmp = path.with_name(f".{path.name}.{os.getpid()}.tmp")
    tmp.write_text(json.dumps(data, indent=2, sort_keys=True) + "\n")
    os.replace(tmp, path)


def _tail(path: Path, lines: int = STDERR_LINES) -> str:
    try:
        with open(path, "rb") as f:
            f.seek(max(0, os.fstat(f.fileno()).st_size - 16384))
            text = f.read().decode("utf-8", "replace")
    except OSError:
        return ""
    return "\n".join(text.rstrip().splitlines()[-lines:])


# --- process identity: pid + start time + boot, so a reused pid is not our process ------------
def _boot_id() -> str:
    try:
        return Path("/proc/sys/kernel/random/boot_id").read_text().strip()
    except OSError:
        return ""


def _proc_stat(pid: int) -> tuple[str, int] | None:
    """(state letter, start time in clock ticks since boot) from /proc, or None if no such process."""
    try:
        data = Path(f"/proc/{pid}/stat").read_bytes()
    except OSError:
        return None
    rest = data[data.rindex(b")") + 2:].split()  # after "pid (comm) ": field 3 (state) onward
    return rest[0].decode(), int(rest[19])  # field 22: starttime


def _identity(pid: int) -> dict:
    stat = _proc_stat(pid)
    return {"pid": pid, "start": stat[1] if stat else None, "boot": _boot_id()}


def _alive(ident: dict | None) -> bool:
    if not isinstance(ident, dict) or not isinstance(ident.get("pid"), int):
        return False
    if not Path("/proc/self/stat").exists():  # no procfs: the pid is all there is to go on
        try:
            os.kill(ident["pid"], 0)
            return True
        except ProcessLookupError:
            return False
        except PermissionError:
            return True
    stat = _proc_stat(ident["pid"])
    return (stat is not None and stat[0] not in "ZX" and stat[1] == ident.get("start")
            and ident.get("boot") == _boot_id())


def _signal_group(pgid: int | None, sig: int) -> None:
    if isinstance(pgid, int) and pgid > 1:
        try:
            os.killpg(pgid, sig)
        except (ProcessLookupError, PermissionError):
            pass


# --- the queue: FIFO tickets and N flock'd slots under <logdir>/.queue --------------------------
class _Queue:
    def __init__(self, logdir: Path):
        self.dir = Path(logdir) / ".queue"
        self.dir.mkdir(parents=True, exist_ok=True)

    @contextmanager
    def lock(self) -> Iterator[None]:
        fd = os.open(self.dir / "lock", os.O_RDWR | os.O_CREAT, 0o644)
        try:
            fcntl.flock(fd, fcntl.LOCK_EX)
            yield
        finally:
            os.close(fd)  # releases the flock

    def tickets(self) -> list[Path]:
        return sorted(self.dir.glob("[0-9]*.json"))

    def enqueue(self, run_dir: Path, framework: str) -> str:
        """A new ticket at the back of the queue (call under lock())."""
        seq = self.dir / "seq"
        try:
            n = int(seq.read_text())
        except (OSError, ValueError):
            n = max((int(t.stem) for t in self.tickets() if t.stem.isdigit()), default=0)
        n += 1
        seq.write_text(str(n))
        name = f"{n:010d}.json"
        _write_json(self.dir / name, {"run_dir": str(run_dir), "framework": framework, "created": time.time()})
        return name

    def _live(self, ticket: Path) -> bool:
        """A ticket is live while its job is queued and its supervisor alive (or still starting)."""
        t = _read_json(ticket) or {}
        if not isinstance(t.get("run_dir"), str) or not isinstance(t.get("framework"), str):
            return False
        job = _read_json(_job_path(Path(t["run_dir"]), t["framework"]))
        if not job or job.get("state") != "queued" or job.get("ticket") != ticket.name:
            return False
        if job.get("supervisor"):
            return _alive(job["supervisor"])
        created = t.get("created")
        return isinstance(created, (int, float)) and time.time() - created < REGISTER_S

    def wait_for_slot(self, ticket: str, slots: int, stop_requested: Callable[[], bool],
                      run_dir: Path, framework: str) -> int | None:
        """Block until `ticket` heads the queue and a slot is free; the slot's locked fd, or None if stopped."""
        while True:
            with self.lock():
                if stop_requested():
                    (self.dir / ticket).unlink(missing_ok=True)
                    return None
                if not (self.dir / ticket).exists():  # judged stale while we started: rejoin at the back
                    ticket = self.enqueue(run_dir, framework)
                    job = _read_json(_job_path(run_dir, framework)) or {}
                    _write_json(_job_path(run_dir, framework), {**job, "ticket": ticket})
                head = None
                for t in self.tickets():
                    if self._live(t):
                        head = t.name
                        break
                    t.unlink(missing_ok=True)  # its supervisor died: it would block the queue forever
                if head == ticket:
                    for i in range(slots):
                        fd = os.open(self.dir / f"slot-{i}", os.O_RDWR | os.O_CREAT, 0o644)
                        try:
                            fcntl.flock(fd, fcntl.LOCK_EX | fcntl.LOCK_NB)
                        except BlockingIOError:
                            os.close(fd)
                            continue
                        (self.dir / ticket).unlink(missing_ok=True)
                        return fd
            time.sleep(POLL_S)


# --- backends -----------------------------------------------------------------------------------
class Backend(Protocol):
    """Where trainers run. A cluster backend (Ray jobs, logs on shared storage) implements the same."""
    name: str

    def submit(self, run_dir: Path, logdir: Path, commands: dict[str, list[str]]) -> Failed | None: ...
    def job_status(self, run_dir: Path, framework: str, created: float) -> JobStatus: ...
    def request_stop(self, run_dir: Path, framework: str, grace: float) -> None: ...
    def kill(self, run_dir: Path, framework: str) -> None: ...
    def pid(self, run_dir: Path, framework: str) -> int | None: ...


def _job_path(run_dir: Path, framework: str) -> Path:
    return Path(run_dir) / f"{framework}.job.json"


def _stop_path(run_dir: Path, framework: str) -> Path:
    return Path(run_dir) / f"{framework}.stop"


def _int_or_none(value: object) -> int | None:
    return value if isinstance(value, int) and not isinstance(value, bool) else None


def _failure_text(run_dir: Path, framework: str, exit_code: int | None, status: dict) -> str:
    text = _tail(Path(run_dir) / f"{framework}.stderr") or str(status.get("error") or "")
    if text:
        return text
    if exit_code is not None and exit_code < 0:
        return f"killed by signal {signal.Signals(-exit_code).name}"
    return f"exited with code {exit_code}"


class LocalBackend:
    name = "local"
    _children: list[subprocess.Popen] = []  # our supervisors, reaped on the next launch (no zombies)

    def submit(self, run_dir: Path, logdir: Path, commands: dict[str, list[str]]) -> Failed | None:
        try:
            slots = config.max_procs()
        except ValueError as err:
            return self._abandon(run_dir, list(commands), str(err))
        queue = _Queue(logdir)
        with queue.lock():  # both tickets at once, in order: pairs launched one after another queue in order
            for fw, cmd in commands.items():
                _write_json(_job_path(run_dir, fw), {
                    "framework": fw, "state": "queued", "queued": time.time(), "cmd": cmd, "slots": slots,
                    "logdir": str(logdir), "supervisor": None, "ticket": queue.enqueue(run_dir, fw)})
        self._children[:] = [p for p in self._children if p.poll() is None]
        env = {**os.environ, "TWINBOARD_LOGDIR": str(logdir),
               "PYTHONPATH": os.pathsep.join(filter(None, [str(REPO), os.environ.get("PYTHONPATH")]))}
        started: dict[str, subprocess.Popen] = {}
        for fw in commands:
            try:
                with open(Path(run_dir) / f"{fw}.supervisor.log", "wb") as out:
                    started[fw] = subprocess.Popen(
                        [sys.executable, "-m", "twinboard.launcher", "supervise", str(run_dir), fw],
                        cwd=REPO, env=env, stdin=subprocess.DEVNULL, stdout=out, stderr=subprocess.STDOUT,
                        start_new_session=True)
            except OSError as err:
                return self._abandon(run_dir, list(commands), f"cannot start the {fw} supervisor: {err}")
            self._children.append(started[fw])
        deadline = time.monotonic() + REGISTER_WAIT_S
        for fw, proc in started.items():  # a supervisor that cannot even start is a failed launch
            while not (_read_json(_job_path(run_dir, fw)) or {}).get("supervisor") and time.monotonic() < deadline:
                if proc.poll() is not None:
                    log_text = _tail(Path(run_dir) / f"{fw}.supervisor.log")
                    return self._abandon(run_dir, list(commands), f"{fw} supervisor exited: {log_text}",
                                         proc.returncode)
                time.sleep(0.01)
        return None

    def _abandon(self, run_dir: Path, frameworks: list[str], why: str, code: int | None = None) -> Failed:
        """Launch failed part way: the jobs that never got a supervisor fail, the others are stopped."""
        with _Queue(Path(run_dir).parent).lock():  # run_dir is <logdir>/<id>; supervisors register under it
            for fw in frameworks:
                job = _read_json(_job_path(run_dir, fw)) or {"framework": fw}
                if job.get("supervisor"):
                    _write_json(_stop_path(run_dir, fw), {"requested": time.time(), "grace": 5.0})
                else:
                    _write_json(_job_path(run_dir, fw), {**job, "state": "failed", "ended": time.time(), "error": why})
        return Failed(code, why)

    def job_status(self, run_dir: Path, framework: str, created: float) -> JobStatus:
        status = _read_json(Path(run_dir) / framework / "status.json") or {}
        progress = {"step": _int_or_none(status.get("step")), "total_steps": _int_or_none(status.get("total_steps"))}
        path = _job_path(run_dir, framework)
        if not path.exists():  # launch() writes run.json just before the job files
            young = time.time() - created < REGISTER_S
            return JobStatus("queued" if young else "failed", error=None if young else f"no {path.name}")
        job = _read_json(path)
        if job is None or job.get("state") not in STATES:
            return JobStatus("failed", error=f"unreadable {path.name}", **progress)
        state = job["state"]
        if state not in TERMINAL:
            stop = _stop_path(run_dir, framework).exists()
            supervisor = job.get("supervisor")
            if state == "queued" and (_alive(supervisor) or (
                    not supervisor and time.time() - float(job.get("queued", 0)) < REGISTER_S)):
                pass
            elif state == "running" and (_alive(job.get("trainer")) or _alive(supervisor)):
                pass
            elif (_read_json(path) or {}).get("state") != state:  # moved on (queued -> running -> ended)
                return self.job_status(run_dir, framework, created)  # between our read and the liveness check
            else:  # every process of the job is gone and none recorded an end: settle it, for good
                if stop:
                    job["state"] = "stopped"
                elif state == "running" and status.get("state") == "finished":
                    job["state"] = "finished"
                else:
                    job["state"] = "failed"
                    if state == "running":
                        tail = _tail(Path(run_dir) / f"{framework}.stderr") or str(status.get("error") or "")
                        job["error"] = "process died: trainer and supervisor gone, no exit status" + (
                            "\n" + tail if tail else "")
                    else:
                        job["error"] = f"supervisor died before the trainer started (see {framework}.supervisor.log)"
                job["ended"] = time.time()
                try:
                    _write_json(path, job)
                except OSError:
                    pass  # a read-only logdir still shows the true state, just not persisted
        return JobStatus(job["state"], exit_code=_int_or_none(job.get("exit_code")), error=job.get("error"),
                         started=job.get("started"), ended=job.get("ended"), **progress)

    def request_stop(self, run_dir: Path, framework: str, grace: float) -> None:
        job = _read_json(_job_path(run_dir, framework)) or {}
        _write_json(_stop_path(run_dir, framework), {"requested": time.time(), "grace": grace})
        if not _alive(job.get("supervisor")) and _alive(job.get("trainer")):
            _signal_group(job.get("pgid"), signal.SIGTERM)  # nobody else will: the supervisor is gone

    def kill(self, run_dir: Path, framework: str) -> None:
        job = _read_json(_job_path(run_dir, framework)) or {}
        if _alive(job.get("trainer")):
            _signal_group(job.get("pgid"), signal.SIGKILL)
        if _alive(job.get("supervisor")):
            _signal_group(job["supervisor"]["pid"], signal.SIGKILL)  # its own session: pgid == pid

    def pid(self, run_dir: Path, framework: str) -> int | None:
        trainer = (_read_json(_job_path(run_dir, framework)) or {}).get("trainer")
        return trainer["pid"] if _alive(trainer) else None


BACKENDS: dict[str, Backend] = {"local": LocalBackend()}


# --- the supervisor: one per job, detached ------------------------------------------------------
def supervise(run_dir: Path, framework: str) -> int:
    run_dir, path, stop_path = Path(run_dir), _job_path(run_dir, framework), _stop_path(run_dir, framework)
    queue = _Queue(Path((_read_json(path) or {}).get("logdir") or run_dir.parent))
    with queue.lock():  # against launch() abandoning the job at this very moment
        job = _read_json(path)
        if not job or job.get("state") != "queued":
            print(f"{path}: not a queued job", file=sys.stderr)
            return 1
        job["supervisor"] = _identity(os.getpid())
        _write_json(path, job)  # registered: from here on this process alone writes the job file

    def finish(state: str, **facts: object) -> int:
        _write_json(path, {**(_read_json(path) or job), "state": state, "ended": time.time(), **facts})
        return 0

    slot = queue.wait_for_slot(job["ticket"], int(job["slots"]), stop_path.exists, run_dir, framework)
    if slot is None:
        return finish("stopped")
    env = {**os.environ, "PYTHONUNBUFFERED": "1", "TWINBOARD_FRAMEWORK": framework,
           "TWINBOARD_RUN_DIR": str(run_dir)}
    try:
        with open(run_dir / f"{framework}.stdout", "wb") as out, open(run_dir / f"{framework}.stderr", "wb") as err:
            # Own session = own process group, so stop ends the trainer and anything it spawned. The
            # trainer inherits the slot's flock: the slot stays taken while any of them lives.
            proc = subprocess.Popen(job["cmd"], cwd=REPO, env=env, stdin=subprocess.DEVNULL, stdout=out,
                                    stderr=err, start_new_session=True, pass_fds=(slot,))
    except OSError as err:
        return finish("failed", error=f"cannot start the trainer {shlex.join(job['cmd'])}: {err}")
    job = {**job, "state": "running", "started": time.time(), "trainer": _identity(proc.pid), "pgid": proc.pid}
    _write_json(path, job)
    stopping = False
    while proc.poll() is None:
        if not stopping and stop_path.exists():
            stopping = True
            grace = float((_read_json(stop_path) or {}).get("grace", 5.0))
            _signal_group(proc.pid, signal.SIGTERM)
            try:
                proc.wait(timeout=grace)
            except subprocess.TimeoutExpired:
                _signal_group(proc.pid, signal.SIGKILL)
                proc.wait()
            _signal_group(proc.pid, signal.SIGKILL)  # stragglers; the group id is ours while any remain
        time.sleep(POLL_S)
    code = proc.returncode
    if stopping:  # a trainer that ended on its own just before a stop keeps its true outcome
        return finish("stopped", exit_code=code)
    if code == 0:
        return finish("finished", exit_code=0)
    status = _read_json(run_dir / framework / "status.json") or {}
    return finish("failed", exit_code=code, error=_failure_text(run_dir, framework, code, status))


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
           backend: str = "local", trainer_cmd: Sequence[str] | str | None = None) -> Launched | Failed:
    """Start a matched pair (or queue it): a run folder with run.json and spec.json, one job per framework."""
    if backend not in BACKENDS:
        return Failed(None, f"backend {backend!r}: one of {', '.join(BACKENDS)}")
    if name is not None and (not _SAFE_NAME.fullmatch(name) or name == UPLOADS):
        return Failed(None, f"run name {name!r}: use up to 100 letters, digits, '.', '_' or '-', not starting "
                            f"with '.' or '-', and not {UPLOADS!r}")
    try:
        root = _root(logdir)
        base = name or f"{time.strftime('%Y%m%d-%H%M%S')}-{spec.task}-{spec.model}-{spec.optimizer}"
        for n in range(1, 10_000):
            run_dir = root / (base if n == 1 else f"{base}-{n}")
            try:
                run_dir.mkdir()
                break
            except FileExistsError:
                continue
        else:
            return Failed(None, f"{base}: 9999 runs of that name exist already")
        spec.save(run_dir / "spec.json")
        commands = {fw: trainer_command(fw, run_dir / "spec.json", trainer_cmd) for fw in FRAMEWORKS}
        _write_json(run_dir / "run.json", {
            "id": run_dir.name, "name": name, "created": time.time(), "spec": spec.to_dict(),
            "backend": backend, "frameworks": list(FRAMEWORKS), "host": socket.gethostname()})
    except OSError as err:
        return Failed(None, f"cannot create the run folder in {logdir or 'the logdir'}: {err}")
    failure = BACKENDS[backend].submit(run_dir, root, commands)
    return failure or Launched(run_dir.name, run_dir)


def _run_status(run_dir: Path) -> RunStatus:
    run = _read_json(run_dir / "run.json")
    if run is None or not isinstance(run.get("spec"), dict) or not isinstance(run.get("created"), (int, float)):
        raise LauncherError(f"{run_dir.name}: unreadable run.json")
    frameworks = run.get("frameworks") if isinstance(run.get("frameworks"), list) else list(FRAMEWORKS)
    jobs = {}
    for fw in map(str, frameworks):
        try:
            jobs[fw] = _backend(run.get("backend", "local")).job_status(run_dir, fw, run["created"])
        except (LauncherError, OSError, ValueError, TypeError, KeyError, AttributeError) as err:
            jobs[fw] = JobStatus("failed", error=f"unreadable {fw} job: {err}")
    return RunStatus(run_dir.name, run_dir, run["spec"], float(run["created"]), jobs, str(run.get("backend", "local")))


def _backend(name: object) -> Backend:
    if name not in BACKENDS:
        raise LauncherError(f"unknown backend {name!r}")
    return BACKENDS[name]


def list_runs(logdir: Path | str | None = None) -> list[RunStatus]:
    """Every launcher run in the logdir, oldest first; folders without a readable run.json are skipped."""
    root, runs = _root(logdir), []
    for run_dir in root.iterdir():
        if run_dir.name.startswith(".") or run_dir.name == UPLOADS or not (run_dir / "run.json").is_file():
            continue
        try:
            runs.append(_run_status(run_dir))
        except LauncherError as err:
            log.warning("skipping %s", err)
    return sorted(runs, key=lambda r: (r.created, r.run_id))


def get_run(run_id: str, logdir: Path | str | None = None) -> RunStatus:
    root = _root(logdir)
    if not _SAFE_NAME.fullmatch(run_id or "") or not (root / run_id / "run.json").is_file():
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
    deadline = time.monotonic() + grace + 5.0  # the supervisor escalates at `grace`; this is if it cannot
    while time.monotonic() < deadline and get_run(run_id, logdir).state in ("running", "queued"):
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


if __name__ == "__main__":
    if len(sys.argv) != 4 or sys.argv[1] != "supervise":
        sys.exit("usage: python -m twinboard.launcher supervise RUN_DIR FRAMEWORK")
    sys.exit(supervise(Path(sys.argv[2]), sys.argv[3]))
