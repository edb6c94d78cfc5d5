"""Bring your own data (task=file): every kind of bad .npz and .csv refused with a message naming the
array or column and nothing written; good files summarised and read back exactly; the launcher's
check; team mode (only a launcher may save, and it is audited); the Launch page's picker (AppTest of
a one-line script calling pages.launch_data.data_picker); and ONE shared launch of two real pairs,
a .npz and a .csv, side by side, whose two sides read the same bytes and agree step for step."""
from __future__ import annotations

import io
import json
import os
import re
import struct
import subprocess
import sys
import zipfile
from pathlib import Path

import numpy as np
import pytest
from streamlit.testing.v1 import AppTest

from twinboard import datafiles
from twinboard.auth import ADMIN, RUNNER, VIEWER, PermissionDenied, User, actions, read_audit
from twinboard.contract import RunSpec, SpecError
from twinboard.contract.datafile import DataFileError, read_data, read_path
from twinboard.text import md

ROOT = Path(__file__).resolve().parents[1]
RNG = np.random.default_rng(7)
X = RNG.normal(size=(80, 5))
Y = (X[:, 0] > 0).astype(np.int64) + (X[:, 1] > 0)  # 3 classes
GOOD = {"x_train": X[:64], "y_train": Y[:64], "x_val": X[64:], "y_val": Y[64:]}


def npz(compressed: bool = False, **arrays) -> bytes:
    buf = io.BytesIO()
    (np.savez_compressed if compressed else np.savez)(buf, **arrays)
    return buf.getvalue()


def with_(**changes) -> bytes:
    """GOOD with arrays replaced (None: left out)."""
    return npz(**{k: v for k, v in {**GOOD, **changes}.items() if v is not None})


def csv_bytes(header: str = "a,b,c,d,e,price", rows=None) -> bytes:
    rows = X if rows is None else rows
    body = "".join(",".join(f"{v:.17g}" for v in r) + f",{2 * r[0] + r[1]:.17g}\n" for r in rows)
    return (header + "\n" + body).encode()


def many_entries() -> bytes:
    """A zip whose directory lists 1,200 entries: refused before zipfile parses it."""
    buf = io.BytesIO()
    with zipfile.ZipFile(buf, "w") as z:
        for i in range(1200):
            z.writestr(f"entry-{i:05d}-padding.npy", b"")
    return buf.getvalue()


def damaged_crc() -> bytes:
    """A stored .npz with one byte of x_train's data flipped: only the zip's CRC can tell."""
    payload = bytearray(npz(**GOOD))
    info = zipfile.ZipFile(io.BytesIO(bytes(payload))).getinfo("x_train.npy")
    n, extra = struct.unpack_from("<HH", payload, info.header_offset + 26)
    payload[info.header_offset + 30 + n + extra + info.file_size - 1] ^= 1
    return bytes(payload)


