"""The Launch page's data picker for task=file: upload a .npz or a .csv into the logdir's data folder
(checked first; a refused file is named with the checker's reason, as text, and nothing is saved),
choose one of the folder's files, and for a .csv its target column. The page puts the choice in the
spec's `data` and `target` fields; the launcher checks them again before the run exists."""
from __future__ import annotations

import math

import streamlit as st

from pages.signin import current_user
from twinboard import auth, datafiles
from twinboard.auth import actions
from twinboard.contract import DATA_DIR
from twinboard.text import md, md_items, size

GEN = "launch_data_gen"  # bumped after a save: the uploader gets a new key, so it is empty again
NOTICE = "launch_data_notice"  # session_state: [(st method, markdown)] left by the save for this run
# The select boxes hold the RunSpec fields under the form's own keys (launch_<field>), so "launch
# again with changes" (pages/launch_form.fill_form) puts a run's data file and target back in them.
PICK = "launch_data"  # the data file select box: RunSpec.data
TARGET = "launch_target"  # a .csv's target column select box: RunSpec.target
CONFIRM = "launch_data_confirm"  # the file whose delete awaits a second click


def _uploaded():
    return st.session_state.get(f"launch_data_upload_{st.session_state.get(GEN, 0)}")


def _save(root) -> None:
    """The Save button's callback: it runs before the widgets are drawn, so the picker can move to
    the new file and the uploader can be emptied."""
    upload = _uploaded()
    if upload is None:
        return
    try:
        summary = actions.save_data_file(current_user(), upload.name, upload.getvalue(), root)
    except auth.PermissionDenied as err:
        st.session_state[NOTICE] = [("error", f"Not saved: {md(err, 1000)}")]
        return
    except datafiles.DataFileError as err:
        st.session_state[NOTICE] = [("error", f"Not saved; the data folder is unchanged. {md(err, 1000)}")]
        return
    st.session_state[NOTICE] = [("success", f"Saved **{md(summary.name)}**: {md(summary.describe())}.")]
    st.session_state.update({GEN: st.session_state.get(GEN, 0) + 1, PICK: summary.name})
    st.session_state.pop(TARGET, None)


def _delete(root, name: str) -> None:
    try:
        actions.delete_data_file(current_user(), name, root)
        st.session_state[NOTICE] = [("success", f"Deleted **{md(name)}**.")]
        st.session_state.pop(PICK, None)  # the picker moves on without saying the file is gone
    except (auth.PermissionDenied, datafiles.DataFileError) as err:
        st.session_state[NOTICE] = [("error", f"Not deleted: {md(err, 1000)}")]
    st.session_state.pop(CONFIRM, None)


def _upload_section(root) -> None:
    if not auth.allowed(current_user(), auth.LAUNCH):
        return
    try:
        npz_cap, quota = datafiles.limits("a.npz")
        csv_cap, _ = datafiles.limits("a.csv")
    except datafiles.DataFileError as err:
        st.error(f"Uploads of data files are off until this is fixed: {md(err, 1000)}")
        return
    # The uploader's own "Limit ... per file" agrees with the checker's cap, within the server's.
    per_file_mb = min(math.ceil(max(npz_cap, csv_cap) / 2**20), int(st.get_option("server.maxUploadSize")))
    st.file_uploader("Upload a .npz (x_train, y_train, x_val, y_val) or a .csv with a header row",
                     type=["npz", "csv"], key=f"launch_data_upload_{st.session_state.get(GEN, 0)}",
                     max_upload_size=max(per_file_mb, 1))
    left = max(quota - datafiles.usage(root), 0)
    st.caption(f"Up to {size(npz_cap)} a .npz, {size(csv_cap)} a .csv; {size(left)} of the data folder's "
               f"{size(quota)} left. Labels are whole numbers 0..K-1 (classification) or floats (regression).")
    st.button("Save to the data folder", key="launch_data_save", disabled=_uploaded() is None,
              icon=":material/upload:", on_click=_save, args=(root,))


def _target(summary: datafiles.DataSummary) -> str:
    """A .csv's target column: the last one unless chosen; each option says what it would make."""
    columns = list(summary.columns)
    if st.session_state.get(TARGET) not in columns:
        st.session_state[TARGET] = columns[-1]

    def label(column: str) -> str:
        k = summary.class_columns.get(column)
        return f"{column} (classification, {k} classes)" if k else f"{column} (regression)"

    return st.selectbox("Target column", columns, key=TARGET, format_func=label,
                        help="The column the model predicts; the others are its features. Whole numbers "
                             "0..19 are class labels, any other column a regression target.")


def _delete_control(root, name: str) -> None:
    """For who may delete a data file (an admin; everyone in solo mode): a second click confirms."""
    if not auth.allowed(current_user(), auth.DELETE_DATA):
        return
    if st.session_state.get(CONFIRM) != name:
        st.button("Delete this data file…", key="launch_data_delete", type="tertiary",
                  on_click=st.session_state.update, kwargs={CONFIRM: name})
        return
    st.warning(f"Delete **{md(name)}** from the data folder? Runs queued on it will fail.")
    yes, no = st.columns(2)
    yes.button("Yes, delete", key="launch_data_delete_yes", type="primary", on_click=_delete, args=(root, name))
    no.button("Cancel", key="launch_data_delete_no", on_click=st.session_state.pop, args=(CONFIRM,))


def data_picker(root) -> tuple[str, str] | None:
    """Draw the picker; (data file name, target column: "" for a .npz), or None with no usable file."""
    st.markdown("**Your data** (task file)")
    _upload_section(root)
    for kind, text in st.session_state.pop(NOTICE, []):
        getattr(st, kind)(text)
    entries = datafiles.list_data_files(root)
    bad = [(e.name, e.error) for e in entries if e.summary is None]
    if bad:
        st.warning(f"Not usable, not offered:\n\n{md_items(bad)}")
    good = {e.name: e.summary for e in entries if e.summary is not None}
    if not good:
        st.info(f"No data files yet: upload one, or put one in `{DATA_DIR}/` in the logdir.", icon=":material/info:")
        return None
    if st.session_state.get(PICK) not in good:  # none chosen yet, deleted, or a run's that is gone
        if st.session_state.get(PICK) and st.session_state[PICK] not in dict(bad):
            st.warning(f"**{md(st.session_state[PICK])}** is not in the data folder any more.")
        st.session_state[PICK] = next(iter(good))
    name = st.selectbox("Data file", list(good), key=PICK)
    summary = good[name]
    target = _target(summary) if summary.kind == "csv" else ""
    if target:
        summary = summary.for_target(target)
    st.caption(md(summary.describe()))
    _delete_control(root, name)
    return name, target
