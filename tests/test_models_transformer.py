"""transformer: a character language model on task text, matched on purpose under init=shared.

In-process (float64, torch and TensorFlow in this process): the text windows; the plan against both
models; torch's packed in_proj held as three parametrizations is the stock layer to the bit; the
shared weights give the same output layer by layer in train mode and in eval mode (torch's fused
inference path); Keras' stock float64 constants (attention scale, GELU) are what the shared layers fix.
Through the real trainers (tests.test_parity_training.run_many, one process per framework): 200
float64 steps agree at every step for SGD-momentum and Adam, the layers table counts the same
parameters, and the native run parts and says why. d_model 12 (head_dim 6: 1/sqrt(6) is not a
float32 number, so the attention scale is exercised), 8 rows a batch: small enough for the budget.
"""
from __future__ import annotations

import json

import numpy as np
import pytest

from tests.test_parity_training import max_rel_diff, read_scalars, run_many
from trainers import data, text_data
from trainers.models import get_pair
from trainers.models.base import check_pair, load_keras, load_torch, shared_init
from twinboard.contract import RunSpec
from twinboard.contract.costs import model_costs

# loss/train_fp64 is written every step whatever log_every says; 1000 windows: 100 steps an epoch.
SMALL = dict(task="text", model="transformer", dtype="float64", n_samples=1000, batch_size=8, hidden=(12,),
             log_every=50, histogram_every=200)
OPTIMIZERS = {"momentum": dict(optimizer="sgd", momentum=0.9, lr=0.05), "adam": dict(optimizer="adam", lr=0.005)}
LAYERS = ["tok", "pos", *(f"layer{i}.{n}" for i in range(2) for n in ("norm1", "self_attn", "norm2", "linear1",
                                                                       "linear2")), "norm", "out"]


@pytest.fixture(scope="module")
def runs(tmp_path_factory):
    specs = {name: RunSpec(**SMALL, steps=200, **opt) for name, opt in OPTIMIZERS.items()}
    specs["native"] = RunSpec(**SMALL, steps=30, init="native", optimizer="adam", lr=0.005)
    return run_many(tmp_path_factory.mktemp("transformer"), specs)


def settings_of(runs, name):
    return [json.loads((d / "settings.json").read_text()) for d in runs[name]]


def rel(a, b) -> float:
    a, b = np.asarray(a), np.asarray(b)
    return float(np.max(np.abs(a - b)) / np.max(np.abs(a)))


# --- the data ------------------------------------------------------------------------------------------
def test_text_windows_are_next_character_pairs_from_the_seed():
    spec = RunSpec(task="text", model="transformer", n_samples=300, seed=5)
    x, y, vocab = text_data.windows(spec, np.random.default_rng([5, 0]))
    assert x.shape == y.shape == (300, 32) and x.dtype == y.dtype == np.int64 and vocab == text_data.VOCAB == 97
    assert (x[:, 1:] == y[:, :-1]).all() and 0 <= x.min() and x.max() < vocab
    assert text_data.decode(np.concatenate([x[0], y[0, -1:]])) in text_data.decode(text_data.token_ids())
    again = text_data.load_text(spec)
    assert (again[0] == x).all() and not (text_data.load_text(spec.replace(seed=6))[0] == x).all()
    ds = data.load(spec)  # the data owner's split: token ids stay int64, 97 classes
    assert ds.x_train.dtype == np.int64 and ds.n_classes == 97 and ds.image_shape is None
    assert ds.n_features == 32 and ds.y_train.shape == (240, 32) and ds.x_val.shape == (60, 32)


def test_d_model_must_split_into_the_heads():
    with pytest.raises(ValueError, match=r"hidden\[0\] must be a multiple of its 2 attention heads"):
        RunSpec(task="text", model="transformer", hidden=(13,))  # RunSpec refuses it, the pair too


# --- in-process: the plan and the weight transfer, layer by layer --------------------------------------
@pytest.fixture(scope="module")
def built():
    """Both models of a d_model-12 spec with the shared init loaded, and a batch of validation ids."""
    import torch

    spec = RunSpec(**SMALL, seed=3)
    ds = data.load(spec)
    pair = get_pair(spec)
    params = pair.params(spec, ds.n_features, ds.n_outputs)
    arrays = shared_init(spec, params)
    rng = np.random.default_rng(7)  # biases and LayerNorm off their zeros and ones: every tensor matters
    for p in params:
        if p.init[0] == "const":
            arrays[p.name] = arrays[p.name] + rng.uniform(-0.3, 0.3, p.shape)
    tm = pair.torch_model(spec, ds.n_features, ds.n_outputs, torch.float64)
    km = pair.keras_model(spec, ds.n_features, ds.n_outputs)
    check_pair(params, tm, km)
    load_torch(tm, params, arrays)
    load_keras(km, params, arrays)
    return spec, pair, params, arrays, tm, km, ds.x_val[:16]


