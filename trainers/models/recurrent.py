"""`gru` and `lstm`: the 8x8 digits read row by row, 8 steps of 8 pixels, by one recurrent layer of
hidden[0] units whose last hidden state feeds the dense layer `out`.

Where torch.nn.GRU/LSTM and keras.layers.GRU/LSTM differ:

| | torch | Keras |
|---|---|---|
| biases | b_ih and b_hh, [gates*h] each | GRU (reset_after=True): one [2, 3h] variable, its rows the same two; LSTM: one [4h] |
| GRU gate order | r, z, n (rows of weight_ih/hh) | z, r, h (columns of kernel/recurrent_kernel) |
| GRU update | h' = (1 - z)*n + z*h, computed (h - n)*z + n | h = z*h + (1 - z)*hh |
| initializers | U(±1/sqrt(h)) for every tensor | kernel glorot_uniform, recurrent orthogonal, bias zeros; LSTM forget-gate bias 1 |

With init=shared the LSTM runs TorchLSTMCell (recurrent_cells): torch's two biases and its order of
additions, in keras.layers.RNN; the GRU runs Keras' own GRUCell arithmetic (reset_after=True is
torch's form) with its [2, 3h] bias held as two [3h] variables, so each torch tensor has one Keras
variable, and torch's r, z rows swapped into Keras' z, r order when the shared weights load. With
init=native each side runs its own layer and initializers: Keras' GRU cell (split bias) and, for the
LSTM, keras.layers.LSTM when the trainers hand each side its own plan (`side_params`; until then
TorchLSTMCell with Keras' initializers, one bias's worth of them: see LSTM.keras_stock).
Inference equals training for both layers (no dropout): evaluation mode changes nothing.
"""
from __future__ import annotations

import math
from collections import OrderedDict
from typing import Any

import numpy as np

from trainers.models.base import ModelPair, Param
from trainers.models.classic import MLP, dense_params
from trainers.models.recurrent_cells import keras_cells, torch_layers
from twinboard.contract import RunSpec

ROWS = 8  # digits: the 8x8 image as 8 steps of 8 pixels (twinboard.contract.costs.model_costs counts the same)
GATES = {"gru": ("r", "z", "n"), "lstm": ("i", "f", "g", "o")}  # torch's gate order, rows of weight_ih/hh
KERAS_GRU_GATES = ("z", "r", "h")  # Keras' GRU: the columns of kernel/recurrent_kernel, bias rows
TORCH_INIT = "U(±1/sqrt(hidden))"  # torch.nn.GRU/LSTM.reset_parameters: every tensor


def initializers(framework: str, spec: RunSpec, keras_biases: str) -> dict[str, str]:
    """settings' layer_defaults.<layer>.initializers: the shared init.npz, or each side's own."""
    if spec.init == "shared":
        return dict.fromkeys(("kernel", "recurrent_kernel", "biases"), f"shared init.npz: torch's {TORCH_INIT}")
    if framework == "torch":
        return dict.fromkeys(("kernel", "recurrent_kernel", "biases"), TORCH_INIT)
    return {"kernel": "glorot_uniform", "recurrent_kernel": "orthogonal", "biases": keras_biases}


def gru_columns(h: int) -> np.ndarray:
    """Torch's GRU rows [r; z; n] in Keras' column order [z, r, h]: keras = torch[perm]."""
    return np.concatenate([np.arange(h, 2 * h), np.arange(h), np.arange(2 * h, 3 * h)])


