"""The Images page (AppTest) on pairs the real trainers wrote: pictures PyTorch beside TensorFlow,
confusion matrices and their difference, PR curves, and where the predictions disagree, said in
words: none under init=shared in float64, some under init=native."""
from __future__ import annotations

import json
from pathlib import Path

import pytest
from streamlit.testing.v1 import AppTest

from tests.image_pairs import prediction_pairs
from twinboard.contract import frame, split_records
from twinboard.images import compare, read_predictions
from twinboard.text import md

ROOT = Path(__file__).resolve().parents[1]
PAGE = str(ROOT / "pages" / "images.py")
TIMEOUT = 60  # s per script run: the machine is small and shared


@pytest.fixture(scope="session")
def pairs(tmp_path_factory) -> Path:
    return prediction_pairs(tmp_path_factory)


def _charts(at: AppTest) -> list[dict]:
    return [json.loads(c.proto.spec) for c in at.get("plotly_chart")]


def _view(at: AppTest, name: str) -> AppTest:
    at.radio(key="img_view").set_value(name).run()
    assert not at.exception, name
    return at


def test_every_view_on_a_real_pair(real_pair, monkeypatch):
    monkeypatch.setenv("TWINBOARD_LOGDIR", str(real_pair.logdir))
    at = AppTest.from_file(PAGE, default_timeout=TIMEOUT).run()
    assert not at.exception and not at.warning
    tags = ["images/val_confusion", "images/val_inputs", "images/val_misclassified"]
    assert [m.value for m in at.markdown] == [f"**{md(t)}**" for t in tags]  # a tag is text
    assert len(at.get("image")) == 2 * len(tags)  # PyTorch beside TensorFlow, every tag
    assert {c.value for c in at.caption} >= {"PyTorch · step 20", "TensorFlow · step 20"}

    specs = _charts(_view(at, "confusion"))
    assert len(specs) == 3  # each side, and left minus right
    assert specs[2]["layout"]["title"]["text"] == "PyTorch minus TensorFlow · step 20"

    specs = _charts(_view(at, "pr"))
    assert len(specs) == 10 and all(len(s["data"]) == 2 for s in specs)  # a class a chart, both sides

    _view(at, "disagreement")
    assert len(_charts(at)) == 1  # agreement over the steps
    assert at.markdown[0].value.startswith(md("At step 20, PyTorch and TensorFlow predict"))


def test_an_uploaded_run_beside_a_trainer_run(real_pair, tmp_path, monkeypatch):
    """Any two runs: an upload's images (here a copy of the PyTorch side's file) beside TensorFlow's."""
    import shutil

    root = tmp_path / "logs"
    shutil.copytree(real_pair.run_dir / "tensorflow", root / "local" / "tensorflow")
    upload = root / "uploads" / "bob" / "train"
    upload.mkdir(parents=True)
    for path in (real_pair.run_dir / "torch").glob("events.out.tfevents.*"):
        shutil.copy(path, upload / path.name)
    monkeypatch.setenv("TWINBOARD_LOGDIR", str(root))
    at = AppTest.from_file(PAGE, default_timeout=TIMEOUT).run()
    at.selectbox(key="img_pair").set_value("Any two runs…").run()
    at.selectbox(key="img_left").set_value("uploads/bob/train").run()
    at.selectbox(key="img_right").set_value("local/tensorflow").run()
    assert not at.exception and len(at.get("image")) == 6
    captions = {c.value for c in at.caption}
    assert {f"{md('uploads/bob/train')} · step 20", f"{md('local/tensorflow')} · step 20"} <= captions
    assert "No saved predictions in" in _view(at, "disagreement").info[0].value  # an upload carries none


