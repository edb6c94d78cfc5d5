"""The compiled kernel behind `twinboard.events.fastscan`; only imported to BUILD it (needs numba).

`build()` compiles `scan` (and the small `group`) as C-callable functions over raw pointers with
numba (no reference counting, no allocation, nothing that can raise) and returns native object code.
`twinboard.events.native` saves that object in `__pycache__/` beside this file and later loads it
with llvmlite alone, so a fresh process pays neither numba's import nor its first-call set-up
(0.4-0.65 s, mostly type registries and a scipy import) to read its first file.

Layout of one record: uint64 length, uint32 masked CRC32C(length), data, uint32 masked CRC32C(data).
Event fields used: wall_time (1, double), step (2, int64), file_version (3), summary (5),
source_metadata (10). Summary.Value: tag (1), simple_value (2), histo (5), tensor (8), metadata (9).
`scan` walks those itself and calls `_proto_kernel` for the pieces inside (varints, strings,
SummaryMetadata, HistogramProto, TensorProto) and `_crc32c_kernel` for the checksums. It handles a
well-formed, unambiguous subset and reports FALLBACK for any other record.
"""
from __future__ import annotations

import types as pytypes

import numpy as np
from numba import cfunc, njit, types

from twinboard.events._crc32c_kernel import _hardware_crc, _masked_crc32c, _masked_crc32c_hw, _u32, _u64
from twinboard.events._proto_kernel import _ascii, _f32, _f64, _histo_ok, _len_field, _metadata, _tensor, _varint

# Status codes (res[0]); keep in sync with fastscan.
DONE, FULL, FALLBACK, NEW_TAG, BAD_LENGTH_CRC, BAD_DATA_CRC = range(6)


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
