"""What the launcher tests share (tests/test_launcher_runs.py, tests/test_launcher_queue.py): a launch with
STUB_* settings for tests/stub_trainer.py, its jobs' states, and the queue's dispatcher found and killed.

Every process a test starts carries its TWINBOARD_LOGDIR, and the `logdir` fixture (conftest.py) kills all
of them afterwards.
"""
from __future__ import annotations

import json
import os
import signal
import time
from pathlib import Path

from tests.stub_trainer import group_alive
from twinboard import runs
from twinboard.contract import RunSpec
from twinboard.runs import Launched

SPEC = RunSpec(steps=5, epochs=1)


def wait_for(predicate, timeout: float = 20.0, what: str = "condition"):
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        value = predicate()
        if value:
            return value
        time.sleep(0.05)
    raise AssertionError(f"timed out after {timeout} s waiting for {what}")


def states(run_id: str) -> dict[str, str]:
    return {fw: job.state for fw, job in runs.get_run(run_id).frameworks.items()}


def start(spec: RunSpec = SPEC, owner: str | None = None, **env: str) -> Launched:
    """Launch with STUB_* settings for this launch only (its ticket keeps the launcher's environment
    for the trainers, whichever process starts them)."""
    old = {k: os.environ.get(k) for k in env}
    os.environ.update(env)
    try:
        run = runs.launch(spec, owner=owner)
    finally:
        for k, v in old.items():
            os.environ.pop(k) if v is None else os.environ.__setitem__(k, v)
    assert isinstance(run, Launched), run
    return run


def dispatcher(logdir: Path) -> dict:
    """The dispatcher's identity file: {pid, start, boot, spawned, ready}; {} when none is there."""
    try:
        return json.loads((logdir / ".queue" / "dispatcher.json").read_text())
    except FileNotFoundError:
        return {}


def ready_dispatcher(logdir: Path, not_in: tuple[int, ...] = ()) -> int:
    """The pid of a live, ready dispatcher other than `not_in`, once there is one."""
    def found():
        d = dispatcher(logdir)
        return d.get("ready") and d["pid"] not in not_in and group_alive(d["pid"]) and d["pid"]
    return wait_for(found, what="a ready dispatcher")


def kill_dispatcher(logdir: Path) -> int:
    pid = ready_dispatcher(logdir)
    os.kill(pid, signal.SIGKILL)
    wait_for(lambda: not group_alive(pid), what="the dispatcher to die")  # its own session: pgid == pid
    return pid


def both(state: str) -> dict[str, str]:
    return {fw: state for fw in runs.FRAMEWORKS}
