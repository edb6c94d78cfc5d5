"""One pair choice across pages, in the URL: how pairs are listed and which one a page opens on, that a
choice holds from page to page and lives in the query string, and what a link that names it does.
"""
from __future__ import annotations

import json
import time

import pytest

from pages.pair_picker import CHOICE_KEY, PICKED_KEY
from tests.apptest_pages import app, page
from tests.scalar_pairs import BIG, SMALL
from twinboard import runs


def test_pairs_list_local_newest_first_then_uploads(tmp_path, event_logdir):
    import os
    import shutil

    def pair(name: str, created: float | None = None, mtime: float | None = None) -> None:
        shutil.copytree(event_logdir / SMALL, tmp_path / name)
        if created is not None:
            (tmp_path / name / "run.json").write_text(json.dumps({"created": created}))
        if mtime is not None:
            os.utime(tmp_path / name, (mtime, mtime))

    pair("zz-custom", created=1000)  # a name from the end of the alphabet: not the newest
    pair("20990101-000000-digits-mlp-sgd", created=500)  # a timestamp name says nothing, run.json does
    pair("no-json", mtime=1500)  # no run.json (copied in, hand-started): the folder's mtime
    pair("uploads/alice", mtime=time.time() + 60)  # the newest folder, but uploaded: after local pairs
    pair("uploads/bob", mtime=10)
    pairs = runs.list_pairs(tmp_path)
    assert [p.label for p in pairs] == ["no-json", "zz-custom", "20990101-000000-digits-mlp-sgd",
                                        "uploads/alice", "uploads/bob"]
    assert [p.shown for p in pairs][-2:] == ["uploads/alice (uploaded)", "uploads/bob (uploaded)"]
    assert runs.default_choice(pairs, runs.list_event_runs(tmp_path)) == runs.Choice(pair="no-json")
    uploads_only = [p for p in pairs if p.uploaded]
    assert runs.default_choice(uploads_only, []) == runs.Choice(pair="uploads/alice")


def test_the_pair_choice_holds_across_pages_and_lives_in_the_url(event_logdir, monkeypatch):
    monkeypatch.setenv("TWINBOARD_LOGDIR", str(event_logdir))
    at = app().run()
    at.switch_page("pages/scalars.py").run()
    assert not at.exception, at.exception
    assert at.sidebar.selectbox(key="scalars_pair").value == SMALL  # the newest
    assert at.query_params == {"pair": SMALL}
    at.sidebar.selectbox(key="scalars_pair").set_value(BIG).run()
    assert at.query_params == {"pair": BIG}

    at.query_params.clear()  # navigation that drops the query string: the session remembers
    at.switch_page("pages/histograms.py").run()
    assert not at.exception, at.exception
    assert at.sidebar.selectbox(key="hist_pair").value == BIG  # not back to the default
    assert at.query_params == {"pair": BIG}  # and the address bar says so again
    at.sidebar.selectbox(key="hist_pair").set_value("Any two runs…").run()
    left, right = at.sidebar.selectbox(key="hist_left"), at.sidebar.selectbox(key="hist_right")
    assert (left.label, right.label) == ("Left run", "Right run")
    assert (left.value, right.value) == (f"{BIG}/torch", f"{BIG}/tensorflow")  # from the pair it left
    right.set_value(f"{SMALL}/tensorflow").run()
    assert at.query_params == {"left": f"{BIG}/torch", "right": f"{SMALL}/tensorflow"}

    at.session_state[CHOICE_KEY] = runs.Choice(pair=SMALL)  # picked earlier, but the URL (a link) wins
    at.session_state[PICKED_KEY] = True
    at.switch_page("pages/parity.py").run()
    assert not at.exception, at.exception
    assert at.sidebar.selectbox(key="parity_pair").value == "Any two runs…"
    assert (at.sidebar.selectbox(key="parity_left").value, at.sidebar.selectbox(key="parity_right").value) == (
        f"{BIG}/torch", f"{SMALL}/tensorflow")
    at.sidebar.selectbox(key="parity_pair").set_value(BIG).run()
    assert at.query_params == {"pair": BIG}  # left/right gone from the URL


@pytest.mark.parametrize("query, pair, left, right", [
    ({"pair": BIG}, BIG, None, None),
    ({"left": f"{SMALL}/torch", "right": f"{BIG}/torch"}, "Any two runs…", f"{SMALL}/torch", f"{BIG}/torch"),
])
def test_a_link_opens_the_view_it_names(event_logdir, monkeypatch, query, pair, left, right):
    monkeypatch.setenv("TWINBOARD_LOGDIR", str(event_logdir))
    at = page("scalars")
    at.query_params.update(query)
    at.run()
    assert not at.exception, at.exception
    assert at.sidebar.selectbox(key="scalars_pair").value == pair
    if left:
        assert (at.sidebar.selectbox(key="scalars_left").value, at.sidebar.selectbox(key="scalars_right").value) == (
            left, right)
    assert at.query_params == query and not at.sidebar.text  # no note


@pytest.mark.parametrize("query, named", [
    ({"pair": "[x](http://evil.example) **bold** <b>hi</b>" + "z" * 5000}, "pair '[x](http://evil.example) **bold**"),
    ({"pair": "20260101-000000-digits-mlp-sgd/../.."}, "pair '20260101-000000-digits-mlp-sgd/../..'"),
    ({"left": "gone/torch", "right": f"{SMALL}/torch"}, f"runs 'gone/torch' and '{SMALL}/torch'"),
])
def test_an_unknown_or_hostile_link_falls_back_to_the_newest_pair_with_a_note(event_logdir, monkeypatch,
                                                                              query, named):
    monkeypatch.setenv("TWINBOARD_LOGDIR", str(event_logdir))
    at = page("scalars")
    at.query_params.update(query)
    at.run()
    assert not at.exception, at.exception
    assert at.sidebar.selectbox(key="scalars_pair").value == SMALL
    notes = [t.value for t in at.sidebar.text]  # st.text: shown as typed, never as Markdown or HTML
    assert len(notes) == 1 and named in notes[0] and "not in this logdir" in notes[0], notes
    assert len(notes[0]) < 300  # the value is cut
    assert at.query_params == {"pair": SMALL}  # the address bar now says what is shown


def test_a_default_follows_the_newest_pair_and_a_picked_one_stays(tmp_path, event_logdir, monkeypatch):
    """Opened right after Start, a page shows the newest pair listed so far; once the new run's pair is
    listed (the page reruns by itself) it shows that one. A pair the visitor picked stays picked."""
    import shutil

    def pair(name: str, created: float) -> None:
        shutil.copytree(event_logdir / SMALL, tmp_path / name)
        (tmp_path / name / "run.json").write_text(json.dumps({"created": created}))

    monkeypatch.setenv("TWINBOARD_LOGDIR", str(tmp_path))
    pair("first", 100)
    pair("second", 200)
    at = page("scalars").run()
    assert at.sidebar.selectbox(key="scalars_pair").value == "second" and at.query_params == {"pair": "second"}
    pair("third", 300)
    at.run()
    assert at.sidebar.selectbox(key="scalars_pair").value == "third" and at.query_params == {"pair": "third"}
    at.sidebar.selectbox(key="scalars_pair").set_value("first").run()
    pair("fourth", 400)
    at.run()
    assert at.sidebar.selectbox(key="scalars_pair").value == "first" and at.query_params == {"pair": "first"}
    assert not at.exception, at.exception
