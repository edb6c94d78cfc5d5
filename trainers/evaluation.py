"""What a classification trainer writes at each evaluation besides loss/val and accuracy/val, built
from the validation logits with numpy, the same code for both frameworks:

- images (TensorBoard's images plugin; trainers.eval_images draws and encodes them):
  `images/val_inputs` once, the first INPUT_SAMPLES validation samples; at every evaluation
  `images/val_misclassified`, the first MISSED_CAP samples the model gets wrong, each captioned
  true > predicted (and listed with confidences in the record's description), and
  `images/val_confusion`, the confusion matrix; for a model with a conv layer `images/<layer>_filters`,
  its kernels. Pictures need image data (Dataset.image_shape), the confusion matrix a few classes.
- PR curves (TensorBoard's pr_curves plugin): `pr_curves/val/class_<c>`, one-vs-rest on the
  softmax probabilities, PR_THRESHOLDS thresholds, TensorBoard's own arithmetic
  (tensorboard.plugins.pr_curve.summary.pb), for a task with at most MAX_PR_CLASSES classes.
- predictions: `<logdir>/predictions/step_<8 digits>.npy`, a structured array with fields `pred`
  (the predicted class, int16) and `conf` (its softmax probability, float32) for every validation
  sample ([N], or [N, T] for a sequence task: one per position; 2.2 KB for the digits), and once
  `val.npz` with `labels` and the samples as the dashboard shows them (`images` uint8 [N, h, w], or
  `tokens` [N, T] and the `vocab`, a character per id), so two runs' predictions compare without
  re-running a model. Written atomically (temporary name, rename; no fsync: derived data).

Where the time goes (digits, 359 validation samples, 10 classes; the default spec, 10 epochs of 44
steps, an evaluation each; 2-core machine at a load average of ~1, 10 runs with and 10 without,
alternating): the pictures, curves and event record are made in line, 1.1 ms of the training
thread's CPU an evaluation for the MLP on either side (2.3-2.6% of the loop's CPU), 1.2-1.9 ms for
the CNN (1.3-2.5%); the whole loop measured +2.6% to +5.6% (torch MLP, the worst case: 0.35 ms a
step, an evaluation every 15 ms), +0.2% to +1.9% (torch CNN). A version that did all of it on a
thread cost the loop more (+2.3 ms an evaluation against +1.3 ms in line, measured on an earlier,
heavier version): the work holds the GIL nearly throughout, and the loop and the thread took turns.
The files wait on the disk (0.25 ms idle, 2 ms on a busy one) with the GIL released: they alone go
to a WriterThread (trainers.background), which saved ~0.3 ms an evaluation. To keep the GIL time
short: pictures are one byte a pixel and drawn with a fixed number of whole-array operations
(trainers.eval_images), every PR curve comes from one bincount, an evaluation is one event record,
and a tag's metadata is written again only when its description changes (eval_writers.Described).
"""
from __future__ import annotations

import io
import os
import time
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path

import numpy as np

from trainers import eval_images as draw
from trainers.background import WriterThread

INPUTS_TAG = "images/val_inputs"
MISSED_TAG = "images/val_misclassified"
CONFUSION_TAG = "images/val_confusion"
FILTERS_TAG = "images/{layer}_filters"
PR_TAG = "pr_curves/val/class_{cls}"
INPUT_SAMPLES = 64
MISSED_CAP = 32
PR_THRESHOLDS = 127  # tensorboardX's add_pr_curve caps num_thresholds at 127: the same on both sides
MAX_PR_CLASSES = 20
_MIN_COUNT = 1e-7  # TensorBoard's pr_curve summary: precision and recall divide by at least this
PREDICTIONS_DIR = "predictions"  # twinboard.images.predictions reads what this module writes
VAL_FILE = "val.npz"
STEP_FILE = "step_{step:08d}.npy"


@dataclass(frozen=True)
class Picture:
    tag: str
    png: bytes
    height: int
    width: int
    channels: int  # 1 grey, 3 colour (a palette)
    description: str


@dataclass(frozen=True)
class Curve:
    tag: str
    data: np.ndarray  # float32 [6, PR_THRESHOLDS]: TP, FP, TN, FN, precision, recall
    description: str


Write = Callable[[int, float, list, list], None]  # (step, wall time, pictures, curves) -> into the event file


# --- the numbers ----------------------------------------------------------------------------------
def softmax(logits: np.ndarray) -> np.ndarray:
    z = np.asarray(logits, dtype=np.float64)
    z = np.exp(z - z.max(axis=-1, keepdims=True))
    return z / z.sum(axis=-1, keepdims=True)


