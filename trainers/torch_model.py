"""The PyTorch side's model: built with the tags' layer names, the shared initial weights loaded,
the optimizer, and the layer rows settings.json describes. torch is imported inside the functions.
"""
from __future__ import annotations

from collections import OrderedDict
from typing import Any

import numpy as np

from trainers.weights import Layer
from twinboard.contract import RunSpec

TORCH_DEFAULT_ADAM_EPS = 1e-8  # torch.optim.Adam's default, used with init=native


def build_model(spec: RunSpec, layers: list[Layer], n_features: int, dtype: Any):
    """nn.Sequential whose parametric children are named as in the tags (dense0 ..., conv0 ..., out).

    The CNN reads [N, 64] rows as [N, 1, 8, 8] (NCHW) and flattens conv1's output in (c, h, w) order.
    """
    import torch.nn as nn

    mods: OrderedDict[str, nn.Module] = OrderedDict()
    if spec.model == "cnn":
        side = int(round(n_features ** 0.5))
        mods["reshape"] = nn.Unflatten(1, (1, side, side))
    flat = spec.model != "cnn"
    for layer in layers:
        if layer.kind == "conv":
            c_out, c_in, k, _ = layer.weight_shape
            mods[layer.name] = nn.Conv2d(c_in, c_out, k, padding=k // 2, dtype=dtype)
        else:
            if not flat:
                mods["flatten"] = nn.Flatten()
                flat = True
            n_out, n_in = layer.weight_shape
            mods[layer.name] = nn.Linear(n_in, n_out, dtype=dtype)
        if layer.activation == "relu":
            mods[f"{layer.name}_relu"] = nn.ReLU()
    return nn.Sequential(mods)


def param_layers(model, layers: list[Layer]):
    return [(layer.name, getattr(model, layer.name)) for layer in layers]


def load_shared(model, layers: list[Layer], arrays: dict[str, np.ndarray]) -> None:
    import torch

    with torch.no_grad():
        for name, mod in param_layers(model, layers):
            mod.weight.copy_(torch.from_numpy(arrays[f"{name}.weight"]))
            mod.bias.copy_(torch.from_numpy(arrays[f"{name}.bias"]))


def make_optimizer(spec: RunSpec, params):
    import torch

    if spec.optimizer == "sgd":
        return torch.optim.SGD(params, lr=spec.lr, momentum=spec.momentum, dampening=0.0, nesterov=False,
                               weight_decay=spec.weight_decay, foreach=False)
    eps = spec.eps if spec.init == "shared" else TORCH_DEFAULT_ADAM_EPS
    return torch.optim.Adam(params, lr=spec.lr, betas=(spec.beta1, spec.beta2), eps=eps,
                            weight_decay=spec.weight_decay, amsgrad=False, foreach=False)


def describe_layers(model, layers: list[Layer], n_features: int, dtype) -> list[dict[str, Any]]:
    """Output shapes from a real forward pass on one sample (batch dimension shown as null)."""
    import torch

    shapes: dict[str, list[int]] = {}
    hooks = [mod.register_forward_hook(lambda m, i, o, n=name: shapes.__setitem__(n, [None, *o.shape[1:]]))
             for name, mod in param_layers(model, layers)]
    with torch.no_grad():
        model(torch.zeros(1, n_features, dtype=dtype))
    for h in hooks:
        h.remove()
    return [{"name": layer.name, "type": type(mod).__name__, "activation": layer.activation,
             "output_shape": shapes[layer.name], "params": sum(p.numel() for p in mod.parameters())}
            for layer, (_, mod) in zip(layers, param_layers(model, layers))]
