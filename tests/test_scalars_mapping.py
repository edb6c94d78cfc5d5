"""Issue 6: an uploaded run charts beside a local run on one Scalars chart, after tag mapping.

A local run (`<run>/torch`, tensorboardX, a step per batch, 10 steps per epoch from its spec.json and
status.json) and an upload of a Keras-callback-style log (`train/` + `validation/`, `epoch_loss` at
step = epoch index, written with tf.summary) imported through `uploads.import_upload`. Both writers
run in one subprocess, so this process never loads a framework.
"""
from __future__ import annotations

import base64
import io
import json
import subprocess
import sys
import zipfile
from pathlib import Path

import numpy as np
import pytest
from streamlit.testing.v1 import AppTest

from twinboard import events, tagmap, uploads
from twinboard.text import md

ROOT = Path(__file__).resolve().parents[1]
RUN = "20260101-000000-digits-mlp-sgd"
STEPS, EPOCHS, BATCH = 30, 3, 16  # the local run: 10 optimizer steps per epoch

WRITER = r'''
import os, sys
from pathlib import Path
root, keras = Path(sys.argv[1]), Path(sys.argv[2])
from tensorboardX import SummaryWriter
w = SummaryWriter(str(root / "20260101-000000-digits-mlp-sgd" / "torch"))
for step in range(30):
    w.add_scalar("loss/train", 2.0 - step / 20, step, walltime=1.7e9 + step)
    w.add_scalar("loss/val", 2.1 - step / 20, step, walltime=1.7e9 + step)
w.close()
import tensorflow as tf
for split, shift in (("train", 0.0), ("validation", 0.1)):
    with tf.summary.create_file_writer(str(keras / split)).as_default():
        for epoch in range(3):  # what Keras' TensorBoard callback writes at the end of each epoch
            tf.summary.scalar("epoch_loss", 1.0 - epoch / 4 + shift, step=epoch)
            if split == "validation":  # ... and, from validation_freq, at the optimizer step
                tf.summary.scalar("evaluation_loss_vs_iterations", 1.0 - epoch / 4 + shift,
                                  step=(epoch + 1) * 10)
'''


@pytest.fixture(scope="module")
def logdir(tmp_path_factory) -> Path:
    root, keras = tmp_path_factory.mktemp("logs"), tmp_path_factory.mktemp("keras")
    env = {"PATH": "/usr/bin:/bin", "TF_CPP_MIN_LOG_LEVEL": "3", "CUDA_VISIBLE_DEVICES": ""}
    out = subprocess.run([sys.executable, "-c", WRITER, str(root), str(keras)], cwd=ROOT, env=env, check=False,
                         capture_output=True, text=True, timeout=240)
    assert out.returncode == 0, out.stderr[-3000:]
    run = root / RUN
    (run / "spec.json").write_text(json.dumps({"batch_size": BATCH, "epochs": EPOCHS, "steps": 0}))
    (run / "torch" / "status.json").write_text(json.dumps({"state": "finished", "step": STEPS,
                                                           "total_steps": STEPS}))
    data = io.BytesIO()
    with zipfile.ZipFile(data, "w") as z:
        for p in sorted(keras.rglob("*")):
            if p.is_file():
                z.write(p, p.relative_to(keras).as_posix())
    result = uploads.import_upload([("keras.zip", data.getvalue())], "keras", root)
    assert result.runs == ["train", "validation"]
    return root


def xs(trace: dict) -> list[float]:
    """A trace's x values as sent: plotly base64-encodes numeric arrays as {"dtype", "bdata"}."""
    data = trace["x"]
    if isinstance(data, dict):
        return np.frombuffer(base64.b64decode(data["bdata"]), np.dtype(data["dtype"])).tolist()
    return list(data)


def figures(at: AppTest) -> dict[str, dict]:
    figs = [json.loads(c.proto.spec) for c in at.get("plotly_chart")]
    return {f["layout"]["title"]["text"]: f for f in figs}


def by_name(fig: dict) -> dict[str, list[float]]:
    return {t["name"]: xs(t) for t in fig["data"]}


LOCAL, UPLOADED = f"{RUN}/torch", "uploads/keras/train"


