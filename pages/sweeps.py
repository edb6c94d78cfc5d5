"""Sweeps: a grid of settings times seeds (`twinboard sweep`, or the Launch page's sweep form), its
pairs as a sortable table, parallel coordinates, each configuration's seed aggregate per framework
and the framework gap against seed noise, in numbers and in words. Live while its pairs train."""
from __future__ import annotations

import time

import streamlit as st

from pages.signin import current_user
from twinboard import auth, runs, sweeps
from twinboard.config import logdir
from twinboard.sweeps import figures, results
from twinboard.sweeps.stats import BANDS, tag_words
from twinboard.text import md

REFRESH_S = 2.0  # while any pair of the sweep is queued or running
CHART_CONFIG = {"displaylogo": False}
SHOWN_CONFIGS = 4  # aggregate charts drawn before the visitor picks others
MAX_CHARTS = 12  # aggregate charts at most at once: each is ~0.05 s of server time
STATUS_KEY = "sweeps_status"  # session_state: (sweep id, monotonic s, statuses) of this script run
STATUS_REUSE_S = 1.0
STATE_ORDER = ("finished", "running", "queued", "failed", "stopped", "unknown")


@st.cache_resource(max_entries=4096, show_spinner=False)
def _pair_data(run_dir: str, signature: tuple) -> results.PairData:
    """A pair's curves, read once per `signature` (its event files' names, sizes, mtimes) for every
    session: a resource, not cache_data, because 1,000 unpickled copies a render cost ~0.3 s of a
    500-pair sweep, and PairData is never changed once read."""
    return results.read_pair(run_dir)


def _states(sweep: sweeps.Sweep, root) -> dict[str, runs.RunStatus | None]:
    """Each pair's status (None: deleted since). Read once per script run: main() reads them to set the
    fragment's timer, and the fragment's first run, in the same script run, takes them from here."""
    kept = st.session_state.get(STATUS_KEY)
    if kept and kept[0] == sweep.sweep_id and time.monotonic() - kept[1] < STATUS_REUSE_S:
        st.session_state.pop(STATUS_KEY)
        return kept[2]
    out = {}
    for p in sweep.pairs:
        try:
            out[p.run_id] = runs.get_run(p.run_id, root)
        except runs.LauncherError:  # deleted since the sweep ran
            out[p.run_id] = None
    st.session_state[STATUS_KEY] = (sweep.sweep_id, time.monotonic(), out)
    return out


def _pick_sweep(root) -> sweeps.Sweep | None:
    found = sweeps.list_sweeps(root)
    if not found:
        st.info("No sweeps yet. Start one from the Launch page's sweep form, or with "
                "`twinboard sweep --grid lr=0.01,0.05 --seeds 0-2 --steps 200`.", icon=":material/info:")
        return None
    wanted = st.query_params.get("sweep")
    if wanted in found and "sweeps_pick" not in st.session_state:
        st.session_state["sweeps_pick"] = wanted
    chosen = st.sidebar.selectbox("Sweep", found, key="sweeps_pick", help="Newest first")
    st.query_params["sweep"] = chosen
    try:
        return sweeps.load_sweep(root, chosen)
    except sweeps.GridError as err:
        st.error(md(err, 1000), icon=":material/error:")
        return None


def _header(sweep: sweeps.Sweep, states: dict[str, str]) -> None:
    grid = " · ".join(f"{k} ∈ {{{', '.join(map(str, v))}}}" for k, v in sweep.grid.items()) or "no grid"
    seeds = ", ".join(map(str, sweep.seeds[:20])) + (" …" if len(sweep.seeds) > 20 else "")
    st.caption(f"**{md(sweep.sweep_id)}** · {md(grid)} · seeds {md(seeds)} · {len(sweep.pairs)} pairs on the "
               f"{md(sweep.backend)} backend · base: {md(runs.spec_line(sweep.base), 300)}")
    counts = {s: sum(v == s for v in states.values()) for s in STATE_ORDER}
    done = sum(counts[s] for s in ("finished", "failed", "stopped"))
    st.progress(done / max(len(states), 1),
                text=" · ".join(f"{n} {s}" for s, n in counts.items() if n) or "no pairs")
    if sweep.failed:
        with st.expander(f"{len(sweep.failed)} pairs could not be launched"):
            for f in sweep.failed:
                st.markdown(f"- {md(sweeps.config_key(f.get('config') or {}))} seed {md(f.get('seed'))}: "
                            f"{md(f.get('error'), 300)}")


