"""Tag-mapping rules: what a mapping is, the rules offered by default, and where one is kept.

A `Mapping` is a short ordered table of rules `(run pattern, tag pattern) -> our tag`, plus the
factors that turn a logged step into an x value: optimizer steps, epochs or samples seen. An upload
keeps its mapping in `logs/uploads/<name>/twinboard_mapping.json`; a local run needs no rules (its
tags are ours already) and gets its factors from `spec.json` and `status.json`. Applying a mapping
to frames and series is `twinboard.tagmap.mapping`.

Rule semantics (first matching rule wins; a (run, tag) no rule matches keeps its tag):
- `run` and `tag` are regular expressions matched against the WHOLE run name and the whole tag.
  They are RE2 patterns (`twinboard.tagmap.patterns`: linear-time, so a visitor's rule cannot hang
  the app; no lookaround, `\\w` is ASCII), at most 500 characters each. Write `(?:.*/)?train` to
  match a folder called `train` anywhere, so a rule works whether the run column holds `train`,
  `uploads/bob/train` or an absolute path.
- A named group of the run pattern can be required again in the tag pattern with `(?P=name)`: the
  run's captured text, escaped, takes its place (RE2 has no backreferences). The run pattern's
  captures are its leftmost-first match; no other split of the run name is tried for the tag.
- `to` is a template of plain `{name}` fields over the named groups (`"{metric}/{split}"`), at
  most 200 characters and so is the tag it makes (no format specs, no `.attr` or `[index]`).
  Captured values are lower-cased and passed through `ALIASES` (validation -> val, acc ->
  accuracy, ...). An empty `to` drops the series.
- `step_unit` says what the logged step counts ("step": optimizer steps, "epoch": epochs) and
  `step_offset` is added first: Keras logs `epoch_loss` at epoch e (0-based) after finishing e+1
  epochs, hence its rules use step_unit="epoch", step_offset=1.
"""
from __future__ import annotations

import functools
import json
import os
import re
from dataclasses import asdict, dataclass, replace
from pathlib import Path

import numpy as np
import pandas as pd

from twinboard.contract.files import SPEC_JSON, UPLOADS, read_json, read_status, write_json
from twinboard.tagmap.patterns import PatternError, capped, compile_pattern, fill, literal, template_fields

MAPPING_FILE = "twinboard_mapping.json"
X_AXES = ("step", "epoch", "samples")
STEP_UNITS = ("step", "epoch")
SPLITS = "train|training|val|valid|validation|eval|evaluation"  # folder/tag words naming a split
ALIASES = {"training": "train", "validation": "val", "valid": "val", "eval": "val",
           "evaluation": "val", "acc": "accuracy", "learning_rate": "lr"}
# `(?P=name)` in a tag pattern. Python's re is safe on rule text: a fixed pattern without nested
# repeats, over text capped at 500 characters.
_REF = re.compile(r"\(\?P=([A-Za-z_][A-Za-z0-9_]*)\)")
_NAMED = re.compile(r"\(\?P?<([A-Za-z_][A-Za-z0-9_]*)>")  # a named group's opening, (?P<n> or (?<n>
_NEVER = "[^\\x00-\\x{10FFFF}]"  # matches nothing: a reference to a group the run did not capture


class MappingError(ValueError):
    """A mapping that cannot be used (bad regex, bad field, missing factor); the message says which."""


@dataclass(frozen=True)
class Rule:
    run: str  # regex, full match on the run name (posix path); "(?:.*/)?train" = a folder named train
    tag: str  # regex, full match on the tag; may repeat a run group with (?P=name)
    to: str  # our tag: plain {name} fields over the named groups ("{metric}/{split}"); "" drops the series
    step_unit: str = "step"  # what the logged step counts: "step" (optimizer steps) or "epoch"
    step_offset: int = 0  # added to the logged step before converting (Keras epochs: 1)

    def __post_init__(self) -> None:  # types first: a rule from a JSON file may hold anything
        for name in ("run", "tag", "to", "step_unit"):
            if not isinstance(getattr(self, name), str):
                raise MappingError(f"rule: {name}={str(getattr(self, name))[:80]!r} must be text")
        if isinstance(self.step_offset, bool) or not isinstance(self.step_offset, int):
            raise MappingError(f"rule: step_offset={str(self.step_offset)[:40]!r} must be a whole number")

    def compiled(self) -> Matcher:
        """The rule checked and compiled (cached); MappingError names the rule and what is wrong."""
        return _matcher(self)

    def label(self) -> str:
        return f"rule {self.run[:80]!r}/{self.tag[:80]!r}"


