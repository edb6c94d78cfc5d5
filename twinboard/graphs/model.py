"""What a model graph is here: a Graph of node and edge tables, and how a GraphDef or a Keras model's
JSON becomes one. Inputs may carry `^` (control) and `:N` (output index) marks, name nodes that are
missing (each gets a stub node, op `(missing)`), or repeat; every repair is listed in `Graph.notes`.
Finding graphs in event files is `twinboard.graphs.reader`."""
from __future__ import annotations

import json
from dataclasses import dataclass, field
from typing import Any, Iterable

import pandas as pd

RUN_METADATA_PLUGINS = ("graph_run_metadata", "graph_run_metadata_graph")
KERAS_PLUGIN = "graph_keras_model"
MISSING = "(missing)"  # op of a stub node made for an input that names no node
NODE_COLUMNS = ["name", "op", "scope", "device", "shape", "attrs"]
EDGE_COLUMNS = ["src", "dst", "control"]
# The models Twinboard trains give graphs of ~10-500 KB and a few thousand ops; TF graphs of big
# models reach a few MB. Larger blobs are listed as problems, not drawn (see the module docstring).
MAX_GRAPH_BYTES = 4 << 20
MAX_NODES = 50_000


class GraphTooBig(ValueError):
    """A graph over MAX_GRAPH_BYTES or MAX_NODES; the message says which and by how much."""


@dataclass
class Graph:
    framework: str | None  # "torch" or "tensorflow", guessed from the ops; None when it cannot tell
    kind: str  # "op": a GraphDef of ops; "keras": Keras' conceptual graph of layers
    tag: str  # where it came from: "graph_def", "meta_graph_def", or the summary / run-metadata tag
    step: int  # the event's step (0 for Event.graph_def, which has none)
    nodes: pd.DataFrame  # NODE_COLUMNS: shape is a string like "[32, 64]" ("?" unknown), attrs a dict
    edges: pd.DataFrame  # EDGE_COLUMNS: src -> dst by node name; control marks `^name` inputs
    notes: list[str] = field(default_factory=list)  # repairs made while reading, for the page to show

    @property
    def label(self) -> str:
        what = "layers" if self.kind == "keras" else "ops"
        return f"{self.tag} ({len(self.nodes)} {what})"


# --- attribute values ------------------------------------------------------------------------------
def _dtype(code: int) -> str:
    from tensorboard.compat.proto import types_pb2

    try:
        return types_pb2.DataType.Name(code).removeprefix("DT_").lower()
    except ValueError:
        return str(code)


def shape_str(shape: Any) -> str:
    """A TensorShapeProto as "[32, 64]"; unknown sizes as "?", unknown rank as "?"."""
    if shape.unknown_rank:
        return "?"
    return "[" + ", ".join("?" if d.size < 0 else str(d.size) for d in shape.dim) + "]"


def _tensor_str(t: Any) -> str:
    text = f"{_dtype(t.dtype)} {shape_str(t.tensor_shape)}"
    for name in ("float_val", "double_val", "int_val", "int64_val", "bool_val"):
        vals = list(getattr(t, name))
        if vals:
            return f"{text} = {vals[0] if len(vals) == 1 else vals[:8]}"
    return text


def attr_value(v: Any) -> Any:
    """An AttrValue as a plain Python value (str, int, float, bool, list) a table can show."""
    which = v.WhichOneof("value")
    if which == "s":
        return v.s.decode("utf-8", "replace")
    if which in ("i", "f", "b"):
        return getattr(v, which)
    if which == "type":
        return _dtype(v.type)
    if which == "shape":
        return shape_str(v.shape)
    if which == "tensor":
        return _tensor_str(v.tensor)
    if which == "func":
        return v.func.name
    if which == "placeholder":
        return "$" + v.placeholder
    if which == "list":
        lst = v.list
        return ([s.decode("utf-8", "replace") for s in lst.s] + list(lst.i) + list(lst.f) + list(lst.b)
                + [_dtype(t) for t in lst.type] + [shape_str(s) for s in lst.shape]
                + [f.name for f in lst.func])
    return None


# --- GraphDef -> tables ----------------------------------------------------------------------------
def _tables(rows: list[dict], edges: list[tuple[str, str, bool]]) -> tuple[pd.DataFrame, pd.DataFrame]:
    nodes = pd.DataFrame(rows, columns=NODE_COLUMNS)
    e = pd.DataFrame(edges, columns=EDGE_COLUMNS).drop_duplicates(ignore_index=True)
    e["control"] = e["control"].astype(bool)
    return nodes, e


def _scope(name: str) -> str:
    return name.rsplit("/", 1)[0] if "/" in name else ""


def _guess_framework(ops: Iterable[str]) -> str:
    return "torch" if any("::" in op or op == "IO Node" for op in ops) else "tensorflow"