X3, XS = GOOD["x_train"].reshape(64, 5, 1), np.array(["a"] * 320).reshape(64, 5)
BAD = {  # case: (name, payload, the array or column the message names, words of its reason)
    "nan": ("d.npz", lambda: with_(x_train=np.where(np.arange(320).reshape(64, 5) == 16, np.nan, X[:64])),
            "x_train", "x_train[3, 1] = nan"),
    "inf target": ("d.npz", lambda: with_(y_train=X[:64, 0], y_val=np.full(16, np.inf)), "y_val", "infinity"),
    "object array": ("d.npz", lambda: with_(y_val=np.array([None] * 16, dtype=object)), "y_val", "Python objects"),
    "missing array": ("d.npz", lambda: with_(x_val=None), "x_val", "missing"),
    "extra array": ("d.npz", lambda: with_(names=np.zeros(3)), "names.npy", "unexpected"),
    "row counts": ("d.npz", lambda: with_(y_train=Y[:63]), "y_train", "63 rows but x_train has 64"),
    "negative label": ("d.npz", lambda: with_(y_val=Y[64:] - 1), "y_val", "labels run from 0"),
    "too many classes": ("d.npz", lambda: with_(y_train=Y[:64] * 5000), "y_train", "at most 1000 classes"),
    "one class": ("d.npz", lambda: with_(y_train=Y[:64] * 0, y_val=Y[64:] * 0), "y_train", "2 classes"),
    "label kinds": ("d.npz", lambda: with_(y_train=Y[:64].astype(float)), "y_val", "the same in both"),
    "features": ("d.npz", lambda: with_(x_val=X[64:, :4]), "x_val", "4 features but x_train has 5"),
    "3-D x": ("d.npz", lambda: with_(x_train=X3), "x_train", "2 dimensions"),
    "strings": ("d.npz", lambda: with_(x_train=XS), "x_train", "only plain numbers"),
    "float32 range": ("d.npz", lambda: with_(x_val=X[64:] * 1e300), "x_val", "float32"),
    # Caps: refused from the .npy header; the arrays' data (1 MB, 32 MB of zeros) is never read.
    "row cap": ("d.npz", lambda: npz(True, **{**GOOD, "x_train": np.zeros((1_000_001, 1), bool),
                                            "y_train": np.zeros(1_000_001, np.int8)}), "x_train", "1,000,001 rows"),
    "value cap": ("d.npz", lambda: npz(True, **{**GOOD, "x_train": np.zeros((4_000, 8_001), bool),
                                              "y_train": np.zeros(4_000, np.int8),
                                              "x_val": np.zeros((16, 8_001))}), "x_train", "more than 32,000,000"),
    "zip directory": ("d.npz", many_entries, "", "its zip directory takes"),
    "cut short": ("d.npz", lambda: npz(**GOOD)[:3000], "", "no zip directory"),
    "damaged": ("d.npz", damaged_crc, "x_train", "CRC"),
    "not a zip": ("d.npz", lambda: b"x_train,y_train\n1,2\n", "", "not a .npz"),
    "text cell": ("d.csv", lambda: b"a,b\n1,2\n3,x\n", "column 'b'", "data row 2 holds 'x'"),
    "empty cell": ("d.csv", lambda: b"a,b\n1,2\n3,\n", "column 'b'", "data row 2 is empty"),
    "ragged row": ("d.csv", lambda: b"a,b,c\n1,2,3\n4,5\n", "data row 2", "2 values; the header names 3"),
    "nan cell": ("d.csv", lambda: b"a,b\n1,2\nnan,4\n", "column 'a'", "data row 2 holds nan"),
    "same column twice": ("d.csv", lambda: b"a,b,a\n1,2,3\n", "column 'a'", "named twice"),
    "nameless column": ("d.csv", lambda: b"a,,b\n1,2,3\n", "column 2", "printable characters"),
    "no rows": ("d.csv", lambda: b"a,b\n", "", "no data rows"),
    "not UTF-8": ("d.csv", lambda: b"a,b\n\xff,1\n", "", "not UTF-8"),
    "one column": ("d.csv", lambda: b"y\n1\n2\n", "header", "needs 2 to"),
    "path in the name": ("../d.npz", lambda: npz(**GOOD), "", "not a data file name"),
    "hidden name": (".d.npz", lambda: npz(**GOOD), "", "not a data file name"),
    "other suffix": ("d.txt", lambda: b"a,b\n1,2\n", "", "not a data file name"),
}


def folder(logdir: Path) -> dict[str, bytes]:
    """Every file under the logdir (hidden ones too), with its bytes."""
    return {str(p.relative_to(logdir)): p.read_bytes() for p in sorted(logdir.rglob("*")) if p.is_file()}


@pytest.fixture
def data_logdir(tmp_path, monkeypatch) -> Path:
    monkeypatch.setenv("TWINBOARD_LOGDIR", str(tmp_path))
    for var in ("TWINBOARD_TEAM", "TWINBOARD_DATA_MAX_BYTES", "TWINBOARD_DATA_QUOTA_BYTES"):
        monkeypatch.delenv(var, raising=False)
    return tmp_path


@pytest.mark.parametrize("case", list(BAD))
def test_each_kind_of_bad_file_is_refused_naming_the_array_and_nothing_is_written(case, data_logdir):
    name, make, where, words = BAD[case]
    payload = make()
    before = folder(data_logdir)
    with pytest.raises(DataFileError) as err:
        datafiles.save_data_file(data_logdir, name, payload)
    assert err.value.where == where and words in err.value.reason, str(err.value)
    assert str(err.value).startswith(f"{name[:200]}: {where + ': ' if where else ''}")
    assert folder(data_logdir) == before and datafiles.list_data_files(data_logdir) == []
    if not case.endswith("name"):  # the trainers' reader says the same
        with pytest.raises(DataFileError, match="^" + re.escape(str(err.value)) + "$"):
            read_data(payload, name)


