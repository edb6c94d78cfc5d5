"""The compiled scalar decoder must give exactly what the protobuf path gives, on anything."""
from __future__ import annotations

import os
import struct
import subprocess
import sys
from pathlib import Path

import numpy as np
import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st
from tensorboard.compat.proto import event_pb2, summary_pb2, tensor_pb2, tensor_shape_pb2

from twinboard import events
from twinboard.events import fastscan, native, scalars
from twinboard.contract import CorruptRecordError, frame

ROOT = Path(__file__).resolve().parents[1]

needs_kernel = pytest.mark.skipif(not native.available(), reason="compiled kernel unavailable")


def decode(data: bytes, pure: bool, cuts=()):
    """Rows as (tag, step, wall_time bits, value bits) plus the end offset or the error offset.
    `cuts`: byte counts at which to stop and resume, as a growing file is read."""
    tags, out = fastscan.Tags(), fastscan.Columns(4)
    pos, err = 0, None
    try:
        for cut in [*sorted(cuts), len(data)]:
            pos = scalars.decode(data[:max(cut, pos)], pos, tags, out, pure=pure)
    except CorruptRecordError as exc:
        err = (exc.offset, exc.reason)
    n = out.n
    rows = list(zip([tags.names[t] for t in out.tag[:n]], out.step[:n].tolist(),
                    out.wall_time[:n].view(np.int64).tolist(), out.value[:n].view(np.int64).tolist()))
    return rows, pos if err is None else None, err


def assert_same(data: bytes, cuts=()):
    fast = decode(data, pure=False, cuts=cuts)
    pure = decode(data, pure=True, cuts=cuts)
    assert fast == pure
    return fast


# -- hand-written wire pieces -------------------------------------------------------------------

def varint(n: int) -> bytes:
    n &= (1 << 64) - 1
    out = bytearray()
    while True:
        b, n = n & 0x7F, n >> 7
        out.append(b | 0x80 if n else b)
        if not n:
            return bytes(out)


def field(num: int, payload: bytes) -> bytes:
    return varint(num << 3 | 2) + varint(len(payload)) + payload


def scalar_event(tag: str, step: int, value: float, wall_time: float = 1.5) -> bytes:
    ev = event_pb2.Event(wall_time=wall_time, step=step)
    ev.summary.value.add(tag=tag, simple_value=value)
    return ev.SerializeToString()


def meta(plugin: str | None, display: str = "") -> summary_pb2.SummaryMetadata:
    m = summary_pb2.SummaryMetadata(display_name=display)
    if plugin is not None:
        m.plugin_data.plugin_name = plugin
    return m


# -- strategies ---------------------------------------------------------------------------------

TAGS = st.one_of(st.sampled_from(["loss/train", "lr", "acc", "ü/δ", "", "loss/train "]),
                 st.text(max_size=10))
F32 = st.floats(width=32)  # includes nan, ±inf, -0.0, subnormals
F64 = st.floats()
STEPS = st.one_of(st.integers(-5, 300), st.integers(-2**63, 2**63 - 1))


@st.composite
def tensors(draw) -> tensor_pb2.TensorProto:
    dtype = draw(st.sampled_from([1, 2, 1, 2, 3, 7, 19]))  # FLOAT, DOUBLE, INT32, STRING, HALF
    dims = draw(st.sampled_from([[], [], [1], [1, 1], [2], [3, 2], [0]]))
    t = tensor_pb2.TensorProto(dtype=dtype)
    if dims or draw(st.booleans()):
        t.tensor_shape.CopyFrom(tensor_shape_pb2.TensorShapeProto(
            dim=[tensor_shape_pb2.TensorShapeProto.Dim(size=d) for d in dims]))
    if draw(st.integers(0, 9)) == 0:
        t.tensor_shape.unknown_rank = True
    how = draw(st.sampled_from(["val", "val", "content", "both", "none", "many"]))
    k = draw(st.integers(2, 3)) if how == "many" else 1
    if how in ("val", "both", "many"):
        if dtype == 2:
            t.double_val.extend(draw(st.lists(F64, min_size=k, max_size=k)))
        elif dtype == 7:
            t.string_val.append(b"text")
        elif dtype == 3:
            t.int_val.append(draw(st.integers(-5, 5)))
        else:
            t.float_val.extend(draw(st.lists(F32, min_size=k, max_size=k)))
    if how in ("content", "both"):
        width = draw(st.sampled_from([4, 8, 8, 12, 0]))
        t.tensor_content = draw(st.binary(min_size=width, max_size=width))
    return t


