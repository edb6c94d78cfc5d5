"""Model graphs in event files, as node and edge tables (twinboard.graphs.model): `read_graphs(path)
-> list[Graph]`.

Where graphs live in an event file (TensorBoard's graph plugin reads the same places):
- `Event.graph_def`: a serialized GraphDef (tensorboardX / torch `add_graph`, `tf.summary.graph`);
- `Event.meta_graph_def`: a MetaGraphDef holding a GraphDef (TF1 savers);
- `Event.tagged_run_metadata` and summaries with plugin `graph_run_metadata` or
  `graph_run_metadata_graph` (`tf.summary.trace_export`): a RunMetadata whose function graphs are GraphDefs;
- summaries with plugin `graph_keras_model`: a Keras model's JSON (the "conceptual" graph of layers).

Reading is tolerant where TensorBoard is not (pytorch#24157: data written, empty Graphs tab): the
repairs are twinboard.graphs.model's, listed in `Graph.notes`. Collapsing, search and DOT
live in `twinboard.graphs.view`, the layers table in `twinboard.graphs.layers`.

What a file cannot make us hold: a graph blob (GraphDef, MetaGraphDef, RunMetadata, Keras JSON) over
MAX_GRAPH_BYTES is not parsed, and one with more than MAX_NODES nodes is not tabled, both before the
cost is paid: parsing crafted protobuf takes up to ~56x its size in memory (measured: 3.8 MiB of empty
NodeDefs -> 215 MB), and each tabled node a few KB. Records over the cap are passed over unread. A
record that is not what it says (garbage that passed its CRC, bad JSON) is skipped. Each becomes a
Problem (path, byte offset, message) in `GraphScanner.problems()`; the page shows them, never a traceback.
"""
from __future__ import annotations

import os
from pathlib import Path
from typing import Any


from twinboard.contract.files import event_files
from twinboard.graphs.model import (KERAS_PLUGIN, MAX_GRAPH_BYTES, RUN_METADATA_PLUGINS, Graph, GraphTooBig,
                                    check_size, graph_from_graphdef, graph_from_keras_json)
from twinboard.events import Problem, Record, RecordReader

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


def _graphs_in_run_metadata(data: bytes, tag: str, step: int) -> list[Graph]:
    from tensorboard.compat.proto import config_pb2

    check_size(len(data), tag)
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
        check_size(len(ev.graph_def), "graph_def")
        gd = graph_pb2.GraphDef()
        gd.ParseFromString(ev.graph_def)
        return [graph_from_graphdef(gd, "graph_def", ev.step)]
    if what == "meta_graph_def":
        check_size(len(ev.meta_graph_def), "meta_graph_def")
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

