"""Tag mapping and x-axis alignment: foreign logs (Keras, tensorboardX, torch, TF1) onto our tags.

A `Mapping` is a short ordered table of rules `(run pattern, tag pattern) -> our tag`, plus the
factors that turn a logged step into an x value: optimizer steps, epochs or samples seen. An upload
keeps its mapping in `logs/uploads/<name>/twinboard_mapping.json`; a local run needs no rules (its
tags are ours already) and gets its factors from `spec.json` and `status.json`.

Rule semantics (first matching rule wins; a (run, tag) no rule matches keeps its tag):
- `run` and `tag` are regular expressions matched against the WHOLE run name and the whole tag
  (re.fullmatch). Write `(?:.*/)?train` to match a folder called `train` anywhere, so a rule works
  whether the run column holds `train`, `uploads/bob/train` or an absolute path.
- A named group of the run pattern can be required again in the tag pattern with `(?P=name)`.
- `to` is a `str.format` template over the named groups (`"{metric}/{split}"`). Captured values
  are lower-cased and passed through `ALIASES` (validation -> val, acc -> accuracy, ...).
  An empty `to` drops the series.
- `step_unit` says what the logged step counts ("step": optimizer steps, "epoch": epochs) and
  `step_offset` is added first: Keras logs `epoch_loss` at epoch e (0-based) after finishing e+1
  epochs, hence its rules use step_unit="epoch", step_offset=1.
"""
from __future__ import annotations

import json
import os
import re
from dataclasses import asdict, dataclass, replace
from pathlib import Path

import numpy as np
import pandas as pd

MAPPING_FILE = "twinboard_mapping.json"
X_AXES = ("step", "epoch", "samples")
STEP_UNITS = ("step", "epoch")
SPLITS = "train|training|val|valid|validation|eval|evaluation"  # folder/tag words naming a split
ALIASES = {"training": "train", "validation": "val", "valid": "val", "eval": "val",
           "evaluation": "val", "acc": "accuracy", "learning_rate": "lr"}
_SEP = "\x00"  # joins run and tag so one regex sees both (names never hold NUL)


class MappingError(ValueError):
    """A mapping that cannot be used (bad regex, bad field, missing factor); the message says which."""


@dataclass(frozen=True)
class Rule:
    run: str  # regex, full match on the run name (posix path); "(?:.*/)?train" = a folder named train
    tag: str  # regex, full match on the tag; may repeat a run group with (?P=name)
    to: str  # our tag, str.format over the named groups ("{metric}/{split}"); "" drops the series
    step_unit: str = "step"  # what the logged step counts: "step" (optimizer steps) or "epoch"
    step_offset: int = 0  # added to the logged step before converting (Keras epochs: 1)

    def compiled(self) -> re.Pattern:
        if self.step_unit not in STEP_UNITS:
            raise MappingError(f"rule {self.run!r}/{self.tag!r}: step_unit={self.step_unit!r} must be "
                               f"one of {', '.join(STEP_UNITS)}")
        try:
            return re.compile(f"(?:{self.run}){_SEP}(?:{self.tag})")
        except re.error as e:
            raise MappingError(f"rule {self.run!r}/{self.tag!r}: not a valid regex: {e}") from None


@dataclass(frozen=True)
class Mapping:
    rules: tuple[Rule, ...] = ()  # first match wins; no match keeps the tag
    steps_per_epoch: float | None = None  # optimizer steps per epoch (epoch <-> step); None = unknown
    batch_size: int | None = None  # samples per optimizer step (samples seen); None = unknown
    x_axis: str = "step"  # the x the page offers first: step | epoch | samples
    merge_siblings: tuple[str, ...] = ()  # folder names read as ONE run with each other (Keras: train, validation)
    merge_children: str = ""  # regex on a sub-folder's path below a run: read as part of that run (add_scalars)

    def __post_init__(self) -> None:
        object.__setattr__(self, "rules", tuple(r if isinstance(r, Rule) else Rule(**r) for r in self.rules))
        object.__setattr__(self, "merge_siblings", tuple(self.merge_siblings))
        if self.x_axis not in X_AXES:
            raise MappingError(f"x_axis={self.x_axis!r} must be one of {', '.join(X_AXES)}")
        for name in ("steps_per_epoch", "batch_size"):
            v = getattr(self, name)
            if v is not None and (isinstance(v, bool) or not isinstance(v, (int, float)) or not v > 0):
                raise MappingError(f"{name}={v!r} must be a positive number or null")
        for r in self.rules:
            r.compiled()

    def to_dict(self) -> dict:
        d = asdict(self)
        d["rules"], d["merge_siblings"] = [asdict(r) for r in self.rules], list(self.merge_siblings)
        return {"version": 1, **d}

    @classmethod
    def from_dict(cls, d: dict) -> "Mapping":
        d = dict(d)
        d.pop("version", None)
        unknown = sorted(set(d) - set(cls.__dataclass_fields__))
        if unknown:
            raise MappingError(f"mapping has no field {', '.join(map(repr, unknown))}")
        try:
            return cls(**d)
        except TypeError as e:  # a rule with a missing or unknown field
            raise MappingError(f"bad rule: {e}") from None

    def replace(self, **changes) -> "Mapping":
        return replace(self, **changes)


