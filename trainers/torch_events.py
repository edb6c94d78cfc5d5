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

import threading
from pathlib import Path

from trainers.background import WriterThread
from trainers.event_records import ScalarRows, encode_scalars
from trainers.loop import FLUSH_S
from twinboard.contract import frame


class BufferedEvents:
    """Stands in for tensorboardX's EventsWriter (write_event, flush, close) and holds everything
    until a flush: scalars as rows of numbers (`scalars`, an event_records.ScalarRows), any other
    Event framed at once (`write_event`), both in the order they came.

    `flush_async()` hands what is held to a WriterThread, which encodes the rows in bulk and writes
    the lot in one call; the training thread pays for the hand-over only. `flush()` (what
    SummaryWriter.flush calls) and `close()` wait until everything held is in the file. A failure
    in the thread is raised by the next flush, once. `write_serialized` may be called from another
    thread (the evaluation records' own, trainers.evaluation): a lock keeps a record from landing in
    a batch already handed over."""

    def __init__(self, events_writer):
        self.ev = events_writer  # tensorboardX's EventsWriter: its lock and its buffered file
        self.held = ScalarRows()
        self.framed: list[tuple[int, bytes]] = []  # (records logged before it, framed record)
        self.lock = threading.Lock()  # framed and the rows' count, taken together
        self.fill = None  # callable: [held, ...] -> [value, ...], the rows' last values
        self.writer = WriterThread(self._write, "writing the event file")

    def tag_ids(self, tags, kind: str = "simple") -> tuple[int, ...]:
        """Ids for `scalars`; kind "simple" (simple_value, float32, as add_scalar writes) or
        "double" (a DT_DOUBLE tensor under the scalars plugin)."""
        return self.held.tag_ids(tags, kind)

    def scalars(self, step: int, wall: float, ids: tuple[int, ...], values: list[float], held=None) -> None:
        self.held.add(step, wall, ids, values, held)

    def write_event(self, event) -> None:
        self.write_serialized(event.SerializeToString())

    def write_serialized(self, data: bytes) -> None:
        """An Event's bytes (trainers.eval_writers joins them without building the message)."""
        record = frame(data)
        with self.lock:
            self.framed.append((self.held.n_records, record))

    def _take(self):
        with self.lock:
            framed, self.framed = self.framed, []
            return self.held.take(), framed

    def encode(self, rows, framed) -> bytes:
        """Rows and framed events, as the bytes of the file."""
        if not rows:
            return b"".join(f for _, f in framed)
        buf, starts = encode_scalars(*ScalarRows.columns(rows, self.fill), self.held.layouts)
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

    writer = SummaryWriter(str(logdir), flush_secs=FLUSH_S, max_queue=1000)
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
