"""Model graphs: written by real writers (export_graph, tensorboardX, torch.utils.tensorboard, tf.summary),
read back by twinboard.graphs, collapsed, drawn as DOT, and compared layer by layer.

The frameworks run in two child processes, at once (one core each), writing into one folder per
session; this process imports none of them.
"""
from __future__ import annotations

import json
import subprocess
import sys
from pathlib import Path

import pandas as pd
import pytest
from hypothesis import given, settings, strategies as st

from twinboard import graphs
from twinboard.graphs.model import MISSING, Graph, graph_from_keras_json
from twinboard.graphs.reader import GraphScanner, _may_hold_graph, read_graphs
from twinboard.contract import CorruptRecordError, frame

ROOT = Path(__file__).resolve().parents[1]
MLP_PARAMS = 64 * 64 + 64 + 64 * 32 + 32 + 32 * 10 + 10  # 6570: digits 64 -> 64 -> 32 -> 10
CNN_PARAMS = (9 * 8 + 8) + (9 * 8 * 16 + 16) + (16 * 8 * 8 * 32 + 32) + (32 * 10 + 10)  # 34378
_WRITTEN: dict[str, Path] = {}


# --- writers, run in child processes ---------------------------------------------------------------
def write_torch(root: str) -> None:
    """<root>/{mlp,cnn}/torch via export_graph (tensorboardX); <root>/plain/torch via torch's writer."""
    import types

    import torch
    from tensorboardX import SummaryWriter
    from torch import nn

    from trainers import export_graph

    # torch.utils.tensorboard imports TensorFlow through tensorboard.compat.tf unless `notf` exists:
    # TensorBoard's own switch to its stub, so this child stays a torch-only process.
    sys.modules["tensorboard.compat.notf"] = types.ModuleType("tensorboard.compat.notf")

    torch.manual_seed(0)

    class MLP(nn.Module):
        def __init__(self):
            super().__init__()
            self.dense0, self.dense1, self.out = nn.Linear(64, 64), nn.Linear(64, 32), nn.Linear(32, 10)

        def forward(self, x):
            return self.out(torch.relu(self.dense1(torch.relu(self.dense0(x)))))

    class CNN(nn.Module):  # two 3x3 'same' convs on the 1x8x8 digit, a dense layer, the logits
        def __init__(self):
            super().__init__()
            self.conv0, self.conv1 = nn.Conv2d(1, 8, 3, padding=1), nn.Conv2d(8, 16, 3, padding=1)
            self.dense0, self.out = nn.Linear(16 * 8 * 8, 32), nn.Linear(32, 10)

        def forward(self, x):
            x = torch.relu(self.conv1(torch.relu(self.conv0(x.view(-1, 1, 8, 8)))))
            return self.out(torch.relu(self.dense0(x.flatten(1))))

    batch = torch.zeros(32, 64)
    for name, model in (("mlp", MLP()), ("cnn", CNN())):
        with SummaryWriter(f"{root}/{name}/torch") as w:
            assert export_graph.torch_graph(w, model, batch)
    assert "tensorflow" not in sys.modules, "export_graph.torch_graph imported TensorFlow"
    from torch.utils.tensorboard import SummaryWriter as TorchWriter

    with TorchWriter(f"{root}/plain/torch") as w:  # unrepaired: inputs naming missing nodes
        w.add_graph(MLP(), batch)


