"""Graph event files written by the real writers (export_graph, tensorboardX, torch.utils.tensorboard,
tf.summary) for the graph tests: tests/test_graph_*.py through conftest's `runs`, and
tests/test_page_graphs.py.

The frameworks run in two child processes, at once (one core each), writing into one folder per
session (per pytest worker); the test process imports none of them.
"""
from __future__ import annotations

import subprocess
import sys
from pathlib import Path

from twinboard.graphs.model import Graph

ROOT = Path(__file__).resolve().parents[1]
MLP_PARAMS = 64 * 64 + 64 + 64 * 32 + 32 + 32 * 10 + 10  # 6570: digits 64 -> 64 -> 32 -> 10
CNN_PARAMS = (9 * 8 + 8) + (9 * 8 * 16 + 16) + (16 * 8 * 8 * 32 + 32) + (32 * 10 + 10)  # 34378
_WRITTEN: dict[str, Path] = {}


# --- writers, run in child processes ---------------------------------------------------------------
def write_torch(root: str) -> None:
    """<root>/{mlp,cnn}/torch via export_graph (tensorboardX); <root>/plain/torch via torch's writer."""
    import types

    import torch
    from tensorboardX import SummaryWriter
    from torch import nn

    from trainers import export_graph

    # torch.utils.tensorboard imports TensorFlow through tensorboard.compat.tf unless `notf` exists:
    # TensorBoard's own switch to its stub, so this child stays a torch-only process.
    sys.modules["tensorboard.compat.notf"] = types.ModuleType("tensorboard.compat.notf")

    torch.manual_seed(0)

    class MLP(nn.Module):
        def __init__(self):
            super().__init__()
            self.dense0, self.dense1, self.out = nn.Linear(64, 64), nn.Linear(64, 32), nn.Linear(32, 10)

        def forward(self, x):
            return self.out(torch.relu(self.dense1(torch.relu(self.dense0(x)))))

    class CNN(nn.Module):  # two 3x3 'same' convs on the 1x8x8 digit, a dense layer, the logits
        def __init__(self):
            super().__init__()
            self.conv0, self.conv1 = nn.Conv2d(1, 8, 3, padding=1), nn.Conv2d(8, 16, 3, padding=1)
            self.dense0, self.out = nn.Linear(16 * 8 * 8, 32), nn.Linear(32, 10)

        def forward(self, x):
            x = torch.relu(self.conv1(torch.relu(self.conv0(x.view(-1, 1, 8, 8)))))
            return self.out(torch.relu(self.dense0(x.flatten(1))))

    batch = torch.zeros(32, 64)
    for name, model in (("mlp", MLP()), ("cnn", CNN())):
        with SummaryWriter(f"{root}/{name}/torch") as w:
            assert export_graph.torch_graph(w, model, batch)
    assert "tensorflow" not in sys.modules, "export_graph.torch_graph imported TensorFlow"
    from torch.utils.tensorboard import SummaryWriter as TorchWriter

    with TorchWriter(f"{root}/plain/torch") as w:  # unrepaired: inputs naming missing nodes
        w.add_graph(MLP(), batch)


def write_tf(root: str) -> None:
    """<root>/{mlp,cnn}/tensorflow (Keras, with a traced train step), <root>/module/tensorflow (tf.Module)."""
    import os

    os.environ.setdefault("TF_CPP_MIN_LOG_LEVEL", "3")
    import keras
    import numpy as np
    import tensorflow as tf

    from trainers import export_graph

    L = keras.layers
    mlp = keras.Sequential([keras.Input((64,)), L.Dense(64, "relu", name="dense0"),
                            L.Dense(32, "relu", name="dense1"), L.Dense(10, name="out")])
    cnn = keras.Sequential([keras.Input((64,)), L.Reshape((8, 8, 1)),
                            L.Conv2D(8, 3, padding="same", activation="relu", name="conv0"),
                            L.Conv2D(16, 3, padding="same", activation="relu", name="conv1"),
                            L.Flatten(), L.Dense(32, "relu", name="dense0"), L.Dense(10, name="out")])
    x, y = np.zeros((32, 64), np.float32), np.zeros(32, np.int64)
    for name, model in (("mlp", mlp), ("cnn", cnn)):
        opt = keras.optimizers.SGD(0.05, momentum=0.9)
        loss_fn = keras.losses.SparseCategoricalCrossentropy(from_logits=True)

        @tf.function
        def step(xb, yb, model=model, opt=opt, loss_fn=loss_fn):
            with tf.GradientTape() as tape:
                loss = loss_fn(yb, model(xb, training=True))
            grads = tape.gradient(loss, model.trainable_variables)
            opt.apply_gradients(zip(grads, model.trainable_variables))
            return loss

        step(x, y)
        assert export_graph.tf_graph(f"{root}/{name}/tensorflow", model, x, step)

    class Dense(tf.Module):  # a plain tf.Module layer that opens no name scope of its own
        def __init__(self, n_in, n_out, name):
            super().__init__(name=name)
            self.w, self.b = tf.Variable(tf.zeros([n_in, n_out])), tf.Variable(tf.zeros([n_out]))

        def __call__(self, t):
            return tf.matmul(t, self.w) + self.b

    class Net(tf.Module):
        def __init__(self):
            super().__init__(name="net")
            self.layers = [Dense(64, 64, "dense0"), Dense(64, 32, "dense1"), Dense(32, 10, "out")]

        def __call__(self, t):
            for layer in self.layers[:-1]:
                t = tf.nn.relu(layer(t))
            return self.layers[-1](t)

    assert export_graph.tf_graph(f"{root}/module/tensorflow", Net(), x, None)


def written_runs(tmp_path_factory) -> Path:
    """Write every fixture once per session (shared with test_page_graphs), both frameworks at once."""
    if "root" not in _WRITTEN:
        root = tmp_path_factory.mktemp("graphs")
        procs = [subprocess.Popen([sys.executable, "-c", f"from tests.graph_writers import {fn}; {fn}({str(root)!r})"],
                                  cwd=ROOT, stdout=subprocess.PIPE, stderr=subprocess.STDOUT, text=True)
                 for fn in ("write_torch", "write_tf")]
        for p in procs:
            out, _ = p.communicate(timeout=240)
            assert p.returncode == 0, out[-4000:]
        _WRITTEN["root"] = root
    return _WRITTEN["root"]


def by_tag(graphs: list[Graph], tag: str) -> Graph:
    """The graph of that tag: a TensorFlow run holds several (graph_def, forward, keras)."""
    return next(g for g in graphs if g.tag == tag)
