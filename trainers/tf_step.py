"""The TensorFlow trainer's compiled functions: the train step (three variants), the histogram
writer, validation and the embedding features, each a tf.function traced before step 1.

The train step runs in RunSpec.tf_mode (MODE_NOTES): "function", one tf.function; "eager", the same
Python function called op by op; "xla", its arithmetic in a tf.function(jit_compile=True) that XLA
compiles on the first call, inside a plain tf.function that writes loss/train_fp64 (summary ops
have no XLA kernel). The same ops in the same order in every mode, so only the kernels' rounding
can differ. The histogram writer, validation and the features stay tf.functions in every mode:
they are logging, not the step being measured.

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
from trainers.models.base import ModelPair, Param, keras_variables
from twinboard.contract import RunSpec

VARIANTS = ("plain", "log", "hist")  # the loss; and the logits; and the weights and gradients
MODE_NOTES = {
    "function": "tf.function (graph, jit_compile=False): the train step traced once before step 1",
    "eager": ("eager TensorFlow: the train step's Python function called op by op, without tf.function; "
              "validation, histograms and embedding features stay tf.functions"),
    "xla": ("tf.function(jit_compile=True): the train step's arithmetic compiled by XLA on its first call "
            "(one cluster for every variant), loss/train_fp64 written by the tf.function around it"),
}
XLA_WHAT = "tf.function(jit_compile=True), XLA"


@dataclass(frozen=True)
class StepFunctions:
    """A run's compiled functions and the step counter they share."""
    train: dict[str, Any]  # variant -> (tf.function or, eager, plain function)(idx [batch] int64)
    #                         -> (loss, logits, weights, grads)
    graph_fn: Any  # a tf.function of the plain step, for the Graphs page: traced, never called
    step_var: Any  # tf.Variable int64: the step the graph is at, 1-based once begun
    write_histograms: Any  # tf.function(step, buckets [n tags, HISTOGRAM_BINS, 3] float64)
    validate: Any  # tf.function(step): loss/val (and accuracy/val) of the whole validation split
    features: Any  # tf.function(x) -> (penultimate-layer features, outputs)

    def trace(self) -> None:
        """Before step 1, so compile time stays out of the step times."""
        for fn in (*self.train.values(), self.write_histograms, self.validate):
            if hasattr(fn, "get_concrete_function"):  # eager mode's step is a plain function
                fn.get_concrete_function()


def loss_function(tf, classify: bool) -> Callable:
    """Mean cross-entropy on logits (classification) or mean squared error, as the torch side."""
    def loss_of(y, out):
        if classify:
            return tf.reduce_mean(tf.nn.sparse_softmax_cross_entropy_with_logits(labels=y, logits=out))
        return tf.reduce_mean(tf.square(out - y))
    return loss_of


