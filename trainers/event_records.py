"""Scalar events encoded in bulk with numpy: the bytes protobuf would serialize, record for record.

Both trainers hold the scalars they log as rows of numbers and encode them at a flush, all at once
(a few hundred numpy calls whatever the number of records; ~0.6 us a record against ~25 us for
building and serializing three protobuf messages). The torch trainer writes the framed records
itself (`encode_scalars`, trainers.torch_events); the TensorFlow trainer hands the serialized events
to its tf.summary writer (`encode_events`, trainers.tf_trainer). Each tag's bytes around the value
come from protobuf's own serialization of a sentinel (`layout`), so they are protobuf's by
construction; tests compare every byte with protobuf's and with TensorFlow's writer. One record's
framing and masked CRC are the run-folder contract's (`twinboard.contract.records`); here, the CRC of
many records at once. Imports numpy, the contract and tensorboard's protos only.
"""
from __future__ import annotations

import struct
from itertools import chain
from typing import Any, Callable

import numpy as np

from twinboard.contract import MASK_DELTA, masked_crc32c

KINDS = ("simple", "double", "tf_float32")

Layout = tuple[tuple[bytes, ...], str]  # (the bytes around the k values: k + 1 pieces, their numpy format)


def layout(tags, kind: str) -> Layout:
    """The bytes of an Event's summary holding one scalar of `kind` for each of `tags` (a tag or a
    tuple of them: several values in one event, as TensorFlow's merged summaries are written),
    around the values: (k + 1 pieces, numpy format of the values), where kind is
    - "simple": Summary.Value.simple_value, float32: what tensorboardX's add_scalar writes;
    - "double": a DT_DOUBLE scalar tensor in double_val under the scalars plugin (the torch
      trainer's fp64 loss; TensorBoard charts it as it does tf.summary.scalar's);
    - "tf_float32": a DT_FLOAT scalar tensor in tensor_content under the scalars plugin, with an
      empty shape: what TensorFlow's WriteSummary op writes for tf.summary.scalar.
    Found in protobuf's serialization of sentinel values, so the layout is protobuf's."""
    from tensorboard.compat.proto.event_pb2 import Event
    from tensorboard.compat.proto.summary_pb2 import Summary, SummaryMetadata
    from tensorboard.compat.proto.tensor_pb2 import TensorProto
    from tensorboard.compat.proto.tensor_shape_pb2 import TensorShapeProto
    from tensorboard.compat.proto.types_pb2 import DT_DOUBLE, DT_FLOAT

    tags = (tags,) if isinstance(tags, str) else tuple(tags)
    if kind not in KINDS:
        raise ValueError(f"unknown scalar kind {kind!r} (one of {KINDS})")
    fmt = "<f4" if kind in ("simple", "tf_float32") else "<f8"
    # distinct bit patterns, each found exactly once in the serialized event (checked below)
    base = -1.2345678e-30 if fmt == "<f4" else -1.2345678901234567e-300
    marks = [np.array(base * (1 + j / 64), fmt).tobytes() for j in range(len(tags))]
    meta = SummaryMetadata(plugin_data=SummaryMetadata.PluginData(plugin_name="scalars"))
    values = []
    for tag, mark in zip(tags, marks):
        v = float(np.frombuffer(mark, fmt)[0])
        if kind == "simple":
            values.append(Summary.Value(tag=tag, simple_value=v))
        elif kind == "double":
            values.append(Summary.Value(tag=tag, metadata=meta, tensor=TensorProto(
                dtype=DT_DOUBLE, tensor_shape=TensorShapeProto(), double_val=[v])))
        else:
            values.append(Summary.Value(tag=tag, metadata=meta, tensor=TensorProto(
                dtype=DT_FLOAT, tensor_shape=TensorShapeProto(), tensor_content=mark)))
    raw = Event(summary=Summary(value=values)).SerializeToString()
    pieces, at = [], 0
    for tag, mark in zip(tags, marks):
        if raw.count(mark) != 1:
            raise ValueError(f"cannot place the value in the serialized event of tag {tag!r}")
        i = raw.index(mark)
        pieces.append(raw[at:i])
        at = i + len(mark)
    pieces.append(raw[at:])
    return tuple(pieces), fmt


# --- masked CRC32C of many records at once -------------------------------------------------------
def _crc_table() -> np.ndarray:
    table = np.arange(256, dtype=np.uint32)
    for _ in range(8):
        table = np.where(table & 1, (table >> 1) ^ np.uint32(0x82F63B78), table >> 1).astype(np.uint32)
    return table


_TABLE = _crc_table()


