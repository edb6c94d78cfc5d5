"""Trainer logging overhead: the same trainer with its train scalars written at every step, against
logging off. Goal (issue 7): <= 5% slower, for each framework.

Each case runs in its own process (`python -m bench.trainer_overhead worker FRAMEWORK MODEL`), one
after the other: the default spec (digits MLP, batch 32, float32, 1 thread; the shortest step, so
the worst case) and the CNN. That process builds the real adapter (`open_adapter`: model, weights,
optimizer, event writer) and runs the real loop (`trainers.loop.train`) RUNS times (plus one to
warm up), with a cadence that switches logging on and off every BLOCK steps: on, the train scalars
at every step (loss/train, accuracy/train, lr; perf/step_ms and perf/samples_per_s about once a
second, as in every run), status.json and the writer's flushes, as a run does; off, nothing.
Histograms, validation, the graph and embeddings are off throughout: they are not logging at every
step.

Why blocks in one loop and not two runs: this machine's speed drifts by up to 50% for seconds at
a time, more than the effect measured. Blocks of BLOCK steps (~15 ms) see the same machine, so the
overhead is the time of all logging steps over the time of all plain steps, minus 1; the spread is
the quartiles of the ratio over adjacent block pairs. Every step is timed from one train_step call
to the next (a thin wrapper around the real adapter stamps the clock; both kinds of step pay it),
so a flush lands in the logging step that triggered it. The final flush and close, once a run
whatever its length, is reported beside the overhead (close_ms). The first steps of each run are
left out (MODELS: the first call of each traced function costs tens of ms, once). The event files
of the last run are read back to show the scalars were written (a count, not a guess).
"""
from __future__ import annotations

import statistics
import tempfile
import time
from pathlib import Path

from bench.cases import machine_line, run_cases, worker_main

GOAL = 0.05
# model -> (steps a run, steps left out at its start): the MLP is the default spec and the worst
# case (the shortest step); the CNN shows a model whose step is a few ms
MODELS = {"mlp": (8800, 2000), "cnn": (3000, 600)}
BLOCK = 20
RUNS = 2
EVERY_STEP_TAGS = ("loss/train", "accuracy/train", "lr")  # perf/* are time-sampled (loop.PERF_EVERY_S)
FRAMEWORKS = {"torch": "PyTorch (tensorboardX)", "tensorflow": "TensorFlow (tf.summary)"}


class _Timed:
    """The real adapter, with the clock read as each step starts and at the end."""

    def __init__(self, adapter):
        self.adapter, self.stamps = adapter, []

    def train_step(self, *args):
        self.stamps.append(time.perf_counter())
        return self.adapter.train_step(*args)

    def close(self):  # the final flush and close, timed apart: once a run, whatever its length
        self.stamps.append(time.perf_counter())
        self.adapter.close()
        self.close_s = time.perf_counter() - self.stamps[-1]

    def __getattr__(self, name):
        return getattr(self.adapter, name)


