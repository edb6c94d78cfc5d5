"""The per-sample predictions trainers.evaluation saves at each evaluation, read back under caps,
and where two runs' predictions part.

A run folder's `predictions/` holds `val.npz` (`labels`: [N] class ids, or [N, T] for a sequence
task; `images` uint8 [N, h, w], or `tokens` [N, T] and `vocab`: what the samples look like) and one
`step_<8 digits>.npy` an evaluation, a structured array of `pred` (int) and `conf` (float) in the
shape of `labels`. Everything is checked before it is allocated: a file's size, a .npy header's
shape and dtype against the bytes present, an .npz member's uncompressed size, no pickles.
"""
from __future__ import annotations

import math
import os
import re
import zipfile
from dataclasses import dataclass
from pathlib import Path

import numpy as np

PREDICTIONS_DIR, VAL_FILE = "predictions", "val.npz"  # trainers.evaluation writes them
STEP_RE = re.compile(r"step_(\d{8})\.npy")
MAX_STEP_BYTES = 16 << 20  # one step file (the digits' is 2.2 KB)
MAX_VAL_BYTES = 256 << 20  # val.npz, uncompressed (the digits' is 23 KB)
MAX_STEPS = 10_000  # step files read from one folder (the newest kept)


class PredictionsError(ValueError):
    """A predictions file that cannot be used; str() names the file and why."""


@dataclass(frozen=True)
class Predictions:
    """One run's saved predictions."""
    folder: Path
    labels: np.ndarray  # int [N] or [N, T]
    images: np.ndarray | None  # uint8 [N, h, w]
    tokens: np.ndarray | None  # int [N, T]
    vocab: np.ndarray | None  # str [V]: the character a class id stands for (task text)
    steps: tuple[int, ...]  # ascending

    def at(self, step: int) -> tuple[np.ndarray, np.ndarray]:
        """(pred, conf) saved at `step`, in the shape of `labels`."""
        rows = _npy(self.folder / f"step_{step:08d}.npy", MAX_STEP_BYTES)
        if rows.dtype.names is None or not {"pred", "conf"} <= set(rows.dtype.names):
            raise PredictionsError(f"{self.folder / f'step_{step:08d}.npy'}: holds no pred and conf fields")
        pred, conf = rows["pred"], rows["conf"]
        if pred.shape != self.labels.shape or pred.dtype.kind not in "iu" or conf.dtype.kind != "f":
            raise PredictionsError(f"{self.folder / f'step_{step:08d}.npy'}: pred {pred.dtype}{list(pred.shape)} "
                                   f"does not fit the labels {list(self.labels.shape)}")
        return pred.astype(np.int64), conf.astype(np.float64)


def signature(folder: str | os.PathLike) -> tuple:
    """(name, size, mtime) of every file in a predictions folder: a cache key that changes when
    an evaluation is added."""
    try:
        return tuple(sorted((e.name, e.stat().st_size, e.stat().st_mtime_ns) for e in os.scandir(folder)
                            if e.is_file()))
    except OSError:
        return ()


def read_predictions(run_folder: str | os.PathLike) -> Predictions | None:
    """The predictions saved in `run_folder`/predictions, or None when there are none;
    PredictionsError for a file that cannot be used."""
    folder = Path(run_folder) / PREDICTIONS_DIR
    if not (folder / VAL_FILE).is_file():
        return None
    arrays = _npz(folder / VAL_FILE)
    labels = arrays.get("labels")
    if labels is None or labels.dtype.kind not in "iu" or labels.ndim not in (1, 2):
        raise PredictionsError(f"{folder / VAL_FILE}: no integer labels [N] or [N, T]")
    images, tokens = arrays.get("images"), arrays.get("tokens")
    if images is not None and (images.dtype != np.uint8 or images.ndim != 3 or len(images) != len(labels)):
        raise PredictionsError(f"{folder / VAL_FILE}: images {images.dtype}{list(images.shape)} do not fit "
                               f"{len(labels)} samples")
    if tokens is not None and (tokens.dtype.kind not in "iu" or tokens.shape[:1] != labels.shape[:1]):
        tokens = None
    vocab = arrays.get("vocab")
    if vocab is not None and (vocab.dtype.kind != "U" or vocab.ndim != 1):
        vocab = None
    steps = sorted(int(m.group(1)) for name in os.listdir(folder) if (m := STEP_RE.fullmatch(name)))
    return Predictions(folder, labels.astype(np.int64), images, tokens, vocab, tuple(steps[-MAX_STEPS:]))


