"""`transformer`: a character language model on task text, a small pre-norm encoder with a causal mask.

tok (token embedding) + pos (learned position embedding) -> TRANSFORMER_LAYERS blocks of
x + attention(norm1(x)), x + linear2(gelu(linear1(norm2(x)))) -> norm -> out: the next character's
logits at each of the 32 positions, [N, 32, vocab]; the loss is the mean cross-entropy over every
position. d_model = hidden[0], HEADS heads, feed-forward 4*d_model. Layer names are torch's module
paths (layer0.self_attn, layer0.linear1, ...) and the Keras layers carry the same names, so the
layers table, the histograms and the graphs line up by name.

Where torch and Keras differ (settings() names each; trainers/models/transformer_layers.py has the
layers written here and why):

| | torch | Keras |
|---|---|---|
| attention weights | in_proj_weight [3d, d] packed (q, k, v rows), in_proj_bias [3d], out_proj [d, d] | query/key/value kernels [d, heads, head_dim], biases [heads, head_dim], output kernel [heads, head_dim, d] |
| LayerNorm eps | 1e-5 | 1e-3 |
| GELU | exact (erf) | exact for the string "gelu" (keras.ops.gelu alone: tanh) |
| float64 constants | double | 1/sqrt(head_dim) and GELU's 1/sqrt(2) rounded to float32 |
| dropout | 0.1 (TransformerEncoderLayer) | 0.0 (MultiHeadAttention) |
| init | xavier_uniform in_proj on [3d, d], zero attention biases, kaiming_uniform(a=sqrt(5)) Linear, N(0, 1) embeddings | glorot_uniform with fans of the 3-D kernels, zero biases, U(±0.05) embeddings |
| inference | eval + no_grad: the fused fast path (torch._transformer_encoder_layer_fwd) | the training layers |

With init=shared both sides load one init.npz, dropout is 0, Keras' LayerNorm eps is torch's 1e-5,
and Keras runs ExactScaleAttention and torch_gelu (torch's constants in the run dtype).
"""
from __future__ import annotations

import math
from typing import Any

import numpy as np

from trainers.models.base import ModelPair, Param, fan_in_uniform, xavier_uniform
from trainers.models.classic import dense_params
from trainers.models.transformer_layers import keras_classes, torch_classes
from twinboard.contract import RunSpec
from twinboard.contract.costs import TRANSFORMER_LAYERS
from twinboard.contract.spec import TRANSFORMER_HEADS

HEADS = TRANSFORMER_HEADS
TORCH_EPS, KERAS_EPS = 1e-5, 1e-3  # LayerNorm: nn.LayerNorm's and keras.layers.LayerNormalization's defaults
TORCH_DROPOUT = 0.1  # nn.TransformerEncoderLayer's default, under init=native
PROJECTIONS = ("query", "key", "value")  # the thirds of torch's in_proj_weight, in its row order
SHARED = "shared init.npz: torch's defaults drawn in numpy"


def dims(spec: RunSpec) -> tuple[int, int]:
    """(d_model, head_dim); ValueError unless hidden[0] splits into HEADS heads."""
    d = spec.hidden[0]
    if d % HEADS:
        raise ValueError(f"transformer: d_model = hidden[0] = {d} must be a multiple of its {HEADS} attention "
                         f"heads (e.g. {d + 1})")
    return d, d // HEADS


def to_heads(d: int, hd: int):
    """Linear weight [h*hd (out), d (in)] -> EinsumDense kernel [d, h, hd]: output unit head*hd + j is
    head `head`'s j-th, as torch's view(..., heads, head_dim) splits it."""
    return lambda a: a.T.reshape(d, HEADS, hd)


def bias_to_heads(hd: int):
    return lambda a: a.reshape(HEADS, hd)


def from_heads(d: int, hd: int):
    """out_proj weight [d (out), h*hd (in)] -> the output EinsumDense kernel [h, hd, d]."""
    return lambda a: a.T.reshape(HEADS, hd, d)


def norm_params(name: str, d: int) -> list[Param]:
    return [Param(f"{name}.weight", (d,), f"{name}/gamma", f"{name}/gamma", ("const", 1.0)),
            Param(f"{name}.bias", (d,), f"{name}/beta", f"{name}/beta", ("const", 0.0))]


def attention_params(name: str, d: int, hd: int) -> list[Param]:
    """torch's in_proj thirds (the parametrization's original0..2) and out_proj, against Keras'
    query/key/value/attention_output EinsumDense variables. torch's init: xavier_uniform on the
    packed [3d, d] (fan_in d, fan_out 3d), zero biases; out_proj's weight is a Linear's."""
    out = []
    for part, what in (("weight", "kernel"), ("bias", "bias")):
        for i, proj in enumerate(PROJECTIONS):
            shape, init, fn = (((d, d), xavier_uniform(d, 3 * d), to_heads(d, hd)) if part == "weight" else
                               ((d,), ("const", 0.0), bias_to_heads(hd)))
            out.append(Param(f"{name}.parametrizations.in_proj_{part}.original{i}", shape, f"{name}/{proj}/{what}",
                             f"{name}/{proj}_{what}", init, fn))
    return [*out,
            Param(f"{name}.out_proj.weight", (d, d), f"{name}/attention_output/kernel", f"{name}/out_kernel",
                  fan_in_uniform(d), from_heads(d, hd)),
            Param(f"{name}.out_proj.bias", (d,), f"{name}/attention_output/bias", f"{name}/out_bias", ("const", 0.0))]


