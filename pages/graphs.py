"""Graphs: both models' graphs side by side, one node per layer until expanded, and a layers table."""
from __future__ import annotations

import threading
from functools import partial
from pathlib import Path

import streamlit as st

from pages.common import side_label
from pages.pair_picker import pick_pair
from twinboard import graphs
from twinboard.graphs import Graph, GraphScanner, default_graph
from twinboard.text import code, md, md_list

MAX_NODES = 400  # beyond this a graph is a wall of boxes to pan across; ask to collapse more
CHART_CONFIG = {"displaylogo": False, "scrollZoom": False,  # the wheel scrolls the page, as elsewhere
                "modeBarButtonsToRemove": ["select2d", "lasso2d", "toImage"]}
HOW = ("Drag to pan · zoom with + / − (top right of the chart), ⤢ fits the whole graph, double-click "
       "returns · click a **+** box to open that scope · hover for shapes and op types.")
COLLAPSE = {"per layer": None, "scope depth 1": 1, "scope depth 2": 2, "scope depth 3": 3, "every op": 0}


@st.cache_resource(max_entries=64)
def _scanner(path: str) -> tuple[GraphScanner, threading.Lock]:
    # One incremental reader per run folder, shared by sessions: a rerun parses only appended records.
    return GraphScanner(path), threading.Lock()


def _load(folder: Path) -> tuple[list[Graph], str | None]:
    scanner, lock = _scanner(str(folder))
    try:
        with lock:
            found = scanner.read()
            return found, "; ".join(str(p) for p in scanner.problems()) or None
    except OSError as e:  # the folder went away between listing and reading
        return [], str(e)


def _open_clicked(chart_key: str, expand_key: str, options: list[str]) -> None:
    """A click on a scope's box adds it to that side's expanded scopes (before the rerun draws)."""
    points = (st.session_state.get(chart_key) or {}).get("selection", {}).get("points", [])
    scope = graphs.clicked_scope(points, options)
    opened = list(st.session_state.get(expand_key) or [])
    if scope is not None and scope not in opened:
        st.session_state[expand_key] = [*opened, scope]


def _side(i: int, run, versions: list[Graph], error: str | None, depth: int | None, forward: bool,
          query: str, known: list[str]) -> None:
    st.subheader(md(side_label(run), 100))  # run names and what is read from their files: text
    st.caption(code(run.name))
    if error:
        st.error(f"Could not read all of this run's event files: {md(error, 1000)}")
    if not versions:
        st.info("No graph in this run's event files (the trainer writes one after its first step).")
        return
    labels = [f"{g.label} · step {g.step}" for g in versions]
    pick = st.selectbox("Graph", range(len(versions)), index=versions.index(default_graph(versions)),
                        format_func=labels.__getitem__, key=f"graphs_graph_{i}")
    graph = versions[pick]
    shown = graphs.forward_only(graph) if forward and graph.kind == "op" else graph
    options, expand_key = graphs.scopes(shown), f"graphs_expand_{i}_{pick}"
    expand = st.multiselect("Expand scopes", options, key=expand_key,
                            placeholder="Scopes to open one level (or click a + box)")
    collapsed = graphs.collapse(shown, depth, expand, known)
    matches = graphs.find_nodes(shown, query)
    found = None
    if query.strip():
        if matches:
            found = st.selectbox(f"Matches ({len(matches)})", matches, key=f"graphs_match_{i}")
        else:
            st.caption(f"No node name contains “{md(query)}”.")
    highlight = [graphs.group_of(found, depth, expand, known)] if found else []
    st.caption(f"{len(shown.nodes)} ops → {len(collapsed.nodes)} nodes, {len(collapsed.edges)} edges")
    if len(collapsed.nodes) > MAX_NODES:
        st.warning(f"{len(collapsed.nodes)} nodes are too many to draw here; collapse more (fewer "
                   "expanded scopes, a smaller depth, or forward only).")
    else:
        chart_key = f"graphs_chart_{i}_{pick}"
        focus = graphs.focus_nodes(collapsed.nodes["name"], highlight, expand)
        st.plotly_chart(graphs.graph_figure(collapsed, highlight, focus), key=chart_key, width="stretch",
                        on_select=partial(_open_clicked, chart_key, expand_key, options),
                        selection_mode="points", config=CHART_CONFIG)
        st.download_button("Download DOT", graphs.to_dot(collapsed, highlight), f"{run.name}-{graph.tag}.dot",
                           "text/vnd.graphviz", key=f"graphs_dot_{i}", help="This view for Graphviz")
    for note in shown.notes:
        st.caption(f"ⓘ {md(note, 1000)}")
    if found:
        st.text(found)  # a name from an event file: shown as text, never as markdown
        st.dataframe(graphs.node_details(shown, found), hide_index=True, width="stretch")


def main() -> None:
    st.title("Graphs")
    pair = pick_pair("graphs")
    if pair is None:
        return
    loaded = [_load(run.path) for run in pair.runs]
    c1, c2, c3 = st.columns([1, 1, 2])
    depth = COLLAPSE[c1.selectbox("Collapse", list(COLLAPSE), key="graphs_collapse",
                                  help="One node per layer, per name scope at a depth, or every op.")]
    forward = c2.toggle("Forward only", value=True, key="graphs_forward",
                        help="Hide the gradient and optimizer ops of a traced train step.")
    query = c3.text_input("Find a node by name", key="graphs_search", placeholder="e.g. dense0, MatMul",
                          max_chars=200)
    settings = [graphs.read_settings(run.path) for run in pair.runs]
    left = graphs.layer_summary(loaded[0][0], settings[0])
    right = graphs.layer_summary(loaded[1][0], settings[1], known=list(left["layer"]))
    known = list(dict.fromkeys([*left["layer"], *right["layer"]]))
    st.caption(HOW)
    for i, (col, run, (found, error)) in enumerate(zip(st.columns(2), pair.runs, loaded)):
        with col:
            _side(i, run, found, error, depth, forward, query, known)

    st.subheader("Layers")
    labels = (side_label(pair.left), side_label(pair.right))
    if left.empty and right.empty:
        st.info("No layers found: neither run has a graph or a settings.json listing its layers.")
        return
    table = graphs.align_layers(left, right, labels)
    st.dataframe(graphs.style_layers(table), hide_index=True, width="stretch")
    if table.attrs.get("left_out"):
        st.caption(f"Parameter-free layers found on one side only, not listed: {md_list(table.attrs['left_out'])}.")
    bad = table.loc[~table["match"], "layer"].tolist()
    if bad:
        st.warning(f"Mismatch in {md_list(bad)}: parameter counts or output shapes differ.")
    else:
        st.caption("Parameter counts and output shapes agree (a torch NCHW shape counts as its NHWC twin).")


main()
