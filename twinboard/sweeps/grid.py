"""What a sweep is before it runs: a grid over RunSpec fields times seeds, each point a RunSpec.

`--grid lr=0.01,0.05 --grid batch_size=32,64 --seeds 0-4` is 2 x 2 configurations x 5 seeds = 20
pairs. A visitor chooses every part of it, so every part is bounded before anything is built: the
text's length, the fields a grid may vary (plain numbers and choices, not seed: --seeds is that
axis), values per field, seeds, and the pairs in all (TWINBOARD_MAX_SWEEP_PAIRS, default
MAX_PAIRS). Each point's spec is the base spec with the point's values, checked by RunSpec (its
ceilings) and by the logdir's limits, so a sweep holds no pair a single launch would refuse.
"""
from __future__ import annotations

import dataclasses
import itertools
import os
import re
from collections.abc import Iterable, Mapping
from dataclasses import dataclass
from pathlib import Path

from twinboard.contract import RunSpec, SpecError, check_spec
from twinboard.runs.spec_form import FORM_CHOICES, field_kind, form_choices

MAX_PAIRS = 500  # pairs in one sweep unless the server says otherwise: 1,000 trainers, the page stays < 2 s
MAX_PAIRS_ENV = "TWINBOARD_MAX_SWEEP_PAIRS"
MAX_FIELDS = 6  # fields one grid varies
MAX_VALUES = 50  # values of one field
MAX_SEEDS = 100
MAX_TEXT = 2000  # characters of one --grid or --seeds text: refused before it is split
SEED_FIELD = "seed"
_NOT_SWEPT = {SEED_FIELD: "seeds are their own axis: use --seeds (the Seeds box)",
              "data": "the data file is the experiment, not a setting", "target": "the target is the data's",
              "embedding_steps": "a list of steps is not a setting to compare", "export": "export is a chore"}
_FIELDS = {f.name: f for f in dataclasses.fields(RunSpec)}
_ITEM = re.compile(r"\s*([a-z_][a-z0-9_]*)\s*[=:]\s*(.*)", re.DOTALL)


class GridError(ValueError):
    """A grid, a seed list or a sweep that cannot be run; the message says which part and why."""


def max_pairs() -> int:
    raw = os.environ.get(MAX_PAIRS_ENV, "").strip()
    if not raw:
        return MAX_PAIRS
    if not raw.isdigit() or int(raw) < 1:
        raise GridError(f"{MAX_PAIRS_ENV}={raw[:40]!r}: must be a whole number >= 1")
    return int(raw)


@dataclass(frozen=True)
class Point:
    """One pair of a sweep: its configuration (the grid's values), its seed and the spec it runs."""
    index: int
    config: tuple[tuple[str, object], ...]  # (field, value) in grid order
    seed: int
    spec: RunSpec

    @property
    def key(self) -> str:
        """The configuration in words, seed left out: 'lr=0.01 batch_size=32'; the same for every seed."""
        return config_key(self.config)


def config_key(config: Iterable[tuple[str, object]] | Mapping[str, object]) -> str:
    items = config.items() if isinstance(config, Mapping) else config
    return " ".join(f"{k}={v}" for k, v in items) or "(base spec)"


def _value(name: str, text: str) -> object:
    kind = field_kind(name)
    text = text.strip()
    try:
        if kind == "int":
            return int(text)
        if kind == "float":
            return float(text)
    except ValueError:
        raise GridError(f"{name}={text[:40]!r}: not a {'whole number' if kind == 'int' else 'number'}") from None
    if _FIELDS[name].type == "bool":
        if text.lower() in ("true", "1", "yes"):
            return True
        if text.lower() in ("false", "0", "no"):
            return False
        raise GridError(f"{name}={text[:40]!r}: true or false")
    if name in FORM_CHOICES and text not in form_choices(name):
        raise GridError(f"{name}={text[:40]!r}: one of {', '.join(form_choices(name))}")
    return text


