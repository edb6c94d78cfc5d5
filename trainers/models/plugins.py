"""Model plugins: a pair the user brings, one Python file `<name>.py` in the model folder
(twinboard.contract.models_dir(): $TWINBOARD_MODELS, else the repository's models/). RunSpec.model
names it like a built-in model; models/resmlp.py is the worked example.

The plugin API, module-level names (framework imports inside the functions, so the TensorFlow
trainer never imports torch and the torch trainer never imports TensorFlow):

    def torch_model(spec, n_features, n_outputs) -> torch.nn.Module         required
        built under torch.manual_seed(spec.seed), with the run dtype as torch's default dtype
    def keras_model(spec, n_features, n_outputs) -> keras.Model             required, built (an Input)
        built after keras.config.set_floatx(spec.dtype) and keras.utils.set_random_seed(spec.seed)
    CORRESPONDENCE = {"torch state_dict name": "Keras path" | ("Keras path", "transform")}   optional
        transform: a TRANSFORMS name or the name of a function the plugin defines (numpy, torch
        layout -> Keras layout); left out, the automatic rule's. Tensors not declared are matched by
        the automatic rule (trainers.models.matching: torch "block0.fc.weight" [out, in] is Keras
        "block0_fc/kernel" [in, out]).
    LAST_HIDDEN = "block1" | ("blocks.1", "block1")                          optional
        the layer whose output the embeddings show: a torch module path (its Keras layer is the path
        with "." read as "_"), or (torch module path, Keras layer name). Without it the embeddings
        show the model's outputs.
    def settings(framework, spec) -> {"batch_norm"|"dropout"|"layer_defaults": ...}   optional
        what differs between the two sides' layers (eps, momentum...), for the Parity page.
    LAYOUT = ("NC", "NC")                                                     optional: data layouts

Before a plugin trains, the preflight (trainers.models.preflight, in a process with both frameworks,
run by the launcher) builds both models, derives and checks the correspondence and writes the plan
(plan.json: names, shapes, Keras paths, transforms, tags, trainable) and, with init=shared, init.npz:
torch's own initialisation under torch.manual_seed(seed), in torch's layout. Each trainer reads
both from its run folder, so neither needs the other framework. numpy and the contract only here.
"""
from __future__ import annotations

import hashlib
import importlib.util
import json
import os
import re
import sys
from collections.abc import Callable
from pathlib import Path
from types import ModuleType
from typing import Any

import numpy as np

from trainers.models.base import ModelPair, Param, conv_kernel, same, transpose
from twinboard.contract import INIT_NPZ, MODELS, RunSpec, models_dir
from twinboard.contract.spec import NAME_RE

PLAN_JSON = "plan.json"  # in the run folder, beside spec.json and init.npz
PLAN_FORMAT = 1
RUN_DIR_ENV = "TWINBOARD_RUN_DIR"  # the run folder, as the dispatcher names it to each trainer
SHARED_INIT_RULE = "torch's own initialisation under torch.manual_seed(seed), drawn by the preflight (init.npz)"
PLUGIN_SETTINGS = ("batch_norm", "dropout", "layer_defaults")  # what a plugin's settings() may return


def conv1d_kernel(a: np.ndarray) -> np.ndarray:
    """Conv1d [out, in, k] -> Conv1D [k, in, out]."""
    return a.transpose(2, 1, 0)


TRANSFORMS: dict[str, Callable[[np.ndarray], np.ndarray]] = {
    "same": same, "transpose": transpose, "conv_kernel": conv_kernel, "conv1d_kernel": conv1d_kernel}


class PluginError(ValueError):
    """A plugin that cannot be loaded or used; the message names the file and what is wrong."""


# --- loading ---------------------------------------------------------------------------------------
def plugin_path(name: str, folder: Path | None = None) -> Path:
    if name in MODELS or not re.fullmatch(NAME_RE, name or ""):
        raise PluginError(f"{name!r} is not a plugin's name (a built-in model, or not lower-case letters, "
                          "digits and _)")
    path = Path(folder or models_dir()) / f"{name}.py"
    if not path.is_file():
        raise PluginError(f"no model plugin {name!r}: {path} does not exist")
    return path


