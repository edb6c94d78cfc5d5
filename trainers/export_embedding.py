"""Embedding export, called by both trainers: TensorBoard projector files, one entry per exported step.

`write(logdir, framework, step, features, metadata_rows, header, images)` at each step in
spec.embedding_steps and once at the end of training. Both sides name an entry `<tag>:<step 5 digits>`
(tensorboardX's own convention), so the dashboard pairs the same step of the same samples by name.

- torch: tensorboardX's `add_embedding`, through a SummaryWriter that writes no event file
  (`write_to_disk=False`: the trainer's own writer owns the event file). Layout, tensorboardX's:
  `<logdir>/<step:05d>/<tag>/{tensors.tsv, metadata.tsv, sprite.png}`, entries appended to
  `<logdir>/projector_config.pbtxt`.
- tensorflow: TensorBoard's projector layout written here with numpy, PIL and the projector proto
  (no TensorFlow call is needed for TSV tensors): `<logdir>/<tag>-<step:05d>-tensors.tsv`,
  `-metadata.tsv`, `-sprite.png` beside `projector_config.pbtxt`, rewritten atomically.

The trainers call `export_validation_rows`: the rows of the validation split they picked, with
[label, prediction, correct] metadata and sprite images for image data; a failed export warns on
stderr and never ends a run. Frameworks and tensorboard are imported inside the functions:
importing this module is cheap.
"""
from __future__ import annotations

import io
import math
import os
import shutil
import sys
from pathlib import Path
from typing import Sequence

import numpy as np

from trainers import data
from twinboard.contract import FRAMEWORKS, write_bytes_atomic

TAG = "hidden"  # activations of the last hidden layer
CONFIG_NAME = "projector_config.pbtxt"  # the one name TensorBoard's projector looks for in a run folder
METADATA_HEADER = ["label", "prediction", "correct"]  # the trainers' metadata columns


def metadata_rows(y_true: np.ndarray, outputs: np.ndarray, n_classes: int) -> list[list[str]]:
    """[label, prediction, correct] strings; regression: values with 4 digits and '-' for correct."""
    if n_classes:
        if y_true.ndim == 2:  # text: the window's next character, predicted at its last position
            y_true = y_true[:, -1]
        pred = outputs.argmax(axis=-1)
        return [[str(int(t)), str(int(p)), str(bool(t == p)).lower()] for t, p in zip(y_true, pred)]
    return [[f"{float(t):.4g}", f"{float(p):.4g}", "-"] for t, p in zip(y_true.reshape(-1), outputs.reshape(-1))]


def export_validation_rows(framework: str, logdir: str | os.PathLike, step: int, ds: data.Dataset,
                           idx: np.ndarray, features: np.ndarray, outputs: np.ndarray) -> None:
    """A trainer's projector export of the validation rows `idx`: penultimate-layer features,
    metadata rows from the outputs, sprite images for image data."""
    rows = metadata_rows(ds.y_val[idx], outputs, ds.n_classes)
    images = None if ds.image_shape is None else ds.x_val[idx].reshape(-1, *ds.image_shape)
    try:
        write(str(logdir), framework, step, features, rows, METADATA_HEADER, images)
    except Exception as exc:  # noqa: BLE001 - an export must never end a training run: reported only
        print(f"warning: export_embedding.write failed: {type(exc).__name__}: {exc}", file=sys.stderr)


def tensor_name(tag: str, step: int) -> str:
    return f"{tag}:{int(step):05d}"


