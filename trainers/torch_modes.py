"""The PyTorch train step's execution modes (RunSpec.torch_mode) and what settings.json says of them.

- eager: model(x), the loss, backward, torch.optim's step, op by op (the trainer's default).
- compile: the forward pass and the loss through torch.compile (default backend, inductor: C++
  kernels built on the first call, ~20 s on a busy 2-core machine, seconds from its on-disk cache
  later), fullgraph=True so no part of it drops back to eager unseen; AOTAutograd compiles the
  backward from the same trace. torch.optim's step stays eager, as in eager mode: the optimizer's
  arithmetic is the same in both modes. Validation, histograms, graph and embedding exports use the
  eager model, which holds the same parameters: a validation batch of another shape would otherwise
  recompile.

A mode that cannot run fails the run with timing.ModeError naming it: inductor without a working
C++ compiler is found before the model is built, any other failure of the first compiled call at
step 1. torch is imported inside the functions: importing this module costs nothing.
"""
from __future__ import annotations

from typing import Any, Callable

from trainers.timing import first_call as timing_first_call
from trainers.timing import mode_failure
from twinboard.contract import RunSpec

COMPILE_WHAT = "torch.compile, backend inductor"


def forward_and_loss(model, loss_fn) -> Callable:
    """(logits, loss) of a batch: what the compiled mode hands to torch.compile, as one graph."""
    def step(xb, yb):
        out = model(xb)
        return out, loss_fn(out, yb)
    return step


def check_mode(spec: RunSpec) -> str:
    """Before the model is built: the C++ compiler inductor will use ('' in eager mode), or the
    ModeError the run fails with. get_cpp_compiler runs the compiler named by CXX (else g++)."""
    if spec.torch_mode != "compile":
        return ""
    try:
        from torch._inductor.cpp_builder import get_cpp_compiler
    except ImportError:  # another torch: the first compiled call will say what is missing
        return "unknown"
    try:
        return get_cpp_compiler()
    except Exception as exc:  # noqa: BLE001 - InductorError / InvalidCxxCompiler: named, re-raised
        raise mode_failure("torch_mode", "compile", COMPILE_WHAT, exc) from exc


def build_forward(spec: RunSpec, model, loss_fn, compiler: str) -> tuple[Callable, str]:
    """(forward_and_loss, possibly compiled; mode_note) for spec.torch_mode; `compiler`: check_mode's."""
    import torch

    eager = forward_and_loss(model, loss_fn)
    if spec.torch_mode == "eager":
        return eager, "eager PyTorch: forward, loss, backward and torch.optim's step run op by op"
    import torch._dynamo

    # An environment's TORCHDYNAMO_SUPPRESS_ERRORS would fall back to eager under compile's name.
    torch._dynamo.config.suppress_errors = False
    compiled = torch.compile(eager, fullgraph=True)  # the default backend: inductor
    return compiled, (f"torch.compile(fullgraph=True), backend inductor, C++ compiler {compiler}: "
                      "forward and loss compiled, backward by AOTAutograd, torch.optim's step eager; "
                      "validation and exports run the eager model (same parameters)")


def first_call(spec: RunSpec, call: Callable[[], Any]) -> Any:
    """call() for step 1, whose compiled call compiles: its failure is the mode's (ModeError)."""
    if spec.torch_mode == "eager":
        return call()
    return timing_first_call("torch_mode", spec.torch_mode, COMPILE_WHAT, call)


def cache_note(spec: RunSpec) -> str:
    """After step 1 in compile mode, whether the compiled code came from inductor's on-disk caches
    (seconds) or was built (~20 s): first_step_s means little without it. '' in eager mode."""
    if spec.torch_mode == "eager":
        return ""
    try:
        from torch._dynamo.utils import counters
    except ImportError:
        return ""
    ind, aot = counters.get("inductor", {}), counters.get("aot_autograd", {})
    return (f"; first step: inductor FX graph cache {ind.get('fxgraph_cache_hit', 0)} hits, "
            f"{ind.get('fxgraph_cache_miss', 0)} misses; AOTAutograd cache {aot.get('autograd_cache_hit', 0)} "
            f"hits, {aot.get('autograd_cache_miss', 0)} misses")
