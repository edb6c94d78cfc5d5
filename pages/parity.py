"""Parity: where a pair's train losses part, their final metrics and speed, and every setting each
side really used, with the ones that differ highlighted and explained. Live while a run trains."""
from __future__ import annotations

import pandas as pd
import streamlit as st

from pages.common import pick_pair, scalar_store, side_label
from twinboard import events, parity, runs
from twinboard.config import logdir
from twinboard.contract import CorruptRecordError

REFRESH_S = 2.0  # refresh interval while either side's job is queued or running


def _scalars(run: runs.EventRun, report: bool) -> dict[str, events.Series]:
    """{tag: series} of the event files directly in the side's folder, read up to now."""
    store = scalar_store(str(run.path))
    try:
        store.refresh()
    except (CorruptRecordError, OSError, ValueError) as err:
        if report:
            st.error(f"Could not read the event files of `{run.name}`: {err}", icon=":material/error:")
    for problem in store.problems() if report else ():
        st.warning(problem, icon=":material/warning:")
    return {t: store.series(".", t) for t in store.tags(".")}


def _settings(run: runs.EventRun) -> tuple[dict | None, str | None]:
    try:
        return parity.read_settings(run.path), None
    except parity.SettingsError as err:
        return None, str(err)


def _names(pair: runs.Pair) -> tuple[str, str]:
    return parity.column_names(side_label(pair.left), side_label(pair.right), pair.left.name, pair.right.name)


def _difference(pair: runs.Pair, diff: pd.DataFrame, tag: str, tol: float, view: dict,
                reasons: list[parity.Reason]) -> None:
    s = parity.summarize(diff, tol)
    c = st.columns(4)
    c[0].metric("First step beyond tolerance", f"{s.first_part:,}" if s.first_part is not None else "none",
                help=f"First step whose relative difference exceeds {tol:.0e}")
    c[1].metric("Max relative difference", parity.fmt(s.max_rel, 3),
                help=f"at step {s.max_rel_step:,}" if s.max_rel_step is not None else None)
    c[2].metric("Final relative difference", parity.fmt(s.final_rel, 3),
                help=f"at step {s.final_step:,}" if s.final_step is not None else None)
    c[3].metric("Steps compared", f"{s.compared:,}", help=f"{s.identical:,} of them bit-identical")
    if s.first_part is not None:
        st.warning(parity.parting_text(diff, s, reasons), icon=":material/call_split:")
    elif s.compared:
        st.success(f"Within {tol:.0e} relative at all {s.compared:,} compared steps.",
                   icon=":material/check_circle:")
    notes = parity.summary_notes(s)
    if notes:
        st.caption("; ".join(notes) + ".")
    st.plotly_chart(parity.curves_figure(diff, tag, _names(pair), (pair.left.framework, pair.right.framework),
                                         log_y=view["log_curves"]),
                    key="parity_curves", config={"displaylogo": False})
    st.plotly_chart(parity.difference_figure(diff, tag, tol, s.first_part),
                    key="parity_difference", config={"displaylogo": False})


def _final(pair: runs.Pair, left: dict, right: dict) -> None:
    st.subheader("Final metrics")
    table = parity.final_metrics(left, right)
    if table.empty:
        st.info("No metrics logged yet.")
        return
    st.dataframe(parity.final_shown(table, _names(pair)), hide_index=True, key="parity_final")


def _speed(pair: runs.Pair, left: dict, right: dict, settings: tuple) -> None:
    st.subheader("Speed")
    a, b = _names(pair)
    known = pair.left.framework and pair.right.framework and pair.left.framework != pair.right.framework
    shown = parity.speed_shown(parity.speed_table(left, right), (a, b), f"{b} / {a}" if known else "right / left")
    st.dataframe(shown, hide_index=True, key="parity_speed")
    modes = [(s or {}).get("execution_mode") for s in settings]
    if any(modes):
        st.caption(f"Execution: {a} {modes[0] or 'unknown'}; {b} {modes[1] or 'unknown'}. "
                   "Medians over the logged `perf/*` points (each one the mean step time since the "
                   "previous point, about a second of training), so warm-up steps and a busy "
                   "machine weigh little.")


