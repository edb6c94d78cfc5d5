"""Do the two deployed models of a pair compute the same thing? PyTorch's ONNX model in onnxruntime
against TensorFlow's TFLite float32 model in LiteRT, on the same validation rows: the largest and mean
absolute difference of their outputs and the share of rows whose predicted class differs.

Computed by whichever side's exporter finishes second (each looks after writing its own deploy.json,
so the later one always finds both), or by `twinboard export`, and written to
<run>/deploy_agreement.json with the `created` time of both deploy.json files it used. Both runtimes
are small and load in either trainer's process.
"""
from __future__ import annotations

import time
from pathlib import Path
from typing import Any

import numpy as np

from trainers.deploy.measure import THROUGHPUT_BATCH, error_text
from twinboard.contract import read_json, write_json
from twinboard.contract.deploy import agreement_path, deploy_path, export_dir

SIDES = {"torch": "onnx", "tensorflow": "tflite"}  # framework -> the artifact compared


def _artifact(run_dir: Path, framework: str) -> tuple[Path | None, float | None, str | None]:
    """(the artifact's path, its deploy.json's created time, why it cannot be compared)."""
    doc = read_json(deploy_path(run_dir / framework))
    if doc is None:
        return None, None, f"no {framework} export yet"
    rec = next((a for a in doc.get("artifacts", []) if isinstance(a, dict) and a.get("key") == SIDES[framework]),
               None)
    if rec is None or rec.get("error") or not rec.get("file"):
        why = rec.get("error") if rec else "not in its deploy.json"
        return None, doc.get("created"), f"{framework} {SIDES[framework]} missing: {why}"
    return export_dir(run_dir / framework) / rec["file"], doc.get("created"), None


def _onnx_outputs(path: Path, x: np.ndarray) -> np.ndarray:
    import onnxruntime as ort

    opts = ort.SessionOptions()
    opts.intra_op_num_threads = opts.inter_op_num_threads = 1
    session = ort.InferenceSession(str(path), opts, providers=["CPUExecutionProvider"])
    name = session.get_inputs()[0].name
    return np.concatenate([session.run(None, {name: x[i:i + THROUGHPUT_BATCH]})[0]
                           for i in range(0, len(x), THROUGHPUT_BATCH)])


def _tflite_outputs(path: Path, x: np.ndarray) -> np.ndarray:
    from ai_edge_litert.interpreter import Interpreter

    it = Interpreter(model_path=str(path), num_threads=1)
    inp, out = it.get_input_details()[0], it.get_output_details()[0]
    parts = []
    for i in range(0, len(x), THROUGHPUT_BATCH):
        chunk = np.ascontiguousarray(x[i:i + THROUGHPUT_BATCH]).astype(inp["dtype"], copy=False)
        it.resize_tensor_input(inp["index"], list(chunk.shape), strict=False)
        it.allocate_tensors()
        it.set_tensor(inp["index"], chunk)
        it.invoke()
        parts.append(it.get_tensor(out["index"]))
    return np.concatenate(parts)


def compare(onnx_out: np.ndarray, tflite_out: np.ndarray, y: np.ndarray, n_classes: int) -> dict[str, Any]:
    a, b = np.asarray(onnx_out, np.float64), np.asarray(tflite_out, np.float64)
    diff = np.abs(a - b)
    found: dict[str, Any] = {"n": len(a), "max_abs_diff": float(diff.max()), "mean_abs_diff": float(diff.mean())}
    if n_classes:
        pa, pb = a.reshape(-1, a.shape[-1]).argmax(1), b.reshape(-1, b.shape[-1]).argmax(1)
        labels = np.asarray(y).reshape(-1)
        found.update(class_disagreement=float(np.mean(pa != pb)), disagreeing=int(np.sum(pa != pb)),
                     onnx_accuracy=float(np.mean(pa == labels)), tflite_accuracy=float(np.mean(pb == labels)))
    return found


def update(run_dir: Path, x_val: np.ndarray, y_val: np.ndarray, n_classes: int) -> dict[str, Any] | None:
    """Compare and write deploy_agreement.json when both sides have exported; None (nothing written)
    while one side has not. A side whose artifact is missing is recorded as the reason."""
    run_dir = Path(run_dir)
    (onnx_path, onnx_at, onnx_why), (lite_path, lite_at, lite_why) = (_artifact(run_dir, fw) for fw in SIDES)
    if onnx_at is None or lite_at is None:
        return None  # the other side has not finished: it will compare when it does
    doc: dict[str, Any] = {"version": 1, "created": time.time(), "compared": "torch ONNX (onnxruntime) against "
                           "tensorflow TFLite float32 (LiteRT), the same validation rows",
                           "torch_deploy_created": onnx_at, "tensorflow_deploy_created": lite_at, "error": None}
    if onnx_why or lite_why:
        doc["error"] = "; ".join(w for w in (onnx_why, lite_why) if w)
    else:
        try:
            doc.update(compare(_onnx_outputs(onnx_path, x_val), _tflite_outputs(lite_path, x_val), y_val, n_classes))
        except Exception as exc:  # noqa: BLE001 - recorded for the page
            doc["error"] = f"could not compare: {error_text(exc)}"
    write_json(agreement_path(run_dir), doc)
    return doc
