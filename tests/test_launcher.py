"""The launcher against a stub trainer: a real detached dispatcher, real trainer processes, real files,
a real queue; all in tmp_path.

Every process a test starts carries its TWINBOARD_LOGDIR, and the fixture kills all of them afterwards.
"""
from __future__ import annotations

import errno
import json
import os
import signal
import subprocess
import sys
import time
from pathlib import Path

import pytest

from tests.stub_trainer import STUB, group_alive, spawned_under
from twinboard.contract import RunSpec
from twinboard import runs
from twinboard.runs import Failed, Finished, Launched, Stopped
from twinboard.runs import local as local_backend  # only to make its disk fill up (see the full-disk test)

ROOT = Path(__file__).resolve().parents[1]
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


def job_file(run: Launched, fw: str) -> dict:
    return json.loads((run.run_dir / f"{fw}.job.json").read_text())


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


def processes(logdir: Path) -> dict[int, str]:
    """Every live process the launches under `logdir` made, by pid: its command line."""
    found = {}
    for pid in spawned_under(logdir):
        try:
            found[pid] = Path(f"/proc/{pid}/cmdline").read_bytes().replace(b"\0", b" ").decode()
        except OSError:
            pass
    return found


def both(state: str) -> dict[str, str]:
    return {fw: state for fw in runs.FRAMEWORKS}


def test_success_records_progress_output_and_spec(logdir):
    run = start()
    assert run.run_dir.parent == logdir
    assert runs.wait(run.run_id, timeout=30) == {"torch": Finished(0), "tensorflow": Finished(0)}
    status = runs.get_run(run.run_id)
    assert status.state == "finished" and status.spec == SPEC.to_dict()
    for fw, job in status.frameworks.items():
        assert (job.state, job.step, job.total_steps, job.exit_code) == ("finished", 5, 5, 0)
        assert job.started <= job.ended and job.describe() == "finished 5/5"
        assert "stub done" in (run.run_dir / f"{fw}.stdout").read_text()
    assert RunSpec.load(run.run_dir / "spec.json") == SPEC
    run_json = json.loads((run.run_dir / "run.json").read_text())
    assert run_json["id"] == run.run_id and run_json["backend"] == "local"


def test_crash_is_failed_with_exit_code_and_stderr_tail(logdir):
    run = start(STUB_MODE_TORCH="crash")
    result = runs.wait(run.run_id, timeout=30)
    assert result["tensorflow"] == Finished(0)
    failed = result["torch"]
    assert isinstance(failed, Failed) and failed.exit_code == 3
    lines = failed.stderr.splitlines()
    assert lines[-1] == "stub: boom" and len(lines) == runs.STDERR_LINES and "stub line 0" not in lines
    job = runs.get_run(run.run_id).frameworks["torch"]
    assert (job.state, job.exit_code, job.step, job.describe()) == ("failed", 3, 2, "failed (exit 3)")
    assert runs.get_run(run.run_id).state == "failed"


def test_stop_ends_each_process_group_and_escalates_to_sigkill(logdir):
    # torch dies on SIGTERM; tensorflow ignores it and must get SIGKILL; both leave a grandchild behind
    run = start(STUB_MODE="sleep", STUB_MODE_TENSORFLOW="hang", STUB_GRANDCHILD="1")
    wait_for(lambda: states(run.run_id) == {"torch": "running", "tensorflow": "running"}, what="both running")
    pgids = {fw: job_file(run, fw)["pgid"] for fw in runs.FRAMEWORKS}
    wait_for(lambda: all(len(group_alive(g)) == 2 for g in pgids.values()), what="the grandchildren")
    t0 = time.monotonic()
    stopped = runs.stop(run.run_id, grace=0.5)
    assert time.monotonic() - t0 < 5
    assert {fw: j.state for fw, j in stopped.frameworks.items()} == {"torch": "stopped", "tensorflow": "stopped"}
    assert stopped.frameworks["torch"].exit_code == -signal.SIGTERM
    assert stopped.frameworks["tensorflow"].exit_code == -signal.SIGKILL
    assert {fw: group_alive(g) for fw, g in pgids.items()} == {"torch": [], "tensorflow": []}
    assert runs.wait(run.run_id, timeout=1) == {"torch": Stopped(-15), "tensorflow": Stopped(-9)}


