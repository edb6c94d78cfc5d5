"""The Histograms page (AppTest): every view renders with plotly charts, on files the real writers
wrote (tensorboardX as `<run>/torch`, tf.summary as `<run>/tensorflow`), and a damaged file is named
in a warning while the page still renders."""
from __future__ import annotations

import importlib.util
import json
import shutil
from pathlib import Path

import pytest
from streamlit.testing.v1 import AppTest

from twinboard.text import md

ROOT = Path(__file__).resolve().parents[1]
PAGE = str(ROOT / "pages" / "histograms.py")
TIMEOUT = 60  # s per script run: the machine is small and shared


def _writers():
    """tests/test_histograms.py, whatever pytest's import mode: it writes the shared logdir."""
    spec = importlib.util.spec_from_file_location("_histogram_writers", ROOT / "tests" / "test_histograms.py")
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    return module


@pytest.fixture(scope="session")
def written(tmp_path_factory) -> Path:
    return _writers().make_logdir(tmp_path_factory.getbasetemp() / "histogram_logs")


@pytest.fixture
def logdir(written, tmp_path, monkeypatch) -> Path:
    root = tmp_path / "logs"
    shutil.copytree(written / "run1", root / "20261126-101500-digits-mlp-sgd")
    monkeypatch.setenv("TWINBOARD_LOGDIR", str(root))
    return root


def _chart_specs(at: AppTest) -> list[dict]:
    return [json.loads(c.proto.spec) for c in at.get("plotly_chart")]


def _notes(spec: dict) -> list[str]:
    return [a.get("text", "") for a in spec.get("layout", {}).get("annotations", [])]


def test_every_view_renders(logdir):
    at = AppTest.from_file(PAGE, default_timeout=TIMEOUT).run()
    assert not at.exception
    assert at.radio(key="hist_mode").value == "offset"
    assert at.selectbox(key="hist_layer").options == ["dense0", "out"]
    specs = _chart_specs(at)
    assert len(specs) == 8  # 4 tensors of dense0, PyTorch beside TensorFlow
    assert all("30 of 35 steps (evenly sampled)" in _notes(s) for s in specs)
    assert all(len(s["data"]) == 30 for s in specs)

    at.radio(key="hist_mode").set_value("overlay").run()
    assert not at.exception and len(_chart_specs(at)) == 8

    at.radio(key="hist_mode").set_value("distributions").run()
    specs = _chart_specs(at)
    assert not at.exception and len(specs) == 8
    assert {t.get("name") for t in specs[0]["data"]} >= {"min–max", "7–93 %", "16–84 %", "31–69 %", "median"}

    at.radio(key="hist_mode").set_value("compare").run()
    specs = _chart_specs(at)
    assert not at.exception and len(specs) == 4  # one axis per tensor
    assert all(any("re-binned onto 30 common buckets" in n for n in _notes(s)) for s in specs)
    assert [len(s["data"]) for s in specs] == [2, 2, 2, 2]

    at.select_slider(key="hist_step").set_value(100).run()
    assert not at.exception
    assert "PyTorch shows step 100" in at.caption[0].value and "TensorFlow shows step 100" in at.caption[0].value
    assert all("step 100" in t["name"] for t in _chart_specs(at)[0]["data"])


def test_filter_and_layer_choose_the_tensors(logdir):
    at = AppTest.from_file(PAGE, default_timeout=TIMEOUT).run()
    at.text_input(key="hist_filter").set_value("^grads/.*kernel$").run()
    at.selectbox(key="hist_layer").set_value("out").run()
    assert not at.exception
    assert [m.value for m in at.markdown] == [f"**{md('grads/out/kernel')}**"]  # a tag is text
    at.text_input(key="hist_filter").set_value("([").run()  # not a regex: say so, show everything
    assert not at.exception and "not a valid regular expression" in at.error[0].value


