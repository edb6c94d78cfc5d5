"""Both trainers as real processes on tiny specs: event files TensorBoard reads, status, settings.

One module-scoped fixture trains every spec once: one process per framework, side by side, runs the
trainer's main() over all of them (one framework import instead of four). The command line itself,
`python -m trainers.X spec.json`, is exercised by the failure tests below (bad spec, crash, SIGTERM).
"""
from __future__ import annotations

import json
import subprocess
import sys
from pathlib import Path

import numpy as np
import pytest

from trainers import data, loop
from trainers.loop import Cadence
from trainers.runtime import StatusFile
from trainers.settings import SETTINGS_KEYS
from trainers.summaries import histogram_buckets, histogram_many
from trainers import models
from trainers.models.classic import chw_to_hwc_rows
from trainers.weights import ensure_shared_init, file_sha256
from twinboard.contract import RunSpec

ROOT = Path(__file__).resolve().parents[1]
MODULES = {"torch": "trainers.torch_trainer", "tensorflow": "trainers.tf_trainer"}
TRAIN_TAGS = ["loss/train", "loss/val", "accuracy/train", "accuracy/val", "lr", "perf/step_ms",
              "perf/samples_per_s"]

SPECS = {
    # 1437 train samples / 64 = 22 steps per epoch; steps=30 ends mid-epoch 2.
    "mlp": RunSpec(task="digits", model="mlp", hidden=(32, 16), batch_size=64, steps=30, log_every=4,
                   histogram_every=10, embedding_steps=(5,), embedding_samples=40),
    "cnn": RunSpec(task="digits", model="cnn", hidden=(16,), batch_size=64, steps=6, log_every=1,
                   dtype="float64", optimizer="adam", lr=0.003, embedding_samples=20),
    "regression": RunSpec(task="regression", hidden=(16,), n_samples=200, batch_size=32, epochs=2,
                          log_every=1, dtype="float64", weight_decay=0.01),
    "spirals": RunSpec(task="spirals", hidden=(8, 8), n_samples=200, batch_size=40, epochs=2, log_every=1),
}
OVERRIDE = "spirals"  # trained with --logdir pointing elsewhere


def _run_all(root: Path) -> dict[str, dict[str, Path]]:
    dirs: dict[str, dict[str, Path]] = {}
    for name, spec in SPECS.items():
        (root / name).mkdir()
        spec.save(root / name / "spec.json")
        dirs[name] = {"run": root / name, **{fw: root / name / fw for fw in MODULES}}
    dirs[OVERRIDE].update({fw: root / "elsewhere" / fw for fw in MODULES})
    procs = []
    for fw, module in MODULES.items():
        argvs = [[str(root / n / "spec.json")] for n in SPECS if n != OVERRIDE]
        argvs.append([str(root / OVERRIDE / "spec.json"), "--logdir", str(dirs[OVERRIDE][fw])])
        code = f"import sys, json; from {module} import main; sys.exit(max(main(a) for a in json.loads(sys.argv[1])))"
        procs.append(subprocess.Popen([sys.executable, "-c", code, json.dumps(argvs)], cwd=ROOT,
                                      stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True))
    for p in procs:
        _, err = p.communicate(timeout=300)
        assert p.returncode == 0, f"{p.args[:3]} exited {p.returncode}:\n{err[-4000:]}"
    return dirs


@pytest.fixture(scope="module")
def runs(tmp_path_factory):
    return _run_all(tmp_path_factory.mktemp("trainers"))


def accumulate(logdir: Path):
    from tensorboard.backend.event_processing.event_accumulator import EventAccumulator

    ea = EventAccumulator(str(logdir), size_guidance={"scalars": 0, "histograms": 0, "tensors": 0})
    ea.Reload()
    return ea


def scalar_series(ea, tag: str) -> dict[int, float]:
    """tensorboardX writes simple_value scalars; tf.summary (TF2) writes scalar tensors."""
    from tensorboard.util import tensor_util

    if tag in ea.Tags()["scalars"]:
        return {e.step: e.value for e in ea.Scalars(tag)}
    return {e.step: float(tensor_util.make_ndarray(e.tensor_proto)) for e in ea.Tensors(tag)}


