"""The TensorFlow trainer's optimizers: torch.optim's arithmetic written out in TF ops (init=shared)
or Keras' own optimizers with their defaults (init=native), and what settings.json says about them.

With init=shared every constant is a tensor of the run dtype (Keras would cast Python floats to
float32 even in a float64 run) and Adam's bias corrections are Python doubles, as torch's.
TensorFlow and Keras are imported inside the functions that need them.
"""
from __future__ import annotations

from typing import Any

import numpy as np

from trainers.settings import describe_optimizer
from twinboard.contract import RunSpec

KERAS_DEFAULT_ADAM_EPS = 1e-7  # keras.optimizers.Adam's default, used with init=native


class TorchArithmetic:
    """torch.optim.SGD / Adam (foreach=False, CPU) as TF ops on tf.Variables, run-dtype constants.

    SGD: g += wd*p; buf = mu*buf + g (buf starts as g: mu*0 + g = g exactly); p -= lr*buf.
    Adam: g += wd*p; m = m + (1-b1)*(g - m) (torch's lerp, weight < 0.5); v = v*b2 + (1-b2)*g*g;
    p -= (lr/bc1) * m / (sqrt(v)/sqrt(bc2) + eps), lr/bc1 and sqrt(bc2) from Python (scalar_table).
    """

    def __init__(self, spec: RunSpec, variables: list, dtype):
        import tensorflow as tf

        self.spec, self.vars = spec, variables
        c = lambda v: tf.constant(v, dtype)  # noqa: E731
        self.lr, self.mu, self.wd = c(spec.lr), c(spec.momentum), c(spec.weight_decay)
        self.w1, self.b2, self.c2, self.eps = c(1 - spec.beta1), c(spec.beta2), c(1 - spec.beta2), c(spec.eps)
        self.clip_norm, self.clip_eps, self.one = c(spec.clip_norm), c(1e-6), c(1.0)
        zeros = lambda: [tf.Variable(tf.zeros_like(v), trainable=False) for v in variables]  # noqa: E731
        if spec.optimizer == "sgd":
            self.bufs = zeros() if spec.momentum else None
        else:
            self.m, self.v = zeros(), zeros()

    def clip(self, grads: list) -> list:
        """torch.nn.utils.clip_grad_norm_(foreach=False): the norm of every gradient's L2 norm, and
        each gradient times min(1, clip_norm / (that + 1e-6))."""
        if not self.spec.clip_norm:
            return grads
        import tensorflow as tf

        total = tf.norm(tf.stack([tf.norm(g) for g in grads]))
        coef = tf.minimum(self.clip_norm / (total + self.clip_eps), self.one)
        return [g * coef for g in grads]

    def scalar_table(self, total_steps: int) -> np.ndarray:
        """Adam's [lr/bc1, sqrt(bc2)] for steps 1..total, in Python double exactly as torch.optim
        computes them per step, then cast to the run dtype (as torch casts a Python scalar)."""
        rows = np.zeros((total_steps, 2), np.float64)
        if self.spec.optimizer == "adam":
            b1, b2, lr = self.spec.beta1, self.spec.beta2, self.spec.lr
            for t in range(1, total_steps + 1):
                bias_correction1 = 1 - b1 ** t
                bias_correction2 = 1 - b2 ** t
                rows[t - 1] = (lr / bias_correction1, bias_correction2 ** 0.5)
        return rows.astype(self.spec.dtype)

    def apply(self, grads: list, scalars) -> None:
        import tensorflow as tf

        for i, (p, g) in enumerate(zip(self.vars, grads)):
            if self.spec.weight_decay:
                g = g + self.wd * p
            if self.spec.optimizer == "sgd":
                if self.bufs is not None:
                    buf = self.bufs[i]
                    g = buf * self.mu + g
                    buf.assign(g)
                p.assign_sub(self.lr * g)
            else:
                m, v = self.m[i], self.v[i]
                if self.spec.beta1 > 0.5:  # torch's lerp switches form at weight 0.5
                    m_new = m + self.w1 * (g - m)
                else:
                    m_new = g - (g - m) * (1 - self.w1)
                v_new = v * self.b2 + self.c2 * g * g
                m.assign(m_new)
                v.assign(v_new)
                denom = tf.sqrt(v_new) / scalars[1] + self.eps
                p.assign_sub(scalars[0] * m_new / denom)