@dataclass(frozen=True)
class Matcher:
    """A rule compiled by RE2: its run pattern, and its tag pattern cut at the `(?P=name)`
    references, which `groups` fills with the run's captured text, escaped."""
    rule: Rule
    run: object  # re2 pattern, full match on the run name
    tag: object | None  # re2 pattern when the tag pattern references no run group, else None
    pieces: tuple[str, ...]  # the tag pattern cut at its references: text, name, text, ..., text

    def groups(self, run: str, tag: str) -> dict[str, str] | None:
        """The named groups captured (unmatched ones left out) when the rule matches, else None."""
        m = self.run.fullmatch(run)
        if m is None:
            return None
        found = {k: v for k, v in m.groupdict().items() if v is not None}
        rx = self.tag
        if rx is None:
            text = "".join(p if i % 2 == 0 else (literal(found[p]) if p in found else _NEVER)
                           for i, p in enumerate(self.pieces))
            rx = compile_pattern(text, f"{self.rule.label()}: tag pattern", max_chars=None)
        t = rx.fullmatch(tag)
        if t is None:
            return None
        return {**found, **{k: v for k, v in t.groupdict().items() if v is not None}}

    def target(self, run: str, tag: str) -> str | None:
        """Our tag for (run, tag) when the rule matches ("" drops the series), else None."""
        found = self.groups(run, tag)
        if found is None:
            return None
        found = {k: ALIASES.get(v.lower(), v.lower()) for k, v in found.items()}
        try:
            return fill(self.rule.to, found, f"{self.rule.label()}: 'to'")
        except PatternError as e:
            raise MappingError(f"{e} (run {run[:200]!r}, tag {tag[:200]!r})") from None


@functools.lru_cache(maxsize=1024)  # rules are looked up for every (run, tag) on every page run
def _matcher(rule: Rule) -> Matcher:
    if rule.step_unit not in STEP_UNITS:
        raise MappingError(f"{rule.label()}: step_unit={rule.step_unit[:40]!r} must be one of {', '.join(STEP_UNITS)}")
    try:
        fields = template_fields(rule.to, f"{rule.label()}: 'to'")
        run = compile_pattern(rule.run, f"{rule.label()}: run pattern")
        capped(rule.tag, f"{rule.label()}: tag pattern")  # compiled below, without its references
        pieces = tuple(_REF.split(rule.tag))
        refs = pieces[1::2]
        unknown = sorted(set(refs) - set(run.groupindex))
        if unknown:
            raise PatternError(f"{rule.label()}: (?P={unknown[0]}) in the tag pattern names no group "
                               "of the run pattern")
        tag = compile_pattern("".join(p if i % 2 == 0 else "(?:)" for i, p in enumerate(pieces)),
                              f"{rule.label()}: tag pattern", max_chars=None)
    except PatternError as e:
        raise MappingError(str(e)) from None
    names = _NAMED.findall(rule.run) + _NAMED.findall(rule.tag)
    twice = sorted({n for n in names if names.count(n) > 1})
    if twice:
        raise MappingError(f"{rule.label()}: group name {twice[0]!r} is defined twice")
    missing = sorted(set(fields) - set(run.groupindex) - set(tag.groupindex))
    if missing:
        raise MappingError(f"{rule.label()}: 'to'={rule.to!r} needs group {missing[0]!r}, which the "
                           "patterns do not define")
    return Matcher(rule, run, None if refs else tag, pieces)


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
        if not isinstance(self.merge_children, str):
            raise MappingError(f"merge_children={self.merge_children!r} must be text (a regex)")
        if self.merge_children:
            try:
                compile_pattern(self.merge_children, "merge_children")
            except PatternError as e:
                raise MappingError(str(e)) from None

    def to_dict(self) -> dict:
        d = asdict(self)
        d["rules"], d["merge_siblings"] = [asdict(r) for r in self.rules], list(self.merge_siblings)
        return {"version": 1, **d}

    @classmethod
    def from_dict(cls, d: dict) -> Mapping:
        d = dict(d)
        d.pop("version", None)
        unknown = sorted(set(d) - set(cls.__dataclass_fields__))
        if unknown:
            raise MappingError(f"mapping has no field {', '.join(map(repr, unknown))}")
        try:
            return cls(**d)
        except TypeError as e:  # a rule with a missing or unknown field
            raise MappingError(f"bad rule: {e}") from None

    def replace(self, **changes) -> Mapping:
        return replace(self, **changes)


