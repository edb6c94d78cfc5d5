"""The Launch form's view of a RunSpec: where each field goes, what the form calls it, which kind of
widget shows it, and the conversions between spec values and widget values. Pure: the page draws.

Every RunSpec field is on the form: the ones FORM_SECTIONS and OPTIMIZER_FIELDS name in their places,
any other (a field added later included) under Advanced.
"""
from __future__ import annotations

import dataclasses

from twinboard.contract import RunSpec, SpecError
from twinboard.contract import spec as specmod

FORM_CHOICES = {"task": specmod.TASKS, "model": specmod.MODELS, "optimizer": specmod.OPTIMIZERS,
                "init": specmod.INITS, "dtype": specmod.DTYPES,
                # Not placed in a section: the Advanced part shows them (advanced_fields).
                "torch_mode": specmod.TORCH_MODES, "tf_mode": specmod.TF_MODES}
FORM_SECTIONS = {
    "Data and model": ("task", "model", "hidden"),
    "Training": ("batch_size", "epochs", "steps", "seed"),
    "Logging": ("log_every", "histogram_every", "export"),
    "Numerics": ("init", "dtype", "threads"),
}
OPTIMIZER_FIELDS = {"sgd": ("lr", "momentum", "clip_norm"), "adam": ("lr", "beta1", "beta2", "eps", "clip_norm")}
DATA_FIELDS = ("data", "target")  # task=file's: drawn by the data chooser (pages/launch_data.py), not as text
# Where the form starts differs from RunSpec's defaults: a run started from the form exports its model
# (deployment formats, measured) unless unticked; the command line asks for it with --export.
FORM_DEFAULTS = {"export": True}
FORM_STEPS = {"lr": 0.001, "momentum": 0.05, "beta1": 0.01, "beta2": 0.001, "eps": 1e-9,
              "weight_decay": 1e-4, "val_fraction": 0.05}  # a float field's +/- step; others 0.01
FORM_LABELS = {"lr": "learning rate", "beta1": "Adam β1", "beta2": "Adam β2", "eps": "Adam ε",
               "momentum": "SGD momentum", "hidden": "hidden sizes", "init": "initial weights",
               "torch_mode": "PyTorch mode", "tf_mode": "TensorFlow mode", "clip_norm": "clip grad norm",
               "export": "deploy export"}  # a narrow column: the help says the rest
_FIELDS = {f.name: f for f in dataclasses.fields(RunSpec)}
_TUPLE_WHY = "must be comma-separated whole numbers"


def field_label(name: str) -> str:
    """What the form calls a RunSpec field: 'hidden sizes' for hidden, 'batch size' for batch_size."""
    return FORM_LABELS.get(name, name.replace("_", " "))


def form_choices(name: str) -> tuple[str, ...]:
    """The choices of a 'choice' field; the model's include the model folder's plugins (listed by
    file name, never imported: twinboard.runs.plugins)."""
    if name == "model":
        from twinboard.runs.plugins import plugin_names

        return (*FORM_CHOICES[name], *plugin_names())
    return FORM_CHOICES[name]


def field_kind(name: str) -> str:
    """The widget a field gets: 'choice', 'tuple' (comma-separated text), 'int', 'float', 'bool' or 'text'."""
    if name in FORM_CHOICES:
        return "choice"
    f = _FIELDS[name]
    annotation = f.type if isinstance(f.type, str) else getattr(f.type, "__name__", None) or str(f.type)
    if annotation.startswith("tuple"):
        return "tuple"
    return annotation if annotation in ("int", "float", "bool") else "text"


def advanced_fields() -> list[str]:
    """The fields no section or optimizer names, in RunSpec order: the form's Advanced part."""
    placed = {"optimizer", *DATA_FIELDS, *(n for names in FORM_SECTIONS.values() for n in names),
              *(n for names in OPTIMIZER_FIELDS.values() for n in names)}
    return [name for name in _FIELDS if name not in placed]


def widget_values(spec: dict) -> dict[str, object]:
    """The spec's fields as the form's widgets hold them: tuples as '64, 32', numbers as the field's
    type (JSON may give 1 for 1.0). Unknown keys are left out."""
    convert = {"tuple": lambda v: ", ".join(map(str, v)), "int": int, "float": float, "bool": bool}
    return {name: convert.get(field_kind(name), str)(value) for name, value in spec.items() if name in _FIELDS}


def spec_from_form(base: dict, values: dict[str, object]) -> RunSpec:
    """The RunSpec the form holds: `base` (the spec it started from, for fields not drawn now, such as
    the other optimizer's) with the widgets' `values` over it. Raises SpecError naming the field."""
    parsed = dict(base)
    for name, raw in values.items():
        if field_kind(name) == "tuple":
            parts = [p.strip() for p in str(raw).replace(";", ",").split(",") if p.strip()]
            try:
                raw = tuple(int(p) for p in parts)
            except ValueError:
                raise SpecError(f"RunSpec.{name}={raw!r}: {_TUPLE_WHY}", name, raw, _TUPLE_WHY) from None
        parsed[name] = raw
    return RunSpec.from_dict(parsed)


def error_text(err: SpecError) -> str:
    """'hidden sizes: must be comma-separated whole numbers': the form's label and the reason. The
    rejected value is left out: it is the visitor's own text, which they can see in the field."""
    return f"{field_label(err.field)}: {err.why}" if err.field in _FIELDS else err.why