def test_size_caps_the_quota_and_names_in_use_are_refused_and_change_nothing(data_logdir, monkeypatch):
    good = npz(**GOOD)
    datafiles.save_data_file(data_logdir, "kept.npz", good)
    before = folder(data_logdir)
    with pytest.raises(DataFileError, match="exists"):
        datafiles.save_data_file(data_logdir, "kept.npz", npz(**{**GOOD, "x_val": X[64:] + 1}))
    monkeypatch.setenv("TWINBOARD_DATA_QUOTA_BYTES", str(len(good) + 100))
    with pytest.raises(DataFileError, match="quota"):
        datafiles.save_data_file(data_logdir, "second.npz", good)
    monkeypatch.setenv("TWINBOARD_DATA_MAX_BYTES", "1000")
    with pytest.raises(DataFileError, match=r"more than a data file may have here \(1,000\)"):
        datafiles.save_data_file(data_logdir, "big.csv", csv_bytes())
    monkeypatch.setenv("TWINBOARD_DATA_MAX_BYTES", "lots")
    with pytest.raises(DataFileError, match="TWINBOARD_DATA_MAX_BYTES"):
        datafiles.save_data_file(data_logdir, "other.npz", good)
    assert folder(data_logdir) == before  # the first file as it was, no temporary file left


def test_good_files_read_back_exactly_with_their_summaries(data_logdir):
    saved = datafiles.save_data_file(data_logdir, "digits-like.npz", npz(True, **GOOD))
    assert (saved.kind, saved.train_rows, saved.val_rows, saved.features, saved.classes) == ("npz", 64, 16, 5, 3)
    back = read_path(data_logdir / "data" / "digits-like.npz")
    assert back.summary == saved and all(np.array_equal(back.arrays[k], v) for k, v in GOOD.items())
    regression = read_data(npz(**{**GOOD, "y_train": X[:64, :1], "y_val": X[64:, :1]}), "r.npz")
    assert regression.summary.classes == 0 and regression.arrays["y_val"].shape == (16,)
    assert "regression" in regression.summary.describe()
    table = datafiles.save_data_file(data_logdir, "houses.csv", csv_bytes().replace(b"\n", b"\r\n"))
    assert table.classes is None and table.columns == ("a", "b", "c", "d", "e", "price")
    price = table.for_target("price")
    assert price.classes == 0 and price.features == 5 and price.describe().startswith("80 rows (split by the seed)")
    labels = read_data(b"\xef\xbb\xbfx1,x2,label\n0.5,1,2\n\"1.5\",2,0\n\n2.5,3,1\n", "l.csv", "label")
    assert labels.summary.classes == 3 and labels.arrays["y"].tolist() == [2, 0, 1]
    assert labels.arrays["x"].tolist() == [[0.5, 1], [1.5, 2], [2.5, 3]]
    assert labels.summary.class_columns == {"x2": 4, "label": 3}  # whole numbers 0..19: class labels
    with pytest.raises(DataFileError, match="column 'nope': no such column; the columns are 'x1', 'x2', 'label'"):
        read_data(b"x1,x2,label\n0.5,1,2\n", "l.csv", "nope")
    listed = datafiles.list_data_files(data_logdir)
    assert [(e.name, e.summary.sha256 if e.summary else None) for e in listed] == [
        ("digits-like.npz", saved.sha256), ("houses.csv", table.sha256)]
    (data_logdir / "data" / "by-hand.csv").write_bytes(b"a,b\n1,oops\n")
    (data_logdir / "data" / "notes.txt").write_text("not a data file")
    bad = [e for e in datafiles.list_data_files(data_logdir) if e.summary is None]
    assert [(e.name, e.error) for e in bad] == [("by-hand.csv", "column 'b': data row 1 holds 'oops': numbers only")]
    datafiles.delete_data_file(data_logdir, "by-hand.csv")
    with pytest.raises(DataFileError, match="not in the data folder"):
        datafiles.delete_data_file(data_logdir, "by-hand.csv")


