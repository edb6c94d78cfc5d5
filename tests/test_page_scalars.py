"""AppTest smoke and behaviour tests for the Scalars page, on event files written by the real writers,
tensorboardX (torch side) and tf.summary (tensorflow side), in one subprocess per session so this
process never loads a framework (tests/scalar_pairs.py, the `event_logdir` fixture in conftest.py).
"""
from __future__ import annotations

import base64
import json

import numpy as np
import pytest
from streamlit.testing.v1 import AppTest

from tests.apptest_pages import page, texts, wait_for
from tests.scalar_pairs import BIG, SMALL
from twinboard import runs
from twinboard.contract import RunSpec, frame
from twinboard.text import md

SCALAR_TAGS = ["accuracy/train", "accuracy/val", "loss/train", "loss/val", "lr", "perf/step_ms"]


@pytest.fixture
def scalars(event_logdir, monkeypatch):
    monkeypatch.setenv("TWINBOARD_LOGDIR", str(event_logdir))
    return page("scalars")


def figures(at: AppTest) -> list[dict]:
    return [json.loads(c.proto.spec) for c in at.get("plotly_chart")]


def points(trace: dict, axis: str = "y") -> list:
    """A trace's values as sent: plotly base64-encodes numeric arrays as {"dtype", "bdata"}."""
    data = trace[axis]
    if isinstance(data, dict):
        return np.frombuffer(base64.b64decode(data["bdata"]), np.dtype(data["dtype"])).tolist()
    return list(data)


def title(fig: dict) -> str:
    return fig["layout"]["title"]["text"]


def test_scalars_page_empty_logdir(tmp_path, monkeypatch):
    monkeypatch.setenv("TWINBOARD_LOGDIR", str(tmp_path))
    at = page("scalars").run()
    assert not at.exception
    assert any("No runs yet" in t for t in texts(at, "info"))


def test_scalars_page_draws_every_tag_side_by_side(scalars):
    at = scalars.run()
    assert not at.exception, at.exception
    figs = figures(at)
    assert sorted(title(f) for f in figs) == SCALAR_TAGS  # the newest pair: 60 steps
    for fig in figs:
        assert fig["layout"]["yaxis"]["range"] == fig["layout"]["yaxis2"]["range"]  # shared y
        colours = {t["line"]["color"] for t in fig["data"]}
        from twinboard.scalars import FRAMEWORK_COLORS
        assert colours == {FRAMEWORK_COLORS["torch"], FRAMEWORK_COLORS["tensorflow"]}
    assert [e.label for e in at.expander][:2] == ["**loss** · 2", "**accuracy** · 2"]


def test_scalars_page_samples_long_series_and_zooms(scalars):
    at = scalars.run()
    at.sidebar.selectbox(key="scalars_pair").set_value(BIG).run()
    assert not at.exception
    loss = next(f for f in figures(at) if title(f) == "loss/train")
    assert all(len(points(t)) <= 2000 and len(points(t, "x")) == len(points(t)) for t in loss["data"])
    assert max(len(points(t)) for t in loss["data"]) > 1900
    assert "of 3,000 points" in loss["layout"]["title"]["subtitle"]["text"]
    at.sidebar.toggle(key="scalars_zoom").set_value(True).run()
    at.sidebar.slider(key="scalars_steps").set_value((1000, 1499)).run()
    assert not at.exception
    loss = next(f for f in figures(at) if title(f) == "loss/train")
    assert [len(points(t)) for t in loss["data"]] == [500] * 4  # raw + smoothed, both sides, all points
    assert points(loss["data"][0], "customdata")[0] == 1000  # hover shows the step
    assert not loss["layout"]["title"].get("subtitle", {}).get("text")


