"""Protobuf field decoders for the compiled kernel in `twinboard.events._fastscan_kernel`; needs numba.

Only imported to BUILD the kernel. `_fastscan_kernel.scan` walks an Event and its Summary.Values
itself and calls these for the pieces it reads: varints (keys, lengths, step), the raw bits of
wall_time and simple_value (`_f64`, `_f32`), ASCII-only strings (tag, file_version, writer),
SummaryMetadata (which plugin wrote the value), a HistogramProto (checked, then skipped) and a
TensorProto with its TensorShapeProto (a float or double scalar). Each decoder accepts only a
well-formed, unambiguous encoding and otherwise says "fall back", so that protobuf decides the rest.
Positions are int64 offsets into `buf` (uint8); a decoder never reads past the `end` it is given.
"""
from __future__ import annotations

import numpy as np
from llvmlite import ir
from numba import njit, types
from numba.extending import intrinsic

from twinboard.events._crc32c_kernel import _u32, _u64


@intrinsic
def _f64(typingctx, bits):
    """The double whose IEEE-754 bits are `bits` (uint64)."""
    def codegen(context, builder, signature, args):
        return builder.bitcast(args[0], ir.DoubleType())
    return types.float64(types.uint64), codegen


@intrinsic
def _f32(typingctx, bits):
    """The float whose IEEE-754 bits are `bits` (uint32), widened to double (exact)."""
    def codegen(context, builder, signature, args):
        return builder.fpext(builder.bitcast(args[0], ir.FloatType()), ir.DoubleType())
    return types.float64(types.uint32), codegen


@njit
def _varint_long(buf, p, end):
    """(value: the low 64 bits as int64, next position), or (0, -1) when malformed or cut off."""
    result = np.uint64(0)
    shift = np.uint64(0)
    for i in range(10):
        if p >= end:
            return np.int64(0), np.int64(-1)
        b = buf[p]
        p += 1
        if i == 9 and b > 1:
            return np.int64(0), np.int64(-1)
        result |= np.uint64(b & 0x7F) << shift
        if b < 0x80:
            return np.int64(result), p
        shift += np.uint64(7)
    return np.int64(0), np.int64(-1)


@njit
def _varint(buf, p, end):
    """Like _varint_long; small enough for LLVM to inline the one-byte case (keys, lengths)."""
    if p < end:
        b = buf[p]
        if b < 0x80:
            return np.int64(b), p + 1
    return _varint_long(buf, p, end)


@njit
def _ascii(buf, p, n):
    """Protobuf checks UTF-8 in string fields; plain ASCII needs no check, anything else falls back."""
    for i in range(p, p + n):
        if buf[i] >= 0x80:
            return False
    return True


@njit
def _len_field(buf, p, end):
    """(length, start) of a length-delimited payload at p, or (0, -1) when it does not fit."""
    ln, p = _varint(buf, p, end)
    if p < 0 or ln < 0 or ln > end - p:
        return np.int64(0), np.int64(-1)
    return ln, p


@njit
def _metadata(buf, p, end):
    """SummaryMetadata at [p, end): 1 = no plugin or the 'scalars' plugin, 0 = another plugin,
    -1 = fall back (malformed, plugin_data twice, a non-ASCII string, an unknown field)."""
    name_s = np.int64(0)
    name_n = np.int64(0)
    n_data = 0
    while p < end:
        key, p = _varint(buf, p, end)
        if p < 0:
            return -1
        if key == 0x20:  # data_class (enum)
            _, p = _varint(buf, p, end)
            if p < 0:
                return -1
            continue
        if key != 0x0A and key != 0x12 and key != 0x1A:  # plugin_data, display_name, description
            return -1
        ln, p = _len_field(buf, p, end)
        if p < 0:
            return -1
        if key == 0x0A:  # PluginData: plugin_name (1, string), content (2, bytes)
            n_data += 1
            q = p
            e2 = p + ln
            while q < e2:
                k2, q = _varint(buf, q, e2)
                if q < 0 or (k2 != 0x0A and k2 != 0x12):
                    return -1
                l2, q = _len_field(buf, q, e2)
                if q < 0:
                    return -1
                if k2 == 0x0A:
                    if not _ascii(buf, q, l2):
                        return -1
                    name_s = q
                    name_n = l2
                q += l2
        elif not _ascii(buf, p, ln):
            return -1
        p += ln
    if n_data > 1:
        return -1
    if name_n == 0:
        return 1
    if (name_n == 7 and buf[name_s] == 115 and buf[name_s + 1] == 99 and buf[name_s + 2] == 97
            and buf[name_s + 3] == 108 and buf[name_s + 4] == 97 and buf[name_s + 5] == 114
            and buf[name_s + 6] == 115):  # b"scalars"
        return 1
    return 0


