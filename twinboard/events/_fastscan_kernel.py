"""The compiled kernel behind `twinboard.fastscan`; only imported to BUILD it (needs numba).

`build()` compiles `scan` (and the small `group`) as C-callable functions over raw pointers with
numba (no reference counting, no allocation, nothing that can raise) and returns native object code.
`fastscan_native` saves that object next to this file and later loads it with llvmlite alone, so a
fresh process pays neither numba's import nor its first-call set-up (0.4-0.65 s, mostly type
registries and a scipy import) to read its first file.

Layout of one record: uint64 length, uint32 masked CRC32C(length), data, uint32 masked CRC32C(data).
Event fields used: wall_time (1, double), step (2, int64), file_version (3), summary (5),
source_metadata (10). Summary.Value: tag (1), simple_value (2), histo (5), tensor (8), metadata (9).
`scan` handles a well-formed, unambiguous subset and reports FALLBACK for any other record.
"""
from __future__ import annotations

import types as pytypes

import numpy as np
from llvmlite import ir
from numba import cfunc, njit, types
from numba.extending import intrinsic

from twinboard.events._crc32c_kernel import _hardware_crc, _masked_crc32c, _masked_crc32c_hw, _u32, _u64

# Status codes (res[0]); keep in sync with fastscan.
DONE, FULL, FALLBACK, NEW_TAG, BAD_LENGTH_CRC, BAD_DATA_CRC = range(6)


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


@njit
def scan(buf, pos, end, check_crc, tab, ht_id, ht_hash, mask, pool, toff, tlen, succ,
         o_tag, o_step, o_wt, o_val, n, cap, res):
    """Decode records from `pos` until `end`; writes (status, pos, n, a, b, h) into res[0:6].

    DONE: `pos` is past the last complete record. FULL / FALLBACK / NEW_TAG: `pos` is the record to
    redo after the caller grew the columns / parsed it with protobuf / interned the tag at
    buf[a:a+b] (FNV-1a hash h). BAD_*_CRC: `pos` is the damaged record. `n` rows are valid.
    """
    prev = -1  # tag id of the previous value: its usual successor is tried before the hash table
    while True:
        res[0] = DONE
        res[1] = pos
        res[2] = n
        if end - pos < 12:
            return
        length = _u64(buf, pos)
        if check_crc and _masked_crc32c(buf, pos, 8, tab) != _u32(buf, pos + 8):
            res[0] = BAD_LENGTH_CRC
            return
        if end - pos < 16 or length > np.uint64(end - pos - 16):
            return  # half-written: the writer is not done with it
        ds = pos + 12
        de = ds + np.int64(length)
        if check_crc and _masked_crc32c(buf, ds, de - ds, tab) != _u32(buf, de):
            res[0] = BAD_DATA_CRC
            return
        n0 = n
        step = np.int64(0)
        wt = 0.0
        ok = True
        n_summary = 0
        n_version = 0
        p = ds
        while p < de and ok:
            key, p = _varint(buf, p, de)
            if p < 0:
                ok = False
            elif key == 0x09:  # wall_time
                if de - p < 8:
                    ok = False
                else:
                    wt = _f64(_u64(buf, p))
                    p += 8
            elif key == 0x10:  # step
                step, p = _varint(buf, p, de)
                ok = p >= 0
            elif key == 0x1A or key == 0x52 or key == 0x2A:
                ln, p = _len_field(buf, p, de)
                if p < 0:
                    ok = False
                elif key == 0x1A:  # file_version (string)
                    n_version += 1
                    ok = _ascii(buf, p, ln)
                    p += ln
                elif key == 0x52:  # source_metadata {writer (1, string)}
                    q = p
                    p += ln
                    while q < p and ok:
                        k2, q = _varint(buf, q, p)
                        if q < 0 or k2 != 0x0A:
                            ok = False
                        else:
                            l2, q = _len_field(buf, q, p)
                            ok = q >= 0 and _ascii(buf, q, l2)
                            q += l2
                else:  # summary {value (1) ...}
                    n_summary += 1
                    se = p + ln
                    while p < se and ok:
                        key, p = _varint(buf, p, se)
                        if p < 0 or key != 0x0A:
                            ok = False
                            break
                        ln, p = _len_field(buf, p, se)
                        if p < 0:
                            ok = False
                            break
                        ve = p + ln
                        tag_s = p
                        tag_n = np.int64(0)
                        n_tag = 0
                        n_kind = 0
                        kind = 0  # 1 simple_value, 2 tensor, 3 histo
                        sval = 0.0
                        t_s = p
                        t_e = p
                        n_meta = 0
                        m_s = p
                        m_e = p
                        while p < ve:
                            key, p = _varint(buf, p, ve)
                            if p < 0:
                                ok = False
                                break
                            if key == 0x15:  # simple_value
                                if ve - p < 4:
                                    ok = False
                                    break
                                sval = _f32(np.uint32(_u32(buf, p)))
                                kind = 1
                                n_kind += 1
                                p += 4
                                continue
                            if key != 0x0A and key != 0x2A and key != 0x42 and key != 0x4A:
                                ok = False  # node_name, image, audio, unknown: protobuf's job
                                break
                            ln, p = _len_field(buf, p, ve)
                            if p < 0:
                                ok = False
                                break
                            if key == 0x0A:
                                tag_s = p
                                tag_n = ln
                                n_tag += 1
                            elif key == 0x2A:
                                if not _histo_ok(buf, p, p + ln):
                                    ok = False
                                    break
                                kind = 3
                                n_kind += 1
                            elif key == 0x42:
                                t_s = p
                                t_e = p + ln
                                kind = 2
                                n_kind += 1
                            else:
                                m_s = p
                                m_e = p + ln
                                n_meta += 1
                            p += ln
                        if not ok or n_tag > 1 or n_kind > 1 or n_meta > 1:
                            ok = False
                            break
                        # Intern the tag: the usual successor of the previous tag, else the table.
                        tid = -1
                        if prev >= 0:
                            g = succ[prev]
                            if g >= 0 and tlen[g] == tag_n:
                                o = toff[g]
                                i = 0
                                while i < tag_n and pool[o + i] == buf[tag_s + i]:
                                    i += 1
                                if i == tag_n:
                                    tid = g
                        if tid < 0:
                            h = np.uint64(0xCBF29CE484222325)
                            for i in range(tag_n):
                                h = (h ^ np.uint64(buf[tag_s + i])) * np.uint64(0x100000001B3)
                            hs = np.int64(h)
                            j = hs & mask
                            while True:
                                c = np.int64(ht_id[j])
                                if c < 0:
                                    res[0] = NEW_TAG
                                    res[2] = n0
                                    res[3] = tag_s
                                    res[4] = tag_n
                                    res[5] = hs
                                    return
                                if ht_hash[j] == hs and tlen[c] == tag_n:
                                    o = toff[c]
                                    i = 0
                                    while i < tag_n and pool[o + i] == buf[tag_s + i]:
                                        i += 1
                                    if i == tag_n:
                                        tid = c
                                        break
                                j = (j + 1) & mask
                            if prev >= 0:
                                succ[prev] = tid
                        prev = tid
                        plugin = 1
                        if n_meta == 1:
                            plugin = _metadata(buf, m_s, m_e)
                            if plugin < 0:
                                ok = False
                                break
                        have = kind == 1
                        if kind == 2:
                            tk, tv = _tensor(buf, t_s, t_e)
                            if tk < 0:
                                ok = False
                                break
                            if tk == 1 and plugin == 1:
                                have = True
                                sval = tv
                        if have:
                            if n >= cap:
                                res[0] = FULL
                                res[2] = n0
                                return
                            o_tag[n] = tid
                            o_val[n] = sval
                            n += 1
                        p = ve
            else:
                ok = False  # graph_def, log_message, session_log, ... or an unknown field
        # file_version and summary share a oneof (the last one wins): leave that to protobuf.
        if not ok or (n_summary > 0 and n_version > 0) or n_summary > 1:
            res[0] = FALLBACK
            res[2] = n0
            return
        for i in range(n0, n):
            o_step[i] = step
            o_wt[i] = wt
        pos = de + 4


