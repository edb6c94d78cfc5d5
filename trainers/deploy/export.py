"""After training: the trained weights saved, every deployment format written and measured, deploy.json,
and the cross-framework agreement once both sides are done.

`export_trained` never raises: a format that cannot express the model is that artifact's `error`, and
anything that stops the whole export (a full disk) is deploy.json's `error` and a warning on stderr.
The run it follows has already finished; its curves were written before any of this ran.
"""
from __future__ import annotations

import platform
import sys
import time
from pathlib import Path
from typing import Any

from trainers.deploy import agreement, measure
from trainers.deploy.measure import error_text
from twinboard.contract import RunSpec, write_json
from twinboard.contract.deploy import DEPLOY_VERSION, WEIGHTS, deploy_path, export_dir, weights_path

SAVED = "saved at the end of training"


def side(framework: str):
    if framework == "torch":
        from trainers.deploy import torch_side
        return torch_side
    from trainers.deploy import tf_side
    return tf_side


def export_trained(framework: str, spec: RunSpec, run_dir: Path, ds, model, source: str = SAVED,
                   save: bool = True) -> dict[str, Any]:
    """Export `model` (trained on `ds`) into <run_dir>/<framework>/export/ and write its deploy.json;
    `source` says where the weights came from, `save` whether to save them first."""
    started = time.perf_counter()
    fw_dir = Path(run_dir) / framework
    out = export_dir(fw_dir)
    sd = side(framework)
    doc: dict[str, Any] = {
        "version": DEPLOY_VERSION, "framework": framework, "created": None, **_safe(sd.versions),
        "spec": {k: getattr(spec, k) for k in ("task", "model", "dtype", "seed")},
        "input": {"shape": [None, *ds.x_val.shape[1:]], "dtype": str(ds.x_val.dtype)}, "n_val": len(ds.x_val),
        "weights": None, "mobile": None, "artifacts": [], "error": None,
        "measured": {"threads": 1, "latency_calls": measure.LATENCY_CALLS, "warmup_calls": measure.WARMUP_CALLS,
                     "throughput_batch": measure.THROUGHPUT_BATCH, "python": platform.python_version(),
                     "machine": platform.machine(), "io": "numpy in, numpy out: each runtime's conversions timed"},
    }
    try:
        out.mkdir(parents=True, exist_ok=True)
        weights = weights_path(fw_dir, framework)
        if save:
            sd.save_weights(model, weights)
        doc["weights"] = {"file": WEIGHTS[framework], "bytes": weights.stat().st_size if weights.exists() else None,
                          "source": source}
        with sd.one_thread():
            model, example = sd.prepare(model, ds.x_val)
            reference = sd.reference_outputs(model, ds.x_val)
            if framework == "torch":
                mobile, why = sd.mobile_choice()
                doc["mobile"] = {"format": "ExecuTorch (.pte)" if mobile == "executorch" else "TorchScript lite (.ptl)",
                                 "why": why}
                formats = sd.formats(model, example, spec.dtype, mobile)
            else:
                formats = sd.formats(model, example, spec.dtype, out)
            doc["artifacts"] = measure.measure(formats, out, ds.x_val, ds.y_val, ds.n_classes, reference)
    except Exception as exc:  # noqa: BLE001 - the run trained; the export's failure is reported, not raised
        doc["error"] = error_text(exc)
        print(f"warning: {framework} export failed: {doc['error']}", file=sys.stderr)
    doc["export_s"] = time.perf_counter() - started
    doc["created"] = time.time()
    try:
        write_json(deploy_path(fw_dir), doc)
        agreement.update(Path(run_dir), ds.x_val, ds.y_val, ds.n_classes)
    except Exception as exc:  # noqa: BLE001
        print(f"warning: {framework} deploy.json or agreement not written: {error_text(exc)}", file=sys.stderr)
    return doc


def _safe(versions) -> dict[str, str]:
    try:
        return versions()
    except Exception:  # noqa: BLE001 - a version is a detail
        return {}