def _r(run: str, tag: str, to: str, unit: str = "step", offset: int = 0) -> Rule:
    return Rule(run, tag, to, unit, offset)


# Keras' TensorBoard callback: train/ and validation/ with epoch_* at step = epoch index.
KERAS_RULES = (
    # evaluation_<m>_vs_iterations repeats epoch_<m> of validation/ at step = iterations: dropped so
    # that x = epoch needs no steps_per_epoch (infer_steps_per_epoch reads it before mapping).
    _r("(?:.*/)?validation", "evaluation_.+_vs_iterations", ""),
    _r("(?:.*/)?train", "epoch_(?:learning_rate|lr)", "lr", "epoch", 1),
    _r(f"(?:.*/)?(?P<split>train|validation)", "epoch_(?P<metric>.+)", "{metric}/{split}", "epoch", 1),
)
# add_scalars (tensorboardX: <main>/<key>/, torch: <main>_<key>/) and TF1/torch-tutorial tags.
GENERIC_RULES = (
    _r(f"(?:.*/)?(?P<metric>[^/]+)[/_](?i:(?P<split>{SPLITS}))", "(?P=metric)", "{metric}/{split}"),
    _r(".*", f"(?i:(?P<metric>loss|accuracy|acc)[/_](?P<split>{SPLITS}))", "{metric}/{split}"),
    _r(".*", f"(?i:(?P<split>{SPLITS})[/_](?P<metric>loss|accuracy|acc))", "{metric}/{split}"),
    _r(f"(?:.*/)?(?i:(?P<split>{SPLITS}))(?:_[^/]*)?", "(?i:(?P<metric>loss|accuracy|acc))", "{metric}/{split}"),
    _r(".*", "(?i:(?P<metric>loss|accuracy|acc))", "{metric}/train"),
    _r(".*", "(?i:lr|learning[_-]rate)", "lr"),
)
# Sub-folders read as part of the run above them: add_scalars sub-runs (`loss/train`, `loss_train`)
# and TF1 estimator-style `eval/`.
CHILDREN = f"(?:[^/]+(?:/[^/]+)*[/_])?(?i:{SPLITS})"


def default_mapping(run_names: list[str] | tuple[str, ...] = (), steps_per_epoch: float | None = None,
                    batch_size: int | None = None) -> Mapping:
    """The rules offered for a new upload; the Keras layout (sibling train/ and validation/ among
    `run_names`) gets x = epoch, since Keras logs epoch_* once per epoch."""
    names = set(run_names)
    keras = any(n.endswith("train") and n.removesuffix("train") + "validation" in names
                and (n == "train" or n.endswith("/train")) for n in names)
    return Mapping(KERAS_RULES + GENERIC_RULES, steps_per_epoch, batch_size,
                   "epoch" if keras else "step", ("train", "validation"), CHILDREN)


def infer_steps_per_epoch(df: pd.DataFrame) -> float | None:
    """Keras validation/ logs epoch_<m> at epoch e and evaluation_<m>_vs_iterations at (e+1) * S
    steps: S when every pair agrees, else None. `df`: read_scalars-shaped, unmapped."""
    tags = set(df["tag"].astype(str))
    for tag in sorted(tags):
        m = re.fullmatch(r"evaluation_(.+)_vs_iterations", tag)
        if m and f"epoch_{m.group(1)}" in tags:
            for _, g in df.groupby(df["run"].astype(str), sort=True):
                it = g.loc[g["tag"].astype(str) == tag, "step"].to_numpy(dtype="float64")
                ep = g.loc[g["tag"].astype(str) == f"epoch_{m.group(1)}", "step"].to_numpy(dtype="float64")
                n = min(len(it), len(ep))
                if n:
                    s = it[:n] / (ep[:n] + 1)
                    if np.allclose(s, s[0]) and s[0] > 0:
                        return float(s[0])
    return None