def test_the_queue_admits_whole_pairs_in_order(logdir):
    first, second = start(STUB_MODE="gate"), start(STUB_MODE="gate")
    wait_for(lambda: states(first.run_id) == both("running"), what="first pair")
    time.sleep(0.3)
    assert states(second.run_id) == both("queued")
    (first.run_dir / "torch.release").touch()  # one slot frees: half a pair's worth, so nothing starts
    wait_for(lambda: states(first.run_id)["torch"] == "finished", what="first torch to finish")
    time.sleep(0.3)
    assert states(second.run_id) == both("queued")
    (first.run_dir / "tensorflow.release").touch()
    wait_for(lambda: states(second.run_id) == both("running"), what="the second pair, whole")
    for fw in runs.FRAMEWORKS:
        (second.run_dir / f"{fw}.release").touch()
    for run in (first, second):
        assert set(runs.wait(run.run_id, timeout=30).values()) == {Finished(0)}
    a, b = runs.get_run(first.run_id).frameworks, runs.get_run(second.run_id).frameworks
    assert max(j.ended for j in a.values()) <= min(j.started for j in b.values())
    assert abs(b["torch"].started - b["tensorflow"].started) < 1.0
    assert not list((logdir / ".queue").glob("**/[0-9]*.json"))  # no ticket left behind


def test_three_pairs_at_once_never_run_half_a_pair(logdir):
    """The issue "the queue splits pairs": with 2 slots, at no moment is one side of a pair running
    while the other waits, and every pair finishes."""
    launched = [start(STUB_STEP_S="0.05") for _ in range(3)]
    seen, deadline = [], time.monotonic() + 60
    while True:
        snapshot = {r.run_id: states(r.run_id) for r in launched}  # each run's jobs are read at one moment
        seen.append(snapshot)
        if all(s in runs.TERMINAL for jobs in snapshot.values() for s in jobs.values()):
            break
        assert time.monotonic() < deadline, snapshot
        time.sleep(0.02)
    split = [(run_id, jobs) for snap in seen for run_id, jobs in snap.items()
             if set(jobs.values()) == {"running", "queued"}]
    assert not split, split[:3]
    for run in launched[1:]:  # the later pairs really waited, whole
        assert any(snap[run.run_id] == both("queued") for snap in seen)
    assert all(runs.wait(r.run_id, timeout=30) == {"torch": Finished(0), "tensorflow": Finished(0)}
               for r in launched)
    pairs = sorted((runs.get_run(r.run_id).frameworks for r in launched), key=lambda j: j["torch"].started)
    for earlier, later in zip(pairs, pairs[1:]):  # 2 slots, 2 a pair: one pair at a time, both halves together
        assert max(j.ended for j in earlier.values()) <= min(j.started for j in later.values())
    assert all(abs(p["torch"].started - p["tensorflow"].started) < 1.0 for p in pairs)


def test_one_dispatcher_and_no_process_per_waiting_job(logdir):
    launched = [start(STUB_MODE="gate") for _ in range(4)]
    wait_for(lambda: states(launched[0].run_id) == both("running"), what="first pair")
    time.sleep(0.3)
    procs = processes(logdir)
    dispatchers = [pid for pid, cmd in procs.items() if "twinboard.runs.dispatcher" in cmd]
    trainers = [pid for pid, cmd in procs.items() if str(STUB) in cmd]
    assert dispatchers == [ready_dispatcher(logdir)] and len(trainers) == 2 and len(procs) == 3, procs
    for run in launched:
        for fw in runs.FRAMEWORKS:
            (run.run_dir / f"{fw}.release").touch()
    for run in launched:
        assert set(runs.wait(run.run_id, timeout=30).values()) == {Finished(0)}
    wait_for(lambda: not processes(logdir), what="the dispatcher to leave an empty queue")
    assert dispatcher(logdir) == {}


def test_stopping_a_queued_pair_takes_it_out_of_the_queue(logdir):
    busy = start(STUB_MODE="sleep")
    waiting = start()
    wait_for(lambda: states(busy.run_id) == {"torch": "running", "tensorflow": "running"}, what="first pair")
    assert states(waiting.run_id) == {"torch": "queued", "tensorflow": "queued"}
    stopped = runs.stop(waiting.run_id)
    assert {j.state for j in stopped.frameworks.values()} == {"stopped"}
    assert all(j.started is None for j in stopped.frameworks.values())  # never ran
    assert not list((logdir / ".queue").glob("[0-9]*.json"))
    runs.stop(busy.run_id, grace=0.5)
    time.sleep(0.5)
    assert not (waiting.run_dir / "torch.stdout").exists()  # a stopped job does not start later


