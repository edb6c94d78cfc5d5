"""AppTest smoke test of the Embeddings page on a logdir written by the real export functions."""
from __future__ import annotations

import base64
import json
from pathlib import Path

import numpy as np
import pytest
from streamlit.testing.v1 import AppTest

from trainers import export_embedding
from twinboard import embeddings
from twinboard.text import md

ROOT = Path(__file__).resolve().parents[1]
PAGE = str(ROOT / "pages" / "embeddings.py")
HEADER = ["label", "prediction", "correct"]
N = 30


def _write_run(logdir: Path, name: str = "20260101-000000-digits-mlp-sgd", steps=(5, 10)) -> None:
    rng = np.random.default_rng(0)
    labels = np.arange(N) % 10
    images = rng.uniform(size=(N, 8, 8)).astype(np.float32)
    base = rng.normal(size=(N, 8)).astype(np.float32) + labels[:, None] * 0.5
    q, _ = np.linalg.qr(rng.normal(size=(8, 8)))
    for fw, feats in (("torch", base), ("tensorflow", (base @ q).astype(np.float32))):
        folder = logdir / name / fw
        folder.mkdir(parents=True)
        (folder / "events.out.tfevents.0.test").write_bytes(b"")  # makes it an event run for the picker
        for step in steps:
            preds = np.where(np.arange(N) % 7 == 0, (labels + 1) % 10, labels)
            rows = [[str(a), str(b), "yes" if a == b else "no"] for a, b in zip(labels, preds)]
            export_embedding.write(folder, fw, step, feats * step, rows, HEADER, images)


@pytest.fixture
def app(tmp_path, monkeypatch):
    monkeypatch.setenv("TWINBOARD_LOGDIR", str(tmp_path))
    _write_run(tmp_path)
    at = AppTest.from_file(PAGE, default_timeout=60)
    at.run()
    assert not at.exception, [e.message for e in at.exception]
    return at


def _arr(value) -> list:
    """Plotly >= 6 sends numpy arrays as {"dtype", "bdata" (base64)}; plain lists pass through."""
    if isinstance(value, dict) and "bdata" in value:
        return np.frombuffer(base64.b64decode(value["bdata"]), dtype=value["dtype"]).tolist()
    return list(value)


def _charts(at) -> list[dict]:
    return [json.loads(c.proto.spec) for c in at.get("plotly_chart")]


def test_renders_both_projections_and_the_similarity_chart(app):
    charts = _charts(app)
    assert len(charts) == 3
    left, right, sim = charts
    assert left["layout"]["title"]["text"].startswith("PyTorch · PCA 2-D · step 10 · showing all 30")
    assert right["layout"]["title"]["text"].startswith("TensorFlow · PCA 2-D")
    # same colours for the same label on both sides
    colours = [{t["name"]: t["marker"]["color"] for t in fig["data"]} for fig in (left, right)]
    assert colours[0] == colours[1] and len(colours[0]) == 10
    assert [t["name"] for t in sim["data"]] == ["linear CKA", "10-NN overlap"]
    assert _arr(sim["data"][0]["y"]) == pytest.approx([1.0, 1.0], abs=1e-5)  # right = rotated left
    assert "Procrustes" not in " ".join(c.value for c in app.caption)
    assert any("correlation" in c.value for c in app.caption)
    assert [m.value for m in app.metric] == ["1.000", "1.000"]
    assert not app.info  # two steps: a chart, no note


def test_one_exported_step_shows_numbers_and_how_to_export_more(tmp_path, monkeypatch):
    # Runs launched without embedding_steps export the final step only (here 6,600): one point is no
    # curve (plotly would draw it with ticks at 6,599.5 and 6,600.5), so the numbers stand alone.
    monkeypatch.setenv("TWINBOARD_LOGDIR", str(tmp_path))
    _write_run(tmp_path, steps=(6600,))
    at = AppTest.from_file(PAGE, default_timeout=60)
    at.run()
    assert not at.exception, [e.message for e in at.exception]
    charts = _charts(at)
    assert len(charts) == 2 and all("PCA" in c["layout"]["title"]["text"] for c in charts)  # no similarity chart
    assert {m.label: m.value for m in at.metric} == {"Linear CKA at step 6,600": "1.000",
                                                     "10-NN overlap at step 6,600": "1.000"}
    note = " ".join(i.value for i in at.info)
    assert "Only step 6,600 was exported" in note and "`embedding_steps`" in note
    assert "--embedding-steps 100 200" in note and "embedding steps" in note


