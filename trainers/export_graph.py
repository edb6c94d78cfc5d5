"""Model-graph export, called by the trainers once, after the first train step.

PyTorch: `torch_graph(writer, model, batch)` traces the model as tensorboardX's `add_graph` does, then
repairs what TensorBoard trips on (pytorch#24157): parameter reads get `_output_shapes` (so parameter
counts can be read from the graph) and inputs that point at nodes missing from the trace (the module
objects `prim::GetAttr` reads from) get a node of their own. Written as `Event.graph_def`.

TensorFlow: `tf_graph(logdir, model, batch, train_step_fn, writer)` writes, through the run's own
tf.summary writer (a trainer passes it: TensorBoard polls only the newest event file of a run while
it grows, so a second file would hide everything written after it) or else a file of its own in
logdir:
- `Event.graph_def`: the traced train step (forward, gradients, optimizer), as Keras' TensorBoard
  callback does; the forward graph when there is no train step;
- tag `forward` (plugin `graph_run_metadata_graph`, as `tf.summary.trace_export` writes): the forward
  pass alone, traced on the example batch, one name scope per layer;
- tag `keras` (plugin `graph_keras_model`): the Keras model's JSON, TensorBoard's conceptual graph.
No step is run: graphs come from traces, so the trainers' weights and optimizer state are untouched.

Framework imports stay inside the functions: importing this module costs nothing. A failed export
warns on stderr and returns False; it never stops a training run.
"""
from __future__ import annotations

import importlib
import importlib.util
import re
import sys
import traceback
import types
from typing import Any

_BRACKET = re.compile(r"^([\w.]+)\[([^\]]*)\]$")  # tensorboardX scope part `Linear[dense0]`
_ATTR_NAME = re.compile(r"name\s*:\s*(\w+)")  # GetAttr's attr string `{ name :  weight }`
LAYER_NAME = re.compile(r"^(dense|conv)\d+$|^out$")  # docs/ARCHITECTURE.md layer names


def _warn(what: str) -> None:
    print(f"export_graph: {what} not written:\n{traceback.format_exc()}", file=sys.stderr)


# --- PyTorch ---------------------------------------------------------------------------------------
def torch_graph(writer: Any, model: Any, example_batch: Any) -> bool:
    """Trace `model` on `example_batch` and write its graph through `writer` (tensorboardX or torch's)."""
    try:
        import torch

        trace = _torch_tracer()
        with torch.no_grad():  # tracing records ops either way; no autograd graph to build and drop
            graph_def, step_stats = trace(model, (example_batch,))
        repair_torch_graph(graph_def, model)
        file_writer = getattr(writer, "_get_file_writer", None)
        if file_writer is None:  # an unknown writer: let it trace again its own way
            writer.add_graph(model, example_batch)
        else:
            file_writer().add_graph((graph_def, step_stats))
        writer.flush()
        return True
    except Exception:  # noqa: BLE001 - a graph is a nice-to-have; the run goes on without it
        _warn("PyTorch graph")
        return False


def _torch_tracer() -> Any:
    """`torch.utils.tensorboard._pytorch_graph.graph` (what tensorboardX's add_graph calls), imported
    without running `torch.utils.tensorboard/__init__`, which imports TensorFlow when it is installed
    (seconds and ~700 MB in the torch trainer). A stand-in package lets the submodule import alone."""
    pkg = "torch.utils.tensorboard"
    if pkg not in sys.modules:
        spec = importlib.util.find_spec(pkg)
        if spec is not None and spec.submodule_search_locations:
            stand_in = types.ModuleType(pkg)
            stand_in.__path__ = list(spec.submodule_search_locations)
            sys.modules[pkg] = stand_in
            try:
                return importlib.import_module(pkg + "._pytorch_graph").graph
            finally:
                del sys.modules[pkg]  # a later `import torch.utils.tensorboard` runs the real one
    return importlib.import_module(pkg + "._pytorch_graph").graph


def repair_torch_graph(graph_def: Any, model: Any) -> None:
    """Shapes for parameter reads; a node for every input that names a missing node. In place."""
    params = dict(model.named_parameters())
    params.update(dict(model.named_buffers()))
    names = {n.name for n in graph_def.node}
    for node in graph_def.node:
        if node.op != "prim::GetAttr" or "_output_shapes" in node.attr:
            continue
        found = _ATTR_NAME.search(node.attr["attr"].s.decode("utf-8", "replace"))
        modules = [m.group(2) for p in node.name.split("/")[:-1] if (m := _BRACKET.match(p))]
        key = ".".join(modules + [found.group(1)]) if found else None
        if key in params:
            shape = node.attr["_output_shapes"].list.shape.add()
            for size in params[key].shape:
                shape.dim.add().size = int(size)
            node.attr["parameter"].s = key.encode()
    missing: list[str] = []
    for node in graph_def.node:
        for ref in node.input:
            name = ref.lstrip("^").split(":")[0]
            if name not in names:
                names.add(name)
                missing.append(name)
    for name in missing:  # the module object a GetAttr reads from: `.../weight/dense0` is `self.dense0`
        extra = graph_def.node.add()
        extra.name, extra.op = name, "prim::Module"


