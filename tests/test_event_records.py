"""Scalar events encoded in bulk (trainers.event_records) and the torch trainer's event file
(trainers.torch_events), against protobuf's own bytes.

Scalars are encoded in bulk with numpy; every byte must be what protobuf serializes record by
record (one value an event, as tensorboardX writes, or several, as the TF trainer writes), framed
with masked CRC32C where the writer is ours. tests/test_tf_events.py holds the same against
TensorFlow's writer."""
from __future__ import annotations


import numpy as np
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st
from tensorboard.compat.proto.event_pb2 import Event
from tensorboard.compat.proto.summary_pb2 import Summary, SummaryMetadata
from tensorboard.compat.proto.tensor_pb2 import TensorProto
from tensorboard.compat.proto.tensor_shape_pb2 import TensorShapeProto
from tensorboard.compat.proto.types_pb2 import DT_DOUBLE, DT_FLOAT

from trainers import event_records, torch_events
from twinboard.contract import frame, masked_crc32c
from twinboard.events import iter_events

TAGS = ["loss/train", "lr", "accuracy/ü", "t" * 200, "perf/samples_per_s"]
SCALARS_META = SummaryMetadata(plugin_data=SummaryMetadata.PluginData(plugin_name="scalars"))


def reference(step: int, wall: float, tag: str, kind: str, value: float) -> bytes:
    if kind == "simple":
        val = Summary.Value(tag=tag, simple_value=value)
    else:
        val = Summary.Value(tag=tag, metadata=SCALARS_META, tensor=TensorProto(
            dtype=DT_DOUBLE, tensor_shape=TensorShapeProto(), double_val=[value]))
    return frame(Event(wall_time=wall, step=step, summary=Summary(value=[val])).SerializeToString())


class NoFile:
    """encode() needs no file; a flush does."""


steps = st.one_of(st.sampled_from([0, 1, 127, 128, 16383, 16384, 2**40, 2**63 - 1, -1, -2**63]),
                  st.integers(-2**63, 2**63 - 1))
values = st.one_of(st.floats(allow_nan=True, allow_infinity=True),
                   st.sampled_from([1e39, -1e39, 3.4028235e38, 1e-40, -1e-45, 0.0, -0.0]))
row = st.tuples(steps, st.floats(0, 2e9, allow_nan=False),
                st.lists(st.tuples(st.sampled_from(TAGS), st.sampled_from(["simple", "double"]), values),
                         min_size=1, max_size=6),
                st.booleans())  # a framed (non-scalar) event after this row


@settings(max_examples=150, deadline=None)
@given(st.lists(row, max_size=30))
def test_bulk_encoding_is_protobufs_bytes(rows):
    events = torch_events.BufferedEvents(NoFile())
    expected = []
    for step, wall, items, framed_after in rows:
        ids = []
        for tag, kind, value in items:
            ids += events.tag_ids([tag], kind)
            expected.append(reference(step, wall, tag, kind, value))
        events.scalars(step, wall, tuple(ids), [v for _, _, v in items])
        if framed_after:
            ev = Event(wall_time=wall, step=step, file_version="brain.Event:2")
            events.write_event(ev)
            expected.append(frame(ev.SerializeToString()))
    assert events.encode(*events._take()) == b"".join(expected)


def test_held_values_are_filled_at_the_flush():
    events = torch_events.BufferedEvents(NoFile())
    events.fill = lambda held: [h * 10.0 for h in held]
    ids = events.tag_ids(["loss/train", "accuracy/train"])
    events.scalars(1, 5.0, ids, [0.5, float("nan")], held=0.25)
    events.scalars(2, 6.0, ids, [0.4, float("nan")], held=0.5)
    got = events.encode(*events._take())
    assert got == b"".join([reference(1, 5.0, "loss/train", "simple", 0.5),
                            reference(1, 5.0, "accuracy/train", "simple", 2.5),
                            reference(2, 6.0, "loss/train", "simple", 0.4),
                            reference(2, 6.0, "accuracy/train", "simple", 5.0)])


