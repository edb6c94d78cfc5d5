"""What trainers.evaluation builds from validation logits, numpy only: PNGs a decoder reads back
pixel for pixel, labels drawn where they belong, TensorBoard's PR-curve arithmetic, and
predictions files twinboard.images reads back (the writer's and the reader's names agree)."""
from __future__ import annotations

import io

import numpy as np
import pytest

from trainers import eval_images as draw
from trainers import evaluation as ev
from twinboard.images import predictions as reader
from twinboard.images import read_predictions


def _decode(data: bytes):
    from PIL import Image  # Streamlit's own dependency: a real decoder, not ours

    return Image.open(io.BytesIO(data))


def test_png_grey_and_palette_decode_to_the_same_pixels():
    rng = np.random.default_rng(0)
    grey = rng.integers(0, 256, (7, 13), dtype=np.uint8)
    img = _decode(draw.png(grey))
    assert (img.mode, img.size) == ("L", (13, 7)) and np.array_equal(np.asarray(img), grey)
    idx = rng.integers(0, 254, (5, 9), dtype=np.uint8)
    img = _decode(draw.png(idx, draw.BLUES))
    assert img.mode == "P" and np.array_equal(np.asarray(img), idx)
    palette = img.getpalette()
    assert palette[:3] == [255, 255, 255] and palette[3 * draw.GREEN:3 * draw.GREEN + 3] == [60, 200, 90]
    with pytest.raises(ValueError):
        draw.png(np.zeros((2, 2, 3), np.uint8))


def test_misclassified_tiles_are_captioned_true_then_predicted():
    tiles = np.full((3, 8, 8), 200, np.uint8)
    labels, pred = np.array([3, 7, 0]), np.array([5, 1, 9])
    canvas = draw.tile_grid(tiles, labels, pred, 10)
    px = canvas.pixels
    for k, (t, p) in enumerate(zip(labels, pred)):
        top, left = draw.GAP + 8 * draw.SCALE + 1, draw.GAP + k * (8 * draw.SCALE + draw.GAP)
        assert np.array_equal(px[top:top + 5, left:left + 3] == draw.GREEN, draw.FONT[str(t)])
        assert np.array_equal(px[top:top + 5, left + 8:left + 11] == draw.RED, draw.FONT[str(p)])
    assert _decode(canvas.png()).size == (px.shape[1], px.shape[0])


def test_pr_curves_are_tensorboards_arithmetic():
    from tensorboardX.summary import compute_curve  # TensorBoard's pr_curve.summary.pb, in numpy

    rng = np.random.default_rng(1)
    probs = rng.dirichlet(np.ones(10), 359)
    labels = rng.integers(0, 10, 359)
    got = ev.pr_curves(labels, probs)
    for c in range(10):
        want = compute_curve(labels == c, probs[:, c], num_thresholds=ev.PR_THRESHOLDS).astype(np.float32)
        np.testing.assert_array_equal(got[c], want)


class _Digits:
    """A Dataset's validation split as the trainers' data module gives it (digits: 8x8 images)."""

    def __init__(self, n: int = 40, classes: int = 10, image_shape=(8, 8), seq: int = 0):
        rng = np.random.default_rng(2)
        self.n_classes, self.image_shape = classes, image_shape
        shape = (n, seq) if seq else (n,)
        self.y_val = rng.integers(0, classes, shape)
        self.x_val = rng.integers(0, classes, shape) if seq else rng.random((n, 64))


def test_evaluator_writes_what_the_dashboard_reads(tmp_path):
    assert (ev.PREDICTIONS_DIR, ev.VAL_FILE) == (reader.PREDICTIONS_DIR, reader.VAL_FILE)
    assert reader.STEP_RE.fullmatch(ev.STEP_FILE.format(step=12))
    ds = _Digits()
    written = []
    e = ev.Evaluator(tmp_path, ds, lambda *a: written.append(a))
    logits = np.random.default_rng(3).standard_normal((40, 10))
    e.submit(5, logits, ("conv0", np.ones((4, 1, 3, 3))))
    e.submit(9, logits * 0)  # every class alike: the first wins, as argmax
    e.close()
    saved = read_predictions(tmp_path)
    assert saved.steps == (5, 9) and saved.images.shape == (40, 8, 8)
    pred, conf = saved.at(5)
    np.testing.assert_array_equal(pred, logits.argmax(1))
    np.testing.assert_allclose(conf, ev.softmax(logits).max(1), rtol=1e-6)
    assert saved.at(9)[0].tolist() == [0] * 40
    step, _, pictures, curves = written[0]
    assert step == 5 and [p.tag for p in pictures] == [ev.INPUTS_TAG, ev.MISSED_TAG, ev.CONFUSION_TAG,
                                                       "images/conv0_filters"]
    assert len(curves) == 10 and curves[3].tag == "pr_curves/val/class_3"
    wrong = int((pred != ds.y_val).sum())
    assert pictures[1].description.startswith(f"{wrong} of 40 validation samples misclassified")
    assert [p.tag for p in written[1][2]] == [ev.MISSED_TAG, ev.CONFUSION_TAG]  # the inputs once


