"""AppTest of the Parity page on real matched pairs, trained by the real trainers.

One module fixture trains three tiny pairs (30 steps, every step logged) with the trainers' own
main(): one process per framework, both at once, each training every spec in turn (one framework
import per process instead of three, on a 2-core box). `shared64`: init=shared, float64, SGD with
momentum; `native`: init=native, float32, Adam, each framework with its own defaults; `cnn`: the
CNN, matched (init=shared, float32), NCHW in torch and NHWC in Keras.
"""
from __future__ import annotations

import shutil
import struct
import subprocess
import sys
from pathlib import Path

import numpy as np
import pytest
from streamlit.testing.v1 import AppTest

from twinboard.contract import RunSpec
from twinboard import events, parity, runs
from twinboard.text import code, md

ROOT = Path(__file__).resolve().parents[1]
TIMEOUT = 60  # s per AppTest run on a busy 2-core box
STEPS = 30
SPECS = {
    "shared64": RunSpec(steps=STEPS, log_every=1, histogram_every=STEPS, embedding_samples=16,
                        init="shared", dtype="float64"),
    "native": RunSpec(steps=STEPS, log_every=1, histogram_every=STEPS, embedding_samples=16,
                      init="native", optimizer="adam", lr=0.003),
    "cnn": RunSpec(model="cnn", steps=STEPS, log_every=1, histogram_every=STEPS, embedding_samples=16),
}


@pytest.fixture(scope="module")
def trained(tmp_path_factory) -> Path:
    root = tmp_path_factory.mktemp("parity_logdir")
    paths = []
    for name, spec in SPECS.items():
        (root / name).mkdir()
        spec.save(root / name / "spec.json")
        paths.append(str(root / name / "spec.json"))
    code = "import sys; from trainers import {m} as t; sys.exit(max(t.main([p]) for p in sys.argv[1:]))"
    procs = [subprocess.Popen([sys.executable, "-c", code.format(m=m), *paths], cwd=ROOT,
                              stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True)
             for m in ("torch_trainer", "tf_trainer")]
    try:
        for p in procs:
            _, err = p.communicate(timeout=300)
            assert p.returncode == 0, err[-3000:]
    finally:
        for p in procs:
            if p.poll() is None:
                p.kill()
                p.wait()
    return root


@pytest.fixture
def logdir(trained, monkeypatch) -> Path:
    monkeypatch.setenv("TWINBOARD_LOGDIR", str(trained))
    return trained


def page() -> AppTest:
    return AppTest.from_file(str(ROOT / "pages" / "parity.py"), default_timeout=TIMEOUT)


def texts(at: AppTest, kind: str) -> list[str]:
    return [str(e.value) for e in at.get(kind)]


def metrics(at: AppTest) -> dict[str, str]:
    return {m.label: m.value for m in at.metric}


def settings_table(at: AppTest):
    return next(d.value for d in at.dataframe if "setting" in d.value.columns).set_index("setting")


def slider(at: AppTest, which: str, precision: str) -> float:
    """The tolerance a slider is set to (the sliders hold positions in parity.RTOLS / ATOLS)."""
    stops = parity.RTOLS if which == "rtol" else parity.ATOLS
    return stops[at.select_slider(key=f"parity_{which}_{precision}").value]


def open_pair(name: str) -> AppTest:
    at = page().run()
    assert not at.exception
    if at.selectbox(key="parity_pair").value != name:
        at.selectbox(key="parity_pair").set_value(name).run()
    assert not at.exception, at.exception
    return at


