"""Tag mapping (foreign tags onto ours, one x axis for all) and CSV / Parquet export round trips.

Event files here are framed by hand with the tensorboard protobufs (records.frame); the real
writers' layouts are covered end to end in test_uploads_shell.py.
"""
from __future__ import annotations

import json
from pathlib import Path

import numpy as np
import pandas as pd
import pytest
from tensorboard.compat.proto import event_pb2

from twinboard import events, tagmap, uploads
from twinboard.contract import frame
from twinboard.tagmap import Mapping, MappingError, Rule

EV = "events.out.tfevents.1700000000.host"


def write_events(folder: Path, series: dict[str, list[tuple[int, float]]], wall0: float = 1.7e9) -> Path:
    folder.mkdir(parents=True, exist_ok=True)
    records = [frame(event_pb2.Event(wall_time=wall0, file_version="brain.Event:2").SerializeToString())]
    for i, (tag, points) in enumerate(series.items()):
        for step, value in points:
            e = event_pb2.Event(wall_time=wall0 + 0.25 * step + i, step=step)
            v = e.summary.value.add()
            v.tag, v.simple_value = tag, value
            records.append(frame(e.SerializeToString()))
    (folder / EV).write_bytes(b"".join(records))
    return folder


def frame_of(rows: list[tuple[str, str, int, float]]) -> pd.DataFrame:
    df = pd.DataFrame(rows, columns=["run", "tag", "step", "value"])
    return df.assign(wall_time=np.arange(len(df), dtype="float64"))[["run", "tag", "step", "wall_time", "value"]]


# --- rules ---------------------------------------------------------------------------------------
DEFAULTS = tagmap.default_mapping(["up/train", "up/validation"])


@pytest.mark.parametrize("run,tag,ours", [
    ("uploads/k/train", "epoch_loss", "loss/train"),  # Keras
    ("uploads/k/validation", "epoch_loss", "loss/val"),
    ("uploads/k/train", "epoch_accuracy", "accuracy/train"),
    ("uploads/k/validation", "epoch_accuracy", "accuracy/val"),
    ("uploads/k/train", "epoch_learning_rate", "lr"),
    ("uploads/k/validation", "evaluation_loss_vs_iterations", ""),  # dropped: repeats epoch_loss
    ("uploads/x/tbx/loss/train", "loss", "loss/train"),  # tensorboardX add_scalars
    ("uploads/x/tbx/loss/val", "loss", "loss/val"),
    ("uploads/x/torch/accuracy_train", "accuracy", "accuracy/train"),  # torch add_scalars
    ("uploads/x/torch/Loss_validation", "Loss", "loss/val"),
    ("uploads/x/torch", "Loss/train", "loss/train"),  # the torch tutorial's tags
    ("uploads/x/tf1", "loss", "loss/train"),  # TF1 estimator: model_dir and eval/
    ("uploads/x/tf1/eval", "accuracy", "accuracy/val"),
    ("uploads/x/a", "train/acc", "accuracy/train"),
    ("uploads/x/a", "learning_rate", "lr"),
    ("20260101-000000-digits-mlp-sgd/torch", "loss/val", "loss/val"),  # ours stay ours
    ("20260101-000000-digits-mlp-sgd/torch", "perf/step_ms", "perf/step_ms"),  # no rule: kept
    ("uploads/x/tbx/loss/train", "other", "other"),
])
def test_default_rules(run, tag, ours):
    assert tagmap.resolve(run, tag, DEFAULTS)[0] == ours


def test_keras_layout_detection():
    assert DEFAULTS.x_axis == "epoch"
    assert tagmap.default_mapping(["tbx", "tbx/loss/train", "tbx/loss/val"]).x_axis == "step"


def test_run_group_required_again_in_the_tag():
    m = Mapping((Rule("(?:.*/)?(?P<m>\\w+)_(?P<s>train|val)", "(?P=m)", "{m}/{s}"),))
    assert tagmap.resolve("r/loss_val", "loss", m)[0] == "loss/val"
    assert tagmap.resolve("r/loss_val", "accuracy", m)[0] == "accuracy"  # not the folder's metric


