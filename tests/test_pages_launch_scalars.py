"""AppTest smoke and behaviour tests for the Launch and Scalars pages, on real files and processes.

Launch: the form on an empty logdir, a bad value named in an error, and real runs started through
the form (tests/stub_trainer.py stands in for both trainers) whose states the list shows.
Scalars: event files written by the real writers, tensorboardX (torch side) and tf.summary
(tensorflow side), in one subprocess per session so this process never loads a framework.
"""
from __future__ import annotations

import base64
import json
import subprocess
import sys
import time
from pathlib import Path

import numpy as np
import pytest
from streamlit.testing.v1 import AppTest

from twinboard import runs
from pages.common import CHOICE_KEY, PICKED_KEY
from twinboard.contract import RunSpec, frame
from twinboard.text import md

ROOT = Path(__file__).resolve().parents[1]
STUB = ROOT / "tests" / "stub_trainer.py"
TIMEOUT = 60  # s per AppTest run: a launch waits for both supervisors to register on a busy 2-core box


def page(name: str) -> AppTest:
    return AppTest.from_file(str(ROOT / "pages" / f"{name}.py"), default_timeout=TIMEOUT)


def texts(at: AppTest, kind: str) -> list[str]:
    return [str(e.value) for e in at.get(kind)]


def markdown(at: AppTest) -> str:
    return "\n".join(texts(at, "markdown"))


# --- Launch --------------------------------------------------------------------------------------
@pytest.fixture
def launch_logdir(tmp_path, monkeypatch):
    monkeypatch.setenv("TWINBOARD_LOGDIR", str(tmp_path))
    monkeypatch.setenv("TWINBOARD_TRAINER_CMD", f"{{python}} {STUB} {{spec}} {{framework}}")
    monkeypatch.setenv("TWINBOARD_PASS_ENV", "STUB_")  # the stub's modes reach it through the queue
    yield tmp_path
    from tests.stub_trainer import kill_spawned

    try:
        for run in runs.list_runs(tmp_path):  # teardown: no stub outlives its test
            if run.state in ("queued", "running"):
                runs.stop(run.run_id, logdir=tmp_path, grace=1.0)
    finally:
        kill_spawned(tmp_path)  # and whatever a stop left behind


def test_launch_page_empty_logdir_renders_the_form(launch_logdir):
    at = page("launch").run()
    assert not at.exception
    keys = {w.key for w in (*at.number_input, *at.selectbox, *at.text_input)}
    assert {"launch_task", "launch_model", "launch_hidden", "launch_lr", "launch_momentum",
            "launch_batch_size", "launch_epochs", "launch_steps", "launch_seed", "launch_log_every",
            "launch_histogram_every", "launch_init", "launch_dtype", "launch_threads",
            "launch_weight_decay", "launch_val_fraction"} <= keys
    assert "launch_beta1" not in keys  # SGD is the default: Adam's settings are not shown
    from twinboard.contract.spec import field_help
    for widget, field in [(at.number_input(key="launch_lr"), "lr"), (at.selectbox(key="launch_task"), "task"),
                          (at.text_input(key="launch_hidden"), "hidden")]:
        assert field_help(field) and widget.help == field_help(field)  # the tooltip is the field's metadata
    assert any("No runs yet" in t for t in texts(at, "info"))
    assert not at.error


def test_launch_page_adam_shows_its_settings(launch_logdir):
    at = page("launch").run()
    at.button_group(key="launch_optimizer").set_value("adam").run()
    keys = {w.key for w in at.number_input}
    assert {"launch_beta1", "launch_beta2", "launch_eps"} <= keys and "launch_momentum" not in keys
    assert not at.exception


@pytest.mark.parametrize("key, value, said", [
    ("launch_batch_size", 0, "batch size: must be >= 1"),
    ("launch_lr", 0.0, "learning rate: must be in (0, 10)"),
    ("launch_hidden", "64, x", "hidden sizes: must be comma-separated whole numbers"),
    ("launch_epochs", 0, "epochs: epochs and steps cannot both be 0"),
])
def test_launch_page_bad_value_names_the_field_as_the_form_does(launch_logdir, key, value, said):
    at = page("launch").run()
    widget = at.text_input(key=key) if key == "launch_hidden" else at.number_input(key=key)
    widget.set_value(value)
    at.button(key="launch_start").click().run()
    assert not at.exception
    assert texts(at, "error") == [f"Not started: {said}"]  # the form's label, not "RunSpec.hidden=..."
    assert runs.list_runs(launch_logdir) == []  # nothing was started


