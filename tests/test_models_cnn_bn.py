"""cnn_bn: BatchNorm matched on purpose under init=shared, each framework's defaults under native.

In-process (float64, torch and TensorFlow in this process): the shared weights give the same
forward pass layer by layer in train mode and in eval mode, and after training steps through the
trainers' own optimizers (torch.optim, tf_optim.TorchArithmetic) the running statistics agree.
Through the real trainers (tests.test_parity_training.run_many, one process per framework):
200 float64 steps agree at every step for SGD-momentum and Adam, validation (eval mode on both
sides) agrees, the layers table counts the same parameters, and the native run parts and says why.
"""
from __future__ import annotations

import json

import numpy as np
import pytest

from tests.test_parity_training import max_rel_diff, read_scalars, run_many
from trainers import data
from trainers.models import get_pair
from trainers.models.base import check_pair, keras_variables, load_keras, load_torch, shared_init, torch_tensors
from trainers.models.classic import chw_to_hwc_rows
from twinboard.contract import RunSpec
from twinboard.contract.costs import model_costs

SHARED = {"model": "cnn_bn", "dtype": "float64", "steps": 200, "log_every": 1, "histogram_every": 100}
OPTIMIZERS = {"momentum": {"optimizer": "sgd", "momentum": 0.9, "lr": 0.05}, "adam": {"optimizer": "adam", "lr": 0.005}}
VAL_STEPS = (44, 88, 132, 176, 200)  # end of each 44-step epoch (1437 training rows, batch 32) and the last


@pytest.fixture(scope="module")
def runs(tmp_path_factory):
    specs = {name: RunSpec(**SHARED, **opt) for name, opt in OPTIMIZERS.items()}
    specs["native"] = RunSpec(model="cnn_bn", dtype="float64", steps=50, log_every=1, histogram_every=50,
                              init="native", optimizer="adam", lr=0.005)
    return run_many(tmp_path_factory.mktemp("cnn_bn"), specs)


def settings_of(runs, name):
    return [json.loads((d / "settings.json").read_text()) for d in runs[name]]


# --- in-process: the weight transfer, layer by layer ---------------------------------------------------
@pytest.fixture(scope="module")
def built():
    """Both models of the default spec with the shared init, BatchNorm given non-trivial values
    (random gamma, beta and running statistics) so eval mode is not the identity."""
    import torch

    spec = RunSpec(model="cnn_bn", dtype="float64", seed=3)
    ds = data.load(spec)
    pair = get_pair(spec)
    params = pair.params(spec, ds.n_features, ds.n_outputs)
    arrays = shared_init(spec, params)
    rng = np.random.default_rng(7)
    for p in params:
        if p.name.startswith("bn"):
            low = 0.5 if p.name.endswith(("weight", "running_var")) else -0.5
            arrays[p.name] = rng.uniform(low, low + 1.0, p.shape)
    tm = pair.torch_model(spec, ds.n_features, ds.n_outputs, torch.float64)
    km = pair.keras_model(spec, ds.n_features, ds.n_outputs)
    check_pair(params, tm, km)
    load_torch(tm, params, arrays)
    load_keras(km, params, arrays)
    return spec, ds, pair, params, tm, km


def layer_outputs_agree(tm, km, x, training: bool) -> dict[str, float]:
    """Each named layer's output on both sides (torch NCHW turned NHWC, the flatten rows reordered),
    the max difference relative to the largest value; each side's layer fed its own previous output.
    A torch module with no Keras layer of its name (dense0_relu: Keras' Dense holds its ReLU) is
    compared with the Keras layer before it."""
    import torch

    tm.train(training)
    names = {lyr.name for lyr in km.layers}
    children = list(tm.named_children())
    h_t, h_k, worst = torch.from_numpy(x), x, {}
    with torch.no_grad():
        for i, (name, mod) in enumerate(children):
            h_t = mod(h_t)
            if name in names:
                h_k = km.get_layer(name)(h_k, training=training)
                if i + 1 < len(children) and children[i + 1][0] not in names:
                    continue  # Keras' layer holds the next torch module too: compare after it
            a, b = h_t.numpy(), np.asarray(h_k)
            if a.ndim == 4:
                a = a.transpose(0, 2, 3, 1)
            elif name == "flatten":
                a = a[:, chw_to_hwc_rows(16, 8, 8)]
            assert a.shape == b.shape, name
            worst[name] = float(np.max(np.abs(a - b)) / np.max(np.abs(a)))
    tm.train(True)
    assert len(worst) == len(children) - 1  # every layer compared (dense0 with its ReLU)
    return worst


