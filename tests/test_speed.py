"""twinboard.speed on a face-off written by the real writer: tensorboardX in a subprocess (this process
never loads a framework) writes each side's scalars, and each folder gets the settings.json and the
run.json a face-off's trainers and launcher write. Every number is chosen so the expected table
cells, break-even counts and differences can be written down by hand (float32 holds k/64 exactly).
"""
from __future__ import annotations

import json
import math
import subprocess
import sys
from pathlib import Path

import numpy as np
import pytest

from twinboard import parity, speed
from twinboard.scalars import FRAMEWORK_COLORS

ROOT = Path(__file__).resolve().parents[1]
GROUP, OLDER = "faceoff-20260401-100000", "faceoff-20260301-090000"
STEPS = 500
PERF_STEPS = [100, 200, 300, 400, 500]  # step 1 is timed apart (perf/first_step_s), as the trainers do
LEGACY_PERF_STEPS = [1, *PERF_STEPS]  # older trainers: the first point at step 1 holds the first step


def loss(step: int, framework: str) -> float:
    return 8.0 - step / 64.0 + (0.5 if framework == "tensorflow" else 0.0)  # exact in float32


# (run suffix, framework) -> what that side records. `steps`: perf/step_ms after the first point.
SIDES = {
    ("eager-eager", "torch"): dict(first=0.05, imp=2.5, steps=[1.0, 1.25, 0.75, 1.0, 1.5], rss=[300, 320, 310]),
    ("eager-function", "torch"): dict(first=0.0625, imp=2.25, steps=[1.0, 1.0, 1.25, 1.25, 1.5], rss=[301, 302]),
    ("compile-xla", "torch"): dict(first=20.0, imp=2.5, steps=[0.5, 0.5, 0.75, 0.25, 0.5], rss=[400, 650, 640],
                                   loss_shift=2.0 ** -18),  # within float32's tolerance: agrees
    ("eager-eager", "tensorflow"): dict(first=0.5, imp=6.0, steps=[4.0, 4.0, 4.5, 3.5, 4.0], rss=[500, 520]),
    ("eager-function", "tensorflow"): dict(first=2.0, imp=6.0, steps=[1.0, 1.0, 1.0, 1.0, 1.0], rss=[510, 530]),
    # XLA: settings.json without import_s / first_step_s (read from the step-1 scalars instead), slower
    # steps than eager (never pays off), and a loss that parts from eager's after step 250.
    ("compile-xla", "tensorflow"): dict(first=5.0, imp=7.0, steps=[5.0] * 5, rss=[600, 700], parts_after=250,
                                        in_settings=False),
}

WRITER = r'''
import json, sys
from tensorboardX import SummaryWriter
for folder, side in json.loads(sys.argv[1]).items():
    w = SummaryWriter(folder)
    legacy = side.get("legacy", False)
    if not legacy:
        w.add_scalar("perf/import_s", side["imp"], 1)
        w.add_scalar("perf/first_step_s", side["first"], 1)
    step_ms = [side["first"] * 1e3] * legacy + side["steps"]
    for step, ms in zip(side["perf_steps"], step_ms):
        w.add_scalar("perf/step_ms", ms, step)
        w.add_scalar("perf/samples_per_s", 32 / (ms / 1e3), step)
    for i, mb in enumerate(side["rss"]):
        w.add_scalar("perf/rss_mb", mb, 1 + 100 * i)
    for step, value in side["loss"]:
        w.add_scalar("loss/train", value, step)
    w.add_scalar("loss/val", side["loss"][-1][1] + 0.125, side["loss"][-1][0])
    w.add_scalar("accuracy/val", 0.75, side["loss"][-1][0])
    w.close()
'''