def test_plan_names_every_tensor_and_counts_what_the_contract_counts(built):
    spec, pair, params, _, tm, km, _ = built
    n = sum(int(np.prod(p.shape)) for p in params)
    assert n == sum(t.numel() for t in tm.parameters()) == km.count_params() == model_costs(
        "transformer", spec.hidden, 32, 97)[0] == 6601
    assert list(dict.fromkeys(p.layer for p in params)) == LAYERS
    native = spec.replace(init="native")
    check_pair(pair.params(native, 32, 97), pair.torch_model(native, 32, 97, None),
               pair.keras_model(native, 32, 97))


def test_split_in_proj_is_the_stock_layer_to_the_bit(built):
    """torch.cat of the three parametrized thirds is the packed tensor: outputs and gradients equal."""
    import torch
    import torch.nn as nn

    _, _, _, _, tm, _, x = built
    mine = tm.layer0
    stock = nn.TransformerEncoderLayer(12, 2, 48, dropout=0.0, activation="gelu", batch_first=True, norm_first=True,
                                       dtype=torch.float64)
    stock.load_state_dict({k: v for k, v in mine.state_dict().items() if "parametrizations" not in k}, strict=False)
    with torch.no_grad():
        stock.self_attn.in_proj_weight.copy_(mine.self_attn.in_proj_weight)
        stock.self_attn.in_proj_bias.copy_(mine.self_attn.in_proj_bias)
    h = tm.tok(torch.from_numpy(x)).detach()
    a, b = mine(h, src_mask=tm.causal, is_causal=True), stock(h, src_mask=tm.causal, is_causal=True)
    assert torch.equal(a, b)
    a.square().sum().backward()
    b.square().sum().backward()
    thirds = [getattr(mine.self_attn.parametrizations.in_proj_weight, f"original{i}").grad for i in range(3)]
    assert torch.equal(torch.cat(thirds), stock.self_attn.in_proj_weight.grad)
    tm.zero_grad()


def layer_outputs(tm, km, x, training: bool) -> tuple[dict, dict]:
    """Each LAYERS output on both sides (torch by forward hooks, Keras by a model of the layers' outputs)."""
    import keras
    import torch

    got, hooks = {}, []
    for name in LAYERS:
        def hook(m, i, o, n=name):
            got[n] = (o[0] if isinstance(o, tuple) else o).detach().numpy()
        hooks.append(tm.get_submodule(name).register_forward_hook(hook))
    tm.train(training)
    with torch.no_grad():
        tm(torch.from_numpy(x))
    tm.train(True)
    for h in hooks:
        h.remove()
    for name in LAYERS:  # Keras' Dense applies its activation: torch's linear1 then the block's GELU
        if name.endswith("linear1"):
            got[name] = torch.nn.functional.gelu(torch.from_numpy(got[name])).numpy()
    probe = keras.Model(km.input, [km.get_layer(n).output for n in LAYERS])
    return got, dict(zip(LAYERS, (t.numpy() for t in probe(x, training=training))))


@pytest.mark.parametrize("training", [True, False])
def test_shared_weights_give_the_same_output_layer_by_layer(built, training):
    _, _, _, _, tm, km, x = built
    t, k = layer_outputs(tm, km, x, training)
    worst = {n: rel(t[n], k[n]) for n in LAYERS}
    assert max(worst.values()) <= 1e-12, worst


def test_eval_mode_fast_path_and_the_features(built):
    """Without hooks torch's eval runs nn.TransformerEncoderLayer's fused inference kernel; the
    embedding export's features (last position) agree too."""
    import torch

    _, pair, _, _, tm, km, x = built
    tm.eval()
    try:
        with torch.no_grad():
            logits = tm(torch.from_numpy(x)).numpy()
            tf_, to = pair.torch_features(tm, torch.from_numpy(x))
    finally:
        tm.train()
    assert rel(logits, km(x, training=False).numpy()) <= 1e-12
    kf, ko = pair.keras_features(km, x)
    assert tf_.shape == (16, 12) and to.shape == (16, 97)
    assert rel(tf_.numpy(), kf.numpy()) <= 1e-12 and rel(to.numpy(), ko.numpy()) <= 1e-12


def test_keras_stock_float64_constants_are_what_the_shared_layers_fix(built):
    """Keras' stock MultiHeadAttention scales by 1/sqrt(head_dim) through float32 and tf.nn.gelu's
    1/sqrt(2) is float32: ~1e-8 off torch in float64. ExactScaleAttention and torch_gelu are not."""
    import keras
    import torch
    import torch.nn.functional as F

    from trainers.models.transformer_layers import keras_classes

    tm, km = built[4], built[5]
    h = np.random.default_rng(1).normal(size=(4, 32, 12))
    stock = keras.layers.MultiHeadAttention(2, 6, dtype="float64")
    stock(h, h, use_causal_mask=True)
    for v, mine in zip(stock.weights, km.get_layer("layer0.self_attn").weights):
        v.assign(mine)
    exact = km.get_layer("layer0.self_attn")(h, h, use_causal_mask=True).numpy()
    with torch.no_grad():
        want = tm.layer0.self_attn(*[torch.from_numpy(h)] * 3, attn_mask=tm.causal, is_causal=True,
                                   need_weights=False)[0].numpy()
    assert rel(want, exact) <= 1e-13 and rel(want, stock(h, h, use_causal_mask=True).numpy()) > 1e-10
    z = np.linspace(-4, 4, 1001)
    torch_gelu = F.gelu(torch.from_numpy(z)).numpy()
    assert rel(torch_gelu, keras_classes()["gelu"](keras.ops.convert_to_tensor(z)).numpy()) <= 1e-15
    assert rel(torch_gelu, keras.activations.get("gelu")(keras.ops.convert_to_tensor(z)).numpy()) > 1e-10


