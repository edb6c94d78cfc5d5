"""Scalars from real writers' files equal TensorBoard's own reader; incremental reads, truncated
tails and damaged files behave as DESIGN.md says."""
from __future__ import annotations

import json
import os
import subprocess
import sys
from pathlib import Path

import numpy as np
import pytest
from tensorboard.compat.proto import event_pb2

from twinboard.events import native
from twinboard.events import ScalarStore, read_scalars
from twinboard.contract import CorruptRecordError, frame

ROOT = Path(__file__).resolve().parents[1]

# Each writer runs in its own process (the dashboard never imports a framework), then dumps what
# TensorBoard's EventAccumulator (size_guidance 0: keep everything) reads from its folder.
WRITERS = r'''
import json, sys, types
from pathlib import Path
import numpy as np
out, which = Path(sys.argv[1]), sys.argv[2]
if which == "torch":
    sys.modules["tensorboard.compat.notf"] = types.ModuleType("notf")  # EventAccumulator sans TF
    import torch
    from tensorboardX import SummaryWriter as XWriter
    from torch.utils.tensorboard import SummaryWriter as TWriter
    w = XWriter(str(out / "tbx"))
    for s in range(25):
        w.add_scalar("loss/train", 1 / (s + 1), s)
        w.add_scalar("lr", 0.1 * 0.9 ** s, s)
        if s % 5 == 0:
            w.add_histogram("weights/dense0/kernel", np.random.randn(50), s)
    w.add_text("note", "hello", 0)
    w.add_scalars("acc", {"train": 0.5, "val": 0.25}, 3)  # sub-folders acc/train/, acc/val/
    w.close()
    w = TWriter(str(out / "torch"))
    for s in range(25):
        w.add_scalar("loss/train", float(np.float32(2 / (s + 1))), s)
        w.add_scalar("new_style", 3 / (s + 1), s, new_style=True)
        w.add_scalar("loss/train_fp64", 1 / 3 + s, s, new_style=True, double_precision=True)
        if s % 10 == 0:
            w.add_histogram("grads/out/bias", torch.randn(10), s)
    w.close()
    runs = ["tbx", "tbx/acc/train", "tbx/acc/val", "torch"]
else:
    import keras
    import tensorflow as tf
    from tensorboard.plugins.scalar import metadata as scalar_metadata
    fp64 = scalar_metadata.create_summary_metadata(display_name="", description="")
    w = tf.summary.create_file_writer(str(out / "tf"))
    with w.as_default():
        for s in range(25):
            tf.summary.scalar("loss/train", 1 / (s + 1), step=s)
            tf.summary.write("loss/train_fp64", tf.constant(1 / 3 + s, tf.float64), step=s, metadata=fp64)
            if s % 10 == 0:
                tf.summary.histogram("weights/dense0/kernel", tf.random.normal([30]), step=s)
        tf.summary.text("note", "hello", step=0)
        tf.summary.image("img", np.zeros((1, 4, 4, 1), np.float32), step=0)
    w.close()
    keras.utils.set_random_seed(0)
    model = keras.Sequential([keras.Input((4,)), keras.layers.Dense(3, name="dense0"), keras.layers.Dense(1)])
    model.compile("sgd", "mse")
    x, y = np.random.rand(32, 4).astype("float32"), np.random.rand(32, 1).astype("float32")
    model.fit(x, y, epochs=2, batch_size=8, validation_data=(x, y), verbose=0,
              callbacks=[keras.callbacks.TensorBoard(str(out / "keras"), histogram_freq=1, update_freq=2)])
    runs = ["tf", "keras/train", "keras/validation"]
from tensorboard.backend.event_processing import event_accumulator as ea
from tensorboard.util import tensor_util
rows = []
for run in runs:
    acc = ea.EventAccumulator(str(out / run), size_guidance={ea.SCALARS: 0, ea.TENSORS: 0})
    acc.Reload()
    for tag in acc.Tags()["scalars"]:
        rows += [[run, tag, e.step, e.wall_time, e.value] for e in acc.Scalars(tag)]
    for tag in acc.Tags()["tensors"]:
        if acc.SummaryMetadata(tag).plugin_data.plugin_name == "scalars":
            rows += [[run, tag, e.step, e.wall_time, tensor_util.make_ndarray(e.tensor_proto).item()]
                     for e in acc.Tensors(tag)]
(out / f"expected-{which}.json").write_text(json.dumps(rows))
'''


