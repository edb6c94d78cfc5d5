"""The `gru` and `lstm` pairs (trainers.models.recurrent): the shared weights load into both
frameworks and give the same forward pass layer by layer (float64, in-process), real trainer
processes agree at every step for 200 float64 steps with SGD-momentum and with Adam, the curves
part under init=native, and the layers table counts the same parameters on both sides.

One run_many (both trainer processes, every spec) for the whole module: 4 x 200 shared steps and
2 x 30 native steps, ~20 s here, the framework imports paid once.
"""
from __future__ import annotations

import json

import numpy as np
import pytest

from tests.test_parity_training import max_rel_diff, read_scalars, run_many
from trainers import data
from trainers.models import get_pair
from trainers.models.base import check_pair, keras_variables, layer_rows, load_keras, load_torch, shared_init
from trainers.models.recurrent import LSTM, gru_columns
from twinboard.contract import RunSpec
from twinboard.contract.costs import model_costs

KINDS = ("gru", "lstm")
OPTIMIZERS = {"momentum": {"optimizer": "sgd", "momentum": 0.9, "lr": 0.05}, "adam": {"optimizer": "adam", "lr": 0.005}}
NATIVE_STEPS = 30


def _specs() -> dict[str, RunSpec]:
    specs = {f"{k}-{name}": RunSpec(model=k, dtype="float64", steps=200, log_every=1, histogram_every=200, **opt)
             for k in KINDS for name, opt in OPTIMIZERS.items()}
    specs.update({f"{k}-native": RunSpec(model=k, dtype="float64", steps=NATIVE_STEPS, log_every=1,
                                         histogram_every=NATIVE_STEPS, init="native", optimizer="adam", lr=0.005)
                  for k in KINDS})
    return specs


@pytest.fixture(scope="module")
def runs(tmp_path_factory):
    return run_many(tmp_path_factory.mktemp("recurrent"), _specs())


def _settings(folder) -> dict:
    return json.loads((folder / "settings.json").read_text())


# --- in-process: torch -> numpy -> Keras ---------------------------------------------------------
@pytest.fixture(scope="module")
def digits():
    return data.load(RunSpec(dtype="float64"))


@pytest.mark.parametrize("kind", KINDS)
def test_shared_weights_give_the_same_forward_pass(digits, kind):
    """Both models from one init.npz draw: the recurrent layer's last hidden state and the logits
    agree to 1e-12 in training and in inference mode (the same here: no dropout), and the
    transforms put torch's rows where Keras reads them (the GRU's r, z swapped into z, r)."""
    import torch

    spec = RunSpec(model=kind, dtype="float64", hidden=(16,))
    pair = get_pair(spec)
    params = pair.params(spec, digits.n_features, digits.n_outputs)
    tm = pair.torch_model(spec, digits.n_features, digits.n_outputs, torch.float64)
    km = pair.keras_model(spec, digits.n_features, digits.n_outputs)
    check_pair(params, tm, km)
    arrays = shared_init(spec, params)
    load_torch(tm, params, arrays)
    load_keras(km, params, arrays)
    x = digits.x_val[:64]
    for training in (True, False):
        tm.train(training)
        with torch.no_grad():
            t_hidden, t_out = pair.torch_features(tm, torch.from_numpy(x))
        k_hidden = km.get_layer(kind)(km.get_layer("rows")(x), training=training)
        k_out = km(x, training=training)
        assert t_hidden.shape == (64, 16)
        np.testing.assert_allclose(np.asarray(k_hidden), t_hidden.numpy(), rtol=0, atol=1e-12)
        np.testing.assert_allclose(np.asarray(k_out), t_out.numpy(), rtol=0, atol=1e-12)
    variables = keras_variables(km)
    weight_ih = arrays[f"{kind}.weight_ih_l0"]
    kernel = np.asarray(variables[f"{kind}/{kind}_cell/kernel"])
    rows = gru_columns(16) if kind == "gru" else np.arange(4 * 16)
    np.testing.assert_array_equal(kernel, weight_ih[rows].T)
    if kind == "gru":  # Keras' first block is torch's z (rows 16:32): the gates are reordered
        np.testing.assert_array_equal(kernel[:, :16], weight_ih[16:32].T)


