"""The PyTorch side's model: the pair's torch model with the shared initial weights loaded, the
optimizer, gradient clipping, and the layer rows settings.json describes. torch is imported inside
the functions.
"""
from __future__ import annotations

from contextlib import contextmanager
from typing import Any

from trainers.models.base import ModelPair, Param, layer_rows, torch_tensors
from twinboard.contract import RunSpec

TORCH_DEFAULT_ADAM_EPS = 1e-8  # torch.optim.Adam's default, used with init=native


def trainable(model, params: list[Param]) -> list:
    """The trainable tensors in the plan's order: what the optimizer, clipping and histograms see."""
    tensors = torch_tensors(model)
    return [tensors[p.name] for p in params if p.trainable]


def make_optimizer(spec: RunSpec, params):
    import torch

    if spec.optimizer == "sgd":
        return torch.optim.SGD(params, lr=spec.lr, momentum=spec.momentum, dampening=0.0, nesterov=False,
                               weight_decay=spec.weight_decay, foreach=False)
    eps = spec.eps if spec.init == "shared" else TORCH_DEFAULT_ADAM_EPS
    return torch.optim.Adam(params, lr=spec.lr, betas=(spec.beta1, spec.beta2), eps=eps,
                            weight_decay=spec.weight_decay, amsgrad=False, foreach=False)


def clip(spec: RunSpec, params: list) -> None:
    """clip_grad_norm_ over every trainable tensor (the global norm), before the optimizer's step."""
    if spec.clip_norm:
        import torch

        torch.nn.utils.clip_grad_norm_(params, spec.clip_norm, foreach=False)


@contextmanager
def evaluating(model):
    """Inference mode for validation and exports (BatchNorm's running statistics, no dropout), then
    back to training mode."""
    was = model.training
    model.eval()
    try:
        yield model
    finally:
        model.train(was)


def describe_layers(pair: ModelPair, model, params: list[Param], x) -> list[dict[str, Any]]:
    """One row a layer of the plan; output shapes from a real forward pass on `x` (one sample, the
    batch dimension shown as null), the type from torch's module of that name."""
    import torch

    shapes: dict[str, list] = {}
    types: dict[str, str] = {}
    hooks = []
    for layer in dict.fromkeys(p.layer for p in params):
        try:
            mod = model.get_submodule(layer)
        except AttributeError:
            continue
        types[layer] = type(mod).__name__

        def hook(m, i, o, n=layer):
            o = o[0] if isinstance(o, tuple) else o
            shapes[n] = [None, *o.shape[1:]]
        hooks.append(mod.register_forward_hook(hook))
    with torch.no_grad(), evaluating(model):
        model(x)
    for h in hooks:
        h.remove()
    return layer_rows(params, types, shapes)
