"""PyTorch side of a matched pair: `python -m trainers.torch_trainer RUN_DIR/spec.json [--logdir DIR]`.

PyTorch eager or torch.compile (RunSpec.torch_mode: trainers.torch_modes), torch.optim, tensorboardX.
The cadence and the loop are trainers.loop's, the model and optimizer trainers.torch_model's; this
file drives them and writes the records (encoded by trainers.torch_events). torch is imported after the spec is read
(`load_framework`, timed), so a bad spec is refused before the 3 s import.
"""
from __future__ import annotations

import math
import sys
import time
from contextlib import contextmanager
from typing import Any

import numpy as np

from trainers import data, hparams, torch_modes
from trainers.deploy import export_if_asked
from trainers.export_embedding import export_validation_rows
from trainers.export_graph import torch_graph
from trainers.loop import FLUSH_S, STARTUP_TAGS, Cadence, run_main, train
from trainers.runtime import Paths, StatusFile
from trainers.settings import common_settings, describe_optimizer, mode_settings, record_first_step, write_settings
from trainers.summaries import batch_accuracies, histogram_many
from trainers.timing import timed_import
from trainers.torch_events import make_writer
from trainers import models
from trainers.models.base import ModelPair, Param, load_torch, torch_tensors
from trainers.torch_model import TORCH_DEFAULT_ADAM_EPS, clip, describe_layers, evaluating, make_optimizer, trainable
from trainers.weights import apply_init
from twinboard.contract import RunSpec


def load_framework() -> None:
    """What import_s times: torch, tensorboardX (which imports torch anyway) and torch._dynamo, which
    torch.optim's first optimizer imports (~1.1 s): getting PyTorch ready to train in either mode,
    not the cost of a mode's first step."""
    import tensorboardX  # noqa: F401
    import torch  # noqa: F401
    import torch._dynamo  # noqa: F401


class TorchAdapter:
    def __init__(self, spec: RunSpec, ds: data.Dataset, cadence: Cadence, paths: Paths,
                 pair: ModelPair, params: list[Param], model, optimizer, writer, forward,
                 settings: dict[str, Any], setup_at: float):
        import torch
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
        self.pair, self.params = pair, params
        tensors = torch_tensors(model)
        self.tensors = [(p, tensors[p.name]) for p in params]  # histograms: every tensor of the plan
        self.trainable = trainable(model, params)  # clip_norm's global norm, in the plan's order
        self.classify = ds.n_classes > 0
        self.loss_fn = pair.torch_loss(self.classify)
        self.forward = forward  # (logits, loss) of a batch, eager or compiled (torch_modes)
        self.settings = settings  # as written; first_step adds first_step_s
        self.setup_at = setup_at  # perf_counter when open_adapter began: first_step_s counts from it
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
            pred = self.torch.argmax(self.torch.cat([o for o, _ in held]), -1).numpy().reshape(-1)
        return batch_accuracies(pred, np.concatenate([y.reshape(-1) for _, y in held]), [y.size for _, y in held])

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
        if step == 1:  # compile mode compiles here: a failure is the mode's, named (torch_modes)
            out, loss = torch_modes.first_call(self.spec, lambda: self._forward_backward(xb, yb))
        else:
            out, loss = self._forward_backward(xb, yb)
        clip(self.spec, self.trainable)
        self.opt.step()
        return out, y, loss

    def _forward_backward(self, xb, yb):
        out, loss = self.forward(xb, yb)
        loss.backward()
        return out, loss

    def first_step(self, ended: float) -> None:
        """perf/import_s and perf/first_step_s at step 1, and settings.json's first_step_s (loop.STARTUP_TAGS)."""
        first_s = ended - self.setup_at
        self._scalars(1, time.time(), STARTUP_TAGS, [self.settings["import_s"], first_s])
        self.settings = record_first_step(self.paths.logdir, self.settings, first_s,
                                          torch_modes.cache_note(self.spec))

    def write_fp64_loss(self, step: int, handle) -> None:
        self._scalars(step, time.time(), ("loss/train_fp64",), [handle[2].item()], "double")

    def write_train_scalars(self, step: int, handle, perf: dict[str, float] | None) -> None:
        out, y, loss = handle
        perf = perf or {}
        values = [loss.item(), self.spec.lr, *perf.values()]
        if not self.classify:
            self._scalars(step, time.time(), ("loss/train", "lr", *perf), values)
        elif self.events is None:
            values.append(np.count_nonzero(out.detach().numpy().argmax(-1) == y) / y.size)
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
        for p, t in self.tensors:
            tags.append(f"weights/{p.tag}")
            arrays.append(t.detach().numpy())
            if p.trainable and t.grad is not None:
                tags.append(f"grads/{p.tag}")
                arrays.append(t.grad.numpy())
        buckets, stats = histogram_many(arrays)
        for tag, b, (num, total, sq) in zip(tags, buckets, stats):
            if num:  # tensorboardX refuses an empty histogram
                self.writer.add_histogram_raw(tag, b[0, 0], b[-1, 1], int(num), total, sq,
                                              [b[0, 0], *b[:, 1].tolist()], [0.0, *b[:, 2].tolist()], step)
        self.maybe_flush()

    def write_validation(self, step: int) -> None:
        with self.torch.no_grad(), evaluating(self.model):  # BatchNorm's running statistics, no dropout
            out = self.model(self.x_val)
            loss = self.loss_fn(out, self.y_val).item()
        if self.classify:
            acc = (out.argmax(-1) == self.y_val).double().mean().item()  # over every position for text
            if self.y_val.ndim == 2:  # a language model: next-character perplexity
                self._scalars(step, time.time(), ("loss/val", "accuracy/val", "perplexity/val"),
                              [loss, acc, math.exp(loss)])
            else:
                self._scalars(step, time.time(), ("loss/val", "accuracy/val"), [loss, acc])
        else:
            self._scalars(step, time.time(), ("loss/val",), [loss])
        if self.classify:  # pictures, PR curves, predictions (trainers.evaluation)
            if not hasattr(self, "evaluation"):
                from trainers.eval_writers import torch_hook
                self.evaluation = torch_hook(self)
            self.evaluation.submit(step, out.numpy())
        self.maybe_flush()

    def export_graph(self, x: np.ndarray, y: np.ndarray) -> None:
        torch_graph(self.writer, self.model, self.torch.from_numpy(x))  # a failure warns; the run goes on

    def export_embedding(self, step: int) -> None:
        x = self.torch.from_numpy(self.ds.x_val[self.emb_idx])
        with self.torch.no_grad(), evaluating(self.model):
            features, outputs = self.pair.torch_features(self.model, x)
        export_validation_rows("torch", self.paths.logdir, step, self.ds, self.emb_idx,
                               features.numpy(), outputs.numpy())

    def close(self) -> None:
        hparams.torch_session_end(self.writer, "success")  # the loop closes a run that finished
        self.writer.flush()
        self.writer.close()

    def background_s(self) -> float:
        return self.events.writer.busy_s if self.events is not None else 0.0


