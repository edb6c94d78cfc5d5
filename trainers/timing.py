"""What a trainer process costs around its training: the framework import, the process's peak
memory, and the error a train-step mode that cannot run ends the run with.

- import_s: seconds from the process's start to the framework imported. The interpreter's start
  and the trainer's own modules count (a user waits for them too), measured once, when this module
  is first imported (before any framework); then the framework import itself. Work done between
  the two (none in a trainer: run_main imports the framework first) is left out. Once per process:
  a second run in the same process (the tests) reports what the process paid.
- peak RSS: VmHWM from /proc/self/status, ~40 us a read, so it is read with the time-sampled perf
  scalars (once a second), never per step.

Standard library only: importing this module imports no framework.
"""
from __future__ import annotations

import os
import resource
import time
from typing import Callable


def process_age_s() -> float | None:
    """Seconds since this process started (/proc/self/stat starttime, 10 ms ticks); None without /proc."""
    try:
        with open("/proc/self/stat", "rb") as f:
            stat = f.read().decode()
        # Field 22 (starttime), counted after the ")" that ends the command name (which may hold spaces).
        ticks = int(stat.rsplit(")", 1)[1].split()[19])
        return max(0.0, time.clock_gettime(time.CLOCK_BOOTTIME) - ticks / os.sysconf("SC_CLK_TCK"))
    except (OSError, ValueError, IndexError, AttributeError):
        return None


_STARTUP_S = process_age_s() or 0.0  # the interpreter and the trainer's modules, before any framework
_IMPORT_S: dict[str, float] = {}  # framework -> import_s, once per process


def timed_import(framework: str, load: Callable[[], object]) -> float:
    """Calls `load` (the framework's imports) the first time for `framework` and returns import_s:
    the process's start-up before this module plus the time `load` took. Cached per process."""
    if framework not in _IMPORT_S:
        t0 = time.perf_counter()
        load()
        _IMPORT_S[framework] = _STARTUP_S + time.perf_counter() - t0
    return _IMPORT_S[framework]


def peak_rss_mb() -> float:
    """The process's peak resident memory (VmHWM) in MiB; from getrusage where /proc is absent."""
    try:
        with open("/proc/self/status", "rb") as f:
            for line in f:
                if line.startswith(b"VmHWM:"):
                    return int(line.split()[1]) / 1024  # kB
    except OSError:
        pass
    return resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024  # kB on Linux


MAX_ERROR_CHARS = 800  # of the underlying error in a ModeError: status.json's error is one line


class ModeError(RuntimeError):
    """A train-step mode that cannot run here (no C++ compiler for torch.compile, no XLA): the run
    fails, naming the RunSpec field and mode, rather than run another mode under the requested name."""


def mode_failure(field: str, mode: str, what: str, exc: BaseException) -> ModeError:
    """`torch_mode=compile (torch.compile, inductor) cannot run here: InductorError: ...`."""
    text = " ".join(str(exc).split())
    if len(text) > MAX_ERROR_CHARS:  # a compiler's error: its command line first, what it said last
        half = MAX_ERROR_CHARS // 2
        text = f"{text[:half]} ... {text[-half:]}"
    return ModeError(f"{field}={mode} ({what}) cannot run here: {type(exc).__name__}: {text}")


def first_call(field: str, mode: str, what: str, call: Callable[[], object]) -> object:
    """call(), the first call of a compiled train step (it compiles): any failure is the mode's,
    raised as ModeError naming it, the compiler's own error chained."""
    try:
        return call()
    except ModeError:
        raise
    except Exception as exc:  # noqa: BLE001 - named and chained, never swallowed
        raise mode_failure(field, mode, what, exc) from exc
