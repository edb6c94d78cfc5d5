"""Runs: finding event runs and pairing them, launching matched pairs, their state on disk, the backends."""
from twinboard.runs.discovery import (
    FRAMEWORK_LABELS, FRAMEWORKS, EventRun, list_event_runs, list_pairs, make_pair, OutsideLogdirError,
    Pair, safe_path)
from twinboard.runs.launcher import get_run, launch, list_runs, stop, trainer_command, wait
from twinboard.runs.local import STDERR_LINES
from twinboard.runs.state import (
    TERMINAL, Failed, Finished, JobStatus, Launched, LauncherError, RunNotFound, RunStatus, Stopped,
    TimedOut)
