"""Deployment export: after training, each framework's trainer writes its model in that framework's
deployment formats into <run>/<framework>/export/, loads each one in its own runtime, measures it and
writes deploy.json (the layout: twinboard.contract.deploy).

- ``export``: `export_trained(framework, spec, run_dir, ds, model)`: saves the trained weights first.
  A trainer's `_run` calls `export_if_asked` (below), which runs it when spec.export is on.
- ``measure``: formats as (export, load) pairs and how each artifact is timed and scored (numpy only).
- ``torch_side``: TorchScript, torch.export, ONNX, ExecuTorch (or the lite interpreter).
- ``tf_side``: SavedModel, TFLite float32, dynamic-range int8 and float16, run in LiteRT.
- ``agreement``: PyTorch's ONNX model against TensorFlow's TFLite model on the same rows.
- ``__main__``: `python -m trainers.deploy FRAMEWORK RUN/spec.json`, the export of a run that already
  ended (what `twinboard export RUN` starts): its saved weights, or the run trained again from its spec.

Frameworks and runtimes are imported inside the functions: importing this package costs numpy only.
"""
from trainers.deploy.export import export_trained

__all__ = ["export_trained", "export_if_asked"]


def export_if_asked(framework: str, spec, run_dir, ds, model) -> None:
    """The export at the end of a trainer's `_run`, when `spec.export` is on: after training and the
    last flush, so the run's curves are all written before the seconds-long export starts. One place
    for both trainers, so that they cannot differ in when they export."""
    if spec.export:
        export_trained(framework, spec, run_dir, ds, model)
