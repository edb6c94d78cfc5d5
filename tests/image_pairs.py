"""Two real digits pairs for the image and disagreement tests, trained once per pytest process:
`shared`, an MLP with init=shared in float64 (the two frameworks predict alike to the last sample),
and `native`, a CNN with each framework's own initializers (they part at once; the CNN also writes
its first conv layer's filters). Trained by the real trainers' main(), one process per framework,
side by side (tests.test_parity_training.run_many: one framework import each). 1437 training rows,
batch 64: 22 steps an epoch, so steps=26 evaluates at steps 22 and 26.
"""
from __future__ import annotations

import os
import time
from pathlib import Path

from twinboard.contract import RunSpec

SPECS = {
    "shared": RunSpec(task="digits", model="mlp", hidden=(32,), batch_size=64, steps=26, log_every=13,
                      histogram_every=26, dtype="float64", init="shared"),
    "native": RunSpec(task="digits", model="cnn", hidden=(16,), batch_size=64, steps=26, log_every=13,
                      histogram_every=26, init="native"),
}
EVAL_STEPS = (22, 26)
_made: dict[str, Path] = {}


def prediction_pairs(tmp_path_factory) -> Path:
    """The logdir holding both pairs (`<logdir>/shared`, `<logdir>/native`); `native` is the newer."""
    if "logdir" not in _made:
        from tests.test_parity_training import run_many

        root = tmp_path_factory.mktemp("image_pairs") / "logs"
        run_many(root, SPECS)
        now = time.time()  # the page's default pair is the newest: make that `native`, whatever finished last
        os.utime(root / "shared", (now - 60, now - 60))
        os.utime(root / "native", (now, now))
        _made["logdir"] = root
    return _made["logdir"]