def _zero_prefix_starts(k_max: int) -> np.ndarray:
    """starts[k]: the CRC register that k zero bytes carry to 0xFFFFFFFF, CRC32C's initial value.
    A row right-aligned behind k zeros and begun at starts[k] has the CRC of the row alone. The
    step over a zero byte, c' = T[c & 0xFF] ^ (c >> 8), inverts: c' >> 24 names the index (the
    table's top bytes are all distinct)."""
    top = {int(t) >> 24: i for i, t in enumerate(_TABLE)}
    out, c = [0xFFFFFFFF], 0xFFFFFFFF
    for _ in range(k_max):
        i = top[c >> 24]
        c = (((c ^ int(_TABLE[i])) << 8) | i) & 0xFFFFFFFF
        out.append(c)
    return np.array(out, np.uint32)


def masked_crc32c_rows(rows: np.ndarray, lengths: np.ndarray | None = None) -> np.ndarray:
    """Masked CRC32C (TFRecord's) of every row of a uint8 [n, k] matrix, one column at a time; with
    `lengths`, of each row's last lengths[i] bytes (the bytes before them must be zeros)."""
    k = rows.shape[1]
    if lengths is None:
        crc = np.full(len(rows), 0xFFFFFFFF, np.uint32)
    else:
        crc = _zero_prefix_starts(k)[k - np.asarray(lengths)]
    for col in np.ascontiguousarray(rows.T):
        crc = _TABLE[(crc ^ col) & 0xFF] ^ (crc >> 8)
    crc ^= np.uint32(0xFFFFFFFF)
    return ((crc >> 15) | (crc << 17)) + np.uint32(MASK_DELTA)


# --- scalar events in bulk -------------------------------------------------------------------------
def _varint_lengths(steps: np.ndarray) -> np.ndarray:
    """Bytes of each step's varint (0 where protobuf leaves a 0 step out; 10 for a negative)."""
    u = steps.astype(np.int64).view(np.uint64)
    n = np.ones(len(u), np.int64)
    for k in range(1, 10):
        n += u >= np.uint64(1 << (7 * k))
    return np.where(u == 0, 0, n)


def _encode(steps, walls, ids, values, layouts: list[Layout]):
    """Each record's data right-aligned in one zero-padded uint8 matrix: (matrix, data lengths,
    [(record indices, data length)] of each group). Record i is Event{wall_time=walls[i],
    step=steps[i], summary=...} where layouts[ids[i]] holds the bytes around its k values (see
    `layout`), the next k of `values`: exactly what protobuf serializes (fields in number order; a
    0 step and a +0.0 wall_time left out; float32 values cast as C casts, so an overflow is +-inf,
    as protobuf stores it). Filled a group (one layout, one step-varint length) at a time: a few
    hundred numpy calls, whatever the number of records."""
    steps, walls = np.asarray(steps, np.int64), np.asarray(walls, np.float64)
    ids, values = np.asarray(ids, np.int64), np.asarray(values, np.float64)
    if not len(steps):
        return np.zeros((0, 0), np.uint8), np.zeros(0, np.int64), []
    vlen = _varint_lengths(steps)
    has_wall = walls.view(np.uint64) != 0  # protobuf leaves out a wall_time of +0.0
    sizes = np.array([sum(map(len, pieces)) + (len(pieces) - 1) * np.dtype(fmt).itemsize
                      for pieces, fmt in layouts], np.int64)
    n_values = np.array([len(pieces) - 1 for pieces, _ in layouts], np.int64)[ids]
    first = np.concatenate([[0], np.cumsum(n_values)[:-1]])  # each record's first value
    if n_values.sum() != len(values):
        raise ValueError(f"{len(values)} values for records that hold {int(n_values.sum())}")
    data_len = 9 * has_wall + np.where(vlen > 0, 1 + vlen, 0) + sizes[ids]  # wall_time, step, summary
    width = int(data_len.max())
    data = np.zeros((len(steps), width), np.uint8)
    group_key = (ids * 2 + has_wall) * 11 + vlen
    groups = []
    for key in np.unique(group_key):
        idx = np.flatnonzero(group_key == key)
        id_wall, c = divmod(int(key), 11)
        layout_id, wall = divmod(id_wall, 2)
        pieces, fmt = layouts[layout_id]
        d = int(data_len[idx[0]])
        m = np.empty((len(idx), d), np.uint8)
        p = 0
        if wall:
            m[:, 0] = 0x09
            m[:, 1:9] = walls[idx].astype("<f8").view(np.uint8).reshape(-1, 8)
            p = 9
        if c:
            m[:, p] = 0x10
            u = steps[idx].view(np.uint64)
            for k in range(c):
                m[:, p + 1 + k] = ((u >> np.uint64(7 * k)) & np.uint64(0x7F)) | np.uint64(0x80 if k < c - 1 else 0)
            p += 1 + c
        for j, piece in enumerate(pieces):
            m[:, p:p + len(piece)] = np.frombuffer(piece, np.uint8)
            p += len(piece)
            if j < len(pieces) - 1:
                with np.errstate(over="ignore"):  # beyond float32: inf, as protobuf stores it
                    vb = values[first[idx] + j].astype(fmt).view(np.uint8).reshape(len(idx), -1)
                m[:, p:p + vb.shape[1]] = vb
                p += vb.shape[1]
        data[idx, width - d:] = m
        groups.append((idx, d))
    return data, data_len, groups