def test_the_launch_check_names_the_field(data_logdir):
    spec = RunSpec(task="file", data="d.npz", hidden=(8,))
    with pytest.raises(SpecError, match="not in the data folder") as err:
        datafiles.check_launch(spec, data_logdir)
    assert err.value.field == "data" and str(data_logdir) not in str(err.value)  # no server path for visitors
    datafiles.save_data_file(data_logdir, "d.npz", npz(**GOOD))
    datafiles.save_data_file(data_logdir, "t.csv", csv_bytes())
    assert datafiles.check_launch(spec, data_logdir).classes == 3
    assert datafiles.check_launch(RunSpec(), data_logdir) is None
    refusals = [
        (spec.replace(target="y"), "target", "a .npz brings its own"),
        (spec.replace(data="t.csv", target="cost"), "target", "no such column"),
        # 5000 features x 4096 hidden units: 20M weights, past the 10M this server allows
        (spec.replace(data="wide.npz", hidden=(4096,)), "hidden", "more than the 10000000 allowed"),
        (spec.replace(data="t.csv", target="price", val_fraction=0.999), "val_fraction", "none to train on"),
    ]
    wide = {"x_train": np.zeros((2, 5000), np.float32), "y_train": np.array([0, 1]),
            "x_val": np.zeros((1, 5000), np.float32), "y_val": np.array([1])}
    datafiles.save_data_file(data_logdir, "wide.npz", npz(**wide))
    for bad, field, words in refusals:
        with pytest.raises(SpecError, match=words) as err:
            datafiles.check_launch(bad, data_logdir)
        assert err.value.field == field, str(err.value)
    assert datafiles.check_launch(spec.replace(data="t.csv", target="price"), data_logdir).classes == 0


def test_in_team_mode_only_a_user_who_may_launch_saves_data_and_it_is_audited(data_logdir, monkeypatch):
    monkeypatch.setenv("TWINBOARD_TEAM", "1")
    with pytest.raises(PermissionDenied, match="val"):
        actions.save_data_file(User("val", VIEWER), "d.npz", npz(**GOOD), data_logdir)
    assert not (data_logdir / "data").exists()
    summary = actions.save_data_file(User("rita", RUNNER), "d.npz", npz(**GOOD), data_logdir)
    entry = read_audit(1, logdir=data_logdir)[0]
    assert (entry["user"], entry["action"], entry["target"]) == ("rita", "save_data", "data/d.npz")
    assert entry["details"] == {"bytes": summary.bytes, "sha256": summary.sha256}
    # deleting one is an admin's: a data file records no owner, and any run may be launched on it
    with pytest.raises(PermissionDenied, match=r"rita \(runner\) may not delete data"):
        actions.delete_data_file(User("rita", RUNNER), "d.npz", data_logdir)
    assert [e.name for e in datafiles.list_data_files(data_logdir)] == ["d.npz"]
    actions.delete_data_file(User("ada", ADMIN), "d.npz", data_logdir)
    assert datafiles.list_data_files(data_logdir) == []
    entry = read_audit(1, logdir=data_logdir)[0]
    assert (entry["user"], entry["action"], entry["target"]) == ("ada", "delete_data", "data/d.npz")


def test_a_csv_split_and_batch_order_are_the_same_in_a_fresh_process(data_logdir):
    from trainers import data

    datafiles.save_data_file(data_logdir, "t.csv", csv_bytes())
    spec = RunSpec(task="file", data="t.csv", target="price", seed=3, batch_size=16, epochs=2, dtype="float64")
    run_dir = data_logdir / "some-run"
    ds = data.load(spec, run_dir)
    assert (len(ds.x_train), len(ds.x_val), ds.n_classes, ds.y_train.shape) == (64, 16, 0, (64, 1))
    assert sorted(np.concatenate([ds.x_train[:, 0], ds.x_val[:, 0]])) == sorted(X[:, 0])
    here = {"x": ds.x_train.tolist(), "order": [i.tolist() for _, _, i in data.batches(spec, len(ds.x_train))]}
    code = ("import json, sys; from trainers import data; from twinboard.contract import RunSpec;"
            "s = RunSpec.from_json(sys.argv[1]); ds = data.load(s);"
            "print(json.dumps({'x': ds.x_train.tolist(), 'order': [i.tolist() for _, _, i in data.batches(s, 64)],"
            "'sha256': ds.sha256}))")
    env = {**os.environ, "TWINBOARD_RUN_DIR": str(run_dir)}  # as the dispatcher starts a trainer
    out = subprocess.run([sys.executable, "-c", code, spec.to_json()], cwd=ROOT, env=env, capture_output=True,
                         text=True, check=True)
    there = json.loads(out.stdout)
    assert there.pop("sha256") == ds.sha256 and there == here


# --- the Launch page's picker ------------------------------------------------------------------------
PICKER = """
from pages.launch_data import data_picker
from twinboard.config import logdir
import streamlit as st
st.text(f"choice: {data_picker(logdir())!r}")
"""


