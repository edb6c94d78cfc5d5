"""The TensorFlow trainer's train scalars: held in the loop, written by a thread through the run's
tf.summary writer.

loss/train, lr and accuracy/train (perf/* about once a second) are not written inside the
compiled train step: a log step's variant of it also returns its logits (~7 us), and the loop
holds (step, wall time, loss and logits tensors, batch) (~7 us). Every FLUSH_S a writer thread
(trainers.background) turns the held rows into numbers, accuracy/train included, encodes one event
a step holding that step's values (trainers.event_records: each value the bytes TensorFlow's
WriteSummary op writes for tf.summary.scalar, tested against it; several values in one event, as
TensorFlow's merged summaries are written) and hands the events to the run's tf.summary writer
with its ImportEvent op, which frames, queues and flushes them as its own.

The import is a compiled chain of ImportEvent ops without control flow, so it runs in the thread
that calls it; a loop, or a call from the training thread, takes the one inter-op thread the train
step runs on. Measured on the default MLP (docs/NOTES.md): written in the step, the three scalars
cost ~45 us a step (~13 us a WriteSummary op, the accuracy ops as much); held, the loop pays ~25 us
and the writer thread ~30 us of CPU a step beside it (make bench, bench/results/trainer_overhead.md). Each tag's records stay in step order, which
is what TensorBoard and Twinboard read by (a file_version 2 file is purged only at a SessionLog
START); the histograms of step s may come before its scalars in the file.
TensorFlow is the caller's: this module imports numpy only.
"""
from __future__ import annotations

import time
from typing import Any

import numpy as np

from trainers.background import WriterThread
from trainers.event_records import ScalarRows, encode_events
from trainers.loop import FLUSH_S
from trainers.summaries import batch_accuracies

IMPORT_SIZES = (64, 16, 4, 1)  # events one call of a compiled import takes, largest first


class HeldScalars:
    """A TF trainer's train scalars between two flushes; `hold` one log step's, `close` at the end."""

    def __init__(self, tf, writer, lr: float, y_train: np.ndarray | None):
        """`y_train`: the training labels for accuracy/train, None for a regression task."""
        resource = getattr(writer, "_resource", None)  # the writer's handle, as tf.summary.write uses it
        if resource is None:
            raise RuntimeError("this TensorFlow's tf.summary writer has no _resource to import events into")
        self.tf, self.writer, self.lr, self.y_train = tf, writer, lr, y_train
        self.rows = ScalarRows()
        self.acc = ("accuracy/train",) if y_train is not None else ()  # last: filled at the flush
        self.plain_id = self._ids(())

        def importer(k: int):
            # k serialized events back to back, cut apart in one op and imported in order: ops on
            # one resource run in program order (tf.function's automatic control dependencies)
            @tf.function(input_signature=[tf.TensorSpec([], tf.string), tf.TensorSpec([k], tf.int32)])
            def import_events(data, lengths):
                events = tf.strings.substr(data, tf.cumsum(lengths, exclusive=True), lengths)
                for event in tf.unstack(events, num=k):
                    tf.raw_ops.ImportEvent(writer=resource, event=event)
            return import_events.get_concrete_function()  # called directly: ~0.1 ms less a call

        self.importers = {k: importer(k) for k in IMPORT_SIZES}
        self.last_flush = time.time()
        self.thread = WriterThread(self._write, "writing the event file")
        self.closed = False

    def _ids(self, perf_tags: tuple[str, ...]) -> tuple[int]:
        """The event of one log step: loss/train, lr, the perf tags sampled (their dict's order), accuracy/train."""
        return self.rows.event_id(("loss/train", "lr", *perf_tags, *self.acc), "tf_float32")

    def hold(self, step: int, loss, out, idx: np.ndarray, perf: dict[str, float] | None) -> None:
        """One log step's loss (a tensor), logits (a tensor) and batch indices; perf/* when sampled."""
        values = [loss, self.lr, *(perf.values() if perf else ())]
        if self.y_train is not None:
            values.append(np.nan)
        self.rows.add(step, time.time(), self._ids(tuple(perf)) if perf else self.plain_id, values,
                      (out, idx) if self.y_train is not None else None)
        self.maybe_flush()

    def hold_values(self, step: int, tags: tuple[str, ...], values: list[float]) -> None:
        """Scalars known as numbers (perf/import_s, perf/first_step_s), in one event at `step`."""
        self.rows.add(step, time.time(), self.rows.event_id(tags, "tf_float32"), list(values))

    def maybe_flush(self) -> None:
        """Every FLUSH_S, what is held to the writer thread (nothing held: the writer's flush)."""
        if time.time() - self.last_flush >= FLUSH_S:
            self.last_flush = time.time()
            self.thread.submit(self.rows.take())

    def _write(self, rows) -> None:
        """On the writer thread: the rows as one event each, imported in the order they were held
        (calls of IMPORT_SIZES events), then the writer flushed."""
        if rows:
            for row in rows:  # the loss tensors as numbers; _numpy() is .numpy() without its copy
                if not isinstance(row[3][0], float):  # hold_values' rows hold numbers already
                    row[3][0] = row[3][0]._numpy()
            data, lengths = encode_events(*ScalarRows.columns(rows, self._accuracies), self.rows.layouts)
            ends = np.cumsum(lengths)
            at = 0
            while at < len(lengths):
                k = next(k for k in IMPORT_SIZES if k <= len(lengths) - at)
                start = int(ends[at - 1]) if at else 0
                self.importers[k](self.tf.constant(data[start:int(ends[at + k - 1])]),
                                  self.tf.constant(lengths[at:at + k].astype(np.int32)))
                at += k
        self.writer.flush()

    def _accuracies(self, held: list[tuple[Any, np.ndarray]]) -> list[float]:
        pred = np.argmax(np.concatenate([out._numpy() for out, _ in held]), axis=-1).reshape(-1)
        idx = [i for _, i in held]
        labels = self.y_train[np.concatenate(idx)]  # [n] classes, or [n, window] next characters (text)
        per_row = labels[0].size if labels.ndim > 1 else 1
        return batch_accuracies(pred, labels.reshape(-1), [len(i) * per_row for i in idx])

    def close(self) -> None:
        """Everything held, in the file; the thread stopped. Once (a second call does nothing)."""
        if self.closed:
            return
        self.closed = True
        try:
            self.thread.submit(self.rows.take())
            self.thread.wait()
        finally:
            self.thread.close()
