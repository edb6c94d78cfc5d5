"""Sweeps on this machine: grid and seed parsing with their bounds, the caps and roles that apply to
a sweep as a whole, the seed aggregates and the framework gap with its verdict on real event files
(tensorboardX writers, values chosen so the answer is known), the Sweeps page and the Launch page's
sweep form (AppTest), `twinboard sweep` (the stub trainer), and the hparams records both trainers'
writers get (read back by TensorBoard's EventAccumulator).

The Ray backend and real trainers are tests/test_ray_backend.py's.
"""
from __future__ import annotations

import json
import math
import sys
import time
from pathlib import Path

import numpy as np
import pytest
from streamlit.testing.v1 import AppTest

from twinboard import runs, sweeps
from twinboard.auth import RUNNER, VIEWER, PermissionDenied, User, read_audit
from twinboard.cli import main as cli
from twinboard.contract import RUN_JSON, RunSpec, write_json
from twinboard.sweeps import results, stats

ROOT = Path(__file__).resolve().parents[1]
TIMEOUT = 60
SPEC = RunSpec(steps=3, epochs=1)


# --- grid and seeds ------------------------------------------------------------------------------
def test_grid_items_parse_typed_in_order_and_a_repeated_field_adds_values():
    grid = sweeps.parse_grid(["lr=0.01, 0.05", "batch_size=32,64", "optimizer=adam", "lr=0.05,0.1", ""])
    assert grid == {"lr": (0.01, 0.05, 0.1), "batch_size": (32, 64), "optimizer": ("adam",)}
    assert isinstance(grid["batch_size"][0], int)
    assert sweeps.parse_seeds("0-2, 7,2") == (0, 1, 2, 7)


@pytest.mark.parametrize("items, words", [
    (["lr"], "FIELD=V1,V2"), (["nope=1"], "no RunSpec field"), (["seed=1,2"], "--seeds"),
    (["hidden=64,32"], "cannot be swept"), (["lr=fast"], "not a number"), (["batch_size=3.5"], "whole number"),
    (["optimizer=rmsprop"], "one of sgd, adam"), (["lr="], "no values"),
    ([f"lr={','.join(str(i / 1000) for i in range(1, 60))}"], "at most 50"),
    ([f"{f}=1" for f in ("lr", "momentum", "beta1", "beta2", "eps", "weight_decay", "clip_norm")], "at most 6"),
    (["lr=" + "1," * 5000], "characters"),
])
def test_a_bad_grid_is_named_in_words(items, words):
    with pytest.raises(sweeps.GridError, match=words):
        sweeps.parse_grid(items)


@pytest.mark.parametrize("text, words", [
    ("", "none given"), ("a-b", "not a seed"), ("5-1", "backwards"), ("0-1000", "at most 100"),
    ("4294967296", r"\[0, 2\*\*32\)"), ("1" * 3000, "characters")])
def test_bad_seeds_are_named_in_words(text, words):
    with pytest.raises(sweeps.GridError, match=words):
        sweeps.parse_seeds(text)


def test_expand_is_configuration_major_and_bounded(tmp_path, monkeypatch):
    points = sweeps.expand(SPEC, {"lr": (0.01, 0.05), "batch_size": (16, 32)}, "0-1", tmp_path)
    assert [(p.key, p.seed) for p in points[:3]] == [("lr=0.01 batch_size=16", 0), ("lr=0.01 batch_size=16", 1),
                                                    ("lr=0.01 batch_size=32", 0)]
    assert points[-1].spec.lr == 0.05 and points[-1].spec.batch_size == 32 and points[-1].spec.seed == 1
    monkeypatch.setenv("TWINBOARD_MAX_SWEEP_PAIRS", "7")
    with pytest.raises(sweeps.GridError, match="2 configurations x 4 seeds = 8 pairs: at most 7"):
        sweeps.expand(SPEC, {"lr": (0.01, 0.05)}, "0-3")
    with pytest.raises(sweeps.GridError, match="lr=20.0: .*must be in"):  # RunSpec's own bound, named per point
        sweeps.expand(SPEC, {"lr": (0.01, 20.0)}, "0")


