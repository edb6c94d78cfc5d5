"""The local queue on disk, shared by the launching side (`twinboard.runs.local`) and the one
dispatcher process per logdir (`twinboard.runs.dispatcher`): paths, the lock, tickets, process identity.

  <logdir>/.queue/
    lock               flock: held exclusively for every change of a ticket or of a job's state, and
                       shared while a reader reads the job files of a run, so a reader never sees one
                       side of a pair admitted and the other not
    seq                the last ticket number
    0000000042.json    a pair waiting for slots, FIFO by number (mode 0600: it holds trainer settings)
    running/0000000042.json   the same ticket once admitted, until both its jobs have ended
    dispatcher.json    the dispatcher's identity {pid, start, boot, spawned, ready}
    dispatcher.lock    flock held by the live dispatcher for its whole life: at most one per logdir
    dispatcher.log     the dispatcher's own output
    wake               a FIFO: a byte written to it wakes the dispatcher (a launch, a stop request)

A ticket: {run_dir, frameworks, slots (TWINBOARD_MAX_PROCS at launch), owner, created, env (the
launcher's trainer settings, local.PASSED_ENV, which its trainers get; dropped once started)}.
Per job, in the run folder: `<fw>.job.json` (state, cmd, ticket, started, trainer identity, pgid,
exit_code, ended, error) and `<fw>.stop` (a stop request: {requested, grace}).
"""
from __future__ import annotations

import fcntl
import os
import signal
import stat
import time
from contextlib import contextmanager
from pathlib import Path
from typing import Iterator

from twinboard.contract import read_json, read_status, write_json

REPO = Path(__file__).resolve().parents[2]  # cwd and PYTHONPATH of the dispatcher and the trainers
QUEUE_DIR = ".queue"
STDERR_LINES = 20  # lines of the trainer's stderr kept as a failed job's error


def job_path(run_dir: Path, framework: str) -> Path:
    return Path(run_dir) / f"{framework}.job.json"


def stop_path(run_dir: Path, framework: str) -> Path:
    return Path(run_dir) / f"{framework}.stop"


def tail(path: Path, lines: int = STDERR_LINES, start: int = 0) -> str:
    """The last `lines` lines of a text file from byte `start` on (at most its last 16 KiB); '' if unreadable."""
    try:
        with open(path, "rb") as f:
            f.seek(max(start, os.fstat(f.fileno()).st_size - 16384))
            text = f.read().decode("utf-8", "replace")
    except OSError:
        return ""
    return "\n".join(text.rstrip().splitlines()[-lines:])


def failure_text(run_dir: Path, framework: str, exit_code: int | None) -> str:
    """Why a trainer failed: its stderr tail, else its status.json error, else what its exit code says."""
    status = read_status(Path(run_dir) / framework) or {}
    text = tail(Path(run_dir) / f"{framework}.stderr") or str(status.get("error") or "")
    if text:
        return text
    if exit_code is not None and exit_code < 0:
        return f"killed by signal {signal.Signals(-exit_code).name}"
    return f"exited with code {exit_code}"


def settled(job: dict, run_dir: Path, framework: str) -> dict:
    """The job file of a running job whose trainer is gone with no exit status seen (nobody was its
    parent when it ended): stopped if a stop was asked for, finished if its status.json says so, else
    failed "process died"."""
    if stop_path(run_dir, framework).exists():
        state, error = "stopped", None
    elif (read_status(Path(run_dir) / framework) or {}).get("state") == "finished":
        state, error = "finished", None
    else:
        text = tail(Path(run_dir) / f"{framework}.stderr")
        state, error = "failed", "process died: the trainer ended unobserved, no exit status" + (
            "\n" + text if text else "")
    return {**job, "state": state, "error": error, "ended": time.time()}


# --- process identity: pid + start time + boot, so a reused pid is not mistaken for ours ---------
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


def identity(pid: int) -> dict:
    stat_ = _proc_stat(pid)
    return {"pid": pid, "start": stat_[1] if stat_ else None, "boot": _boot_id()}


def alive(ident: object) -> bool:
    """Whether the process `identity()` described still runs (not a zombie, not a reused pid)."""
    if not isinstance(ident, dict) or not isinstance(ident.get("pid"), int) or ident["pid"] <= 0:
        return False
    if not Path("/proc/self/stat").exists():  # no procfs: the pid is all there is to go on
        try:
            os.kill(ident["pid"], 0)
            return True
        except ProcessLookupError:
            return False
        except PermissionError:
            return True
    stat_ = _proc_stat(ident["pid"])
    return (stat_ is not None and stat_[0] not in "ZX" and stat_[1] == ident.get("start")
            and ident.get("boot") == _boot_id())


