"""Embedding export (both frameworks) read back, projector-config safety, projections and similarity."""
from __future__ import annotations

import os
from pathlib import Path

import numpy as np
import pandas as pd
import pytest
from google.protobuf import text_format
from tensorboard.plugins.projector import projector_config_pb2

from trainers import export_embedding
from twinboard import embeddings
from twinboard.embeddings import EmbeddingError, OutsideRunError, read_embeddings

ROOT = Path(__file__).resolve().parents[1]
HEADER = ["label", "prediction", "correct"]


def sample(n: int = 40, d: int = 6, seed: int = 0, images: bool = True):
    rng = np.random.default_rng(seed)
    feats = rng.normal(size=(n, d)).astype(np.float32)
    labels = rng.integers(0, 10, size=n)
    preds = np.where(rng.uniform(size=n) < 0.8, labels, (labels + 1) % 10)
    rows = [[str(a), str(b), "yes" if a == b else "no"] for a, b in zip(labels, preds)]
    imgs = rng.uniform(size=(n, 8, 8)).astype(np.float32) if images else None
    return feats, rows, imgs


@pytest.mark.parametrize("framework", ["torch", "tensorflow"])
def test_write_then_read_gives_back_tensor_metadata_images(tmp_path, framework):
    feats, rows, imgs = sample()
    logdir = tmp_path / "run" / framework
    for step in (0, 7, 7, 20):  # 7 twice: a re-export replaces its entry
        export_embedding.write(str(logdir), framework, step, feats + step, rows, HEADER, imgs)
    found = read_embeddings(logdir)
    assert found.problems() == []
    assert [(e.tag, e.step, e.name) for e in found] == [
        ("hidden", 0, "hidden:00000"), ("hidden", 7, "hidden:00007"), ("hidden", 20, "hidden:00020")]
    for e in found:
        assert e.tensor.dtype == np.float32 and e.tensor.shape == (40, 6)
        np.testing.assert_array_equal(e.tensor, (feats + e.step).astype(np.float32))
        assert list(e.metadata.columns) == HEADER
        assert e.metadata.values.tolist() == rows
        assert e.images.shape == (40, 8, 8)
        np.testing.assert_allclose(e.images, imgs, atol=1 / 255 + 1e-6)  # 8-bit sprite
        assert e.run == str(logdir.resolve())


def test_both_frameworks_agree_on_shapes_and_metadata(tmp_path):
    feats, rows, imgs = sample(n=33, d=5)
    for fw in ("torch", "tensorflow"):
        export_embedding.write(tmp_path / fw, fw, 3, feats, rows, HEADER, imgs)
    (left,), (right,) = read_embeddings(tmp_path / "torch"), read_embeddings(tmp_path / "tensorflow")
    assert left.name == right.name and left.step == right.step == 3
    assert left.tensor.shape == right.tensor.shape
    assert left.metadata.equals(right.metadata)
    assert left.images.shape == right.images.shape


@pytest.mark.parametrize("framework", ["torch", "tensorflow"])
def test_config_parses_with_tensorboards_proto_and_paths_resolve(tmp_path, framework):
    feats, rows, imgs = sample(n=10)
    logdir = tmp_path / framework
    export_embedding.write(logdir, framework, 1, feats, rows, HEADER, imgs)
    export_embedding.write(logdir, framework, 2, feats, rows, HEADER, None)
    config = projector_config_pb2.ProjectorConfig()
    text_format.Parse((logdir / "projector_config.pbtxt").read_text(), config)
    assert [e.tensor_name for e in config.embeddings] == ["hidden:00001", "hidden:00002"]
    from tensorboard.plugins.projector.projector_plugin import _rel_to_abs_asset_path

    for e in config.embeddings:
        for rel in (e.tensor_path, e.metadata_path, e.sprite.image_path):
            if rel:  # resolved the way TensorBoard's projector resolves them
                resolved = _rel_to_abs_asset_path(rel, str(logdir / "projector_config.pbtxt"))
                assert not os.path.isabs(rel) and os.path.isfile(resolved), rel
    assert list(config.embeddings[0].sprite.single_image_dim) == [8, 8]
    assert not config.embeddings[1].HasField("sprite")


