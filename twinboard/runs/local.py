"""The local backend: trainers as processes on this machine, started by one dispatcher per logdir.

`LocalBackend` is the launching side, in the app's or the CLI's process: `submit` writes the jobs'
files and a ticket at the back of the queue under the queue lock and makes sure a dispatcher runs;
`jobs` derives the jobs' states; `request_stop` asks for a stop. The dispatcher (`python -m
twinboard.runs.dispatcher LOGDIR`) is one detached process per logdir, in its own session so
restarting the app kills nothing: it admits waiting pairs in FIFO order, starts both trainers of a
pair together, waits for them, acts on stop requests, records the outcomes, and exits once nothing
waits or runs. No process exists per waiting job. The files are described in twinboard.runs.queue.

Slots: at most TWINBOARD_MAX_PROCS trainers run at once, and the queue admits whole pairs. A pair
waits until as many slots are free as it has jobs waiting, and nobody overtakes it meanwhile: its
two halves must run at the same time, or their speed and relative-time comparisons are skewed. So a
pair always needs 2 slots, and TWINBOARD_MAX_PROCS below 2 is refused (twinboard.config.max_procs).

Caps: at most TWINBOARD_MAX_QUEUED pairs wait in all, TWINBOARD_MAX_QUEUED_PER_USER per owner
(launches with no owner count as one user); a launch past either is refused (LaunchRefused) and the
launcher removes its run folder.

State is derived on every read, under the shared queue lock (both jobs of a pair at one moment),
from the job file, the trainer's status.json and liveness (pid alive, not a zombie, same start time
and boot, so a reused pid is not mistaken for the trainer). A running job whose trainer is gone with
no dispatcher to record its end is settled for good: failed ("process died"), stopped if a stop was
asked for, finished if its status.json says so. A read that finds jobs waiting or running and no
dispatcher alive starts one, as a launch does: the queue goes on after its dispatcher is killed, and
the new one adopts the trainers still running.
"""
from __future__ import annotations

import logging
import os
import signal
import subprocess
import sys
import time
from pathlib import Path

from twinboard import config
from twinboard.contract import read_json, read_status, write_json
from twinboard.runs.queue import (REPO, Queue, alive, identity, job_path, settled, signal_group, stop_path,
                                  tail)
from twinboard.runs.state import STATES, TERMINAL, Failed, JobStatus, LaunchRefused

log = logging.getLogger(__name__)

JOB_FILE_GRACE_S = 60.0  # launch() writes run.json just before the job files: a run this young without them is starting
READY_WAIT_S = 10.0  # launch() waits this long for a dispatcher it started to say it is ready
RESPAWN_S = 5.0  # reads restart a dispatcher that died before it was ready no more often than this
LOG_MAX_BYTES = 1 << 20  # dispatcher.log is rotated to dispatcher.log.1 past this, when a dispatcher starts
DISPATCHER = "twinboard.runs.dispatcher"


# What a ticket carries of the launcher's environment to its trainers (the dispatcher may have been
# started by an earlier launch): the settings trainers read, never the rest (tokens, passwords) of a
# server's environment. TWINBOARD_PASS_ENV adds prefixes (comma-separated; the tests pass STUB_).
PASSED_ENV = ("TWINBOARD_", "OMP_", "MKL_", "KMP_", "TF_", "PYTHONHASHSEED")


def launch_env() -> dict[str, str]:
    """The part of this process's environment a queued pair's trainers get (see PASSED_ENV)."""
    extra = tuple(p.strip() for p in os.environ.get("TWINBOARD_PASS_ENV", "").split(",") if p.strip())
    return {k: v for k, v in os.environ.items() if k.startswith(PASSED_ENV + extra)}


def child_env(logdir: Path) -> dict[str, str]:
    """The dispatcher's environment, and through each ticket the trainers': the launcher's own (so a
    trainer sees what a direct child would), the logdir, and the repo on PYTHONPATH for `-m`."""
    return {**os.environ, "TWINBOARD_LOGDIR": str(logdir),
            "PYTHONPATH": os.pathsep.join(filter(None, [str(REPO), os.environ.get("PYTHONPATH")]))}


def _int_or_none(value: object) -> int | None:
    return value if isinstance(value, int) and not isinstance(value, bool) else None


def _persist(path: Path, job: dict) -> None:
    try:
        write_json(path, job)
    except OSError:
        pass  # a read-only logdir still shows the true state, just not persisted


def _ticket(queue: Queue, name: object, run_dir: Path) -> str | None:
    """Where the job's ticket is, "waiting" or "running", if it is there and is this run's."""
    if not isinstance(name, str) or Path(name).name != name:
        return None
    for where, folder in (("waiting", queue.dir), ("running", queue.running_dir)):
        ticket = read_json(folder / name)
        if ticket is not None and ticket.get("run_dir") == str(run_dir):
            return where
    return None


