"""The torch trainer's event file: tensorboardX's SummaryWriter, with its events held in memory
between flushes and the scalar ones encoded in bulk with numpy.

Stock tensorboardX hands every event to a writer thread through a multiprocessing.Queue: the queue
pickles it (~75 us of CPU per event, measured) and each hand-off trades the GIL with the training
loop; building and serializing the three protobuf messages of one scalar costs ~25 us more. At
log_every=1 that was +80% on a 0.6 ms step. Here a logged step only appends its numbers to a list
(`BufferedEvents.scalars`); every flush (FLUSH_S, as the stock thread flushes) hands them to a
writer thread (trainers.background) that encodes all of them at once (`encode_scalars`: the bytes
protobuf would write, tested byte for byte, framed with their masked CRC32C) and writes them with
every other event in the order they were logged. Events that tensorboardX builds itself
(histograms, the graph) keep their place in that order.
tensorboardX is imported inside the functions that need it.
"""
from __future__ import annotations

import struct
from itertools import chain
from pathlib import Path

import google_crc32c
import numpy as np

from trainers import common
from trainers.background import WriterThread

_MASK_DELTA = 0xA282EAD8


def _varint(n: int) -> bytes:
    out = bytearray()
    n &= (1 << 64) - 1  # int64 two's complement, as protobuf encodes a negative step
    while True:
        byte, n = n & 0x7F, n >> 7
        out.append(byte | (0x80 if n else 0))
        if not n:
            return bytes(out)


def scalar_tail_prefix(tag: str) -> bytes:
    """The bytes of a scalar Event between its step and its float32 value: summary (field 5)
    holding one Value {tag (1), simple_value (2)}. Constant per tag, so computed once."""
    raw = tag.encode()
    value_msg_len = 1 + len(_varint(len(raw))) + len(raw) + 5  # tag field + simple_value field
    summary = b"\x0a" + _varint(value_msg_len) + b"\x0a" + _varint(len(raw)) + raw + b"\x15"
    return b"\x2a" + _varint(value_msg_len + 1 + len(_varint(value_msg_len))) + summary


def double_tensor_layout(tag: str) -> tuple[bytes, bytes]:
    """(before, after) the 8 value bytes of an Event summary holding `tag` as a DT_DOUBLE scalar
    tensor under the scalars plugin, what the fp64 loss is written as: found in protobuf's own
    serialization of a sentinel value, so it is protobuf's layout by construction."""
    from tensorboardX.proto.event_pb2 import Event
    from tensorboardX.proto.summary_pb2 import Summary, SummaryMetadata
    from tensorboardX.proto.tensor_pb2 import TensorProto
    from tensorboardX.proto.tensor_shape_pb2 import TensorShapeProto
    from tensorboardX.proto.types_pb2 import DT_DOUBLE

    sentinel = -1.2345678901234567e-300
    meta = SummaryMetadata(plugin_data=SummaryMetadata.PluginData(plugin_name="scalars"))
    tensor = TensorProto(dtype=DT_DOUBLE, tensor_shape=TensorShapeProto(), double_val=[sentinel])
    raw = Event(summary=Summary(value=[Summary.Value(tag=tag, tensor=tensor, metadata=meta)])).SerializeToString()
    mark = struct.pack("<d", sentinel)
    if raw.count(mark) != 1:
        raise ValueError(f"cannot place the value in the serialized event of tag {tag!r}")
    at = raw.index(mark)
    return raw[:at], raw[at + 8:]


# --- framing and CRC32C, one record or many at once ----------------------------------------------
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
    return ((crc >> 15) | (crc << 17)) + np.uint32(_MASK_DELTA)


def _masked_crc(data: bytes) -> int:
    crc = google_crc32c.value(data)
    return (((crc >> 15) | (crc << 17)) + _MASK_DELTA) & 0xFFFFFFFF


def frame_record(data: bytes) -> bytes:
    """TFRecord framing as tensorboardX's RecordWriter.write does it: length, masked CRC32C of the
    length, data, masked CRC32C of the data."""
    header = struct.pack("<Q", len(data))
    return header + struct.pack("<I", _masked_crc(header)) + data + struct.pack("<I", _masked_crc(data))


