"""Safe import of uploads: every hostile archive is built here, refused with a message naming the
entry, and leaves the logdir byte-for-byte as it was; caps are enforced while an archive is read,
with memory measured in a fresh process. Accepted imports, quotas, rename and delete:
test_upload_import.py. Real writers' logs: test_uploads_shell.py.
"""
from __future__ import annotations

import gzip
import io
import os
import struct
import tarfile
import zipfile
from pathlib import PurePosixPath

import pytest
from tensorboard.compat.proto import event_pb2

from tests.upload_archives import (EV, event_bytes, make_tar, make_zip, probe_import, refuse, snapshot, tar_block,
                                   tar_entry, zip_link, zip_with)
from tests.upload_archives import upload_logdir  # noqa: F401 (the `logdir` fixture these tests take)
from twinboard import uploads
from twinboard.contract import frame, masked_crc32c
from twinboard.uploads import UploadRefused


# --- builders ------------------------------------------------------------------------------------
def tar_with(info: tarfile.TarInfo, data: bytes | None = None) -> bytes:
    return make_tar([(tar_entry(f"ok/{EV}"), event_bytes()), (info, data)])


def bad_crc() -> bytes:
    data = bytearray(event_bytes())
    data[-5] ^= 0xFF  # last byte of the last record's payload: its data CRC no longer matches
    return bytes(data)


def forged_size_zip() -> bytes:
    """A deflated 4 MiB entry whose headers (local and central) declare 100 bytes."""
    raw = bytearray(make_zip({f"run/{EV}": bytes(4 << 20)}))
    local = raw.index(b"PK\x03\x04")
    struct.pack_into("<I", raw, local + 22, 100)
    central = raw.index(b"PK\x01\x02")
    struct.pack_into("<I", raw, central + 24, 100)
    return bytes(raw)


def encrypted_zip() -> bytes:
    """The last entry flagged encrypted (general purpose bit 0) in its local and central headers."""
    raw = bytearray(zip_with(zipfile.ZipInfo(f"run/{EV}"), event_bytes()))
    central = raw.rindex(b"PK\x01\x02")
    local = struct.unpack_from("<I", raw, central + 42)[0]
    for offset in (central + 8, local + 6):
        raw[offset] |= 0x1
    return bytes(raw)


