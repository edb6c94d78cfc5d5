"""Matched runs agree step for step: shared init, same batches, torch's optimizer arithmetic in TF.

Real trainer processes, both frameworks side by side; the event files are parsed with
tensorboard.compat.proto (no TensorFlow import here, and no dependency on twinboard's reader).
Bounds: docs in /work/shared/notes/frameworks.md measured the float64 floor at 1e-15..2e-13 and
the float32 one at ~1e-6 (torch against itself with weights moved by one ulp).
"""
from __future__ import annotations

import struct
import subprocess
import sys
from pathlib import Path

import numpy as np
import pytest

from twinboard.contract import RunSpec

ROOT = Path(__file__).resolve().parents[1]
OPTIMIZERS = {
    "sgd": dict(optimizer="sgd", momentum=0.0, lr=0.05),
    "momentum": dict(optimizer="sgd", momentum=0.9, lr=0.05),
    "adam": dict(optimizer="adam", lr=0.003),
}


def read_scalars(logdir: Path, tag: str) -> dict[int, float]:
    """step -> value for one tag: simple_value, or a scalar tensor (float32/float64) as tf.summary writes."""
    from tensorboard.compat.proto import event_pb2
    from tensorboard.compat.proto import types_pb2

    out: dict[int, float] = {}
    for path in sorted(logdir.glob("events.out.tfevents.*")):
        buf = path.read_bytes()
        pos = 0
        while pos + 12 <= len(buf):
            (n,) = struct.unpack_from("<Q", buf, pos)
            record = buf[pos + 12:pos + 12 + n]
            pos += 12 + n + 4
            event = event_pb2.Event.FromString(record)
            for v in event.summary.value:
                if v.tag != tag:
                    continue
                if v.HasField("tensor"):
                    t = v.tensor
                    if t.double_val:
                        out[event.step] = t.double_val[0]
                    elif t.float_val:
                        out[event.step] = t.float_val[0]
                    else:
                        dt = np.float64 if t.dtype == types_pb2.DT_DOUBLE else np.float32
                        out[event.step] = float(np.frombuffer(t.tensor_content, dt)[0])
                else:
                    out[event.step] = v.simple_value
    return out


def run_many(root: Path, specs: dict[str, RunSpec]) -> dict[str, tuple[Path, Path]]:
    """Each spec in a run folder of its own; one process per framework trains them one after the
    other through the trainers' main() (one framework import instead of seven), both side by side."""
    paths = {}
    for name, spec in specs.items():
        (root / name).mkdir(parents=True)
        spec.save(root / name / "spec.json")
        paths[name] = str(root / name / "spec.json")
    code = ("import sys; from trainers import {m} as t; "
            "sys.exit(max(t.main([p]) for p in sys.argv[1:]))")
    procs = [subprocess.Popen([sys.executable, "-c", code.format(m=m), *paths.values()], cwd=ROOT,
                              stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True)
             for m in ("torch_trainer", "tf_trainer")]
    for p in procs:
        _, err = p.communicate(timeout=300)
        assert p.returncode == 0, err[-3000:]
    return {name: (root / name / "torch", root / name / "tensorflow") for name in specs}


def max_rel_diff(a: dict[int, float], b: dict[int, float], steps: range) -> float:
    missing = [s for s in steps if s not in a or s not in b]
    assert not missing, f"steps missing from the logs: {missing[:10]}"
    x = np.array([a[s] for s in steps], np.float64)
    y = np.array([b[s] for s in steps], np.float64)
    return float(np.max(np.abs(x - y) / np.maximum(np.abs(x), 1e-300)))


def _specs() -> dict[str, RunSpec]:
    specs = {}
    for name, opt in OPTIMIZERS.items():
        specs[f"{name}-float64"] = RunSpec(dtype="float64", steps=200, log_every=50, histogram_every=100, **opt)
        specs[f"{name}-float32"] = RunSpec(dtype="float32", steps=50, log_every=1, histogram_every=50, **opt)
    specs["native"] = RunSpec(dtype="float64", steps=30, log_every=10, init="native", optimizer="adam", lr=0.003)
    return specs


@pytest.fixture(scope="module")
def runs(tmp_path_factory):
    return run_many(tmp_path_factory.mktemp("parity"), _specs())


@pytest.mark.parametrize("name", list(OPTIMIZERS))
def test_float64_losses_agree_every_step(runs, name):
    torch_dir, tf_dir = runs[f"{name}-float64"]
    a, b = read_scalars(torch_dir, "loss/train_fp64"), read_scalars(tf_dir, "loss/train_fp64")
    rel = max_rel_diff(a, b, range(1, 201))
    print(f"float64 {name}: max rel diff over 200 steps {rel:.3g}")
    assert rel <= 1e-12
    assert b[200] < b[1]  # it trained


@pytest.mark.parametrize("name", list(OPTIMIZERS))
def test_float32_losses_agree_every_step(runs, name):
    torch_dir, tf_dir = runs[f"{name}-float32"]
    a, b = read_scalars(torch_dir, "loss/train"), read_scalars(tf_dir, "loss/train")
    rel = max_rel_diff(a, b, range(1, 51))
    print(f"float32 {name}: max rel diff over 50 steps {rel:.3g}")
    assert rel <= 1e-5


def test_native_init_differs(runs):
    """Each framework's own initializers and optimizers: the curves part at once."""
    torch_dir, tf_dir = runs["native"]
    a, b = read_scalars(torch_dir, "loss/train_fp64"), read_scalars(tf_dir, "loss/train_fp64")
    rel = max_rel_diff(a, b, range(1, 31))
    print(f"native init: max rel diff over 30 steps {rel:.3g}")
    assert rel > 1e-3
    import json

    t = json.loads((torch_dir / "settings.json").read_text())
    f = json.loads((tf_dir / "settings.json").read_text())
    assert t["init"].startswith("native: kaiming") and f["init"].startswith("native: glorot")
    assert (t["optimizer"]["eps"], f["optimizer"]["eps"]) == (1e-8, 1e-7)  # each framework's default
    assert "keras.optimizers.Adam" in f["optimizer"]["implementation"]
    assert t["init_sha256"] is None and f["init_sha256"] is None


def test_shared_init_file_is_the_same_for_both(runs):
    import json

    for name in OPTIMIZERS:
        torch_dir, tf_dir = runs[f"{name}-float64"]
        t = json.loads((torch_dir / "settings.json").read_text())
        f = json.loads((tf_dir / "settings.json").read_text())
        assert t["init_sha256"] == f["init_sha256"] is not None