def test_tensorboardx_add_embedding_directly(tmp_path):
    from tensorboardX import SummaryWriter

    feats, rows, imgs = sample(n=12, d=3)
    with SummaryWriter(str(tmp_path)) as w:
        w.add_embedding(feats, metadata=rows, metadata_header=HEADER, label_img=imgs[:, None],
                        global_step=4, tag="hidden")
        w.add_embedding(feats * 2, metadata=[r[0] for r in rows], global_step=9, tag="other")
    found = read_embeddings(tmp_path)
    assert [(e.tag, e.step) for e in found] == [("hidden", 4), ("other", 9)]
    np.testing.assert_allclose(found[0].tensor, feats, rtol=1e-6)
    assert found[0].metadata.values.tolist() == rows
    assert found[0].images.shape == (12, 8, 8)
    # one column, no header (TensorBoard's rule): read as a "label" column, every row a value
    assert list(found[1].metadata.columns) == ["label"]
    assert found[1].metadata["label"].tolist() == [r[0] for r in rows] and found[1].images is None


def test_single_column_metadata_is_written_without_header(tmp_path):
    feats, rows, _ = sample(n=5)
    export_embedding.write(tmp_path, "tensorflow", 0, feats, [[r[0]] for r in rows], ["label"])
    (e,) = read_embeddings(tmp_path)
    assert (tmp_path / "hidden-00000-metadata.tsv").read_text().splitlines() == [r[0] for r in rows]
    assert e.metadata["label"].tolist() == [r[0] for r in rows]


def test_write_rejects_bad_arguments(tmp_path):
    feats, rows, imgs = sample(n=4)
    with pytest.raises(ValueError, match="framework"):
        export_embedding.write(tmp_path, "jax", 0, feats, rows, HEADER)
    with pytest.raises(ValueError, match="3 rows for 4 points"):
        export_embedding.write(tmp_path, "tensorflow", 0, feats, rows[:3], HEADER)
    with pytest.raises(ValueError, match="images"):
        export_embedding.write(tmp_path, "tensorflow", 0, feats, rows, HEADER, imgs[:2])


def _config(run: Path, body: str) -> None:
    run.mkdir(parents=True, exist_ok=True)
    (run / "projector_config.pbtxt").write_text(body)


def test_bytes_tensor_and_checkpoint_entry(tmp_path):
    x = np.arange(12, dtype="<f4").reshape(4, 3)
    x.tofile(tmp_path / "vecs.bytes")
    _config(tmp_path, 'embeddings { tensor_name: "raw" tensor_path: "vecs.bytes" '
                      'tensor_shape: 4 tensor_shape: 3 }\n'
                      'embeddings { tensor_name: "from_ckpt" }\n'
                      'embeddings { tensor_name: "also_ckpt" tensor_path: "model.ckpt-100" }\n'
                      'model_checkpoint_path: "model.ckpt-100"\n')
    found = read_embeddings(tmp_path)
    assert [e.name for e in found] == ["raw"]
    np.testing.assert_array_equal(found[0].tensor, x)
    assert found[0].step is None and found[0].metadata.shape == (4, 0)
    problems = found.problems()
    assert len(problems) == 2 and all("checkpoint" in p.message for p in problems)
    assert any(p.message.startswith("from_ckpt") for p in problems)
    assert {p.path for p in problems} == {str((tmp_path / "projector_config.pbtxt").resolve())}


def test_malformed_files_are_skipped_with_a_message(tmp_path):
    (tmp_path / "t.tsv").write_text("1\t2\n3\n")
    (tmp_path / "ok.tsv").write_text("1\t2\n3\t4\n")
    (tmp_path / "m.tsv").write_text("only one row\n")
    _config(tmp_path, 'embeddings { tensor_name: "ragged:1" tensor_path: "t.tsv" }\n'
                      'embeddings { tensor_name: "short_meta:1" tensor_path: "ok.tsv" metadata_path: "m.tsv" }\n'
                      'embeddings { tensor_name: "missing:1" tensor_path: "nope.tsv" }\n')
    found = read_embeddings(tmp_path)
    assert list(found) == []
    text = "\n".join(str(p) for p in found.problems())
    assert "t.tsv" in text and "1 rows for 2 points" in text and "nope.tsv is missing" in text


def test_unparsable_config_is_an_embedding_error(tmp_path):
    _config(tmp_path, "embeddings { this is not protobuf text")
    with pytest.raises(EmbeddingError, match="projector_config.pbtxt"):
        read_embeddings(tmp_path)


