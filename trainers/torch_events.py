"""The torch trainer's event file: the scalar Events tensorboardX's add_scalar writes, encoded
byte for byte without protobuf, their TFRecord framing, and a tensorboardX SummaryWriter that writes
in the training thread. tensorboardX is imported inside the functions that need it.
"""
from __future__ import annotations

import math
import struct
from pathlib import Path

from trainers import common


def _varint(n: int) -> bytes:
    out = bytearray()
    n &= (1 << 64) - 1  # int64 two's complement, as protobuf encodes a negative step
    while True:
        byte, n = n & 0x7F, n >> 7
        out.append(byte | (0x80 if n else 0))
        if not n:
            return bytes(out)


def f32(value: float) -> bytes:
    try:
        return struct.pack("<f", value)
    except OverflowError:  # beyond float32: protobuf stores +-inf, struct refuses
        return struct.pack("<f", math.copysign(math.inf, value))


def scalar_tail_prefix(tag: str) -> bytes:
    """The bytes of a scalar Event between its step and its float32 value: summary (field 5)
    holding one Value {tag (1), simple_value (2)}. Constant per tag, so computed once."""
    raw = tag.encode()
    value_msg_len = 1 + len(_varint(len(raw))) + len(raw) + 5  # tag field + simple_value field
    summary = b"\x0a" + _varint(value_msg_len) + b"\x0a" + _varint(len(raw)) + raw + b"\x15"
    return b"\x2a" + _varint(value_msg_len + 1 + len(_varint(value_msg_len))) + summary


def scalar_event_head(wall_time: float, step: int) -> bytes:
    """wall_time (field 1, double) and step (field 2, varint; protobuf omits a 0 step)."""
    return b"\x09" + struct.pack("<d", wall_time) + (b"\x10" + _varint(step) if step else b"")


def encode_scalar_event(head: bytes, tail_prefix: bytes, value: float) -> bytes:
    """The serialized Event that SummaryWriter.add_scalar writes, byte for byte (tested against
    protobuf), from scalar_event_head() and scalar_tail_prefix(tag): ~1 us against ~25 us for
    building and serializing the three messages."""
    return head + tail_prefix + f32(value)


def frame_record(data: bytes, crc=None) -> bytes:
    """TFRecord framing as tensorboardX's RecordWriter.write does it: length, masked CRC32C of the
    length, data, masked CRC32C of the data."""
    crc = crc or _masked_crc
    header = struct.pack("<Q", len(data))
    return header + struct.pack("<I", crc(header)) + data + struct.pack("<I", crc(data))


def _masked_crc(data: bytes) -> int:
    from tensorboardX.record_writer import masked_crc32c  # google-crc32c's CRC once make_writer ran

    return masked_crc32c(data)


def make_writer(logdir: Path):
    """A tensorboardX SummaryWriter whose events are written in the training thread.

    Stock tensorboardX hands every event to a writer thread through a multiprocessing.Queue: the
    queue pickles it (~75 us of CPU per event, measured) and each hand-off trades the GIL with the
    training loop. Writing in the caller's thread instead (serialize, CRC, a buffered file write:
    a few us) gives the same file and the same bytes; `TorchAdapter.maybe_flush` flushes it every
    FLUSH_S seconds as the stock thread would. The pure-Python CRC32C is swapped for google-crc32c's
    when installed. Internals of the pinned tensorboardX: any surprise keeps the stock path.
    """
    from tensorboardX import SummaryWriter, record_writer

    try:
        import google_crc32c
        record_writer.crc32c = google_crc32c.value
    except ImportError:
        pass
    writer = SummaryWriter(str(logdir), flush_secs=common.FLUSH_S, max_queue=1000)
    efw = writer._get_file_writer().event_writer

    class NoThread:
        def stop(self) -> None:  # EventFileWriter.close() stops its worker
            pass

    try:
        sync_write = efw._ev_writer.write_event
        efw._worker.stop()  # the stock thread exits: nothing was queued yet
        efw._worker = NoThread()
        efw.add_event = sync_write
    except AttributeError:
        pass
    return writer