def test_the_page_says_how_many_samples_disagree(pairs, monkeypatch):
    monkeypatch.setenv("TWINBOARD_LOGDIR", str(pairs))
    at = AppTest.from_file(PAGE, default_timeout=TIMEOUT).run()
    assert at.selectbox(key="img_pair").value == "native"  # the newest pair
    _view(at, "disagreement")
    parted = compare(*(read_predictions(pairs / "native" / fw) for fw in ("torch", "tensorflow")), 26)
    n = parted.differ.size
    assert n > 0
    assert at.markdown[0].value == md(f"At step 26, PyTorch and TensorFlow predict a different class for {n} of "
                                      f"359 validation samples ({n / 359:.1%}).")
    pictures = at.get("image")
    assert len(pictures) == 2 and len(pictures[0].proto.imgs) == min(n, 48)  # those, and those both get wrong
    at.select_slider(key="img_dis_step").set_value(22).run()
    assert not at.exception and at.markdown[0].value.startswith("At step 22\\,")

    at.selectbox(key="img_pair").set_value("shared").run()  # the chosen step stays: both pairs logged it
    assert not at.exception
    assert at.markdown[0].value == md("At step 22, PyTorch and TensorFlow predict the same class for all 359 "
                                      "validation samples.")
    at.select_slider(key="img_dis_step").set_value(26).run()
    assert at.markdown[0].value.startswith(md("At step 26, PyTorch and TensorFlow predict the same class"))
    _view(at, "confusion")
    assert "The two confusion matrices are equal at step 26." in [c.value for c in at.caption]


def test_a_pair_without_images_or_predictions_says_so(real_pair, tmp_path, monkeypatch):
    for fw in ("torch", "tensorflow"):
        src = next((real_pair.run_dir / fw).glob("events.out.tfevents.*"))
        records, _ = split_records(src.read_bytes())
        (tmp_path / "logs" / "bare" / fw).mkdir(parents=True)
        (tmp_path / "logs" / "bare" / fw / src.name).write_bytes(frame(records[0]))  # file_version only
    monkeypatch.setenv("TWINBOARD_LOGDIR", str(tmp_path / "logs"))
    at = AppTest.from_file(PAGE, default_timeout=TIMEOUT).run()
    assert not at.exception and "No images in" in at.info[0].value
    for view in ("confusion", "pr", "disagreement"):
        assert at.info and "No " in _view(at, view).info[0].value, view


def test_text_predictions_show_the_characters_that_differ(real_pair, tmp_path, monkeypatch):
    """Task text: predictions saved by trainers.evaluation for both sides (here from made-up logits,
    one position changed on one side); the view highlights that character in the sample's text."""
    import numpy as np

    from trainers import evaluation, text_data

    class Windows:  # the validation split of task text as trainers.data gives it: ids [N, 32]
        n_classes, image_shape = text_data.VOCAB, None
        x_val = text_data.token_ids()[:6 * 33].reshape(6, 33)[:, :-1]
        y_val = text_data.token_ids()[1:6 * 33 + 1].reshape(6, 33)[:, :-1]

    logits = np.eye(text_data.VOCAB)[Windows.y_val] * 5.0  # right everywhere
    changed = logits.copy()
    changed[2, 7] = np.roll(changed[2, 7], 1)  # sample 2, position 7: the next id instead
    vocab = ["\ufffd", *text_data.SYMBOLS]
    for fw, out in (("torch", logits), ("tensorflow", changed)):
        folder = tmp_path / "logs" / "text" / fw
        src = next((real_pair.run_dir / fw).glob("events.out.tfevents.*"))
        folder.mkdir(parents=True)
        (folder / src.name).write_bytes(frame(split_records(src.read_bytes())[0][0]))  # a run TensorBoard lists
        e = evaluation.Evaluator(folder, Windows, lambda *a: None, vocab)
        e.submit(4, out)
        e.close()
    monkeypatch.setenv("TWINBOARD_LOGDIR", str(tmp_path / "logs"))
    at = _view(AppTest.from_file(PAGE, default_timeout=TIMEOUT).run(), "disagreement")
    assert at.markdown[0].value == md("At step 4, PyTorch and TensorFlow predict a different class for 1 of 192 "
                                      "predicted positions (0.5%).")
    shown = at.markdown[1].value
    right = md({"\n": "⏎", " ": "\u00a0"}.get(vocab[Windows.y_val[2, 7]], vocab[Windows.y_val[2, 7]]))
    assert shown.startswith("**sample 2**") and f":orange-background[{right}]" in shown