def test_upload_and_local_run_share_the_epoch_axis(logdir, monkeypatch):
    """Any two runs: each curve is named by its run (a matched pair names them by framework)."""
    monkeypatch.setenv("TWINBOARD_LOGDIR", str(logdir))
    at = AppTest.from_file(str(ROOT / "pages" / "scalars.py"), default_timeout=60).run()
    assert not at.exception, at.exception
    assert at.sidebar.radio(key="scalars_x_axis").value == "epoch"  # the Keras upload's mapping says so
    at.sidebar.selectbox(key="scalars_pair").set_value("Any two runs…")
    at.sidebar.selectbox(key="scalars_left").set_value(LOCAL)
    at.sidebar.selectbox(key="scalars_right").set_value(UPLOADED)
    at.sidebar.slider(key="scalars_smoothing").set_value(0.0)
    at.sidebar.radio(key="scalars_x_axis").set_value("epoch").run()
    assert not at.exception, at.exception
    figs = figures(at)
    assert sorted(figs) == ["loss/train", "loss/val"]  # epoch_loss mapped; evaluation_* dropped
    loss = by_name(figs["loss/train"])
    assert loss == {LOCAL: pytest.approx(np.arange(STEPS) / 10), UPLOADED: [1.0, 2.0, 3.0]}
    assert figs["loss/train"]["layout"]["xaxis"]["title"]["text"] == "epoch"
    assert by_name(figs["loss/val"])[UPLOADED] == [1.0, 2.0, 3.0]  # from the sibling validation/
    assert not at.warning

    at.sidebar.radio(key="scalars_x_axis").set_value("step").run()  # steps per epoch read off Keras
    loss = by_name(figures(at)["loss/train"])
    assert loss == {LOCAL: list(range(STEPS)), UPLOADED: [10.0, 20.0, 30.0]}

    at.sidebar.toggle(key="scalars_zoom").set_value(True).run()  # the zoom range is in epochs here
    at.sidebar.radio(key="scalars_x_axis").set_value("epoch").run()
    slider = at.sidebar.slider(key="scalars_steps")
    assert slider.label == "Epochs" and (slider.min, slider.max) == (0.0, 3.0)
    slider.set_value((1.5, 2.0)).run()
    assert not at.exception, at.exception
    loss = by_name(figures(at)["loss/train"])
    assert loss == {LOCAL: pytest.approx([1.5, 1.6, 1.7, 1.8, 1.9, 2.0]), UPLOADED: [2.0]}

    at.sidebar.toggle(key="scalars_zoom").set_value(False)
    at.sidebar.radio(key="scalars_x_axis").set_value("samples").run()  # the upload has no batch size
    assert not at.exception, at.exception
    assert by_name(figures(at)["loss/train"]) == {LOCAL: [s * BATCH for s in range(STEPS)]}
    warnings = [str(w.value) for w in at.warning]
    assert len(warnings) == 1 and UPLOADED in warnings[0] and md("batch_size") in warnings[0], warnings  # as text


def test_map_run_and_mapped_series_over_a_store(logdir):
    store = events.ScalarStore(logdir)
    store.refresh()
    known = set(store.runs())

    def tags_of(run):
        return store.tags(run) if run in known else []
    up = tagmap.mapping_for_run(logdir / UPLOADED, logdir)
    assert (up.x_axis, up.steps_per_epoch, up.batch_size) == ("epoch", 10.0, None)
    keras = tagmap.map_run(UPLOADED, logdir / UPLOADED, logdir, up, tags_of)
    assert keras.sources == (UPLOADED, "uploads/keras/validation")
    assert {t: [s[:2] for s in v] for t, v in keras.tags.items()} == {
        "loss/train": [(UPLOADED, "epoch_loss")], "loss/val": [("uploads/keras/validation", "epoch_loss")]}
    step, _wall, _value, x = tagmap.mapped_series(keras, "loss/val", store.series, "epoch")
    assert step.tolist() == [0, 1, 2] and x.tolist() == [1.0, 2.0, 3.0]
    assert tagmap.mapped_series(keras, "loss/val", store.series, None)[3] is None  # a time axis
    with pytest.raises(tagmap.MappingError, match="batch_size"):
        tagmap.mapped_series(keras, "loss/train", store.series, "samples")
    local = tagmap.map_run(LOCAL, logdir / LOCAL, logdir, tagmap.mapping_for_run(logdir / LOCAL, logdir),
                           tags_of)
    assert local.sources == (LOCAL,) and set(local.tags) == {"loss/train", "loss/val"}
    assert tagmap.mapped_series(local, "loss/train", store.series, "samples")[3][-1] == (STEPS - 1) * BATCH
    assert tagmap.mapped_series(local, "nope", store.series, "step")[0].size == 0


def test_series_mapped_onto_one_tag_are_joined_in_x_order(tmp_path):
    """Two logged series that one mapping sends to the same tag (a run restarted into a new folder)."""
    series = {("a", "loss"): ([2, 3], [10.0, 11.0], [0.2, 0.3]), ("b", "loss"): ([1, 4], [5.0, 12.0], [0.1, 0.4])}
    rule = tagmap.Rule(".*", "loss", "loss/train")
    run = tagmap.MappedRun("a", tagmap.Mapping((rule,)), ("a", "b"),
                           {"loss/train": (("a", "loss", rule), ("b", "loss", rule))})
    step, wall, value, x = tagmap.mapped_series(run, "loss/train", lambda r, t: [np.asarray(a) for a in series[r, t]],
                                                "step")
    assert step.tolist() == [1, 2, 3, 4] and value.tolist() == [0.1, 0.2, 0.3, 0.4]
    step, wall, value, x = tagmap.mapped_series(run, "loss/train", lambda r, t: [np.asarray(a) for a in series[r, t]],
                                                None)
    assert x is None and wall.tolist() == [5.0, 10.0, 11.0, 12.0]