@pytest.mark.parametrize("training", [True, False], ids=["train_mode", "eval_mode"])
def test_transfer_gives_the_same_forward_pass_layer_by_layer(built, training):
    _, ds, _, params, tm, km = built
    state = [p for p in params if not p.trainable]
    before = [(torch_tensors(tm)[p.name].detach().numpy().copy(), keras_variables(km)[p.keras].numpy()) for p in state]
    worst = layer_outputs_agree(tm, km, ds.x_train[:64], training)
    print(f"{'train' if training else 'eval'} mode, worst relative difference per layer: {worst}")
    assert max(worst.values()) <= 1e-12, worst
    if not training:  # eval mode leaves the running statistics alone, on both sides
        for p, (t, k) in zip(state, before):
            np.testing.assert_array_equal(torch_tensors(tm)[p.name].detach().numpy(), t)
            np.testing.assert_array_equal(keras_variables(km)[p.keras].numpy(), k)


def test_running_statistics_agree_after_training(built):
    """10 SGD-momentum steps through the trainers' optimizers (torch.optim; torch's arithmetic in TF),
    then the running statistics and the eval-mode validation loss agree to ~1e-12 in float64."""
    import tensorflow as tf
    import torch
    import torch.nn.functional as F

    from trainers import tf_optim
    from trainers.tf_step import loss_function
    from trainers.torch_model import make_optimizer, trainable

    _, ds, _, params, tm, km = built
    spec = RunSpec(model="cnn_bn", dtype="float64", seed=3, optimizer="sgd", momentum=0.9, lr=0.05)
    variables = keras_variables(km)
    t_opt = make_optimizer(spec, trainable(tm, params))
    k_opt, grad_vars = tf_optim.make_optimizer(spec, [variables[p.keras] for p in params if p.trainable], tf.float64)
    loss_of = loss_function(tf, True)
    rng = np.random.default_rng(0)
    for _ in range(10):
        idx = rng.choice(len(ds.x_train), 32, replace=False)
        x, y = ds.x_train[idx], ds.y_train[idx]
        t_opt.zero_grad()
        F.cross_entropy(tm(torch.from_numpy(x)), torch.from_numpy(y)).backward()
        t_opt.step()
        with tf.GradientTape() as tape:
            loss = loss_of(tf.constant(y), km(tf.constant(x), training=True))
        k_opt.apply(tape.gradient(loss, grad_vars), tf.zeros([2], tf.float64))
    tensors, worst = torch_tensors(tm), {}
    for p in params:
        a, b = p.to_keras(tensors[p.name].detach().numpy()), variables[p.keras].numpy()
        worst[p.name] = float(np.max(np.abs(a - b)) / np.max(np.abs(a)))
    print(f"after 10 steps, worst relative difference per tensor: {worst}")
    assert max(worst.values()) <= 1e-12, worst
    tm.eval()
    with torch.no_grad():
        t_val = F.cross_entropy(tm(torch.from_numpy(ds.x_val)), torch.from_numpy(ds.y_val)).item()
    tm.train()
    k_val = float(loss_of(tf.constant(ds.y_val), km(tf.constant(ds.x_val), training=False)))
    assert abs(t_val - k_val) <= 1e-12 * abs(t_val), (t_val, k_val)


