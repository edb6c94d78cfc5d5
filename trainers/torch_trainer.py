"""PyTorch side of a matched pair: `python -m trainers.torch_trainer RUN_DIR/spec.json [--logdir DIR]`.

Eager PyTorch, torch.optim, tensorboardX. The cadence and the loop are trainers.loop's; this file
builds the model, loads the shared weights and writes the records (encoded by trainers.torch_events).
torch is imported inside `_run`, so a bad spec is refused before the 3 s import.
"""
from __future__ import annotations

import math
import sys
import time
from collections import OrderedDict
from contextlib import contextmanager
from typing import Any

import numpy as np

from trainers import data
from trainers.export_embedding import export_validation_rows
from trainers.export_graph import torch_graph
from trainers.loop import FLUSH_S, Cadence, run_main, train
from trainers.runtime import Paths, StatusFile
from trainers.settings import common_settings, describe_optimizer, write_settings
from trainers.summaries import batch_accuracies, histogram_many
from trainers.torch_events import make_writer
from trainers.weights import Layer, apply_init, layer_plan
from twinboard.contract import RunSpec

TORCH_DEFAULT_ADAM_EPS = 1e-8  # torch.optim.Adam's default, used with init=native


def build_model(spec: RunSpec, layers: list[Layer], n_features: int, dtype: Any):
    """nn.Sequential whose parametric children are named as in the tags (dense0 ..., conv0 ..., out).

    The CNN reads [N, 64] rows as [N, 1, 8, 8] (NCHW) and flattens conv1's output in (c, h, w) order.
    """
    import torch.nn as nn

    mods: OrderedDict[str, nn.Module] = OrderedDict()
    if spec.model == "cnn":
        side = int(round(n_features ** 0.5))
        mods["reshape"] = nn.Unflatten(1, (1, side, side))
    flat = spec.model != "cnn"
    for layer in layers:
        if layer.kind == "conv":
            c_out, c_in, k, _ = layer.weight_shape
            mods[layer.name] = nn.Conv2d(c_in, c_out, k, padding=k // 2, dtype=dtype)
        else:
            if not flat:
                mods["flatten"] = nn.Flatten()
                flat = True
            n_out, n_in = layer.weight_shape
            mods[layer.name] = nn.Linear(n_in, n_out, dtype=dtype)
        if layer.activation == "relu":
            mods[f"{layer.name}_relu"] = nn.ReLU()
    return nn.Sequential(mods)


def param_layers(model, layers: list[Layer]):
    return [(layer.name, getattr(model, layer.name)) for layer in layers]


def load_shared(model, layers: list[Layer], arrays: dict[str, np.ndarray]) -> None:
    import torch

    with torch.no_grad():
        for name, mod in param_layers(model, layers):
            mod.weight.copy_(torch.from_numpy(arrays[f"{name}.weight"]))
            mod.bias.copy_(torch.from_numpy(arrays[f"{name}.bias"]))


def make_optimizer(spec: RunSpec, params):
    import torch

    if spec.optimizer == "sgd":
        return torch.optim.SGD(params, lr=spec.lr, momentum=spec.momentum, dampening=0.0, nesterov=False,
                               weight_decay=spec.weight_decay, foreach=False)
    eps = spec.eps if spec.init == "shared" else TORCH_DEFAULT_ADAM_EPS
    return torch.optim.Adam(params, lr=spec.lr, betas=(spec.beta1, spec.beta2), eps=eps,
                            weight_decay=spec.weight_decay, amsgrad=False, foreach=False)


class TorchAdapter:
    def __init__(self, spec: RunSpec, ds: data.Dataset, cadence: Cadence, paths: Paths,
                 layers: list[Layer], model, optimizer, writer):
        import torch
        import torch.nn.functional as F
        from tensorboardX.proto.event_pb2 import Event
        from tensorboardX.proto.summary_pb2 import Summary, SummaryMetadata
        from tensorboardX.proto.tensor_pb2 import TensorProto
        from tensorboardX.proto.tensor_shape_pb2 import TensorShapeProto
        from tensorboardX.proto.types_pb2 import DT_DOUBLE

        self.torch, self.spec, self.ds, self.paths = torch, spec, ds, paths
        self.model, self.opt, self.writer = model, optimizer, writer
        self.add_event = writer._get_file_writer().event_writer.add_event
        self.events = writer.buffered  # None if make_writer kept the stock path
        self.ids: dict[tuple[tuple[str, ...], str], tuple[int, ...]] = {}
        self.last_flush = time.time()
        if self.events is not None:
            self.events.fill = self._accuracies
        self.layers = param_layers(model, layers)
        self.classify = ds.n_classes > 0
        self.loss_fn = F.cross_entropy if self.classify else F.mse_loss
        self.Event, self.Summary, self.TensorProto, self.DT_DOUBLE = Event, Summary, TensorProto, DT_DOUBLE
        self.scalar_shape = TensorShapeProto()
        # The scalars plugin charts a DT_DOUBLE tensor as it does tf.summary.scalar's float32 one.
        self.scalars_meta = SummaryMetadata(plugin_data=SummaryMetadata.PluginData(plugin_name="scalars"))
        self.x_val, self.y_val = torch.from_numpy(ds.x_val), torch.from_numpy(ds.y_val)
        self.emb_idx = data.embedding_indices(spec, ds)

    # -- records --
    def _scalars(self, step: int, wall: float, tags: tuple[str, ...], values: list[float],
                 kind: str = "simple", held=None) -> None:
        """Scalars as SummaryWriter.add_scalar writes them (kind "simple": simple_value, float32) or
        as a DT_DOUBLE tensor under the scalars plugin ("double"), which TensorBoard charts the same.
        Held as numbers by the BufferedEvents until the next flush encodes them."""
        if self.events is not None:
            ids = self.ids.get((tags, kind))
            if ids is None:
                ids = self.ids[(tags, kind)] = self.events.tag_ids(tags, kind)
            self.events.scalars(step, wall, ids, values, held)
            return
        for tag, value in zip(tags, values):  # the stock path: protobuf messages
            if kind == "simple":
                val = self.Summary.Value(tag=tag, simple_value=value)
            else:
                val = self.Summary.Value(tag=tag, metadata=self.scalars_meta, tensor=self.TensorProto(
                    dtype=self.DT_DOUBLE, tensor_shape=self.scalar_shape, double_val=[value]))
            self.add_event(self.Event(wall_time=wall, step=step, summary=self.Summary(value=[val])))

    def _accuracies(self, held: list[tuple[Any, np.ndarray]]) -> list[float]:
        """accuracy/train of held (logits, labels) pairs, all at once (on the writer thread)."""
        with self.torch.no_grad():
            pred = self.torch.argmax(self.torch.cat([o for o, _ in held]), 1).numpy()
        return batch_accuracies(pred, np.concatenate([y for _, y in held]), [len(y) for _, y in held])

    def maybe_flush(self) -> None:
        now = time.time()
        if now - self.last_flush >= FLUSH_S:
            self.last_flush = now
            if self.events is not None:
                self.events.flush_async()
            else:
                self.writer.flush()

    def train_step(self, step: int, idx: np.ndarray, want_grads: bool, log: bool):
        y = self.ds.y_train[idx]
        xb, yb = self.torch.from_numpy(self.ds.x_train[idx]), self.torch.from_numpy(y)
        self.opt.zero_grad(set_to_none=True)
        out = self.model(xb)
        loss = self.loss_fn(out, yb)
        loss.backward()
        self.opt.step()
        return out, y, loss

    def write_fp64_loss(self, step: int, handle) -> None:
        self._scalars(step, time.time(), ("loss/train_fp64",), [handle[2].item()], "double")

    def write_train_scalars(self, step: int, handle, perf: dict[str, float] | None) -> None:
        out, y, loss = handle
        perf = perf or {}
        values = [loss.item(), self.spec.lr, *perf.values()]
        if not self.classify:
            self._scalars(step, time.time(), ("loss/train", "lr", *perf), values)
        elif self.events is None:
            values.append(np.count_nonzero(out.detach().numpy().argmax(1) == y) / len(y))
            self._scalars(step, time.time(), ("loss/train", "lr", *perf, "accuracy/train"), values)
        else:  # an argmax in the loop costs ~18 us a step; all of them at the flush, a few us
            values.append(math.nan)
            self._scalars(step, time.time(), ("loss/train", "lr", *perf, "accuracy/train"), values,
                          held=(out, y))
        self.maybe_flush()

    def write_histograms(self, step: int, handle) -> None:
        """Weights after this step's update and this step's gradients, bucketed as the TF side does
        (histogram_many), as HistogramProtos: like tensorboardX's add_histogram, an empty
        first bucket carries the left edge (TensorBoard's format keeps right edges only)."""
        tags, arrays = [], []
        for name, mod in self.layers:
            for part, kind in (("weight", "kernel"), ("bias", "bias")):
                p = getattr(mod, part)
                for tag, t in ((f"weights/{name}/{kind}", p.detach()), (f"grads/{name}/{kind}", p.grad)):
                    if t is not None:
                        tags.append(tag)
                        arrays.append(t.numpy())
        buckets, stats = histogram_many(arrays)
        for tag, b, (num, total, sq) in zip(tags, buckets, stats):
            if num:  # tensorboardX refuses an empty histogram
                self.writer.add_histogram_raw(tag, b[0, 0], b[-1, 1], int(num), total, sq,
                                              [b[0, 0], *b[:, 1].tolist()], [0.0, *b[:, 2].tolist()], step)
        self.maybe_flush()

    def write_validation(self, step: int) -> None:
        with self.torch.no_grad():
            out = self.model(self.x_val)
            loss = self.loss_fn(out, self.y_val).item()
        if self.classify:
            acc = (out.argmax(1) == self.y_val).double().mean().item()
            self._scalars(step, time.time(), ("loss/val", "accuracy/val"), [loss, acc])
        else:
            self._scalars(step, time.time(), ("loss/val",), [loss])
        self.maybe_flush()

    def export_graph(self, x: np.ndarray, y: np.ndarray) -> None:
        torch_graph(self.writer, self.model, self.torch.from_numpy(x))  # a failure warns; the run goes on

    def export_embedding(self, step: int) -> None:
        x = self.torch.from_numpy(self.ds.x_val[self.emb_idx])
        with self.torch.no_grad():
            features = self.model[:-1](x)
            outputs = self.model[-1](features)
        export_validation_rows("torch", self.paths.logdir, step, self.ds, self.emb_idx,
                               features.numpy(), outputs.numpy())

    def close(self) -> None:
        self.writer.flush()
        self.writer.close()

    def background_s(self) -> float:
        return self.events.writer.busy_s if self.events is not None else 0.0


def describe_layers(model, layers: list[Layer], n_features: int, dtype) -> list[dict[str, Any]]:
    """Output shapes from a real forward pass on one sample (batch dimension shown as null)."""
    import torch

    shapes: dict[str, list[int]] = {}
    hooks = [mod.register_forward_hook(lambda m, i, o, n=name: shapes.__setitem__(n, [None, *o.shape[1:]]))
             for name, mod in param_layers(model, layers)]
    with torch.no_grad():
        model(torch.zeros(1, n_features, dtype=dtype))
    for h in hooks:
        h.remove()
    return [{"name": layer.name, "type": type(mod).__name__, "activation": layer.activation,
             "output_shape": shapes[layer.name], "params": sum(p.numel() for p in mod.parameters())}
            for layer, (_, mod) in zip(layers, param_layers(model, layers))]


def settings(spec: RunSpec, ds: data.Dataset, cadence: Cadence, model, layers, init_desc: str,
             init_sha: str | None, n_features: int, dtype) -> dict[str, Any]:
    import tensorboardX
    import torch

    adam_eps = spec.eps if spec.init == "shared" else TORCH_DEFAULT_ADAM_EPS
    opt = describe_optimizer(
        spec, f"torch.optim.{'SGD' if spec.optimizer == 'sgd' else 'Adam'}(foreach=False)",
        hyper_dtype="Python float (double), cast to the tensor dtype at use",
        weight_decay_form="coupled L2: g += weight_decay*p", eps=adam_eps)
    if spec.optimizer == "adam":
        opt["eps_placement"] = "p -= lr/(1-b1^t) * m / (sqrt(v)/sqrt(1-b2^t) + eps)"
    math_libs = [name for name, ok in (("MKL", torch.backends.mkl.is_available()),
                                       ("oneDNN", torch.backends.mkldnn.is_available())) if ok]
    layer_rows = describe_layers(model, layers, n_features, dtype)
    return dict(
        common_settings(spec, cadence, ds),
        framework="torch", framework_version=torch.__version__,
        logger=f"tensorboardX {tensorboardX.__version__}", execution_mode="eager", device="cpu",
        threads={"intra_op": torch.get_num_threads(), "inter_op": torch.get_num_interop_threads()},
        math_library=", ".join(math_libs) or "none reported", init=init_desc, init_sha256=init_sha,
        optimizer=opt,
        loss={"function": "cross_entropy on logits" if ds.n_classes else "mean squared error",
              "reduction": "mean",
              "implementation": "torch.nn.functional." + ("cross_entropy" if ds.n_classes else "mse_loss")},
        layers=layer_rows, total_params=sum(r["params"] for r in layer_rows),
        data_layout="NCHW" if spec.model == "cnn" else "NC",
    )


@contextmanager
def open_adapter(spec: RunSpec, paths: Paths, ds: data.Dataset, cadence: Cadence):
    """Model, shared or native weights, optimizer, settings.json and the event writer, as the
    TorchAdapter that trainers.loop.train drives; the writer is closed on the way out."""
    import torch

    # Before any parallel work: torch refuses a change of inter-op threads afterwards (a second
    # run in the same process, as the tests do, keeps the count it already has when it is the same).
    torch.set_num_threads(spec.threads)
    if torch.get_num_interop_threads() != spec.threads:
        torch.set_num_interop_threads(spec.threads)
    dtype = getattr(torch, spec.dtype)
    layers = layer_plan(spec, ds.n_features, ds.n_outputs)
    torch.manual_seed(spec.seed)  # native init draws from torch's generator
    model = build_model(spec, layers, ds.n_features, dtype)
    init_desc, init_sha = apply_init(
        spec, layers, paths.run_dir, lambda arrays: load_shared(model, layers, arrays),
        "native: kaiming_uniform(a=sqrt(5)), bias U(±1/sqrt(fan_in)) (torch.manual_seed(seed))")
    optimizer = make_optimizer(spec, model.parameters())
    paths.logdir.mkdir(parents=True, exist_ok=True)
    write_settings(paths.logdir, **settings(spec, ds, cadence, model, layers, init_desc, init_sha,
                                                   ds.n_features, dtype))
    writer = make_writer(paths.logdir)
    try:
        yield TorchAdapter(spec, ds, cadence, paths, layers, model, optimizer, writer)
    finally:
        writer.close()


def _run(spec: RunSpec, paths: Paths, ds: data.Dataset, cadence: Cadence,
         status: StatusFile) -> None:
    with open_adapter(spec, paths, ds, cadence) as adapter:
        train(spec, ds, cadence, adapter, status)


def main(argv: list[str] | None = None) -> int:
    return run_main("torch", _run, argv)


if __name__ == "__main__":
    sys.exit(main())