# --- refusals ------------------------------------------------------------------------------------
HOSTILE = {
    # id: (filename, content builder, caps, the entry the message names, words of the reason)
    "zip-slip": ("a.zip", lambda: zip_with(zipfile.ZipInfo("../evil"), b"x"), {}, "../evil", "'..'"),
    "zip-slip-nested": ("a.zip", lambda: zip_with(zipfile.ZipInfo(f"run/../../{EV}"), event_bytes()), {},
                        f"run/../../{EV}", "'..'"),
    "zip-absolute": ("a.zip", lambda: zip_with(zipfile.ZipInfo(f"/tmp/{EV}"), event_bytes()), {},
                     f"/tmp/{EV}", "absolute"),
    "zip-backslash-slip": ("a.zip", lambda: zip_with(zipfile.ZipInfo("..\\evil.json"), b"{}"), {},
                           "..\\evil.json", "'..'"),
    "zip-symlink": ("a.zip", lambda: zip_link("run/link", b"/etc/passwd"), {}, "run/link", "symbolic link"),
    "zip-encrypted": ("a.zip", encrypted_zip, {}, f"run/{EV}", "encrypted"),
    "zip-duplicate": ("a.zip", lambda: zip_with(zipfile.ZipInfo(f"ok/{EV}"), event_bytes()), {},
                      f"ok/{EV}", "twice"),
    "tar-slip": ("a.tar.gz", lambda: tar_with(tar_entry("../../evil.json"), b"{}"), {}, "../../evil.json", "'..'"),
    "tar-absolute": ("a.tgz", lambda: tar_with(tar_entry(f"/etc/{EV}"), event_bytes()), {}, f"/etc/{EV}", "absolute"),
    "tar-symlink": ("a.tgz", lambda: tar_with(tar_entry("run/link", tarfile.SYMTYPE, "/etc/passwd")), {},
                    "run/link", "symbolic link"),
    "tar-hardlink": ("a.tgz", lambda: tar_with(tar_entry("run/hard", tarfile.LNKTYPE, f"ok/{EV}")), {},
                     "run/hard", "hard link"),
    "tar-device": ("a.tgz", lambda: tar_with(tar_entry("run/null", tarfile.CHRTYPE)), {}, "run/null", "device"),
    "tar-fifo": ("a.tar", lambda: make_tar([(tar_entry(f"ok/{EV}"), event_bytes()),
                                            (tar_entry("run/pipe", tarfile.FIFOTYPE), None)], "w"), {},
                 "run/pipe", "fifo"),
    "zip-bomb-ratio": ("a.zip", lambda: make_zip({f"run/{EV}": bytes(8 << 20)}), {}, f"run/{EV}", "ratio"),
    "tar-bomb-ratio": ("a.tgz", lambda: make_tar([(tar_entry(f"run/{EV}"), bytes(8 << 20))]), {},
                       f"run/{EV}", "ratio"),
    "zip-total-size": ("a.zip", lambda: make_zip({f"a/{EV}": event_bytes(100), f"b/{EV}": event_bytes(100)}),
                       {"max_total_bytes": 8000}, f"b/{EV}", "size cap"),
    "tar-total-size": ("a.tgz", lambda: make_tar([(tar_entry(f"a/{EV}"), event_bytes(100)),
                                                  (tar_entry(f"b/{EV}"), event_bytes(100))]),
                       {"max_total_bytes": 8000}, f"b/{EV}", "size cap"),
    "tar-stream-cap": ("a.tgz", lambda: make_tar([(tar_entry(f"ok/{EV}"), event_bytes()),
                                                  (tar_entry("junk.bin"), os.urandom(2 << 20))]),
                       {"max_total_bytes": 10_000, "max_files": 2}, "junk.bin", "expands past"),
    "zip-clash": ("a.zip", lambda: make_zip({f"ok/{EV}": event_bytes(), "ok/a.json": b"{}",
                                             f"ok/a.json/{EV}": event_bytes()}), {}, f"ok/a.json/{EV}", "clashes"),
    "zip-forged-size": ("a.zip", forged_size_zip, {}, f"run/{EV}", "cannot be extracted"),
    "zip-too-many": ("a.zip", lambda: make_zip({f"r{i}/{EV}": event_bytes(1) for i in range(4)}),
                     {"max_files": 3}, f"r3/{EV}", "file count cap"),
    "tar-too-many": ("a.tgz", lambda: make_tar([(tar_entry(f"r{i}/{EV}"), event_bytes(1)) for i in range(4)]),
                     {"max_files": 3}, f"r3/{EV}", "file count cap"),
    "fake-event-file": ("a.zip", lambda: make_zip({f"run/{EV}": b"not an event file, honest " * 20}), {},
                        f"run/{EV}", "length CRC"),
    "bad-crc": ("a.zip", lambda: make_zip({f"run/{EV}": bad_crc()}), {}, f"run/{EV}", "data CRC"),
    "tfrecord-not-events": ("a.zip", lambda: make_zip({f"run/{EV}": frame(b"an Example?") * 3}), {},
                            f"run/{EV}", "not a TensorBoard event file"),
    "raw-bad-crc": (EV, bad_crc, {}, EV, "data CRC"),
    "raw-junk": ("notes.txt", lambda: b"hello", {}, "notes.txt", "not an event file"),
    "no-event-file": ("a.zip", lambda: make_zip({"projector_config.pbtxt": b""}), {}, "a.zip", "no event file"),
    "not-a-zip": ("a.zip", lambda: b"PK but not really", {}, "a.zip", "not a readable zip"),
    "not-a-tgz": ("a.tgz", lambda: b"\x1f\x8b nope", {}, "a.tgz", "not a readable tar"),
}


