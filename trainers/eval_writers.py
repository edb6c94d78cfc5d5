"""The two trainers' ends of trainers.evaluation: what each adapter's write_validation calls, and
how an evaluation's pictures and PR curves become records of that framework's event file.

One Event per evaluation holds every picture and curve of it (as TF1's merged summaries do), so
an evaluation costs one record to frame and, on the TensorFlow side, one ImportEvent op:

- torch (tensorboardX): each picture a `Summary.Value.image` (Summary.Image: the PNG, its size and
  colour space: what tensorboardX's add_image writes, from trainers.eval_images' encoder instead of
  PIL), each curve the record of tensorboardX's `add_pr_curve_raw` (float32 [6, T] under the
  pr_curves plugin; its values as tensor_content: add_pr_curve_raw's float_val list cost ~75 us a
  curve). Handed to the SummaryWriter's file writer as any event it makes itself: held in order with
  the scalars until trainers.torch_events' next flush.
- tensorflow (tf.summary): each picture the record `tf.summary.image` writes (a string tensor
  [width, height, png] under the images plugin), each curve the pr_curves plugin's (float32
  [6, T], tensor_content); the Event is imported into the run's writer with its ImportEvent op,
  as trainers.tf_events imports the train scalars.

A value carries its metadata (plugin, description) when its tag is new or its description changed
(Described); TensorBoard keeps a tag's first, Twinboard the latest. A failure to write warns on
stderr once and turns the evaluation records off: they never end a training run. Frameworks are
imported inside the functions.
"""
from __future__ import annotations

import sys
from typing import Any

import numpy as np

from trainers import data
from trainers.evaluation import PR_THRESHOLDS, Curve, Evaluator, Picture


class Hook:
    """What an adapter's write_validation calls with each evaluation's logits. At the run's last
    step it waits for the predictions files (the evaluator's thread), so the run ends whole."""

    def __init__(self, evaluator: Evaluator, last_step: int, filters):
        self.evaluator, self.last_step, self.filters = evaluator, last_step, filters
        self.off = False

    def submit(self, step: int, logits: np.ndarray) -> None:
        if self.off:
            return
        try:
            self.evaluator.submit(step, logits, self.filters())
            if step >= self.last_step:
                self.evaluator.close()
        except Exception as exc:  # noqa: BLE001 - pictures must never end a training run: reported only
            self.off = True
            print(f"warning: evaluation records are off from step {step}: {type(exc).__name__}: {exc}",
                  file=sys.stderr)


class Described:
    """Which tags need their metadata in this record: a tag's first value (TensorBoard learns its
    plugin there, as tf.summary writes it), and any whose description changed since (the
    misclassified samples' list, the confusion counts). The rest go without: building the PR
    curves' metadata again every evaluation was most of an event's cost."""

    def __init__(self):
        self.last: dict[str, str] = {}

    def anew(self, tag: str, description: str) -> bool:
        if self.last.get(tag) == description:
            return False
        self.last[tag] = description
        return True


def _last_step(adapter) -> int:
    return data.total_steps(adapter.spec, len(adapter.ds.x_train))


def _vocab(adapter) -> list[str] | None:
    """Task text: the character each class id stands for (trainers.text_data's fixed vocabulary)."""
    if adapter.spec.task != "text":
        return None
    from trainers import text_data

    return ["\ufffd", *text_data.SYMBOLS]


def _evaluator(adapter, write) -> Evaluator:
    return Evaluator(adapter.paths.logdir, adapter.ds, write, _vocab(adapter))


# --- torch ---------------------------------------------------------------------------------------
def torch_hook(adapter) -> Hook:
    """For TorchAdapter.write_validation (a classification task)."""
    import torch

    conv = next(((name, m) for name, m in adapter.model.named_modules() if isinstance(m, torch.nn.Conv2d)), None)

    def filters():
        return None if conv is None else (conv[0], conv[1].weight.detach().numpy().copy())

    return Hook(_evaluator(adapter, torch_write(adapter)), _last_step(adapter), filters)


