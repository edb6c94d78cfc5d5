"""The local backend: each framework job a detached supervisor on this machine, queued with flock.

Per job `LocalBackend` keeps, in the run folder:

  <fw>.job.json         the job's facts, rewritten atomically, only by its owner: the launcher until the
                        supervisor registers, then the supervisor (state, pids, times, exit code, error)
  <fw>.stop             stop requested (written by `stop`)
  <fw>.stdout/.stderr   the trainer's output; <fw>.supervisor.log the supervisor's own
  <logdir>/.queue/      FIFO tickets `0000000042.json` and slot files `slot-<i>` held with flock

Per job a small detached supervisor (`python -m twinboard.runs.supervisor RUN_DIR FW`, its own
session, so restarting the app kills nothing) waits until its ticket heads the queue and a slot is
free, spawns the trainer in its own process group holding the slot's flock (the kernel frees the slot
when both die, so a crash never leaks one), waits, and records the outcome. Status is derived on every
read from the job file, the trainer's `<fw>/status.json` and a liveness check (pid alive, not a zombie,
same start time and boot, so a reused pid is not mistaken for the trainer): a job whose processes are
gone with no recorded end is `failed` ("process died"), or `stopped` if a stop was requested.
"""
from __future__ import annotations

import fcntl
import os
import signal
import subprocess
import sys
import time
from contextlib import contextmanager
from pathlib import Path
from typing import Callable, Iterator

from twinboard import config
from twinboard.contract.files import read_json, read_status, write_json
from twinboard.runs.state import STATES, TERMINAL, Failed, JobStatus

REPO = Path(__file__).resolve().parents[2]  # cwd and PYTHONPATH of every child: `-m trainers.X` resolves
POLL_S = 0.2  # how often a supervisor looks at its queue ticket, its stop file and its trainer
REGISTER_S = 60.0  # a job whose supervisor has not registered after this long never will
REGISTER_WAIT_S = 10.0  # launch() waits this long for the supervisors to register
STDERR_LINES = 20  # lines of the trainer's stderr kept as a failed job's error


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
        write_json(self.dir / name, {"run_dir": str(run_dir), "framework": framework, "created": time.time()})
        return name

    def _live(self, ticket: Path) -> bool:
        """A ticket is live while its job is queued and its supervisor alive (or still starting)."""
        t = read_json(ticket) or {}
        if not isinstance(t.get("run_dir"), str) or not isinstance(t.get("framework"), str):
            return False
        job = read_json(_job_path(Path(t["run_dir"]), t["framework"]))
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
                    job = read_json(_job_path(run_dir, framework)) or {}
                    write_json(_job_path(run_dir, framework), {**job, "ticket": ticket})
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


# --- the backend ------------------------------------------------------------------------------
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
                write_json(_job_path(run_dir, fw), {
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
                        [sys.executable, "-m", "twinboard.runs.supervisor", str(run_dir), fw],
                        cwd=REPO, env=env, stdin=subprocess.DEVNULL, stdout=out, stderr=subprocess.STDOUT,
                        start_new_session=True)
            except OSError as err:
                return self._abandon(run_dir, list(commands), f"cannot start the {fw} supervisor: {err}")
            self._children.append(started[fw])
        deadline = time.monotonic() + REGISTER_WAIT_S
        for fw, proc in started.items():  # a supervisor that cannot even start is a failed launch
            while not (read_json(_job_path(run_dir, fw)) or {}).get("supervisor") and time.monotonic() < deadline:
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
                job = read_json(_job_path(run_dir, fw)) or {"framework": fw}
                if job.get("supervisor"):
                    write_json(_stop_path(run_dir, fw), {"requested": time.time(), "grace": 5.0})
                else:
                    write_json(_job_path(run_dir, fw), {**job, "state": "failed", "ended": time.time(), "error": why})
        return Failed(code, why)

    def job_status(self, run_dir: Path, framework: str, created: float) -> JobStatus:
        status = read_status(Path(run_dir) / framework) or {}
        progress = {"step": _int_or_none(status.get("step")), "total_steps": _int_or_none(status.get("total_steps"))}
        path = _job_path(run_dir, framework)
        if not path.exists():  # launch() writes run.json just before the job files
            young = time.time() - created < REGISTER_S
            return JobStatus("queued" if young else "failed", error=None if young else f"no {path.name}")
        job = read_json(path)
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
            elif (read_json(path) or {}).get("state") != state:  # moved on (queued -> running -> ended)
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
                    write_json(path, job)
                except OSError:
                    pass  # a read-only logdir still shows the true state, just not persisted
        return JobStatus(job["state"], exit_code=_int_or_none(job.get("exit_code")), error=job.get("error"),
                         started=job.get("started"), ended=job.get("ended"), **progress)

    def request_stop(self, run_dir: Path, framework: str, grace: float) -> None:
        job = read_json(_job_path(run_dir, framework)) or {}
        write_json(_stop_path(run_dir, framework), {"requested": time.time(), "grace": grace})
        if not _alive(job.get("supervisor")) and _alive(job.get("trainer")):
            _signal_group(job.get("pgid"), signal.SIGTERM)  # nobody else will: the supervisor is gone

    def kill(self, run_dir: Path, framework: str) -> None:
        job = read_json(_job_path(run_dir, framework)) or {}
        if _alive(job.get("trainer")):
            _signal_group(job.get("pgid"), signal.SIGKILL)
        if _alive(job.get("supervisor")):
            _signal_group(job["supervisor"]["pid"], signal.SIGKILL)  # its own session: pgid == pid

    def pid(self, run_dir: Path, framework: str) -> int | None:
        trainer = (read_json(_job_path(run_dir, framework)) or {}).get("trainer")
        return trainer["pid"] if _alive(trainer) else None
