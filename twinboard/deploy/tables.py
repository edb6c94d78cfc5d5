"""The Deploy page's tables, from checked deploy.json files (twinboard.deploy.reader): every artifact
of both sides in one table, quantization's accuracy cost against its size gain, and the formats a
side could not produce with the reason each one recorded. Pure: data in, DataFrames and text out.
"""
from __future__ import annotations

import math
from typing import Any

import pandas as pd

from twinboard.contract import FRAMEWORK_LABELS
from twinboard.deploy.reader import Deploy

COLUMNS = ["side", "artifact", "precision", "size KB", "load ms", "latency µs p50", "latency µs p99",
           "samples/s (batch 256)", "val accuracy", "val loss", "max |Δ| vs model", "runtime", "threads",
           "latency calls", "note"]
FORMATS = {"size KB": "%.1f", "load ms": "%.3g", "latency µs p50": "%.3g", "latency µs p99": "%.3g",
           "samples/s (batch 256)": "%.3g", "val accuracy": "%.4f", "val loss": "%.5g", "max |Δ| vs model": "%.2e",
           "latency calls": "%d", "threads": "%d"}
HIDDEN = ["fw", "key", "file", "exact", "error"]  # for the figures and downloads; the page drops them
QUANT_COLUMNS = ["side", "artifact", "compared with", "size KB", "size gain ×", "accuracy change (points)",
                 "val loss change", "same class as model", "max |Δ| vs model"]
QUANT_FORMATS = {"size KB": "%.1f", "size gain ×": "%.2f", "accuracy change (points)": "%+.2f",
                 "val loss change": "%+.2e", "same class as model": "%.4f", "max |Δ| vs model": "%.2e"}
FLOAT_OF = {"tflite_int8": "tflite", "tflite_fp16": "tflite"}  # a quantized artifact -> its float32 twin


def side_label(framework: str) -> str:
    return FRAMEWORK_LABELS.get(framework, framework)


def _scaled(value: float | None, factor: float) -> float | None:
    return None if value is None else value * factor


def artifact_rows(deploys: list[Deploy]) -> list[dict[str, Any]]:
    rows = []
    for d in deploys:
        for a in d.artifacts:
            rows.append({
                "side": side_label(d.framework), "artifact": a["format"], "precision": a["precision"],
                "size KB": _scaled(a["bytes"], 1e-3), "load ms": _scaled(a["load_s"], 1e3),
                "latency µs p50": a["latency_us_p50"], "latency µs p99": a["latency_us_p99"],
                "samples/s (batch 256)": a["throughput_per_s"], "val accuracy": a["val_accuracy"],
                "val loss": a["val_loss"], "max |Δ| vs model": a["max_abs_diff"], "runtime": a["runtime"],
                "threads": a["threads"], "latency calls": a["latency_calls"],
                "note": a["error"] or a["note"] or "", "fw": d.framework, "key": a["key"], "file": a["file"],
                "exact": a["exact"], "error": a["error"]})
    return rows


def artifact_table(deploys: list[Deploy]) -> pd.DataFrame:
    """One row an artifact, PyTorch's first; a failed one keeps its row, its error in `note`."""
    return pd.DataFrame(artifact_rows(deploys), columns=COLUMNS + HIDDEN)


def shown(table: pd.DataFrame) -> pd.DataFrame:
    return table.drop(columns=HIDDEN)


def quantization_table(deploys: list[Deploy]) -> pd.DataFrame:
    """Each quantized artifact beside its float twin: how much smaller, and what it cost in accuracy."""
    rows = []
    for d in deploys:
        by_key = {a["key"]: a for a in d.artifacts if not a["error"]}
        for key, twin_key in FLOAT_OF.items():
            q, f = by_key.get(key), by_key.get(twin_key)
            if q is None or f is None:
                continue
            gain = f["bytes"] / q["bytes"] if f["bytes"] and q["bytes"] else None
            acc = (None if q["val_accuracy"] is None or f["val_accuracy"] is None
                   else (q["val_accuracy"] - f["val_accuracy"]) * 100)
            loss = None if q["val_loss"] is None or f["val_loss"] is None else q["val_loss"] - f["val_loss"]
            rows.append({"side": side_label(d.framework), "artifact": q["format"], "compared with": f["format"],
                         "size KB": _scaled(q["bytes"], 1e-3), "size gain ×": gain,
                         "accuracy change (points)": acc, "val loss change": loss,
                         "same class as model": q["same_class_as_model"], "max |Δ| vs model": q["max_abs_diff"]})
    return pd.DataFrame(rows, columns=QUANT_COLUMNS)


def quantization_lines(table: pd.DataFrame) -> list[str]:
    """'TFLite int8: 2.6× smaller than TFLite, accuracy −0.28 points (measured on 359 rows)'-like lines."""
    lines = []
    for _, r in table.iterrows():
        gain = "size not recorded" if _missing(r["size gain ×"]) else f"{r['size gain ×']:.2f}× smaller than {r['compared with']}"
        acc = r["accuracy change (points)"]
        cost = ("accuracy not recorded (a regression model: see the loss)" if _missing(acc)
                else "the same validation accuracy" if acc == 0 else f"validation accuracy {acc:+.2f} points")
        lines.append(f"{r['side']} {r['artifact']}: {gain}, {cost}")
    return lines


def missing(deploys: list[Deploy]) -> list[tuple[str, str, str]]:
    """(side, format, why) for every artifact a side recorded as not produced or not runnable."""
    return [(side_label(d.framework), a["format"], a["error"]) for d in deploys for a in d.artifacts if a["error"]]


def _missing(value: Any) -> bool:
    return value is None or (isinstance(value, float) and math.isnan(value))


def agreement_lines(agreement: dict[str, Any]) -> list[str]:
    """The agreement in words; its error when it could not be computed."""
    if agreement.get("error"):
        return [f"Not compared: {agreement['error']}"]
    lines = []
    if agreement.get("max_abs_diff") is not None:
        lines.append(f"largest output difference {agreement['max_abs_diff']:.3g} "
                     f"(mean {agreement.get('mean_abs_diff') or 0:.3g}) over {int(agreement.get('n') or 0):,} rows")
    if agreement.get("class_disagreement") is not None:
        lines.append(f"predicted classes differ on {agreement['class_disagreement'] * 100:.2f}% of the rows "
                     f"({int(agreement.get('disagreeing') or 0):,})")
    return lines
