"""Deployment export on a real pair (tests/deploy_pair.py: conftest's real_pair, which saved no weights,
exported by `twinboard export RUN`, which trains it again with the trainers' own code).

Every artifact is opened here again in its own runtime (torch.jit, torch.export, onnxruntime,
ExecuTorch, tf.saved_model, LiteRT) and must reproduce the validation accuracy the run itself logged
in its event files; float artifacts must match the model within 1e-5; the int8 TFLite model's
accuracy is whatever it measures, checked against what deploy.json recorded. The ONNX and TFLite
files are also opened with plain runtime calls only, no Twinboard code. A model that torch.export
cannot express (data-dependent control flow) is exported too: its failures are recorded, not raised.
"""
from __future__ import annotations

import json

import numpy as np
import pytest

from tests.deploy_pair import exported_pair, unexpressible_pair

FLOAT_TOL = 1e-5
EXPECTED = {"torch": ["model", "torchscript", "torch_export", "onnx", "executorch"],
            "tensorflow": ["model", "saved_model", "tflite", "tflite_int8", "tflite_fp16"]}
FRAMEWORKS = list(EXPECTED)


@pytest.fixture(scope="module")
def pair(real_pair, tmp_path_factory):
    made = exported_pair(real_pair, tmp_path_factory)
    logs = "\n".join((made.run_dir / f"{fw}.export.log").read_text()[-3000:] for fw in FRAMEWORKS
                     if (made.run_dir / f"{fw}.export.log").exists())
    assert made.exit_code == 0, f"{made.out}\n{made.err}\n{logs}"
    return made


def deploy_doc(pair, fw: str) -> dict:
    return json.loads((pair.run_dir / fw / "export" / "deploy.json").read_text())


def artifacts(pair, fw: str) -> dict[str, dict]:
    return {a["key"]: a for a in deploy_doc(pair, fw)["artifacts"]}


def logged(pair, fw: str) -> tuple[float, float]:
    """(accuracy/val, loss/val) at the run's last step, from its own event files."""
    from twinboard import events

    df = events.read_scalars(pair.run_dir / fw)
    last = {t: g.sort_values("step")["value"].iloc[-1] for t, g in df.groupby("tag", observed=True)}
    return float(last["accuracy/val"]), float(last["loss/val"])


def validation(pair):
    from trainers import data

    ds = data.load(pair.spec)
    return ds.x_val, ds.y_val


def test_export_command_exports_a_run_that_saved_no_weights(pair):
    for fw in FRAMEWORKS:
        doc = deploy_doc(pair, fw)
        assert doc["error"] is None
        assert doc["weights"]["source"].startswith("trained again from spec.json"), doc["weights"]
        assert (pair.run_dir / fw / "export" / doc["weights"]["file"]).is_file()  # the next export loads them
        assert f"{fw}: {len(EXPECTED[fw])} artifacts" in pair.out
    assert "no saved weights for torch, tensorflow" in pair.out
    assert "agreement, ONNX vs TFLite: largest output difference" in pair.out


@pytest.mark.parametrize("fw", FRAMEWORKS)
def test_the_retrained_model_is_the_model_the_run_logged(pair, fw):
    acc, loss = logged(pair, fw)
    model = artifacts(pair, fw)["model"]
    assert model["val_accuracy"] == pytest.approx(acc, abs=1e-6)  # the event file holds it as float32
    assert model["val_loss"] == pytest.approx(loss, rel=1e-5)


@pytest.mark.parametrize("fw", FRAMEWORKS)
def test_every_artifact_is_measured_and_float_ones_reproduce_the_model(pair, fw):
    found = artifacts(pair, fw)
    assert list(found) == EXPECTED[fw]
    model = found["model"]
    for key, a in found.items():
        assert a["error"] is None, (key, a["error"])
        assert a["latency_calls"] >= 1000 and 0 < a["latency_us_p50"] <= a["latency_us_p99"], key
        assert a["throughput_per_s"] > 0 and a["throughput_batch"] == 256, key
        assert a["threads"] == 1 and a["runtime"], key
        assert key == "model" or (a["bytes"] > 0 and a["load_s"] >= 0), key
        if a["exact"]:
            assert a["max_abs_diff"] <= FLOAT_TOL, key
            assert a["val_accuracy"] == model["val_accuracy"], key
    if fw == "torch":
        assert deploy_doc(pair, fw)["mobile"]["format"] == "ExecuTorch (.pte)"
        assert found["onnx"]["runtime"].startswith("onnxruntime ")
    else:
        int8 = found["tflite_int8"]
        assert not int8["exact"] and "int8" in int8["precision"]
        assert 0.0 <= int8["val_accuracy"] <= 1.0 and int8["max_abs_diff"] > 0  # measured: quantized differs
        assert int8["bytes"] < found["tflite"]["bytes"] / 2


