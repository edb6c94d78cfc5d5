"""CRC32C (Castagnoli) for the compiled kernel in `twinboard.events._fastscan_kernel`; needs numba.

TFRecord masks the CRC32C of a record's length and of its data. `_masked_crc32c` computes it from
the slicing-by-8 tables that `twinboard.fastscan` passes in; `_masked_crc32c_hw` uses the SSE4.2
`crc32` instruction instead, which `_fastscan_kernel.build()` binds in when `_hardware_crc()` says
this CPU has it. Also the little-endian loads (`_u32`, `_u64`) that the CRC and the decoder share.
"""
from __future__ import annotations

import os
import platform

import numpy as np
from llvmlite import ir
from numba import njit, types
from numba.core import cgutils
from numba.extending import intrinsic


@njit
def _u32(buf, p):
    return (np.int64(buf[p]) | (np.int64(buf[p + 1]) << 8) | (np.int64(buf[p + 2]) << 16)
            | (np.int64(buf[p + 3]) << 24))


@njit
def _u64(buf, p):
    return np.uint64(_u32(buf, p)) | (np.uint64(_u32(buf, p + 4)) << np.uint64(32))


@njit
def _masked_crc32c(buf, p, n, tab):
    """Masked CRC32C of buf[p:p+n]; `tab` is 8 x 256 slicing-by-8 tables, flattened."""
    crc = np.int64(0xFFFFFFFF)
    e = p + n
    while p + 8 <= e:
        lo = crc ^ _u32(buf, p)
        crc = (np.int64(tab[1792 + (lo & 0xFF)]) ^ np.int64(tab[1536 + ((lo >> 8) & 0xFF)])
               ^ np.int64(tab[1280 + ((lo >> 16) & 0xFF)]) ^ np.int64(tab[1024 + (lo >> 24)])
               ^ np.int64(tab[768 + np.int64(buf[p + 4])]) ^ np.int64(tab[512 + np.int64(buf[p + 5])])
               ^ np.int64(tab[256 + np.int64(buf[p + 6])]) ^ np.int64(tab[np.int64(buf[p + 7])]))
        p += 8
    while p < e:
        crc = np.int64(tab[(crc ^ np.int64(buf[p])) & 0xFF]) ^ (crc >> 8)
        p += 1
    crc ^= 0xFFFFFFFF
    return ((((crc >> 15) | (crc << 17)) & 0xFFFFFFFF) + 0xA282EAD8) & 0xFFFFFFFF


@intrinsic
def _crc32c_step64(typingctx, crc, word):
    """One SSE4.2 `crc32` instruction over 8 bytes (no pre/post inversion)."""
    def codegen(context, builder, signature, args):
        fnty = ir.FunctionType(ir.IntType(64), [ir.IntType(64), ir.IntType(64)])
        fn = cgutils.get_or_insert_function(builder.module, fnty, "llvm.x86.sse42.crc32.64.64")
        return builder.call(fn, args)
    return types.uint64(types.uint64, types.uint64), codegen


@intrinsic
def _crc32c_step8(typingctx, crc, byte):
    """One SSE4.2 `crc32` instruction over 1 byte."""
    def codegen(context, builder, signature, args):
        fnty = ir.FunctionType(ir.IntType(32), [ir.IntType(32), ir.IntType(8)])
        fn = cgutils.get_or_insert_function(builder.module, fnty, "llvm.x86.sse42.crc32.32.8")
        return builder.call(fn, [args[0], args[1]])
    return types.uint32(types.uint32, types.uint8), codegen


@njit
def _masked_crc32c_hw(buf, p, n, tab):
    """_masked_crc32c with the CPU's CRC32C instruction (x86-64 with SSE4.2); `tab` unused."""
    crc = np.uint64(0xFFFFFFFF)
    e = p + n
    while p + 8 <= e:
        crc = _crc32c_step64(crc, _u64(buf, p))
        p += 8
    c32 = np.uint32(crc)
    while p < e:
        c32 = _crc32c_step8(c32, buf[p])
        p += 1
    c = np.int64(c32) ^ 0xFFFFFFFF
    return ((((c >> 15) | (c << 17)) & 0xFFFFFFFF) + 0xA282EAD8) & 0xFFFFFFFF


def _hardware_crc() -> bool:
    """Use the CRC32C instruction when the code is built for this x86-64 CPU and it has SSE4.2."""
    import llvmlite.binding as llvm

    if platform.machine().lower() not in ("x86_64", "amd64"):
        return False
    if os.environ.get("NUMBA_CPU_NAME") or os.environ.get("NUMBA_CPU_FEATURES"):
        return False  # a portable build for other CPUs: stay with the tables
    return bool(llvm.get_host_cpu_features().get("sse4.2"))