def write(logdir: str | os.PathLike, framework: str, step: int, features: np.ndarray,
          metadata_rows: Sequence[Sequence[object]] | None, header: Sequence[str] | None,
          images: np.ndarray | None = None, tag: str = TAG) -> str:
    """Exports one embedding; returns its tensor name. Re-exporting a step replaces that entry.

    features: [N, D] activations. metadata_rows: N rows of strings (or None); header: column names
    (ignored for one column: TensorBoard's rule is "a header only when the first line has a tab").
    images: [N, h, w] floats in [0, 1] (digits' 8x8 pixels), or None. ValueError names a bad argument.
    """
    if framework not in FRAMEWORKS:
        raise ValueError(f"framework={framework!r}: must be one of {', '.join(FRAMEWORKS)}")
    if isinstance(step, bool) or int(step) != step or step < 0:
        raise ValueError(f"step={step!r}: must be a whole number >= 0")
    if not tag or "/" in tag or "\\" in tag or ":" in tag:
        raise ValueError(f"tag={tag!r}: must be non-empty, without '/', '\\' or ':'")
    mat = np.asarray(features, dtype=np.float32)
    if mat.ndim != 2 or mat.shape[0] < 1 or mat.shape[1] < 1:
        raise ValueError(f"features: must be a non-empty [N, D] array, got shape {mat.shape}")
    n = mat.shape[0]
    rows = _clean_rows(metadata_rows, header, n)
    head = [_clean(h) for h in header] if header is not None and rows and len(rows[0]) > 1 else None
    imgs = None
    if images is not None:
        imgs = np.clip(np.asarray(images, dtype=np.float32), 0.0, 1.0)
        if imgs.ndim != 3 or imgs.shape[0] != n:
            raise ValueError(f"images: must be [N={n}, h, w], got shape {imgs.shape}")
    Path(logdir).mkdir(parents=True, exist_ok=True)
    if framework == "torch":
        _write_tensorboardx(str(logdir), int(step), mat, rows, head, imgs, tag)
    else:
        _write_projector(Path(logdir), int(step), mat, rows, head, imgs, tag)
    return tensor_name(tag, step)


def _clean(value: object) -> str:
    # A tab or newline inside a value would shift every later column or row of the TSV.
    return str(value).replace("\t", " ").replace("\r", " ").replace("\n", " ")


def _clean_rows(rows: Sequence[Sequence[object]] | None, header: Sequence[str] | None,
                n: int) -> list[list[str]] | None:
    if rows is None:
        return None
    rows = [[_clean(v) for v in (r if isinstance(r, (list, tuple)) else [r])] for r in rows]
    if len(rows) != n:
        raise ValueError(f"metadata_rows: {len(rows)} rows for {n} points")
    width = len(header) if header is not None else len(rows[0])
    bad = next((i for i, r in enumerate(rows) if len(r) != width), None)
    if bad is not None:
        raise ValueError(f"metadata_rows[{bad}] has {len(rows[bad])} columns, header has {width}")
    if width > 1 and header is None:
        raise ValueError("header: required when metadata has more than one column")
    return rows


# --- torch side: tensorboardX ---------------------------------------------------------------------
def _write_tensorboardx(logdir: str, step: int, mat: np.ndarray, rows: list[list[str]] | None,
                        head: list[str] | None, imgs: np.ndarray | None, tag: str) -> None:
    from tensorboardX import SummaryWriter

    # add_embedding appends to the config and warns when the step folder exists: drop both first,
    # so a re-export (a final step that is also in embedding_steps) replaces instead of duplicating.
    sub = Path(logdir) / f"{step:05d}" / tag
    if sub.is_dir() and not sub.is_symlink():
        shutil.rmtree(sub)
    _drop_entry(Path(logdir) / CONFIG_NAME, tensor_name(tag, step))
    metadata = None
    if rows is not None:
        metadata = rows if head is not None else [r[0] for r in rows]
    label_img = None if imgs is None else _square(imgs)[:, None, :, :]  # NCHW, C = 1
    writer = SummaryWriter(logdir, write_to_disk=False)
    try:
        # tensorboardX fills the sprite's unused bottom tiles from np.ndarray (uninitialised memory),
        # which can overflow in its *255: harmless (no point maps there), so keep it off stderr.
        with np.errstate(over="ignore", invalid="ignore"):
            writer.add_embedding(mat, metadata=metadata, label_img=label_img, global_step=step,
                                 tag=tag, metadata_header=head)
    finally:
        writer.close()