# --- launching: caps and roles for the sweep as a whole --------------------------------------------
def test_a_sweep_launches_named_pairs_and_records_its_grid(logdir):
    done = sweeps.launch_sweep(SPEC, {"lr": (0.01, 0.05)}, "0-1", logdir)
    sweep = sweeps.load_sweep(logdir, done.sweep.sweep_id)
    assert [p.run_id for p in sweep.pairs] == [f"{sweep.sweep_id}-00{i}" for i in range(4)]
    assert sweep.grid == {"lr": [0.01, 0.05]} and sweep.seeds == (0, 1) and not sweep.failed
    run = json.loads((logdir / sweep.pairs[3].run_id / RUN_JSON).read_text())
    assert run["sweep"] == sweep.sweep_id and run["config"] == {"lr": 0.05} and run["spec"]["seed"] == 1
    for p in sweep.pairs:
        assert all(isinstance(o, runs.Finished) for o in runs.wait(p.run_id, 60, logdir).values())
    assert sweeps.list_sweeps(logdir) == [sweep.sweep_id]


def test_caps_apply_to_the_whole_sweep_and_nothing_half_launches(logdir, monkeypatch):
    monkeypatch.setenv("TWINBOARD_MAX_QUEUED_PER_USER", "3")
    with pytest.raises(sweeps.GridError, match="4 pairs do not fit.*TWINBOARD_MAX_QUEUED_PER_USER=3"):
        sweeps.launch_sweep(SPEC, {"lr": (0.01, 0.05)}, "0-1", logdir)
    assert runs.list_runs(logdir) == [] and sweeps.list_sweeps(logdir) == []


def test_a_viewer_cannot_sweep_and_a_runners_sweep_is_owned_and_audited(logdir, monkeypatch):
    monkeypatch.setenv("TWINBOARD_TEAM", "1")
    logdir.mkdir(parents=True, exist_ok=True)
    with pytest.raises(PermissionDenied):
        sweeps.launch_as(User("val", VIEWER), SPEC, {"lr": (0.01,)}, "0", logdir)
    done = sweeps.launch_as(User("rita", RUNNER), SPEC, {"lr": (0.01,)}, "0", logdir)
    assert done.sweep.owner == "rita" and runs.get_run(done.sweep.pairs[0].run_id, logdir)
    assert json.loads((logdir / done.sweep.pairs[0].run_id / RUN_JSON).read_text())["owner"] == "rita"
    assert any(a["target"] == f".sweeps/{done.sweep.sweep_id}" for a in read_audit(logdir=logdir))
    runs.wait(done.sweep.pairs[0].run_id, 60, logdir)


def test_load_sweep_refuses_what_it_did_not_write(tmp_path):
    for bad in ("../x", "nosuch", "sweep-none"):
        with pytest.raises(sweeps.GridError):
            sweeps.load_sweep(tmp_path, bad)
    (tmp_path / ".sweeps" / "sweep-x").mkdir(parents=True)
    (tmp_path / ".sweeps" / "sweep-x" / "sweep.json").write_text('{"grid": 3}')
    with pytest.raises(sweeps.GridError, match="not a sweep.json"):
        sweeps.load_sweep(tmp_path, "sweep-x")


# --- statistics ------------------------------------------------------------------------------------
def test_the_gap_is_paired_by_seed_with_a_t_interval():
    g = stats.gap({0: 0.90, 1: 0.80, 2: 0.70}, {0: 0.91, 1: 0.80, 2: 0.72, 3: 0.5})  # seed 3: one side only
    d = np.array([0.01, 0.0, 0.02])
    half = 4.302652729911275 * d.std(ddof=1) / math.sqrt(3)  # t(0.975, 2)
    assert g.n == 3 and g.mean == pytest.approx(d.mean()) and g.low == pytest.approx(d.mean() - half)
    assert g.within_noise is True
    assert stats.gap({0: 1.0}, {0: 2.0}).within_noise is None and stats.gap({}, {}).n == 0