def wait_for(predicate, timeout=30.0):
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        if predicate():
            return
        time.sleep(0.1)
    raise AssertionError("timed out")


def test_launch_page_starts_a_run_and_lists_states(launch_logdir, monkeypatch):
    monkeypatch.setenv("STUB_MODE_TORCH", "sleep")  # steps once, then runs until stopped
    monkeypatch.setenv("STUB_MODE_TENSORFLOW", "crash")  # exit 3, "stub: boom" on stderr
    at = page("launch").run()
    at.number_input(key="launch_steps").set_value(40)
    at.text_input(key="launch_name").set_value("smoke")
    at.button(key="launch_start").click().run()
    assert not at.exception
    assert any("Started" in s and "smoke" in s for s in texts(at, "success")), texts(at, "error")

    def settled():
        jobs = runs.get_run("smoke", launch_logdir).frameworks
        return jobs["torch"].state == "running" and jobs["torch"].step == 1 and jobs["tensorflow"].state == "failed"
    wait_for(settled)

    at.run()  # what the live fragment would show on its next tick
    assert not at.exception
    md = markdown(at)
    assert "**smoke**" in md and "badge[running]" in md and "badge[failed]" in md
    bars = {str(p.proto.text) for p in at.get("progress")}
    assert "1 of 40 steps" in bars
    assert any("stub: boom" in c for c in texts(at, "code"))  # the failed job's stderr tail
    assert [e.label for e in at.expander if "exit code 3" in e.label]

    at.button(key="launch_stop_smoke").click().run()  # stop is synchronous: the job has ended
    assert not at.exception
    assert runs.get_run("smoke", launch_logdir).frameworks["torch"].state == "stopped"
    md = markdown(at)
    assert "badge[stopped]" in md and "badge[running]" not in md
    assert not [b for b in at.button if b.key == "launch_stop_smoke"]  # nothing left to stop


def test_launch_page_lists_finished_runs_newest_first(launch_logdir, monkeypatch):
    monkeypatch.setenv("STUB_MODE", "succeed")
    for name in ("first", "second"):
        assert isinstance(runs.launch(RunSpec(steps=3), launch_logdir, name=name), runs.Launched)
        runs.wait(name, timeout=30, logdir=launch_logdir)
    at = page("launch").run()
    assert not at.exception
    md = markdown(at)
    assert md.index("**second**") < md.index("**first**")
    assert "badge[finished]" in md and "badge[running]" not in md
    assert {str(p.proto.text) for p in at.get("progress")} == {"3 of 3 steps"}


def _pair(root: Path, group: str) -> runs.Pair:
    sides = [runs.EventRun(f"{group}/{fw}", root / group / fw, fw, "local") for fw in ("torch", "tensorflow")]
    for side in sides:
        side.path.mkdir(parents=True, exist_ok=True)
    return runs.Pair(*sides, group)


def test_a_pair_is_live_while_a_job_runs_or_a_hand_started_trainer_reports(launch_logdir, monkeypatch):
    """What every page asks before it refreshes itself (runs.pair_is_live)."""

    hand = _pair(launch_logdir, "by-hand")  # no launcher run: a trainer started by hand, or copied in
    assert not runs.pair_is_live(hand, launch_logdir)
    status = {"state": "running", "step": 1, "total_steps": 9, "updated": time.time(), "error": None}
    (hand.left.path / "status.json").write_text(json.dumps(status))
    assert runs.pair_is_live(hand, launch_logdir)
    status["updated"] -= runs.STALE_S + 1  # it stopped reporting: died without saying so
    (hand.left.path / "status.json").write_text(json.dumps(status))
    assert not runs.pair_is_live(hand, launch_logdir)

    monkeypatch.setenv("STUB_MODE", "sleep")  # runs until stopped; SIGTERM leaves status.json "running"
    assert isinstance(runs.launch(RunSpec(steps=5), launch_logdir, name="launched"), runs.Launched)
    launched = _pair(launch_logdir, "launched")
    assert runs.pair_is_live(launched, launch_logdir)  # queued or running, both count
    assert runs.pairs_are_live([hand, launched], launch_logdir)
    assert list(runs.pair_jobs([hand, launched], launch_logdir)) == ["launched"]
    wait_for(lambda: runs.get_run("launched", launch_logdir).frameworks["torch"].state == "running")
    runs.stop("launched", logdir=launch_logdir, grace=1.0)
    status["updated"] = time.time()
    (launched.left.path / "status.json").write_text(json.dumps(status))  # as a killed trainer leaves it
    assert not runs.get_run("launched", launch_logdir).active
    assert not runs.pair_is_live(launched, launch_logdir)  # the launcher knows better than the file