class KerasNative:
    """keras.optimizers.SGD / Adam with Keras' defaults (Adam epsilon 1e-7, decoupled weight decay)."""

    def __init__(self, spec: RunSpec, variables: list):
        import keras

        wd = spec.weight_decay or None
        clipnorm = spec.clip_norm or None  # Keras' clipnorm clips each variable's gradient on its own
        if spec.optimizer == "sgd":
            self.opt = keras.optimizers.SGD(learning_rate=spec.lr, momentum=spec.momentum, nesterov=False,
                                            weight_decay=wd, clipnorm=clipnorm)
        else:
            self.opt = keras.optimizers.Adam(learning_rate=spec.lr, beta_1=spec.beta1, beta_2=spec.beta2,
                                             epsilon=KERAS_DEFAULT_ADAM_EPS, weight_decay=wd, clipnorm=clipnorm)
        self.opt.build(variables)  # slots now, not inside the first trace
        self.vars = variables
        self.dtype = spec.dtype

    def clip(self, grads: list) -> list:
        return grads  # clipnorm is the optimizer's

    def scalar_table(self, total_steps: int) -> np.ndarray:
        return np.zeros((total_steps, 2), self.dtype)  # Keras keeps its own iteration count

    def apply(self, grads: list, scalars) -> None:
        self.opt.apply_gradients(zip(grads, self.vars))


def make_optimizer(spec: RunSpec, kvars: list, dtype) -> tuple[TorchArithmetic | KerasNative, list]:
    """The optimizer and the variables the gradients are taken against (their values for
    TorchArithmetic, the Keras variables themselves for Keras)."""
    if spec.init == "shared":
        grad_vars = [v.value for v in kvars]
        return TorchArithmetic(spec, grad_vars, dtype), grad_vars
    return KerasNative(spec, kvars), kvars


def describe(spec: RunSpec) -> dict[str, Any]:
    """settings.json's "optimizer": what really runs, by init."""
    import keras

    name = "SGD" if spec.optimizer == "sgd" else "Adam"
    if spec.init == "shared":
        opt = describe_optimizer(
            spec, f"torch.optim.{name} arithmetic written in TF ops (trainers.tf_optim.TorchArithmetic)",
            hyper_dtype="tf constants of the run dtype; Adam bias corrections in Python double",
            weight_decay_form="coupled L2: g += weight_decay*p")
        if spec.optimizer == "adam":
            opt["eps_placement"] = "p -= lr/(1-b1^t) * m / (sqrt(v)/sqrt(1-b2^t) + eps)"
    else:
        opt = describe_optimizer(
            spec, f"keras.optimizers.{name} (Keras {keras.__version__} defaults)",
            hyper_dtype="float32 (Keras casts learning rate and Python-float hyperparameters)",
            weight_decay_form="decoupled: p -= lr*weight_decay*p (Keras)", eps=KERAS_DEFAULT_ADAM_EPS)
        if spec.optimizer == "sgd" and spec.momentum:
            opt["update"] = "m = momentum*m - lr*g; p += m (Keras)"
        if spec.optimizer == "adam":
            opt["eps_placement"] = "p -= lr*sqrt(1-b2^t)/(1-b1^t) * m / (sqrt(v) + eps) (Keras)"
    return opt


def describe_clip(spec: RunSpec) -> str:
    """settings.json's "clip_norm": what clips, by init (the torch side says the same under shared)."""
    if not spec.clip_norm:
        return "off"
    if spec.init == "shared":
        # The torch side's words exactly: the same clipping (written here in TF ops), so Parity sees no difference.
        return f"torch.nn.utils.clip_grad_norm_({spec.clip_norm:g}): the global norm of every gradient"
    return (f"keras clipnorm={spec.clip_norm:g}: each variable's gradient clipped to that norm on its own "
            "(not the global norm)")
