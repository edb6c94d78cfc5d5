"""Uploads that are accepted: archives and raw event files imported with their layout kept, list,
rename and delete, the CLI, temporary folders swept, the quotas, and a logdir on a full or read-only
disk. Hostile archives: test_upload_archive_safety.py. Real writers' logs: test_uploads_shell.py.
"""
from __future__ import annotations

import gzip
import json
import os
import subprocess
import sys
import tarfile
import time
from pathlib import Path

import pytest

from tests.upload_archives import (EV, event_bytes, make_tar, make_zip, probe_import, refuse, snapshot, tar_block,
                                   tar_entry, zip_link)
from tests.upload_archives import upload_logdir  # noqa: F401 (the `logdir` fixture these tests take)
from twinboard import tagmap, uploads
from twinboard.uploads import UploadRefused

ROOT = Path(__file__).resolve().parents[1]


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
from tests.upload_archives import event_bytes, snapshot
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
    script = (f"from twinboard import uploads\nfrom tests.upload_archives import event_bytes\n"
              f"try:\n    uploads.import_upload([({EV!r}, event_bytes())], 'new', {str(logdir)!r})\n"
              f"except uploads.UploadRefused as e:\n    print(e)\n")
    p = _in_namespace(script, f"mount --bind {logdir} {logdir} && mount -o remount,bind,ro {logdir}")
    assert p.returncode == 0, p.stderr[-3000:]
    assert p.stdout.startswith("new: the logdir is on a read-only file system"), p.stdout
    assert snapshot(logdir) == before
