"""AppTest of the Speed page on a REAL face-off: `twinboard.speed.launch_faceoff` through the real
launcher and queue, the real trainers in all five execution modes (three pairs, one after another).

One face-off for the whole file (module fixture): torch.compile alone costs ~30 s on the 2-core
machine, XLA ~5 s to compile, each trainer ~5-9 s of imports; 40 steps keep the rest short. Every
number the page shows is checked against the files the trainers wrote, read here independently.
"""
from __future__ import annotations

import base64
import json
from pathlib import Path

import numpy as np
import pytest
from streamlit.testing.v1 import AppTest

from twinboard import events, runs, speed
from twinboard.contract import RunSpec, read_settings

ROOT = Path(__file__).resolve().parents[1]
TIMEOUT = 90  # s per AppTest run on a busy 2-core box
SPEC = RunSpec(task="digits", model="mlp", steps=40, log_every=5, histogram_every=40, embedding_samples=16)
LABELS = ["PyTorch eager #1", "PyTorch eager #2", "PyTorch torch.compile", "TensorFlow eager",
          "TensorFlow tf.function", "TensorFlow XLA (jit_compile)"]
MODES = ["eager", "eager", "compile", "eager", "function", "xla"]


@pytest.fixture(scope="module")
def faceoff(tmp_path_factory):
    from tests.conftest import real_trainers
    from tests.stub_trainer import kill_spawned

    root = tmp_path_factory.mktemp("faceoff") / "logs"
    with real_trainers():
        launched = speed.launch_faceoff(SPEC, root)
        assert not launched.failed, launched.failed
        outcomes = {r.run_id: runs.wait(r.run_id, timeout=900, logdir=root) for r in launched.launched}
    for run_id, outcome in outcomes.items():
        for fw, result in outcome.items():
            err = (root / run_id / f"{fw}.stderr").read_text()[-3000:] if isinstance(result, runs.Failed) else ""
            assert isinstance(result, runs.Finished), f"{run_id} {fw}: {result} {err}"
    yield root, launched.group
    kill_spawned(root)


@pytest.fixture
def page(faceoff, monkeypatch) -> AppTest:
    root, _ = faceoff
    monkeypatch.setenv("TWINBOARD_LOGDIR", str(root))
    at = AppTest.from_file(str(ROOT / "pages" / "speed.py"), default_timeout=TIMEOUT).run()
    assert not at.exception, at.exception
    return at


def table(at: AppTest):
    return next(d.value for d in at.dataframe if "first step s" in d.value.columns)


def figures(at: AppTest) -> dict[str, dict]:
    figs = [json.loads(c.proto.spec) for c in at.get("plotly_chart")]
    return {f["layout"]["title"]["text"]: f for f in figs}


def decode(data) -> np.ndarray:
    """An array as plotly sends it: a typed array spec ({"dtype", "bdata"}) or a list."""
    if isinstance(data, dict):
        return np.frombuffer(base64.b64decode(data["bdata"]), np.dtype(data["dtype"]))
    return np.asarray(data, dtype=float)


def recorded(root: Path, run_id: str, fw: str) -> tuple[dict, dict]:
    """(settings.json, {tag: values in step order}) of one side, read without the page's code."""
    df = events.read_scalars(root / run_id / fw)
    tags = {t: g.sort_values("step")["value"].to_numpy() for t, g in df.groupby("tag", observed=True)}
    return read_settings(root / run_id / fw), tags


def test_the_faceoff_opens_with_a_row_per_framework_and_mode(page, faceoff):
    root, group = faceoff
    assert page.sidebar.radio(key="speed_source").value == "A face-off"
    assert page.sidebar.selectbox(key="speed_group").value == group
    t = table(page)
    assert list(t["label"]) == LABELS
    assert list(t["ran as"]) == MODES  # settings.json execution_mode: the mode really used
    runs_in_group = speed.faceoff_groups(root)[group]
    assert set(t["run"]) == set(runs_in_group) and len(runs_in_group) == 3
    for _, row in t.iterrows():  # each run trained the mode its name and spec say
        spec = json.loads((root / row["run"] / "spec.json").read_text())
        fw_mode = spec["torch_mode"] if row["label"].startswith("PyTorch") else spec["tf_mode"]
        assert fw_mode == MODES[LABELS.index(row["label"])]