@st.composite
def values(draw) -> bytes:
    v = summary_pb2.Summary.Value(tag=draw(TAGS))
    kind = draw(st.sampled_from(["simple", "simple", "tensor", "tensor", "histo", "image", "none"]))
    if kind == "simple":
        v.simple_value = draw(F32)
    elif kind == "tensor":
        v.tensor.CopyFrom(draw(tensors()))
    elif kind == "histo":
        v.histo.min, v.histo.max, v.histo.num = -1.0, 1.0, 3
        v.histo.bucket_limit.extend([0.0, 1.0])
        v.histo.bucket.extend([1.0, 2.0])
    elif kind == "image":
        v.image.height, v.image.width, v.image.encoded_image_string = 1, 1, b"\x89PNG"
    if draw(st.integers(0, 2)) == 0:
        v.metadata.CopyFrom(meta(draw(st.sampled_from([None, "scalars", "", "histograms", "text"])),
                                 draw(st.sampled_from(["", "", "Loss", "λ"]))))
    if draw(st.integers(0, 15)) == 0:
        v.node_name = "node"
    raw = v.SerializeToString()
    if draw(st.integers(0, 9)) == 0:  # merged with another Value: repeated fields, last-wins rules
        other = summary_pb2.Summary.Value(tag=draw(TAGS), simple_value=draw(F32))
        raw += other.SerializeToString() if draw(st.booleans()) else b"\x15" + struct.pack("<f", 1.0)
    return raw


@st.composite
def records(draw) -> bytes:
    kind = draw(st.sampled_from(["scalars"] * 6 + ["version", "graph", "log", "junk", "merged",
                                                     "unknown", "source"]))
    head = event_pb2.Event(wall_time=draw(F64), step=draw(STEPS)).SerializeToString()
    if kind == "scalars":
        vals = draw(st.lists(values(), min_size=0, max_size=3))
        summ = b"".join(field(1, v) for v in vals)
        return head + field(5, summ) if draw(st.booleans()) else field(5, summ) + head
    if kind == "version":
        return head + field(3, draw(st.sampled_from([b"brain.Event:2", "bräin".encode()])))
    if kind == "graph":
        return head + field(4, b"\x0a\x03abc")
    if kind == "log":
        return event_pb2.Event(step=1, log_message=event_pb2.LogMessage(message="hi")).SerializeToString()
    if kind == "source":
        return head + field(10, field(1, b"tensorboardX")) + field(5, field(1, draw(values())))
    if kind == "unknown":
        return head + varint(15 << 3) + varint(7) + field(5, field(1, draw(values())))
    if kind == "merged":  # two Events in one record: protobuf merges them
        return draw(records()) + draw(records())
    return draw(st.binary(max_size=40))  # anything at all, with valid CRCs


STREAMS = st.lists(records(), min_size=1, max_size=12)


@needs_kernel
@settings(max_examples=200, deadline=None,
          suppress_health_check=[HealthCheck.too_slow, HealthCheck.data_too_large])
@given(stream=STREAMS, data=st.data())
def test_fast_path_equals_protobuf_path(stream, data):
    raw = b"".join(frame(r) for r in stream)
    cuts = data.draw(st.lists(st.integers(0, len(raw)), max_size=3))
    full = assert_same(raw)
    assert assert_same(raw, cuts) == full  # reading in pieces changes nothing
    assert assert_same(raw + frame(stream[0])[:-1]) == full  # a half-written tail is left alone


@needs_kernel
@settings(max_examples=60, deadline=None,
          suppress_health_check=[HealthCheck.too_slow, HealthCheck.data_too_large])
@given(stream=STREAMS, where=st.integers(0, 10**6), bit=st.integers(0, 7))
def test_a_flipped_bit_is_reported_at_the_same_record(stream, where, bit):
    raw = bytearray(b"".join(frame(r) for r in stream))
    raw[where % len(raw)] ^= 1 << bit
    fast, pure = decode(bytes(raw), False), decode(bytes(raw), True)
    assert fast == pure


