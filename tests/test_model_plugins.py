"""Model plugins (trainers.models.plugins, .matching, .preflight; twinboard.runs.plugins).

The worked example, models/resmlp.py, passes its preflight and trains end to end in both real
trainers (one tiny float64 run: loss/train_fp64 agrees to 1e-12, and its histograms, graphs,
embeddings and layer rows are there on both sides); a mismatched plugin is refused by the preflight
with a message naming both tensors and nothing written; the automatic matching rule on small cases.

One module fixture pays for the subprocesses (~10 s of CPU a preflight, both framework imports): the
example's and the mismatched plugin's preflights side by side, then the two trainers side by side, as
the launcher and the dispatcher run them (the run folder in TWINBOARD_RUN_DIR).
"""
from __future__ import annotations

import json
import os
import shutil
import subprocess
import sys
import tempfile
import types
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass
from pathlib import Path

import numpy as np
import pytest

from tests.test_parity_training import max_rel_diff, read_scalars
from trainers.models import matching
from trainers.models import plugins as trainer_plugins
from trainers.models.matching import MatchError, Tensor, match
from twinboard.contract import RunSpec
from twinboard.runs import plugins

REPO = Path(__file__).resolve().parents[1]
SPEC = RunSpec(model="resmlp", dtype="float64", steps=20, log_every=1, histogram_every=10, embedding_samples=24)
BAD_SPEC = RunSpec(model="badmlp", steps=2)
# body: 16 units in torch, 8 in Keras; skip only in torch, gate only in Keras
BAD_PLUGIN = '''
def torch_model(spec, n_features, n_outputs):
    import torch.nn as nn

    class Bad(nn.Module):
        def __init__(self):
            super().__init__()
            self.body, self.out = nn.Linear(n_features, 16), nn.Linear(16, n_outputs)
            self.skip = nn.Linear(n_features, n_outputs)

        def forward(self, x):
            return self.out(self.body(x).relu()) + self.skip(x)

    return Bad()


def keras_model(spec, n_features, n_outputs):
    import keras

    x = keras.Input((n_features,))
    h = keras.layers.Dense(8, activation="relu", name="body")(x)
    out, gate = keras.layers.Dense(n_outputs, name="out")(h), keras.layers.Dense(n_outputs, name="gate")(x)
    return keras.Model(x, keras.layers.Add()([out, gate]))
'''


@dataclass(frozen=True)
class PluginRuns:
    run_dir: Path  # the example's run: plan.json, init.npz, torch/, tensorflow/
    refused: plugins.PluginRefused
    logdir_after_refusal: list[str]
    temp_left: set[Path]  # preflight folders the refused one left behind


def _text(path: Path) -> str:
    try:
        return path.read_text()
    except OSError:
        return ""


def _refusal(spec: RunSpec, logdir: Path) -> plugins.PluginRefused:
    with pytest.raises(plugins.PluginRefused) as err:
        plugins.preflight(spec, logdir)
    return err.value


@pytest.fixture(scope="module")
def plugin_runs(tmp_path_factory) -> PluginRuns:
    root = tmp_path_factory.mktemp("plugins")
    models, logdir = root / "models", root / "logs"
    models.mkdir()
    logdir.mkdir()
    shutil.copy(REPO / "models" / "resmlp.py", models)
    (models / "badmlp.py").write_text(BAD_PLUGIN)
    temp = Path(tempfile.gettempdir())
    with pytest.MonkeyPatch.context() as mp:
        mp.setenv("TWINBOARD_MODELS", str(models))
        before = set(temp.glob("twinboard-preflight-*"))
        with ThreadPoolExecutor(1) as pool:  # both preflights at once: each is mostly its imports
            bad = pool.submit(_refusal, BAD_SPEC, logdir)
            checked = plugins.preflight(SPEC, logdir)
            refused = bad.result(timeout=300)
        after_refusal = sorted(os.listdir(logdir))
        new = set(temp.glob("twinboard-preflight-*")) - before  # another process's may come and go
        left = {p for p in new if "badmlp" in _text(p / "spec.json")}
        run_dir = logdir / "resmlp-run"  # what the launcher does next: run folder, spec.json, the plan
        run_dir.mkdir()
        SPEC.save(run_dir / "spec.json")
        checked.install(run_dir)
        checked.discard()
        env = {**os.environ, "TWINBOARD_RUN_DIR": str(run_dir), "TF_CPP_MIN_LOG_LEVEL": "2"}
        procs = [subprocess.Popen([sys.executable, "-m", module, str(run_dir / "spec.json")], cwd=REPO, env=env,
                                  stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True)
                 for module in ("trainers.torch_trainer", "trainers.tf_trainer")]
        for p in procs:
            _, err = p.communicate(timeout=300)
            assert p.returncode == 0, err[-3000:]
    return PluginRuns(run_dir, refused, after_refusal, left)


