"""A real matched pair through the launcher (the shared `real_pair` fixture): both trainers finish
every step and write the contract's scalar tags."""
from __future__ import annotations

from pathlib import Path

from twinboard import runs
from twinboard.contract import is_event_file
from twinboard.events import iter_events

def tags_in(folder: Path) -> set[str]:
    return {value.tag for path in folder.iterdir() if is_event_file(path)
            for event in iter_events(path) for value in event.summary.value}


def test_a_real_pair_finishes_and_both_sides_log_train_loss(real_pair):
    detail = {fw: (real_pair.run_dir / f"{fw}.stderr").read_text()[-2000:] for fw in runs.FRAMEWORKS}
    assert real_pair.outcomes == {"torch": runs.Finished(0), "tensorflow": runs.Finished(0)}, detail
    steps = real_pair.spec.steps
    for fw, job in runs.get_run(real_pair.run_id, logdir=real_pair.logdir).frameworks.items():
        assert (job.state, job.step, job.total_steps) == ("finished", steps, steps), (fw, job)
        tags = tags_in(real_pair.run_dir / fw)
        for tag in ("loss/train", "loss/val", "accuracy/train", "accuracy/val", "lr", "perf/step_ms",
                    "perf/samples_per_s"):
            assert tag in tags, (fw, tag)
