"""A real matched pair through the launcher: both trainers run 5 steps and write `loss/train` event files.

The slowest test here (two framework imports: 70 s measured on the busy 2-core machine); it skips until both trainers exist.
"""
from __future__ import annotations

import importlib.util
from pathlib import Path

import pytest

from tests.stub_trainer import kill_spawned
from trainers.spec import RunSpec
from twinboard import launcher
from twinboard.records import is_event_file, iter_events

MISSING = [m for m in launcher.TRAINER_MODULES.values() if importlib.util.find_spec(m) is None]
pytestmark = pytest.mark.skipif(bool(MISSING), reason=f"trainer modules not written yet: {', '.join(MISSING)}")


@pytest.fixture
def logdir(tmp_path, monkeypatch):
    root = tmp_path / "logs"
    monkeypatch.setenv("TWINBOARD_LOGDIR", str(root))
    monkeypatch.delenv("TWINBOARD_TRAINER_CMD", raising=False)  # the real trainers
    monkeypatch.setenv("TWINBOARD_MAX_PROCS", "2")
    yield root
    kill_spawned(root)


def tags_in(folder: Path) -> set[str]:
    return {value.tag for path in folder.iterdir() if is_event_file(path)
            for event in iter_events(path) for value in event.summary.value}


def test_a_real_pair_finishes_and_both_sides_log_train_loss(logdir):
    run = launcher.launch(RunSpec(task="digits", model="mlp", steps=5, epochs=1, log_every=1))
    assert isinstance(run, launcher.Launched), run
    outcomes = launcher.wait(run.run_id, timeout=240)
    detail = {fw: (run.run_dir / f"{fw}.stderr").read_text()[-2000:] for fw in launcher.FRAMEWORKS}
    assert outcomes == {"torch": launcher.Finished(0), "tensorflow": launcher.Finished(0)}, detail
    for fw, job in launcher.get_run(run.run_id).frameworks.items():
        assert (job.state, job.step, job.total_steps) == ("finished", 5, 5), (fw, job)
        assert "loss/train" in tags_in(run.run_dir / fw), fw
