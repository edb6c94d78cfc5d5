"""`python -m trainers.deploy FRAMEWORK RUN/spec.json`: export a run that has ended, in that framework.

What `twinboard export RUN` starts, once per framework (the dashboard's process imports no framework).
The model is built as the trainer builds it (its `open_adapter`, into a scratch event folder, so the
run's own files are untouched), then:
- the weights the run saved at the end of training (<run>/<framework>/export/weights.*) are loaded;
- or, for a run that saved none (made before export existed, or with export off), the trainer's own
  `_run` trains it again, with export on, writing its events into the scratch folder: the data split,
  batch order and initial weights all come from the seed, so it is the same training, and the export
  is the one the run would have done at its end (deploy.json's weights.source says it was retrained;
  the weights are saved, so the next export loads them).
Exit 0 when deploy.json was written (an artifact that failed is recorded in it), 1 when the export
could not run, 2 for a bad spec.
"""
from __future__ import annotations

import argparse
import sys
import tempfile
from pathlib import Path

from twinboard.contract.deploy import weights_path

MODULES = {"torch": "trainers.torch_trainer", "tensorflow": "trainers.tf_trainer"}
LOADED = "loaded from {name}, saved at the end of training"
RETRAINED = "trained again from spec.json (the run saved no weights): the same seed, data and steps"


def main(argv: list[str] | None = None) -> int:
    p = argparse.ArgumentParser(prog="python -m trainers.deploy", description=__doc__.splitlines()[0])
    p.add_argument("framework", choices=sorted(MODULES))
    p.add_argument("spec", type=Path, help="the run's spec.json")
    args = p.parse_args(argv)
    import dataclasses
    import importlib

    from trainers.deploy.export import export_trained, side
    from trainers.loop import run_main
    from twinboard.contract import read_json, write_json
    from twinboard.contract.deploy import deploy_path

    fw = args.framework
    trainer = importlib.import_module(MODULES[fw])

    def body(spec, paths, ds, cadence, status) -> None:
        run_dir = paths.run_dir  # paths.logdir is the scratch folder: the run's event files stay as they are
        weights = weights_path(run_dir / fw, fw)
        if weights.is_file():
            with trainer.open_adapter(spec, paths, ds, cadence) as adapter:
                side(fw).load_weights(adapter.model, weights)
            export_trained(fw, spec, run_dir, ds, adapter.model, source=LOADED.format(name=weights.name), save=False)
            return
        print(f"{fw}: no saved weights: training the run again from its spec.json", file=sys.stderr, flush=True)
        # The trainer's own run with export on: the very training the run did, then the export it
        # would have done at its end.
        trainer._run(dataclasses.replace(spec, export=True), paths, ds, cadence, status)
        doc = read_json(deploy_path(run_dir / fw))
        if doc is not None and isinstance(doc.get("weights"), dict):
            doc["weights"]["source"] = RETRAINED
            write_json(deploy_path(run_dir / fw), doc)

    with tempfile.TemporaryDirectory(prefix="twinboard-export-") as scratch:
        code = run_main(fw, body, [str(args.spec), "--logdir", scratch], trainer.load_framework)
    if code:
        return code
    doc = read_json(deploy_path(args.spec.resolve().parent / fw))
    if doc is None or doc.get("error"):
        print(f"{fw} export failed: {doc.get('error') if doc else 'no deploy.json written'}", file=sys.stderr)
        return 1
    return 0


if __name__ == "__main__":
    sys.exit(main())
