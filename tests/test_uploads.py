"""Safe import of uploads: every hostile archive is built here, refused with a message naming the
entry, and leaves the logdir byte-for-byte as it was. Real writers' logs: test_uploads_shell.py.
"""
from __future__ import annotations

import gzip
import hashlib
import io
import json
import os
import stat
import struct
import subprocess
import sys
import tarfile
import time
import warnings
import zipfile
from pathlib import Path, PurePosixPath

import pytest
from tensorboard.compat.proto import event_pb2

from twinboard import tagmap, uploads
from twinboard.contract import frame, masked_crc32c
from twinboard.uploads import UploadRefused

ROOT = Path(__file__).resolve().parents[1]
EV = "events.out.tfevents.1700000000.host"


# --- builders ------------------------------------------------------------------------------------
def event_bytes(n: int = 3, tag: str = "loss/train") -> bytes:
    out = [frame(event_pb2.Event(wall_time=1.0, file_version="brain.Event:2").SerializeToString())]
    for s in range(n):
        e = event_pb2.Event(wall_time=2.0 + s, step=s)
        v = e.summary.value.add()
        v.tag, v.simple_value = tag, 1.0 / (s + 1)
        out.append(frame(e.SerializeToString()))
    return b"".join(out)


def make_zip(entries: dict[str, bytes], compression=zipfile.ZIP_DEFLATED) -> bytes:
    buf = io.BytesIO()
    with zipfile.ZipFile(buf, "w", compression) as z:
        for name, data in entries.items():
            z.writestr(zipfile.ZipInfo(name) if name.endswith("/") else name, data)
    return buf.getvalue()


def zip_with(info: zipfile.ZipInfo, data: bytes, extra: dict[str, bytes] | None = None) -> bytes:
    buf = io.BytesIO()
    with zipfile.ZipFile(buf, "w") as z, warnings.catch_warnings():
        warnings.simplefilter("ignore")  # "Duplicate name": wanted, for the duplicate-entry case
        for name, d in (extra or {f"ok/{EV}": event_bytes()}).items():
            z.writestr(name, d)
        z.writestr(info, data)
    return buf.getvalue()


def zip_link(name: str, target: bytes) -> bytes:
    info = zipfile.ZipInfo(name)
    info.create_system = 3  # unix: external_attr's high 16 bits are st_mode
    info.external_attr = (stat.S_IFLNK | 0o777) << 16
    return zip_with(info, target)


def make_tar(members: list[tuple[tarfile.TarInfo, bytes | None]], mode: str = "w:gz") -> bytes:
    buf = io.BytesIO()
    with tarfile.open(fileobj=buf, mode=mode, format=tarfile.PAX_FORMAT) as t:
        for info, data in members:
            if data is not None:
                info.size = len(data)
            t.addfile(info, io.BytesIO(data) if data is not None else None)
    return buf.getvalue()


def tar_entry(name: str, kind: bytes = tarfile.REGTYPE, linkname: str = "") -> tarfile.TarInfo:
    info = tarfile.TarInfo(name)
    info.type, info.linkname = kind, linkname
    return info


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


# --- fixtures ------------------------------------------------------------------------------------
@pytest.fixture
def logdir(tmp_path, monkeypatch) -> Path:
    """A logdir that already holds a local run and an upload: a refusal must leave both alone."""
    root = tmp_path / "logs"
    run = root / "20260101-000000-digits-mlp-sgd" / "torch"
    run.mkdir(parents=True)
    (run / EV).write_bytes(event_bytes(5))
    (run.parent / "spec.json").write_text('{"batch_size": 32, "epochs": 2}')
    old = root / "uploads" / "old" / "train"
    old.mkdir(parents=True)
    (old / EV).write_bytes(event_bytes(2))
    monkeypatch.setenv("TWINBOARD_LOGDIR", str(root))
    for var in ("TWINBOARD_UPLOAD_MAX_BYTES", "TWINBOARD_UPLOAD_MAX_FILES", "TWINBOARD_UPLOAD_MAX_RATIO",
                "TWINBOARD_UPLOADS_QUOTA_BYTES", "TWINBOARD_UPLOADS_QUOTA_PER_USER_BYTES"):
        monkeypatch.delenv(var, raising=False)
    return root


def snapshot(root: Path) -> dict[str, str]:
    """Every path under root: sha256 for files, 'dir' for folders, 'link' for links."""
    out = {}
    for dirpath, dirnames, filenames in os.walk(root):
        for n in dirnames + filenames:
            p = Path(dirpath) / n
            rel = p.relative_to(root).as_posix()
            out[rel] = ("link" if p.is_symlink() else "dir" if p.is_dir()
                        else hashlib.sha256(p.read_bytes()).hexdigest())
    return out