@pytest.mark.parametrize("tag, torch, tf, expected", [
    ("accuracy/val", [0.90, 0.92, 0.94], [0.895, 0.925, 0.93],
     "TensorFlow's final val accuracy is 0.3 points lower than PyTorch's, within seed noise (95% CI -2.2..1.6 "
     "points, 3 seeds)."),
    ("loss/val", [0.30, 0.31, 0.32], [0.40, 0.42, 0.41],
     "TensorFlow's final val loss is 0.1 higher than PyTorch's, more than seed noise explains (95% CI "
     "0.0752..0.125, 3 seeds)."),
    ("accuracy/val", [0.9, 0.8], [0.9, 0.8], "TensorFlow's final val accuracy equals PyTorch's in all 2 seeds."),
    ("loss/val", [0.3, 0.4], [0.3 + 1e-8, 0.4 + 2e-8], "TensorFlow's final val loss matches PyTorch's to float "
                                                        "rounding (within 1e-06) in all 2 seeds."),
    ("loss/val", [0.3], [0.4], "TensorFlow's final val loss is 0.1 higher than PyTorch's, in one seed only: run "
                               "more seeds to tell it from seed noise."),
])
def test_verdicts_in_words(tag, torch, tf, expected):
    g = stats.gap(dict(enumerate(torch)), dict(enumerate(tf)))
    assert stats.verdict(tag, g, float(np.mean(torch))) == expected


def test_aggregate_bands_over_seeds_with_missing_and_repeated_steps():
    curves = [(np.array([1, 2, 3]), np.array([1.0, 2.0, 3.0])), (np.array([1, 2, 2]), np.array([3.0, 9.0, 4.0]))]
    agg = stats.aggregate(curves, "minmax")
    assert agg.step.tolist() == [1, 2, 3] and agg.n.tolist() == [2, 2, 1]
    assert agg.mean.tolist() == [2.0, 3.0, 3.0] and agg.low.tolist() == [1.0, 2.0, 3.0]  # step 2: the last written
    ci = stats.aggregate(curves, "ci95")
    assert ci.high[0] == pytest.approx(2.0 + 12.706204736174698 * math.sqrt(2) / math.sqrt(2))
    assert ci.low[2] == ci.high[2] == 3.0  # one seed: no band


# --- real event files: a sweep written by hand with known values -----------------------------------
KNOWN = {  # config -> framework -> final val accuracy per seed; steps 10 and 20 logged, the final at 20
    0.01: {"torch": [0.90, 0.92, 0.94], "tensorflow": [0.895, 0.925, 0.93]},
    0.05: {"torch": [0.80, 0.81, 0.82], "tensorflow": [0.70, 0.72, 0.71]},
}


@pytest.fixture(scope="module")
def written(tmp_path_factory):
    """A sweep.json and 6 finished pairs whose event files tensorboardX wrote (accuracy/val, loss/val)."""
    from tensorboardX import SummaryWriter

    root = tmp_path_factory.mktemp("sweep") / "logs"
    sweep_id = "sweep-20260101-000000"
    pairs = []
    for lr, sides in KNOWN.items():
        for seed in range(3):
            run_id = sweeps.pair_name(sweep_id, len(pairs))
            run_dir = root / run_id
            run_dir.mkdir(parents=True)
            spec = SPEC.replace(lr=lr, seed=seed)
            write_json(run_dir / RUN_JSON, {"id": run_id, "created": time.time(), "spec": spec.to_dict(),
                                            "backend": "local", "frameworks": ["torch", "tensorflow"],
                                            "sweep": sweep_id, "config": {"lr": lr}})
            for fw, finals in sides.items():
                w = SummaryWriter(str(run_dir / fw))
                for step, acc in ((10, finals[seed] - 0.1), (20, finals[seed])):
                    w.add_scalar("accuracy/val", acc, step)
                    w.add_scalar("loss/val", 1 - acc, step)
                w.close()
                write_json(run_dir / f"{fw}.job.json", {"framework": fw, "state": "finished", "exit_code": 0})
            pairs.append({"run": run_id, "index": len(pairs), "config": {"lr": lr}, "seed": seed})
    (root / ".sweeps" / sweep_id).mkdir(parents=True)
    write_json(root / ".sweeps" / sweep_id / "sweep.json", {
        "id": sweep_id, "created": time.time(), "grid": {"lr": list(KNOWN)}, "seeds": [0, 1, 2],
        "base": SPEC.to_dict(), "backend": "local", "owner": None, "pairs": pairs, "failed": []})
    return root, sweep_id


