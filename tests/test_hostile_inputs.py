"""Hostile files for every reader: each is built here, read in a fresh process whose peak memory is
measured (VmHWM after a benign warm-up read, against the peak at the end), and must come back as a
listed Problem or a clear error naming the file and the byte, never a traceback or a big allocation.
Archives (uploads) are in test_upload_archive_safety.py, with the same `probe`."""
from __future__ import annotations

import json
import os
import struct
import subprocess
import sys
import zlib
from pathlib import Path

import numpy as np
import pytest
from tensorboard.compat.proto import event_pb2, graph_pb2

from twinboard.contract import MAX_RECORD, frame, masked_crc32c
from twinboard.embeddings import read_embeddings
from twinboard.embeddings import files as embedding_files
from twinboard.graphs import GraphScanner
from twinboard.graphs import model as graph_model

ROOT = Path(__file__).resolve().parents[1]
EV = "events.out.tfevents.1700000000.host"
PEAK_MB = 100  # what one hostile input may add to a reader's peak memory (the bugs took 0.46-3.1 GB)

_PROBE = '''
import json, sys
def _peak_mb():
    with open("/proc/self/status") as f:
        return next(int(line.split()[1]) for line in f if line.startswith("VmHWM:")) / 1024
'''


def probe(setup: str, action: str, env: dict | None = None, timeout: float = 180) -> dict:
    """Run `setup` (imports, and a benign read so lazy imports are paid), then `action` (an
    expression) in a fresh Python; returns {"result" or "error", "message", "peak_mb"}: peak_mb is
    how far the action raised the process's peak resident memory."""
    code = (_PROBE + setup + "\n_before = _peak_mb()\ntry:\n    _out = {'result': (" + action + ")}\n"
            "except Exception as e:\n    _out = {'error': type(e).__name__, 'message': str(e)}\n"
            "_out['peak_mb'] = _peak_mb() - _before\nprint(json.dumps(_out, default=str))\n")
    p = subprocess.run([sys.executable, "-c", code], cwd=ROOT, capture_output=True, text=True,
                       timeout=timeout, env={**os.environ, **(env or {})})
    assert p.returncode == 0, p.stderr[-3000:]
    return json.loads(p.stdout.strip().splitlines()[-1])


# --- builders ------------------------------------------------------------------------------------
def header() -> bytes:
    return frame(event_pb2.Event(wall_time=1.0, file_version="brain.Event:2").SerializeToString())


def scalar(step: int, value: float = 1.0, tag: str = "loss/train") -> bytes:
    ev = event_pb2.Event(wall_time=2.0 + step, step=step)
    ev.summary.value.add(tag=tag, simple_value=value)
    return frame(ev.SerializeToString())


def claims(length: int, data: bytes = b"") -> bytes:
    """A record header claiming `length` bytes of data, its length CRC right (crafted, not damaged)."""
    head = struct.pack("<Q", length)
    return head + struct.pack("<I", masked_crc32c(head)) + data


def tf_histogram(step: int, shape: list[int], values: list[float] = (), content: bytes = b"") -> bytes:
    """tf.summary.histogram's layout: a DT_DOUBLE tensor [k, 3] of the "histograms" plugin."""
    ev = event_pb2.Event(wall_time=2.0 + step, step=step)
    v = ev.summary.value.add(tag="weights/dense0/kernel")
    v.metadata.plugin_data.plugin_name = "histograms"
    v.tensor.dtype = 2
    for d in shape:
        v.tensor.tensor_shape.dim.add(size=d)
    v.tensor.double_val.extend(values)
    v.tensor.tensor_content = content
    return frame(ev.SerializeToString())


def good_histogram(step: int) -> bytes:
    return tf_histogram(step, [2, 3], [0.0, 1.0, 3.0, 1.0, 2.0, 5.0])


def graph_event(graph_def: bytes) -> bytes:
    return frame(event_pb2.Event(wall_time=3.0, graph_def=graph_def).SerializeToString())


def keras_event(blob: bytes, tag: str = "keras") -> bytes:
    ev = event_pb2.Event(wall_time=3.0, step=0)
    v = ev.summary.value.add(tag=tag)
    v.metadata.plugin_data.plugin_name = "graph_keras_model"
    v.tensor.dtype = 7  # DT_STRING
    v.tensor.string_val.append(blob)
    return frame(ev.SerializeToString())


