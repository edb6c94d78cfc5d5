"""The Upload page's export section: scalars of any selection of runs and tags as one CSV or Parquet file."""
from __future__ import annotations

import streamlit as st

from twinboard import runs, tagmap, uploads
from twinboard.contract import CorruptRecordError
from twinboard.text import md


def export_section(root) -> None:
    st.subheader("Export scalars")
    event_runs = runs.list_event_runs(root)
    if not event_runs:
        return st.info("No event runs to export.")
    by_name = {r.name: r for r in event_runs}
    chosen = st.multiselect("Runs", list(by_name), key="export_runs", format_func=lambda n: by_name[n].label)
    mapped = st.checkbox("Rename tags through each upload's mapping", key="export_mapped",
                         help="Keras train/ then also carries validation/ (as one run); steps stay as logged.")
    if not chosen:
        return
    try:
        df = uploads.collect([(n, by_name[n].path) for n in chosen], mapped=mapped, logdir=root)
    except (CorruptRecordError, tagmap.MappingError, OSError) as err:
        return st.error(f"Could not read the scalars: {md(err, 1000)}")
    all_tags = sorted(df["tag"].unique())
    tags = st.multiselect("Tags (none chosen = all)", all_tags, key="export_tags")
    df = df[df["tag"].isin(tags or all_tags)]
    st.caption(f"{len(df)} points; columns {', '.join(uploads.COLUMNS)}.")
    c1, c2 = st.columns(2)
    c1.download_button("Download CSV", uploads.to_csv_bytes(df), "twinboard-scalars.csv", "text/csv",
                       key="export_csv", disabled=df.empty)
    c2.download_button("Download Parquet", uploads.to_parquet_bytes(df), "twinboard-scalars.parquet",
                       "application/vnd.apache.parquet", key="export_parquet", disabled=df.empty)