def test_table_and_gaps_from_real_event_files(written):
    root, sweep_id = written
    sweep = sweeps.load_sweep(root, sweep_id)
    data = {p.run_id: results.read_pair(root / p.run_id) for p in sweep.pairs}
    states = {p.run_id: runs.get_run(p.run_id, root).state for p in sweep.pairs}
    table = results.pair_table(sweep, data, states)
    assert len(table) == 6 and set(table["state"]) == {"finished"}
    assert table["TensorFlow final accuracy/val"].tolist() == pytest.approx(
        [v for lr in KNOWN for v in KNOWN[lr]["tensorflow"]], abs=1e-6)  # float32 simple_value
    assert table["PyTorch best loss/val"].tolist() == pytest.approx([1 - v for lr in KNOWN for v in KNOWN[lr]["torch"]],
                                                                   abs=1e-6)
    gaps = results.gap_table(sweep, data, "accuracy/val", states)
    assert gaps["within seed noise"].tolist() == [True, False]
    assert gaps["verdict"][0].startswith("TensorFlow's final val accuracy is 0.3 points lower than PyTorch's, "
                                         "within seed noise (95% CI -2.2..1.6 points")
    assert gaps["verdict"][1].startswith("TensorFlow's final val accuracy is 10.0 points lower than PyTorch's, "
                                         "more than seed noise explains")
    agg = results.seed_aggregates(sweep, data, "lr=0.05", "accuracy/val", "minmax")
    assert agg["tensorflow"].step.tolist() == [10, 20] and agg["tensorflow"].n.tolist() == [3, 3]
    assert agg["tensorflow"].low[1] == pytest.approx(0.70, abs=1e-6) and agg["tensorflow"].high[1] == pytest.approx(
        0.72, abs=1e-6)


def sweeps_page(root, monkeypatch, query: dict | None = None) -> AppTest:
    monkeypatch.setenv("TWINBOARD_LOGDIR", str(root))
    at = AppTest.from_file(str(ROOT / "pages" / "sweeps.py"), default_timeout=TIMEOUT)
    for k, v in (query or {}).items():
        at.query_params[k] = v
    at.run()
    assert not at.exception, at.exception
    return at


def test_sweeps_page_shows_the_table_parallel_coordinates_gaps_and_bands(written, monkeypatch):
    root, sweep_id = written
    at = sweeps_page(root, monkeypatch, {"sweep": sweep_id})
    table = at.dataframe[0].value
    assert len(table) == 6 and list(table.columns[:4]) == ["pair", "lr", "seed", "state"]
    verdicts = [m.value for m in at.markdown if "TensorFlow" in m.value]
    assert len(verdicts) == 2 and "within seed noise" in verdicts[0] and "more than seed noise" in verdicts[1]
    charts = [json.loads(c.proto.spec) for c in at.get("plotly_chart")]
    kinds = [c["data"][0]["type"] for c in charts]
    assert kinds.count("parcoords") == 1 and "scatter" in kinds
    parcoords = next(c for c in charts if c["data"][0]["type"] == "parcoords")
    assert [d["label"] for d in parcoords["data"][0]["dimensions"]][:2] == ["lr", "seed"]
    bands = [t for c in charts for t in c["data"] if t.get("fill") == "toself"]
    assert len(bands) == 4  # 2 configurations x 2 frameworks, min-max over 3 seeds
    at.selectbox(key="sweeps_tag").set_value("loss/val").run()
    assert any("val loss is 0.1 higher" in m.value.replace("\\", "") for m in at.markdown)


def test_sweeps_page_without_sweeps_says_how_to_start_one(tmp_path, monkeypatch):
    at = sweeps_page(tmp_path / "logs", monkeypatch)
    assert "twinboard sweep" in at.info[0].value


# --- the Launch page's sweep form and the CLI (stub trainer) ----------------------------------------
def _form_app():
    import streamlit as st  # noqa: F401 - AppTest runs this function as the script

    from pages.launch_sweep import sweep_form
    from twinboard.config import logdir as _logdir

    sweep_form(_logdir())


