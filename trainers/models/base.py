"""What a matched model pair is: one model built in both frameworks, and how their tensors correspond.

A ModelPair says, for a spec and its data:
- `params`: every tensor of the model in torch's layout (trainable parameters, then the buffers
  that matter, such as BatchNorm's running statistics), each with its Keras variable path, the
  numpy transform from torch's layout to Keras' (transposes, gate reordering, per-head reshapes),
  its histogram tag (the same on both sides) and torch's default initializer as a numpy draw;
- `torch_model` / `keras_model`: the two models, torch's state_dict names and Keras' variable paths
  as `params` lists them;
- `torch_features` / `keras_features`: the last hidden layer's output beside the model's, for the
  embedding export (None: the model declares none);
- `native_notes`: what each framework's own defaults do differently for this model, shown by the
  Parity page when init=native.

With init=shared both trainers load the same numpy arrays (`shared_init`, drawn from the seed in
torch's layout, saved as init.npz); torch copies them by name, TensorFlow through `to_keras`. numpy
only here: the frameworks are imported inside the methods that build models.
"""
from __future__ import annotations

import math
from dataclasses import dataclass, field
from typing import Any, Callable

import numpy as np

from twinboard.contract import RunSpec


def same(a: np.ndarray) -> np.ndarray:
    return a


def transpose(a: np.ndarray) -> np.ndarray:
    """Linear [out, in] -> Dense kernel [in, out]."""
    return a.T


def conv_kernel(a: np.ndarray) -> np.ndarray:
    """Conv2d [out, in, kh, kw] -> Conv2D [kh, kw, in, out]."""
    return a.transpose(2, 3, 1, 0)


@dataclass(frozen=True)
class Param:
    """One tensor of a pair: torch's name and shape, Keras' path and layout, its tag and first value."""
    name: str  # torch: a state_dict key ("conv0.weight", "bn0.running_var", "gru.weight_hh_l0")
    shape: tuple[int, ...]  # torch's layout
    keras: str  # the Keras variable's path ("conv0/kernel", "gru/gru_cell/recurrent_kernel")
    tag: str  # below weights/ and grads/ in the histograms: "<layer>/<part>", the same on both sides
    init: tuple[Any, ...]  # torch's default as a numpy draw: ("uniform", bound), ("normal", std), ("const", v)
    to_keras: Callable[[np.ndarray], np.ndarray] = same  # torch layout -> Keras layout
    trainable: bool = True  # False: state the optimizer does not touch (BatchNorm's running statistics)

    @property
    def layer(self) -> str:
        return self.tag.split("/", 1)[0]


def fan_in_uniform(fan_in: int) -> tuple[str, float]:
    """torch's Linear/Conv default: kaiming_uniform(a=sqrt(5)) for the weight, whose bound is
    gain*sqrt(3/fan_in) = sqrt(1/3)*sqrt(3/fan_in) = 1/sqrt(fan_in); the bias draws from the same bound."""
    return ("uniform", 1.0 / math.sqrt(fan_in))


def xavier_uniform(fan_in: int, fan_out: int) -> tuple[str, float]:
    """torch.nn.init.xavier_uniform_ (MultiheadAttention's in_proj_weight): U(±sqrt(6/(fan_in+fan_out)))."""
    return ("uniform", math.sqrt(6.0 / (fan_in + fan_out)))


def draw(rng: np.random.Generator, init: tuple[Any, ...], shape: tuple[int, ...]) -> np.ndarray:
    kind, value = init[0], init[1]
    if kind == "uniform":
        return rng.uniform(-value, value, size=shape)
    if kind == "normal":
        return rng.normal(0.0, value, size=shape)
    if kind == "const":
        return np.full(shape, float(value))
    raise ValueError(f"unknown initializer {init!r}")


def shared_init(spec: RunSpec, params: list[Param]) -> dict[str, np.ndarray]:
    """torch's default scheme drawn with numpy from the seed, in `params` order, torch layout names
    and shapes: drawn in float64, then cast to the run dtype."""
    rng = np.random.default_rng([spec.seed, 3])
    return {p.name: draw(rng, p.init, p.shape).astype(spec.dtype) for p in params}


