"""Where the deployment export lives in a run folder: the part of the run-folder contract the export
adds, shared by the trainers' exporter (trainers/deploy/) and the dashboard's readers. Standard library
only.

    <run>/<framework>/export/         one framework's artifacts (model.onnx, model.tflite, saved_model/ ...)
    <run>/<framework>/export/deploy.json   what each artifact measured, or why it is missing
    <run>/<framework>/export/weights.* the trained weights, saved at the end of training (export on),
                                        which `twinboard export RUN` exports again
    <run>/deploy_agreement.json        PyTorch's ONNX model against TensorFlow's TFLite model
"""
from __future__ import annotations

from pathlib import Path

EXPORT_DIR = "export"
DEPLOY_JSON = "deploy.json"
AGREEMENT_JSON = "deploy_agreement.json"
# torch: the state_dict (torch.save, loaded with weights_only=True); Keras: save_weights' HDF5.
WEIGHTS = {"torch": "weights.pt", "tensorflow": "weights.weights.h5"}
EXPORT_MODULE = "trainers.deploy"  # `python -m trainers.deploy FRAMEWORK SPEC`: the trainer-side exporter
DEPLOY_VERSION = 1  # deploy.json's "version"


def export_dir(framework_dir: str | Path) -> Path:
    """`<run>/<framework>/export`, from the framework's event folder."""
    return Path(framework_dir) / EXPORT_DIR


def deploy_path(framework_dir: str | Path) -> Path:
    return export_dir(framework_dir) / DEPLOY_JSON


def weights_path(framework_dir: str | Path, framework: str) -> Path:
    return export_dir(framework_dir) / WEIGHTS[framework]


def agreement_path(run_dir: str | Path) -> Path:
    return Path(run_dir) / AGREEMENT_JSON
