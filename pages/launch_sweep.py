"""The Launch page's sweep form: the spec in the launch form above, a grid over some of its fields,
and seeds, launched as one sweep (twinboard.sweeps.launch_as: the LAUNCH role, the queue caps for the
sweep as a whole). pages/launch.py calls `sweep_form(root)` below its own form."""
from __future__ import annotations

import importlib.util

import streamlit as st
from streamlit.errors import StreamlitAPIException

from pages.launch_form import SPEC_KEY
from pages.signin import current_user
from twinboard import auth, runs, sweeps
from twinboard.contract import RunSpec, SpecError
from twinboard.runs import ray_cluster
from twinboard.text import md

GRID_HELP = ("One field a line: FIELD=V1,V2 (lr=0.01,0.05). Every combination is a configuration; each runs "
             f"once per seed. Numbers and choices of the spec can be swept, seed cannot (use Seeds). At most "
             f"{sweeps.MAX_FIELDS} fields and {sweeps.MAX_VALUES} values a field.")
BACKENDS = {"local": "This machine", "ray": "Ray cluster"}


def base_spec() -> RunSpec:
    """The spec the launch form shows now (its widgets' values over the spec it started from)."""
    start = st.session_state.get(SPEC_KEY) or RunSpec().to_dict()
    values = {name: st.session_state[f"launch_{name}"] for name in start if f"launch_{name}" in st.session_state}
    return runs.spec_from_form(start, values)


def _ray_offered() -> bool:
    """Ray is installed here (found, not imported: that is ~0.6 s the page need not pay)."""
    return importlib.util.find_spec("ray") is not None


def _plan(grid_text: str, seeds_text: str) -> tuple[dict, tuple[int, ...]]:
    grid = sweeps.parse_grid(line for line in grid_text.splitlines() if line.strip())
    return grid, sweeps.parse_seeds(seeds_text)


def sweep_form(root) -> None:
    """Grid, seeds and backend, a preview of the pair count, and Start sweep."""
    if not auth.allowed(current_user(), auth.LAUNCH):
        return
    with st.expander("Sweep: a grid of settings times seeds, as many matched pairs", icon=":material/grid_on:"):
        grid_text = st.text_area("Grid", key="sweep_grid", placeholder="lr=0.01,0.05\nbatch_size=32,64",
                                 help=GRID_HELP, max_chars=sweeps.grid.MAX_TEXT)
        left, right = st.columns(2)
        seeds_text = left.text_input("Seeds", value="0-2", key="sweep_seeds", max_chars=200,
                                     help="Every configuration runs once per seed: 0-4, or 0,3,7")
        offered = ["local", "ray"] if _ray_offered() else ["local"]
        backend = right.segmented_control("Where", offered, key="sweep_backend", default="local",
                                          format_func=BACKENDS.get,
                                          help=f"Ray: the cluster at {ray_cluster.default_address()} "
                                               f"(${ray_cluster.ADDRESS_ENV} on the server)") or "local"
        try:
            grid, seeds = _plan(grid_text, seeds_text)
            n = len(seeds)
            for values in grid.values():
                n *= len(values)
            configs = n // max(len(seeds), 1)
            st.caption(f"{configs} configuration{'s' * (configs != 1)} × {len(seeds)} seed{'s' * (len(seeds) != 1)}"
                       f" = **{n} pair{'s' * (n != 1)}**, with the spec of the form above for every other setting.")
        except sweeps.GridError as err:
            st.caption(f":red[{md(err, 300)}]")
            grid = None
        if st.button("Start sweep", key="sweep_start", icon=":material/play_arrow:", disabled=grid is None):
            _start(root, grid, seeds, backend)


def _start(root, grid: dict, seeds: tuple[int, ...], backend: str) -> None:
    try:
        base = base_spec().replace(seed=0)
        with st.spinner("Launching the sweep's pairs…"):
            done = sweeps.launch_as(current_user(), base, grid, seeds, root, backend=backend)
    except SpecError as err:
        st.error(f"Not started: {md(runs.error_text(err), 500)}", icon=":material/error:")
        return
    except (sweeps.GridError, auth.PermissionDenied) as err:
        st.error(f"Not started: {md(err, 1000)}", icon=":material/error:")
        return
    st.success(f"Started sweep **{md(done.sweep.sweep_id)}**: {len(done.sweep.pairs)} pairs.",
               icon=":material/rocket_launch:")
    try:
        st.page_link("pages/sweeps.py", label="Open it on the Sweeps page", icon=":material/grid_on:",
                     query_params={"sweep": done.sweep.sweep_id})
    except StreamlitAPIException:  # the form drawn outside the app's navigation (a test, an embed)
        st.caption("Open it on the Sweeps page.")
    for point, why in done.failed:
        st.warning(f"{md(point.key)} seed {point.seed}: not launched: {md(why, 300)}")
