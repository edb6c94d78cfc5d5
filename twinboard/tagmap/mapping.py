"""Tag mapping and x-axis alignment: foreign logs (Keras, tensorboardX, torch, TF1) onto our tags.

Applies a `Mapping` (see `twinboard.tagmap.rules` for the rules, their semantics, the defaults and
the mapping file) to `read_scalars`-shaped frames (`apply`, `read_mapped`) and to series held in
memory (`map_run`, `mapped_series`), and finds the folders read as one run (`companions`).
"""
from __future__ import annotations

import os
from dataclasses import dataclass
from pathlib import Path

import numpy as np
import pandas as pd

from twinboard.contract.files import event_files, is_event_file
from twinboard.tagmap.patterns import compile_pattern
from twinboard.tagmap.rules import X_AXES, Mapping, MappingError, Rule, mapping_for_run


def resolve(run: str, tag: str, mapping: Mapping) -> tuple[str, Rule | None]:
    """Our tag for one (run, tag) and the rule that gave it (None: no rule, tag kept)."""
    for rule in mapping.rules:
        to = rule.compiled().target(run, tag)
        if to is not None:
            return to, rule
    return tag, None


def preview(df: pd.DataFrame, mapping: Mapping) -> tuple[pd.DataFrame, str | None]:
    """What `mapping` does to a `read_scalars`-shaped frame: each (run, logged tag) once beside the
    tag it becomes ("(dropped)": a dropped series), columns run, logged tag, our tag; and why the
    mapping's x axis cannot be computed (a missing factor), or None when it can. MappingError when a
    rule cannot be applied (a 'to' that makes an over-long tag)."""
    pairs = df[["run", "tag"]].astype(str).drop_duplicates().reset_index(drop=True)
    ours = [resolve(r, t, mapping)[0] or "(dropped)" for r, t in pairs.itertuples(index=False)]
    try:
        apply(df, mapping)
        problem = None
    except MappingError as e:
        problem = str(e)
    return pairs.rename(columns={"tag": "logged tag"}).assign(**{"our tag": ours}), problem


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


def companions(run_path: str | os.PathLike, mapping: Mapping) -> list[Path]:
    """Other event folders that the mapping reads as part of this run, sorted.

    Siblings: when the run folder is named in `merge_siblings` (Keras `train`), its siblings named
    there too (`validation`). Children: folders below it whose relative path matches `merge_children`
    (tensorboardX `loss/train`, torch `loss_train`).
    """
    p = Path(run_path)
    found: set[Path] = set()
    if p.name in mapping.merge_siblings:
        found |= {p.parent / s for s in mapping.merge_siblings if s != p.name and event_files(p.parent / s)}
    if mapping.merge_children:
        rx = compile_pattern(mapping.merge_children, "merge_children")  # checked when the mapping was made
        for dirpath, dirnames, filenames in os.walk(p):
            dirnames[:] = [d for d in dirnames if not d.startswith(".")]
            rel = Path(dirpath).relative_to(p).as_posix()
            if rel != "." and rx.fullmatch(rel) and any(map(is_event_file, filenames)):
                found.add(Path(dirpath))
    return sorted(found)


def folder_scalars(folder: str | os.PathLike, run: str) -> pd.DataFrame:
    """Scalars of the event files directly in `folder` (not its sub-folders), `run` on every row.
    FileNotFoundError for a missing folder."""
    from twinboard import events

    if not Path(folder).is_dir():
        raise FileNotFoundError(f"no such folder: {folder}")
    frames = [events.read_scalars(f) for f in event_files(folder)]
    df = pd.concat(frames, ignore_index=True) if frames else pd.DataFrame(
        {"run": [], "tag": [], "step": np.empty(0, np.int64), "wall_time": [], "value": []})
    return df.assign(run=run, tag=df["tag"].astype(str))


def upload_scalars(folder: str | os.PathLike) -> pd.DataFrame:
    """Scalars of every event folder in an upload (hidden folders skipped), `run` = the folder's path
    relative to `folder` ("." for files at its top), as the upload's runs are listed."""
    root = Path(folder)
    frames = []
    for dirpath, dirnames, filenames in os.walk(root):
        dirnames[:] = sorted(d for d in dirnames if not d.startswith("."))
        if any(map(is_event_file, filenames)):
            frames.append(folder_scalars(dirpath, Path(dirpath).relative_to(root).as_posix()))
    return pd.concat(frames, ignore_index=True) if frames else folder_scalars(root, ".").iloc[:0]


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
