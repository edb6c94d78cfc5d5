"""Upload: import event files (archives or raw), manage uploads and their tag mapping, export scalars."""
from __future__ import annotations

import pandas as pd
import streamlit as st

from twinboard import runs, tagmap, uploads
from twinboard.config import logdir
from twinboard.contract import CorruptRecordError

RULE_COLUMNS = ["run", "tag", "to", "step_unit", "step_offset"]


def handle_upload(name: str, files: list[tuple[str, bytes]]) -> uploads.ImportResult | None:
    """Import (filename, bytes) items under `name` ("" = the default name) and report on the page.

    The uploader's button calls this; it is the whole of the page's upload handling."""
    try:
        result = uploads.import_upload(files, name.strip() or None, logdir())
    except uploads.UploadRefused as err:
        st.error(f"Upload refused, nothing was changed. **{err.path}**: {err.reason}", icon=":material/block:")
        return None
    st.success(f"Imported **{result.name}**: {result.files} files, {len(result.runs)} runs "
               f"({', '.join(result.runs)}) under `uploads/{result.name}/`.", icon=":material/check:")
    for warning in result.warnings:
        st.warning(warning, icon=":material/warning:")
    return result


def _import_section() -> None:
    st.subheader("Import")
    files = st.file_uploader("A .zip, .tar.gz / .tgz, or event files (`events.out.tfevents.*`)",
                             accept_multiple_files=True, key="upload_files")
    suggested = uploads.default_name([f.name for f in files or []]) if files else ""
    name = st.text_input("Name", key="upload_name", placeholder=suggested or "defaults to the archive's name",
                         help="Letters, digits, '-', '_' and '.'; the upload lands in uploads/<name>/.")
    if st.button("Import", key="upload_import", disabled=not files, type="primary"):
        handle_upload(name, [(f.name, f.getvalue()) for f in files])


def _manage_section(root) -> str | None:
    """The uploads table, rename and delete (with confirmation); returns the selected upload."""
    st.subheader("Uploads")
    found = uploads.list_uploads(root)
    if not found:
        st.info("No uploads yet.")
        return None
    st.dataframe(pd.DataFrame({"name": [u.name for u in found], "runs": [", ".join(u.runs) for u in found],
                               "files": [u.files for u in found], "MB": [round(u.bytes / 1e6, 3) for u in found],
                               "modified": pd.to_datetime([u.modified for u in found], unit="s")}),
                 hide_index=True)
    names = [u.name for u in found]
    selected = st.selectbox("Upload", names, key="upload_selected")
    left, right = st.columns(2)
    with left:
        new = st.text_input("New name", key="upload_new_name")
        if st.button("Rename", key="upload_rename", disabled=not new.strip()):
            try:
                uploads.rename_upload(selected, new.strip(), root)
                st.session_state.pop("upload_selected", None)
                st.rerun()
            except uploads.UploadRefused as err:
                st.error(f"Not renamed. **{err.path}**: {err.reason}")
    with right:
        if st.session_state.get("upload_confirm_delete") != selected:
            if st.button("Delete…", key="upload_delete"):
                st.session_state["upload_confirm_delete"] = selected
                st.rerun()
        else:
            st.warning(f"Delete **{selected}** and every file in it? This cannot be undone.")
            yes, no = st.columns(2)
            if yes.button("Yes, delete", key="upload_delete_yes", type="primary"):
                st.session_state.pop("upload_confirm_delete", None)
                try:
                    uploads.delete_upload(selected, root)
                except uploads.UploadRefused as err:
                    st.error(f"Not deleted. **{err.path}**: {err.reason}")
                    return selected
                st.session_state.pop("upload_selected", None)
                st.rerun()
            if no.button("Cancel", key="upload_delete_no"):
                st.session_state.pop("upload_confirm_delete", None)
                st.rerun()
    return selected