def test_mapping_file_round_trip_and_bad_input(tmp_path):
    m = DEFAULTS.replace(steps_per_epoch=3.0, batch_size=16)
    tagmap.save(m, tmp_path)
    assert tagmap.load(tmp_path) == m
    assert json.loads((tmp_path / tagmap.MAPPING_FILE).read_text())["batch_size"] == 16
    with pytest.raises(MappingError, match="run pattern .* not a valid regular expression"):
        Mapping((Rule("(", "x", "y"),))
    with pytest.raises(MappingError, match="x_axis"):
        Mapping(x_axis="time")
    with pytest.raises(MappingError, match="batch_size"):
        Mapping(batch_size=0)
    with pytest.raises(MappingError, match="step_unit"):
        Mapping((Rule("a", "b", "c", "minutes"),))
    with pytest.raises(MappingError, match="'to'"):
        tagmap.resolve("a", "b", Mapping((Rule("a", "b", "{nope}"),)))
    (tmp_path / tagmap.MAPPING_FILE).write_text('{"rules": [], "colour": 1}')
    with pytest.raises(MappingError, match="colour"):
        tagmap.load(tmp_path)


def test_rules_from_the_editors_rows():
    rows = [{"run": "(?:.*/)?train", "tag": "epoch_(?P<m>.+)", "to": "{m}/train", "step_unit": "epoch",
             "step_offset": 1.0},
            {"run": ".*", "tag": "lr", "to": None, "step_unit": float("nan"), "step_offset": None},
            {"run": "", "tag": "x", "to": "y"}, {"run": float("nan"), "tag": "x"}]  # no pattern: left out
    assert tagmap.rules_from_rows(rows) == (Rule("(?:.*/)?train", "epoch_(?P<m>.+)", "{m}/train", "epoch", 1),
                                            Rule(".*", "lr", "", "step", 0))
    with pytest.raises(MappingError, match="step_offset='one' is not a whole number"):
        tagmap.rules_from_rows([{"run": "a", "tag": "b", "step_offset": "one"}])


def test_preview_of_an_upload(tmp_path):
    write_events(tmp_path / "train", {"epoch_loss": [(0, 0.9), (1, 0.8)]})
    write_events(tmp_path / "validation", {"epoch_loss": [(0, 1.0)], "evaluation_loss_vs_iterations": [(3, 1.0)]})
    write_events(tmp_path / ".hidden", {"secret": [(0, 1.0)]})
    df = tagmap.upload_scalars(tmp_path)
    assert sorted(set(df["run"])) == ["train", "validation"]  # hidden folders are not runs
    shown, x_problem = tagmap.preview(df, DEFAULTS)
    assert sorted(map(tuple, shown.to_numpy().tolist())) == [
        ("train", "epoch_loss", "loss/train"), ("validation", "epoch_loss", "loss/val"),
        ("validation", "evaluation_loss_vs_iterations", "(dropped)")]
    assert x_problem is None  # x = epoch needs no factor for Keras' epoch_* series
    assert "steps_per_epoch" in tagmap.preview(df, DEFAULTS.replace(x_axis="step"))[1]
    (tmp_path / "blank").mkdir()
    blank = tagmap.upload_scalars(tmp_path / "blank")
    assert blank.empty and list(blank.columns) == list(df.columns)
    assert tagmap.preview(blank, DEFAULTS)[0].empty


# --- apply and the x axis ------------------------------------------------------------------------
KERAS = frame_of([("up/train", "epoch_loss", 0, 0.9), ("up/train", "epoch_loss", 1, 0.7),
                  ("up/validation", "epoch_loss", 0, 1.0), ("up/validation", "epoch_loss", 1, 0.8),
                  ("up/validation", "evaluation_loss_vs_iterations", 3, 1.0),
                  ("up/train", "custom", 5, 1.0)])


