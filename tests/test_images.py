"""Images and PR curves: TensorBoard's own reader and twinboard.read_images / read_pr_curves see the
same tags, steps and bytes in the files real writers made (both trainers, Keras' TensorBoard
callback with write_images, torch.utils.tensorboard's add_image and add_figure); sizes are checked
from the image headers before anything is decoded; the predictions the trainers save compare a
matched pair sample by sample: equal under init=shared in float64, not under init=native."""
from __future__ import annotations

import struct
import zlib
from pathlib import Path

import numpy as np
import pytest

import twinboard
from tests.image_pairs import EVAL_STEPS, prediction_pairs
from twinboard.contract import CorruptRecordError, frame
from twinboard.images import MAX_PIXELS, MediaStore, PredictionsError, compare, image_size, in_words, read_predictions

TRAINER_TAGS = {"images/val_inputs", "images/val_misclassified", "images/val_confusion"}


@pytest.fixture(scope="session")
def pairs(tmp_path_factory) -> Path:
    return prediction_pairs(tmp_path_factory)


def tensorboard_reads(folder: Path) -> tuple[dict, dict]:
    """({tag: [(step, [image bytes])]}, {tag: [(step, [6, T] array)]}) as TensorBoard's data
    pipeline sees them: legacy Summary.Image values arrive as images-plugin tensors (data_compat)."""
    from tensorboard.backend.event_processing.plugin_event_accumulator import EventAccumulator
    from tensorboard.util import tensor_util

    ea = EventAccumulator(str(folder), size_guidance={"tensors": 0})
    ea.Reload()
    def tags(plugin: str) -> list[str]:
        return list(ea.PluginTagToContent(plugin)) if plugin in ea.ActivePlugins() else []

    pics = {tag: [(e.step, list(tensor_util.make_ndarray(e.tensor_proto)[2:])) for e in ea.Tensors(tag)]
            for tag in tags("images")}
    curves = {tag: [(e.step, tensor_util.make_ndarray(e.tensor_proto)) for e in ea.Tensors(tag)]
              for tag in tags("pr_curves")}
    return pics, curves


def ours(folder: Path) -> tuple[dict, dict]:
    """The same shapes from twinboard.read_images and read_pr_curves."""
    df = twinboard.read_images(folder)
    pics = {tag: [(int(step), list(g.sort_values("index")["data"])) for step, g in rows.groupby("step", sort=False)]
            for tag, rows in df.groupby("tag")}
    pr = twinboard.read_pr_curves(folder)
    curves = {tag: [(int(r.step), np.stack([getattr(r, k) for k in ("tp", "fp", "tn", "fn", "precision", "recall")]))
                    for r in rows.itertuples()] for tag, rows in pr.groupby("tag")}
    return pics, curves


def assert_same(folder: Path) -> tuple[dict, dict]:
    (tb_pics, tb_curves), (pics, curves) = tensorboard_reads(folder), ours(folder)
    assert tb_pics and tb_pics == pics
    assert tb_curves.keys() == curves.keys()
    for tag, series in tb_curves.items():
        assert [s for s, _ in series] == [s for s, _ in curves[tag]], tag
        for (_, a), (_, b) in zip(series, curves[tag]):
            np.testing.assert_array_equal(a.astype(np.float64), b)
    return pics, curves


@pytest.mark.parametrize("fw", ["torch", "tensorflow"])
def test_tensorboard_and_twinboard_read_the_trainers_images_alike(real_pair, fw):
    pics, curves = assert_same(real_pair.run_dir / fw)
    assert TRAINER_TAGS <= set(pics)
    assert sorted(curves) == sorted(f"pr_curves/val/class_{c}" for c in range(10))
    last = real_pair.spec.steps  # 20 steps, under one epoch of 44: one evaluation, at the last step
    assert [s for s, _ in pics["images/val_confusion"]] == [last]
    df = twinboard.read_images(real_pair.run_dir / fw)
    missed = df[df.tag == "images/val_misclassified"].iloc[-1]
    assert "misclassified" in missed.description and " > " in missed.description
    assert (missed.format, missed.width) == ("png", 210)


