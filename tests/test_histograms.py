"""Histograms: both encodings read back right, incrementally; re-binning keeps counts; TensorBoard's
distribution compression replicated. Event files come from the real writers, run in subprocesses
(the dashboard process never imports a framework)."""
from __future__ import annotations

import json
import os
import shutil
import subprocess
import sys
import time
from pathlib import Path

import numpy as np
import pytest

from twinboard.histograms import BASIS_POINTS, HistogramStore, common_edges, compress, distribution, from_buckets, from_histo, read_histograms
from twinboard.events import CorruptRecordError, iter_events

ROOT = Path(__file__).resolve().parents[1]
STEPS = list(range(0, 35 * 5, 5))  # 35 logged steps, one every 5: more than offset mode draws (30)
LAYERS = {"dense0": (64, 32), "out": (32, 10)}

# Shared by both writers: the same values per (tag, step), and what the reader must recover.
VALUES = r'''
import json, sys
import numpy as np
STEPS, LAYERS = %r, %r

def tensors():
    for step in STEPS:
        for li, (layer, shape) in enumerate(LAYERS.items()):
            rng = np.random.default_rng(1000 * step + li)
            grow = 1 + step / 100
            yield f"weights/{layer}/kernel", step, (rng.standard_normal(shape) * 0.3 * grow).astype(np.float32)
            # all zeros at step 0 (a point mass), then spread
            yield f"weights/{layer}/bias", step, (rng.standard_normal(shape[1]) * 0.01 * step).astype(np.float32)
            yield f"grads/{layer}/kernel", step, (rng.standard_normal(shape) * 1e-4 / grow).astype(np.float32)
            yield f"grads/{layer}/bias", step, np.abs(rng.standard_normal(shape[1]) * 1e-3).astype(np.float32)

def expected():
    return {f"{tag}@{step}": [int(v.size), float(v.min()), float(v.max())] for tag, step, v in tensors()}
'''

TORCH_WRITER = r'''
import os
out = sys.argv[1]
from tensorboardX import SummaryWriter
w = SummaryWriter(os.path.join(out, "run1", "torch"))
for tag, step, v in tensors():
    w.add_histogram(tag, v, step)
w.close()
from torch.utils.tensorboard import SummaryWriter as TorchWriter
w = TorchWriter(os.path.join(out, "ptwriter"))
for tag, step, v in tensors():
    if step <= 10:
        w.add_histogram(tag, v, step)
w.close()
json.dump(expected(), open(os.path.join(out, "expected.json"), "w"))
'''

TF_WRITER = r'''
import os
os.environ["TF_CPP_MIN_LOG_LEVEL"] = "3"
import tensorflow as tf
w = tf.summary.create_file_writer(os.path.join(sys.argv[1], "run1", "tensorflow"))
import itertools

@tf.function  # one traced call per step: half the CPU of eager calls
def write(step, values):
    for tag, v in values.items():
        tf.summary.histogram(tag, v, step=step)

with w.as_default():
    for step, group in itertools.groupby(tensors(), key=lambda t: t[1]):
        write(tf.constant(step, tf.int64), {tag: v for tag, _, v in group})
w.close()
'''


def make_logdir(base: Path) -> Path:
    """Write the histogram logdir once per session (idempotent; the page tests reuse it).

    base/run1/torch (tensorboardX), base/run1/tensorflow (tf.summary), base/ptwriter
    (torch.utils.tensorboard, steps 0-10), base/expected.json: {"tag@step": [n, min, max]}.
    """
    done = base / ".done"
    if done.exists():
        return base
    shutil.rmtree(base, ignore_errors=True)
    base.mkdir(parents=True)
    head = VALUES % (STEPS, LAYERS)
    env = {**os.environ, "TF_CPP_MIN_LOG_LEVEL": "3", "CUDA_VISIBLE_DEVICES": ""}
    procs = [subprocess.Popen([sys.executable, "-c", head + body, str(base)], env=env,
                              stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True)
             for body in (TORCH_WRITER, TF_WRITER)]  # in parallel: each spends seconds importing
    for p in procs:
        out, err = p.communicate(timeout=180)
        assert p.returncode == 0, err[-3000:]
    done.touch()
    return base