def test_native_lstm_plans_follow_each_sides_layer(digits):
    """init=native: Keras' stock LSTM has one bias where torch has two, so each side gets its own
    plan (side_params) once the trainers ask for it; until then the Keras side runs TorchLSTMCell
    with Keras' initializers (forget gate's bias 1 in bias_ih). Both configurations are built here."""
    import torch

    spec = RunSpec(model="lstm", dtype="float64", hidden=(16,), init="native")
    n, k = digits.n_features, digits.n_outputs
    stock = LSTM()
    stock.stock_native = True
    torch_plan, tf_plan = stock.side_params("torch", spec, n, k), stock.side_params("tensorflow", spec, n, k)
    tm, km = stock.torch_model(spec, n, k, torch.float64), stock.keras_model(spec, n, k)
    assert type(km.get_layer("lstm")).__name__ == "LSTM"
    variables = keras_variables(km)
    assert {p.keras for p in tf_plan} == set(variables)
    assert all(tuple(variables[p.keras].shape) == tuple(p.to_keras(np.zeros(p.shape)).shape) for p in tf_plan)
    assert {p.name for p in torch_plan} == {name for name, _ in tm.named_parameters()}
    counts = [{r["name"]: r["params"] for r in layer_rows(plan, {}, {})} for plan in (torch_plan, tf_plan)]
    assert counts[0]["lstm"] - counts[1]["lstm"] == 4 * 16  # torch's b_hh
    shared = RunSpec(model="lstm", hidden=(16,))
    def names(plan):
        return [(p.name, p.keras, p.shape) for p in plan]

    assert names(stock.side_params("tensorflow", shared, n, k)) == names(stock.params(shared, n, k))

    cell = LSTM()
    cell.stock_native = False
    km = cell.keras_model(spec, n, k)
    assert names(cell.side_params("tensorflow", spec, n, k)) == names(cell.params(spec, n, k))
    check_pair(cell.params(spec, n, k), tm, km)
    bias_ih = np.asarray(keras_variables(km)["lstm/lstm_cell/bias_ih"])
    np.testing.assert_array_equal(bias_ih, np.r_[np.zeros(16), np.ones(16), np.zeros(32)])


# --- real trainers -------------------------------------------------------------------------------
@pytest.mark.parametrize("kind", KINDS)
@pytest.mark.parametrize("name", list(OPTIMIZERS))
def test_float64_losses_agree_every_step(runs, kind, name):
    torch_dir, tf_dir = runs[f"{kind}-{name}"]
    a, b = read_scalars(torch_dir, "loss/train_fp64"), read_scalars(tf_dir, "loss/train_fp64")
    rel = max_rel_diff(a, b, range(1, 201))
    print(f"{kind} float64 {name}: max rel diff over 200 steps {rel:.3g}")
    assert rel <= 1e-12
    assert b[200] < 0.5 * b[1]  # it trained


@pytest.mark.parametrize("kind", KINDS)
def test_layers_table_counts_the_same_parameters(runs, kind):
    """Shared: one row per layer with equal trainable counts (the GRU's 3 gates and 2 biases, the
    LSTM's 4 gates and 2 biases), what the spec's cost model counts; the same output shapes."""
    torch_dir, tf_dir = runs[f"{kind}-adam"]
    t, f = _settings(torch_dir), _settings(tf_dir)
    rows = [{r["name"]: (r["params"], r["output_shape"], r["tensors"]) for r in s["layers"]} for s in (t, f)]
    assert rows[0] == rows[1]
    h, gates = 64, 3 if kind == "gru" else 4
    assert rows[0][kind] == (gates * h * (8 + h) + 2 * gates * h, [None, h],
                             ["kernel", "recurrent_kernel", "bias_ih", "bias_hh"])
    assert t["total_params"] == f["total_params"] == model_costs(kind, (h, 32), 64, 10)[0]
    assert t["layer_defaults"][kind]["gate_order"] == ("r,z,n" if kind == "gru" else "i,f,g,o")
    cell = "SplitBiasGRUCell" if kind == "gru" else "TorchLSTMCell"
    from twinboard import graphs  # the Graphs page's table: Keras' RNN named by its cell, not guessed from ops

    table = graphs.align_layers(*(graphs.layer_summary(graphs.read_graphs(d), graphs.read_settings(d))
                                  for d in (torch_dir, tf_dir)))
    assert table.set_index("layer").at[kind, "TensorFlow type"] == f"RNN({cell})" and table["match"].all()
    from twinboard.histograms import read_histograms

    for folder in (torch_dir, tf_dir):
        tags = set(read_histograms(folder)["tag"])
        assert {f"{w}/{kind}/{p}" for w in ("weights", "grads") for p in ("bias_ih", "bias_hh")} <= tags


@pytest.mark.parametrize("kind", KINDS)
def test_native_curves_part_and_settings_say_why(runs, kind):
    torch_dir, tf_dir = runs[f"{kind}-native"]
    a, b = read_scalars(torch_dir, "loss/train_fp64"), read_scalars(tf_dir, "loss/train_fp64")
    rel = max_rel_diff(a, b, range(1, NATIVE_STEPS + 1))
    print(f"{kind} native: max rel diff over {NATIVE_STEPS} steps {rel:.3g}")
    assert rel > 1e-3
    t, f = _settings(torch_dir), _settings(tf_dir)
    td, fd = t["layer_defaults"][kind], f["layer_defaults"][kind]
    assert td["initializers"]["recurrent_kernel"] == "U(±1/sqrt(hidden))"
    assert fd["initializers"]["recurrent_kernel"] == "orthogonal"
    counts = [{r["name"]: r["params"] for r in s["layers"]}[kind] for s in (t, f)]
    if kind == "gru":
        assert (td["gate_order"], fd["gate_order"]) == ("r,z,n", "z,r,h")
        assert counts[0] == counts[1]  # reset_after=True: Keras has both biases too
    else:
        assert (td["unit_forget_bias"], fd["unit_forget_bias"]) == (False, True)
        assert counts[0] - counts[1] == (4 * 64 if LSTM.stock_native else 0)