class LocalBackend:
    name = "local"
    _children: list[subprocess.Popen] = []  # dispatchers this process started, reaped later (no zombies)

    def submit(self, run_dir: Path, logdir: Path, commands: dict[str, list[str]],
               owner: str | None = None) -> Failed | None:
        """Queue the pair. None when queued; Failed (the jobs recorded as failed) when no dispatcher can
        serve it. Raises LaunchRefused (a cap) or OSError (a full disk...) having taken back its files."""
        try:
            slots, most, per_user = config.max_procs(), config.max_queued(), config.max_queued_per_user()
        except ValueError as err:
            return self._fail_jobs(run_dir, list(commands), str(err))
        queue, made, ticket = Queue(logdir), [], None
        with queue.lock():
            waiting = [t for _, t in queue.waiting()]
            if len(waiting) >= most:
                raise LaunchRefused(f"the queue is full: {len(waiting)} pairs are waiting and "
                                    f"TWINBOARD_MAX_QUEUED={most}; launch again once one has started")
            mine = sum(t.get("owner") == owner for t in waiting)
            if mine >= per_user:
                who = f"user {owner!r} has" if owner else "launches without a user have"
                raise LaunchRefused(f"{who} {mine} pairs waiting and TWINBOARD_MAX_QUEUED_PER_USER={per_user}; "
                                    "launch again once one has started")
            try:
                ticket = queue.enqueue({"run_dir": str(run_dir), "frameworks": list(commands), "slots": slots,
                                        "owner": owner, "created": time.time(), "env": launch_env()})
                for fw, cmd in commands.items():
                    made.append(job_path(run_dir, fw))
                    write_json(made[-1], {"framework": fw, "state": "queued", "queued": time.time(), "cmd": cmd,
                                          "ticket": ticket})
            except BaseException:  # a full disk, a read-only folder: nothing half-made stays queued
                if ticket:
                    queue.drop(ticket)
                for path in made:
                    path.unlink(missing_ok=True)
                raise
            try:
                spawned = self._ensure_dispatcher(queue)
            except OSError as err:
                spawned, why = None, f"cannot start the queue's dispatcher: {err}"
            else:
                why = ""
        if why:
            return self._give_up(queue, run_dir, ticket, list(commands), why, None)
        queue.wake()
        return self._await_ready(queue, spawned, run_dir, ticket, list(commands)) if spawned else None

    def _ensure_dispatcher(self, queue: Queue, from_read: bool = False) -> tuple[subprocess.Popen, int] | None:
        """Start a dispatcher unless one is alive (call under the exclusive lock): the process and where
        its output starts in dispatcher.log, or None. Its identity is written here, before it runs, so
        a second launch or read meanwhile does not start another."""
        self._children[:] = [p for p in self._children if p.poll() is None]
        current = queue.dispatcher()
        if alive(current):
            return None
        spawned = current.get("spawned")
        if from_read and not current.get("ready") and isinstance(spawned, (int, float)) and (
                time.time() - spawned < RESPAWN_S):
            return None  # it died starting: a page refresh each second must not start one each second
        try:
            if queue.log_path.stat().st_size > LOG_MAX_BYTES:
                os.replace(queue.log_path, queue.log_path.with_name(queue.log_path.name + ".1"))
        except OSError:
            pass
        with open(queue.log_path, "ab") as out:
            offset = out.tell()
            proc = subprocess.Popen([sys.executable, "-m", DISPATCHER, str(queue.logdir)], cwd=REPO,
                                    env=child_env(queue.logdir), stdin=subprocess.DEVNULL, stdout=out,
                                    stderr=subprocess.STDOUT, start_new_session=True)
        self._children.append(proc)
        write_json(queue.dispatcher_path, {**identity(proc.pid), "spawned": time.time(), "ready": False})
        return proc, offset

    def _await_ready(self, queue: Queue, spawned: tuple[subprocess.Popen, int], run_dir: Path, ticket: str,
                     frameworks: list[str]) -> Failed | None:
        """A dispatcher that cannot even start is a failed launch; one slow to start is not."""
        proc, offset = spawned
        deadline = time.monotonic() + READY_WAIT_S
        while time.monotonic() < deadline:
            current = queue.dispatcher()
            if current.get("ready") and alive(current):
                return None
            code = proc.poll()
            if code == 0:  # served the queue and left, or found another dispatcher holding the logdir
                return None
            if code is not None:
                output = tail(queue.log_path, start=offset) or "no output"
                return self._give_up(queue, run_dir, ticket, frameworks,
                                     f"the queue's dispatcher exited with code {code}: {output}", code)
            time.sleep(0.01)
        return None  # alive but slow on a busy machine; if it dies, the next read starts another

    def _give_up(self, queue: Queue, run_dir: Path, ticket: str, frameworks: list[str], why: str,
                 code: int | None) -> Failed | None:
        with queue.lock():
            if alive(queue.dispatcher()) or not (queue.dir / ticket).is_file():
                return None  # another dispatcher came up meanwhile and serves the queue
            queue.drop(ticket)
            return self._fail_jobs(run_dir, frameworks, why, code)

    def _fail_jobs(self, run_dir: Path, frameworks: list[str], why: str, code: int | None = None) -> Failed:
        for fw in frameworks:
            job = read_json(job_path(run_dir, fw)) or {"framework": fw}
            _persist(job_path(run_dir, fw), {**job, "state": "failed", "ended": time.time(), "error": why})
        return Failed(code, why)

    def jobs(self, run_dir: Path, frameworks: list[str], created: float) -> dict[str, JobStatus]:
        """Every job of the run, read at one moment (under the shared queue lock)."""
        run_dir, out, revive = Path(run_dir), {}, False
        queue = Queue(run_dir.parent)
        with queue.lock(shared=True):
            served = alive(queue.dispatcher())
            for fw in frameworks:
                try:
                    out[fw], needs = self._job(queue, run_dir, fw, created, served)
                except (OSError, ValueError, TypeError, KeyError, AttributeError) as err:
                    out[fw], needs = JobStatus("failed", error=f"unreadable {fw} job: {err}"), False
                revive |= needs
        if revive:
            try:
                with queue.lock():
                    self._ensure_dispatcher(queue, from_read=True)
            except OSError as err:
                log.warning("cannot start the queue's dispatcher in %s: %s", queue.dir, err)
        return out

    def _job(self, queue: Queue, run_dir: Path, fw: str, created: float, served: bool) -> tuple[JobStatus, bool]:
        """The job's status, and whether it needs a dispatcher that is not there."""
        status = read_status(run_dir / fw) or {}
        progress = {"step": _int_or_none(status.get("step")), "total_steps": _int_or_none(status.get("total_steps"))}
        path = job_path(run_dir, fw)
        if not path.exists():
            young = time.time() - created < JOB_FILE_GRACE_S
            return JobStatus("queued" if young else "failed", error=None if young else f"no {path.name}"), False
        job = read_json(path)
        if job is None or job.get("state") not in STATES:
            return JobStatus("failed", error=f"unreadable {path.name}", **progress), False
        needs, ticket = False, _ticket(queue, job.get("ticket"), run_dir)
        if job["state"] == "queued":
            if ticket:
                needs = not served
            else:  # every change of the queue happens under the lock we hold: it is truly gone
                job = {**job, "state": "failed", "ended": time.time(), "error": "left the queue without starting"}
                _persist(path, job)
        elif job["state"] == "running":
            watched = ticket == "running"  # a dispatcher records the end of the jobs of admitted tickets
            if alive(job.get("trainer")):
                needs = watched and not served  # someone must record its end and act on a stop
            elif not (served and watched):  # gone, and nobody will record its end: settle it, for good
                job = settled(job, run_dir, fw)
                _persist(path, job)
        return JobStatus(job["state"], exit_code=_int_or_none(job.get("exit_code")), error=job.get("error"),
                         started=job.get("started"), ended=job.get("ended"), **progress), needs

    def request_stop(self, run_dir: Path, framework: str, grace: float) -> None:
        """A waiting job leaves the queue now; a running one is the dispatcher's to end (SIGTERM, then
        SIGKILL after `grace` s), or ours to SIGTERM while no dispatcher is alive."""
        run_dir = Path(run_dir)
        queue = Queue(run_dir.parent)
        with queue.lock():
            write_json(stop_path(run_dir, framework), {"requested": time.time(), "grace": grace})
            job = read_json(job_path(run_dir, framework)) or {}
            if job.get("state") == "queued":
                write_json(job_path(run_dir, framework), {**job, "state": "stopped", "ended": time.time()})
                ticket = job.get("ticket")
                pair = read_json(queue.dir / ticket) if isinstance(ticket, str) and Path(ticket).name == ticket else None
                if pair and all((read_json(job_path(run_dir, fw)) or {}).get("state") in TERMINAL
                                for fw in pair.get("frameworks") or []):
                    queue.drop(ticket)
            elif job.get("state") == "running" and not alive(queue.dispatcher()) and alive(job.get("trainer")):
                signal_group(job.get("pgid"), signal.SIGTERM)  # the next read starts a dispatcher to escalate
        queue.wake()

    def kill(self, run_dir: Path, framework: str) -> None:
        job = read_json(job_path(run_dir, framework)) or {}
        if alive(job.get("trainer")):
            signal_group(job.get("pgid"), signal.SIGKILL)

    def pid(self, run_dir: Path, framework: str) -> int | None:
        trainer = (read_json(job_path(run_dir, framework)) or {}).get("trainer")
        return trainer["pid"] if alive(trainer) else None
