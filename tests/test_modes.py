"""Execution modes of the train step (RunSpec.torch_mode, tf_mode), as real trainer processes.

One module-scoped fixture trains one tiny float64 SGD spec in every mode: one torch process runs
eager then compile (the file's ONE torch.compile: ~20 s with a cold inductor cache, a few seconds
from its on-disk cache), beside one TensorFlow process running function, eager and xla. What the
modes cost is read back from settings.json and the event files; the float64 loss of every step
says whether a mode changed the arithmetic (measured over 200 steps, by hand: torch compile vs
eager 1.6e-15, TF xla vs function 1.7e-15, TF eager vs function 0.0: the same bits).
"""
from __future__ import annotations

import argparse
import json
import os
import shutil
import subprocess
import sys
from pathlib import Path

import numpy as np
import pytest

import twinboard
from trainers import timing
from trainers.settings import SETTINGS_KEYS
from twinboard import runs as runs_api
from twinboard.cli import add_spec_arguments
from twinboard.contract import RunSpec, SpecError

ROOT = Path(__file__).resolve().parents[1]
MODULES = {"torch": "trainers.torch_trainer", "tensorflow": "trainers.tf_trainer"}
MODES = {"torch": ("eager", "compile"), "tensorflow": ("function", "eager", "xla")}
FIELD = {"torch": "torch_mode", "tensorflow": "tf_mode"}
STEPS = 30
SPEC = RunSpec(task="digits", model="mlp", hidden=(16,), steps=STEPS, epochs=1, log_every=1, dtype="float64",
               optimizer="sgd", embedding_samples=8)
# What each mode's note must name: the mechanism that really ran.
NOTE_WORDS = {("torch", "eager"): "eager PyTorch", ("torch", "compile"): "torch.compile",
              ("tensorflow", "function"): "tf.function", ("tensorflow", "eager"): "without tf.function",
              ("tensorflow", "xla"): "jit_compile=True"}
# float64 per-step loss: a compiler may fuse or reorder ops (ulp-level, as two frameworks do), the
# Parity page's float64 tolerance is 1e-10; eager and tf.function run the same kernels.
REL_COMPILED = 1e-10
REL_SAME_KERNELS = 1e-12


def _launch(root: Path, fw: str, env: dict | None = None) -> subprocess.Popen:
    """One process running the trainer's main() over every mode of `fw`, in MODES' order."""
    argv = []
    for mode in MODES[fw]:
        run_dir = root / f"{fw}-{mode}"
        run_dir.mkdir()
        SPEC.replace(**{FIELD[fw]: mode}).save(run_dir / "spec.json")
        argv.append([str(run_dir / "spec.json")])
    code = f"import sys, json; from {MODULES[fw]} import main; sys.exit(max([main(a) for a in json.loads(sys.argv[1])]))"
    return subprocess.Popen([sys.executable, "-c", code, json.dumps(argv)], cwd=ROOT, env=env,
                            stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True)


@pytest.fixture(scope="module")
def trained(tmp_path_factory) -> dict[tuple[str, str], Path]:
    root = tmp_path_factory.mktemp("modes")
    procs = [_launch(root, fw) for fw in MODULES]
    for p in procs:
        _, err = p.communicate(timeout=400)
        assert p.returncode == 0, f"exited {p.returncode}:\n{err[-4000:]}"
    return {(fw, mode): root / f"{fw}-{mode}" / fw for fw in MODULES for mode in MODES[fw]}


def _settings(folder: Path) -> dict:
    return json.loads((folder / "settings.json").read_text())


def _fp64_loss(folder: Path) -> np.ndarray:
    frame = twinboard.read_scalars(folder)
    loss = frame[frame.tag == "loss/train_fp64"].sort_values("step")
    assert loss.step.tolist() == list(range(1, STEPS + 1)), folder
    return loss.value.to_numpy(np.float64)


def _max_rel(a: np.ndarray, b: np.ndarray) -> float:
    return float(np.max(np.abs(a - b) / np.abs(a)))


# --- what ran, and what it cost -----------------------------------------------------------------------
@pytest.mark.parametrize("fw, mode", [(fw, m) for fw in MODES for m in MODES[fw]])
def test_settings_name_the_mode_that_ran_and_its_costs(trained, fw, mode):
    s = _settings(trained[fw, mode])
    assert list(s) == list(SETTINGS_KEYS)
    assert s["execution_mode"] == s["requested_mode"] == mode
    assert NOTE_WORDS[fw, mode] in s["mode_note"], s["mode_note"]
    # The import is seconds (torch ~2-3 s, TensorFlow ~4-6 s on the 2-core machine); the first step
    # ends after it, with the model built and the step traced or compiled.
    assert 0.2 < s["import_s"] < 120 and 0 < s["first_step_s"] < 300, s


