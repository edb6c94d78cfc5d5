"""The TensorFlow trainer's compiled functions: the train step (three variants), the histogram
writer, validation and the embedding features, each a tf.function traced before step 1.

Measured here, a tf.function call costs ~0.3 ms of fixed dispatch plus ~70 us per tensor argument
(~160 us per numpy one), eager tf.summary.scalar ~0.5 ms and eager tf.summary.histogram ~18 ms: as
much as a whole MLP step. So the train step takes only the batch indices (the training split lives
in non-trainable variables, the step counter and Adam's per-step scalars in the graph) and
validation runs inside its own graph. TensorFlow is the caller's (`tf`) and tensorboard's plugins
are imported inside the functions: importing this module imports no framework.
"""
from __future__ import annotations

from dataclasses import dataclass
from typing import Any, Callable

from trainers import data, tf_optim
from trainers.summaries import HISTOGRAM_BINS
from trainers.weights import Layer
from twinboard.contract import RunSpec

VARIANTS = ("plain", "log", "hist")  # the loss; and the logits; and the weights and gradients


@dataclass(frozen=True)
class StepFunctions:
    """A run's compiled functions and the step counter they share."""
    train: dict[str, Any]  # variant -> tf.function(idx [batch] int64) -> (loss, logits, weights, grads)
    step_var: Any  # tf.Variable int64: the step the graph is at, 1-based once begun
    write_histograms: Any  # tf.function(step, buckets [n tags, HISTOGRAM_BINS, 3] float64)
    validate: Any  # tf.function(step): loss/val (and accuracy/val) of the whole validation split
    features: Any  # tf.function(x) -> (penultimate-layer features, outputs)

    def trace(self) -> None:
        """Before step 1, so compile time stays out of the step times."""
        for fn in (*self.train.values(), self.write_histograms, self.validate):
            fn.get_concrete_function()


def loss_function(tf, classify: bool) -> Callable:
    """Mean cross-entropy on logits (classification) or mean squared error, as the torch side."""
    def loss_of(y, out):
        if classify:
            return tf.reduce_mean(tf.nn.sparse_softmax_cross_entropy_with_logits(labels=y, logits=out))
        return tf.reduce_mean(tf.square(out - y))
    return loss_of


def build_train_step(tf, spec: RunSpec, ds: data.Dataset, model, kvars: list, total_steps: int,
                     loss_of: Callable, scalar_meta) -> tuple[dict[str, Any], Any]:
    """The train step, one tf.function per variant (VARIANTS) taking the batch indices alone, and the
    step counter it keeps. The optimizer is tf_optim's; the training split, the step and Adam's
    [lr/bc1, sqrt(bc2)] of every step live in non-trainable variables. With dtype=float64 every
    step writes loss/train_fp64 (a DT_DOUBLE tensor under the scalars plugin)."""
    opt, grad_vars = tf_optim.make_optimizer(spec, kvars, tf.as_dtype(spec.dtype))
    state = lambda value: tf.Variable(value, trainable=False)  # noqa: E731  (not a graph constant)
    x_all, y_all = state(ds.x_train), state(ds.y_train)
    step_var = state(tf.constant(0, tf.int64))  # the step the graph is at, 1-based once begun
    per_step = state(opt.scalar_table(total_steps))  # [total, 2] Adam's lr/bc1, sqrt(bc2)

    def step_body(idx, variant: str):
        step_var.assign_add(1)
        step = step_var.read_value()
        x, y = tf.gather(x_all, idx), tf.gather(y_all, idx)
        with tf.GradientTape() as tape:
            out = model(x, training=True)
            loss = loss_of(y, out)
        grads = tape.gradient(loss, grad_vars)
        opt.apply(grads, per_step[step - 1])
        if spec.dtype == "float64":  # every step: a DT_DOUBLE tensor under the scalars plugin
            tf.summary.write("loss/train_fp64", loss, step=step, metadata=scalar_meta)
        if variant == "hist":  # weights after this step's update, gradients of this step
            return loss, out, [tf.identity(v.value) for v in kvars], grads
        return loss, (out if variant == "log" else []), [], []

    sig = [tf.TensorSpec([min(spec.batch_size, len(ds.x_train))], tf.int64)]
    fns = {v: tf.function(lambda idx, v=v: step_body(idx, v), input_signature=sig) for v in VARIANTS}
    return fns, step_var


