"""The layers table: each framework's graph summarised layer by layer (type, output shape, parameters),
the two aligned and mismatches flagged, settings.json filling what a graph cannot say. Real graphs
come from conftest's `runs` (tests/graph_writers.py)."""
from __future__ import annotations

import json

import pytest

from tests.graph_writers import CNN_PARAMS, MLP_PARAMS
from twinboard import graphs
from twinboard.graphs.reader import read_graphs


# --- the layers table -----------------------------------------------------------------------------------
@pytest.mark.parametrize("model,total,layers", [("mlp", MLP_PARAMS, ["dense0", "dense1", "out"]),
                                                ("cnn", CNN_PARAMS, ["conv0", "conv1", "dense0", "out"])])
def test_parameter_totals_match_between_frameworks(runs, model, total, layers):
    left = graphs.layer_summary(read_graphs(runs / model / "torch"))
    right = graphs.layer_summary(read_graphs(runs / model / "tensorflow"), known=list(left["layer"]))
    table = graphs.align_layers(left, right)
    print(table.to_string())
    assert [n for n in table["layer"] if n in layers] == layers
    assert table["layer"].iloc[0] == layers[0]
    if model == "cnn":  # Keras' Reshape and Flatten have no torch twin here: parameter-free, left out
        assert {"reshape", "flatten"} <= set(table.attrs["left_out"])
    tot = table.set_index("layer").loc["total"]
    assert tot["PyTorch params"] == tot["TensorFlow params"] == total
    assert table["match"].all()
    assert set(right["type"]) >= {"Dense"} and set(left["type"]) >= {"Linear"}
    out = table.set_index("layer").loc["out"]
    assert out["PyTorch output shape"] == out["TensorFlow output shape"] == "[32, 10]"


def test_tf_module_graph_gives_layers_too(runs):
    right = graphs.layer_summary(read_graphs(runs / "module/tensorflow"), known=["dense0", "dense1", "out"])
    assert list(right["layer"]) == ["dense0", "dense1", "out"]
    assert right["params"].sum() == MLP_PARAMS


def test_settings_fill_what_the_graph_cannot_say_and_mismatches_are_flagged(runs, tmp_path):
    plain = graphs.layer_summary(read_graphs(runs / "plain/torch"))
    assert plain["params"].isna().all()  # torch's own writer gives parameter reads no shapes
    settings = {"layers": [{"name": "dense0", "type": "Linear", "output_shape": [32, 64], "params": 4160},
                           {"name": "dense1", "type": "Linear", "output_shape": [32, 32], "params": 2080},
                           {"name": "out", "type": "Linear", "output_shape": [32, 10], "params": 330}]}
    (tmp_path / "settings.json").write_text(json.dumps(settings))
    filled = graphs.layer_summary(read_graphs(runs / "plain/torch"), graphs.read_settings(tmp_path))
    assert filled["params"].sum() == MLP_PARAMS
    assert graphs.read_settings(tmp_path / "nowhere") is None
    right = graphs.layer_summary(read_graphs(runs / "cnn/tensorflow"))
    table = graphs.align_layers(filled, right)
    flagged = set(table.loc[~table["match"], "layer"])
    assert {"dense0", "total", "conv0"} <= flagged and "out" not in flagged
    html = graphs.style_layers(table).to_html()
    assert "#ffcdd2" in html and "6,570" in html


def test_shapes_agree_rules():
    assert graphs.shapes_agree("[32, 8, 4, 4]", "[32, 4, 4, 8]")  # NCHW vs NHWC
    assert graphs.shapes_agree("[?, 10]", "[32, 10]") and graphs.shapes_agree("", "[1]")
    assert not graphs.shapes_agree("[32, 10]", "[32, 11]")