# --- Scalars -------------------------------------------------------------------------------------
WRITER = r'''
import sys, math
from pathlib import Path
root = Path(sys.argv[1])
RUNS = {"20260101-000000-digits-mlp-sgd": 3000, "20260102-000000-digits-mlp-adam": 60}
T0 = 1.7e9

def values(step, n, shift):
    loss = 2.3 * math.exp(-step / (n / 4)) + 0.05 * math.sin(step * 1.7 + shift) + 0.1
    return {"loss/train": loss, "accuracy/train": 1 - loss / 2.5, "lr": 0.05,
            "perf/step_ms": 3 + math.cos(step + shift)}

from tensorboardX import SummaryWriter
for run, n in RUNS.items():
    w = SummaryWriter(str(root / run / "torch"))
    for step in range(n):
        for tag, v in values(step, n, 0.0).items():
            w.add_scalar(tag, v, step, walltime=T0 + step * 0.05)
        if step % 20 == 0:
            val = values(step, n, 1.0)
            w.add_scalar("loss/val", val["loss/train"], step, walltime=T0 + step * 0.05)
            w.add_scalar("accuracy/val", val["accuracy/train"], step, walltime=T0 + step * 0.05)
    w.close()

import tensorflow as tf
from tensorboard.plugins.scalar.metadata import create_summary_metadata

SCALARS = create_summary_metadata(display_name=None, description=None)


def scalar(tag, value, step):
    # What tf.summary.scalar writes, minus the name scope it would prefix inside a graph loop
    tf.summary.write(tag, tf.cast(value, tf.float32), step=step, metadata=SCALARS)


def write(n, shift):  # run as a graph (below): eager tf.summary calls cost ~1 ms each
    nf = tf.cast(n, tf.float32)
    for step in tf.range(tf.cast(n, tf.int64)):
        x = tf.cast(step, tf.float32)
        loss = 2.3 * tf.exp(-x / (nf / 4)) + 0.05 * tf.sin(x * 1.7 + shift) + 0.1
        scalar("loss/train", loss, step)
        scalar("accuracy/train", 1 - loss / 2.5, step)
        scalar("lr", 0.05, step)
        scalar("perf/step_ms", 3 + tf.cos(x + shift), step)
        if step % 20 == 0:
            scalar("loss/val", loss + 0.01, step)
            scalar("accuracy/val", 1 - (loss + 0.01) / 2.5, step)


for run, n in RUNS.items():
    w = tf.summary.create_file_writer(str(root / run / "tensorflow"))
    with w.as_default():
        tf.function(write)(tf.constant(n), tf.constant(0.5))  # a graph per writer: it captures it
    w.close()
'''
SCALAR_TAGS = ["accuracy/train", "accuracy/val", "loss/train", "loss/val", "lr", "perf/step_ms"]
BIG, SMALL = "20260101-000000-digits-mlp-sgd", "20260102-000000-digits-mlp-adam"


@pytest.fixture(scope="session")
def event_logdir(tmp_path_factory):
    """Two matched pairs of real event files (3,000 and 60 steps), written once per session."""
    root = tmp_path_factory.mktemp("scalars")
    script = tmp_path_factory.mktemp("writer") / "write_events.py"
    script.write_text(WRITER)  # a file, not -c: AutoGraph reads the loop's source
    out = subprocess.run([sys.executable, str(script), str(root)], cwd=ROOT, capture_output=True,
                         text=True, timeout=240)
    assert out.returncode == 0, out.stderr[-3000:]
    return root


@pytest.fixture
def scalars(event_logdir, monkeypatch):
    monkeypatch.setenv("TWINBOARD_LOGDIR", str(event_logdir))
    return page("scalars")


def figures(at: AppTest) -> list[dict]:
    return [json.loads(c.proto.spec) for c in at.get("plotly_chart")]


def points(trace: dict, axis: str = "y") -> list:
    """A trace's values as sent: plotly base64-encodes numeric arrays as {"dtype", "bdata"}."""
    data = trace[axis]
    if isinstance(data, dict):
        return np.frombuffer(base64.b64decode(data["bdata"]), np.dtype(data["dtype"])).tolist()
    return list(data)