@needs_kernel
def test_writer_layouts_take_the_compiled_path_without_protobuf(monkeypatch):
    """tensorboardX, torch new_style (float and double), tf.summary and Keras records, and both
    histogram kinds, never reach the protobuf fallback."""
    tbx = bytes.fromhex("09e074533be1c1da4110012a130a110a0a6c6f73732f747261696e150000003f")
    torch_new = bytes.fromhex("09d86d3b3de1c1da4110012a1e0a1c0a036e6577420808012a040000803f4a0b0a090a077363616c617273")
    torch_dbl = bytes.fromhex("09406e3b3de1c1da4110012a220a200a0364626c420c08023208000000000000f03f4a0b0a090a077363616c617273")
    tf2 = bytes.fromhex("0973d65c3fe1c1da4110012a270a250a0a6c6f73732f747261696e420a0801120022040000003f4a0b0a090a077363616c617273")
    version = bytes.fromhex("092f5f3b3de1c1da411a0d627261696e2e4576656e743a32522e0a2c74656e736f72626f6172642e73756d6d6172792e7772697465722e6576656e745f66696c655f777269746572")
    hist_v = summary_pb2.Summary.Value(tag="h")
    hist_v.histo.bucket_limit.extend([1.0, 2.0])
    hist_v.histo.bucket.extend([3.0, 4.0])
    tf2_hist = summary_pb2.Summary.Value(tag="h2", metadata=meta("histograms"))
    tf2_hist.tensor.dtype = 2
    tf2_hist.tensor.tensor_shape.dim.add(size=2)
    tf2_hist.tensor.tensor_shape.dim.add(size=3)
    tf2_hist.tensor.tensor_content = bytes(48)
    hists = [event_pb2.Event(step=3, summary=summary_pb2.Summary(value=[v])).SerializeToString()
             for v in (hist_v, tf2_hist)]
    raw = b"".join(frame(r) for r in [version, tbx, torch_new, torch_dbl, tf2, *hists])

    def no_fallback(data, offset):
        raise AssertionError(f"record at {offset} went to protobuf")

    tags, out = fastscan.Tags(), fastscan.Columns()
    assert fastscan.decode(raw, 0, tags, out, no_fallback) == len(raw)
    got = [(tags.names[t], s, v) for t, s, v in zip(out.tag[:out.n], out.step[:out.n], out.value[:out.n])]
    assert got == [("loss/train", 1, 0.5), ("new", 1, 1.0), ("dbl", 1, 1.0), ("loss/train", 1, 0.5)]


def test_odd_records_go_to_protobuf_and_agree():
    odd = [
        scalar_event("a", 1, 1.0) + scalar_event("b", 2, 2.0),  # merged Events: two summaries
        field(5, field(1, b"\x0a\x01a\x0a\x01b\x15" + struct.pack("<f", 3.0))),  # tag twice: last wins
        field(5, field(1, b"\x0a\x01c\x15\x00\x00\x80\x3f\x15\x00\x00\x00\x40")),  # simple_value twice
        b"\x10" + b"\xff" * 9 + b"\x01" + field(5, field(1, b"\x0a\x01d\x15\x00\x00\x80\x3f")),  # step -1
        field(5, field(1, b"\x0a\x02\xc3\x28\x15\x00\x00\x80\x3f")),  # invalid UTF-8 tag
    ]
    for r in odd:
        assert_same(frame(r))
    rows, _, err = assert_same(b"".join(frame(r) for r in odd))
    assert err is not None and err[0] == sum(len(frame(r)) for r in odd[:-1])
    assert [r[0] for r in rows] == ["a", "b", "b", "c", "d"]
    assert rows[3][3] == struct.unpack("<q", struct.pack("<d", 2.0))[0] and rows[4][1] == -1


def test_many_values_per_record_grow_the_columns():
    ev = event_pb2.Event(step=7)
    for i in range(40):
        ev.summary.value.add(tag=f"t{i % 7}", simple_value=i)
    raw = frame(ev.SerializeToString()) * 50
    rows, end, err = assert_same(raw)
    assert end == len(raw) and err is None and len(rows) == 2000


def test_crc_errors_name_the_record():
    raw = b"".join(frame(scalar_event("x", 100 + i, i)) for i in range(5))
    n = len(frame(scalar_event("x", 100, 0)))
    bad = bytearray(raw)
    bad[2 * n + 14] ^= 0x10  # inside record 2's data
    assert decode(bytes(bad), False)[2] == (2 * n, "data CRC mismatch")
    bad = bytearray(raw)
    bad[3 * n + 2] ^= 0x10  # record 3's length field
    assert decode(bytes(bad), False)[2] == (3 * n, "length CRC mismatch")
    assert decode(bytes(bad), True)[2] == (3 * n, "length CRC mismatch")


