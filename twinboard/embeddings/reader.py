"""Embeddings: TensorBoard projector files read into numpy/pandas, projections, and similarity.

A run's embeddings are listed by its projector config (`projector_config.pbtxt` in the run folder,
or in `plugins/projector/`), in either layout: tensorboardX's per-step subfolders
(`00005/hidden/tensors.tsv`) or TensorBoard's flat one (files beside the config). Each entry names a
TSV tensor (or raw float32 `.bytes` with tensor_shape), a metadata TSV and a sprite. Entries whose
values live in a TensorFlow checkpoint are skipped with a message: Twinboard loads no checkpoints.
Every path is resolved inside the run folder; one that leaves it is refused (`OutsideRunError`).
Files are read within caps checked before they cost memory (`twinboard.embeddings.files`); an entry
over one is listed in `problems()`, the others still load.

Projections (PCA by SVD, t-SNE) and the similarity of two embeddings of the same samples (linear CKA,
k-NN overlap) are pure numpy / scikit-learn functions of [N, D] arrays.
"""
from __future__ import annotations

import os
import re
from dataclasses import dataclass, field
from pathlib import Path

import numpy as np
import pandas as pd

from twinboard.embeddings.files import (
    Budget, EmbeddingError, checked_size, read_metadata, read_sprite, read_tensor)
from twinboard.events import Problem
from twinboard.runs import OutsideLogdirError

CONFIG_NAME = "projector_config.pbtxt"
CONFIG_PLACES = (CONFIG_NAME, f"plugins/projector/{CONFIG_NAME}")  # TensorBoard looks in both
_CHECKPOINT = re.compile(r"(\.ckpt|\.index$|\.data-\d+-of-\d+$|\.meta$)")
MAX_CONFIG_BYTES = 1 << 20  # a projector config: a few hundred bytes per entry
MAX_ENTRIES = 1000  # entries read from the configs of one run (every one costs file reads)


class OutsideRunError(EmbeddingError, OutsideLogdirError):
    """A projector config path that leaves the run folder (`..`, absolute, or a link pointing out)."""


@dataclass(frozen=True, eq=False)
class Embedding:
    run: str  # the run (framework event) folder it was read from
    name: str  # the config's tensor_name, e.g. "hidden:00040"
    tag: str  # name without its ":<step>" suffix
    step: int | None  # training step, from the name (or tensorboardX's step folder); None if neither says
    tensor: np.ndarray  # [N, D] float32, one row per sample
    metadata: pd.DataFrame  # N rows, string columns (e.g. label, prediction, correct); may have none
    images: np.ndarray | None  # [N, h, w] float32 in [0, 1], cut from the sprite; None without one

    @property
    def n(self) -> int:
        return int(self.tensor.shape[0])


class EmbeddingList(list):
    """A list of Embedding, with `problems()`: one per config entry that could not be loaded."""

    def __init__(self, items=(), problems: list[Problem] = ()):
        super().__init__(items)
        self._problems = list(problems)

    def problems(self) -> list[Problem]:
        """Entries not loaded: the config's path, no offset, `<tensor name>: <why>`."""
        return list(self._problems)


def config_files(path: str | os.PathLike) -> list[Path]:
    """The projector configs of a run folder, in TensorBoard's places."""
    run = Path(path)
    return [run / p for p in CONFIG_PLACES if (run / p).is_file()]


def signature(path: str | os.PathLike) -> tuple:
    """Changes whenever an exporter adds or replaces an entry (both rewrite or append the config)."""
    out = []
    for f in config_files(path):
        st = f.stat()
        out.append((f.name, st.st_mtime_ns, st.st_size))
    return tuple(out)


