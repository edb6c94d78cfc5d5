"""`cnn_bn`: the CNN with BatchNorm, where PyTorch and Keras quietly disagree (digits).

conv0 -> bn0 -> ReLU -> conv1 -> bn1 -> ReLU (3x3, same padding, no conv bias: BatchNorm's beta is
the bias), then dense0 (hidden[-1], ReLU) and out: classic.CNN's layout, NCHW against NHWC and the
first dense kernel's row reorder included. BatchNorm's defaults differ in three ways:

| | torch.nn.BatchNorm2d | keras.layers.BatchNormalization |
|---|---|---|
| momentum | 0.1, the NEW batch's weight: running = 0.9*running + 0.1*batch | 0.99, the OLD value's: moving = 0.99*moving + 0.01*batch |
| eps | 1e-5 | 1e-3 |
| running variance | the unbiased batch variance (sum/(n-1)) | the biased one (sum/n) |

In training both normalise with the batch mean and the biased batch variance; in inference with the
running statistics, so the differences show in eval mode (loss/val) and not in the train loss,
except eps, which changes both. With init=shared TensorFlow runs TorchBatchNorm, a
keras.layers.BatchNormalization whose call() does torch's arithmetic (its variables keep Keras'
names: gamma, beta, moving_mean, moving_variance); with init=native each side runs its stock layer
with its own defaults. The running statistics are Params with trainable=False (torch buffers
running_mean/running_var <-> moving_mean/moving_variance); torch's num_batches_tracked is not one
(it only matters with momentum=None).
"""
from __future__ import annotations

import functools
from typing import Any

from trainers.models.base import ModelPair, Param, conv_kernel, fan_in_uniform
from trainers.models.classic import CNN, CONV_CHANNELS
from twinboard.contract import RunSpec

TORCH_MOMENTUM, TORCH_EPS = 0.1, 1e-5  # torch.nn.BatchNorm2d's defaults
KERAS_MOMENTUM, KERAS_EPS = 0.99, 1e-3  # keras.layers.BatchNormalization's defaults
NATIVE_INIT = (("kaiming_uniform(a=sqrt(5)) convs and Linear, bias U(±1/sqrt(fan_in)); "
                "BatchNorm2d weight 1, bias 0, running mean 0, var 1"),
               ("glorot_uniform kernels, zeros biases; BatchNormalization gamma 1, beta 0, moving mean 0, "
                "variance 1 (keras.utils.set_random_seed(seed))"))
NATIVE_NOTES = {  # settings.json key -> what the native defaults do to the comparison
    "batch_norm.momentum": "torch 0.1 weights the new batch, Keras 0.99 the old value: Keras' running "
                           "statistics move 10x slower, so eval-mode results (loss/val) differ",
    "batch_norm.eps": "1e-5 against 1e-3 under the square root: every normalised value, train and eval",
    "batch_norm.running_variance": "torch keeps the unbiased batch variance, Keras the biased one (eval mode)",
}
INITIALIZERS = {  # settings.json's layer_defaults: each framework's default initializer per layer kind
    "torch": {"conv": {"kernel_initializer": "kaiming_uniform(a=sqrt(5))", "bias": "none: BatchNorm's beta is the bias"},
              "dense": {"kernel_initializer": "kaiming_uniform(a=sqrt(5))",
                        "bias_initializer": "uniform(±1/sqrt(fan_in))"},
              "batch_norm": {"gamma_initializer": "ones", "beta_initializer": "zeros",
                             "moving_mean_initializer": "zeros", "moving_variance_initializer": "ones"}},
    "tensorflow": {"conv": {"kernel_initializer": "glorot_uniform", "bias": "none: BatchNorm's beta is the bias"},
                   "dense": {"kernel_initializer": "glorot_uniform", "bias_initializer": "zeros"},
                   "batch_norm": {"gamma_initializer": "ones", "beta_initializer": "zeros",
                                  "moving_mean_initializer": "zeros", "moving_variance_initializer": "ones"}},
}


