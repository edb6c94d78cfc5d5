"""The launcher against a stub trainer: launch, stop, and every run's state as read back from its files
(success, crash, killed processes, a fresh process, unreadable files), bad inputs, and its settings.
A real detached dispatcher, real trainer processes, real files; all in tmp_path.

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

from tests.launcher_helpers import SPEC, both, dispatcher, kill_dispatcher, start, states, wait_for
from tests.stub_trainer import group_alive
from twinboard import runs
from twinboard.contract import RunSpec
from twinboard.runs import Failed, Finished, Launched, Stopped
from twinboard.runs import local as local_backend  # only to make its disk fill up (see the full-disk test)

ROOT = Path(__file__).resolve().parents[1]


def job_file(run: Launched, fw: str) -> dict:
    return json.loads((run.run_dir / f"{fw}.job.json").read_text())


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
