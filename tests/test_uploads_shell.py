"""Uploads of real writers' logs from the shell: tensorboardX, torch.utils.tensorboard, tf.summary,
a TF1 FileWriter and Keras `model.fit(callbacks=[TensorBoard])` write event files once per session
(two subprocesses side by side, so this process never loads a framework); `python -m twinboard
import` brings them in and they carry our tags after mapping.
"""
from __future__ import annotations

import os
import subprocess
import sys
import zipfile
from pathlib import Path

import pytest

from twinboard import tagmap

ROOT = Path(__file__).resolve().parents[1]


# --- real writers, imported from the shell -------------------------------------------------------
WRITERS = r'''
import os, sys
out, which = sys.argv[1], sys.argv[2]
if which == "torch":
    import torch
    torch.set_num_threads(1)
    from tensorboardX import SummaryWriter as X
    w = X(os.path.join(out, "tbx", "tbx"))
    for s in range(1, 6):
        w.add_scalar("accuracy/train", s / 10, s)
        w.add_scalars("loss", {"train": 1 / s, "val": 1.5 / s}, s)
    w.close()
    from torch.utils.tensorboard import SummaryWriter as T
    w = T(os.path.join(out, "torch", "torch"))
    for s in range(1, 6):
        w.add_scalar("Loss/train", 1 / s, s)
        w.add_scalars("accuracy", {"train": s / 10, "val": s / 11}, s)
    w.close()
else:
    import numpy as np, tensorflow as tf, keras
    tf.config.threading.set_intra_op_parallelism_threads(1)
    w = tf.summary.create_file_writer(os.path.join(out, "tf", "tf2"))
    with w.as_default():
        for s in range(1, 6):
            tf.summary.scalar("loss/train", 1 / s, step=s)
    w.close()
    with tf.Graph().as_default():  # TF1: FileWriter and Summary protos with simple_value
        for sub, tags in (("", ("loss",)), ("eval", ("loss", "accuracy"))):
            fw = tf.compat.v1.summary.FileWriter(os.path.join(out, "tf", "tf1", sub))
            for s in range(1, 6):
                vals = [tf.compat.v1.Summary.Value(tag=t, simple_value=1 / s) for t in tags]
                fw.add_summary(tf.compat.v1.Summary(value=vals), s)
            fw.close()
    keras.utils.set_random_seed(0)
    x = np.random.rand(64, 4).astype("float32"); y = (x.sum(1) > 2).astype("int32")
    m = keras.Sequential([keras.Input((4,)), keras.layers.Dense(2, activation="softmax")])
    m.compile("sgd", "sparse_categorical_crossentropy", metrics=["accuracy"])
    m.fit(x, y, epochs=2, batch_size=16, validation_split=0.25, verbose=0,
          callbacks=[keras.callbacks.TensorBoard(os.path.join(out, "keras", "fit"))])
'''


@pytest.fixture(scope="session")
def framework_logs(tmp_path_factory) -> Path:
    out = tmp_path_factory.mktemp("writers")
    env = {**os.environ, "TF_CPP_MIN_LOG_LEVEL": "3", "CUDA_VISIBLE_DEVICES": ""}
    procs = [subprocess.Popen([sys.executable, "-c", WRITERS, str(out), which], env=env,
                              stdout=subprocess.PIPE, stderr=subprocess.PIPE) for which in ("torch", "tf")]
    for p in procs:
        _, err = p.communicate(timeout=300)  # a loaded 2-core box: TF alone can take a minute
        assert p.returncode == 0, err.decode()[-3000:]
    return out


def zip_folder(folder: Path, dest: Path) -> Path:
    with zipfile.ZipFile(dest, "w", zipfile.ZIP_DEFLATED) as z:
        for p in sorted(folder.rglob("*")):
            if p.is_file():
                z.write(p, p.relative_to(folder).as_posix())
    return dest


# writer -> {run inside the upload (as picked on a page): our tags it carries after mapping}
EXPECTED = {
    "tbx": {"tbx": {"accuracy/train", "loss/train", "loss/val"}},
    "torch": {"torch": {"loss/train", "accuracy/train", "accuracy/val"}},
    "tf": {"tf2": {"loss/train"}, "tf1": {"loss/train", "loss/val", "accuracy/val"}},
    "keras": {"fit/train": {"loss/train", "accuracy/train", "lr", "loss/val", "accuracy/val"}},
}


def test_framework_logs_import_from_the_shell_and_carry_our_tags(framework_logs, tmp_path):
    root = tmp_path / "logs"
    root.mkdir()
    env = {**os.environ, "TWINBOARD_LOGDIR": str(root)}
    zips = {w: zip_folder(framework_logs / w, tmp_path / f"{w}.zip") for w in EXPECTED}
    procs = {w: subprocess.Popen([sys.executable, "-m", "twinboard", "import", str(z), "--name", f"from-{w}"],
                                 cwd=ROOT, env=env, stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True)
             for w, z in zips.items()}
    for w, p in procs.items():
        out, err = p.communicate(timeout=60)
        assert p.returncode == 0, f"{w}: {out}{err}"
        assert f"from-{w}" in out
    for w, expected in EXPECTED.items():
        for run, tags in expected.items():
            folder = root / "uploads" / f"from-{w}" / run
            df = tagmap.read_mapped(folder, f"uploads/from-{w}/{run}", root)
            assert set(df["tag"]) == tags, (w, run, sorted(set(zip(df["source_tag"], df["tag"]))))
    keras = tagmap.load(root / "uploads" / "from-keras")
    assert keras.steps_per_epoch == 3.0  # 48 training samples / batch 16, read off evaluation_*_vs_iterations
    df = tagmap.read_mapped(root / "uploads/from-keras/fit/train", "k", root, x_axis="step")
    assert sorted(df.loc[df["tag"] == "loss/val", "x"]) == [3.0, 6.0]  # end of epochs 1 and 2, in steps
