"""Making a graph of thousands of ops readable: collapse by name scope, hide training ops, search, DOT.

Collapsing maps every op to a *group*: a name-scope prefix (one node per scope) or the op itself.
`depth=None` groups per layer (the scope part that names a layer: torch's `Linear[dense0]`, TF's
`dense0` or `dense0_1`), `depth=k` at the k-th scope level, `depth=0` shows every op; scopes listed
in `expand` open one level further. An edge between two ops in different groups becomes one edge
between the groups; edges inside a group vanish; no other edge is made.

DOT is built here as text, for Graphviz users (the page offers it as a download; it draws with figure.py).
"""
from __future__ import annotations

import re
from collections import Counter
from typing import Collection, Iterable

import pandas as pd

from twinboard.graphs.model import MISSING, NODE_COLUMNS, Graph

# Layer-like scope parts, after TF's uniquifying suffix is removed (dense0_1 -> dense0).
LAYER_PART = re.compile(
    r"^(dense|conv|conv[123]d|out|output|fc|linear|layer|block|embedding|lstm|gru|rnn|batch_?norm\w*|"
    r"layer_?norm\w*|dropout|flatten|\w*pool\w*)_?\d*$", re.I)
BRACKET = re.compile(r"^([\w.]+)\[([^\]]*)\]$")  # torch module scope part: Type[name]
UNIQUE_SUFFIX = re.compile(r"_\d+$")
PARAM_OPS = ("prim::GetAttr", "prim::Module", "ReadVariableOp", "VarHandleOp", "VariableV2", "Const")
# Top-level scopes of the backward pass and the optimizer in TF graphs (tape, v1 gradients, Keras
# optimizers: sgd, sgd_1, adam, ...), and ops that write variables or compute gradients.
TRAINING_SCOPE = re.compile(r"^(gradient_tape|gradients|training|optimizer|sgd|adam\w*|rmsprop|adagrad|"
                            r"adadelta|nadam|ftrl|lion|update\w*|apply_grad\w*)(_\d+)?$", re.I)
TRAINING_OP = re.compile(r"^(Assign\w*|ResourceApply\w*|Apply\w*|ResourceScatter\w*|\w+Grad|"
                         r"\w+Backprop\w*|BroadcastGradientArgs)$")


def layer_key(part: str, known: Collection[str] = ()) -> tuple[str, str] | None:
    """(layer name, torch module type or "") when a scope part names a layer, else None."""
    m = BRACKET.match(part)
    if m:
        return m.group(2), m.group(1)
    base = UNIQUE_SUFFIX.sub("", part)
    if part in known or base in known:  # exact first: a layer may be called dense_1 by itself
        return (part if part in known else base), ""
    if LAYER_PART.match(base) and any(c.isdigit() for c in base):
        return base, ""  # dense0_1 -> dense0 (the suffix is TF's); dense_1 keeps its own number
    if LAYER_PART.match(part):
        return part, ""
    return None


def layer_index(scope_parts: list[str], known: Collection[str] = ()) -> int | None:
    """Index of the layer part in a scope: the innermost torch module, else the first TF layer part."""
    brackets = [i for i, p in enumerate(scope_parts) if BRACKET.match(p)]
    if brackets:
        return brackets[-1]
    return next((i for i, p in enumerate(scope_parts) if layer_key(p, known)), None)


def group_of(name: str, depth: int | None = None, expand: Collection[str] = (),
             known: Collection[str] = ()) -> str:
    """The collapsed node an op belongs to: a scope prefix, or the op's own name."""
    scope = name.split("/")[:-1]
    if not scope or depth == 0:
        return name
    if depth is None:
        i = layer_index(scope, known)
        k = 1 if i is None else i + 1
    else:
        k = depth
    while k <= len(scope) and "/".join(scope[:k]) in expand:
        k += 1
    return name if k > len(scope) else "/".join(scope[:k])


def scopes(graph: Graph) -> list[str]:
    """Every scope prefix in the graph (what can be expanded), sorted."""
    out: set[str] = set()
    for name in graph.nodes["name"]:
        parts = name.split("/")[:-1]
        out.update("/".join(parts[:k]) for k in range(1, len(parts) + 1))
    return sorted(out)


def _subgraph(graph: Graph, keep: pd.Series, note: str | None = None) -> Graph:
    nodes = graph.nodes[keep].reset_index(drop=True)
    names = set(nodes["name"])
    e = graph.edges
    edges = e[e["src"].isin(names) & e["dst"].isin(names)].reset_index(drop=True)
    return Graph(graph.framework, graph.kind, graph.tag, graph.step, nodes, edges,
                 graph.notes + ([note] if note else []))


