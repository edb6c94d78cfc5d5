"""What both trainers share: the command line, status and settings files, the shared initial
weights, the logging cadence and the training loop itself.

Framework code lives in ``torch_trainer.py`` / ``tf_trainer.py`` behind a small adapter (see
``Adapter``); everything that decides *when* something happens lives here, so the two frameworks
cannot drift apart in cadence. This module imports numpy only: a bad spec is refused before the
seconds-long framework import.
"""
from __future__ import annotations

import argparse
import json
import os
import signal
import sys
import time
import traceback
import zipfile
from dataclasses import dataclass
from pathlib import Path
from typing import Any, Callable, Protocol

import numpy as np

from trainers import data
from trainers.spec import RunSpec, SpecError

FRAMEWORK_DIRS = {"torch": "torch", "tensorflow": "tensorflow"}  # framework -> event folder name
STATUS_MIN_INTERVAL_S = 0.5  # status.json rewrites on log steps are throttled to this (each costs ~0.1 ms)
FLUSH_S = 2  # event-file flush interval, both writers: curves stay live in the dashboard


# --- command line --------------------------------------------------------------------------------
@dataclass(frozen=True)
class Paths:
    spec_path: Path  # the run's spec.json
    run_dir: Path  # the folder holding spec.json (and init.npz)
    logdir: Path  # the framework's event folder: run_dir/<framework> unless --logdir


def parse_args(framework: str, argv: list[str] | None = None) -> tuple[RunSpec, Paths]:
    """Reads and validates the spec; on any problem prints one line and exits 2."""
    p = argparse.ArgumentParser(prog=f"python -m trainers.{'torch' if framework == 'torch' else 'tf'}_trainer",
                                description=f"Train one {framework} run described by a spec.json.")
    p.add_argument("spec", type=Path, help="path to the run's spec.json")
    p.add_argument("--logdir", type=Path, default=None,
                   help=f"event folder (default: the spec's folder / {FRAMEWORK_DIRS[framework]})")
    args = p.parse_args(argv)
    spec_path = args.spec.resolve()
    logdir = (args.logdir or spec_path.parent / FRAMEWORK_DIRS[framework]).resolve()
    paths = Paths(spec_path, spec_path.parent, logdir)
    try:
        spec = RunSpec.load(spec_path)
    except (SpecError, OSError, ValueError, TypeError) as exc:
        kind = "bad spec" if isinstance(exc, (SpecError, ValueError, TypeError)) else "cannot read spec"
        msg = f"{framework} trainer: {kind} {spec_path}: {exc}"
        print(msg, file=sys.stderr)
        if spec_path.parent.is_dir():  # let the dashboard see why, when it can
            StatusFile(logdir, 0).failed(0, msg)
        sys.exit(2)
    return spec, paths


# --- files written atomically --------------------------------------------------------------------
def atomic_write_bytes(path: Path, payload: bytes) -> None:
    """Readers never see a half-written file: write a private temp file, then rename over."""
    path.parent.mkdir(parents=True, exist_ok=True)
    tmp = path.with_name(f".{path.name}.{os.getpid()}.tmp")
    tmp.write_bytes(payload)
    os.replace(tmp, path)


def atomic_write_json(path: Path, obj: Any) -> None:
    atomic_write_bytes(path, (json.dumps(obj, indent=2, sort_keys=False) + "\n").encode())


class StatusFile:
    """``<logdir>/status.json``: {"state", "step", "total_steps", "updated", "error"}."""

    def __init__(self, logdir: Path, total_steps: int):
        self.path = Path(logdir) / "status.json"
        self.total_steps = total_steps
        self.step = 0  # the last step reported to running(); a failure is reported at it
        self._last = 0.0

    def _write(self, state: str, step: int, error: str | None) -> None:
        self._last = time.time()
        atomic_write_json(self.path, {"state": state, "step": int(step), "total_steps": int(self.total_steps),
                                      "updated": self._last, "error": error})

    def running(self, step: int, force: bool = False) -> None:
        self.step = step
        # Throttled: at log_every=1 a rewrite per step would cost more than the step itself.
        if force or time.time() - self._last >= STATUS_MIN_INTERVAL_S:
            self._write("running", step, None)

    def finished(self, step: int) -> None:
        self._write("finished", step, None)

    def failed(self, step: int | None, error: str) -> None:
        self._write("failed", self.step if step is None else step, error)


