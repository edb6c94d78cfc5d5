"""Sweeps: a grid of RunSpec settings times seeds, each point a matched pair, grouped under one id.

- ``grid``: parsing (`--grid lr=0.01,0.05`, `--seeds 0-4`) and expanding a grid into points, bounded.
- ``store``: sweep.json under ``<logdir>/.sweeps/<sweep-id>/``, launching a sweep (caps as a whole,
  roles through ``launch_as``), reading sweeps back.
- ``results``: each pair's curves read once, the table of pairs, seed aggregates, the gap table.
- ``stats``: aggregates over seeds, the paired framework gap with its 95% interval, the verdict.
- ``figures``: parallel coordinates, a configuration's aggregate chart, the gap chart.
- ``cli``: ``twinboard sweep`` (registered by twinboard.cli).

Only grid and store are imported here: `twinboard sweep` starts without numpy and pandas, which
``results``, ``stats`` and ``figures`` need (import those modules by name).
"""
from twinboard.sweeps.grid import (
    MAX_FIELDS,
    MAX_PAIRS,
    MAX_SEEDS,
    MAX_VALUES,
    GridError,
    Point,
    config_key,
    expand,
    max_pairs,
    parse_grid,
    parse_seeds,
)
from twinboard.sweeps.store import (
    SWEEP_JSON,
    SWEEPS_DIR,
    Launch,
    Sweep,
    SweepPair,
    check_caps,
    launch_as,
    launch_sweep,
    list_sweeps,
    load_sweep,
    pair_name,
)