def title(fig: dict) -> str:
    return fig["layout"]["title"]["text"]


def test_scalars_page_empty_logdir(tmp_path, monkeypatch):
    monkeypatch.setenv("TWINBOARD_LOGDIR", str(tmp_path))
    at = page("scalars").run()
    assert not at.exception
    assert any("No runs yet" in t for t in texts(at, "info"))


def test_scalars_page_draws_every_tag_side_by_side(scalars):
    at = scalars.run()
    assert not at.exception, at.exception
    figs = figures(at)
    assert sorted(title(f) for f in figs) == SCALAR_TAGS  # the newest pair: 60 steps
    for fig in figs:
        assert fig["layout"]["yaxis"]["range"] == fig["layout"]["yaxis2"]["range"]  # shared y
        colours = {t["line"]["color"] for t in fig["data"]}
        from twinboard.scalars import FRAMEWORK_COLORS
        assert colours == {FRAMEWORK_COLORS["torch"], FRAMEWORK_COLORS["tensorflow"]}
    assert [e.label for e in at.expander][:2] == ["**loss** · 2", "**accuracy** · 2"]


def test_scalars_page_samples_long_series_and_zooms(scalars):
    at = scalars.run()
    at.sidebar.selectbox(key="scalars_pair").set_value(BIG).run()
    assert not at.exception
    loss = next(f for f in figures(at) if title(f) == "loss/train")
    assert all(len(points(t)) <= 2000 and len(points(t, "x")) == len(points(t)) for t in loss["data"])
    assert max(len(points(t)) for t in loss["data"]) > 1900
    assert "of 3,000 points" in loss["layout"]["title"]["subtitle"]["text"]
    at.sidebar.toggle(key="scalars_zoom").set_value(True).run()
    at.sidebar.slider(key="scalars_steps").set_value((1000, 1499)).run()
    assert not at.exception
    loss = next(f for f in figures(at) if title(f) == "loss/train")
    assert [len(points(t)) for t in loss["data"]] == [500] * 4  # raw + smoothed, both sides, all points
    assert points(loss["data"][0], "customdata")[0] == 1000  # hover shows the step
    assert not loss["layout"]["title"].get("subtitle", {}).get("text")


def test_scalars_page_toggles(scalars):
    at = scalars.run()
    for key, value in [("scalars_overlay", True), ("scalars_log_y", True)]:
        at.sidebar.toggle(key=key).set_value(value).run()
        assert not at.exception, (key, at.exception)
    fig = figures(at)[0]
    assert "yaxis2" not in fig["layout"] and fig["layout"]["yaxis"]["type"] == "log"
    for axis in ("relative", "wall", "step"):
        at.sidebar.radio(key="scalars_x_axis").set_value(axis).run()
        assert not at.exception, (axis, at.exception)
    at.sidebar.slider(key="scalars_smoothing").set_value(0.0).run()
    assert not at.exception
    assert all(len(f["data"]) == 2 for f in figures(at))  # smoothing off: no faint raw copies
    at.sidebar.text_input(key="scalars_filter").set_value("^loss/").run()
    assert sorted(title(f) for f in figures(at)) == ["loss/train", "loss/val"]
    at.sidebar.text_input(key="scalars_filter").set_value("loss(").run()
    assert not at.exception and any("not a valid regular expression" in e for e in texts(at, "error"))


def test_scalars_page_more_pairs_and_any_two_runs(scalars):
    at = scalars.run()
    at.sidebar.multiselect(key="scalars_more_pairs").set_value([BIG]).run()
    assert not at.exception
    lr = next(f for f in figures(at) if title(f) == "lr")
    assert len(lr["data"]) == 8 and {t["line"]["dash"] for t in lr["data"]} == {"solid", "dash"}
    at.sidebar.selectbox(key="scalars_pair").set_value("Any two runs…").run()
    at.sidebar.selectbox(key="scalars_left").set_value(f"{BIG}/torch").run()
    at.sidebar.selectbox(key="scalars_right").set_value(f"{SMALL}/torch").run()
    assert not at.exception
    assert sorted(title(f) for f in figures(at)) == SCALAR_TAGS


