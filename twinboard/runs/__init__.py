"""Runs: finding event runs and pairing them, launching matched pairs, their state on disk, the backends."""
from twinboard.contract.files import FRAMEWORK_LABELS, FRAMEWORKS  # the contract's, named here for pages and CLI
from twinboard.runs.discovery import (
    EventRun, list_event_runs, list_pairs, make_pair, OutsideLogdirError, Pair, safe_path)
from twinboard.runs.launcher import get_run, launch, list_runs, stop, trainer_command, wait
from twinboard.runs.liveness import STALE_S, pair_is_live, pair_jobs, pairs_are_live, reports_running
from twinboard.runs.queue import STDERR_LINES
from twinboard.runs.state import (
    ACTIVE, TERMINAL, Failed, Finished, JobStatus, Launched, LauncherError, RunNotFound, RunStatus, Stopped,
    TimedOut)
from twinboard.runs.cleanup import DELETING_PREFIX, delete_run
from twinboard.runs.discovery import Choice, choice_from_query, default_choice, has_events, resolve_choice
from twinboard.runs.summary import FINAL_TAGS, event_signature, final_metrics, metrics_line, progress_text, spec_line
from twinboard.runs.spec_form import (
    DATA_FIELDS, FORM_CHOICES, FORM_DEFAULTS, FORM_SECTIONS, FORM_STEPS, OPTIMIZER_FIELDS, advanced_fields,
    error_text, field_kind, field_label, form_choices,
    spec_from_form, widget_values)
