"""Upload: import event files (archives or raw), manage uploads and their tag mapping, export scalars.

Names from uploads (runs, tags, entries, errors quoting them) go through text.md: text, not links.
After an import, rename or delete every control follows (picker, mapping panel, export selection)."""
from __future__ import annotations

import math
from dataclasses import asdict

import pandas as pd
import streamlit as st

from pages.signin import current_user
from pages.upload_export import export_section
from twinboard import auth, runs, tagmap, uploads
from twinboard.auth import actions
from twinboard.config import logdir
from twinboard.contract import CorruptRecordError
from twinboard.text import md, md_items, md_list, size

RULE_COLUMNS = ["run", "tag", "to", "step_unit", "step_offset"]
GEN = "upload_files_gen"  # bumped after an import: the uploader gets a new key, so it is empty again


# Actions are button callbacks: they run before the widgets are drawn, so they may move the picker, the
# name boxes and the export selection along, and leave notices [(st method, markdown)] for this run.
def _say(where: str, *notices: tuple[str, str]) -> None:
    st.session_state[f"upload_notice_{where}"] = list(notices)


def _notices(where: str) -> None:
    for kind, text in st.session_state.pop(f"upload_notice_{where}", []):
        getattr(st, kind)(text)


def _import(root) -> None:
    """All or nothing; a refusal lists every bad file with its reason, success empties the uploader."""
    gen = st.session_state.get(GEN, 0)
    files = [(f.name, f.getvalue()) for f in st.session_state.get(f"upload_files_{gen}") or []]
    try:
        result = actions.import_upload(current_user(), files, st.session_state.get("upload_name", "").strip()
                                       or None, root)
    except auth.PermissionDenied as err:
        return _say("import", ("error", md(err)))
    except uploads.UploadRefused as err:
        problems = [(p.path, p.reason) for p in uploads.every_problem(files, err, root)]
        why = f"Upload refused, nothing was changed. {len(problems)} problem(s):\n\n{md_items(problems)}"
        return _say("import", ("error", why))
    done = (f"Imported **{md(result.name)}**: {result.files} files, {len(result.runs)} runs "
            f"({md_list(result.runs)}) under `uploads/{result.name}/`.")
    _say("import", ("success", done), *(("warning", md(w, 1000)) for w in result.warnings))
    st.session_state.update({GEN: gen + 1, "upload_name": "", "upload_selected": result.name})


def _rename_or_delete(root, old: str, names: list[str], delete: bool = False) -> None:
    """Rename `old` to the "New name" box's text, or delete it; the picker then shows the new name
    (or the neighbour) and the export selection follows its runs."""
    new = None if delete else st.session_state.get("upload_new_name", "").strip()
    try:
        if delete:
            actions.delete_upload(current_user(), old, root)
        else:
            actions.rename_upload(current_user(), old, new, root)
    except auth.PermissionDenied as err:
        return _say("manage", ("error", md(err)))
    except uploads.UploadRefused as err:
        verb = "deleted" if delete else "renamed"
        return _say("manage", ("error", f"Not {verb}. **{md(err.path)}**: {md(err.reason)}"))
    rest = [n for n in names if n != old]
    after = new or (rest[min(names.index(old), len(rest) - 1)] if rest else None)
    st.session_state.update(upload_selected=after, upload_new_name="", upload_confirm_delete=None,
                            export_runs=uploads.retarget(st.session_state.get("export_runs", []), old, new))
    _say("manage", ("success", f"Deleted **{md(old)}**." if delete else f"Renamed **{md(old)}** to **{md(new)}**."))


def _import_section(root) -> None:
    st.subheader("Import")
    if not auth.allowed(current_user(), auth.UPLOAD):
        return st.info("Your role can look at every upload but not add one.", icon=":material/visibility:")
    try:
        limits = uploads.Limits.from_env()
    except uploads.UploadRefused as err:
        return st.error(f"Uploads are off until this is fixed. **{md(err.path)}**: {md(err.reason)}")
    # The uploader's own "Limit ... per file" agrees with the importer's cap, within the server's.
    per_file_mb = min(math.ceil(limits.max_total_bytes / 2**20), int(st.get_option("server.maxUploadSize")))
    files = st.file_uploader("A .zip, .tar.gz / .tgz, or event files (`events.out.tfevents.*`)",
                             accept_multiple_files=True, key=f"upload_files_{st.session_state.get(GEN, 0)}",
                             max_upload_size=max(per_file_mb, 1))
    st.caption(f"Up to {size(limits.max_total_bytes)} uncompressed per upload, all its files together; "
               f"at most {limits.max_files:,} entries, archives compressed at most {limits.max_ratio:.0f}:1.")
    suggested = uploads.default_name([f.name for f in files]) if files else ""
    st.text_input("Name", key="upload_name", placeholder=suggested or "defaults to the archive's name",
                  help="Letters, digits, '-', '_' and '.'; the upload lands in uploads/<name>/.")
    st.button("Import", key="upload_import", disabled=not files, type="primary", on_click=_import, args=(root,))
    _notices("import")