def load_module(name: str, folder: Path | None = None) -> ModuleType:
    """The plugin's module, executed from its file (a new module object each call)."""
    path = plugin_path(name, folder)
    module_name = f"_twinboard_model_{name}"
    spec = importlib.util.spec_from_file_location(module_name, path)
    module = importlib.util.module_from_spec(spec)
    sys.modules[module_name] = module  # dataclasses and pickling look a class's module up here
    try:
        spec.loader.exec_module(module)
    except Exception as exc:  # the user's code: its failure is the plugin's, named
        raise PluginError(f"{path}: importing it raised {type(exc).__name__}: {exc}") from exc
    for fn in ("torch_model", "keras_model"):
        if not callable(getattr(module, fn, None)):
            raise PluginError(f"{path}: defines no {fn}(spec, n_features, n_outputs)")
    return module


def file_sha256(path: Path) -> str:
    return hashlib.sha256(Path(path).read_bytes()).hexdigest()


def resolver(module: ModuleType) -> Callable[[str], Callable[[np.ndarray], np.ndarray]]:
    """Transform name -> function: TRANSFORMS, then the plugin's own functions. KeyError naming both."""
    def resolve(name: str) -> Callable[[np.ndarray], np.ndarray]:
        fn = TRANSFORMS.get(name) or getattr(module, name, None)
        if not isinstance(name, str) or not callable(fn) or isinstance(fn, type):
            raise KeyError(f"no transform {name!r} (known: {', '.join(TRANSFORMS)}; or a function the plugin defines)")
        return fn
    return resolve


def declared(module: ModuleType) -> dict[str, tuple[str, str | None]]:
    """CORRESPONDENCE as torch name -> (Keras path, transform name or None)."""
    raw = getattr(module, "CORRESPONDENCE", None) or {}
    where = f"{module.__file__}: CORRESPONDENCE"
    if not isinstance(raw, dict):
        raise PluginError(f"{where} must be a dict of torch name -> Keras path or (path, transform)")
    out: dict[str, tuple[str, str | None]] = {}
    for name, value in raw.items():
        path, transform = None, None
        if isinstance(value, str):
            path = value
        elif isinstance(value, (tuple, list)) and len(value) == 2:
            path, transform = value
        if callable(transform):  # a function: by its name, which must be the plugin's own
            transform = transform.__name__ if getattr(module, transform.__name__, None) is transform else None
            if transform is None:
                raise PluginError(f"{where}[{name!r}]: a transform function must be defined in the plugin")
        if not (isinstance(name, str) and isinstance(path, str) and (transform is None or isinstance(transform, str))):
            raise PluginError(f"{where}[{name!r}]: {value!r} is not a Keras path or (path, transform name)")
        out[name] = (path, transform)
    return out


def last_hidden(module: ModuleType) -> tuple[str, str] | None:
    """(torch module path, Keras layer name) of LAST_HIDDEN, or None."""
    value = getattr(module, "LAST_HIDDEN", None)
    if value is None:
        return None
    if isinstance(value, str) and value:
        return value, value.replace(".", "_")
    if isinstance(value, (tuple, list)) and len(value) == 2 and all(isinstance(v, str) and v for v in value):
        return value[0], value[1]
    raise PluginError(f"{module.__file__}: LAST_HIDDEN must be a torch module path or (torch path, Keras layer)")


def build_torch(module: ModuleType, spec: RunSpec, n_features: int, n_outputs: int, dtype: Any):
    """The plugin's torch model with `dtype` as torch's default while it builds, so its layers draw
    their initial weights in the run dtype (the caller seeds torch first)."""
    import torch

    before = torch.get_default_dtype()
    torch.set_default_dtype(dtype)
    try:
        model = module.torch_model(spec, n_features, n_outputs)
    finally:
        torch.set_default_dtype(before)
    if not isinstance(model, torch.nn.Module):
        raise PluginError(f"{module.__file__}: torch_model returned {type(model).__name__}, not a torch.nn.Module")
    return model.to(dtype)