def test_a_sequence_task_saves_predictions_only(tmp_path):
    ds = _Digits(n=6, classes=30, image_shape=None, seq=5)
    written = []
    e = ev.Evaluator(tmp_path, ds, lambda *a: written.append(a))
    e.submit(3, np.random.default_rng(4).standard_normal((6, 5, 30)))
    e.close()
    saved = read_predictions(tmp_path)
    assert not written and saved.labels.shape == (6, 5) and saved.tokens.shape == (6, 5)
    assert saved.at(3)[0].shape == (6, 5)


def test_a_failure_to_write_warns_once_and_never_ends_the_run(tmp_path, capsys):
    from trainers.eval_writers import Hook

    def full_disk(*_):
        raise OSError(28, "No space left on device")

    hook = Hook(ev.Evaluator(tmp_path, _Digits(), full_disk), last_step=10, filters=lambda: None)
    logits = np.zeros((40, 10))
    hook.submit(5, logits)  # written on the evaluator's thread: the failure shows at the next call
    hook.submit(10, logits)
    hook.submit(15, logits)
    err = capsys.readouterr().err
    assert err.count("warning: evaluation records are off from step 10: RuntimeError: writing the evaluation "
                     "records failed: OSError: [Errno 28] No space left on device") == 1 and hook.off
    assert err.count("warning") == 1


@pytest.mark.parametrize("step, tag_len, png_len, described", [(0, 5, 10, True), (44, 130, 20_000, False),
                                                                (2 ** 40, 300, 3_000_000, True)])
def test_an_evaluation_event_is_protobufs_bytes(step, tag_len, png_len, described):
    """EventBytes joins what protobuf writes: an image value (tensorboardX's Summary.Image), a string
    tensor (tf.summary.image's), a PR curve's float tensor, with and without metadata; lengths whose
    varints take 1 to 4 bytes."""
    from tensorboard.compat.proto.event_pb2 import Event
    from tensorboard.compat.proto.summary_pb2 import Summary, SummaryMetadata
    from tensorboard.compat.proto.tensor_pb2 import TensorProto
    from tensorboard.compat.proto.types_pb2 import DT_FLOAT, DT_STRING

    from trainers.eval_writers import EventBytes

    rng = np.random.default_rng(step)
    png, curve = rng.bytes(png_len), rng.random((6, ev.PR_THRESHOLDS)).astype(np.float32)
    tag = "images/" + "é" * tag_len
    meta = SummaryMetadata(summary_description="d" * tag_len, plugin_data=SummaryMetadata.PluginData(
        plugin_name="pr_curves", content=b"\x08\x7f"))
    shape = {"dim": [{"size": 6}, {"size": ev.PR_THRESHOLDS}]}
    want = Event(wall_time=1.7e9 + step / 7, step=step, summary=Summary(value=[
        Summary.Value(tag=tag, image=Summary.Image(height=3, width=400, colorspace=3, encoded_image_string=png),
                      metadata=meta if described else None),
        Summary.Value(tag="s", tensor=TensorProto(dtype=DT_STRING, tensor_shape={"dim": [{"size": 3}]},
                                                  string_val=[b"400", b"3", png])),
        Summary.Value(tag="pr_curves/val/class_3", metadata=meta if described else None,
                      tensor=TensorProto(dtype=DT_FLOAT, tensor_shape=shape, tensor_content=curve.tobytes()))]))
    enc = EventBytes(Event, Summary, TensorProto, DT_FLOAT)
    meta_bytes = meta.SerializeToString() if described else None
    for _ in range(2):  # the second time from what the first left made
        got = enc.event(step, 1.7e9 + step / 7, [
            enc.value(tag, enc.IMAGE, want.summary.value[0].image.SerializeToString(), meta_bytes),
            enc.value("s", enc.TENSOR, want.summary.value[1].tensor.SerializeToString()),
            enc.curve("pr_curves/val/class_3", curve, meta_bytes)])
        assert Event.FromString(got) == want
        assert got == want.SerializeToString()


def test_npy_bytes_are_np_saves():
    rng = np.random.default_rng(5)
    for pred in (rng.integers(0, 10, 359), rng.integers(0, 97, (6, 32))):
        rows = ev.prediction_rows(pred.astype(np.int16), rng.random(pred.shape).astype(np.float32))
        buf = io.BytesIO()
        np.save(buf, rows, allow_pickle=False)
        assert ev.npy_bytes(rows) == buf.getvalue()
        assert ev.npy_bytes(rows[::2]) == ev.npy_bytes(rows[::2].copy())
