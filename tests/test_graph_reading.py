"""Reading model graphs: what every real writer wrote (export_graph, tensorboardX, torch.utils.tensorboard,
tf.summary) parses into nodes and edges; dangling inputs, torn tails and damaged records; the
incremental scanner; Keras' model JSON. The files come from conftest's `runs` (tests/graph_writers.py)."""
from __future__ import annotations

import pytest

from tests.graph_writers import by_tag as _by_tag
from twinboard.contract import CorruptRecordError, frame
from twinboard.graphs.model import MISSING, graph_from_keras_json
from twinboard.graphs.reader import GraphScanner, _may_hold_graph, read_graphs


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