def test_both_trainers_write_the_same_pictures_of_the_same_predictions(pairs):
    """init=shared in float64: the two frameworks' pictures and PR curves are byte for byte alike."""
    a, b = ours(pairs / "shared" / "torch"), ours(pairs / "shared" / "tensorflow")
    assert a[0] == b[0]
    for tag in a[1]:
        np.testing.assert_array_equal(np.stack([x for _, x in a[1][tag]]), np.stack([x for _, x in b[1][tag]]))


def test_cnn_filters_and_tensorboard_reads_the_native_pair(pairs):
    for fw in ("torch", "tensorflow"):
        pics, _ = assert_same(pairs / "native" / fw)
        assert "images/conv0_filters" in pics, fw
        assert [s for s, _ in pics["images/conv0_filters"]] == list(EVAL_STEPS)


def test_predictions_agree_under_shared_init_and_part_under_native(pairs):
    shared = [read_predictions(pairs / "shared" / fw) for fw in ("torch", "tensorflow")]
    native = [read_predictions(pairs / "native" / fw) for fw in ("torch", "tensorflow")]
    for p in (*shared, *native):
        assert p.steps == EVAL_STEPS and p.images.shape == (359, 8, 8) and p.labels.shape == (359,)
    for step in EVAL_STEPS:
        same = compare(*shared, step)
        assert same.differ.size == 0, step
        np.testing.assert_allclose(same.left[1], same.right[1], rtol=1e-6)  # float32 confidences of float64 runs
    parted = compare(*native, EVAL_STEPS[-1])
    assert 0 < parted.differ.size < parted.total
    assert in_words(parted, "PyTorch", "TensorFlow").startswith(
        f"At step 26, PyTorch and TensorFlow predict a different class for {parted.differ.size} of 359")


def test_keras_tensorboard_callback_write_images(tmp_path):
    import keras

    x = np.random.default_rng(0).random((32, 4)).astype("float32")
    model = keras.Sequential([keras.Input((4,)), keras.layers.Dense(3, name="d")])
    model.compile(optimizer="sgd", loss="mse")
    model.fit(x, x[:, :3], epochs=2, verbose=0,
              callbacks=[keras.callbacks.TensorBoard(str(tmp_path), write_images=True, histogram_freq=1)])
    pics, _ = assert_same(tmp_path / "train")  # TF2 string tensors under the images plugin
    assert {tag: [s for s, _ in series] for tag, series in pics.items()} == {
        "sequential/d/kernel/image": [0, 1], "sequential/d/bias/image": [0, 1]}


def test_torch_utils_tensorboard_add_image_images_and_figure(tmp_path):
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt
    from torch.utils.tensorboard import SummaryWriter

    rng = np.random.default_rng(0)
    w = SummaryWriter(str(tmp_path))
    w.add_image("one", rng.random((3, 10, 12)), 1)
    w.add_images("many", rng.random((4, 1, 6, 6)), 2)
    fig = plt.figure(figsize=(2, 1.5), dpi=50)
    plt.plot([0, 1], [1, 0])
    w.add_figure("figure", fig, 3)
    w.close()
    pics, _ = assert_same(tmp_path)
    assert set(pics) == {"one", "many", "figure"}
    df = twinboard.read_images(tmp_path).set_index("tag")
    assert (df.loc["one", "width"], df.loc["one", "height"]) == (12, 10)
    assert (df.loc["figure", "width"], df.loc["figure", "height"]) == (100, 75)


# --- hostile and broken input ------------------------------------------------------------------------
def _png_header(width: int, height: int) -> bytes:
    ihdr = struct.pack(">IIBBBBB", width, height, 8, 0, 0, 0, 0)
    return (b"\x89PNG\r\n\x1a\n" + struct.pack(">I", 13) + b"IHDR" + ihdr
            + struct.pack(">I", zlib.crc32(b"IHDR" + ihdr)))


def _image_event(step: int, data: bytes, tag: str = "img") -> bytes:
    from tensorboard.compat.proto import event_pb2, summary_pb2

    image = summary_pb2.Summary.Image(height=1, width=1, encoded_image_string=data)  # the header's size counts
    summary = summary_pb2.Summary(value=[summary_pb2.Summary.Value(tag=tag, image=image)])
    return frame(event_pb2.Event(step=step, wall_time=1.0, summary=summary).SerializeToString())


