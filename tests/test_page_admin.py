"""The Admin page (pages/admin.py) with AppTest, and its logic (twinboard/auth/admin.py): real users
files with real argon2id hashes, a real limits file and audit log in a temporary logdir, sessions
signed in with real tokens (pages/signin.py TOKEN_KEY), as tests/test_auth.py signs in."""
from __future__ import annotations

import json
from pathlib import Path

import pytest
from streamlit.testing.v1 import AppTest

from pages.signin import TOKEN_KEY
from tests.upload_archives import EV, event_bytes
from twinboard import auth, uploads
from twinboard.auth import admin, throttle
from twinboard.contract import CEILINGS, DEFAULT_LIMITS, LimitsError, limits_path, load_limits
from twinboard.text import md

ROOT = Path(__file__).resolve().parents[1]
PW = "correct horse battery"
TIMEOUT = 30


@pytest.fixture
def team(tmp_path, monkeypatch) -> Path:
    """A team-mode logdir with an admin (ada) and a runner (rita)."""
    monkeypatch.setenv("TWINBOARD_LOGDIR", str(tmp_path))
    monkeypatch.setenv("TWINBOARD_TEAM", "1")
    for var in ("TWINBOARD_USERS", "TWINBOARD_MAX_QUEUED", "TWINBOARD_UPLOADS_QUOTA_BYTES",
                "TWINBOARD_UPLOADS_QUOTA_PER_USER_BYTES"):
        monkeypatch.delenv(var, raising=False)
    throttle.reset()
    auth.add_user("ada", PW, auth.ADMIN)
    auth.add_user("rita", PW, auth.RUNNER)
    yield tmp_path
    throttle.reset()


def signed_in(name: str, script: str = "pages/admin.py") -> AppTest:
    at = AppTest.from_file(str(ROOT / script), default_timeout=TIMEOUT)
    at.session_state[TOKEN_KEY] = auth.make_token(auth.get_user(name))
    return at.run()


def texts(at: AppTest, kind: str) -> str:
    return "\n".join(str(e.value) for e in at.get(kind))


def last_audit(n: int = 1) -> list[tuple]:
    return [(e["user"], e["action"], e["target"], (e.get("details") or {}).get("command"))
            for e in auth.read_audit(n)]


# --- the page -------------------------------------------------------------------------------------
def test_admin_sees_users_and_adds_one(team):
    at = signed_in("ada")
    assert not at.exception, at.exception
    assert [t.value for t in at.title] == ["Admin"]
    users = at.dataframe[0].value
    assert list(users["name"]) == ["ada", "rita"] and list(users["role"]) == ["admin", "runner"]
    assert "password_hash" not in users.columns
    at.text_input(key="admin_add_name").set_value("val")
    at.text_input(key="admin_add_password").set_value(PW)
    at.selectbox(key="admin_add_role").set_value(auth.VIEWER)
    at.button(key="admin_add").click().run()
    assert not at.exception, at.exception
    assert "Added **val** (viewer)." in texts(at, "success")
    assert [(u.name, u.role) for u in auth.list_users()] == [("ada", "admin"), ("rita", "runner"), ("val", "viewer")]
    assert auth.verify("val", PW) is not None  # a real argon2id hash of the typed password
    assert at.text_input(key="admin_add_password").value == "" and at.text_input(key="admin_add_name").value == ""
    assert list(at.dataframe[0].value["name"]) == ["ada", "rita", "val"]  # the table shows the change
    assert last_audit() == [("ada", auth.MANAGE_USERS, "val", "add")]  # recorded once


def test_admin_changes_role_resets_password_and_removes(team):
    at = signed_in("ada")
    old_token = auth.make_token(auth.get_user("rita"))
    at.selectbox(key="admin_pick").set_value("rita").run()
    at.selectbox(key="admin_role_rita").set_value(auth.VIEWER)
    at.button(key="admin_set_role").click().run()
    assert auth.get_user("rita").role == auth.VIEWER and "**rita** is now viewer." in texts(at, "success")
    at.text_input(key="admin_new_password").set_value("a new long password")
    at.button(key="admin_set_password").click().run()
    assert auth.verify("rita", "a new long password") and auth.user_from_token(old_token) is None
    assert at.text_input(key="admin_new_password").value == ""
    at.button(key="admin_remove").click().run()
    at.button(key="admin_remove_yes").click().run()
    assert not at.exception, at.exception
    assert [u.name for u in auth.list_users()] == ["ada"] and "Removed **rita**." in texts(at, "success")
    assert last_audit(3) == [("ada", auth.MANAGE_USERS, "rita", "remove"),
                             ("ada", auth.MANAGE_USERS, "rita", "passwd"),
                             ("ada", auth.MANAGE_USERS, "rita", "set-role")]
    assert "a new long password" not in (team / ".twinboard" / "audit.jsonl").read_text()


