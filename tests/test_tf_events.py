"""The TensorFlow trainer's held train scalars (trainers.tf_events) against TensorFlow's own writer.

The events are encoded by trainers.event_records and imported through the run's tf.summary writer;
every byte must be what tf.summary.scalar writes (several values in one event, as TensorFlow's
merged summaries), and the file must read the same through TensorBoard's EventAccumulator and
Twinboard's reader: each tag in step order, with nothing lost."""
from __future__ import annotations

import subprocess
import sys
from pathlib import Path

import numpy as np
import pytest
from tensorboard.backend.event_processing.event_accumulator import EventAccumulator
from tensorboard.compat.proto.event_pb2 import Event
from tensorboard.compat.proto.summary_pb2 import Summary

import twinboard
from trainers.event_records import ScalarRows, encode_events
from twinboard.events import iter_events

tf = pytest.importorskip("tensorflow")
ROOT = Path(__file__).resolve().parents[1]


def _events(logdir) -> list[Event]:
    (path,) = logdir.glob("events.out.tfevents.*")
    return [e for e in iter_events(path) if e.HasField("summary")]


def test_values_are_tf_summary_scalars_bytes(tmp_path):
    tags, values, step, wall = ("loss/train", "lr", "accuracy/train"), [0.1234567891, 1e-3, 0.96875], 300, 1.7e9 + 0.25
    writer = tf.summary.create_file_writer(str(tmp_path))
    with writer.as_default():
        for tag, value in zip(tags, values):
            tf.summary.scalar(tag, value, step=step)
    writer.close()
    written = _events(tmp_path)
    assert [e.summary.value[0].tag for e in written] == list(tags)

    rows = ScalarRows()
    merged = Event(wall_time=wall, step=step, summary=Summary(value=[e.summary.value[0] for e in written]))
    data, lengths = encode_events([step], [wall], rows.event_id(tags, "tf_float32"), values, rows.layouts)
    assert data == merged.SerializeToString() and lengths.tolist() == [len(data)]
    one = Event(wall_time=wall, step=step, summary=written[0].summary)  # one value an event, too
    data, _ = encode_events([step], [wall], rows.tag_ids(tags[:1], "tf_float32"), values[:1], rows.layouts)
    assert data == one.SerializeToString()


@pytest.mark.parametrize("classify", [True, False])
def test_held_scalars_reach_the_file_in_order(tmp_path, classify):
    from trainers.tf_events import IMPORT_SIZES, HeldScalars

    rng = np.random.default_rng(0)
    y_train = rng.integers(0, 10, 500)
    writer = tf.summary.create_file_writer(str(tmp_path), max_queue=1_000_000, flush_millis=2000)
    held = HeldScalars(tf, writer, 0.05, y_train if classify else None)
    n = sum(IMPORT_SIZES) * 2 + 3  # every import size, twice, and a tail
    losses = rng.random(n).astype(np.float32)
    logits = rng.normal(size=(n, 8, 10)).astype(np.float32)
    batches = [rng.integers(0, 500, 8) for _ in range(n)]
    perf_steps = {1, 40, n}
    for s in range(1, n + 1):
        perf = {"perf/step_ms": s / 10, "perf/samples_per_s": 1e4 / s} if s in perf_steps else None
        held.hold(s, tf.constant(losses[s - 1]), tf.constant(logits[s - 1]), batches[s - 1], perf)
        if s == 40:  # a flush mid-run: two batches, imported in the order they were held
            held.last_flush = 0.0
            held.maybe_flush()
    with writer.as_default():  # the training thread writes other records meanwhile
        tf.summary.scalar("loss/val", 0.5, step=20)
    held.close()
    writer.close()
    assert held.thread.busy_s > 0

    steps = list(range(1, n + 1))
    acc = [np.count_nonzero(logits[i].argmax(1) == y_train[batches[i]]) / 8 for i in range(n)]
    want = {"loss/train": losses.tolist(), "lr": [np.float32(0.05)] * n,
            **({"accuracy/train": acc} if classify else {})}
    ea = EventAccumulator(str(tmp_path), size_guidance={"tensors": 0})
    ea.Reload()
    for tag, values in want.items():
        got = ea.Tensors(tag)
        assert [t.step for t in got] == steps, tag
        np.testing.assert_array_equal([tf.make_ndarray(t.tensor_proto) for t in got], np.float32(values))
    assert [t.step for t in ea.Tensors("perf/step_ms")] == sorted(perf_steps)
    frame = twinboard.read_scalars(tmp_path)
    for tag, values in want.items():
        series = frame[frame.tag == tag]
        assert series.step.tolist() == steps
        np.testing.assert_array_equal(series.value.to_numpy(np.float32), np.float32(values))
        assert (np.diff(series.wall_time.to_numpy()) >= 0).all()
    assert frame[frame.tag == "perf/samples_per_s"].value.tolist() == pytest.approx([1e4 / s for s in sorted(perf_steps)], rel=1e-6)


FAILING_RUN = """
import sys
from pathlib import Path
from trainers import data
from trainers.loop import Cadence
from trainers.runtime import Paths
from twinboard.contract import RunSpec
from trainers.tf_trainer import open_adapter

root = Path(sys.argv[1])
spec = RunSpec(hidden=(8,), steps=10, log_every=1)
ds = data.load(spec)
paths = Paths(root / "spec.json", root, root / "tensorflow")
spec.save(paths.spec_path)
with open_adapter(spec, paths, ds, Cadence.from_spec(spec, len(ds.x_train))) as adapter:
    for step, _epoch, idx in data.batches(spec, len(ds.x_train)):
        adapter.write_train_scalars(step, adapter.train_step(step, idx, False, True), None)
        if step == 5:
            raise RuntimeError("boom")
"""


def test_a_failed_run_keeps_what_it_logged(tmp_path):
    """A failure inside the loop: the scalars held until then are still written (a fresh process:
    the trainer sets TensorFlow's thread pools, which this one has started already)."""
    p = subprocess.run([sys.executable, "-c", FAILING_RUN, str(tmp_path)], cwd=ROOT, capture_output=True,
                       text=True, timeout=120)
    assert p.returncode == 1 and "RuntimeError: boom" in p.stderr
    frame = twinboard.read_scalars(tmp_path / "tensorflow")
    assert frame[frame.tag == "loss/train"].step.tolist() == [1, 2, 3, 4, 5]