def write_faceoff(root: Path, group: str, created: float, sides: dict) -> None:
    script = root.parent / "write_speed_events.py"
    script.write_text(WRITER)
    payload = {}
    for (suffix, fw), side in sides.items():
        run_dir = root / f"{group}-{suffix}"
        torch_mode, tf_mode = suffix.split("-")
        mode = torch_mode if fw == "torch" else tf_mode
        (run_dir / fw).mkdir(parents=True, exist_ok=True)
        (run_dir / "run.json").write_text(json.dumps({"id": run_dir.name, "created": created, "group": group,
                                                       "spec": {"torch_mode": torch_mode, "tf_mode": tf_mode}}))
        (run_dir / "spec.json").write_text(json.dumps({"torch_mode": torch_mode, "tf_mode": tf_mode, "steps": STEPS}))
        settings = {"execution_mode": mode, "requested_mode": mode, "mode_note": None, "total_steps": STEPS}
        if side.get("in_settings", True) and not side.get("legacy"):
            settings.update(import_s=side["imp"], first_step_s=side["first"])
        (run_dir / fw / "settings.json").write_text(json.dumps(settings))
        parted = side.get("parts_after")
        payload[str(run_dir / fw)] = {
            **side, "perf_steps": LEGACY_PERF_STEPS if side.get("legacy") else PERF_STEPS,
            "loss": [(s, loss(s, fw) + side.get("loss_shift", 0.0) + (0.25 if parted and s > parted else 0.0))
                     for s in range(10, STEPS + 1, 10)]}
    out = subprocess.run([sys.executable, str(script), json.dumps(payload)], cwd=ROOT, capture_output=True,
                         text=True, timeout=300)
    assert out.returncode == 0, out.stderr[-3000:]


@pytest.fixture(scope="module")
def logdir(tmp_path_factory) -> Path:
    root = tmp_path_factory.mktemp("speed") / "logs"
    root.mkdir()
    write_faceoff(root, GROUP, 2000.0, SIDES)
    # An older face-off, from trainers that did not time the first step apart.
    write_faceoff(root, OLDER, 1000.0, {k: {**v, "legacy": True} for k, v in SIDES.items() if k[0] == "eager-eager"})
    (root / "plain-run" / "torch").mkdir(parents=True)  # a run of no face-off: listed in no group
    (root / "plain-run" / "run.json").write_text(json.dumps({"id": "plain-run", "created": 3000.0}))
    return root


@pytest.fixture(scope="module")
def measured(logdir) -> list[speed.ModeRun]:
    return speed.read_runs(speed.group_folders(logdir, GROUP))


@pytest.fixture(scope="module")
def table(measured):
    return speed.speed_table(measured).set_index("label")


def test_groups_come_from_run_json_newest_first(logdir):
    groups = speed.faceoff_groups(logdir)
    assert list(groups) == [GROUP, OLDER]
    assert groups[GROUP] == sorted(f"{GROUP}-{s}" for s in ("eager-eager", "eager-function", "compile-xla"))
    assert groups[OLDER] == [f"{OLDER}-eager-eager"]
    assert [(r.framework, r.mode) for r in speed.read_runs(speed.group_folders(logdir, OLDER))] == [
        ("torch", "eager"), ("tensorflow", "eager")]


def test_rows_are_ordered_by_framework_then_mode_and_twins_named_by_run(table):
    assert list(table.index) == [
        "PyTorch eager #1", "PyTorch eager #2", "PyTorch torch.compile",
        "TensorFlow eager", "TensorFlow tf.function", "TensorFlow XLA (jit_compile)"]
    assert list(table["run"][:2]) == [f"{GROUP}-eager-eager", f"{GROUP}-eager-function"]
    assert list(table["ran as"]) == ["eager", "eager", "compile", "eager", "function", "xla"]


def test_times_memory_and_finals_are_the_recorded_numbers(table):
    eager = table.loc["PyTorch eager #1"]
    assert eager["import s"] == 2.5 and eager["first step s"] == 0.05
    assert eager["step ms p50"] == 1.0
    assert eager["step ms p95"] == pytest.approx(np.percentile([1.0, 1.25, 0.75, 1.0, 1.5], 95)) == 1.45
    assert eager["samples/s p50"] == pytest.approx(32_000, rel=1e-6)
    assert eager["peak RSS MB"] == 320 and eager["perf points"] == 5
    assert eager["final train loss"] == loss(STEPS, "torch") and eager["val loss"] == loss(STEPS, "torch") + 0.125
    assert eager["val accuracy"] == 0.75
    assert table.loc["PyTorch torch.compile", "peak RSS MB"] == 650
    xla = table.loc["TensorFlow XLA (jit_compile)"]  # no times in its settings.json: the step-1 scalars
    assert xla["first step s"] == 5.0 and xla["import s"] == 7.0


