"""The initial weights both frameworks start from with init=shared (numpy only).

Each trainer loads ``run_dir/init.npz``, drawn with numpy from the seed in torch's layout by the
model pair's plan (trainers.models.base.shared_init); whichever trainer comes first writes it.
"""
from __future__ import annotations

import io
import zipfile
from pathlib import Path
from typing import Callable

import numpy as np

from trainers.models.base import Param, shared_init
from twinboard.contract import INIT_NPZ, RunSpec, write_bytes_atomic


def _npz_bytes_deterministic(arrays: dict[str, np.ndarray]) -> bytes:
    # np.savez stamps the current time into the zip: two trainers would write different bytes.
    buf = io.BytesIO()
    with zipfile.ZipFile(buf, "w", compression=zipfile.ZIP_STORED) as zf:
        for name in sorted(arrays):
            info = zipfile.ZipInfo(name + ".npy", date_time=(1980, 1, 1, 0, 0, 0))
            with zf.open(info, "w", force_zip64=True) as f:
                np.lib.format.write_array(f, np.ascontiguousarray(arrays[name]), allow_pickle=False)
    return buf.getvalue()


def ensure_shared_init(spec: RunSpec, params: list[Param], run_dir: Path) -> tuple[dict[str, np.ndarray], Path]:
    """Writes ``run_dir/init.npz`` if missing (both trainers may race: same bytes, atomic rename)
    and returns what the file holds, checked against the pair's plan."""
    path = run_dir / INIT_NPZ
    expected = shared_init(spec, params)
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


def file_sha256(path: Path) -> str:
    import hashlib
    return hashlib.sha256(Path(path).read_bytes()).hexdigest()


SHARED_INIT_DESC = ("shared: init.npz (numpy from the seed, torch's default initializers: "
                    "kaiming_uniform(a=sqrt(5)), bias U(±1/sqrt(fan_in)), and the model's own)")


def apply_init(spec: RunSpec, params: list[Param], run_dir: Path, load: Callable[[dict[str, np.ndarray]], None],
               native_desc: str, shared_desc: str | None = None) -> tuple[str, str | None]:
    """init=shared: ensures init.npz and hands its arrays to ``load`` (the framework's layout change);
    init=native: nothing. Returns the settings' ("init", "init_sha256")."""
    if spec.init != "shared":
        return native_desc, None
    arrays, init_path = ensure_shared_init(spec, params, run_dir)
    load(arrays)
    return shared_desc or SHARED_INIT_DESC, file_sha256(init_path)
