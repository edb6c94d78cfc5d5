"""What a run card says about a launcher run: its spec in one line, its progress, its final metrics.

Final metrics come from the run's event files, read once with the scalar store (`twinboard.events`);
`event_signature` changes whenever an event file appears or grows, so a caller can cache the result
by (folder, signature) and read a finished run only once.
"""
from __future__ import annotations

import math
import os
from pathlib import Path

from twinboard.contract.files import FRAMEWORKS, event_files

FINAL_TAGS = ("loss/val", "accuracy/val")  # what a card shows per framework, in this order


def _count(n: object, unit: str) -> str:
    """'1 epoch', '3 epochs', '0 steps': plural unless exactly one."""
    return f"{n} {unit}" if n == 1 else f"{n} {unit}s"


def progress_text(job) -> str:
    """A job's progress bar text: '40 of 120 steps', 'queued: waiting for a free slot'."""
    if job.state == "queued":
        return "queued: waiting for a free slot"
    if job.total_steps:
        return f"{job.step or 0:,} of {job.total_steps:,} steps"
    return "starting…" if job.state == "running" else "no progress reported"


def spec_line(spec: dict) -> str:
    """One line of a run's spec for the run list: what differs between runs, in words."""
    g = spec.get
    opt = (f"sgd lr={g('lr')} momentum={g('momentum')}" if g("optimizer") == "sgd"
           else f"{g('optimizer')} lr={g('lr')}")
    length = _count(g("steps"), "step") if g("steps") else _count(g("epochs"), "epoch")
    return (f"{g('task')} · {g('model')} {tuple(g('hidden') or ())} · {opt} · batch {g('batch_size')} · "
            f"{length} · seed {g('seed')} · {g('dtype')} · init {g('init')}")


def event_signature(run_dir: str | os.PathLike) -> tuple:
    """(framework, file name, mtime ns, size) of every event file of a run: a cache key that changes
    when a file is added or grows."""
    out = []
    for fw in FRAMEWORKS:
        for path in event_files(Path(run_dir) / fw):
            try:
                st = path.stat()
            except OSError:  # removed since it was listed
                continue
            out.append((fw, path.name, st.st_mtime_ns, st.st_size))
    return tuple(out)


def final_metrics(run_dir: str | os.PathLike, tags: tuple[str, ...] = FINAL_TAGS) -> dict[str, dict[str, tuple[int, float]]]:
    """framework -> {tag: (step, value)} of the last record of each of `tags` in that framework's
    event files (the last written: a restarted run ends where it last logged). Frameworks and tags
    without such a record are left out; unreadable records are skipped (the store's problems)."""
    # Imported here, not at the top: the CLI and every trainer supervisor import twinboard.runs, and
    # the scalar reader brings numpy and the compiled decoder's loader, which only the dashboard needs.
    from twinboard.events.tag_series import read_tag_series

    found, _ = read_tag_series(run_dir, FRAMEWORKS, tags)
    return {fw: {tag: (int(s.step[-1]), float(s.value[-1])) for tag, s in series.items()}
            for fw, series in found.items()}


def metrics_line(metrics: dict[str, tuple[int, float]]) -> str:
    """'loss/val 0.1234 · accuracy/val 91.2%' for one framework's final metrics; '' when none."""
    parts = []
    for tag, (_, value) in metrics.items():
        if not math.isfinite(value):
            parts.append(f"{tag} {value}")
        elif tag.startswith("accuracy"):
            parts.append(f"{tag} {value:.1%}")
        else:
            parts.append(f"{tag} {value:.4g}")
    return " · ".join(parts)