def test_last_admin_rule_and_bad_input_are_error_messages(team):
    at = signed_in("ada")
    at.selectbox(key="admin_pick").set_value("ada").run()
    at.selectbox(key="admin_role_ada").set_value(auth.RUNNER)
    at.button(key="admin_set_role").click().run()
    assert not at.exception and "last admin" in texts(at, "error")
    assert auth.get_user("ada").role == auth.ADMIN
    at.button(key="admin_remove").click().run()
    at.button(key="admin_remove_yes").click().run()
    assert "last admin" in texts(at, "error") and auth.get_user("ada") is not None
    at.text_input(key="admin_add_name").set_value("rita")
    at.text_input(key="admin_add_password").set_value(PW)
    at.button(key="admin_add").click().run()
    assert "already exists" in texts(at, "error")
    at.text_input(key="admin_add_name").set_value("[x](http:evil)")  # shown as text, not a link
    at.text_input(key="admin_add_password").set_value("short")
    at.button(key="admin_add").click().run()
    assert md("[x](http:evil)") in texts(at, "error")
    assert at.text_input(key="admin_add_password").value == ""  # never left in the box
    assert auth.read_audit() == []  # nothing was changed, nothing recorded


def test_admin_saves_and_resets_a_limit(team):
    at = signed_in("ada")
    limits = at.dataframe[1].value
    epochs = limits[limits["limit"] == "epochs"].iloc[0]
    assert (epochs["current"], epochs["default"], epochs["ceiling"]) == (1000, 1000, CEILINGS["epochs"])
    at.selectbox(key="admin_limit_name").set_value("epochs").run()
    at.number_input(key="admin_limit_value_epochs").set_value(200)
    at.button(key="admin_limit_save").click().run()
    assert not at.exception, at.exception
    assert load_limits(team)["epochs"] == 200 and "The epochs limit is now 200." in texts(at, "success")
    shown = at.dataframe[1].value
    assert shown[shown["limit"] == "epochs"].iloc[0]["current"] == 200
    assert last_audit() == [("ada", auth.SET_QUOTA, admin.LIMITS_TARGET, None)]
    assert auth.read_audit(1)[0]["details"] == {"changes": {"epochs": 200}}
    at.number_input(key="admin_limit_value_epochs").set_value(CEILINGS["epochs"] + 1)  # past the ceiling
    at.button(key="admin_limit_save").click().run()
    assert "ceiling" in texts(at, "error") and load_limits(team)["epochs"] == 200
    at.selectbox(key="admin_limit_name").set_value("lr").run()  # a float limit
    at.number_input(key="admin_limit_value_lr").set_value(2.5)
    at.button(key="admin_limit_save").click().run()
    assert load_limits(team)["lr"] == 2.5 and load_limits(team)["epochs"] == 200
    at.button(key="admin_limit_reset").click().run()  # the selected one only
    assert load_limits(team)["lr"] == DEFAULT_LIMITS["lr"] and load_limits(team)["epochs"] == 200
    at.button(key="admin_limit_reset_all").click().run()
    assert not at.exception, at.exception
    assert load_limits(team) == dict(DEFAULT_LIMITS) and json.loads(limits_path(team).read_text()) == {}


def test_a_broken_limits_file_is_shown_and_its_entry_dropped(team):
    limits_path(team).write_text(json.dumps({"epochs": 50, "nonsense": 3}))
    at = signed_in("ada")
    assert not at.exception and "nonsense" in texts(at, "error")
    at.button(key="admin_limit_drop").click().run()
    assert load_limits(team)["epochs"] == 50 and "nonsense" not in limits_path(team).read_text()


