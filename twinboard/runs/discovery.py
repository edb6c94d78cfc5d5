"""Finding runs in a logdir and pairing them, PyTorch with TensorFlow.

An *event run* is a folder that holds event files, named by its posix path relative to the logdir
(TensorBoard's notion of a run): `20261126-101500-digits-mlp-sgd/torch`, `uploads/bob/train`.
A *pair* is what every page compares: a left (PyTorch) and a right (TensorFlow) event run. A local
matched run gives one pair by itself; any two event runs, uploaded ones included, can be paired.
A *choice* is what a visitor picked, in the words of the URL (`?pair=<label>` or
`?left=<run>&right=<run>`), so that a link or a bookmark opens the same view.
"""
from __future__ import annotations

import os
from collections.abc import Mapping
from dataclasses import dataclass
from pathlib import Path

from twinboard.contract.files import FRAMEWORKS, RUN_JSON, UPLOADS, event_files, is_event_file, read_json

MAX_QUERY_CHARS = 1000  # a query value longer than any run name we list is cut here, before it is compared


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

    @property
    def uploaded(self) -> bool:
        return "uploaded" in (self.left.source, self.right.source)

    @property
    def shown(self) -> str:
        """The label as a picker shows it: uploads marked, so they never pass for a local run."""
        return f"{self.label} (uploaded)" if self.uploaded else self.label


@dataclass(frozen=True)
class Choice:
    """What a visitor compares, as the URL says it: a matched pair by label, or any two event runs."""
    pair: str | None = None  # a Pair's label; when set, left and right are None
    left: str | None = None  # event run names ("<run-id>/torch", "uploads/bob/train") when pair is None
    right: str | None = None

    def query(self) -> dict[str, str]:
        """The query string's parameters for this choice."""
        return {"pair": self.pair} if self.pair is not None else {"left": self.left or "", "right": self.right or ""}


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
    """Matched pairs: folders that hold both a torch/ and a tensorflow/ event run. Local pairs come
    first, newest first, then uploaded ones, newest first.

    Newest by the launcher's `created` in run.json, else the folder's mtime: not by name, since a
    run named by hand ("zz-baseline") says nothing about when it ran.
    """
    root = Path(logdir)
    by_group: dict[str, dict[str, EventRun]] = {}
    for run in list_event_runs(root):
        if run.framework and "/" in run.name:
            by_group.setdefault(run.group, {})[run.framework] = run
    pairs = [Pair(fw["torch"], fw["tensorflow"], group)
             for group, fw in by_group.items() if len(fw) == 2]
    pairs.sort(key=lambda p: (_created(root / p.label), p.label), reverse=True)
    return sorted(pairs, key=lambda p: p.uploaded)  # stable: each group keeps its newest-first order


def _created(folder: Path) -> float:
    """Unix s a run folder was made: run.json's `created`, else the folder's mtime (0 if unreadable)."""
    created = (read_json(folder / RUN_JSON) or {}).get("created")
    if isinstance(created, (int, float)) and not isinstance(created, bool):
        return float(created)
    try:
        return folder.stat().st_mtime
    except OSError:
        return 0.0


def make_pair(left: EventRun, right: EventRun) -> Pair:
    return Pair(left, right, f"{left.name} vs {right.name}")


def has_events(run_dir: str | os.PathLike) -> bool:
    """Whether both framework folders of a launcher run hold an event file: then it is a listed pair."""
    return all(event_files(Path(run_dir) / fw) for fw in FRAMEWORKS)


# --- what a visitor chose ------------------------------------------------------------------------
def choice_from_query(params: Mapping[str, str]) -> Choice | None:
    """The choice a URL's query parameters name (`pair`, else `left` and `right`), or None when they
    name none. Values are cut to MAX_QUERY_CHARS; whether they name a listed run is `resolve_choice`'s."""
    def get(name: str) -> str | None:
        value = params.get(name)
        return None if value is None else str(value)[:MAX_QUERY_CHARS]

    if get("pair") is not None:
        return Choice(pair=get("pair"))
    if get("left") is not None or get("right") is not None:
        return Choice(left=get("left") or "", right=get("right") or "")
    return None


def default_choice(pairs: list[Pair], event_runs: list[EventRun]) -> Choice | None:
    """The newest local pair (`pairs` as list_pairs orders them), else the first uploaded pair, else
    the first torch and the first tensorflow event run (any two runs); None when there is no run."""
    if pairs:
        return Choice(pair=pairs[0].label)  # list_pairs puts local pairs first, newest first
    if not event_runs:
        return None
    left = next((r for r in event_runs if r.framework == "torch"), event_runs[0])
    right = next((r for r in event_runs if r.framework == "tensorflow"), event_runs[min(1, len(event_runs) - 1)])
    return Choice(left=left.name, right=right.name)


def resolve_choice(choice: Choice | None, pairs: list[Pair], event_runs: list[EventRun]) -> Pair | None:
    """The pair `choice` names among the listed ones, or None when it names something not listed."""
    if choice is None:
        return None
    if choice.pair is not None:
        return next((p for p in pairs if p.label == choice.pair), None)
    by_name = {r.name: r for r in event_runs}
    if choice.left in by_name and choice.right in by_name:
        return make_pair(by_name[choice.left], by_name[choice.right])
    return None
