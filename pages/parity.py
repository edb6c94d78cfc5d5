"""Parity: where a pair's train losses part, their final metrics and speed, and every setting each
side really used, with the ones that differ highlighted and explained. Live while a run trains."""
from __future__ import annotations

import pandas as pd
import streamlit as st

from pages.common import pick_pair, side_label
from twinboard import events, parity, runs
from twinboard.config import logdir
from twinboard.events import CorruptRecordError

REFRESH_S = 2.0  # refresh interval while either side's job is queued or running
ACTIVE = ("queued", "running")
TOLERANCES = [10.0 ** -k for k in range(15, 0, -1)]  # 1e-15 ... 1e-1, relative
DEFAULT_TOL = {"float64": 1e-10, "float32": 1e-5}  # above each precision's measured floor (2e-13, 1.5e-6)
ROW_COLORS = {parity.NOT_MATCHED: "#F8C9C4", parity.NUMBERS: "#FAD9D5", parity.ROUNDING: "#FFF1C9",
              parity.SPEED: "#FFF1C9", parity.NAMING: "#ECEEF2"}
SERIOUS = (parity.NOT_MATCHED, parity.NUMBERS)


# --- reading -------------------------------------------------------------------------------------
def _store(run: runs.EventRun) -> events.ScalarStore:
    """One incremental store per session and side folder: a refresh reads only the bytes added since."""
    stores = st.session_state.setdefault("parity_stores", {})
    key = str(run.path)
    if key not in stores:
        stores[key] = events.ScalarStore(run.path)
    return stores[key]


def _scalars(run: runs.EventRun, report: bool) -> dict[str, events.Series]:
    """{tag: series} of the event files directly in the side's folder, read up to now."""
    store = _store(run)
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


def _live(root, pair: runs.Pair) -> bool:
    """Whether a launcher job behind either side is queued or running (uploads never are)."""
    for run_id in {r.group for r in pair.runs if r.source == "local"}:
        try:
            status = runs.get_run(run_id, logdir=root)
        except runs.LauncherError:
            continue  # not a launcher run (event files someone copied in)
        if any(j.state in ACTIVE for j in status.frameworks.values()):
            return True
    return False


def _common_tags(left: dict, right: dict) -> list[str]:
    return sorted((set(left) & set(right)) - {t for t in left if t.startswith("perf/")})


def _labels(pair: runs.Pair) -> tuple[str, str]:
    """Column names for the two sides: framework names, made unique when they are not."""
    a, b = side_label(pair.left), side_label(pair.right)
    if a == b:
        a, b = f"{a} · {pair.left.name}", f"{b} · {pair.right.name}"
    return (a, b) if a != b else (f"{a} (left)", f"{b} (right)")  # the same run on both sides


