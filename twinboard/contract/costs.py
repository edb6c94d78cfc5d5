"""What a RunSpec costs as a whole, counted from its fields before anything runs, and the budgets
that bound it.

Each field has its own bounds (``twinboard.contract.spec``), but a run's cost is a product of
several fields, and fields each within their bounds can multiply past what the machine holds: eight
hidden layers of 4096, each width allowed, are 118M parameters. ``spec_costs`` counts, limit name by
limit name: the total steps (epochs x the steps an epoch that n_samples, val_fraction and batch_size
give, or ``steps``); the model's parameters; the activations of one forward pass (the larger of a
batch and the validation split, times the summed layer widths); and what the run writes (log points,
histograms, embedding values). It mirrors trainers.data (the split, steps an epoch), trainers.models
(the built-in models) and trainers.loop (the cadences); tests/test_limits.py and the
tests/test_models_* files check the counts against what those build.

Each amount is bounded because a visitor chooses it and it costs memory, CPU or disk: BUDGETS says
what a unit costs and holds its default limit (what fits the 2-core, 24 GB machine this was built
on) and its ceiling (the most an admin may raise it to: what the code survives); the total steps
answer to the ``steps`` field's limit. BUDGETS also caps two counts, the entries of ``hidden`` and
of ``embedding_steps``, which RunSpec checks as tuple lengths. RunSpec checks its costs against the
ceilings (``check_costs``) in every process that builds one, trainers included; the dashboard's side
also checks them against the admin's limits before a launch (``twinboard.contract.limits``, whose
docstring says why the trainers do not). What the spec alone does not tell is counted later: a
task=file data file's costs once its shape is read (``twinboard.contract.datafile``), a plugin
model's parameters by its trainers once they have built it.

Standard library only, and below ``spec``: RunSpec imports this module to check its costs, so this
one takes a RunSpec without importing it, and refuses through the spec's own ``_bad``.
"""
from __future__ import annotations

from dataclasses import dataclass
from types import MappingProxyType
from typing import TYPE_CHECKING, Mapping

if TYPE_CHECKING:
    from twinboard.contract.spec import RunSpec

# (samples, features, outputs) of each task as trainers/data.py builds it, for the budgets without
# numpy or sklearn; samples None means n_samples (spirals keeps the even part: two equal arms).
# tests/test_limits.py checks these against trainers.data and trainers.weights.
# text: n_samples windows of TEXT_WINDOW characters, next-character targets over at most TEXT_VOCAB
# symbols; file: unknown until the file is read (the trainers check the budgets once it is).
TEXT_WINDOW, TEXT_VOCAB = 32, 97  # trainers/text_data.py: unknown, newline, 95 printable ASCII
TASK_SHAPES = {"digits": (1797, 64, 10), "spirals": (None, 2, 2), "regression": (None, 8, 1),
               "text": (None, TEXT_WINDOW, TEXT_VOCAB)}
CNN_CONV_OUTPUTS = (8 * 64, 16 * 64)  # conv0, conv1 outputs a sample: 8 and 16 channels on 8x8, same padding
CNN_CONV_PARAMS = (8 * 1 * 9 + 8) + (16 * 8 * 9 + 16)  # 3x3 kernels plus biases
TRANSFORMER_LAYERS = 2  # the transformer's encoder layers (trainers/models/transformer.py)


@dataclass(frozen=True)
class Budget:
    """A limit on a count or a cost computed from several fields."""
    minimum: int  # the smallest sensible limit
    default: int  # the limit until an admin changes it: fits a 2-core, 24 GB machine
    ceiling: int  # the most an admin may set; RunSpec refuses more itself
    help: str


BUDGETS = MappingProxyType({
    "hidden_layers": Budget(1, 8, 32, "entries of hidden"),
    "embedding_exports": Budget(0, 100, 1000, "entries of embedding_steps"),
    # float64 with Adam holds 4 copies (weights, grads, 2 moments): 320 MB a trainer at 10M, two trainers.
    "parameters": Budget(1, 10_000_000, 100_000_000, "weights and biases of the model"),
    # Validation runs the whole split in one forward pass: 32M float64 values = 256 MB, about 3x in training.
    "activations": Budget(1, 32_000_000, 512_000_000,
                          "layer outputs of one forward pass: the larger of a batch and the validation split, "
                          "times the summed layer widths"),
    # tensorboardX writes them as TSV text, ~12 bytes a value, and the Embeddings page loads them.
    "embedding_values": Budget(1, 10_000_000, 100_000_000,
                               "exported embedding numbers: exports x samples x (features + outputs)"),
    # Each log point is ~5 scalar records (~350 bytes a framework) and ~7 DataFrame rows in the dashboard.
    "log_points": Budget(1, 200_000, 10_000_000, "train-scalar log steps: total steps / log_every"),
    "histograms": Budget(1, 200_000, 10_000_000, "histograms written (~1 KB each): histogram steps x 4 a layer"),
})