# --- through the trainers ----------------------------------------------------------------------------------
@pytest.mark.parametrize("name", list(OPTIMIZERS))
def test_float64_losses_agree_every_step(runs, name):
    torch_dir, tf_dir = runs[name]
    a, b = read_scalars(torch_dir, "loss/train_fp64"), read_scalars(tf_dir, "loss/train_fp64")
    worst = max_rel_diff(a, b, range(1, 201))
    print(f"transformer float64 {name}: max rel diff over 200 steps {worst:.3g}")
    assert worst <= 1e-12
    assert b[200] < 0.8 * b[1]  # it learned something
    va, vb = read_scalars(torch_dir, "loss/val"), read_scalars(tf_dir, "loss/val")  # eval mode, float32 records
    assert va.keys() == vb.keys() and max_rel_diff(va, vb, sorted(va)) <= 1e-6


def test_layers_table_counts_the_same_on_both_sides(runs):
    t, f = settings_of(runs, "adam")
    assert [r["name"] for r in t["layers"]] == [r["name"] for r in f["layers"]] == LAYERS
    assert [r["params"] for r in t["layers"]] == [r["params"] for r in f["layers"]]
    assert t["total_params"] == f["total_params"] == 6601
    from twinboard.histograms import read_histograms

    th, fh = (set(read_histograms(d)["tag"]) for d in runs["adam"])
    assert th == fh and "weights/layer1.self_attn/query_kernel" in th and "grads/tok/embeddings" in th
    attn = {r["name"]: r for r in f["layers"]}["layer0.self_attn"]
    assert attn["params"] == 4 * 12 * 12 + 4 * 12 and len(attn["tensors"]) == 8  # q, k, v, out: kernel, bias
    assert t["dropout"] == f["dropout"] == 0.0
    assert t["layer_defaults"]["layer_norm_eps"] == f["layer_defaults"]["layer_norm_eps"] == 1e-5
    assert t["layer_defaults"]["attention_scale"] == f["layer_defaults"]["attention_scale"] == 1 / np.sqrt(6)
    assert t["layer_defaults"]["gelu"] == f["layer_defaults"]["gelu"]


def test_graphs_page_layers_table_matches_row_by_row(runs):
    """The Graphs page's table from the real graphs: torch's scopes inside self_attn (out_proj, the
    packed in_proj parametrizations) fold into the layer settings.json names, and the embeddings'
    custom-gradient op shows no mixed-up shapes: every row and the total match."""
    from twinboard import graphs

    left, right = (graphs.layer_summary(graphs.read_graphs(d), graphs.read_settings(d)) for d in runs["adam"])
    table = graphs.align_layers(left, right)
    assert table["layer"].tolist() == [*LAYERS, "total"] and table["match"].all(), table.to_string()
    assert table.iloc[-1]["PyTorch params"] == table.iloc[-1]["TensorFlow params"] == 6601
    assert all(s.count("[") <= 1 for s in table["TensorFlow output shape"])


def test_native_run_parts_and_says_why(runs):
    torch_dir, tf_dir = runs["native"]
    a, b = read_scalars(torch_dir, "loss/train_fp64"), read_scalars(tf_dir, "loss/train_fp64")
    worst = max_rel_diff(a, b, range(1, 31))
    print(f"transformer native: max rel diff over 30 steps {worst:.3g}")
    assert worst > 1e-3
    t, f = settings_of(runs, "native")
    assert (t["dropout"], f["dropout"]) == (0.1, 0.0)
    tl, fl = t["layer_defaults"], f["layer_defaults"]
    assert (tl["layer_norm_eps"], fl["layer_norm_eps"]) == (1e-5, 1e-3)
    assert tl["attention_scale"] == 1 / np.sqrt(6) != fl["attention_scale"] == float(np.float32(1 / np.sqrt(6)))
    assert "rounded to float32" in fl["gelu"] and "rounded" not in tl["gelu"]
    assert tl["initializers"]["embeddings"] == "N(0, 1)" and fl["initializers"]["embeddings"] == "U(±0.05)"
    assert "in_proj_weight [3d, d]" in tl["attention_layout"] and "[d, heads, head_dim]" in fl["attention_layout"]
    assert [r["params"] for r in t["layers"]] == [r["params"] for r in f["layers"]]
