"""Widgets every page shares. Pages stay thin: pick what to show here, compute in twinboard/.

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

import streamlit as st

from twinboard import runs, scalars
from twinboard.config import logdir

SCALAR_STORES = 32  # folders whose scalars stay in memory (16 pairs); the least recently used goes

CUSTOM = "Any two runs…"


def pick_pair(key: str) -> runs.Pair | None:
    """Sidebar picker: a matched pair (newest first), or any two event runs, uploaded ones included.

    Returns None (after telling the user why) when the logdir holds nothing to compare.
    """
    root = logdir()
    pairs = runs.list_pairs(root)
    event_runs = runs.list_event_runs(root)
    _watch_for_starting_runs(root, pairs)
    if not event_runs:
        st.info(f"No runs yet in `{root}`. Start a matched pair on the Launch page, or upload event files.")
        return None
    options = [p.label for p in pairs] + [CUSTOM]
    choice = st.sidebar.selectbox("Matched pair", options, key=f"{key}_pair")
    if choice != CUSTOM:
        return pairs[options.index(choice)]
    names = [r.name for r in event_runs]
    by_name = {r.name: r for r in event_runs}
    default_left = next((i for i, r in enumerate(event_runs) if r.framework == "torch"), 0)
    default_right = next((i for i, r in enumerate(event_runs) if r.framework == "tensorflow"),
                         min(1, len(names) - 1))
    left = st.sidebar.selectbox("Left (PyTorch side)", names, index=default_left, key=f"{key}_left",
                                format_func=lambda n: by_name[n].label)
    right = st.sidebar.selectbox("Right (TensorFlow side)", names, index=default_right,
                                 key=f"{key}_right", format_func=lambda n: by_name[n].label)
    return runs.make_pair(by_name[left], by_name[right])


def _watch_for_starting_runs(root, pairs: list[runs.Pair]) -> None:
    """A launched pair shows up here only once both trainers wrote their first events (framework
    imports take seconds). Until then, say so and rerun the page when the pair list changes, so a
    page opened right after Start needs no manual reload."""
    known = tuple(p.label for p in pairs)
    starting = [r.run_id for r in runs.list_runs(root) if r.run_id not in known and r.active]
    if not starting:
        return
    st.sidebar.caption(f"Starting: {', '.join(starting)} (shown once both sides have logged)")

    def rerun_when_pairs_change() -> None:
        if tuple(p.label for p in runs.list_pairs(root)) != known:
            st.rerun(scope="app")

    st.fragment(run_every=1.0)(rerun_when_pairs_change)()


def side_label(run: runs.EventRun) -> str:
    """'PyTorch', 'TensorFlow', or the run's name when the framework is unknown (uploads)."""
    return runs.FRAMEWORK_LABELS[run.framework] if run.framework else run.name


BADGE_COLORS = {"torch": "red", "tensorflow": "orange"}  # nearest markdown colours to charts.FRAMEWORK_COLORS


def framework_badge(framework: str | None) -> str:
    """Markdown for a small coloured 'PyTorch' / 'TensorFlow' badge (its own name when unknown)."""
    label = runs.FRAMEWORK_LABELS.get(framework, str(framework))
    return f":{BADGE_COLORS.get(framework or '', 'gray')}-badge[{label}]"


def pick_more_pairs(key: str, first: runs.Pair) -> list[runs.Pair]:
    """Sidebar multiselect: further matched pairs to draw beside `first` (which is not offered)."""
    others = [p for p in runs.list_pairs(logdir()) if p.label != first.label]
    if not others:
        return []
    by_label = {p.label: p for p in others}
    chosen = st.sidebar.multiselect("Also compare", list(by_label), key=f"{key}_more_pairs",
                                    placeholder="more matched pairs…",
                                    help="Drawn on the same charts, one line style per pair")
    return [by_label[label] for label in chosen if label in by_label]


@st.cache_resource(max_entries=SCALAR_STORES, show_spinner=False)
def scalar_store(folder: str) -> scalars.LockedStore:
    """The incremental scalar store of one folder (its sub-folders included), shared by every
    session and page: a refresh reads only the bytes appended since the last one."""
    return scalars.LockedStore(folder)


def tag_filter(tags: list[str], key: str, where=st.sidebar, label: str = "Filter tags (regex)",
               placeholder: str = "e.g. loss|acc", error_at=None) -> tuple[list[str], str]:
    """A regex text box over `tags` (scalars.filter_tags): (the tags it keeps, the pattern). A bad
    pattern is named in an error (at `error_at`, default beside the box) and every tag kept."""
    pattern = where.text_input(label, key=key, placeholder=placeholder)
    try:
        return scalars.filter_tags(tags, pattern), pattern
    except scalars.TagFilterError as err:
        (error_at or where).error(str(err))
        return list(tags), pattern