def forward_only(graph: Graph) -> Graph:
    """Drop the backward pass and optimizer: training scopes and ops, then, repeatedly, ops whose
    every consumer was dropped (step counters, learning-rate reads). A forward graph is unchanged."""
    top = graph.nodes["name"].str.split("/").str[0]
    has_scope = graph.nodes["name"].str.contains("/", regex=False)
    drop = set(graph.nodes["name"][(has_scope & top.map(lambda t: bool(TRAINING_SCOPE.match(t))))
                                   | graph.nodes["op"].map(lambda o: bool(TRAINING_OP.match(o)))])
    if not drop:
        return graph
    consumers: dict[str, set[str]] = {}  # data edges only: a NoOp's control inputs keep nothing alive
    producers: dict[str, set[str]] = {}
    data = graph.edges[~graph.edges["control"]]
    for src, dst in zip(data["src"], data["dst"]):
        consumers.setdefault(src, set()).add(dst)
        producers.setdefault(dst, set()).add(src)
    queue = list(drop)
    while queue:  # walk back from dropped ops to producers that now feed nothing kept
        for src in producers.get(queue.pop(), ()):
            if src not in drop and consumers[src] <= drop:
                drop.add(src)
                queue.append(src)
    keep = ~graph.nodes["name"].isin(drop)
    return _subgraph(graph, keep, f"forward only: {len(drop)} training op(s) hidden")


def collapse(graph: Graph, depth: int | None = None, expand: Collection[str] = (),
             known: Collection[str] = ()) -> Graph:
    """One node per group (see group_of). Adds columns: nodes `count` (ops inside), `group` (bool);
    edges `count` (op edges merged) and `shape` (the tensor shape carried, when all agree)."""
    expand = set(expand)
    names, ops, devices, shapes, attrs = (list(graph.nodes[c]) for c in ("name", "op", "device", "shape", "attrs"))
    member_of = {n: group_of(n, depth, expand, known) for n in names}
    members: dict[str, list[int]] = {}
    for i, n in enumerate(names):
        members.setdefault(member_of[n], []).append(i)
    index = {n: i for i, n in enumerate(names)}
    out_shape: dict[str, tuple[int, str]] = {}  # a group's last op (no parameter read) read from outside
    merged: dict[tuple[str, str], list] = {}  # (group, group) -> [all control, count, shapes]
    for src, dst, control in zip(graph.edges["src"], graph.edges["dst"], graph.edges["control"]):
        gs, gd = member_of[src], member_of[dst]
        if gs == gd:
            continue
        i = index[src]
        if shapes[i] and ops[i] not in PARAM_OPS and i >= out_shape.get(gs, (-1, ""))[0]:
            out_shape[gs] = (i, shapes[i])
        m = merged.setdefault((gs, gd), [True, 0, set()])
        m[0] = m[0] and bool(control)
        m[1] += 1
        m[2].add(shapes[i])
    rows = []
    for g, idx in members.items():
        first = idx[0]
        single = len(idx) == 1 and names[first] == g
        counts = Counter(ops[i] for i in idx)
        rows.append({
            "name": g, "op": ops[first] if len(idx) == 1 else "scope",
            "scope": g.rsplit("/", 1)[0] if "/" in g else "", "device": devices[first],
            "shape": shapes[first] if single else out_shape.get(g, (0, ""))[1],
            "attrs": attrs[first] if single else
            {"ops": len(idx), "op types": ", ".join(f"{o} ×{c}" for o, c in counts.most_common(8))},
            "count": len(idx), "group": not single})
    cnodes = pd.DataFrame(rows, columns=[*NODE_COLUMNS, "count", "group"])
    cedges = pd.DataFrame([(s, d, c, n, next(iter(sh)) if len(sh) == 1 else "")
                           for (s, d), (c, n, sh) in merged.items()],
                          columns=["src", "dst", "control", "count", "shape"])
    cedges["control"] = cedges["control"].astype(bool)
    return Graph(graph.framework, graph.kind, graph.tag, graph.step, cnodes, cedges, graph.notes)


def find_nodes(graph: Graph, query: str, limit: int = 50) -> list[str]:
    """Names containing query (case-insensitive), exact match first."""
    q = query.strip().lower()
    if not q:
        return []
    names = [n for n in graph.nodes["name"] if q in n.lower()]
    names.sort(key=lambda n: (n.lower() != q, not n.lower().endswith(q), len(n)))
    return names[:limit]


