"""RunSpec: the one training config both trainers read, saved with every run.

Frozen, JSON round-trip, validated at construction with messages that name the bad field and
value. The launcher writes it to ``<run>/spec.json``; ``python -m trainers.torch_trainer`` and
``python -m trainers.tf_trainer`` both read that same file. The CLI builds one flag per field from
``dataclasses.fields(RunSpec)`` and the Launch form one widget, each with the field's help text
from its metadata, so a new field needs no new plumbing.
"""
from __future__ import annotations

import dataclasses
import json
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

TASKS = ("digits", "spirals", "regression")
MODELS = ("mlp", "cnn")
OPTIMIZERS = ("sgd", "adam")
INITS = ("shared", "native")
DTYPES = ("float32", "float64")


class SpecError(ValueError):
    """A RunSpec field holds a value it may not hold; the message names field and value.

    `field`, `value` and `why` let each front end name the field its own way (`--lr` on the command
    line, the form's label on the Launch page); None when the problem is not one field's."""

    def __init__(self, message: str, field: str | None = None, value: Any = None, why: str | None = None):
        super().__init__(message)
        self.field, self.value, self.why = field, value, why or message


def _field(default: Any, help: str) -> Any:
    """A RunSpec field with its help text in the dataclass metadata (the CLI's --help, the form's tooltips)."""
    return field(default=default, metadata={"help": help})


def field_help(name: str) -> str:
    """The help text of RunSpec field `name` ('' for an unknown name)."""
    return next((f.metadata.get("help", "") for f in dataclasses.fields(RunSpec) if f.name == name), "")