def picker() -> AppTest:
    return AppTest.from_string(PICKER, default_timeout=30)


def upload(at: AppTest, name: str, payload: bytes) -> AppTest:
    [uploader] = at.get("file_uploader")
    uploader.set_value((name, payload, "application/octet-stream"))
    at.run()
    at.button(key="launch_data_save").click()
    return at.run()


def texts(at: AppTest, kind: str) -> str:
    return "\n".join(str(e.value) for e in at.get(kind))


def test_the_launch_picker_uploads_a_npz_refuses_a_bad_one_and_picks_a_csv_target(data_logdir):
    at = picker().run()
    assert not at.exception and "No data files yet" in texts(at, "info")
    assert at.button(key="launch_data_save").disabled and texts(at, "text") == "choice: None"
    at = upload(at, "mine.npz", npz(**GOOD))
    assert not at.exception and f"Saved **{md('mine.npz')}**" in texts(at, "success")
    assert texts(at, "text") == "choice: ('mine.npz', '')" and at.selectbox(key="launch_data").value == "mine.npz"
    assert md("64 train + 16 validation rows, 5 features, classification (3 classes)") in texts(at, "caption")
    assert at.get("file_uploader")[0].value is None  # emptied for the next file
    before = folder(data_logdir)
    at = upload(at, "x[y](http://e).npz", npz(**GOOD))  # a name the folder does not allow, shown as text
    assert md("x[y](http://e).npz: not a data file name") in texts(at, "error")
    at = upload(at, "bad.npz", with_(y_val=np.array([None] * 16, dtype=object)))
    assert md("bad.npz: y_val: holds Python objects") in texts(at, "error") and folder(data_logdir) == before
    at = upload(at, "houses.csv", csv_bytes())
    assert at.selectbox(key="launch_data").value == "houses.csv"
    target = at.selectbox(key="launch_target")
    assert target.value == "price" and target.options[-1] == "price (regression)"
    target.set_value("a").run()
    assert texts(at, "text") == "choice: ('houses.csv', 'a')"
    at.selectbox(key="launch_data").set_value("mine.npz").run()
    at.button(key="launch_data_delete").click().run()
    at.button(key="launch_data_delete_yes").click().run()
    assert not at.exception and f"Deleted **{md('mine.npz')}**" in texts(at, "success") and not at.warning
    assert [e.name for e in datafiles.list_data_files(data_logdir)] == ["houses.csv"]


def test_in_team_mode_only_an_admin_sees_the_delete_control(data_logdir, monkeypatch):
    from pages.signin import TOKEN_KEY
    from twinboard import auth

    monkeypatch.setenv("TWINBOARD_TEAM", "1")
    monkeypatch.delenv("TWINBOARD_USERS", raising=False)
    for name, role in (("ada", ADMIN), ("rita", RUNNER)):
        auth.add_user(name, "correct horse battery", role)
    datafiles.save_data_file(data_logdir, "d.npz", npz(**GOOD))
    runner = AppTest.from_string(PICKER, default_timeout=30)
    runner.session_state[TOKEN_KEY] = auth.make_token(auth.get_user("rita"))
    runner.run()
    assert not runner.exception and texts(runner, "text") == "choice: ('d.npz', '')"
    assert not [b for b in runner.button if b.key == "launch_data_delete"]  # not drawn for a runner
    admin = AppTest.from_string(PICKER, default_timeout=30)
    admin.session_state[TOKEN_KEY] = auth.make_token(auth.get_user("ada"))
    admin.run()
    admin.button(key="launch_data_delete").click().run()
    admin.button(key="launch_data_delete_yes").click().run()
    assert not admin.exception and f"Deleted **{md('d.npz')}**" in texts(admin, "success")
    assert datafiles.list_data_files(data_logdir) == []
    assert read_audit(1, logdir=data_logdir)[0]["action"] == "delete_data"


# --- both real trainers -----------------------------------------------------------------------------
TRAIN = RunSpec(task="file", data="pair.npz", hidden=(8,), steps=10, epochs=1, log_every=1, batch_size=16,
                embedding_samples=8, dtype="float64")


