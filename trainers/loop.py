"""The training loop both trainers run, and its cadence: when each kind of record is written.

Framework code lives in ``torch_trainer.py`` / ``tf_trainer.py`` behind a small adapter (see
``Adapter``); everything that decides *when* something happens lives here, so the two frameworks
cannot drift apart in cadence. The command line, status.json and the exit codes are
``trainers.runtime``'s. This module imports numpy only: a bad spec is refused before the
seconds-long framework import.
"""
from __future__ import annotations

import gc
import time
from dataclasses import dataclass
from typing import Any, Callable, Protocol

import numpy as np

from trainers import data
from trainers.runtime import Paths, StatusFile, run_guarded
from trainers.timing import peak_rss_mb, timed_import
from twinboard.contract import RunSpec

FLUSH_S = 2  # event-file flush interval, both writers: curves stay live in the dashboard
# perf/step_ms and perf/samples_per_s: the mean train step since the previous perf point, written at
# the first log step this long after it (and at the last step); perf/rss_mb, the process's peak
# memory so far, with them. Time-sampled, as W&B samples its system metrics: one step's time is
# noise, and a point a step cost TF ~36 us a step (measured). Step 1 is left out of the step times
# (unless it is the only step): it holds the first call's tracing or compiling, which
# perf/first_step_s reports.
PERF_EVERY_S = 1.0
PERF_TAGS = ("perf/step_ms", "perf/samples_per_s", "perf/rss_mb")  # the perf dict's keys, in this order
# Written once, at step 1, by an adapter's first_step: seconds from the process start to the
# framework imported (timing.timed_import), and from the adapter's set-up (model, weights, tracing)
# to the end of step 1 (compiling included). The same in settings.json as import_s, first_step_s.
STARTUP_TAGS = ("perf/import_s", "perf/first_step_s")


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
    # Optional (a stand-in adapter that times nothing leaves it out): called once, after step 1,
    # with the perf_counter time step 1 ended; writes STARTUP_TAGS at step 1 and settings.json's
    # first_step_s. Its own cost stays out of the step times.
    # def first_step(self, ended: float) -> None: ...


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
    first_step = getattr(adapter, "first_step", None)
    spent, n_timed = 0.0, 0  # train-step wall time since the last perf point, from step 2 on
    first_s = 0.0  # step 1's own time: the step time of a one-step run
    perf_at = clock()
    step = 0
    for step, _epoch, idx in data.batches(spec, len(x_train)):
        want_grads, log = cadence.is_histogram(step), cadence.is_log(step)
        t0 = clock()
        handle = adapter.train_step(step, idx, want_grads, log)  # the batch is x_train[idx], y_train[idx]
        t1 = clock()
        if step > 1:
            spent += t1 - t0
            n_timed += 1
        else:
            first_s = t1 - t0
            if first_step is not None:
                first_step(t1)
            perf_at = clock()
        status.step = step  # a failure is reported at the step it happened in
        if fp64:
            adapter.write_fp64_loss(step, handle)
        if log:
            perf = None
            if (n_timed and clock() - perf_at >= PERF_EVERY_S) or cadence.is_last(step):
                step_s = spent / n_timed if n_timed else first_s
                perf = dict(zip(PERF_TAGS, (step_s * 1e3, len(idx) / step_s, peak_rss_mb())))
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


def run_main(framework: str, body: Body, argv: list[str] | None = None,
             load_framework: Callable[[], object] | None = None) -> int:
    """Marks the run started, imports the framework (`load_framework`, timed: timing.timed_import),
    loads the data and the cadence and calls ``body``; the exit codes (spec errors 2, any other
    failure or SIGTERM 1) are ``runtime.run_guarded``'s."""

    def start(spec: RunSpec, paths: Paths, status: StatusFile) -> None:
        paths.logdir.mkdir(parents=True, exist_ok=True)
        status.running(0, force=True)  # before the seconds-long import: the run is under way
        if load_framework is not None:  # first, so nothing else (sklearn's data) counts as import time
            timed_import(framework, load_framework)
        ds = data.load(spec, paths.run_dir)
        cadence = Cadence.from_spec(spec, len(ds.x_train))
        status.total_steps = cadence.total_steps
        status.running(0, force=True)
        body(spec, paths, ds, cadence, status)

    return run_guarded(framework, start, argv)