# --- scalar events in bulk -------------------------------------------------------------------------
def _varint_lengths(steps: np.ndarray) -> np.ndarray:
    """Bytes of each step's varint (0 where protobuf leaves a 0 step out; 10 for a negative)."""
    u = steps.astype(np.int64).view(np.uint64)
    n = np.ones(len(u), np.int64)
    for k in range(1, 10):
        n += u >= np.uint64(1 << (7 * k))
    return np.where(u == 0, 0, n)


def encode_scalars(steps, walls, tags, values, layouts: list[tuple[bytes, str, bytes]]) -> tuple[bytes, np.ndarray]:
    """Framed records of one scalar Event each, in order: (bytes, start offset of each record).

    Record i is Event{wall_time=walls[i], step=steps[i], summary=...} where layouts[tags[i]] is
    (bytes before the value, numpy format of the value "<f4" or "<f8", bytes after it): exactly what
    protobuf serializes (fields in number order; a 0 step and a +0.0 wall_time left out; float32 values cast as C casts,
    so an overflow is +-inf, as protobuf stores it). All records are laid out right-aligned in one
    zero-padded matrix, filled a group (one tag, one step-varint length: one layout) at a time,
    checksummed together and read out without the padding: a few hundred numpy calls per flush,
    whatever the number of records."""
    steps, walls = np.asarray(steps, np.int64), np.asarray(walls, np.float64)
    tags, values = np.asarray(tags, np.int64), np.asarray(values, np.float64)
    if not len(steps):
        return b"", np.zeros(0, np.int64)
    vlen = _varint_lengths(steps)
    has_wall = walls.view(np.uint64) != 0  # protobuf leaves out a wall_time of +0.0
    sizes = np.array([len(pre) + np.dtype(fmt).itemsize + len(post) for pre, fmt, post in layouts], np.int64)
    data_len = 9 * has_wall + np.where(vlen > 0, 1 + vlen, 0) + sizes[tags]  # wall_time, step, summary
    width = int(data_len.max())
    data = np.zeros((len(steps), width), np.uint8)
    group_key = (tags * 2 + has_wall) * 11 + vlen
    groups = []
    for key in np.unique(group_key):
        idx = np.flatnonzero(group_key == key)
        tag_wall, c = divmod(int(key), 11)
        tag, wall = divmod(tag_wall, 2)
        pre, fmt, post = layouts[tag]
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
        m[:, p:p + len(pre)] = np.frombuffer(pre, np.uint8)
        p += len(pre)
        with np.errstate(over="ignore"):  # beyond float32: inf, as protobuf stores it
            vb = values[idx].astype(fmt).view(np.uint8).reshape(len(idx), -1)
        m[:, p:p + vb.shape[1]] = vb
        m[:, p + vb.shape[1]:] = np.frombuffer(post, np.uint8)
        data[idx, width - d:] = m
        groups.append((idx, d))
    framed = np.zeros((len(steps), 16 + width), np.uint8)  # [pad][length][length CRC][data][data CRC]
    framed[:, 12:12 + width] = data
    for idx, d in groups:
        head = struct.pack("<Q", d)
        framed[idx, width - d:width - d + 12] = np.frombuffer(head + struct.pack("<I", _masked_crc(head)), np.uint8)
    framed[:, -4:] = masked_crc32c_rows(data, data_len).astype("<u4").view(np.uint8).reshape(-1, 4)
    keep = np.arange(16 + width)[None, :] >= (width - data_len)[:, None]
    rec_len = 16 + data_len
    return framed[keep].tobytes(), np.concatenate([[0], np.cumsum(rec_len)[:-1]]).astype(np.int64)


