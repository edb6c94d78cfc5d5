"""resmlp: a pre-norm residual MLP, the worked example of a model plugin (README, "Bring your own
model pair"; the API is trainers/models/plugins.py's docstring). Any task with flat inputs: digits,
spirals, regression.

    stem    Linear/Dense n_features -> hidden[0], ReLU
    block i h = h + proj(relu(fc(norm(h))))      one block per entry of hidden: norm a LayerNorm,
                                                 fc hidden[0] -> hidden[i], proj back to hidden[0]
    head_norm LayerNorm, then out (hidden[0] -> n_outputs)

torch names its tensors block0.norm.weight, block0.fc.weight, ...; the Keras layers are named
block0_norm, block0_fc, ... so the automatic rule pairs every tensor (LayerNorm weight/bias with
gamma/beta, Linear weight with the transposed kernel) and no CORRESPONDENCE is needed. The embeddings
show head_norm's output. LayerNorm's eps is torch's 1e-5 on both sides: Keras' default is 1e-3.
"""
LAST_HIDDEN = "head_norm"
LAYER_NORM_EPS = 1e-5  # torch.nn.LayerNorm's default; keras.layers.LayerNormalization's is 1e-3


def torch_model(spec, n_features, n_outputs):
    import torch
    import torch.nn as nn

    class Block(nn.Module):
        def __init__(self, width, inner):
            super().__init__()
            self.norm = nn.LayerNorm(width, eps=LAYER_NORM_EPS)
            self.fc = nn.Linear(width, inner)
            self.proj = nn.Linear(inner, width)

        def forward(self, h):
            return h + self.proj(torch.relu(self.fc(self.norm(h))))

    class ResMLP(nn.Module):
        def __init__(self):
            super().__init__()
            width = spec.hidden[0]
            self.stem = nn.Linear(n_features, width)
            self.blocks = [f"block{i}" for i in range(len(spec.hidden))]
            for name, inner in zip(self.blocks, spec.hidden):
                self.add_module(name, Block(width, inner))
            self.head_norm = nn.LayerNorm(width, eps=LAYER_NORM_EPS)
            self.out = nn.Linear(width, n_outputs)

        def forward(self, x):
            h = torch.relu(self.stem(x))
            for name in self.blocks:
                h = getattr(self, name)(h)
            return self.out(self.head_norm(h))

    return ResMLP()


def keras_model(spec, n_features, n_outputs):
    import keras
    from keras import layers

    width = spec.hidden[0]
    x = keras.Input((n_features,), name="x")
    h = layers.Dense(width, activation="relu", name="stem")(x)
    for i, inner in enumerate(spec.hidden):
        r = layers.LayerNormalization(epsilon=LAYER_NORM_EPS, name=f"block{i}_norm")(h)
        r = layers.Dense(inner, activation="relu", name=f"block{i}_fc")(r)
        r = layers.Dense(width, name=f"block{i}_proj")(r)
        h = layers.Add(name=f"block{i}")([h, r])
    h = layers.LayerNormalization(epsilon=LAYER_NORM_EPS, name="head_norm")(h)
    return keras.Model(x, layers.Dense(n_outputs, name="out")(h), name="resmlp")


def settings(framework, spec):
    """The same on both sides on purpose: the Parity page lists them, and nothing to explain."""
    return {"layer_defaults": {"layer_norm_eps": LAYER_NORM_EPS, "residual": "h + proj(relu(fc(norm(h))))"}}
