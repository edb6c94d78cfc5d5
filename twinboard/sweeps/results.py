"""A sweep's results from its event files: each pair read once (`read_pair`), the table of pairs,
the seed aggregates per configuration and the gap table.

`read_pair` keeps only what the Sweeps page shows (METRIC_TAGS' curves, a few hundred numbers a pair),
so a caller caches it by (run folder, event_signature) and a finished pair is read once per server.
Everything else here is pure and works on those small records: the 500-pair table is a DataFrame
built from 1,000 short arrays, not from 1,000 event files.
"""
from __future__ import annotations

import math
import os
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field

import numpy as np
import pandas as pd

from twinboard.contract.files import FRAMEWORK_LABELS, FRAMEWORKS
from twinboard.sweeps.grid import config_key
from twinboard.sweeps.stats import Aggregate, aggregate, gap, negligible, verdict
from twinboard.sweeps.store import Sweep

METRIC_TAGS = ("accuracy/val", "loss/val", "loss/train")  # read per pair: the table's and the charts' choices
TABLE_TAGS = ("accuracy/val", "loss/val")  # final and best of these, per framework, in the table
HIGHER_IS_BETTER = ("accuracy/",)


@dataclass(frozen=True)
class PairData:
    """One pair's curves: framework -> tag -> (steps, values), METRIC_TAGS only, in write order."""
    curves: Mapping[str, Mapping[str, tuple[np.ndarray, np.ndarray]]] = field(default_factory=dict)
    problems: tuple[str, ...] = ()

    def final(self, fw: str, tag: str) -> float:
        _, values = self.curves.get(fw, {}).get(tag, ((), ()))
        return float(values[-1]) if len(values) else math.nan

    def best(self, fw: str, tag: str) -> float:
        _, values = self.curves.get(fw, {}).get(tag, ((), ()))
        if not len(values):
            return math.nan
        pick = np.nanmax if tag.startswith(HIGHER_IS_BETTER) else np.nanmin
        with np.errstate(invalid="ignore"):
            return float(pick(values)) if np.isfinite(values).any() else math.nan


def read_pair(run_dir: str | os.PathLike, tags: Sequence[str] = METRIC_TAGS) -> PairData:
    """The pair's METRIC_TAGS curves from its event files (what exists yet; damaged records skipped and
    named in `problems`)."""
    from twinboard.events.tag_series import read_tag_series  # the compiled decoder: loaded when read

    found, problems = read_tag_series(run_dir, FRAMEWORKS, tags)
    # Copies: a series is a view into its file's arrays, which hold every other tag too.
    curves = {fw: {tag: (np.asarray(s.step).copy(), np.asarray(s.value, dtype=float).copy())
                   for tag, s in series.items()} for fw, series in found.items()}
    return PairData(curves, tuple(str(p) for p in problems))


def column(fw: str, what: str, tag: str) -> str:
    """A table column: 'PyTorch final accuracy/val'."""
    return f"{FRAMEWORK_LABELS[fw]} {what} {tag}"


def pair_table(sweep: Sweep, data: Mapping[str, PairData], states: Mapping[str, str]) -> pd.DataFrame:
    """One row per pair: run id, the grid's fields, seed, state, then final and best of TABLE_TAGS per
    framework (nan until logged). `data` and `states` by run id; a pair missing from them is blank."""
    rows = []
    for p in sweep.pairs:
        d = data.get(p.run_id) or PairData()
        row = {"pair": p.run_id, **{k: p.config.get(k) for k in sweep.fields}, "seed": p.seed,
               "configuration": config_key({k: p.config.get(k) for k in sweep.fields}),
               "state": states.get(p.run_id, "unknown")}
        for tag in TABLE_TAGS:
            for fw in FRAMEWORKS:
                row[column(fw, "final", tag)] = d.final(fw, tag)
                row[column(fw, "best", tag)] = d.best(fw, tag)
        rows.append(row)
    columns = ["pair", *sweep.fields, "seed", "configuration", "state",
               *(column(fw, w, t) for t in TABLE_TAGS for fw in FRAMEWORKS for w in ("final", "best"))]
    return pd.DataFrame(rows, columns=columns)


def configurations(sweep: Sweep) -> list[str]:
    """The configurations in grid order, each once."""
    return list(dict.fromkeys(config_key({k: p.config.get(k) for k in sweep.fields}) for p in sweep.pairs))


def seed_aggregates(sweep: Sweep, data: Mapping[str, PairData], config: str, tag: str,
                    band: str = "minmax") -> dict[str, Aggregate]:
    """framework -> the aggregate over the seeds of one configuration."""
    pairs = [p for p in sweep.pairs if config_key({k: p.config.get(k) for k in sweep.fields}) == config]
    out = {}
    for fw in FRAMEWORKS:
        curves = [data[p.run_id].curves.get(fw, {}).get(tag) for p in pairs if p.run_id in data]
        out[fw] = aggregate([c for c in curves if c is not None], band)
    return out


def gap_table(sweep: Sweep, data: Mapping[str, PairData], tag: str, states: Mapping[str, str]) -> pd.DataFrame:
    """One row per configuration: seeds finished on both sides, each framework's mean and sd of the
    final `tag`, the gap (TensorFlow - PyTorch, paired by seed), its 95% interval and the verdict.
    Only finished pairs count: a running pair's last value is not final."""
    rows = []
    by_config: dict[str, list] = {}
    for p in sweep.pairs:
        by_config.setdefault(config_key({k: p.config.get(k) for k in sweep.fields}), []).append(p)
    for config, pairs in by_config.items():
        done = [p for p in pairs if states.get(p.run_id) == "finished" and p.run_id in data]
        finals = {fw: {p.seed: data[p.run_id].final(fw, tag) for p in done} for fw in FRAMEWORKS}
        g = gap(finals["torch"], finals["tensorflow"])
        row = {"configuration": config, "seeds": g.n}
        for fw in FRAMEWORKS:
            vals = np.array([v for v in finals[fw].values() if math.isfinite(v)])
            row[f"{FRAMEWORK_LABELS[fw]} mean"] = float(vals.mean()) if len(vals) else math.nan
            row[f"{FRAMEWORK_LABELS[fw]} sd"] = float(vals.std(ddof=1)) if len(vals) > 1 else math.nan
        level = row[f"{FRAMEWORK_LABELS['torch']} mean"]
        row.update({"gap (TF - PT)": g.mean, "95% CI low": g.low, "95% CI high": g.high,
                    "within seed noise": True if negligible(g, level) else g.within_noise,
                    "verdict": verdict(tag, g, level)})
        rows.append(row)
    return pd.DataFrame(rows)