@pytest.mark.parametrize("field, value", [
    ("tensor_path", "../x.tsv"), ("tensor_path", "/etc/passwd"), ("metadata_path", "../../m.tsv"),
    ("metadata_path", "/etc/passwd"), ("sprite", "../s.png"), ("tensor_path", "~/x.tsv"),
])
def test_paths_outside_the_run_folder_are_refused(tmp_path, field, value):
    run = tmp_path / "logs" / "run" / "tensorflow"
    run.mkdir(parents=True)
    (run / "ok.tsv").write_text("1\t2\n")
    (tmp_path / "logs" / "run" / "x.tsv").write_text("1\t2\n")  # exists, but outside
    entry = {"tensor_path": 'tensor_path: "ok.tsv"'}
    if field == "sprite":
        entry["sprite"] = f'sprite {{ image_path: "{value}" single_image_dim: 8 single_image_dim: 8 }}'
    else:
        entry[field] = f'{field}: "{value}"'
    _config(run, "embeddings { " + " ".join(entry.values()) + " }\n")
    with pytest.raises(OutsideRunError, match=value.replace(".", r"\.").replace("~", r"\~")) as info:
        read_embeddings(run)
    assert "outside the run folder" in str(info.value) or "absolute path" in str(info.value)


def test_symlink_pointing_out_is_refused(tmp_path):
    run = tmp_path / "run"
    run.mkdir()
    (tmp_path / "secret.tsv").write_text("1\t2\n")
    (run / "link.tsv").symlink_to(tmp_path / "secret.tsv")
    _config(run, 'embeddings { tensor_name: "a:1" tensor_path: "link.tsv" }\n')
    with pytest.raises(OutsideRunError, match="link.tsv"):
        read_embeddings(run)
    # a config that is itself a link out of the run folder
    other = tmp_path / "other"
    other.mkdir()
    (tmp_path / "evil.pbtxt").write_text("")
    (other / "projector_config.pbtxt").symlink_to(tmp_path / "evil.pbtxt")
    with pytest.raises(OutsideRunError, match="projector_config.pbtxt"):
        read_embeddings(other)


# --- projections ----------------------------------------------------------------------------------
def test_pca_is_deterministic_and_follows_its_sign_convention():
    x = np.random.default_rng(1).normal(size=(200, 16)) @ np.diag(np.linspace(3, 0.1, 16))
    a, b = embeddings.pca(x, 3), embeddings.pca(x.copy(), 3)
    np.testing.assert_array_equal(a.coords, b.coords)
    for j in range(3):
        col = a.coords[:, j]
        assert col[np.abs(col).argmax()] > 0  # largest |score| is positive
    assert a.explained[0] > a.explained[1] > a.explained[2] > 0 and sum(a.explained) <= 1
    np.testing.assert_allclose(a.coords.mean(axis=0), 0, atol=1e-9)
    # flipping the input's sign flips nothing in the output: the convention absorbs it
    np.testing.assert_allclose(embeddings.pca(-x, 3).coords, a.coords, atol=1e-9)
    assert embeddings.pca(x[:, :1], 2).coords.shape == (200, 2)  # fewer components than asked


def test_alignment_of_right_onto_left():
    ref = np.random.default_rng(2).normal(size=(50, 2))
    np.testing.assert_allclose(embeddings.flip_to_match(ref, ref * [-1, 1]), ref)
    theta = 0.7
    rot = np.array([[np.cos(theta), -np.sin(theta)], [np.sin(theta), np.cos(theta)]])
    np.testing.assert_allclose(embeddings.procrustes(ref, (ref - ref.mean(0)) @ rot * [1, -1] + ref.mean(0)),
                               ref, atol=1e-9)


def test_tsne_tiny_and_subsample():
    x = np.random.default_rng(3).normal(size=(25, 4))
    p = embeddings.tsne(x, 2, perplexity=30, max_iter=250)
    assert p.coords.shape == (25, 2) and np.isfinite(p.coords).all()
    np.testing.assert_array_equal(p.coords, embeddings.tsne(x, 2, perplexity=30, max_iter=250).coords)
    idx = embeddings.subsample(1000, 100)
    assert len(idx) == 100 and np.all(np.diff(idx) > 0)
    np.testing.assert_array_equal(idx, embeddings.subsample(1000, 100))
    np.testing.assert_array_equal(embeddings.subsample(10, 100), np.arange(10))


