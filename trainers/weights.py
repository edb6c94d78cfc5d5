"""The layer plan and the initial weights both frameworks start from (numpy only).

With init=shared each trainer loads ``run_dir/init.npz``, drawn here with numpy from the seed in
torch's layout.
"""
from __future__ import annotations

import io
import zipfile
from dataclasses import dataclass
from pathlib import Path
from typing import Callable

import numpy as np

from twinboard.contract import INIT_NPZ, RunSpec, write_bytes_atomic


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


def _npz_bytes_deterministic(arrays: dict[str, np.ndarray]) -> bytes:
    # np.savez stamps the current time into the zip: two trainers would write different bytes.
    buf = io.BytesIO()
    with zipfile.ZipFile(buf, "w", compression=zipfile.ZIP_STORED) as zf:
        for name in sorted(arrays):
            info = zipfile.ZipInfo(name + ".npy", date_time=(1980, 1, 1, 0, 0, 0))
            with zf.open(info, "w", force_zip64=True) as f:
                np.lib.format.write_array(f, np.ascontiguousarray(arrays[name]), allow_pickle=False)
    return buf.getvalue()


def ensure_shared_init(spec: RunSpec, layers: list[Layer], run_dir: Path) -> tuple[dict[str, np.ndarray], Path]:
    """Writes ``run_dir/init.npz`` if missing (both trainers may race: same bytes, atomic rename)
    and returns what the file holds, checked against the layer plan."""
    path = run_dir / INIT_NPZ
    expected = shared_init(spec, layers)
    if not path.exists():
        write_bytes_atomic(path, _npz_bytes_deterministic(expected))
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


SHARED_INIT_DESC = ("shared: init.npz (numpy from the seed: kaiming_uniform(a=sqrt(5)), "
                    "bias U(±1/sqrt(fan_in)))")


def apply_init(spec: RunSpec, layers: list[Layer], run_dir: Path, load: Callable[[dict[str, np.ndarray]], None],
               native_desc: str) -> tuple[str, str | None]:
    """init=shared: ensures init.npz and hands its arrays to ``load`` (the framework's layout change);
    init=native: nothing. Returns the settings' ("init", "init_sha256")."""
    if spec.init != "shared":
        return native_desc, None
    arrays, init_path = ensure_shared_init(spec, layers, run_dir)
    load(arrays)
    return SHARED_INIT_DESC, file_sha256(init_path)
