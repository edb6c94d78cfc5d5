"""Datasets that ship offline, the user's own (task=file), the train/validation split and the batch
order, from the seed.

numpy only, so both trainers see the very same float arrays and the same index order: PyTorch and
TensorFlow differ in how they shuffle, so neither framework's loader is used. A task=file data file
is read and checked by the contract's checker (twinboard.contract.datafile, the one the dashboard
ran before the launch): a .npz keeps its own split, a .csv is split by the seed as the built-in tasks
are, and the hash of the bytes read is kept (Dataset.sha256) for settings.json.
"""
from __future__ import annotations

import os
from dataclasses import dataclass
from pathlib import Path
from typing import Iterator

import numpy as np

from twinboard.contract import CEILINGS, RunSpec, data_file
from twinboard.contract.datafile import DataFileError, check_data_costs, read_path


@dataclass(frozen=True)
class Dataset:
    x_train: np.ndarray  # [n_train, n_features], spec.dtype; digits pixels scaled to [0, 1]
    y_train: np.ndarray  # [n_train] int64 class ids, or [n_train, 1] float targets for regression
    x_val: np.ndarray
    y_val: np.ndarray
    n_classes: int  # 0 for regression
    image_shape: tuple[int, int] | None  # (8, 8) for digits, else None
    sha256: str | None = None  # task=file: the data file's bytes as read (both sides record it)

    @property
    def n_features(self) -> int:
        return int(self.x_train.shape[1])

    @property
    def n_outputs(self) -> int:
        return self.n_classes or 1


def _digits() -> tuple[np.ndarray, np.ndarray, int, tuple[int, int]]:
    from sklearn.datasets import load_digits  # bundled with scikit-learn: 1797 samples, no download

    d = load_digits()
    return d.data / 16.0, d.target.astype(np.int64), 10, (8, 8)


def _spirals(n: int, rng: np.random.Generator) -> tuple[np.ndarray, np.ndarray]:
    # Two interleaved spirals, 1.5 turns each, Gaussian noise 0.1 (radius units up to 1).
    half = n // 2
    t = np.sqrt(rng.uniform(0.0, 1.0, size=half)) * 3.0 * np.pi
    arm = np.stack([t * np.cos(t), t * np.sin(t)], axis=1) / (3.0 * np.pi)
    x = np.concatenate([arm, -arm]) + rng.normal(0.0, 0.1 / 3.0, size=(2 * half, 2))
    y = np.concatenate([np.zeros(half, np.int64), np.ones(half, np.int64)])
    return x, y


def _regression(n: int, rng: np.random.Generator) -> tuple[np.ndarray, np.ndarray]:
    # 8 features in [-1, 1]; a smooth nonlinear target plus noise 0.05.
    x = rng.uniform(-1.0, 1.0, size=(n, 8))
    w = np.linspace(-1.0, 1.0, 8)
    y = np.sin(np.pi * x[:, 0]) + x[:, 1] * x[:, 2] + x @ w * 0.5 + rng.normal(0.0, 0.05, size=n)
    return x, y[:, None]


def load(spec: RunSpec, run_dir: str | os.PathLike | None = None) -> Dataset:
    """The split is a seeded permutation; the same spec gives the same arrays in every process.
    `run_dir` (the run folder) finds a task=file's data folder: see data_path."""
    if spec.task == "file":
        return _from_file(spec, run_dir)
    rng = np.random.default_rng([spec.seed, 0])
    image_shape = None
    if spec.task == "digits":
        x, y, n_classes, image_shape = _digits()
    elif spec.task == "spirals":
        x, y = _spirals(spec.n_samples, rng)
        n_classes = 2
    elif spec.task == "text":
        # Character windows of a text that ships with Python, from the seed: x and y int64 [n, 32]
        # (next-character targets), and the vocabulary's size as the classes.
        from trainers import text_data  # its own module; only task text pays for it

        x, y, n_classes = text_data.load_text(spec)
    else:
        x, y = _regression(spec.n_samples, rng)
        n_classes = 0
    return _split(spec, x, y, n_classes, image_shape)


