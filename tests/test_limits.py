"""Every RunSpec number is bounded: hard ceilings in RunSpec, the admin's limits on the dashboard's side."""
from __future__ import annotations

import dataclasses
import json
import math
import os
import subprocess
import sys
import threading
from pathlib import Path

import pytest

from twinboard.contract import (
    BUDGETS, CEILINGS, DEFAULT_LIMITS, MAX_SPEC_BYTES, LimitsError, RunSpec, SpecError, check_spec, check_values,
    field_bounds, limits_path, load_limits, save_limits)
from twinboard.contract.costs import spec_costs

ROOT = Path(__file__).resolve().parents[1]
NUMERIC = [f for f in dataclasses.fields(RunSpec) if f.type in ("int", "float") or f.type.startswith("tuple")]


def refused(logdir: Path, **changes) -> SpecError:
    """The SpecError for `changes`, from RunSpec itself (past a ceiling) or from the logdir's limits."""
    with pytest.raises(SpecError) as err:
        check_spec(RunSpec(**changes), logdir)
    return err.value


def over(f: dataclasses.Field, limit: float):
    """A value of field `f` just past `limit` (one item past it, for a tuple field)."""
    if f.type == "float":
        return limit + 0.5
    return (limit + 1,) if f.type.startswith("tuple") else limit + 1


def test_every_number_has_bounds_and_a_ceiling_at_or_above_its_default_limit():
    for f in NUMERIC:
        meta = f.metadata
        assert {"minimum", "maximum", "ceiling"} <= set(meta), f.name
        assert meta["minimum"] < meta["maximum"] <= meta["ceiling"], f.name
    for name, budget in BUDGETS.items():
        assert budget.minimum <= budget.default <= budget.ceiling, name
    RunSpec()  # the default spec sits within every default limit
    check_spec(RunSpec(), Path("/nonexistent"))


@pytest.mark.parametrize("f", NUMERIC, ids=lambda f: f.name)
def test_past_the_default_limit_is_refused_naming_the_field(tmp_path, f):
    err = refused(tmp_path, **{f.name: over(f, DEFAULT_LIMITS[f.name])})
    assert err.field == f.name and f"RunSpec.{f.name}=" in str(err), err
    if f.type != "float":  # the int limits are all whole numbers the message can quote
        assert str(DEFAULT_LIMITS[f.name]) in err.why, err


@pytest.mark.parametrize("f", NUMERIC, ids=lambda f: f.name)
def test_past_the_ceiling_runspec_itself_refuses(f):
    with pytest.raises(SpecError) as err:
        RunSpec(**{f.name: over(f, CEILINGS[f.name])})
    assert err.value.field == f.name


@pytest.mark.parametrize("changes, field", [
    ({"hidden": (10**9, 10**9)}, "hidden"), ({"epochs": 10**9}, "epochs"), ({"n_samples": 10**12}, "n_samples"),
    ({"threads": 10**6}, "threads"), ({"embedding_steps": list(range(10**6))}, "embedding_steps"),
    ({"hidden": (8,) * 33}, "hidden"), ({"seed": -1}, "seed"), ({"seed": 2**32}, "seed"),
    ({"weight_decay": float("nan")}, "weight_decay"), ({"weight_decay": float("inf")}, "weight_decay"),
    ({"hidden": (True,)}, "hidden"), ({"hidden": 64}, "hidden"),
    ({"hidden": (16384,) * 4}, "hidden"),  # each width within the ceiling, 806M parameters past it
])
def test_the_values_that_were_accepted_before_are_refused_by_runspec(changes, field):
    with pytest.raises(SpecError) as err:
        RunSpec(**changes)
    assert err.value.field == field
    assert len(str(err.value)) < 400  # a million items are not echoed back