@dataclass
class ModelPair:
    """A model built in both frameworks; subclasses fill the methods (trainers/models/*.py)."""
    name: str
    layout: tuple[str, str] = ("NC", "NC")  # settings.json's data_layout: (torch, tensorflow)
    describes_embedding: bool = True  # torch_features/keras_features give a last hidden layer
    native_notes: dict[str, str] = field(default_factory=dict)  # setting -> what differs and why it matters
    # settings.json's init under init=native: (torch, Keras) defaults of this model's layers
    native_init: tuple[str, str] = ("kaiming_uniform(a=sqrt(5)), bias U(±1/sqrt(fan_in))",
                                    "glorot_uniform kernels, zeros biases (keras.utils.set_random_seed(seed))")

    def settings(self, framework: str, spec: RunSpec) -> dict[str, Any]:
        """settings.json's "batch_norm", "dropout" and "layer_defaults" for this model, as they ran on
        `framework`'s side (BatchNorm's momentum and eps, a GRU's gate order and reset_after, GELU's
        approximation...): the Parity page compares them key by key and explains each key
        (twinboard.parity.settings.EXPLANATIONS), so name a setting the same way on both sides."""
        return {}

    def params(self, spec: RunSpec, n_features: int, n_outputs: int) -> list[Param]:
        raise NotImplementedError

    def side_params(self, framework: str, spec: RunSpec, n_features: int, n_outputs: int) -> list[Param]:
        """The tensors `framework`'s model holds ("torch" or "tensorflow"), what its trainer trains,
        writes histograms of and counts: `params`, unless the pair's native layers hold different
        tensors (Keras' stock LSTM has one bias where torch has two). Under init=shared both sides
        load the same init.npz, so a pair returns `params` there."""
        return self.params(spec, n_features, n_outputs)

    def torch_model(self, spec: RunSpec, n_features: int, n_outputs: int, dtype: Any):
        raise NotImplementedError

    def keras_model(self, spec: RunSpec, n_features: int, n_outputs: int):
        raise NotImplementedError

    def torch_features(self, model, x):
        """(last hidden layer, outputs) of a batch, torch tensors."""
        raise NotImplementedError

    def keras_features(self, model, x):
        """(last hidden layer, outputs) of a batch, TF tensors (called inside a tf.function)."""
        raise NotImplementedError

    def torch_loss(self, classify: bool):
        """The torch loss of (logits, targets): mean cross-entropy or mean squared error."""
        import torch.nn.functional as F

        return F.cross_entropy if classify else F.mse_loss


# --- loading the shared arrays --------------------------------------------------------------------
def torch_tensors(model) -> dict[str, Any]:
    """torch's parameters and buffers by state_dict name."""
    return {**dict(model.named_parameters()), **dict(model.named_buffers())}


def load_torch(model, params: list[Param], arrays: dict[str, np.ndarray]) -> None:
    import torch

    tensors = torch_tensors(model)
    with torch.no_grad():
        for p in params:
            tensors[p.name].copy_(torch.from_numpy(np.ascontiguousarray(arrays[p.name])))


def keras_variables(model) -> dict[str, Any]:
    """Keras' variables by path below the model ("dense0/kernel"): a Sequential model's name starts
    its variables' paths in Keras 3 ("model/dense0/kernel"), a functional model's does not."""
    prefix = model.name + "/"
    return {v.path[len(prefix):] if v.path.startswith(prefix) else v.path: v for v in model.weights}


def load_keras(model, params: list[Param], arrays: dict[str, np.ndarray]) -> None:
    variables = keras_variables(model)
    for p in params:
        variables[p.keras].assign(np.ascontiguousarray(p.to_keras(arrays[p.name])))


def check_pair(params: list[Param], torch_model, keras_model) -> None:
    """Every Param has its tensor on both sides with the shape the transform gives, and neither side
    holds a trainable tensor the plan leaves out. ValueError naming both tensors otherwise."""
    tensors, variables = torch_tensors(torch_model), keras_variables(keras_model)
    for p in params:
        t, v = tensors.get(p.name), variables.get(p.keras)
        if t is None or v is None:
            missing = f"torch has no {p.name}" if t is None else f"Keras has no variable {p.keras}"
            raise ValueError(f"{p.name} (torch) <-> {p.keras} (Keras): {missing}")
        if tuple(t.shape) != p.shape:
            raise ValueError(f"{p.name} (torch) is {list(t.shape)}, the plan says {list(p.shape)}")
        want = tuple(p.to_keras(np.zeros(p.shape)).shape)
        if tuple(v.shape) != want:
            raise ValueError(f"{p.name} (torch {list(p.shape)}) <-> {p.keras} (Keras {list(v.shape)}): "
                             f"the transform gives {list(want)}")
    named = {p.name for p in params}
    extra = [n for n, t in torch_model.named_parameters() if n not in named]
    if extra:
        raise ValueError(f"torch parameter {extra[0]} has no Keras counterpart in the pair's plan")
    ids = {id(v) for p in params for v in [variables.get(p.keras)] if v is not None}
    extra = [v.path for v in keras_model.trainable_weights if id(v) not in ids]
    if extra:
        raise ValueError(f"Keras variable {extra[0]} has no torch counterpart in the pair's plan")


def layer_rows(params: list[Param], types: dict[str, str], shapes: dict[str, list]) -> list[dict[str, Any]]:
    """settings.json's "layers": one row a layer in plan order, its trainable parameter count
    ("params", equal on both sides for a matched pair) and its other state ("state": BatchNorm's
    running statistics, which Keras counts in count_params and torch keeps as buffers)."""
    rows: dict[str, dict[str, Any]] = {}
    for p in params:
        row = rows.setdefault(p.layer, {"name": p.layer, "type": types.get(p.layer, "?"), "activation": "",
                                        "output_shape": shapes.get(p.layer), "params": 0, "state": 0,
                                        "tensors": []})
        row["params" if p.trainable else "state"] += int(np.prod(p.shape))
        row["tensors"].append(p.tag.split("/", 1)[1])
    return list(rows.values())
