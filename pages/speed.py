"""Speed: a face-off (one spec in every execution mode, `twinboard faceoff`) or any one pair, measured:
import, first step, step time, memory, and whether each mode's loss agrees with eager's. Live while
its runs train."""
from __future__ import annotations

import streamlit as st

from pages.common import framework_badge
from pages.pair_picker import pick_pair
from twinboard import runs, speed
from twinboard.config import logdir
from twinboard.text import md

REFRESH_S = 2.0  # refresh interval while any of the shown runs is queued or running
FACEOFF, PAIR = "A face-off", "One pair"
CHART_CONFIG = {"displaylogo": False}
LINE_CHARS = 1000  # a sentence names a run at most; cut a hostile name's sentence here
HIDDEN = ["framework", "mode", "fw", "mode_key"]  # the label says them; fw and mode_key are for the figures
FORMATS = {"import s": "%.3g", "first step s": "%.3g", "step ms p50": "%.3g", "step ms p95": "%.3g",
           "samples/s p50": "%.0f", "peak RSS MB": "%.0f", "final train loss": "%.6g", "val loss": "%.6g",
           "val accuracy": "%.4f", "loss max rel diff vs eager": "%.2e"}
HOW = ("**How these are measured.** Import and first step in seconds, as each trainer recorded them "
       "(the first step holds torch.compile's compiling and tf.function's tracing). Step time p50 / p95 "
       "and samples/s are over the `perf/step_ms` points, each one the **mean step time of about a "
       "second of training**, so the percentiles are of per-second means, not of single steps; the first "
       "step is never among them. Peak memory: the trainer's peak resident set (`perf/rss_mb`). The loss "
       "of each mode is compared step by step with the eager run of the same framework, under Parity's "
       "default tolerance. Break-even: (first step compiled − first step eager) / (eager step − compiled "
       "step), from the p50s.")


@st.cache_data(max_entries=16, show_spinner=False)
def _measured(folders: tuple, signature: tuple) -> list[speed.ModeRun]:
    # Keyed by the files' signature: a trainer's write makes a new key; a finished face-off is read once.
    return speed.read_runs(folders)


def _faceoff(root, groups: dict[str, list[str]]):
    group = st.sidebar.selectbox("Face-off", list(groups), key="speed_group",
                                 help="Newest first; `twinboard faceoff` launches one")
    ids = set(groups[group])
    started = {r.run_id for r in runs.list_runs(root) if r.run_id in ids and r.state != "queued"}
    st.caption(f"**{md(group)}**: {len(ids)} pairs, {len(started)} started. One spec, every execution "
               "mode; each pair trained alone on the machine (the queue admits whole pairs).")
    return speed.group_folders(root, group), lambda: any(r.active for r in runs.list_runs(root) if r.run_id in ids)


def _pair(root):
    pair = pick_pair("speed")
    if pair is None:
        return None, None
    st.caption(f"{md(pair.left.label)} against {md(pair.right.label)}")
    return speed.pair_folders(pair), lambda: runs.pair_is_live(pair, root)


def _problems(measured: list[speed.ModeRun]) -> None:
    for run in measured:
        for problem in run.problems:
            st.warning(md(problem), icon=":material/warning:")
        if run.fell_back:
            st.warning(f"{md(run.name)} was asked for {md(run.mode)} but ran {md(run.execution)}"
                       + (f": {md(run.note)}" if run.note else "."), icon=":material/warning:")


def _mode_notes(measured: list[speed.ModeRun]) -> None:
    notes = dict.fromkeys((speed.mode_label(r), r.note) for r in measured if r.note)  # a mode run twice: once
    if notes:
        with st.expander("What each mode runs (the trainers' notes)"):
            st.markdown("\n".join(f"- **{md(label)}**: {md(note, LINE_CHARS)}" for label, note in notes))


def _body(folders: list, is_live, live: bool) -> None:
    """Everything below the choice: a fragment, rerun every REFRESH_S while `live`."""
    if is_live() != live:
        st.rerun()  # a run ended (the timer stops) or started
    measured = _measured(tuple(folders), speed.signature(folders))
    if not measured:
        st.info("No run of this face-off has started yet: its pairs are queued. This page updates by "
                "itself as they train.", icon=":material/hourglass:")
        return
    _problems(measured)
    table = speed.speed_table(measured)
    st.dataframe(table.drop(columns=HIDDEN), hide_index=True, key="speed_table",
                 column_config={c: st.column_config.NumberColumn(c, format=f) for c, f in FORMATS.items()})
    st.caption(HOW)
    st.markdown("\n".join(f"- {framework_badge(fw)}\n" + "\n".join(f"  - {md(s, LINE_CHARS)}" for s in sentences)
                           for fw, sentences in speed.framework_sentences(measured, table)))
    _mode_notes(measured)
    top = st.columns(2)
    top[0].plotly_chart(speed.first_step_figure(table), key="speed_first_step", config=CHART_CONFIG)
    top[1].plotly_chart(speed.step_time_figure(table), key="speed_step_time", config=CHART_CONFIG)
    bottom = st.columns(2)
    bottom[0].plotly_chart(speed.step_box_figure(measured), key="speed_step_box", config=CHART_CONFIG)
    bottom[1].plotly_chart(speed.memory_figure(table), key="speed_memory", config=CHART_CONFIG)


def main() -> None:
    st.title("Speed")
    root = logdir()
    groups = speed.faceoff_groups(root)
    source = st.sidebar.radio("Show", [FACEOFF, PAIR] if groups else [PAIR], key="speed_source",
                              help="A face-off: one spec in all five execution modes, three pairs. One pair: "
                                   "the pair chosen on every page.")
    if source == FACEOFF:
        folders, is_live = _faceoff(root, groups)
    else:
        if not groups:
            st.caption("No face-off in this logdir yet: `twinboard faceoff --task digits --steps 2000 --wait` "
                       "trains one spec as PyTorch eager and torch.compile, TensorFlow eager, tf.function and "
                       "XLA. Below, the chosen pair's two sides.")
        folders, is_live = _pair(root)
        if folders is None:
            return
    st.sidebar.button("Refresh now", key="speed_refresh", icon=":material/refresh:")
    live = is_live()
    st.fragment(run_every=REFRESH_S if live else None)(_body)(folders, is_live, live)


main()
