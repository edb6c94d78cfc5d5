"""What the Graphs view shows of a graph: collapsing ops into layer groups (and expanding one), the
forward pass without gradient and optimizer ops, search and node details, and the DOT text. Real
graphs come from conftest's `runs` (tests/graph_writers.py)."""
from __future__ import annotations

import pandas as pd
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from tests.graph_writers import by_tag as _by_tag
from twinboard import graphs
from twinboard.graphs.model import Graph
from twinboard.graphs.reader import read_graphs


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