def test_switches_pca_3d_and_tsne_and_highlights(app):
    app.radio(key="emb_method").set_value("PCA 3-D").run()
    assert not app.exception
    assert all(t["type"] == "scatter3d" for t in _charts(app)[0]["data"])
    app.radio(key="emb_method").set_value("t-SNE 2-D").run()
    assert not app.exception
    app.slider(key="emb_perplexity").set_value(5)
    app.slider(key="emb_iter").set_value(250).run()
    assert not app.exception
    charts = _charts(app)
    assert "t-SNE 2-D" in charts[0]["layout"]["title"]["text"]
    assert any("Procrustes" in c.value for c in app.caption)
    app.selectbox(key="emb_hl_label").set_value("3")
    app.selectbox(key="emb_sample").set_value(4).run()
    assert not app.exception
    names = [t["name"] for t in _charts(app)[1]["data"]]
    assert "highlighted" in names and "sample #4" in names
    assert app.subheader[0].value == "Sample #4" and len(app.get("image")) == 1
    app.selectbox(key="emb_step").set_value(5).run()
    app.number_input(key="emb_cap").set_value(50).run()
    app.radio(key="emb_method").set_value("t-SNE 3-D").run()
    assert not app.exception


def test_subsampled_chart_says_how_many_points(tmp_path, monkeypatch, app):
    app.number_input(key="emb_cap").set_value(50).run()  # the minimum; N = 30 stays whole
    assert "all 30 points" in _charts(app)[0]["layout"]["title"]["text"]
    # many points: the cap shows in the title, the same samples on both sides
    bigger = tmp_path / "big"
    monkeypatch.setenv("TWINBOARD_LOGDIR", str(bigger))
    rng = np.random.default_rng(1)
    for fw in ("torch", "tensorflow"):
        folder = bigger / "20260102-000000-digits-mlp-sgd" / fw
        folder.mkdir(parents=True)
        (folder / "events.out.tfevents.0.test").write_bytes(b"")
        export_embedding.write(folder, fw, 1, rng.normal(size=(120, 4)), [[str(i % 3)] for i in range(120)],
                               ["label"])
    at = AppTest.from_file(PAGE, default_timeout=60)
    at.run()
    at.number_input(key="emb_cap").set_value(50).run()
    assert not at.exception
    left, right = _charts(at)[:2]
    assert "showing 50 of 120 points" in left["layout"]["title"]["text"]
    ids = [sorted(sum((_arr(t["customdata"]) for t in fig["data"]), [])) for fig in (left, right)]
    assert ids[0] == ids[1] and len(ids[0]) == 50


def test_refused_path_is_an_error_on_the_page(tmp_path, monkeypatch):
    monkeypatch.setenv("TWINBOARD_LOGDIR", str(tmp_path))
    _write_run(tmp_path)
    cfg = tmp_path / "20260101-000000-digits-mlp-sgd" / "tensorflow" / "projector_config.pbtxt"
    cfg.write_text('embeddings { tensor_name: "hidden:00001" tensor_path: "../../secret.tsv" }\n')
    at = AppTest.from_file(PAGE, default_timeout=60)
    at.run()
    assert not at.exception
    assert md("../../secret.tsv") in at.error[0].value


def test_empty_logdir_says_so(tmp_path, monkeypatch):
    monkeypatch.setenv("TWINBOARD_LOGDIR", str(tmp_path))
    at = AppTest.from_file(PAGE, default_timeout=30)
    at.run()
    assert not at.exception and len(at.info) == 1


def test_digit_art_and_colour_spec():
    img = np.zeros((8, 8))
    img[2, 3] = 1.0
    art = embeddings.digit_art(img).split("<br>")
    assert len(art) == 8 and art[2][6:8] == "██" and "░" not in art[0]
    spec = embeddings.color_spec("label", *[__import__("pandas").Series(["10", "2", "1"])])
    assert list(spec.colors) == ["1", "2", "10"]  # numeric order, not string order
    many = embeddings.color_spec("x", __import__("pandas").Series([str(i) for i in range(20)]))
    assert many.kind == "continuous" and (many.cmin, many.cmax) == (0.0, 19.0)
