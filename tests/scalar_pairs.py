"""Two matched pairs of real event files for the Scalars, Launch and pair-choice page tests: WRITER is
the script that writes them, tensorboardX (torch side) and tf.summary (tensorflow side), run in a
subprocess (the `event_logdir` fixture in tests/conftest.py) so the test process never loads a framework.
BIG has 3,000 steps, SMALL 60 and is the newer.
"""
WRITER = r'''
import sys, math
from pathlib import Path
root = Path(sys.argv[1])
RUNS = {"20260101-000000-digits-mlp-sgd": 3000, "20260102-000000-digits-mlp-adam": 60}
T0 = 1.7e9

def values(step, n, shift):
    loss = 2.3 * math.exp(-step / (n / 4)) + 0.05 * math.sin(step * 1.7 + shift) + 0.1
    return {"loss/train": loss, "accuracy/train": 1 - loss / 2.5, "lr": 0.05,
            "perf/step_ms": 3 + math.cos(step + shift)}

from tensorboardX import SummaryWriter
for run, n in RUNS.items():
    w = SummaryWriter(str(root / run / "torch"))
    for step in range(n):
        for tag, v in values(step, n, 0.0).items():
            w.add_scalar(tag, v, step, walltime=T0 + step * 0.05)
        if step % 20 == 0:
            val = values(step, n, 1.0)
            w.add_scalar("loss/val", val["loss/train"], step, walltime=T0 + step * 0.05)
            w.add_scalar("accuracy/val", val["accuracy/train"], step, walltime=T0 + step * 0.05)
    w.close()

import tensorflow as tf
from tensorboard.plugins.scalar.metadata import create_summary_metadata

SCALARS = create_summary_metadata(display_name=None, description=None)


def scalar(tag, value, step):
    # What tf.summary.scalar writes, minus the name scope it would prefix inside a graph loop
    tf.summary.write(tag, tf.cast(value, tf.float32), step=step, metadata=SCALARS)


def write(n, shift):  # run as a graph (below): eager tf.summary calls cost ~1 ms each
    nf = tf.cast(n, tf.float32)
    for step in tf.range(tf.cast(n, tf.int64)):
        x = tf.cast(step, tf.float32)
        loss = 2.3 * tf.exp(-x / (nf / 4)) + 0.05 * tf.sin(x * 1.7 + shift) + 0.1
        scalar("loss/train", loss, step)
        scalar("accuracy/train", 1 - loss / 2.5, step)
        scalar("lr", 0.05, step)
        scalar("perf/step_ms", 3 + tf.cos(x + shift), step)
        if step % 20 == 0:
            scalar("loss/val", loss + 0.01, step)
            scalar("accuracy/val", 1 - (loss + 0.01) / 2.5, step)


for run, n in RUNS.items():
    w = tf.summary.create_file_writer(str(root / run / "tensorflow"))
    with w.as_default():
        tf.function(write)(tf.constant(n), tf.constant(0.5))  # a graph per writer: it captures it
    w.close()
'''
BIG, SMALL = "20260101-000000-digits-mlp-sgd", "20260102-000000-digits-mlp-adam"
