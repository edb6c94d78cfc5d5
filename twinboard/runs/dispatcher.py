"""The dispatcher: the one process per logdir that runs the local queue (`python -m
twinboard.runs.dispatcher LOGDIR`, started by twinboard.runs.local when none is alive).

It holds `.queue/dispatcher.lock` for its whole life, so a second one exits at once. In a loop it:
admits waiting pairs in FIFO order while their jobs fit in the free slots (under the queue lock, so a
reader sees both halves of a pair start together), starts each trainer in its own session (own
process group, output to <run>/<fw>.stdout/.stderr), acts on stop requests (SIGTERM to the group,
SIGKILL at request time + grace), and records each outcome in the job file. Between rounds it sleeps
in select() on the wake FIFO and the trainers' pidfds, so a launch, a stop or an exit is acted on at
once, and otherwise looks every TICK_S. When nothing waits and nothing runs, it leaves, under the
queue lock, so a launch either finds it still there or starts a new one.

Trainers it did not start (a previous dispatcher was killed) are adopted: watched through their
identity, stopped the same way; their end is recorded without an exit status, as a reader would
settle it. Not imported by `twinboard.runs`, so `-m` runs it without importing it twice.
"""
from __future__ import annotations

import fcntl
import os
import select
import shlex
import signal
import stat
import subprocess
import sys
import time
import traceback
from dataclasses import dataclass
from pathlib import Path

from twinboard.contract import read_json, write_json
from twinboard.runs.queue import (REPO, Queue, alive, failure_text, identity, job_path, settled, signal_group,
                                  stop_path)
from twinboard.runs.state import TERMINAL

TICK_S = 1.0  # s between looks at the trainers when nothing wakes it (a safety net: wakes and pidfds come first)
POLL_S = 0.2  # the tick where the wake FIFO cannot be made (a filesystem without FIFOs): nothing wakes it then
MAX_ERRORS = 30  # unexpected errors in a row before it gives up (a read starts a new one); bounds its log


@dataclass
class _Job:
    ticket: str
    framework: str
    run_dir: Path
    trainer: dict  # the trainer's identity (pid, start, boot)
    pgid: int  # its process group: its own session, so == its pid
    proc: subprocess.Popen | None  # None: adopted from an earlier dispatcher, not our child (no exit status)
    pidfd: int | None = None  # readable once the trainer has ended; None where pidfds are not available
    kill_at: float | None = None  # unix s: SIGKILL the group then; set once a stop request is seen


def _log(message: str) -> None:
    print(f"{time.strftime('%Y-%m-%d %H:%M:%S')} {message}", file=sys.stderr, flush=True)


def _pidfd(pid: int) -> int | None:
    try:
        return os.pidfd_open(pid)
    except (AttributeError, OSError):
        return None


