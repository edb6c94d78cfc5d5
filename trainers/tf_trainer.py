"""TensorFlow side of a matched pair: `python -m trainers.tf_trainer RUN_DIR/spec.json [--logdir DIR]`.

Keras layers, a train step compiled with tf.function (eager TF is ~20x slower: an unfair race) or
run in RunSpec.tf_mode's other modes (eager, XLA: trainers.tf_step), and tf.summary. With
init=shared the optimizer is torch's arithmetic written out in TF (momentum buffer, Adam's bias
corrections in Python double and epsilon after the corrected sqrt), with every constant a tensor of
the run dtype: Keras would cast Python floats to float32 even in a float64 run.
With init=native, Keras' own initializers and optimizers with their defaults. Both optimizers are
trainers.tf_optim's; the compiled functions, trainers.tf_step's.
TensorFlow is imported after the spec is read (`load_framework`, timed), so a bad spec is refused
before the 6 s import.
"""
from __future__ import annotations

import os
import sys
import time
from contextlib import contextmanager
from typing import Any

import numpy as np

from trainers import data, hparams, tf_optim
from trainers.deploy import export_if_asked
from trainers.export_embedding import export_validation_rows
from trainers.export_graph import tf_graph
from trainers.loop import FLUSH_S, STARTUP_TAGS, Cadence, run_main, train
from trainers.runtime import Paths, StatusFile
from trainers.settings import common_settings, mode_settings, record_first_step, write_settings
from trainers.summaries import histogram_many
from trainers.tf_events import HeldScalars
from trainers.tf_step import MODE_NOTES, XLA_WHAT, build_step_functions
from trainers.timing import first_call, timed_import
from trainers import models
from trainers.models.base import ModelPair, Param, layer_rows, load_keras
from trainers.weights import apply_init
from twinboard.contract import RunSpec


def load_framework() -> None:
    """What import_s times: TensorFlow and Keras. Neither starts TensorFlow's runtime, so the thread
    pools can still be set afterwards (open_adapter)."""
    os.environ.setdefault("TF_CPP_MIN_LOG_LEVEL", "1")  # hide TF's INFO banner lines on stderr
    import keras  # noqa: F401
    import tensorflow  # noqa: F401