def test_compile_pays_on_the_first_step_and_says_where_its_code_came_from(trained):
    eager, compiled = _settings(trained["torch", "eager"]), _settings(trained["torch", "compile"])
    # Inductor's first call traces and builds C++ kernels (or loads them: ~2.5 s warm, ~20 s cold);
    # an eager first step is ~0.2 s.
    assert compiled["first_step_s"] > eager["first_step_s"] + 1.0, (compiled, eager)
    assert "C++ compiler" in compiled["mode_note"] and "inductor FX graph cache" in compiled["mode_note"]
    hits_misses = [int(w) for w in compiled["mode_note"].split("inductor FX graph cache")[1].split(";")[0].split()
                   if w.isdigit()]
    assert sum(hits_misses) >= 1, compiled["mode_note"]  # inductor really produced the forward's code


@pytest.mark.parametrize("fw, mode", [(fw, m) for fw in MODES for m in MODES[fw]])
def test_perf_scalars_in_the_event_files(trained, fw, mode):
    s = _settings(trained[fw, mode])
    frame = twinboard.read_scalars(trained[fw, mode])
    tags = set(frame.tag)
    assert {"perf/rss_mb", "perf/import_s", "perf/first_step_s", "perf/step_ms", "perf/samples_per_s"} <= tags
    for tag, key in (("perf/import_s", "import_s"), ("perf/first_step_s", "first_step_s")):
        rows = frame[frame.tag == tag]
        assert rows.step.tolist() == [1], (tag, rows)  # once, at step 1
        assert rows.value.iloc[0] == pytest.approx(s[key], abs=2e-3), tag  # settings.json rounds to ms
    rss = frame[frame.tag == "perf/rss_mb"].sort_values("step")
    # Peak memory of a process holding its framework: hundreds of MB, and a peak never falls.
    assert (rss.value > 100).all() and (np.diff(rss.value.to_numpy()) >= 0).all(), rss
    assert rss.step.tolist() == frame[frame.tag == "perf/step_ms"].sort_values("step").step.tolist()
    assert (frame[frame.tag == "perf/step_ms"].value > 0).all()


# --- the arithmetic is the same -------------------------------------------------------------------------
@pytest.mark.parametrize("fw, base, other, bound", [
    ("torch", "eager", "compile", REL_COMPILED),
    ("tensorflow", "function", "xla", REL_COMPILED),
    ("tensorflow", "function", "eager", REL_SAME_KERNELS),
])
def test_float64_loss_per_step_agrees_across_modes(trained, fw, base, other, bound):
    a, b = _fp64_loss(trained[fw, base]), _fp64_loss(trained[fw, other])
    assert a[-1] < a[0] * 0.9, a  # it trained: the comparison is over a moving loss
    rel = _max_rel(a, b)
    print(f"{fw} {other} vs {base}: max relative float64 loss difference over {STEPS} steps {rel:.3g}")
    assert rel < bound, rel


def test_modes_keep_the_two_frameworks_matched(trained):
    """Shared init, same batches: the compiled modes still agree with the other framework at the floor."""
    rel = _max_rel(_fp64_loss(trained["torch", "compile"]), _fp64_loss(trained["tensorflow", "xla"]))
    assert rel < REL_COMPILED, rel


# --- refused, or failing with the mode named ---------------------------------------------------------
@pytest.mark.parametrize("field, bad", [("torch_mode", "jit"), ("tf_mode", "graph"), ("tf_mode", "XLA")])
def test_an_unknown_mode_is_refused_naming_the_field(field, bad):
    with pytest.raises(SpecError) as err:
        RunSpec(**{field: bad})
    assert err.value.field == field and f"RunSpec.{field}={bad!r}" in str(err.value), err.value
    with pytest.raises(SpecError) as err:  # spec.json, as a trainer reads it
        RunSpec.from_json(json.dumps({**RunSpec().to_dict(), field: bad}))
    assert err.value.field == field


