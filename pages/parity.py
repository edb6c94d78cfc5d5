"""Parity: where a pair's train losses part, their final metrics and speed, and every setting each
side really used, with the ones that differ highlighted and explained. Live while a run trains."""
from __future__ import annotations

import pandas as pd
import streamlit as st

from pages.common import scalar_store, side_label
from pages.pair_picker import pick_pair
from twinboard import events, parity, runs
from twinboard.config import logdir
from twinboard.contract import CorruptRecordError
from twinboard.text import code, md

REFRESH_S = 2.0  # refresh interval while either side's job is queued or running
VERDICT_BOX = {"success": st.success, "warning": st.warning, "info": st.info}
VERDICT_ICON = {"success": ":material/check_circle:", "warning": ":material/call_split:", "info": ":material/hourglass:"}


def _scalars(run: runs.EventRun, report: bool) -> dict[str, events.Series]:
    """{tag: series} of the event files directly in the side's folder, read up to now."""
    store = scalar_store(str(run.path))
    try:
        store.refresh()
    except (CorruptRecordError, OSError, ValueError) as err:
        if report:
            st.error(f"Could not read the event files of {code(run.name)}: {md(err, 1000)}", icon=":material/error:")
    for problem in store.problems() if report else ():
        st.warning(md(problem, 1000), icon=":material/warning:")
    return {t: store.series(".", t) for t in store.tags(".")}


def _settings(run: runs.EventRun) -> tuple[dict | None, str | None]:
    try:
        return parity.read_settings(run.path), None
    except parity.SettingsError as err:
        return None, str(err)


def _names(pair: runs.Pair) -> tuple[str, str]:
    return parity.column_names(side_label(pair.left), side_label(pair.right), pair.left.name, pair.right.name)


