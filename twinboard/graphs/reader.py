"""Model graphs in event files, as node and edge tables: `read_graphs(path) -> list[Graph]`.

Where graphs live in an event file (TensorBoard's graph plugin reads the same places):
- `Event.graph_def`: a serialized GraphDef (tensorboardX / torch `add_graph`, `tf.summary.graph`);
- `Event.meta_graph_def`: a MetaGraphDef holding a GraphDef (TF1 savers);
- `Event.tagged_run_metadata` and summaries with plugin `graph_run_metadata` or
  `graph_run_metadata_graph` (`tf.summary.trace_export`): a RunMetadata whose function graphs are GraphDefs;
- summaries with plugin `graph_keras_model`: a Keras model's JSON (the "conceptual" graph of layers).

Reading is tolerant where TensorBoard is not (pytorch#24157: data written, empty Graphs tab): inputs
may carry `^` (control) and `:N` (output index) marks, name nodes that are missing (each gets a stub
node, op `(missing)`), or repeat; every repair is listed in `Graph.notes`. Collapsing, search and DOT
live in `twinboard.graphs.view`, the layers table in `twinboard.graphs.layers`.

What a file cannot make us hold: a graph blob (GraphDef, MetaGraphDef, RunMetadata, Keras JSON) over
MAX_GRAPH_BYTES is not parsed, and one with more than MAX_NODES nodes is not tabled, both before the
cost is paid: parsing crafted protobuf takes up to ~56x its size in memory (measured: 3.8 MiB of empty
NodeDefs -> 215 MB), and each tabled node a few KB. Records over the cap are passed over unread. A
record that is not what it says (garbage that passed its CRC, bad JSON) is skipped. Each becomes a
Problem (path, byte offset, message) in `GraphScanner.problems()`; the page shows them, never a traceback.
"""
from __future__ import annotations

import json
import os
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Iterable

import pandas as pd

from twinboard.contract.files import event_files
from twinboard.events import Problem, Record, RecordReader

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
    _check_size(len(text), tag)
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


# --- event files -----------------------------------------------------------------------------------
def _varint(buf: bytes, pos: int) -> tuple[int, int]:
    value = shift = 0
    while True:
        b = buf[pos]
        pos += 1
        value |= (b & 0x7F) << shift
        if b < 0x80:
            return value, pos
        shift += 7


def _may_hold_graph(rec: bytes) -> bool:
    """Cheap pre-check on a raw Event so scalar records are not parsed: graph_def (field 4),
    tagged_run_metadata (8), meta_graph_def (9), or a summary (5) naming a graph plugin."""
    # Fast path: writers put wall_time (field 1, fixed64) and step (2, varint) first, then the event.
    pos = 9 if rec[:1] == b"\x09" else 0
    if rec[pos:pos + 1] == b"\x10":
        pos += 1
        while pos < len(rec) and rec[pos] & 0x80:
            pos += 1
        pos += 1
    key = rec[pos] if pos < len(rec) else -1
    if key == 0x2A:
        return b"graph_" in rec
    if key in (0x22, 0x42, 0x4A):
        return True
    if key in (0x1A, 0x32, 0x3A):  # file_version, log_message, session_log
        return False
    return _scan_fields(rec)


def _scan_fields(rec: bytes) -> bool:
    """The same test, walking every top-level field (fields in an unusual order)."""
    pos = 0
    try:
        while pos < len(rec):
            key, pos = _varint(rec, pos)
            num, wire = key >> 3, key & 7
            if num in (4, 8, 9):
                return True
            if num == 5:
                return b"graph_" in rec
            if wire == 0:
                _, pos = _varint(rec, pos)
            elif wire == 1:
                pos += 8
            elif wire == 5:
                pos += 4
            elif wire == 2:
                size, pos = _varint(rec, pos)
                pos += size
            else:
                return True  # odd wire type: let the real parser decide
    except IndexError:
        return True
    return False


def _check_size(size: int, tag: str) -> None:
    if size > MAX_GRAPH_BYTES:
        raise GraphTooBig(f"graph {tag!r} takes {size} bytes, more than the {MAX_GRAPH_BYTES} read")


def _graphs_in_run_metadata(data: bytes, tag: str, step: int) -> list[Graph]:
    from tensorboard.compat.proto import config_pb2

    _check_size(len(data), tag)
    meta = config_pb2.RunMetadata()
    meta.ParseFromString(data)
    defs = [f.pre_optimization_graph if f.pre_optimization_graph.node else f.post_optimization_graph
            for f in meta.function_graphs] + list(meta.partition_graphs)
    defs = [d for d in defs if d.node]
    return [graph_from_graphdef(d, tag if len(defs) == 1 else f"{tag}/{i}", step) for i, d in enumerate(defs)]


def _graphs_in_event(ev: Any, plugins: dict[str, str]) -> list[Graph]:
    from tensorboard.compat.proto import graph_pb2, meta_graph_pb2

    what = ev.WhichOneof("what")
    if what == "graph_def":
        _check_size(len(ev.graph_def), "graph_def")
        gd = graph_pb2.GraphDef()
        gd.ParseFromString(ev.graph_def)
        return [graph_from_graphdef(gd, "graph_def", ev.step)]
    if what == "meta_graph_def":
        _check_size(len(ev.meta_graph_def), "meta_graph_def")
        mg = meta_graph_pb2.MetaGraphDef()
        mg.ParseFromString(ev.meta_graph_def)
        return [graph_from_graphdef(mg.graph_def, "meta_graph_def", ev.step)]
    if what == "tagged_run_metadata":
        trm = ev.tagged_run_metadata
        return _graphs_in_run_metadata(trm.run_metadata, trm.tag, ev.step)
    out: list[Graph] = []
    if what == "summary":
        for v in ev.summary.value:
            if v.metadata.plugin_data.plugin_name:  # tf.summary sends the metadata with a tag's first value
                plugins[v.tag] = v.metadata.plugin_data.plugin_name
            plugin = plugins.get(v.tag)
            if plugin not in (*RUN_METADATA_PLUGINS, KERAS_PLUGIN) or not v.tensor.string_val:
                continue
            blob = v.tensor.string_val[0]
            if plugin == KERAS_PLUGIN:
                out.append(graph_from_keras_json(blob.decode("utf-8", "replace"), v.tag, ev.step))
            else:
                out += _graphs_in_run_metadata(blob, v.tag, ev.step)
    return out