def test_each_artifact_runs_in_its_own_runtime_here(pair):
    """Opened again without Twinboard's runners: the torch artifacts against the TorchScript model,
    the TensorFlow ones against the SavedModel, each's accuracy against the run's logged one."""
    import tensorflow as tf
    import torch
    from ai_edge_litert.interpreter import Interpreter
    from executorch.runtime import Runtime

    x, y = validation(pair)
    t_dir, k_dir = pair.run_dir / "torch" / "export", pair.run_dir / "tensorflow" / "export"
    with torch.inference_mode():
        torch_out = {
            "torchscript": torch.jit.load(str(t_dir / "model.pt"))(torch.from_numpy(x)).numpy(),
            "torch_export": torch.export.load(str(t_dir / "model.pt2")).module()(torch.from_numpy(x)).numpy(),
            "executorch": Runtime.get().load_program(t_dir / "model.pte").load_method("forward")
                                 .execute([torch.from_numpy(x[:256])])[0].numpy(),
        }
    serve = tf.saved_model.load(str(k_dir / "saved_model")).signatures["serving_default"]
    tf_out = {"saved_model": next(iter(serve(tf.constant(x)).values())).numpy()}
    for key in ("tflite", "tflite_int8", "tflite_fp16"):
        it = Interpreter(model_path=str(k_dir / f"model{key[6:]}.tflite"))
        inp = it.get_input_details()[0]["index"]
        it.resize_tensor_input(inp, list(x.shape))
        it.allocate_tensors()
        it.set_tensor(inp, x)
        it.invoke()
        tf_out[key] = it.get_tensor(it.get_output_details()[0]["index"])
    for fw, outs, ref in (("torch", torch_out, "torchscript"), ("tensorflow", tf_out, "saved_model")):
        acc = logged(pair, fw)[0]
        recorded = artifacts(pair, fw)
        for key, out in outs.items():
            mine = float(np.mean(out.argmax(1) == y[:len(out)]))
            if recorded[key]["exact"]:
                assert np.max(np.abs(out - outs[ref][:len(out)])) <= FLOAT_TOL, key
                if len(out) == len(y):
                    assert mine == pytest.approx(acc, abs=1e-6), key
            else:
                assert mine == pytest.approx(recorded[key]["val_accuracy"], abs=1e-12), key


def test_onnx_and_tflite_open_with_plain_runtime_calls(pair):
    """Only numpy, scikit-learn's digits, onnxruntime and LiteRT: how someone outside Twinboard opens them."""
    import onnxruntime as ort
    from ai_edge_litert.interpreter import Interpreter
    from sklearn.datasets import load_digits

    x = (load_digits().data / 16.0).astype(np.float32)
    session = ort.InferenceSession(str(pair.run_dir / "torch/export/model.onnx"), providers=["CPUExecutionProvider"])
    onnx_out = session.run(None, {session.get_inputs()[0].name: x})[0]
    it = Interpreter(model_path=str(pair.run_dir / "tensorflow/export/model.tflite"))
    it.resize_tensor_input(it.get_input_details()[0]["index"], list(x.shape))
    it.allocate_tensors()
    it.set_tensor(it.get_input_details()[0]["index"], x)
    it.invoke()
    lite_out = it.get_tensor(it.get_output_details()[0]["index"])
    assert onnx_out.shape == lite_out.shape == (len(x), 10)
    # The pair trains from shared initial weights: the two deployed models agree almost exactly.
    assert np.max(np.abs(onnx_out - lite_out)) < 1e-4
    assert np.mean(onnx_out.argmax(1) != lite_out.argmax(1)) <= 0.01


