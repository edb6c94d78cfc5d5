"""Model plugins from the dashboard's side: which ones the model folder holds, and their preflight.

A plugin is a Python file `<name>.py` in the model folder (twinboard.contract.models_dir(): the API
is trainers/models/plugins.py's docstring). It is code that needs both frameworks, and the dashboard
imports neither, nor the plugin: `plugin_names` lists the folder by file name, and `preflight` runs
`python -m trainers.models.preflight` in a subprocess (~10 s here, most of it the two imports), which
builds both models and checks how their tensors correspond before anything is created. The
launcher calls it for a plugin model:

    checked = plugins.preflight(spec, root)  # PluginRefused (a LaunchRefused): the message, nothing made
    ...                                      # the run folder, spec.json
    checked.install(run_dir)                 # plan.json and, init=shared, init.npz: both trainers read them
    checked.discard()                        # in a finally: the preflight's temporary folder

Standard library and the contract only.
"""
from __future__ import annotations

import json
import os
import re
import shutil
import subprocess
import sys
import tempfile
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from twinboard.contract import INIT_NPZ, MODELS, RunSpec, models_dir
from twinboard.contract.limits import load_limits
from twinboard.contract.spec import NAME_RE
from twinboard.runs.queue import REPO
from twinboard.runs.state import LaunchRefused

PREFLIGHT = "trainers.models.preflight"
PLAN_JSON = "plan.json"  # trainers.models.plugins.PLAN_JSON: the run folder's plan
# Both framework imports and two small models: ~10 s alone on the 2-core machine, ~25 s beside a
# training pair; a plugin whose builders take minutes is refused rather than left hanging a launch.
PREFLIGHT_TIMEOUT_S = 180.0
MAX_PLUGINS = 500  # names listed from the model folder
MAX_REPORT_CHARS = 4000  # of the preflight's stderr quoted when it fails
MAX_LISTED = 20  # problems, and MAX_LISTED * 5 table rows, in a refusal's text


class PluginRefused(LaunchRefused):
    """The preflight refused a plugin (or could not run). Its text, what the launcher's Failed carries
    to the Launch page and the CLI: the first problem, naming both tensors where there are two, then
    every other problem and both sides' tensors aligned (`aligned_text`). `problems` lists them all;
    `rows` is the aligned table (torch, torch_shape, keras, keras_shape, transform, trainable, status)."""

    def __init__(self, message: str, problems: list[str] | None = None, rows: list[dict] | None = None):
        self.problems, self.rows = problems or [message], rows or []
        more = "".join(f"\n  - {p}" for p in self.problems[1:MAX_LISTED])
        table = f"\n\n{aligned_text(self.rows)}" if self.rows else ""
        super().__init__(message + more + table)


@dataclass
class Checked:
    """A passed preflight: the plan, and the temporary folder holding plan.json and init.npz."""
    plan: dict[str, Any]
    folder: Path
    files: list[str] = field(default_factory=list)

    def install(self, run_dir: Path) -> None:
        """Moves plan.json and init.npz into the run folder (OSError: the launcher's to handle)."""
        for name in self.files:
            shutil.move(str(self.folder / name), str(Path(run_dir) / name))
        self.files = []

    def discard(self) -> None:
        shutil.rmtree(self.folder, ignore_errors=True)


def is_plugin(model: str) -> bool:
    return model not in MODELS


def plugin_names(folder: str | os.PathLike | None = None) -> tuple[str, ...]:
    """The model folder's plugins by file name (`resmlp.py` -> "resmlp"), sorted, none imported;
    names RunSpec would refuse, and the built-in models', left out."""
    try:
        with os.scandir(Path(folder or models_dir())) as entries:
            stems = [e.name[:-3] for e in entries if e.name.endswith(".py") and e.is_file()]
    except OSError:  # no folder: no plugins
        return ()
    return tuple(sorted(s for s in stems if re.fullmatch(NAME_RE, s) and s not in MODELS)[:MAX_PLUGINS])


