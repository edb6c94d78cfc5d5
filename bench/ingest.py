"""Issue 7: reading scalars from one tensorboardX file of 1,000,000 scalars (10 tags x 100,000 steps,
~52 MB), in page cache. Goals: warm read <= 0.1 s, first read in a fresh process (JIT load
included) <= 0.5 s, refresh after 1,000 appended scalars <= 2 ms. Anchors run in the same process
run, on the same file, so ratios are like for like.
"""
from __future__ import annotations

import hashlib
import json
import os
import shutil
import statistics
import subprocess
import sys
import time
from pathlib import Path

import numpy as np

from bench.gen import TAGS, scalar_records, write_scalar_file

HERE = Path(__file__).resolve().parent
ROOT = HERE.parent
TMP = HERE / "tmp" / "ingest"
STEPS = 100_000

NOTES = {  # from /work/shared/notes/ingest.md (same file shape, this machine type), not re-run
    "tbparse 0.0.9": 21.4,
}

# EventAccumulator in a child process, as TensorBoard itself runs it without TensorFlow (TF would
# add seconds of import to the child and change nothing we compare). It also prints a digest of
# what it read, which must equal ours: the generated file is valid and read the same way.
EA_CHILD = r"""
import hashlib, json, sys, time, types
sys.modules["tensorboard.compat.notf"] = types.ModuleType("notf")
from tensorboard.backend.event_processing import event_accumulator as ea
import numpy as np
t, c = time.perf_counter(), time.process_time()
acc = ea.EventAccumulator(sys.argv[1], size_guidance={ea.SCALARS: 0})
acc.Reload()
cols = {}
for tag in acc.Tags()["scalars"]:
    evs = acc.Scalars(tag)
    cols[tag] = (np.array([e.step for e in evs], np.int64), np.array([e.wall_time for e in evs]),
                 np.array([e.value for e in evs]))
elapsed, cpu = time.perf_counter() - t, time.process_time() - c
h = hashlib.sha256()
for tag in sorted(cols):
    for a in cols[tag]:
        h.update(tag.encode() + a.tobytes())
print(json.dumps({"seconds": elapsed, "cpu": cpu, "n": sum(len(c[0]) for c in cols.values()),
                  "digest": h.hexdigest()}))
"""

# A fresh interpreter reading the file: time from before the first twinboard import to numpy
# columns (ScalarStore, what the app does) or to a DataFrame (read_scalars, pandas import included).
FRESH_CHILD = r"""
import time
t0, c0 = time.perf_counter(), time.process_time()
import json, sys
if sys.argv[2] == "store":
    from twinboard.events import ScalarStore
    store = ScalarStore(sys.argv[1])
    n = store.refresh()
else:
    from twinboard.events import read_scalars
    n = len(read_scalars(sys.argv[1]))
t1, c1 = time.perf_counter(), time.process_time()
from twinboard.events import native
print(json.dumps({"seconds": t1 - t0, "cpu": c1 - c0, "n": n, "compiled": native.available()}))
"""


# TensorBoard's Rust data server (tensorboard-data-server): start it on the folder, ask over gRPC
# for every point until all have loaded, into numpy. Time is spawn to numpy; CRCs checked like ours.
SERVER_CHILD = r"""
import json, os, subprocess, sys, tempfile, time
import numpy as np
t = time.perf_counter()
import grpc
from tensorboard.data.proto import data_provider_pb2 as pb, data_provider_pb2_grpc as rpc
import tensorboard_data_server
binary = tensorboard_data_server.server_binary()
port_file = os.path.join(tempfile.mkdtemp(), "port")
server = subprocess.Popen([binary, "--logdir", sys.argv[1], "--port", "0", "--port-file", port_file,
                           "--reload", "once", "--samples-per-plugin", "scalars=all", "--checksum",
                           "--die-after-stdin"], stdin=subprocess.PIPE, stderr=subprocess.DEVNULL)
try:
    while not (os.path.exists(port_file) and open(port_file).read().endswith("\n")):
        time.sleep(0.002)
    stub = rpc.TensorBoardDataProviderStub(grpc.insecure_channel(
        "localhost:" + open(port_file).read().strip(),
        options=[("grpc.max_receive_message_length", 1 << 30)]))
    want = int(sys.argv[2])
    while True:
        req = pb.ReadScalarsRequest(downsample=pb.Downsample(num_points=want))
        req.plugin_filter.plugin_name = "scalars"
        try:
            resp = stub.ReadScalars(req)
        except grpc.RpcError:
            time.sleep(0.01)
            continue
        cols = [(np.array(tg.data.step, np.int64), np.array(tg.data.wall_time), np.array(tg.data.value))
                for run in resp.runs for tg in run.tags]
        n = sum(len(c[0]) for c in cols)
        if n >= want:
            break
        time.sleep(0.01)
    print(json.dumps({"seconds": time.perf_counter() - t, "n": n}))
finally:
    server.stdin.close()
    server.kill()
"""