def test_every_number_is_the_one_the_trainers_recorded(page, faceoff):
    root, _ = faceoff
    for _, row in table(page).iterrows():
        fw = "torch" if row["label"].startswith("PyTorch") else "tensorflow"
        settings, tags = recorded(root, row["run"], fw)
        assert row["import s"] == settings["import_s"] and row["first step s"] == settings["first_step_s"]
        assert row["first step s"] > 0 and row["import s"] > 0
        steps = tags["perf/step_ms"]  # step 1 is not among them: the trainers time it apart
        assert row["perf points"] == len(steps) >= 1
        assert row["step ms p50"] == pytest.approx(np.percentile(steps, 50))
        assert row["step ms p95"] == pytest.approx(np.percentile(steps, 95))
        assert row["peak RSS MB"] == pytest.approx(tags["perf/rss_mb"].max())
        assert row["final train loss"] == pytest.approx(tags["loss/train"][-1])
        assert row["val accuracy"] == pytest.approx(tags["accuracy/val"][-1])


def test_each_mode_is_compared_with_the_eager_run_of_its_framework(page):
    t = table(page).set_index("label")
    assert t.loc["PyTorch eager #1", "loss agrees"] == t.loc["TensorFlow eager", "loss agrees"] == speed.REFERENCE
    # the same spec, seed and mode twice on one thread: the same numbers
    assert t.loc["PyTorch eager #2", "loss max rel diff vs eager"] == 0.0
    for label in ("PyTorch torch.compile", "TensorFlow tf.function", "TensorFlow XLA (jit_compile)"):
        agrees, rel = t.loc[label, "loss agrees"], t.loc[label, "loss max rel diff vs eager"]
        assert agrees.startswith(("yes", "parts at step")) and np.isfinite(rel) and rel >= 0
    lines = " ".join(str(m.value) for m in page.markdown)
    assert "torch\\.compile\\: compiling took" in lines  # Markdown-escaped text, as the page shows it
    assert "tf\\.function\\:" in lines and "XLA \\(jit\\_compile\\)\\:" in lines
    assert ("paid for itself after" in lines or "never paid for itself" in lines
            or "would pay for itself after" in lines or "ahead from the start" in lines)


def test_the_charts_draw_the_tables_numbers(page):
    t = table(page)
    figs = figures(page)
    assert len(figs) == 4
    first = next(f for title, f in figs.items() if title.startswith("First step"))
    drawn = np.concatenate([decode(tr["y"]) for tr in first["data"]])
    assert drawn == pytest.approx(t["first step s"].to_numpy())
    assert [tr["marker"]["color"] for tr in first["data"]] == ["#D55E00", "#0072B2"]
    box = next(f for title, f in figs.items() if title.startswith("Step times"))
    boxes = [tr for tr in box["data"] if tr["type"] == "box"]
    assert [len(decode(tr["y"])) for tr in boxes] == list(t["perf points"])


def test_one_pair_shows_its_two_sides(page, faceoff):
    root, group = faceoff
    page.sidebar.radio(key="speed_source").set_value("One pair").run()
    assert not page.exception, page.exception
    page.sidebar.selectbox(key="speed_pair").set_value(speed.run_name(group, "compile", "xla")).run()
    assert not page.exception, page.exception
    t = table(page)
    assert list(t["label"]) == ["PyTorch torch.compile", "TensorFlow XLA (jit_compile)"]
    assert list(t["loss agrees"]) == ["no eager run", "no eager run"]
    assert len(page.get("plotly_chart")) == 4


def test_an_empty_logdir_says_how_to_start_one(tmp_path, monkeypatch):
    monkeypatch.setenv("TWINBOARD_LOGDIR", str(tmp_path / "logs"))
    at = AppTest.from_file(str(ROOT / "pages" / "speed.py"), default_timeout=TIMEOUT).run()
    assert not at.exception, at.exception
    assert at.sidebar.radio(key="speed_source").options == ["One pair"]
    assert any("twinboard faceoff" in c.value for c in at.caption)
    assert any("No runs yet" in i.value for i in at.info)
    assert not at.dataframe