# --- a shared float64 pair -----------------------------------------------------------------------
def test_shared_float64_pair_agrees_to_the_last_bits(logdir):
    at = open_pair("shared64")
    assert at.selectbox(key="parity_tag").value == "loss/train_fp64"
    assert any("`loss/train_fp64`: float64" in t for t in texts(at, "caption"))
    m = metrics(at)
    assert m["Steps compared"] == str(STEPS)
    assert m["Curves part at step"] == "none"  # default tolerance 1e-10 in float64
    max_rel = float(m["Max relative difference"])
    print(f"shared float64 SGD-momentum pair: max rel diff of loss/train_fp64 over {STEPS} steps {max_rel:.3g}")
    assert max_rel < 1e-12
    assert len(at.get("plotly_chart")) == 2  # the two curves and their difference
    assert slider(at, "rtol", "float64") == 1e-10  # float64's defaults
    assert slider(at, "atol", "float64") == 1e-12
    verdict = " ".join(texts(at, "success"))
    assert verdict.startswith("**Matched, within tolerance.** The two models are built the same")
    assert f"agree within tolerance at all {STEPS} compared steps" in verdict and "rtol 1e-10, atol 1e-12" in verdict
    table = settings_table(at)
    assert {"PyTorch", "TensorFlow", "differs"} <= set(table.columns)
    for key in ("init", "init_sha256", "dtype", "seed", "optimizer.lr", "optimizer.momentum",
                "batch_size", "total_steps", "data.n_train"):
        assert not table.loc[key, "differs"], key
    assert table.loc["framework", "differs"] and table.loc["execution_mode", "differs"]
    assert not at.error


def test_float64_tags_are_read_at_full_precision(trained):
    """events.ScalarStore reads the DT_DOUBLE tensors bit for bit (checked against protobuf)."""
    from tensorboard.compat.proto import event_pb2

    for fw in ("torch", "tensorflow"):
        folder = trained / "shared64" / fw
        store = events.ScalarStore(folder)
        store.refresh()
        got = store.series(".", "loss/train_fp64")
        want = {}
        for path in sorted(folder.glob("events.out.tfevents.*")):
            buf, pos = path.read_bytes(), 0
            while pos + 12 <= len(buf):
                (n,) = struct.unpack_from("<Q", buf, pos)
                event = event_pb2.Event.FromString(buf[pos + 12:pos + 12 + n])
                pos += n + 16
                for v in event.summary.value:
                    if v.tag == "loss/train_fp64":
                        t = v.tensor
                        want[event.step] = t.double_val[0] if t.double_val else \
                            float(np.frombuffer(t.tensor_content, "<f8")[0])
        assert sorted(want) == list(range(1, STEPS + 1))
        np.testing.assert_array_equal(got.value, [want[s] for s in got.step])
        assert not np.all(got.value.astype(np.float32).astype(np.float64) == got.value)  # really float64


