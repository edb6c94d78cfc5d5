"""Artifacts as downloads, and how to load each one outside Twinboard.

A download reads only a plain file (or a SavedModel folder, zipped in memory) directly inside the
side's export/ folder, named by deploy.json's `file` (a name, never a path: the reader drops one
with a slash), never following a link out of it, and only up to MAX_DOWNLOAD_BYTES: the page holds
the bytes in memory while a visitor downloads them. The bytes are read when the button is clicked
(`Download.data` is a callable), not on every rerun.
"""
from __future__ import annotations

import io
import zipfile
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path

MAX_DOWNLOAD_BYTES = 64 * 1024 * 1024  # the MLP's artifacts are 10-100 KB; a big model is fetched from disk
MAX_ZIP_FILES = 1000  # a SavedModel holds a handful


@dataclass(frozen=True)
class Download:
    name: str  # the file name the browser saves
    size: int  # bytes on disk (before zipping a folder)
    data: Callable[[], bytes]
    mime: str


def _inside(folder: Path, path: Path) -> bool:
    try:
        return path.resolve().is_relative_to(folder.resolve()) and not path.is_symlink()
    except OSError:
        return False


def _zip(path: Path) -> bytes:
    buf = io.BytesIO()
    with zipfile.ZipFile(buf, "w", zipfile.ZIP_DEFLATED) as z:
        for p in sorted(path.rglob("*")):
            if p.is_file() and not p.is_symlink():
                z.write(p, Path(path.name) / p.relative_to(path))
    return buf.getvalue()


def download(folder: Path, file: str | None) -> tuple[Download | None, str | None]:
    """(Download, None), or (None, why there is none) for a missing, outside or too large artifact."""
    if not file:
        return None, "no file"
    path = Path(folder) / file
    if not path.exists() or not _inside(folder, path):
        return None, "file not found in the export folder"
    if path.is_dir():
        files = [p for p in path.rglob("*") if p.is_file() and not p.is_symlink()]
        size = sum(p.stat().st_size for p in files)
        if len(files) > MAX_ZIP_FILES or size > MAX_DOWNLOAD_BYTES:
            return None, f"too large to download here ({size / 1e6:,.0f} MB, {len(files):,} files): {path}"
        return Download(f"{path.name}.zip", size, lambda: _zip(path), "application/zip"), None
    size = path.stat().st_size
    if size > MAX_DOWNLOAD_BYTES:
        return None, f"too large to download here ({size / 1e6:,.0f} MB): copy it from the run folder"
    return Download(path.name, size, path.read_bytes, "application/octet-stream"), None


# How to load each artifact with nothing but its runtime. `{file}` is the artifact's file name.
SNIPPETS = {
    "torchscript": ("python", (
        "import torch\n\nmodel = torch.jit.load({file!r}).eval()\n"
        "with torch.inference_mode():\n    logits = model(torch.from_numpy(x))\n"
        '# C++ (LibTorch): auto m = torch::jit::load("{file}");')),
    "torch_export": ("python", (
        "import torch\n\nmodel = torch.export.load({file!r}).module()\n"
        "with torch.inference_mode():\n    logits = model(torch.from_numpy(x))")),
    "onnx": ("python", (
        "import onnxruntime as ort\n\n"
        'session = ort.InferenceSession({file!r}, providers=["CPUExecutionProvider"])\n'
        "logits = session.run(None, {{session.get_inputs()[0].name: x}})[0]")),
    "executorch": ("python", (
        "import torch\nfrom executorch.runtime import Runtime\n\n"
        'method = Runtime.get().load_program({file!r}).load_method("forward")\n'
        "logits = method.execute([torch.from_numpy(x)])[0]\n"
        "# Android / iOS: ExecuTorch's Module(\"{file}\").forward(...)")),
    "ptl": ("python", (
        "import torch\nfrom torch.jit.mobile import _load_for_lite_interpreter\n\n"
        "model = _load_for_lite_interpreter({file!r})\nlogits = model(torch.from_numpy(x))\n"
        '# Android: LiteModuleLoader.load("{file}")')),
    "saved_model": ("python", (
        "import tensorflow as tf\n\n# unzip {file}.zip first\n"
        'serve = tf.saved_model.load({file!r}).signatures["serving_default"]\n'
        "logits = next(iter(serve(tf.constant(x)).values())).numpy()\n"
        "# TF Serving: tensorflow_model_server --model_base_path=/models/{file} (in a numbered version folder)")),
    "tflite": ("python", (
        "from ai_edge_litert.interpreter import Interpreter\n\n"
        "it = Interpreter(model_path={file!r})\n"
        "inp, out = it.get_input_details()[0], it.get_output_details()[0]\n"
        'it.resize_tensor_input(inp["index"], list(x.shape))\nit.allocate_tensors()\n'
        'it.set_tensor(inp["index"], x)\nit.invoke()\nlogits = it.get_tensor(out["index"])')),
}
SNIPPETS["tflite_int8"] = SNIPPETS["tflite_fp16"] = SNIPPETS["tflite"]
INPUT_NOTE = "x: a numpy array of the input's dtype, shape [batch, features]"


def snippet(key: str | None, file: str | None) -> tuple[str, str] | None:
    """(language, code) loading this artifact, or None for a key without one (the trained model)."""
    if key not in SNIPPETS or not file:
        return None
    language, text = SNIPPETS[key]
    return language, text.format(file=file)
