"""The first two pairs: `mlp` (Linear/Dense stack) and `cnn` (two 3x3 convs and a dense head, digits).

Layer names are the tags': dense0, dense1, ..., out; conv0, conv1, dense0, out. torch reads the CNN's
[N, 64] rows as [N, 1, 8, 8] (NCHW) and flattens conv1's output in (c, h, w) order; Keras reads
[N, 8, 8, 1] (NHWC) and flattens (h, w, c): the first dense kernel's rows are reordered to match.
"""
from __future__ import annotations

from collections import OrderedDict
from typing import Any

import numpy as np

from trainers.models.base import ModelPair, Param, conv_kernel, fan_in_uniform, transpose
from twinboard.contract import RunSpec

CONV_CHANNELS = (8, 16)  # conv0, conv1 output channels; 3x3 kernels, same padding, stride 1


def chw_to_hwc_rows(c: int, h: int, w: int) -> np.ndarray:
    """Row order that turns torch's NCHW-flatten dense kernel into the NHWC-flatten one:
    tf_kernel = torch_weight.T[perm], since perm[(h*W + w)*C + c] = (c*H + h)*W + w."""
    return np.arange(c * h * w).reshape(c, h, w).transpose(1, 2, 0).reshape(-1)


def dense_params(name: str, n_out: int, fan: int, rows: np.ndarray | None = None) -> list[Param]:
    """A Linear/Dense layer: weight [out, in] -> kernel [in, out] (rows reordered after a conv)."""
    to_keras = transpose if rows is None else (lambda a, rows=rows: a.T[rows])
    return [Param(f"{name}.weight", (n_out, fan), f"{name}/kernel", f"{name}/kernel", fan_in_uniform(fan), to_keras),
            Param(f"{name}.bias", (n_out,), f"{name}/bias", f"{name}/bias", fan_in_uniform(fan))]


class MLP(ModelPair):
    def __init__(self):
        super().__init__("mlp")

    def params(self, spec: RunSpec, n_features: int, n_outputs: int) -> list[Param]:
        out, fan = [], n_features
        for i, w in enumerate(spec.hidden):
            out += dense_params(f"dense{i}", w, fan)
            fan = w
        return out + dense_params("out", n_outputs, fan)

    def torch_model(self, spec: RunSpec, n_features: int, n_outputs: int, dtype: Any):
        import torch.nn as nn

        mods: OrderedDict[str, nn.Module] = OrderedDict()
        fan = n_features
        for i, w in enumerate(spec.hidden):
            mods[f"dense{i}"] = nn.Linear(fan, w, dtype=dtype)
            mods[f"dense{i}_relu"] = nn.ReLU()
            fan = w
        mods["out"] = nn.Linear(fan, n_outputs, dtype=dtype)
        return nn.Sequential(mods)

    def keras_model(self, spec: RunSpec, n_features: int, n_outputs: int):
        import keras

        seq: list[Any] = [keras.Input((n_features,), dtype=spec.dtype, name="x")]
        seq += [keras.layers.Dense(w, activation="relu", name=f"dense{i}", dtype=spec.dtype)
                for i, w in enumerate(spec.hidden)]
        seq.append(keras.layers.Dense(n_outputs, name="out", dtype=spec.dtype))
        return keras.Sequential(seq, name="model")

    def torch_features(self, model, x):
        features = model[:-1](x)
        return features, model[-1](features)

    def keras_features(self, model, x):
        h = x
        for lyr in model.layers[:-1]:
            h = lyr(h)
        return h, model.layers[-1](h)


class CNN(MLP):
    """conv0, conv1 (ReLU) on the 8x8 image, then dense0 (hidden[-1], ReLU) and out."""

    def __init__(self):
        ModelPair.__init__(self, "cnn", layout=("NCHW", "NHWC"))

    def conv_params(self, spec: RunSpec) -> list[Param]:
        out, c_in = [], 1
        for i, c_out in enumerate(CONV_CHANNELS):
            fan = c_in * 9
            out += [Param(f"conv{i}.weight", (c_out, c_in, 3, 3), f"conv{i}/kernel", f"conv{i}/kernel",
                          fan_in_uniform(fan), conv_kernel),
                    Param(f"conv{i}.bias", (c_out,), f"conv{i}/bias", f"conv{i}/bias", fan_in_uniform(fan))]
            c_in = c_out
        return out

    def params(self, spec: RunSpec, n_features: int, n_outputs: int) -> list[Param]:
        side, c = int(round(n_features ** 0.5)), CONV_CHANNELS[-1]
        fan = c * side * side
        return [*self.conv_params(spec), *dense_params("dense0", spec.hidden[-1], fan, chw_to_hwc_rows(c, side, side)),
                *dense_params("out", n_outputs, spec.hidden[-1])]

    def torch_convs(self, spec: RunSpec, dtype: Any) -> list[tuple[str, Any]]:
        import torch.nn as nn

        mods, c_in = [], 1
        for i, c_out in enumerate(CONV_CHANNELS):
            mods += [(f"conv{i}", nn.Conv2d(c_in, c_out, 3, padding=1, dtype=dtype)), (f"conv{i}_relu", nn.ReLU())]
            c_in = c_out
        return mods

    def torch_model(self, spec: RunSpec, n_features: int, n_outputs: int, dtype: Any):
        import torch.nn as nn

        side = int(round(n_features ** 0.5))
        mods = OrderedDict([("reshape", nn.Unflatten(1, (1, side, side))), *self.torch_convs(spec, dtype),
                            ("flatten", nn.Flatten()),
                            ("dense0", nn.Linear(CONV_CHANNELS[-1] * side * side, spec.hidden[-1], dtype=dtype)),
                            ("dense0_relu", nn.ReLU()),
                            ("out", nn.Linear(spec.hidden[-1], n_outputs, dtype=dtype))])
        return nn.Sequential(mods)

    def keras_convs(self, spec: RunSpec) -> list[Any]:
        import keras

        return [keras.layers.Conv2D(c, 3, padding="same", activation="relu", name=f"conv{i}", dtype=spec.dtype)
                for i, c in enumerate(CONV_CHANNELS)]

    def keras_model(self, spec: RunSpec, n_features: int, n_outputs: int):
        import keras

        side = int(round(n_features ** 0.5))
        return keras.Sequential([
            keras.Input((n_features,), dtype=spec.dtype, name="x"),
            keras.layers.Reshape((side, side, 1), name="reshape", dtype=spec.dtype), *self.keras_convs(spec),
            keras.layers.Flatten(name="flatten", dtype=spec.dtype),
            keras.layers.Dense(spec.hidden[-1], activation="relu", name="dense0", dtype=spec.dtype),
            keras.layers.Dense(n_outputs, name="out", dtype=spec.dtype)], name="model")