def test_scalars_page_reports_a_corrupt_file_and_keeps_going(event_logdir, tmp_path, monkeypatch):
    import shutil
    root = tmp_path / "logs"
    shutil.copytree(event_logdir / SMALL, root / SMALL)
    bad = root / "uploads" / "broken"
    bad.mkdir(parents=True)
    record = bytearray(frame(b"\x00" * 16))
    record[-1] ^= 0xFF  # a complete record whose data CRC is wrong
    (bad / "events.out.tfevents.1.broken").write_bytes(bytes(record))
    half = (root / SMALL / "torch").glob("events.out.tfevents.*")
    with open(next(half), "ab") as f:
        f.write(frame(b"\x01" * 40)[:-7])  # a writer still going: not corruption
    monkeypatch.setenv("TWINBOARD_LOGDIR", str(root))
    at = page("scalars").run()
    assert not at.exception, at.exception
    assert not texts(at, "warning")  # the page reads the runs it shows, and the broken one is not
    assert sorted(title(f) for f in figures(at)) == SCALAR_TAGS
    at.sidebar.selectbox(key="scalars_pair").set_value("Any two runs…").run()
    at.sidebar.selectbox(key="scalars_left").set_value(f"{SMALL}/torch")
    at.sidebar.selectbox(key="scalars_right").set_value("uploads/broken").run()
    assert not at.exception, at.exception
    warnings = texts(at, "warning")
    assert len(warnings) == 1 and "broken" in warnings[0], warnings
    assert sorted(title(f) for f in figures(at)) == SCALAR_TAGS  # the good side is still drawn


def test_a_page_opened_before_the_first_events_waits_for_them(launch_logdir, monkeypatch):
    """Right after Start, the trainers are still importing: no event file yet. The page must say a
    run is starting (and rerun by itself) instead of a bare 'No runs yet' that needs a reload."""

    monkeypatch.setenv("STUB_MODE", "sleep")  # the stub writes status.json but no event file
    run = runs.launch(RunSpec(steps=5))
    assert isinstance(run, runs.Launched), run
    try:
        wait_for(lambda: runs.get_run(run.run_id).frameworks["torch"].state == "running")
        at = page("scalars").run()
        assert not at.exception
        assert any(md(run.run_id) in c.value and "Starting" in c.value for c in at.sidebar.caption)
    finally:
        runs.stop(run.run_id, grace=1.0)


# --- Run cards: final metrics, links to the views, launch again, delete --------------------------
def app() -> AppTest:
    """The whole app (app.py's navigation): what page links and switching pages need."""
    return AppTest.from_file(str(ROOT / "app.py"), default_timeout=TIMEOUT)


def stub_run(root: Path, name: str, **spec) -> str:
    """A finished launcher run (tests/stub_trainer.py for both sides: status files, no event files).
    Under STUB_MODE=gate it is let through at once, while a run launched without it stays running."""
    out = runs.launch(RunSpec(**spec), root, name=name)
    assert isinstance(out, runs.Launched), out
    for fw in runs.FRAMEWORKS:
        (root / name / f"{fw}.release").touch()
    outcomes = runs.wait(name, timeout=60, logdir=root)
    assert all(isinstance(o, runs.Finished) for o in outcomes.values()), outcomes
    return name


def give_events(root: Path, run_id: str, source: Path) -> None:
    """Put real writers' event files (a pair of the event_logdir) where the run's trainers write theirs."""
    import shutil

    for fw in runs.FRAMEWORKS:
        for f in (source / fw).glob("events.out.tfevents.*"):
            shutil.copy2(f, root / run_id / fw / f.name)


def small_finals() -> dict:
    """The last loss/val and accuracy/val of SMALL per side, from WRITER's formulas (60 steps: val at 0, 20, 40)."""
    import math
    x, base = 40.0, 2.3 * math.exp(-40.0 / 15) + 0.1
    torch_loss, tf_loss = base + 0.05 * math.sin(x * 1.7 + 1.0), base + 0.05 * math.sin(x * 1.7 + 0.5) + 0.01
    return {"torch": {"loss/val": torch_loss, "accuracy/val": 1 - torch_loss / 2.5},
            "tensorflow": {"loss/val": tf_loss, "accuracy/val": 1 - tf_loss / 2.5}}


def test_spec_line_says_one_epoch_and_one_step():
    spec = {"task": "digits", "model": "mlp", "hidden": [8], "optimizer": "adam", "lr": 0.01, "batch_size": 4,
            "seed": 0, "dtype": "float32", "init": "shared"}
    assert "· 1 epoch ·" in runs.spec_line({**spec, "epochs": 1, "steps": 0})
    assert "· 3 epochs ·" in runs.spec_line({**spec, "epochs": 3, "steps": 0})
    assert "· 1 step ·" in runs.spec_line({**spec, "epochs": 3, "steps": 1})
    assert "· 20 steps ·" in runs.spec_line({**spec, "epochs": 3, "steps": 20})