def bn_params(name: str, c: int) -> list[Param]:
    """BatchNorm2d's weight/bias (gamma/beta, trainable) and running statistics (state), torch's
    defaults as the shared init: ones, zeros, zeros, ones. Tags: gamma, beta, running_mean, running_var."""
    return [Param(f"{name}.weight", (c,), f"{name}/gamma", f"{name}/gamma", ("const", 1.0)),
            Param(f"{name}.bias", (c,), f"{name}/beta", f"{name}/beta", ("const", 0.0)),
            Param(f"{name}.running_mean", (c,), f"{name}/moving_mean", f"{name}/running_mean", ("const", 0.0),
                  trainable=False),
            Param(f"{name}.running_var", (c,), f"{name}/moving_variance", f"{name}/running_var", ("const", 1.0),
                  trainable=False)]


@functools.cache
def torch_batch_norm_layer():
    """The Keras layer class that runs torch.nn.BatchNorm2d's arithmetic (made on first use, so that
    importing this module imports no framework). A keras.layers.BatchNormalization (its build, its
    variable names, get_config) whose call() does what torch's CPU kernel does:

    train: mean = sum(x)/n and var_sum = sum((x - mean)^2) per channel (two passes);
           normalise with the biased var_sum/n; running_mean = m*mean + (1-m)*running_mean and
           running_var = m*var_sum/(n-1) + (1-m)*running_var, m = torch's momentum (0.1), 1-m in
           Python double as torch computes it;
    eval:  the running statistics;
    both:  invstd = 1/sqrt(var + eps), alpha = invstd*gamma, y = x*alpha + (beta - mean*alpha).

    Keras' own layer stores momentum as the old value's weight (0.99) and computes 1-momentum in the
    graph: 1 - 0.9 = 0.09999999999999998, not torch's 0.1, hence torch_momentum here. Every constant
    is a tensor of the input's dtype."""
    import keras
    from keras import ops

    class TorchBatchNorm(keras.layers.BatchNormalization):
        def __init__(self, torch_momentum: float = TORCH_MOMENTUM, epsilon: float = TORCH_EPS, **kwargs):
            kwargs.pop("momentum", None)  # from get_config: the Keras-convention value, derived here
            super().__init__(momentum=1.0 - torch_momentum, epsilon=epsilon, **kwargs)
            self.torch_momentum = float(torch_momentum)

        def call(self, inputs, training=None, mask=None):
            dtype = inputs.dtype
            const = lambda v: ops.convert_to_tensor(v, dtype=dtype)
            gamma, beta = ops.cast(self.gamma, dtype), ops.cast(self.beta, dtype)
            if training:
                axes = self._reduction_axes
                n = 1
                for a in axes:
                    n = n * ops.shape(inputs)[a]
                n = ops.cast(n, dtype)
                mean = ops.sum(inputs, axis=axes) / n
                var_sum = ops.sum(ops.square(inputs - mean), axis=axes)
                var = var_sum / n
                m, keep = const(self.torch_momentum), const(1.0 - self.torch_momentum)
                self.moving_mean.assign(m * mean + keep * self.moving_mean)
                self.moving_variance.assign(m * (var_sum / (n - const(1.0))) + keep * self.moving_variance)
            else:
                mean = ops.cast(self.moving_mean, dtype)
                var = ops.cast(self.moving_variance, dtype)
            alpha = const(1.0) / ops.sqrt(var + const(self.epsilon)) * gamma
            return inputs * alpha + (beta - mean * alpha)

        def get_config(self):
            return {**super().get_config(), "torch_momentum": self.torch_momentum}

    return TorchBatchNorm


