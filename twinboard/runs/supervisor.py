"""The supervisor: one small detached process per local job (`python -m twinboard.runs.supervisor
RUN_DIR FW`). It waits until its queue ticket heads the queue and a slot is free, runs the trainer in
its own process group holding the slot's flock, acts on a stop request, and records the outcome in the
job file. Not imported by `twinboard.runs`, so `-m` runs it without importing it twice."""
from __future__ import annotations

import os
import shlex
import signal
import subprocess
import sys
import time
from pathlib import Path

from twinboard.runs.local import (POLL_S, REPO, _failure_text, _identity, _job_path, _Queue, _signal_group,
                                  _stop_path)
from twinboard.contract.files import read_json, read_status, write_json


def supervise(run_dir: Path, framework: str) -> int:
    run_dir, path, stop_path = Path(run_dir), _job_path(run_dir, framework), _stop_path(run_dir, framework)
    queue = _Queue(Path((read_json(path) or {}).get("logdir") or run_dir.parent))
    with queue.lock():  # against launch() abandoning the job at this very moment
        job = read_json(path)
        if not job or job.get("state") != "queued":
            print(f"{path}: not a queued job", file=sys.stderr)
            return 1
        job["supervisor"] = _identity(os.getpid())
        write_json(path, job)  # registered: from here on this process alone writes the job file

    def finish(state: str, **facts: object) -> int:
        write_json(path, {**(read_json(path) or job), "state": state, "ended": time.time(), **facts})
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
    write_json(path, job)
    stopping = False
    while proc.poll() is None:
        if not stopping and stop_path.exists():
            stopping = True
            grace = float((read_json(stop_path) or {}).get("grace", 5.0))
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
    status = read_status(run_dir / framework) or {}
    return finish("failed", exit_code=code, error=_failure_text(run_dir, framework, code, status))


def main(argv: list[str]) -> int:
    """`RUN_DIR FRAMEWORK`: the entry point LocalBackend.submit starts each supervisor with."""
    if len(argv) != 2:
        sys.exit("usage: python -m twinboard.runs.supervisor RUN_DIR FRAMEWORK")
    return supervise(Path(argv[0]), argv[1])


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))