@pytest.mark.parametrize("name", list(SPECS))
def test_scalars_and_histograms_tensorboard_reads(runs, name):
    spec = SPECS[name]
    ds = data.load(spec)
    cad = Cadence.from_spec(spec, len(ds.x_train))
    tags = TRAIN_TAGS if ds.n_classes else [t for t in TRAIN_TAGS if not t.startswith("accuracy")]
    hist_tags = [f"{kind}/{p.tag}" for kind in ("weights", "grads")
                 for p in models.plan(spec, ds.n_features, ds.n_outputs)[1]]
    log_steps = [s for s in range(1, cad.total_steps + 1) if cad.is_log(s)]
    val_steps = [s for s in range(1, cad.total_steps + 1) if cad.is_validation(s)]
    for fw in MODULES:
        ea = accumulate(runs[name][fw])
        got = ea.Tags()
        kind = "scalars" if fw == "torch" else "tensors"  # TF2 scalars arrive as tensors
        assert set(tags) <= set(got[kind]), (fw, got)
        if not ds.n_classes:
            assert not any(t.startswith("accuracy") for t in got["scalars"] + got["tensors"])
        assert list(scalar_series(ea, "loss/train")) == log_steps, fw  # in the file's order
        assert list(scalar_series(ea, "loss/val")) == val_steps, fw
        # One event file a run, the graph in it: TensorBoard polls only a run's newest file.
        assert len(list(runs[name][fw].glob("events.out.tfevents.*"))) == 1 and got["graph"], fw
        assert all(v == pytest.approx(spec.lr, rel=1e-6) for v in scalar_series(ea, "lr").values())
        assert all(v > 0 for v in scalar_series(ea, "perf/step_ms").values())
        if fw == "torch":
            assert set(hist_tags) <= set(got["histograms"]), got
            h = ea.Histograms(hist_tags[0])
        else:
            assert set(hist_tags) <= set(got["tensors"]), got
            assert ea.SummaryMetadata(hist_tags[0]).plugin_data.plugin_name == "histograms"
            h = ea.Tensors(hist_tags[0])
        hist_steps = [s for s in range(1, cad.total_steps + 1) if cad.is_histogram(s)]
        assert [e.step for e in h] == hist_steps, fw


@pytest.mark.parametrize("name", ["cnn", "regression"])
def test_float64_loss_every_step_as_double_tensor(runs, name):
    from tensorboard.compat.proto import types_pb2
    from tensorboard.util import tensor_util

    spec = SPECS[name]
    total = data.total_steps(spec, len(data.load(spec).x_train))
    series = {}
    for fw in MODULES:
        ea = accumulate(runs[name][fw])
        events = ea.Tensors("loss/train_fp64")
        assert [e.step for e in events] == list(range(1, total + 1)), fw
        assert all(e.tensor_proto.dtype == types_pb2.DT_DOUBLE for e in events), fw
        assert ea.SummaryMetadata("loss/train_fp64").plugin_data.plugin_name == "scalars"  # charted
        series[fw] = np.array([tensor_util.make_ndarray(e.tensor_proto).item() for e in events])
    # Shared init, same batches: the CNN (NCHW vs NHWC, transposed kernels, flatten order) and the
    # regression MLP with weight decay compute the same function in both frameworks.
    rel = np.abs(series["torch"] - series["tensorflow"]) / np.abs(series["torch"])
    assert rel.max() < 1e-10, rel


@pytest.mark.parametrize("name", ["mlp", "spirals"])
def test_float32_runs_agree(runs, name):
    ea = {fw: accumulate(runs[name][fw]) for fw in MODULES}
    a, b = (scalar_series(ea[fw], "loss/train") for fw in MODULES)
    assert a.keys() == b.keys()
    for step in a:
        assert a[step] == pytest.approx(b[step], rel=1e-5), step
    # torch computes accuracy/train at the flush, from the logits it held: same steps, same values
    # (a near-tie may flip one sample between frameworks in float32)
    a, b = (scalar_series(ea[fw], "accuracy/train") for fw in MODULES)
    assert a.keys() == b.keys() and not any(np.isnan(list(a.values())))
    assert max(abs(a[s] - b[s]) for s in a) <= 1 / SPECS[name].batch_size, (a, b)
    assert len(set(a.values())) > 1  # it moves as the model learns


