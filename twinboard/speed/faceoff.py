"""Face-offs: one spec trained in every execution mode, as matched pairs launched together and grouped.

The modes (RunSpec `torch_mode`, `tf_mode`): PyTorch eager | compile (torch.compile); TensorFlow
eager | function (tf.function) | xla (tf.function with jit_compile). Five modes, two a pair: three
pairs cover them, and FACEOFF_PAIRS chooses the three that are each worth reading as a pair too:

  eager/eager      both dynamic: each framework's reference for its own loss curve and speed
  eager/function   the default pair, what the Launch page starts
  compile/xla      both compiled: the static graphs against each other

PyTorch eager runs twice, in two pairs. That is on purpose: two runs of one setting show how far
timings move between identical runs (the noise a mode's difference has to beat), and their loss
curves should be bit-identical.

A face-off's runs are launched through `twinboard.runs.launch` like any pair (the queue admits whole
pairs, so each pair trains on a machine its partner alone shares), named `<group>-<torch>-<tf>` so
that `twinboard runs` shows them together, and marked with `"group": <group>` in run.json. launch()
has no field for it, and run.json is the run's own record of what it is, so the group is added there
right after the launch: nothing else writes run.json once it exists.
"""
from __future__ import annotations

import os
import re
import time
from dataclasses import dataclass, field
from pathlib import Path
from typing import Mapping, Sequence

from twinboard.contract import FRAMEWORKS, RUN_JSON, SPEC_JSON, RunSpec, read_json, write_json
from twinboard.contract.files import SettingsError, event_files, read_settings
from twinboard.events import ScalarStore, Series
from twinboard.runs import Failed, Launched, Pair, launch

TORCH_MODES = ("eager", "compile")
TF_MODES = ("eager", "function", "xla")
MODES = {"torch": TORCH_MODES, "tensorflow": TF_MODES}  # each framework's modes, in the order rows show them
MODE_FIELDS = {"torch": "torch_mode", "tensorflow": "tf_mode"}  # the RunSpec field of each framework's mode
FACEOFF_PAIRS = (("eager", "eager"), ("eager", "function"), ("compile", "xla"))  # (torch, tf): see the docstring
GROUP_KEY = "group"  # run.json: the face-off a run belongs to
GROUP_PREFIX = "faceoff-"
MAX_GROUP_CHARS = 100  # a group read back from run.json (a hand edit could hold anything) is cut here


@dataclass(frozen=True)
class Faceoff:
    group: str  # the face-off id, `faceoff-<YYYYmmdd-HHMMSS>[-N]`
    launched: list[Launched]  # in FACEOFF_PAIRS order: the queue runs them in this order
    failed: list[tuple[str, Failed]]  # (run name, why) of every pair that could not be launched


@dataclass(frozen=True, eq=False)
class ModeRun:
    """One framework's side of one run, in the mode it trained in, with what it measured."""
    framework: str | None  # "torch" | "tensorflow"; None for a folder that does not say (an upload)
    mode: str  # the mode asked for (settings requested_mode, else spec.json), else the one it ran in, else "unknown"
    ran: str | None  # the mode it really ran in, from settings.json execution_mode (None: not recorded)
    execution: str | None  # settings.json execution_mode as the trainer wrote it
    note: str | None  # settings.json mode_note: why it ran otherwise, or what the mode implies
    run_id: str  # the pair's folder (`<group>-eager-xla`), or the event run's name for an upload
    name: str  # the event run's name, `<run_id>/<framework>`
    scalars: Mapping[str, Series] = field(default_factory=dict)  # tag -> every point, in write order
    settings: Mapping = field(default_factory=dict)  # settings.json ({} when there is none)
    problems: tuple[str, ...] = ()  # what could not be read, in words

    @property
    def fell_back(self) -> bool:
        """It ran in another mode than it was asked for (torch.compile without a compiler, say)."""
        return self.ran is not None and self.mode != "unknown" and self.ran != self.mode


# --- launching ----------------------------------------------------------------------------------
def new_group(logdir: str | os.PathLike, now: float | None = None) -> str:
    """`faceoff-<YYYYmmdd-HHMMSS>`, with -2, -3 ... when a run of a face-off of that name exists already."""
    base = GROUP_PREFIX + time.strftime("%Y%m%d-%H%M%S", time.localtime(now))
    for n in range(1, 1000):
        group = base if n == 1 else f"{base}-{n}"
        if not any((Path(logdir) / run_name(group, t, f)).exists() for t, f in FACEOFF_PAIRS):
            return group
    raise FileExistsError(f"{base}: 999 face-offs of that name exist already")


def run_name(group: str, torch_mode: str, tf_mode: str) -> str:
    return f"{group}-{torch_mode}-{tf_mode}"


def launch_faceoff(spec: RunSpec, logdir: str | os.PathLike, *, trainer_cmd: Sequence[str] | str | None = None,
                   owner: str | None = None) -> Faceoff:
    """Launch FACEOFF_PAIRS of `spec` (its own torch_mode and tf_mode replaced) as one group.

    Raises SpecError when a mode is not one the spec accepts. A pair the launcher refuses (a full
    queue) is listed in `failed`; the pairs launched before it keep running."""
    root = Path(logdir)
    group = new_group(root)
    launched, failed = [], []
    for torch_mode, tf_mode in FACEOFF_PAIRS:
        name = run_name(group, torch_mode, tf_mode)
        pair_spec = spec.replace(**{MODE_FIELDS["torch"]: torch_mode, MODE_FIELDS["tensorflow"]: tf_mode})
        outcome = launch(pair_spec, root, name, trainer_cmd=trainer_cmd, owner=owner)
        if isinstance(outcome, Failed):
            failed.append((name, outcome))
            continue
        run = read_json(outcome.run_dir / RUN_JSON) or {}
        write_json(outcome.run_dir / RUN_JSON, {**run, GROUP_KEY: group})
        launched.append(outcome)
    return Faceoff(group, launched, failed)