def encode_scalars(steps, walls, ids, values, layouts: list[Layout]) -> tuple[bytes, np.ndarray]:
    """Framed records of one Event each, in order (see _encode): (bytes, start offset of each
    record), framed as tensorboardX's RecordWriter frames them, checksummed all together."""
    data, data_len, groups = _encode(steps, walls, ids, values, layouts)
    if not len(data_len):
        return b"", np.zeros(0, np.int64)
    width = data.shape[1]
    framed = np.zeros((len(steps), 16 + width), np.uint8)  # [pad][length][length CRC][data][data CRC]
    framed[:, 12:12 + width] = data
    for idx, d in groups:
        head = struct.pack("<Q", d)
        framed[idx, width - d:width - d + 12] = np.frombuffer(head + struct.pack("<I", masked_crc32c(head)), np.uint8)
    framed[:, -4:] = masked_crc32c_rows(data, data_len).astype("<u4").view(np.uint8).reshape(-1, 4)
    keep = np.arange(16 + width)[None, :] >= (width - data_len)[:, None]
    rec_len = 16 + data_len
    return framed[keep].tobytes(), np.concatenate([[0], np.cumsum(rec_len)[:-1]]).astype(np.int64)


def encode_events(steps, walls, ids, values, layouts: list[Layout]) -> tuple[bytes, np.ndarray]:
    """The serialized Events of encode_scalars, unframed and back to back: (bytes, length of each),
    for a writer that frames them itself (TensorFlow's, through its ImportEvent op)."""
    data, data_len, _ = _encode(steps, walls, ids, values, layouts)
    keep = np.arange(data.shape[1])[None, :] >= (data.shape[1] - data_len)[:, None]
    return data[keep].tobytes(), data_len


class ScalarRows:
    """Scalars held as rows of numbers until a flush: (step, wall time, layout ids, values, held).
    Each id is one record: one scalar (`tag_ids`) or several in one event (`event_id`), taking as
    many of the row's values. A row's last value is computed at the flush from `held` when held is
    not None (accuracy/train from the step's logits: an argmax per step in the loop costs ~18 us)."""

    def __init__(self):
        self.layouts: list[Layout] = []
        self._ids: dict[tuple[tuple[str, ...], str], int] = {}
        self.rows: list[tuple[int, float, tuple[int, ...], list[float], Any]] = []
        self.n_records = 0  # in self.rows

    def _id(self, tags: tuple[str, ...], kind: str) -> int:
        key = (tags, kind)
        if key not in self._ids:
            self.layouts.append(layout(tags, kind))
            self._ids[key] = len(self.layouts) - 1
        return self._ids[key]

    def tag_ids(self, tags, kind: str = "simple") -> tuple[int, ...]:
        """One record per tag, each holding one scalar of `kind` (see `layout`), for `add`."""
        return tuple(self._id((tag,), kind) for tag in tags)

    def event_id(self, tags, kind: str = "simple") -> tuple[int]:
        """One record holding a scalar of `kind` for each of `tags`, for `add`."""
        return (self._id(tuple(tags), kind),)

    def add(self, step: int, wall: float, ids: tuple[int, ...], values: list[float], held: Any = None) -> None:
        self.rows.append((step, wall, ids, values, held))
        self.n_records += len(ids)

    def take(self) -> list:
        rows, self.rows, self.n_records = self.rows, [], 0
        return rows

    @staticmethod
    def columns(rows, fill: Callable[[list], list[float]] | None = None):
        """(steps, walls, layout ids) of every record in `rows` and all their values, in order, for
        encode_*; the held values filled by `fill([held, ...])`, all at once."""
        held = [r for r in rows if r[4] is not None]
        if held:
            for r, value in zip(held, fill([r[4] for r in held])):
                r[3][-1] = value
        counts = [len(r[2]) for r in rows]
        return (np.repeat(np.array([r[0] for r in rows], np.int64), counts),
                np.repeat(np.array([r[1] for r in rows], np.float64), counts),
                np.fromiter(chain.from_iterable(r[2] for r in rows), np.int64),
                np.fromiter(chain.from_iterable(r[3] for r in rows), np.float64))