def test_apply_maps_tags_drops_and_keeps():
    out = tagmap.apply(KERAS, DEFAULTS.replace(steps_per_epoch=3))
    assert list(out.columns) == ["run", "tag", "step", "wall_time", "value", "source_tag", "x"]
    assert set(zip(out["tag"], out["source_tag"])) == {("loss/train", "epoch_loss"), ("loss/val", "epoch_loss"),
                                                       ("custom", "custom")}
    assert "evaluation_loss_vs_iterations" not in set(out["source_tag"])
    assert sorted(out["step"]) == [0, 0, 1, 1, 5]  # steps stay as logged
    cat = KERAS.astype({"run": "category", "tag": "category"})  # read_scalars gives categoricals
    pd.testing.assert_frame_equal(tagmap.apply(cat, DEFAULTS.replace(steps_per_epoch=3)).drop(columns=["run"]),
                                  out.drop(columns=["run"]), check_dtype=False)


def test_x_axis_step_epoch_samples():
    m = DEFAULTS.replace(steps_per_epoch=3, batch_size=16)
    loss = lambda x: tagmap.apply(KERAS, m, x).query("tag == 'loss/val'")["x"].tolist()
    assert loss("epoch") == [1.0, 2.0]  # Keras' epoch 0 is logged after one whole epoch
    assert loss("step") == [3.0, 6.0]
    assert loss("samples") == [48.0, 96.0]
    custom = tagmap.apply(KERAS, m, "epoch").query("tag == 'custom'")["x"].tolist()
    assert custom == [5 / 3]  # a per-step series, divided by steps_per_epoch


def test_missing_factor_is_named():
    with pytest.raises(MappingError, match=r"needs steps_per_epoch for 'up/train' 'epoch_loss'"):
        tagmap.apply(KERAS, DEFAULTS, "step")
    with pytest.raises(MappingError, match="batch_size"):
        tagmap.apply(KERAS, DEFAULTS.replace(steps_per_epoch=3), "samples")


def test_to_x_for_one_series():
    _, rule = tagmap.resolve("up/validation", "epoch_loss", DEFAULTS)
    m = DEFAULTS.replace(steps_per_epoch=10, batch_size=4)
    assert tagmap.to_x(np.array([0, 1]), rule, m, "samples").tolist() == [40.0, 80.0]
    assert tagmap.to_x(np.array([10, 20]), None, m, "epoch").tolist() == [1.0, 2.0]


def test_infer_steps_per_epoch():
    assert tagmap.infer_steps_per_epoch(KERAS) == 3.0
    assert tagmap.infer_steps_per_epoch(KERAS[KERAS["tag"] != "evaluation_loss_vs_iterations"]) is None


def test_uploaded_keras_run_and_local_run_share_one_axis(tmp_path):
    """A Keras upload (train/ + validation/) beside a local run of 3 steps per epoch, batch 16."""
    root = tmp_path
    up = root / "uploads" / "k"
    write_events(up / "train", {"epoch_loss": [(0, 0.9), (1, 0.7)]})
    write_events(up / "validation", {"epoch_loss": [(0, 1.0), (1, 0.8)]})
    tagmap.save(tagmap.default_mapping(["train", "validation"], 3, 16), up)
    local = write_events(root / "20260101-000000-digits-mlp-sgd" / "torch",
                         {"loss/train": [(s, 1 / s) for s in range(1, 7)], "loss/val": [(3, 1.1), (6, 0.9)]})
    (local.parent / "spec.json").write_text(json.dumps({"batch_size": 16, "epochs": 2, "steps": 0}))
    (local / "status.json").write_text(json.dumps({"state": "finished", "step": 6, "total_steps": 6}))
    assert tagmap.companions(up / "train", tagmap.load(up)) == [up / "validation"]
    assert tagmap.for_local_run(local) == Mapping(steps_per_epoch=3.0, batch_size=16)
    for x_axis, expected in (("epoch", [1.0, 2.0]), ("step", [3.0, 6.0]), ("samples", [48.0, 96.0])):
        ours = tagmap.read_mapped(local, "local", root, x_axis)
        theirs = tagmap.read_mapped(up / "train", "keras", root, x_axis)
        assert set(theirs["tag"]) == {"loss/train", "loss/val"}
        assert theirs.query("tag == 'loss/val'")["x"].tolist() == expected
        assert ours.query("tag == 'loss/val'")["x"].tolist() == expected