def _npy(path: Path, cap: int) -> np.ndarray:
    """A .npy file, its header's claims checked against the file before the data is read."""
    try:
        with open(path, "rb") as f:
            size = os.fstat(f.fileno()).st_size
            if size > cap:
                raise PredictionsError(f"{path}: {size} bytes, over the cap of {cap}")
            version = np.lib.format.read_magic(f)
            read_header = (np.lib.format.read_array_header_1_0 if version == (1, 0)
                           else np.lib.format.read_array_header_2_0)
            shape, fortran, dtype = read_header(f)
            if dtype.hasobject:
                raise PredictionsError(f"{path}: holds Python objects")
            if size - f.tell() != math.prod(shape) * dtype.itemsize:
                raise PredictionsError(f"{path}: its header claims {dtype}{list(shape)}, not what it holds")
            data = np.frombuffer(f.read(), dtype=dtype)
    except OSError as e:
        raise PredictionsError(f"{path}: cannot be read: {e.strerror}") from None
    except ValueError as e:
        if isinstance(e, PredictionsError):
            raise
        raise PredictionsError(f"{path}: not a .npy file ({e})") from None
    return data.reshape(shape, order="F" if fortran else "C")


def _npz(path: Path) -> dict[str, np.ndarray]:
    """An .npz's arrays, the members' uncompressed sizes capped before any is read."""
    try:
        with zipfile.ZipFile(path) as zf:
            infos = zf.infolist()
            if sum(i.file_size for i in infos) > MAX_VAL_BYTES:
                raise PredictionsError(f"{path}: over {MAX_VAL_BYTES >> 20} MiB uncompressed")
            out = {}
            for info in infos:
                if not info.filename.endswith(".npy") or "/" in info.filename:
                    continue
                with zf.open(info) as member:
                    out[info.filename[:-4]] = np.lib.format.read_array(member, allow_pickle=False)
            return out
    except (OSError, zipfile.BadZipFile, ValueError, EOFError) as e:
        if isinstance(e, PredictionsError):
            raise
        raise PredictionsError(f"{path}: not a readable .npz ({e})") from None


# --- two runs --------------------------------------------------------------------------------------
@dataclass(frozen=True)
class Comparison:
    """Two runs' predictions of the same validation samples at one step."""
    step: int
    labels: np.ndarray
    left: tuple[np.ndarray, np.ndarray]  # (pred, conf)
    right: tuple[np.ndarray, np.ndarray]

    @property
    def differ(self) -> np.ndarray:
        """Indices (flat, for a sequence task: sample * T + position) where the predicted classes differ."""
        return np.flatnonzero((self.left[0] != self.right[0]).ravel())

    @property
    def both_wrong(self) -> np.ndarray:
        return np.flatnonzero(((self.left[0] != self.labels) & (self.right[0] != self.labels)).ravel())

    @property
    def total(self) -> int:
        return int(self.labels.size)


def comparable(a: Predictions, b: Predictions) -> str | None:
    """Why two runs' predictions cannot be compared sample by sample, or None when they can."""
    if a.labels.shape != b.labels.shape or not np.array_equal(a.labels, b.labels):
        return ("their validation samples differ (other labels, or another split): compare runs of one "
                "matched pair")
    return None


def compare(a: Predictions, b: Predictions, step: int) -> Comparison:
    return Comparison(step, a.labels, a.at(step), b.at(step))


def agreement(a: Predictions, b: Predictions) -> dict[str, np.ndarray]:
    """Over the steps both saved: step, the share of predictions that agree, and each side's
    accuracy on the validation samples (from its saved predictions)."""
    steps = sorted(set(a.steps) & set(b.steps))
    rate, acc_a, acc_b = [], [], []
    for step in steps:
        (pa, _), (pb, _) = a.at(step), b.at(step)
        rate.append(float(np.mean(pa == pb)) if pa.size else 1.0)
        acc_a.append(float(np.mean(pa == a.labels)) if pa.size else 0.0)
        acc_b.append(float(np.mean(pb == b.labels)) if pb.size else 0.0)
    return {"step": np.array(steps, np.int64), "agreement": np.array(rate), "accuracy_left": np.array(acc_a),
            "accuracy_right": np.array(acc_b)}


def in_words(c: Comparison, left: str, right: str, unit: str = "validation samples") -> str:
    """How many predictions differ, said in words ('left'/'right': the sides' names, plain text)."""
    n, total = c.differ.size, c.total
    if n == 0:
        return f"At step {c.step}, {left} and {right} predict the same class for all {total:,} {unit}."
    share = n / total if total else 0.0
    return (f"At step {c.step}, {left} and {right} predict a different class for {n:,} of {total:,} {unit} "
            f"({share:.1%}).")


def confusion(labels: np.ndarray, pred: np.ndarray, n_classes: int) -> np.ndarray:
    """[true, predicted] counts over `n_classes` classes (ids past it are left out)."""
    keep = (labels >= 0) & (labels < n_classes) & (pred >= 0) & (pred < n_classes)
    flat = labels[keep].astype(np.int64) * n_classes + pred[keep].astype(np.int64)
    return np.bincount(flat, minlength=n_classes ** 2).reshape(n_classes, n_classes)
