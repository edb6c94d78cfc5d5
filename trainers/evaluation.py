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

Where the time goes (digits, 359 validation samples, 10 classes; torch MLP, the worst case: 0.35 ms
a step, an evaluation every ~20 ms; `make bench`, case evaluation_overhead). What holds the GIL
stays in the training thread, made as short as it can be: the probabilities, the predictions, the
PR curves (one bincount and one cumulative sum for every class) and the pictures drawn (one byte a
pixel, a fixed number of whole-array operations: trainers.eval_images): 0.51-0.79 ms an evaluation
(the bench's "in the hook", both frameworks, MLP and CNN). A
WriterThread (trainers.background) does the rest, which waits on zlib or the disk with the GIL
released or is cheap Python: the PNGs encoded (Picture.png), the evaluation's one event record
joined as bytes and handed to the framework's writer (eval_writers), the predictions files. Its
work is handed over together every FLUSH_S (the event files' flush interval: the dashboard sees a
step's predictions when it sees its records), the first evaluation's at once: woken at every
evaluation, the thread and the loop traded the GIL (with only the files on it, the hook took 0.97
ms against 0.74 ms with no files at all; the hook called alone in a loop, not the bench). History,
in the bench: all in line but the files, 1.30 ms an evaluation in the hook, +5.7% on the loop; all
of it on a thread woken every time (an earlier, heavier version), +2.3 ms against +1.3 ms in line. A tag's metadata is written again only when its description changes
(eval_writers.Described).
"""
from __future__ import annotations

import io
import os
import time
from collections.abc import Callable
from dataclasses import dataclass
from functools import cached_property, lru_cache
from pathlib import Path

import numpy as np

from trainers import eval_images as draw
from trainers.background import WriterThread
from trainers.loop import FLUSH_S

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
    canvas: draw.Canvas
    description: str

    @property
    def height(self) -> int:
        return self.canvas.pixels.shape[0]

    @property
    def width(self) -> int:
        return self.canvas.pixels.shape[1]

    @property
    def channels(self) -> int:  # 1 grey, 3 colour (a palette)
        return self.canvas.channels

    @cached_property
    def png(self) -> bytes:
        """Encoded where it is first asked for: the evaluator's thread (zlib lets go of the GIL)."""
        return self.canvas.png()


@dataclass(frozen=True)
class Curve:
    tag: str
    data: np.ndarray  # float32 [6, PR_THRESHOLDS]: TP, FP, TN, FN, precision, recall
    description: str


Write = Callable[[int, float, list, list], None]  # (step, wall time, pictures, curves) -> into the event file


# --- the numbers ----------------------------------------------------------------------------------
def softmax(logits: np.ndarray) -> np.ndarray:
    z = np.array(logits, dtype=np.float64)  # a copy, worked on in place
    z -= z.max(axis=-1, keepdims=True)
    np.exp(z, out=z)
    z /= z.sum(axis=-1, keepdims=True)
    return z


def predictions(probs: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """(predicted class, its probability) per sample (per position for [N, T, C] softmax
    probabilities); the first maximum wins a tie, as argmax does in numpy, torch and TF."""
    pred = probs.argmax(axis=-1).astype(np.int16 if probs.shape[-1] < 2 ** 15 else np.int32)
    return pred, probs.max(axis=-1).astype(np.float32)  # the probability argmax picked: the largest


def confusion(labels: np.ndarray, pred: np.ndarray, n_classes: int) -> np.ndarray:
    """[true, predicted] counts."""
    return np.bincount(labels.astype(np.int64) * n_classes + pred, minlength=n_classes ** 2
                       ).reshape(n_classes, n_classes)


def pr_curves(labels: np.ndarray, probs: np.ndarray, thresholds: int = PR_THRESHOLDS) -> np.ndarray:
    """float32 [C, 6, thresholds], one-vs-rest per class: tensorboard.plugins.pr_curve.summary.pb's
    arithmetic (bucket floor(p * (T - 1)), counts reversed-cumulated), every class in one bincount
    and one cumulative sum (~70 us for the digits' 359 x 10)."""
    c = probs.shape[1]
    bucket = np.floor(probs * (thresholds - 1)).astype(np.intp).clip(0, thresholds - 1)
    bucket += np.arange(0, c * thresholds, thresholds)  # class k's buckets after the k before it
    where = bucket * 2 + (labels[:, None] == np.arange(c))  # [..., 0] the negatives, [..., 1] positives
    counts = np.bincount(where.ravel(), minlength=c * thresholds * 2).reshape(c, thresholds, 2)
    above = np.cumsum(counts[:, ::-1], axis=1, dtype=np.float64)[:, ::-1]  # at or above each threshold
    fp, tp = above[..., 0], above[..., 1]
    out = np.empty((c, 6, thresholds), np.float32)
    out[:, 0], out[:, 1], out[:, 2], out[:, 3] = tp, fp, fp[:, :1] - fp, tp[:, :1] - tp
    out[:, 4] = tp / np.maximum(_MIN_COUNT, tp + fp)
    out[:, 5] = tp / np.maximum(_MIN_COUNT, tp[:, :1])  # recall: tp over tp + fn, every positive
    return out


# --- the records ----------------------------------------------------------------------------------
def _picture(tag: str, canvas: draw.Canvas, description: str) -> Picture:
    return Picture(tag, canvas, description)


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


@lru_cache(maxsize=4)
def _curve_labels(n_classes: int) -> tuple[tuple[str, str], ...]:
    return tuple((PR_TAG.format(cls=c), f"Class {c} against the rest, on the softmax probability of class {c}, "
                  f"{PR_THRESHOLDS} thresholds from 0 to 1.") for c in range(n_classes))


def curves(labels: np.ndarray, probs: np.ndarray) -> list[Curve]:
    data = pr_curves(labels, probs)
    return [Curve(tag, data[c], text) for c, (tag, text) in enumerate(_curve_labels(len(data)))]


def npy_bytes(array: np.ndarray) -> bytes:
    """`array` as the bytes of a .npy file (np.save's, no pickle): the header made once a dtype and
    shape (np.save spends ~15 us of Python on it, on the thread that shares the GIL with training)."""
    array = np.ascontiguousarray(array)
    return _npy_header(array.dtype, array.shape) + array.tobytes()


@lru_cache(maxsize=16)
def _npy_header(dtype: np.dtype, shape: tuple[int, ...]) -> bytes:
    buf = io.BytesIO()
    np.save(buf, np.zeros(shape, dtype), allow_pickle=False)
    whole = buf.getvalue()
    return whole[:len(whole) - int(np.prod(shape)) * dtype.itemsize]


def npz_bytes(**arrays: np.ndarray) -> bytes:
    buf = io.BytesIO()
    np.savez(buf, **arrays)
    return buf.getvalue()


def write_atomic(path: Path, data: bytes) -> None:
    """The bytes under a temporary name, then renamed: a reader sees the whole file or none."""
    tmp = path.with_name(f".{path.name}.{os.getpid()}.tmp")
    with open(tmp, "wb") as f:
        f.write(data)
    os.replace(tmp, path)


def run_jobs(jobs: list[Callable[[], None]]) -> None:
    for job in jobs:
        job()


def prediction_rows(pred: np.ndarray, conf: np.ndarray) -> np.ndarray:
    """The step file's structured array: `pred` and `conf` side by side, in the shape of `pred`."""
    rows = np.empty(pred.shape, dtype=[("pred", pred.dtype), ("conf", np.float32)])
    rows["pred"], rows["conf"] = pred, conf
    return rows


# --- the evaluator --------------------------------------------------------------------------------
class Evaluator:
    """One trainer's evaluation records. `submit` an evaluation's logits (and, for a CNN, the first
    conv layer's kernels): the numbers are taken and the pictures drawn at once; the rest (PNG
    encoding, the event record handed to `write`, the predictions files) is done by a WriterThread,
    the first evaluation's at once and later ones together every FLUSH_S. `close` once the
    last is submitted: it does what is held and waits for it. Classification tasks only (the caller
    checks Dataset.n_classes)."""

    def __init__(self, logdir: str | os.PathLike, ds, write: Write, vocab: list[str] | None = None):
        """`vocab`: what each class id stands for, when it is a character (task text)."""
        self.ds, self.write_records, self.vocab = ds, write, vocab
        self.folder = Path(logdir) / PREDICTIONS_DIR
        self.labels = np.asarray(ds.y_val)
        self.images = (None if ds.image_shape is None or self.labels.ndim != 1
                       else draw.to_grey(np.asarray(ds.x_val).reshape(-1, *ds.image_shape)))
        self.started = False
        self.files = WriterThread(run_jobs, "writing the evaluation records")
        self.held: list[Callable[[], None]] = []  # for the files' thread
        self.handed = float("-inf")  # time.monotonic() of the last hand-over

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
            self.held.append(lambda: write_atomic(self.folder / VAL_FILE, npz_bytes(labels=self.labels, **extra)))
        rows = prediction_rows(pred, conf)  # a new array: the files' thread makes its .npy bytes
        self.held.append(lambda: write_atomic(self.folder / STEP_FILE.format(step=step), npy_bytes(rows)))
        pictures, found = self.records(probs, pred, conf, filters)
        if not self.started and self.images is not None:
            pictures.insert(0, input_picture(self.images))
        self.started = True
        if pictures or found:
            self.held.append(lambda: self.write_records(step, wall, pictures, found))
        if time.monotonic() - self.handed >= FLUSH_S:
            self._hand_over()

    def _hand_over(self) -> None:
        held, self.held = self.held, []
        self.handed = time.monotonic()
        self.files.submit(held)

    def close(self) -> None:
        """Until every record and file is written (a failure is raised here, once)."""
        try:
            if self.held:
                self._hand_over()
        finally:
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