@pytest.fixture(scope="session")
def logs(tmp_path_factory) -> Path:
    return make_logdir(tmp_path_factory.getbasetemp() / "histogram_logs")


def _check_against_expected(df, expected, tags_steps=None):
    assert not df.empty
    seen = 0
    for row in df.itertuples():
        n, lo, hi = expected[f"{row.tag}@{row.step}"]
        e, c = row.edges, row.counts
        assert len(e) == len(c) + 1, row.tag
        assert c.sum() == pytest.approx(n, abs=1e-9), (row.tag, row.step)
        assert c[0] > 0 and c[-1] > 0, "empty leading/trailing buckets must be dropped"
        assert np.all(np.diff(e) >= 0)
        assert e[0] == pytest.approx(lo, rel=1e-6, abs=1e-12), (row.tag, row.step)
        assert e[-1] == pytest.approx(hi, rel=1e-6, abs=1e-12), (row.tag, row.step)
        seen += 1
    return seen


def test_tensorboardx_histograms_read_back(logs):
    expected = json.loads((logs / "expected.json").read_text())
    df = read_histograms(logs / "run1" / "torch")
    assert list(df.columns) == ["run", "tag", "step", "wall_time", "edges", "counts"]
    assert set(df["run"]) == {"."}
    assert _check_against_expected(df, expected) == len(expected)
    zero = df[(df.tag == "weights/dense0/bias") & (df.step == 0)].iloc[0]
    assert list(zero.edges) == [0.0, 0.0] and list(zero.counts) == [32.0]  # a point mass, not ±1e-12


def test_tf_summary_histograms_read_back(logs):
    expected = json.loads((logs / "expected.json").read_text())
    df = read_histograms(logs / "run1" / "tensorflow")
    assert _check_against_expected(df, expected) == len(expected)
    zero = df[(df.tag == "weights/out/bias") & (df.step == 0)].iloc[0]
    assert list(zero.edges) == [0.0, 0.0] and list(zero.counts) == [10.0]
    assert len(df[(df.tag == "weights/out/kernel")].iloc[3].counts) <= 30  # TF2's 30 buckets, trimmed


def test_torch_utils_tensorboard_histograms_read_back(logs):
    expected = json.loads((logs / "expected.json").read_text())
    df = read_histograms(logs / "ptwriter")
    assert sorted(set(df.step)) == [0, 5, 10]
    assert _check_against_expected(df, expected) == 3 * 8


def test_whole_logdir_names_runs(logs):
    df = read_histograms(logs)
    assert set(df.run) == {"run1/torch", "run1/tensorflow", "ptwriter"}


def _first_event_file(folder: Path) -> Path:
    return next(p for p in sorted(folder.iterdir()) if "tfevents" in p.name)


def test_incremental_read_equals_full_read(logs, tmp_path):
    for fw in ("torch", "tensorflow"):
        src = _first_event_file(logs / "run1" / fw)
        data = src.read_bytes()
        dst = tmp_path / fw / "run" / src.name
        dst.parent.mkdir(parents=True)
        store = HistogramStore(tmp_path / fw)
        rng = np.random.default_rng(0)
        cuts = sorted(set(rng.integers(1, len(data), 25).tolist()) | {len(data) - 1, len(data)})
        written, found = 0, 0
        for cut in cuts:  # arbitrary byte boundaries, mid-record included
            with open(dst, "ab") as f:
                f.write(data[written:cut])
            written = cut
            found += store.refresh()
            assert store.problems() == []  # a half-written record is never corruption
            assert store._files[dst].reader.offset <= cut
        full = read_histograms(src)
        assert found == len(full)
        inc = store.frame().drop(columns="run")
        for a, b in zip(inc.itertuples(), full.drop(columns="run").itertuples()):
            assert (a.tag, a.step, a.wall_time) == (b.tag, b.step, b.wall_time)
            assert np.array_equal(a.edges, b.edges) and np.array_equal(a.counts, b.counts)


