"""`twinboard sweep`: a grid times seeds as matched pairs, on this machine's queue or a Ray cluster.

    twinboard sweep --grid lr=0.01,0.05 --grid batch_size=32,64 --seeds 0-4 --steps 300 --wait
    twinboard sweep --grid lr=0.01,0.1 --seeds 0-9 --backend ray --address ray://head:10001

Registered in twinboard.cli's COMMANDS by importing this module; the RunSpec flags are the launch
command's (every field but seed, which --seeds sets), so the grid varies a spec written as for launch.
"""
from __future__ import annotations

import argparse
import sys
import time
from pathlib import Path

from twinboard import config, runs
from twinboard.cli import add_spec_arguments, command, spec_error_text, spec_from_args
from twinboard.contract import SpecError
from twinboard.sweeps.grid import GridError, parse_grid, parse_seeds
from twinboard.sweeps.store import Sweep, launch_sweep

WAIT_POLL_S = 1.0


def _arguments(p: argparse.ArgumentParser) -> None:
    p.add_argument("--grid", action="append", default=[], metavar="FIELD=V1,V2",
                   help="a RunSpec field and its values (repeatable: the sweep is every combination)")
    p.add_argument("--seeds", default="0", help="seeds of every configuration: 0-4, 0,3,7 [0]")
    p.add_argument("--backend", choices=sorted(runs.launcher.BACKENDS), default="local",
                   help="local: this machine's queue; ray: a Ray cluster (pip install twinboard[ray]) [local]")
    p.add_argument("--address", help="with --backend ray: ray://HOST:10001, HOST:6379, http://HOST:8265 or auto "
                                     "[$TWINBOARD_RAY_ADDRESS, else auto]")
    p.add_argument("--wait", action="store_true", help="block until every pair ends, then print the gaps; exit 1 "
                                                       "unless all finished")
    p.add_argument("--timeout", type=float, help="with --wait: give up after this many seconds")
    p.add_argument("--metric", default="accuracy/val", help="with --wait: the tag whose gap is printed "
                                                            "[accuracy/val]")
    add_spec_arguments(p)


def _progress(sweep: Sweep, logdir: Path, timeout: float | None) -> dict[str, str]:
    """Wait, printing the count of pairs in each state whenever it changes; run id -> pair state."""
    deadline = None if timeout is None else time.monotonic() + timeout
    shown = ""
    while True:
        states = {}
        for p in sweep.pairs:
            try:
                states[p.run_id] = runs.get_run(p.run_id, logdir).state
            except runs.LauncherError:
                states[p.run_id] = "missing"
        counts = {s: list(states.values()).count(s) for s in ("finished", "running", "queued", "failed", "stopped",
                                                               "missing")}
        text = ", ".join(f"{n} {s}" for s, n in counts.items() if n)
        if text != shown:
            print(f"{sweep.sweep_id}: {text}", flush=True)
            shown = text
        if not counts["running"] and not counts["queued"]:
            return states
        if deadline is not None and time.monotonic() >= deadline:
            return states
        time.sleep(WAIT_POLL_S)


@command("sweep", "launch a grid of settings times seeds as matched pairs, grouped as one sweep", _arguments)
def _sweep(args: argparse.Namespace) -> int:
    if "spec.seed" in vars(args):
        args.parser.exit(2, f"{args.parser.prog}: error: --seed: a sweep sets each pair's seed; use --seeds\n")
    if args.address and args.backend != "ray":
        args.parser.exit(2, f"{args.parser.prog}: error: --address is for --backend ray\n")
    logdir = Path(args.logdir or config.logdir())
    try:
        base = spec_from_args(args)
        grid, seeds = parse_grid(args.grid), parse_seeds(args.seeds)
        done = launch_sweep(base, grid, seeds, logdir, backend=args.backend, address=args.address)
    except SpecError as err:
        args.parser.exit(2, f"{args.parser.prog}: error: {spec_error_text(err)}\n")
    except GridError as err:
        print(f"sweep refused, nothing launched: {err}", file=sys.stderr)
        return 2
    sweep = done.sweep
    print(f"sweep {sweep.sweep_id}: {len(sweep.pairs)} pairs on the {sweep.backend} backend "
          f"({logdir / '.sweeps' / sweep.sweep_id / 'sweep.json'})", flush=True)
    for point, why in done.failed:
        print(f"sweep: pair {point.index} ({point.key} seed {point.seed}): launch failed: {why}", file=sys.stderr)
    if not args.wait:
        return 1 if done.failed else 0
    try:
        states = _progress(sweep, logdir, args.timeout)
    except KeyboardInterrupt:
        print(f"still running; stop a pair with: twinboard stop {sweep.sweep_id}-NNN", file=sys.stderr)
        return 130
    from twinboard.sweeps.results import gap_table, read_pair

    data = {p.run_id: read_pair(logdir / p.run_id) for p in sweep.pairs if states.get(p.run_id) == "finished"}
    gaps = gap_table(sweep, data, args.metric, states)
    for _, row in gaps.iterrows():
        print(f"{row['configuration']}: {row['verdict']}")
    return 0 if not done.failed and all(s == "finished" for s in states.values()) else 1