def test_scalars_page_toggles(scalars):
    at = scalars.run()
    for key, value in [("scalars_overlay", True), ("scalars_log_y", True)]:
        at.sidebar.toggle(key=key).set_value(value).run()
        assert not at.exception, (key, at.exception)
    fig = figures(at)[0]
    assert "yaxis2" not in fig["layout"] and fig["layout"]["yaxis"]["type"] == "log"
    for axis in ("relative", "wall", "step"):
        at.sidebar.radio(key="scalars_x_axis").set_value(axis).run()
        assert not at.exception, (axis, at.exception)
    at.sidebar.slider(key="scalars_smoothing").set_value(0.0).run()
    assert not at.exception
    assert all(len(f["data"]) == 2 for f in figures(at))  # smoothing off: no faint raw copies
    at.sidebar.text_input(key="scalars_filter").set_value("^loss/").run()
    assert sorted(title(f) for f in figures(at)) == ["loss/train", "loss/val"]
    at.sidebar.text_input(key="scalars_filter").set_value("loss(").run()
    assert not at.exception and any("not a valid regular expression" in e for e in texts(at, "error"))


def test_scalars_page_more_pairs_and_any_two_runs(scalars):
    at = scalars.run()
    at.sidebar.multiselect(key="scalars_more_pairs").set_value([BIG]).run()
    assert not at.exception
    lr = next(f for f in figures(at) if title(f) == "lr")
    assert len(lr["data"]) == 8 and {t["line"]["dash"] for t in lr["data"]} == {"solid", "dash"}
    at.sidebar.selectbox(key="scalars_pair").set_value("Any two runs…").run()
    at.sidebar.selectbox(key="scalars_left").set_value(f"{BIG}/torch").run()
    at.sidebar.selectbox(key="scalars_right").set_value(f"{SMALL}/torch").run()
    assert not at.exception
    assert sorted(title(f) for f in figures(at)) == SCALAR_TAGS


def test_scalars_page_reports_a_corrupt_file_and_keeps_going(event_logdir, tmp_path, monkeypatch):
    import shutil
    root = tmp_path / "logs"
    shutil.copytree(event_logdir / SMALL, root / SMALL)
    bad = root / "uploads" / "broken"
    bad.mkdir(parents=True)
    record = bytearray(frame(b"\x00" * 16))
    record[-1] ^= 0xFF  # a complete record whose data CRC is wrong
    (bad / "events.out.tfevents.1.broken").write_bytes(bytes(record))
    half = (root / SMALL / "torch").glob("events.out.tfevents.*")
    with open(next(half), "ab") as f:
        f.write(frame(b"\x01" * 40)[:-7])  # a writer still going: not corruption
    monkeypatch.setenv("TWINBOARD_LOGDIR", str(root))
    at = page("scalars").run()
    assert not at.exception, at.exception
    assert not texts(at, "warning")  # the page reads the runs it shows, and the broken one is not
    assert sorted(title(f) for f in figures(at)) == SCALAR_TAGS
    at.sidebar.selectbox(key="scalars_pair").set_value("Any two runs…").run()
    at.sidebar.selectbox(key="scalars_left").set_value(f"{SMALL}/torch")
    at.sidebar.selectbox(key="scalars_right").set_value("uploads/broken").run()
    assert not at.exception, at.exception
    warnings = texts(at, "warning")
    assert len(warnings) == 1 and "broken" in warnings[0], warnings
    assert sorted(title(f) for f in figures(at)) == SCALAR_TAGS  # the good side is still drawn


def test_a_page_opened_before_the_first_events_waits_for_them(launch_logdir, monkeypatch):
    """Right after Start, the trainers are still importing: no event file yet. The page must say a
    run is starting (and rerun by itself) instead of a bare 'No runs yet' that needs a reload."""

    monkeypatch.setenv("STUB_MODE", "sleep")  # the stub writes status.json but no event file
    run = runs.launch(RunSpec(steps=5))
    assert isinstance(run, runs.Launched), run
    try:
        wait_for(lambda: runs.get_run(run.run_id).frameworks["torch"].state == "running")
        at = page("scalars").run()
        assert not at.exception
        assert any(md(run.run_id) in c.value and "Starting" in c.value for c in at.sidebar.caption)
    finally:
        runs.stop(run.run_id, grace=1.0)
