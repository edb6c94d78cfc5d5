"""Reading what the exporters wrote: deploy.json per framework and the pair's agreement, under caps.

The files come from trainer processes, but a run folder is only files: a damaged or hand-edited one
must not take the page down. Each file is read only up to MAX_JSON_BYTES, must be a JSON object, and
every field the page uses is checked for its type here; a field of the wrong type is dropped (None),
and an artifact that is not an object is skipped, each with a problem the page shows. Strings are
kept as they are (the page shows them as text) but cut at TEXT_CHARS.
"""
from __future__ import annotations

import json
import math
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from twinboard.contract.deploy import agreement_path, deploy_path, export_dir

MAX_JSON_BYTES = 1_000_000  # a real deploy.json is ~5 KB
MAX_ARTIFACTS = 32
TEXT_CHARS = 2000
NUMBERS = ("bytes", "load_s", "export_s", "latency_us_p50", "latency_us_p99", "latency_us_mean", "latency_calls",
           "throughput_per_s", "throughput_batch", "val_accuracy", "val_loss", "max_abs_diff", "same_class_as_model",
           "threads")
TEXTS = ("key", "format", "file", "precision", "runtime", "error", "note")
AGREEMENT_NUMBERS = ("n", "max_abs_diff", "mean_abs_diff", "class_disagreement", "disagreeing", "onnx_accuracy",
                     "tflite_accuracy", "created", "torch_deploy_created", "tensorflow_deploy_created")


@dataclass(frozen=True)
class Deploy:
    """One framework's deploy.json, checked."""
    framework: str  # the folder's framework ("torch", "tensorflow"), or the run's name for others
    folder: Path  # <run>/<framework>/export
    created: float | None
    framework_version: str | None
    artifacts: list[dict[str, Any]]  # each with every NUMBERS and TEXTS key (None when absent or bad)
    mobile: dict[str, str] | None  # {"format", "why"}: the torch side's mobile choice
    weights: dict[str, Any] | None  # {"file", "bytes", "source"}
    error: str | None  # the whole export failed
    measured: dict[str, Any] = field(default_factory=dict)
    problems: list[str] = field(default_factory=list)


def _text(value: Any) -> str | None:
    if not isinstance(value, str):
        return None
    return value if len(value) <= TEXT_CHARS else value[:TEXT_CHARS] + "…"


def _number(value: Any) -> float | None:
    if isinstance(value, bool) or not isinstance(value, (int, float)):
        return None
    return float(value) if math.isfinite(value) else None


def load_json(path: Path) -> tuple[dict | None, str | None]:
    """(the object, None), (None, None) when there is no file, or (None, why it cannot be used)."""
    try:
        with open(path, "rb") as f:
            raw = f.read(MAX_JSON_BYTES + 1)
    except FileNotFoundError:
        return None, None
    except OSError as err:
        return None, f"{path.name}: cannot read it ({err.strerror or err})"
    if len(raw) > MAX_JSON_BYTES:
        return None, f"{path.name}: larger than {MAX_JSON_BYTES:,} bytes, not read"
    try:
        data = json.loads(raw)
    except (ValueError, RecursionError) as err:
        return None, f"{path.name}: not JSON ({str(err)[:200]})"
    if not isinstance(data, dict):
        return None, f"{path.name}: not a JSON object"
    return data, None


def _artifact(raw: dict) -> dict[str, Any]:
    rec: dict[str, Any] = {k: _number(raw.get(k)) for k in NUMBERS}
    rec.update({k: _text(raw.get(k)) for k in TEXTS})
    rec["exact"] = raw.get("exact") is True
    rec["mobile"] = raw.get("mobile") is True
    if rec["file"] is not None and ("/" in rec["file"] or "\\" in rec["file"] or rec["file"] in ("", ".", "..")):
        rec["file"] = None  # a file name, never a path: downloads read only inside export/
    return rec


def read_deploy(framework_dir: str | Path, framework: str) -> tuple[Deploy | None, str | None]:
    """(Deploy, None); (None, None) when the folder has no deploy.json; (None, why) when unusable."""
    path = deploy_path(framework_dir)
    data, why = load_json(path)
    if data is None:
        return None, why
    problems: list[str] = []
    raw = data.get("artifacts")
    if not isinstance(raw, list):
        problems.append("deploy.json has no list of artifacts")
        raw = []
    if len(raw) > MAX_ARTIFACTS:
        problems.append(f"deploy.json lists {len(raw)} artifacts: the first {MAX_ARTIFACTS} are shown")
        raw = raw[:MAX_ARTIFACTS]
    artifacts = []
    for i, item in enumerate(raw):
        if isinstance(item, dict) and _text(item.get("key")) and _text(item.get("format")):
            artifacts.append(_artifact(item))
        else:
            problems.append(f"deploy.json artifact {i + 1} is not a recorded artifact: skipped")
    mobile = data.get("mobile")
    mobile = ({"format": _text(mobile.get("format")) or "?", "why": _text(mobile.get("why")) or ""}
              if isinstance(mobile, dict) else None)
    weights = data.get("weights")
    weights = ({"file": _text(weights.get("file")), "bytes": _number(weights.get("bytes")),
                "source": _text(weights.get("source"))} if isinstance(weights, dict) else None)
    measured = data.get("measured") if isinstance(data.get("measured"), dict) else {}
    measured = {k: v for k, v in measured.items() if isinstance(k, str) and isinstance(v, (int, float, str))}
    return Deploy(framework, export_dir(framework_dir), _number(data.get("created")),
                  _text(data.get("framework_version")), artifacts, mobile, weights, _text(data.get("error")),
                  measured, problems), None


def read_agreement(run_dir: str | Path) -> tuple[dict[str, Any] | None, str | None]:
    """The pair's deploy_agreement.json, checked: numbers or None, `error` and `compared` as text."""
    data, why = load_json(agreement_path(run_dir))
    if data is None:
        return None, why
    found: dict[str, Any] = {k: _number(data.get(k)) for k in AGREEMENT_NUMBERS}
    found["error"], found["compared"] = _text(data.get("error")), _text(data.get("compared"))
    return found, None


def is_stale(agreement: dict[str, Any], deploys: list[Deploy]) -> bool:
    """Whether either side exported again after the agreement was computed (it compares older files)."""
    made = {"torch": agreement.get("torch_deploy_created"), "tensorflow": agreement.get("tensorflow_deploy_created")}
    return any(d.created is not None and made.get(d.framework) is not None and d.created > made[d.framework] + 1e-6
               for d in deploys)