def write_tf(root: str) -> None:
    """<root>/{mlp,cnn}/tensorflow (Keras, with a traced train step), <root>/module/tensorflow (tf.Module)."""
    import os

    os.environ.setdefault("TF_CPP_MIN_LOG_LEVEL", "3")
    import keras
    import numpy as np
    import tensorflow as tf

    from trainers import export_graph

    L = keras.layers
    mlp = keras.Sequential([keras.Input((64,)), L.Dense(64, "relu", name="dense0"),
                            L.Dense(32, "relu", name="dense1"), L.Dense(10, name="out")])
    cnn = keras.Sequential([keras.Input((64,)), L.Reshape((8, 8, 1)),
                            L.Conv2D(8, 3, padding="same", activation="relu", name="conv0"),
                            L.Conv2D(16, 3, padding="same", activation="relu", name="conv1"),
                            L.Flatten(), L.Dense(32, "relu", name="dense0"), L.Dense(10, name="out")])
    x, y = np.zeros((32, 64), np.float32), np.zeros(32, np.int64)
    for name, model in (("mlp", mlp), ("cnn", cnn)):
        opt = keras.optimizers.SGD(0.05, momentum=0.9)
        loss_fn = keras.losses.SparseCategoricalCrossentropy(from_logits=True)

        @tf.function
        def step(xb, yb, model=model, opt=opt, loss_fn=loss_fn):
            with tf.GradientTape() as tape:
                loss = loss_fn(yb, model(xb, training=True))
            grads = tape.gradient(loss, model.trainable_variables)
            opt.apply_gradients(zip(grads, model.trainable_variables))
            return loss

        step(x, y)
        assert export_graph.tf_graph(f"{root}/{name}/tensorflow", model, x, step)

    class Dense(tf.Module):  # a plain tf.Module layer that opens no name scope of its own
        def __init__(self, n_in, n_out, name):
            super().__init__(name=name)
            self.w, self.b = tf.Variable(tf.zeros([n_in, n_out])), tf.Variable(tf.zeros([n_out]))

        def __call__(self, t):
            return tf.matmul(t, self.w) + self.b

    class Net(tf.Module):
        def __init__(self):
            super().__init__(name="net")
            self.layers = [Dense(64, 64, "dense0"), Dense(64, 32, "dense1"), Dense(32, 10, "out")]

        def __call__(self, t):
            for layer in self.layers[:-1]:
                t = tf.nn.relu(layer(t))
            return self.layers[-1](t)

    assert export_graph.tf_graph(f"{root}/module/tensorflow", Net(), x, None)


def written_runs(tmp_path_factory) -> Path:
    """Write every fixture once per session (shared with test_page_graphs), both frameworks at once."""
    if "root" not in _WRITTEN:
        root = tmp_path_factory.mktemp("graphs")
        procs = [subprocess.Popen([sys.executable, "-c", f"from tests.test_graphs import {fn}; {fn}({str(root)!r})"],
                                  cwd=ROOT, stdout=subprocess.PIPE, stderr=subprocess.STDOUT, text=True)
                 for fn in ("write_torch", "write_tf")]
        for p in procs:
            out, _ = p.communicate(timeout=240)
            assert p.returncode == 0, out[-4000:]
        _WRITTEN["root"] = root
    return _WRITTEN["root"]


@pytest.fixture(scope="session")
def runs(tmp_path_factory) -> Path:
    return written_runs(tmp_path_factory)


def _by_tag(graphs: list[Graph], tag: str) -> Graph:
    return next(g for g in graphs if g.tag == tag)


# --- reading -----------------------------------------------------------------------------------------
@pytest.mark.parametrize("run", ["mlp/torch", "cnn/torch", "plain/torch", "mlp/tensorflow",
                                 "cnn/tensorflow", "module/tensorflow"])
def test_every_writer_parses_into_nodes_and_edges(runs, run):
    graphs = read_graphs(runs / run)
    op_graphs = [g for g in graphs if g.kind == "op"]
    assert op_graphs
    for g in op_graphs:
        assert len(g.nodes) > 5 and len(g.edges) > 5
        assert list(g.nodes.columns[:6]) == ["name", "op", "scope", "device", "shape", "attrs"]
        assert set(g.edges["src"]) | set(g.edges["dst"]) <= set(g.nodes["name"])
        assert g.framework == run.split("/")[1]


def test_tensorflow_run_holds_train_step_forward_and_keras_graphs(runs):
    graphs = read_graphs(runs / "mlp/tensorflow")
    assert {(g.kind, g.tag) for g in graphs} == {("op", "graph_def"), ("op", "forward"), ("keras", "keras")}
    train, fwd = _by_tag(graphs, "graph_def"), _by_tag(graphs, "forward")
    assert train.nodes["name"].str.startswith("gradient_tape/").any()
    assert not fwd.nodes["name"].str.startswith("gradient_tape/").any()
    assert list(_by_tag(graphs, "keras").nodes["op"]) == ["InputLayer", "Dense", "Dense", "Dense"]
    assert (fwd.nodes["shape"] == "[32, 64]").any()  # shapes come from `_output_shapes`