def _manage_section(root) -> str | None:
    """The uploads table, rename and delete (with confirmation); returns the selected upload."""
    st.subheader("Uploads")
    _notices("manage")
    found = uploads.list_uploads(root)
    if not found:
        st.info("No uploads yet.")
        return None
    st.dataframe(pd.DataFrame([(u.name, ", ".join(u.runs), u.files, round(u.bytes / 1e6, 3),
                                pd.Timestamp(u.modified, unit="s")) for u in found],
                              columns=["name", "runs", "files", "MB", "modified"]), hide_index=True)
    names = [u.name for u in found]
    if st.session_state.get("upload_selected") not in names:  # removed elsewhere (CLI, another session)
        st.session_state.pop("upload_selected", None)
    selected = st.selectbox("Upload", names, key="upload_selected")
    if not auth.allowed(current_user(), auth.RENAME_UPLOAD, auth.owner_of(root / uploads.UPLOADS / selected)):
        return selected  # not theirs to rename or delete: no controls (the actions refuse anyway)
    left, right = st.columns(2)
    new = left.text_input("New name", key="upload_new_name")
    left.button("Rename", key="upload_rename", disabled=not new.strip(), on_click=_rename_or_delete,
                args=(root, selected, names))
    if st.session_state.get("upload_confirm_delete") != selected:
        right.button("Delete…", key="upload_delete", on_click=st.session_state.update,
                     kwargs={"upload_confirm_delete": selected})
    else:
        right.warning(f"Delete **{md(selected)}** and every file in it? This cannot be undone.")
        yes, no = right.columns(2)
        yes.button("Yes, delete", key="upload_delete_yes", type="primary", on_click=_rename_or_delete,
                   args=(root, selected, names, True))
        no.button("Cancel", key="upload_delete_no", on_click=st.session_state.pop, args=("upload_confirm_delete",))
    return selected


def _mapping_section(root, name: str) -> None:
    """Edit the selected upload's tag mapping and preview which of its tags become which of ours."""
    folder = root / uploads.UPLOADS / name
    try:
        mapping = tagmap.mapping_for_run(folder, root)  # what the Scalars page uses for this upload
    except tagmap.MappingError as err:
        st.warning(f"{md(err, 1000)}; showing the default rules instead.")
        mapping = tagmap.default_mapping([r.name for r in runs.list_event_runs(folder)])
    with st.expander(f"Tag mapping and x axis for **{md(name)}**"):
        st.caption(f"First matching rule wins; patterns (RE2, ≤{tagmap.MAX_PATTERN_CHARS} characters) match the "
                   f"whole run name / tag. `to` fills plain `{{group}}` fields (`{{metric}}/{{split}}`, ≤"
                   f"{tagmap.MAX_TO_CHARS} characters); an empty `to` drops the series. step_unit 'epoch' = "
                   "the logged step counts epochs (Keras, with step_offset 1).")
        table = st.data_editor(
            pd.DataFrame([asdict(r) for r in mapping.rules], columns=RULE_COLUMNS), num_rows="dynamic",
            key=f"upload_map_{name}_rules", hide_index=True, column_config={
                "step_unit": st.column_config.SelectboxColumn(options=list(tagmap.STEP_UNITS), default="step"),
                "step_offset": st.column_config.NumberColumn(step=1, default=0)})
        c1, c2, c3 = st.columns(3)
        x_axis = c1.selectbox("x axis", tagmap.X_AXES, tagmap.X_AXES.index(mapping.x_axis), key=f"upload_map_{name}_x")
        spe = c2.number_input("Steps per epoch (0 = unknown)", min_value=0.0,
                              value=float(mapping.steps_per_epoch or 0), key=f"upload_map_{name}_spe")
        bs = c3.number_input("Batch size (0 = unknown)", min_value=0, value=int(mapping.batch_size or 0),
                             key=f"upload_map_{name}_bs")
        try:
            edited = mapping.replace(rules=tagmap.rules_from_rows(table.to_dict("records")), x_axis=x_axis,
                                     steps_per_epoch=spe or None, batch_size=int(bs) or None)
        except (tagmap.MappingError, ValueError, TypeError) as err:
            return st.error(f"Mapping not usable, not saved: {md(err, 1000)}")
        if auth.allowed(current_user(), auth.EDIT_MAPPING, auth.owner_of(folder)) and st.button(
                "Save mapping", key=f"upload_map_{name}_save"):
            try:
                actions.save_mapping(current_user(), name, edited, root)
                st.success(f"Saved the tag mapping of **{md(name)}** ({tagmap.MAPPING_FILE}).")
            except auth.PermissionDenied as err:
                st.error(md(err))
        try:  # the preview: which logged tag becomes which of ours
            shown, x_problem = tagmap.preview(tagmap.upload_scalars(folder), edited)
        except (CorruptRecordError, OSError, tagmap.MappingError) as err:
            return st.error(f"Could not map the upload's scalars: {md(err, 1000)}")
        if shown.empty:
            return st.info("No scalars in this upload.")
        st.dataframe(shown, hide_index=True)
        if x_problem:
            st.warning(f"x axis: {md(x_problem, 1000)}")


def main() -> None:
    st.title("Upload")
    st.caption("Event files from anywhere (Keras, torch, tensorboardX, TF1) become runs under "
               "`uploads/<name>/`, shown on every page beside local runs.")
    root = logdir()
    _import_section(root)
    selected = _manage_section(root)
    if selected:
        _mapping_section(root, selected)
    export_section(root)


main()
