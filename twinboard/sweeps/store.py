"""A sweep on disk and its launch: `<logdir>/.sweeps/<sweep-id>/sweep.json`, its pairs normal runs.

    <logdir>/.sweeps/<sweep-id>/sweep.json   {id, created, owner, backend, address, base (the spec),
                                             grid {field: [values]}, seeds, pairs [{run, index,
                                             config {field: value}, seed}], failed [{index, error}]}
    <logdir>/<sweep-id>-<NNN>/               one matched pair per point, made by runs.launch like any
                                             other (run.json also names its "sweep" and "config")

The pairs are ordinary launcher runs, so every page, `twinboard runs`, stop and delete work on them;
the sweep adds the grid and the grouping. Hidden (`.sweeps`), so no event-run listing walks it.

Caps apply to the sweep as a whole: before its first pair is launched, the pairs already waiting
plus the whole sweep must fit TWINBOARD_MAX_QUEUED, and the user's waiting pairs plus the sweep
TWINBOARD_MAX_QUEUED_PER_USER; otherwise nothing is launched and the message names the cap to raise.
A visitor launches through `launch_as`, which checks the LAUNCH role first and records the sweep.
"""
from __future__ import annotations

import os
import time
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field
from pathlib import Path

from twinboard import config, runs
from twinboard.contract import RUN_JSON, RunSpec, read_json, write_json
from twinboard.sweeps.grid import GridError, Point, expand

SWEEPS_DIR = ".sweeps"
SWEEP_JSON = "sweep.json"
PREFIX = "sweep-"
MAX_SWEEP_JSON = 4 << 20  # bytes: a 500-pair sweep.json is ~120 KB; a bigger one is not ours
SWEEP_KEY, CONFIG_KEY = "sweep", "config"  # what run.json of a sweep's pair says


@dataclass(frozen=True)
class SweepPair:
    run_id: str
    index: int
    config: dict  # field -> value, the grid's order
    seed: int


@dataclass(frozen=True)
class Sweep:
    sweep_id: str
    created: float
    grid: dict  # field -> [values]
    seeds: tuple[int, ...]
    base: dict  # the spec every point starts from
    backend: str = "local"
    owner: str | None = None
    pairs: tuple[SweepPair, ...] = ()
    failed: tuple[dict, ...] = ()  # {index, config, seed, error}: points the launcher refused

    @property
    def fields(self) -> list[str]:
        return list(self.grid)


@dataclass
class Launch:
    """What launching a sweep did: the sweep (as recorded) and the pairs it could not launch."""
    sweep: Sweep
    launched: list[runs.Launched] = field(default_factory=list)
    failed: list[tuple[Point, str]] = field(default_factory=list)


def sweeps_dir(logdir: Path | str) -> Path:
    return Path(logdir) / SWEEPS_DIR


def new_sweep_id(logdir: Path | str, now: float | None = None) -> str:
    """`sweep-YYYYmmdd-HHMMSS`, -2, -3 ... when that one exists (a sweep folder or a pair's run folder)."""
    base = PREFIX + time.strftime("%Y%m%d-%H%M%S", time.localtime(now))
    for n in range(1, 1000):
        sweep_id = base if n == 1 else f"{base}-{n}"
        if not (sweeps_dir(logdir) / sweep_id).exists() and not (Path(logdir) / f"{sweep_id}-000").exists():
            return sweep_id
    raise GridError(f"{base}: 999 sweeps of that name exist already")


def pair_name(sweep_id: str, index: int) -> str:
    return f"{sweep_id}-{index:03d}"


def _to_json(sweep: Sweep) -> dict:
    return {"id": sweep.sweep_id, "created": sweep.created, "grid": sweep.grid, "seeds": list(sweep.seeds),
            "base": sweep.base, "backend": sweep.backend, "owner": sweep.owner,
            "pairs": [{"run": p.run_id, "index": p.index, "config": p.config, "seed": p.seed} for p in sweep.pairs],
            "failed": list(sweep.failed)}


def _waiting(logdir: Path, backend: str, address: str | None) -> list[str | None]:
    """The owners of the pairs waiting for a slot on `backend` now (None: launched without a user)."""
    if backend == "ray":
        from twinboard.runs import ray_cluster

        try:
            url = ray_cluster.resolve(address)
            return [o or None for o in ray_cluster.waiting_pairs(url, logdir).values()]
        except ray_cluster.RayUnavailable as err:
            raise GridError(str(err)) from None
    from twinboard.runs.queue import Queue

    queue = Queue(logdir)
    if not queue.dir.is_dir():
        return []
    with queue.lock(shared=True):
        return [t.get("owner") for _, t in queue.waiting()]


def check_caps(n_pairs: int, logdir: Path, owner: str | None, backend: str = "local",
               address: str | None = None) -> None:
    """GridError unless all `n_pairs` fit the queue caps on top of the pairs waiting now."""
    try:
        most, per_user = config.max_queued(), config.max_queued_per_user()
    except ValueError as err:
        raise GridError(str(err)) from None
    waiting = _waiting(logdir, backend, address)
    mine = sum(o == owner for o in waiting)
    if len(waiting) + n_pairs > most:
        raise GridError(f"the sweep's {n_pairs} pairs do not fit the queue: {len(waiting)} pairs wait already and "
                        f"TWINBOARD_MAX_QUEUED={most}; nothing was launched (a smaller grid, fewer seeds, or an "
                        "admin raises the cap)")
    if mine + n_pairs > per_user:
        who = f"user {owner!r} has" if owner else "launches without a user have"
        raise GridError(f"the sweep's {n_pairs} pairs do not fit the queue: {who} {mine} pairs waiting and "
                        f"TWINBOARD_MAX_QUEUED_PER_USER={per_user}; nothing was launched (a smaller grid, fewer "
                        "seeds, or an admin raises the cap)")