def rules_from_rows(rows: list[dict]) -> tuple[Rule, ...]:
    """Rules from table rows (the Upload page's editor): keys run, tag, to, step_unit, step_offset.
    Rows without a run or tag pattern are left out; blank cells (None, NaN) take the defaults."""
    def text(v, default: str = "") -> str:
        return default if v is None or (isinstance(v, float) and np.isnan(v)) else str(v)

    out = []
    for r in rows:
        run, tag = text(r.get("run")), text(r.get("tag"))
        if run and tag:
            try:
                offset = int(float(text(r.get("step_offset"), "0")))
            except (ValueError, OverflowError):
                raise MappingError(f"rule {run[:80]!r}/{tag[:80]!r}: step_offset="
                                   f"{str(r.get('step_offset'))[:40]!r} is not a whole number") from None
            out.append(Rule(run, tag, text(r.get("to")), text(r.get("step_unit"), "step"), offset))
    return tuple(out)


def _r(run: str, tag: str, to: str, unit: str = "step", offset: int = 0) -> Rule:
    return Rule(run, tag, to, unit, offset)


# Keras' TensorBoard callback: train/ and validation/ with epoch_* at step = epoch index.
KERAS_RULES = (
    # evaluation_<m>_vs_iterations repeats epoch_<m> of validation/ at step = iterations: dropped so
    # that x = epoch needs no steps_per_epoch (infer_steps_per_epoch reads it before mapping).
    _r("(?:.*/)?validation", "evaluation_.+_vs_iterations", ""),
    _r("(?:.*/)?train", "epoch_(?:learning_rate|lr)", "lr", "epoch", 1),
    _r("(?:.*/)?(?P<split>train|validation)", "epoch_(?P<metric>.+)", "{metric}/{split}", "epoch", 1),
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
    """Write atomically (`contract.files.write_json`) into `path` (a folder, or the file itself)."""
    p = Path(path)
    p = p / MAPPING_FILE if p.is_dir() else p
    write_json(p, mapping.to_dict(), sort_keys=False)  # fields in the order the file documents them
    return p


def for_local_run(run_path: str | os.PathLike) -> Mapping:
    """Factors of a run the launcher started (`<run-id>/<framework>`): no rules, x from its spec.

    steps_per_epoch = status.json total_steps / spec epochs (exact unless spec.steps cut it short),
    batch_size = spec batch_size. Missing or unreadable files leave the factor unknown (None).
    """
    folder = Path(run_path)
    spec, spb, bs = read_json(folder.parent / SPEC_JSON), None, None
    try:
        bs = int(spec["batch_size"])
        status = read_status(folder) or {}
        if not spec.get("steps") and spec.get("epochs") and status.get("total_steps"):
            spb = float(status["total_steps"]) / float(spec["epochs"])
    except (ValueError, KeyError, TypeError):  # no spec (TypeError), or a field of the wrong kind
        pass
    return Mapping(steps_per_epoch=spb, batch_size=bs)


def upload_root(run_path: str | os.PathLike, logdir: str | os.PathLike) -> Path | None:
    """`<logdir>/uploads/<name>` when run_path lies in an upload, else None."""
    root, p = Path(logdir).resolve() / UPLOADS, Path(run_path).resolve()
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