# --- a native pair: each framework's defaults ----------------------------------------------------
def test_native_pair_parts_and_the_settings_name_the_defaults(logdir):
    at = open_pair("native")
    assert at.selectbox(key="parity_tag").value == "loss/train"  # float32: no fp64 tag
    assert any("cannot show" in t and "1e-7" in t for t in texts(at, "caption"))
    m = metrics(at)
    first = m["Curves part at step"]
    assert first != "none" and int(first.replace(",", "")) <= 5
    print(f"native Adam float32 pair: parts at step {first}, max rel diff {m['Max relative difference']}")
    warning = " ".join(texts(at, "warning"))
    assert warning.startswith("**Matched models, different numerics.**")
    assert f"part at step **{first}**" in warning
    assert f"Settings that change the numbers differ: {code('init')}" in warning
    assert len(at.get("plotly_chart")) == 2
    table = settings_table(at)
    flagged = set(table.index[table["differs"]])
    assert {"init", "optimizer.eps", "optimizer.eps_placement", "optimizer.implementation",
            "optimizer.hyperparameter_dtype"} <= flagged
    assert not flagged & {"seed", "dtype", "batch_size", "optimizer.lr", "optimizer.betas", "total_steps",
                          "data.n_train", "data.n_val", "total_params"}
    assert table.loc["optimizer.eps", ["PyTorch", "TensorFlow"]].tolist() == ["1e-08", "1e-07"]
    assert table.loc["init", "effect"] == "changes the numbers"
    why = "\n".join(texts(at, "markdown"))
    assert "Why they may differ" in why and md("glorot_uniform") in why and "epsilon" in why  # reasons are text
    # Only the differing settings, on request.
    at.toggle(key="parity_only_diff").set_value(True).run()
    assert settings_table(at)["differs"].all() and set(settings_table(at).index) == flagged
    # Both tolerances are the visitor's; the verdict and the first parting step follow the rule.
    assert slider(at, "rtol", "float32") == 1e-5 and slider(at, "atol", "float32") == 1e-5
    for rtol, atol in ((1e-1, 0.0), (1e-15, 1e-1), (1e-1, 1e-1)):
        at.select_slider(key="parity_rtol_float32").set_value(parity.RTOLS.index(rtol))
        at.select_slider(key="parity_atol_float32").set_value(parity.ATOLS.index(atol)).run()
        assert not at.exception
        m = metrics(at)
        worst, max_abs = float(m["Worst step / tolerance"]), float(m["Max absolute difference"])
        assert (m["Curves part at step"] == "none") == (worst <= 1), (rtol, atol, m)
        if rtol == 1e-15:  # atol all but alone decides: the worst step is the largest absolute difference
            assert worst == pytest.approx(max_abs / atol, rel=1e-2), m


# --- a matched CNN: NCHW against NHWC is the same model -------------------------------------------
def test_matched_cnn_is_built_the_same_and_passes(logdir):
    at = open_pair("cnn")
    assert not at.error and not at.exception
    shown = " ".join(texts(at, "success") + texts(at, "warning") + texts(at, "info") + texts(at, "markdown"))
    assert "not the same run" not in shown and "not built the same" not in shown
    verdict = " ".join(texts(at, "success"))
    assert verdict.startswith("**Matched, within tolerance.** The two models are built the same")
    assert "NCHW against NHWC" in verdict and "No setting that changes the numbers differs" in verdict
    assert metrics(at)["Curves part at step"] == "none"
    table = settings_table(at)
    assert table.loc["layers.conv1.output_shape", "effect"] == "layout only"
    assert table.loc["layers.conv1.output_shape", ["PyTorch", "TensorFlow"]].tolist() == \
        ["[null, 16, 8, 8]", "[null, 8, 8, 16]"]
    assert not table.loc[[k for k in table.index if k.endswith(".params")] + ["total_params"], "differs"].any()
    assert any("In layout only" in t and code("layers.conv1.output_shape") in t for t in texts(at, "caption"))


def test_final_metrics_and_speed_side_by_side(logdir):
    at = open_pair("native")
    final = next(d.value for d in at.dataframe if "metric" in d.value.columns).set_index("metric")
    assert {"loss/train", "loss/val", "accuracy/train", "accuracy/val"} <= set(final.index)
    assert final.loc["loss/train", "step"] == str(STEPS)
    speed = next(d.value for d in at.dataframe if "measure" in d.value.columns).set_index("measure")
    step_ms = speed.loc["median time per step (ms)"]
    assert float(step_ms["PyTorch"]) > 0 and float(step_ms["TensorFlow"]) > 0
    assert any("PyTorch eager" in t and md("tf.function") in t for t in texts(at, "caption"))  # settings are text