def refuse(logdir: Path, files, name="new", **caps) -> UploadRefused:
    before = snapshot(logdir)
    with pytest.raises(UploadRefused) as info:
        uploads.import_upload(files, name, logdir, **caps)
    assert snapshot(logdir) == before, "a refused upload changed the logdir"
    return info.value


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


# --- accepted ------------------------------------------------------------------------------------
def test_truncated_last_record_is_accepted_with_a_warning(logdir):
    data = event_bytes(4)[:-7]  # a run copied while its writer was mid-record
    result = uploads.import_upload([("live.zip", make_zip({f"run/{EV}": data}))], None, logdir)
    assert result.name == "live" and result.runs == ["run"]
    assert any(f"run/{EV}" in w and "truncated" in w for w in result.warnings)
    assert (logdir / "uploads" / "live" / "run" / EV).read_bytes() == data


def test_archive_structure_kept_projector_files_kept_junk_skipped(logdir):
    data = make_zip({f"exp/train/{EV}": event_bytes(), f"exp/validation/{EV}": event_bytes(),
                     "exp/train/projector_config.pbtxt": b"embeddings {}", "exp/train/metadata.tsv": b"a\n",
                     "exp/settings.json": b"{}", "exp/model.ckpt": b"weights", ".DS_Store": b"",
                     "__MACOSX/exp/._x": b"", "exp/": b""})
    result = uploads.import_upload([("Keras Run (1).zip", data)], None, logdir)
    assert result.name == "Keras-Run-1-"
    up = logdir / "uploads" / result.name
    assert sorted(p.relative_to(up).as_posix() for p in up.rglob("*") if p.is_file()) == sorted([
        "exp/settings.json", "exp/train/metadata.tsv", f"exp/train/{EV}",
        "exp/train/projector_config.pbtxt", f"exp/validation/{EV}", tagmap.MAPPING_FILE])
    assert result.runs == ["exp/train", "exp/validation"]
    skipped = [w for w in result.warnings if w.startswith("skipped 3 entries")]
    assert skipped and "model.ckpt" in skipped[0] and ".DS_Store" in skipped[0]
    mapping = tagmap.load(up)
    assert mapping.x_axis == "epoch" and mapping.merge_siblings == ("train", "validation")


@pytest.mark.parametrize("filename,mode", [("t.tar.gz", "w:gz"), ("t.tgz", "w:gz"), ("t.tar", "w")])
def test_tar_archives_import(logdir, filename, mode):
    data = make_tar([(tar_entry("a", tarfile.DIRTYPE), None), (tar_entry(f"a/{EV}"), event_bytes())], mode)
    result = uploads.import_upload([(filename, data)], "t", logdir)
    assert result.runs == ["a"] and (logdir / "uploads" / "t" / "a" / EV).read_bytes() == event_bytes()


def test_dot_slash_tar_and_mapping_file_from_the_archive(logdir):
    """`tar -C run -czf x.tgz .` names entries ./...; a mapping the archive brings is replaced (its
    regexes would run on every page: untrusted), with a warning."""
    hostile = tagmap.default_mapping().replace(rules=(tagmap.Rule("(a|aa)+", "x", "y"),))
    data = make_tar([(tar_entry(".", tarfile.DIRTYPE), None), (tar_entry(f"./train/{EV}"), event_bytes()),
                     (tar_entry(f"./{tagmap.MAPPING_FILE}"), json.dumps(hostile.to_dict()).encode())])
    result = uploads.import_upload([("x.tgz", data)], None, logdir)
    assert result.runs == ["train"]
    assert tagmap.load(result.path) == tagmap.default_mapping(["train"])
    assert any(tagmap.MAPPING_FILE in w and "not used" in w for w in result.warnings)


def test_raw_event_files_land_at_the_top(logdir):
    files = [(EV, event_bytes()), (EV + ".2", event_bytes(2)), ("projector_config.pbtxt", b"")]
    result = uploads.import_upload(files, "raw", logdir)
    assert result.runs == ["."] and result.files == 3
    assert {p.name for p in (logdir / "uploads" / "raw").iterdir()} == {
        EV, EV + ".2", "projector_config.pbtxt", tagmap.MAPPING_FILE}
    assert uploads.default_name([EV]).startswith("upload-")