def events_file(series: dict[str, list[tuple[int, float]]]) -> bytes:
    """An event file's bytes, framed by hand (the layout tensorboardX writes: simple_value)."""
    from tensorboard.compat.proto import event_pb2

    from twinboard.contract import frame

    records = [frame(event_pb2.Event(wall_time=1.7e9, file_version="brain.Event:2").SerializeToString())]
    for tag, points in series.items():
        for step, value in points:
            e = event_pb2.Event(wall_time=1.7e9 + step, step=step)
            v = e.summary.value.add()
            v.tag, v.simple_value = tag, value
            records.append(frame(e.SerializeToString()))
    return b"".join(records)


def test_add_scalars_sub_runs_are_read_with_their_run(logdir, monkeypatch):
    """tensorboardX add_scalars("loss", {"train", "val"}) writes sub-folders loss/train and loss/val
    under the run: picked as one run, they chart as loss/train and loss/val (the page reads them
    with the run's own folder)."""
    name = "tbx-sub-runs"
    if not (logdir / "uploads" / name).exists():
        data = io.BytesIO()
        ev = "events.out.tfevents.1700000000.host"
        with zipfile.ZipFile(data, "w") as z:
            z.writestr(f"tbx/{ev}", events_file({"accuracy/train": [(0, 0.1), (10, 0.5)]}))
            z.writestr(f"tbx/loss/train/{ev}", events_file({"loss": [(0, 2.0), (10, 1.0)]}))
            z.writestr(f"tbx/loss/val/{ev}", events_file({"loss": [(0, 2.2), (10, 1.3)]}))
        uploads.import_upload([("tbx.zip", data.getvalue())], name, logdir)
    monkeypatch.setenv("TWINBOARD_LOGDIR", str(logdir))
    at = AppTest.from_file(str(ROOT / "pages" / "scalars.py"), default_timeout=60).run()
    at.sidebar.selectbox(key="scalars_left").set_value(LOCAL)
    at.sidebar.selectbox(key="scalars_right").set_value(f"uploads/{name}/tbx")
    at.sidebar.slider(key="scalars_smoothing").set_value(0.0)
    at.sidebar.radio(key="scalars_x_axis").set_value("step").run()
    assert not at.exception, at.exception
    figs = figures(at)
    assert sorted(figs) == ["accuracy/train", "loss/train", "loss/val"]
    assert by_name(figs["loss/val"]) == {LOCAL: list(range(STEPS)), f"uploads/{name}/tbx": [0, 10]}
    assert not at.warning


def test_hostile_patterns_do_not_hold_the_scalars_page(logdir, monkeypatch):
    """An upload whose tag is the classic backtracking input, its saved mapping holding a rule that
    backtracks on it, and a tag filter that does too: with Python's re each would take minutes (2^30
    ways to split 30 characters) and the AppTest would time out; with RE2 the page answers."""
    name, tag = "hostile", "a" * 30
    folder = logdir / "uploads" / name
    if not folder.exists():
        data = io.BytesIO()
        with zipfile.ZipFile(data, "w") as z:
            z.writestr("run/events.out.tfevents.1700000000.host", events_file({tag: [(0, 1.0), (5, 0.5)]}))
        uploads.import_upload([("h.zip", data.getvalue())], name, logdir)
    hostile = tagmap.Rule("(?:a|a)*b", "(.+)+X", "never")
    tagmap.save(tagmap.load(folder).replace(rules=(hostile, *tagmap.load(folder).rules)), folder)
    monkeypatch.setenv("TWINBOARD_LOGDIR", str(logdir))
    at = AppTest.from_file(str(ROOT / "pages" / "scalars.py"), default_timeout=60).run()
    at.sidebar.selectbox(key="scalars_pair").set_value("Any two runs…").run()
    at.sidebar.selectbox(key="scalars_left").set_value(LOCAL)
    at.sidebar.selectbox(key="scalars_right").set_value(f"uploads/{name}/run")
    at.sidebar.slider(key="scalars_smoothing").set_value(0.0)
    at.sidebar.radio(key="scalars_x_axis").set_value("step").run()
    assert not at.exception, at.exception
    assert tag in figures(at)  # the hostile rule did not match, the tag kept its name
    at.sidebar.text_input(key="scalars_filter").set_value("(.+)+X").run()
    assert not at.exception, at.exception
    assert tag not in figures(at) and not at.error
    at.sidebar.text_input(key="scalars_filter").set_value("^(a|a)+$").run()
    assert list(figures(at)) == [tag]