def signal_group(pgid: object, sig: int) -> None:
    if isinstance(pgid, int) and pgid > 1:
        try:
            os.killpg(pgid, sig)
        except (ProcessLookupError, PermissionError):
            pass


# --- the queue folder ------------------------------------------------------------------------------
class Queue:
    def __init__(self, logdir: Path):
        self.logdir = Path(logdir)
        self.dir = self.logdir / QUEUE_DIR
        self.running_dir = self.dir / "running"
        self.dispatcher_path = self.dir / "dispatcher.json"
        self.log_path = self.dir / "dispatcher.log"
        self.wake_path = self.dir / "wake"

    @contextmanager
    def lock(self, shared: bool = False) -> Iterator[None]:
        """The queue lock. Exclusive creates the queue folder (OSError if it cannot); shared, for
        readers, holds nothing when there is no queue yet (nothing to be consistent with) or its
        file cannot be opened (a read-only logdir nobody launches into)."""
        if shared:
            try:
                fd = os.open(self.dir / "lock", os.O_RDONLY)
            except OSError:
                yield
                return
        else:
            self.running_dir.mkdir(parents=True, exist_ok=True)
            fd = os.open(self.dir / "lock", os.O_RDWR | os.O_CREAT, 0o644)
        try:
            fcntl.flock(fd, fcntl.LOCK_SH if shared else fcntl.LOCK_EX)
            yield
        finally:
            os.close(fd)  # releases the flock

    def waiting(self) -> list[tuple[str, dict]]:
        """The tickets still waiting, oldest first (read under the lock). An unreadable one, or one
        whose run folder is gone, is skipped (`prune` removes it)."""
        return self._read(self.dir)

    def running(self) -> list[tuple[str, dict]]:
        """The admitted tickets: pairs of which a job may still run."""
        return self._read(self.running_dir)

    def _read(self, folder: Path) -> list[tuple[str, dict]]:
        found = []
        for path in sorted(folder.glob("[0-9]*.json")):
            ticket = read_json(path)
            if (ticket is None or not isinstance(ticket.get("run_dir"), str)
                    or not isinstance(ticket.get("frameworks"), list) or not Path(ticket["run_dir"]).is_dir()):
                continue
            found.append((path.name, ticket))
        return found

    def prune(self) -> None:
        """Remove tickets that can never run: unreadable, or their run folder deleted (under the lock)."""
        for folder in (self.dir, self.running_dir):
            good = {name for name, _ in self._read(folder)}
            for path in folder.glob("[0-9]*.json"):
                if path.name not in good:
                    path.unlink(missing_ok=True)

    def enqueue(self, ticket: dict) -> str:
        """A new ticket at the back of the queue (under the lock); its name."""
        seq = self.dir / "seq"
        try:
            n = int(seq.read_text())
        except (OSError, ValueError):  # lost: go on after the highest ticket there is
            n = max((int(p.stem) for folder in (self.dir, self.running_dir)
                     for p in folder.glob("[0-9]*.json") if p.stem.isdigit()), default=0)
        n += 1
        name = f"{n:010d}.json"
        write_json(self.dir / name, ticket, mode=0o600)  # the environment may hold secrets
        seq.write_text(str(n))
        return name

    def drop(self, name: str) -> None:
        """A ticket leaves the queue, waiting or running (under the lock)."""
        (self.dir / name).unlink(missing_ok=True)
        (self.running_dir / name).unlink(missing_ok=True)

    def dispatcher(self) -> dict:
        return read_json(self.dispatcher_path) or {}

    def wake(self) -> None:
        """Nudge the dispatcher so it acts now, not at its next tick. Nobody listening is fine."""
        try:
            fd = os.open(self.wake_path, os.O_WRONLY | os.O_NONBLOCK)  # ENXIO: no reader
        except OSError:
            return
        try:
            if stat.S_ISFIFO(os.fstat(fd).st_mode):
                os.write(fd, b"!")  # EAGAIN when full: it is awake already
        except OSError:
            pass
        finally:
            os.close(fd)