def model_costs(model: str, hidden: tuple[int, ...], n_features: int, n_outputs: int
                ) -> tuple[int, list[int], int] | None:
    """(parameters, layer outputs a sample, parameter tensors) of a built-in model; None for a plugin's
    (its trainers check the parameter ceiling once they have built it). Mirrors trainers/models/."""
    if model in ("cnn", "cnn_bn"):
        bn = model == "cnn_bn"  # convs without bias, each followed by BatchNorm (gamma, beta)
        params = sum(c_out * c_in * 9 + (2 * c_out if bn else c_out)
                     for c_in, c_out in ((1, 8), (8, 16)))
        # histograms: 2 a tensor; cnn_bn's running statistics get weights/ only: 16 = 2 x 8
        widths, tensors, fan, dense = [*CNN_CONV_OUTPUTS], 8 if bn else 4, CNN_CONV_OUTPUTS[-1], [hidden[-1]]
    elif model in ("gru", "lstm"):
        h, gates, rows = hidden[0], (3 if model == "gru" else 4), 8  # digits: 8 rows of 8 pixels
        params = gates * h * (n_features // rows + h) + 2 * gates * h  # torch's b_ih and b_hh
        widths, tensors, fan, dense = [rows * h * gates], 4, h, []
    elif model == "transformer":
        d, t = hidden[0], n_features  # d_model; n_features is the window length for task text
        per_layer = 4 * d * d + 4 * d + 2 * (d * 4 * d) + 4 * d + d + 4 * d  # attention, feed-forward, 2 norms
        params = n_outputs * d + t * d + TRANSFORMER_LAYERS * per_layer + 2 * d
        widths = [t * d * 12 * TRANSFORMER_LAYERS]  # q, k, v, attention, 4d feed-forward... a sample
        tensors, fan, dense = 2 + TRANSFORMER_LAYERS * 16 + 2, d, []  # query, key, value held apart
        n_outputs = n_outputs * t  # logits at every position
    elif model == "mlp":
        params, widths, tensors, fan, dense = 0, [], 0, n_features, list(hidden)
        widths = list(hidden)
    else:
        return None
    if model != "mlp":
        widths = widths + dense
    for w in [*dense, n_outputs if model != "transformer" else 0]:
        if w:
            params, fan, tensors = params + fan * w + w, w, tensors + 2
    if model == "transformer":
        params, tensors = params + d * (n_outputs // t) + n_outputs // t, tensors + 2  # the output head
    return params, widths + [n_outputs], tensors


def spec_costs(spec: RunSpec, shape: tuple[int, int, int] | None = None) -> dict[str, tuple[int, str, str]]:
    """What `spec` costs: limit name -> (amount, the field a refusal names, how the amount adds up).

    "steps" is the total a run takes, epochs included; the rest are BUDGETS. Mirrors trainers.data
    (split, steps a epoch), trainers.models (the models) and trainers.loop (cadence). `shape` is
    (samples, features, outputs) of a task=file data file, read by the caller; without it a file
    task costs nothing yet (the trainers check once they have read the file), and a plugin model's
    parameters are counted by its trainers."""
    if spec.task == "file" and shape is None:
        return {}
    samples, n_features, n_outputs = shape or TASK_SHAPES[spec.task]
    n = samples or (spec.n_samples // 2 * 2 if spec.task == "spirals" else spec.n_samples)
    n_val = max(1, int(round(n * spec.val_fraction))) if spec.task != "file" else 0
    n_train = n - n_val
    if spec.task == "file":  # a file brings its own split: samples is the training rows, n_val unknown
        n_val = 0
    if n_train < 1:
        blame = "val_fraction" if samples else "n_samples"
        raise spec._bad(blame, f"{n} samples with {n_val} held out for validation leave none to train on")
    per_epoch = max(1, n_train // spec.batch_size)
    total = spec.steps or spec.epochs * per_epoch
    hist_every = spec.histogram_every or max(1, per_epoch // 4)
    hist_points = total // hist_every + 1
    costs = {
        "steps": (total, "steps" if spec.steps else "epochs", f"{spec.epochs} epochs x {per_epoch} steps an epoch"),
        "log_points": (total // spec.log_every + 1, "log_every", f"{total} steps / log_every {spec.log_every}"),
    }
    built = model_costs(spec.model, spec.hidden, n_features, n_outputs)
    if built is None:
        return costs
    params, widths, tensors = built
    rows = max(min(spec.batch_size, n_train), n_val)
    row_source = ("batch_size" if spec.batch_size >= n_val else "n_samples" if not samples else "hidden")
    exports = len({s for s in spec.embedding_steps if 0 < s < total}) + 1  # the last step always exports
    emb_rows = min(spec.embedding_samples, n_val or spec.embedding_samples)
    emb_width = (spec.hidden[0] if spec.model in ("gru", "lstm", "transformer") else spec.hidden[-1]) + n_outputs
    costs.update({
        "parameters": (params, "hidden", "the model's weights and biases"),
        "activations": (rows * sum(widths), row_source,
                        f"{rows} rows in a forward pass x {sum(widths)} layer outputs"),
        "embedding_values": (exports * emb_rows * emb_width,
                             "embedding_steps" if spec.embedding_steps else "embedding_samples",
                             f"{exports} exports x {emb_rows} samples x {emb_width} values"),
        "histograms": (hist_points * 2 * tensors, "histogram_every",
                       f"{hist_points} histogram steps x {2 * tensors} histograms"),
    })
    return costs


def check_costs(spec: RunSpec, maxima: Mapping[str, float], note: str = "") -> None:
    """SpecError naming a field when what `spec` costs as a whole passes maxima (see spec_costs)."""
    for name, (amount, blame, how) in spec_costs(spec).items():
        if amount > maxima[name]:
            what = "steps" if name == "steps" else name.replace("_", " ")
            raise spec._bad(blame, f"{how} = {amount} {what}, more than the {maxima[name]} allowed{note}")
