"""TensorFlow's deployment formats, each written from (Keras model, example input) and run in its own
runtime:

- SavedModel (Keras `model.export`, the `serve` signature; what TF Serving loads), run through
  `tf.saved_model.load`;
- TFLite float32, TFLite with dynamic-range int8 weights and TFLite with float16 weights, each
  converted from that SavedModel (`tf.lite.TFLiteConverter.from_saved_model`) and run in LiteRT's
  Interpreter (`ai_edge_litert`, one thread, its default XNNPACK delegate).

The SavedModel's input signature is [None, features...] of the input's dtype, so every artifact takes
any batch size. TensorFlow's thread pools were fixed when its runtime started (the trainer sets them
from spec.threads): the SavedModel's and the Keras model's rows record that count.
"""
from __future__ import annotations

import os
import re
from contextlib import nullcontext
from pathlib import Path
from typing import Any

import numpy as np

from trainers.deploy.measure import Format, Runner, error_text

SAVED_MODEL = "saved_model"
TFLITE = "model.tflite"


def _tf_threads() -> int | None:
    import tensorflow as tf

    return tf.config.threading.get_intra_op_parallelism_threads() or None  # 0: TensorFlow's default (all cores)


def trained(model) -> Format:
    import tensorflow as tf

    def load(_path) -> Runner:
        @tf.function(reduce_retracing=True)
        def serve(x):
            return model(x, training=False)

        def call(x: np.ndarray) -> np.ndarray:
            return serve(tf.constant(x)).numpy()
        return Runner(call, call, f"Keras {_keras_version()} in a tf.function (TensorFlow {tf.__version__})",
                      _tf_threads())
    return Format("model", "trained model (Keras)", None, "as trained", load,
                  note="the Keras model the run trained, called in a tf.function with training=False")


def saved_model(model, example: np.ndarray, precision: str) -> Format:
    import tensorflow as tf

    def export(path: Path) -> None:
        spec = tf.TensorSpec([None, *example.shape[1:]], tf.as_dtype(example.dtype), name="x")
        model.export(str(path), format="tf_saved_model", verbose=False, input_signature=[spec])

    def load(path: Path) -> Runner:
        serve = tf.saved_model.load(str(path)).signatures["serving_default"]
        key = next(iter(serve.structured_outputs))

        def call(x: np.ndarray) -> np.ndarray:
            return serve(tf.constant(x))[key].numpy()
        return Runner(call, call, f"TensorFlow {tf.__version__} (tf.saved_model.load, serving_default)",
                      _tf_threads())
    return Format("saved_model", "SavedModel", SAVED_MODEL, precision, load, export,
                  note="Keras model.export: what TF Serving loads; a folder, downloaded as a .zip")


def _litert_runner(path: Path, note: str = "", batches: bool = True) -> Runner:
    from ai_edge_litert import __version__ as litert_version
    from ai_edge_litert.interpreter import Interpreter

    def runner():
        it = Interpreter(model_path=str(path), num_threads=1)
        it.allocate_tensors()
        inp, out = it.get_input_details()[0]["index"], it.get_output_details()[0]["index"]
        shape: list[tuple] = [tuple(it.get_input_details()[0]["shape"])]

        def call(x: np.ndarray) -> np.ndarray:
            if x.shape != shape[0]:  # the batch size changed: resize once, keep it for the next calls
                it.resize_tensor_input(inp, list(x.shape), strict=False)
                it.allocate_tensors()
                shape[0] = x.shape
            it.set_tensor(inp, x)
            it.invoke()
            return it.get_tensor(out)
        return call
    # One interpreter for single samples, one for batches: resizing back and forth would be timed.
    return Runner(runner(), runner() if batches else None,
                  f"LiteRT {litert_version} (ai_edge_litert.Interpreter, XNNPACK)", 1, note)