def test_refresh_reads_only_new_bytes(logs, tmp_path, monkeypatch):
    src = _first_event_file(logs / "run1" / "torch")
    (tmp_path / "r").mkdir()
    dst = tmp_path / "r" / src.name
    data = src.read_bytes()
    dst.write_bytes(data[:-1])  # the last record minus its last byte
    store = HistogramStore(tmp_path)
    first = store.refresh()
    offset = store._files[dst].reader.offset
    assert store.refresh() == 0 and store._files[dst].reader.offset == offset
    with open(dst, "ab") as f:
        f.write(data[-1:])
    assert store.refresh() == 1 and first + 1 == len(read_histograms(src))


def test_corrupt_file_is_reported_and_readable_part_kept(logs, tmp_path):
    src = _first_event_file(logs / "run1" / "torch")
    bad_dir = tmp_path / "bad" / "torch"
    bad_dir.mkdir(parents=True)
    data = bytearray(src.read_bytes())
    data[len(data) // 2] ^= 0xFF
    bad = bad_dir / src.name
    bad.write_bytes(bytes(data))
    shutil.copytree(logs / "run1" / "tensorflow", tmp_path / "bad" / "tensorflow")
    store = HistogramStore(tmp_path)
    store.refresh()
    problems = store.problems()
    assert len(problems) == 1 and problems[0].path == str(bad) and "corrupt" in problems[0].message
    full = len(read_histograms(src))
    assert 0 < len(store.frame(["bad/torch"])) < full  # records before the damage are kept
    assert len(store.frame(["bad/tensorflow"])) == full  # the other file is unaffected
    assert store.refresh() == 0 and len(store.problems()) == 1  # not re-read, still reported
    with pytest.raises(CorruptRecordError, match=str(bad)) as info:
        read_histograms(bad)
    assert (info.value.path, info.value.offset) == (problems[0].path, problems[0].offset)
    lenient = read_histograms(bad, strict=False)
    assert len(lenient) > 0 and lenient.attrs["problems"][0].path == str(bad)


def test_stale_truncated_file_is_reported(logs, tmp_path):
    src = _first_event_file(logs / "run1" / "tensorflow")
    (tmp_path / "t").mkdir()
    dst = tmp_path / "t" / src.name
    dst.write_bytes(src.read_bytes()[:-7])
    store = HistogramStore(tmp_path, stale_after=30)
    store.refresh()
    assert store.problems() == []  # fresh: a writer may still be finishing the record
    old = time.time() - 120
    os.utime(dst, (old, old))
    store.refresh()
    [problem] = store.problems()
    assert problem.path == str(dst) and "incomplete record" in problem.message


# --- transforms on real writers' files (generated data: test_histmath.py) ------------------------------------------------------------------------------------
def test_compress_is_tensorboards_algorithm(logs):
    from tensorboard.plugins.distribution import compressor  # no TensorFlow behind it

    checked = 0
    for path in (logs / "run1" / "torch").iterdir():
        for ev in iter_events(path):
            for v in ev.summary.value:
                if v.HasField("histo"):
                    want = [val for _, val in compressor.compress_histogram_proto(v.histo)]
                    assert compress(*from_histo(v.histo)) == pytest.approx(want, rel=1e-9, abs=1e-15)
                    checked += 1
    assert checked == 35 * 8
    buckets = np.array([[0.0, 1.0, 3.0], [1.0, 2.0, 0.0], [2.0, 4.0, 5.0], [4.0, 4.5, 0.0]])
    want = [val for _, val in compressor.compress_histogram(buckets[:3])]
    assert compress(*from_buckets(buckets)) == pytest.approx(want)


def test_distribution_frame(logs):
    from twinboard.histograms import HistogramStore

    store = HistogramStore(logs)
    store.refresh(["run1/tensorflow"])
    dist = distribution(store.get("run1/tensorflow", "weights/dense0/kernel"))
    assert list(dist.columns) == ["step", *BASIS_POINTS] and len(dist) == 35
    assert np.all(np.diff(dist[list(BASIS_POINTS)].to_numpy(), axis=1) >= 0)


def test_figures_say_what_they_thinned_and_rebinned(logs):
    from twinboard import histograms

    store = HistogramStore(logs)
    store.refresh()
    s = store.get("run1/torch", "weights/dense0/kernel")
    edges = common_edges(s.edges, 30)
    fig = histograms.offset_figure(s, edges, "#EE4C2C", "t")
    assert len(fig.data) == 30 and "30 of 35 steps" in fig.layout.annotations[0].text
    drawn = {int(tr.name.split()[-1]) for tr in fig.data}
    ticks = list(fig.layout.yaxis.tickvals)
    assert 2 <= len(ticks) <= 8 and set(ticks) <= drawn and min(ticks) == min(drawn)  # no step that is not there
    fig = histograms.overlay_figure(s, edges, "#EE4C2C", "t", cap=50)
    assert len(fig.data) == 35 + 1  # every step, plus the colour-bar carrier
    t = store.get("run1/tensorflow", "weights/dense0/kernel")
    sides = [("PyTorch", "#EE4C2C", 30, s.edges[6], s.counts[6]), ("TensorFlow", "#FF8F00", 30,
                                                                    t.edges[6], t.counts[6])]
    fig = histograms.compare_figure(sides, 40, "t")
    assert "re-binned onto 40 common buckets" in fig.layout.annotations[0].text
    assert [sum(tr.y[:-1]) for tr in fig.data] == pytest.approx([64 * 32, 64 * 32])  # y[-1] closes
    dist = histograms.distribution_figure(distribution(t), "#FF8F00", "t")
    assert len(dist.data) == 2 * 4 + 1


# --- hand-made records: the corners real writers rarely hit -----------------------------------------
def _event(step: int, tag: str, histo=None, buckets=None, metadata: bool = True) -> bytes:
    from tensorboard.compat.proto import event_pb2

    ev = event_pb2.Event(step=step, wall_time=1000.0 + step)
    v = ev.summary.value.add(tag=tag)
    if histo is not None:
        v.histo.CopyFrom(histo)
    else:
        buckets = np.asarray(buckets, dtype=np.float64)
        v.tensor.dtype = 2
        for n in buckets.shape:
            v.tensor.tensor_shape.dim.add(size=n)
        v.tensor.tensor_content = buckets.astype("<f8").tobytes()
        if metadata:
            v.metadata.plugin_data.plugin_name = "histograms"
    return ev.SerializeToString()


def test_histogram_proto_corners():
    from tensorboard.compat.proto.summary_pb2 import HistogramProto

    dbl = np.finfo(np.float64).max  # TF1's C++ histogram brackets its buckets with ±DBL_MAX
    h = HistogramProto(min=-0.5, max=2.5, num=6, bucket_limit=[-dbl, 0.0, 1.0, 3.0, dbl],
                       bucket=[0, 2, 1, 3, 0])
    edges, counts = from_histo(h)
    assert edges.tolist() == [-0.5, 0.0, 1.0, 2.5] and counts.tolist() == [2, 1, 3]
    h = HistogramProto(min=0.25, max=1.5, num=3, bucket_limit=[1.0, 2.0], bucket=[1, 2])
    assert from_histo(h)[0].tolist() == [0.25, 1.0, 1.5]  # first bucket's left edge is min
    h = HistogramProto(min=3.0, max=3.0, num=5, bucket_limit=[2.87, 3.17], bucket=[0, 5])
    assert from_histo(h)[0].tolist() == [3.0, 3.0]  # a constant tensor: one point mass
    edges, counts = from_buckets([[0, 1, 2], [2, 3, 1], [3, 3, 0]])  # a gap becomes an empty bucket
    assert edges.tolist() == [0, 1, 2, 3] and counts.tolist() == [2, 0, 1]
    assert from_buckets(np.zeros((30, 3)))[1].size == 0  # no values: k = 0


def test_tf_metadata_only_on_a_tags_first_value_and_replaced_files(tmp_path):
    from twinboard.contract import frame

    (tmp_path / "r").mkdir()
    path = tmp_path / "r" / "events.out.tfevents.1"
    b = [[0.0, 1.0, 4.0], [1.0, 2.0, 6.0]]
    path.write_bytes(b"".join(frame(_event(s, "weights/out/kernel", buckets=b, metadata=(s == 0)))
                              for s in range(3)))
    store = HistogramStore(tmp_path)
    assert store.refresh() == 3
    assert store.get("r", "weights/out/kernel").steps.tolist() == [0, 1, 2]
    path.write_bytes(frame(_event(7, "weights/out/kernel", buckets=b)))  # shorter: a new file
    store.refresh()
    assert store.get("r", "weights/out/kernel").steps.tolist() == [7]
    new = tmp_path / "new"
    new.write_bytes(b"".join(frame(_event(s, "weights/out/kernel", buckets=b)) for s in (8, 9)))
    os.replace(new, path)  # longer, and another inode
    store.refresh()
    assert store.get("r", "weights/out/kernel").steps.tolist() == [8, 9] and store.problems() == []


@pytest.mark.parametrize("layout", ["one file", "a file per start"])
def test_a_restarted_runs_repeated_steps_are_kept_by_both_stores_in_write_order(tmp_path, layout):
    """The policy of twinboard.events: a step logged twice appears twice, the older first, in both
    the scalar and the histogram store (TensorBoard's rule for file_version 2 files)."""
    from tensorboard.compat.proto import event_pb2

    from twinboard.contract import frame
    from twinboard.events import ScalarStore

    def records(steps, start):  # what one start of the trainer writes: a scalar and a histogram a step
        out = [frame(event_pb2.Event(wall_time=999.0, file_version="brain.Event:2").SerializeToString())]
        for i, s in enumerate(steps):
            n = float(start * 10 + i + 1)  # marks which start wrote the record
            scalar = event_pb2.Event(wall_time=1000.0 + s, step=s)  # as _event stamps it
            scalar.summary.value.add(tag="loss/train", simple_value=n)
            out += [frame(scalar.SerializeToString()), frame(_event(s, "weights/out/kernel", buckets=[[0.0, 1.0, n]]))]
        return b"".join(out)

    run = tmp_path / "r"
    run.mkdir()
    first, second = records([0, 1, 2], 0), records([1, 2, 3], 1)  # crashed after step 2, resumed from 1
    if layout == "one file":
        (run / "events.out.tfevents.1.host").write_bytes(first + second)
    else:  # the restart's file sorts after the first (TensorBoard's names start with the time)
        (run / "events.out.tfevents.1.host").write_bytes(first)
        (run / "events.out.tfevents.2.host").write_bytes(second)
    scalars, histograms = ScalarStore(tmp_path), HistogramStore(tmp_path)
    assert scalars.refresh() == 6 and histograms.refresh() == 6
    s, h = scalars.series("r", "loss/train"), histograms.get("r", "weights/out/kernel")
    assert s.step.tolist() == h.steps.tolist() == [0, 1, 2, 1, 2, 3]
    assert s.value.tolist() == [c.sum() for c in h.counts] == [1, 2, 3, 11, 12, 13]
    assert s.wall_time.tolist() == h.wall_times.tolist()
    assert scalars.problems() == histograms.problems() == []
