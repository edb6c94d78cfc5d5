"""A model plugin's preflight: `python -m trainers.models.preflight SPEC.json [--out DIR]`.

Only a process holding both frameworks can tell whether a plugin's two models correspond, and the
trainers each hold one, so the launcher runs this once before it creates a plugin's run (~10 s
here, both imports): it builds both models (torch under torch.manual_seed(seed), Keras after
keras.utils.set_random_seed(seed), both in the run dtype), derives the correspondence
(trainers.models.matching: the plugin's CORRESPONDENCE, then the automatic rule), checks it
(trainers.models.base.check_pair), checks LAST_HIDDEN on both sides and the parameter ceiling, and
runs both forward passes on the same weights and validation rows (recorded in the plan as
"forward": a plugin whose layers compute differently shows it here, before any training).

Exit status and stdout (one JSON object):
  0  the plan: format, model, plugin, plugin_sha256, spec, n_features, n_outputs, dtype, init,
     last_hidden, keras_layers, params [{torch, shape, keras, keras_shape, transform, tag,
     trainable, how}], left_out {torch, keras}, total_params, forward. With --out, DIR gets plan.json
     and, init=shared, init.npz: every tensor of the plan as torch initialised it, torch's layout
     and names, the run dtype (the same bytes trainers.weights writes for a built-in model's draw).
  3  refused: {"error": the first problem, "problems": all of them, each naming both tensors where
     there are two, "rows": both sides' tensors aligned (matching.rows), the table a refusal shows}.
     Nothing is written.
  2  the spec cannot be read.   1  the preflight itself failed (traceback on stderr).
"""
from __future__ import annotations

import argparse
import json
import os
import sys
import traceback
from pathlib import Path
from typing import Any

import numpy as np

from trainers.models.base import Param, check_pair, keras_variables, load_keras
from trainers.models.matching import MatchError, Tensor, entry_dicts, match
from trainers.models.plugins import (
    PLAN_FORMAT, PLAN_JSON, SHARED_INIT_RULE, PluginError, PluginPair, declared, file_sha256, load_module, resolver)
from twinboard.contract import CEILINGS, INIT_NPZ, RunSpec, SpecError, write_bytes_atomic, write_json
from twinboard.contract.datafile import DataFileError

FORWARD_ROWS = 16  # validation rows both forward passes see


def torch_tensors(model) -> dict[str, Tensor]:
    """Parameters (trainable unless requires_grad is off), then floating-point buffers (state)."""
    out = {n: Tensor(n, tuple(p.shape), bool(p.requires_grad)) for n, p in model.named_parameters()}
    out.update({n: Tensor(n, tuple(b.shape), False) for n, b in model.named_buffers() if b.is_floating_point()})
    return out


def keras_tensors(model) -> dict[str, Tensor]:
    return {path: Tensor(path, tuple(v.shape), bool(v.trainable)) for path, v in keras_variables(model).items()}


def _built(what: str, path: Path, build):
    """The plugin's builder called; its own failure named as the plugin's."""
    try:
        return build()
    except PluginError:
        raise
    except Exception as exc:  # the user's code
        raise PluginError(f"{path}: {what} raised {type(exc).__name__}: {exc}") from exc