# --- similarity -----------------------------------------------------------------------------------
def test_cka_is_one_for_copies_up_to_rotation_and_scale_and_low_for_independent():
    rng = np.random.default_rng(4)
    x = rng.normal(size=(500, 32))
    q, _ = np.linalg.qr(rng.normal(size=(32, 32)))
    assert abs(embeddings.linear_cka(x, x) - 1) < 1e-6
    assert abs(embeddings.linear_cka(x, x @ q) - 1) < 1e-6
    assert abs(embeddings.linear_cka(x, 3.7 * x + 5.0) - 1) < 1e-6
    q8, _ = np.linalg.qr(rng.normal(size=(8, 8)))
    assert abs(embeddings.linear_cka(x, x[:, :8] @ q8) - embeddings.linear_cka(x, x[:, :8])) < 1e-9
    assert embeddings.linear_cka(x, rng.normal(size=(500, 32))) < 0.2
    assert embeddings.linear_cka(x, rng.normal(size=(500, 10))) < 0.2  # D may differ per side
    with pytest.raises(ValueError, match="same N"):
        embeddings.linear_cka(x, x[:10])


def test_knn_overlap():
    rng = np.random.default_rng(5)
    x = rng.normal(size=(300, 8))
    q, _ = np.linalg.qr(rng.normal(size=(8, 8)))
    assert embeddings.knn_overlap(x, x) == 1.0
    assert embeddings.knn_overlap(x, 2 * x @ q) == 1.0
    assert embeddings.knn_overlap(x, rng.normal(size=(300, 8))) < 0.2
    assert embeddings.knn_overlap(x[:4], x[:4], k=10) == 1.0  # k clamped to N - 1
    # blocked distances agree with the one-block computation
    np.testing.assert_array_equal(np.sort(embeddings.reader._neighbours(x, 5, block=7), axis=1),
                                  np.sort(embeddings.reader._neighbours(x, 5), axis=1))


def test_similarity_by_step(tmp_path):
    feats, rows, _ = sample(n=60, d=6)
    q, _ = np.linalg.qr(np.random.default_rng(6).normal(size=(6, 6)))
    noise = np.random.default_rng(7).normal(size=feats.shape).astype(np.float32)
    for step, right in ((1, noise), (2, feats @ q)):
        export_embedding.write(tmp_path / "torch", "torch", step, feats, rows, HEADER)
        export_embedding.write(tmp_path / "tensorflow", "tensorflow", step, right, rows, HEADER)
    frame = embeddings.similarity_by_step(read_embeddings(tmp_path / "torch"),
                                          read_embeddings(tmp_path / "tensorflow"))
    assert frame["step"].tolist() == [1, 2] and frame["n"].tolist() == [60, 60]
    assert frame["cka"].iloc[0] < 0.5 and abs(frame["cka"].iloc[1] - 1) < 1e-5
    assert frame["knn_overlap"].iloc[1] == 1.0


def test_similarity_view_one_step_is_numbers_not_a_chart():
    one = pd.DataFrame({"tag": ["hidden"], "step": [6600], "n": [256], "cka": [0.91], "knn_overlap": [0.62]})
    view = embeddings.similarity_view(one, 6600)
    assert (view.step, view.cka, view.knn_overlap, view.chart) == (6600, 0.91, 0.62, False)
    assert "Only step 6,600" in view.note and "`embedding_steps`" in view.note
    assert "--embedding-steps 100 200" in view.note and "Launch form" in view.note
    # The step picked on the page is one only one side exported: the one compared step's numbers all the same.
    assert embeddings.similarity_view(one, 10).step == 6600
    two = pd.concat([one, one.assign(step=100)], ignore_index=True)
    view = embeddings.similarity_view(two, 100)
    assert view.chart and view.note is None and view.step == 100
    assert embeddings.similarity_view(two, 7).step is None  # not compared at that step: no numbers
    none = embeddings.similarity_view(one.iloc[0:0], None)
    assert none.step is None and not none.chart and "No step was exported on both sides" in none.note


# --- the real trainers ----------------------------------------------------------------------------


def test_real_trainers_export_matching_embeddings(real_pair):
    tmp_path = real_pair.run_dir
    left, right = read_embeddings(tmp_path / "torch"), read_embeddings(tmp_path / "tensorflow")
    assert left and [e.step for e in left] == [e.step for e in right]
    assert {10, 20} <= {e.step for e in left}  # embedding_steps=(10,) and the final step
    for a, b in zip(left, right):
        assert a.tensor.shape == b.tensor.shape == (24, 32)  # last hidden layer of (64, 32)
        assert a.metadata.shape == b.metadata.shape and a.metadata["label"].equals(b.metadata["label"])
        assert a.images is not None and a.images.shape == b.images.shape == (24, 8, 8)
