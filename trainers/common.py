"""What both trainers share: the logging cadence, the training loop, the records written the same
way on both sides (histogram buckets, embedding rows, settings that do not depend on the framework)
and the optional export extensions.

Framework code lives in ``torch_trainer.py`` / ``tf_trainer.py`` behind a small adapter (see
``Adapter``); everything that decides *when* something happens lives here, so the two frameworks
cannot drift apart in cadence. The command line, status.json, settings.json and the exit codes are
``trainers.runtime``'s; the layer plan and the shared initial weights are ``trainers.weights``'s;
both are re-exported here. This module imports numpy only: a bad spec is refused before the
seconds-long framework import.
"""
from __future__ import annotations

import gc
import sys
import time
from dataclasses import dataclass
from typing import Any, Callable, Protocol

import numpy as np

from trainers import data
from trainers.runtime import (FRAMEWORK_DIRS, SETTINGS_KEYS, STATUS_MIN_INTERVAL_S, Paths,  # noqa: F401
                              StatusFile, atomic_write_bytes, atomic_write_json, parse_args, run_guarded,
                              write_settings)
from twinboard.contract import RunSpec
from trainers.weights import (CONV_CHANNELS, SHARED_INIT_DESC, Layer, apply_init, chw_to_hwc_rows,  # noqa: F401
                              ensure_shared_init, file_sha256, layer_plan, shared_init)

FLUSH_S = 2  # event-file flush interval, both writers: curves stay live in the dashboard
# perf/step_ms and perf/samples_per_s: the mean train step since the previous perf point, written at
# the first log step this long after it (and at the last step). Time-sampled, as W&B samples its
# system metrics: one step's time is noise, and a point a step cost TF ~36 us a step (measured).
PERF_EVERY_S = 1.0
PERF_TAGS = ("perf/step_ms", "perf/samples_per_s")  # the perf dict's keys, in this order