@pytest.mark.parametrize("name", list(SPECS))
def test_status_finished_and_settings_match(runs, name):
    spec = SPECS[name]
    total = data.total_steps(spec, len(data.load(spec).x_train))
    settings = {}
    for fw in MODULES:
        status = json.loads((runs[name][fw] / "status.json").read_text())
        assert status["state"] == "finished" and status["error"] is None
        assert status["step"] == status["total_steps"] == total
        settings[fw] = json.loads((runs[name][fw] / "settings.json").read_text())
    t, f = settings["torch"], settings["tensorflow"]
    assert list(t) == list(f) == list(SETTINGS_KEYS)
    assert t["optimizer"].keys() == f["optimizer"].keys()
    assert t["loss"].keys() == f["loss"].keys()
    assert [r.keys() for r in t["layers"]] == [r.keys() for r in f["layers"]]
    assert [r["name"] for r in t["layers"]] == [r["name"] for r in f["layers"]]
    assert t["total_params"] == f["total_params"] == sum(r["params"] for r in t["layers"])
    assert t["threads"] == f["threads"] == {"intra_op": spec.threads, "inter_op": spec.threads}
    assert t["execution_mode"] == t["requested_mode"] == "eager"
    assert f["execution_mode"] == f["requested_mode"] == "function"
    assert t["dtype"] == f["dtype"] == spec.dtype
    assert t["init_sha256"] == f["init_sha256"] == file_sha256(runs[name]["run"] / "init.npz")
    if spec.model == "cnn":
        assert (t["data_layout"], f["data_layout"]) == ("NCHW", "NHWC")
        assert t["layers"][1]["output_shape"] == [None, 16, 8, 8]
        assert f["layers"][1]["output_shape"] == [None, 8, 8, 16]


def test_logdir_override_leaves_default_folder_alone(runs):
    run_dir = runs[OVERRIDE]["run"]
    assert (run_dir / "init.npz").exists()  # the shared weights still live beside spec.json
    assert not (run_dir / "torch").exists() and not (run_dir / "tensorflow").exists()
    assert list(runs[OVERRIDE]["torch"].glob("events.out.tfevents.*"))


def test_embeddings_exported_at_the_asked_steps(runs):
    for fw in MODULES:
        config = (runs["mlp"][fw] / "projector_config.pbtxt").read_text()
        for step in (5, 30):
            assert f"{step:05d}" in config, (fw, config)


# --- failures -------------------------------------------------------------------------------------
@pytest.mark.parametrize("fw", list(MODULES))
def test_bad_spec_exits_2_naming_the_field(tmp_path, fw):
    (tmp_path / "spec.json").write_text(json.dumps({"task": "digits", "lr": -1.0}))
    p = subprocess.run([sys.executable, "-m", MODULES[fw], str(tmp_path / "spec.json")], cwd=ROOT,
                       capture_output=True, text=True, timeout=60)
    assert p.returncode == 2
    assert "RunSpec.lr=-1.0" in p.stderr and len(p.stderr.strip().splitlines()) == 1, p.stderr
    status = json.loads((tmp_path / fw / "status.json").read_text())
    assert status["state"] == "failed" and "RunSpec.lr" in status["error"]


def test_missing_spec_file_exits_2(tmp_path):
    p = subprocess.run([sys.executable, "-m", MODULES["torch"], str(tmp_path / "nope" / "spec.json")],
                       cwd=ROOT, capture_output=True, text=True, timeout=60)
    assert p.returncode == 2 and "cannot read spec" in p.stderr


def test_crash_marks_status_failed_and_exits_1(tmp_path):
    """A run folder whose init.npz does not fit the spec: a clear line, a traceback, state failed."""
    spec = RunSpec(hidden=(8,), steps=3)
    spec.save(tmp_path / "spec.json")
    np.savez(tmp_path / "init.npz", **{"dense0.weight": np.zeros((3, 3), np.float32)})
    p = subprocess.run([sys.executable, "-m", MODULES["torch"], str(tmp_path / "spec.json")], cwd=ROOT,
                       capture_output=True, text=True, timeout=120)
    assert p.returncode == 1
    first = p.stderr.strip().splitlines()
    assert any(line.startswith("torch trainer failed: ValueError:") and "dense0.weight" in line for line in first)
    assert "Traceback" in p.stderr
    status = json.loads((tmp_path / "torch" / "status.json").read_text())
    assert status["state"] == "failed" and "dense0.weight" in status["error"]


def test_sigterm_marks_status_failed(tmp_path):
    """The launcher stops a run with SIGTERM: the status must say so, not stay 'running'."""
    import signal
    import time

    RunSpec(hidden=(8,), steps=10**7).save(tmp_path / "spec.json")
    p = subprocess.Popen([sys.executable, "-m", MODULES["torch"], str(tmp_path / "spec.json")], cwd=ROOT,
                         stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True)
    status_path = tmp_path / "torch" / "status.json"
    deadline = time.time() + 60
    while not status_path.exists() and time.time() < deadline:  # written before the framework import
        time.sleep(0.05)
    assert json.loads(status_path.read_text())["state"] == "running"
    p.send_signal(signal.SIGTERM)
    _, err = p.communicate(timeout=60)
    assert p.returncode == 1 and "stopped by signal 15" in err
    status = json.loads(status_path.read_text())
    assert status["state"] == "failed" and "signal 15" in status["error"]


