"""Measuring exported artifacts the same way in every runtime: numpy in, numpy out.

A format is a `Format`: how to write the artifact (`export`) and how to load it into its own runtime
(`load` -> `Runner`). `measure` writes each one, loads it, runs the whole validation split through
it and times it; whatever fails is recorded as that artifact's `error`, never raised: a model that a
format cannot express still gets every other format. numpy only: the framework sides
(trainers.deploy.torch_side, tf_side) bring the formats.

How the figures are taken, so that runtimes compare fairly:
- every call takes a numpy array and returns one: each runtime's own conversions are in its time;
- latency: LATENCY_CALLS single-sample calls (rows of the validation split in turn), each timed on
  its own, after WARMUP_CALLS untimed ones; p50 and p99 in microseconds. A model slow enough to pass
  LATENCY_BUDGET_S stops early, and `latency_calls` says how many were timed;
- throughput: batches of THROUGHPUT_BATCH rows, for at least THROUGHPUT_S seconds (3 calls at least);
- outputs on the validation split in batches of THROUGHPUT_BATCH (one sample at a time when the
  artifact takes batch 1 only); `max_abs_diff` against the trained model's outputs on the same rows;
- one thread in every runtime (the framework sides set it).
"""
from __future__ import annotations

import os
import re
import shutil
import time
from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import numpy as np

LATENCY_CALLS = 1000
WARMUP_CALLS = 50
LATENCY_BUDGET_S = 30.0  # per artifact; a transformer on a slow runtime stops early (latency_calls says)
THROUGHPUT_BATCH = 256
THROUGHPUT_S = 0.3
ERROR_CHARS = 600  # an exporter's message can be pages long: the first of it says what failed


@dataclass
class Runner:
    """One artifact loaded in its runtime."""
    one: Callable[[np.ndarray], np.ndarray]  # a batch of one row
    batch: Callable[[np.ndarray], np.ndarray] | None  # any batch size; None: batch 1 only
    runtime: str  # "onnxruntime 1.32.0"
    threads: int | None = 1
    note: str = ""


@dataclass
class Format:
    key: str  # "onnx": the artifact's id in deploy.json
    label: str  # "ONNX"
    file: str | None  # file or folder name in export/; None for the trained model itself
    precision: str  # "float32", "int8 weights (dynamic range)", ...
    load: Callable[[Path | None], Runner]
    export: Callable[[Path], Any] | None = None  # writes the artifact at the path; None: nothing to write
    exact: bool = True  # a float artifact of the same precision: expected to match the model (1e-5)
    note: str = ""
    extra: dict[str, Any] = field(default_factory=dict)


ANSI = re.compile(r"\x1b\[[0-9;]*[A-Za-z]")  # the ONNX exporter colours its messages


def error_text(exc: BaseException) -> str:
    """The exception in one short line of plain text: what deploy.json records and the page shows."""
    text = " ".join(ANSI.sub("", f"{type(exc).__name__}: {exc}").split())
    return text if len(text) <= ERROR_CHARS else text[:ERROR_CHARS] + "…"


def size_of(path: Path) -> int:
    if path.is_dir():
        return sum(p.stat().st_size for p in path.rglob("*") if p.is_file())
    return path.stat().st_size


def scores(outputs: np.ndarray, reference: np.ndarray, y: np.ndarray, n_classes: int) -> dict[str, Any]:
    """Validation accuracy (classes) or loss, and the largest difference from the trained model's outputs."""
    out = np.asarray(outputs, dtype=np.float64)
    ref = np.asarray(reference, dtype=np.float64)
    found: dict[str, Any] = {"max_abs_diff": float(np.max(np.abs(out - ref))) if out.size else None}
    if n_classes:
        logits = out.reshape(-1, out.shape[-1])
        labels = np.asarray(y).reshape(-1)
        shifted = logits - logits.max(axis=1, keepdims=True)
        log_p = shifted - np.log(np.exp(shifted).sum(axis=1, keepdims=True))
        pred = logits.argmax(1)
        found["val_accuracy"] = float(np.mean(pred == labels))
        found["val_loss"] = float(-np.mean(log_p[np.arange(len(labels)), labels]))
        found["same_class_as_model"] = float(np.mean(pred == ref.reshape(-1, ref.shape[-1]).argmax(1)))
    else:
        found["val_accuracy"] = None
        found["val_loss"] = float(np.mean((out.reshape(len(y), -1) - np.asarray(y).reshape(len(y), -1)) ** 2))
    return found