def test_loss_against_the_eager_run_of_the_same_framework(table):
    assert table.loc["PyTorch eager #1", "loss agrees"] == speed.REFERENCE
    twin = table.loc["PyTorch eager #2"]
    assert twin["loss max rel diff vs eager"] == 0.0 and twin["loss agrees"].startswith("yes")
    compiled = table.loc["PyTorch torch.compile"]
    smallest = loss(STEPS, "torch")
    assert compiled["loss max rel diff vs eager"] == pytest.approx(2.0 ** -18 / (smallest + 2.0 ** -18), rel=1e-6)
    assert compiled["loss agrees"] == "yes (within rtol 1e-05, atol 1e-05)"
    xla = table.loc["TensorFlow XLA (jit_compile)"]
    assert xla["loss agrees"] == "parts at step 260"
    assert xla["loss max rel diff vs eager"] == pytest.approx(0.25 / (loss(STEPS, "tensorflow") + 0.25))


@pytest.mark.parametrize("first_c, first_e, step_c, step_e, steps", [
    (20.0, 0.05, 0.5, 1.0, 39_900),  # 19.95 s / 0.5 ms saved a step
    (2.0, 0.5, 1.0, 4.0, 500),
    (5.0, 0.5, 5.0, 4.0, math.inf),  # slower steps: never
    (0.4, 0.5, 1.0, 4.0, 0),  # no dearer first step and faster steps: ahead from the start
    (math.nan, 0.5, 1.0, 4.0, math.nan),
])
def test_break_even(first_c, first_e, step_c, step_e, steps):
    got = speed.break_even(first_c, first_e, step_c, step_e)
    assert got == steps or (math.isnan(steps) and math.isnan(got))


def test_a_line_per_framework_says_what_compiling_cost_and_whether_the_loss_agrees(measured, table):
    lines = dict(speed.framework_lines(measured, speed.speed_table(measured)))
    assert set(lines) == {"torch", "tensorflow"}
    torch = lines["torch"]
    assert "torch.compile: compiling took 19.9 s (first step 20 s against 0.05 s eager)" in torch
    assert "it would pay for itself after 39,900 steps (p50 0.5 ms against 1 ms), and this run had only 500" in torch
    assert "its loss matches eager's (within rtol 1e-05, atol 1e-05; largest relative difference 2e-05)" in torch
    assert "its loss is identical to eager's at every step" in torch  # the second eager run
    assert f"PyTorch eager #2 ({GROUP}-eager-function) stepped at p50 1.25 ms against 1 ms for #1" in torch
    tf = lines["tensorflow"]
    assert "tf.function: compiling took 1.5 s (first step 2 s against 0.5 s eager) and paid for itself after " \
           "500 steps (p50 1 ms against 4 ms; this run had 500)" in tf
    assert "XLA (jit_compile): compiling took 4.5 s" in tf and "never paid for itself: its steps are not faster" in tf
    assert "it parts at step 260, by up to 26.67% (relative)" in tf


def test_figures_show_the_table_in_the_framework_colours(measured, table):
    t = speed.speed_table(measured)
    first = speed.first_step_figure(t)
    assert first.layout.yaxis.type == "log"
    by_name = {bar.name: bar for bar in first.data}
    assert by_name["PyTorch"].marker.color == FRAMEWORK_COLORS["torch"]
    assert by_name["TensorFlow"].marker.color == FRAMEWORK_COLORS["tensorflow"]
    assert list(by_name["PyTorch"].y) == [0.05, 0.0625, 20.0]
    assert list(by_name["TensorFlow"].marker.pattern.shape) == ["", "/", "x"]
    steps = {bar.name: bar for bar in speed.step_time_figure(t).data}
    assert list(steps["PyTorch"].y) == [1.0, 1.25, 0.5]
    assert list(steps["PyTorch"].error_y.array) == pytest.approx([0.45, 0.2, 0.2])  # p95 - p50
    assert list(steps["PyTorch"].error_y.arrayminus) == [0.0, 0.0, 0.0]
    assert speed.step_time_figure(t).layout.yaxis.type == "linear"  # 0.5 to 5 ms: a linear axis reads well
    assert speed.charts.wide([1.0, 512.0]) and not speed.charts.wide([0.5, 5.0, None, math.nan])
    memory = {bar.name: bar for bar in speed.memory_figure(t).data}
    assert list(memory["TensorFlow"].y) == [520, 530, 700]
    boxes = [tr for tr in speed.step_box_figure(measured).data if tr.type == "box"]
    assert [list(b.y) for b in boxes] == [side["steps"] for side in SIDES_IN_ORDER]
    assert [b.marker.color for b in boxes] == [FRAMEWORK_COLORS[fw] for _, fw in ORDER]


