"""The two trainers' ends of trainers.evaluation: what each adapter's write_validation calls, and
how an evaluation's pictures and PR curves become records of that framework's event file.

One Event per evaluation holds every picture and curve of it (as TF1's merged summaries do), so
an evaluation costs one record to frame and, on the TensorFlow side, one ImportEvent op. The Event
is joined as bytes (EventBytes: the bytes protobuf writes, tested byte for byte), from pieces made
once by protobuf (a tag's field, a curve tensor's dtype and shape) and the evaluation's own bytes:
building and serializing the ~12 messages cost ~100 us an evaluation, a tenth of all of it.

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


def _varint(n: int) -> bytes:
    if n < 0x80:  # most: a tag, a small message
        return bytes((n,))
    if n < 0x4000:
        return bytes((n & 0x7F | 0x80, n >> 7))
    out = bytearray()
    while n > 0x7F:
        out.append(n & 0x7F | 0x80)
        n >>= 7
    out.append(n)
    return bytes(out)


def _field(number: int, payload: bytes) -> bytes:
    """A length-delimited field (a message, bytes, a string) as protobuf writes it (number < 16)."""
    return bytes((number << 3 | 2,)) + _varint(len(payload)) + payload


class EventBytes:
    """Event{wall_time, step, summary{value...}} as bytes, from the serialized values. `Event`,
    `Summary` and `TensorProto` are the framework's own classes (tensorboardX's or TensorBoard's:
    one schema); the field numbers come from their descriptors, and fields go in number order, as
    protobuf writes them."""

    def __init__(self, Event, Summary, TensorProto, dt_float: int):
        self.Event = Event
        value = Summary.Value.DESCRIPTOR.fields_by_name
        self.TAG, self.IMAGE = value["tag"].number, value["image"].number
        self.TENSOR, self.METADATA = value["tensor"].number, value["metadata"].number
        self.VALUE = Summary.DESCRIPTOR.fields_by_name["value"].number
        self.SUMMARY = Event.DESCRIPTOR.fields_by_name["summary"].number
        self.CONTENT = TensorProto.DESCRIPTOR.fields_by_name["tensor_content"].number
        assert self.TAG < self.IMAGE < self.TENSOR < self.METADATA < 16  # the order joined below; 1-byte keys
        # a PR curve's TensorProto{dtype float, shape [6, T]}, before its tensor_content
        self.curve_head = TensorProto(dtype=dt_float, tensor_shape={"dim": [{"size": 6}, {"size": PR_THRESHOLDS}]}
                                      ).SerializeToString()
        self.tags: dict[str, bytes] = {}  # tag -> its field
        self.before: dict[tuple[str, int], bytes] = {}  # (tag, content length) -> a curve's bytes before it

    def value(self, tag: str, number: int, payload: bytes, metadata: bytes | None = None) -> bytes:
        """Summary.Value{tag, <field `number`: payload>, metadata}, as a Summary's repeated field."""
        head = self.tags.get(tag)
        if head is None:
            head = self.tags[tag] = _field(self.TAG, tag.encode())
        body = head + _field(number, payload)
        return _field(self.VALUE, body if metadata is None else body + _field(self.METADATA, metadata))

    def curve(self, tag: str, data: np.ndarray, metadata: bytes | None = None) -> bytes:
        """A PR curve's value (float32 [6, T]). Without metadata all of it before the numbers is the
        same at every evaluation (their length is): made once a tag."""
        content = np.asarray(data, "<f4").tobytes()
        if metadata is not None:
            return self.value(tag, self.TENSOR, self.curve_head + _field(self.CONTENT, content), metadata)
        before = self.before.get((tag, len(content)))
        if before is None:
            whole = self.value(tag, self.TENSOR, self.curve_head + _field(self.CONTENT, content))
            before = self.before[(tag, len(content))] = whole[:len(whole) - len(content)]
        return before + content

    def event(self, step: int, wall: float, values: list[bytes]) -> bytes:
        return self.Event(wall_time=wall, step=step).SerializeToString() + _field(self.SUMMARY, b"".join(values))


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
    from tensorboardX.proto.types_pb2 import DT_FLOAT

    pr_plugin = SummaryMetadata.PluginData(plugin_name="pr_curves", content=PrCurvePluginData(
        version=0, num_thresholds=PR_THRESHOLDS).SerializeToString())
    enc = EventBytes(Event, Summary, TensorProto, DT_FLOAT)
    # trainers.torch_events.BufferedEvents (held in order with the scalars until the next flush), or
    # tensorboardX's own queue on its stock path
    buffered = adapter.writer.buffered
    add = (buffered.write_serialized if buffered is not None
           else lambda data: adapter.writer._get_file_writer().add_event(Event.FromString(data)))
    described = Described()

    def write(step: int, wall: float, pictures: list[Picture], curves: list[Curve]) -> None:
        values = []
        for p in pictures:
            image = Summary.Image(height=p.height, width=p.width, colorspace=p.channels,
                                  encoded_image_string=p.png).SerializeToString()
            meta = (SummaryMetadata(summary_description=p.description).SerializeToString()
                    if described.anew(p.tag, p.description) else None)
            values.append(enc.value(p.tag, enc.IMAGE, image, meta))
        for c in curves:
            meta = (SummaryMetadata(plugin_data=pr_plugin, summary_description=c.description).SerializeToString()
                    if described.anew(c.tag, c.description) else None)
            values.append(enc.curve(c.tag, c.data, meta))
        add(enc.event(step, wall, values))

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
    from tensorboard.compat.proto import event_pb2, summary_pb2, tensor_pb2, types_pb2
    from tensorboard.plugins.image import metadata as image_metadata
    from tensorboard.plugins.pr_curve import metadata as pr_metadata

    tf, resource = adapter.tf, adapter.writer._resource
    enc = EventBytes(event_pb2.Event, summary_pb2.Summary, tensor_pb2.TensorProto, types_pb2.DT_FLOAT)
    described = Described()

    def picture(p: Picture) -> bytes:  # what tf.summary.image writes: a string tensor [width, height, png]
        return tensor_pb2.TensorProto(dtype=types_pb2.DT_STRING, tensor_shape={"dim": [{"size": 3}]},
                                      string_val=[str(p.width).encode(), str(p.height).encode(), p.png]
                                      ).SerializeToString()

    def write(step: int, wall: float, pictures: list[Picture], curves: list[Curve]) -> None:
        values = []
        for p in pictures:
            meta = (image_metadata.create_summary_metadata(display_name="", description=p.description)
                    .SerializeToString() if described.anew(p.tag, p.description) else None)
            values.append(enc.value(p.tag, enc.TENSOR, picture(p), meta))
        for c in curves:
            meta = (pr_metadata.create_summary_metadata(display_name="", description=c.description,
                                                        num_thresholds=PR_THRESHOLDS).SerializeToString()
                    if described.anew(c.tag, c.description) else None)
            values.append(enc.curve(c.tag, c.data, meta))
        tf.raw_ops.ImportEvent(writer=resource, event=tf.constant(enc.event(step, wall, values)))

    return write
