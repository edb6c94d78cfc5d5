"""Launch: a form for the RunSpec, and every run in the logdir with live progress per framework:
its final metrics once finished, links to its views, "launch again with changes" (the form's widgets
start from a spec in session_state: RunSpec() at first, then the chosen run's), and delete."""
from __future__ import annotations

import datetime as dt

import streamlit as st

from pages.common import framework_badge, where_runs_are
from pages.launch_form import SPEC_KEY, fill_form, spec_form
from pages.launch_sweep import sweep_form
from pages.signin import current_user
from twinboard import auth
from twinboard.auth import actions
from twinboard.contract import RunSpec, SpecError
from twinboard import runs
from twinboard.config import logdir
from twinboard.text import md

REFRESH_S = 2.0  # the run list's refresh interval while any job is queued or running
SHOWN_RUNS = 20  # newest runs listed before "show all"
STATE_COLORS = {"queued": "gray", "running": "blue", "finished": "green", "failed": "red", "stopped": "orange"}
AGAIN_KEY = "launch_again"  # session_state: the run whose spec the next full run puts in the form
CONFIRM_KEY = "launch_confirm_delete"  # session_state: the run whose delete awaits a second click
DELETED_KEY = "launch_deleted"  # session_state: (deleted?, what to say) of the last delete, said once


def _start(values: dict, name: str, root) -> None:
    try:
        spec = runs.spec_from_form(st.session_state[SPEC_KEY], values)
    except SpecError as err:
        st.error(f"Not started: {runs.error_text(err)}", icon=":material/error:")
        return
    with st.spinner("Starting both trainers…"):
        try:
            outcome = actions.launch(current_user(), spec, name or None, root)
        except auth.PermissionDenied as err:
            st.error(f"Not started: {md(err, 1000)}", icon=":material/block:")
            return
    if isinstance(outcome, runs.Launched):
        st.success(f"Started **{md(outcome.run_id)}**: it appears below; watch it on the Scalars page.",
                   icon=":material/rocket_launch:")
    else:
        code = "" if outcome.exit_code is None else f" (exit code {outcome.exit_code})"
        st.error(f"Launch failed{code}.", icon=":material/error:")
        st.code(outcome.stderr or "(no output)", language=None)


@st.cache_data(max_entries=256, show_spinner=False)
def _final_metrics(run_dir: str, signature: tuple) -> dict:
    """A run's final metrics per framework, read once per `signature` (its event files' sizes, mtimes)."""
    return runs.final_metrics(run_dir)


def _run_card(run: runs.RunStatus, root) -> None:
    with st.container(border=True, key=f"launch_card_{run.run_id}"):
        head, button = st.columns([5, 1], vertical_alignment="center")
        created = dt.datetime.fromtimestamp(run.created).strftime("%Y-%m-%d %H:%M:%S")
        head.markdown(f"**{md(run.run_id)}** :{STATE_COLORS.get(run.state, 'gray')}-badge[{run.state}]  \n"
                      f":small[:gray[{created} · {runs.spec_line(run.spec)}]]")
        if run.active and _may(auth.STOP, run) and button.button("Stop", key=f"launch_stop_{run.run_id}",
                                                                 icon=":material/stop:"):
            with st.spinner(f"Stopping {md(run.run_id)}…"):
                try:
                    actions.stop(current_user(), run.run_id, root)
                except (runs.LauncherError, auth.PermissionDenied) as err:
                    st.error(md(err, 1000))
            st.rerun()  # the whole page: the list may have nothing active any more
        # Only finished runs: a running one's last values are not final, and reading them each refresh costs.
        finals = _final_metrics(str(run.run_dir), runs.event_signature(run.run_dir)) if run.state == "finished" else {}
        for col, (fw, job) in zip(st.columns(max(len(run.frameworks), 1)), run.frameworks.items()):
            with col:
                st.markdown(f"{framework_badge(fw)} :{STATE_COLORS.get(job.state, 'gray')}-badge[{job.state}]")
                st.progress(job.progress, text=runs.progress_text(job))
                if finals.get(fw):
                    st.caption(f"final: {runs.metrics_line(finals[fw])}")
                if job.state == "failed":
                    code = "no exit status" if job.exit_code is None else f"exit code {job.exit_code}"
                    with st.expander(f"Error: {code}"):
                        st.code(job.error or "(no stderr)", language=None)
        _card_actions(run, root)