def _settings_section(pair: runs.Pair, settings: tuple, problems: list[str], diff: pd.DataFrame,
                      reasons: list[parity.Reason], only_diff: bool) -> None:
    st.subheader("Settings")
    for p in problems:
        st.error(p, icon=":material/error:")
    a, b = _names(pair)
    known = [s is not None for s in settings]
    if not any(known):
        st.info("Settings unknown: neither folder holds a settings.json (uploaded event files or another "
                "tool's). The curves above are compared all the same.", icon=":material/help:")
        return
    if not all(known):
        missing = a if not known[0] else b
        st.info(f"Settings unknown for {missing} (no settings.json in its folder); the other side's are "
                "listed, and nothing can be marked as differing.", icon=":material/help:")
    st.caption(f"Every setting each trainer reports having used, defaults made explicit "
               f"(`<run>/<framework>/settings.json`): {len(diff):,} settings, {int(diff['differs'].sum()):,} "
               "differ. Highlighted: red changes the numbers or the experiment, yellow rounding or speed only, "
               "grey naming only.")
    st.dataframe(parity.settings_table(diff, (a, b), only_diff), hide_index=True, key="parity_settings",
                 column_config={"differs": st.column_config.CheckboxColumn("differs", width="small")})
    if not reasons:
        return
    st.markdown("**Why they may differ**")
    lines = [f"- **{r.effect}** · {', '.join(f'`{k}`' for k in r.keys)}: {r.text}"
             for r in reasons if r.effect != parity.NAMING]
    if lines:
        st.markdown("\n".join(lines))
    naming = [k for r in reasons if r.effect == parity.NAMING for k in r.keys]
    if naming:
        st.caption("Differ in name only (expected between two frameworks): "
                   + ", ".join(f"`{k}`" for k in naming) + ".")


def _body(root, pair: runs.Pair, tags_seen: list[str], view: dict, live: bool) -> None:
    """Everything below the controls: a fragment, rerun every REFRESH_S while `live`."""
    left, right = _scalars(pair.left, report=True), _scalars(pair.right, report=True)
    if parity.common_tags(left, right) != tags_seen or runs.pair_is_live(pair, root) != live:
        st.rerun()  # new tags (the tag picker lists them) or a run ended (the timer stops)
    settings, problems = zip(*(_settings(r) for r in pair.runs))
    problems = [p for p in problems if p]
    sdiff = parity.settings_diff(*settings)
    reasons = parity.why_they_differ(sdiff)
    tag = view["tag"]
    if tag is None or tag not in left or tag not in right:
        st.info("No series both sides have logged yet. A run that has just started writes its first "
                "ones within a few steps; this page updates by itself while it runs."
                if live else "These two runs share no scalar tag to compare.", icon=":material/hourglass:")
    else:
        st.caption(parity.precision_note(tag, view["precision"]))
        diff = parity.differences(left[tag], right[tag])
        _difference(pair, diff, tag, view["tol"], view, reasons)
    cols = st.columns(2)
    with cols[0]:
        _final(pair, left, right)
    with cols[1]:
        _speed(pair, left, right, settings)
    _settings_section(pair, settings, problems, sdiff, reasons, view["only_diff"])


def main() -> None:
    st.title("Parity")
    root = logdir()
    pair = pick_pair("parity")
    if pair is None:
        return
    st.caption(f"{pair.left.label} against {pair.right.label}")
    left, right = _scalars(pair.left, report=False), _scalars(pair.right, report=False)
    tags = parity.common_tags(left, right)
    side = st.sidebar
    side.divider()
    default = parity.choose_tag(left, right)
    tag = side.selectbox("Compare", tags, index=tags.index(default) if default in tags else 0,
                         key="parity_tag", help=f"`{parity.FP64_TAG}` when both sides wrote it "
                         "(float64 runs), else `loss/train`") if tags else None
    precision = parity.precision_of(tag, left[tag].value if tag else None)
    tol = side.select_slider("Tolerance (relative)", parity.TOLERANCES, value=parity.DEFAULT_TOL[precision],
                             format_func=lambda v: f"{v:.0e}", key=f"parity_tol_{precision}",
                             help="The curves 'part' at the first step whose relative difference "
                                  "|a−b|/max(|a|,|b|) exceeds this. Floors measured on this task: "
                                  "~1e-13 in float64, ~1e-6 in float32.")
    log_curves = side.toggle("Log-scale loss curves", key="parity_log_curves")
    only_diff = side.toggle("Only settings that differ", key="parity_only_diff")
    side.button("Refresh now", key="parity_refresh", icon=":material/refresh:")
    view = {"tag": tag, "precision": precision, "tol": tol, "log_curves": log_curves, "only_diff": only_diff}
    live = runs.pair_is_live(pair, root)
    st.fragment(run_every=REFRESH_S if live else None)(_body)(root, pair, tags, view, live)


main()