def _square(imgs: np.ndarray) -> np.ndarray:
    """Pads [N, h, w] to square tiles (TensorBoard's sprites need square images), at the bottom/right."""
    n, h, w = imgs.shape
    side = max(h, w)
    if h == w:
        return imgs
    out = np.zeros((n, side, side), np.float32)
    out[:, :h, :w] = imgs
    return out


# --- tensorflow side: TensorBoard's projector files -------------------------------------------------
def _write_projector(logdir: Path, step: int, mat: np.ndarray, rows: list[list[str]] | None,
                     head: list[str] | None, imgs: np.ndarray | None, tag: str) -> None:
    from tensorboard.plugins.projector import projector_config_pb2

    stem = f"{tag}-{step:05d}"
    config = _read_config(logdir / CONFIG_NAME)
    kept = [e for e in config.embeddings if e.tensor_name != tensor_name(tag, step)]
    del config.embeddings[:]
    config.embeddings.extend(kept)
    entry = projector_config_pb2.EmbeddingInfo(tensor_name=tensor_name(tag, step),
                                               tensor_path=f"{stem}-tensors.tsv")
    entry.tensor_shape.extend(mat.shape)
    # %.9g round-trips float32 exactly.
    lines = ["\t".join(f"{v:.9g}" for v in row) for row in mat.tolist()]
    # Atomic, as every file of the run folder: the dashboard may read while a trainer writes.
    write_bytes_atomic(logdir / entry.tensor_path, ("\n".join(lines) + "\n").encode())
    if rows is not None:
        entry.metadata_path = f"{stem}-metadata.tsv"
        body = [head] + rows if head is not None else rows
        write_bytes_atomic(logdir / entry.metadata_path, "".join("\t".join(r) + "\n" for r in body).encode())
    if imgs is not None:
        square = _square(imgs)
        entry.sprite.image_path = f"{stem}-sprite.png"
        entry.sprite.single_image_dim.extend([square.shape[2], square.shape[1]])  # [width, height]
        _write_sprite(logdir / entry.sprite.image_path, square)
    config.embeddings.append(entry)
    _write_config(logdir / CONFIG_NAME, config)


def sprite_grid(images: np.ndarray) -> np.ndarray:
    """[N, s, s] in [0, 1] -> square uint8 [c*s, c*s], c = ceil(sqrt(N)), tiles in row-major order,
    the last rows padded with black (TensorBoard's sprite convention, the same as tensorboardX's)."""
    n, h, w = images.shape
    cols = max(1, math.ceil(math.sqrt(n)))
    canvas = np.zeros((cols * h, cols * w), np.uint8)
    pixels = np.round(np.clip(images, 0.0, 1.0) * 255).astype(np.uint8)
    for i in range(n):
        r, c = divmod(i, cols)
        canvas[r * h:(r + 1) * h, c * w:(c + 1) * w] = pixels[i]
    return canvas


def _write_sprite(path: Path, images: np.ndarray) -> None:
    from PIL import Image

    png = io.BytesIO()
    Image.fromarray(sprite_grid(images)).save(png, format="PNG")
    write_bytes_atomic(path, png.getvalue())


def _read_config(path: Path):
    from google.protobuf import text_format
    from tensorboard.plugins.projector import projector_config_pb2

    config = projector_config_pb2.ProjectorConfig()
    if path.is_file():
        text_format.Parse(path.read_text(encoding="utf-8"), config)
    return config


def _write_config(path: Path, config) -> None:
    from google.protobuf import text_format

    write_bytes_atomic(path, text_format.MessageToString(config).encode())


def _drop_entry(path: Path, name: str) -> None:
    if not path.is_file():
        return
    config = _read_config(path)
    if any(e.tensor_name == name for e in config.embeddings):
        kept = [e for e in config.embeddings if e.tensor_name != name]
        del config.embeddings[:]
        config.embeddings.extend(kept)
        _write_config(path, config)

