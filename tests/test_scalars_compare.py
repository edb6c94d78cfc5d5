"""The Scalars page compares: colour-blind-safe colours, a hover with both sides and their difference,
the difference strip, panels named by run, a message for an empty zoom, and a dragged box that zooms.

Event files come from the real writers, tensorboardX (torch side) and tf.summary (tensorflow side),
in a subprocess (this process never loads a framework), with values chosen so every number the page
shows can be checked exactly: float32 holds k/64 and k/128 exactly.
"""
from __future__ import annotations

import base64
import json
import subprocess
import sys
from pathlib import Path

import numpy as np
import pytest
from streamlit.testing.v1 import AppTest

from twinboard import scalars

ROOT = Path(__file__).resolve().parents[1]
PAIR_A, PAIR_B = "20260301-000000-cmp-a", "20260302-000000-cmp-b"
TORCH_STEPS, TF_STEPS = 200, 150  # TensorFlow stops early: zooming past step 149 finds none of its points
VAL_EVERY = 10
LONG, LONG_STEPS = "20260303-000000-cmp-long", 3000  # a noisy pair too long to send whole (sampled)

WRITER = r'''
import sys
from pathlib import Path
root = Path(sys.argv[1])
RUNS = {"PAIR_A": 0.0, "PAIR_B": 1.0}

def torch_value(s, shift): return 1.0 + shift + s / 64.0   # exact in float32
def tf_value(s, shift): return 0.5 + shift + s / 128.0

from tensorboardX import SummaryWriter
for run, shift in RUNS.items():
    w = SummaryWriter(str(root / run / "torch"))
    for s in range(TORCH_STEPS):
        w.add_scalar("loss/train", torch_value(s, shift), s)
        if s % VAL_EVERY == 0:
            w.add_scalar("loss/val", torch_value(s, shift) + 0.25, s)
    w.close()

import math
def noisy(s, phase): return 2.0 * math.exp(-s / 800) + 0.1 + 0.05 * math.sin(1.7 * s + phase)
w = SummaryWriter(str(root / "LONG" / "torch"))
for s in range(LONG_STEPS):
    w.add_scalar("loss/train", noisy(s, 0.0), s)  # walltime: now, as a trainer writes it
w.close()

import tensorflow as tf
w = tf.summary.create_file_writer(str(root / "LONG" / "tensorflow"))
with w.as_default():
    for s in range(LONG_STEPS):
        tf.summary.scalar("loss/train", noisy(s, 0.5), step=s)
w.close()
for run, shift in RUNS.items():
    w = tf.summary.create_file_writer(str(root / run / "tensorflow"))
    with w.as_default():
        for s in range(TF_STEPS):
            tf.summary.scalar("loss/train", tf_value(s, shift), step=s)
            if s % VAL_EVERY == 0:
                tf.summary.scalar("loss/val", tf_value(s, shift) + 0.25, step=s)
    w.close()
'''
for _name, _value in {"PAIR_A": PAIR_A, "PAIR_B": PAIR_B, "TORCH_STEPS": TORCH_STEPS, "TF_STEPS": TF_STEPS,
                      "VAL_EVERY": VAL_EVERY, "LONG_STEPS": LONG_STEPS, "LONG": LONG}.items():
    WRITER = WRITER.replace(_name, str(_value))


def torch_value(step: int, shift: float = 0.0) -> float:
    return 1.0 + shift + step / 64.0


def tf_value(step: int, shift: float = 0.0) -> float:
    return 0.5 + shift + step / 128.0


def write_pairs(root: Path) -> Path:
    """Two matched pairs of real event files under `root` (what the WRITER above says)."""
    root.mkdir(parents=True, exist_ok=True)
    script = root.parent / "write_compare_events.py"
    script.write_text(WRITER)
    out = subprocess.run([sys.executable, str(script), str(root)], cwd=ROOT, capture_output=True, text=True,
                         timeout=300)
    assert out.returncode == 0, out.stderr[-3000:]
    return root


@pytest.fixture(scope="module")
def logdir(tmp_path_factory) -> Path:
    return write_pairs(tmp_path_factory.mktemp("compare") / "logs")