def digest(store) -> str:
    h = hashlib.sha256()
    for tag in sorted(store.tags(".")):
        for a in store.series(".", tag):
            h.update(tag.encode() + np.ascontiguousarray(a).tobytes())
    return h.hexdigest()


def timed(fn, repeat: int) -> dict[str, list[float]]:
    """Wall and CPU seconds of each call (CPU time is what a quiet machine's wall time would be:
    everything here is single-threaded)."""
    wall, cpu = [], []
    for _ in range(repeat):
        t, c = time.perf_counter(), time.process_time()
        fn()
        wall.append(time.perf_counter() - t)
        cpu.append(time.process_time() - c)
    return {"wall": wall, "cpu": cpu}


def python_protobuf_loop(path: Path) -> int:
    """The plain way: every record through records.RecordReader (CRCs via google-crc32c) and
    Event.ParseFromString, values into lists, then numpy."""
    from tensorboard.compat.proto import event_pb2

    from twinboard.events import RecordReader

    tags, steps, wts, vals = [], [], [], []
    for data in RecordReader(path).read():
        ev = event_pb2.Event()
        ev.ParseFromString(data)
        for v in ev.summary.value:
            if v.WhichOneof("value") == "simple_value":
                tags.append(v.tag)
                steps.append(ev.step)
                wts.append(ev.wall_time)
                vals.append(v.simple_value)
    np.array(steps, np.int64), np.array(wts), np.array(vals)
    return len(vals)


def child(code: str, *args: str, timeout: float = 300) -> tuple[dict, float]:
    t = time.perf_counter()
    out = subprocess.run([sys.executable, "-c", code, *args], cwd=ROOT, capture_output=True,
                         text=True, timeout=timeout, env=dict(os.environ, PYTHONPATH=str(ROOT)))
    wall = time.perf_counter() - t
    if out.returncode != 0:
        raise RuntimeError(out.stderr[-2000:])
    return json.loads(out.stdout.strip().splitlines()[-1]), wall


def run() -> dict:
    from twinboard import events
    from twinboard.events import fastscan, native, scalars

    t = time.perf_counter()
    a = write_scalar_file(TMP / "a" / "events.out.tfevents.1700000000.bench", STEPS)
    b = TMP / "b" / a.name
    c = TMP / "c" / a.name
    for dst in (b, c):
        dst.parent.mkdir(parents=True, exist_ok=True)
        shutil.copyfile(a, dst)
    gen_s = time.perf_counter() - t
    for p in (a, b):
        p.read_bytes()  # into the page cache
    r: dict = {"file_bytes": a.stat().st_size, "scalars": STEPS * len(TAGS), "generate_s": gen_s,
               "compiled": native.available()}

    # Warm: the kernel is loaded and file A read once; then the second file, B, is timed.
    events.read_scalars(a)
    store = events.ScalarStore(b)
    assert store.refresh() == STEPS * len(TAGS)
    ours = digest(store)
    r["warm_store_s"] = timed(lambda: events.ScalarStore(b).refresh(), 7)
    r["warm_read_scalars_s"] = timed(lambda: events.read_scalars(b), 7)

    tf2 = write_scalar_file(TMP / "tf2" / a.name, STEPS, layout="tf2")
    tf2.read_bytes()
    assert events.ScalarStore(tf2).refresh() == STEPS * len(TAGS)
    r["tf2_file_bytes"] = tf2.stat().st_size
    r["warm_store_tf2_s"] = timed(lambda: events.ScalarStore(tf2).refresh(), 5)

    def kernel_only():
        tags, out = fastscan.Tags(), fastscan.Columns()
        data = b.read_bytes()
        scalars.decode(data, 0, tags, out)
    r["warm_decode_s"] = timed(kernel_only, 7)

    # Fresh processes: numba is not imported; the kernel object is loaded by llvmlite.
    for kind in ("store", "read_scalars"):
        runs = [child(FRESH_CHILD, str(b), kind) for _ in range(3)]
        assert all(x["n"] == STEPS * len(TAGS) for x, _ in runs), runs
        r[f"fresh_{kind}_s"] = {"wall": [x["seconds"] for x, _ in runs],
                                "cpu": [x["cpu"] for x, _ in runs],
                                "process_wall": [w for _, w in runs]}
        r["fresh_compiled"] = all(x["compiled"] for x, _ in runs)

    # Incremental: a store over C has read it; append 1,000 scalars (100 steps x 10 tags), refresh.
    inc = events.ScalarStore(c.parent)
    inc.refresh()
    wall, cpu = [], []
    for k in range(30):
        chunk = scalar_records(range(STEPS + 100 * k, STEPS + 100 * (k + 1)))
        with open(c, "ab") as f:
            f.write(chunk)
        t, cp = time.perf_counter(), time.process_time()
        got = inc.refresh()
        wall.append(time.perf_counter() - t)
        cpu.append(time.process_time() - cp)
        assert got == 1000, got
    r["refresh_1000_s"] = {"wall": wall, "cpu": cpu}

    # Anchors.
    ea, _ = child(EA_CHILD, str(b), timeout=900)
    r["event_accumulator_s"] = {"wall": [ea["seconds"]], "cpu": [ea["cpu"]]}
    r["event_accumulator_agrees"] = ea["digest"] == ours and ea["n"] == STEPS * len(TAGS)
    r["python_protobuf_loop_s"] = timed(lambda: python_protobuf_loop(b), 1)
    try:
        ds, _ = child(SERVER_CHILD, str(b.parent), str(STEPS * len(TAGS)), timeout=180)
        r["data_server_s"] = {"wall": [ds["seconds"]], "cpu": [ds["seconds"]]}
    except Exception as exc:  # noqa: BLE001  optional anchor
        r["data_server_error"] = repr(exc)[:300]
    r["notes"] = NOTES
    return r