@pytest.mark.parametrize("case", list(HOSTILE))
def test_hostile_upload_is_refused_naming_the_entry_and_changes_nothing(logdir, case):
    filename, build, caps, entry, reason = HOSTILE[case]
    err = refuse(logdir, [(filename, build())], **caps)
    assert entry in err.path and entry in str(err), err
    assert reason in err.reason, err


def test_refused_after_good_entries_were_written_leaves_no_trace(logdir):
    """The bad entry comes last, after two good files were already extracted to the temp folder."""
    data = make_zip({f"a/{EV}": event_bytes(), "a/projector_config.pbtxt": b"", f"b/{EV}": bad_crc()})
    err = refuse(logdir, [("a.zip", data)])
    assert err.path == f"a.zip:b/{EV}"
    assert not [p for p in logdir.iterdir() if p.name.startswith(".tmp")]


def test_existing_name_is_never_overwritten(logdir):
    err = refuse(logdir, [("old.zip", make_zip({f"train/{EV}": event_bytes()}))], name="old")
    assert err.path == "old" and "already exists" in err.reason


@pytest.mark.parametrize("name", ["../up", ".hidden", "a/b", "a b", "x" * 101, "é"])
def test_bad_names_are_refused(logdir, name):
    err = refuse(logdir, [("a.zip", make_zip({f"r/{EV}": event_bytes()}))], name=name)
    assert "letters, digits" in err.reason


def test_caps_come_from_the_environment(logdir, monkeypatch):
    monkeypatch.setenv("TWINBOARD_UPLOAD_MAX_FILES", "1")
    err = refuse(logdir, [("a.zip", make_zip({f"a/{EV}": event_bytes(), f"b/{EV}": event_bytes()}))])
    assert "more than 1 entries" in err.reason
    assert uploads.Limits.from_env(max_files=5).max_files == 5  # a parameter beats the environment


def test_bytes_past_the_declared_size_are_refused_while_copying(tmp_path):
    """Headers are never trusted alone: the copy counts real bytes (white-box, as zipfile itself
    never hands out more than the header declares)."""
    job = uploads.archives.Extraction(tmp_path, uploads.Limits())
    with pytest.raises(UploadRefused, match="more data than the 10 bytes"):
        job.write(PurePosixPath("x.json"), io.BytesIO(b"{}" * 100), 10, "a.zip:x.json", "extra", 10**6, 0)