@pytest.mark.parametrize("changes, field, budget", [
    ({"hidden": (4096, 4096)}, "hidden", "parameters"),
    ({"task": "regression", "n_samples": 10**6, "hidden": (256,)}, "n_samples", "activations"),
    ({"task": "regression", "n_samples": 10**5, "val_fraction": 0.01, "batch_size": 4096, "hidden": (1024,) * 8},
     "batch_size", "activations"),
    ({"epochs": 1000, "batch_size": 1}, "epochs", "steps"),
    ({"steps": 10**6, "log_every": 1}, "log_every", "log_points"),
    ({"steps": 10**5, "histogram_every": 1}, "histogram_every", "histograms"),
    ({"embedding_steps": list(range(1, 30)), "embedding_samples": 400, "hidden": (1024,)}, "embedding_steps",
     "embedding_values"),
    ({"hidden": (8,) * 9}, "hidden", "hidden_layers"),
    ({"embedding_steps": list(range(1, 102))}, "embedding_steps", "embedding_exports"),
])
def test_what_fields_cost_together_is_bounded_and_the_refusal_names_a_field(tmp_path, changes, field, budget):
    spec = RunSpec(**changes)  # within every ceiling: only the server's limits refuse it
    with pytest.raises(SpecError) as err:
        check_spec(spec, tmp_path)
    assert err.value.field == field and "this server's limit" in err.value.why, err.value
    limit = DEFAULT_LIMITS[budget]
    assert str(limit) in err.value.why
    if budget in spec_costs(spec):
        assert spec_costs(spec)[budget][0] > limit


def test_no_training_samples_left_is_refused():
    with pytest.raises(SpecError) as err:
        RunSpec(task="spirals", n_samples=1)
    assert err.value.field == "n_samples" and "none to train on" in err.value.why


def test_an_admin_limit_lower_than_the_default_refuses_what_the_default_accepts(tmp_path):
    strict, lenient = tmp_path / "strict", tmp_path / "lenient"
    strict.mkdir()
    spec = RunSpec(epochs=100, hidden=(512, 256))
    check_spec(spec, lenient)  # no limits file: the defaults accept it
    save_limits(strict, {"epochs": 50})
    assert json.loads(limits_path(strict).read_text()) == {"epochs": 50}
    err = refused(strict, epochs=100)
    assert err.field == "epochs" and err.why == "must be <= 50 (this server's limit)"
    save_limits(strict, {"epochs": None, "parameters": 100_000})  # None: back to the default
    assert load_limits(strict)["epochs"] == DEFAULT_LIMITS["epochs"] and load_limits(strict)["parameters"] == 100_000
    with pytest.raises(SpecError) as err:
        check_spec(spec, strict)
    assert err.value.field == "hidden" and "100000 allowed" in err.value.why
    check_spec(RunSpec(hidden=(64,)), strict)


def test_an_admin_may_raise_a_limit_up_to_the_ceiling_and_no_further(tmp_path):
    with pytest.raises(SpecError):
        check_spec(RunSpec(epochs=3000), tmp_path)
    save_limits(tmp_path, {"epochs": 5000})
    check_spec(RunSpec(epochs=3000), tmp_path)
    for changes in ({"epochs": CEILINGS["epochs"] + 1}, {"threads": 65}, {"parameters": 10**9}):
        name = next(iter(changes))
        with pytest.raises(LimitsError) as err:
            save_limits(tmp_path, changes)
        assert err.value.field == name and "ceiling" in err.value.why
    assert json.loads(limits_path(tmp_path).read_text()) == {"epochs": 5000}  # refusals changed nothing


@pytest.mark.parametrize("changes, why", [
    ({"colour": 3}, "no such limit"), ({"epochs": "100"}, "must be a number"), ({"epochs": True}, "must be a number"),
    ({"epochs": 100.0}, "whole number"), ({"lr": float("nan")}, "ceiling"), ({"epochs": 5}, "default RunSpec"),
    ({"steps": 100}, "default RunSpec"),  # the default's 10 epochs take 440 steps
])
def test_bad_limit_changes_are_refused_and_write_nothing(tmp_path, changes, why):
    with pytest.raises(LimitsError) as err:
        save_limits(tmp_path, changes)
    assert why in err.value.why
    assert not limits_path(tmp_path).exists()


