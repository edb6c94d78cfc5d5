"""Widgets every page shares. Pages stay thin: pick what to show here, compute in twinboard/."""
from __future__ import annotations

import streamlit as st

from twinboard import runs
from twinboard.config import logdir

CUSTOM = "Any two runs…"


def pick_pair(key: str) -> runs.Pair | None:
    """Sidebar picker: a matched pair (newest first), or any two event runs, uploaded ones included.

    Returns None (after telling the user why) when the logdir holds nothing to compare.
    """
    root = logdir()
    pairs = runs.list_pairs(root)
    event_runs = runs.list_event_runs(root)
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


def side_label(run: runs.EventRun) -> str:
    """'PyTorch', 'TensorFlow', or the run's name when the framework is unknown (uploads)."""
    return runs.FRAMEWORK_LABELS[run.framework] if run.framework else run.name