def test_example_trains_to_the_float64_floor(plugin_runs):
    torch_dir, tf_dir = plugin_runs.run_dir / "torch", plugin_runs.run_dir / "tensorflow"
    a, b = read_scalars(torch_dir, "loss/train_fp64"), read_scalars(tf_dir, "loss/train_fp64")
    rel = max_rel_diff(a, b, range(1, 21))
    print(f"resmlp float64 sgd-momentum: max rel diff over 20 steps {rel:.3g}")
    assert rel <= 1e-12
    assert b[20] < b[1]
    plan = json.loads((plugin_runs.run_dir / "plan.json").read_text())
    assert (plugin_runs.run_dir / "init.npz").is_file() and plan["left_out"] == {"torch": [], "keras": []}
    assert plan["forward"]["outputs_max_abs_diff"] < 1e-12  # same weights, same rows, before training
    with np.load(plugin_runs.run_dir / "init.npz") as z:  # torch's own init: LayerNorm gamma 1, beta 0
        assert np.all(z["block0.norm.weight"] == 1) and np.all(z["block0.norm.bias"] == 0)
        assert z["stem.weight"].dtype == np.float64 and z["stem.weight"].shape == (64, 64)


def test_every_view_has_the_plugins_records(plugin_runs):
    from twinboard.embeddings import read_embeddings
    from twinboard.graphs import align_layers, layer_summary, read_graphs, read_settings
    from twinboard.histograms import read_histograms

    sides = {fw: plugin_runs.run_dir / fw for fw in ("torch", "tensorflow")}
    plan = json.loads((plugin_runs.run_dir / "plan.json").read_text())
    tags = {f"{kind}/{e['tag']}" for e in plan["params"] for kind in ("weights", "grads")}
    assert "weights/block0_fc/kernel" in tags and "grads/head_norm/gamma" in tags
    emb = {}
    for fw, folder in sides.items():
        assert set(read_histograms(folder)["tag"]) == tags, fw
        kinds = sorted(g.kind for g in read_graphs(folder))
        assert kinds == (["op"] if fw == "torch" else ["keras", "op", "op"]), (fw, kinds)
        (emb[fw],) = read_embeddings(folder)
        assert emb[fw].tensor.shape == (24, 64)  # head_norm's output, LAST_HIDDEN
    assert np.max(np.abs(emb["torch"].tensor - emb["tensorflow"].tensor)) < 1e-5  # written as text, float32
    settings = {fw: read_settings(folder) for fw, folder in sides.items()}
    rows = {fw: [(r["name"], r["params"], r["output_shape"]) for r in s["layers"]] for fw, s in settings.items()}
    assert rows["torch"] == rows["tensorflow"]  # the torch rows found through the layer aliases
    assert [r[0] for r in rows["torch"]][:3] == ["stem", "block0_norm", "block0_fc"]
    assert settings["torch"]["total_params"] == settings["tensorflow"]["total_params"] == plan["total_params"] == 17706
    assert settings["torch"]["layer_defaults"] == settings["tensorflow"]["layer_defaults"]
    assert settings["torch"]["layer_defaults"]["plugin"] == "resmlp.py"
    table = align_layers(*(layer_summary(read_graphs(f), settings[fw]) for fw, f in sides.items()))
    assert table.iloc[-1]["PyTorch params"] == 17706  # torch's graph names nested modules "block0.norm": mapped
    assert table.iloc[-1]["TensorFlow params"] == 17706


def test_mismatched_plugin_is_refused_naming_both_tensors(plugin_runs):
    err = plugin_runs.refused
    assert str(err).startswith("model plugin 'badmlp' refused: body.weight (torch [16, 64]) <-> body/kernel "
                               "(Keras [64, 8]): transform transpose gives [64, 16] (and 6 more problems)")
    text = "\n".join(err.problems)
    assert "out.weight (torch [10, 16]) <-> out/kernel (Keras [8, 10])" in text
    assert "torch parameter skip.weight [10, 64] has no Keras counterpart" in text
    assert "unclaimed Keras tensors: gate/kernel [64, 10]" in text  # the likely counterpart, named
    assert "Keras variable gate/kernel [64, 10] has no torch counterpart" in text
    by_torch = {r["torch"]: r for r in err.rows if r["torch"]}
    assert by_torch["body.weight"]["keras"] == "body/kernel" and by_torch["skip.bias"]["status"] == "no counterpart"
    assert plugin_runs.logdir_after_refusal == []  # no run folder, nothing in the logdir
    assert plugin_runs.temp_left == set()  # and the preflight's temporary folder is gone


def _t(shape, trainable=True) -> Tensor:
    return Tensor("", tuple(shape), trainable)


