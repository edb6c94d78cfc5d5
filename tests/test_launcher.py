"""The launcher against a stub trainer: real detached processes, real files, a real queue; all in tmp_path.

Every process a test starts carries its TWINBOARD_LOGDIR, and the fixture kills all of them afterwards.
"""
from __future__ import annotations

import json
import os
import signal
import subprocess
import sys
import time
from pathlib import Path

import pytest

from tests.stub_trainer import group_alive
from twinboard.contract import RunSpec
from twinboard import runs
from twinboard.runs import Failed, Finished, Launched, Stopped

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


def start(spec: RunSpec = SPEC, **env: str) -> Launched:
    """Launch with STUB_* settings for this launch only (the supervisors copy the environment)."""
    old = {k: os.environ.get(k) for k in env}
    os.environ.update(env)
    try:
        run = runs.launch(spec)
    finally:
        for k, v in old.items():
            os.environ.pop(k) if v is None else os.environ.__setitem__(k, v)
    assert isinstance(run, Launched), run
    return run


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


def test_queue_runs_at_most_n_and_starts_in_order(logdir):
    first, second = start(STUB_MODE="gate"), start(STUB_MODE="gate")
    wait_for(lambda: states(first.run_id) == {"torch": "running", "tensorflow": "running"}, what="first pair")
    time.sleep(0.6)  # three queue polls: the second pair must still be waiting
    assert states(second.run_id) == {"torch": "queued", "tensorflow": "queued"}

    def running() -> int:
        return sum(s == "running" for r in (first, second) for s in states(r.run_id).values())

    (first.run_dir / "torch.release").touch()  # one slot frees: the head of the queue (torch) gets it
    wait_for(lambda: states(second.run_id)["torch"] == "running", what="second torch to start")
    assert states(second.run_id)["tensorflow"] == "queued" and running() <= 2
    (first.run_dir / "tensorflow.release").touch()
    wait_for(lambda: states(second.run_id)["tensorflow"] == "running", what="second tensorflow to start")
    assert running() <= 2
    for fw in runs.FRAMEWORKS:
        (second.run_dir / f"{fw}.release").touch()
    for run in (first, second):
        assert set(runs.wait(run.run_id, timeout=30).values()) == {Finished(0)}
    a, b = runs.get_run(first.run_id).frameworks, runs.get_run(second.run_id).frameworks
    assert a["torch"].ended <= b["torch"].started <= b["tensorflow"].started
    assert a["tensorflow"].ended <= b["tensorflow"].started
    assert not list((logdir / ".queue").glob("[0-9]*.json"))  # no ticket left behind


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


def test_a_dead_supervisor_ticket_does_not_block_the_queue(logdir):
    busy = start(STUB_MODE="sleep")
    waiting = start()
    wait_for(lambda: states(busy.run_id)["tensorflow"] == "running", what="first pair")
    os.kill(job_file(waiting, "torch")["supervisor"]["pid"], signal.SIGKILL)
    wait_for(lambda: states(waiting.run_id)["torch"] == "failed", what="queued job found dead")
    assert "supervisor died before the trainer started" in runs.get_run(waiting.run_id).frameworks["torch"].error
    runs.stop(busy.run_id, grace=0.5)
    result = runs.wait(waiting.run_id, timeout=30)
    assert result["tensorflow"] == Finished(0) and isinstance(result["torch"], Failed)


def test_killed_processes_show_as_failed_not_running(logdir):
    run = start(STUB_MODE="sleep")
    wait_for(lambda: states(run.run_id) == {"torch": "running", "tensorflow": "running"}, what="both running")
    torch_job, tf_job = job_file(run, "torch"), job_file(run, "tensorflow")
    # torch: supervisor and trainer both killed, as if the machine's OOM killer took them: nobody records
    os.kill(torch_job["supervisor"]["pid"], signal.SIGKILL)
    os.kill(torch_job["trainer"]["pid"], signal.SIGKILL)
    # tensorflow: only the trainer is killed; its supervisor records the signal
    os.kill(tf_job["trainer"]["pid"], signal.SIGKILL)
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


def test_stop_works_when_the_supervisor_is_gone_but_the_trainer_runs(logdir):
    run = start(STUB_MODE="sleep", STUB_GRANDCHILD="1")
    wait_for(lambda: states(run.run_id) == {"torch": "running", "tensorflow": "running"}, what="both running")
    job = job_file(run, "torch")
    os.kill(job["supervisor"]["pid"], signal.SIGKILL)
    time.sleep(0.3)
    assert states(run.run_id)["torch"] == "running"  # the trainer lives on, so the job does
    assert runs.stop(run.run_id, grace=1.0).frameworks["torch"].state == "stopped"
    assert group_alive(job["pgid"]) == []


def test_a_supervisor_that_cannot_start_is_a_failed_launch(logdir, monkeypatch, tmp_path):
    broken = tmp_path / "python"  # an interpreter that dies at once, as one without twinboard would
    broken.write_text("#!/bin/sh\necho 'No module named twinboard' >&2\nexit 1\n")
    broken.chmod(0o755)
    monkeypatch.setattr(sys, "executable", str(broken))
    result = runs.launch(SPEC, name="nosup")
    assert isinstance(result, Failed) and "No module named twinboard" in result.stderr
    assert {j.state for j in runs.get_run("nosup").frameworks.values()} == {"failed"}


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
    for bad in ("0", "-1", "two"):
        monkeypatch.setenv("TWINBOARD_MAX_PROCS", bad)
        with pytest.raises(ValueError, match=f"TWINBOARD_MAX_PROCS='{bad}'"):
            config.max_procs()