def test_add_scalars_children_read_with_their_writer(tmp_path):
    run = write_events(tmp_path / "uploads" / "x" / "tbx", {"accuracy/train": [(1, 0.5)]})
    write_events(run / "loss" / "train", {"loss": [(1, 1.0)]})
    write_events(run / "loss" / "val", {"loss": [(1, 1.5)]})
    write_events(run / "other_run", {"loss": [(1, 9.0)]})  # not a sub-run of an add_scalars call
    df = tagmap.read_mapped(run, "x", tmp_path)
    assert sorted(zip(df["tag"], df["value"])) == [("accuracy/train", 0.5), ("loss/train", 1.0),
                                                   ("loss/val", 1.5)]


# --- export ----------------------------------------------------------------------------------------
def test_csv_and_parquet_round_trip_real_scalars(tmp_path):
    write_events(tmp_path / "a" / "torch", {"loss/train": [(s, 1 / 3 + s) for s in range(1, 50)],
                                            "weird, \"tag\"\nwith newline": [(1, float("nan")), (2, np.inf)]})
    write_events(tmp_path / "b", {"loss/train": [(7, 0.1)]}, wall0=1795655193.2366295)
    df = uploads.collect([("a/torch", tmp_path / "a" / "torch"), ("b", tmp_path / "b")], logdir=tmp_path)
    assert list(df.columns) == list(uploads.COLUMNS) and len(df) == 52
    assert df.dtypes.astype(str).tolist() == ["str", "str", "int64", "float64", "float64"]
    for back in (uploads.read_csv_bytes(uploads.to_csv_bytes(df)),
                 uploads.read_parquet_bytes(uploads.to_parquet_bytes(df))):
        pd.testing.assert_frame_equal(back, df)
    raw = events.read_scalars(tmp_path / "b")  # the reader's float32 values survive exactly
    assert uploads.read_csv_bytes(uploads.to_csv_bytes(df)).query("run == 'b'")["value"].tolist() == \
        raw["value"].tolist()
    assert uploads.to_csv_bytes(df).splitlines()[0] == b"run,tag,step,wall_time,value"


def test_collect_selects_tags_and_maps(tmp_path):
    up = tmp_path / "uploads" / "k"
    write_events(up / "train", {"epoch_loss": [(0, 0.9)], "epoch_accuracy": [(0, 0.5)]})
    write_events(up / "validation", {"epoch_loss": [(0, 1.0)]})
    tagmap.save(tagmap.default_mapping(["train", "validation"]), up)
    sel = [("uploads/k/train", up / "train")]
    assert set(uploads.collect(sel, logdir=tmp_path)["tag"]) == {"epoch_loss", "epoch_accuracy"}
    mapped = uploads.collect(sel, ["loss/train", "loss/val"], mapped=True, logdir=tmp_path)
    assert sorted(zip(mapped["run"], mapped["tag"], mapped["step"])) == [
        ("uploads/k/train", "loss/train", 0), ("uploads/k/train", "loss/val", 0)]
    empty = uploads.collect([], logdir=tmp_path)
    pd.testing.assert_frame_equal(uploads.read_parquet_bytes(uploads.to_parquet_bytes(empty)), empty)
    with pytest.raises(KeyError, match="value"):
        uploads.to_csv_bytes(pd.DataFrame({"run": [], "tag": [], "step": [], "wall_time": []}))


def test_export_selection_follows_a_renamed_or_deleted_upload():
    chosen = ["uploads/a/train", "uploads/ab/train", "run-1/torch", "uploads/a", "uploads/a/validation"]
    assert uploads.retarget(chosen, "a", "b") == [
        "uploads/b/train", "uploads/ab/train", "run-1/torch", "uploads/b", "uploads/b/validation"]
    assert uploads.retarget(chosen, "a", None) == ["uploads/ab/train", "run-1/torch"]
    assert uploads.retarget(["uploads/a/x", "uploads/b/x"], "a", "b") == ["uploads/b/x"]  # no duplicates