@njit
def group(o_tag, o_step, o_wt, o_val, n, cursor, g_step, g_wt, g_val):
    """Counting-sort scatter: row i goes to g_*[cursor[o_tag[i]]++]. The caller sets cursor[t] to
    where tag t's rows start; rows of one tag keep their order."""
    for i in range(n):
        t = o_tag[i]
        j = cursor[t]
        g_step[j] = o_step[i]
        g_wt[j] = o_wt[i]
        g_val[j] = o_val[i]
        cursor[t] = j + 1


_P = types.CPointer
# The C signatures fastscan calls through ctypes (pointers as void* there, in this order).
SCAN_SIGNATURE = types.void(
    _P(types.uint8), types.int64, types.int64, types.int64,  # buf, pos, end, check_crc
    _P(types.uint32),  # crc tables (8 * 256)
    _P(types.int32), _P(types.int64), types.int64,  # ht_id, ht_hash, mask
    _P(types.uint8), _P(types.int64), _P(types.int64), _P(types.int32),  # pool, toff, tlen, succ
    _P(types.int32), _P(types.int64), _P(types.float64), _P(types.float64),  # o_tag .. o_val
    types.int64, types.int64, _P(types.int64))  # n, cap, res[6]
GROUP_SIGNATURE = types.void(
    _P(types.int32), _P(types.int64), _P(types.float64), _P(types.float64), types.int64,
    _P(types.int64), _P(types.int64), _P(types.float64), _P(types.float64))


def _object(entry) -> tuple[str, bytes]:
    library = entry._library
    library._ensure_finalized()
    return entry.native_name, library._codegen._tm.emit_object(library._final_module)


def build() -> dict[str, tuple[str, bytes]]:
    """Compile the kernels; {"scan" | "group": (symbol, native object code for this CPU)}."""
    fn = scan.py_func
    if _hardware_crc():  # the same scan, with _masked_crc32c bound to the instruction version
        fn = pytypes.FunctionType(fn.__code__, dict(fn.__globals__, _masked_crc32c=_masked_crc32c_hw),
                                  fn.__name__, fn.__defaults__, fn.__closure__)
    scan_k = njit(_nrt=False)(fn)
    group_k = njit(_nrt=False)(group.py_func)

    @cfunc(SCAN_SIGNATURE, _nrt=False)
    def scan_entry(buf, pos, end, check_crc, tab, ht_id, ht_hash, mask, pool, toff, tlen, succ,
                   o_tag, o_step, o_wt, o_val, n, cap, res):
        scan_k(buf, pos, end, check_crc != 0, tab, ht_id, ht_hash, mask, pool, toff, tlen, succ,
               o_tag, o_step, o_wt, o_val, n, cap, res)

    @cfunc(GROUP_SIGNATURE, _nrt=False)
    def group_entry(o_tag, o_step, o_wt, o_val, n, cursor, g_step, g_wt, g_val):
        group_k(o_tag, o_step, o_wt, o_val, n, cursor, g_step, g_wt, g_val)

    return {"scan": _object(scan_entry), "group": _object(group_entry)}
