"""Tag-mapping rules: what a mapping is, the rules offered by default, and where one is kept.

A `Mapping` is a short ordered table of rules `(run pattern, tag pattern) -> our tag`, plus the
factors that turn a logged step into an x value: optimizer steps, epochs or samples seen. An upload
keeps its mapping in `logs/uploads/<name>/twinboard_mapping.json`; a local run needs no rules (its
tags are ours already) and gets its factors from `spec.json` and `status.json`. Applying a mapping
to frames and series is `twinboard.tagmap.mapping`.

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

from twinboard.contract.files import SPEC_JSON, UPLOADS, read_json, read_status, write_json

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
