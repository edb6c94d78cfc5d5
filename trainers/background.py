"""A trainer's writer thread: the training loop hands over what it logged and goes on.

Both trainers encode and write their held scalars on one (the torch trainer its whole event file,
trainers.torch_events; the TensorFlow trainer its train scalars, through its tf.summary writer).
The work is numpy and framework calls that release the GIL, so on a machine with a free core it
runs beside the training step instead of inside it. `busy_s` is the CPU time the thread used: the
cost moved off the loop, which the trainer-overhead bench reports next to the loop's own.
"""
from __future__ import annotations

import queue
import threading
import time
from typing import Any, Callable


class WriterThread:
    """Runs `work(item)` for each submitted item, in order, on one daemon thread started at the
    first submit. A failure stops the writing and is raised once, by the next submit/wait/close, as
    RuntimeError naming `what`; later items are dropped (the file is gone, or full)."""

    def __init__(self, work: Callable[[Any], None], what: str):
        self.work, self.what = work, what
        self.busy_s = 0.0
        self.broken = False  # `work` failed once: nothing more is written
        self._error: BaseException | None = None  # not yet raised
        self._queue: queue.Queue | None = None
        self._thread: threading.Thread | None = None

    def _run(self) -> None:
        while True:
            item = self._queue.get()
            try:
                if item is _STOP:
                    return
                if not self.broken:
                    t0 = time.thread_time()
                    self.work(item)
                    self.busy_s += time.thread_time() - t0
            except BaseException as exc:  # noqa: BLE001 - raised in the training thread, next call
                self._error, self.broken = exc, True
            finally:
                self._queue.task_done()

    def _raise(self) -> None:
        if self._error is not None:
            err, self._error = self._error, None
            raise RuntimeError(f"{self.what} failed: {type(err).__name__}: {err}") from err

    def submit(self, item: Any) -> None:
        self._raise()
        if self._thread is None:
            self._queue = queue.Queue()
            self._thread = threading.Thread(target=self._run, name=f"twinboard {self.what}", daemon=True)
            self._thread.start()
        self._queue.put(item)

    def wait(self) -> None:
        """Until everything submitted is written (or has failed: raised here)."""
        if self._thread is not None:
            self._queue.join()
        self._raise()

    def close(self) -> None:
        try:
            self.wait()
        finally:
            if self._thread is not None:
                self._queue.put(_STOP)
                self._thread.join()
                self._thread = None


_STOP = object()