class TFAdapter:
    """Every record is written by a compiled function (trainers.tf_step: why, measured), and the
    train step takes one argument, the batch indices. Train scalars are held and written beside the
    loop by trainers.tf_events.HeldScalars."""

    def __init__(self, spec: RunSpec, ds: data.Dataset, cadence: Cadence, paths: Paths,
                 pair: ModelPair, params: list[Param], model, writer, settings: dict[str, Any], setup_at: float):
        import tensorflow as tf

        self.tf, self.spec, self.ds, self.paths, self.model, self.writer = tf, spec, ds, paths, model, writer
        self.settings, self.setup_at = settings, setup_at  # as written; first_step_s counts from setup_at
        self.fns = build_step_functions(tf, spec, ds, pair, model, params, cadence.total_steps)
        self.train_fn = self.fns.graph_fn  # the graph export traces this one
        self.held = HeldScalars(tf, writer, spec.lr, ds.y_train if ds.n_classes > 0 else None)
        self.emb_idx = data.embedding_indices(spec, ds)
        # Trace before step 1, so compile time stays out of the step times (HeldScalars traces its
        # imports; their first calls, 7-18 ms each to instantiate, run on its writer thread).
        self.fns.trace()

    # -- records --
    def train_step(self, step: int, idx: np.ndarray, want_grads: bool, log: bool):
        fn = self.fns.train["hist" if want_grads else "log" if log else "plain"]
        # (loss, logits, weights, gradients, the batch: for accuracy/train at the flush); a tensor
        # argument: a numpy one costs ~90 us more per call
        if step == 1 and self.spec.tf_mode == "xla":  # XLA compiles here: a failure is the mode's
            return (*first_call("tf_mode", "xla", XLA_WHAT, lambda: fn(self.tf.constant(idx))), idx)
        return (*fn(self.tf.constant(idx)), idx)

    def first_step(self, ended: float) -> None:
        """perf/import_s and perf/first_step_s at step 1, and settings.json's first_step_s (loop.STARTUP_TAGS)."""
        first_s = ended - self.setup_at
        self.held.hold_values(1, STARTUP_TAGS, [self.settings["import_s"], first_s])
        self.settings = record_first_step(self.paths.logdir, self.settings, first_s)

    def write_fp64_loss(self, step: int, handle) -> None:
        pass  # written inside the compiled train step

    def write_train_scalars(self, step: int, handle, perf: dict[str, float] | None) -> None:
        self.held.hold(step, handle[0], handle[1], handle[4], perf)

    def write_histograms(self, step: int, handle) -> None:
        arrays = [t.numpy() for t in (*handle[2], *handle[3])]  # weights, then gradients
        buckets = histogram_many(arrays)[0]
        self.fns.write_histograms(self.tf.constant(step, self.tf.int64), self.tf.constant(buckets))
        self.held.maybe_flush()

    def write_validation(self, step: int) -> None:
        out = self.fns.validate(np.int64(step))
        if self.ds.n_classes > 0:  # pictures, PR curves, predictions (trainers.evaluation)
            if not hasattr(self, "evaluation"):
                from trainers.eval_writers import tf_hook
                self.evaluation = tf_hook(self)
            self.evaluation.submit(step, out.numpy())
        self.held.maybe_flush()

    def export_graph(self, x: np.ndarray, y: np.ndarray) -> None:
        # One event file per run: see export_graph. A failure warns; the run goes on.
        tf_graph(str(self.paths.logdir), self.model, x, self.train_fn, self.writer)

    def export_embedding(self, step: int) -> None:
        features, outputs = self.fns.features(self.tf.constant(self.ds.x_val[self.emb_idx]))
        export_validation_rows("tensorflow", self.paths.logdir, step, self.ds, self.emb_idx,
                               features.numpy(), outputs.numpy())

    def close(self) -> None:
        self.held.close()  # once: open_adapter calls it again after a failure

    def background_s(self) -> float:
        return self.held.thread.busy_s

    def check_step(self, step: int) -> None:
        if int(self.fns.step_var.numpy()) != step:  # the graph counts steps itself; they must agree
            raise RuntimeError(f"graph step {int(self.fns.step_var.numpy())} != loop step {step}")


def describe_layers(model, params: list[Param]) -> list[dict[str, Any]]:
    """One row a layer of the plan: Keras' type and output shape for the layer of that name."""
    types, shapes = {}, {}
    for layer in dict.fromkeys(p.layer for p in params):
        try:
            lyr = model.get_layer(layer)
        except ValueError:  # a plugin's nested layer: its tensors are in the plan, the row says "?"
            continue
        cell = getattr(lyr, "cell", None)  # keras.layers.RNN around a cell: the cell says which (TorchLSTMCell)
        types[layer] = f"RNN({type(cell).__name__})" if type(lyr).__name__ == "RNN" and cell is not None \
            else type(lyr).__name__
        try:
            out = lyr.output
            shapes[layer] = list((out[0] if isinstance(out, (list, tuple)) else out).shape)
        except (AttributeError, ValueError):
            pass
    return layer_rows(params, types, shapes)


def settings(spec: RunSpec, ds: data.Dataset, cadence: Cadence, pair: ModelPair, model, params: list[Param],
             init_desc: str, init_sha: str | None) -> dict[str, Any]:
    import tensorboard
    import tensorflow as tf

    opt = tf_optim.describe(spec)
    onednn = os.environ.get("TF_ENABLE_ONEDNN_OPTS", "")
    rows = describe_layers(model, params)
    return dict(
        common_settings(spec, cadence, ds),
        framework="tensorflow", framework_version=tf.__version__,
        logger=(f"tf.summary (tensorboard {tensorboard.__version__}); train scalars held and imported into "
                "its writer every flush (ImportEvent)"),
        **mode_settings(spec.tf_mode, spec.tf_mode, MODE_NOTES[spec.tf_mode],
                        timed_import("tensorflow", load_framework)),
        device="cpu",
        threads={"intra_op": tf.config.threading.get_intra_op_parallelism_threads(),
                 "inter_op": tf.config.threading.get_inter_op_parallelism_threads()},
        math_library="Eigen" + ("" if onednn == "0" else " + oneDNN custom ops (TF_ENABLE_ONEDNN_OPTS)"),
        init=init_desc, init_sha256=init_sha, optimizer=opt,
        loss={"function": "cross_entropy on logits" if ds.n_classes else "mean squared error",
              "reduction": "mean",
              "implementation": ("tf.nn.sparse_softmax_cross_entropy_with_logits + tf.reduce_mean"
                                 if ds.n_classes else "tf.reduce_mean(tf.square(out - y))")},
        clip_norm=tf_optim.describe_clip(spec),
        layers=rows, total_params=sum(r["params"] for r in rows),
        data_layout=pair.layout[1], **pair.settings("tensorflow", spec),
    )