def parse_grid(items: Iterable[str]) -> dict[str, tuple]:
    """`["lr=0.01,0.05", "batch_size=32,64"]` -> {"lr": (0.01, 0.05), "batch_size": (32, 64)}, in the
    order given; a field named twice adds its values. Raises GridError naming the bad item."""
    grid: dict[str, list] = {}
    for item in items:
        item = str(item)
        if len(item) > MAX_TEXT:
            raise GridError(f"a grid item of {len(item)} characters: at most {MAX_TEXT}")
        if not item.strip():
            continue
        m = _ITEM.fullmatch(item)
        if not m:
            raise GridError(f"{item[:60]!r}: write a grid item as FIELD=V1,V2 (lr=0.01,0.05)")
        name, values = m.group(1), [v for v in m.group(2).split(",") if v.strip()]
        if name not in _FIELDS:
            raise GridError(f"{name!r} is no RunSpec field (see `twinboard launch --help`)")
        if name in _NOT_SWEPT or field_kind(name) == "tuple":
            raise GridError(f"{name} cannot be swept: {_NOT_SWEPT.get(name, 'it is a list of numbers')}")
        if not values:
            raise GridError(f"{name}: no values")
        seen = grid.setdefault(name, [])
        for v in (_value(name, text) for text in values):
            if v not in seen:
                seen.append(v)
        if len(seen) > MAX_VALUES:
            raise GridError(f"{name}: {len(seen)} values, at most {MAX_VALUES}")
        if len(grid) > MAX_FIELDS:
            raise GridError(f"a grid of {len(grid)} fields: at most {MAX_FIELDS}")
    return {k: tuple(v) for k, v in grid.items()}


def parse_seeds(text: str | Iterable[int]) -> tuple[int, ...]:
    """'0-4' -> (0, 1, 2, 3, 4); '0,3,7' and '0-2,10' too; an iterable of ints is checked as is."""
    if not isinstance(text, str):
        seeds = list(text)
    else:
        if len(text) > MAX_TEXT:
            raise GridError(f"seeds: {len(text)} characters, at most {MAX_TEXT}")
        seeds = []
        for part in (p.strip() for p in text.split(",")):
            if not part:
                continue
            m = re.fullmatch(r"(\d{1,10})(?:\s*-\s*(\d{1,10}))?", part)
            if not m:
                raise GridError(f"seeds: {part[:40]!r} is not a seed (7) or a range (0-4)")
            lo, hi = int(m.group(1)), int(m.group(2) or m.group(1))
            if hi < lo:
                raise GridError(f"seeds: {part!r} runs backwards")
            if hi - lo + 1 > MAX_SEEDS:
                raise GridError(f"seeds: {part!r} is {hi - lo + 1} seeds, at most {MAX_SEEDS}")
            seeds.extend(range(lo, hi + 1))
    out = list(dict.fromkeys(seeds))
    if not out:
        raise GridError("seeds: none given (0-4 gives five)")
    if len(out) > MAX_SEEDS:
        raise GridError(f"seeds: {len(out)}, at most {MAX_SEEDS}")
    bad = next((s for s in out if isinstance(s, bool) or not isinstance(s, int) or not 0 <= s < 2**32), None)
    if bad is not None:
        raise GridError(f"seeds: {bad!r} is not a whole number in [0, 2**32)")
    return tuple(out)


def expand(base: RunSpec, grid: Mapping[str, tuple], seeds: Iterable[int], logdir: Path | str | None = None
           ) -> list[Point]:
    """Every configuration x every seed, configuration-major (a sweep's first pairs cover its first
    configuration's seeds), each spec checked by RunSpec and, with `logdir`, its limits."""
    seeds = parse_seeds(seeds)
    names = list(grid)
    combos = 1
    for values in grid.values():
        combos *= len(values)
    total, most = combos * len(seeds), max_pairs()
    if total > most:
        raise GridError(f"{combos} configurations x {len(seeds)} seeds = {total} pairs: at most {most} in one "
                        f"sweep ({MAX_PAIRS_ENV})")
    points, checked = [], {}
    for values in itertools.product(*(grid[n] for n in names)):
        config = tuple(zip(names, values))
        for seed in seeds:
            try:
                spec = base.replace(**dict(config), seed=seed)
                if logdir is not None and config not in checked:  # limits do not depend on the seed
                    check_spec(spec, logdir)
                    checked[config] = True
            except SpecError as err:
                raise GridError(f"{config_key(config)}: {err}") from None
            points.append(Point(len(points), config, seed, spec))
    return points