def settings(spec: RunSpec, ds: data.Dataset, cadence: Cadence, pair: ModelPair, model, params: list[Param],
             init_desc: str, init_sha: str | None, mode_note: str) -> dict[str, Any]:
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
    layer_rows = describe_layers(pair, model, params, torch.from_numpy(ds.x_val[:1]))
    return dict(
        common_settings(spec, cadence, ds),
        framework="torch", framework_version=torch.__version__,
        logger=f"tensorboardX {tensorboardX.__version__}", device="cpu",
        **mode_settings(spec.torch_mode, spec.torch_mode, mode_note, timed_import("torch", load_framework)),
        threads={"intra_op": torch.get_num_threads(), "inter_op": torch.get_num_interop_threads()},
        math_library=", ".join(math_libs) or "none reported", init=init_desc, init_sha256=init_sha,
        optimizer=opt,
        loss={"function": "cross_entropy on logits" if ds.n_classes else "mean squared error",
              "reduction": "mean",
              "implementation": "torch.nn.functional." + ("cross_entropy" if ds.n_classes else "mse_loss")},
        clip_norm=(f"torch.nn.utils.clip_grad_norm_({spec.clip_norm:g}): the global norm of every gradient"
                   if spec.clip_norm else "off"),
        layers=layer_rows, total_params=sum(r["params"] for r in layer_rows),
        data_layout=pair.layout[0], **pair.settings("torch", spec),
    )


@contextmanager
def open_adapter(spec: RunSpec, paths: Paths, ds: data.Dataset, cadence: Cadence):
    """Model, shared or native weights, optimizer, settings.json and the event writer, as the
    TorchAdapter that trainers.loop.train drives; the writer is closed on the way out."""
    timed_import("torch", load_framework)  # already imported under run_main; timed here otherwise (bench)
    setup_at = time.perf_counter()  # first_step_s: from here to the end of step 1
    import torch

    compiler = torch_modes.check_mode(spec)  # a mode that cannot run fails before the model is built
    # Before any parallel work: torch refuses a change of inter-op threads afterwards (a second
    # run in the same process, as the tests do, keeps the count it already has when it is the same).
    torch.set_num_threads(spec.threads)
    if torch.get_num_interop_threads() != spec.threads:
        torch.set_num_interop_threads(spec.threads)
    dtype = getattr(torch, spec.dtype)
    pair, params = models.plan(spec, ds.n_features, ds.n_outputs, paths.run_dir, "torch")
    torch.manual_seed(spec.seed)  # native init draws from torch's generator
    model = pair.torch_model(spec, ds.n_features, ds.n_outputs, dtype)
    init_desc, init_sha = apply_init(spec, params, paths.run_dir, lambda arrays: load_torch(model, params, arrays),
                                     f"native: {pair.native_init[0]} (torch.manual_seed(seed))",
                                     getattr(pair, "shared_init_desc", None))
    optimizer = make_optimizer(spec, trainable(model, params))
    paths.logdir.mkdir(parents=True, exist_ok=True)
    forward, note = torch_modes.build_forward(spec, model, pair.torch_loss(ds.n_classes > 0), compiler)
    described = write_settings(paths.logdir, **settings(spec, ds, cadence, pair, model, params, init_desc, init_sha,
                                                        note))
    writer = make_writer(paths.logdir)
    hparams.torch_session_start(writer, spec, paths.run_dir)  # TensorBoard's HParams dashboard
    try:
        yield TorchAdapter(spec, ds, cadence, paths, pair, params, model, optimizer, writer, forward, described,
                           setup_at)
    finally:
        writer.close()


def _run(spec: RunSpec, paths: Paths, ds: data.Dataset, cadence: Cadence,
         status: StatusFile) -> None:
    with open_adapter(spec, paths, ds, cadence) as adapter:
        train(spec, ds, cadence, adapter, status)
    export_if_asked("torch", spec, paths.run_dir, ds, adapter.model)


def main(argv: list[str] | None = None) -> int:
    return run_main("torch", _run, argv, load_framework)


if __name__ == "__main__":
    sys.exit(main())