def graph_from_graphdef(gd: Any, tag: str = "graph_def", step: int = 0) -> Graph:
    """A GraphDef (tensorboard.compat.proto) as node and edge tables, repairing what it must.
    Raises GraphTooBig past MAX_NODES nodes, before any is tabled."""
    if len(gd.node) > MAX_NODES:
        raise GraphTooBig(f"graph {tag!r} has {len(gd.node)} nodes, more than the {MAX_NODES} shown")
    rows: list[dict] = []
    seen: set[str] = set()
    dupes = unnamed = 0
    for n in gd.node:
        if not n.name:
            unnamed += 1
            continue
        if n.name in seen:
            dupes += 1
            continue
        seen.add(n.name)
        shapes = [shape_str(s) for s in n.attr["_output_shapes"].list.shape] if "_output_shapes" in n.attr else []
        attrs = {k: attr_value(v) for k, v in sorted(n.attr.items()) if k != "_output_shapes"}
        if not shapes and "shape" in attrs and n.op in ("Placeholder", "VarHandleOp", "VariableV2"):
            shapes = [attrs["shape"]]
        rows.append({"name": n.name, "op": n.op, "scope": _scope(n.name), "device": n.device,
                     "shape": ", ".join(shapes), "attrs": attrs, "inputs": list(n.input)})
    edges: list[tuple[str, str, bool]] = []
    missing: dict[str, None] = {}
    for row in rows:
        for ref in row.pop("inputs"):
            control = ref.startswith("^")
            src = ref.lstrip("^")
            if src not in seen:  # "name:1" (output 1), or "fn_node:output:0" inside a function body
                src = src.split(":", 1)[0]
            if not src:
                continue
            if src not in seen:
                missing.setdefault(src)
            edges.append((src, row["name"], control))
    for name in missing:
        rows.append({"name": name, "op": MISSING, "scope": _scope(name), "device": "", "shape": "",
                     "attrs": {}})
    nodes, e = _tables(rows, edges)
    notes = []
    if missing:
        notes.append(f"{len(missing)} input(s) named nodes missing from the graph; drawn as stubs "
                     f"(op {MISSING}): {', '.join(list(missing)[:3])}{'…' if len(missing) > 3 else ''}")
    if dupes:
        notes.append(f"{dupes} node(s) repeated a name already used; the first of each was kept")
    if unnamed:
        notes.append(f"{unnamed} node(s) without a name were skipped")
    fw = _guess_framework(nodes["op"]) if len(nodes) else None
    return Graph(fw, "op", tag, step, nodes, e, notes)


# --- Keras JSON -> tables --------------------------------------------------------------------------
def _keras_sources(inbound: Any) -> list[str]:
    """Layer names an `inbound_nodes` entry reads from (Keras 3 `keras_history`, Keras 2 lists)."""
    found: list[str] = []
    if isinstance(inbound, dict):
        hist = inbound.get("config", {}).get("keras_history") if isinstance(inbound.get("config"), dict) else None
        if isinstance(hist, list) and hist and isinstance(hist[0], str):
            return [hist[0]]
        for v in inbound.values():
            found += _keras_sources(v)
    elif isinstance(inbound, list):
        if len(inbound) >= 3 and isinstance(inbound[0], str) and isinstance(inbound[1], int):
            return [inbound[0]]
        for v in inbound:
            found += _keras_sources(v)
    return found


def graph_from_keras_json(text: str, tag: str = "keras", step: int = 0) -> Graph:
    """Keras' model JSON (`model.to_json()`) as one node per layer, edges along the data flow.
    Raises ValueError for JSON that is not a Keras model, GraphTooBig past MAX_NODES layers."""
    check_size(len(text), tag)
    cfg = json.loads(text)
    conf = cfg.get("config") if isinstance(cfg, dict) else None
    layers = conf.get("layers", []) if isinstance(conf, dict) else None
    if not isinstance(layers, list) or not all(isinstance(x, dict) for x in layers):
        raise ValueError(f"graph {tag!r}: not a Keras model's JSON (no config.layers list)")
    if len(layers) > MAX_NODES:
        raise GraphTooBig(f"graph {tag!r} has {len(layers)} layers, more than the {MAX_NODES} shown")
    rows, edges = [], []
    sequential = cfg.get("class_name") == "Sequential"
    prev = None
    for layer in layers:
        conf = layer.get("config") if isinstance(layer.get("config"), dict) else {}
        name = conf.get("name") or layer.get("name") or f"layer{len(rows)}"
        shape = conf.get("batch_shape") or conf.get("batch_input_shape")
        attrs = {k: v for k, v in conf.items()
                 if k != "name" and isinstance(v, (str, int, float, bool, list)) and v is not None}
        rows.append({"name": name, "op": layer.get("class_name", ""), "scope": "", "device": "",
                     "shape": "[" + ", ".join("?" if d is None else str(d) for d in shape) + "]" if shape else "",
                     "attrs": attrs})
        sources = _keras_sources(layer.get("inbound_nodes", []))
        if sequential and not sources and prev is not None:
            sources = [prev]
        edges += [(s, name, False) for s in dict.fromkeys(sources)]
        prev = name
    names = {r["name"] for r in rows}
    edges = [e for e in edges if e[0] in names]
    nodes, e = _tables(rows, edges)
    return Graph("tensorflow", "keras", tag, step, nodes, e)


def check_size(size: int, tag: str) -> None:
    if size > MAX_GRAPH_BYTES:
        raise GraphTooBig(f"graph {tag!r} takes {size} bytes, more than the {MAX_GRAPH_BYTES} read")