def converter_error(exc: BaseException, dtype: str) -> str:
    """The converter's pages of MLIR locations, as the one sentence that says what failed."""
    text = str(exc)
    select = re.search(r"TF Select ops: ([^\n]+)", text)
    if select:
        return (f"LiteRT has no {dtype} kernel for {select.group(1).strip()} (they would need TF Select, "
                "TensorFlow's own kernels linked into the app)")
    op = re.search(r"('[\w.]+' op [^\n]+)", text)
    return op.group(1).strip() if op else error_text(exc)


def tflite(model, example: np.ndarray, key: str, label: str, file: str, precision: str, saved: Path, how: str,
           dtype: str) -> Format:
    """Converted from the SavedModel (any batch size); when that fails (Keras' LSTM and GRU loops
    need static shapes), from the Keras model traced for batch 1, and the note says so."""
    import tensorflow as tf

    fixed: list[str] = []

    def convert(converter) -> bytes:
        if how in ("int8", "float16"):
            converter.optimizations = [tf.lite.Optimize.DEFAULT]
        if how == "float16":
            converter.target_spec.supported_types = [tf.float16]
        return converter.convert()

    def export(path: Path) -> None:
        if not saved.is_dir():
            raise FileNotFoundError("converted from the SavedModel, which was not written (see its error)")
        try:
            flat = convert(tf.lite.TFLiteConverter.from_saved_model(str(saved)))
        except Exception as exc:  # noqa: BLE001 - try a static batch; else say what failed, in one line
            why = converter_error(exc, dtype)
            one = tf.function(lambda x: model(x, training=False)).get_concrete_function(
                tf.TensorSpec([1, *example.shape[1:]], tf.as_dtype(example.dtype)))
            try:
                # Without the model as trackable object: its variables are frozen into constants (with it,
                # the RNN loop reads them as resource variables LiteRT never initialises: measured).
                flat = convert(tf.lite.TFLiteConverter.from_concrete_functions([one]))
            except Exception:  # noqa: BLE001 - the first failure is the one that explains
                raise RuntimeError(why) from None
            fixed.append(f"batch fixed at 1 (any batch size: {why})")
        path.write_bytes(flat)

    def load(path: Path) -> Runner:
        return _litert_runner(path, "".join(fixed), batches=not fixed)
    return Format(key, label, file, precision, load, export, exact=how == "float32",
                  note="TFLiteConverter.from_saved_model" + ("" if how == "float32" else f", {how} weights"))


def formats(model, example: np.ndarray, precision: str, out_dir: Path) -> list[Format]:
    """The trained model (the reference row), then each format; `precision`: the run's dtype."""
    saved = out_dir / SAVED_MODEL  # the TFLite converters read the SavedModel once it is in place
    lite = [("tflite", "TFLite", TFLITE, precision, "float32"),
            ("tflite_int8", "TFLite int8", "model_int8.tflite", "int8 weights, float activations (dynamic range)",
             "int8"),
            ("tflite_fp16", "TFLite float16", "model_fp16.tflite", "float16 weights", "float16")]
    return [trained(model), saved_model(model, example, precision),
            *(tflite(model, example, *row[:4], saved, row[4], precision) for row in lite)]


def reference_outputs(model, x: np.ndarray) -> np.ndarray:
    import tensorflow as tf

    return np.concatenate([model(tf.constant(x[i:i + 256]), training=False).numpy()
                           for i in range(0, len(x), 256)])


def prepare(model, x_val: np.ndarray) -> tuple[Any, np.ndarray]:
    os.environ.setdefault("TF_CPP_MIN_LOG_LEVEL", "1")
    return model, np.ascontiguousarray(x_val[:1])


def one_thread():
    """TensorFlow's pools cannot change once its runtime runs: the rows record the count instead."""
    return nullcontext()


def save_weights(model, path: Path) -> None:
    model.save_weights(str(path))


def load_weights(model, path: Path) -> None:
    model.load_weights(str(path))


def _keras_version() -> str:
    import keras

    return keras.__version__


def versions() -> dict[str, str]:
    import tensorflow as tf

    return {"framework_version": tf.__version__}
