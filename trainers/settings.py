"""settings.json: every setting a trainer really used, defaults made explicit, the same keys on
both sides (SETTINGS_KEYS) so the Parity page can diff them key by key.

The framework-independent part (`common_settings`) and the optimizer's description
(`describe_optimizer`) are built here, one dict shape for both; each trainer adds what only it
knows. Written atomically, as the run-folder contract writes every JSON file. Imports numpy only.
"""
from __future__ import annotations

import sys
from pathlib import Path
from typing import Any

from trainers import data
from trainers.loop import Cadence
from trainers.summaries import HISTOGRAM_BINS
from twinboard.contract import SETTINGS_JSON, RunSpec, write_json

SETTINGS_KEYS = (
    "framework", "framework_version", "logger", "execution_mode", "requested_mode", "mode_note",
    "import_s", "first_step_s", "device", "threads", "math_library",
    "dtype", "seed", "init", "init_sha256", "optimizer", "loss", "model", "layers", "total_params",
    "batch_norm", "dropout", "layer_defaults", "clip_norm", "data_layout", "data", "batch_size", "epochs", "steps_per_epoch",
    "total_steps", "log_every", "histogram_every", "histogram_bins", "validation", "python",
)


def write_settings(logdir: Path, **settings: Any) -> dict[str, Any]:
    """Both trainers pass exactly SETTINGS_KEYS, so the Parity page can diff them key by key."""
    missing = [k for k in SETTINGS_KEYS if k not in settings]
    extra = [k for k in settings if k not in SETTINGS_KEYS]
    assert not missing and not extra, f"settings keys: missing {missing}, unexpected {extra}"
    ordered = {k: settings[k] for k in SETTINGS_KEYS}
    logdir = Path(logdir)
    logdir.mkdir(parents=True, exist_ok=True)
    write_json(logdir / SETTINGS_JSON, ordered, sort_keys=False)  # in SETTINGS_KEYS' order
    return ordered


def mode_settings(mode: str, requested: str, note: str, import_s: float) -> dict[str, Any]:
    """The train step's mode as it ran (RunSpec.torch_mode / tf_mode's words; a trainer fails rather
    than run another mode, so it equals `requested`), why, and the import's cost (timing.timed_import).
    first_step_s is None until step 1 ends (record_first_step)."""
    return {"execution_mode": mode, "requested_mode": requested, "mode_note": note,
            "import_s": round(import_s, 3), "first_step_s": None}


def record_first_step(logdir: Path, settings: dict[str, Any], first_step_s: float,
                      note: str = "") -> dict[str, Any]:
    """settings.json again, once, after step 1: its first_step_s, and `note` added to mode_note
    (what only the first step shows, such as torch.compile's cache hits)."""
    changed = dict(settings, first_step_s=round(first_step_s, 3), mode_note=settings["mode_note"] + note)
    return write_settings(logdir, **changed)


# --- settings that do not depend on the framework ------------------------------------------------
def common_settings(spec: RunSpec, cadence: Cadence, ds: data.Dataset) -> dict[str, Any]:
    """The settings that do not depend on the framework (still written by each side)."""
    return {
        "dtype": spec.dtype, "seed": spec.seed,
        # A model pair's own settings replace these (trainers.models.base.ModelPair.settings).
        "model": spec.model, "batch_norm": "none", "dropout": "none", "layer_defaults": {},
        "data": {"task": spec.task, "n_train": int(len(ds.x_train)), "n_val": int(len(ds.x_val)),
                 "shuffle": "numpy permutation per epoch from the seed (trainers.data)",
                 "drop_last": True,
                 # task=file: which bytes each side read (the Parity page diffs data.file.sha256)
                 **({"file": {"name": spec.data, "target": spec.target, "sha256": ds.sha256}}
                    if spec.task == "file" else {})},
        "batch_size": spec.batch_size, "epochs": spec.epochs, "steps_per_epoch": cadence.steps_per_epoch,
        "total_steps": cadence.total_steps, "log_every": cadence.log_every,
        "histogram_every": cadence.histogram_every, "histogram_bins": HISTOGRAM_BINS,
        "validation": "full validation split, end of every epoch and the final step",
        "python": sys.version.split()[0],
    }


# --- optimizer description -----------------------------------------------------------------------
def describe_optimizer(spec: RunSpec, implementation: str, hyper_dtype: str, weight_decay_form: str,
                       eps: float | None = None) -> dict[str, Any]:
    """One dict shape for both frameworks; values say what really ran."""
    d: dict[str, Any] = {"name": spec.optimizer, "implementation": implementation, "lr": spec.lr,
                         "lr_schedule": "constant", "weight_decay": spec.weight_decay,
                         "weight_decay_form": weight_decay_form if spec.weight_decay else "none (weight_decay=0)",
                         "hyperparameter_dtype": hyper_dtype}
    if spec.optimizer == "sgd":
        d.update(momentum=spec.momentum, dampening=0.0, nesterov=False,
                 update="buf = momentum*buf + g; p -= lr*buf" if spec.momentum else "p -= lr*g")
    else:
        d.update(betas=[spec.beta1, spec.beta2], eps=spec.eps if eps is None else eps, amsgrad=False)
    return d
