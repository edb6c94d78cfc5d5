"""Fixtures shared across test files.

`real_pair`: ONE real matched pair, started through the launcher exactly as the Launch page and the
CLI start it, shared by every test that needs real trainer output (end to end, histograms, graphs,
embeddings). Each pair costs two framework imports and tf.function tracing, ~15-25 s of the 2-core
machine, so the suite pays for it once.
"""
from __future__ import annotations

import os
import sys
from contextlib import contextmanager
from dataclasses import dataclass
from pathlib import Path

import pytest

from twinboard.contract import RunSpec

REAL_SPEC = RunSpec(task="digits", model="mlp", hidden=(64, 32), steps=20, epochs=1, log_every=1,
                    histogram_every=5, embedding_steps=(10,), embedding_samples=24)


@pytest.fixture
def logdir(tmp_path, monkeypatch):
    """A fresh logdir whose launches run tests/stub_trainer.py (modes via STUB_* env vars);
    teardown kills whatever the test left running under it."""
    from tests.stub_trainer import STUB, kill_spawned

    root = tmp_path / "logs"
    monkeypatch.setenv("TWINBOARD_LOGDIR", str(root))
    monkeypatch.setenv("TWINBOARD_TRAINER_CMD", f"{sys.executable} {STUB} {{spec}} {{framework}}")
    monkeypatch.setenv("TWINBOARD_MAX_PROCS", "2")
    monkeypatch.setenv("TWINBOARD_PASS_ENV", "STUB_")  # the stub's modes reach it through the queue
    for name in [k for k in os.environ if k.startswith("STUB_")]:
        monkeypatch.delenv(name)
    yield root
    kill_spawned(root)


@dataclass(frozen=True)
class RealPair:
    logdir: Path  # holds this one run only
    run_id: str
    run_dir: Path  # logdir / run_id, with torch/ and tensorflow/
    outcomes: dict  # framework -> launcher outcome
    spec: RunSpec


@contextmanager
def real_trainers():
    """The real trainers (no TWINBOARD_TRAINER_CMD), two slots, the environment restored after."""
    saved = {k: os.environ.get(k) for k in ("TWINBOARD_LOGDIR", "TWINBOARD_TRAINER_CMD", "TWINBOARD_MAX_PROCS")}
    os.environ.pop("TWINBOARD_TRAINER_CMD", None)
    os.environ["TWINBOARD_MAX_PROCS"] = "2"
    try:
        yield
    finally:
        for k, v in saved.items():
            if v is None:
                os.environ.pop(k, None)
            else:
                os.environ[k] = v


@pytest.fixture(scope="session")
def real_pair(tmp_path_factory) -> RealPair:
    from tests.stub_trainer import kill_spawned
    from twinboard import runs

    logdir = tmp_path_factory.mktemp("real_pair") / "logs"
    with real_trainers():
        run = runs.launch(REAL_SPEC, logdir=logdir)
        assert isinstance(run, runs.Launched), run
        outcomes = runs.wait(run.run_id, timeout=300, logdir=logdir)
    yield RealPair(logdir, run.run_id, run.run_dir, outcomes, REAL_SPEC)
    kill_spawned(logdir)


# --- Launch, Scalars and pair-choice page tests (tests/test_page_launch.py, test_page_scalars.py,
# test_page_pair_choice.py): a logdir whose launches run the stub trainer, and real scalar event files.
@pytest.fixture
def launch_logdir(tmp_path, monkeypatch):
    """tmp_path as the logdir, launches running tests/stub_trainer.py (modes via STUB_* env vars);
    teardown stops what the test left queued or running and kills whatever a stop left behind."""
    from tests.stub_trainer import STUB, kill_spawned
    from twinboard import runs

    monkeypatch.setenv("TWINBOARD_LOGDIR", str(tmp_path))
    monkeypatch.setenv("TWINBOARD_TRAINER_CMD", f"{{python}} {STUB} {{spec}} {{framework}}")
    monkeypatch.setenv("TWINBOARD_PASS_ENV", "STUB_")  # the stub's modes reach it through the queue
    yield tmp_path
    try:
        for run in runs.list_runs(tmp_path):  # teardown: no stub outlives its test
            if run.state in ("queued", "running"):
                runs.stop(run.run_id, logdir=tmp_path, grace=1.0)
    finally:
        kill_spawned(tmp_path)  # and whatever a stop left behind


@pytest.fixture(scope="session")
def event_logdir(tmp_path_factory):
    """Two matched pairs of real event files (3,000 and 60 steps), written once per session (once per
    xdist worker that runs a file using it: a subprocess that imports tensorboardX and tensorflow)."""
    import subprocess

    from tests.apptest_pages import ROOT
    from tests.scalar_pairs import WRITER

    root = tmp_path_factory.mktemp("scalars")
    script = tmp_path_factory.mktemp("writer") / "write_events.py"
    script.write_text(WRITER)  # a file, not -c: AutoGraph reads the loop's source
    out = subprocess.run([sys.executable, str(script), str(root)], cwd=ROOT, capture_output=True,
                         text=True, timeout=240)
    assert out.returncode == 0, out.stderr[-3000:]
    return root


# --- graph and data-file tests (tests/test_graph_*.py, tests/test_datafile_*.py) -----------------------
@pytest.fixture(scope="session")
def runs(tmp_path_factory) -> Path:
    """Graph event files the real writers wrote (tests/graph_writers.py), once per session per xdist
    worker. Test files that define their own `runs` fixture (trainer runs) override this one."""
    from tests.graph_writers import written_runs

    return written_runs(tmp_path_factory)


@pytest.fixture
def data_logdir(tmp_path, monkeypatch) -> Path:
    """tmp_path as the logdir, with no team mode and the default data-file size cap and quota."""
    monkeypatch.setenv("TWINBOARD_LOGDIR", str(tmp_path))
    for var in ("TWINBOARD_TEAM", "TWINBOARD_DATA_MAX_BYTES", "TWINBOARD_DATA_QUOTA_BYTES"):
        monkeypatch.delenv(var, raising=False)
    return tmp_path
