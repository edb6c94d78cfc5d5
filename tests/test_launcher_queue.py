"""The launcher's queue against a stub trainer: pairs admitted whole and in order into the slots, one
dispatcher for all waiting jobs (restarted when killed), a queued pair stopped, and the caps on waiting
pairs. A real detached dispatcher, real trainer processes, real files, a real queue; all in tmp_path.

Every process a test starts carries its TWINBOARD_LOGDIR, and the fixture kills all of them afterwards.
"""
from __future__ import annotations

import json
import sys
import time
from pathlib import Path

from tests.launcher_helpers import SPEC, both, dispatcher, kill_dispatcher, ready_dispatcher, start, states, wait_for
from tests.stub_trainer import STUB, spawned_under
from twinboard import runs
from twinboard.runs import Failed, Finished, Launched


def processes(logdir: Path) -> dict[int, str]:
    """Every live process the launches under `logdir` made, by pid: its command line."""
    found = {}
    for pid in spawned_under(logdir):
        try:
            found[pid] = Path(f"/proc/{pid}/cmdline").read_bytes().replace(b"\0", b" ").decode()
        except OSError:
            pass
    return found


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