def _mapping_section(root, name: str) -> None:
    """Edit the selected upload's tag mapping and preview which of its tags become which of ours."""
    folder = root / uploads.UPLOADS / name
    try:
        mapping = tagmap.mapping_for_run(folder, root)  # what the Scalars page uses for this upload
    except tagmap.MappingError as err:
        st.warning(f"{err}; showing the default rules instead.")
        mapping = tagmap.default_mapping([r.name for r in runs.list_event_runs(folder)])
    with st.expander(f"Tag mapping and x axis for **{name}**"):
        st.caption("First matching rule wins; patterns match the whole run name / tag (regex). "
                   "`to` formats the named groups (`{metric}/{split}`); an empty `to` drops the series. "
                   "step_unit 'epoch' = the logged step counts epochs (Keras, with step_offset 1).")
        rules = st.data_editor(
            pd.DataFrame([r.__dict__ for r in mapping.rules], columns=RULE_COLUMNS), num_rows="dynamic",
            key=f"upload_map_{name}_rules", hide_index=True, column_config={
                "step_unit": st.column_config.SelectboxColumn(options=list(tagmap.STEP_UNITS), default="step"),
                "step_offset": st.column_config.NumberColumn(step=1, default=0)})
        c1, c2, c3 = st.columns(3)
        x_axis = c1.selectbox("x axis", tagmap.X_AXES, index=tagmap.X_AXES.index(mapping.x_axis),
                              key=f"upload_map_{name}_x")
        spe = c2.number_input("Steps per epoch (0 = unknown)", min_value=0.0,
                              value=float(mapping.steps_per_epoch or 0), key=f"upload_map_{name}_spe")
        bs = c3.number_input("Batch size (0 = unknown)", min_value=0, value=int(mapping.batch_size or 0),
                             key=f"upload_map_{name}_bs")
        try:
            edited = mapping.replace(rules=_rules(rules), x_axis=x_axis, steps_per_epoch=spe or None,
                                     batch_size=int(bs) or None)
        except (tagmap.MappingError, ValueError, TypeError) as err:
            st.error(f"Mapping not usable: {err}")
            return
        if st.button("Save mapping", key=f"upload_map_{name}_save"):
            tagmap.save(edited, folder)
            st.success(f"Saved `uploads/{name}/{tagmap.MAPPING_FILE}`.")
        _mapping_preview(root, folder, edited)


def _rules(table: pd.DataFrame) -> tuple[tagmap.Rule, ...]:
    """The editor's rows as rules; rows without a run or tag pattern are ignored, blanks take defaults."""
    def text(v, default: str = "") -> str:
        return default if v is None or (isinstance(v, float) and pd.isna(v)) else str(v)

    return tuple(tagmap.Rule(text(r.run), text(r.tag), text(r.to), text(r.step_unit, "step"),
                             int(float(text(r.step_offset, "0"))))
                 for r in table.itertuples(index=False) if text(r.run) and text(r.tag))


def _mapping_preview(root, folder, mapping: tagmap.Mapping) -> None:
    try:
        frames = [tagmap.folder_scalars(r.path, r.name) for r in runs.list_event_runs(folder)]
        df = pd.concat(frames, ignore_index=True) if frames else None
    except (CorruptRecordError, OSError) as err:
        st.error(f"Could not read the upload's scalars: {err}")
        return
    if df is None or df.empty:
        st.info("No scalars in this upload.")
        return
    pairs = df[["run", "tag"]].astype(str).drop_duplicates()
    pairs["ours"] = [tagmap.resolve(r, t, mapping)[0] or "(dropped)" for r, t in pairs.itertuples(index=False)]
    st.dataframe(pairs.rename(columns={"tag": "logged tag", "ours": "our tag"}), hide_index=True)
    try:
        tagmap.apply(df, mapping)
    except tagmap.MappingError as err:
        st.warning(f"x axis: {err}")


def _export_section(root) -> None:
    st.subheader("Export scalars")
    event_runs = runs.list_event_runs(root)
    if not event_runs:
        st.info("No event runs to export.")
        return
    by_name = {r.name: r for r in event_runs}
    chosen = st.multiselect("Runs", list(by_name), key="export_runs", format_func=lambda n: by_name[n].label)
    mapped = st.checkbox("Rename tags through each upload's mapping", key="export_mapped",
                         help="Keras train/ then also carries validation/ (as one run); steps stay as logged.")
    if not chosen:
        return
    try:
        df = uploads.collect([(n, by_name[n].path) for n in chosen], mapped=mapped, logdir=root)
    except (CorruptRecordError, tagmap.MappingError, OSError) as err:
        st.error(f"Could not read the scalars: {err}")
        return
    all_tags = sorted(df["tag"].unique())
    tags = st.multiselect("Tags (none chosen = all)", all_tags, key="export_tags")
    df = df[df["tag"].isin(tags or all_tags)]
    st.caption(f"{len(df)} points; columns {', '.join(uploads.COLUMNS)}.")
    c1, c2 = st.columns(2)
    c1.download_button("Download CSV", uploads.to_csv_bytes(df), "twinboard-scalars.csv", "text/csv",
                       key="export_csv", disabled=df.empty)
    c2.download_button("Download Parquet", uploads.to_parquet_bytes(df), "twinboard-scalars.parquet",
                       "application/vnd.apache.parquet", key="export_parquet", disabled=df.empty)


def main() -> None:
    st.title("Upload")
    st.caption("Event files from anywhere (Keras, torch, tensorboardX, TF1) become runs under "
               "`uploads/<name>/`, shown on every page beside local runs.")
    root = logdir()
    _import_section()
    selected = _manage_section(root)
    if selected:
        _mapping_section(root, selected)
    _export_section(root)


main()
