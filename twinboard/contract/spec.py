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
BUDGETS (``twinboard.contract.costs``, which counts it). DEFAULT_LIMITS and CEILINGS hold both
kinds of limit by name. RunSpec itself enforces the ceilings, on its fields and its costs, in every
process that builds one, trainers included; the dashboard also checks the admin's limits
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

from twinboard.contract.costs import BUDGETS, check_costs

TASKS = ("digits", "spirals", "regression", "text", "file")
# Built-in model pairs (trainers/models/). Any other name is a model plugin's: a file <name>.py in the
# model folder (twinboard.contract.files.MODEL_DIR), found and checked by the launcher and trainers.
MODELS = ("mlp", "cnn", "cnn_bn", "gru", "lstm", "transformer")
IMAGE_MODELS = ("cnn", "cnn_bn", "gru", "lstm")  # read digits' 8x8 pixels as an image or as 8 rows
TEXT_MODELS = ("transformer",)
TRANSFORMER_HEADS = 2  # the transformer's attention heads: hidden[0] must divide by it (trainers/models/)
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
        """bad_value for this spec's field `name`; twinboard.contract.costs refuses through it too."""
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