def test_run_card_shows_final_metrics_and_links_to_its_views(launch_logdir, event_logdir):
    stub_run(launch_logdir, "done", steps=3)
    give_events(launch_logdir, "done", event_logdir / SMALL)
    stub_run(launch_logdir, "bare", epochs=1, steps=0)  # no event files: not a pair, nothing to link to
    finals = runs.final_metrics(launch_logdir / "done")
    for fw, tags in small_finals().items():
        assert {t: step for t, (step, _) in finals[fw].items()} == {"loss/val": 40, "accuracy/val": 40}
        assert {t: v for t, (_, v) in finals[fw].items()} == pytest.approx(tags, rel=1e-6)  # float32 on disk

    at = app().run()  # opens on Launch, the default page
    assert not at.exception, at.exception
    shown = texts(at, "caption")
    for fw, tags in small_finals().items():
        assert f"final: loss/val {tags['loss/val']:.4g} · accuracy/val {tags['accuracy/val']:.1%}" in shown
    links = [(link.proto.label, link.proto.page, link.proto.query_string) for link in at.get("page_link")]
    assert links == [("Scalars", "scalars", "pair=done"), ("Parity", "parity", "pair=done")]
    md = markdown(at)
    assert "· 1 epoch ·" in md and "1 epochs" not in md and "· 3 steps ·" in md


def test_launch_again_fills_the_form_from_the_runs_spec(launch_logdir):
    stub_run(launch_logdir, "tuned", optimizer="adam", lr=0.003, beta1=0.8, hidden=(16, 8), seed=7, steps=2,
             batch_size=16)
    at = page("launch").run()
    assert at.number_input(key="launch_lr").value == 0.05  # RunSpec()'s, before
    at.button(key="launch_again_tuned").click().run()
    assert not at.exception, at.exception
    assert any("tuned" in t for t in texts(at, "toast"))
    assert at.button_group(key="launch_optimizer").value == "adam"
    assert at.number_input(key="launch_lr").value == 0.003 and at.number_input(key="launch_beta1").value == 0.8
    assert at.text_input(key="launch_hidden").value == "16, 8" and at.number_input(key="launch_seed").value == 7
    assert at.text_input(key="launch_name").value == ""  # "tuned" is taken

    at.number_input(key="launch_lr").set_value(0.004)
    at.button(key="launch_start").click().run()
    assert not at.exception and not at.error, texts(at, "error")
    new = [r for r in runs.list_runs(launch_logdir) if r.run_id != "tuned"]
    assert len(new) == 1
    spec = new[0].spec
    assert (spec["optimizer"], spec["lr"], spec["beta1"], spec["hidden"], spec["seed"], spec["steps"],
            spec["batch_size"]) == ("adam", 0.004, 0.8, [16, 8], 7, 2, 16)


def test_delete_asks_first_and_is_not_offered_while_a_job_runs(launch_logdir, monkeypatch):
    monkeypatch.setenv("STUB_MODE", "gate")  # one step, then running until released
    stub_run(launch_logdir, "old", steps=2)
    assert isinstance(runs.launch(RunSpec(steps=5), launch_logdir, name="busy"), runs.Launched)
    at = page("launch").run()
    keys = {b.key for b in at.button}
    assert "launch_delete_old" in keys and "launch_delete_busy" not in keys

    at.button(key="launch_delete_old").click().run()
    assert any("Delete **old**" in w for w in texts(at, "warning"))
    assert (launch_logdir / "old").is_dir()  # asked, not done
    at.button(key="launch_delete_no_old").click().run()
    assert not texts(at, "warning") and (launch_logdir / "old").is_dir()

    at.button(key="launch_delete_old").click().run()
    at.button(key="launch_delete_yes_old").click().run()
    assert not at.exception, at.exception
    assert not (launch_logdir / "old").exists()
    assert texts(at, "success") == ["Deleted old."]
    assert "**old**" not in markdown(at) and "**busy**" in markdown(at)
    assert [r.run_id for r in runs.list_runs(launch_logdir)] == ["busy"]


