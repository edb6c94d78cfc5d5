"""Model pairs: each model built in both frameworks with its tensors' correspondence (base.ModelPair).

Built-in pairs by RunSpec.model name; any other name is a plugin's, a file in the model folder
(twinboard.contract.models_dir(), trainers.models.plugins). The modules are imported when asked for.
"""
from __future__ import annotations

import importlib

from trainers.models.base import ModelPair, Param
from twinboard.contract import RunSpec

BUILT_IN = {  # RunSpec.model -> "module:class" under trainers.models
    "mlp": "classic:MLP",
    "cnn": "classic:CNN",
    "cnn_bn": "cnn_bn:CNNBatchNorm",
    "gru": "recurrent:GRU",
    "lstm": "recurrent:LSTM",
    "transformer": "transformer:Transformer",
}


def get_pair(spec: RunSpec, run_dir=None) -> ModelPair:
    """The pair RunSpec.model names; a plugin's is loaded from the model folder, its plan from `run_dir`
    (the run folder; default $TWINBOARD_RUN_DIR, which the dispatcher sets)."""
    where = BUILT_IN.get(spec.model)
    if where is None:
        from trainers.models.plugins import load_plugin

        return load_plugin(spec.model, run_dir)
    module, cls = where.split(":")
    return getattr(importlib.import_module(f"trainers.models.{module}"), cls)()


def plan(spec: RunSpec, n_features: int, n_outputs: int, run_dir=None,
         framework: str | None = None) -> tuple[ModelPair, list[Param]]:
    """The pair and its tensors for a spec and its data's shape (`run_dir`: see get_pair): `framework`'s
    own (side_params) when named."""
    pair = get_pair(spec, run_dir)
    if framework is None:
        return pair, pair.params(spec, n_features, n_outputs)
    return pair, pair.side_params(framework, spec, n_features, n_outputs)
