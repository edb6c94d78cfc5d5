"""Settings read from the environment, in one place, each with its default and a message naming a bad value."""
from __future__ import annotations

import os
from pathlib import Path

DEFAULT_LOGDIR = "logs"  # relative to the working directory, as `tensorboard --logdir logs` would take it
DEFAULT_MAX_PROCS = 2  # trainer processes at once: one per core on the 2-core machine this was built on
PAIR_PROCS = 2  # a pair's two trainers always run together (twinboard.runs admits whole pairs), so no fewer
DEFAULT_MAX_QUEUED = 20  # pairs waiting for slots, all users together: bounds the queue folder and the wait
DEFAULT_MAX_QUEUED_PER_USER = 5  # pairs one user may have waiting, so one visitor cannot fill the queue


def logdir() -> Path:
    """The logdir: $TWINBOARD_LOGDIR, else ./logs; absolute, and created if missing."""
    path = Path(os.environ.get("TWINBOARD_LOGDIR") or DEFAULT_LOGDIR).expanduser().absolute()
    path.mkdir(parents=True, exist_ok=True)
    return path


def _whole(name: str, default: int, least: int, why: str = "") -> int:
    """$name as a whole number >= least, else `default` when unset; ValueError naming the bad value."""
    raw = os.environ.get(name, "").strip()
    if not raw:
        return default
    try:
        value = int(raw)
    except ValueError:
        value = least - 1
    if value < least:
        raise ValueError(f"{name}={raw!r}: must be a whole number >= {least}{why}")
    return value


def max_procs() -> int:
    """How many trainer processes may run at once: $TWINBOARD_MAX_PROCS, else 2. At least 2: the
    queue admits whole pairs, and a pair's two trainers run together or not at all."""
    return _whole("TWINBOARD_MAX_PROCS", DEFAULT_MAX_PROCS, PAIR_PROCS,
                  " (a pair's two trainers always run at the same time)")


def max_queued() -> int:
    """How many pairs may wait for slots, all users together: $TWINBOARD_MAX_QUEUED, else 20."""
    return _whole("TWINBOARD_MAX_QUEUED", DEFAULT_MAX_QUEUED, 1)


def max_queued_per_user() -> int:
    """How many pairs one user may have waiting: $TWINBOARD_MAX_QUEUED_PER_USER, else 5."""
    return _whole("TWINBOARD_MAX_QUEUED_PER_USER", DEFAULT_MAX_QUEUED_PER_USER, 1)