def test_a_killed_dispatcher_is_restarted_by_a_read_or_a_launch_and_the_queue_goes_on(logdir):
    busy = start(STUB_MODE="gate")
    waiting = start()
    wait_for(lambda: states(busy.run_id) == both("running"), what="first pair")
    first = kill_dispatcher(logdir)
    assert states(waiting.run_id) == both("queued")  # this read finds no dispatcher and starts one
    assert states(busy.run_id) == both("running")  # the trainers live on without it
    second = kill_dispatcher(logdir)
    assert second != first
    later = start()  # a launch starts one too
    third = ready_dispatcher(logdir, not_in=(first, second))
    for fw in runs.FRAMEWORKS:
        (busy.run_dir / f"{fw}.release").touch()
    # busy's trainers were adopted, not our children: their end is seen without an exit status
    assert runs.wait(busy.run_id, timeout=30) == {"torch": Finished(None), "tensorflow": Finished(None)}
    for run in (waiting, later):
        assert runs.wait(run.run_id, timeout=30) == {"torch": Finished(0), "tensorflow": Finished(0)}
    a, b = runs.get_run(busy.run_id).frameworks, runs.get_run(waiting.run_id).frameworks
    assert max(j.ended for j in a.values()) <= min(j.started for j in b.values())
    assert [pid for pid, cmd in processes(logdir).items() if "twinboard.runs.dispatcher" in cmd] in ([], [third])


def test_killed_processes_show_as_failed_not_running(logdir):
    run = start(STUB_MODE="sleep")
    wait_for(lambda: states(run.run_id) == {"torch": "running", "tensorflow": "running"}, what="both running")
    torch_job, tf_job = job_file(run, "torch"), job_file(run, "tensorflow")
    # tensorflow: only the trainer is killed; the dispatcher records the signal
    os.kill(tf_job["trainer"]["pid"], signal.SIGKILL)
    wait_for(lambda: states(run.run_id)["tensorflow"] == "failed", what="tensorflow failed")
    # torch: dispatcher and trainer both killed, as if the machine's OOM killer took them: nobody records
    kill_dispatcher(logdir)
    os.kill(torch_job["trainer"]["pid"], signal.SIGKILL)
    wait_for(lambda: set(states(run.run_id).values()) == {"failed"}, what="both failed")
    jobs = runs.get_run(run.run_id).frameworks
    assert jobs["torch"].error.startswith("process died") and jobs["torch"].exit_code is None
    assert jobs["tensorflow"].exit_code == -signal.SIGKILL
    assert jobs["tensorflow"].error == "killed by signal SIGKILL"
    assert json.loads((run.run_dir / "torch.job.json").read_text())["state"] == "failed"  # settled on disk
    assert {j.state for j in runs.stop(run.run_id).frameworks.values()} == {"failed"}  # stays failed


def test_a_fresh_process_finds_every_run_in_its_true_state(logdir):
    done = start()
    crashed = start(STUB_MODE_TORCH="crash")
    for run in (done, crashed):
        runs.wait(run.run_id, timeout=30)
    live = start(STUB_MODE="sleep")
    wait_for(lambda: states(live.run_id) == {"torch": "running", "tensorflow": "running"}, what="live pair")
    (logdir / "uploads" / "bob").mkdir(parents=True)  # imported event files: not a launcher run
    code = ("import json; from twinboard import runs\n"
            "print(json.dumps({r.run_id: {f: j.describe() for f, j in r.frameworks.items()} "
            "for r in runs.list_runs()}))")
    out = subprocess.run([sys.executable, "-c", code], cwd=ROOT, capture_output=True, text=True, timeout=60,
                         env={**os.environ, "PYTHONPATH": str(ROOT)})
    assert out.returncode == 0, out.stderr
    assert json.loads(out.stdout) == {
        done.run_id: {"torch": "finished 5/5", "tensorflow": "finished 5/5"},
        crashed.run_id: {"torch": "failed (exit 3)", "tensorflow": "finished 5/5"},
        live.run_id: {"torch": "running 1/5", "tensorflow": "running 1/5"},
    }
    assert [r.run_id for r in runs.list_runs()] == [done.run_id, crashed.run_id, live.run_id]