# --- shared initial weights ----------------------------------------------------------------------
@dataclass(frozen=True)
class Layer:
    name: str  # dense0, conv0, out ...: the same name in both frameworks and in the tags
    kind: str  # "dense" or "conv"
    weight_shape: tuple[int, ...]  # torch layout: Linear [out, in]; Conv2d [out, in, kh, kw]
    fan_in: int
    activation: str  # "relu" or "none"


CONV_CHANNELS = (8, 16)  # conv0, conv1 output channels; 3x3 kernels, same padding, stride 1


def layer_plan(spec: RunSpec, n_features: int, n_outputs: int) -> list[Layer]:
    """The parametric layers in order; both frameworks build exactly these."""
    layers: list[Layer] = []
    if spec.model == "cnn":
        side = int(round(n_features ** 0.5))  # digits: 8x8, one channel
        c_in = 1
        for i, c_out in enumerate(CONV_CHANNELS):
            layers.append(Layer(f"conv{i}", "conv", (c_out, c_in, 3, 3), c_in * 9, "relu"))
            c_in = c_out
        widths, fan = [spec.hidden[-1]], c_in * side * side
    else:
        widths, fan = list(spec.hidden), n_features
    for i, w in enumerate(widths):
        layers.append(Layer(f"dense{i}", "dense", (w, fan), fan, "relu"))
        fan = w
    layers.append(Layer("out", "dense", (n_outputs, fan), fan, "none"))
    return layers


def shared_init(spec: RunSpec, layers: list[Layer]) -> dict[str, np.ndarray]:
    """torch's default scheme drawn with numpy from the seed, torch layout names and shapes.

    kaiming_uniform(a=sqrt(5)) has bound gain*sqrt(3/fan_in) = sqrt(1/3)*sqrt(3/fan_in) = 1/sqrt(fan_in);
    the bias is U(-1/sqrt(fan_in), 1/sqrt(fan_in)). Drawn in float64, then cast to the run dtype.
    For the CNN, dense0.weight columns follow torch's NCHW flatten order (c, h, w).
    """
    rng = np.random.default_rng([spec.seed, 3])
    out: dict[str, np.ndarray] = {}
    for layer in layers:
        bound = 1.0 / np.sqrt(layer.fan_in)
        out[f"{layer.name}.weight"] = rng.uniform(-bound, bound, size=layer.weight_shape).astype(spec.dtype)
        out[f"{layer.name}.bias"] = rng.uniform(-bound, bound, size=layer.weight_shape[0]).astype(spec.dtype)
    return out


def _npz_bytes_deterministic(arrays: dict[str, np.ndarray], path: Path) -> None:
    # np.savez stamps the current time into the zip: two trainers would write different bytes.
    with zipfile.ZipFile(path, "w", compression=zipfile.ZIP_STORED) as zf:
        for name in sorted(arrays):
            info = zipfile.ZipInfo(name + ".npy", date_time=(1980, 1, 1, 0, 0, 0))
            with zf.open(info, "w", force_zip64=True) as f:
                np.lib.format.write_array(f, np.ascontiguousarray(arrays[name]), allow_pickle=False)


def ensure_shared_init(spec: RunSpec, layers: list[Layer], run_dir: Path) -> tuple[dict[str, np.ndarray], Path]:
    """Writes ``run_dir/init.npz`` if missing (both trainers may race: same bytes, atomic rename)
    and returns what the file holds, checked against the layer plan."""
    path = run_dir / "init.npz"
    expected = shared_init(spec, layers)
    if not path.exists():
        tmp = path.with_name(f".init.npz.{os.getpid()}.tmp")
        _npz_bytes_deterministic(expected, tmp)
        os.replace(tmp, path)
    with np.load(path, allow_pickle=False) as z:
        loaded = {k: z[k] for k in z.files}
    for name, arr in expected.items():
        got = loaded.get(name)
        if got is None or got.shape != arr.shape or got.dtype != arr.dtype:
            desc = "missing" if got is None else f"{got.dtype}{list(got.shape)}"
            raise ValueError(f"{path}: {name} is {desc}, the spec needs {arr.dtype}{list(arr.shape)}")
    return loaded, path