# --- sections ------------------------------------------------------------------------------------
def _precision_note(tag: str, precision: str) -> None:
    if tag == parity.FP64_TAG:
        st.caption(f"Comparing `{tag}`: float64 tensors written every step, so differences down to "
                   "~1e-16 relative show.")
    elif precision == "float32":
        st.caption(f"Comparing `{tag}`: float32 event scalars, rounded to ~6e-8 relative when written, "
                   "so differences below ~1e-7 relative cannot show (a float64 run also writes "
                   f"`{parity.FP64_TAG}` at full precision).")
    else:
        st.caption(f"Comparing `{tag}` (values wider than float32).")


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
        serious = [k for r in reasons if r.effect in SERIOUS for k in r.keys]
        because = (" Settings that change the numbers: " + ", ".join(f"`{k}`" for k in serious) + "."
                   if serious else "")
        st.warning(f"The two curves part at step **{s.first_part:,}** (relative difference "
                   f"{parity.fmt(float(diff.loc[diff.step == s.first_part, 'rel_diff'].iloc[0]), 3)} "
                   f"> {tol:.0e}).{because}", icon=":material/call_split:")
    elif s.compared:
        st.success(f"Within {tol:.0e} relative at all {s.compared:,} compared steps.",
                   icon=":material/check_circle:")
    notes = []
    if s.identical:
        notes.append(f"{s.identical:,} bit-identical steps (difference 0) leave gaps on the log axis")
    if s.diverged:
        notes.append(f"{s.diverged:,} steps where only one side is NaN/inf (counted as parted, drawn as gaps)")
    if s.only_left or s.only_right:
        notes.append(f"steps logged by one side only: {s.only_left:,} left, {s.only_right:,} right (not compared)")
    if notes:
        st.caption("; ".join(notes) + ".")
    names = _labels(pair)
    st.plotly_chart(parity.curves_figure(diff, tag, names, (pair.left.framework, pair.right.framework),
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
    a, b = _labels(pair)
    digits = lambda tag: 17 if tag == parity.FP64_TAG else 8  # noqa: E731 - float64 shows all its digits
    shown = pd.DataFrame({
        "metric": table["metric"],
        "step": [_steps(x, y) for x, y in zip(table["left_step"], table["right_step"])],
        a: [parity.fmt(v, digits(t)) for t, v in zip(table["metric"], table["left"])],
        b: [parity.fmt(v, digits(t)) for t, v in zip(table["metric"], table["right"])],
        "abs diff": [parity.fmt(v, 3) for v in table["abs_diff"]],
        "rel diff": [parity.fmt(v, 3) for v in table["rel_diff"]],
    })
    st.dataframe(shown, hide_index=True, key="parity_final")


def _steps(x, y) -> str:
    """The final step of each side: one number when they agree."""
    x, y = (parity.MISSING if pd.isna(v) else f"{int(v):,}" for v in (x, y))
    return x if x == y else f"{x} / {y}"


def _speed(pair: runs.Pair, left: dict, right: dict, settings: tuple) -> None:
    st.subheader("Speed")
    table = parity.speed_table(left, right)
    a, b = _labels(pair)
    known = pair.left.framework and pair.right.framework and pair.left.framework != pair.right.framework
    ratio = f"{b} / {a}" if known else "right / left"
    shown = pd.DataFrame({"measure": table["measure"],
                          a: [parity.fmt(v, 4) for v in table["left"]],
                          b: [parity.fmt(v, 4) for v in table["right"]],
                          ratio: [parity.fmt(v, 3) for v in table["ratio"]],
                          "points": table["points"]})
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
    a, b = _labels(pair)
    known = [s is not None for s in settings]
    if not any(known):
        st.info("Settings unknown: neither folder holds a settings.json (uploaded event files or another "
                "tool's). The curves above are compared all the same.", icon=":material/help:")
        return
    if not all(known):
        missing = a if not known[0] else b
        st.info(f"Settings unknown for {missing} (no settings.json in its folder); the other side's are "
                "listed, and nothing can be marked as differing.", icon=":material/help:")
    n_diff = int(diff["differs"].sum())
    st.caption(f"Every setting each trainer reports having used, defaults made explicit "
               f"(`<run>/<framework>/settings.json`): {len(diff):,} settings, {n_diff:,} differ. "
               "Highlighted: red changes the numbers or the experiment, yellow rounding or speed only, "
               "grey naming only.")
    rows = (diff[diff["differs"]] if only_diff else diff).reset_index(drop=True)
    shown = rows.rename(columns={"left": a, "right": b})[["setting", a, b, "differs", "effect"]]
    colors = [ROW_COLORS.get(e, "") if d else "" for d, e in zip(rows["differs"], rows["effect"])]
    styled = shown.style.apply(  # r.name is the row's position: the index was reset above
        lambda r: [f"background-color: {colors[r.name]}" if colors[r.name] else ""] * len(r), axis=1)
    st.dataframe(styled, hide_index=True, key="parity_settings",
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


# --- the page ------------------------------------------------------------------------------------
def _body(root, pair: runs.Pair, tags_seen: list[str], view: dict, live: bool) -> None:
    """Everything below the controls: a fragment, rerun every REFRESH_S while `live`."""
    left, right = _scalars(pair.left, report=True), _scalars(pair.right, report=True)
    if _common_tags(left, right) != tags_seen or _live(root, pair) != live:
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
        _precision_note(tag, view["precision"])
        diff = parity.differences(left[tag], right[tag])
        _difference(pair, diff, tag, view["tol"], view, reasons)
    cols = st.columns(2)
    with cols[0]:
        _final(pair, left, right)
    with cols[1]:
        _speed(pair, left, right, settings)
    _settings_section(pair, settings, problems, sdiff, reasons, view["only_diff"])


def parity_page() -> None:
    st.title("Parity")
    root = logdir()
    pair = pick_pair("parity")
    if pair is None:
        return
    st.caption(f"{pair.left.label} against {pair.right.label}")
    left, right = _scalars(pair.left, report=False), _scalars(pair.right, report=False)
    tags = _common_tags(left, right)
    side = st.sidebar
    side.divider()
    default = parity.choose_tag(left, right)
    tag = side.selectbox("Compare", tags, index=tags.index(default) if default in tags else 0,
                         key="parity_tag", help=f"`{parity.FP64_TAG}` when both sides wrote it "
                         "(float64 runs), else `loss/train`") if tags else None
    precision = "float64" if tag == parity.FP64_TAG or (
        tag and not parity.float32_limited(left[tag].value)) else "float32"
    tol = side.select_slider("Tolerance (relative)", TOLERANCES, value=DEFAULT_TOL[precision],
                             format_func=lambda v: f"{v:.0e}", key=f"parity_tol_{precision}",
                             help="The curves 'part' at the first step whose relative difference "
                                  "|a−b|/max(|a|,|b|) exceeds this. Floors measured on this task: "
                                  "~1e-13 in float64, ~1e-6 in float32.")
    log_curves = side.toggle("Log-scale loss curves", key="parity_log_curves")
    only_diff = side.toggle("Only settings that differ", key="parity_only_diff")
    side.button("Refresh now", key="parity_refresh", icon=":material/refresh:")
    view = {"tag": tag, "precision": precision, "tol": tol, "log_curves": log_curves,
            "only_diff": only_diff}
    live = _live(root, pair)
    st.fragment(run_every=REFRESH_S if live else None)(_body)(root, pair, tags, view, live)


parity_page()