def test_unreadable_files_never_break_the_listing(logdir, caplog):
    good = start()
    runs.wait(good.run_id, timeout=30)
    broken = logdir / "broken-run"
    broken.mkdir()
    (broken / "run.json").write_text('{"id": "broken-run", "spec": ')  # cut short
    (logdir / "not-a-run").mkdir()
    (logdir / "stray-file.txt").write_text("x")
    (good.run_dir / "tensorflow.job.json").write_text("\x00garbage")
    found = runs.list_runs()
    assert [r.run_id for r in found] == [good.run_id]
    assert found[0].frameworks["torch"].state == "finished"
    assert found[0].frameworks["tensorflow"].state == "failed"
    assert found[0].frameworks["tensorflow"].error == "unreadable tensorflow.job.json"
    assert "broken-run: unreadable run.json" in caplog.text
    with pytest.raises(runs.LauncherError, match="unreadable run.json"):
        runs.get_run("broken-run")
    for bad in ("../etc", "not-a-run", "", "nope"):
        with pytest.raises(runs.RunNotFound):
            runs.get_run(bad)


def test_bad_launch_inputs_fail_with_a_message_and_start_nothing(logdir, monkeypatch):
    for name in ("../escape", ".hidden", "uploads", "a/b"):
        result = runs.launch(SPEC, name=name)
        assert isinstance(result, Failed) and repr(name) in result.stderr
    for owner in ("", "x" * 201, 7):
        result = runs.launch(SPEC, name="o", owner=owner)
        assert isinstance(result, Failed) and "owner" in result.stderr and not (logdir / "o").exists()
    monkeypatch.setenv("TWINBOARD_MAX_PROCS", "zero")
    result = runs.launch(SPEC, name="m")
    assert isinstance(result, Failed) and "TWINBOARD_MAX_PROCS='zero'" in result.stderr
    assert runs.get_run("m").frameworks["torch"].state == "failed"
    assert runs.list_runs() and not list(logdir.glob("*/*.stdout"))


def test_a_chosen_name_is_never_changed_and_the_trainer_command_is_overridable(logdir, monkeypatch):
    first, second = runs.launch(SPEC, name="same"), runs.launch(SPEC, name="same")
    assert first.run_id == "same" and isinstance(second, Failed) and "'same' exists already" in second.stderr
    spec, cmd = "/r/spec.json", runs.trainer_command
    monkeypatch.delenv("TWINBOARD_TRAINER_CMD")
    assert cmd("tensorflow", Path(spec)) == [sys.executable, "-m", "trainers.tf_trainer", spec]
    assert cmd("torch", Path(spec), "run {framework} --x") == ["run", "torch", "--x", spec]
    assert cmd("torch", Path(spec), ["{python}", "{spec}", "y"]) == [sys.executable, spec, "y"]


def test_stop_works_when_the_dispatcher_was_killed_but_the_trainers_run(logdir):
    run = start(STUB_MODE="sleep", STUB_MODE_TENSORFLOW="hang", STUB_GRANDCHILD="1")
    wait_for(lambda: states(run.run_id) == {"torch": "running", "tensorflow": "running"}, what="both running")
    pgids = {fw: job_file(run, fw)["pgid"] for fw in runs.FRAMEWORKS}
    kill_dispatcher(logdir)
    assert states(run.run_id) == both("running")  # the trainers live on, so the jobs do
    stopped = runs.stop(run.run_id, grace=1.0)  # the dispatcher that read started adopts and ends them
    assert {fw: j.state for fw, j in stopped.frameworks.items()} == both("stopped")
    assert {fw: group_alive(g) for fw, g in pgids.items()} == {"torch": [], "tensorflow": []}


def test_a_dispatcher_that_cannot_start_is_a_failed_launch(logdir, monkeypatch, tmp_path):
    broken = tmp_path / "python"  # an interpreter that dies at once, as one without twinboard would
    broken.write_text("#!/bin/sh\necho 'No module named twinboard' >&2\nexit 1\n")
    broken.chmod(0o755)
    monkeypatch.setattr(sys, "executable", str(broken))
    result = runs.launch(SPEC, name="nodisp")
    assert isinstance(result, Failed) and "No module named twinboard" in result.stderr and result.exit_code == 1
    assert {j.state for j in runs.get_run("nodisp").frameworks.values()} == {"failed"}
    assert not list((logdir / ".queue").glob("**/[0-9]*.json"))  # not left waiting for a dispatcher