def node_details(graph: Graph, name: str) -> pd.DataFrame:
    """One op as field/value rows: op, scope, shape, device, inputs, consumers, every attribute."""
    row = graph.nodes[graph.nodes["name"] == name]
    if row.empty:
        return pd.DataFrame(columns=["field", "value"])
    r = row.iloc[0]
    e = graph.edges
    ins = [("^" if c else "") + s for s, c in zip(e["src"][e["dst"] == name], e["control"][e["dst"] == name])]
    outs = list(e["dst"][e["src"] == name])
    items = [("name", name), ("op", r["op"]), ("scope", r["scope"]), ("shape", r["shape"]),
             ("device", r["device"]), ("inputs", ", ".join(ins)), ("consumers", ", ".join(outs))]
    items += [(f"attr {k}", v) for k, v in (r["attrs"] or {}).items()]
    return pd.DataFrame([(k, str(v)) for k, v in items], columns=["field", "value"])


# --- DOT -------------------------------------------------------------------------------------------
def quote(text: str) -> str:
    """A DOT double-quoted string (backslashes and quotes escaped, newlines as \\n)."""
    return '"' + str(text).replace("\\", "\\\\").replace('"', '\\"').replace("\n", "\\n") + '"'


def short_name(name: str, width: int) -> str:
    """The last part of a scoped name, cut to `width` characters with an ellipsis."""
    last = name.rsplit("/", 1)[-1]
    return last if len(last) <= width else last[: width - 1] + "…"


FILL = {"group": "#dbe9f6", "param": "#e8f5e9", "io": "#fff3e0", "missing": "#ffebee", "op": "#fafafa"}
IO_OPS = ("IO Node", "Placeholder", "InputLayer")


def node_kind(op: str, is_group: bool) -> str:
    """What a drawn node is, for its style (a FILL key): a scope group, or a missing input, a parameter
    read, a graph input/output, or any other op."""
    if is_group:
        return "group"
    return "missing" if op == MISSING else "param" if op in PARAM_OPS else "io" if op in IO_OPS else "op"


def to_dot(graph: Graph, highlight: Iterable[str] = (), rankdir: str = "TB", width: int = 28,
           edge_labels: bool = True) -> str:
    """The graph as DOT text: groups as boxes with their op counts, ops with type and shape."""
    marked = set(highlight)
    lines = [f"digraph {quote(graph.tag)} {{",
             f'  graph [rankdir={rankdir}, fontname="Helvetica", fontsize=10, nodesep=0.25, ranksep=0.35];',
             '  node [shape=box, style="rounded,filled", fontname="Helvetica", fontsize=10, '
             'fillcolor="#fafafa", color="#90a4ae"];',
             '  edge [color="#78909c", arrowsize=0.6, fontname="Helvetica", fontsize=8, fontcolor="#546e7a"];']
    has_group = "group" in graph.nodes.columns
    for r in graph.nodes.itertuples(index=False):
        is_group = bool(getattr(r, "group", False)) if has_group else False
        shape = f"\n{r.shape}" if r.shape else ""
        kind = node_kind(r.op, is_group)
        if is_group:
            what = r.op if r.count == 1 else f"{r.count} ops"
            label = f"{short_name(r.name, width)}\n{what}{shape}"
        else:
            short = short_name(r.name, width)
            label = f"{short}\n{r.op}{shape}" if short != r.op else f"{short}{shape}"
        style = ', style="rounded,filled,dashed"' if kind == "missing" else ""
        style += ', shape=box3d' if kind == "group" else ""
        mark = ', fillcolor="#ffd54f", penwidth=2.5, color="#e65100"' if r.name in marked else \
            f', fillcolor="{FILL[kind]}"'
        lines.append(f"  {quote(r.name)} [label={quote(label)}, tooltip={quote(r.name)}{style}{mark}];")
    shapes = "shape" in graph.edges.columns
    for r in graph.edges.itertuples(index=False):
        attrs = ["style=dashed", 'color="#b0bec5"'] if r.control else []
        if edge_labels and shapes and not r.control and r.shape:
            attrs.append(f"label={quote(r.shape)}")
        lines.append(f"  {quote(r.src)} -> {quote(r.dst)}" + (f" [{', '.join(attrs)}]" if attrs else "") + ";")
    lines.append("}")
    return "\n".join(lines)