def _may(action: str, run: runs.RunStatus) -> bool:
    """Whether this visitor gets the control for `action` on `run` (the action checks again)."""
    return auth.allowed(current_user(), action, auth.owner_of(run.run_dir))


def _card_actions(run: runs.RunStatus, root) -> None:
    """Open the run on Scalars or Parity, fill the form from its spec, delete it (asked twice)."""
    rid = run.run_id
    with st.container(horizontal=True, vertical_alignment="center", key=f"launch_actions_{rid}"):
        if runs.has_events(run.run_dir):  # a listed pair once both sides have logged
            for page, title, icon in (("scalars", "Scalars", "show_chart"), ("parity", "Parity", "difference")):
                st.page_link(f"pages/{page}.py", label=title, icon=f":material/{icon}:", query_params={"pair": rid})
        if _may(auth.LAUNCH, run) and st.button("Launch again with changes", key=f"launch_again_{rid}",
                                                icon=":material/edit:", type="tertiary"):
            st.session_state[AGAIN_KEY] = rid
            st.rerun(scope="app")  # the form is outside this fragment; the next full run fills it
        if not run.active and _may(auth.DELETE_RUN, run) and st.button(
                "Delete", key=f"launch_delete_{rid}", icon=":material/delete:", type="tertiary"):
            st.session_state[CONFIRM_KEY] = rid
    if st.session_state.get(CONFIRM_KEY) != rid:
        return
    st.warning(f"Delete **{md(rid)}** and all its files (event files, exports, logs)? This cannot be undone.")
    with st.container(horizontal=True):
        delete = st.button("Delete for good", key=f"launch_delete_yes_{rid}", type="primary")
        cancel = st.button("Cancel", key=f"launch_delete_no_{rid}")
    if delete:
        try:
            actions.delete_run(current_user(), rid, root)
            st.session_state[DELETED_KEY] = (True, f"Deleted {md(rid)}.")
        except (runs.LauncherError, auth.PermissionDenied) as err:
            st.session_state[DELETED_KEY] = (False, f"Not deleted: {md(err, 1000)}")
    if delete or cancel:
        st.session_state.pop(CONFIRM_KEY, None)
        st.rerun(scope="app")


def _fill_from(run_id: str, root) -> None:
    """Fill the form from a run's spec (validated: run.json may be old or edited by hand)."""
    try:
        spec = RunSpec.from_dict(runs.get_run(run_id, root).spec).to_dict()
    except (SpecError, TypeError, runs.LauncherError) as err:
        st.error(f"Cannot fill the form from {md(run_id)}: {md(err, 1000)}", icon=":material/error:")
        return
    fill_form(spec, overwrite=True)
    st.session_state["launch_name"] = ""  # its name is taken; a new one, or the default
    # A toast: the click was down in the run list, and the page keeps its scroll position.
    st.toast(f"The form above holds the spec of **{md(run_id)}**: change it, then Start.", icon=":material/edit:")


def _runs_list(root, live: bool) -> None:
    """The run list; a fragment that reruns every REFRESH_S while `live` (decided by the last full run)."""
    found = sorted(runs.list_runs(root), key=lambda r: (r.created, r.run_id), reverse=True)
    active = any(r.active for r in found)
    if active != live:
        st.rerun()  # a full run re-declares this fragment with the timer on, or off
    deleted, said = st.session_state.pop(DELETED_KEY, (True, None))
    if said:
        (st.success if deleted else st.error)(said)
    if not found:
        st.info(f"No runs yet in {where_runs_are(root)}.", icon=":material/info:")
        return
    show_all = len(found) > SHOWN_RUNS and st.toggle(f"Show all {len(found)} runs", key="launch_show_all")
    for run in found if show_all else found[:SHOWN_RUNS]:
        _run_card(run, root)


def main() -> None:
    root = logdir()
    st.title("Launch a matched run")
    st.caption("One spec, two trainers: PyTorch and TensorFlow train the same model on the same batches. "
               f"Runs are written to {where_runs_are(root)}.")
    if again := st.session_state.pop(AGAIN_KEY, None):
        _fill_from(again, root)
    if auth.allowed(current_user(), auth.LAUNCH):
        values, name, submitted = spec_form(root)
        if submitted:
            _start(values, name, root)
        sweep_form(root)
    else:
        st.info("Your role can look at every run but not start one.", icon=":material/visibility:")
    st.subheader("Runs")
    live = any(r.active for r in runs.list_runs(root))
    st.fragment(run_every=REFRESH_S if live else None)(_runs_list)(root, live)


main()
