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
    starting = [r.run_id for r in runs.list_runs(root)
                if r.run_id not in known
                and any(job.state in ("queued", "running") for job in r.frameworks.values())]
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
