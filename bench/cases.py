"""What the two trainer benches (trainer_overhead, evaluation_overhead) share: each case, one
framework and one model, runs in a fresh process of its own (`python -m bench.<name> worker
FRAMEWORK MODEL`, its result the last line of stdout as JSON), one after the other, so one case's
imports, threads and memory never touch another's timings."""
from __future__ import annotations

import json
import os
import subprocess
import sys
from collections.abc import Callable, Iterable
from pathlib import Path

REPO = Path(__file__).resolve().parent.parent


def run_cases(module: str, frameworks: Iterable[str], models: Iterable[str]) -> list[dict]:
    """Every (model, framework) case of `module`'s worker, models outermost; a failed worker raises."""
    results = []
    for model in models:
        for framework in frameworks:
            env = dict(os.environ, PYTHONPATH=str(REPO), TF_CPP_MIN_LOG_LEVEL="2")
            proc = subprocess.run([sys.executable, "-m", module, "worker", framework, model], cwd=REPO, env=env,
                                  capture_output=True, text=True, timeout=600, check=False)
            if proc.returncode:
                raise RuntimeError(f"{framework} {model} worker failed:\n{proc.stderr[-3000:]}")
            results.append(json.loads(proc.stdout.strip().splitlines()[-1]))
    return results


def worker_main(module: str, worker: Callable[[str, str], dict], frameworks: Iterable[str],
                models: Iterable[str]) -> None:
    """The module's `__main__`: run one case and print its result."""
    if len(sys.argv) == 4 and sys.argv[1] == "worker":
        print(json.dumps(worker(sys.argv[2], sys.argv[3])))
    else:
        sys.exit(f"usage: python -m {module} worker {'|'.join(frameworks)} {'|'.join(models)}")


def machine_line(m: dict) -> str:
    load = m["loadavg_before"]
    return f"Machine: {m['cpu']}, {m['cores']} cores, load average before {load[0]:.1f} / {load[1]:.1f} / {load[2]:.1f}."