def markdown(r: dict) -> str:
    def med(key, kind="wall"):
        return statistics.median(r[key][kind])

    rows = [
        ("tbparse 0.0.9 (from notes, not re-run)", r["notes"]["tbparse 0.0.9"], None, ""),
        ("tensorboard EventAccumulator, size_guidance 0 (child process, no TF)",
         med("event_accumulator_s"), med("event_accumulator_s", "cpu"), ""),
        ("records.RecordReader + Event.ParseFromString per record (Python loop)",
         med("python_protobuf_loop_s"), med("python_protobuf_loop_s", "cpu"), ""),
    ]
    if "data_server_s" in r:
        rows.append(("tensorboard-data-server 0.7.2 (Rust, --checksum): spawn to numpy via gRPC",
                     med("data_server_s"), None, "its CPU is in another process"))
    rows += [
        ("**fresh process**: imports + ScalarStore(file).refresh() -> numpy columns",
         med("fresh_store_s"), med("fresh_store_s", "cpu"), "goal <= 0.5 s"),
        ("fresh process: same, whole child from exec to exit",
         statistics.median(r["fresh_store_s"]["process_wall"]), None, "interpreter start included"),
        ("fresh process: imports (pandas too) + read_scalars(file) -> DataFrame",
         med("fresh_read_scalars_s"), med("fresh_read_scalars_s", "cpu"), ""),
        ("**warm**: ScalarStore(file).refresh(), 2nd file in the process",
         med("warm_store_s"), med("warm_store_s", "cpu"), "goal <= 0.1 s"),
        ("warm: read_scalars(file) -> DataFrame", med("warm_read_scalars_s"),
         med("warm_read_scalars_s", "cpu"), ""),
        (f"warm: ScalarStore, same scalars as tf.summary writes them ({r['tf2_file_bytes'] / 1e6:.0f} MB)",
         med("warm_store_tf2_s"), med("warm_store_tf2_s", "cpu"), "tensor + metadata per value"),
        ("warm: kernel only (read file into bytes + decode, no grouping by tag)",
         med("warm_decode_s"), med("warm_decode_s", "cpu"), ""),
        ("**refresh after 1,000 appended scalars** (median of 30)", med("refresh_1000_s"),
         med("refresh_1000_s", "cpu"), "goal <= 2 ms"),
        ("  same, worst of 30", max(r["refresh_1000_s"]["wall"]), max(r["refresh_1000_s"]["cpu"]), ""),
    ]
    m = r["machine"]
    ea = med("event_accumulator_s", "cpu")
    out = [
        "# Ingest: one tensorboardX file, 1,000,000 scalars (10 tags x 100,000 steps, "
        f"{r['file_bytes'] / 1e6:.1f} MB), in page cache",
        "",
        f"Machine: {m['cpu']}, {m['cores']} cores, Python {m['python']}; load average "
        f"{m['loadavg_before'][0]:.1f} before, {m['loadavg_after'][0]:.1f} after. Wall times are "
        "medians where repeated; on a busy machine they include waiting for a core, so the CPU "
        "column (this process's CPU time; all of it single-threaded) is what a quiet machine's "
        "wall time would be, and the ratio uses it.",
        f"Compiled kernel in use: {r['compiled']} (fresh processes: {r['fresh_compiled']}). "
        f"EventAccumulator read the same {r['scalars']:,} values as we did: "
        f"{r['event_accumulator_agrees']}.",
        "",
        "| reader | wall s | CPU s | x less CPU than EventAccumulator | note |",
        "|---|---:|---:|---:|---|",
    ]
    for name, wall, cpu, note in rows:
        c = f"{cpu:.4f}" if cpu is not None else "-"
        ratio = f"{ea / cpu:,.0f}" if cpu else "-"
        out.append(f"| {name} | {wall:.4f} | {c} | {ratio} | {note} |")
    if "data_server_error" in r:
        out += ["", f"tensorboard-data-server not measured: {r['data_server_error']}"]
    return "\n".join(out) + "\n"