def predictions(probs: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """(predicted class, its probability) per sample (per position for [N, T, C] softmax
    probabilities); the first maximum wins a tie, as argmax does in numpy, torch and TF."""
    pred = probs.argmax(axis=-1)
    conf = np.take_along_axis(probs, pred[..., None], axis=-1)[..., 0]
    return pred.astype(np.int16 if probs.shape[-1] < 2 ** 15 else np.int32), conf.astype(np.float32)


def confusion(labels: np.ndarray, pred: np.ndarray, n_classes: int) -> np.ndarray:
    """[true, predicted] counts."""
    return np.bincount(labels.astype(np.int64) * n_classes + pred, minlength=n_classes ** 2
                       ).reshape(n_classes, n_classes)


def pr_curves(labels: np.ndarray, probs: np.ndarray, thresholds: int = PR_THRESHOLDS) -> np.ndarray:
    """float32 [C, 6, thresholds], one-vs-rest per class: tensorboard.plugins.pr_curve.summary.pb's
    arithmetic (bucket floor(p * (T - 1)), counts reversed-cumulated), every class in one bincount."""
    c = probs.shape[1]
    bucket = np.floor(probs * (thresholds - 1)).astype(np.int64).clip(0, thresholds - 1)
    positive = labels[:, None] == np.arange(c)[None, :]
    where = (np.arange(c)[None, :] * thresholds + bucket) * 2 + positive
    counts = np.bincount(where.ravel(), minlength=c * thresholds * 2).reshape(c, thresholds, 2)
    tp = np.cumsum(counts[:, ::-1, 1], axis=1, dtype=np.float64)[:, ::-1]
    fp = np.cumsum(counts[:, ::-1, 0], axis=1, dtype=np.float64)[:, ::-1]
    tn, fn = fp[:, :1] - fp, tp[:, :1] - tp
    precision = tp / np.maximum(_MIN_COUNT, tp + fp)
    recall = tp / np.maximum(_MIN_COUNT, tp + fn)
    return np.stack([tp, fp, tn, fn, precision, recall], axis=1).astype(np.float32)


# --- the records ----------------------------------------------------------------------------------
def _picture(tag: str, canvas: draw.Canvas, description: str) -> Picture:
    h, w = canvas.pixels.shape
    return Picture(tag, canvas.png(), h, w, canvas.channels, description)


def input_picture(images: np.ndarray) -> Picture:
    """The first INPUT_SAMPLES validation samples (uint8 [N, h, w]), once a run."""
    shown = images[:INPUT_SAMPLES]
    return _picture(INPUTS_TAG, draw.tile_grid(shown), f"The first {len(shown)} validation samples, "
                    "row by row, as the model sees them (one grey scale for all).")


def missed_picture(images: np.ndarray, labels: np.ndarray, pred: np.ndarray, conf: np.ndarray,
                   n_classes: int) -> Picture | None:
    """The first MISSED_CAP misclassified validation samples, captioned true > predicted."""
    wrong = np.flatnonzero(pred != labels)
    if not wrong.size:
        return None
    shown = wrong[:MISSED_CAP]
    listed = "; ".join(f"#{i}: {t} > {p} ({c:.0%})" for i, t, p, c in
                       zip(shown.tolist(), labels[shown].tolist(), pred[shown].tolist(), conf[shown].tolist()))
    return _picture(MISSED_TAG, draw.tile_grid(images[shown], labels[shown], pred[shown], n_classes),
                    f"{wrong.size} of {len(labels)} validation samples misclassified; the first {shown.size} "
                    f"in validation order, each captioned true > predicted class. {listed}")


def confusion_picture(labels: np.ndarray, pred: np.ndarray, n_classes: int) -> Picture:
    matrix = confusion(labels, pred, n_classes)
    return _picture(CONFUSION_TAG, draw.confusion_picture(matrix),
                    f"Confusion matrix of the {len(labels)} validation samples: rows true class, columns "
                    "predicted, each row shaded by its share of that class (white none, dark blue all). "
                    "Counts: " + " | ".join(" ".join(map(str, row)) for row in matrix.tolist()))


def filter_pictures(filters: tuple[str, np.ndarray] | None) -> list[Picture]:
    if filters is None:
        return []
    layer, weight = filters
    return [_picture(FILTERS_TAG.format(layer=layer), draw.filter_picture(weight),
                     f"The kernels of {layer} (torch layout [out, in, kh, kw]), one tile per output and "
                     "input channel, each on its own symmetric scale: mid grey 0, white its largest "
                     "positive weight, black its largest negative.")]


def curves(labels: np.ndarray, probs: np.ndarray) -> list[Curve]:
    data = pr_curves(labels, probs)
    return [Curve(PR_TAG.format(cls=c), data[c], f"Class {c} against the rest, on the softmax probability "
                  f"of class {c}, {PR_THRESHOLDS} thresholds from 0 to 1.") for c in range(len(data))]


def npy_bytes(array: np.ndarray) -> bytes:
    """`array` as the bytes of a .npy file (np.save's, no pickle)."""
    buf = io.BytesIO()
    np.save(buf, array, allow_pickle=False)
    return buf.getvalue()


def npz_bytes(**arrays: np.ndarray) -> bytes:
    buf = io.BytesIO()
    np.savez(buf, **arrays)
    return buf.getvalue()


def write_atomic(item: tuple[Path, bytes | Callable[[], bytes]]) -> None:
    """The bytes (or what the callable makes: work left to the files' thread) under a temporary
    name, then renamed: a reader sees the whole file or none."""
    path, data = item
    tmp = path.with_name(f".{path.name}.{os.getpid()}.tmp")
    with open(tmp, "wb") as f:
        f.write(data() if callable(data) else data)
    os.replace(tmp, path)


def prediction_rows(pred: np.ndarray, conf: np.ndarray) -> np.ndarray:
    """The step file's structured array: `pred` and `conf` side by side, in the shape of `pred`."""
    rows = np.empty(pred.shape, dtype=[("pred", pred.dtype), ("conf", np.float32)])
    rows["pred"], rows["conf"] = pred, conf
    return rows


# --- the evaluator --------------------------------------------------------------------------------
class Evaluator:
    """One trainer's evaluation records. `submit` an evaluation's logits (and, for a CNN, the first
    conv layer's kernels): the pictures and curves are made and handed to the event writer at once,
    the predictions file is written by a WriterThread; `close` once the last is submitted.
    Classification tasks only (the caller checks Dataset.n_classes)."""

    def __init__(self, logdir: str | os.PathLike, ds, write: Write, vocab: list[str] | None = None):
        """`vocab`: what each class id stands for, when it is a character (task text)."""
        self.ds, self.write_records, self.vocab = ds, write, vocab
        self.folder = Path(logdir) / PREDICTIONS_DIR
        self.labels = np.asarray(ds.y_val)
        self.images = (None if ds.image_shape is None or self.labels.ndim != 1
                       else draw.to_grey(np.asarray(ds.x_val).reshape(-1, *ds.image_shape)))
        self.started = False
        self.files = WriterThread(write_atomic, "writing the predictions files")

    def submit(self, step: int, logits: np.ndarray, filters: tuple[str, np.ndarray] | None = None) -> None:
        wall = time.time()
        probs = softmax(logits)
        pred, conf = predictions(probs)
        if not self.started:
            self.folder.mkdir(parents=True, exist_ok=True)
            extra = ({"images": self.images} if self.images is not None
                     else {"tokens": np.asarray(self.ds.x_val)} if self.labels.ndim == 2 else {})
            if self.vocab is not None:
                extra["vocab"] = np.array(self.vocab, dtype=str)
            # a zip, ~1.5 ms to make: made on the files' thread too
            self.files.submit((self.folder / VAL_FILE, lambda: npz_bytes(labels=self.labels, **extra)))
        self.files.submit((self.folder / STEP_FILE.format(step=step), npy_bytes(prediction_rows(pred, conf))))
        pictures, found = self.records(probs, pred, conf, filters)
        if not self.started and self.images is not None:
            pictures.insert(0, input_picture(self.images))
        self.started = True
        if pictures or found:
            self.write_records(step, wall, pictures, found)

    def close(self) -> None:
        """Until every predictions file is written (a failure is raised here, once)."""
        self.files.close()

    def records(self, probs, pred, conf, filters) -> tuple[list[Picture], list[Curve]]:
        """The pictures and PR curves of one evaluation (none for a sequence task: predictions only)."""
        if probs.ndim != 2:
            return [], []
        n_classes = probs.shape[1]
        pictures = []
        if self.images is not None:
            missed = missed_picture(self.images, self.labels, pred, conf, n_classes)
            pictures += [missed] if missed is not None else []
        if n_classes <= draw.MAX_CONFUSION_CLASSES:
            pictures.append(confusion_picture(self.labels, pred, n_classes))
        pictures += filter_pictures(filters)
        found = curves(self.labels, probs) if n_classes <= MAX_PR_CLASSES else []
        return pictures, found
