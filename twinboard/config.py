"""Settings read from the environment, in one place, each with its default and a message naming a bad value."""
from __future__ import annotations

import os
from pathlib import Path

DEFAULT_LOGDIR = "logs"  # relative to the working directory, as `tensorboard --logdir logs` would take it
DEFAULT_MAX_PROCS = 2  # trainer processes at once: one per core on the 2-core machine this was built on


def logdir() -> Path:
    """The logdir: $TWINBOARD_LOGDIR, else ./logs; absolute, and created if missing."""
    path = Path(os.environ.get("TWINBOARD_LOGDIR") or DEFAULT_LOGDIR).expanduser().absolute()
    path.mkdir(parents=True, exist_ok=True)
    return path


def max_procs() -> int:
    """How many trainer processes may run at once: $TWINBOARD_MAX_PROCS, else 2. ValueError if not >= 1."""
    raw = os.environ.get("TWINBOARD_MAX_PROCS", "").strip()
    if not raw:
        return DEFAULT_MAX_PROCS
    try:
        value = int(raw)
    except ValueError:
        value = 0
    if value < 1:
        raise ValueError(f"TWINBOARD_MAX_PROCS={raw!r}: must be a whole number >= 1")
    return value
