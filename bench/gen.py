"""Synthetic event files for the benchmarks, written fast but byte-for-byte like the real writers.

A tensorboardX scalar record is `Event{wall_time, step, summary{value{tag, simple_value}}}`, one
tf.summary.scalar record holds a float32 tensor under the scalars plugin instead; the first record
of a file is `Event{wall_time, file_version: "brain.Event:2"}`. The records are the trainers' bulk
encoder's (trainers.event_records: protobuf's bytes, tested against protobuf and TensorFlow), ~0.6 us
a record where building each Event with protobuf would take ~10 s for a million.
"""
from __future__ import annotations

import os
import struct
from pathlib import Path

import numpy as np

from trainers.event_records import ScalarRows, encode_scalars
from twinboard.contract import frame

TAGS = [f"loss/train_{i}" if i < 5 else f"metric/val_{i}" for i in range(10)]
KINDS = {"tensorboardX": "simple", "tf2": "tf_float32"}


def header_record(wall_time: float) -> bytes:
    return frame(b"\x09" + struct.pack("<d", wall_time) + b"\x1a\x0dbrain.Event:2")


def scalar_records(steps: range, tags=TAGS, t0: float = 1.7e9, seed: int = 0, layout: str = "tensorboardX") -> bytes:
    """Records for every step in `steps`, each step logging every tag (tag-major within a step),
    laid out as tensorboardX (simple_value) or tf.summary ("tf2") writes them."""
    rng = np.random.default_rng(seed + steps.start)
    values = rng.standard_normal((len(steps), len(tags))).astype(np.float32)
    rows = ScalarRows()
    ids = rows.tag_ids(tags, KINDS[layout])
    step = np.repeat(np.array(steps, np.int64), len(tags))
    data, _ = encode_scalars(step, t0 + step * 0.01, np.tile(ids, len(steps)), values.reshape(-1), rows.layouts)
    return data


def write_scalar_file(path: Path, n_steps: int, tags=TAGS, layout: str = "tensorboardX") -> Path:
    """A file of n_steps x len(tags) scalars laid out as tensorboardX (simple_value) or as
    tf.summary ("tf2": tensors + metadata) writes them; reused when already there."""
    path.parent.mkdir(parents=True, exist_ok=True)
    stamp = path.with_suffix(".done")
    if path.exists() and stamp.exists() and stamp.read_text() == f"{n_steps}x{len(tags)}{layout}":
        return path
    tmp = path.with_name(path.name + ".part")
    with open(tmp, "wb") as f:
        f.write(header_record(1.7e9))
        chunk = 10_000
        for s0 in range(0, n_steps, chunk):
            f.write(scalar_records(range(s0, min(n_steps, s0 + chunk)), tags, layout=layout))
    os.replace(tmp, path)
    stamp.write_text(f"{n_steps}x{len(tags)}{layout}")
    return path