def read_embeddings(path: str | os.PathLike) -> EmbeddingList:
    """Every embedding of a run folder, sorted by (tag, step); a re-exported name keeps its last entry.

    Raises OutsideRunError for a path leaving the folder, EmbeddingError for an unparsable config.
    Entries that cannot be loaded (checkpoints, missing or malformed files) are its `problems()`.
    """
    from google.protobuf import text_format
    from tensorboard.plugins.projector import projector_config_pb2

    run = Path(path).resolve()
    found: dict[str, Embedding] = {}
    skipped: list[Problem] = []
    budget, entries = Budget(), 0  # what one read may hold, every entry together
    for cfg_file in config_files(path):
        cfg_path = _inside(run, cfg_file)
        checked_size(cfg_path, MAX_CONFIG_BYTES, "projector config")
        config = projector_config_pb2.ProjectorConfig()
        try:
            text_format.Parse(cfg_path.read_text(encoding="utf-8"), config)
        except (text_format.ParseError, UnicodeDecodeError) as e:
            raise EmbeddingError(f"{cfg_file}: not a projector config: {e}") from e
        for entry in config.embeddings:
            name = entry.tensor_name or entry.tensor_path or "(unnamed)"
            entries += 1
            if entries > MAX_ENTRIES:
                skipped.append(Problem(str(cfg_path), None, f"{name}: not read, past the first "
                                                            f"{MAX_ENTRIES} entries of this run"))
                continue
            try:
                found[name] = _load_entry(run, cfg_path, entry, budget)
            except OutsideRunError:
                raise
            except EmbeddingError as e:
                skipped.append(Problem(str(cfg_path), None, f"{name}: {e}"))
    items = sorted(found.values(), key=lambda e: (e.tag, -1 if e.step is None else e.step, e.name))
    return EmbeddingList(items, skipped)


def _inside(run: Path, target: Path) -> Path:
    resolved = target.resolve()
    if run not in resolved.parents:  # a config that is a link pointing out of the run folder
        raise OutsideRunError(f"{target.name!r} resolves to {resolved}, outside the run folder {run}")
    return resolved


def _resolve(run: Path, cfg_path: Path, rel: str, what: str) -> Path:
    """A config path, relative to the config's folder, refused if it leaves the run folder."""
    if rel.startswith("~") or Path(rel).is_absolute() or re.match(r"^[A-Za-z]:[\\/]", rel):
        raise OutsideRunError(f"{cfg_path.name}: {what} {rel!r} is an absolute path; "
                              f"embedding files must lie inside the run folder {run}")
    if "://" in rel:
        raise OutsideRunError(f"{cfg_path.name}: {what} {rel!r} is a URL; "
                              f"embedding files must lie inside the run folder {run}")
    resolved = (cfg_path.parent / rel).resolve()
    if run not in resolved.parents:
        raise OutsideRunError(f"{cfg_path.name}: {what} {rel!r} resolves to {resolved}, "
                              f"outside the run folder {run}")
    return resolved


def _load_entry(run: Path, cfg_path: Path, entry, budget: Budget) -> Embedding:
    name = entry.tensor_name
    if not entry.tensor_path or _CHECKPOINT.search(entry.tensor_path):
        where = entry.tensor_path or "the run's TensorFlow checkpoint"
        raise EmbeddingError(f"its values live in {where}; Twinboard does not load checkpoints "
                             "(export the tensor as TSV to see it here)")
    tensor_file = _resolve(run, cfg_path, entry.tensor_path, "tensor_path")
    meta_file = _resolve(run, cfg_path, entry.metadata_path, "metadata_path") if entry.metadata_path else None
    sprite_file = None
    if entry.HasField("sprite") and entry.sprite.image_path:
        sprite_file = _resolve(run, cfg_path, entry.sprite.image_path, "sprite.image_path")
    tensor = read_tensor(tensor_file, list(entry.tensor_shape), budget)
    n = tensor.shape[0]
    metadata = read_metadata(meta_file, n, budget) if meta_file else pd.DataFrame(index=range(n))
    images = None
    if sprite_file is not None:
        images = read_sprite(sprite_file, list(entry.sprite.single_image_dim), n, budget)
    tag, step = _tag_and_step(name, entry.tensor_path)
    return Embedding(str(run), name or entry.tensor_path, tag, step, tensor, metadata, images)