def build_keras(module: ModuleType, spec: RunSpec, n_features: int, n_outputs: int):
    import keras

    model = module.keras_model(spec, n_features, n_outputs)
    if not isinstance(model, keras.Model) or not model.built:
        raise PluginError(f"{module.__file__}: keras_model must return a built keras.Model (start it with "
                          f"keras.Input), not {type(model).__name__}")
    return model


def keras_feature_model(model, layer: str, where: str):
    """A Model from the inputs to (the layer's output, the model's output), sharing the variables."""
    import keras

    try:
        inputs = model.inputs[0] if len(model.inputs) == 1 else model.inputs
        return keras.Model(inputs, [model.get_layer(layer).output, model.outputs[0]])
    except (ValueError, AttributeError) as exc:
        raise PluginError(f"{where}: LAST_HIDDEN names Keras layer {layer!r}, which cannot be read ({exc})") from None


def load_plugin(name: str, run_dir: str | os.PathLike | None = None) -> PluginPair:
    """The pair RunSpec.model names: its file loaded, its plan read from `run_dir` (default: the run
    folder in $TWINBOARD_RUN_DIR, which the dispatcher sets for each trainer) when params() asks."""
    module = load_module(name)
    return PluginPair(name, module, Path(module.__file__), run_dir or os.environ.get(RUN_DIR_ENV) or None)


# --- the plan --------------------------------------------------------------------------------------
def read_plan(run_dir: Path, spec: RunSpec, plugin_file: Path, n_features: int, n_outputs: int) -> dict[str, Any]:
    """plan.json, checked against this run: its spec, its data's shape and the plugin file as it is now."""
    path = Path(run_dir) / PLAN_JSON
    try:
        plan = json.loads(path.read_text(encoding="utf-8"))
    except FileNotFoundError:
        raise PluginError(f"{path} is missing: a plugin model runs from the preflight's plan (launch it through "
                          f"twinboard, or run python -m trainers.models.preflight SPEC.json --out RUN_DIR)") from None
    except (OSError, ValueError) as exc:
        raise PluginError(f"{path}: unreadable ({exc})") from None
    if not isinstance(plan, dict) or plan.get("format") != PLAN_FORMAT or not isinstance(plan.get("params"), list):
        raise PluginError(f"{path}: not a plan of format {PLAN_FORMAT}")
    if plan.get("spec") != spec.to_dict():
        raise PluginError(f"{path} was made for another spec than this run's; run the preflight again")
    if plan.get("plugin_sha256") != file_sha256(plugin_file):
        raise PluginError(f"{plugin_file} changed since the preflight checked it; launch the run again")
    if [plan.get("n_features"), plan.get("n_outputs")] != [n_features, n_outputs]:
        raise PluginError(f"{path}: made for {plan.get('n_features')} features and {plan.get('n_outputs')} outputs, "
                          f"the data has {n_features} and {n_outputs}")
    if spec.init == "shared" and not (Path(run_dir) / INIT_NPZ).is_file():
        raise PluginError(f"{Path(run_dir) / INIT_NPZ} is missing: the preflight draws a plugin's shared initial "
                          "weights (torch's own initialisation); launch the run again")
    return plan


