"""One exported pair for tests/test_deploy.py and tests/test_deploy_page.py, made once per pytest process.

conftest's `real_pair` (the suite's one real pair, already paid for) saved no weights: it is a run made
before exports existed. Its folder is copied into a logdir of its own (the shared pair stays as the
other tests expect it), and `twinboard export RUN` exports the copy: the command starts one
`python -m trainers.deploy` per framework, side by side, and each trains the run again with the
trainer's own `_run`, export on (so the end-of-run export a launched run does is exercised too),
then writes every artifact and deploy.json; the second to finish writes deploy_agreement.json.
Measured: the two exporters take ~15 s (torch: ExecuTorch's import and lowering, ONNX) and ~11 s (TensorFlow)
of CPU, side by side on the 2 cores; each imports its framework, retrains 20 steps and exports.
"""
from __future__ import annotations

import contextlib
import io
import shutil
from dataclasses import dataclass
from pathlib import Path

EXPORT_TIMEOUT_S = 300
_MADE: dict[str, ExportedPair] = {}


@dataclass(frozen=True)
class ExportedPair:
    logdir: Path
    run_id: str
    run_dir: Path
    spec: object  # the RunSpec
    exit_code: int
    out: str  # what `twinboard export` printed
    err: str


def exported_pair(real_pair, tmp_path_factory) -> ExportedPair:
    key = str(real_pair.run_dir)
    if key not in _MADE:
        from twinboard import cli

        logdir = tmp_path_factory.mktemp("deploy") / "logs"
        run_dir = logdir / real_pair.run_id
        shutil.copytree(real_pair.run_dir, run_dir)
        out, err = io.StringIO(), io.StringIO()
        with contextlib.redirect_stdout(out), contextlib.redirect_stderr(err):
            code = cli.main(["--logdir", str(logdir), "export", real_pair.run_id, "--timeout", str(EXPORT_TIMEOUT_S)])
        _MADE[key] = ExportedPair(logdir, real_pair.run_id, run_dir, real_pair.spec, code, out.getvalue(),
                                  err.getvalue())
    return _MADE[key]


def unexpressible_pair(pair: ExportedPair, tmp_path_factory) -> ExportedPair:
    """A copy of the exported pair whose PyTorch side was exported again from a model with
    data-dependent control flow (an `if` on a tensor's value), which torch.export, the ONNX exporter
    and ExecuTorch cannot express and TorchScript's tracing freezes: the real exporter, in this process."""
    key = f"unexpressible:{pair.run_dir}"
    if key not in _MADE:
        import torch

        from trainers import data
        from trainers.deploy import export_trained

        class Branchy(torch.nn.Module):
            def __init__(self):
                super().__init__()
                self.out = torch.nn.Linear(64, 10)

            def forward(self, x):
                if x.sum() > 0:  # data-dependent: no graph can hold both branches without a cond
                    return self.out(x)
                return -self.out(x)

        logdir = tmp_path_factory.mktemp("deploy_unexpressible") / "logs"
        run_dir = logdir / pair.run_id
        shutil.copytree(pair.run_dir, run_dir)
        torch.manual_seed(0)
        doc = export_trained("torch", pair.spec, run_dir, data.load(pair.spec), Branchy())
        _MADE[key] = ExportedPair(logdir, pair.run_id, run_dir, pair.spec, 0 if doc["error"] is None else 1, "", "")
    return _MADE[key]