def _tag_and_step(name: str, tensor_path: str) -> tuple[str, int | None]:
    m = re.fullmatch(r"(.*):(\d+)", name or "")
    if m:
        return m.group(1), int(m.group(2))
    first = Path(tensor_path).parts[0] if tensor_path else ""
    step = int(first) if first.isdigit() else None  # tensorboardX: <step:05d>/<tag>/tensors.tsv
    return name or Path(tensor_path).stem, step


# --- projections ----------------------------------------------------------------------------------
@dataclass(frozen=True, eq=False)
class Projection:
    coords: np.ndarray  # [N, k] float64
    explained: tuple[float, ...] = field(default=())  # PCA: share of variance per component; t-SNE: ()


def pca(x: np.ndarray, k: int = 2) -> Projection:
    """Top-k principal components by SVD of the centred data.

    Sign convention (deterministic, sklearn's svd_flip): in each component, the sample with the
    largest |score| has a positive score. Fewer than k components exist -> zero columns.
    """
    x = np.asarray(x, dtype=np.float64)
    xc = x - x.mean(axis=0)
    u, s, _ = np.linalg.svd(xc, full_matrices=False)
    k_avail = min(k, u.shape[1])
    scores = u[:, :k_avail] * s[:k_avail]
    pivot = np.abs(scores).argmax(axis=0)
    signs = np.sign(scores[pivot, np.arange(k_avail)])
    signs[signs == 0] = 1.0
    coords = np.zeros((x.shape[0], k))
    coords[:, :k_avail] = scores * signs
    total = float((s ** 2).sum())
    explained = tuple(float(v) / total if total else 0.0 for v in (s[:k] ** 2))
    return Projection(coords, explained + (0.0,) * (k - len(explained)))


def tsne(x: np.ndarray, k: int = 2, perplexity: float = 30.0, max_iter: int = 500,
         seed: int = 0) -> Projection:
    """scikit-learn's t-SNE, seeded and PCA-initialised; perplexity clamped below N (sklearn's rule)."""
    from sklearn.manifold import TSNE
    from threadpoolctl import threadpool_limits

    x = np.asarray(x, dtype=np.float64)
    n = x.shape[0]
    if n < 3:
        return Projection(np.zeros((n, k)))
    perplexity = float(min(perplexity, max(1.0, (n - 1) / 3.0)))
    model = TSNE(n_components=k, perplexity=perplexity, max_iter=max(250, int(max_iter)),
                 init="pca", random_state=seed, method="barnes_hut" if k < 4 else "exact")
    # One OpenMP thread: beside two trainers on a small machine, sklearn's spinning threads ran
    # 5-20x slower than one (2,000 points: 48 s against 10 s on 2 busy cores).
    with threadpool_limits(limits=1):
        return Projection(model.fit_transform(x).astype(np.float64))


def flip_to_match(ref: np.ndarray, other: np.ndarray) -> np.ndarray:
    """`other` with each column's sign flipped where that raises its correlation with `ref`'s column.

    For PCA: axes stay principal components (PC1 stays PC1), only their arbitrary signs are aligned.
    """
    a = ref - ref.mean(axis=0)
    b = other - other.mean(axis=0)
    signs = np.where((a * b).sum(axis=0) < 0, -1.0, 1.0)
    return other * signs


def procrustes(ref: np.ndarray, other: np.ndarray) -> np.ndarray:
    """`other` rotated/reflected (orthogonal Procrustes, no scaling) to best match `ref`, about its mean.

    For t-SNE, whose axes carry no meaning: only the picture's orientation changes, not its shape.
    """
    mu = other.mean(axis=0)
    a, b = ref - ref.mean(axis=0), other - mu
    u, _, vt = np.linalg.svd(b.T @ a)
    return b @ (u @ vt) + mu