def test_fnv1a_matches_the_kernel_for_unicode_tags():
    """A tag first met in a protobuf-parsed record must be found again by the kernel."""
    first = frame(scalar_event("ü/δ🙂", 1, 1.0) + scalar_event("ü/δ🙂", 2, 2.0))  # merged: fallback
    then = b"".join(frame(scalar_event("ü/δ🙂", s, s)) for s in range(3, 6))
    calls = []

    def fallback(data, offset):
        calls.append(offset)
        return events.record_scalars(data, offset)

    tags, out = fastscan.Tags(), fastscan.Columns()
    fastscan.decode(first + then, 0, tags, out, fallback)
    assert tags.names == ["ü/δ🙂"] and out.n == 5
    assert calls == ([0] if native.available() else [0, len(first), len(first) + len(then) // 3,
                                                        len(first) + 2 * len(then) // 3])
    assert fastscan.fnv1a("ü".encode()) == fastscan.fnv1a(b"\xc3\xbc")


def test_without_numba_the_protobuf_path_gives_the_same(tmp_path):
    path = tmp_path / "events.out.tfevents.1.x"
    ev = event_pb2.Event(step=5, wall_time=2.5)
    ev.summary.value.add(tag="d", tensor=tensor_pb2.TensorProto(dtype=2, double_val=[1 / 3]),
                         metadata=meta("scalars"))
    path.write_bytes(b"".join(frame(scalar_event(f"t{i % 3}", i, i / 7)) for i in range(50))
                     + frame(ev.SerializeToString()))
    code = ("import sys; from twinboard import events; from twinboard.events import native; df = events.read_scalars(sys.argv[1]);"
            "print(native.available()); df.to_pickle(sys.argv[2])")
    env = dict(os.environ, TWINBOARD_NO_JIT="1")
    out = subprocess.run([sys.executable, "-c", code, str(path), str(tmp_path / "df.pkl")], env=env,
                         cwd=ROOT, capture_output=True, text=True, timeout=120)
    assert out.returncode == 0, out.stderr
    assert out.stdout.strip() == "False"
    import pandas as pd

    pure = pd.read_pickle(tmp_path / "df.pkl")
    fast = events.read_scalars(path)
    pd.testing.assert_frame_equal(pure, fast)
    assert len(fast) == 51 and fast[fast.tag == "d"].value.tolist() == [1 / 3]


def test_warm_and_import_twinboard_is_cheap():
    assert fastscan.warm() == native.available()
    code = "import sys, twinboard; print('twinboard.events' in sys.modules, 'numpy' in sys.modules)"
    out = subprocess.run([sys.executable, "-c", code], cwd=ROOT, capture_output=True, text=True)
    assert out.stdout.split() == ["False", "False"], out.stderr
    import twinboard

    assert twinboard.read_scalars is events.read_scalars


def test_without_numba_and_without_a_built_kernel_it_still_reads(tmp_path):
    """A fresh copy of the package (no kernel object yet) where numba cannot be imported."""
    import shutil

    pkg = tmp_path / "src" / "twinboard"
    shutil.copytree(ROOT / "twinboard", pkg, ignore=shutil.ignore_patterns("__pycache__", "*.so", "*.o"))
    path = tmp_path / "events.out.tfevents.1.x"
    path.write_bytes(b"".join(frame(scalar_event("t", i, i / 4)) for i in range(10)))
    code = ("import sys; sys.modules['numba'] = None\n"
            "from twinboard import events\nfrom twinboard.events import native\n"
            "s = events.ScalarStore(sys.argv[1]); s.refresh()\n"
            "print(native.available(), s.series('.', 't').value.tolist())")
    env = dict(os.environ, PYTHONPATH=str(tmp_path / "src"), XDG_CACHE_HOME=str(tmp_path / "cache"))
    env.pop("TWINBOARD_NO_JIT", None)
    out = subprocess.run([sys.executable, "-c", code, str(path)], env=env, cwd=tmp_path,
                         capture_output=True, text=True, timeout=120)
    assert out.returncode == 0, out.stderr
    assert out.stdout.split(None, 1) == ["False", str([i / 4 for i in range(10)]) + "\n"]
    assert "compiled event decoder unavailable" in out.stderr