@pytest.fixture
def page(logdir, monkeypatch) -> AppTest:
    monkeypatch.setenv("TWINBOARD_LOGDIR", str(logdir))
    at = AppTest.from_file(str(ROOT / "pages" / "scalars.py"), default_timeout=60).run()
    assert not at.exception, at.exception
    at.sidebar.selectbox(key="scalars_pair").set_value(PAIR_A).run()
    at.sidebar.slider(key="scalars_smoothing").set_value(0.0).run()  # values as logged, checkable exactly
    assert not at.exception, at.exception
    return at


def decode(data) -> np.ndarray:
    """An array as sent: plotly's typed array spec ({"dtype", "bdata"[, "shape"]}) or a list."""
    if isinstance(data, dict):
        a = np.frombuffer(base64.b64decode(data["bdata"]), np.dtype(data["dtype"]))
        return a.reshape([int(n) for n in data["shape"].split(",")]) if "shape" in data else a
    return np.asarray(data)


def figure(at: AppTest, tag: str) -> dict:
    figs = [json.loads(c.proto.spec) for c in at.get("plotly_chart")]
    return next(f for f in figs if f["layout"]["title"]["text"] == tag)


def shown(fig: dict) -> list[dict]:
    """The full-colour (hovered) traces: not the faint raw ones, not the difference strip."""
    return [t for t in fig["data"] if t.get("hoverinfo") != "skip" and t.get("name") != "difference"]


# --- colours ---------------------------------------------------------------------------------------
def test_frameworks_have_the_palette_colours_and_badges_follow(page):
    from pages.common import BADGE_COLORS, framework_badge

    fig = figure(page, "loss/train")
    assert {t["line"]["color"] for t in fig["data"]} == {scalars.FRAMEWORK_COLORS["torch"],
                                                         scalars.FRAMEWORK_COLORS["tensorflow"]}
    assert set(BADGE_COLORS.values()) == {"orange", "blue"}  # nearest markdown colours to vermillion, blue
    assert framework_badge("tensorflow") == ":blue-badge[TensorFlow]"
    assert framework_badge(None).startswith(":gray-badge[")


# --- hover -----------------------------------------------------------------------------------------
@pytest.mark.parametrize("overlay", [False, True])
def test_hover_carries_the_other_side_and_the_difference(page, overlay):
    page.sidebar.toggle(key="scalars_overlay").set_value(overlay).run()
    fig = figure(page, "loss/train")
    assert fig["layout"]["hovermode"] == "x unified"
    torch, tf = shown(fig)
    t_cols, f_cols = decode(torch["customdata"]), decode(tf["customdata"])
    assert t_cols.shape == (TORCH_STEPS, 4) and f_cols.shape == (TF_STEPS, 4)
    step = 120  # both logged it: the other side's value at the same step
    assert t_cols[step].tolist() == [step, step, tf_value(step), torch_value(step) - tf_value(step)]
    assert f_cols[step].tolist() == [step, step, torch_value(step), torch_value(step) - tf_value(step)]
    # Past TensorFlow's last step, PyTorch's hover names the step of the value it compares with.
    assert t_cols[180].tolist() == [180, TF_STEPS - 1, tf_value(TF_STEPS - 1), torch_value(180) - tf_value(149)]
    assert "Δ PyTorch − TensorFlow" in tf["hovertemplate"] and "%{customdata[3]" in tf["hovertemplate"]
    if not overlay:  # each panel's hover names both sides (plotly's unified hover stays in its panel)
        assert "TensorFlow: %{customdata[2]" in torch["hovertemplate"]
        assert "PyTorch: %{customdata[2]" in tf["hovertemplate"]


# --- difference strip ------------------------------------------------------------------------------
def test_difference_strip_is_torch_minus_tf_at_common_steps(page):
    assert "yaxis3" not in figure(page, "loss/train")["layout"]
    page.sidebar.checkbox(key="scalars_difference").check().run()
    assert not page.exception, page.exception
    fig = figure(page, "loss/train")
    strips = [t for t in fig["data"] if t.get("name") == "difference"]
    assert [t["xaxis"] for t in strips] == ["x3", "x4"]  # under each panel, on its x
    steps = decode(strips[0]["x"])
    assert steps.tolist() == list(range(TF_STEPS))  # only the steps both sides logged
    np.testing.assert_array_equal(decode(strips[0]["y"]), [torch_value(s) - tf_value(s) for s in steps])
    layout = fig["layout"]
    assert layout["xaxis3"]["matches"] == "x" and layout["yaxis3"]["domain"][1] < layout["yaxis"]["domain"][0]
    val = [t for t in figure(page, "loss/val")["data"] if t.get("name") == "difference"]
    assert decode(val[0]["x"]).tolist() == list(range(0, TF_STEPS, VAL_EVERY))
    page.sidebar.toggle(key="scalars_overlay").set_value(True).run()
    strips = [t for t in figure(page, "loss/train")["data"] if t.get("name") == "difference"]
    assert [t["xaxis"] for t in strips] == ["x3"]