def test_image_sizes_come_from_the_header_and_are_capped_before_decoding(tmp_path):
    jpeg = bytes.fromhex("ffd8ffe000104a46494600010100000100010000") + bytes.fromhex("ffc0000b080030004001011100")
    assert image_size(jpeg) == ("jpeg", 64, 48)
    assert image_size(b"GIF89a" + struct.pack("<HH", 7, 5)) == ("gif", 7, 5)
    assert image_size(_png_header(60_000, 60_000)) == ("png", 60_000, 60_000)
    path = tmp_path / "events.out.tfevents.1.host"
    good = _png_header(4, 4)
    path.write_bytes(_image_event(1, good) + _image_event(2, _png_header(60_000, 60_000))
                     + _image_event(3, b"<svg>") + _image_event(4, good))
    df = twinboard.read_images(path, strict=False)
    assert df.step.tolist() == [1, 4]  # what is readable is kept
    messages = [p.message for p in df.attrs["problems"]]
    assert len(messages) == 1 and "not a PNG, JPEG or GIF" in messages[0]  # one listed per file: the last
    with pytest.raises(CorruptRecordError):
        twinboard.read_images(path)
    path.write_bytes(_image_event(2, _png_header(60_000, 60_000)))
    problems = twinboard.read_images(path, strict=False).attrs["problems"]
    assert f"{MAX_PIXELS:,} pixels; not shown" in problems[0].message


def test_the_store_reads_what_was_appended_and_names_a_damaged_file(real_pair, tmp_path):
    src = next((real_pair.run_dir / "torch").glob("events.out.tfevents.*")).read_bytes()
    run = tmp_path / "run" / "torch"
    run.mkdir(parents=True)
    path = run / "events.out.tfevents.1.host"
    path.write_bytes(src[:len(src) // 3])
    store = MediaStore(tmp_path)
    store.refresh()
    before = len(store.images_frame())
    path.write_bytes(src)
    store.refresh()
    after = store.images_frame()
    assert before < len(after) and set(after.tag) >= TRAINER_TAGS and not store.problems()
    damaged = bytearray(src)
    damaged[len(src) // 2] ^= 0xFF
    (tmp_path / "bad" / "torch").mkdir(parents=True)
    (tmp_path / "bad" / "torch" / path.name).write_bytes(bytes(damaged))
    store.refresh(["bad/torch"])
    assert [p.offset is not None and "corrupt" in p.message for p in store.problems(["bad/torch"])] == [True]
    assert not store.problems(["run/torch"])


def test_predictions_files_are_checked_before_they_are_read(pairs, tmp_path, monkeypatch):
    run = tmp_path / "run"
    folder = run / "predictions"
    folder.mkdir(parents=True)
    src = pairs / "shared" / "torch" / "predictions"
    (folder / "val.npz").write_bytes((src / "val.npz").read_bytes())
    with open(folder / "step_00000001.npy", "wb") as f:  # claims 10**12 rows, holds 10
        np.lib.format.write_array_header_1_0(f, {"descr": [("pred", "<i2"), ("conf", "<f4")],
                                                 "fortran_order": False, "shape": (10 ** 12,)})
        f.write(b"\0" * 60)
    saved = read_predictions(run)
    with pytest.raises(PredictionsError, match="header claims"):
        saved.at(1)
    np.save(folder / "step_00000002.npy", np.array([object()] * 3), allow_pickle=True)
    with pytest.raises(PredictionsError):
        saved.at(2)
    import zipfile

    from twinboard.images import predictions

    monkeypatch.setattr(predictions, "MAX_VAL_BYTES", 1 << 20)  # the cap, scaled down: 256 MiB is slow to deflate
    with zipfile.ZipFile(folder / "val.npz", "w", compression=zipfile.ZIP_DEFLATED) as zf:
        zf.writestr("labels.npy", b"\0" * (2 << 20))  # 2 MiB uncompressed in a ~2 KB file
    assert (folder / "val.npz").stat().st_size < 10_000
    with pytest.raises(PredictionsError, match="uncompressed"):
        read_predictions(run)