class PluginPair(ModelPair):
    """A plugin's pair: its two builders, the plan the preflight wrote, its last hidden layer."""

    # settings.json's init under init=shared, once trainers.weights.apply_init takes it from the pair
    # (its own text describes the built-in models' numpy draw)
    shared_init_desc = f"shared: init.npz ({SHARED_INIT_RULE})"

    def __init__(self, name: str, module: ModuleType, path: Path, run_dir: str | os.PathLike | None):
        self.module, self.path, self.run_dir = module, path, run_dir
        self.last = last_hidden(module)
        self.resolve = resolver(module)
        self.plan: dict[str, Any] | None = None
        self.features = None  # the Keras feature model (keras_model builds it)
        super().__init__(name, layout=tuple(getattr(module, "LAYOUT", ("NC", "NC"))),
                         describes_embedding=self.last is not None,
                         native_init=(f"the torch modules' own initializers in {path.name}",
                                      (f"the Keras layers' own initializers in {path.name} "
                                       "(keras.utils.set_random_seed(seed))")))

    def params(self, spec: RunSpec, n_features: int, n_outputs: int) -> list[Param]:
        if self.run_dir is None:
            raise PluginError(f"model plugin {self.name!r} reads plan.json from its run folder, and none is known: "
                              f"launch it through twinboard, or set {RUN_DIR_ENV} to the folder the preflight wrote")
        self.plan = read_plan(Path(self.run_dir), spec, self.path, n_features, n_outputs)
        # ("const", 0): the draw shared_init makes only to check init.npz's names, shapes and dtypes;
        # the values are the preflight's (read_plan insists on the file)
        return [Param(e["torch"], tuple(e["shape"]), e["keras"], e["tag"], ("const", 0.0), self.resolve(e["transform"]),
                      bool(e["trainable"])) for e in self.plan["params"]]

    def torch_model(self, spec: RunSpec, n_features: int, n_outputs: int, dtype: Any):
        model = build_torch(self.module, spec, n_features, n_outputs, dtype)
        if self.plan is not None:
            alias_layers(model, self.plan)
        return model

    def keras_model(self, spec: RunSpec, n_features: int, n_outputs: int):
        model = build_keras(self.module, spec, n_features, n_outputs)
        if self.last is not None:
            self.features = keras_feature_model(model, self.last[1], str(self.path))
        return model

    def torch_features(self, model, x):
        """(the LAST_HIDDEN module's output, outputs), read by a forward hook; (outputs, outputs) without one."""
        if self.last is None:
            out = model(x)
            return out, out
        seen = []
        hook = model.get_submodule(self.last[0]).register_forward_hook(lambda m, i, o: seen.append(o))
        try:
            out = model(x)
        finally:
            hook.remove()
        return seen[-1], out

    def keras_features(self, model, x):
        if self.features is None:
            out = model(x, training=False)
            return out, out
        features, out = self.features(x, training=False)
        return features, out

    def settings(self, framework: str, spec: RunSpec) -> dict[str, Any]:
        """The plugin's own settings(), and in layer_defaults which file ran and how shared weights were drawn."""
        own = getattr(self.module, "settings", None)
        got = own(framework, spec) if callable(own) else {}
        if not isinstance(got, dict) or any(k not in PLUGIN_SETTINGS for k in got):
            raise PluginError(f"{self.path}: settings() must return a dict with keys among "
                              f"{', '.join(PLUGIN_SETTINGS)}")
        defaults = got.get("layer_defaults") or {}
        return {**got, "layer_defaults": {**defaults, "plugin": self.path.name, "plugin_sha256": file_sha256(self.path),
                                          "shared_init": SHARED_INIT_RULE}}


def alias_layers(model, plan: dict[str, Any]) -> None:
    """torch's layer rows (trainers.torch_model.describe_layers) find a layer by its tag's name, the
    Keras layer's ("block0_fc"), with model.get_submodule; the torch module is "block0.fc". Each such
    layer that Keras has at its top level gets an alias on the model: an instance attribute, not a
    registered child, so state_dict, parameters() and tracing are unchanged."""
    keras_layers = set(plan.get("keras_layers") or ())
    for e in plan["params"]:
        layer, module_path = e["tag"].split("/", 1)[0], e["torch"].rpartition(".")[0]
        if layer in keras_layers and module_path and module_path != layer and not hasattr(model, layer):
            model.__dict__[layer] = model.get_submodule(module_path)