# --- cadence -------------------------------------------------------------------------------------
@dataclass(frozen=True)
class Cadence:
    """When each kind of record is written; steps count from 1."""
    total_steps: int
    steps_per_epoch: int
    log_every: int
    histogram_every: int  # resolved: spec value, or steps_per_epoch // 4 when the spec says 0
    embedding_steps: frozenset[int]
    # The graph at step 1 and every kind of record at the last step. Always on in a run; the
    # trainer-overhead bench turns it off to time the train loop and its scalar logging alone.
    ends: bool = True

    @classmethod
    def from_spec(cls, spec: RunSpec, n_train: int) -> "Cadence":
        per_epoch = data.steps_per_epoch(spec, n_train)
        hist = spec.histogram_every or max(1, per_epoch // 4)
        return cls(data.total_steps(spec, n_train), per_epoch, spec.log_every, hist,
                   frozenset(spec.embedding_steps))

    def is_last(self, step: int) -> bool:
        return self.ends and step == self.total_steps

    def is_graph(self, step: int) -> bool:
        return self.ends and step == 1

    def is_log(self, step: int) -> bool:
        return step % self.log_every == 0 or self.is_last(step)

    def is_histogram(self, step: int) -> bool:
        return step % self.histogram_every == 0 or self.is_last(step)

    def is_validation(self, step: int) -> bool:
        return step % self.steps_per_epoch == 0 or self.is_last(step)

    def is_embedding(self, step: int) -> bool:
        return step in self.embedding_steps or self.is_last(step)


# --- settings that do not depend on the framework ------------------------------------------------
def common_settings(spec: RunSpec, cadence: Cadence, ds: data.Dataset) -> dict[str, Any]:
    """The settings that do not depend on the framework (still written by each side)."""
    return {
        "dtype": spec.dtype, "seed": spec.seed,
        "model": spec.model, "batch_norm": "none", "dropout": "none",
        "data": {"task": spec.task, "n_train": int(len(ds.x_train)), "n_val": int(len(ds.x_val)),
                 "shuffle": "numpy permutation per epoch from the seed (trainers.data)",
                 "drop_last": True},
        "batch_size": spec.batch_size, "epochs": spec.epochs, "steps_per_epoch": cadence.steps_per_epoch,
        "total_steps": cadence.total_steps, "log_every": cadence.log_every,
        "histogram_every": cadence.histogram_every, "histogram_bins": HISTOGRAM_BINS,
        "validation": "full validation split, end of every epoch and the final step",
        "python": sys.version.split()[0],
    }


# --- histograms ----------------------------------------------------------------------------------
HISTOGRAM_BINS = 30  # equal-width bins over [min, max], as tf.summary.histogram's default


def finite_values(values: np.ndarray) -> np.ndarray:
    """Flattened, non-finite values dropped: a diverged run must not die writing a histogram."""
    flat = np.asarray(values).reshape(-1)
    return flat if np.isfinite(flat).all() else flat[np.isfinite(flat)]


def histogram_buckets(values: np.ndarray, k: int = HISTOGRAM_BINS) -> np.ndarray:
    """[k, 3] float64 rows (left edge, right edge, count) for one array; see histogram_many."""
    return histogram_many([values], k)[0][0]


def histogram_many(arrays: list[np.ndarray], k: int = HISTOGRAM_BINS) -> tuple[np.ndarray, np.ndarray]:
    """Buckets of several arrays at once: ([n, k, 3] (left edge, right edge, count), [n, 3] (num,
    sum, sum of squares)). tf.summary.histogram's format and rule (tensorboard.plugins.histogram.
    summary_v2._buckets): k equal-width buckets over [min, max], bucket floor((x - min) / width)
    with the maximum clamped into the last; one distinct value v gives edges v and every count in
    the last bucket; no values gives zeros. Non-finite values are dropped (a diverged run must not
    die writing a histogram). Vectorised over the arrays: one histogram step writes ~24 of them."""
    flats = [finite_values(a).astype(np.float64, copy=False) for a in arrays]
    n = len(flats)
    sizes = np.array([f.size for f in flats])
    out, stats = np.zeros((n, k, 3)), np.zeros((n, 3))
    full = np.flatnonzero(sizes)
    if not full.size:
        return out, stats
    v = np.concatenate([flats[i] for i in full])
    starts = np.concatenate([[0], np.cumsum(sizes[full])[:-1]])
    lo, hi = np.minimum.reduceat(v, starts), np.maximum.reduceat(v, starts)
    seg = np.repeat(np.arange(full.size), sizes[full])
    width = np.where(hi > lo, (hi - lo) / k, 1.0)
    idx = np.floor((v - lo[seg]) / width[seg]).astype(np.intp)
    np.clip(idx, 0, k - 1, out=idx)
    counts = np.bincount(seg * k + idx, minlength=full.size * k).reshape(full.size, k).astype(np.float64)
    edges = lo[:, None] + (hi - lo)[:, None] * (np.arange(k + 1) / k)[None, :]
    edges[:, -1] = hi
    single = hi == lo
    edges[single] = hi[single, None]
    counts[single] = 0.0
    counts[single, -1] = sizes[full][single]
    out[full, :, 0], out[full, :, 1], out[full, :, 2] = edges[:, :-1], edges[:, 1:], counts
    stats[full, 0] = sizes[full]
    stats[full, 1] = np.add.reduceat(v, starts)
    stats[full, 2] = np.add.reduceat(v * v, starts)
    return out, stats


# --- accuracy of held steps ----------------------------------------------------------------------
def batch_accuracies(pred: np.ndarray, labels: np.ndarray, sizes: list[int]) -> list[float]:
    """accuracy/train of several held steps at once: `pred` the argmax of their concatenated logits
    (the first maximum wins a tie, in numpy, torch and TF alike), `labels` their concatenated
    targets, `sizes` each step's batch size; hits / batch size in float64. Computed at a flush: an
    argmax per step in the loop costs ~18 us."""
    correct = np.asarray(pred) == labels
    if len(set(sizes)) == 1:  # always, but for a spec whose batch is the whole set
        hits = np.count_nonzero(correct.reshape(len(sizes), sizes[0]), axis=1).tolist()
    else:
        ends = np.cumsum(sizes)
        hits = [np.count_nonzero(correct[e - n:e]) for e, n in zip(ends, sizes)]
    return [h / n for h, n in zip(hits, sizes)]


# --- optimizer description -----------------------------------------------------------------------
def describe_optimizer(spec: RunSpec, implementation: str, hyper_dtype: str, weight_decay_form: str,
                       eps: float | None = None) -> dict[str, Any]:
    """One dict shape for both frameworks; values say what really ran."""
    d: dict[str, Any] = {"name": spec.optimizer, "implementation": implementation, "lr": spec.lr,
                         "lr_schedule": "constant", "weight_decay": spec.weight_decay,
                         "weight_decay_form": weight_decay_form if spec.weight_decay else "none (weight_decay=0)",
                         "hyperparameter_dtype": hyper_dtype}
    if spec.optimizer == "sgd":
        d.update(momentum=spec.momentum, dampening=0.0, nesterov=False,
                 update="buf = momentum*buf + g; p -= lr*buf" if spec.momentum else "p -= lr*g")
    else:
        d.update(betas=[spec.beta1, spec.beta2], eps=spec.eps if eps is None else eps, amsgrad=False)
    return d


# --- embeddings ----------------------------------------------------------------------------------
def embedding_metadata(y_true: np.ndarray, outputs: np.ndarray, n_classes: int) -> list[list[str]]:
    """[label, prediction, correct] strings; regression: values with 4 digits and '-' for correct."""
    if n_classes:
        pred = outputs.argmax(axis=1)
        return [[str(int(t)), str(int(p)), str(bool(t == p)).lower()] for t, p in zip(y_true, pred)]
    return [[f"{float(t):.4g}", f"{float(p):.4g}", "-"] for t, p in zip(y_true.reshape(-1), outputs.reshape(-1))]


EMBEDDING_HEADER = ["label", "prediction", "correct"]


def export_embedding(framework: str, logdir, step: int, ds: data.Dataset, idx: np.ndarray,
                     features: np.ndarray, outputs: np.ndarray) -> None:
    """The projector export of the validation rows `idx`: penultimate-layer features, metadata rows
    from the outputs, sprite images for image data; through the optional export_embedding module."""
    rows = embedding_metadata(ds.y_val[idx], outputs, ds.n_classes)
    images = None if ds.image_shape is None else ds.x_val[idx].reshape(-1, *ds.image_shape)
    call_extension("export_embedding", "write", str(logdir), framework, step, features, rows,
                   EMBEDDING_HEADER, images)


# --- optional extensions (written by other modules) ----------------------------------------------
def extension(name: str):
    """trainers.export_graph / export_embedding when present, else None."""
    try:
        return __import__(f"trainers.{name}", fromlist=[name])
    except ImportError:
        return None


def call_extension(name: str, func: str, *args: Any) -> None:
    """An optional export must never end a training run: failures go to stderr only."""
    mod = extension(name)
    if mod is None or not hasattr(mod, func):
        return
    try:
        getattr(mod, func)(*args)
    except Exception as exc:  # noqa: BLE001 - reported, training continues
        print(f"warning: {name}.{func} failed: {type(exc).__name__}: {exc}", file=sys.stderr)


# --- the training loop ---------------------------------------------------------------------------
class Adapter(Protocol):
    """What a framework provides to ``train``. Handles returned by train_step stay framework tensors
    until a log step needs numbers, so steps that log nothing pay nothing."""

    def train_step(self, step: int, idx: np.ndarray, want_grads: bool, log: bool) -> Any: ...
    def write_fp64_loss(self, step: int, handle: Any) -> None: ...
    def write_train_scalars(self, step: int, handle: Any, perf: dict[str, float] | None) -> None: ...
    def write_histograms(self, step: int, handle: Any) -> None: ...
    def write_validation(self, step: int) -> None: ...
    def export_graph(self, x: np.ndarray, y: np.ndarray) -> None: ...
    def export_embedding(self, step: int) -> None: ...
    def close(self) -> None: ...


def train(spec: RunSpec, ds: data.Dataset, cadence: Cadence, adapter: Adapter, status: StatusFile) -> None:
    # Everything alive now (the framework's modules, the model) lives for the whole run: out of the
    # collector's sight, a full collection walks only what the loop made. Measured: without this,
    # the records held between two flushes trigger one every ~16 s that walks torch's ~10^5
    # objects for ~0.28 s.
    gc.collect()
    gc.freeze()
    try:
        _loop(spec, ds, cadence, adapter, status)
    finally:
        gc.unfreeze()  # back in the collector's sight (a process that goes on: the tests)


def _loop(spec: RunSpec, ds: data.Dataset, cadence: Cadence, adapter: Adapter, status: StatusFile) -> None:
    x_train, y_train = ds.x_train, ds.y_train
    fp64 = spec.dtype == "float64"
    clock = time.perf_counter
    spent, n_timed = 0.0, 0  # train-step wall time since the last perf point
    perf_at = clock()
    step = 0
    for step, _epoch, idx in data.batches(spec, len(x_train)):
        want_grads, log = cadence.is_histogram(step), cadence.is_log(step)
        t0 = clock()
        handle = adapter.train_step(step, idx, want_grads, log)  # the batch is x_train[idx], y_train[idx]
        spent += clock() - t0
        n_timed += 1
        status.step = step  # a failure is reported at the step it happened in
        if fp64:
            adapter.write_fp64_loss(step, handle)
        if log:
            perf = None
            if cadence.is_last(step) or clock() - perf_at >= PERF_EVERY_S:
                step_s = spent / n_timed
                perf = dict(zip(PERF_TAGS, (step_s * 1e3, len(idx) / step_s)))
                spent, n_timed, perf_at = 0.0, 0, clock()
            adapter.write_train_scalars(step, handle, perf)
            status.running(step)
        if want_grads:
            adapter.write_histograms(step, handle)
        if cadence.is_graph(step):
            adapter.export_graph(x_train[idx], y_train[idx])
        if cadence.is_validation(step):
            adapter.write_validation(step)
        if cadence.is_embedding(step):
            adapter.export_embedding(step)
    adapter.close()
    status.finished(step)


Body = Callable[[RunSpec, Paths, data.Dataset, Cadence, StatusFile], None]


def run_main(framework: str, body: Body, argv: list[str] | None = None) -> int:
    """Loads the data and the cadence, marks the run started and calls ``body``; the exit codes
    (spec errors 2, any other failure or SIGTERM 1) are ``runtime.run_guarded``'s."""

    def start(spec: RunSpec, paths: Paths, status: StatusFile) -> None:
        ds = data.load(spec)
        cadence = Cadence.from_spec(spec, len(ds.x_train))
        status.total_steps = cadence.total_steps
        paths.logdir.mkdir(parents=True, exist_ok=True)
        status.running(0, force=True)
        body(spec, paths, ds, cadence, status)

    return run_guarded(framework, start, argv)
