"""RunSpec: the one training config both trainers read, saved with every run.

Frozen, JSON round-trip, validated at construction with messages that name the bad field and
value. The launcher writes it to ``<run>/spec.json``; ``python -m trainers.torch_trainer`` and
``python -m trainers.tf_trainer`` both read that same file. The CLI builds one flag per field from
``dataclasses.fields(RunSpec)`` and the Launch form one widget, each with the field's help text
from its metadata, so a new field needs no new plumbing.

Every number is bounded, because a visitor chooses it and it costs memory, CPU or disk. A field's
metadata holds its ``minimum``, its ``maximum`` (the default limit: what fits the 2-core, 24 GB
machine this was built on) and its ``ceiling`` (the most an admin may raise the limit to). What a
spec costs as a whole (parameters, activations, steps, records written) is bounded the same way by
BUDGETS, computed from several fields by ``spec_costs``. RunSpec itself enforces the ceilings, in
every process that builds one, trainers included; the dashboard also checks the admin's limits
(``twinboard.contract.limits``, whose docstring says why the trainers do not).
"""
from __future__ import annotations

import dataclasses
import json
import os
import re
from dataclasses import dataclass, field
from pathlib import Path
from types import MappingProxyType
from typing import Any, Mapping

TASKS = ("digits", "spirals", "regression", "text", "file")
# Built-in model pairs (trainers/models/). Any other name is a model plugin's: a file <name>.py in the
# model folder (twinboard.contract.files.MODEL_DIR), found and checked by the launcher and trainers.
MODELS = ("mlp", "cnn", "cnn_bn", "gru", "lstm", "transformer")
IMAGE_MODELS = ("cnn", "cnn_bn", "gru", "lstm")  # read digits' 8x8 pixels as an image or as 8 rows
TEXT_MODELS = ("transformer",)
NAME_RE = r"[a-z][a-z0-9_]{0,39}"  # a plugin model's name: a Python module name
DATA_NAME_RE = r"[A-Za-z0-9][A-Za-z0-9._-]{0,99}\.(npz|csv)"  # a data file's name in the data folder
OPTIMIZERS = ("sgd", "adam")
INITS = ("shared", "native")
DTYPES = ("float32", "float64")
# How each trainer runs its train step (trainers/torch_trainer.py, trainers/tf_step.py). The defaults
# are each framework's everyday fast mode: eager TensorFlow is ~20x slower than a tf.function
# (measured), an unfair race unless that is what is being measured.
TORCH_MODES = ("eager", "compile")
TF_MODES = ("function", "eager", "xla")

MAX_SPEC_BYTES = 64 * 1024  # spec.json read cap: a real one is under 3 KB, 100 embedding steps included

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
TRANSFORMER_LAYERS, TRANSFORMER_HEADS = 2, 2  # the transformer's encoder layers and heads (trainers/models/)


class SpecError(ValueError):
    """A RunSpec field holds a value it may not hold; the message names field and value.

    `field`, `value` and `why` let each front end name the field its own way (`--lr` on the command
    line, the form's label on the Launch page); None when the problem is not one field's."""

    def __init__(self, message: str, field: str | None = None, value: Any = None, why: str | None = None):
        super().__init__(message)
        self.field, self.value, self.why = field, value, why or message


def _show(value: Any) -> str:
    """repr, cut short: a message must not grow with what a visitor sent (nor take long to write)."""
    if isinstance(value, (list, tuple, str)) and len(value) > 200:
        value = value[:200]
    text = repr(value)
    return text if len(text) <= 200 else text[:200] + "..."


def _field(default: Any, help: str, minimum: float | None = None, maximum: float | None = None,
           ceiling: float | None = None, open: str = "", items: str | None = None) -> Any:
    """A RunSpec field with its help text and bounds in the dataclass metadata.

    minimum/maximum bound the value (each item of a tuple); maximum is the default limit and
    ceiling (maximum when None) the most an admin may set it to. open: "min", "max" or "minmax",
    the ends that are excluded ((0, 10) for lr). items: the BUDGETS entry that caps a tuple's length."""
    meta: dict[str, Any] = {"help": help}
    if maximum is not None:
        meta.update(minimum=minimum, maximum=maximum, ceiling=maximum if ceiling is None else ceiling, open=open)
    if items is not None:
        meta["items"] = items
    return field(default=default, metadata=meta)