def test_list_rename_delete(logdir):
    uploads.import_upload([("b.zip", make_zip({f"r/{EV}": event_bytes()}))], None, logdir)
    assert [u.name for u in uploads.list_uploads(logdir)] == ["b", "old"]
    before = snapshot(logdir)
    with pytest.raises(UploadRefused, match="already exists"):
        uploads.rename_upload("b", "old", logdir)
    with pytest.raises(UploadRefused, match="letters, digits"):
        uploads.rename_upload("b", "../b", logdir)
    assert snapshot(logdir) == before
    uploads.rename_upload("b", "c", logdir)
    assert [u.name for u in uploads.list_uploads(logdir)] == ["c", "old"]
    uploads.delete_upload("c", logdir)
    assert [u.name for u in uploads.list_uploads(logdir)] == ["old"]
    assert not [p for p in logdir.iterdir() if p.name.startswith(".tmp")]
    with pytest.raises(UploadRefused, match="no such upload"):
        uploads.delete_upload("c", logdir)


def test_cli_refusal_exits_non_zero_with_the_reason(logdir, tmp_path):
    bad = tmp_path / "bad.zip"
    bad.write_bytes(zip_link("run/link", b"/etc/passwd"))
    before = snapshot(logdir)
    p = subprocess.run([sys.executable, "-m", "twinboard", "import", str(bad), "--name", "bad"], cwd=ROOT,
                       env={**os.environ, "TWINBOARD_LOGDIR": str(logdir)}, capture_output=True, text=True,
                       timeout=60)
    assert p.returncode == 1 and "run/link" in p.stderr and "symbolic link" in p.stderr, p.stderr
    assert snapshot(logdir) == before


def test_temporary_folders_left_by_a_killed_import_are_swept(logdir):
    old, fresh = logdir / (uploads.TMP_PREFIX + "old"), logdir / (uploads.TMP_PREFIX + "busy")
    trash = logdir / (uploads.TRASH_PREFIX + "old")
    for d in (old / "run", fresh / "run", trash):
        d.mkdir(parents=True)
    (old / "run" / EV).write_bytes(event_bytes(2))
    (fresh / "run" / EV).write_bytes(event_bytes(2))
    stale = time.time() - uploads.STALE_TMP_S - 60
    for p in (old / "run" / EV, old / "run", old, trash):
        os.utime(p, (stale, stale))
    uploads.import_upload([("a.tfevents.1", event_bytes(3))], "swept", logdir)
    assert not old.exists() and not trash.exists()
    assert (fresh / "run" / EV).exists()  # another session's import in progress is left alone
    assert (logdir / "uploads" / "swept").is_dir()


# --- hostile archives: caps enforced while reading, memory measured in a fresh process -------------
def tar_block(name: str, size: int, kind: bytes = tarfile.REGTYPE) -> bytes:
    info = tarfile.TarInfo(name)
    info.size, info.type = size, kind
    return info.tobuf(format=tarfile.USTAR_FORMAT)


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


def probe_import(logdir: Path, archive: Path, name: str = "new", env: dict | None = None) -> dict:
    """import_upload of `archive` in a fresh process (after a benign import warmed it up): the
    refusal (or result) and how far it raised the process's peak memory."""
    from tests.test_hostile_inputs import probe

    warm = archive.parent / "warm-logdir"
    setup = (f"from twinboard import uploads\nfrom tests.test_uploads import event_bytes, make_tar, tar_entry\n"
             f"uploads.import_upload([('w.tgz', make_tar([(tar_entry('r/{EV}'), event_bytes())]))], 'w', {str(warm)!r})")
    return probe(setup, f"uploads.import_upload([({archive.name!r}, {str(archive)!r})], {name!r}, {str(logdir)!r}).bytes",
                 env)


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


# --- quotas ----------------------------------------------------------------------------------------
def used(root: Path) -> int:
    return sum(p.stat().st_size for p in (root / "uploads").rglob("*") if p.is_file())


def test_total_quota_is_checked_before_anything_is_written(logdir, monkeypatch):
    monkeypatch.setenv("TWINBOARD_UPLOADS_QUOTA_BYTES", str(used(logdir)))
    err = refuse(logdir, [("a.zip", make_zip({f"r/{EV}": event_bytes()}))])
    assert err.path == "new" and "quota of" in err.reason and "TWINBOARD_UPLOADS_QUOTA_BYTES" in err.reason
    monkeypatch.setenv("TWINBOARD_UPLOADS_QUOTA_BYTES", str(used(logdir) + 600))
    err = refuse(logdir, [("a.zip", make_zip({f"r/{EV}": event_bytes(30)}))])
    assert err.path == f"a.zip:r/{EV}" and "quota of" in err.reason
    monkeypatch.setenv("TWINBOARD_UPLOADS_QUOTA_BYTES", "lots")
    assert "not a number" in refuse(logdir, [(EV, event_bytes())]).reason