def build_histogram_writer(tf, hist_tags: list[str]):
    """Buckets come from numpy (summaries.histogram_many: tf.summary.histogram's rule, the same code
    as the torch side), written with the histograms plugin's metadata in one call: the records
    tf.summary.histogram writes. 12 tf.summary.histogram ops in a graph cost 2.7 s to trace + 1.5 s
    on the first call, per run."""
    from tensorboard.plugins.histogram import metadata as histogram_metadata

    hist_meta = histogram_metadata.create_summary_metadata(display_name="", description="")

    def write_histograms(step, buckets):
        for i, tag in enumerate(hist_tags):
            tf.summary.write(tag, buckets[i], step=step, metadata=hist_meta)

    return tf.function(write_histograms, input_signature=[
        tf.TensorSpec([], tf.int64), tf.TensorSpec([len(hist_tags), HISTOGRAM_BINS, 3], tf.float64)])


def build_validation(tf, model, ds: data.Dataset, loss_of: Callable, scalar_meta):
    """loss/val and (classification) accuracy/val of the whole validation split, in one graph."""
    classify = ds.n_classes > 0
    x_val, y_val = tf.constant(ds.x_val), tf.constant(ds.y_val)

    def scalar(tag, value, step):
        # tf.summary.scalar's record (float32 tensor, scalars plugin) without its name-scope
        # prefix: inside a tf.range loop the tag would become "while/<tag>".
        tf.summary.write(tag, tf.cast(value, tf.float32), step=step, metadata=scalar_meta)

    def accuracy(y, out, n):
        return tf.reduce_sum(tf.cast(tf.equal(tf.argmax(out, axis=1), y), tf.float64)) / n

    def write_scalars(prefix, step, y, out, loss, n):
        scalar(f"loss/{prefix}", loss, step)  # float32, as tensorboardX's simple_value
        if classify:
            scalar(f"accuracy/{prefix}", accuracy(y, out, n), step)

    @tf.function(input_signature=[tf.TensorSpec([], tf.int64)])
    def validate(step):
        out = model(x_val, training=False)
        write_scalars("val", step, y_val, out, loss_of(y_val, out), len(ds.y_val))

    return validate


def build_features(tf, model):
    """(penultimate-layer features, outputs) of a batch: what the embedding export writes."""
    @tf.function
    def features(x):
        h = x
        for lyr in model.layers[:-1]:
            h = lyr(h)
        return h, model.layers[-1](h)

    return features


def build_step_functions(tf, spec: RunSpec, ds: data.Dataset, model, layers: list[Layer],
                         total_steps: int) -> StepFunctions:
    """Every compiled function of a run (not traced yet: StepFunctions.trace)."""
    from tensorboard.plugins.scalar import metadata as scalar_metadata

    kvars = [v for layer in layers for v in (model.get_layer(layer.name).kernel, model.get_layer(layer.name).bias)]
    scalar_meta = scalar_metadata.create_summary_metadata(display_name="", description="")
    loss_of = loss_function(tf, ds.n_classes > 0)
    train, step_var = build_train_step(tf, spec, ds, model, kvars, total_steps, loss_of, scalar_meta)
    names = [f"{layer.name}/{part}" for layer in layers for part in ("kernel", "bias")]
    hist_tags = [f"{kind}/{name}" for kind in ("weights", "grads") for name in names]
    return StepFunctions(train, step_var, build_histogram_writer(tf, hist_tags),
                         build_validation(tf, model, ds, loss_of, scalar_meta), build_features(tf, model))
