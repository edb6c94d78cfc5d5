"""Data files in the trainers: a .csv's split and batch order are the same in a fresh process, and ONE
shared launch of two real pairs, a .npz and a .csv, side by side, whose two sides read the same
bytes and agree step for step."""
from __future__ import annotations

import json
import os
import subprocess
import sys
from pathlib import Path

import numpy as np
import pytest

from tests.datafile_payloads import GOOD, X, csv_bytes, npz
from twinboard import datafiles
from twinboard.contract import RunSpec

ROOT = Path(__file__).resolve().parents[1]


def test_a_csv_split_and_batch_order_are_the_same_in_a_fresh_process(data_logdir):
    from trainers import data

    datafiles.save_data_file(data_logdir, "t.csv", csv_bytes())
    spec = RunSpec(task="file", data="t.csv", target="price", seed=3, batch_size=16, epochs=2, dtype="float64")
    run_dir = data_logdir / "some-run"
    ds = data.load(spec, run_dir)
    assert (len(ds.x_train), len(ds.x_val), ds.n_classes, ds.y_train.shape) == (64, 16, 0, (64, 1))
    assert sorted(np.concatenate([ds.x_train[:, 0], ds.x_val[:, 0]])) == sorted(X[:, 0])
    here = {"x": ds.x_train.tolist(), "order": [i.tolist() for _, _, i in data.batches(spec, len(ds.x_train))]}
    code = ("import json, sys; from trainers import data; from twinboard.contract import RunSpec;"
            "s = RunSpec.from_json(sys.argv[1]); ds = data.load(s);"
            "print(json.dumps({'x': ds.x_train.tolist(), 'order': [i.tolist() for _, _, i in data.batches(s, 64)],"
            "'sha256': ds.sha256}))")
    env = {**os.environ, "TWINBOARD_RUN_DIR": str(run_dir)}  # as the dispatcher starts a trainer
    out = subprocess.run([sys.executable, "-c", code, spec.to_json()], cwd=ROOT, env=env, capture_output=True,
                         text=True, check=True)
    there = json.loads(out.stdout)
    assert there.pop("sha256") == ds.sha256 and there == here


# --- both real trainers -----------------------------------------------------------------------------
TRAIN = RunSpec(task="file", data="pair.npz", hidden=(8,), steps=10, epochs=1, log_every=1, batch_size=16,
                embedding_samples=8, dtype="float64")


@pytest.fixture(scope="module")
def trained(tmp_path_factory):
    """A .npz pair and a .csv pair, launched together (4 trainer slots: ~14 s for both on 2 cores)."""
    from tests.conftest import real_trainers
    from tests.stub_trainer import kill_spawned
    from twinboard import runs

    logdir = tmp_path_factory.mktemp("datafile") / "logs"
    logdir.mkdir()
    datafiles.save_data_file(logdir, "pair.npz", npz(**GOOD))
    datafiles.save_data_file(logdir, "pair.csv", csv_bytes())
    specs = {"npz": TRAIN, "csv": TRAIN.replace(data="pair.csv", target="price")}
    with real_trainers():
        os.environ["TWINBOARD_MAX_PROCS"] = "4"  # restored by real_trainers
        launched = {k: runs.launch(spec, logdir=logdir) for k, spec in specs.items()}
        outcomes = {k: runs.wait(run.run_id, timeout=300, logdir=logdir) for k, run in launched.items()}
    yield logdir, specs, launched, outcomes
    kill_spawned(logdir)


@pytest.mark.parametrize("kind", ["npz", "csv"])
def test_both_real_trainers_train_on_the_same_bytes_and_batches(trained, kind):
    from trainers import data
    from twinboard import runs
    from twinboard.events.scalars import read_scalars

    logdir, specs, launched, outcomes = trained
    run = launched[kind]
    assert isinstance(run, runs.Launched), run
    assert all(isinstance(o, runs.Finished) for o in outcomes[kind].values()), outcomes[kind]
    ds = data.load(specs[kind], run.run_dir)
    sha = datafiles.summary_of(logdir, specs[kind].data).sha256
    for fw in ("torch", "tensorflow"):
        settings = json.loads((run.run_dir / fw / "settings.json").read_text())["data"]
        assert settings["file"] == {"name": specs[kind].data, "target": specs[kind].target, "sha256": sha}
        assert (settings["n_train"], settings["n_val"]) == (len(ds.x_train), len(ds.x_val)) == (64, 16)
    scalars = read_scalars(run.run_dir)
    loss = {fw: scalars[(scalars.run == fw) & (scalars.tag == "loss/train_fp64")].value.to_numpy()
            for fw in ("torch", "tensorflow")}
    assert len(loss["torch"]) == 10
    # Shared initial weights, float64: the same rows in the same order agree to rounding (~1e-15).
    np.testing.assert_allclose(loss["tensorflow"], loss["torch"], rtol=1e-10)