def test_per_user_quota_counts_each_owners_uploads(logdir, monkeypatch):
    from twinboard import auth

    monkeypatch.setenv("TWINBOARD_UPLOADS_QUOTA_PER_USER_BYTES", "3000")
    first = uploads.import_upload([(EV, event_bytes(5))], "alice-1", logdir, owner="alice")
    assert auth.owner_of(first.path) == "alice"
    total, mine = uploads.usage(logdir, "alice")
    assert mine == sum(p.stat().st_size for p in first.path.rglob("*") if p.is_file()) and total == used(logdir)
    err = refuse(logdir, [(EV, event_bytes(60))], name="alice-2", owner="alice")
    assert "alice's uploads" in err.reason and "per-user quota of 3000" in err.reason
    assert uploads.import_upload([(EV, event_bytes(60))], "bob-1", logdir, owner="bob").bytes > 2000
    err = refuse(logdir, [(EV, event_bytes())], name="x", owner="../../etc")
    assert "cannot own an upload" in err.reason


def test_a_10mb_upload_that_expands_to_1gib_stops_at_the_quota_and_leaves_nothing(logdir, tmp_path):
    """1024 entries of 1 MiB that deflate ~85:1 (under the ratio cap): about 12 MB uploaded, 1 GiB
    on disk if let through. The quota (64 MiB here) stops it while it is written."""
    block = os.urandom(12 << 10) + bytes((1 << 20) - (12 << 10))
    packed = gzip.compress(block, 6)
    parts = [gzip.compress(tar_block(f"run/{EV}", len(event_bytes())) + event_bytes().ljust(512, b"\0"))]
    for i in range(1024):
        parts += [gzip.compress(tar_block(f"run/blob{i:04d}.json", len(block))), packed]
    archive = tmp_path / "expands.tgz"
    archive.write_bytes(b"".join(parts) + gzip.compress(bytes(1024)))
    assert 8 << 20 < archive.stat().st_size < 16 << 20
    before = snapshot(logdir)
    out = probe_import(logdir, archive, env={"TWINBOARD_UPLOADS_QUOTA_BYTES": str(64 << 20)})
    assert out.get("error") == "UploadRefused" and "quota of 67108864" in out["message"], out
    assert "expands.tgz:run/blob00" in out["message"]  # stopped within the first 64 entries
    assert out["peak_mb"] < 50, out
    assert snapshot(logdir) == before


# --- a logdir that refuses writes ----------------------------------------------------------------
def _in_namespace(script: str, mounts: str, timeout: float = 120) -> subprocess.CompletedProcess:
    """Run Python `script` in a user + mount namespace after `mounts` (shell): a real full or
    read-only file system without privileges. Skipped where such namespaces are not allowed."""
    if subprocess.run(["unshare", "-rm", "true"], capture_output=True).returncode != 0:
        pytest.skip("needs user and mount namespaces (unshare -rm) to make a full or read-only disk")
    return subprocess.run(["unshare", "-rm", "sh", "-c", f'{mounts} && exec "$0" -c "$1"', sys.executable, script],
                          cwd=ROOT, capture_output=True, text=True, timeout=timeout)


def test_a_full_disk_refuses_the_upload_clearly_and_leaves_nothing(tmp_path):
    disk = tmp_path / "disk"
    disk.mkdir()
    script = f'''
import json
from pathlib import Path
from twinboard import uploads
from tests.test_uploads import event_bytes, snapshot
root = Path({str(disk)!r}) / "logs"
(root / "uploads" / "old").mkdir(parents=True)
(root / "uploads" / "old" / "{EV}").write_bytes(event_bytes(2))
before = snapshot(root)
try:
    uploads.import_upload([("{EV}", event_bytes(60_000))], "new", root)  # ~3 MiB on a 1 MiB disk
    out = {{"error": None}}
except uploads.UploadRefused as e:
    out = {{"error": str(e)}}
out["unchanged"] = snapshot(root) == before
print(json.dumps(out))
'''
    p = _in_namespace(script, f"mount -t tmpfs -o size=1m tmpfs {disk}")
    assert p.returncode == 0, p.stderr[-3000:]
    out = json.loads(p.stdout.strip().splitlines()[-1])
    assert out["error"] and "no space left on the device" in out["error"] and "nothing was imported" in out["error"]
    assert out["unchanged"], out


def test_a_read_only_logdir_refuses_the_upload_clearly(logdir):
    before = snapshot(logdir)
    script = (f"from twinboard import uploads\nfrom tests.test_uploads import event_bytes\n"
              f"try:\n    uploads.import_upload([({EV!r}, event_bytes())], 'new', {str(logdir)!r})\n"
              f"except uploads.UploadRefused as e:\n    print(e)\n")
    p = _in_namespace(script, f"mount --bind {logdir} {logdir} && mount -o remount,bind,ro {logdir}")
    assert p.returncode == 0, p.stderr[-3000:]
    assert p.stdout.startswith("new: the logdir is on a read-only file system"), p.stdout
    assert snapshot(logdir) == before
