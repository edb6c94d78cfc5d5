"""Images: what the trainers (or any writer, uploads included) logged as pictures, PyTorch beside
TensorFlow at one step; the two sides' confusion matrices and their difference; PR curves of each
class, both sides on one axis; and where the two frameworks' predictions disagree, sample by sample
(from the predictions the trainers save at each evaluation)."""
from __future__ import annotations

import streamlit as st

from pages import images_views as views
from pages.common import live_view
from pages.pair_picker import pick_pair
from twinboard import images, runs, scalars
from twinboard.text import code, md

VIEWS = {"pictures": "Pictures", "confusion": "Confusion matrices", "pr": "PR curves",
         "disagreement": "Where they disagree"}
REFRESH_S = 2.0  # seconds between live refreshes while a side of the pair is still training
PREDICTION_SETS = 64  # run folders whose predictions stay cached (derived data: st.cache_data)


@st.cache_resource(show_spinner=False)
def _store(root: str) -> images.MediaStore:
    """One store per logdir for every session: a refresh reads only bytes appended since the last."""
    return images.MediaStore(root)


@st.cache_data(max_entries=PREDICTION_SETS, show_spinner=False)
def _predictions(folder: str, signature: tuple) -> images.Predictions | str | None:
    """A run's saved predictions (None: none saved; a str: why they cannot be read), read again when
    the folder's signature changes (an evaluation was added)."""
    try:
        return images.read_predictions(folder)
    except images.PredictionsError as err:
        return str(err)


@st.cache_data(max_entries=PREDICTION_SETS, show_spinner=False)
def _agreement(left_folder: str, left_sig: tuple, right_folder: str, right_sig: tuple) -> dict | str:
    a, b = _predictions(left_folder, left_sig), _predictions(right_folder, right_sig)
    try:
        return images.agreement(a, b)
    except images.PredictionsError as err:
        return str(err)


def _load(run: runs.EventRun):
    return _predictions(str(run.path), images.signature(run.path / images.PREDICTIONS_DIR))


def view(pair: runs.Pair, root) -> None:
    """Everything that changes as trainers write: re-run alone by live_view's fragment timer while
    the pair trains."""
    store = _store(str(root))
    sides = [views.Side(run, scalars.side_title(pair, run), color)
             for run, color in zip(pair.runs, scalars.side_colors(pair.left.framework, pair.right.framework))]
    names = [pair.left.name, pair.right.name]
    try:
        store.refresh(names)
    except runs.OutsideLogdirError as err:
        st.error(md(err, 1000))
        return
    for problem in store.problems(names):
        st.warning(f"{code(problem.path)} {md(problem.message, 1000)}", icon=":material/warning:")
    mode = st.radio("View", list(VIEWS), format_func=VIEWS.get, horizontal=True, key="img_view")
    if mode == "pictures":
        views.pictures(store, sides)
    elif mode == "pr":
        views.pr_curves(store, sides)
    else:
        saved = [_load(side.run) for side in sides]
        for side, got in zip(sides, saved):
            if isinstance(got, str):
                st.warning(f"{md(side.label)}: {md(got, 1000)}", icon=":material/warning:")
        found = [(side, got) for side, got in zip(sides, saved) if isinstance(got, images.Predictions)]
        if mode == "confusion":
            views.confusions(sides, found)
        elif len(found) < 2:
            views.no_predictions(sides, found)
        else:
            (left, a), (right, b) = found
            agreement = _agreement(str(left.run.path), images.signature(a.folder),
                                   str(right.run.path), images.signature(b.folder))
            views.disagreement(left, a, right, b, agreement)


def main() -> None:
    st.title("Images")
    pair = pick_pair("img")
    if pair is None:
        return
    live_view(view, pair, "img_live", "images", REFRESH_S)


main()