# --- the shared pieces, in process -----------------------------------------------------------------
def test_shared_init_bytes_do_not_depend_on_who_writes(tmp_path):
    spec = RunSpec(model="cnn", hidden=(16,), dtype="float64")
    params = models.plan(spec, 64, 10)[1]
    for d in ("a", "b"):
        (tmp_path / d).mkdir()
        arrays, path = ensure_shared_init(spec, params, tmp_path / d)
    assert (tmp_path / "a" / "init.npz").read_bytes() == (tmp_path / "b" / "init.npz").read_bytes()
    assert arrays["conv1.weight"].shape == (16, 8, 3, 3) and arrays["dense0.weight"].shape == (16, 1024)
    bound = 1 / np.sqrt(8 * 9)
    assert np.abs(arrays["conv1.weight"]).max() <= bound and arrays["conv1.weight"].dtype == np.float64


def test_flatten_order_permutation():
    c, h, w = 3, 4, 5
    x = np.random.default_rng(0).normal(size=(c, h, w))
    perm = chw_to_hwc_rows(c, h, w)
    assert np.array_equal(x.reshape(-1)[perm], x.transpose(1, 2, 0).reshape(-1))


def test_histogram_buckets_match_tensorboards_rules():
    b = histogram_buckets(np.array([0.0, 1.0, 2.0, 3.0, np.nan]), k=3)
    assert b.tolist() == [[0.0, 1.0, 1.0], [1.0, 2.0, 1.0], [2.0, 3.0, 2.0]]
    single = histogram_buckets(np.full(4, 0.5), k=3)
    assert single[:, :2].tolist() == [[0.5, 0.5]] * 3 and single[:, 2].tolist() == [0, 0, 4]
    assert not histogram_buckets(np.array([np.inf]), k=3).any()
    rng = np.random.default_rng(1)
    arrays = [rng.normal(size=(64, 32)).astype(np.float32), np.array([]), np.full(3, 2.0), rng.normal(size=10)]
    many, stats = histogram_many(arrays)
    for a, b, st in zip(arrays, many, stats):
        flat = a.reshape(-1).astype(np.float64)
        if flat.size and flat.min() < flat.max():
            counts, edges = np.histogram(flat, bins=30)
            assert np.allclose(b[:, 0], edges[:-1]) and np.allclose(b[:, 1], edges[1:])
            assert (np.abs(b[:, 2] - counts) <= 1).all()  # a value on an inner edge may fall either way
        assert b[:, 2].sum() == st[0] == flat.size
        assert st[1] == pytest.approx(flat.sum()) and st[2] == pytest.approx((flat ** 2).sum())


def test_cadence():
    cad = Cadence(total_steps=25, steps_per_epoch=10, log_every=4, histogram_every=3,
                         embedding_steps=frozenset({7}))
    assert [s for s in range(1, 26) if cad.is_log(s)] == [4, 8, 12, 16, 20, 24, 25]
    assert [s for s in range(1, 26) if cad.is_validation(s)] == [10, 20, 25]
    assert [s for s in range(1, 26) if cad.is_embedding(s)] == [7, 25]
    assert Cadence.from_spec(RunSpec(batch_size=32), 1437).histogram_every == 44 // 4


def test_cadence_without_ends_and_time_sampled_perf(tmp_path, monkeypatch):
    cad = Cadence(total_steps=25, steps_per_epoch=26, log_every=1, histogram_every=26,
                         embedding_steps=frozenset(), ends=False)
    assert not any(cad.is_graph(s) or cad.is_histogram(s) or cad.is_validation(s) or cad.is_embedding(s)
                   for s in range(1, 26))

    class Recorder:  # the loop's calls, as a framework adapter receives them
        def __init__(self):
            self.perf = {}

        def train_step(self, step, idx, want_grads, log):
            return None

        def write_train_scalars(self, step, handle, perf):
            self.perf[step] = perf

        def close(self):
            pass

    spec = RunSpec(steps=25, epochs=0, log_every=5)
    ds = data.load(spec)
    cad = Cadence(25, 100, 5, 100, frozenset(), ends=True)
    for every_s, want in ((0.0, [5, 10, 15, 20, 25]), (1e9, [25])):
        monkeypatch.setattr(loop, "PERF_EVERY_S", every_s)
        rec = Recorder()
        rec.export_graph = rec.write_validation = rec.export_embedding = rec.write_histograms = \
            lambda *a: None
        loop.train(spec, ds, cad, rec, StatusFile(tmp_path, 25))
        assert sorted(rec.perf) == [5, 10, 15, 20, 25]  # loss, accuracy, lr at every log step
        assert [s for s, p in sorted(rec.perf.items()) if p] == want
        assert all(p["perf/step_ms"] > 0 and p["perf/samples_per_s"] > 0 for p in rec.perf.values() if p)