def subsample(n: int, cap: int, seed: int = 0) -> np.ndarray:
    """Sorted indices of at most `cap` of n samples, seeded: the same points on both sides."""
    if n <= cap:
        return np.arange(n)
    return np.sort(np.random.default_rng(seed).choice(n, size=cap, replace=False))


# --- similarity of two embeddings of the same samples ---------------------------------------------
def linear_cka(x: np.ndarray, y: np.ndarray) -> float:
    """Linear CKA (Kornblith et al. 2019): ||Yc^T Xc||_F^2 / (||Xc^T Xc||_F ||Yc^T Yc||_F).

    1 for embeddings equal up to rotation, reflection and isotropic scale; D may differ per side.
    """
    x, y = _pair(x, y)
    x = x - x.mean(axis=0)
    y = y - y.mean(axis=0)
    denom = np.linalg.norm(x.T @ x) * np.linalg.norm(y.T @ y)
    return float(np.linalg.norm(y.T @ x) ** 2 / denom) if denom > 0 else float("nan")


def knn_overlap(x: np.ndarray, y: np.ndarray, k: int = 10) -> float:
    """Mean share of each sample's k nearest neighbours (Euclidean, self excluded) found on both sides."""
    x, y = _pair(x, y)
    n = x.shape[0]
    k = min(k, n - 1)
    if k < 1:
        return float("nan")
    nx, ny = _neighbours(x, k), _neighbours(y, k)
    shared = sum(len(np.intersect1d(a, b, assume_unique=True)) for a, b in zip(nx, ny))
    return shared / (n * k)


def _pair(x: np.ndarray, y: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    x, y = np.asarray(x, np.float64), np.asarray(y, np.float64)
    if x.ndim != 2 or y.ndim != 2 or x.shape[0] != y.shape[0]:
        raise ValueError(f"need two [N, D] embeddings of the same N samples, got {x.shape} and {y.shape}")
    return x, y


def _neighbours(x: np.ndarray, k: int, block: int = 1024) -> np.ndarray:
    """[N, k] indices of each row's k nearest other rows; blocks keep memory at block x N."""
    sq = (x * x).sum(axis=1)
    out = np.empty((x.shape[0], k), dtype=np.int64)
    for start in range(0, x.shape[0], block):
        rows = slice(start, min(start + block, x.shape[0]))
        d = sq[rows, None] + sq[None, :] - 2.0 * x[rows] @ x.T
        d[np.arange(d.shape[0]), np.arange(rows.start, rows.stop)] = np.inf
        idx = np.argpartition(d, k - 1, axis=1)[:, :k]
        out[rows] = idx
    return out


def similarity_by_step(left: list[Embedding], right: list[Embedding], k: int = 10,
                       cap: int = 5000) -> pd.DataFrame:
    """CKA and k-NN overlap for each (tag, step) exported on both sides with the same N.

    Columns: tag, step, n (samples compared, at most `cap`, the same subsample on both sides), cka,
    knn_overlap. Tags that differ between the sides (uploads) pair by step alone.
    """
    lmap = {(e.tag, e.step): e for e in left}
    rmap = {(e.tag, e.step): e for e in right}
    if not set(lmap) & set(rmap):
        lmap = {(None, e.step): e for e in left}
        rmap = {(None, e.step): e for e in right}
    rows = []
    for key in sorted(set(lmap) & set(rmap), key=lambda t: (str(t[0]), t[1] is None, t[1] or 0)):
        a, b = lmap[key], rmap[key]
        if a.n != b.n:
            continue
        idx = subsample(a.n, cap)
        xa, xb = a.tensor[idx], b.tensor[idx]
        rows.append({"tag": key[0] if key[0] is not None else a.tag, "step": key[1], "n": len(idx),
                     "cka": linear_cka(xa, xb), "knn_overlap": knn_overlap(xa, xb, k)})
    return pd.DataFrame(rows, columns=["tag", "step", "n", "cka", "knn_overlap"])