def torch_write(adapter):
    from tensorboardX.proto.event_pb2 import Event
    from tensorboardX.proto.plugin_pr_curve_pb2 import PrCurvePluginData
    from tensorboardX.proto.summary_pb2 import Summary, SummaryMetadata
    from tensorboardX.proto.tensor_pb2 import TensorProto
    from tensorboardX.proto.tensor_shape_pb2 import TensorShapeProto
    from tensorboardX.proto.types_pb2 import DT_FLOAT

    pr_plugin = SummaryMetadata.PluginData(plugin_name="pr_curves", content=PrCurvePluginData(
        version=0, num_thresholds=PR_THRESHOLDS).SerializeToString())
    pr_shape = TensorShapeProto(dim=[TensorShapeProto.Dim(size=6), TensorShapeProto.Dim(size=PR_THRESHOLDS)])

    # trainers.torch_events.BufferedEvents.write_event (held in order with the scalars until the next
    # flush), or tensorboardX's own queue on its stock path
    add_event = adapter.writer._get_file_writer().add_event

    described = Described()

    def write(step: int, wall: float, pictures: list[Picture], curves: list[Curve]) -> None:
        values = []
        for p in pictures:
            value = Summary.Value(tag=p.tag, image=Summary.Image(height=p.height, width=p.width, colorspace=p.channels,
                                                                 encoded_image_string=p.png))
            if described.anew(p.tag, p.description):
                value.metadata.summary_description = p.description
            values.append(value)
        for c in curves:
            value = Summary.Value(tag=c.tag, tensor=TensorProto(dtype=DT_FLOAT, tensor_shape=pr_shape,
                                                                tensor_content=c.data.astype("<f4").tobytes()))
            if described.anew(c.tag, c.description):
                value.metadata.CopyFrom(SummaryMetadata(plugin_data=pr_plugin, summary_description=c.description))
            values.append(value)
        add_event(Event(wall_time=wall, step=step, summary=Summary(value=values)))

    return write


# --- tensorflow ----------------------------------------------------------------------------------
def tf_hook(adapter) -> Hook:
    """For TFAdapter.write_validation (a classification task)."""
    import keras

    conv = next((lyr for lyr in _keras_layers(adapter.model) if isinstance(lyr, keras.layers.Conv2D)), None)

    def filters():  # Keras [kh, kw, in, out] -> torch's [out, in, kh, kw]
        return None if conv is None else (conv.name, conv.kernel.numpy().transpose(3, 2, 0, 1))

    return Hook(_evaluator(adapter, tf_write(adapter)), _last_step(adapter), filters)


def _keras_layers(layer):
    """Every layer inside `layer`, depth first, in their order (nested models included)."""
    for inner in getattr(layer, "layers", []):
        yield inner
        yield from _keras_layers(inner)


def tf_write(adapter):
    from tensorboard.compat.proto import event_pb2, summary_pb2, tensor_pb2, tensor_shape_pb2, types_pb2
    from tensorboard.plugins.image import metadata as image_metadata
    from tensorboard.plugins.pr_curve import metadata as pr_metadata

    tf, resource = adapter.tf, adapter.writer._resource

    def shape(*dims: int) -> Any:
        return tensor_shape_pb2.TensorShapeProto(dim=[tensor_shape_pb2.TensorShapeProto.Dim(size=d) for d in dims])

    described, pr_shape = Described(), shape(6, PR_THRESHOLDS)

    def write(step: int, wall: float, pictures: list[Picture], curves: list[Curve]) -> None:
        values = []
        for p in pictures:
            value = summary_pb2.Summary.Value(tag=p.tag, tensor=tensor_pb2.TensorProto(
                dtype=types_pb2.DT_STRING, tensor_shape=shape(3),
                string_val=[str(p.width).encode(), str(p.height).encode(), p.png]))
            if described.anew(p.tag, p.description):
                value.metadata.CopyFrom(image_metadata.create_summary_metadata(display_name="",
                                                                               description=p.description))
            values.append(value)
        for c in curves:
            value = summary_pb2.Summary.Value(tag=c.tag, tensor=tensor_pb2.TensorProto(
                dtype=types_pb2.DT_FLOAT, tensor_shape=pr_shape, tensor_content=c.data.astype("<f4").tobytes()))
            if described.anew(c.tag, c.description):
                value.metadata.CopyFrom(pr_metadata.create_summary_metadata(
                    display_name="", description=c.description, num_thresholds=PR_THRESHOLDS))
            values.append(value)
        event = event_pb2.Event(wall_time=wall, step=step, summary=summary_pb2.Summary(value=values))
        tf.raw_ops.ImportEvent(writer=resource, event=tf.constant(event.SerializeToString()))

    return write