class GraphScanner:
    """The graphs of an event file or run folder, kept up to date cheaply: each `read()` parses only
    records appended since the last one (graphs are written once, early; scalars keep coming)."""

    def __init__(self, path: str | os.PathLike):
        self.path = Path(path)
        self._readers: dict[Path, RecordReader] = {}
        self._plugins: dict[Path, dict[str, str]] = {}  # per file: summary tag -> plugin name
        self._found: list[Graph] = []
        self._damaged: list[Problem] = []  # damaged records met by the last read, one per file
        self._skipped: list[Problem] = []  # graph records passed over (too big, unreadable), kept

    def read(self) -> list[Graph]:
        """Every graph so far, in file order, an identical graph once. A damaged record ends its
        file's reading (the records before it still count) and is listed by `problems()`, as is a
        graph record too big or unreadable (skipped); a half-written tail waits for the writer."""
        files = [self.path] if self.path.is_file() else event_files(self.path)
        if any(f.stat().st_size < r.offset for f, r in self._readers.items() if f in files):
            self.__init__(self.path)  # a file shrank (replaced): start over
        self._damaged = []
        for f in files:
            reader = self._readers.setdefault(f, RecordReader(f, max_record=MAX_GRAPH_BYTES + _EVENT_SLACK))
            while True:  # batch by batch: a big file never sits in memory whole
                try:
                    records, err = reader.frames()
                except OSError as e:  # vanished or unreadable right now: say so, try again next read
                    self._damaged.append(Problem(str(f), None, f"cannot be read: {e.strerror}"))
                    break
                self._parse(f, records)
                if err is not None:
                    self._damaged.append(Problem.corrupt(err))
                if err is not None or not records:
                    break
        self._found = _dedupe(self._found)
        return list(self._found)

    @property
    def graphs(self) -> list[Graph]:
        """What the reads so far found."""
        return list(self._found)

    def problems(self) -> list[Problem]:
        """The damaged records the last `read()` met, one per file, and every graph record skipped
        so far (path, byte offset, message)."""
        return self._damaged + self._skipped

    def _parse(self, f: Path, records: list[Record]) -> None:
        from google.protobuf.message import DecodeError
        from tensorboard.compat.proto import event_pb2

        plugins = self._plugins.setdefault(f, {})
        for at, length, rec in records:
            if rec is None:
                if _big_record_may_hold_graph(f, at, length):
                    self._skipped.append(Problem.too_big(f, at, length, MAX_GRAPH_BYTES, "graph"))
                continue
            if not _may_hold_graph(rec):
                continue
            ev = event_pb2.Event()
            try:
                ev.ParseFromString(rec)
                self._found += _graphs_in_event(ev, plugins)
            except GraphTooBig as e:
                self._skipped.append(Problem(str(f), at, f"{e}; not shown"))
            except (DecodeError, ValueError, TypeError, AttributeError, KeyError, RecursionError) as e:
                # garbage that passed its CRC, or JSON that is no Keras model: skip this record only
                why = f"{type(e).__name__}: {e}"[:300]
                self._skipped.append(Problem(str(f), at, f"record at byte {at} holds a graph that "
                                                          f"cannot be read ({why}); not shown"))


_EVENT_SLACK = 64 << 10  # bytes an Event may add around its graph blob (tags, metadata, step)


def _big_record_may_hold_graph(path: Path, offset: int, length: int) -> bool:
    """Whether a record passed over unread looks like a graph, from its first and last bytes (a
    summary names its plugin in the metadata, written after the value): worth a problem, where an
    image or a hostile file's junk is not."""
    from twinboard.contract import HEADER

    try:
        with open(path, "rb") as fh:
            head = os.pread(fh.fileno(), 32, offset + HEADER)
            tail = os.pread(fh.fileno(), 256, offset + HEADER + length - 256)
    except OSError:
        return False
    return b"graph_" in tail or _may_hold_graph(head)


def read_graphs(path: str | os.PathLike) -> list[Graph]:
    """Every graph in an event file or a run folder, in file order, an identical graph once.
    Raises CorruptRecordError (file and byte) for the first problem GraphScanner would list: a
    damaged record, or a graph record too big or unreadable; a half-written tail is left unread."""
    scanner = GraphScanner(path)
    graphs = scanner.read()
    problems = scanner.problems()
    if problems:
        raise problems[0].error()
    return graphs


def _dedupe(graphs: list[Graph]) -> list[Graph]:
    out: list[Graph] = []
    keys: set[tuple] = set()
    for g in graphs:
        key = (g.kind, g.tag, tuple(g.nodes["name"]), tuple(g.nodes["op"]), len(g.edges))
        if key not in keys:
            keys.add(key)
            out.append(g)
    return out


def default_graph(graphs: list[Graph]) -> Graph | None:
    """The graph to show first: the forward op graph when there is one, else the first op graph."""
    ops = [g for g in graphs if g.kind == "op"]
    return next((g for g in ops if g.tag == "forward"), ops[0] if ops else (graphs[0] if graphs else None))

