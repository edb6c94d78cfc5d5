"""What a launcher run and its jobs are: typed outcomes and statuses.

Shared by `twinboard.runs.launcher` (the API) and the backends that run the jobs
(`twinboard.runs.local`, `twinboard.runs.dispatcher`), so neither has to import the other's internals. The JSON files they live
in are read and written (atomically) with `twinboard.contract.files.read_json` / `write_json`.
"""
from __future__ import annotations

from dataclasses import dataclass, field
from pathlib import Path

STATES = ("queued", "running", "finished", "failed", "stopped")
TERMINAL = frozenset({"finished", "failed", "stopped"})
ACTIVE = frozenset({"queued", "running"})  # a job in one of these may still write: pages keep refreshing


# --- outcomes and status ------------------------------------------------------------------------
@dataclass(frozen=True)
class Launched:
    run_id: str
    run_dir: Path


@dataclass(frozen=True)
class Failed:
    exit_code: int | None  # None: no exit status (never started, died unobserved)
    stderr: str  # the stderr tail or the reason


@dataclass(frozen=True)
class Finished:
    exit_code: int | None  # 0, or None if nobody saw it exit and the trainer's status.json says finished


@dataclass(frozen=True)
class Stopped:
    exit_code: int | None


@dataclass(frozen=True)
class TimedOut:
    pid: int | None  # the trainer's local pid while it runs; None when queued or not a local process


class LauncherError(Exception):
    """A run that cannot be read or found; the message names it."""


class RunNotFound(LauncherError, LookupError):
    pass


class LaunchRefused(LauncherError):
    """A backend refused a launch before starting anything (a queue cap); the launcher removes the run
    folder and returns Failed with this message."""


@dataclass(frozen=True)
class JobStatus:
    state: str  # one of STATES
    step: int | None = None  # last step the trainer reported in status.json
    total_steps: int | None = None  # the trainer's total, from status.json; None until it says
    exit_code: int | None = None  # trainer's exit status; negative: killed by that signal
    error: str | None = None  # failed: stderr tail (last 20 lines), else status.json's error, else why
    started: float | None = None  # unix s the trainer process started
    ended: float | None = None  # unix s it ended (or was found gone)

    def describe(self) -> str:
        """`running 40/120`, `failed (exit 3)`: one short phrase for tables and the CLI."""
        of = f" {self.step or 0}/{self.total_steps}" if self.total_steps else ""
        if self.state == "failed":
            return "failed" + (f" (exit {self.exit_code})" if self.exit_code is not None else "")
        return self.state + ("" if self.state == "queued" else of)

    @property
    def active(self) -> bool:
        """Queued or running: the job may still write to its folder."""
        return self.state in ACTIVE

    @property
    def progress(self) -> float:
        """Share of its steps done, 0..1: 1 once finished, 0 until the trainer reports a total."""
        if self.state == "finished":
            return 1.0
        if self.total_steps and self.step is not None:
            return min(max(self.step / self.total_steps, 0.0), 1.0)
        return 0.0


@dataclass(frozen=True)
class RunStatus:
    run_id: str
    run_dir: Path
    spec: dict
    created: float  # unix s
    frameworks: dict[str, JobStatus] = field(default_factory=dict)
    backend: str = "local"

    @property
    def state(self) -> str:
        """One state for the pair: the first of failed, running, queued, stopped that any job is in."""
        states = {job.state for job in self.frameworks.values()}
        return next((s for s in ("failed", "running", "queued", "stopped") if s in states), "finished")

    @property
    def active(self) -> bool:
        """Whether any of its jobs is queued or running (the other may have failed already)."""
        return any(job.active for job in self.frameworks.values())