def small_graph(name: str = "good") -> bytes:
    gd = graph_pb2.GraphDef()
    gd.node.add(name=f"{name}/x", op="Placeholder")
    gd.node.add(name=f"{name}/y", op="Relu", input=[f"{name}/x"])
    return gd.SerializeToString()


def png(width: int, height: int) -> bytes:
    """A real, decodable 8-bit grey PNG of zeros, compressed row block by row block (never whole)."""
    def chunk(kind: bytes, data: bytes) -> bytes:
        return struct.pack(">I", len(data)) + kind + data + struct.pack(">I", zlib.crc32(kind + data))

    comp, row, parts, left = zlib.compressobj(9), b"\0" * (width + 1), [], height
    while left:
        k = min(left, max(1, (8 << 20) // len(row)))
        parts.append(comp.compress(row * k))
        left -= k
    parts.append(comp.flush())
    ihdr = struct.pack(">IIBBBBB", width, height, 8, 0, 0, 0, 0)
    return b"\x89PNG\r\n\x1a\n" + chunk(b"IHDR", ihdr) + chunk(b"IDAT", b"".join(parts)) + chunk(b"IEND", b"")


# --- 2. record lengths ---------------------------------------------------------------------------
READERS = {
    # id: (setup after imports, the read as an expression giving the problems, extra env)
    "scalars-compiled": ("from twinboard.events import ScalarStore\n", "scalar_problems", {}),
    "scalars-protobuf": ("from twinboard.events import ScalarStore\n", "scalar_problems", {"TWINBOARD_NO_JIT": "1"}),
    "histograms": ("from twinboard.histograms import HistogramStore\n", "histogram_problems", {}),
    "graphs": ("from twinboard.graphs import GraphScanner\n", "graph_problems", {}),
}
_READ = '''
def scalar_problems(d):
    s = ScalarStore(d); s.refresh()
    return [[p.offset, p.message] for p in s.problems()], {r: {t: s.series(r, t).step.tolist() for t in s.tags(r)} for r in s.runs()}
def histogram_problems(d):
    s = HistogramStore(d, stale_after=float("inf")); s.refresh()
    return [[p.offset, p.message] for p in s.problems()], {r: {t: s.get(r, t).steps.tolist() for t in s.tags(r)} for r in s.runs()}
def graph_problems(d):
    s = GraphScanner(d); s.read()
    return [[p.offset, p.message] for p in s.problems()], {}
'''


@pytest.mark.parametrize("reader", list(READERS))
def test_a_length_over_the_cap_is_corruption_at_its_offset_not_a_read_of_it(tmp_path, reader):
    benign, hostile = tmp_path / "benign", tmp_path / "hostile"
    benign.mkdir(), hostile.mkdir()
    (benign / EV).write_bytes(header() + scalar(0) + good_histogram(0))
    good = header() + scalar(1) + good_histogram(1)
    (hostile / EV).write_bytes(good + claims(1 << 40, os.urandom(64)) + scalar(2))
    setup, fn, env = READERS[reader]
    out = probe(setup + _READ + f"{fn}({str(benign)!r})", f"{fn}({str(hostile)!r})", env)
    problems, series = out["result"]
    assert [p[0] for p in problems] == [len(good)], problems
    assert "claims 1099511627776 bytes" in problems[0][1] and str(MAX_RECORD) in problems[0][1]
    if reader.startswith("scalars"):
        assert series == {".": {"loss/train": [1]}}  # what came before the damage is kept
    if reader == "histograms":
        assert series == {".": {"weights/dense0/kernel": [1]}}
    assert out["peak_mb"] < PEAK_MB, out


def test_a_length_within_the_cap_past_the_end_is_a_pending_tail(tmp_path):
    """200 MiB claimed, 100 bytes there: a writer may be mid-record, so no corruption, and no
    200 MiB buffer waiting for it; a store reports it as truncated once the file is quiet."""
    (tmp_path / EV).write_bytes(header() + scalar(1) + good_histogram(1) + claims(200 << 20, bytes(100)))
    out = probe("from twinboard.events import ScalarStore, read_scalars\n"
                "from twinboard.histograms import HistogramStore\n" + _READ
                + f"scalar_problems({str(tmp_path)!r}); histogram_problems({str(tmp_path)!r})",
                f"scalar_problems({str(tmp_path)!r}), read_scalars({str(tmp_path)!r}).step.tolist(), "
                f"[str(p) for p in (lambda s: (s.refresh(), s.problems())[1])(HistogramStore({str(tmp_path)!r}, stale_after=0))]")
    (problems, series), steps, stale = out["result"]
    assert problems == [] and series == {".": {"loss/train": [1]}} and steps == [1]
    assert len(stale) == 1 and "incomplete record" in stale[0], stale
    assert out["peak_mb"] < PEAK_MB, out


def test_record_reader_batches_and_passes_over_records_over_its_max(tmp_path):
    """frames(): bounded batches; a record over max_record comes back without data, where it was."""
    from twinboard.events import RecordReader

    big = frame(event_pb2.Event(wall_time=3.0, graph_def=bytes(3 << 20)).SerializeToString())
    data = header() + b"".join(scalar(s) for s in range(2000)) + big + scalar(9)
    path = tmp_path / EV
    path.write_bytes(data)
    reader = RecordReader(path, max_record=1 << 20)
    batches = []
    while True:
        records, err = reader.frames(max_bytes=16 << 10)
        assert err is None
        if not records:
            break
        batches.append(records)
    flat = [r for b in batches for r in b]
    assert len(batches) > 3 and len(flat) == 2003 and reader.offset == len(data)
    at = data.index(big)
    assert [(r.offset, r.length, r.data) for r in flat if r.data is None] == [(at, len(big) - 16, None)]
    assert event_pb2.Event.FromString(flat[-1].data).step == 9
    assert RecordReader(path).read()[-2] == big[12:-4]  # without a max, the big record is read


# --- 3. histograms -------------------------------------------------------------------------------
@pytest.mark.parametrize("shape, values, content, words", [
    ([10 ** 7, 3], [1.0], b"", "(30000000 values), over the cap"),  # 460 MB before
    ([10 ** 12, 3], [1.0], b"", "over the cap"),  # MemoryError before
    ([2 ** 62, 2 ** 62], [1.0], b"", "over the cap"),  # overflows an int64 product
    ([-1, 3], [1.0], b"", "unknown size"),
    ([4, 3], [], bytes(8 * 5), "holds 40 bytes for shape [4, 3]"),
    ([2, 3], [1.0] * 7, b"", "holds 7 values for shape [2, 3]"),
], ids=["1e7x3", "1e12x3", "int64-overflow", "unknown-dim", "short-content", "extra-values"])
def test_a_histogram_claiming_more_than_it_holds_is_a_listed_problem(tmp_path, shape, values, content, words):
    benign, hostile = tmp_path / "benign", tmp_path / "hostile"
    benign.mkdir(), hostile.mkdir()
    (benign / EV).write_bytes(header() + good_histogram(0))
    bad = tf_histogram(1, shape, values, content)
    assert len(bad) < 160  # tiny: the record in the report took 77 bytes
    (hostile / EV).write_bytes(header() + good_histogram(0) + bad + good_histogram(2))
    out = probe("from twinboard.histograms import HistogramStore\n" + _READ + f"histogram_problems({str(benign)!r})",
                f"histogram_problems({str(hostile)!r})")
    problems, series = out["result"]
    assert series == {".": {"weights/dense0/kernel": [0, 2]}}  # the records around it still count
    assert len(problems) == 1 and problems[0][0] == len(header()) + len(good_histogram(0)), problems
    assert words in problems[0][1] and "weights/dense0/kernel" in problems[0][1]
    assert out["peak_mb"] < PEAK_MB, out


def test_histogram_store_passes_over_a_record_too_big_to_be_a_histogram(tmp_path):
    big = frame(event_pb2.Event(wall_time=3.0, graph_def=bytes(40 << 20)).SerializeToString())
    benign, hostile = tmp_path / "benign", tmp_path / "hostile"
    benign.mkdir(), hostile.mkdir()
    (benign / EV).write_bytes(header() + good_histogram(0))
    (hostile / EV).write_bytes(header() + good_histogram(0) + big + good_histogram(1))
    out = probe("from twinboard.histograms import HistogramStore\n" + _READ + f"histogram_problems({str(benign)!r})",
                f"histogram_problems({str(hostile)!r})")
    problems, series = out["result"]
    assert series == {".": {"weights/dense0/kernel": [0, 1]}}
    assert len(problems) == 1 and f"holds {len(big) - 16} bytes" in problems[0][1] and "not read" in problems[0][1]
    assert out["peak_mb"] < 10, out  # never read: 40 MiB


# --- 4. embeddings -------------------------------------------------------------------------------
def _projector(run: Path, extra: str) -> None:
    """A good entry (tensor, metadata, sprite) and `extra`, one more entry, in a projector config."""
    rng = np.random.default_rng(0)
    np.savetxt(run / "good.tsv", rng.random((4, 3)), delimiter="\t")
    (run / "good_meta.tsv").write_text("label\tpred\n" + "".join(f"{i}\t{i}\n" for i in range(4)))
    (run / "good_sprite.png").write_bytes(png(8, 8))
    (run / "projector_config.pbtxt").write_text(
        'embeddings { tensor_name: "good:1" tensor_path: "good.tsv" metadata_path: "good_meta.tsv" '
        'sprite { image_path: "good_sprite.png" single_image_dim: 4 single_image_dim: 4 } }\n' + extra)


EMBEDDINGS = {
    # id: (files to write: name -> bytes, the entry, words of the problem)
    "sprite-13000x13000": ({"s.png": lambda: png(13000, 13000)},  # 164 KB, 1.45 GB decoded before
                           'embeddings { tensor_name: "bad:1" tensor_path: "good.tsv" sprite { image_path: "s.png" '
                           'single_image_dim: 10 single_image_dim: 10 } }', "13000x13000 pixels, over the cap"),
    "sprite-not-an-image": ({"s.png": lambda: b"GIF89a" + bytes(100)},
                            'embeddings { tensor_name: "bad:1" tensor_path: "good.tsv" sprite { image_path: "s.png" '
                            'single_image_dim: 4 single_image_dim: 4 } }', "not a readable PNG or JPEG"),
    "metadata-30MB": ({"m.tsv": lambda: b"label\n" + b"x" * (30 << 20) + b"\n"},  # +784 MB before
                      'embeddings { tensor_name: "bad:1" tensor_path: "good.tsv" metadata_path: "m.tsv" }',
                      f"over the cap of {embedding_files.MAX_METADATA_BYTES}"),
    "metadata-endless-columns": ({"m.tsv": lambda: b"\t" * (6 << 20) + b"\n" + b"a\n" * 4},
                                 'embeddings { tensor_name: "bad:1" tensor_path: "good.tsv" metadata_path: "m.tsv" }',
                                 "columns, over the cap"),
    "metadata-endless-rows": ({"m.tsv": lambda: b"a\n" * (4 << 20)},
                              'embeddings { tensor_name: "bad:1" tensor_path: "good.tsv" metadata_path: "m.tsv" }',
                              "4194304 rows for 4 points"),
    "tensor-bytes-shape": ({"t.bytes": lambda: bytes(64)},
                           'embeddings { tensor_name: "bad:1" tensor_path: "t.bytes" '
                           'tensor_shape: 1000000000 tensor_shape: 1000 }', "over the caps"),
    "tensor-tsv-rows": ({"t.tsv": lambda: b"1\n" * 200_000},
                        'embeddings { tensor_name: "bad:1" tensor_path: "t.tsv" }', "over the caps"),
    "tensor-tsv-columns": ({"t.tsv": lambda: b"\t".join([b"1"] * 100_000) + b"\n"},
                           'embeddings { tensor_name: "bad:1" tensor_path: "t.tsv" }', "over the caps"),
    "tensor-tsv-ragged": ({"t.tsv": lambda: b"1\t2\n3\n4\t5\t6\n"},
                          'embeddings { tensor_name: "bad:1" tensor_path: "t.tsv" }', "row 2 has 1 columns"),
}


@pytest.mark.parametrize("case", list(EMBEDDINGS))
def test_embedding_files_over_the_caps_are_refused_before_they_are_read(tmp_path, case):
    files, entry, words = EMBEDDINGS[case]
    benign, hostile = tmp_path / "benign", tmp_path / "hostile"
    benign.mkdir(), hostile.mkdir()
    _projector(benign, "")
    _projector(hostile, entry)
    for name, build in files.items():
        (hostile / name).write_bytes(build())
    read = "(lambda f: ([e.name for e in f], [p.message for p in f.problems()]))(read_embeddings({!r}))"
    out = probe("from twinboard.embeddings import read_embeddings\n" + read.format(str(benign)),
                read.format(str(hostile)))
    names, problems = out["result"]
    assert names == ["good:1"], out  # the good entry still loads
    assert len(problems) == 1 and problems[0].startswith("bad:1: ") and words in problems[0], problems
    assert out["peak_mb"] < PEAK_MB, out


def test_all_entries_of_a_run_share_one_budget(tmp_path, monkeypatch):
    monkeypatch.setattr(embedding_files, "MAX_LOADED_BYTES", 10 << 20)
    np.zeros((1 << 20,), "<f4").tofile(tmp_path / "t.bytes")  # 4 MiB each time it is loaded
    (tmp_path / "projector_config.pbtxt").write_text("".join(
        f'embeddings {{ tensor_name: "e:{i}" tensor_path: "t.bytes" tensor_shape: 1024 tensor_shape: 1024 }}\n'
        for i in range(5)))
    found = read_embeddings(tmp_path)
    assert [e.name for e in found] == ["e:0", "e:1"]
    assert len(found.problems()) == 3 and all("one read may hold" in p.message for p in found.problems())


# --- 5. graphs -----------------------------------------------------------------------------------
def _empty_nodes(n: int) -> bytes:
    return b"\x0a\x00" * n  # GraphDef.node {} n times: parsing takes ~56x the bytes


GRAPHS = {
    # id: (the hostile record, words of the problem)
    "garbage-graph-def": (lambda: graph_event(b"\xff\xff\xff\xff"), "DecodeError"),
    "garbage-event": (lambda: frame(b"\x22\x05abc"), "DecodeError"),
    "keras-not-json": (lambda: keras_event(b"{not json"), "JSONDecodeError"),
    "keras-json-list": (lambda: keras_event(b"[1, 2]"), "not a Keras model's JSON"),
    "keras-bad-shapes": (lambda: keras_event(json.dumps({"class_name": "Sequential", "config": {"layers": [
        {"class_name": "Dense", "config": {"name": {"a": 1}, "batch_shape": 7}}]}}).encode()), "TypeError"),
    "too-many-nodes": (lambda: graph_event(b"\x0a\x05\x0a\x03n/x" * (graph_model.MAX_NODES + 1)),
                       f"more than the {graph_model.MAX_NODES} shown"),
    "graph-over-the-bytes-cap": (lambda: graph_event(_empty_nodes(3 << 20)),  # 6 MiB: ~340 MB parsed
                                 f"more than the {graph_model.MAX_GRAPH_BYTES} a graph may take"),
    "keras-over-the-bytes-cap": (lambda: keras_event(b" " * (graph_model.MAX_GRAPH_BYTES + 1)),
                                 f"more than the {graph_model.MAX_GRAPH_BYTES} read"),
}


@pytest.mark.parametrize("case", list(GRAPHS))
def test_a_bad_or_huge_graph_record_is_a_listed_problem_and_the_rest_is_read(tmp_path, case):
    build, words = GRAPHS[case]
    benign, hostile = tmp_path / "benign", tmp_path / "hostile"
    benign.mkdir(), hostile.mkdir()
    (benign / EV).write_bytes(header() + graph_event(small_graph("first")))
    bad = build()
    (hostile / EV).write_bytes(header() + scalar(0) + bad + graph_event(small_graph()) + scalar(1))
    read = ("(lambda s: (s.read(), s.read(), [g.tag + ':' + ','.join(g.nodes['name']) for g in s.graphs], "
            "[[p.offset, p.message] for p in s.problems()])[2:])(GraphScanner({!r}))")
    out = probe("from twinboard.graphs import GraphScanner\n" + read.format(str(benign)), read.format(str(hostile)))
    graphs, problems = out["result"]
    assert graphs == ["graph_def:good/x,good/y"], out  # the graph after the bad record is shown
    # listed once, and still listed after a second read (the record is not read again)
    assert len(problems) == 1 and problems[0][0] == len(header()) + len(scalar(0)), problems
    assert words in problems[0][1], problems
    assert out["peak_mb"] < PEAK_MB, out


def test_a_damaged_record_and_a_bad_graph_are_both_listed_and_one_shot_read_raises(tmp_path):
    from twinboard.contract import CorruptRecordError
    from twinboard.graphs import read_graphs

    data = bytearray(header() + graph_event(b"\xff\xff") + graph_event(small_graph()) + scalar(0))
    data[-5] ^= 0xFF  # the last record's data CRC
    (tmp_path / EV).write_bytes(bytes(data))
    scanner = GraphScanner(tmp_path)
    assert [g.tag for g in scanner.read()] == ["graph_def"]
    messages = [p.message for p in scanner.problems()]
    assert len(messages) == 2 and "data CRC" in messages[0] and "cannot be read" in messages[1], messages
    with pytest.raises(CorruptRecordError, match="data CRC"):
        read_graphs(tmp_path)
