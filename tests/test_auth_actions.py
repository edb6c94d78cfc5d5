"""Team mode on the server side: every change goes through twinboard.auth.actions, which refuses a
role that may not do it before anything is written, and records what was done. Real launches (the
stub trainer), real uploads (a tensorboardX event file), real audit lines."""
from __future__ import annotations

import io
import json

import pytest

from twinboard import runs, tagmap, uploads
from twinboard.auth import ADMIN, RUNNER, VIEWER, PermissionDenied, User, actions, owner_of, read_audit
from twinboard.contract import RunSpec

VAL, RITA, BOB, ADA = User("val", VIEWER), User("rita", RUNNER), User("bob", RUNNER), User("ada", ADMIN)
SPEC = RunSpec(steps=2, epochs=1)


@pytest.fixture
def team(logdir, monkeypatch):
    monkeypatch.setenv("TWINBOARD_TEAM", "1")
    logdir.mkdir(parents=True, exist_ok=True)
    return logdir


def event_file() -> bytes:
    from twinboard.contract import frame
    from tensorboard.compat.proto import event_pb2

    ev = event_pb2.Event(step=1, wall_time=1.0)
    ev.summary.value.add(tag="loss", simple_value=0.5)
    return frame(event_pb2.Event(file_version="brain.Event:2").SerializeToString()) + frame(ev.SerializeToString())


def test_a_viewer_is_refused_everything_and_nothing_is_written(team):
    with pytest.raises(PermissionDenied, match="val"):
        actions.launch(VAL, SPEC, "v", team)
    with pytest.raises(PermissionDenied):
        actions.import_upload(VAL, [("events.out.tfevents.1.x", io.BytesIO(event_file()))], "v", team)
    assert runs.list_runs(team) == [] and not (team / "uploads" / "v").exists()


def test_a_runner_stops_and_deletes_only_their_own_runs_an_admin_any(team):
    mine = actions.launch(RITA, SPEC, "rita-run", team)
    theirs = actions.launch(BOB, SPEC, "bob-run", team)
    assert isinstance(mine, runs.Launched) and isinstance(theirs, runs.Launched)
    assert owner_of(team / "rita-run") == "rita"
    for run in ("rita-run", "bob-run"):
        runs.wait(run, timeout=60, logdir=team)
    with pytest.raises(PermissionDenied, match="rita"):
        actions.stop(RITA, "bob-run", team)
    with pytest.raises(PermissionDenied):
        actions.delete_run(RITA, "bob-run", team)
    assert (team / "bob-run").is_dir()
    actions.delete_run(RITA, "rita-run", team)
    actions.delete_run(ADA, "bob-run", team)
    assert runs.list_runs(team) == []
    done = [(a["user"], a["action"], a["target"]) for a in read_audit(logdir=team)]
    assert ("rita", "launch", "rita-run") in done and ("ada", "delete_run", "bob-run") in done


def test_uploads_and_their_mappings_belong_to_who_made_them(team):
    actions.import_upload(RITA, [("events.out.tfevents.1.x", io.BytesIO(event_file()))], "alice", team)
    assert owner_of(team / "uploads" / "alice") == "rita"
    mapping = tagmap.Mapping(x_axis="epoch", steps_per_epoch=10)
    with pytest.raises(PermissionDenied):
        actions.save_mapping(BOB, "alice", mapping, team)
    with pytest.raises(PermissionDenied):
        actions.rename_upload(BOB, "alice", "mallory", team)
    actions.save_mapping(RITA, "alice", mapping, team)
    actions.rename_upload(RITA, "alice", "alice2", team)
    assert [u.name for u in uploads.list_uploads(team)] == ["alice2"]
    saved = json.loads((team / "uploads" / "alice2" / tagmap.MAPPING_FILE).read_text())
    assert saved["x_axis"] == "epoch"
    with pytest.raises(PermissionDenied):
        actions.delete_upload(BOB, "alice2", team)
    actions.delete_upload(ADA, "alice2", team)
    assert uploads.list_uploads(team) == []


def test_solo_mode_allows_everything_as_the_local_admin(logdir, monkeypatch):
    monkeypatch.delenv("TWINBOARD_TEAM", raising=False)
    logdir.mkdir(parents=True, exist_ok=True)
    assert isinstance(actions.launch(VAL, SPEC, "solo", logdir), runs.Launched)  # no roles without team mode