def chw_to_hwc_rows(c: int, h: int, w: int) -> np.ndarray:
    """Row order that turns torch's NCHW-flatten dense kernel into the NHWC-flatten one:
    tf_kernel = torch_weight.T[perm], since perm[(h*W + w)*C + c] = (c*H + h)*W + w."""
    return np.arange(c * h * w).reshape(c, h, w).transpose(1, 2, 0).reshape(-1)


def file_sha256(path: Path) -> str:
    import hashlib
    return hashlib.sha256(Path(path).read_bytes()).hexdigest()


# --- cadence -------------------------------------------------------------------------------------
@dataclass(frozen=True)
class Cadence:
    """When each kind of record is written; steps count from 1."""
    total_steps: int
    steps_per_epoch: int
    log_every: int
    histogram_every: int  # resolved: spec value, or steps_per_epoch // 4 when the spec says 0
    embedding_steps: frozenset[int]

    @classmethod
    def from_spec(cls, spec: RunSpec, n_train: int) -> "Cadence":
        per_epoch = data.steps_per_epoch(spec, n_train)
        hist = spec.histogram_every or max(1, per_epoch // 4)
        return cls(data.total_steps(spec, n_train), per_epoch, spec.log_every, hist,
                   frozenset(spec.embedding_steps))

    def is_last(self, step: int) -> bool:
        return step == self.total_steps

    def is_log(self, step: int) -> bool:
        return step % self.log_every == 0 or step == self.total_steps

    def is_histogram(self, step: int) -> bool:
        return step % self.histogram_every == 0 or step == self.total_steps

    def is_validation(self, step: int) -> bool:
        return step % self.steps_per_epoch == 0 or step == self.total_steps

    def is_embedding(self, step: int) -> bool:
        return step in self.embedding_steps or step == self.total_steps


# --- settings.json -------------------------------------------------------------------------------
SETTINGS_KEYS = (
    "framework", "framework_version", "logger", "execution_mode", "device", "threads", "math_library",
    "dtype", "seed", "init", "init_sha256", "optimizer", "loss", "model", "layers", "total_params",
    "batch_norm", "dropout", "data_layout", "data", "batch_size", "epochs", "steps_per_epoch",
    "total_steps", "log_every", "histogram_every", "histogram_bins", "validation", "python",
)


def write_settings(logdir: Path, **settings: Any) -> dict[str, Any]:
    """Both trainers pass exactly SETTINGS_KEYS, so the Parity page can diff them key by key."""
    missing = [k for k in SETTINGS_KEYS if k not in settings]
    extra = [k for k in settings if k not in SETTINGS_KEYS]
    assert not missing and not extra, f"settings keys: missing {missing}, unexpected {extra}"
    ordered = {k: settings[k] for k in SETTINGS_KEYS}
    atomic_write_json(Path(logdir) / "settings.json", ordered)
    return ordered


def common_settings(spec: RunSpec, cadence: Cadence, ds: data.Dataset) -> dict[str, Any]:
    """The settings that do not depend on the framework (still written by each side)."""
    return {
        "dtype": spec.dtype, "seed": spec.seed,
        "model": spec.model, "batch_norm": "none", "dropout": "none",
        "data": {"task": spec.task, "n_train": int(len(ds.x_train)), "n_val": int(len(ds.x_val)),
                 "shuffle": "numpy permutation per epoch from the seed (trainers.data)",
                 "drop_last": True},
        "batch_size": spec.batch_size, "epochs": spec.epochs, "steps_per_epoch": cadence.steps_per_epoch,
        "total_steps": cadence.total_steps, "log_every": cadence.log_every,
        "histogram_every": cadence.histogram_every, "histogram_bins": HISTOGRAM_BINS,
        "validation": "full validation split, end of every epoch and the final step",
        "python": sys.version.split()[0],
    }


HISTOGRAM_BINS = 30  # equal-width bins over [min, max], as tf.summary.histogram's default


def finite_values(values: np.ndarray) -> np.ndarray:
    """Flattened, non-finite values dropped: a diverged run must not die writing a histogram."""
    flat = np.asarray(values).reshape(-1)
    return flat if np.isfinite(flat).all() else flat[np.isfinite(flat)]


def histogram_buckets(values: np.ndarray, k: int = HISTOGRAM_BINS) -> np.ndarray:
    """[k, 3] float64 rows (left edge, right edge, count) for one array; see histogram_many."""
    return histogram_many([values], k)[0][0]


def histogram_many(arrays: list[np.ndarray], k: int = HISTOGRAM_BINS) -> tuple[np.ndarray, np.ndarray]:
    """Buckets of several arrays at once: ([n, k, 3] (left edge, right edge, count), [n, 3] (num,
    sum, sum of squares)). tf.summary.histogram's format and rule (tensorboard.plugins.histogram.
    summary_v2._buckets): k equal-width buckets over [min, max], bucket floor((x - min) / width)
    with the maximum clamped into the last; one distinct value v gives edges v and every count in
    the last bucket; no values gives zeros. Non-finite values are dropped (a diverged run must not
    die writing a histogram). Vectorised over the arrays: one histogram step writes ~24 of them."""
    flats = [finite_values(a).astype(np.float64, copy=False) for a in arrays]
    n = len(flats)
    sizes = np.array([f.size for f in flats])
    out, stats = np.zeros((n, k, 3)), np.zeros((n, 3))
    full = np.flatnonzero(sizes)
    if not full.size:
        return out, stats
    v = np.concatenate([flats[i] for i in full])
    starts = np.concatenate([[0], np.cumsum(sizes[full])[:-1]])
    lo, hi = np.minimum.reduceat(v, starts), np.maximum.reduceat(v, starts)
    seg = np.repeat(np.arange(full.size), sizes[full])
    width = np.where(hi > lo, (hi - lo) / k, 1.0)
    idx = np.floor((v - lo[seg]) / width[seg]).astype(np.intp)
    np.clip(idx, 0, k - 1, out=idx)
    counts = np.bincount(seg * k + idx, minlength=full.size * k).reshape(full.size, k).astype(np.float64)
    edges = lo[:, None] + (hi - lo)[:, None] * (np.arange(k + 1) / k)[None, :]
    edges[:, -1] = hi
    single = hi == lo
    edges[single] = hi[single, None]
    counts[single] = 0.0
    counts[single, -1] = sizes[full][single]
    out[full, :, 0], out[full, :, 1], out[full, :, 2] = edges[:, :-1], edges[:, 1:], counts
    stats[full, 0] = sizes[full]
    stats[full, 1] = np.add.reduceat(v, starts)
    stats[full, 2] = np.add.reduceat(v * v, starts)
    return out, stats


def describe_optimizer(spec: RunSpec, implementation: str, hyper_dtype: str, weight_decay_form: str,
                       eps: float | None = None) -> dict[str, Any]:
    """One dict shape for both frameworks; values say what really ran."""
    d: dict[str, Any] = {"name": spec.optimizer, "implementation": implementation, "lr": spec.lr,
                         "lr_schedule": "constant", "weight_decay": spec.weight_decay,
                         "weight_decay_form": weight_decay_form if spec.weight_decay else "none (weight_decay=0)",
                         "hyperparameter_dtype": hyper_dtype}
    if spec.optimizer == "sgd":
        d.update(momentum=spec.momentum, dampening=0.0, nesterov=False,
                 update="buf = momentum*buf + g; p -= lr*buf" if spec.momentum else "p -= lr*g")
    else:
        d.update(betas=[spec.beta1, spec.beta2], eps=spec.eps if eps is None else eps, amsgrad=False)
    return d


# --- embeddings ----------------------------------------------------------------------------------
def embedding_metadata(y_true: np.ndarray, outputs: np.ndarray, n_classes: int) -> list[list[str]]:
    """[label, prediction, correct] strings; regression: values with 4 digits and '-' for correct."""
    if n_classes:
        pred = outputs.argmax(axis=1)
        return [[str(int(t)), str(int(p)), str(bool(t == p)).lower()] for t, p in zip(y_true, pred)]
    return [[f"{float(t):.4g}", f"{float(p):.4g}", "-"] for t, p in zip(y_true.reshape(-1), outputs.reshape(-1))]


EMBEDDING_HEADER = ["label", "prediction", "correct"]


# --- optional extensions (written by other modules) ----------------------------------------------
def extension(name: str):
    """trainers.export_graph / export_embedding when present, else None."""
    try:
        return __import__(f"trainers.{name}", fromlist=[name])
    except ImportError:
        return None


def call_extension(name: str, func: str, *args: Any) -> None:
    """An optional export must never end a training run: failures go to stderr only."""
    mod = extension(name)
    if mod is None or not hasattr(mod, func):
        return
    try:
        getattr(mod, func)(*args)
    except Exception as exc:  # noqa: BLE001 - reported, training continues
        print(f"warning: {name}.{func} failed: {type(exc).__name__}: {exc}", file=sys.stderr)


# --- the training loop ---------------------------------------------------------------------------
class Adapter(Protocol):
    """What a framework provides to ``train``. Handles returned by train_step stay framework tensors
    until a log step needs numbers, so steps that log nothing pay nothing."""

    def train_step(self, step: int, idx: np.ndarray, want_grads: bool, log: bool) -> Any: ...
    def write_fp64_loss(self, step: int, handle: Any) -> None: ...
    def write_train_scalars(self, step: int, handle: Any, perf: dict[str, float]) -> None: ...
    def write_histograms(self, step: int, handle: Any) -> None: ...
    def write_validation(self, step: int) -> None: ...
    def export_graph(self, x: np.ndarray, y: np.ndarray) -> None: ...
    def export_embedding(self, step: int) -> None: ...
    def close(self) -> None: ...


def train(spec: RunSpec, ds: data.Dataset, cadence: Cadence, adapter: Adapter, status: StatusFile) -> None:
    x_train, y_train = ds.x_train, ds.y_train
    fp64 = spec.dtype == "float64"
    clock = time.perf_counter
    spent, n_timed = 0.0, 0  # train-step wall time since the last log step
    step = 0
    for step, _epoch, idx in data.batches(spec, len(x_train)):
        want_grads, log = cadence.is_histogram(step), cadence.is_log(step)
        t0 = clock()
        handle = adapter.train_step(step, idx, want_grads, log)  # the batch is x_train[idx], y_train[idx]
        spent += clock() - t0
        n_timed += 1
        status.step = step  # a failure is reported at the step it happened in
        if fp64:
            adapter.write_fp64_loss(step, handle)
        if log:
            step_s = spent / n_timed
            adapter.write_train_scalars(step, handle, {"perf/step_ms": step_s * 1e3,
                                                       "perf/samples_per_s": len(idx) / step_s})
            spent, n_timed = 0.0, 0
            status.running(step)
        if want_grads:
            adapter.write_histograms(step, handle)
        if step == 1:
            adapter.export_graph(x_train[idx], y_train[idx])
        if cadence.is_validation(step):
            adapter.write_validation(step)
        if cadence.is_embedding(step):
            adapter.export_embedding(step)
    adapter.close()
    status.finished(step)


Body = Callable[[RunSpec, Paths, data.Dataset, Cadence, StatusFile], None]


def run_main(framework: str, body: Body, argv: list[str] | None = None) -> int:
    """Spec errors exit 2; any other failure marks status.json failed, prints one line and the
    traceback to stderr, and exits 1. SIGTERM (the launcher's stop) counts as a failure too."""
    spec, paths = parse_args(framework, argv)
    status = StatusFile(paths.logdir, 0)

    def on_term(signum, _frame):
        raise KeyboardInterrupt(f"stopped by signal {signum}")

    signal.signal(signal.SIGTERM, on_term)
    try:
        ds = data.load(spec)
        cadence = Cadence.from_spec(spec, len(ds.x_train))
        status.total_steps = cadence.total_steps
        paths.logdir.mkdir(parents=True, exist_ok=True)
        status.running(0, force=True)
        body(spec, paths, ds, cadence, status)
        return 0
    except BaseException as exc:  # noqa: BLE001 - reported and turned into an exit status
        if isinstance(exc, SystemExit) and not exc.code:
            return 0
        msg = f"{type(exc).__name__}: {exc}"
        try:
            status.failed(None, msg)
        except OSError:
            pass
        print(f"{framework} trainer failed: {msg}", file=sys.stderr)
        traceback.print_exc(file=sys.stderr)
        return 1
