"""Twinboard's core library. `import twinboard` stays cheap: public names load their module on
first use (PEP 562). Add a name here as `name: module`."""
from __future__ import annotations

import importlib

_LAZY = {
    "read_scalars": "twinboard.events",
    "ScalarStore": "twinboard.events",
    "CorruptRecordError": "twinboard.contract",
    "read_histograms": "twinboard.histograms",
    "HistogramStore": "twinboard.histograms",
    "read_embeddings": "twinboard.embeddings",
    "read_graphs": "twinboard.graphs",
    "read_images": "twinboard.images",
    "read_pr_curves": "twinboard.images",
    "RunSpec": "twinboard.contract",
    "launch": "twinboard.runs",
    "list_runs": "twinboard.runs",
    "list_pairs": "twinboard.runs",
}


def __getattr__(name: str):
    module = _LAZY.get(name)
    if module is None:
        raise AttributeError(f"module 'twinboard' has no attribute {name!r}")
    value = getattr(importlib.import_module(module), name)
    globals()[name] = value
    return value


def __dir__() -> list[str]:
    return sorted(list(globals()) + list(_LAZY))