@pytest.mark.parametrize("content", ['{"epochs": 10000000}', "{not json", '["epochs"]', '{"epochs": 50, "x": 1}'])
def test_an_unusable_limits_file_refuses_every_launch_naming_the_file(tmp_path, content):
    limits_path(tmp_path).parent.mkdir()
    limits_path(tmp_path).write_text(content)
    with pytest.raises(LimitsError) as err:
        check_spec(RunSpec(), tmp_path)
    assert str(limits_path(tmp_path)) in str(err.value)


def test_an_oversized_limits_file_is_refused_on_its_size(tmp_path):
    limits_path(tmp_path).parent.mkdir()
    with open(limits_path(tmp_path), "wb") as f:
        f.truncate(10 * 1024 * 1024)  # sparse: its bytes would not parse anyway
    with pytest.raises(LimitsError, match="more than a limits file may have"):
        load_limits(tmp_path)


def test_field_bounds_for_form_widgets(tmp_path):
    assert field_bounds("epochs") == (0, 1000) and field_bounds("hidden") == (1, 4096)
    assert field_bounds("lr") == (0.0, 10.0) and all(isinstance(b, float) for b in field_bounds("momentum"))
    assert field_bounds("hidden_layers") == (1, 8) and field_bounds("task") == (None, None)
    save_limits(tmp_path, {"epochs": 50, "hidden": 1024})
    assert field_bounds("epochs", tmp_path) == (0, 50) and field_bounds("hidden", tmp_path) == (1, 1024)
    assert field_bounds("epochs", limits=load_limits(tmp_path)) == (0, 50)
    with pytest.raises(ValueError, match="colour"):
        field_bounds("colour")


def test_raw_values_hear_the_servers_limit_not_the_ceiling(tmp_path):
    with pytest.raises(SpecError) as err:
        check_values({"epochs": 10**9, "lr": "fast"}, tmp_path)  # the wrong type is RunSpec's to refuse
    assert err.value.field == "epochs" and err.value.why == "must be <= 1000 (this server's limit)"
    with pytest.raises(SpecError) as err:
        check_values({"embedding_steps": list(range(10**6))}, tmp_path)
    assert err.value.why == "at most 100 values (this server's limit)"
    check_values({"epochs": 7, "hidden": ["x"], "task": "digits"}, tmp_path)


# --- the command line --------------------------------------------------------------------------------
def test_cli_launch_past_a_limit_exits_2_naming_the_flag_and_creates_no_run(tmp_path):
    env = {**os.environ, "TWINBOARD_LOGDIR": str(tmp_path)}
    p = subprocess.run([sys.executable, "-m", "twinboard", "launch", "--epochs", "1000000000"], cwd=ROOT, env=env,
                       capture_output=True, text=True, timeout=120)
    assert p.returncode == 2, p.stderr
    assert "--epochs 1000000000: must be <= 1000 (this server's limit)" in p.stderr
    save_limits(tmp_path, {"epochs": 50})
    p = subprocess.run([sys.executable, "-m", "twinboard", "--logdir", str(tmp_path), "launch", "--epochs", "60"],
                       cwd=ROOT, env=env, capture_output=True, text=True, timeout=120)
    assert p.returncode == 2 and "--epochs 60: must be <= 50" in p.stderr, p.stderr
    assert [p.name for p in tmp_path.iterdir()] == [".twinboard"]


def test_cli_help_shows_each_flags_bounds():
    p = subprocess.run([sys.executable, "-m", "twinboard", "launch", "--help"], cwd=ROOT, capture_output=True,
                       text=True, timeout=120, env={**os.environ, "COLUMNS": "400"})
    assert p.returncode == 0, p.stderr
    assert "[10; 0 to 1000]" in p.stdout and "[0.05; in (0, 10)]" in p.stdout
    assert "[(64, 32); up to 8 values, each 1 to 4096]" in p.stdout


# --- spec.json ----------------------------------------------------------------------------------------
def test_load_refuses_a_12_mb_spec_json(tmp_path):
    path = tmp_path / "spec.json"
    path.write_text(json.dumps({"embedding_steps": list(range(1_500_000))}))  # 11.9 MB, the file that was read
    assert path.stat().st_size > 11 * 1024 * 1024
    with pytest.raises(SpecError, match="more than a spec.json may have"):
        RunSpec.load(path)