def launch_sweep(base: RunSpec, grid: Mapping[str, Sequence], seeds, logdir: Path | str | None = None, *,
                 backend: str = "local", address: str | None = None, owner: str | None = None,
                 trainer_cmd: Sequence[str] | str | None = None) -> Launch:
    """Expand the grid (GridError if it is too big or a point's spec is refused), check the caps for the
    whole sweep, record sweep.json, then launch every point as a pair named `<sweep-id>-<NNN>`.

    A point the launcher still refuses (a cap reached meanwhile by another user) is recorded in
    `failed`; the pairs launched keep running."""
    root = Path(logdir) if logdir is not None else config.logdir()
    root.mkdir(parents=True, exist_ok=True)
    if backend not in runs.launcher.BACKENDS:
        raise GridError(f"backend {backend!r}: one of {', '.join(runs.launcher.BACKENDS)}")
    points = expand(base, {k: tuple(v) for k, v in grid.items()}, seeds, root)
    check_caps(len(points), root, owner, backend, address)
    sweep_id = new_sweep_id(root)
    folder = sweeps_dir(root) / sweep_id
    folder.mkdir(parents=True)
    sweep = Sweep(sweep_id, time.time(), {k: list(v) for k, v in grid.items()}, tuple(dict.fromkeys(p.seed for p in points)), base.to_dict(), backend, owner)
    write_json(folder / SWEEP_JSON, _to_json(sweep))
    out = Launch(sweep)
    pairs, failed = [], []
    for point in points:
        name = pair_name(sweep_id, point.index)
        outcome = runs.launch(point.spec, root, name, backend=backend, trainer_cmd=trainer_cmd, owner=owner,
                              address=address if backend == "ray" else None,
                              extra={SWEEP_KEY: sweep_id, CONFIG_KEY: dict(point.config)})
        if isinstance(outcome, runs.Failed) and not (root / name / RUN_JSON).is_file():
            out.failed.append((point, outcome.stderr))
            failed.append({"index": point.index, "config": dict(point.config), "seed": point.seed,
                           "error": outcome.stderr[:1000]})
            continue
        pairs.append(SweepPair(name, point.index, dict(point.config), point.seed))
        if isinstance(outcome, runs.Launched):
            out.launched.append(outcome)
    out.sweep = Sweep(sweep.sweep_id, sweep.created, sweep.grid, sweep.seeds, sweep.base, backend, owner,
                      tuple(pairs), tuple(failed))
    write_json(folder / SWEEP_JSON, _to_json(out.sweep))
    return out


def launch_as(user, base: RunSpec, grid, seeds, logdir: Path | str | None = None, **kwargs) -> Launch:
    """launch_sweep for a signed-in visitor: LAUNCH role first (PermissionDenied), owner recorded, audited."""
    from twinboard.auth import LAUNCH, require
    from twinboard.auth.audit import record

    require(user, LAUNCH)
    root = Path(logdir) if logdir is not None else config.logdir()
    out = launch_sweep(base, grid, seeds, root, owner=user.name if user else None, **kwargs)
    record(user, LAUNCH, f"{SWEEPS_DIR}/{out.sweep.sweep_id}", logdir=root, pairs=len(out.sweep.pairs),
           failed=len(out.failed), grid=out.sweep.grid, seeds=list(out.sweep.seeds))
    return out


# --- reading sweeps back -------------------------------------------------------------------------
def list_sweeps(logdir: Path | str) -> list[str]:
    """Sweep ids, newest first (ids begin with their time)."""
    folder = sweeps_dir(logdir)
    try:
        names = [p.name for p in folder.iterdir() if p.name.startswith(PREFIX) and (p / SWEEP_JSON).is_file()]
    except OSError:
        return []
    return sorted(names, reverse=True)


def load_sweep(logdir: Path | str, sweep_id: str) -> Sweep:
    """The sweep as recorded; GridError naming the file when it is missing, too big or not a sweep."""
    if not isinstance(sweep_id, str) or os.sep in sweep_id or not sweep_id.startswith(PREFIX) or len(sweep_id) > 100:
        raise GridError(f"{str(sweep_id)[:100]!r} is not a sweep id")
    path = sweeps_dir(logdir) / sweep_id / SWEEP_JSON
    try:
        if path.stat().st_size > MAX_SWEEP_JSON:
            raise GridError(f"{path}: more than {MAX_SWEEP_JSON} bytes; not a sweep this dashboard wrote")
    except OSError:
        raise GridError(f"no sweep {sweep_id!r} in {logdir}") from None
    data = read_json(path)
    try:
        grid = {str(k): list(v) for k, v in data["grid"].items()}
        pairs = tuple(SweepPair(str(p["run"]), int(p["index"]), dict(p["config"]), int(p["seed"]))
                      for p in data["pairs"])
        return Sweep(str(data["id"]), float(data["created"]), grid, tuple(int(s) for s in data["seeds"]),
                     dict(data.get("base") or {}), str(data.get("backend", "local")), data.get("owner"), pairs,
                     tuple(f for f in data.get("failed") or () if isinstance(f, dict)))
    except (TypeError, KeyError, ValueError, AttributeError):
        raise GridError(f"{path}: not a sweep.json this dashboard wrote") from None
