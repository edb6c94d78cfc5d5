"""Upload builders shared by the upload tests (test_upload_archive_safety.py, test_upload_import.py)
and the Upload and Admin page tests: event files framed by hand, zip and tar archives built entry by
entry, the `logdir` those tests start from, and the checks that a refusal changed nothing in it.
The fresh processes of the memory probes and of the full-disk test import it too.
"""
from __future__ import annotations

import hashlib
import io
import os
import stat
import tarfile
import warnings
import zipfile
from pathlib import Path

import pytest
from tensorboard.compat.proto import event_pb2

from twinboard import uploads
from twinboard.contract import frame
from twinboard.uploads import UploadRefused

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


def tar_block(name: str, size: int, kind: bytes = tarfile.REGTYPE) -> bytes:
    info = tarfile.TarInfo(name)
    info.size, info.type = size, kind
    return info.tobuf(format=tarfile.USTAR_FORMAT)


# --- fixtures ------------------------------------------------------------------------------------
@pytest.fixture(name="logdir")  # tests/conftest.py's `logdir` (the stub trainer's) has the name; a test
# file that imports this one as upload_logdir gets this one instead
def upload_logdir(tmp_path, monkeypatch) -> Path:
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


def probe_import(logdir: Path, archive: Path, name: str = "new", env: dict | None = None) -> dict:
    """import_upload of `archive` in a fresh process (after a benign import warmed it up): the
    refusal (or result) and how far it raised the process's peak memory."""
    from tests.test_hostile_inputs import probe

    warm = archive.parent / "warm-logdir"
    setup = (f"from twinboard import uploads\nfrom tests.upload_archives import event_bytes, make_tar, tar_entry\n"
             f"uploads.import_upload([('w.tgz', make_tar([(tar_entry('r/{EV}'), event_bytes())]))], 'w', "
             f"{str(warm)!r})")
    return probe(setup, f"uploads.import_upload([({archive.name!r}, {str(archive)!r})], {name!r}, "
                        f"{str(logdir)!r}).bytes", env)
