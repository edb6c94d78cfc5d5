"""The graph's layout and figure: layered layout properties (hypothesis), cycles, long edges, the same
layout in every process, bad input named; the plotly figure, text from files shown as text, and the
click and focus helpers. Real graphs come from conftest's `runs` (tests/graph_writers.py)."""
from __future__ import annotations

import json
import subprocess
import sys

import pandas as pd
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from tests.graph_writers import ROOT
from tests.graph_writers import by_tag as _by_tag
from twinboard import graphs
from twinboard.graphs.model import Graph
from twinboard.graphs.reader import read_graphs


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