def test_torch_utils_graph_with_dangling_inputs_is_repaired_and_noted(runs):
    g = read_graphs(runs / "plain/torch")[0]
    stubs = g.nodes[g.nodes["op"] == MISSING]
    assert len(stubs) == 3  # the module objects GetAttr reads from: dense0, dense1, out
    assert any("missing" in n for n in g.notes)
    exported = read_graphs(runs / "mlp/torch")[0]
    assert not (exported.nodes["op"] == MISSING).any() and not exported.notes  # export_graph repaired them


def test_handmade_graph_with_control_inputs_output_indices_missing_and_duplicate_nodes(tmp_path):
    from tensorboard.compat.proto import event_pb2, graph_pb2

    gd = graph_pb2.GraphDef()
    for name, op, inputs in [("a/x", "Placeholder", []), ("a/y", "Split", ["a/x"]),
                             ("b/z", "AddV2", ["a/y:1", "a/y:0", "^a/x", "gone/w:0"]),
                             ("b/z", "AddV2", []), ("", "NoOp", []), ("c", "Identity", ["b/z", "^ghost"])]:
        node = gd.node.add(name=name, op=op)
        node.input.extend(inputs)
    ev = event_pb2.Event(wall_time=1.0, graph_def=gd.SerializeToString())
    path = tmp_path / "events.out.tfevents.1.test"
    path.write_bytes(frame(event_pb2.Event(wall_time=1.0, file_version="brain.Event:2").SerializeToString())
                     + frame(ev.SerializeToString()) + frame(ev.SerializeToString())[:-3])  # torn tail
    (g,) = read_graphs(tmp_path)
    assert set(g.nodes["name"]) == {"a/x", "a/y", "b/z", "c", "gone/w", "ghost"}
    assert set(g.nodes.loc[g.nodes["op"] == MISSING, "name"]) == {"gone/w", "ghost"}
    edges = set(zip(g.edges["src"], g.edges["dst"], g.edges["control"]))
    assert edges == {("a/x", "a/y", False), ("a/y", "b/z", False), ("a/x", "b/z", True),
                     ("gone/w", "b/z", False), ("b/z", "c", False), ("ghost", "c", True)}
    assert len(g.notes) == 3  # missing inputs, a repeated name, a nameless node
    damaged = bytearray(frame(ev.SerializeToString()))
    damaged[20] ^= 0xFF  # complete, but its data CRC no longer matches
    path.write_bytes(frame(ev.SerializeToString()) + bytes(damaged))
    at = len(frame(ev.SerializeToString()))
    with pytest.raises(CorruptRecordError) as info:
        read_graphs(tmp_path)
    assert info.value.path == str(path) and info.value.offset == at and info.value.reason == "data CRC mismatch"
    scanner = GraphScanner(tmp_path)
    assert len(scanner.read()) == 1  # what came before the damage
    (problem,) = scanner.problems()
    assert (problem.path, problem.offset) == (str(path), at) and str(problem) == str(info.value)
    assert len(scanner.read()) == 1 and len(scanner.problems()) == 1  # met again, reported again