@dataclass(frozen=True)
class RunSpec:
    task: str = _field("digits",
                       "digits: sklearn's bundled 8x8 digits (10 classes); spirals: 2-class synthetic; regression: synthetic y = f(x) + noise")
    model: str = _field("mlp", "mlp: Dense/Linear stack; cnn: two 3x3 convs + dense head (digits only, images 1x8x8)")
    hidden: tuple[int, ...] = _field((64, 32), "MLP hidden widths (the CNN uses hidden[-1] for its dense layer)")
    optimizer: str = _field("sgd", "sgd (with momentum, torch's convention buf = mu*buf + g) or adam")
    lr: float = _field(0.05, "learning rate, constant")
    momentum: float = _field(0.9, "SGD momentum; 0 for plain SGD")
    beta1: float = _field(0.9, "Adam first-moment decay")
    beta2: float = _field(0.999, "Adam second-moment decay")
    eps: float = _field(1e-8,
                        "Adam epsilon, torch's placement (sqrt(v_hat) + eps); used on both sides when init=shared")
    weight_decay: float = _field(0.0, "L2 added to the gradient (torch's coupled form), both sides")
    batch_size: int = _field(32, "samples per step; the last short batch of an epoch is dropped")
    epochs: int = _field(10, "passes over the training split")
    steps: int = _field(0, "when > 0, stop after this many steps (may end mid-epoch); 0 = run all epochs")
    seed: int = _field(0, "seeds the split, the batch order and the shared initial weights")
    log_every: int = _field(10, "write train scalars every N steps (1 = every step)")
    histogram_every: int = _field(0, "write weight/grad histograms every N steps; 0 = four times per epoch")
    embedding_steps: tuple[int, ...] = _field((), "steps at which to export embeddings besides the final one")
    embedding_samples: int = _field(256, "fixed validation subset exported as embeddings (first N of the val split)")
    val_fraction: float = _field(0.2, "share of samples held out for validation, chosen from the seed")
    n_samples: int = _field(1000, "samples generated for the synthetic tasks (spirals, regression)")
    init: str = _field("shared",
                       "shared: one set of initial weights from the seed, loaded by both; native: each framework's own defaults")
    dtype: str = _field("float32", "float32 or float64, both trainers")
    threads: int = _field(1, "intra- and inter-op threads per trainer (a pair on 2 cores shares them fairly)")

    def __post_init__(self) -> None:
        # JSON gives lists; the dataclass is frozen and hashable, so store tuples.
        for name in ("hidden", "embedding_steps"):
            value = getattr(self, name)
            if isinstance(value, (list, tuple)):
                object.__setattr__(self, name, tuple(value))
        self._validate()

    def _validate(self) -> None:
        def bad(name: str, why: str) -> SpecError:
            value = getattr(self, name)
            return SpecError(f"RunSpec.{name}={value!r}: {why}", name, value, why)

        for name, allowed in (("task", TASKS), ("model", MODELS), ("optimizer", OPTIMIZERS),
                              ("init", INITS), ("dtype", DTYPES)):
            if getattr(self, name) not in allowed:
                raise bad(name, f"must be one of {', '.join(allowed)}")
        for f in dataclasses.fields(self):
            value = getattr(self, f.name)
            if f.type in ("int", "float") and (isinstance(value, bool) or not isinstance(value, (int, float))):
                raise bad(f.name, "must be a number")
            if f.type == "int" and not isinstance(value, int):
                raise bad(f.name, "must be a whole number")
        if not self.hidden or any(not isinstance(h, int) or h < 1 for h in self.hidden):
            raise bad("hidden", "must be one or more positive whole numbers")
        if any(not isinstance(s, int) or s < 0 for s in self.embedding_steps):
            raise bad("embedding_steps", "must be non-negative whole numbers")
        for name in ("batch_size", "log_every", "embedding_samples", "threads", "n_samples"):
            if getattr(self, name) < 1:
                raise bad(name, "must be >= 1")
        for name in ("epochs", "steps", "histogram_every"):
            if getattr(self, name) < 0:
                raise bad(name, "must be >= 0")
        if self.epochs == 0 and self.steps == 0:
            raise bad("epochs", "epochs and steps cannot both be 0")
        if not 0 < self.lr < 10:
            raise bad("lr", "must be in (0, 10)")
        if not 0 <= self.momentum < 1:
            raise bad("momentum", "must be in [0, 1)")
        for name in ("beta1", "beta2"):
            if not 0 <= getattr(self, name) < 1:
                raise bad(name, "must be in [0, 1)")
        if not 0 < self.eps < 1:
            raise bad("eps", "must be in (0, 1)")
        if self.weight_decay < 0:
            raise bad("weight_decay", "must be >= 0")
        if not 0 < self.val_fraction < 1:
            raise bad("val_fraction", "must be in (0, 1)")
        if self.model == "cnn" and self.task != "digits":
            raise bad("model", f"cnn needs image input; task {self.task!r} has none (use task=digits)")

    # --- JSON round-trip -------------------------------------------------------------------------
    def to_dict(self) -> dict[str, Any]:
        d = dataclasses.asdict(self)
        return {k: list(v) if isinstance(v, tuple) else v for k, v in d.items()}

    def to_json(self) -> str:
        return json.dumps(self.to_dict(), indent=2, sort_keys=True)

    @classmethod
    def from_dict(cls, d: dict[str, Any]) -> "RunSpec":
        known = {f.name for f in dataclasses.fields(cls)}
        unknown = sorted(set(d) - known)
        if unknown:
            raise SpecError(f"RunSpec has no field {', '.join(map(repr, unknown))}", unknown[0], d[unknown[0]],
                            "no such field")
        return cls(**d)

    @classmethod
    def from_json(cls, text: str) -> "RunSpec":
        return cls.from_dict(json.loads(text))

    def save(self, path: str | Path) -> None:
        Path(path).write_text(self.to_json() + "\n")

    @classmethod
    def load(cls, path: str | Path) -> "RunSpec":
        return cls.from_json(Path(path).read_text())

    def replace(self, **changes: Any) -> "RunSpec":
        return dataclasses.replace(self, **changes)