def make_plan(spec: RunSpec, x: np.ndarray, n_outputs: int) -> tuple[dict[str, Any], dict[str, np.ndarray]]:
    """(the plan, torch's initial tensors by state_dict name in the run dtype) for a plugin spec and
    its data (`x`: validation rows, for the shape and the forward check). PluginError or MatchError."""
    import keras
    import torch

    module = load_module(spec.model)
    path = Path(module.__file__)
    pair = PluginPair(spec.model, module, path, None)
    n_features = int(x.shape[1])
    torch.manual_seed(spec.seed)
    tm = _built("torch_model", path, lambda: pair.torch_model(spec, n_features, n_outputs, getattr(torch, spec.dtype)))
    keras.config.set_floatx(spec.dtype)
    keras.utils.set_random_seed(spec.seed)
    km = _built("keras_model", path, lambda: pair.keras_model(spec, n_features, n_outputs))
    t_all = torch_tensors(tm)
    entries, left_out = match(t_all, keras_tensors(km), declared(module), resolver(module))
    left_out["torch"] += [n for n, b in tm.named_buffers() if not b.is_floating_point()]
    params = [Param(e.torch, tuple(e.shape), e.keras, e.tag, ("const", 0.0), pair.resolve(e.transform), e.trainable)
              for e in entries]
    try:
        check_pair(params, tm, km)
    except ValueError as exc:
        raise PluginError(str(exc)) from None
    total = sum(int(np.prod(e.shape)) for e in entries if e.trainable)
    if total > CEILINGS["parameters"]:
        raise PluginError(f"{path}: {total} parameters, more than any run may have ({CEILINGS['parameters']})")
    for fw in ("torch", "tensorflow"):
        _built(f"settings({fw!r}, spec)", path, lambda fw=fw: pair.settings(fw, spec))
    state = dict(tm.state_dict(keep_vars=True))
    arrays = {e.torch: state[e.torch].detach().cpu().numpy().astype(spec.dtype) for e in entries}
    forward = _built("the forward pass", path, lambda: forward_check(pair, tm, km, params, arrays, x[:FORWARD_ROWS]))
    plan = {
        "format": PLAN_FORMAT, "model": spec.model, "plugin": str(path), "plugin_sha256": file_sha256(path),
        "spec": spec.to_dict(), "n_features": n_features, "n_outputs": n_outputs, "dtype": spec.dtype,
        "init": SHARED_INIT_RULE if spec.init == "shared" else f"native: {pair.native_init[0]}; {pair.native_init[1]}",
        "last_hidden": None if pair.last is None else {"torch": pair.last[0], "keras": pair.last[1]},
        "keras_layers": [layer.name for layer in km.layers],
        "params": entry_dicts(entries), "left_out": left_out, "total_params": total, "forward": forward}
    return plan, arrays


def forward_check(pair: PluginPair, tm, km, params: list[Param], arrays: dict[str, np.ndarray],
                  x: np.ndarray) -> dict[str, Any]:
    """Both models in inference mode on the same weights (torch's, loaded into Keras) and rows: the
    largest absolute differences of the outputs and of the last hidden layer."""
    import torch

    from trainers.torch_model import evaluating

    load_keras(km, params, arrays)
    with torch.no_grad(), evaluating(tm):
        t_feat, t_out = pair.torch_features(tm, torch.from_numpy(x))
    k_feat, k_out = pair.keras_features(km, x)

    def diff(a, b) -> float | None:
        a, b = np.asarray(a, np.float64), np.asarray(b, np.float64)
        return float(np.max(np.abs(a - b))) if a.shape == b.shape else None

    return {"rows": len(x), "outputs_max_abs_diff": diff(t_out.numpy(), k_out),
            "last_hidden_max_abs_diff": diff(t_feat.numpy(), k_feat) if pair.last else None}


def write_plan(out: Path, spec: RunSpec, plan: dict[str, Any], arrays: dict[str, np.ndarray]) -> None:
    from trainers.weights import _npz_bytes_deterministic  # the bytes the trainers write for a built-in draw

    out.mkdir(parents=True, exist_ok=True)
    if spec.init == "shared":
        write_bytes_atomic(out / INIT_NPZ, _npz_bytes_deterministic(arrays))
    write_json(out / PLAN_JSON, plan, sort_keys=False)


def main(argv: list[str] | None = None) -> int:
    p = argparse.ArgumentParser(prog="python -m trainers.models.preflight",
                                description="Build a model plugin's two models, check how they correspond, "
                                            "print the plan; with --out, write plan.json and init.npz there.")
    p.add_argument("spec", type=Path, help="a spec.json whose model is a plugin's")
    p.add_argument("--out", type=Path, default=None, help="folder for plan.json and (init=shared) init.npz")
    args = p.parse_args(argv)
    try:
        spec = RunSpec.load(args.spec)
    except (SpecError, OSError) as exc:
        print(f"preflight: cannot read the spec {args.spec}: {exc}", file=sys.stderr)
        return 2
    os.environ.setdefault("TF_CPP_MIN_LOG_LEVEL", "2")
    from trainers import data

    try:
        ds = data.load(spec)
        plan, arrays = make_plan(spec, ds.x_val, ds.n_outputs)
    except MatchError as exc:
        print(json.dumps({"error": str(exc), "problems": exc.problems, "rows": exc.rows}))
        return 3
    except (PluginError, DataFileError) as exc:  # the plugin's file, or a task=file's data file
        print(json.dumps({"error": str(exc), "problems": [str(exc)], "rows": []}))
        return 3
    if args.out is not None:
        write_plan(args.out, spec, plan, arrays)
    print(json.dumps(plan))
    return 0


if __name__ == "__main__":
    try:
        sys.exit(main())
    except Exception:  # noqa: BLE001 - exit 1 with the traceback: the preflight's own failure
        traceback.print_exc()
        sys.exit(1)