ORDER = [("eager-eager", "torch"), ("eager-function", "torch"), ("compile-xla", "torch"),
         ("eager-eager", "tensorflow"), ("eager-function", "tensorflow"), ("compile-xla", "tensorflow")]
SIDES_IN_ORDER = [SIDES[k] for k in ORDER]


def test_an_older_runs_first_point_holds_its_first_step_and_is_left_out(logdir):
    older = speed.read_runs(speed.group_folders(logdir, OLDER))
    assert list(older[0].scalars["perf/step_ms"].value) == [50.0, 1.0, 1.25, 0.75, 1.0, 1.5]
    assert list(speed.steady(older[0])) == [1.0, 1.25, 0.75, 1.0, 1.5]
    row = speed.speed_table(older).iloc[0]
    assert math.isnan(row["first step s"]) and row["step ms p50"] == 1.0 and row["perf points"] == 5


def test_the_faceoff_pairs_cover_every_mode_the_spec_accepts():
    from twinboard.contract import RunSpec
    from twinboard.contract.spec import TF_MODES, TORCH_MODES

    assert {t for t, _ in speed.FACEOFF_PAIRS} == set(TORCH_MODES) == set(speed.TORCH_MODES)
    assert {f for _, f in speed.FACEOFF_PAIRS} == set(TF_MODES) == set(speed.TF_MODES)
    assert (RunSpec().torch_mode, RunSpec().tf_mode) in speed.FACEOFF_PAIRS  # the default pair is one of them
    assert speed.MODE_FIELDS == {"torch": "torch_mode", "tensorflow": "tf_mode"}


def test_a_run_that_fell_back_says_so_and_a_missing_measure_is_nan(tmp_path):
    folder = tmp_path / "r" / "torch"
    folder.mkdir(parents=True)
    (folder / "settings.json").write_text(json.dumps({
        "execution_mode": "eager (torch.compile unavailable: no C compiler)", "requested_mode": "compile",
        "mode_note": "fell back to eager"}))
    run = speed.read_mode_run(folder, "r/torch", "torch")
    assert (run.mode, run.ran, run.fell_back, run.note) == ("compile", "eager", True, "fell back to eager")
    row = speed.speed_table([run]).iloc[0]
    assert math.isnan(row["step ms p50"]) and math.isnan(row["first step s"]) and row["perf points"] == 0
    assert row["loss agrees"] == "no eager run"
    assert dict(speed.framework_lines([run], speed.speed_table([run]))) == {
        "torch": "No eager PyTorch run to compare its modes with."}


def test_older_runs_modes_come_from_their_execution_words():
    assert speed.mode_of("tensorflow", "tf.function (graph, jit_compile=False)") == "function"
    assert speed.mode_of("tensorflow", "tf.function (graph, jit_compile=True)") == "xla"
    assert speed.mode_of("torch", "eager") == "eager" and speed.mode_of("torch", "torch.compile (inductor)") == "compile"
    assert speed.mode_of("tensorflow", "something else") is None


def test_a_damaged_settings_file_is_a_problem_not_a_crash(tmp_path):
    folder = tmp_path / "r" / "tensorflow"
    folder.mkdir(parents=True)
    (folder / "settings.json").write_text("[1, 2")
    run = speed.read_mode_run(folder, "r/tensorflow", "tensorflow")
    assert run.mode == "unknown" and run.problems and "not valid JSON" in run.problems[0]


def test_run_names_in_figures_are_text(tmp_path):
    hostile = speed.ModeRun(None, "unknown", None, None, None, "<b>x</b>%{y}", "<b>x</b>%{y}")
    t = speed.speed_table([hostile])
    bar = speed.first_step_figure(t).data[0]
    assert list(bar.x) == ["&lt;b&gt;x&lt;/b&gt;&#37;{y}"]
    assert speed.step_box_figure([hostile]).data[0].name == "&lt;b&gt;x&lt;/b&gt;&#37;{y}"


def test_text_report_has_a_row_a_run(measured):
    text = speed.table_text(speed.speed_table(measured))
    rows = text.splitlines()
    assert len(rows) == 7 and rows[0].startswith("label") and "first step s" in rows[0]
    assert rows[3].startswith("PyTorch torch.compile") and " 20 " in rows[3]
    assert parity.FP64_TAG == speed.measures.FP64_TAG
