"""Safe import of uploads: every hostile archive is built here, refused with a message naming the
entry, and leaves the logdir byte-for-byte as it was. Real writers' logs: test_uploads_shell.py.
"""
from __future__ import annotations

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
from twinboard.contract import frame
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
    for var in ("TWINBOARD_UPLOAD_MAX_BYTES", "TWINBOARD_UPLOAD_MAX_FILES", "TWINBOARD_UPLOAD_MAX_RATIO"):
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
