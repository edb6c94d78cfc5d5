"""The Graphs page (AppTest): both graphs drawn as plotly figures, search, collapse controls and the
layers table, on graph event files the real writers wrote (tests/graph_writers.py writes them once per
session). A click on a scope is the browser's part: tests/browser/test_graphs_view.py."""
from __future__ import annotations

import json
import shutil
from pathlib import Path

import pytest
from streamlit.testing.v1 import AppTest

from tests.graph_writers import CNN_PARAMS, MLP_PARAMS, written_runs
from twinboard import graphs
from twinboard.graphs import figure

ROOT = Path(__file__).resolve().parents[1]
PAGE = str(ROOT / "pages" / "graphs.py")
TIMEOUT = 60  # s per script run: the machine is small and shared


def _logdir(written: Path, tmp_path: Path, monkeypatch, model: str = "mlp") -> Path:
    root = tmp_path / "logs"
    run = root / f"20260101-000000-digits-{model}-sgd"
    for fw in ("torch", "tensorflow"):
        shutil.copytree(written / model / fw, run / fw)
    monkeypatch.setenv("TWINBOARD_LOGDIR", str(root))
    return root


@pytest.fixture
def logdir(tmp_path_factory, tmp_path, monkeypatch) -> Path:
    return _logdir(written_runs(tmp_path_factory), tmp_path, monkeypatch)


def _figures(at: AppTest) -> list[dict]:
    return [json.loads(c.proto.spec) for c in at.get("plotly_chart")]


def _trace(fig: dict, name: str) -> dict:
    return next((t for t in fig["data"] if t.get("name") == name), {"x": [], "customdata": []})


def _nodes(fig: dict) -> list[str]:
    """Names of the nodes drawn (the clickable trace's customdata)."""
    return list(_trace(fig, graphs.NODES_TRACE)["customdata"])


def _edges(fig: dict) -> int:
    return len(_trace(fig, "edges")["x"])  # one hover point per drawn edge


def _layers(at: AppTest):
    return at.dataframe[-1].value.set_index("layer")


def test_page_draws_both_graphs_per_layer_and_the_layers_table(logdir):
    at = AppTest.from_file(PAGE, default_timeout=TIMEOUT).run()
    assert not at.exception
    figs = _figures(at)
    assert len(figs) == 2
    assert "MLP/Linear[dense0]" in _nodes(figs[0])  # one node per torch module
    assert "sequential_1/dense0_1" in _nodes(figs[1])
    for fig in figs:  # drawn at a fixed, readable scale, not shrunk to the column
        labels = _trace(fig, graphs.NODES_TRACE)
        assert labels["textfont"]["size"] >= 12 and fig["layout"]["yaxis"]["scaleanchor"] == "x"
        assert fig["layout"]["height"] <= figure.MAX_HEIGHT and fig["layout"]["dragmode"] == "pan"
        assert any(t.get("name") == figure.NAMES["group"] for t in fig["data"])  # scopes have their own style
    assert at.selectbox(key="graphs_graph_1").value == 1  # TF shows its forward graph first
    table = _layers(at)
    assert list(table.index) == ["dense0", "dense1", "out", "total"]
    assert table.at["total", "PyTorch params"] == table.at["total", "TensorFlow params"] == MLP_PARAMS
    assert table["match"].all() and not at.warning


def test_search_highlights_and_shows_details(logdir):
    at = AppTest.from_file(PAGE, default_timeout=TIMEOUT).run()
    at.text_input(key="graphs_search").set_value("dense1").run()
    assert not at.exception
    found = at.selectbox(key="graphs_match_0").value
    assert "dense1" in found
    for fig in _figures(at):  # the layer holding the match, on both sides, in the opening view
        match = _trace(fig, "search match")
        assert match["fillcolor"] == figure.MATCH_FILL
        ys = [y for y in match["y"] if y is not None]
        low, high = fig["layout"]["yaxis"]["range"]
        assert ys and low <= min(ys) and max(ys) <= high
        assert any("<b>" in t and "dense1" in t for t in _trace(fig, graphs.NODES_TRACE)["text"])
    details = at.dataframe[0].value.set_index("field")["value"]
    assert details["name"] == found and details["op"]
    at.text_input(key="graphs_search").set_value("no-such-node").run()
    assert not at.exception and any("No node name contains" in c.value for c in at.caption)


