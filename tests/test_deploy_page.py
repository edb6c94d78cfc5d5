"""AppTest of the Deploy page on a real exported pair (tests/deploy_pair.py), on a copy whose PyTorch side
holds a model that torch.export, ONNX and ExecuTorch cannot express, and on the suite's real pair,
which was never exported. Every figure the page shows is checked against the deploy.json files."""
from __future__ import annotations

import json
from pathlib import Path

import pytest
from streamlit.testing.v1 import AppTest

from tests.deploy_pair import exported_pair, unexpressible_pair

ROOT = Path(__file__).resolve().parents[1]
TIMEOUT = 60


@pytest.fixture(scope="module")
def pair(real_pair, tmp_path_factory):
    made = exported_pair(real_pair, tmp_path_factory)
    assert made.exit_code == 0, made.err
    return made


def open_page(logdir: Path, monkeypatch) -> AppTest:
    monkeypatch.setenv("TWINBOARD_LOGDIR", str(logdir))
    at = AppTest.from_file(str(ROOT / "pages" / "deploy.py"), default_timeout=TIMEOUT).run()
    assert not at.exception, at.exception
    return at


def table(at: AppTest, column: str):
    return next(d.value for d in at.dataframe if column in d.value.columns)


def test_the_page_shows_every_artifact_of_both_sides(pair, monkeypatch):
    at = open_page(pair.logdir, monkeypatch)
    assert not at.error and not at.warning, [e.value for e in (*at.error, *at.warning)]
    rows = table(at, "latency µs p50")
    docs = {fw: json.loads((pair.run_dir / fw / "export" / "deploy.json").read_text()) for fw in ("torch", "tensorflow")}
    want = [(side, a) for fw, side in (("torch", "PyTorch"), ("tensorflow", "TensorFlow")) for a in docs[fw]["artifacts"]]
    assert list(zip(rows["side"], rows["artifact"])) == [(side, a["format"]) for side, a in want]
    for (_, a), (_, row) in zip(want, rows.iterrows()):
        assert row["latency µs p50"] == pytest.approx(a["latency_us_p50"])
        assert row["val accuracy"] == pytest.approx(a["val_accuracy"])
        if a["file"]:
            assert row["size KB"] == pytest.approx(a["bytes"] / 1e3)
    agreement = json.loads((pair.run_dir / "deploy_agreement.json").read_text())
    metrics = {m.label: m.value for m in at.metric}
    assert metrics["Largest output difference"] == f"{agreement['max_abs_diff']:.3g}"
    assert metrics["Predicted class differs"] == f"{agreement['class_disagreement'] * 100:.2f}%"
    quant = table(at, "size gain ×")
    assert list(quant["artifact"]) == ["TFLite int8", "TFLite float16"]
    charts = [json.loads(c.proto.spec)["layout"]["title"]["text"] for c in at.get("plotly_chart")]
    assert charts[:4] == ["File size", "Single-sample latency (p50, whisker to p99)", "Throughput at batch 256",
                          "Validation accuracy"] and "quantization" in charts[4]
    downloads = [b.proto.label for b in at.get("download_button")]
    assert len(downloads) == 8 and any(d.startswith("SavedModel (") for d in downloads), downloads
    code = "\n".join(c.value for c in at.code)
    for call in ("torch.jit.load('model.pt')", "torch.export.load('model.pt2')", "ort.InferenceSession('model.onnx'",
                 "load_program('model.pte')", "tf.saved_model.load('saved_model')",
                 "Interpreter(model_path='model_int8.tflite')"):
        assert call in code, call
    assert any("ExecuTorch" in c.value and "installs beside torch" in c.value for c in at.caption)


def test_the_page_shows_why_a_format_is_missing(pair, tmp_path_factory, monkeypatch):
    made = unexpressible_pair(pair, tmp_path_factory)
    at = open_page(made.logdir, monkeypatch)
    warnings = [w.value for w in at.warning]
    for fmt in ("torch\\.export \\(\\.pt2\\)", "ONNX", "ExecuTorch \\(\\.pte\\)"):
        assert any(f"PyTorch {fmt}** not available: export failed" in w for w in warnings), (fmt, warnings)
    assert any("onnx missing" in w for w in warnings)  # the agreement says why it could not compare
    rows = table(at, "latency µs p50")
    assert rows[rows["artifact"] == "ONNX"]["note"].iloc[0].startswith("export failed")
    assert len(at.get("download_button")) == 5  # TorchScript and TensorFlow's four


def test_a_pair_never_exported_says_how_to_export_it(real_pair, monkeypatch):
    at = open_page(real_pair.logdir, monkeypatch)
    assert any("twinboard export RUN-ID" in i.value for i in at.info), [i.value for i in at.info]