def bad_value(name: str, value: Any, why: str) -> SpecError:
    """The SpecError for field `name` holding `value`: `RunSpec.lr=20: must be in (0, 10)`."""
    return SpecError(f"RunSpec.{name}={_show(value)}: {why}", name, value, why)


def field_help(name: str) -> str:
    """The help text of RunSpec field `name` ('' for an unknown name)."""
    return next((f.metadata.get("help", "") for f in dataclasses.fields(RunSpec) if f.name == name), "")


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


@dataclass(frozen=True)
class RunSpec:
    task: str = _field("digits",
                       "digits: sklearn's bundled 8x8 digits (10 classes); spirals: 2-class synthetic; regression: synthetic y = f(x) + noise")
    model: str = _field("mlp", "mlp: Dense/Linear stack; cnn: two 3x3 convs + dense head (digits only, images 1x8x8)")
    hidden: tuple[int, ...] = _field((64, 32), "MLP hidden widths (the CNN uses hidden[-1] for its dense layer)",
                                     1, 4096, 16384, items="hidden_layers")
    optimizer: str = _field("sgd", "sgd (with momentum, torch's convention buf = mu*buf + g) or adam")
    lr: float = _field(0.05, "learning rate, constant", 0, 10, open="minmax")
    momentum: float = _field(0.9, "SGD momentum; 0 for plain SGD", 0, 1, open="max")
    beta1: float = _field(0.9, "Adam first-moment decay", 0, 1, open="max")
    beta2: float = _field(0.999, "Adam second-moment decay", 0, 1, open="max")
    eps: float = _field(1e-8, "Adam epsilon, torch's placement (sqrt(v_hat) + eps); used on both sides when init=shared",
                        0, 1, open="minmax")
    # Coupled L2: lr * weight_decay >= 1 zeroes or flips the weights every step; 1 is already extreme.
    weight_decay: float = _field(0.0, "L2 added to the gradient (torch's coupled form), both sides", 0, 1)
    batch_size: int = _field(32, "samples per step; the last short batch of an epoch is dropped", 1, 4096, 65536)
    epochs: int = _field(10, "passes over the training split", 0, 1000, 100_000)
    steps: int = _field(0, "when > 0, stop after this many steps (may end mid-epoch); 0 = run all epochs",
                        0, 1_000_000, 10_000_000)
    # 32 bits: numpy, torch and TensorFlow all take it as is, so the seed means the same on both sides.
    seed: int = _field(0, "seeds the split, the batch order and the shared initial weights", 0, 2**32 - 1)
    log_every: int = _field(10, "write train scalars every N steps (1 = every step)", 1, 1_000_000, 10_000_000)
    histogram_every: int = _field(0, "write weight/grad histograms every N steps; 0 = four times per epoch",
                                  0, 1_000_000, 10_000_000)
    embedding_steps: tuple[int, ...] = _field((), "steps at which to export embeddings besides the final one",
                                              0, 1_000_000, 10_000_000, items="embedding_exports")
    embedding_samples: int = _field(256, "fixed validation subset exported as embeddings (first N of the val split)",
                                    1, 5000, 100_000)
    val_fraction: float = _field(0.2, "share of samples held out for validation, chosen from the seed", 0, 1,
                                 open="minmax")
    n_samples: int = _field(1000, "samples generated for the synthetic tasks (spirals, regression)",
                            1, 1_000_000, 10_000_000)
    init: str = _field("shared",
                       "shared: one set of initial weights from the seed, loaded by both; native: each framework's own defaults")
    dtype: str = _field("float32", "float32 or float64, both trainers")
    # A fixed number, not os.cpu_count(): a spec must mean the same on the dashboard's host and on the
    # trainer's (a cluster node), and in a container cpu_count() is the host's, not the quota. Past 64
    # a thread pool costs stacks and arenas on any CPU this targets; 8 already oversubscribes 2 cores.
    threads: int = _field(1, "intra- and inter-op threads per trainer (a pair on 2 cores shares them fairly)",
                          1, 8, 64)
    torch_mode: str = _field("eager", "PyTorch train step: eager (op by op) or compile (torch.compile, default "
                                      "backend inductor: a C++ compiler, ~20 s on the first step)")
    tf_mode: str = _field("function", "TensorFlow train step: function (tf.function graph), eager (the same "
                                      "Python step op by op, ~20x slower) or xla (tf.function(jit_compile=True))")
    clip_norm: float = _field(0.0, "clip the gradients' global L2 norm to this before each update (torch's "
                                   "clip_grad_norm_); 0 = off. init=native: TensorFlow uses Keras' clipnorm, "
                                   "which clips each variable on its own", 0, 1e6)
    data: str = _field("", "task=file: the data file's name in the logdir's data/ folder: a .npz with x_train, "
                           "y_train, x_val, y_val, or a .csv with a target column")
    target: str = _field("", "task=file with a .csv: the name of the target column (the others are features)")
    export: bool = _field(False, "after training, export the model in each framework's deployment formats and "
                                 "measure them (<run>/<framework>/export/deploy.json)")

    def __post_init__(self) -> None:
        # JSON gives lists; the dataclass is frozen and hashable, so store tuples.
        for name in ("hidden", "embedding_steps"):
            value = getattr(self, name)
            if isinstance(value, (list, tuple)):
                object.__setattr__(self, name, tuple(value))
        self._validate()

    def _bad(self, name: str, why: str) -> SpecError:
        return bad_value(name, getattr(self, name), why)

    def _validate(self) -> None:
        for name, allowed in (("task", TASKS), ("optimizer", OPTIMIZERS),
                              ("init", INITS), ("dtype", DTYPES), ("torch_mode", TORCH_MODES),
                              ("tf_mode", TF_MODES)):
            if getattr(self, name) not in allowed:
                raise self._bad(name, f"must be one of {', '.join(allowed)}")
        for f in dataclasses.fields(self):
            value = getattr(self, f.name)
            if f.type in ("int", "float") and (isinstance(value, bool) or not isinstance(value, (int, float))):
                raise self._bad(f.name, "must be a number")
            if f.type == "int" and not isinstance(value, int):
                raise self._bad(f.name, "must be a whole number")
        for name, least, words in (("hidden", 1, "one or more positive"), ("embedding_steps", 0, "non-negative")):
            value, most = getattr(self, name), CEILINGS[_FIELDS[name].metadata["items"]]
            if isinstance(value, tuple) and len(value) > most:  # before looking at a million items
                raise self._bad(name, f"at most {most} values")
            if (not isinstance(value, tuple) or (least and not value)
                    or any(isinstance(v, bool) or not isinstance(v, int) or v < least for v in value)):
                raise self._bad(name, f"must be {words} whole numbers")
        check_fields({f.name: getattr(self, f.name) for f in dataclasses.fields(self)}, CEILINGS)
        if self.epochs == 0 and self.steps == 0:
            raise self._bad("epochs", "epochs and steps cannot both be 0")
        self._validate_names()
        check_costs(self, CEILINGS)

    def _validate_names(self) -> None:
        if self.model not in MODELS and not re.fullmatch(NAME_RE, self.model):
            raise self._bad("model", f"must be one of {', '.join(MODELS)} or a model plugin's name "
                                     "(lower-case letters, digits and _, at most 40)")
        if self.model in IMAGE_MODELS and self.task != "digits":
            raise self._bad("model", f"{self.model} needs image input; task {self.task!r} has none (use task=digits)")
        if self.model == "transformer" and self.hidden[0] % TRANSFORMER_HEADS:
            raise self._bad("hidden", f"the transformer's width hidden[0] must be a multiple of its "
                                      f"{TRANSFORMER_HEADS} attention heads")
        if (self.model in TEXT_MODELS) != (self.task == "text"):
            raise self._bad("model" if self.model in TEXT_MODELS else "task",
                            "task text takes the transformer model, and the transformer takes task text")
        if not isinstance(self.export, bool):
            raise self._bad("export", "must be true or false")
        for name in ("data", "target"):
            if not isinstance(getattr(self, name), str):
                raise self._bad(name, "must be text")
        if self.task == "file":
            if not re.fullmatch(DATA_NAME_RE, self.data):
                raise self._bad("data", "task file needs the name of a .npz or .csv file in the data folder "
                                        "(letters, digits, . _ -, at most 100)")
            if self.data.endswith(".csv") and not (0 < len(self.target) <= 100 and self.target.isprintable()):
                raise self._bad("target", "a .csv needs the name of its target column (at most 100 characters)")
        elif self.data or self.target:
            raise self._bad("data" if self.data else "target", "only task file reads a data file")

    # --- JSON round-trip -------------------------------------------------------------------------
    def to_dict(self) -> dict[str, Any]:
        d = dataclasses.asdict(self)
        return {k: list(v) if isinstance(v, tuple) else v for k, v in d.items()}

    def to_json(self) -> str:
        return json.dumps(self.to_dict(), indent=2, sort_keys=True)

    @classmethod
    def from_dict(cls, d: dict[str, Any]) -> "RunSpec":
        if not isinstance(d, dict):
            raise SpecError(f"a RunSpec is a JSON object, not {type(d).__name__}")
        known = {f.name for f in dataclasses.fields(cls)}
        unknown = sorted(set(d) - known)
        if unknown:
            raise SpecError(f"RunSpec has no field {', '.join(map(_show, unknown[:5]))}", unknown[0], d[unknown[0]],
                            "no such field")
        return cls(**d)

    @classmethod
    def from_json(cls, text: str) -> "RunSpec":
        try:
            data = json.loads(text)
        except (ValueError, RecursionError) as exc:  # RecursionError: "[[[[..." nested past the stack
            raise SpecError(f"not valid JSON: {str(exc)[:200]}") from None
        return cls.from_dict(data)

    def save(self, path: str | Path) -> None:
        Path(path).write_text(self.to_json() + "\n")

    @classmethod
    def load(cls, path: str | Path) -> "RunSpec":
        """The spec in `path`; SpecError past MAX_SPEC_BYTES, read no further than that (OSError propagates)."""
        with open(path, "rb") as f:
            if os.fstat(f.fileno()).st_size > MAX_SPEC_BYTES:
                raise SpecError(f"{path}: {os.fstat(f.fileno()).st_size} bytes, more than a spec.json may "
                                f"have ({MAX_SPEC_BYTES})")
            data = f.read(MAX_SPEC_BYTES + 1)  # a pipe or a growing file has no honest size
        if len(data) > MAX_SPEC_BYTES:
            raise SpecError(f"{path}: more than a spec.json may have ({MAX_SPEC_BYTES} bytes)")
        try:
            text = data.decode("utf-8")
        except UnicodeDecodeError as exc:
            raise SpecError(f"{path}: not UTF-8 text ({exc})") from None
        return cls.from_json(text)

    def replace(self, **changes: Any) -> "RunSpec":
        return dataclasses.replace(self, **changes)


