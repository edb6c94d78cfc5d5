"""Widgets every page shares (the run choice: pages/pair_picker.py). Pages stay thin: pick what to
show here, compute in twinboard/.

A page is a title and one function, `main()`, which its file calls last (st.Page and AppTest run
the file). Keys of a page's widgets and session state start with its prefix (`scalars_`, `hist_`).

Caching, one pattern per kind of thing kept from one script run to the next:
- Readers that keep file offsets and grow (ScalarStore, HistogramStore, GraphScanner):
  `st.cache_resource`, keyed by the folder they read as a str, shared by every session (a run is read
  once however many watch it), bounded by `max_entries`. Sessions are threads: the reader must be
  safe to share (HistogramStore, scalars.LockedStore) or come with a lock (GraphScanner).
- Data that pure functions derive from files (embedding projections, similarity):
  `st.cache_data`, keyed by the path and a signature of the files (mtimes, sizes), so new files are
  read again.
- What belongs to one viewer (the folders a session shows, the charts prepared in its last run, a
  slider's kept range, a pending confirmation): `st.session_state`, under the page's prefix.
- Never functools.lru_cache or module globals in a page: they outlive a change of logdir, and
  Streamlit neither bounds nor clears them.
"""
from __future__ import annotations

from collections.abc import Callable
from pathlib import Path

import streamlit as st

from twinboard import runs, scalars
from twinboard.config import logdir
from twinboard.text import md

SCALAR_STORES = 32  # folders whose scalars stay in memory (16 pairs); the least recently used goes

def live_view(view: Callable[[runs.Pair, Path], None], pair: runs.Pair, key: str, what: str,
              every_s: float) -> None:
    """A "Live refresh" sidebar toggle (on at first, widget key `key`; `what` names what is re-read,
    in its help) and `view(pair, root)` in a fragment that re-runs alone every `every_s` seconds
    while a side of `pair` trains and the toggle is on: only what changes as trainers write is
    redrawn. Once training has ended the fragment reruns the whole page, which draws the final data
    without a timer."""
    root = logdir()
    live = st.sidebar.toggle("Live refresh", value=True, key=key,
                             help=f"Re-read new {what} every {every_s:g} s while training runs")
    watching = live and runs.pair_is_live(pair, root)

    def refresh() -> None:
        if watching and not runs.pair_is_live(pair, root):
            st.rerun()
        view(pair, root)

    st.fragment(refresh, run_every=every_s if watching else None)()


def side_label(run: runs.EventRun) -> str:
    """'PyTorch', 'TensorFlow', or the run's name when the framework is unknown (uploads): text, so
    through `md` into markdown and labels, through `html` into plotly text."""
    return runs.FRAMEWORK_LABELS[run.framework] if run.framework else run.name


BADGE_COLORS = {"torch": "orange", "tensorflow": "blue"}  # nearest markdown colours to scalars.FRAMEWORK_COLORS


def framework_badge(framework: str | None) -> str:
    """Markdown for a small coloured 'PyTorch' / 'TensorFlow' badge (its own name when unknown)."""
    label = runs.FRAMEWORK_LABELS.get(framework, str(framework))
    return f":{BADGE_COLORS.get(framework or '', 'gray')}-badge[{md(label, 100)}]"


@st.cache_resource(max_entries=SCALAR_STORES, show_spinner=False)
def scalar_store(folder: str) -> scalars.LockedStore:
    """The incremental scalar store of one folder (its sub-folders included), shared by every
    session and page: a refresh reads only the bytes appended since the last one."""
    return scalars.LockedStore(folder)


def tag_filter(tags: list[str], key: str, where=st.sidebar, label: str = "Filter tags (regex)",
               placeholder: str = "e.g. loss|acc", error_at=None) -> tuple[list[str], str]:
    """A regex text box over `tags` (scalars.filter_tags): (the tags it keeps, the pattern). A bad
    pattern is named in an error (at `error_at`, default beside the box) and every tag kept; the
    error quotes the typed pattern, so it is shown as text."""
    pattern = where.text_input(label, key=key, placeholder=placeholder)
    try:
        return scalars.filter_tags(tags, pattern), pattern
    except scalars.TagFilterError as err:
        (error_at or where).error(md(err))
        return list(tags), pattern


def where_runs_are(root) -> str:
    """The logdir as a visitor may see it: its path for an admin (solo use: you), else words only (a
    shared server's paths are not a visitor's business)."""
    from pages.signin import current_user
    from twinboard import auth

    return f"`{root}`" if current_user().role == auth.ADMIN else "this server's logdir"