def outputs_on(runner: Runner, x: np.ndarray) -> tuple[np.ndarray, str]:
    """The runner's outputs on every row of x: in batches, or one row at a time (and why)."""
    if runner.batch is not None:
        try:
            parts = [runner.batch(x[i:i + THROUGHPUT_BATCH]) for i in range(0, len(x), THROUGHPUT_BATCH)]
            return np.concatenate(parts), ""
        except Exception as exc:  # noqa: BLE001 - a runtime's batch failure: fall back, say why
            note = f"batch calls failed ({error_text(exc)}): validation run one sample at a time"
    else:
        note = "takes batch 1 only: validation run one sample at a time"
    return np.concatenate([runner.one(x[i:i + 1]) for i in range(len(x))]), note


def latency(one: Callable[[np.ndarray], np.ndarray], x: np.ndarray) -> dict[str, Any]:
    rows = [np.ascontiguousarray(x[i:i + 1]) for i in range(min(len(x), 256))]
    for i in range(WARMUP_CALLS):
        one(rows[i % len(rows)])
    clock = time.perf_counter_ns
    times = np.empty(LATENCY_CALLS, dtype=np.int64)
    deadline = time.perf_counter() + LATENCY_BUDGET_S
    n = 0
    for n in range(LATENCY_CALLS):
        row = rows[n % len(rows)]
        t0 = clock()
        one(row)
        times[n] = clock() - t0
        if time.perf_counter() > deadline:
            break
    us = times[:n + 1] / 1e3
    return {"latency_us_p50": float(np.percentile(us, 50)), "latency_us_p99": float(np.percentile(us, 99)),
            "latency_us_mean": float(us.mean()), "latency_calls": int(n + 1)}


def throughput(batch: Callable[[np.ndarray], np.ndarray], x: np.ndarray) -> dict[str, Any]:
    reps = -(-THROUGHPUT_BATCH // len(x))
    xb = np.ascontiguousarray(np.concatenate([x] * reps)[:THROUGHPUT_BATCH])
    batch(xb)
    batch(xb)
    calls, t0 = 0, time.perf_counter()
    while calls < 3 or time.perf_counter() - t0 < THROUGHPUT_S:
        batch(xb)
        calls += 1
    spent = time.perf_counter() - t0
    return {"throughput_per_s": THROUGHPUT_BATCH * calls / spent, "throughput_batch": THROUGHPUT_BATCH}


def measure_one(fmt: Format, out_dir: Path, staging: Path, x: np.ndarray, y: np.ndarray, n_classes: int,
                reference: np.ndarray) -> dict[str, Any]:
    """One artifact: written (into `staging`, then moved into `out_dir`), loaded, scored and timed."""
    rec: dict[str, Any] = {"key": fmt.key, "format": fmt.label, "file": fmt.file, "precision": fmt.precision,
                           "exact": fmt.exact, "error": None, "note": fmt.note, **fmt.extra}
    path = None
    if fmt.file is not None:
        staged, path = staging / fmt.file, out_dir / fmt.file
        try:
            t0 = time.perf_counter()
            fmt.export(staged)
            rec["export_s"] = time.perf_counter() - t0
            _replace(staged, path)
            rec["bytes"] = size_of(path)
        except Exception as exc:  # noqa: BLE001 - this format cannot express this model: say why
            rec["error"] = f"export failed: {error_text(exc)}"
            _remove(path)  # an older run's artifact must not pass for this one
            return rec
    try:
        t0 = time.perf_counter()
        runner = fmt.load(path)
        rec["load_s"] = time.perf_counter() - t0
        rec.update(runtime=runner.runtime, threads=runner.threads)
        outputs, how = outputs_on(runner, x)
        rec["note"] = "; ".join(n for n in (fmt.note, runner.note, how) if n)
        rec.update(scores(outputs, reference, y, n_classes))
        rec.update(latency(runner.one, x))
        if runner.batch is not None and not how:
            rec.update(throughput(runner.batch, x))
    except Exception as exc:  # noqa: BLE001 - written but not runnable here: recorded
        rec["error"] = f"could not run: {error_text(exc)}"
    return rec


def measure(formats: list[Format], out_dir: Path, x: np.ndarray, y: np.ndarray, n_classes: int,
            reference: np.ndarray) -> list[dict[str, Any]]:
    out_dir.mkdir(parents=True, exist_ok=True)
    staging = out_dir / f".staging-{os.getpid()}"
    shutil.rmtree(staging, ignore_errors=True)
    staging.mkdir()
    try:
        return [measure_one(f, out_dir, staging, x, y, n_classes, reference) for f in formats]
    finally:
        shutil.rmtree(staging, ignore_errors=True)


def _remove(path: Path) -> None:
    if path.is_dir():
        shutil.rmtree(path)
    elif path.exists():
        path.unlink()


def _replace(staged: Path, path: Path) -> None:
    """The new artifact in place of the old: a file in one rename, a folder (SavedModel) by removing
    the old one first."""
    if not staged.exists():
        raise FileNotFoundError(f"the exporter wrote nothing at {staged.name}")
    if staged.is_dir() or path.is_dir():
        _remove(path)
    os.replace(staged, path)