def load(path: str | os.PathLike) -> Mapping:
    """A mapping file (or the folder holding one); MappingError names the file when it is bad."""
    p = Path(path)
    p = p / MAPPING_FILE if p.is_dir() else p
    try:
        return Mapping.from_dict(json.loads(p.read_text()))
    except (OSError, ValueError) as e:
        raise MappingError(f"{p}: {e}") from None


def save(mapping: Mapping, path: str | os.PathLike) -> Path:
    """Write atomically (temp file + rename) into `path` (a folder, or the file itself)."""
    p = Path(path)
    p = p / MAPPING_FILE if p.is_dir() else p
    tmp = p.with_name(f".{p.name}.tmp")
    tmp.write_text(json.dumps(mapping.to_dict(), indent=2) + "\n")
    os.replace(tmp, p)
    return p


def _target(rx: re.Pattern, rule: Rule, run: str, tag: str) -> str | None:
    m = rx.fullmatch(f"{run}{_SEP}{tag}")
    if not m:
        return None
    groups = {k: ALIASES.get(v.lower(), v.lower()) for k, v in m.groupdict().items() if v is not None}
    try:
        return rule.to.format(**groups)
    except (KeyError, IndexError, ValueError) as e:
        raise MappingError(f"rule {rule.run!r}/{rule.tag!r}: 'to'={rule.to!r} needs group {e}") from None


def resolve(run: str, tag: str, mapping: Mapping) -> tuple[str, Rule | None]:
    """Our tag for one (run, tag) and the rule that gave it (None: no rule, tag kept)."""
    for rule in mapping.rules:
        to = _target(rule.compiled(), rule, run, tag)
        if to is not None:
            return to, rule
    return tag, None


def apply(df: pd.DataFrame, mapping: Mapping, x_axis: str | None = None) -> pd.DataFrame:
    """`read_scalars`-shaped frame -> same rows with our tags and an `x` column.

    In: columns run, tag, step, wall_time, value (others kept). Out: a copy where `tag` is our tag,
    `source_tag` the logged one, `x` (float64) the chosen axis (`x_axis`, default mapping.x_axis),
    rows of dropped series removed, sorted by run, tag, x. `step` stays as logged.
    MappingError when the axis needs steps_per_epoch / batch_size that the mapping lacks.
    """
    x_axis = x_axis or mapping.x_axis
    if x_axis not in X_AXES:
        raise MappingError(f"x_axis={x_axis!r} must be one of {', '.join(X_AXES)}")
    out = df.copy()
    if out.empty:
        return out.assign(source_tag=out["tag"], x=pd.Series(dtype="float64"))
    codes, keys = pd.factorize(pd.MultiIndex.from_arrays([out["run"].astype(str), out["tag"].astype(str)]))
    to, unit, offset = [], [], []
    for run, tag in keys:
        t, rule = resolve(run, tag, mapping)
        to.append(t)
        unit.append(rule is not None and rule.step_unit == "epoch")
        offset.append(rule.step_offset if rule else 0)
    to_arr = np.array(to, dtype=object)[codes]
    keep = to_arr != ""  # "" = the rule drops this series
    logged = (out["step"].to_numpy(dtype="float64") + np.array(offset, dtype="float64")[codes])[keep]
    per_epoch = np.array(unit, dtype=bool)[codes][keep]
    out = out.assign(source_tag=out["tag"].astype(str), tag=to_arr)[keep]
    out["tag"] = out["tag"].astype(str)
    out["x"] = _to_x(logged, per_epoch, x_axis, mapping, out)
    return out.sort_values(["run", "tag", "x"], kind="stable").reset_index(drop=True)


def to_x(steps: np.ndarray, rule: Rule | None, mapping: Mapping, x_axis: str | None = None) -> np.ndarray:
    """x values (float64) for one series' logged steps, `rule` as `resolve` returned it.

    For callers that hold series rather than frames (the Scalars page's ScalarStore, on every
    refresh): the same arithmetic as `apply`, one factor for the whole series, no temporaries."""
    x_axis = x_axis or mapping.x_axis
    if x_axis not in X_AXES:
        raise MappingError(f"x_axis={x_axis!r} must be one of {', '.join(X_AXES)}")
    logged = np.asarray(steps, dtype="float64")
    if rule is not None and rule.step_offset:
        logged = logged + rule.step_offset
    if logged.size == 0:
        return logged
    per_epoch = rule is not None and rule.step_unit == "epoch"

    def need(name: str) -> float:
        value = getattr(mapping, name)
        if value is None:
            raise MappingError(f"x axis {x_axis!r} needs {name}: set it in the mapping")
        return float(value)

    if x_axis == "epoch":
        return logged if per_epoch else logged / need("steps_per_epoch")
    optimizer_steps = logged * need("steps_per_epoch") if per_epoch else logged
    return optimizer_steps if x_axis == "step" else optimizer_steps * need("batch_size")