def test_native_models_are_each_frameworks_stock_layers():
    import keras
    import torch

    spec = RunSpec(model="cnn_bn", dtype="float64", init="native")
    pair = get_pair(spec)
    params = pair.params(spec, 64, 10)
    tm, km = pair.torch_model(spec, 64, 10, torch.float64), pair.keras_model(spec, 64, 10)
    check_pair(params, tm, km)
    bn_t, bn_k = tm.get_submodule("bn0"), km.get_layer("bn0")
    assert type(bn_k) is keras.layers.BatchNormalization
    assert (bn_t.momentum, bn_t.eps, bn_k.momentum, bn_k.epsilon) == (0.1, 1e-5, 0.99, 1e-3)


# --- the real trainers --------------------------------------------------------------------------------
@pytest.mark.parametrize("name", list(OPTIMIZERS))
def test_float64_losses_agree_every_step(runs, name):
    torch_dir, tf_dir = runs[name]
    a, b = read_scalars(torch_dir, "loss/train_fp64"), read_scalars(tf_dir, "loss/train_fp64")
    rel = max_rel_diff(a, b, range(1, 201))
    print(f"cnn_bn float64 {name}: max rel diff over 200 steps {rel:.3g}")
    assert rel <= 1e-12
    assert b[200] < b[1]


@pytest.mark.parametrize("name", list(OPTIMIZERS))
def test_validation_in_eval_mode_agrees(runs, name):
    """loss/val uses the running statistics on both sides (torch under evaluating(), Keras
    training=False): equal to float32 rounding (the scalar's type) at every validation step."""
    torch_dir, tf_dir = runs[name]
    a, b = read_scalars(torch_dir, "loss/val"), read_scalars(tf_dir, "loss/val")
    assert sorted(a) == sorted(b) == list(VAL_STEPS)
    assert max_rel_diff(a, b, VAL_STEPS) <= 1e-6


def test_layers_table_counts_the_same_parameters(runs):
    for name in (*OPTIMIZERS, "native"):
        t, f = settings_of(runs, name)
        rows_t, rows_f = ({r["name"]: (r["params"], r["state"]) for r in s["layers"]} for s in (t, f))
        assert rows_t == rows_f == {"conv0": (72, 0), "bn0": (16, 16), "conv1": (1152, 0), "bn1": (32, 32),
                                    "dense0": (32800, 0), "out": (330, 0)}
        assert t["total_params"] == f["total_params"] == model_costs("cnn_bn", (64, 32), 64, 10)[0] == 34402
        assert {r["name"]: r["type"] for r in f["layers"]}["bn0"] == (
            "TorchBatchNorm" if name != "native" else "BatchNormalization")


def test_shared_batch_norm_settings_differ_only_in_the_implementation(runs):
    t, f = settings_of(runs, "momentum")
    assert {k: v for k, v in t["batch_norm"].items() if k != "implementation"} == \
        {k: v for k, v in f["batch_norm"].items() if k != "implementation"}
    assert t["batch_norm"]["implementation"] == "torch.nn.BatchNorm2d"
    assert f["batch_norm"]["implementation"].startswith("TorchBatchNorm")
    assert t["layer_defaults"] == f["layer_defaults"]


def test_native_run_parts_and_settings_say_why(runs):
    torch_dir, tf_dir = runs["native"]
    a, b = read_scalars(torch_dir, "loss/train_fp64"), read_scalars(tf_dir, "loss/train_fp64")
    assert max_rel_diff(a, b, range(1, 51)) > 1e-3
    t, f = settings_of(runs, "native")
    bt, bf = t["batch_norm"], f["batch_norm"]
    assert (bt["momentum"], bf["momentum"], bt["batch_weight"], bf["batch_weight"]) == (0.1, 0.99, 0.1, 0.01)
    assert (bt["eps"], bf["eps"]) == (1e-5, 1e-3)
    assert "(n - 1)" in bt["running_variance"] and "/n" in bf["running_variance"]
    assert bf["implementation"].startswith("keras.layers.BatchNormalization")
    assert t["layer_defaults"]["conv"]["kernel_initializer"].startswith("kaiming_uniform")
    assert f["layer_defaults"]["conv"]["kernel_initializer"] == "glorot_uniform"