def build_train_step(tf, spec: RunSpec, ds: data.Dataset, model, kvars: list, state_vars: list, total_steps: int,
                     loss_of: Callable, scalar_meta) -> tuple[dict[str, Any], Any, Any]:
    """The train step, one function per variant (VARIANTS) taking the batch indices alone, in
    spec.tf_mode; a tf.function of the plain one for the graph export; the step counter it keeps.
    The optimizer is tf_optim's; the training split, the step and Adam's [lr/bc1, sqrt(bc2)] of
    every step live in non-trainable variables. With dtype=float64 every step writes
    loss/train_fp64 (a DT_DOUBLE tensor under the scalars plugin). `kvars` are the trainable
    variables in the plan's order, `state_vars` the others the histograms show (BatchNorm's running
    statistics)."""
    opt, grad_vars = tf_optim.make_optimizer(spec, kvars, tf.as_dtype(spec.dtype))
    state = lambda value: tf.Variable(value, trainable=False)  # noqa: E731  (not a graph constant)
    x_all, y_all = state(ds.x_train), state(ds.y_train)
    step_var = state(tf.constant(0, tf.int64))  # the step the graph is at, 1-based once begun
    per_step = state(opt.scalar_table(total_steps))  # [total, 2] Adam's lr/bc1, sqrt(bc2)

    def arithmetic(idx, variant: str):
        step_var.assign_add(1)
        step = step_var.read_value()
        x, y = tf.gather(x_all, idx), tf.gather(y_all, idx)
        with tf.GradientTape() as tape:
            out = model(x, training=True)
            loss = loss_of(y, out)
        grads = [tf.convert_to_tensor(g) if isinstance(g, tf.IndexedSlices) else g  # an Embedding's rows
                 for g in tape.gradient(loss, grad_vars)]
        grads = opt.clip(grads)
        # A gather, not per_step[step - 1]: XLA needs a strided slice's bounds at compile time, so
        # the slice made the step number a constant and XLA compiled again every step (~1 s each).
        opt.apply(grads, tf.gather(per_step, step - 1))
        if variant == "hist":  # weights after this step's update, gradients of this step
            return step, loss, out, [tf.identity(v.value) for v in (*kvars, *state_vars)], grads
        return step, loss, (out if variant == "log" else []), [], []

    def finish(step, loss, out, weights, grads):
        if spec.dtype == "float64":  # every step: a DT_DOUBLE tensor under the scalars plugin
            tf.summary.write("loss/train_fp64", loss, step=step, metadata=scalar_meta)
        return loss, out, weights, grads

    def step_body(idx, variant: str):
        return finish(*arithmetic(idx, variant))

    sig = [tf.TensorSpec([min(spec.batch_size, len(ds.x_train))], tf.int64)]
    if spec.tf_mode == "eager":
        fns = {v: (lambda idx, v=v: step_body(idx, v)) for v in VARIANTS}
        # The Graphs page shows the same step traced (tracing runs no step: the variables stay as they are).
        return fns, tf.function(lambda idx: step_body(idx, "plain"), input_signature=sig), step_var
    if spec.tf_mode == "xla":
        # One XLA cluster for every variant, so it is compiled once, in step 1 (first_step_s), not
        # again at the first histogram step inside the step times; the variants pick its outputs
        # (the weights and gradients it returns every step: a copy of ~50 KB for the default MLP).
        inner = tf.function(lambda idx: arithmetic(idx, "hist"), input_signature=sig, jit_compile=True)

        def pick(idx, variant: str):
            step, loss, out, weights, grads = inner(idx)
            if variant != "hist":
                out, weights, grads = (out if variant == "log" else []), [], []
            return finish(step, loss, out, weights, grads)

        fns = {v: tf.function(lambda idx, v=v: pick(idx, v), input_signature=sig) for v in VARIANTS}
    else:
        fns = {v: tf.function(lambda idx, v=v: step_body(idx, v), input_signature=sig) for v in VARIANTS}
    return fns, fns["plain"], step_var


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
    """loss/val and (classification) accuracy/val of the whole validation split, in one graph, which
    returns the validation outputs."""
    classify = ds.n_classes > 0
    x_val, y_val = tf.constant(ds.x_val), tf.constant(ds.y_val)

    def scalar(tag, value, step):
        # tf.summary.scalar's record (float32 tensor, scalars plugin) without its name-scope
        # prefix: inside a tf.range loop the tag would become "while/<tag>".
        tf.summary.write(tag, tf.cast(value, tf.float32), step=step, metadata=scalar_meta)

    def accuracy(y, out):  # over every position for text ([N, window] targets)
        return tf.reduce_mean(tf.cast(tf.equal(tf.argmax(out, axis=-1), y), tf.float64))

    def write_scalars(prefix, step, y, out, loss):
        scalar(f"loss/{prefix}", loss, step)  # float32, as tensorboardX's simple_value
        if classify:
            scalar(f"accuracy/{prefix}", accuracy(y, out), step)
        if ds.y_val.ndim == 2:  # a language model: next-character perplexity
            scalar(f"perplexity/{prefix}", tf.exp(tf.cast(loss, tf.float64)), step)

    @tf.function(input_signature=[tf.TensorSpec([], tf.int64)])
    def validate(step):
        out = model(x_val, training=False)
        write_scalars("val", step, y_val, out, loss_of(y_val, out))
        return out  # the logits: trainers.evaluation's pictures, PR curves and predictions, from numpy

    return validate


def build_features(tf, pair: ModelPair, model):
    """(last hidden layer, outputs) of a batch, in inference mode: what the embedding export writes."""
    return tf.function(lambda x: pair.keras_features(model, x))


def build_step_functions(tf, spec: RunSpec, ds: data.Dataset, pair: ModelPair, model, params: list[Param],
                         total_steps: int) -> StepFunctions:
    """Every compiled function of a run (not traced yet: StepFunctions.trace)."""
    from tensorboard.plugins.scalar import metadata as scalar_metadata

    variables = keras_variables(model)
    kvars = [variables[p.keras] for p in params if p.trainable]
    state_vars = [variables[p.keras] for p in params if not p.trainable]
    scalar_meta = scalar_metadata.create_summary_metadata(display_name="", description="")
    loss_of = loss_function(tf, ds.n_classes > 0)
    train, graph_fn, step_var = build_train_step(tf, spec, ds, model, kvars, state_vars, total_steps, loss_of,
                                                 scalar_meta)
    # The step returns the weights of (trainable, then state) and the trainable ones' gradients.
    ordered = [p for p in params if p.trainable] + [p for p in params if not p.trainable]
    hist_tags = [f"weights/{p.tag}" for p in ordered] + [f"grads/{p.tag}" for p in params if p.trainable]
    return StepFunctions(train, graph_fn, step_var, build_histogram_writer(tf, hist_tags),
                         build_validation(tf, model, ds, loss_of, scalar_meta), build_features(tf, pair, model))