def _stop_controls(sweep: sweeps.Sweep, status: dict, root) -> None:
    """Stop one pair or every active pair; each stop is role-checked by actions.stop."""
    user = current_user()
    active = [rid for rid, run in status.items() if run is not None and run.active
              and auth.allowed(user, auth.STOP, auth.owner_of(run.run_dir))]
    if not active:
        return
    with st.container(horizontal=True, vertical_alignment="bottom", key="sweeps_stop_row"):
        pick = st.selectbox("Active pair", active, key="sweeps_stop_pick")
        one = st.button("Stop pair", key="sweeps_stop_one", icon=":material/stop:")
        every = st.button(f"Stop all {len(active)} active pairs", key="sweeps_stop_all", type="tertiary")
    if one or every:
        from twinboard.auth import actions  # only here: its imports (uploads, tag maps) cost a first render

        for rid in active if every else [pick]:
            try:
                actions.stop(user, rid, root)
            except (runs.LauncherError, auth.PermissionDenied) as err:
                st.error(f"{md(rid)}: {md(err, 500)}")
        st.rerun(scope="app")


def _table(table) -> None:
    st.dataframe(table.drop(columns=["configuration"]), hide_index=True, key="sweeps_table",
                 column_config={c: st.column_config.NumberColumn(c, format="%.4g")
                                for c in table.columns if c.startswith(("PyTorch", "TensorFlow"))})


def _aggregates(sweep: sweeps.Sweep, data: dict, tag: str, band: str) -> None:
    configs = results.configurations(sweep)
    chosen = st.multiselect("Configurations", configs, default=configs[:SHOWN_CONFIGS], key="sweeps_configs",
                            max_selections=MAX_CHARTS, help=f"At most {MAX_CHARTS} charts at once")
    cols = st.columns(2)
    for i, config in enumerate(chosen):
        aggs = results.seed_aggregates(sweep, data, config, tag, band)
        cols[i % 2].plotly_chart(figures.aggregate_figure(config, aggs, tag, band), config=CHART_CONFIG,
                                 key=f"sweeps_agg_{i}")


def _gaps(sweep: sweeps.Sweep, data: dict, tag: str, states: dict[str, str]) -> None:
    gaps = results.gap_table(sweep, data, tag, states)
    for _, row in gaps.iterrows():
        noise = row["within seed noise"]
        icon = "⚪" if noise is None else "🟢" if noise else "🔴"
        st.markdown(f"{icon} **{md(row['configuration'])}**: {md(row['verdict'], 400)}")
    if len(gaps):
        st.plotly_chart(figures.gap_figure(gaps, tag), config=CHART_CONFIG, key="sweeps_gap_chart")
        with st.expander("Gap table"):
            st.dataframe(gaps, hide_index=True, key="sweeps_gap_table")


def _body(root, sweep_id: str, live: bool) -> None:
    """Everything below the picker; a fragment that reruns every REFRESH_S while `live`."""
    sweep = sweeps.load_sweep(root, sweep_id)
    status = _states(sweep, root)
    states = {rid: (run.state if run else "unknown") for rid, run in status.items()}
    if any(run is not None and run.active for run in status.values()) != live:
        st.rerun()  # a full run declares the fragment again, timer on or off
    _header(sweep, states)
    _stop_controls(sweep, status, root)
    data = {p.run_id: _pair_data(str(root / p.run_id), runs.event_signature(root / p.run_id))
            for p in sweep.pairs if status.get(p.run_id) is not None and states[p.run_id] != "queued"}
    table = results.pair_table(sweep, data, states)
    left, right = st.columns(2)
    tag = left.selectbox("Metric", list(results.METRIC_TAGS), key="sweeps_tag",
                         format_func=lambda t: f"{t} ({tag_words(t)})")
    band = right.segmented_control("Band over seeds", list(BANDS), key="sweeps_band",
                                   format_func=BANDS.get, default="minmax") or "minmax"
    st.subheader("Pairs")
    _table(table)
    metrics = [c for c in table.columns if c.startswith(("PyTorch final", "TensorFlow final"))]
    color = results.column("tensorflow", "final", tag if tag in results.TABLE_TAGS else "accuracy/val")
    st.plotly_chart(figures.parallel_figure(table, sweep.fields, metrics, color), config=CHART_CONFIG,
                    key="sweeps_parcoords")
    st.subheader("Framework gap against seed noise")
    _gaps(sweep, data, tag, states)
    st.subheader("Seed aggregates")
    _aggregates(sweep, data, tag, band)


def main() -> None:
    root = logdir()
    st.title("Sweeps")
    st.caption("Many matched pairs: a grid of settings times seeds. Is the PyTorch / TensorFlow difference larger "
               "than seed-to-seed noise, across the settings you care about?")
    sweep = _pick_sweep(root)
    if sweep is None:
        return
    live = any(run is not None and run.active for run in _states(sweep, root).values())
    st.fragment(run_every=REFRESH_S if live else None)(_body)(root, sweep.sweep_id, live)


main()