def _to_x(logged: np.ndarray, per_epoch: np.ndarray, x_axis: str, m: Mapping,
          rows: pd.DataFrame | None) -> np.ndarray:
    if x_axis not in X_AXES:
        raise MappingError(f"x_axis={x_axis!r} must be one of {', '.join(X_AXES)}")

    def need(name: str, mask: np.ndarray) -> float:
        value = getattr(m, name)
        if value is None and mask.any():
            where = ""
            if rows is not None:
                i = int(np.argmax(mask))
                where = f" for {rows['run'].iat[i]!r} {rows['source_tag'].iat[i]!r}"
            raise MappingError(f"x axis {x_axis!r} needs {name}{where}: set it in the mapping")
        return float(value) if value is not None else np.nan

    if x_axis == "epoch":
        return np.where(per_epoch, logged, logged / need("steps_per_epoch", ~per_epoch))
    steps = np.where(per_epoch, logged * need("steps_per_epoch", per_epoch), logged)
    return steps if x_axis == "step" else steps * need("batch_size", np.ones_like(per_epoch))


def for_local_run(run_path: str | os.PathLike) -> Mapping:
    """Factors of a run the launcher started (`<run-id>/<framework>`): no rules, x from its spec.

    steps_per_epoch = status.json total_steps / spec epochs (exact unless spec.steps cut it short),
    batch_size = spec batch_size. Missing or unreadable files leave the factor unknown (None).
    """
    folder = Path(run_path)
    spb, bs = None, None
    try:
        spec = json.loads((folder.parent / "spec.json").read_text())
        bs = int(spec["batch_size"])
        status = json.loads((folder / "status.json").read_text())
        if not spec.get("steps") and spec.get("epochs") and status.get("total_steps"):
            spb = float(status["total_steps"]) / float(spec["epochs"])
    except (OSError, ValueError, KeyError, TypeError):
        pass
    return Mapping(steps_per_epoch=spb, batch_size=bs)


def upload_root(run_path: str | os.PathLike, logdir: str | os.PathLike) -> Path | None:
    """`<logdir>/uploads/<name>` when run_path lies in an upload, else None."""
    root, p = Path(logdir).resolve() / "uploads", Path(run_path).resolve()
    if root not in p.parents:
        return None
    return root / p.relative_to(root).parts[0]


def mapping_for_run(run_path: str | os.PathLike, logdir: str | os.PathLike) -> Mapping:
    """The upload's saved mapping (default rules if it has none), or a local run's factors."""
    up = upload_root(run_path, logdir)
    if up is None:
        return for_local_run(run_path)
    if (up / MAPPING_FILE).exists():
        return load(up / MAPPING_FILE)
    return default_mapping()


def companions(run_path: str | os.PathLike, mapping: Mapping) -> list[Path]:
    """Other event folders that the mapping reads as part of this run, sorted.

    Siblings: when the run folder is named in `merge_siblings` (Keras `train`), its siblings named
    there too (`validation`). Children: folders below it whose relative path matches `merge_children`
    (tensorboardX `loss/train`, torch `loss_train`).
    """
    p = Path(run_path)
    found: set[Path] = set()
    if p.name in mapping.merge_siblings:
        found |= {p.parent / s for s in mapping.merge_siblings if s != p.name and _has_events(p.parent / s)}
    if mapping.merge_children:
        rx = re.compile(mapping.merge_children)
        for dirpath, dirnames, filenames in os.walk(p):
            dirnames[:] = [d for d in dirnames if not d.startswith(".")]
            rel = Path(dirpath).relative_to(p).as_posix()
            if rel != "." and rx.fullmatch(rel) and any("tfevents" in f for f in filenames):
                found.add(Path(dirpath))
    return sorted(found)


def _has_events(folder: Path) -> bool:
    return folder.is_dir() and any("tfevents" in f.name for f in folder.iterdir())