class BufferedEvents:
    """Stands in for tensorboardX's EventsWriter (write_event, flush, close) and holds everything
    until a flush: scalars as rows of numbers (`scalars`), any other Event framed at once
    (`write_event`), both in the order they came.

    `flush_async()` hands what is held to a WriterThread, which encodes the rows in bulk and writes
    the lot in one call; the training thread pays for the hand-over only. `flush()` (what
    SummaryWriter.flush calls) and `close()` wait until everything held is in the file. A failure
    in the thread is raised by the next flush, once."""

    def __init__(self, events_writer):
        self.ev = events_writer  # tensorboardX's EventsWriter: its lock and its buffered file
        self.layouts: list[tuple[bytes, str, bytes]] = []
        self.ids: dict[tuple[str, str], int] = {}
        # (step, wall, tag ids, values, held): a row's last value is computed at the flush from
        # `held` (by `fill`) when held is not None
        self.rows: list[tuple[int, float, tuple[int, ...], list[float], object]] = []
        self.n_scalars = 0
        self.framed: list[tuple[int, bytes]] = []  # (scalars logged before it, framed record)
        self.fill = None  # callable: [held, ...] -> [value, ...]
        self.writer = WriterThread(self._write, "writing the event file")

    def tag_ids(self, tags, kind: str = "simple") -> tuple[int, ...]:
        """Ids for `scalars`; kind "simple" (simple_value, float32, as add_scalar writes) or
        "double" (a DT_DOUBLE tensor under the scalars plugin)."""
        out = []
        for tag in tags:
            key = (tag, kind)
            if key not in self.ids:
                if kind == "simple":
                    self.layouts.append((scalar_tail_prefix(tag), "<f4", b""))
                else:
                    pre, post = double_tensor_layout(tag)
                    self.layouts.append((pre, "<f8", post))
                self.ids[key] = len(self.layouts) - 1
            out.append(self.ids[key])
        return tuple(out)

    def scalars(self, step: int, wall: float, ids: tuple[int, ...], values: list[float], held=None) -> None:
        self.rows.append((step, wall, ids, values, held))
        self.n_scalars += len(ids)

    def write_event(self, event) -> None:
        self.framed.append((self.n_scalars, frame_record(event.SerializeToString())))

    def _take(self):
        rows, framed = self.rows, self.framed
        self.rows, self.framed, self.n_scalars = [], [], 0
        return rows, framed

    def encode(self, rows, framed) -> bytes:
        """Rows and framed events, as the bytes of the file."""
        if not rows:
            return b"".join(f for _, f in framed)
        held = [r for r in rows if r[4] is not None]
        if held:
            for r, value in zip(held, self.fill([r[4] for r in held])):
                r[3][-1] = value
        counts = [len(r[2]) for r in rows]
        buf, starts = encode_scalars(np.repeat([r[0] for r in rows], counts),
                                     np.repeat([r[1] for r in rows], counts),
                                     np.fromiter(chain.from_iterable(r[2] for r in rows), np.int64),
                                     np.fromiter(chain.from_iterable(r[3] for r in rows), np.float64),
                                     self.layouts)
        pieces, at = [], 0
        for n_before, rec in framed:
            cut = int(starts[n_before]) if n_before < len(starts) else len(buf)
            pieces += [buf[at:cut], rec]
            at = cut
        pieces.append(buf[at:])
        return b"".join(pieces)

    def _write(self, held) -> None:
        data = self.encode(*held)
        with self.ev._lock:
            if data:
                self.ev._py_recordio_writer._writer.write(data)
        self.ev.flush()

    def flush_async(self) -> None:
        self.writer.submit(self._take())

    def flush(self) -> None:
        self.writer.submit(self._take())
        self.writer.wait()

    def close(self) -> None:
        try:
            self.flush()
        finally:
            self.writer.close()
            try:
                self.ev.close()
            except (OSError, ValueError):
                if not self.writer.broken:  # a broken file was reported already
                    raise


def make_writer(logdir: Path):
    """A tensorboardX SummaryWriter whose events go to a BufferedEvents (writer.buffered), flushed
    by `writer.flush()` and `close()`; TorchAdapter.maybe_flush flushes every FLUSH_S seconds as the
    stock thread would. Internals of the pinned tensorboardX: on any surprise the stock writer is
    kept and `writer.buffered` is None."""
    from tensorboardX import SummaryWriter

    writer = SummaryWriter(str(logdir), flush_secs=common.FLUSH_S, max_queue=1000)
    writer.buffered = None
    efw = writer._get_file_writer().event_writer
    ev = getattr(efw, "_ev_writer", None)
    if not (hasattr(ev, "_lock") and hasattr(getattr(ev, "_py_recordio_writer", None), "_writer")
            and hasattr(efw, "_worker")):
        return writer

    class NoThread:
        def stop(self) -> None:  # EventFileWriter.close() stops its worker
            pass

    efw._worker.stop()  # the stock thread exits: nothing was queued yet
    efw._worker = NoThread()
    efw._ev_writer = writer.buffered = BufferedEvents(ev)
    efw.add_event = writer.buffered.write_event
    return writer