def _difference(pair: runs.Pair, diff: pd.DataFrame, s: parity.Summary, tag: str, view: dict) -> None:
    c = st.columns(5)
    c[0].metric("Curves part at step", f"{s.first_part:,}" if s.first_part is not None else "none",
                help=f"The first step where {parity.tolerance_rule(s)} fails")
    c[1].metric("Worst step / tolerance", parity.fmt(s.worst, 3),
                help="|a − b| over what the tolerance allows at that step: 1 or less agrees"
                     + (f"; at step {s.worst_step:,}" if s.worst_step is not None else ""))
    c[2].metric("Max absolute difference", parity.fmt(s.max_abs, 3),
                help=f"at step {s.max_abs_step:,}" if s.max_abs_step is not None else None)
    c[3].metric("Max relative difference", parity.fmt(s.max_rel, 3),
                help=(f"|a − b| / max(|a|, |b|), at step {s.max_rel_step:,}: large where both values are "
                      "near 0, which the absolute tolerance is for") if s.max_rel_step is not None else None)
    c[4].metric("Steps compared", f"{s.compared:,}", help=f"{s.identical:,} of them bit-identical")
    notes = parity.summary_notes(s)
    if notes:
        st.caption("; ".join(notes) + ".")
    st.plotly_chart(parity.curves_figure(diff, tag, _names(pair), (pair.left.framework, pair.right.framework),
                                         log_y=view["log_curves"]),
                    key="parity_curves", config={"displaylogo": False})
    st.plotly_chart(parity.difference_figure(diff, tag, view["tol"], s.first_part),
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
        st.caption(f"Execution: {md(a)} {md(parity.mode_text(modes[0]), 100)}; "
                   f"{md(b)} {md(parity.mode_text(modes[1]), 100)}. "
                   "Medians over the logged `perf/*` points (each one the mean step time since the "
                   "previous point, about a second of training), so warm-up steps and a busy "
                   "machine weigh little.")


def _settings_section(pair: runs.Pair, settings: tuple, problems: list[str], diff: pd.DataFrame,
                      reasons: list[parity.Reason], only_diff: bool) -> None:
    st.subheader("Settings")
    for p in problems:
        st.error(md(p, 1000), icon=":material/error:")
    a, b = _names(pair)
    known = [s is not None for s in settings]
    if not any(known):
        st.info("Settings unknown: neither folder holds a settings.json (uploaded event files or another "
                "tool's). The curves above are compared all the same.", icon=":material/help:")
        return
    if not all(known):
        missing = a if not known[0] else b
        st.info(f"Settings unknown for {md(missing)} (no settings.json in its folder); the other side's are "
                "listed, and nothing can be marked as differing.", icon=":material/help:")
    st.caption(f"Every setting each trainer reports having used, defaults made explicit "
               f"(`<run>/<framework>/settings.json`): {len(diff):,} settings, {int(diff['differs'].sum()):,} "
               "differ. Highlighted: red changes the numbers or the experiment, yellow rounding or speed only, "
               "grey layout or naming only.")
    st.dataframe(parity.settings_table(diff, (a, b), only_diff), hide_index=True, key="parity_settings",
                 column_config={"differs": st.column_config.CheckboxColumn("differs", width="small")})
    if not reasons:
        return
    st.markdown("**Why they may differ**")
    # Keys and some reasons quote settings.json, an upload's file: shown as text.
    lines = [f"- **{r.effect}** · {', '.join(code(k, 200) for k in r.keys)}: {md(r.text, 1000)}"
             for r in reasons if r.effect not in parity.COSMETIC]
    if lines:
        st.markdown("\n".join(lines))
    note = parity.cosmetic_note(reasons)
    if note:
        st.caption(note)


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
    compared = tag is not None and tag in left and tag in right
    diff = parity.differences(left[tag], right[tag]) if compared else None
    summary = parity.summarize(diff, view["tol"]) if compared else None
    said = parity.verdict(reasons, summary, tuple(s is not None for s in settings), diff)
    VERDICT_BOX[said.level](said.text, icon=VERDICT_ICON[said.level])
    if not compared:
        st.info("No series both sides have logged yet. A run that has just started writes its first "
                "ones within a few steps; this page updates by itself while it runs."
                if live else "These two runs share no scalar tag to compare.", icon=":material/hourglass:")
    else:
        st.caption(parity.precision_note(tag, view["precision"]))
        _difference(pair, diff, summary, tag, view)
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
    st.caption(f"{md(pair.left.label)} against {md(pair.right.label)}")
    left, right = _scalars(pair.left, report=False), _scalars(pair.right, report=False)
    tags = parity.common_tags(left, right)
    side = st.sidebar
    side.divider()
    default = parity.choose_tag(left, right)
    if st.session_state.get("parity_tag_of") != str(pair.left.path):  # another pair: its own best series
        st.session_state.pop("parity_tag", None)
        st.session_state["parity_tag_of"] = str(pair.left.path)
    tag = side.selectbox("Compare", tags, index=tags.index(default) if default in tags else 0,
                         key="parity_tag", help=f"`{parity.FP64_TAG}` when both sides wrote it "
                         "(float64 runs), else `loss/train`") if tags else None
    precision = parity.precision_of(tag, left[tag].value if tag else None)
    defaults = parity.DEFAULT_TOL[precision]  # keyed by precision: a float64 tag gets float64's defaults
    rule = ("The curves 'part' at the first step where |a−b| > atol + rtol·max(|a|,|b|) (numpy.allclose's "
            f"rule, symmetric). Defaults for {precision}: rtol {defaults.rtol:.0e}, atol {defaults.atol:.0e}.")
    # The sliders hold positions in RTOLS/ATOLS: Streamlit matches float options to within 1e-9, which
    # would turn a default of 1e-12 into the 0 stop.
    rtol = side.select_slider("Relative tolerance (rtol)", range(len(parity.RTOLS)),
                              value=parity.RTOLS.index(defaults.rtol), format_func=lambda i: f"{parity.RTOLS[i]:.0e}",
                              key=f"parity_rtol_{precision}", help=rule)
    atol = side.select_slider("Absolute tolerance (atol)", range(len(parity.ATOLS)),
                              value=parity.ATOLS.index(defaults.atol), format_func=lambda i: f"{parity.ATOLS[i]:.0e}"
                              if i else "0", key=f"parity_atol_{precision}",
                              help=rule + " The absolute part keeps a loss that converges near 0 from "
                                          "parting on its last digits.")
    tol = parity.Tolerance(rtol=parity.RTOLS[rtol], atol=parity.ATOLS[atol])
    log_curves = side.toggle("Log-scale loss curves", key="parity_log_curves")
    only_diff = side.toggle("Only settings that differ", key="parity_only_diff")
    side.button("Refresh now", key="parity_refresh", icon=":material/refresh:")
    view = {"tag": tag, "precision": precision, "tol": tol, "log_curves": log_curves, "only_diff": only_diff}
    live = runs.pair_is_live(pair, root)
    st.fragment(run_every=REFRESH_S if live else None)(_body)(root, pair, tags, view, live)


main()