def test_the_agreement_file_matches_a_fresh_comparison(pair):
    import onnxruntime as ort
    from ai_edge_litert.interpreter import Interpreter

    found = json.loads((pair.run_dir / "deploy_agreement.json").read_text())
    assert found["error"] is None
    x, y = validation(pair)
    session = ort.InferenceSession(str(pair.run_dir / "torch/export/model.onnx"), providers=["CPUExecutionProvider"])
    a = session.run(None, {"x": x})[0]
    it = Interpreter(model_path=str(pair.run_dir / "tensorflow/export/model.tflite"))
    it.resize_tensor_input(it.get_input_details()[0]["index"], list(x.shape))
    it.allocate_tensors()
    it.set_tensor(it.get_input_details()[0]["index"], x)
    it.invoke()
    b = it.get_tensor(it.get_output_details()[0]["index"])
    assert found["n"] == len(x)
    assert found["max_abs_diff"] == pytest.approx(float(np.max(np.abs(a.astype(float) - b))), rel=1e-6)
    assert found["class_disagreement"] == pytest.approx(float(np.mean(a.argmax(1) != b.argmax(1))))
    assert found["onnx_accuracy"] == pytest.approx(float(np.mean(a.argmax(1) == y)))


def test_a_format_that_cannot_express_the_model_records_why(pair, tmp_path_factory):
    made = unexpressible_pair(pair, tmp_path_factory)
    doc = json.loads((made.run_dir / "torch" / "export" / "deploy.json").read_text())
    found = {a["key"]: a for a in doc["artifacts"]}
    assert doc["error"] is None  # the export went on past the formats that failed
    assert found["torchscript"]["error"] is None  # tracing freezes the branch it saw
    for key in ("torch_export", "onnx", "executorch"):
        assert found[key]["error"].startswith("export failed: "), (key, found[key]["error"])
        assert "data-dependent" in found[key]["error"] or "torch.export" in found[key]["error"], key
        assert not (made.run_dir / "torch" / "export" / found[key]["file"]).exists(), key  # no stale artifact


def test_export_command_refuses_what_it_cannot_export(pair, capsys):
    from twinboard import cli

    assert cli.main(["--logdir", str(pair.logdir), "export", "no-such-run"]) == 1
    assert "no run 'no-such-run'" in capsys.readouterr().err
    assert cli.main(["--logdir", str(pair.logdir), "export", pair.run_id, "--tag", "loss/train"]) == 2
    assert "--tag and --mapped choose scalars" in capsys.readouterr().err


def test_damaged_deploy_files_are_problems_not_tracebacks(tmp_path):
    from twinboard import deploy

    fw_dir = tmp_path / "run" / "torch"
    (fw_dir / "export").mkdir(parents=True)
    target = fw_dir / "export" / "deploy.json"
    for payload, expect in (("{not json", "not JSON"), ("[1, 2]", "not a JSON object"),
                            ("x" * (2_000_001), "larger than")):
        target.write_text(payload)
        dep, why = deploy.read_deploy(fw_dir, "torch")
        assert dep is None and expect in why
    outside = tmp_path / "secret.txt"
    outside.write_text("no")
    target.write_text(json.dumps({"artifacts": [
        "junk", {"key": "onnx", "format": "ONNX", "file": "../../secret.txt", "bytes": "12", "val_accuracy": 1e999},
        {"key": "tflite", "format": "**bold**", "file": "model.tflite", "error": "x" * 10_000}], "mobile": 3}))
    dep, why = deploy.read_deploy(fw_dir, "torch")
    assert why is None and len(dep.artifacts) == 2 and dep.mobile is None
    assert "artifact 1 is not a recorded artifact" in dep.problems[0]
    onnx, lite = dep.artifacts
    assert onnx["file"] is None and onnx["bytes"] is None and onnx["val_accuracy"] is None
    assert len(lite["error"]) <= deploy.reader.TEXT_CHARS + 1
    assert deploy.download(dep.folder, "../../secret.txt") == (None, "file not found in the export folder")
    assert deploy.download(dep.folder, "model.tflite")[0] is None  # named, but not there
    table = deploy.artifact_table([dep])
    assert list(table["note"]) == ["", lite["error"]]
    for measure in deploy.MEASURES:
        deploy.bar_figure(table, measure)  # nothing to draw, no exception