@njit
def _histo_ok(buf, p, end):
    """A HistogramProto (only doubles, no strings) that is well formed, so it can be skipped."""
    while p < end:
        key, p = _varint(buf, p, end)
        if p < 0:
            return False
        field = key >> 3
        wire = key & 7
        if 1 <= field <= 7 and wire == 1:
            if end - p < 8:
                return False
            p += 8
        elif (field == 6 or field == 7) and wire == 2:
            ln, p = _len_field(buf, p, end)
            if p < 0 or ln % 8 != 0:
                return False
            p += ln
        else:
            return False
    return True


@njit
def _shape(buf, p, end):
    """TensorShapeProto at [p, end): 1 = known rank, every dim of size 1; 0 = not that; -1 = fall back."""
    ones = True
    unknown = False
    while p < end:
        key, p = _varint(buf, p, end)
        if p < 0:
            return -1
        if key == 0x18:  # unknown_rank (bool; the last value wins)
            v, p = _varint(buf, p, end)
            if p < 0:
                return -1
            unknown = v != 0
            continue
        if key != 0x12:  # dim {size (1)}; a dim name (string) falls back
            return -1
        ln, p = _len_field(buf, p, end)
        if p < 0:
            return -1
        e2 = p + ln
        size = np.int64(0)
        while p < e2:
            k2, p = _varint(buf, p, e2)
            if p < 0 or k2 != 0x08:
                return -1
            size, p = _varint(buf, p, e2)
            if p < 0:
                return -1
        if size != 1:
            ones = False
    return 1 if ones and not unknown else 0


@njit
def _tensor(buf, p, end):
    """TensorProto at [p, end) -> (kind, value): 1 = a scalar (DT_FLOAT or DT_DOUBLE, all dims 1,
    exactly one element: tensor_content of the item size if present, else exactly one float_val or
    double_val), 0 = not a scalar, -1 = fall back."""
    dtype = np.int64(0)
    shape_ok = 1
    n_shape = 0
    n_f = 0
    n_d = 0
    fval = 0.0
    dval = 0.0
    c_s = np.int64(0)
    c_n = np.int64(0)
    while p < end:
        key, p = _varint(buf, p, end)
        if p < 0:
            return -1, 0.0
        if key == 0x08 or key == 0x18:  # dtype, version_number
            v, p = _varint(buf, p, end)
            if p < 0:
                return -1, 0.0
            if key == 0x08:
                dtype = v & 0xFFFFFFFF
        elif key == 0x2D:  # float_val, unpacked
            if end - p < 4:
                return -1, 0.0
            fval = _f32(np.uint32(_u32(buf, p)))
            n_f += 1
            p += 4
        elif key == 0x31:  # double_val, unpacked
            if end - p < 8:
                return -1, 0.0
            dval = _f64(_u64(buf, p))
            n_d += 1
            p += 8
        elif key == 0x12 or key == 0x22 or key == 0x2A or key == 0x32:
            ln, p = _len_field(buf, p, end)
            if p < 0:
                return -1, 0.0
            if key == 0x12:  # tensor_shape
                n_shape += 1
                shape_ok = _shape(buf, p, p + ln)
                if shape_ok < 0:
                    return -1, 0.0
            elif key == 0x22:  # tensor_content (the last one wins)
                c_s = p
                c_n = ln
            elif key == 0x2A:  # float_val, packed
                if ln % 4 != 0:
                    return -1, 0.0
                if ln >= 4:
                    fval = _f32(np.uint32(_u32(buf, p + ln - 4)))
                n_f += ln // 4
            else:  # double_val, packed
                if ln % 8 != 0:
                    return -1, 0.0
                if ln >= 8:
                    dval = _f64(_u64(buf, p + ln - 8))
                n_d += ln // 8
            p += ln
        else:
            return -1, 0.0
    if n_shape > 1:
        return -1, 0.0  # two shapes merge field by field: leave that to protobuf
    if shape_ok == 0:
        return 0, 0.0
    if dtype == 1:
        if c_n > 0:
            if c_n != 4:
                return 0, 0.0
            return 1, _f32(np.uint32(_u32(buf, c_s)))
        if n_f == 1:
            return 1, fval
        return 0, 0.0
    if dtype == 2:
        if c_n > 0:
            if c_n != 8:
                return 0, 0.0
            return 1, _f64(_u64(buf, c_s))
        if n_d == 1:
            return 1, dval
        return 0, 0.0
    return 0, 0.0
