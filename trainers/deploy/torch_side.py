"""PyTorch's deployment formats, each written from (model, example input) and run in its own runtime:

- TorchScript (`torch.jit.trace`, .pt) in torch.jit: LibTorch's format (C++ loads it with torch::jit::load);
- `torch.export` (.pt2), the ExportedProgram, run through `torch.export.load(...).module()`;
- ONNX (`torch.onnx.export(dynamo=True)`, .onnx, weights inline) in onnxruntime;
- the mobile format: ExecuTorch (.pte, lowered to XNNPACK) in ExecuTorch's runtime when it imports
  (it is pinned in requirements.txt), else TorchScript's lite interpreter (.ptl, deprecated in favour
  of ExecuTorch): `mobile_choice` says which and why, and deploy.json records it.

Every format exports with a dynamic batch dimension; where that fails the format is exported again
for batch 1 and says so. torch is imported inside the functions (the trainer already has it).
"""
from __future__ import annotations

import warnings
from contextlib import contextmanager
from pathlib import Path
from typing import Any

import numpy as np

from trainers.deploy.measure import Format, Runner, error_text

ET_MAX_BATCH = 256  # ExecuTorch plans its memory for the largest batch: the throughput batch


def _no_grad_runner(fn, runtime: str, note: str = "") -> Runner:
    import torch

    def call(x: np.ndarray) -> np.ndarray:
        with torch.inference_mode():
            return fn(torch.from_numpy(x)).numpy()
    return Runner(call, call, runtime, 1, note)


def _dynamic(example) -> tuple:
    from torch.export import Dim

    return ({0: Dim("batch", min=1)},)


def _exported(model, example, max_batch: int | None = None):
    """(ExportedProgram, note): the batch dimension dynamic, else fixed at batch 1 (the note says why)."""
    import torch
    from torch.export import Dim

    dims = ({0: Dim("batch", min=1, max=max_batch)},) if max_batch else _dynamic(example)
    try:
        return torch.export.export(model, (example,), dynamic_shapes=dims), ""
    except Exception as exc:  # noqa: BLE001 - some models only export for one batch size
        return torch.export.export(model, (example[:1],)), f"batch fixed at 1 (dynamic batch: {error_text(exc)})"


def torchscript(model, example, precision: str) -> Format:
    import torch

    def export(path: Path) -> None:
        with warnings.catch_warnings():
            warnings.simplefilter("ignore")  # TorchScript's deprecation notice, once per process
            traced = torch.jit.trace(model, example, check_trace=False)
        torch.jit.save(traced, str(path))

    def load(path: Path) -> Runner:
        scripted = torch.jit.load(str(path)).eval()
        return _no_grad_runner(scripted, f"torch.jit (LibTorch) {torch.__version__}")
    return Format("torchscript", "TorchScript", "model.pt", precision, load, export,
                  note="torch.jit.trace: Python control flow is frozen at the traced path")


def exported_program(model, example, precision: str) -> Format:
    import torch

    notes: list[str] = []

    def export(path: Path) -> None:
        ep, note = _exported(model, example)
        notes.append(note)
        torch.export.save(ep, str(path))

    def load(path: Path) -> Runner:
        module = torch.export.load(str(path)).module()
        return _no_grad_runner(module, f"torch.export {torch.__version__} (ExportedProgram.module())",
                               "".join(notes))
    return Format("torch_export", "torch.export (.pt2)", "model.pt2", precision, load, export)


def onnx(model, example, precision: str) -> Format:
    import torch

    notes: list[str] = []

    def export(path: Path) -> None:
        with warnings.catch_warnings():
            warnings.simplefilter("ignore")
            try:
                torch.onnx.export(model, (example,), str(path), dynamo=True, dynamic_shapes=_dynamic(example),
                                  input_names=["x"], output_names=["logits"], external_data=False, verbose=False)
                notes.append("")
            except Exception as exc:  # noqa: BLE001 - batch 1 only, said
                torch.onnx.export(model, (example[:1],), str(path), dynamo=True, input_names=["x"],
                                  output_names=["logits"], external_data=False, verbose=False)
                notes.append(f"batch fixed at 1 (dynamic batch: {error_text(exc)})")

    def load(path: Path) -> Runner:
        import onnxruntime as ort

        opts = ort.SessionOptions()
        opts.intra_op_num_threads = opts.inter_op_num_threads = 1
        session = ort.InferenceSession(str(path), opts, providers=["CPUExecutionProvider"])
        name = session.get_inputs()[0].name
        fixed = "".join(notes).startswith("batch fixed")

        def call(x: np.ndarray) -> np.ndarray:
            return session.run(None, {name: x})[0]
        return Runner(call, None if fixed else call, f"onnxruntime {ort.__version__}", 1, "".join(notes))
    return Format("onnx", "ONNX", "model.onnx", precision, load, export,
                  note="torch.onnx.export(dynamo=True), opset chosen by the exporter")