class Dispatcher:
    def __init__(self, logdir: Path):
        self.queue = Queue(Path(logdir))
        self.me = identity(os.getpid())
        self.jobs: dict[tuple[str, str], _Job] = {}
        self.wake_fds: tuple[int, int] | None = None  # the FIFO's read end, and a write end we keep open

    def run(self) -> int:
        self.queue.running_dir.mkdir(parents=True, exist_ok=True)
        lock_fd = os.open(self.queue.dir / "dispatcher.lock", os.O_RDWR | os.O_CREAT, 0o644)
        try:
            fcntl.flock(lock_fd, fcntl.LOCK_EX | fcntl.LOCK_NB)
        except BlockingIOError:
            _log(f"another dispatcher serves {self.queue.logdir}; leaving")
            os.close(lock_fd)
            return 0
        self._open_wake()
        _log(f"dispatcher {os.getpid()} serves {self.queue.logdir}")
        errors = 0
        while True:
            try:
                with self.queue.lock():
                    self._announce()
                    self.queue.prune()
                    self._adopt()
                    self._admit()
                    if not self.jobs and not self.queue.waiting() and not self.queue.running():
                        if self.queue.dispatcher().get("pid") == self.me["pid"]:
                            self.queue.dispatcher_path.unlink(missing_ok=True)
                        os.close(lock_fd)  # before the queue lock: a launch after this starts a new one
                        _log("queue empty, nothing running; leaving")
                        return 0
                self._watch()
                self._sleep()
                errors = 0
            except Exception:  # a full disk, a file in a strange state: say so and try again
                errors += 1
                _log(traceback.format_exc())
                if errors >= MAX_ERRORS:
                    return 1
                time.sleep(TICK_S)

    def _open_wake(self) -> None:
        path = self.queue.wake_path
        try:
            try:
                os.mkfifo(path, 0o600)
            except FileExistsError:
                pass
            if stat.S_ISFIFO(os.stat(path).st_mode):
                # our own write end: without one, select() sees end-of-file for ever once a waker closes
                self.wake_fds = (os.open(path, os.O_RDONLY | os.O_NONBLOCK), os.open(path, os.O_WRONLY | os.O_NONBLOCK))
        except OSError as err:
            _log(f"no wake FIFO ({err}); looking every {POLL_S} s")

    def _announce(self) -> None:
        """dispatcher.json names us, ready: launch() waits for this, and reads trust it."""
        current = self.queue.dispatcher()
        if current.get("pid") != self.me["pid"] or current.get("start") != self.me["start"] or not current.get("ready"):
            write_json(self.queue.dispatcher_path, {**self.me, "spawned": current.get("spawned", time.time()),
                                                    "ready": True})

    # --- under the queue lock --------------------------------------------------------------------------
    def _adopt(self) -> None:
        """Take charge of every admitted job we do not watch yet: trainers of a killed dispatcher."""
        for name, ticket in self.queue.running():
            run_dir = Path(ticket["run_dir"])
            for fw in ticket["frameworks"]:
                if (name, fw) in self.jobs:
                    continue
                job = read_json(job_path(run_dir, fw)) or {}
                if job.get("state") == "queued":  # its dispatcher died mid-admission: its pair's other half runs
                    self._start(name, ticket, fw, job)
                elif job.get("state") == "running":
                    if alive(job.get("trainer")) and isinstance(job.get("pgid"), int):
                        self.jobs[(name, fw)] = _Job(name, fw, run_dir, job["trainer"], job["pgid"], None,
                                                     _pidfd(job["trainer"]["pid"]))
                        _log(f"adopted {run_dir.name}/{fw} (pid {job['trainer']['pid']})")
                    else:
                        write_json(job_path(run_dir, fw), settled(job, run_dir, fw))
            self._close_if_done(name, ticket)

    def _admit(self) -> None:
        used = len(self.jobs)  # every trainer we watch holds a slot until it is gone
        for name, ticket in self.queue.waiting():
            run_dir = Path(ticket["run_dir"])
            jobs = {fw: read_json(job_path(run_dir, fw)) or {} for fw in ticket["frameworks"]}
            todo = [fw for fw, job in jobs.items() if job.get("state") == "queued"]
            if not todo:  # stopped (or failed) while waiting
                self.queue.drop(name)
                continue
            slots = ticket.get("slots") if isinstance(ticket.get("slots"), int) else 2
            if used + len(todo) > max(slots, len(todo)):  # (a pair bigger than its slots would wait for ever)
                return  # FIFO: the head waits for room, and nobody overtakes it
            os.replace(self.queue.dir / name, self.queue.running_dir / name)
            for fw in todo:
                self._start(name, ticket, fw, jobs[fw])
            used += len(todo)
            write_json(self.queue.running_dir / name, {k: v for k, v in ticket.items() if k != "env"}, mode=0o600)
            _log(f"admitted {run_dir.name}: {', '.join(todo)}")

    def _start(self, name: str, ticket: dict, fw: str, job: dict) -> None:
        run_dir, path, cmd = Path(ticket["run_dir"]), job_path(Path(ticket["run_dir"]), fw), job.get("cmd")
        env = {**os.environ, **(ticket.get("env") or {}), "PYTHONUNBUFFERED": "1", "TWINBOARD_FRAMEWORK": fw,
               "TWINBOARD_RUN_DIR": str(run_dir)}
        try:
            with open(run_dir / f"{fw}.stdout", "wb") as out, open(run_dir / f"{fw}.stderr", "wb") as err:
                # Own session = own process group, so a stop ends the trainer and anything it spawned.
                proc = subprocess.Popen(cmd, cwd=REPO, env=env, stdin=subprocess.DEVNULL, stdout=out, stderr=err,
                                        start_new_session=True)
        except (OSError, ValueError, TypeError) as err:
            shown = shlex.join(map(str, cmd)) if isinstance(cmd, list) else repr(cmd)
            write_json(path, {**job, "state": "failed", "ended": time.time(),
                              "error": f"cannot start the trainer {shown}: {err}"})
            return
        trainer = identity(proc.pid)
        self.jobs[(name, fw)] = _Job(name, fw, run_dir, trainer, proc.pid, proc, _pidfd(proc.pid))
        write_json(path, {**job, "state": "running", "started": time.time(), "trainer": trainer, "pgid": proc.pid})

    def _close_if_done(self, name: str, ticket: dict) -> None:
        """An admitted ticket leaves once none of its jobs runs: the queue is empty when all have."""
        if any(key[0] == name for key in self.jobs):
            return
        run_dir = Path(ticket["run_dir"])
        if all((read_json(job_path(run_dir, fw)) or {}).get("state", "failed") in TERMINAL
               for fw in ticket["frameworks"]):
            self.queue.drop(name)

    # --- outside the lock ------------------------------------------------------------------------------
    def _watch(self) -> None:
        now = time.time()
        for key, job in list(self.jobs.items()):
            ended = job.proc.poll() is not None if job.proc else not alive(job.trainer)
            if not ended and job.kill_at is None and stop_path(job.run_dir, job.framework).exists():
                request = read_json(stop_path(job.run_dir, job.framework)) or {}
                grace = request.get("grace", 5.0)
                grace = float(grace) if isinstance(grace, (int, float)) and grace >= 0 else 5.0
                asked = request.get("requested")
                job.kill_at = (asked if isinstance(asked, (int, float)) and asked <= now else now) + grace
                signal_group(job.pgid, signal.SIGTERM)
            elif not ended and job.kill_at is not None and now >= job.kill_at:
                signal_group(job.pgid, signal.SIGKILL)
                job.kill_at = now + TICK_S  # again next tick, not in a busy loop, if it has not died yet
            if ended:
                if job.kill_at is not None:
                    signal_group(job.pgid, signal.SIGKILL)  # stragglers; the group id is ours while any remain
                self._record(key, job)

    def _record(self, key: tuple[str, str], job: _Job) -> None:
        path = job_path(job.run_dir, job.framework)
        with self.queue.lock():
            if not job.run_dir.is_dir():  # the run was deleted under it: nothing left to record in
                self._forget(key, job)
                return
            facts = read_json(path) or {"framework": job.framework}
            if job.proc is None:  # not our child: no exit status to be had
                facts = settled(facts, job.run_dir, job.framework)
            else:
                code = job.proc.returncode
                if job.kill_at is not None:  # a trainer that ended on its own before we saw the stop keeps its outcome
                    facts.update(state="stopped", exit_code=code, error=None)
                elif code == 0:
                    facts.update(state="finished", exit_code=0, error=None)
                else:
                    facts.update(state="failed", exit_code=code, error=failure_text(job.run_dir, job.framework, code))
                facts["ended"] = time.time()
            write_json(path, facts)  # OSError: kept in self.jobs, tried again next round
            self._forget(key, job)
        _log(f"{job.run_dir.name}/{job.framework}: {facts['state']}")

    def _forget(self, key: tuple[str, str], job: _Job) -> None:
        del self.jobs[key]
        if job.pidfd is not None:
            os.close(job.pidfd)
        ticket = read_json(self.queue.running_dir / job.ticket)
        if ticket is not None:
            self._close_if_done(job.ticket, ticket)

    def _sleep(self) -> None:
        timeout = TICK_S if self.wake_fds else POLL_S
        deadlines = [job.kill_at for job in self.jobs.values() if job.kill_at is not None]
        if deadlines:
            timeout = max(0.0, min(timeout, min(deadlines) - time.time()))
        fds = [job.pidfd for job in self.jobs.values() if job.pidfd is not None]
        if self.wake_fds:
            fds.append(self.wake_fds[0])
        ready, _, _ = select.select(fds, [], [], timeout)
        if self.wake_fds and self.wake_fds[0] in ready:
            try:
                while os.read(self.wake_fds[0], 4096):
                    pass
            except BlockingIOError:
                pass


def main(argv: list[str]) -> int:
    """`LOGDIR`: the entry point LocalBackend starts the dispatcher with."""
    if len(argv) != 1:
        sys.exit("usage: python -m twinboard.runs.dispatcher LOGDIR")
    return Dispatcher(Path(argv[0])).run()


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))
