"""Runs: finding event runs and pairing them, launching matched pairs, their state on disk, the backends."""
from twinboard.contract.files import FRAMEWORK_LABELS, FRAMEWORKS  # the contract's, named here for pages and CLI
from twinboard.runs.discovery import (
    EventRun, list_event_runs, list_pairs, make_pair, OutsideLogdirError, Pair, safe_path)
from twinboard.runs.launcher import get_run, launch, list_runs, stop, trainer_command, wait
from twinboard.runs.liveness import STALE_S, pair_is_live, pair_jobs, pairs_are_live, reports_running
from twinboard.runs.local import STDERR_LINES
from twinboard.runs.state import (
    ACTIVE, TERMINAL, Failed, Finished, JobStatus, Launched, LauncherError, RunNotFound, RunStatus, Stopped,
    TimedOut)