def test_delete_run_refuses_what_it_must_not_remove_and_never_follows_links(launch_logdir, tmp_path, monkeypatch):
    outside = tmp_path / "outside"
    outside.mkdir()
    (outside / "run.json").write_text("{}")
    (outside / "precious").write_text("keep me")
    for bad in ("..", "../outside", "a/b", "uploads", "", ".queue", "/etc"):
        with pytest.raises(runs.LauncherError, match="is not a run name"):
            runs.delete_run(bad, launch_logdir)
    with pytest.raises(runs.RunNotFound, match="no run 'nope'"):
        runs.delete_run("nope", launch_logdir)
    (launch_logdir / "linked").symlink_to(outside, target_is_directory=True)
    with pytest.raises(runs.LauncherError, match="'linked' is a link"):
        runs.delete_run("linked", launch_logdir)
    assert (outside / "precious").read_text() == "keep me"

    monkeypatch.setenv("STUB_MODE", "gate")  # one step, then running until released
    stub_run(launch_logdir, "done", steps=2)
    (launch_logdir / "done" / "escape").symlink_to(outside, target_is_directory=True)
    (launch_logdir / "done" / "torch" / "precious-link").symlink_to(outside / "precious")
    leftover = launch_logdir / f"{runs.DELETING_PREFIX}earlier-0000"
    (leftover / "torch").mkdir(parents=True)  # what a delete cut short left: swept by the next one
    assert runs.delete_run("done", launch_logdir) == launch_logdir / "done"
    assert not (launch_logdir / "done").exists() and not leftover.exists()
    assert (outside / "precious").read_text() == "keep me" and (outside / "run.json").exists()
    assert [p.name for p in launch_logdir.iterdir() if p.name.startswith(runs.DELETING_PREFIX)] == []

    assert isinstance(runs.launch(RunSpec(steps=5), launch_logdir, name="busy"), runs.Launched)
    with pytest.raises(runs.LauncherError, match="still has a queued or running job"):
        runs.delete_run("busy", launch_logdir)
    assert (launch_logdir / "busy" / "run.json").is_file()


# --- One pair choice across pages, in the URL ----------------------------------------------------
def test_pairs_list_local_newest_first_then_uploads(tmp_path, event_logdir):
    import os
    import shutil

    def pair(name: str, created: float | None = None, mtime: float | None = None) -> None:
        shutil.copytree(event_logdir / SMALL, tmp_path / name)
        if created is not None:
            (tmp_path / name / "run.json").write_text(json.dumps({"created": created}))
        if mtime is not None:
            os.utime(tmp_path / name, (mtime, mtime))

    pair("zz-custom", created=1000)  # a name from the end of the alphabet: not the newest
    pair("20990101-000000-digits-mlp-sgd", created=500)  # a timestamp name says nothing, run.json does
    pair("no-json", mtime=1500)  # no run.json (copied in, hand-started): the folder's mtime
    pair("uploads/alice", mtime=time.time() + 60)  # the newest folder, but uploaded: after local pairs
    pair("uploads/bob", mtime=10)
    pairs = runs.list_pairs(tmp_path)
    assert [p.label for p in pairs] == ["no-json", "zz-custom", "20990101-000000-digits-mlp-sgd",
                                        "uploads/alice", "uploads/bob"]
    assert [p.shown for p in pairs][-2:] == ["uploads/alice (uploaded)", "uploads/bob (uploaded)"]
    assert runs.default_choice(pairs, runs.list_event_runs(tmp_path)) == runs.Choice(pair="no-json")
    uploads_only = [p for p in pairs if p.uploaded]
    assert runs.default_choice(uploads_only, []) == runs.Choice(pair="uploads/alice")


