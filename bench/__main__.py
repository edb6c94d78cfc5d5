"""`python -m bench [name ...]`: run the benchmarks, print their tables, write bench/results/.

Each benchmark is a module listed in BENCHES with `run() -> dict` (JSON-able results) and
`markdown(result) -> str` (its table). Results go to bench/results/<name>.json and <name>.md, and
are committed: they are the numbers the README and the issues quote. Generated data lives in
bench/tmp/ (git-ignored). `make bench` runs them all; keep the whole under 10 minutes.
"""
from __future__ import annotations

import importlib
import json
import os
import platform
import sys
import time
from pathlib import Path

BENCHES = ["ingest", "big_logdir", "live_latency", "trainer_overhead", "sweeps_page", "evaluation_overhead"]  # add a module name here (bench/<name>.py) to add a benchmark

HERE = Path(__file__).resolve().parent
RESULTS = HERE / "results"


def machine() -> dict:
    """What the numbers were measured on; the load average says how noisy the machine was."""
    cpu = platform.processor()
    try:
        for line in Path("/proc/cpuinfo").read_text().splitlines():
            if line.startswith("model name"):
                cpu = line.split(":", 1)[1].strip()
                break
    except OSError:
        pass
    return {"cpu": cpu, "cores": os.cpu_count(), "python": platform.python_version(),
            "platform": platform.platform(), "loadavg_before": os.getloadavg()}


def main(argv: list[str]) -> int:
    names = argv or BENCHES
    unknown = [n for n in names if n not in BENCHES]
    if unknown:
        print(f"unknown benchmark(s) {unknown}; known: {BENCHES}", file=sys.stderr)
        return 2
    RESULTS.mkdir(parents=True, exist_ok=True)
    for name in names:
        module = importlib.import_module(f"bench.{name}")
        info = machine()
        t0 = time.perf_counter()
        result = module.run()
        info["loadavg_after"] = os.getloadavg()
        info["bench_seconds"] = round(time.perf_counter() - t0, 1)
        result["machine"] = info
        table = module.markdown(result)
        (RESULTS / f"{name}.json").write_text(json.dumps(result, indent=2) + "\n")
        (RESULTS / f"{name}.md").write_text(table)
        print(table)
        print(f"[{name}: {info['bench_seconds']} s; wrote bench/results/{name}.json and .md]")
    return 0


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))