def folder_scalars(folder: str | os.PathLike, run: str) -> pd.DataFrame:
    """Scalars of the event files directly in `folder` (not its sub-folders), `run` on every row."""
    from twinboard import events  # our reader; no framework behind it

    files = sorted(p for p in Path(folder).iterdir() if p.is_file() and "tfevents" in p.name)
    frames = [events.read_scalars(f) for f in files]
    df = pd.concat(frames, ignore_index=True) if frames else pd.DataFrame(
        {"run": [], "tag": [], "step": np.empty(0, np.int64), "wall_time": [], "value": []})
    return df.assign(run=run, tag=df["tag"].astype(str))


def read_mapped(run_path: str | os.PathLike, run_name: str, logdir: str | os.PathLike,
                x_axis: str | None = None, mapping: Mapping | None = None) -> pd.DataFrame:
    """One picked run, ready to chart beside another: its scalars and its companions', mapped.

    The rules see each folder's name relative to the logdir (`uploads/bob/train`,
    `uploads/bob/validation`); the result's `run` is `run_name` on every row.
    Columns: run, tag, step, wall_time, value, source_tag, x.
    """
    mapping = mapping or mapping_for_run(run_path, logdir)
    root = Path(logdir).resolve()
    folders = [Path(run_path).resolve(), *(p.resolve() for p in companions(run_path, mapping))]
    df = pd.concat([folder_scalars(f, f.relative_to(root).as_posix()) for f in folders], ignore_index=True)
    return apply(df, mapping, x_axis).assign(run=run_name)


# --- series held in memory (the Scalars page's ScalarStore), looked up by our tag ------------------
Source = tuple[str, str, Rule | None]  # (store run, logged tag, the rule that mapped it)


@dataclass(frozen=True)
class MappedRun:
    """One picked run as the Scalars page draws it: our tags and the logged series behind each."""
    name: str  # the picked run (posix path relative to the logdir, as the store names runs)
    mapping: Mapping
    sources: tuple[str, ...]  # store runs read as this run: itself, then its companions
    tags: dict[str, tuple[Source, ...]]  # our tag -> its series, in `sources` order; dropped ones absent


def source_runs(name: str, path: str | os.PathLike, logdir: str | os.PathLike, mapping: Mapping) -> list[str]:
    """Run `name` (folder `path`) and its companions, named like it (posix, relative to `logdir`)."""
    return [name, *(Path(os.path.relpath(p, logdir)).as_posix() for p in companions(path, mapping))]


def map_run(name: str, path: str | os.PathLike, logdir: str | os.PathLike, mapping: Mapping,
            tags_of) -> MappedRun:
    """Resolve every logged tag of run `name` (folder `path`) and of its companions through `mapping`.
    `tags_of(store_run) -> iterable of logged tags` ([] for a run the store does not hold)."""
    names = source_runs(name, path, logdir, mapping)
    tags: dict[str, list[Source]] = {}
    for run in names:
        for tag in tags_of(run):
            ours, rule = resolve(run, tag, mapping)
            if ours:
                tags.setdefault(ours, []).append((run, tag, rule))
    return MappedRun(name, mapping, tuple(names), {t: tuple(s) for t, s in sorted(tags.items())})


def mapped_series(run: MappedRun, tag: str, series_of, x_axis: str | None
                  ) -> tuple[np.ndarray, np.ndarray, np.ndarray, np.ndarray | None]:
    """(step, wall_time, value, x) of our `tag` in `run`; `series_of(store_run, logged_tag)` gives
    (step, wall_time, value) arrays. x: to_x on `x_axis` (None: not computed, for time axes).
    One source comes back as stored (write order); several are joined and ordered by x (by wall
    time without one). MappingError when the axis needs a factor the mapping lacks."""
    parts = []
    for store_run, logged, rule in run.tags.get(tag, ()):
        step, wall, value = series_of(store_run, logged)[:3]
        x = None if x_axis is None else to_x(step, rule, run.mapping, x_axis)
        parts.append((step, wall, value, x))
    if not parts:
        empty = np.empty(0)
        return np.empty(0, np.int64), empty, empty, (None if x_axis is None else empty)
    if len(parts) == 1:
        return parts[0]
    step, wall, value = (np.concatenate([p[i] for p in parts]) for i in range(3))
    x = None if x_axis is None else np.concatenate([p[3] for p in parts])
    order = np.argsort(wall if x is None else x, kind="stable")
    return step[order], wall[order], value[order], (None if x is None else x[order])