class Recurrent(MLP):
    """The pair's common part; `kind` is the layer's name, its torch module and its histogram tags."""
    kind = ""

    def __init__(self, native_keras: str):
        layer = self.kind.upper()
        torch_init = (f"U(±1/sqrt(hidden)) for every {layer} tensor (torch.nn.{layer}); Linear "
                      "kaiming_uniform(a=sqrt(5)), bias U(±1/sqrt(fan_in))")
        keras_init = f"{native_keras}; Dense glorot_uniform, zeros bias (keras.utils.set_random_seed(seed))"
        ModelPair.__init__(self, self.kind, layout=("NTC", "NTC"), native_init=(torch_init, keras_init))

    @staticmethod
    def shape(n_features: int) -> tuple[int, int]:
        return ROWS, n_features // ROWS

    def rnn_params(self, h: int, cols: int, keras_cell: str, reorder: np.ndarray | None = None) -> list[Param]:
        """weight_ih [G*h, cols] -> kernel [cols, G*h], weight_hh -> recurrent_kernel, b_ih -> bias_ih,
        b_hh -> bias_hh; `reorder` puts torch's gate rows in Keras' order. torch's init: U(±1/sqrt(h))."""
        g, k, u = len(GATES[self.kind]) * h, self.kind, ("uniform", 1.0 / math.sqrt(h))
        rows = (lambda a: a) if reorder is None else (lambda a: a[reorder])
        path = f"{k}/{keras_cell}"
        return [Param(f"{k}.weight_ih_l0", (g, cols), f"{path}/kernel", f"{k}/kernel", u, lambda a: rows(a).T),
                Param(f"{k}.weight_hh_l0", (g, h), f"{path}/recurrent_kernel", f"{k}/recurrent_kernel", u,
                      lambda a: rows(a).T),
                Param(f"{k}.bias_ih_l0", (g,), f"{path}/bias_ih", f"{k}/bias_ih", u, rows),
                Param(f"{k}.bias_hh_l0", (g,), f"{path}/bias_hh", f"{k}/bias_hh", u, rows)]

    def torch_model(self, spec: RunSpec, n_features: int, n_outputs: int, dtype: Any):
        from torch import nn

        rows, cols = self.shape(n_features)
        return nn.Sequential(OrderedDict([
            ("rows", nn.Unflatten(1, (rows, cols))),
            (self.kind, torch_layers()[self.kind](cols, spec.hidden[0], batch_first=True, dtype=dtype)),
            ("out", nn.Linear(spec.hidden[0], n_outputs, dtype=dtype))]))

    def keras_layer(self, spec: RunSpec):
        raise NotImplementedError

    def keras_model(self, spec: RunSpec, n_features: int, n_outputs: int):
        import keras

        rows, cols = self.shape(n_features)
        return keras.Sequential([
            keras.Input((n_features,), dtype=spec.dtype, name="x"),
            keras.layers.Reshape((rows, cols), name="rows", dtype=spec.dtype), self.keras_layer(spec),
            keras.layers.Dense(n_outputs, name="out", dtype=spec.dtype)], name="model")

    def layer_settings(self, framework: str, spec: RunSpec) -> dict[str, Any]:
        raise NotImplementedError

    def settings(self, framework: str, spec: RunSpec) -> dict[str, Any]:
        """settings.json's "layer_defaults": what each side's recurrent layer really ran, under the
        same keys on both sides (the Parity page diffs them); "out" is the dense head's initializers."""
        if spec.init == "shared":
            out = "shared init.npz: kaiming_uniform(a=sqrt(5)), bias U(±1/sqrt(fan_in))"
        elif framework == "torch":
            out = "kaiming_uniform(a=sqrt(5)), bias U(±1/sqrt(fan_in))"
        else:
            out = "glorot_uniform, bias zeros"
        return {"layer_defaults": {self.kind: self.layer_settings(framework, spec), "out": out}}


class GRU(Recurrent):
    """torch.nn.GRU against Keras' GRU cell (reset_after=True), its bias split in two (SplitBiasGRUCell)."""
    kind = "gru"

    def __init__(self):
        super().__init__("GRU kernel glorot_uniform, recurrent_kernel orthogonal, biases zeros")

    def params(self, spec: RunSpec, n_features: int, n_outputs: int) -> list[Param]:
        h, cols = spec.hidden[0], self.shape(n_features)[1]
        return [*self.rnn_params(h, cols, "gru_cell", gru_columns(h)), *dense_params("out", n_outputs, h)]

    def keras_layer(self, spec: RunSpec):
        import keras

        cell = keras_cells()["gru"](spec.hidden[0], name="gru_cell", dtype=spec.dtype)
        return keras.layers.RNN(cell, name="gru", dtype=spec.dtype)

    def layer_settings(self, framework: str, spec: RunSpec) -> dict[str, Any]:
        torch_side = framework == "torch"
        init = initializers(framework, spec, "zeros")
        return {
            "implementation": ("torch.nn.GRU(batch_first=True), its last hidden state h_n" if torch_side else
                               "keras.layers.GRUCell's arithmetic (reset_after=True) in keras.layers.RNN, its "
                               "[2, 3h] bias held as two [3h] variables (SplitBiasGRUCell, "
                               "trainers/models/recurrent_cells.py)"),
            "gate_order": ",".join(GATES["gru"] if torch_side else KERAS_GRU_GATES),
            "reset_after": True,  # torch's only form: n = tanh(W_in x + b_in + r*(W_hn h + b_hn))
            "biases": "input and recurrent, [3h] each",
            "update": "h' = (h - n)*z + n" if torch_side else "h = z*h + (1 - z)*hh",
            "initializers": init,
        }


