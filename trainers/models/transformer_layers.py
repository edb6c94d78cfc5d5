"""The layers of the `transformer` pair (trainers.models.transformer), each framework's classes made
on first use, so that importing this module imports no framework.

torch: CharTransformer, stock nn.TransformerEncoderLayer blocks (pre-norm, GELU) between a token and
a learned position embedding and a final LayerNorm and Linear head. Each block's packed
`self_attn.in_proj_weight` [3d, d] (and in_proj_bias [3d]) is registered as a parametrization of
three tensors, query, key and value [d, d] ([d]), concatenated when the layer reads it: the layer's
arithmetic is unchanged (torch.cat is exact) and so is the optimizer's (SGD and Adam act element by
element, clip_grad_norm_ on the same elements), but each third is one tensor with one Keras
counterpart, Keras' per-head query/key/value kernels.

Keras: stock keras.layers.MultiHeadAttention, LayerNormalization, Dense and Embedding, plus
- DenseGradEmbedding: keras.layers.Embedding whose gradient is a dense tensor. The stock layer's
  gather gives tf.IndexedSlices, which the trainers' histograms (.numpy()) and torch's optimizer
  arithmetic do not take; the dense form is the same numbers (the rows of a repeated id summed in
  order). Both inits.
- ExactScaleAttention (init=shared): keras.layers.MultiHeadAttention whose 1/sqrt(head_dim) is a
  float64 number. The stock layer passes a Python float to tf.cast, which makes it a float32 tensor
  first: in a float64 run the attention logits are scaled by 0.1767766922712326 for head_dim 32
  (torch: 0.17677669529663687), 1.7e-8 relative, 1e-8 in the loss at step 1.
- torch_gelu (init=shared): torch's exact GELU, x*0.5*(1 + erf(x*sqrt(1/2))), its constant in the run
  dtype. keras.activations.gelu (what the string "gelu" gives; approximate=False) calls
  tf.nn.gelu, 0.5*x*erfc(-x*c) with c = 1/sqrt(2) cast through float32 in a float64 run (1.7e-8).
  (keras.ops.gelu defaults to approximate=True, the tanh form.)
"""
from __future__ import annotations

import functools
import math

import numpy as np

SQRT1_2 = math.sqrt(0.5)  # M_SQRT1_2, torch's GELU constant


@functools.cache
def torch_classes() -> dict:
    """{"model": CharTransformer, "split": split_in_proj}."""
    import torch
    import torch.nn as nn
    from torch.nn.utils import parametrize

    class PackedThirds(nn.Module):
        """in_proj_weight/in_proj_bias = cat(query, key, value): the tensor nn.MultiheadAttention reads."""

        def forward(self, q, k, v):
            return torch.cat([q, k, v])

        def right_inverse(self, packed):
            return tuple(t.clone() for t in packed.chunk(3))

    def split_in_proj(attn: nn.MultiheadAttention) -> None:
        """Hold the packed projection as three parameters (".parametrizations.in_proj_weight.original0..2"),
        with the values the layer had (its native init survives the split)."""
        for name in ("in_proj_weight", "in_proj_bias"):
            parametrize.register_parametrization(attn, name, PackedThirds())

    class CharTransformer(nn.Module):
        """tok + pos -> layer0..layerN-1 (nn.TransformerEncoderLayer, causal) -> norm -> out: logits
        [N, T, vocab] of the next character at every position."""

        def __init__(self, vocab: int, window: int, d: int, heads: int, layers: int, dropout: float,
                     eps: float, dtype):
            super().__init__()
            self.tok = nn.Embedding(vocab, d, dtype=dtype)
            self.pos = nn.Embedding(window, d, dtype=dtype)
            self.blocks = []  # the same modules as layer0.., in order (not registered twice)
            for i in range(layers):
                block = nn.TransformerEncoderLayer(d, heads, dim_feedforward=4 * d, dropout=dropout,
                                                   activation="gelu", layer_norm_eps=eps, batch_first=True,
                                                   norm_first=True, dtype=dtype)
                split_in_proj(block.self_attn)
                self.add_module(f"layer{i}", block)
                self.blocks.append(block)
            self.norm = nn.LayerNorm(d, eps=eps, dtype=dtype)
            self.out = nn.Linear(d, vocab, dtype=dtype)
            self.register_buffer("causal", nn.Transformer.generate_square_subsequent_mask(window, dtype=dtype),
                                 persistent=False)
            self.register_buffer("positions", torch.arange(window), persistent=False)

        def hidden(self, x):
            """The final LayerNorm's output [N, T, d]."""
            h = self.tok(x) + self.pos(self.positions.expand(x.shape[0], -1))  # [N, T] ids, as Keras' gather
            for block in self.blocks:
                h = block(h, src_mask=self.causal, is_causal=True)
            return self.norm(h)

        def forward(self, x):
            return self.out(self.hidden(x))

    return {"model": CharTransformer, "split": split_in_proj}


@functools.cache
def keras_classes() -> dict:
    """{"embedding": DenseGradEmbedding, "attention": ExactScaleAttention, "gelu": torch_gelu}."""
    import keras
    import tensorflow as tf

    class DenseGradEmbedding(keras.layers.Embedding):
        """keras.layers.Embedding (its variable, initializer and gather) with a dense gradient."""

        def call(self, inputs):
            return dense_gather(tf.convert_to_tensor(self.embeddings.value), inputs)

    @tf.custom_gradient
    def dense_gather(table, ids):
        def grad(g):
            rows = tf.reshape(g, [-1, tf.shape(table)[-1]])
            return tf.math.unsorted_segment_sum(rows, tf.reshape(ids, [-1]), tf.shape(table)[0]), None
        return tf.gather(table, ids), grad

    class ExactScaleAttention(keras.layers.MultiHeadAttention):
        """keras.layers.MultiHeadAttention with 1/sqrt(key_dim) as numpy float64 (tf.cast keeps it)."""

        def __init__(self, *args, **kwargs):
            super().__init__(*args, **kwargs)
            self._inverse_sqrt_key_dim = np.float64(1.0 / math.sqrt(float(self._key_dim)))

    def torch_gelu(x):
        """torch.nn.functional.gelu(approximate='none') as its CPU kernel writes it."""
        half, one, alpha = (tf.constant(c, x.dtype) for c in (0.5, 1.0, SQRT1_2))
        return x * half * (one + tf.math.erf(x * alpha))

    return {"embedding": DenseGradEmbedding, "attention": ExactScaleAttention, "gelu": torch_gelu}