def test_modes_reach_the_cli_and_the_form():
    parser = argparse.ArgumentParser()
    add_spec_arguments(parser)
    args = vars(parser.parse_args(["--torch-mode", "compile", "--tf-mode", "xla"]))
    assert args["spec.torch_mode"] == "compile" and args["spec.tf_mode"] == "xla"
    for field, choices in (("torch_mode", ("eager", "compile")), ("tf_mode", ("function", "eager", "xla"))):
        assert runs_api.field_kind(field) == "choice" and tuple(runs_api.FORM_CHOICES[field]) == choices
        assert field in runs_api.advanced_fields()
        assert runs_api.FORM_CHOICES[field][0] == getattr(RunSpec(), field)  # the default comes first


def _fake_compiler(path: Path) -> str:
    """A C++ compiler that answers inductor's version check (the real g++ does) and compiles nothing:
    what a machine without Python's headers, or with a broken toolchain, does at step 1."""
    real = shutil.which("g++") or shutil.which("c++")
    assert real, "no C++ compiler on PATH: torch.compile cannot run on this machine"
    path.write_text(f'#!/bin/sh\nfor a in "$@"; do case "$a" in --version|-v|-dumpversion|-dumpfullversion|-E) '
                    f'exec {real} "$@";; esac; done\necho "fake compiler: builds nothing" >&2\nexit 1\n')
    path.chmod(0o755)
    return str(path)


def test_a_compile_mode_that_cannot_run_fails_naming_the_mode(tmp_path):
    """Two honest ways torch.compile cannot run: CXX names no compiler (found before the model is
    built), and a compiler that passes the check but fails on inductor's code (found at step 1).
    A fresh inductor cache each: a cached kernel would need no compiler."""
    cases = {"missing": "/nonexistent/bin/g++", "broken": _fake_compiler(tmp_path / "fake-g++")}
    procs = {}
    for name, cxx in cases.items():
        run_dir = tmp_path / name
        run_dir.mkdir()
        SPEC.replace(steps=3, torch_mode="compile").save(run_dir / "spec.json")
        env = dict(os.environ, CXX=cxx, TORCHINDUCTOR_CACHE_DIR=str(tmp_path / f"inductor-{name}"))
        if name == "missing":
            env["CC"] = "/nonexistent/bin/gcc"
        procs[name] = subprocess.Popen([sys.executable, "-m", MODULES["torch"], str(run_dir / "spec.json")],
                                       cwd=ROOT, env=env, stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True)
    for name, p in procs.items():
        _, err = p.communicate(timeout=300)
        first = err.strip().splitlines()[0]
        assert p.returncode == 1, (name, err[-3000:])
        assert first.startswith("torch trainer failed: ModeError: torch_mode=compile (torch.compile"), first
        assert "cannot run here" in first and ("C++ compiler" in first if name == "missing" else
                                                "fake compiler: builds nothing" in first), first
        status = json.loads((tmp_path / name / "torch" / "status.json").read_text())
        assert status["state"] == "failed" and "torch_mode=compile" in status["error"], status
        settings = tmp_path / name / "torch" / "settings.json"
        if name == "missing":  # refused before anything claims the mode ran
            assert not settings.exists() and status["step"] == 0
        else:  # the first compiled call is step 1: it never ended
            assert _settings(tmp_path / name / "torch")["first_step_s"] is None


# --- the pieces, in process ---------------------------------------------------------------------------
def test_mode_failure_names_the_mode_and_keeps_both_ends_of_a_long_error():
    long = RuntimeError("Command: g++ " + "-O3 " * 400 + "\nOutput: Python.h: No such file or directory")
    err = timing.mode_failure("tf_mode", "xla", "tf.function(jit_compile=True), XLA", long)
    text = str(err)
    assert text.startswith("tf_mode=xla (tf.function(jit_compile=True), XLA) cannot run here: RuntimeError: Command")
    assert text.endswith("Python.h: No such file or directory") and len(text) < timing.MAX_ERROR_CHARS + 200
    with pytest.raises(timing.ModeError, match=r"^torch_mode=compile .*ZeroDivisionError") as caught:
        timing.first_call("torch_mode", "compile", "torch.compile", lambda: 1 / 0)
    assert isinstance(caught.value.__cause__, ZeroDivisionError)  # the compiler's own error, chained
    assert timing.first_call("tf_mode", "xla", "XLA", lambda: 42) == 42


def test_process_age_and_peak_memory_are_read():
    age = timing.process_age_s()
    assert age is not None and 0 < age < 24 * 3600  # this pytest process started minutes ago at most
    assert 10 < timing.peak_rss_mb() < 64 * 1024