class LSTM(Recurrent):
    """torch.nn.LSTM against TorchLSTMCell (init=shared) or Keras' LSTM (init=native)."""
    kind = "lstm"

    def __init__(self):
        super().__init__("LSTM kernel glorot_uniform, recurrent_kernel orthogonal, bias zeros with the forget "
                         "gate's 1 (unit_forget_bias)")

    # keras.layers.LSTM itself (one bias) needs a plan of its own on the TensorFlow side, where torch's
    # b_hh has no counterpart: the trainers hand each side its own plan once ModelPair has
    # side_params (the hook this pair asks for). Until then init=native runs TorchLSTMCell with
    # Keras' initializers, the forget gate's 1 in bias_ih and bias_hh zeros (their sum is Keras' bias).
    stock_native = hasattr(ModelPair, "side_params")

    def keras_stock(self, spec: RunSpec) -> bool:
        return spec.init == "native" and self.stock_native

    def params(self, spec: RunSpec, n_features: int, n_outputs: int) -> list[Param]:
        h, cols = spec.hidden[0], self.shape(n_features)[1]
        return [*self.rnn_params(h, cols, "lstm_cell"), *dense_params("out", n_outputs, h)]

    def side_params(self, framework: str, spec: RunSpec, n_features: int, n_outputs: int) -> list[Param]:
        """Each side's own tensors: Keras' stock LSTM under init=native has one bias, [4h] (tag
        lstm/bias); everything else is `params`."""
        plan = self.params(spec, n_features, n_outputs)
        if framework == "torch" or not self.keras_stock(spec):
            return plan
        bias = Param("lstm.bias", (plan[2].shape[0],), "lstm/lstm_cell/bias", "lstm/bias", ("const", 0.0))
        return [*plan[:2], bias, *plan[4:]]

    def keras_layer(self, spec: RunSpec):
        import keras

        if self.keras_stock(spec):
            return keras.layers.LSTM(spec.hidden[0], name="lstm", dtype=spec.dtype)
        cell = keras_cells()["lstm"](spec.hidden[0], name="lstm_cell", dtype=spec.dtype)
        return keras.layers.RNN(cell, name="lstm", dtype=spec.dtype)

    def layer_settings(self, framework: str, spec: RunSpec) -> dict[str, Any]:
        torch_side, shared = framework == "torch", spec.init == "shared"
        stock = not torch_side and self.keras_stock(spec)
        init = initializers(framework, spec, "zeros, the forget gate's 1" + (
            "" if stock else " (in bias_ih; bias_hh zeros)"))
        if torch_side:  # on CPU, float32 runs oneDNN's fused LSTM (aten::mkldnn_rnn_layer), float64 aten's cell
            impl = "torch.nn.LSTM(batch_first=True), its last hidden state h_n; on CPU " + (
                "oneDNN's fused LSTM (mkldnn_rnn_layer)" if spec.dtype == "float32" else "aten's LSTMCell")
        elif stock:
            impl = "keras.layers.LSTM"
        else:
            impl = ("TorchLSTMCell (trainers/models/recurrent_cells.py) in keras.layers.RNN: torch's two "
                    "biases and order of additions")
        return {
            "implementation": impl,
            "gate_order": ",".join(GATES["lstm"]),
            "biases": "input and recurrent, [4h] each" if not stock else "one, [4h]",
            "unit_forget_bias": not (torch_side or shared),
            "gates_sum": ("(W_hh h + b_hh) + (W_ih x + b_ih)" if not stock else "(x kernel + h recurrent_kernel) + bias"),
            "initializers": init,
        }
