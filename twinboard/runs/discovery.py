"""Finding runs in a logdir and pairing them, PyTorch with TensorFlow.

An *event run* is a folder that holds event files, named by its posix path relative to the logdir
(TensorBoard's notion of a run): `20261126-101500-digits-mlp-sgd/torch`, `uploads/bob/train`.
A *pair* is what every page compares: a left (PyTorch) and a right (TensorFlow) event run. A local
matched run gives one pair by itself; any two event runs, uploaded ones included, can be paired.
"""
from __future__ import annotations

import os
from dataclasses import dataclass
from pathlib import Path

from twinboard.contract.files import UPLOADS, is_event_file


class OutsideLogdirError(ValueError):
    """A path that would leave the logdir (`..`, absolute, or a link pointing out)."""


@dataclass(frozen=True)
class EventRun:
    name: str  # posix path relative to the logdir; "." for event files directly in it
    path: Path  # absolute folder
    framework: str | None  # "torch" / "tensorflow" when the folder says so, else None
    source: str  # "local" or "uploaded"

    @property
    def group(self) -> str:
        """The run folder a framework folder belongs to (`<run-id>` for `<run-id>/torch`)."""
        return self.name.rsplit("/", 1)[0] if "/" in self.name else self.name

    @property
    def label(self) -> str:
        mark = " (uploaded)" if self.source == "uploaded" else ""
        return f"{self.name}{mark}"


@dataclass(frozen=True)
class Pair:
    left: EventRun  # PyTorch side by convention
    right: EventRun  # TensorFlow side
    label: str  # what the picker shows

    @property
    def runs(self) -> tuple[EventRun, EventRun]:
        return self.left, self.right


def safe_path(logdir: str | os.PathLike, rel: str | os.PathLike) -> Path:
    """`logdir/rel`, resolved, refusing anything that ends up outside the logdir."""
    root = Path(logdir).resolve()
    rel = Path(rel)
    if rel.is_absolute():
        raise OutsideLogdirError(f"{str(rel)!r} is an absolute path; paths must stay inside {root}")
    target = (root / rel).resolve()
    if target != root and root not in target.parents:
        raise OutsideLogdirError(f"{str(rel)!r} points outside the logdir {root}")
    return target


def _framework(name: str) -> str | None:
    last = name.rsplit("/", 1)[-1].lower()
    if last in ("torch", "pytorch"):
        return "torch"
    if last in ("tensorflow", "tf"):
        return "tensorflow"
    return None


def list_event_runs(logdir: str | os.PathLike) -> list[EventRun]:
    """Every folder under logdir holding an event file, sorted by name. Hidden folders skipped."""
    root = Path(logdir)
    if not root.is_dir():
        return []
    found: list[EventRun] = []
    for dirpath, dirnames, filenames in os.walk(root):
        dirnames[:] = sorted(d for d in dirnames if not d.startswith("."))
        if any(map(is_event_file, filenames)):
            rel = Path(dirpath).relative_to(root).as_posix()
            source = "uploaded" if rel == UPLOADS or rel.startswith(UPLOADS + "/") else "local"
            found.append(EventRun(rel, Path(dirpath), _framework(rel), source))
    return sorted(found, key=lambda r: r.name)


def list_pairs(logdir: str | os.PathLike) -> list[Pair]:
    """Matched pairs: folders that hold both a torch/ and a tensorflow/ event run, newest first.

    Run ids start with a timestamp, so reverse name order is newest first.
    """
    by_group: dict[str, dict[str, EventRun]] = {}
    for run in list_event_runs(logdir):
        if run.framework and "/" in run.name:
            by_group.setdefault(run.group, {})[run.framework] = run
    pairs = [Pair(fw["torch"], fw["tensorflow"], group)
             for group, fw in by_group.items() if len(fw) == 2]
    return sorted(pairs, key=lambda p: p.label, reverse=True)


def make_pair(left: EventRun, right: EventRun) -> Pair:
    return Pair(left, right, f"{left.name} vs {right.name}")