def test_the_sweep_form_previews_refuses_and_starts(logdir):
    logdir.mkdir(parents=True, exist_ok=True)
    at = AppTest.from_function(_form_app, default_timeout=TIMEOUT).run()
    at.text_area(key="sweep_grid").input("lr=0.01,0.05\nbatch_size=[x](http://evil)").run()
    assert "not a whole number" in at.caption[0].value and "\\[x\\]\\(http" in at.caption[0].value  # as text
    assert at.button(key="sweep_start").disabled
    at.text_area(key="sweep_grid").input("lr=0.01,0.05").run()
    at.text_input(key="sweep_seeds").input("3").run()
    assert "2 configurations × 1 seed = **2 pairs**" in at.caption[0].value
    at.button(key="sweep_start").click().run()
    assert not at.exception and "Started sweep" in at.success[0].value
    sweep = sweeps.load_sweep(logdir, sweeps.list_sweeps(logdir)[0])
    assert [p.seed for p in sweep.pairs] == [3, 3] and sweep.grid == {"lr": [0.01, 0.05]}
    for p in sweep.pairs:
        runs.wait(p.run_id, 60, logdir)


def test_cli_sweep_waits_and_refuses_bad_grids_in_words(logdir, capsys):
    code = cli(["--logdir", str(logdir), "sweep", "--grid", "lr=0.01,0.05", "--seeds", "0", "--steps", "3",
                "--wait", "--timeout", "60"])
    out = capsys.readouterr().out
    assert code == 0 and "2 pairs on the local backend" in out and "2 finished" in out
    assert "lr=0.01: No seed has finished on both sides yet" in out  # the stub writes no event files
    assert cli(["--logdir", str(logdir), "sweep", "--grid", "lr=fast"]) == 2
    assert "sweep refused, nothing launched: lr='fast': not a number" in capsys.readouterr().err
    with pytest.raises(SystemExit) as exit_:
        cli(["--logdir", str(logdir), "sweep", "--seed", "3"])
    assert exit_.value.code == 2 and "use --seeds" in capsys.readouterr().err


# --- hparams records, as the trainers write them -------------------------------------------------------
def test_hparams_sessions_in_both_writers_event_files(tmp_path):
    import tensorflow as tf
    from tensorboard.backend.event_processing.event_accumulator import EventAccumulator
    from tensorboard.plugins.hparams import metadata

    from trainers import hparams
    from trainers.torch_events import make_writer

    write_json(tmp_path / RUN_JSON, {"sweep": "sweep-1", "config": {"lr": 0.05}})
    spec = SPEC.replace(lr=0.05, seed=3)
    writer = make_writer(tmp_path / "torch")  # the torch trainer's own (buffered) writer
    writer.add_scalar("loss/train", 1.0, 1)
    hparams.torch_session_start(writer, spec, tmp_path)
    hparams.torch_session_end(writer, "success")
    writer.close()
    tf_writer = tf.summary.create_file_writer(str(tmp_path / "tensorflow"))
    with tf_writer.as_default():
        assert hparams.tf_session_start(spec, tmp_path) and hparams.tf_session_end("success")
    tf_writer.close()
    for fw in ("torch", "tensorflow"):
        acc = EventAccumulator(str(tmp_path / fw))
        acc.Reload()
        content = acc.PluginTagToContent(metadata.PLUGIN_NAME)
        start = metadata.parse_session_start_info_plugin_data(content[metadata.SESSION_START_INFO_TAG])
        assert start.group_name == f"sweep-1/lr=0.05/{fw}"
        assert start.hparams["lr"].number_value == 0.05 and start.hparams["seed"].number_value == 3
        assert start.hparams["framework"].string_value == fw and start.hparams["sweep"].string_value == "sweep-1"
        assert start.hparams["hidden"].string_value == "64,32"
        end = metadata.parse_session_end_info_plugin_data(content[metadata.SESSION_END_INFO_TAG])
        assert end.status == 1  # STATUS_SUCCESS


def test_nothing_here_imports_ray():
    import subprocess

    code = ("import sys, twinboard.runs, twinboard.sweeps, twinboard.sweeps.results, twinboard.sweeps.figures, "
            "twinboard.cli; assert 'ray' not in sys.modules, 'ray imported'")
    subprocess.run([sys.executable, "-c", code], check=True, cwd=ROOT)