@pytest.fixture(scope="module")
def written(tmp_path_factory):
    """Real event files from tensorboardX, torch.utils.tensorboard, tf.summary and Keras' callback,
    plus EventAccumulator's reading of them. The two writer processes run side by side."""
    out = tmp_path_factory.mktemp("writers")
    env = dict(os.environ, TF_CPP_MIN_LOG_LEVEL="3", CUDA_VISIBLE_DEVICES="")
    procs = [subprocess.Popen([sys.executable, "-c", WRITERS, str(out), which], env=env,
                              stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True)
             for which in ("torch", "tf")]
    for p in procs:
        _, err = p.communicate(timeout=300)
        assert p.returncode == 0, err[-3000:]
    expected = []
    for which in ("torch", "tf"):
        expected += json.loads((out / f"expected-{which}.json").read_text())
    return out, expected


def _rows(df):
    return sorted(zip(df.run.astype(str), df.tag.astype(str), df.step.tolist(),
                      df.wall_time.tolist(), df.value.tolist()))


@pytest.mark.parametrize("pure", [False, True], ids=["compiled", "protobuf"])
def test_real_writers_match_event_accumulator(written, pure, monkeypatch):
    out, expected = written
    if pure:
        monkeypatch.setitem(native._state, "kernel", None)
    df = read_scalars(out)
    assert list(df.columns) == ["run", "tag", "step", "wall_time", "value"]
    got = _rows(df)
    want = sorted((r, t, s, w, float(v)) for r, t, s, w, v in expected)
    assert got == want
    runs = set(df.run.astype(str))
    assert runs == {"tbx", "tbx/acc/train", "tbx/acc/val", "torch", "tf", "keras/train", "keras/validation"}
    tags = set(zip(df.run.astype(str), df.tag.astype(str)))
    for must in [("tbx", "lr"), ("torch", "new_style"), ("torch", "loss/train_fp64"),
                 ("tf", "loss/train_fp64"), ("keras/train", "epoch_loss"), ("keras/train", "batch_loss"),
                 ("keras/validation", "epoch_loss")]:
        assert must in tags
    # float64 survives as float64: not squeezed through float32
    fp64 = df[(df.run == "tf") & (df.tag == "loss/train_fp64")].value.to_numpy()
    assert fp64[0] == 1 / 3


def test_store_reads_runs_and_single_files(written):
    out, _ = written
    store = ScalarStore(out)
    assert store.refresh() > 0 and store.refresh() == 0
    assert "tbx/acc/train" in store.runs() and store.tags("tbx/acc/train") == ["acc"]
    s = store.series("torch", "loss/train_fp64")
    assert s.step.dtype == np.int64 and s.value.dtype == np.float64 and list(s.step) == list(range(25))
    assert not s.value.flags.writeable
    one = next((out / "tbx").glob("events.out.tfevents.*"))
    df = read_scalars(one)
    assert set(df.run) == {"."} and set(df.tag) == {"loss/train", "lr"} and len(df) == 50
    assert len(read_scalars(out / "tbx")[lambda d: d.run == "."]) == 50


# -- files written here, record by record --------------------------------------------------------

def scalar(tag: str, step: int, value: float) -> bytes:
    ev = event_pb2.Event(wall_time=1000.0 + step, step=step)
    ev.summary.value.add(tag=tag, simple_value=value)
    return frame(ev.SerializeToString())


def header() -> bytes:
    return frame(event_pb2.Event(wall_time=999.0, file_version="brain.Event:2").SerializeToString())


@pytest.fixture(params=[False, True], ids=["compiled", "protobuf"])
def path_kind(request, monkeypatch):
    if request.param:
        monkeypatch.setitem(native._state, "kernel", None)
    return request.param


def test_truncated_tail_is_left_for_next_time(tmp_path, path_kind):
    path = tmp_path / "events.out.tfevents.1.host"
    last = scalar("loss", 3, 0.25)
    path.write_bytes(header() + scalar("loss", 1, 1.0) + scalar("loss", 2, 0.5) + last[:-1])
    df = read_scalars(path)  # no error: the writer may still be writing
    assert df.step.tolist() == [1, 2]
    store = ScalarStore(tmp_path)
    assert store.refresh() == 2 and store.problems() == []
    with open(path, "ab") as f:
        f.write(last[-1:])
    assert store.refresh() == 1
    s = store.series(".", "loss")
    assert s.step.tolist() == [1, 2, 3] and s.value.tolist() == [1.0, 0.5, 0.25]