class CNNBatchNorm(CNN):
    """conv0, bn0, conv1, bn1 (each conv without bias, ReLU after BatchNorm), dense0 (hidden[-1], ReLU), out."""

    def __init__(self):
        ModelPair.__init__(self, "cnn_bn", layout=("NCHW", "NHWC"),
                           native_init=NATIVE_INIT, native_notes=NATIVE_NOTES)

    def conv_params(self, spec: RunSpec) -> list[Param]:
        out, c_in = [], 1
        for i, c_out in enumerate(CONV_CHANNELS):
            out += [Param(f"conv{i}.weight", (c_out, c_in, 3, 3), f"conv{i}/kernel", f"conv{i}/kernel",
                          fan_in_uniform(c_in * 9), conv_kernel),
                    *bn_params(f"bn{i}", c_out)]
            c_in = c_out
        return out

    def torch_convs(self, spec: RunSpec, dtype: Any) -> list[tuple[str, Any]]:
        from torch import nn

        mods, c_in = [], 1
        for i, c_out in enumerate(CONV_CHANNELS):
            mods += [(f"conv{i}", nn.Conv2d(c_in, c_out, 3, padding=1, bias=False, dtype=dtype)),
                     (f"bn{i}", nn.BatchNorm2d(c_out, eps=TORCH_EPS, momentum=TORCH_MOMENTUM, dtype=dtype)),
                     (f"bn{i}_relu", nn.ReLU())]
            c_in = c_out
        return mods

    def keras_convs(self, spec: RunSpec) -> list[Any]:
        """init=shared: TorchBatchNorm (torch's arithmetic); init=native: Keras' stock layer, defaults."""
        import keras

        out = []
        for i, c in enumerate(CONV_CHANNELS):
            if spec.init == "shared":
                bn = torch_batch_norm_layer()(name=f"bn{i}", dtype=spec.dtype)
            else:
                bn = keras.layers.BatchNormalization(name=f"bn{i}", dtype=spec.dtype)
            out += [keras.layers.Conv2D(c, 3, padding="same", use_bias=False, name=f"conv{i}", dtype=spec.dtype),
                    bn, keras.layers.Activation("relu", name=f"bn{i}_relu", dtype=spec.dtype)]
        return out

    def keras_features(self, model, x):
        """(dense0's ReLU output, logits) in inference mode: BatchNorm with its moving statistics."""
        h = x
        for lyr in model.layers[:-1]:
            h = lyr(h, training=False)
        return h, model.layers[-1](h)

    def settings(self, framework: str, spec: RunSpec) -> dict[str, Any]:
        """settings.json's "batch_norm" (what each side's layer really does) and "layer_defaults"
        (each side's default initializers under init=native; the shared init.npz otherwise)."""
        keras_stock = framework == "tensorflow" and spec.init != "shared"
        layers = [f"bn{i}" for i in range(len(CONV_CHANNELS))]
        if framework == "torch":
            impl = "torch.nn.BatchNorm2d"
        elif keras_stock:
            import keras

            impl = f"keras.layers.BatchNormalization (Keras {keras.__version__} defaults)"
        else:
            impl = ("TorchBatchNorm (trainers.models.cnn_bn): keras.layers.BatchNormalization running "
                    "torch's BatchNorm2d arithmetic")
        if keras_stock:
            bn = {"momentum": KERAS_MOMENTUM, "batch_weight": round(1 - KERAS_MOMENTUM, 12),
                  "update": "moving = momentum*moving + (1 - momentum)*batch", "eps": KERAS_EPS,
                  "running_variance": "biased batch variance: sum((x - mean)^2)/n"}
        else:
            bn = {"momentum": TORCH_MOMENTUM, "batch_weight": TORCH_MOMENTUM,
                  "update": "running = (1 - momentum)*running + momentum*batch", "eps": TORCH_EPS,
                  "running_variance": "unbiased batch variance: sum((x - mean)^2)/(n - 1)"}
        batch_norm = {"implementation": impl, "layers": layers, **bn,
                      "train_normalisation": "batch mean and biased batch variance (sum/n)",
                      "eval_normalisation": "running statistics"}
        if spec.init == "shared":
            defaults = {kind: "shared init.npz: " + ", ".join(f"{k} {v}" for k, v in inits.items())
                        for kind, inits in INITIALIZERS["torch"].items()}
        else:
            defaults = INITIALIZERS[framework]
        return {"batch_norm": batch_norm, "layer_defaults": defaults}
