"""The recurrent layers of the `gru` and `lstm` pairs (trainers.models.recurrent), each framework's
classes made on first use, so that importing this module imports no framework.

torch: nn.GRU/nn.LSTM returning their last hidden state h_n [N, hidden], as Keras' layers do
(return_sequences=False), so the layers table shows the same output shape on both sides.
Keras: SplitBiasGRUCell, Keras' own GRUCell whose [2, 3h] bias is held as two [3h] variables, and
TorchLSTMCell, torch's LSTM cell: two biases and torch's order of additions.
"""
from __future__ import annotations

import functools


@functools.cache
def torch_layers() -> dict:
    """{"gru": GRU, "lstm": LSTM}: torch's modules, forward(x [N, T, C]) -> h_n of the (one) layer."""
    from torch import nn

    class GRU(nn.GRU):
        """torch.nn.GRU returning h_n[-1], [N, hidden]."""

        def forward(self, x):
            return super().forward(x)[1][-1]

    class LSTM(nn.LSTM):
        """torch.nn.LSTM returning h_n[-1], [N, hidden] (not the cell state c_n)."""

        def forward(self, x):
            return super().forward(x)[1][0][-1]

    return {"gru": GRU, "lstm": LSTM}


@functools.cache
def keras_cells() -> dict:
    """{"gru": SplitBiasGRUCell, "lstm": TorchLSTMCell}: cells for keras.layers.RNN."""
    import keras
    from keras import ops

    class SplitBiasGRUCell(keras.layers.GRUCell):
        """keras.layers.GRUCell (reset_after=True, its defaults, its call()) whose bias is two
        variables, bias_ih and bias_hh [3h], the rows of Keras' [2, 3h] bias (input, recurrent):
        torch's b_ih and b_hh, one variable each, with the gates in Keras' order z, r, h."""

        def __init__(self, units, **kwargs):
            kwargs.pop("reset_after", None)
            super().__init__(units, reset_after=True, **kwargs)

        def build(self, input_shape):
            keras.layers.Layer.build(self, input_shape)  # not GRUCell.build: it makes the one bias
            width = 3 * self.units
            self.kernel = self.add_weight(shape=(input_shape[-1], width), name="kernel",
                                          initializer=self.kernel_initializer)
            self.recurrent_kernel = self.add_weight(shape=(self.units, width), name="recurrent_kernel",
                                                    initializer=self.recurrent_initializer)
            self.bias_ih = self.add_weight(shape=(width,), name="bias_ih", initializer=self.bias_initializer)
            self.bias_hh = self.add_weight(shape=(width,), name="bias_hh", initializer=self.bias_initializer)

        @property
        def bias(self):
            """What GRUCell.call reads: Keras' [2, 3h] bias, stacked (exact: no arithmetic)."""
            return ops.stack([self.bias_ih.value, self.bias_hh.value])

    class TorchLSTMCell(keras.layers.Layer):
        """torch's LSTM cell (aten LSTMCell on CPU): gates = (h W_hh^T + b_hh) + (x W_ih^T + b_ih),
        gate order i, f, g, o; c' = f*c + i*g; h' = o*tanh(c'). Kernels in Keras' layout
        ([in, 4h], [h, 4h]); Keras' LSTM initializers (glorot_uniform, orthogonal, the forget
        gate's bias 1 in bias_ih and bias_hh zeros: the sum is keras.layers.LSTM's bias)."""

        def __init__(self, units, **kwargs):
            super().__init__(**kwargs)
            self.units = units
            self.state_size = [units, units]
            self.output_size = units

        def build(self, input_shape):
            width, h = 4 * self.units, self.units

            def unit_forget(shape, dtype=None):
                return ops.concatenate([ops.zeros((h,), dtype), ops.ones((h,), dtype), ops.zeros((2 * h,), dtype)])

            self.kernel = self.add_weight(shape=(input_shape[-1], width), name="kernel",
                                          initializer="glorot_uniform")
            self.recurrent_kernel = self.add_weight(shape=(h, width), name="recurrent_kernel",
                                                    initializer="orthogonal")
            self.bias_ih = self.add_weight(shape=(width,), name="bias_ih", initializer=unit_forget)
            self.bias_hh = self.add_weight(shape=(width,), name="bias_hh", initializer="zeros")

        def call(self, inputs, states, training=False):
            h, c = states
            gates = ((ops.matmul(h, self.recurrent_kernel) + self.bias_hh)
                     + (ops.matmul(inputs, self.kernel) + self.bias_ih))
            i, f, g, o = ops.split(gates, 4, axis=-1)
            c = ops.sigmoid(f) * c + ops.sigmoid(i) * ops.tanh(g)
            h = ops.sigmoid(o) * ops.tanh(c)
            return h, [h, c]

        def get_config(self):
            return {**super().get_config(), "units": self.units}

    return {"gru": SplitBiasGRUCell, "lstm": TorchLSTMCell}
