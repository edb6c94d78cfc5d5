"""AppTest smoke and behaviour tests for the Launch page, on real files and processes.

The form on an empty logdir, a bad value named in an error, and real runs started through the form
(tests/stub_trainer.py stands in for both trainers) whose states the list shows; the run cards: final
metrics, links to the views, launch again, delete.
"""
from __future__ import annotations

import json
import time
from pathlib import Path

import pytest

from tests.apptest_pages import app, markdown, page, texts, wait_for
from tests.scalar_pairs import SMALL
from twinboard import runs
from twinboard.contract import RunSpec


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


# --- Run cards: final metrics, links to the views, launch again, delete --------------------------
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