def test_the_queue_caps_waiting_pairs_in_all_and_per_user(logdir, monkeypatch):
    monkeypatch.setenv("TWINBOARD_MAX_QUEUED", "3")
    monkeypatch.setenv("TWINBOARD_MAX_QUEUED_PER_USER", "2")
    busy = start(STUB_MODE="gate", owner="alice")  # running: it takes no place in the queue
    wait_for(lambda: states(busy.run_id) == both("running"), what="first pair")
    kept = [start(owner="alice"), start(owner="alice")]
    refused = runs.launch(SPEC, owner="alice")
    assert isinstance(refused, Failed) and refused.exit_code is None
    assert "user 'alice' has 2 pairs waiting" in refused.stderr
    assert "TWINBOARD_MAX_QUEUED_PER_USER=2" in refused.stderr
    kept.append(start())  # no owner: launches without a user count as one user of their own
    refused = runs.launch(SPEC, owner="bob")
    assert isinstance(refused, Failed) and "3 pairs are waiting" in refused.stderr
    assert "TWINBOARD_MAX_QUEUED=3" in refused.stderr
    assert [r.run_id for r in runs.list_runs()] == [busy.run_id, *(r.run_id for r in kept)]
    assert sorted(p.name for p in logdir.iterdir()) == sorted([".queue", busy.run_id, *(r.run_id for r in kept)])
    assert json.loads((busy.run_dir / "run.json").read_text())["owner"] == "alice"
    runs.stop(kept[0].run_id)  # a waiting pair leaves: there is room for one more of alice's
    assert isinstance(runs.launch(SPEC, owner="alice"), Launched)


def test_a_launch_that_cannot_write_its_run_leaves_nothing_behind(logdir, monkeypatch, tmp_path):
    """Running as root ignores folder permissions (chmod 0555 stops nobody), so the two failures are
    made honestly otherwise: a logdir whose parent is a regular file (mkdir fails, as in any place
    that cannot be written), and a disk that fills up after the run folder, spec, run.json and the
    queue ticket were written: the second job file's write raises ENOSPC, as a full disk raises it."""
    blocked = tmp_path / "a-file"
    blocked.write_text("x")
    result = runs.launch(SPEC, logdir=blocked / "logs")
    assert isinstance(result, Failed) and str(blocked / "logs") in result.stderr
    assert "Not a directory" in result.stderr and blocked.read_text() == "x"

    real_write = local_backend.write_json

    def full_disk(path, data, *args, **kwargs):
        if Path(path).name == "tensorflow.job.json":
            raise OSError(errno.ENOSPC, os.strerror(errno.ENOSPC), str(path))
        return real_write(path, data, *args, **kwargs)

    monkeypatch.setattr(local_backend, "write_json", full_disk)
    result = runs.launch(SPEC, name="full")
    assert isinstance(result, Failed) and "No space left on device" in result.stderr
    assert str(logdir / "full") in result.stderr
    assert not (logdir / "full").exists() and runs.list_runs() == []
    assert not list((logdir / ".queue").glob("**/[0-9]*.json")) and dispatcher(logdir) == {}
    monkeypatch.setattr(local_backend, "write_json", real_write)  # space again: the same name launches
    again = runs.launch(SPEC, name="full")
    assert isinstance(again, Launched) and runs.wait(again.run_id, timeout=30) == {"torch": Finished(0), "tensorflow": Finished(0)}


def test_config_reads_the_environment(tmp_path, monkeypatch):
    from twinboard import config

    monkeypatch.setenv("TWINBOARD_LOGDIR", str(tmp_path / "a" / "b"))
    assert config.logdir() == tmp_path / "a" / "b" and (tmp_path / "a" / "b").is_dir()
    monkeypatch.delenv("TWINBOARD_LOGDIR")
    monkeypatch.chdir(tmp_path)
    assert config.logdir() == tmp_path / "logs" and (tmp_path / "logs").is_dir()
    monkeypatch.delenv("TWINBOARD_MAX_PROCS", raising=False)
    assert config.max_procs() == 2
    monkeypatch.setenv("TWINBOARD_MAX_PROCS", "3")
    assert config.max_procs() == 3
    for bad in ("1", "0", "-1", "two"):  # a pair's two trainers run together: fewer than 2 slots is refused
        monkeypatch.setenv("TWINBOARD_MAX_PROCS", bad)
        with pytest.raises(ValueError, match=f"TWINBOARD_MAX_PROCS='{bad}': must be a whole number >= 2"):
            config.max_procs()
    for name, read, default in (("TWINBOARD_MAX_QUEUED", config.max_queued, 20),
                                ("TWINBOARD_MAX_QUEUED_PER_USER", config.max_queued_per_user, 5)):
        monkeypatch.delenv(name, raising=False)
        assert read() == default
        monkeypatch.setenv(name, " 7 ")
        assert read() == 7
        for bad in ("0", "-3", "many", "2.5"):
            monkeypatch.setenv(name, bad)
            with pytest.raises(ValueError, match=f"{name}='{bad}': must be a whole number >= 1"):
                read()