def test_load_reads_no_more_than_the_cap(tmp_path):
    """A pipe has no size to check first: the writer sees the reader stop at the cap and go."""
    path = tmp_path / "spec.json"
    os.mkfifo(path)
    written = [0]

    def writer() -> None:
        chunk = b" " * 65536
        try:
            with open(path, "wb") as f:
                while written[0] < 12 * 1024 * 1024:
                    f.write(chunk)
                    written[0] += len(chunk)
        except BrokenPipeError:
            pass

    t = threading.Thread(target=writer, daemon=True)
    t.start()
    with pytest.raises(SpecError, match="more than a spec.json may have"):
        RunSpec.load(path)
    t.join(timeout=30)
    assert not t.is_alive() and written[0] < 12 * 1024 * 1024 // 4, written[0]


def test_load_turns_bad_json_into_spec_errors(tmp_path):
    path = tmp_path / "spec.json"
    for text in ("[" * 50_000, "[1, 2]", "{bad", "\xff\xfe"):
        path.write_bytes(text.encode("latin-1"))
        with pytest.raises(SpecError):
            RunSpec.load(path)
    RunSpec(hidden=(16,), embedding_steps=tuple(range(1, 101))).save(path)
    assert path.stat().st_size < MAX_SPEC_BYTES and RunSpec.load(path).embedding_steps == tuple(range(1, 101))


# --- the contract's copy of the trainers' shapes ------------------------------------------------------------
@pytest.mark.parametrize("spec", [
    RunSpec(), RunSpec(task="spirals", n_samples=101, hidden=(16, 8, 4), batch_size=7, steps=0, epochs=3),
    RunSpec(task="regression", n_samples=333, val_fraction=0.5, histogram_every=3, log_every=4),
    RunSpec(model="cnn", hidden=(32,), batch_size=50, embedding_steps=(3, 5, 5, 10**6)),
], ids=["default", "spirals", "regression", "cnn"])
def test_costs_agree_with_what_the_trainers_build(spec):
    from trainers import data
    from trainers.loop import Cadence
    from trainers import models

    ds = data.load(spec)
    plan = models.plan(spec, ds.n_features, ds.n_outputs)[1]
    layers = [p for p in plan if p.name.endswith(".weight")]
    costs = {name: amount for name, (amount, _, _) in spec_costs(spec).items()}
    assert costs["parameters"] == sum(math.prod(p.shape) for p in plan if p.trainable)
    cadence = Cadence.from_spec(spec, len(ds.x_train))
    assert costs["steps"] == cadence.total_steps
    steps = range(1, cadence.total_steps + 1)
    assert costs["log_points"] >= sum(map(cadence.is_log, steps))
    assert costs["histograms"] >= 4 * len(layers) * sum(map(cadence.is_histogram, steps))
    exports = sum(map(cadence.is_embedding, steps))
    emb_rows = len(data.embedding_indices(spec, ds))
    assert costs["embedding_values"] == exports * emb_rows * (spec.hidden[-1] + ds.n_outputs)
    assert costs["activations"] >= len(ds.x_val) * (sum(p.shape[0] for p in layers))


def test_the_launcher_refuses_a_spec_past_this_servers_limits(logdir):
    """The form, the CLI and any other caller go through runs.launch: it checks the admin's limits
    before a run folder exists."""
    from twinboard import runs

    logdir.mkdir(parents=True, exist_ok=True)
    save_limits(logdir, {"epochs": 20})
    out = runs.launch(RunSpec(epochs=21), logdir, name="too-long")
    assert isinstance(out, runs.Failed) and "epochs" in out.stderr and "limit" in out.stderr, out
    assert not (logdir / "too-long").exists() and runs.list_runs(logdir) == []
    assert isinstance(runs.launch(RunSpec(epochs=20, steps=2), logdir, name="fits"), runs.Launched)