# --- pairs without settings, and a run that grows ----------------------------------------------
def test_uploaded_pair_without_settings_still_gets_its_curves(logdir, tmp_path, monkeypatch):
    monkeypatch.setenv("TWINBOARD_LOGDIR", str(tmp_path))
    for side, fw in (("a", "torch"), ("b", "tensorflow")):
        dest = tmp_path / "uploads" / "bob" / side
        dest.mkdir(parents=True)
        for f in (logdir / "shared64" / fw).glob("events.out.tfevents.*"):
            shutil.copy(f, dest / f.name)
    at = page().run()
    assert not at.exception
    assert at.selectbox(key="parity_left").value == "uploads/bob/a"
    at.selectbox(key="parity_right").set_value("uploads/bob/b").run()
    assert not at.exception
    assert metrics(at)["Steps compared"] == str(STEPS)
    assert len(at.get("plotly_chart")) == 2
    assert any("Settings unknown" in t for t in texts(at, "info"))
    verdict = " ".join(texts(at, "success") + texts(at, "warning"))
    assert "Settings unknown for both sides, so only the curves are compared" in verdict and "Matched" not in verdict
    assert not any("setting" in d.value.columns for d in at.dataframe)


def test_the_same_run_on_both_sides(logdir):
    at = page().run()
    at.selectbox(key="parity_pair").set_value("Any two runs…").run()
    at.selectbox(key="parity_left").set_value("native/torch").run()
    at.selectbox(key="parity_right").set_value("native/torch").run()
    assert not at.exception
    m = metrics(at)
    assert m["Max relative difference"] == "0" and m["Curves part at step"] == "none"
    assert not settings_table(at)["differs"].any()


def _mid_run_offset(data: bytes) -> int:
    """The end of the first record holding a loss at step STEPS // 2 (file order differs between
    writers: graphs and histograms are large and sit at either end); the middle byte of a file
    with no loss (TensorFlow's graph file)."""
    from tensorboard.compat.proto.event_pb2 import Event

    from twinboard.contract import iter_frames

    for _, record, end in iter_frames(data):
        ev = Event.FromString(bytes(record))
        if ev.step == STEPS // 2 and any(v.tag.startswith("loss/train") for v in ev.summary.value):
            return end
    return len(data) // 2


def test_a_running_pair_is_read_as_it_grows(logdir, tmp_path, monkeypatch):
    """A pair whose jobs the launcher reports running (the page refreshes itself): first a torn
    header only, then half the records with a torn one at the end, then the rest. Each page run
    reads only what was appended and shows what is complete."""
    monkeypatch.setenv("TWINBOARD_LOGDIR", str(tmp_path))
    running = runs.RunStatus("grow", tmp_path / "grow", {}, 0.0,
                            {fw: runs.JobStatus("running") for fw in ("torch", "tensorflow")})
    monkeypatch.setattr(runs.launcher, "get_run", lambda run_id, logdir=None: running)  # what runs.pair_is_live asks
    chunks = {}
    for fw in ("torch", "tensorflow"):
        src = logdir / "native" / fw
        dest = tmp_path / "grow" / fw
        dest.mkdir(parents=True)
        shutil.copy(src / "settings.json", dest / "settings.json")
        for f in src.glob("events.out.tfevents.*"):
            data = f.read_bytes()
            cut = _mid_run_offset(data) + 7  # inside the record after half the steps' loss
            (dest / f.name).write_bytes(data[:10])
            chunks[dest / f.name] = (data[10:cut], data[cut:])

    def append(part: int) -> None:
        for path, parts in chunks.items():
            with open(path, "ab") as fh:
                fh.write(parts[part])

    at = page().run()
    assert not at.exception and not at.error
    assert any("updates by itself" in t for t in texts(at, "info"))  # live, nothing logged yet
    append(0)
    at.run()  # what the live fragment shows on a later tick
    assert not at.exception and not at.error
    before = int(metrics(at)["Steps compared"])
    assert 0 < before < STEPS
    append(1)
    at.button(key="parity_refresh").click().run()
    assert not at.exception
    assert int(metrics(at)["Steps compared"]) == STEPS


def test_empty_logdir(tmp_path, monkeypatch):
    monkeypatch.setenv("TWINBOARD_LOGDIR", str(tmp_path))
    at = page().run()
    assert not at.exception
    assert any("No runs yet" in t for t in texts(at, "info"))
