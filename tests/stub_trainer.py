"""A stand-in trainer for the launcher tests: `python tests/stub_trainer.py SPEC.json [FRAMEWORK]`.

It does what a trainer does that the launcher can see, in milliseconds and with the standard library
only: reads spec.json, rewrites `<run>/<framework>/status.json` atomically as it steps, prints to
stdout and stderr, and exits. How it behaves is set by environment variables, per framework first
(`STUB_MODE_TORCH`, `STUB_MODE_TENSORFLOW`), then `STUB_MODE`:

  succeed  step to the total (spec.steps, else 5 per epoch), `STUB_STEP_S` seconds a step, exit 0
  crash    two steps, then 30 numbered lines and "stub: boom" on stderr, status failed, exit 3
  sleep    one step, then sleep (for stop tests); SIGTERM ends it like any process
  hang     like sleep, but ignores SIGTERM (stop must escalate to SIGKILL)
  gate     one step, then wait until `<run>/<framework>.release` exists, then finish (queue tests)

It also starts a grandchild (`sleep`) in its process group when `STUB_GRANDCHILD=1`, so a test can
check that stopping a job ends the whole group, not only the trainer.

Below `main` are the harness helpers the launcher and CLI tests share: finding and killing every
process a test spawned (they all carry the test's TWINBOARD_LOGDIR in their environment, which the
launcher sets for the queue's dispatcher and, through each queue ticket, for the trainers), and
checking that a process group is gone.
"""
from __future__ import annotations

import json
import os
import signal
import subprocess
import sys
import time
from pathlib import Path


def write_status(folder: Path, **status) -> None:
    tmp = folder / ".status.json.tmp"
    tmp.write_text(json.dumps({**status, "updated": time.time()}))
    os.replace(tmp, folder / "status.json")


def main() -> int:
    spec_path = Path(sys.argv[1])
    framework = sys.argv[2] if len(sys.argv) > 2 else os.environ["TWINBOARD_FRAMEWORK"]
    spec = json.loads(spec_path.read_text())
    mode = os.environ.get(f"STUB_MODE_{framework.upper()}") or os.environ.get("STUB_MODE", "succeed")
    step_s = float(os.environ.get("STUB_STEP_S", "0.01"))
    total = spec["steps"] or 5 * spec["epochs"]
    run_dir = spec_path.parent
    out = run_dir / framework
    out.mkdir(exist_ok=True)
    if os.environ.get("STUB_GRANDCHILD") == "1":
        subprocess.Popen(["sleep", "600"])  # same process group: only a group kill ends it
    print(f"stub {framework} {mode} pid={os.getpid()}", flush=True)

    if mode == "crash":
        for step in (1, 2):
            write_status(out, state="running", step=step, total_steps=total, error=None)
        for i in range(30):
            print(f"stub line {i}", file=sys.stderr)
        print("stub: boom", file=sys.stderr)
        write_status(out, state="failed", step=2, total_steps=total, error="stub: boom")
        return 3
    if mode in ("sleep", "hang", "gate"):
        if mode == "hang":
            signal.signal(signal.SIGTERM, signal.SIG_IGN)
        write_status(out, state="running", step=1, total_steps=total, error=None)
        release = run_dir / f"{framework}.release"
        deadline = time.monotonic() + 600
        while time.monotonic() < deadline and not (mode == "gate" and release.exists()):
            time.sleep(0.05)
    else:
        for step in range(1, total + 1):
            time.sleep(step_s)
            write_status(out, state="running", step=step, total_steps=total, error=None)
    write_status(out, state="finished", step=total, total_steps=total, error=None)
    print("stub done", flush=True)
    return 0


# --- harness helpers (imported by the tests, not used by the stub itself) -------------------------
STUB = Path(__file__).resolve()


def _stat(pid: int) -> list[bytes] | None:
    """/proc/<pid>/stat fields from field 3 (state) on, or None if the process is gone."""
    try:
        data = Path(f"/proc/{pid}/stat").read_bytes()
    except OSError:
        return None
    return data[data.rindex(b")") + 2:].split()


def group_alive(pgid: int) -> list[int]:
    """Live (non-zombie) processes in process group `pgid`."""
    members = []
    for entry in Path("/proc").iterdir():
        fields = _stat(int(entry.name)) if entry.name.isdigit() else None
        if fields and int(fields[2]) == pgid and fields[0] not in (b"Z", b"X"):
            members.append(int(entry.name))
    return members


def spawned_under(logdir: Path) -> list[int]:
    """Pids whose environment says TWINBOARD_LOGDIR=<logdir>: the dispatcher, every trainer and grandchild."""
    needle = f"TWINBOARD_LOGDIR={logdir}".encode()
    me = {os.getpid(), os.getppid()}
    found = []
    for entry in Path("/proc").iterdir():
        if not entry.name.isdigit() or int(entry.name) in me:
            continue
        try:
            env = (entry / "environ").read_bytes().split(b"\0")
        except OSError:
            continue
        fields = _stat(int(entry.name))
        if needle in env and fields and fields[0] not in (b"Z", b"X"):
            found.append(int(entry.name))
    return found


def kill_spawned(logdir: Path) -> list[int]:
    """SIGKILL everything a test left running under `logdir`, process groups first; the pids killed."""
    pids = spawned_under(logdir)
    for pid in pids:
        fields = _stat(pid)
        for kill, target in ((os.killpg, int(fields[2]) if fields else 0), (os.kill, pid)):
            if target > 1 and target != os.getpgrp():
                try:
                    kill(target, signal.SIGKILL)
                except OSError:
                    pass
    return pids


if __name__ == "__main__":
    sys.exit(main())