class Transformer(ModelPair):
    def __init__(self):
        super().__init__("transformer", layout=("NTC", "NTC"), native_init=(
            ("nn.TransformerEncoderLayer: in_proj xavier_uniform on [3d, d], attention biases zeros, Linear "
             "kaiming_uniform(a=sqrt(5)) with bias U(±1/sqrt(fan_in)); nn.Embedding N(0, 1); LayerNorm 1, 0"),
            ("MultiHeadAttention and Dense glorot_uniform (fans of the [d, heads, head_dim] kernels), biases zeros; "
             "Embedding U(±0.05); LayerNormalization 1, 0 (keras.utils.set_random_seed(seed))")))

    # --- the plan ------------------------------------------------------------------------------------
    def params(self, spec: RunSpec, n_features: int, n_outputs: int) -> list[Param]:
        """n_features is the window (32 characters), n_outputs the vocabulary."""
        (d, hd), window, vocab = dims(spec), n_features, n_outputs
        out = [Param("tok.weight", (vocab, d), "tok/embeddings", "tok/embeddings", ("normal", 1.0)),
               Param("pos.weight", (window, d), "pos/embeddings", "pos/embeddings", ("normal", 1.0))]
        for i in range(TRANSFORMER_LAYERS):
            out += [*norm_params(f"layer{i}.norm1", d), *attention_params(f"layer{i}.self_attn", d, hd),
                    *norm_params(f"layer{i}.norm2", d), *dense_params(f"layer{i}.linear1", 4 * d, d),
                    *dense_params(f"layer{i}.linear2", d, 4 * d)]
        return [*out, *norm_params("norm", d), *dense_params("out", vocab, d)]

    def torch_loss(self, classify: bool):
        """Mean cross-entropy over every position: [N, T, V] logits against [N, T] next characters."""
        import torch.nn.functional as F

        def loss(out, y):
            return F.cross_entropy(out.reshape(-1, out.shape[-1]), y.reshape(-1))
        return loss

    # --- the two models ------------------------------------------------------------------------------
    def torch_model(self, spec: RunSpec, n_features: int, n_outputs: int, dtype: Any):
        d, _ = dims(spec)
        dropout = 0.0 if spec.init == "shared" else TORCH_DROPOUT
        return torch_classes()["model"](n_outputs, n_features, d, HEADS, TRANSFORMER_LAYERS, dropout, TORCH_EPS,
                                        dtype)

    def keras_layers(self, spec: RunSpec, n_features: int, n_outputs: int) -> dict[str, Any]:
        import keras

        (d, hd), shared, kc, dt = dims(spec), spec.init == "shared", keras_classes(), spec.dtype
        eps = TORCH_EPS if shared else KERAS_EPS
        attention = kc["attention"] if shared else keras.layers.MultiHeadAttention
        gelu = kc["gelu"] if shared else "gelu"
        layers = {"tok": kc["embedding"](n_outputs, d, name="tok", dtype=dt),
                  "pos": kc["embedding"](n_features, d, name="pos", dtype=dt)}
        for i in range(TRANSFORMER_LAYERS):
            p = f"layer{i}."
            layers.update({p + "norm1": keras.layers.LayerNormalization(epsilon=eps, name=p + "norm1", dtype=dt),
                           p + "self_attn": attention(HEADS, hd, name=p + "self_attn", dtype=dt),
                           p + "norm2": keras.layers.LayerNormalization(epsilon=eps, name=p + "norm2", dtype=dt),
                           p + "linear1": keras.layers.Dense(4 * d, activation=gelu, name=p + "linear1", dtype=dt),
                           p + "linear2": keras.layers.Dense(d, name=p + "linear2", dtype=dt)})
        layers["norm"] = keras.layers.LayerNormalization(epsilon=eps, name="norm", dtype=dt)
        layers["out"] = keras.layers.Dense(n_outputs, name="out", dtype=dt)
        return layers

    @staticmethod
    def keras_forward(layers: dict[str, Any], x, training=None):
        """(final LayerNorm's output, logits) of ids x [N, T]: the model's graph, and its features."""
        from keras import ops

        positions = ops.zeros_like(x) + ops.arange(x.shape[1], dtype=x.dtype)  # [N, T], as torch's expand
        h = layers["tok"](x) + layers["pos"](positions)
        for i in range(TRANSFORMER_LAYERS):
            p = f"layer{i}."
            a = layers[p + "norm1"](h)
            h = h + layers[p + "self_attn"](a, a, use_causal_mask=True, training=training)
            h = h + layers[p + "linear2"](layers[p + "linear1"](layers[p + "norm2"](h)))
        h = layers["norm"](h)
        return h, layers["out"](h)

    def keras_model(self, spec: RunSpec, n_features: int, n_outputs: int):
        import keras

        x = keras.Input((n_features,), dtype="int64", name="x")
        _, logits = self.keras_forward(self.keras_layers(spec, n_features, n_outputs), x)
        return keras.Model(x, logits, name="model")

    def torch_features(self, model, x):
        """(the final LayerNorm's output at the last position [N, d], the logits there [N, vocab])."""
        h = model.hidden(x)
        return h[:, -1], model.out(h[:, -1])

    def keras_features(self, model, x):
        h, logits = self.keras_forward({lyr.name: lyr for lyr in model.layers}, x, training=False)
        return h[:, -1], logits[:, -1]

    # --- what ran ------------------------------------------------------------------------------------
    def settings(self, framework: str, spec: RunSpec) -> dict[str, Any]:
        """settings.json's "dropout" (the rate that ran) and "layer_defaults", the same keys on both
        sides and the same values where the two do the same (the Parity page diffs them key by key)."""
        (d, hd), torch_side, shared = dims(spec), framework == "torch", spec.init == "shared"
        stock = not (torch_side or shared)  # Keras' own layers and defaults
        f32 = stock and spec.dtype == "float64"  # Keras' Python-float constants go through float32
        scale = float(np.float32(1.0 / math.sqrt(hd))) if f32 else 1.0 / math.sqrt(hd)
        if torch_side:
            impl = ("nn.TransformerEncoderLayer(norm_first=True, batch_first=True, activation='gelu'), "
                    "nn.Embedding, nn.LayerNorm, nn.Linear; in_proj held as three parametrizations "
                    "(trainers/models/transformer_layers.py)")
            layout = ("in_proj_weight [3d, d]: q, k, v rows packed (three [d, d] parametrizations), "
                      "in_proj_bias [3d]; out_proj.weight [d, d] (out, in)")
            kernel = "F.scaled_dot_product_attention(is_causal=True): the CPU flash kernel, blocked online softmax"
            inference = "eval + no_grad: nn.TransformerEncoderLayer's fused fast path (_transformer_encoder_layer_fwd)"
        else:
            impl = ("keras.layers.MultiHeadAttention, LayerNormalization, Dense, Embedding" if stock else
                    "keras.layers.MultiHeadAttention as ExactScaleAttention, LayerNormalization, Dense with "
                    "torch_gelu, Embedding") + "; DenseGradEmbedding's dense gradient (trainers/models/transformer_layers.py)"
            layout = ("query/key/value kernels [d, heads, head_dim], biases [heads, head_dim]; "
                      "attention_output kernel [heads, head_dim, d]")
            kernel = "keras.ops.dot_product_attention(is_causal=True): einsum, softmax, einsum"
            inference = "model(x, training=False): the layers training runs"
        gelu = "exact: x*0.5*(1 + erf(x*sqrt(1/2))), constants in the run dtype"
        if stock:
            gelu = ("exact: tf.nn.gelu's 0.5*x*erfc(-x*c), c = 1/sqrt(2)" + (" rounded to float32" if f32 else "") +
                    " (keras.activations.gelu, approximate=False for 'gelu'; keras.ops.gelu's default is tanh)")
        if shared:
            inits = {k: SHARED for k in ("embeddings", "attention", "dense", "layer_norm")}
        elif torch_side:
            inits = {"embeddings": "N(0, 1)",
                     "attention": "in_proj xavier_uniform on the packed [3d, d]: U(±sqrt(6/(4d))); biases zeros; "
                                  "out_proj kaiming_uniform(a=sqrt(5))",
                     "dense": "kaiming_uniform(a=sqrt(5)), bias U(±1/sqrt(fan_in))", "layer_norm": "ones, zeros"}
        else:
            inits = {"embeddings": "U(±0.05)",
                     "attention": "glorot_uniform on [d, heads, head_dim]: U(±sqrt(6/(d*(heads + head_dim)))), "
                                  "output on [heads, head_dim, d]: U(±sqrt(6/(3d))); biases zeros",
                     "dense": "glorot_uniform, bias zeros", "layer_norm": "ones, zeros"}
        return {"dropout": TORCH_DROPOUT if torch_side and not shared else 0.0, "layer_defaults": {
            "d_model": d, "heads": HEADS, "head_dim": hd, "feed_forward": 4 * d, "layers": TRANSFORMER_LAYERS,
            "norm": "pre-norm: x + f(LayerNorm(x))", "causal_mask": "position t attends to positions 0..t",
            "implementation": impl, "attention_layout": layout, "attention_kernel": kernel,
            "attention_scale": scale, "layer_norm_eps": KERAS_EPS if stock else TORCH_EPS, "gelu": gelu,
            "inference": inference, "initializers": inits}}