def _worker(framework: str, model: str) -> dict:
    from trainers import data
    from trainers.loop import Cadence, train
    from trainers.runtime import Paths, StatusFile
    from twinboard.contract import RunSpec

    if framework == "torch":
        from trainers.torch_trainer import open_adapter
    else:
        from trainers.tf_trainer import open_adapter

    class Blocks(Cadence):
        def is_log(self, step: int) -> bool:
            return (step // BLOCK) % 2 == 1

    steps, warm_steps = MODELS[model]
    spec = RunSpec(model=model, steps=steps, epochs=0)
    ds = data.load(spec)
    total = data.total_steps(spec, len(ds.x_train))
    never = total + 1
    cad = Blocks(total, steps_per_epoch=never, log_every=1, histogram_every=never,
                 embedding_steps=frozenset(), ends=False)
    on_s = off_s = background_s = 0.0
    close_s: list[float] = []
    n_on = n_off = logged = 0
    pairs: list[float] = []
    with tempfile.TemporaryDirectory(prefix="twinboard-overhead-") as tmp:
        for r in range(RUNS + 1):  # run 0 warms caches and allocators; not counted
            run_dir = Path(tmp) / f"run{r}"
            paths = Paths(run_dir / "spec.json", run_dir, run_dir / framework)
            run_dir.mkdir()
            spec.save(paths.spec_path)
            with open_adapter(spec, paths, ds, cad) as adapter:
                timed = _Timed(adapter)
                train(spec, ds, cad, timed, StatusFile(paths.logdir, total))
            if not r:
                continue
            background_s += adapter.background_s()
            logged += sum(1 for s in range(1, total + 1) if cad.is_log(s))
            written = _count_scalars(paths.logdir)
            step_s = [b - a for a, b in zip(timed.stamps, timed.stamps[1:])]  # step s at [s - 1]
            blocks: dict[int, list[float]] = {}
            for step, dt in enumerate(step_s, start=1):
                blocks.setdefault(step // BLOCK, []).append(dt)
            for k in range(warm_steps // BLOCK + 1, max(blocks) - 1, 2):  # (off k - 1, on k), both whole
                off, on = blocks[k - 1], blocks[k]
                if len(off) == len(on) == BLOCK:
                    pairs.append(sum(on) / sum(off) - 1)
                    on_s, off_s, n_on, n_off = on_s + sum(on), off_s + sum(off), n_on + len(on), n_off + len(off)
            close_s.append(timed.close_s)
    expected = {tag: sum(1 for s in range(1, total + 1) if cad.is_log(s)) for tag in EVERY_STEP_TAGS}
    return {"framework": framework, "model": model, "steps": total, "warm_steps": warm_steps, "runs": RUNS, "block": BLOCK, "pairs": len(pairs),
            "off_ms_per_step": off_s / n_off * 1e3, "every_step_ms_per_step": on_s / n_on * 1e3,
            "logging_us_per_step": (on_s / n_on - off_s / n_off) * 1e6,
            "overhead": (on_s / n_on) / (off_s / n_off) - 1,
            "pair_quartiles": statistics.quantiles(pairs, n=4), "pair_mean": statistics.fmean(pairs),
            "pairs_all": pairs,
            "background_us_per_logged_step": background_s / logged * 1e6,
            "close_ms": statistics.fmean(close_s) * 1e3,
            "scalars_written": written, "scalars_expected": expected}


def _count_scalars(logdir: Path) -> dict[str, int]:
    from twinboard import read_scalars

    return {str(tag): int(n) for tag, n in read_scalars(str(logdir)).groupby("tag", observed=True).size().items()}


def run() -> dict:
    results = run_cases("bench.trainer_overhead", FRAMEWORKS, MODELS)
    return {"goal_overhead": GOAL, "spec": "digits, batch 32, float32, 1 thread, SGD; default hidden sizes",
            "results": results}


def markdown(result: dict) -> str:
    m, first = result["machine"], result["results"][0]
    lines = ["## Trainer logging overhead: train scalars at every step vs logging off", "",
             f"{result['spec']}. The real loop (`trainers.loop.train`), {first['runs']} runs a case, "
             f"logging switched on and off every {first['block']} steps; overhead = mean logging step / "
             "mean plain step - 1 over the adjacent block pairs after the first steps of each run "
             "(quartiles of the pairs beside it).", "",
             "| model | trainer | steps a run (left out) | off (ms/step) | every step (ms/step) | "
             "logging (us/step) | overhead | pair quartiles | goal | off the loop (us/logged step) | "
             "close (ms/run) | loss, accuracy, lr in the file | perf points |",
             "|---|---|---:|---:|---:|---:|---:|---|---|---:|---:|---:|---:|"]
    for r in result["results"]:
        q = r["pair_quartiles"]
        ok = "met" if r["overhead"] <= result["goal_overhead"] else "**not met**"
        lines.append(f"| {r['model']} | {FRAMEWORKS[r['framework']]} | {r['steps']:,} ({r['warm_steps']:,}) | "
                     f"{r['off_ms_per_step']:.3f} | {r['every_step_ms_per_step']:.3f} | "
                     f"{r['logging_us_per_step']:.0f} | {r['overhead'] * 100:+.1f}% | "
                     f"{q[0] * 100:+.1f}% .. {q[2] * 100:+.1f}% | <= {result['goal_overhead'] * 100:.0f}%: {ok} | "
                     f"{r['background_us_per_logged_step']:.0f} | {r['close_ms']:.0f} | "
                     f"{sum(r['scalars_written'].get(t, 0) for t in EVERY_STEP_TAGS):,} of "
                     f"{sum(r['scalars_expected'].values()):,} | {r['scalars_written'].get('perf/step_ms', 0)} |")
    lines += ["", "Off the loop: CPU time the trainer's writer thread used per logged step, turning held "
              "scalars into events and writing them (torch: its whole event file; TF: its train scalars, "
              "imported into the tf.summary writer), beside the training step when a core is free; not in "
              "the overhead, and on a pair sharing two cores it competes with the other trainer. Close: the "
              "final flush and close of the writer, once a run. The file counts are of the last run "
              "(logging on every other block of steps).",
              "", machine_line(m), ""]
    return "\n".join(lines)


if __name__ == "__main__":
    worker_main("bench.trainer_overhead", _worker, FRAMEWORKS, MODELS)