def test_masked_crc_rows_with_leading_zeros_matches_google_crc32c():
    rng = np.random.default_rng(0)
    lengths = rng.integers(0, 40, 50)
    rows = np.zeros((50, 40), np.uint8)
    for i, n in enumerate(lengths):
        rows[i, 40 - n:] = rng.integers(0, 256, n)
    got = event_records.masked_crc32c_rows(rows, lengths)
    want = [masked_crc32c(rows[i, 40 - n:].tobytes()) for i, n in enumerate(lengths)]
    assert got.tolist() == want


def test_writer_thread_keeps_order_and_reports_failure(tmp_path):
    pytest.importorskip("tensorboardX")
    writer = torch_events.make_writer(tmp_path)
    events = writer.buffered
    assert events is not None, "the pinned tensorboardX's internals moved: the fast path is off"
    ids = events.tag_ids(["loss/train"])
    for step in range(1, 301):
        events.scalars(step, 1.0 + step, ids, [step / 10])
        if step % 100 == 0:
            writer.add_histogram_raw("h", 0.0, 1.0, 2, 1.0, 1.0, [0.0, 1.0], [0.0, 2.0], step)
            events.flush_async()
    writer.close()
    (path,) = tmp_path.glob("events.out.tfevents.*")
    read = [(e.step, e.summary.value[0].tag) for e in iter_events(path) if e.HasField("summary")]
    want = []
    for step in range(1, 301):
        want.append((step, "loss/train"))
        if step % 100 == 0:
            want.append((step, "h"))
    assert read == want

    broken = torch_events.make_writer(tmp_path / "b")
    broken.buffered.scalars(1, 1.0, broken.buffered.tag_ids(["x"]), [1.0])
    broken.buffered.ev._py_recordio_writer._writer.close()  # the disk goes away under the thread
    broken.buffered.flush_async()
    with pytest.raises(RuntimeError, match="writing the event file failed"):
        broken.buffered.flush()


def value_of(tag: str, kind: str, value: float) -> Summary.Value:
    if kind == "tf_float32":  # what TensorFlow's WriteSummary op writes for tf.summary.scalar
        with np.errstate(over="ignore"):  # beyond float32: inf, as TensorFlow's cast gives
            content = np.float32(value).tobytes()
        return Summary.Value(tag=tag, metadata=SCALARS_META, tensor=TensorProto(
            dtype=DT_FLOAT, tensor_shape=TensorShapeProto(), tensor_content=content))
    ev = Event()
    ev.ParseFromString(reference(0, 0.0, tag, kind, value)[12:-4])
    return ev.summary.value[0]


@settings(max_examples=150, deadline=None)
@given(st.lists(st.tuples(steps, st.floats(0, 2e9, allow_nan=False), st.sampled_from(event_records.KINDS),
                          st.lists(st.tuples(st.sampled_from(TAGS), values), min_size=1, max_size=5, unique_by=lambda t: t[0]),
                          st.booleans()), max_size=20))
def test_several_values_in_one_event_are_protobufs_bytes(rows):
    """Rows of one event holding several values (the TF trainer's) or one event a value, any kind."""
    held = event_records.ScalarRows()
    expected = []
    for step, wall, kind, items, merged in rows:
        tags, vals = [t for t, _ in items], [v for _, v in items]
        if merged:
            held.add(step, wall, held.event_id(tags, kind), vals)
            expected.append(Event(wall_time=wall, step=step, summary=Summary(
                value=[value_of(t, kind, v) for t, v in items])).SerializeToString())
        else:
            held.add(step, wall, held.tag_ids(tags, kind), vals)
            expected += [Event(wall_time=wall, step=step, summary=Summary(value=[value_of(t, kind, v)]))
                         .SerializeToString() for t, v in items]
    columns = event_records.ScalarRows.columns(held.take())
    data, lengths = event_records.encode_events(*columns, held.layouts)
    assert data == b"".join(expected) and lengths.tolist() == [len(e) for e in expected]
    framed, starts = event_records.encode_scalars(*columns, held.layouts)
    assert framed == b"".join(frame(e) for e in expected)
    assert starts.tolist() == np.concatenate([[0], np.cumsum([len(e) + 16 for e in expected])[:-1]]).tolist()[:len(expected)]