def test_the_pair_choice_holds_across_pages_and_lives_in_the_url(event_logdir, monkeypatch):
    monkeypatch.setenv("TWINBOARD_LOGDIR", str(event_logdir))
    at = app().run()
    at.switch_page("pages/scalars.py").run()
    assert not at.exception, at.exception
    assert at.sidebar.selectbox(key="scalars_pair").value == SMALL  # the newest
    assert at.query_params == {"pair": SMALL}
    at.sidebar.selectbox(key="scalars_pair").set_value(BIG).run()
    assert at.query_params == {"pair": BIG}

    at.query_params.clear()  # navigation that drops the query string: the session remembers
    at.switch_page("pages/histograms.py").run()
    assert not at.exception, at.exception
    assert at.sidebar.selectbox(key="hist_pair").value == BIG  # not back to the default
    assert at.query_params == {"pair": BIG}  # and the address bar says so again
    at.sidebar.selectbox(key="hist_pair").set_value("Any two runs…").run()
    left, right = at.sidebar.selectbox(key="hist_left"), at.sidebar.selectbox(key="hist_right")
    assert (left.label, right.label) == ("Left run", "Right run")
    assert (left.value, right.value) == (f"{BIG}/torch", f"{BIG}/tensorflow")  # from the pair it left
    right.set_value(f"{SMALL}/tensorflow").run()
    assert at.query_params == {"left": f"{BIG}/torch", "right": f"{SMALL}/tensorflow"}

    at.session_state[CHOICE_KEY] = runs.Choice(pair=SMALL)  # picked earlier, but the URL (a link) wins
    at.session_state[PICKED_KEY] = True
    at.switch_page("pages/parity.py").run()
    assert not at.exception, at.exception
    assert at.sidebar.selectbox(key="parity_pair").value == "Any two runs…"
    assert (at.sidebar.selectbox(key="parity_left").value, at.sidebar.selectbox(key="parity_right").value) == (
        f"{BIG}/torch", f"{SMALL}/tensorflow")
    at.sidebar.selectbox(key="parity_pair").set_value(BIG).run()
    assert at.query_params == {"pair": BIG}  # left/right gone from the URL


@pytest.mark.parametrize("query, pair, left, right", [
    ({"pair": BIG}, BIG, None, None),
    ({"left": f"{SMALL}/torch", "right": f"{BIG}/torch"}, "Any two runs…", f"{SMALL}/torch", f"{BIG}/torch"),
])
def test_a_link_opens_the_view_it_names(event_logdir, monkeypatch, query, pair, left, right):
    monkeypatch.setenv("TWINBOARD_LOGDIR", str(event_logdir))
    at = page("scalars")
    at.query_params.update(query)
    at.run()
    assert not at.exception, at.exception
    assert at.sidebar.selectbox(key="scalars_pair").value == pair
    if left:
        assert (at.sidebar.selectbox(key="scalars_left").value, at.sidebar.selectbox(key="scalars_right").value) == (
            left, right)
    assert at.query_params == query and not at.sidebar.text  # no note


@pytest.mark.parametrize("query, named", [
    ({"pair": "[x](http://evil.example) **bold** <b>hi</b>" + "z" * 5000}, "pair '[x](http://evil.example) **bold**"),
    ({"pair": "20260101-000000-digits-mlp-sgd/../.."}, "pair '20260101-000000-digits-mlp-sgd/../..'"),
    ({"left": "gone/torch", "right": f"{SMALL}/torch"}, f"runs 'gone/torch' and '{SMALL}/torch'"),
])
def test_an_unknown_or_hostile_link_falls_back_to_the_newest_pair_with_a_note(event_logdir, monkeypatch,
                                                                              query, named):
    monkeypatch.setenv("TWINBOARD_LOGDIR", str(event_logdir))
    at = page("scalars")
    at.query_params.update(query)
    at.run()
    assert not at.exception, at.exception
    assert at.sidebar.selectbox(key="scalars_pair").value == SMALL
    notes = [t.value for t in at.sidebar.text]  # st.text: shown as typed, never as Markdown or HTML
    assert len(notes) == 1 and named in notes[0] and "not in this logdir" in notes[0], notes
    assert len(notes[0]) < 300  # the value is cut
    assert at.query_params == {"pair": SMALL}  # the address bar now says what is shown


def test_a_default_follows_the_newest_pair_and_a_picked_one_stays(tmp_path, event_logdir, monkeypatch):
    """Opened right after Start, a page shows the newest pair listed so far; once the new run's pair is
    listed (the page reruns by itself) it shows that one. A pair the visitor picked stays picked."""
    import shutil

    def pair(name: str, created: float) -> None:
        shutil.copytree(event_logdir / SMALL, tmp_path / name)
        (tmp_path / name / "run.json").write_text(json.dumps({"created": created}))

    monkeypatch.setenv("TWINBOARD_LOGDIR", str(tmp_path))
    pair("first", 100)
    pair("second", 200)
    at = page("scalars").run()
    assert at.sidebar.selectbox(key="scalars_pair").value == "second" and at.query_params == {"pair": "second"}
    pair("third", 300)
    at.run()
    assert at.sidebar.selectbox(key="scalars_pair").value == "third" and at.query_params == {"pair": "third"}
    at.sidebar.selectbox(key="scalars_pair").set_value("first").run()
    pair("fourth", 400)
    at.run()
    assert at.sidebar.selectbox(key="scalars_pair").value == "first" and at.query_params == {"pair": "first"}
    assert not at.exception, at.exception
