"""Data files in team mode (only a launcher may save, only an admin delete, and it is audited), the
Launch page's picker (AppTest of a one-line script calling pages.launch_data.data_picker), and the
whole Launch page starting a plugin model on an uploaded .npz (stub trainers)."""
from __future__ import annotations

import json
from pathlib import Path

import numpy as np
import pytest
from streamlit.testing.v1 import AppTest

from tests.datafile_payloads import GOOD, csv_bytes, folder, npz, with_
from twinboard import datafiles
from twinboard.auth import ADMIN, RUNNER, VIEWER, PermissionDenied, User, actions, read_audit
from twinboard.text import md

ROOT = Path(__file__).resolve().parents[1]


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


# --- the whole Launch page -------------------------------------------------------------------------
def test_the_launch_page_starts_a_plugin_model_on_an_uploaded_npz(data_logdir, monkeypatch):
    """The whole Launch page (AppTest): task file shows the chooser, a .npz is uploaded and saved,
    the example plugin is picked as the model, Start runs its preflight (both frameworks, a real
    subprocess) and the run's spec names the file and the model; the stub trainers train it."""
    from tests.stub_trainer import STUB

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