@pytest.fixture(scope="module")
def trained(tmp_path_factory):
    """A .npz pair and a .csv pair, launched together (4 trainer slots: ~14 s for both on 2 cores)."""
    from tests.conftest import real_trainers
    from tests.stub_trainer import kill_spawned
    from twinboard import runs

    logdir = tmp_path_factory.mktemp("datafile") / "logs"
    logdir.mkdir()
    datafiles.save_data_file(logdir, "pair.npz", npz(**GOOD))
    datafiles.save_data_file(logdir, "pair.csv", csv_bytes())
    specs = {"npz": TRAIN, "csv": TRAIN.replace(data="pair.csv", target="price")}
    with real_trainers():
        os.environ["TWINBOARD_MAX_PROCS"] = "4"  # restored by real_trainers
        launched = {k: runs.launch(spec, logdir=logdir) for k, spec in specs.items()}
        outcomes = {k: runs.wait(run.run_id, timeout=300, logdir=logdir) for k, run in launched.items()}
    yield logdir, specs, launched, outcomes
    kill_spawned(logdir)


@pytest.mark.parametrize("kind", ["npz", "csv"])
def test_both_real_trainers_train_on_the_same_bytes_and_batches(trained, kind):
    from trainers import data
    from twinboard import runs
    from twinboard.events.scalars import read_scalars

    logdir, specs, launched, outcomes = trained
    run = launched[kind]
    assert isinstance(run, runs.Launched), run
    assert all(isinstance(o, runs.Finished) for o in outcomes[kind].values()), outcomes[kind]
    ds = data.load(specs[kind], run.run_dir)
    sha = datafiles.summary_of(logdir, specs[kind].data).sha256
    for fw in ("torch", "tensorflow"):
        settings = json.loads((run.run_dir / fw / "settings.json").read_text())["data"]
        assert settings["file"] == {"name": specs[kind].data, "target": specs[kind].target, "sha256": sha}
        assert (settings["n_train"], settings["n_val"]) == (len(ds.x_train), len(ds.x_val)) == (64, 16)
    scalars = read_scalars(run.run_dir)
    loss = {fw: scalars[(scalars.run == fw) & (scalars.tag == "loss/train_fp64")].value.to_numpy()
            for fw in ("torch", "tensorflow")}
    assert len(loss["torch"]) == 10
    # Shared initial weights, float64: the same rows in the same order agree to rounding (~1e-15).
    np.testing.assert_allclose(loss["tensorflow"], loss["torch"], rtol=1e-10)


def test_the_launch_page_starts_a_plugin_model_on_an_uploaded_npz(data_logdir, monkeypatch):
    """The whole Launch page (AppTest): task file shows the chooser, a .npz is uploaded and saved,
    the example plugin is picked as the model, Start runs its preflight (both frameworks, a real
    subprocess) and the run's spec names the file and the model; the stub trainers train it."""
    from tests.test_pages_launch_scalars import STUB

    monkeypatch.setenv("TWINBOARD_TRAINER_CMD", f"{{python}} {STUB} {{spec}} {{framework}}")
    at = AppTest.from_file(str(ROOT / "pages" / "launch.py"), default_timeout=120).run()
    assert not at.exception and not at.get("file_uploader")  # no chooser for a built-in task
    at.selectbox(key="launch_task").set_value("file").run()
    at = upload(at, "mine.npz", npz(**GOOD))
    assert not at.exception and f"Saved **{md('mine.npz')}**" in texts(at, "success")
    assert "resmlp" in at.selectbox(key="launch_model").options
    at.selectbox(key="launch_model").set_value("resmlp")
    at.number_input(key="launch_steps").set_value(5)
    at.checkbox(key="launch_export").uncheck()
    at.text_input(key="launch_name").set_value("mine-resmlp")
    at.button(key="launch_start").click().run()
    assert not at.exception, at.exception
    said = texts(at, "success") + texts(at, "error") + texts(at, "warning")
    assert f"Started **{md('mine-resmlp')}**" in said, said
    run_dir = data_logdir / "mine-resmlp"
    spec = json.loads((run_dir / "run.json").read_text())["spec"]
    assert (spec["task"], spec["data"], spec["model"], spec["export"]) == ("file", "mine.npz", "resmlp", False)
    plan = json.loads((run_dir / "plan.json").read_text())  # the preflight matched the two models
    assert plan["total_params"] > 0 and (run_dir / "init.npz").is_file()
    from twinboard import runs

    outcomes = runs.wait("mine-resmlp", timeout=120, logdir=data_logdir)
    assert all(isinstance(o, runs.Finished) for o in outcomes.values()), outcomes