def _split(spec: RunSpec, x: np.ndarray, y: np.ndarray, n_classes: int,
           image_shape: tuple[int, int] | None = None, sha256: str | None = None) -> Dataset:
    """Hold out val_fraction of the rows, chosen by the seed; cast to what the trainers feed."""
    order = np.random.default_rng([spec.seed, 1]).permutation(len(x))
    n_val = max(1, int(round(len(x) * spec.val_fraction)))
    val, train = order[:n_val], order[n_val:]
    return _typed(spec, x[train], y[train], x[val], y[val], n_classes, image_shape, sha256)


def _typed(spec: RunSpec, x_train, y_train, x_val, y_val, n_classes: int,
           image_shape: tuple[int, int] | None = None, sha256: str | None = None) -> Dataset:
    """x in spec.dtype (token ids stay int64 for task text); y int64 class ids, or [n, 1] targets."""
    dtype = np.dtype(spec.dtype)
    x_dtype = np.int64 if spec.task == "text" else dtype
    y_dtype = dtype if n_classes == 0 else np.int64
    if n_classes == 0:
        y_train, y_val = y_train.reshape(len(y_train), -1), y_val.reshape(len(y_val), -1)
    return Dataset(x_train.astype(x_dtype), y_train.astype(y_dtype), x_val.astype(x_dtype),
                   y_val.astype(y_dtype), n_classes, image_shape, sha256)


def data_path(spec: RunSpec, run_dir: str | os.PathLike | None = None) -> Path:
    """Where a task=file run's data file is: <logdir>/data/<spec.data>, the logdir being the run
    folder's parent (the contract's layout). Without `run_dir`, the run folder the dispatcher names
    in TWINBOARD_RUN_DIR, else $TWINBOARD_LOGDIR; DataFileError when neither is known."""
    run_dir = run_dir or os.environ.get("TWINBOARD_RUN_DIR") or None
    logdir = Path(run_dir).parent if run_dir else os.environ.get("TWINBOARD_LOGDIR") or None
    if logdir is None:
        raise DataFileError(spec.data, "", "cannot tell which logdir's data folder holds it: run the trainer "
                                           "from its run folder's launcher, or set TWINBOARD_LOGDIR")
    return data_file(Path(logdir), spec.data)


def _from_file(spec: RunSpec, run_dir: str | os.PathLike | None) -> Dataset:
    """The checked data file: a .npz's own split, a .csv's rows split by the seed. What the run costs
    on it is checked against the ceilings, as RunSpec checks every field's."""
    checked = read_path(data_path(spec, run_dir), spec.target)
    s, a = checked.summary, checked.arrays
    check_data_costs(spec, s, CEILINGS)
    if s.kind == "csv":
        return _split(spec, a["x"], a["y"], s.classes, sha256=s.sha256)
    return _typed(spec, a["x_train"], a["y_train"], a["x_val"], a["y_val"], s.classes, sha256=s.sha256)


def steps_per_epoch(spec: RunSpec, n_train: int) -> int:
    return max(1, n_train // spec.batch_size)


def total_steps(spec: RunSpec, n_train: int) -> int:
    by_epochs = spec.epochs * steps_per_epoch(spec, n_train)
    return spec.steps if spec.steps > 0 else by_epochs


def batches(spec: RunSpec, n_train: int) -> Iterator[tuple[int, int, np.ndarray]]:
    """Yields (step, epoch, indices) for every training step, steps counted from 1.

    Each epoch is a fresh seeded permutation; the short last batch is dropped so every step has
    exactly batch_size samples in both frameworks. With spec.steps set, epochs continue past
    spec.epochs until that many steps are done.
    """
    per_epoch = steps_per_epoch(spec, n_train)
    bs = min(spec.batch_size, n_train)
    total = total_steps(spec, n_train)
    step, epoch = 0, 0
    while step < total:
        perm = np.random.default_rng([spec.seed, 2, epoch]).permutation(n_train)
        for b in range(per_epoch):
            step += 1
            yield step, epoch, perm[b * bs:(b + 1) * bs]
            if step >= total:
                return
        epoch += 1


def embedding_indices(spec: RunSpec, ds: Dataset) -> np.ndarray:
    """The fixed validation subset both trainers export as embeddings: the first N val samples."""
    return np.arange(min(spec.embedding_samples, len(ds.x_val)))