def preflight(spec: RunSpec, logdir: str | os.PathLike | None = None,
              timeout: float = PREFLIGHT_TIMEOUT_S) -> Checked:
    """Checks a plugin spec in a process with both frameworks; its plan and files in a temporary
    folder (Checked), or PluginRefused with the reason. `logdir` is the server's: its limit on
    parameters, and a task=file's data folder."""
    if spec.model not in plugin_names():
        known = ", ".join(plugin_names()) or "none"
        raise PluginRefused(f"RunSpec.model={spec.model!r}: no such model plugin in {models_dir()} "
                            f"(plugins there: {known})")
    folder = Path(tempfile.mkdtemp(prefix="twinboard-preflight-"))
    try:
        plan = _run(spec, folder, logdir, timeout)
        if logdir is not None:
            limit = load_limits(logdir)["parameters"]
            if plan.get("total_params", 0) > limit:
                raise PluginRefused(f"RunSpec.model={spec.model!r}: {plan['total_params']} parameters, more than "
                                    f"this server allows ({int(limit)})")
    except BaseException:
        shutil.rmtree(folder, ignore_errors=True)
        raise
    return Checked(plan, folder, [n for n in (PLAN_JSON, INIT_NPZ) if (folder / n).is_file()])


def _run(spec: RunSpec, folder: Path, logdir: str | os.PathLike | None, timeout: float) -> dict[str, Any]:
    spec_path = folder / "spec.json"
    spec.save(spec_path)
    out = folder / "out"
    env = {**os.environ, "TF_CPP_MIN_LOG_LEVEL": "2",
           "PYTHONPATH": os.pathsep.join(filter(None, [str(REPO), os.environ.get("PYTHONPATH")]))}
    if logdir is not None:
        env["TWINBOARD_LOGDIR"] = str(logdir)
    try:
        proc = subprocess.run([sys.executable, "-m", PREFLIGHT, str(spec_path), "--out", str(out)], check=False,
                              cwd=REPO, env=env, capture_output=True, text=True, errors="replace", timeout=timeout)
    except subprocess.TimeoutExpired:
        raise PluginRefused(f"model plugin {spec.model!r}: the preflight took more than {timeout:g} s") from None
    report = _last_json(proc.stdout)
    if proc.returncode == 3 and report is not None:
        raise PluginRefused(f"model plugin {spec.model!r} refused: {report.get('error')}",
                            list(report.get("problems") or []), list(report.get("rows") or []))
    if proc.returncode != 0 or report is None:
        tail = (proc.stderr or proc.stdout or "").strip()[-MAX_REPORT_CHARS:]
        raise PluginRefused(f"model plugin {spec.model!r}: the preflight failed (exit {proc.returncode}): {tail}")
    for name in (PLAN_JSON, INIT_NPZ):
        if (out / name).is_file():
            os.replace(out / name, folder / name)
    spec_path.unlink()
    return report


def aligned_text(rows: list[dict]) -> str:
    """Both sides' tensors aligned as fixed-width text, one line a tensor (the refusal's table)."""
    def shape(s) -> str:
        return "" if s is None else str(list(s))

    table = [("torch", "shape", "Keras", "shape", "status")]
    table += [(str(r.get("torch") or "-"), shape(r.get("torch_shape")), str(r.get("keras") or "-"),
               shape(r.get("keras_shape")), str(r.get("status") or "")) for r in rows[:MAX_LISTED * 5]]
    widths = [max(len(row[i]) for row in table) for i in range(4)]
    lines = ["  ".join([*(c.ljust(w) for c, w in zip(row[:4], widths)), row[4]]).rstrip() for row in table]
    if len(rows) > MAX_LISTED * 5:
        lines.append(f"... and {len(rows) - MAX_LISTED * 5} more tensors")
    return "\n".join(lines)


def _last_json(stdout: str) -> dict[str, Any] | None:
    """The preflight's report: the last stdout line holding a JSON object (a plugin may print too)."""
    for line in reversed((stdout or "").splitlines()):
        if line.startswith("{"):
            try:
                value = json.loads(line)
            except ValueError:
                continue
            return value if isinstance(value, dict) else None
    return None