def test_nearest_steps_when_the_sides_differ(logdir, written):
    shutil.rmtree(logdir / "20261126-101500-digits-mlp-sgd" / "torch")
    shutil.copytree(written / "ptwriter", logdir / "20261126-101500-digits-mlp-sgd" / "torch")  # steps 0-10
    at = AppTest.from_file(PAGE, default_timeout=TIMEOUT).run()
    at.radio(key="hist_mode").set_value("compare").run()
    at.select_slider(key="hist_step").set_value(50).run()
    assert not at.exception
    caption = at.caption[0].value
    assert "PyTorch shows step 10 (nearest logged)" in caption and "TensorFlow shows step 50" in caption


def test_a_rerun_shows_histograms_appended_since(written, tmp_path, monkeypatch):
    from twinboard.contract import split_records

    run = tmp_path / "logs" / "20261126-101500-digits-mlp-sgd"
    rest = {}
    for fw in ("torch", "tensorflow"):
        src = next(p for p in (written / "run1" / fw).iterdir() if "tfevents" in p.name)
        data = src.read_bytes()
        _, used = split_records(data[:len(data) // 2])
        (run / fw).mkdir(parents=True)
        (run / fw / src.name).write_bytes(data[:used + 5])  # whole records and a few bytes of one
        rest[run / fw / src.name] = data[used + 5:]
    monkeypatch.setenv("TWINBOARD_LOGDIR", str(tmp_path / "logs"))
    at = AppTest.from_file(PAGE, default_timeout=TIMEOUT).run()
    at.radio(key="hist_mode").set_value("compare").run()
    before = len(at.select_slider(key="hist_step").options)
    assert not at.exception and not at.warning and 1 < before < 35
    for path, tail in rest.items():
        with open(path, "ab") as f:
            f.write(tail)
    at.run()
    assert not at.exception and len(at.select_slider(key="hist_step").options) == 35


def test_live_refresh_while_a_trainer_reports_running(logdir):
    import time

    status = {"state": "running", "step": 5, "total_steps": 100, "updated": time.time(), "error": None}
    (logdir / "20261126-101500-digits-mlp-sgd" / "torch" / "status.json").write_text(json.dumps(status))
    at = AppTest.from_file(PAGE, default_timeout=TIMEOUT).run()
    assert not at.exception and len(_chart_specs(at)) == 8
    at.toggle(key="hist_live").set_value(False).run()
    assert not at.exception and len(_chart_specs(at)) == 8


def test_corrupt_file_is_named_and_the_page_still_renders(logdir):
    run = logdir / "20261126-101500-digits-mlp-sgd" / "torch"
    path = next(run.iterdir())
    data = bytearray(path.read_bytes())
    data[len(data) // 2] ^= 0xFF
    path.write_bytes(bytes(data))
    at = AppTest.from_file(PAGE, default_timeout=TIMEOUT).run()
    assert not at.exception
    assert any(str(path) in w.value and "corrupt" in w.value for w in at.warning)
    assert len(_chart_specs(at)) == 8


def test_empty_logdir_says_so(tmp_path, monkeypatch):
    monkeypatch.setenv("TWINBOARD_LOGDIR", str(tmp_path))
    at = AppTest.from_file(PAGE, default_timeout=TIMEOUT).run()
    assert not at.exception and at.info


def test_page_on_runs_the_real_trainers_wrote(real_pair, monkeypatch):
    monkeypatch.setenv("TWINBOARD_LOGDIR", str(real_pair.logdir))
    at = AppTest.from_file(PAGE, default_timeout=TIMEOUT).run()
    assert not at.exception and not at.warning
    assert at.selectbox(key="hist_layer").options[-1] == "out"
    for mode in ("offset", "overlay", "distributions", "compare"):
        at.radio(key="hist_mode").set_value(mode).run()
        assert not at.exception, mode
        specs = _chart_specs(at)
        assert specs and all(s["data"] for s in specs), mode