# --- panel titles ----------------------------------------------------------------------------------
def panel_titles(fig: dict) -> list[str]:
    return [a["text"] for a in fig["layout"].get("annotations", []) if a.get("yanchor") == "bottom"]


def test_any_two_runs_are_titled_by_run(page):
    assert panel_titles(figure(page, "loss/train")) == ["PyTorch", "TensorFlow"]
    page.sidebar.selectbox(key="scalars_pair").set_value("Any two runs…").run()
    page.sidebar.selectbox(key="scalars_left").set_value(f"{PAIR_A}/tensorflow")
    page.sidebar.selectbox(key="scalars_right").set_value(f"{PAIR_B}/tensorflow").run()
    assert not page.exception, page.exception
    fig = figure(page, "loss/train")
    assert panel_titles(fig) == [f"{PAIR_A}/tensorflow", f"{PAIR_B}/tensorflow"]
    torch_side, tf_side = shown(fig)
    assert (torch_side["name"], tf_side["name"]) == (f"{PAIR_A}/tensorflow", f"{PAIR_B}/tensorflow")
    assert torch_side["line"]["color"] != tf_side["line"]["color"]  # two TensorFlow runs, two colours
    cols = decode(torch_side["customdata"])
    assert cols[10].tolist() == [10, 10, tf_value(10, 1.0), tf_value(10) - tf_value(10, 1.0)]


# --- zoom --------------------------------------------------------------------------------------------
def notes(fig: dict) -> list[str]:
    return [a["text"] for a in fig["layout"].get("annotations", []) if a.get("yanchor") != "bottom"]


def test_a_zoom_range_without_points_says_so(page):
    page.sidebar.toggle(key="scalars_zoom").set_value(True).run()
    page.sidebar.slider(key="scalars_steps").set_value((170, 190)).run()
    assert not page.exception, page.exception
    fig = figure(page, "loss/train")
    assert notes(fig) == ["no points between step 170 and 190"]  # TensorFlow's panel only
    assert fig["layout"]["annotations"][-1]["x"] > 0.5
    page.sidebar.slider(key="scalars_steps").set_value((171, 179)).run()
    assert notes(figure(page, "loss/val")) == ["no points between step 171 and 179"] * 2


def test_charts_select_a_range_on_drag(page):
    """A drag on a chart selects an x range (st.plotly_chart on_select); the browser test drags one."""
    fig = figure(page, "loss/train")
    assert fig["layout"]["dragmode"] == "select" and fig["layout"]["selectdirection"] == "h"
    chart = next(c for c in page.get("plotly_chart")
                 if json.loads(c.proto.spec)["layout"]["title"]["text"] == "loss/train")
    assert list(chart.proto.selection_mode) and chart.proto.id  # a widget: its selection reruns the page


def test_a_dragged_range_turns_the_zoom_on_and_sets_its_slider(page):
    """What a drag leaves for the next run (the browser test drags): the zoom slider takes it."""
    page.session_state["scalars_dragged"] = ("step", (60, 100))
    page.run()
    assert not page.exception, page.exception
    assert page.sidebar.toggle(key="scalars_zoom").value is True
    assert page.sidebar.slider(key="scalars_steps").value == (60, 100)
    steps = decode(shown(figure(page, "loss/train"))[0]["customdata"])[:, 0]
    assert steps.tolist() == list(range(60, 101))  # re-read at full resolution in that range
    page.sidebar.slider(key="scalars_steps").set_value((10, 20)).run()  # the slider still drives it
    assert decode(shown(figure(page, "loss/train"))[0]["customdata"])[:, 0].tolist() == list(range(10, 21))
