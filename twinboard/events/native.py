"""Loading the compiled kernel behind `twinboard.events.fastscan`: the saved object, or a fresh build.

How the kernel runs: `fastscan.warm()` (run by `make` set-up) compiles it once with numba into
native object code for this CPU and saves it in `__pycache__/`; later processes load that object
with llvmlite and call it through ctypes, without importing numba (whose import and first call cost
0.4-0.65 s). A missing object is built on first use. Without numba/llvmlite, when loading or
building fails, or with `TWINBOARD_NO_JIT=1`, `fastscan.decode()` runs the protobuf path over every
record: about 7 µs a record instead of ~0.06 µs, never a different result.
"""
from __future__ import annotations

import ctypes
import hashlib
import json
import os
import platform
import sys
import threading
from pathlib import Path

JIT_DISABLED = os.environ.get("TWINBOARD_NO_JIT", "").strip() not in ("", "0")

# Every source the object is built from: a change to any of them means a rebuild.
_KERNEL_SOURCES = tuple(Path(__file__).with_name(n)
                        for n in ("_fastscan_kernel.py", "_proto_kernel.py", "_crc32c_kernel.py"))
_MAGIC = b"twinboard-fastscan-2\n"

_state: dict = {}  # "kernel": {"scan", "group"} ctypes functions, or None once decided


def available() -> bool:
    """True when the compiled kernel is in use (loaded or built now); False means the pure path."""
    return kernel() is not None


_LOAD_LOCK = threading.Lock()


def kernel() -> dict | None:
    """The compiled kernels {"scan", "group"} as ctypes functions, loaded (or built) on first use;
    None when they cannot be had (see the module docstring): then `fastscan` runs the protobuf path."""
    if "kernel" not in _state:
        with _LOAD_LOCK:
            if "kernel" not in _state:
                kernels = None
                if not JIT_DISABLED:
                    try:
                        kernels = _load(build=True)
                    except Exception as exc:  # noqa: BLE001  no numba/llvmlite, or it failed
                        _state["error"] = exc
                        print(f"twinboard: compiled event decoder unavailable ({exc!r}); using "
                              "the protobuf path (slower, same results)", file=sys.stderr)
                _state["kernel"] = kernels
    return _state["kernel"]


def _cache_dirs() -> list[Path]:
    """Where the object lives: __pycache__ beside the code, else the user's cache folder."""
    xdg = os.environ.get("XDG_CACHE_HOME") or os.path.join(os.path.expanduser("~"), ".cache")
    return [Path(__file__).parent / "__pycache__", Path(xdg) / "twinboard"]


def _object_name(llvm) -> str:
    """File name keyed by everything the machine code depends on: kernel source, CPU, platform."""
    h = hashlib.sha256()
    for source in _KERNEL_SOURCES:
        h.update(source.read_bytes())
    for part in (llvm.get_host_cpu_name(), llvm.get_host_cpu_features().flatten(),
                 platform.machine(), sys.platform, os.environ.get("NUMBA_CPU_NAME", ""),
                 os.environ.get("NUMBA_CPU_FEATURES", "")):
        h.update(b"\0" + part.encode())
    return f"fastscan-{h.hexdigest()[:20]}.o"


def _load(build: bool):
    """The kernels as ctypes functions {"scan", "group"}, from the saved object (built if missing)."""
    import llvmlite.binding as llvm

    llvm.initialize_native_target()
    llvm.initialize_native_asmprinter()
    name = _object_name(llvm)
    blob = None
    for d in _cache_dirs():
        try:
            blob = (d / name).read_bytes()
            break
        except OSError:
            continue
    if blob is None or not blob.startswith(_MAGIC):
        if not build:
            return None
        blob = _build(name)
    header, rest = blob[len(_MAGIC):].split(b"\n", 1)
    _resolve_numba_helpers(llvm)
    p, i64 = ctypes.c_void_p, ctypes.c_int64
    protos = {"scan": ctypes.CFUNCTYPE(None, p, i64, i64, i64, p, p, p, i64, p, p, p, p, p, p, p, p,
                                       i64, i64, p),
              "group": ctypes.CFUNCTYPE(None, p, p, p, p, i64, p, p, p, p)}
    kernels, at = {}, 0
    for kind, symbol, size in json.loads(header):
        target = llvm.Target.from_default_triple().create_target_machine()
        engine = llvm.create_mcjit_compiler(llvm.parse_assembly(""), target)
        engine.add_object_file(llvm.ObjectFileRef.from_data(rest[at:at + size]))
        engine.finalize_object()
        at += size
        address = engine.get_function_address(symbol)
        if not address:
            raise RuntimeError(f"symbol {symbol!r} missing from the kernel object")
        _state.setdefault("engines", []).append(engine)  # the code lives as long as its engine
        kernels[kind] = protos[kind](address)
    if set(kernels) != set(protos):
        raise RuntimeError(f"kernel object holds {sorted(kernels)}")
    return kernels


def _build(name: str) -> bytes:
    """Compile the kernels with numba (seconds to a minute) and save them where it can write."""
    from twinboard.events import _fastscan_kernel

    built = _fastscan_kernel.build()
    header = json.dumps([[kind, symbol, len(obj)] for kind, (symbol, obj) in built.items()])
    blob = _MAGIC + header.encode() + b"\n" + b"".join(obj for _, obj in built.values())
    for d in _cache_dirs():
        try:
            d.mkdir(parents=True, exist_ok=True)
            tmp = d / f".{name}.{os.getpid()}.tmp"
            tmp.write_bytes(blob)
            os.replace(tmp, d / name)
            for stale in d.glob("fastscan-*.o"):  # built from older sources or for other CPUs
                if stale.name != name:
                    stale.unlink(missing_ok=True)
            break
        except OSError:
            continue
    return blob


_NUMBA_HELPERS = ("numba_gil_ensure", "numba_gil_release", "numba_do_raise", "numba_unpickle",
                  "numba_runtime_build_excinfo_struct")


def _unreachable(*_args) -> None:
    os.write(2, b"twinboard: the compiled event decoder raised, which it cannot do; aborting\n")
    os.abort()


def _resolve_numba_helpers(llvm) -> None:
    """numba's C-callable wrapper keeps an error path that names a few of numba's C helpers. The
    kernels cannot raise, so it is dead code; should it ever run, abort loudly rather than jump to
    an unresolved address. (Loading numba's helper library would mean importing numba.)"""
    if "stub" not in _state:
        _state["stub"] = ctypes.CFUNCTYPE(None)(_unreachable)
    address = ctypes.cast(_state["stub"], ctypes.c_void_p).value
    for sym in _NUMBA_HELPERS:
        llvm.add_symbol(sym, address)