def test_scanner_reads_only_what_was_appended_and_skips_scalars(runs, tmp_path):
    from tensorboard.compat.proto import event_pb2, summary_pb2

    def scalar(step):
        value = summary_pb2.Summary.Value(tag="loss/train", simple_value=0.5)
        return frame(event_pb2.Event(wall_time=1.0, step=step, summary=summary_pb2.Summary(value=[value]))
                     .SerializeToString())

    source = next((runs / "mlp/tensorflow").glob("*.graph")).read_bytes()
    path = tmp_path / "events.out.tfevents.2.x"
    path.write_bytes(b"".join(scalar(i) for i in range(50)))
    scanner = GraphScanner(tmp_path)
    assert scanner.read() == []
    with path.open("ab") as f:
        f.write(source[: len(source) // 2])  # half the graph file: complete records only
    first = scanner.read()
    with path.open("ab") as f:
        f.write(source[len(source) // 2:] + scalar(51))
    assert [g.tag for g in scanner.read()] == ["graph_def", "forward", "keras"]
    assert len(first) < 3 and scanner.read() == scanner.graphs and not scanner.problems()
    assert not _may_hold_graph(scalar(3)[12:-4])
    ev = event_pb2.Event(graph_def=b"x").SerializeToString()
    assert _may_hold_graph(ev) and _may_hold_graph(event_pb2.Event(step=5).SerializeToString() + ev)


def test_keras_json_functional_and_keras2_formats():
    k3 = ('{"class_name": "Functional", "config": {"name": "m", "layers": ['
          '{"class_name": "InputLayer", "config": {"name": "inp", "batch_shape": [null, 4]}, "inbound_nodes": []},'
          '{"class_name": "Dense", "config": {"name": "a", "units": 3}, "inbound_nodes": [{"args": [{"class_name":'
          ' "__keras_tensor__", "config": {"keras_history": ["inp", 0, 0]}}], "kwargs": {}}]},'
          '{"class_name": "Add", "config": {"name": "s"}, "inbound_nodes": [{"args": [[{"config": {"keras_history":'
          ' ["a", 0, 0]}}, {"config": {"keras_history": ["inp", 0, 0]}}]]}]}]}}')
    g = graph_from_keras_json(k3)
    assert set(zip(g.edges["src"], g.edges["dst"])) == {("inp", "a"), ("a", "s"), ("inp", "s")}
    assert g.nodes.set_index("name").at["inp", "shape"] == "[?, 4]"
    k2 = ('{"class_name": "Model", "config": {"layers": [{"class_name": "InputLayer", "config": {"name": "i"},'
          ' "inbound_nodes": []}, {"class_name": "Dense", "config": {"name": "d"}, "inbound_nodes": [[["i", 0, 0, {}]]]}]}}')
    assert list(zip(graph_from_keras_json(k2).edges["src"], graph_from_keras_json(k2).edges["dst"])) == [("i", "d")]


# --- collapsing ----------------------------------------------------------------------------------------
def _group_edges(graph: Graph, depth, expand) -> set[tuple[str, str]]:
    g = {n: graphs.group_of(n, depth, expand) for n in graph.nodes["name"]}
    return {(g[s], g[d]) for s, d in zip(graph.edges["src"], graph.edges["dst"]) if g[s] != g[d]}


@pytest.mark.parametrize("run", ["mlp/torch", "cnn/torch", "mlp/tensorflow", "cnn/tensorflow"])
def test_collapsing_real_graphs_reduces_nodes_and_keeps_edges_between_groups(runs, run):
    for g in (x for x in read_graphs(runs / run) if x.kind == "op"):
        for depth in (None, 1, 2):
            c = graphs.collapse(g, depth)
            assert len(c.nodes) < len(g.nodes)
            assert set(zip(c.edges["src"], c.edges["dst"])) == _group_edges(g, depth, ())


names = st.lists(st.lists(st.sampled_from(["a", "b", "dense0", "dense0_1", "Linear[out]", "x"]),
                          min_size=1, max_size=4).map("/".join), min_size=1, max_size=25, unique=True)


@settings(max_examples=80, deadline=None)
@given(data=st.data(), node_names=names)
def test_collapse_keeps_every_edge_between_groups_and_invents_none(data, node_names):
    pairs = data.draw(st.lists(st.tuples(st.sampled_from(node_names), st.sampled_from(node_names),
                                         st.booleans()), max_size=60))
    nodes = pd.DataFrame({"name": node_names, "op": "Op", "scope": "", "device": "", "shape": "[1]",
                          "attrs": [{} for _ in node_names]})
    g = Graph("tensorflow", "op", "t", 0, nodes, pd.DataFrame(pairs, columns=["src", "dst", "control"]))
    all_scopes = graphs.scopes(g)
    expand = data.draw(st.lists(st.sampled_from(all_scopes), unique=True) if all_scopes else st.just([]))
    depth = data.draw(st.sampled_from([None, 0, 1, 2, 3]))
    c = graphs.collapse(g, depth, expand)
    assert set(zip(c.edges["src"], c.edges["dst"])) == _group_edges(g, depth, expand)
    assert len(c.nodes) <= len(g.nodes) and c.nodes["count"].sum() == len(g.nodes)
    assert set(c.edges["src"]) | set(c.edges["dst"]) <= set(c.nodes["name"])


def test_layer_groups_and_expanding_a_scope(runs):
    torch = read_graphs(runs / "mlp/torch")[0]
    assert set(graphs.collapse(torch).nodes["name"]) >= {"MLP/Linear[dense0]", "MLP/Linear[out]"}
    tf = _by_tag(read_graphs(runs / "mlp/tensorflow"), "forward")
    groups = graphs.collapse(tf)
    dense0 = next(n for n in groups.nodes["name"] if n.split("/")[-1].startswith("dense0"))
    opened = graphs.collapse(tf, expand=[dense0])
    assert dense0 not in set(opened.nodes["name"]) and len(opened.nodes) > len(groups.nodes)
    assert graphs.collapse(tf, depth=0).nodes["name"].tolist() == tf.nodes["name"].tolist()


def test_forward_only_hides_gradient_and_optimizer_ops(runs):
    train = _by_tag(read_graphs(runs / "mlp/tensorflow"), "graph_def")
    fwd = graphs.forward_only(train)
    top = set(fwd.nodes["name"].str.split("/").str[0])
    assert not top & {"gradient_tape", "sgd", "sgd_1"} and len(fwd.nodes) < len(train.nodes) / 2
    assert not fwd.nodes["op"].str.startswith("Assign").any()
    assert fwd.nodes["name"].str.contains("dense0").any()
    torch = read_graphs(runs / "mlp/torch")[0]
    assert graphs.forward_only(torch) is torch


# --- search, details, DOT ------------------------------------------------------------------------------
def test_find_and_details(runs):
    g = read_graphs(runs / "mlp/torch")[0]
    found = graphs.find_nodes(g, "DENSE1")
    assert found and all("dense1" in n.lower() for n in found)
    linear = next(n for n in found if g.nodes.set_index("name").at[n, "op"] == "aten::linear")
    details = graphs.node_details(g, linear).set_index("field")["value"]
    assert details["op"] == "aten::linear" and details["shape"] == "[32, 32]"
    assert "weight" in details["inputs"] and details["consumers"]
    assert graphs.find_nodes(g, "  ") == [] and graphs.node_details(g, "nope").empty


def test_dot_is_valid_looking_and_quotes_every_name(runs):
    g = graphs.collapse(read_graphs(runs / "cnn/torch")[0])
    dot = graphs.to_dot(g, highlight=["CNN/Conv2d[conv0]"])
    assert dot.startswith('digraph "graph_def" {') and dot.rstrip().endswith("}")
    assert dot.count("{") == dot.count("}")
    for name in g.nodes["name"]:
        assert f'"{name}" [label=' in dot
    assert dot.count(" -> ") == len(g.edges) and "#ffd54f" in dot  # the highlighted layer
    odd = Graph(None, "op", 'we"ird', 0, pd.DataFrame({"name": ['a"b\\c', "d"], "op": ["X", "Y"], "scope": "",
                                                        "device": "", "shape": "", "attrs": [{}, {}]}),
                pd.DataFrame({"src": ['a"b\\c'], "dst": ["d"], "control": [True]}))
    text = graphs.to_dot(odd)
    assert '"a\\"b\\\\c" -> "d" [style=dashed' in text and text.startswith('digraph "we\\"ird"')


# --- the layers table -----------------------------------------------------------------------------------
@pytest.mark.parametrize("model,total,layers", [("mlp", MLP_PARAMS, ["dense0", "dense1", "out"]),
                                                ("cnn", CNN_PARAMS, ["conv0", "conv1", "dense0", "out"])])
def test_parameter_totals_match_between_frameworks(runs, model, total, layers):
    left = graphs.layer_summary(read_graphs(runs / model / "torch"))
    right = graphs.layer_summary(read_graphs(runs / model / "tensorflow"), known=list(left["layer"]))
    table = graphs.align_layers(left, right)
    print(table.to_string())
    assert [n for n in table["layer"] if n in layers] == layers
    assert table["layer"].iloc[0] == layers[0]
    if model == "cnn":  # Keras' Reshape and Flatten have no torch twin here: parameter-free, left out
        assert {"reshape", "flatten"} <= set(table.attrs["left_out"])
    tot = table.set_index("layer").loc["total"]
    assert tot["PyTorch params"] == tot["TensorFlow params"] == total
    assert table["match"].all()
    assert set(right["type"]) >= {"Dense"} and set(left["type"]) >= {"Linear"}
    out = table.set_index("layer").loc["out"]
    assert out["PyTorch output shape"] == out["TensorFlow output shape"] == "[32, 10]"


def test_tf_module_graph_gives_layers_too(runs):
    right = graphs.layer_summary(read_graphs(runs / "module/tensorflow"), known=["dense0", "dense1", "out"])
    assert list(right["layer"]) == ["dense0", "dense1", "out"]
    assert right["params"].sum() == MLP_PARAMS


def test_settings_fill_what_the_graph_cannot_say_and_mismatches_are_flagged(runs, tmp_path):
    plain = graphs.layer_summary(read_graphs(runs / "plain/torch"))
    assert plain["params"].isna().all()  # torch's own writer gives parameter reads no shapes
    settings = {"layers": [{"name": "dense0", "type": "Linear", "output_shape": [32, 64], "params": 4160},
                           {"name": "dense1", "type": "Linear", "output_shape": [32, 32], "params": 2080},
                           {"name": "out", "type": "Linear", "output_shape": [32, 10], "params": 330}]}
    (tmp_path / "settings.json").write_text(json.dumps(settings))
    filled = graphs.layer_summary(read_graphs(runs / "plain/torch"), graphs.read_settings(tmp_path))
    assert filled["params"].sum() == MLP_PARAMS
    assert graphs.read_settings(tmp_path / "nowhere") is None
    right = graphs.layer_summary(read_graphs(runs / "cnn/tensorflow"))
    table = graphs.align_layers(filled, right)
    flagged = set(table.loc[~table["match"], "layer"])
    assert {"dense0", "total", "conv0"} <= flagged and "out" not in flagged
    html = graphs.style_layers(table).to_html()
    assert "#ffcdd2" in html and "6,570" in html


def test_shapes_agree_rules():
    assert graphs.shapes_agree("[32, 8, 4, 4]", "[32, 4, 4, 8]")  # NCHW vs NHWC
    assert graphs.shapes_agree("[?, 10]", "[32, 10]") and graphs.shapes_agree("", "[1]")
    assert not graphs.shapes_agree("[32, 10]", "[32, 11]")


# --- the layout and the figure --------------------------------------------------------------------------
def _overlaps(layout: graphs.Layout) -> list[tuple[str, str]]:
    """Pairs of nodes in one layer less than a slot apart (a node is one slot wide)."""
    by_layer: dict[int, list[str]] = {}
    for n, k in layout.layer.items():
        by_layer.setdefault(k, []).append(n)
    out = []
    for names in by_layer.values():
        names.sort(key=layout.x.__getitem__)
        out += [(a, b) for a, b in zip(names, names[1:]) if layout.x[b] - layout.x[a] < 1 - 1e-9]
    return out


dags = st.integers(2, 30).flatmap(lambda n: st.tuples(
    st.just([f"n{i}" for i in range(n)]),
    st.lists(st.tuples(st.integers(0, n - 1), st.integers(0, n - 1)).filter(lambda e: e[0] < e[1])
             .map(lambda e: (f"n{e[0]}", f"n{e[1]}")), max_size=3 * n)))


@settings(max_examples=80, deadline=None)
@given(graph=dags)
def test_layout_of_a_dag_points_every_edge_down_and_never_overlaps(graph):
    nodes, edges = graph
    layout = graphs.layered_layout(nodes, edges)
    assert set(layout.x) == set(layout.layer) == set(nodes) and layout.reversed == 0
    assert not _overlaps(layout)
    assert min(layout.layer.values()) == 0 and min(layout.x.values()) >= 0
    for (src, dst), route in zip(edges, layout.routes):
        assert layout.layer[dst] > layout.layer[src]
        assert route[0] == (layout.x[src], layout.layer[src]) and route[-1] == (layout.x[dst], layout.layer[dst])
        assert all(b[1] == a[1] + 1 for a, b in zip(route, route[1:]))  # bends one layer at a time, downward


@settings(max_examples=60, deadline=None)
@given(n=st.integers(1, 20), data=st.data())
def test_layout_with_cycles_and_self_loops_places_every_node(n, data):
    nodes = [f"n{i}" for i in range(n)]
    edges = data.draw(st.lists(st.tuples(st.sampled_from(nodes), st.sampled_from(nodes)), max_size=4 * n))
    layout = graphs.layered_layout(nodes, edges)
    assert set(layout.x) == set(nodes) and not _overlaps(layout) and len(layout.routes) == len(edges)
    for (src, dst), route in zip(edges, layout.routes):
        assert route == [] if src == dst else (route[0][0] == layout.x[src] and route[-1][0] == layout.x[dst])
        if src != dst:  # down the layers, or up where an edge was turned round to break a cycle
            assert layout.layer[src] != layout.layer[dst]
    up = {(s, d) for s, d in edges if s != d and layout.layer[d] < layout.layer[s]}
    assert layout.reversed == len(up)


def test_layout_breaks_a_cycle_keeps_chains_straight_and_sources_by_their_consumer():
    nodes = ["input", "dense0", "MLP", "dense1", "out", "output", "label", "loss"]
    edges = [("input", "dense0"), ("dense0", "MLP"), ("MLP", "dense1"), ("dense1", "MLP"), ("MLP", "out"),
             ("out", "output"), ("out", "loss"), ("label", "loss")]
    layout = graphs.layered_layout(nodes, edges)
    assert layout.reversed == 1  # MLP <-> dense1: one of the two goes up
    assert [layout.layer[n] for n in ("input", "dense0", "MLP")] == [0, 1, 2]
    assert layout.layer["label"] == layout.layer["loss"] - 1  # beside `out`, not at the top
    assert layout.x["input"] == layout.x["dense0"]  # a chain is one straight line
    assert layout.depth == 5


def test_layout_routes_long_edges_around_the_nodes_between():
    # a -> b -> c -> d and a skip a -> d: the skip bends beside b and c instead of crossing them
    layout = graphs.layered_layout(["a", "b", "c", "d"], [("a", "b"), ("b", "c"), ("c", "d"), ("a", "d")])
    skip = layout.routes[3]
    assert len(skip) == 4
    for (x, k), node in zip(skip[1:-1], ("b", "c")):
        assert k == layout.layer[node] and abs(x - layout.x[node]) >= 0.5 + 0.15 - 1e-9


def test_layout_is_deterministic_across_processes(runs):
    g = graphs.collapse(graphs.forward_only(_by_tag(read_graphs(runs / "mlp/tensorflow"), "graph_def")), 0)
    args = (list(g.nodes["name"]), list(zip(g.edges["src"], g.edges["dst"])))
    code = ("import json, sys; from twinboard.graphs.layout import layered_layout; "
            "a = json.load(sys.stdin); l = layered_layout(a[0], [tuple(e) for e in a[1]]); "
            "print(json.dumps([l.x, l.layer, l.routes]))")
    outs = {subprocess.run([sys.executable, "-c", code], input=json.dumps(args), capture_output=True, text=True,
                           cwd=ROOT, env={"PYTHONHASHSEED": seed}, check=True).stdout for seed in ("1", "2")}
    here = graphs.layered_layout(*args)
    assert len(outs) == 1 and json.loads(outs.pop()) == json.loads(json.dumps([here.x, here.layer, here.routes]))
    assert not _overlaps(here) and len(g.nodes) > 20


def test_layout_names_bad_input():
    with pytest.raises(ValueError, match="'a' is listed twice"):
        graphs.layered_layout(["a", "a"], [])
    with pytest.raises(ValueError, match="names 'ghost'"):
        graphs.layered_layout(["a"], [("a", "ghost")])
    with pytest.raises(ValueError, match="2001 nodes"):
        graphs.layered_layout([str(i) for i in range(2001)], [])
    assert graphs.layered_layout([], []).depth == 0


def test_figure_draws_scopes_apart_from_ops_at_a_fixed_scale(runs):
    from twinboard.graphs import figure

    g = graphs.collapse(read_graphs(runs / "cnn/torch")[0], expand=["CNN"])  # the layers, and CNN's own ops
    fig = graphs.graph_figure(g, highlight=["CNN/Conv2d[conv1]"], focus=["CNN/Conv2d[conv1]"])
    traces = {t.name: t for t in fig.data}
    nodes = traces[graphs.NODES_TRACE]
    assert list(nodes.customdata) == list(g.nodes["name"]) and nodes.textfont.size >= 12
    scope, op = traces[figure.NAMES["group"]], traces[figure.NAMES["op"]]  # boxes vs ellipses, apart in colour
    assert scope.x.index(None) == 5 and op.x.index(None) == 25 and scope.fillcolor != op.fillcolor
    assert all(t.removeprefix("<b>").startswith("+ ") for t, grp in zip(nodes.text, g.nodes["group"]) if grp)
    match = traces["search match"]
    assert match.fillcolor == figure.MATCH_FILL and len([y for y in match.y if y is None]) == 1  # one box
    layout = graphs.layered_layout(list(g.nodes["name"]), zip(g.edges["src"], g.edges["dst"]))
    low, high = fig.layout.yaxis.range
    assert low <= -layout.layer["CNN/Conv2d[conv1]"] <= high  # the view opens on the match
    # px per layer is fixed: the range shows (height - margins) / LAYER_PX layers, never the whole graph squeezed
    assert high - low == pytest.approx((fig.layout.height - 44) / figure.LAYER_PX)
    assert fig.layout.yaxis.scaleanchor == "x" and fig.layout.yaxis.scaleratio == figure.LAYER_PX / figure.SLOT_PX
    assert len(traces["edges"].x) == len(g.edges)
    arrows = next(t for t in fig.data if t.marker and t.marker.symbol == "arrow")
    assert len(arrows.x) == len(g.edges)


def test_figure_shows_names_from_files_as_text_and_handles_loops():
    nodes = pd.DataFrame({"name": ["<i>x", "a/y", "z"], "op": ["X", "Y", "Z"], "scope": "", "device": "",
                          "shape": ["", "[1]", ""], "attrs": [{}, {}, {}]})
    edges = pd.DataFrame({"src": ["<i>x", "a/y", "z", "z"], "dst": ["a/y", "z", "z", "a/y"],
                          "control": [False, False, False, True]})
    fig = graphs.graph_figure(Graph(None, "op", "t", 0, nodes, edges))
    labels = next(t for t in fig.data if t.name == graphs.NODES_TRACE)
    assert labels.text[0].startswith("&lt;i&gt;x") and "&lt;i&gt;x" in labels.hovertext[0]
    assert "<i>" not in labels.text[0] + labels.hovertext[0]  # shown as the text it is, not italic
    assert len(next(t for t in fig.data if t.name == "edges").x) == 3  # the self loop is not drawn
    solid, dotted = ({x for x in t.x if x is not None} for dash in ("solid", "dot")
                     for t in fig.data if t.mode == "lines" and not t.fill and t.line.dash == dash)
    assert dotted and not solid & dotted  # a/y -> z and z -> a/y run side by side, not on one line


def test_clicked_scope_and_focus():
    points = [{"curve_number": 0, "point_index": 1, "customdata": "op/x"},
              {"curve_number": 3, "point_index": 0, "customdata": ["MLP/Linear[dense0]"]}]
    assert graphs.clicked_scope(points, ["MLP", "MLP/Linear[dense0]"]) == "MLP/Linear[dense0]"
    assert graphs.clicked_scope(points[:1], ["MLP"]) is None and graphs.clicked_scope([{}], ["MLP"]) is None
    names = ["a", "s/x", "s/y", "t"]
    assert graphs.focus_nodes(names, {"t"}, ["s"]) == ["t"]
    assert graphs.focus_nodes(names, set(), ["q", "s"]) == ["s/x", "s/y"]
    assert graphs.focus_nodes(names, set(), []) == []