@contextmanager
def open_adapter(spec: RunSpec, paths: Paths, ds: data.Dataset, cadence: Cadence):
    """Model, shared or native weights, settings.json and the default tf.summary writer, as the
    TFAdapter (its functions traced) that trainers.loop.train drives; the writer is closed on the way out."""
    timed_import("tensorflow", load_framework)  # already imported under run_main; timed here otherwise
    setup_at = time.perf_counter()  # first_step_s: from here to the end of step 1
    import tensorflow as tf

    # Before TensorFlow's runtime starts: the thread pools are fixed at first use (a second run in
    # the same process, as the tests do, keeps them when they already match).
    threading = tf.config.threading
    if threading.get_intra_op_parallelism_threads() != spec.threads:
        threading.set_intra_op_parallelism_threads(spec.threads)
    if threading.get_inter_op_parallelism_threads() != spec.threads:
        threading.set_inter_op_parallelism_threads(spec.threads)
    import keras

    keras.config.set_floatx(spec.dtype)
    keras.utils.set_random_seed(spec.seed)  # native init: glorot_uniform kernels from this seed
    pair, params = models.plan(spec, ds.n_features, ds.n_outputs, paths.run_dir, "tensorflow")
    model = pair.keras_model(spec, ds.n_features, ds.n_outputs)
    init_desc, init_sha = apply_init(spec, params, paths.run_dir, lambda arrays: load_keras(model, params, arrays),
                                     f"native: {pair.native_init[1]}", getattr(pair, "shared_init_desc", None))
    paths.logdir.mkdir(parents=True, exist_ok=True)
    described = write_settings(paths.logdir, **settings(spec, ds, cadence, pair, model, params, init_desc, init_sha))
    # The C++ writer flushes in the op that writes, whenever max_queue events wait or flush_millis
    # has passed, and every flush ends in an fsync: by time only (every FLUSH_S), not every 333
    # steps at log_every=1 as max_queue=1000 did (10, the default, every fourth step).
    writer = tf.summary.create_file_writer(str(paths.logdir), max_queue=1_000_000,
                                           flush_millis=FLUSH_S * 1000)
    try:
        with writer.as_default():
            hparams.tf_session_start(spec, paths.run_dir)  # TensorBoard's HParams dashboard
            adapter = TFAdapter(spec, ds, cadence, paths, pair, params, model, writer, described, setup_at)
            try:
                yield adapter
            finally:  # a run that failed keeps the scalars it logged before the failure
                try:
                    adapter.close()
                except Exception as exc:  # noqa: BLE001 - the failure being raised matters more
                    print(f"warning: held scalars not written: {type(exc).__name__}: {exc}", file=sys.stderr)
    finally:
        writer.close()


def _run(spec: RunSpec, paths: Paths, ds: data.Dataset, cadence: Cadence,
         status: StatusFile) -> None:
    with open_adapter(spec, paths, ds, cadence) as adapter:
        train(spec, ds, cadence, adapter, status)
        adapter.check_step(cadence.total_steps)
        hparams.tf_session_end("success")
    export_if_asked("tensorflow", spec, paths.run_dir, ds, adapter.model)


def main(argv: list[str] | None = None) -> int:
    return run_main("tensorflow", _run, argv, load_framework)


if __name__ == "__main__":
    sys.exit(main())