# --- hostile archives: caps enforced while reading, memory measured in a fresh process -------------
def tgz_with_header_payload(kind: bytes, payload: int) -> bytes:
    """A .tar.gz whose first header (GNU long name 'L' or PAX 'x') claims `payload` bytes, and has
    them: gzip members of 16 MiB of 'a', so ~1 MB of upload holds a 1 GiB header."""
    block = gzip.compress(b"a" * (16 << 20), 9)
    return gzip.compress(tar_block("././@LongLink" if kind == tarfile.GNUTYPE_LONGNAME else "pax", payload, kind)) \
        + block * (payload // (16 << 20))


def header_chain(n: int) -> bytes:
    """n GNU long-name headers in a row (each names the next), then one event file: tarfile follows
    such a chain by recursion, holding every name."""
    name = b"a" * 511 + b"\0"
    return b"".join(tar_block("././@LongLink", len(name), tarfile.GNUTYPE_LONGNAME) + name for _ in range(n)) \
        + tar_block(f"run/{EV}", len(event_bytes())) + event_bytes().ljust(-(-len(event_bytes()) // 512) * 512, b"\0") \
        + bytes(1024)


@pytest.mark.parametrize("kind", [tarfile.GNUTYPE_LONGNAME, tarfile.XHDTYPE], ids=["gnu-long-name", "pax"])
def test_a_1gb_tar_header_in_a_1mb_upload_is_refused_while_it_is_read(logdir, tmp_path, kind):
    archive = tmp_path / "bomb.tgz"
    archive.write_bytes(tgz_with_header_payload(kind, 1 << 30))
    assert archive.stat().st_size < 2 << 20  # what took the process to 3.1 GB
    before = snapshot(logdir)
    out = probe_import(logdir, archive)
    assert out.get("error") == "UploadRefused", out
    assert "bomb.tgz" in out["message"] and f"takes more than {uploads.HEADER_ROOM} bytes" in out["message"]
    assert out["peak_mb"] < 50, out
    assert snapshot(logdir) == before


def zip_of_many_entries(n: int) -> bytes:
    """A zip whose central directory lists the same 1-byte entry n times: 47 bytes an entry, each
    a ZipInfo object (~300 bytes) once zipfile has parsed it."""
    local = b"PK\x03\x04" + struct.pack("<HHHHHIIIHH", 20, 0, 0, 0, 0, 0, 0, 0, 1, 0) + b"a"
    entry = b"PK\x01\x02" + struct.pack("<HHHHHHIIIHHHHHII", 20, 20, 0, 0, 0, 0, 0, 0, 0, 1, 0, 0, 0, 0, 0, 0) + b"a"
    end = b"PK\x05\x06" + struct.pack("<HHHHIIH", 0, 0, 0xFFFF, 0xFFFF, len(entry) * n, len(local), 0)
    return local + entry * n + end


def test_a_zip_directory_of_a_million_entries_is_refused_before_zipfile_parses_it(logdir, tmp_path):
    archive = tmp_path / "many.zip"
    archive.write_bytes(zip_of_many_entries(1_000_000))  # 47 MB: 314 MB of ZipInfo objects before
    before = snapshot(logdir)
    out = probe_import(logdir, archive)
    assert out.get("error") == "UploadRefused", out
    assert "many.zip: its central directory takes 47000000 bytes" in out["message"] and "file count cap" in out["message"]
    assert out["peak_mb"] < 20, out
    assert snapshot(logdir) == before


def test_a_chain_of_long_name_headers_is_refused_not_a_recursion_error(logdir):
    err = refuse(logdir, [("chain.tar", header_chain(2000))])
    assert err.path == "chain.tar" and "tar header" in err.reason


@pytest.mark.parametrize("fmt", [tarfile.GNU_FORMAT, tarfile.PAX_FORMAT], ids=["gnu", "pax"])
def test_real_long_names_still_import(logdir, fmt):
    deep = "/".join(["a-rather-long-folder-name-é"] * 12)  # ~330 characters, non-ASCII
    buf = io.BytesIO()
    with tarfile.open(fileobj=buf, mode="w:gz", format=fmt) as t:
        info = tarfile.TarInfo(f"{deep}/{EV}")
        info.size = len(event_bytes())
        t.addfile(info, io.BytesIO(event_bytes()))
    result = uploads.import_upload([("long.tgz", buf.getvalue())], "long", logdir)
    assert result.runs == [deep] and (result.path / deep / EV).read_bytes() == event_bytes()


def test_event_records_in_uploads_are_checked_in_bounded_pieces(logdir):
    """A record longer than the read window is CRC-checked piece by piece: accepted when right,
    refused when one byte is off; a length over the cap is refused without reading it."""
    big = event_pb2.Event(wall_time=3.0, graph_def=os.urandom(3 << 20)).SerializeToString()
    good = event_bytes(1) + frame(big) + frame(event_pb2.Event(step=9).SerializeToString())
    assert uploads.import_upload([(EV, good)], "big", logdir).bytes == len(good)
    bad = bytearray(good)
    bad[len(event_bytes(1)) + (2 << 20)] ^= 1
    err = refuse(logdir, [(EV, bytes(bad))])
    assert "data CRC" in err.reason and f"byte {len(event_bytes(1))}" in err.reason
    head = struct.pack("<Q", 1 << 40)
    crafted = event_bytes(1) + head + struct.pack("<I", masked_crc32c(head)) + bytes(64)
    err = refuse(logdir, [(EV, crafted)])
    assert "claims 1099511627776 bytes" in err.reason