def mobile_choice() -> tuple[str, str]:
    """("executorch" or "ptl", why)."""
    try:
        with warnings.catch_warnings():
            warnings.simplefilter("ignore")
            import executorch.exir
            import executorch.runtime  # noqa: F401
            from executorch.backends.xnnpack.partition.xnnpack_partitioner import XnnpackPartitioner  # noqa: F401
            from executorch.version import __version__
    except Exception as exc:  # noqa: BLE001 - not installed, or not for this torch
        return "ptl", (f"ExecuTorch is not importable here ({error_text(exc)}): TorchScript's lite "
                       "interpreter (.ptl) instead, which PyTorch deprecates in favour of ExecuTorch")
    import torch

    return "executorch", (f"ExecuTorch {__version__} installs beside torch {torch.__version__} with the "
                          "pinned requirements, so the mobile format is its .pte (PyTorch Mobile's .ptl "
                          "is deprecated in favour of it)")


def executorch(model, example, precision: str) -> Format:
    from executorch.version import __version__

    notes: list[str] = []

    def export(path: Path) -> None:
        with warnings.catch_warnings():
            warnings.simplefilter("ignore")
            from executorch.backends.xnnpack.partition.xnnpack_partitioner import XnnpackPartitioner
            from executorch.exir import to_edge_transform_and_lower

            ep, note = _exported(model, example, max_batch=ET_MAX_BATCH)
            notes.append(note)
            program = to_edge_transform_and_lower(ep, partitioner=[XnnpackPartitioner()]).to_executorch()
        path.write_bytes(program.buffer)

    def load(path: Path) -> Runner:
        import torch
        from executorch.runtime import Runtime

        try:  # XNNPACK's thread pool: one thread, as every runtime here (an experimental call)
            from executorch.extension.pybindings.portable_lib import _unsafe_reset_threadpool
            _unsafe_reset_threadpool(1)
            threads: int | None = 1
        except Exception:  # noqa: BLE001 - the pool keeps its default size: recorded as unknown
            threads = None
        method = Runtime.get().load_program(path).load_method("forward")

        def call(x: np.ndarray) -> np.ndarray:
            return method.execute([torch.from_numpy(x)])[0].numpy()
        fixed = "".join(notes).startswith("batch fixed")
        return Runner(call, None if fixed else call, f"ExecuTorch runtime {__version__} (XNNPACK)", threads,
                      "".join(notes))
    return Format("executorch", "ExecuTorch (.pte)", "model.pte", precision, load, export,
                  note=f"lowered to XNNPACK, batch up to {ET_MAX_BATCH}", extra={"mobile": True})


def lite_interpreter(model, example, precision: str) -> Format:
    import torch

    def export(path: Path) -> None:
        with warnings.catch_warnings():
            warnings.simplefilter("ignore")
            traced = torch.jit.trace(model, example, check_trace=False)
            traced._save_for_lite_interpreter(str(path))

    def load(path: Path) -> Runner:
        from torch.jit.mobile import _load_for_lite_interpreter

        return _no_grad_runner(_load_for_lite_interpreter(str(path)),
                               f"TorchScript lite interpreter {torch.__version__}")
    return Format("ptl", "TorchScript lite (.ptl)", "model.ptl", precision, load, export,
                  note="deprecated by PyTorch in favour of ExecuTorch", extra={"mobile": True})


def trained(model) -> Format:
    import torch

    return Format("model", "trained model (eager)", None, "as trained",
                  lambda _path: _no_grad_runner(model, f"PyTorch eager {torch.__version__}"),
                  note="the nn.Module the run trained, torch.inference_mode()")


def formats(model, example, precision: str, mobile: str) -> list[Format]:
    """The trained model (the reference row), then each format; `precision`: the run's dtype."""
    mobile_format = executorch if mobile == "executorch" else lite_interpreter
    return [trained(model), *(f(model, example, precision)
                              for f in (torchscript, exported_program, onnx, mobile_format))]


def reference_outputs(model, x: np.ndarray) -> np.ndarray:
    import torch

    with torch.inference_mode():
        return np.concatenate([model(torch.from_numpy(x[i:i + 256])).numpy() for i in range(0, len(x), 256)])


def prepare(model, x_val: np.ndarray) -> tuple[Any, Any]:
    """(the model in inference mode, one thread; an example batch of two validation rows: a batch of
    one would let torch.export specialise the batch dimension to 1)."""
    import torch

    model = getattr(model, "_orig_mod", model).eval()
    example = torch.from_numpy(np.ascontiguousarray(x_val[:2] if len(x_val) >= 2 else np.repeat(x_val, 2, 0)))
    return model, example


@contextmanager
def one_thread():
    """torch's intra-op pool at one thread while measuring, as it was afterwards (a test process goes on)."""
    import torch

    was = torch.get_num_threads()
    torch.set_num_threads(1)
    try:
        yield
    finally:
        torch.set_num_threads(was)


def save_weights(model, path: Path) -> None:
    import torch

    torch.save(getattr(model, "_orig_mod", model).state_dict(), str(path))


def load_weights(model, path: Path) -> None:
    import torch

    model.load_state_dict(torch.load(str(path), weights_only=True))


def versions() -> dict[str, str]:
    import torch

    return {"framework_version": torch.__version__}