# --- finding face-offs --------------------------------------------------------------------------
def faceoff_groups(logdir: str | os.PathLike) -> dict[str, list[str]]:
    """group -> its run ids (oldest first), for every run whose run.json names a group; the newest
    face-off first (by its newest run's `created`)."""
    root = Path(logdir)
    found: dict[str, list[tuple[float, str]]] = {}
    for run_dir in root.iterdir() if root.is_dir() else ():
        if run_dir.name.startswith("."):
            continue
        run = read_json(run_dir / RUN_JSON) if (run_dir / RUN_JSON).is_file() else None
        group = (run or {}).get(GROUP_KEY)
        if not isinstance(group, str) or not group:
            continue
        created = run.get("created")
        created = float(created) if isinstance(created, (int, float)) and not isinstance(created, bool) else 0.0
        found.setdefault(group[:MAX_GROUP_CHARS], []).append((created, run_dir.name))
    newest = sorted(found, key=lambda g: (max(found[g])[0], g), reverse=True)
    return {g: [name for _, name in sorted(found[g])] for g in newest}


Folder = tuple[str, str, "str | None"]  # (absolute path, event run name, framework)


def group_folders(logdir: str | os.PathLike, group: str) -> list[Folder]:
    """The framework folders of a face-off's runs that exist yet (a queued pair has none)."""
    root, out = Path(logdir), []
    for run_id in faceoff_groups(root).get(group, []):
        for fw in FRAMEWORKS:
            if (root / run_id / fw).is_dir():
                out.append((str(root / run_id / fw), f"{run_id}/{fw}", fw))
    return out


def pair_folders(pair: Pair) -> list[Folder]:
    return [(str(r.path), r.name, r.framework) for r in pair.runs]


def signature(folders: Sequence[Folder]) -> tuple:
    """(file, mtime ns, size) of every event file and settings.json of `folders`: a cache key that
    changes when a trainer writes."""
    out = []
    for path, _, _ in folders:
        for f in [*event_files(path), Path(path) / "settings.json"]:
            try:
                st = f.stat()
            except OSError:
                continue
            out.append((str(f), st.st_mtime_ns, st.st_size))
    return tuple(out)


# --- reading one side ---------------------------------------------------------------------------
def mode_of(framework: str | None, execution: object) -> str | None:
    """The mode name a settings.json `execution_mode` stands for: the name itself, or the words the
    trainers wrote before modes were choosable ("tf.function (graph, jit_compile=False)"); None
    when it says none of them."""
    text = str(execution or "").strip().lower()
    # A mode name first, then the words: "eager (torch.compile unavailable ...)" ran eager.
    first = re.split(r"[^a-z_.]", text, maxsplit=1)[0]
    if first in MODES.get(framework or "", ()):
        return first
    if framework == "torch":
        return "compile" if "compile" in text else None
    if "xla" in text or re.search(r"jit_compile\s*=\s*true", text):
        return "xla"
    return "function" if "tf.function" in text or "graph" in text else None


def read_mode_run(folder: str | os.PathLike, name: str, framework: str | None) -> ModeRun:
    """Settings, spec and scalars of one framework folder, read once (damage listed in `problems`)."""
    folder, problems = Path(folder), []
    try:
        settings = read_settings(folder) or {}
    except SettingsError as err:
        settings = {}
        problems.append(str(err))
    store = ScalarStore(folder, headroom=False)
    try:
        store.refresh()
    except (OSError, ValueError) as err:
        problems.append(f"{name}: {err}")
    problems += [str(p) for p in store.problems()]
    scalars = {t: store.series(".", t) for t in store.tags(".")} if "." in store.runs() else {}
    spec = read_json(folder.parent / SPEC_JSON) or {}
    requested = settings.get("requested_mode") or spec.get(MODE_FIELDS.get(framework or "", ""))
    execution = settings.get("execution_mode")
    ran = mode_of(framework, execution) if execution is not None else None
    mode = str(requested) if requested else ran or "unknown"
    run_id = name.rsplit("/", 1)[0] if framework and "/" in name else name
    note = settings.get("mode_note")
    return ModeRun(framework, mode, ran, None if execution is None else str(execution),
                   str(note) if note else None, run_id, name, scalars, settings, tuple(problems))


def read_runs(folders: Sequence[Folder]) -> list[ModeRun]:
    """Every folder read (read_mode_run), ordered by framework, then mode, then run id."""
    runs = [read_mode_run(path, name, fw) for path, name, fw in folders]
    return sorted(runs, key=order_key)


def order_key(run: ModeRun) -> tuple:
    fw_rank = FRAMEWORKS.index(run.framework) if run.framework in FRAMEWORKS else len(FRAMEWORKS)
    modes = MODES.get(run.framework or "", ())
    return fw_rank, modes.index(run.mode) if run.mode in modes else len(modes), run.run_id, run.name