# --- TensorFlow ------------------------------------------------------------------------------------
def tf_graph(logdir: str, model: Any, example_batch: Any, train_step_fn: Any = None, writer: Any = None) -> bool:
    """Write the train-step graph, the forward graph and (Keras) the conceptual graph through
    `writer`, or a writer of its own on logdir (a `.graph` file) when there is none."""
    try:
        import tensorflow as tf

        x = tf.convert_to_tensor(example_batch)
        forward = _forward_graph_def(tf, model, x)
        train = _train_graph_def(train_step_fn)
        own = writer is None
        if own:
            writer = tf.summary.create_file_writer(str(logdir), filename_suffix=".graph")
        with writer.as_default():
            tf.summary.graph(train if train is not None else forward)
            if train is not None:
                meta = tf.compat.v1.RunMetadata()
                meta.function_graphs.add().pre_optimization_graph.CopyFrom(forward)
                _write_blob(tf, "forward", meta.SerializeToString(), "graph_run_metadata_graph")
            keras_json = _keras_json(model)
            if keras_json is not None:
                _write_blob(tf, "keras", keras_json.encode(), "graph_keras_model")
        writer.flush()
        if own:
            writer.close()
        return True
    except Exception:  # noqa: BLE001
        _warn("TensorFlow graph")
        return False


def _write_blob(tf: Any, tag: str, data: bytes, plugin: str) -> None:
    """One string tensor under a graph plugin, as tf.summary.trace_export / Keras' callback write it."""
    meta = tf.compat.v1.SummaryMetadata()
    meta.plugin_data.plugin_name = plugin
    meta.plugin_data.content = b"1"  # the plugins' format version
    tf.summary.write(tag=tag, tensor=tf.constant(data, dtype=tf.string), step=0, metadata=meta)


def _is_keras(model: Any) -> bool:
    return any(c.__module__.startswith(("keras", "tf_keras")) and c.__name__ in ("Model", "Layer")
               for c in type(model).__mro__)


def _keras_json(model: Any) -> str | None:
    if not _is_keras(model):
        return None
    try:
        return model.to_json()
    except Exception:  # noqa: BLE001 - subclassed models without get_config cannot say
        return None


def _forward_graph_def(tf: Any, model: Any, x: Any) -> Any:
    """The forward pass traced on x's shape and dtype, with add_shapes (so `_output_shapes` exist)."""
    keras = _is_keras(model)

    def forward(t):
        if keras:
            return model(t, training=False)
        with tf.name_scope(getattr(model, "name", None) or "model"):
            return model(t)

    spec = tf.TensorSpec(x.shape, x.dtype)
    graph = tf.function(forward).get_concrete_function(spec).graph
    if not keras and not _has_layer_scopes(graph):
        with _scoped_layers(tf, model):  # a tf.Module whose layers open no scope: give each one
            graph = tf.function(forward).get_concrete_function(spec).graph
    return graph.as_graph_def(add_shapes=True)


def _has_layer_scopes(graph: Any) -> bool:
    return any(LAYER_NAME.match(re.sub(r"_\d+$", "", part))
               for op in graph.get_operations() for part in op.name.split("/")[:-1])


class _scoped_layers:
    """For the duration of a trace, calls to the model's sub-modules open a name scope each.

    `tf.Module.with_name_scope` on a subclass's `__call__`, applied by swapping each instance's class
    for a subclass (dunder methods are looked up on the class); the classes are restored after.
    """

    def __init__(self, tf: Any, model: Any):
        self.tf, self.swapped = tf, []
        self.modules = [m for m in getattr(model, "submodules", ()) if callable(m)]

    def __enter__(self) -> None:
        for m in self.modules:
            cls = type(m)
            scoped = type(cls.__name__, (cls,), {"__call__": self.tf.Module.with_name_scope(cls.__call__)})
            try:
                m.__class__ = scoped
                self.swapped.append((m, cls))
            except TypeError:
                pass

    def __exit__(self, *exc: Any) -> None:
        for m, cls in self.swapped:
            m.__class__ = cls


def _train_graph_def(fn: Any) -> Any:
    """The graph of an already-traced tf.function (no call, so no extra step), or None."""
    if fn is None:
        return None
    graph = getattr(fn, "graph", None)  # a ConcreteFunction
    if graph is None:
        concrete = list(getattr(fn, "_list_all_concrete_functions", lambda: [])())
        if not concrete:
            try:
                concrete = [fn.get_concrete_function()]  # works when it has an input_signature
            except Exception:  # noqa: BLE001
                return None
        # The first trace also creates variables (optimizer slots); the last is the steady-state step.
        graph = concrete[-1].graph
    return graph.as_graph_def(add_shapes=True)