# --- bounds ----------------------------------------------------------------------------------------
def _limits(key: str) -> Mapping[str, float]:
    table = {f.name: f.metadata[key] for f in dataclasses.fields(RunSpec) if key in f.metadata}
    table.update({name: getattr(b, "default" if key == "maximum" else "ceiling") for name, b in BUDGETS.items()})
    return MappingProxyType(table)


_FIELDS = {f.name: f for f in dataclasses.fields(RunSpec)}
DEFAULT_LIMITS = _limits("maximum")  # limit name -> the maximum until an admin changes it
CEILINGS = _limits("ceiling")  # limit name -> the most it may ever be; what RunSpec enforces


def check_fields(values: Mapping[str, Any], maxima: Mapping[str, float], note: str = "") -> None:
    """SpecError for the first number in `values` (field name -> value, of the right types) outside
    [minimum, maxima[name]]; a tuple's length against maxima[items] first, then each item. Fields
    `values` lacks are skipped. `note` says whose limits they are."""
    for name, value in values.items():
        meta = _FIELDS[name].metadata
        if "maximum" not in meta:
            continue
        limit, is_float = maxima[name], _FIELDS[name].type == "float"
        if "items" in meta and len(value) > maxima[meta["items"]]:
            raise bad_value(name, value, f"at most {maxima[meta['items']]} values{note}")
        lo_open = "min" in meta["open"]
        hi_open = "max" in meta["open"] and limit == meta["ceiling"]  # an admin's lower limit is inclusive
        for v in value if isinstance(value, tuple) else (value,):
            # Written so that NaN fails every comparison and is refused.
            if (v > meta["minimum"] if lo_open else v >= meta["minimum"]) and (v < limit if hi_open else v <= limit):
                continue
            each = "each value " if isinstance(value, tuple) else ""
            if is_float:
                interval = f"{'(' if lo_open else '['}{meta['minimum']:g}, {limit:g}{')' if hi_open else ']'}"
                raise bad_value(name, value, f"{each}must be in {interval}{note}")
            if v < meta["minimum"]:
                raise bad_value(name, value, f"{each}must be >= {meta['minimum']}")
            raise bad_value(name, value, f"{each}must be <= {limit}{note}")


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