def test_train_step_every_op_and_expanding(logdir):
    at = AppTest.from_file(PAGE, default_timeout=TIMEOUT).run()
    n_forward = _edges(_figures(at)[1])
    at.selectbox(key="graphs_graph_1").set_value(0).run()  # the traced train step
    train_fwd = _figures(at)[1]
    assert not any(n.startswith("gradient_tape") for n in _nodes(train_fwd))
    at.toggle(key="graphs_forward").set_value(False).run()
    assert any(n.startswith("gradient_tape") for n in _nodes(_figures(at)[1]))
    at.selectbox(key="graphs_collapse").set_value("every op").run()
    assert not at.exception
    every = _edges(_figures(at)[1])
    assert every > _edges(train_fwd) > 0 and every > n_forward
    at.selectbox(key="graphs_collapse").set_value("per layer").run()
    at.toggle(key="graphs_forward").set_value(True).run()
    before = _figures(at)[0]
    expand = at.multiselect(key="graphs_expand_0_0")
    expand.set_value(["MLP/Linear[dense0]"]).run()
    assert not at.exception
    left = _figures(at)[0]
    opened = [n for n in _nodes(left) if n.startswith("MLP/Linear[dense0]/")]
    assert "MLP/Linear[dense0]" not in _nodes(left) and opened and len(_nodes(left)) > len(_nodes(before))
    # the view opens on the scope just opened
    low, high = left["layout"]["yaxis"]["range"]
    nodes = _trace(left, graphs.NODES_TRACE)
    assert all(low <= y <= high for n, y in zip(nodes["customdata"], nodes["y"]) if n in opened)


def test_cnn_pair_totals_and_empty_logdir(tmp_path_factory, tmp_path, monkeypatch):
    _logdir(written_runs(tmp_path_factory), tmp_path, monkeypatch, "cnn")
    at = AppTest.from_file(PAGE, default_timeout=TIMEOUT).run()
    assert not at.exception and len(_figures(at)) == 2
    table = _layers(at)
    assert table.at["total", "PyTorch params"] == table.at["total", "TensorFlow params"] == CNN_PARAMS
    empty = tmp_path / "empty"
    empty.mkdir()
    monkeypatch.setenv("TWINBOARD_LOGDIR", str(empty))
    at = AppTest.from_file(PAGE, default_timeout=TIMEOUT).run()
    assert not at.exception and at.info and not _figures(at)


def test_run_without_a_graph_and_a_mismatch(tmp_path_factory, tmp_path, monkeypatch):
    written = written_runs(tmp_path_factory)
    root = tmp_path / "logs"
    run = root / "20260101-000000-digits-mlp-sgd"
    shutil.copytree(written / "plain" / "torch", run / "torch")  # torch's own writer: dangling inputs
    shutil.copytree(written / "cnn" / "tensorflow", run / "tensorflow")
    (run / "torch" / "settings.json").write_text(json.dumps({"layers": [
        {"name": "dense0", "type": "Linear", "output_shape": [None, 64], "params": 4160}]}))
    monkeypatch.setenv("TWINBOARD_LOGDIR", str(root))
    at = AppTest.from_file(PAGE, default_timeout=TIMEOUT).run()
    assert not at.exception and len(_figures(at)) == 2
    assert any("missing" in c.value for c in at.caption)  # the repairs are said
    at.selectbox(key="graphs_collapse").set_value("every op").run()
    missing = _trace(_figures(at)[0], figure.NAMES["missing"])  # the stand-ins drawn apart, dashed
    assert missing["line"]["dash"] == "dash" and missing["x"].count(None) == 3
    at.selectbox(key="graphs_collapse").set_value("per layer").run()
    assert at.warning and "dense0" in at.warning[0].value
    nograph = root / "20260102-000000-digits-mlp-sgd"
    for fw in ("torch", "tensorflow"):
        (nograph / fw).mkdir(parents=True)
        shutil.copy(next((written / "mlp" / "torch").glob("events*")), nograph / fw / "events.out.tfevents.0.x")
    (nograph / "tensorflow" / "events.out.tfevents.0.x").write_bytes(b"")  # an event file, no graph
    at = AppTest.from_file(PAGE, default_timeout=TIMEOUT).run()  # newest pair first
    assert not at.exception and len(_figures(at)) == 1
    assert any("No graph" in i.value for i in at.info)


def test_damaged_event_file_is_named_and_what_came_before_still_draws(logdir):
    from tensorboard.compat.proto import event_pb2

    from twinboard.contract import frame

    record = bytearray(frame(event_pb2.Event(wall_time=2.0, step=9).SerializeToString()))
    record[14] ^= 0xFF  # a complete record whose data CRC no longer matches
    target = next((logdir / "20260101-000000-digits-mlp-sgd" / "tensorflow").glob("*.graph"))
    with target.open("ab") as f:
        f.write(bytes(record))
    at = AppTest.from_file(PAGE, default_timeout=TIMEOUT).run()
    assert not at.exception
    assert at.error and "corrupt record" in at.error[0].value
    assert len(_figures(at)) == 2  # the graphs before the damage, and the other side


def test_real_trainers_tiny_run_renders(real_pair, monkeypatch):
    for fw in ("torch", "tensorflow"):
        assert "export_graph" not in (real_pair.run_dir / f"{fw}.stderr").read_text()  # no export warning
    monkeypatch.setenv("TWINBOARD_LOGDIR", str(real_pair.logdir))
    at = AppTest.from_file(PAGE, default_timeout=TIMEOUT).run()
    assert not at.exception and len(_figures(at)) == 2
    table = _layers(at)
    assert table.at["total", "PyTorch params"] == table.at["total", "TensorFlow params"] == MLP_PARAMS
    assert table["match"].all()