def test_flipped_byte_is_reported_with_file_and_offset(tmp_path, path_kind):
    good, bad = tmp_path / "good", tmp_path / "bad"
    good.mkdir(), bad.mkdir()
    (good / "events.out.tfevents.1.a").write_bytes(header() + scalar("x", 1, 1.0))
    recs = [header(), scalar("x", 1, 1.0), scalar("x", 2, 2.0), scalar("x", 3, 3.0)]
    raw = bytearray(b"".join(recs))
    offset = len(recs[0]) + len(recs[1])
    raw[offset + 20] ^= 0xFF  # inside record 2's data
    damaged = bad / "events.out.tfevents.1.b"
    damaged.write_bytes(bytes(raw))
    with pytest.raises(CorruptRecordError) as info:
        read_scalars(damaged)
    assert info.value.offset == offset and info.value.path == str(damaged)
    assert str(offset) in str(info.value) and str(damaged) in str(info.value)
    store = ScalarStore(tmp_path)
    assert store.refresh() == 2  # the good file, and the damaged one up to its bad record
    assert store.series("good", "x").step.tolist() == [1]
    assert store.series("bad", "x").step.tolist() == [1]
    (problem,) = store.problems()
    assert (problem.path, problem.offset) == (str(damaged), offset)
    assert str(problem) == str(info.value) and "CRC" in problem.message
    with open(good / "events.out.tfevents.1.a", "ab") as f:
        f.write(scalar("x", 2, 2.0))
    assert store.refresh() == 1 and len(store.problems()) == 1  # the others carry on


def test_incremental_reads_equal_a_full_read(tmp_path, path_kind):
    rng = np.random.default_rng(1)
    run = tmp_path / "run"
    run.mkdir()
    blobs = {}
    for name in ("events.out.tfevents.1.a", "events.out.tfevents.2.b"):
        recs = [header()] + [scalar(["loss", "acc", "lr"][i % 3], i, float(rng.random())) for i in range(300)]
        blobs[run / name] = b"".join(recs)
    store = ScalarStore(tmp_path)
    written = {p: 0 for p in blobs}
    # Grow both files in random pieces, often mid-record; the *later* file grows first, so the
    # earlier file's points must be inserted before it, as a full read orders them.
    for p in sorted(blobs, reverse=True):
        p.write_bytes(b"")
    while any(written[p] < len(b) for p, b in blobs.items()):
        for p, b in sorted(blobs.items(), reverse=True):
            n = min(len(b), written[p] + int(rng.integers(1, 900)))
            with open(p, "ab") as f:
                f.write(b[written[p]:n])
            written[p] = n
            store.refresh()
    full = ScalarStore(tmp_path)
    full.refresh()
    assert store.runs() == full.runs() == ["run"]
    assert store.tags("run") == full.tags("run") == ["acc", "loss", "lr"]
    for tag in full.tags("run"):
        a, b = store.series("run", tag), full.series("run", tag)
        for x, y in zip(a, b):
            assert np.array_equal(x, y)
    assert len(full.series("run", "loss").step) == 200
    df = read_scalars(tmp_path)
    assert df[df.tag == "lr"].step.tolist() == full.series("run", "lr").step.tolist()


def test_series_views_survive_appends(tmp_path):
    path = tmp_path / "events.out.tfevents.1.x"
    path.write_bytes(b"".join(scalar("t", i, i) for i in range(100)))
    store = ScalarStore(tmp_path)
    store.refresh()
    before = store.series(".", "t")
    with open(path, "ab") as f:
        f.write(b"".join(scalar("t", i, -i) for i in range(100, 1100)))
    assert store.refresh() == 1000
    assert before.step.tolist() == list(range(100))
    assert store.series(".", "t").step.tolist() == list(range(1100))
    with pytest.raises(KeyError):
        store.series(".", "nope")


def test_missing_and_empty_paths(tmp_path):
    with pytest.raises(FileNotFoundError):
        read_scalars(tmp_path / "nope")
    df = read_scalars(tmp_path)
    assert df.empty and list(df.columns) == ["run", "tag", "step", "wall_time", "value"]
    assert ScalarStore(tmp_path / "nope").refresh() == 0