def test_quotas_usage_and_audit_filters(team, monkeypatch):
    monkeypatch.setenv("TWINBOARD_MAX_QUEUED", "7")
    monkeypatch.setenv("TWINBOARD_UPLOADS_QUOTA_PER_USER_BYTES", "1000000")
    data = event_bytes(3, "loss")
    uploads.import_upload([(EV, data)], "r1", team, owner="rita")
    uploads.import_upload([(EV, data)], "old", team)  # solo-era: no owner
    auth.record(auth.get_user("rita"), auth.UPLOAD, "uploads/r1")
    auth.record(auth.get_user("ada"), auth.SET_QUOTA, admin.LIMITS_TARGET, changes={"epochs": 5})
    at = signed_in("ada")
    assert not at.exception, at.exception
    quotas = {r["set by"]: r for r in admin.quota_rows()}
    assert quotas["TWINBOARD_MAX_QUEUED"]["in force"] == "7" and quotas["TWINBOARD_MAX_QUEUED"]["from environment"]
    frames = [d.value for d in at.dataframe]
    usage = next(f for f in frames if "owner" in f.columns)
    assert list(usage["owner"]) == ["rita", admin.NO_OWNER]
    rita_bytes = uploads.usage(team, "rita")[1]
    assert usage.iloc[0]["bytes"] == rita_bytes and usage.iloc[0]["of per-user quota"] == round(rita_bytes / 1e4, 1)
    assert usage["bytes"].sum() == uploads.usage(team)[0]
    audit = frames[-1]
    assert list(audit["action"]) == [auth.SET_QUOTA, auth.UPLOAD]  # newest first
    assert audit.iloc[0]["details"] == '{"changes": {"epochs": 5}}'
    at.multiselect(key="admin_audit_users").set_value(["rita"]).run()
    assert list(at.dataframe[-1].value["action"]) == [auth.UPLOAD]
    at.multiselect(key="admin_audit_actions").set_value([auth.SET_QUOTA]).run()
    assert at.dataframe[-1].value.empty  # both filters apply
    at.multiselect(key="admin_audit_users").set_value([]).run()
    assert list(at.dataframe[-1].value["user"]) == ["ada"]


def test_a_runner_is_refused_with_no_controls(team):
    at = signed_in("rita")
    assert not at.exception
    assert texts(at, "error") == f"This page is for admins only: {md('rita (runner) may not manage users')}."
    assert not at.dataframe and not at.button and not at.text_input and not at.tabs


def test_navigation_lists_admin_only_for_an_admin_in_team_mode(team, monkeypatch):
    at = signed_in("ada", "app.py")
    assert not at.exception, at.exception
    at.switch_page("pages/admin.py").run()
    assert [t.value for t in at.title] == ["Admin"]
    for who in ("rita", None):  # a runner in team mode; anyone in solo mode
        if who is None:
            monkeypatch.delenv("TWINBOARD_TEAM")
            at = AppTest.from_file(str(ROOT / "app.py"), default_timeout=TIMEOUT).run()
        else:
            at = signed_in(who, "app.py")
        assert not at.exception, at.exception
        with pytest.raises(ValueError, match="Could not find a navigation page"):
            at.switch_page("pages/admin.py")


# --- the logic ------------------------------------------------------------------------------------
def test_changes_are_checked_on_the_server_side(team):
    rita = auth.get_user("rita")
    for call in (lambda: admin.add_user(rita, "eve", PW, auth.ADMIN), lambda: admin.set_role(rita, "rita", auth.ADMIN),
                 lambda: admin.set_password(rita, "ada", PW + "!"), lambda: admin.remove_user(rita, "ada"),
                 lambda: admin.save_limits(rita, {"epochs": 10_000})):
        with pytest.raises(auth.PermissionDenied):
            call()
    assert [(u.name, u.role) for u in auth.list_users()] == [("ada", "admin"), ("rita", "runner")]
    assert auth.verify("ada", PW) and not limits_path(team).exists() and auth.read_audit() == []
    with pytest.raises(LimitsError, match="whole number"):
        admin.save_limits(auth.get_user("ada"), {"epochs": 1.5})


def test_table_builders():
    rows = admin.limit_rows({**DEFAULT_LIMITS, "epochs": 50})
    assert [r["limit"] for r in rows] == list(DEFAULT_LIMITS)
    by = {r["limit"]: r for r in rows}
    assert by["epochs"]["changed"] and not by["lr"]["changed"] and by["parameters"]["bounds"]
    assert admin.is_whole("epochs") and admin.is_whole("parameters") and not admin.is_whole("lr")
    assert admin.reset_all({"epochs": 50}) == {n: None for n in DEFAULT_LIMITS}
    entries = [{"time": 1.0, "user": None, "role": None, "action": "sign_in_failed", "target": "x"},
               {"time": 2.0, "user": "ada", "role": "admin", "action": "set_quota", "target": "limits.json",
                "details": {"changes": {"epochs": 5}}}]
    assert admin.audit_choices(entries) == ([admin.NOBODY, "ada"], ["set_quota", "sign_in_failed"])
    assert [r["user"] for r in admin.audit_rows(entries)] == [admin.NOBODY, "ada"]
    only = admin.audit_rows(entries, by_actions=["set_quota"])
    assert len(only) == 1 and only[0]["details"] == '{"changes": {"epochs": 5}}'
    usage = admin.usage_rows({"ada": (2, 500), admin.NO_OWNER: (1, 10)}, 1000)
    assert [(r["owner"], r["of per-user quota"]) for r in usage] == [("ada", 50.0), (admin.NO_OWNER, None)]
