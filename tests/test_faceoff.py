"""`twinboard faceoff`: one spec launched as the three pairs that cover every execution mode, through
the real launcher and queue, grouped; the trainers are tests/stub_trainer.py (the `logdir` fixture)."""
from __future__ import annotations

import json

import pytest

from twinboard import cli, runs, speed
from twinboard.contract import RunSpec

PAIRS = {("eager", "eager"), ("eager", "function"), ("compile", "xla")}


def read(path) -> dict:
    return json.loads(path.read_text())


def test_faceoff_launches_three_grouped_pairs_covering_every_mode(logdir, capsys):
    assert cli.main(["faceoff", "--steps", "3", "--seed", "7", "--lr", "0.01", "--wait", "--timeout", "120"]) == 0
    out = capsys.readouterr().out.splitlines()
    group = out[0].removeprefix("face-off ").removesuffix(":")
    assert group.startswith("faceoff-")
    launched = runs.list_runs(logdir)
    assert len(launched) == 3 and all(r.state == "finished" for r in launched)
    assert out[1:4] == [str(logdir / speed.run_name(group, t, f)) for t, f in speed.FACEOFF_PAIRS]
    modes = set()
    for run in launched:
        spec = RunSpec.load(run.run_dir / "spec.json")
        modes.add((spec.torch_mode, spec.tf_mode))
        assert run.run_id == f"{group}-{spec.torch_mode}-{spec.tf_mode}"
        assert (spec.steps, spec.seed, spec.lr) == (3, 7, 0.01)  # the rest of the spec is the one given
        assert read(run.run_dir / "run.json")["group"] == group
    assert modes == PAIRS
    assert {t for t, _ in modes} == {"eager", "compile"} and {f for _, f in modes} == {"eager", "function", "xla"}
    in_order = [speed.run_name(group, t, f) for t, f in speed.FACEOFF_PAIRS]  # launched, and queued, in this order
    assert speed.faceoff_groups(logdir) == {group: in_order}
    # progress per pair, each framework's outcome, then the table: a row per framework and mode
    for run in launched:
        assert f"{run.run_id}:" in out
        assert f"{run.run_id} torch: finished" in out and f"{run.run_id} tensorflow: finished" in out
    header = next(i for i, line in enumerate(out) if line.startswith("label"))
    rows = [line.split("  ")[0] for line in out[header + 1:header + 7]]
    assert rows == ["PyTorch eager #1", "PyTorch eager #2", "PyTorch torch.compile", "TensorFlow eager",
                    "TensorFlow tf.function", "TensorFlow XLA (jit_compile)"]
    # the stub records no timings: every measure says so rather than showing a number
    assert "torch.compile: not measured yet" in "\n".join(out)


def test_a_mode_flag_is_refused_since_a_faceoff_runs_every_mode(logdir, capsys):
    with pytest.raises(SystemExit) as exit_:
        cli.main(["faceoff", "--steps", "3", "--torch-mode", "compile"])
    assert exit_.value.code == 2
    assert "--torch-mode: a face-off runs every mode" in capsys.readouterr().err
    assert not runs.list_runs(logdir)


def test_a_bad_spec_value_is_named_by_its_flag_and_launches_nothing(logdir, capsys):
    with pytest.raises(SystemExit) as exit_:
        cli.main(["faceoff", "--lr", "20"])
    assert exit_.value.code == 2
    assert "--lr 20.0: must be in (0, 10)" in capsys.readouterr().err
    assert not runs.list_runs(logdir)


def test_two_faceoffs_get_two_groups(logdir, capsys):
    assert cli.main(["faceoff", "--steps", "2"]) == 0
    assert cli.main(["faceoff", "--steps", "2"]) == 0  # most likely in the same second: the group gets -2
    groups = speed.faceoff_groups(logdir)
    assert len(groups) == 2 and all(len(ids) == 3 for ids in groups.values())
    assert len({run_id for ids in groups.values() for run_id in ids}) == 6


def test_a_refused_pair_is_named_and_the_exit_status_says_so(logdir, capsys, monkeypatch):
    monkeypatch.setenv("STUB_MODE", "gate")  # the first pair holds the slots: the others wait
    monkeypatch.setenv("TWINBOARD_MAX_QUEUED", "1")
    assert cli.main(["faceoff", "--steps", "3"]) == 1
    captured = capsys.readouterr()
    group = captured.out.splitlines()[0].removeprefix("face-off ").removesuffix(":")
    refused = [line for line in captured.err.splitlines() if "launch failed" in line]
    assert refused and all("the queue is full" in line for line in refused)
    launched = runs.list_runs(logdir)
    assert 1 <= len(launched) == 3 - len(refused)
    assert all(read(r.run_dir / "run.json")["group"] == group for r in launched)
    names = {speed.run_name(group, t, f) for t, f in speed.FACEOFF_PAIRS}
    assert {r.run_id for r in launched} | {line.split(": ")[1] for line in refused} == names