def test_automatic_rule_pairs_by_name_and_checks_the_shape():
    torch = {"block0.fc.weight": _t([32, 64]), "block0.fc.bias": _t([32]), "block0.norm.weight": _t([64]),
             "block0.norm.bias": _t([64]), "conv.weight": _t([8, 1, 3, 3]), "sq.weight": _t([4, 4]),
             "bn.weight": _t([8]), "bn.running_var": _t([8], False), "pos": _t([5, 4])}
    keras = {"block0_fc/kernel": _t([64, 32]), "block0_fc/bias": _t([32]), "block0/norm/gamma": _t([64]),
             "block0/norm/beta": _t([64]), "conv/kernel": _t([3, 3, 1, 8]), "sq/kernel": _t([4, 4]),
             "bn/gamma": _t([8]), "bn/moving_variance": _t([8], False), "pos": _t([5, 4]),
             "drop/seed_generator_state": _t([2], False)}
    entries, left_out = match(torch, keras, {}, trainer_plugins.TRANSFORMS.__getitem__)
    got = {e.torch: (e.keras, e.transform, e.tag) for e in entries}
    assert got["block0.fc.weight"] == ("block0_fc/kernel", "transpose", "block0_fc/kernel")
    assert got["block0.norm.weight"] == ("block0/norm/gamma", "same", "block0_norm/gamma")  # nested Keras path
    assert got["conv.weight"][1] == "conv_kernel" and got["sq.weight"][1] == "transpose"  # names pick, not shapes
    assert got["bn.running_var"][0] == "bn/moving_variance" and got["pos"] == ("pos", "same", "pos/value")
    assert left_out == {"torch": [], "keras": ["drop/seed_generator_state"]}  # state, not trainable: left out


def test_ambiguity_declarations_and_transforms():
    torch, keras = {"a.weight": _t([4, 4]), "b.weight": _t([4, 4])}, {"a/kernel": _t([4, 4]), "a/weight": _t([4, 4])}
    with pytest.raises(MatchError, match=r"a.weight \(torch \[4, 4\]\) matches a/kernel and a/weight"):
        match({"a.weight": torch["a.weight"]}, keras, {}, trainer_plugins.TRANSFORMS.__getitem__)
    def flip(a):
        return a[::-1]

    plugin = types.ModuleType("plugin")
    plugin.flip = flip
    resolve = trainer_plugins.resolver(plugin)
    entries, _ = match(torch, keras, {"b.weight": ("a/weight", "flip")}, resolve)
    assert [(e.torch, e.keras, e.transform, e.how) for e in entries] == [
        ("a.weight", "a/kernel", "transpose", "auto"), ("b.weight", "a/weight", "flip", "declared")]
    with pytest.raises(MatchError) as err:
        match(torch, keras, {"b.weight": ("a/weight", "nope"), "c.weight": ("a/kernel", None)}, resolve)
    assert err.value.problems[0] == ("CORRESPONDENCE: c.weight (torch) <-> a/kernel (Keras): "
                                     "the torch model has no c.weight")
    assert "b.weight (torch [4, 4]) <-> a/weight (Keras [4, 4]): no transform 'nope'" in "\n".join(err.value.problems)
    plugin.__file__ = "plugin.py"
    plugin.CORRESPONDENCE = {"b.weight": ("a/weight", plugin.flip), "a.weight": "a/kernel"}
    assert trainer_plugins.declared(plugin) == {"b.weight": ("a/weight", "flip"), "a.weight": ("a/kernel", None)}
    plugin.CORRESPONDENCE = {"b.weight": ("a/weight", np.flipud)}  # a function from elsewhere: refused
    with pytest.raises(trainer_plugins.PluginError, match="must be defined in the plugin"):
        trainer_plugins.declared(plugin)


def test_plugin_folder_is_listed_by_name_and_the_trainers_need_the_plan(tmp_path, monkeypatch):
    assert "resmlp" in plugins.plugin_names()  # the repository's models/, the default folder
    for name in ("mine.py", "Bad-Name.py", "_private.py", "mlp.py", "notes.txt"):
        (tmp_path / name).write_text("raise SystemExit('never imported')\n")
    assert plugins.plugin_names(tmp_path) == ("mine",)
    assert plugins.plugin_names(tmp_path / "missing") == ()
    monkeypatch.setenv("TWINBOARD_MODELS", str(tmp_path))
    with pytest.raises(plugins.PluginRefused, match="no such model plugin.*plugins there: mine"):
        plugins.preflight(RunSpec(model="resmlp"))
    monkeypatch.delenv("TWINBOARD_MODELS")
    pair = trainer_plugins.load_plugin("resmlp", tmp_path)
    with pytest.raises(trainer_plugins.PluginError, match="plan.json is missing"):
        pair.params(SPEC, 64, 10)
    assert matching.tag_of("encoder/block0/fc/kernel") == "encoder_block0_fc/kernel"
