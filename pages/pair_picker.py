"""The run choice every view page opens on: a sidebar picker of a matched pair or any two runs,
one choice for the whole session and in the URL (a link, a bookmark opens the same view), and
further pairs to draw beside it (Scalars). pages/common.py holds the other shared widgets and the
pages' conventions."""
from __future__ import annotations

import streamlit as st

from pages.common import where_runs_are
from twinboard import runs
from twinboard.config import logdir
from twinboard.text import md_list

CUSTOM = "Any two runs…"
CHOICE_KEY = "twinboard_choice"  # session_state: the runs.Choice every view page opens on
# session_state: whether the visitor chose it (a picker, a link): it sticks. A default (the newest
# pair) does not: a run started since, once listed, becomes the choice.
PICKED_KEY = "twinboard_choice_picked"
QUERY_KEYS = ("pair", "left", "right")  # the URL's parameters for a choice (runs.Choice.query)
NOTE_CHARS = 80  # of a query value quoted back in the note about an unknown one


def pick_pair(key: str) -> runs.Pair | None:
    """Sidebar picker: a matched pair (newest local first, uploads last), or any two event runs.

    One choice holds across pages: a page opens on what the URL's `?pair=` or `?left=&right=` names
    if it is listed (a link, a bookmark), else on what the visitor picked in this session, else on
    the newest local pair; and writes what it shows back to both, so the address bar is a link to
    this view.
    Widget keys are `<key>_pair`, `<key>_left`, `<key>_right`. Returns None (after telling the
    user why) when the logdir holds nothing to compare.
    """
    root = logdir()
    pairs, event_runs = runs.list_pairs(root), runs.list_event_runs(root)
    _watch_for_starting_runs(root, pairs)
    if not event_runs:
        st.info(f"No runs yet in {where_runs_are(root)}. Start a matched pair on the Launch page, or upload "
                "event files.")
        return None
    choice, picked = _wanted(pairs, event_runs)
    by_label = {p.label: p for p in pairs}
    start = by_label[choice.pair] if choice.pair is not None else None  # "any two runs" starts from its runs
    start = runs.Choice(left=start.left.name, right=start.right.name) if start else choice
    on_change = {"on_change": _picked, "args": (key, start)}
    _show(f"{key}_pair", CUSTOM if choice.pair is None else choice.pair)
    label = st.sidebar.selectbox("Matched pair", [*by_label, CUSTOM], key=f"{key}_pair", **on_change,
                                 format_func=lambda lb: by_label[lb].shown if lb in by_label else lb)
    if label != CUSTOM:
        _remember(runs.Choice(pair=label), picked)
        return by_label[label]
    by_name = {r.name: r for r in event_runs}
    _show(f"{key}_left", start.left)
    _show(f"{key}_right", start.right)
    left = st.sidebar.selectbox("Left run", list(by_name), key=f"{key}_left", **on_change,
                                format_func=lambda n: by_name[n].label)
    right = st.sidebar.selectbox("Right run", list(by_name), key=f"{key}_right", **on_change,
                                 format_func=lambda n: by_name[n].label)
    _remember(runs.Choice(left=left, right=right), picked)
    return runs.make_pair(by_name[left], by_name[right])


def _wanted(pairs: list[runs.Pair], event_runs: list[runs.EventRun]) -> tuple[runs.Choice, bool]:
    """(choice, picked): the URL's if it names listed runs, else the one picked in this session, else
    the default (not picked). A URL that only repeats the default this session showed is not a
    pick. One naming something not listed (a deleted run, a mistyped or hostile link) gets a note."""
    default = runs.default_choice(pairs, event_runs)
    kept, picked = st.session_state.get(CHOICE_KEY), st.session_state.get(PICKED_KEY, False)
    asked = runs.choice_from_query(st.query_params.to_dict())
    if asked is not None and (picked or asked != kept):
        if runs.resolve_choice(asked, pairs, event_runs) is not None:
            return asked, True
        what = (f"pair {asked.pair[:NOTE_CHARS]!r}" if asked.pair is not None
                else f"runs {asked.left[:NOTE_CHARS]!r} and {asked.right[:NOTE_CHARS]!r}")
        shown = default.pair or f"{default.left} and {default.right}"
        st.sidebar.text(f"The link names {what}, which is not in this logdir: showing {shown}.")
        return default, False
    if picked and runs.resolve_choice(kept, pairs, event_runs) is not None:
        return kept, True
    return default, False


def _show(widget_key: str, value: str | None) -> None:
    """Make a picker widget show `value` on this run: its state, set before it is drawn (a widget
    forgets its state on a page it is not drawn on, so each page sets it from the shared choice)."""
    if value is not None and st.session_state.get(widget_key) != value:
        st.session_state[widget_key] = value


def _picked(key: str, start: runs.Choice) -> None:
    """A picker widget changed: remember the new choice before the page runs, so that the URL and
    the session (which this run reads first) already say what the visitor picked."""
    state = st.session_state
    if state.get(f"{key}_pair") != CUSTOM:
        _remember(runs.Choice(pair=state.get(f"{key}_pair")), True)
    else:
        _remember(runs.Choice(left=state.get(f"{key}_left", start.left),
                              right=state.get(f"{key}_right", start.right)), True)


def _remember(choice: runs.Choice, picked: bool) -> None:
    """Keep `choice` for every page of this session, and in the URL (changed only when it differs)."""
    st.session_state[CHOICE_KEY], st.session_state[PICKED_KEY] = choice, picked
    wanted = choice.query()
    if {k: st.query_params[k] for k in QUERY_KEYS if k in st.query_params} != wanted:
        for k in QUERY_KEYS:
            if k not in wanted and k in st.query_params:
                del st.query_params[k]
        st.query_params.update(wanted)


def _watch_for_starting_runs(root, pairs: list[runs.Pair]) -> None:
    """A launched pair shows up here only once both trainers wrote their first events (framework
    imports take seconds). Until then, say so and rerun the page when the pair list changes, so a
    page opened right after Start needs no manual reload."""
    known = tuple(p.label for p in pairs)
    starting = [r.run_id for r in runs.list_runs(root) if r.run_id not in known and r.active]
    if not starting:
        return
    st.sidebar.caption(f"Starting: {md_list(starting)} (shown once both sides have logged)")

    def rerun_when_pairs_change() -> None:
        if tuple(p.label for p in runs.list_pairs(root)) != known:
            st.rerun(scope="app")

    st.fragment(run_every=1.0)(rerun_when_pairs_change)()


def pick_more_pairs(key: str, first: runs.Pair) -> list[runs.Pair]:
    """Sidebar multiselect: further matched pairs to draw beside `first` (which is not offered)."""
    others = [p for p in runs.list_pairs(logdir()) if p.label != first.label]
    if not others:
        return []
    by_label = {p.label: p for p in others}
    chosen = st.sidebar.multiselect("Also compare", list(by_label), key=f"{key}_more_pairs",
                                    placeholder="more matched pairs…", format_func=lambda lb: by_label[lb].shown,
                                    help="Drawn on the same charts, one line style per pair")
    return [by_label[label] for label in chosen if label in by_label]
