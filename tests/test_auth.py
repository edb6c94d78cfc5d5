"""Team mode (twinboard.auth and pages/signin.py): real argon2id hashes, signed tokens and how they
stop working, the roles matrix, the sign-in delay, the audit log under concurrent writers, ownership,
the `users` CLI, and an AppTest of the sign-in gate."""
from __future__ import annotations

import io
import json
import os
import stat
import threading
from pathlib import Path

import pytest
from streamlit.testing.v1 import AppTest

from twinboard import auth
from twinboard.auth import sessions, throttle, users
from twinboard.auth.roles import ACTIONS

ROOT = Path(__file__).resolve().parents[1]
PW = "correct horse battery"  # >= MIN_PASSWORD


@pytest.fixture
def logdir(tmp_path, monkeypatch) -> Path:
    """A fresh logdir in team mode; the sign-in delay's memory starts empty."""
    monkeypatch.setenv("TWINBOARD_LOGDIR", str(tmp_path))
    monkeypatch.setenv("TWINBOARD_TEAM", "1")
    monkeypatch.delenv("TWINBOARD_USERS", raising=False)
    throttle.reset()
    yield tmp_path
    throttle.reset()


# --- users --------------------------------------------------------------------------------------
def test_real_argon2id_hashes_and_verify(logdir):
    alice = auth.add_user("alice", PW, auth.ADMIN)
    assert alice.password_hash.startswith("$argon2id$") and PW not in alice.password_hash
    assert "password_hash" not in repr(alice)  # a logged User shows no hash
    assert auth.verify("alice", PW) == alice
    assert auth.verify("alice", PW + "x") is None
    assert auth.verify("nobody", PW) is None
    assert auth.verify("alice", "y" * 100_000) is None  # unbounded input is not hashed
    assert [u.name for u in auth.list_users()] == ["alice"]
    stored = json.loads((logdir / ".twinboard" / "users.json").read_text())["users"]["alice"]
    assert stored["role"] == "admin" and stored["password_hash"] == alice.password_hash


def test_unknown_name_costs_a_hash_too(logdir, monkeypatch):
    auth.add_user("alice", PW, auth.RUNNER)
    calls = []

    class Spy:
        def verify(self, hash_, password):
            calls.append(hash_)
            return real.verify(hash_, password)

        def __getattr__(self, name):  # hash() of the dummy, when no earlier test made it yet
            return getattr(real, name)

    real = users._hasher
    monkeypatch.setattr(users, "_hasher", Spy())
    assert auth.verify("mallory", PW) is None
    assert len(calls) == 1 and calls[0].startswith("$argon2id$")


@pytest.mark.parametrize("name", ["", "a" * 33, "a b", "../x", "al/ice", "é", "x\n"])
def test_bad_names_are_refused(logdir, name):
    with pytest.raises(auth.AuthError, match="user name"):
        auth.add_user(name, PW)
    assert auth.get_user(name) is None


def test_bad_role_password_duplicate_and_last_admin(logdir):
    with pytest.raises(auth.AuthError, match="role 'root'"):
        auth.add_user("alice", PW, "root")
    with pytest.raises(auth.AuthError, match="password"):
        auth.add_user("alice", "short")
    auth.add_user("alice", PW, auth.ADMIN)
    with pytest.raises(auth.AuthError, match="already exists"):
        auth.add_user("alice", PW)
    with pytest.raises(auth.AuthError, match="last admin"):
        auth.set_role("alice", auth.VIEWER)
    with pytest.raises(auth.AuthError, match="last admin"):
        auth.remove_user("alice")
    auth.add_user("bob", PW, auth.ADMIN)
    assert auth.set_role("alice", auth.VIEWER).role == auth.VIEWER
    auth.remove_user("alice")
    assert [u.name for u in auth.list_users()] == ["bob"]
    with pytest.raises(auth.AuthError, match="no user named 'alice'"):
        auth.set_password("alice", PW)


def test_users_file_is_written_atomically(logdir, monkeypatch):
    auth.add_user("alice", PW, auth.ADMIN)
    path = auth.users_path()
    before = path.read_bytes()
    assert stat.S_IMODE(path.stat().st_mode) == 0o600  # hashes: the server's account only
    assert stat.S_IMODE(path.parent.stat().st_mode) == 0o700

    def crash(src, dst):  # the process dies between writing the temp file and renaming it
        raise OSError("disk gone")

    monkeypatch.setattr("twinboard.contract.files.os.replace", crash)
    with pytest.raises(OSError, match="disk gone"):
        auth.add_user("bob", PW)
    assert path.read_bytes() == before  # the old file, whole
    assert sorted(p.name for p in path.parent.iterdir()) == ["users.json", "users.json.lock"]  # no temp left


def test_concurrent_adds_lose_nothing(logdir):
    threads = [threading.Thread(target=auth.add_user, args=(f"u{i}", PW)) for i in range(4)]
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    assert [u.name for u in auth.list_users()] == ["u0", "u1", "u2", "u3"]


def test_users_env_override_and_corrupt_file(logdir, monkeypatch, tmp_path):
    other = tmp_path / "elsewhere" / "people.json"
    monkeypatch.setenv("TWINBOARD_USERS", str(other))
    auth.add_user("alice", PW)
    assert other.is_file() and not (logdir / ".twinboard" / "users.json").exists()
    other.write_text("{not json")
    with pytest.raises(auth.AuthError, match="not a Twinboard users file"):
        auth.add_user("bob", PW)
    assert other.read_text() == "{not json"  # reported, not overwritten


def test_team_mode_env(monkeypatch):
    for raw, expected in [("1", True), ("true", True), ("0", False), ("", False)]:
        monkeypatch.setenv("TWINBOARD_TEAM", raw)
        assert auth.team_mode() is expected
    monkeypatch.setenv("TWINBOARD_TEAM", "ture")  # a typo must not mean "solo: everything allowed"
    with pytest.raises(ValueError, match="TWINBOARD_TEAM='ture'"):
        auth.team_mode()


# --- sessions -----------------------------------------------------------------------------------
def test_token_round_trip_and_secret_file(logdir):
    alice = auth.add_user("alice", PW, auth.RUNNER)
    token = auth.make_token(alice)
    assert auth.user_from_token(token) == alice
    key = logdir / ".twinboard" / "secret"
    assert len(key.read_bytes()) == 32 and stat.S_IMODE(key.stat().st_mode) == 0o600
    auth.set_role("alice", auth.VIEWER)  # a role change applies to the open session
    assert auth.user_from_token(token).role == auth.VIEWER


def test_tampered_tokens_are_refused(logdir):
    auth.add_user("alice", PW, auth.RUNNER)
    auth.add_user("bob", PW, auth.ADMIN)
    token = auth.make_token(auth.get_user("alice"))
    version, payload, sig = token.split(".")
    flipped = sig[:-1] + ("A" if sig[-1] != "A" else "B")
    expiry = json.loads(sessions._unb64(payload))[2]
    as_bob = sessions._b64(json.dumps(["bob", auth.get_user("bob").fingerprint, expiry]).encode())
    for bad in [f"{version}.{payload}.{flipped}", f"{version}.{as_bob}.{sig}", f"v2.{payload}.{sig}",
                token + ".x", token[:-3], "", None, "x" * 100_000, "v1.é.ü", "v1.!!!.???"]:
        assert auth.user_from_token(bad) is None, bad


def test_expired_removed_and_new_password_end_a_session(logdir):
    alice = auth.add_user("alice", PW, auth.RUNNER)
    auth.add_user("root", PW, auth.ADMIN)
    token = auth.make_token(alice, ttl_s=60, now=1_000_000.0)
    assert auth.user_from_token(token, now=1_000_059.0) == alice
    assert auth.user_from_token(token, now=1_000_060.0) is None  # expired
    token = auth.make_token(alice)
    auth.set_password("alice", PW)  # the same password, a new salt: old sessions end anyway
    assert auth.user_from_token(token) is None
    token = auth.make_token(auth.get_user("alice"))
    auth.remove_user("alice")
    assert auth.user_from_token(token) is None
    auth.add_user("alice", PW, auth.RUNNER)  # a new user of the same name is not the old session's
    assert auth.user_from_token(token) is None


def test_a_new_secret_ends_every_session(logdir):
    token = auth.make_token(auth.add_user("alice", PW))
    (logdir / ".twinboard" / "secret").unlink()
    assert auth.user_from_token(token) is None


# --- roles --------------------------------------------------------------------------------------
OWNED = (auth.STOP, auth.DELETE_RUN, auth.RENAME_UPLOAD, auth.DELETE_UPLOAD, auth.EDIT_MAPPING)


@pytest.mark.parametrize("action", ACTIONS)
def test_roles_matrix(logdir, action):
    viewer, runner, admin = (auth.User(n, r) for n, r in [("val", "viewer"), ("rita", "runner"), ("ada", "admin")])
    assert not auth.allowed(viewer, action, owner="val")  # a viewer changes nothing, not even their own
    assert auth.allowed(admin, action, owner="someone") and auth.allowed(admin, action)
    assert not auth.allowed(None, action)
    if action in (auth.LAUNCH, auth.UPLOAD):
        assert auth.allowed(runner, action)
    elif action in OWNED:
        assert auth.allowed(runner, action, owner="rita")
        assert not auth.allowed(runner, action, owner="ada")
        assert not auth.allowed(runner, action, owner=None)  # no recorded owner: an admin's to change
    else:  # DELETE_DATA, SET_QUOTA, MANAGE_USERS, VIEW_AUDIT
        assert not auth.allowed(runner, action, owner="rita")


def test_require_names_user_role_and_action(logdir):
    viewer, runner = auth.User("val", auth.VIEWER), auth.User("rita", auth.RUNNER)
    with pytest.raises(auth.PermissionDenied, match=r"val \(viewer\) may not launch"):
        auth.require(viewer, auth.LAUNCH)
    with pytest.raises(auth.PermissionDenied, match=r"rita \(runner\) may not stop what ada owns"):
        auth.require(runner, auth.STOP, owner="ada")
    with pytest.raises(auth.PermissionDenied, match="sign in first"):
        auth.require(None, auth.LAUNCH)
    assert auth.require(runner, auth.STOP, owner="rita") is runner
    with pytest.raises(ValueError, match="unknown action 'fly'"):
        auth.allowed(runner, "fly")


def test_solo_mode_allows_everything(monkeypatch):
    monkeypatch.delenv("TWINBOARD_TEAM", raising=False)
    assert not auth.team_mode()
    assert all(auth.allowed(auth.User("val", auth.VIEWER), a) for a in ACTIONS)
    assert auth.LOCAL_ADMIN.role == auth.ADMIN and auth.require(auth.LOCAL_ADMIN, auth.SET_QUOTA)


# --- sign-in delay ------------------------------------------------------------------------------
def test_delay_grows_after_failures_and_success_clears_it(logdir):
    auth.add_user("alice", PW)
    clock = [1000.0]

    def now() -> float:
        return clock[0]

    waits = []
    for _ in range(7):
        result = auth.sign_in("alice", "wrong password", now=now)
        assert not result and "Wrong name or password" in result.reason
        waits.append(result.wait_s)
        locked = auth.sign_in("alice", PW, now=now)  # the right password, too soon: refused unchecked
        assert not locked and f"wait {int(result.wait_s)} s" in locked.reason
        clock[0] += result.wait_s + 0.01
    assert waits == [1, 2, 4, 8, 16, 30, 30]
    assert throttle.failures("alice") == 7
    ok = auth.sign_in("alice", PW, now=now)
    assert ok and ok.user.name == "alice" and throttle.failures("alice") == 0
    assert [e["action"] for e in auth.read_audit(2)] == ["sign_in", "sign_in_failed"]


def test_unknown_and_invalid_names_get_the_same_answer(logdir):
    first = auth.sign_in("ghost", "whatever pw", now=lambda: 0.0)
    assert first.reason == "Wrong name or password. Wait 1 s before trying again."
    assert "wait 1 s" in auth.sign_in("ghost", "whatever pw", now=lambda: 0.5).reason
    assert auth.sign_in("../../etc", "x", now=lambda: 0.0).reason == "Wrong name or password."


# --- audit log ----------------------------------------------------------------------------------
def test_audit_lines_from_four_threads_are_all_whole(logdir):
    who = [auth.User(f"user{i}", auth.RUNNER) for i in range(4)]
    per_thread = 100

    def writer(user):
        for n in range(per_thread):
            auth.record(user, auth.LAUNCH, f"run-{n}", n=n, note="x" * (n * 37 % 290), tags=["a"] * (n % 9))

    threads = [threading.Thread(target=writer, args=(u,)) for u in who]
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    lines = (logdir / ".twinboard" / "audit.jsonl").read_text().splitlines()
    assert len(lines) == 4 * per_thread
    entries = [json.loads(line) for line in lines]  # every line whole JSON
    for u in who:
        mine = [e["details"]["n"] for e in entries if e["user"] == u.name]
        assert mine == list(range(per_thread))  # one thread's lines keep their order
    assert set(entries[0]) == {"time", "user", "role", "action", "target", "details"}


def test_read_audit_is_newest_first_and_bounded(logdir):
    bob = auth.User("bob", auth.ADMIN)
    for n in range(2000):  # > one 64 KiB block from the end
        auth.record(bob, auth.STOP, f"run-{n}", filler="y" * 60)
    path = logdir / ".twinboard" / "audit.jsonl"
    with open(path, "a") as f:
        f.write('{"half a line\n')  # a disk that filled mid-line
    auth.record(bob, auth.DELETE_RUN, "run-last", regex="(" * 10_000)  # long visitor text is clipped
    got = auth.read_audit(1500)
    assert len(got) == 1500 and got[0]["target"] == "run-last" and len(got[0]["details"]["regex"]) < 400
    assert [e["target"] for e in got[1:]] == [f"run-{n}" for n in range(1999, 500, -1)]
    assert len(auth.read_audit(100_000)) == 2001
    assert stat.S_IMODE(path.stat().st_mode) == 0o600


# --- ownership ----------------------------------------------------------------------------------
def test_owner_of_runs_and_uploads(logdir):
    run, upload = logdir / "run-1", logdir / "uploads" / "theirs"
    run.mkdir()
    upload.mkdir(parents=True)
    assert auth.owner_of(run) is None
    auth.set_owner(run, auth.User("rita", auth.RUNNER))
    auth.set_owner(upload, "ada")
    assert auth.owner_of(run) == "rita" and auth.owner_of(upload) == "ada"
    launched = logdir / "run-2"
    launched.mkdir()
    (launched / "run.json").write_text(json.dumps({"id": "run-2", "owner": "bob"}))
    assert auth.owner_of(launched) == "bob"  # the launcher's field works too
    (run / ".owner.json").write_text('{"owner": "../../root"}')
    assert auth.owner_of(run) is None
    with pytest.raises(FileNotFoundError):
        auth.set_owner(logdir / "missing", "rita")


# --- CLI ----------------------------------------------------------------------------------------
def test_cli_adds_lists_and_changes_users(logdir, monkeypatch, capsys):
    monkeypatch.setattr("sys.stdin", io.StringIO(PW + "\n"))
    assert auth.cli_users(["add", "alice", "--role", "admin", "--password-stdin"]) == 0
    assert auth.verify("alice", PW).role == "admin"
    assert "added alice (admin)" in capsys.readouterr().out
    prompts = iter(["second password", "second password"])
    monkeypatch.setattr("getpass.getpass", lambda prompt="": next(prompts))
    assert auth.cli_users(["users", "add", "bob", "--role", "runner"]) == 0  # a leading "users" is fine
    assert auth.verify("bob", "second password").role == "runner"
    assert auth.cli_users(["set-role", "bob", "viewer"]) == 0
    assert auth.cli_users(["list"]) == 0
    listing = capsys.readouterr().out
    assert "alice" in listing and "bob" in listing and "viewer" in listing
    prompts = iter(["new password 1", "new password 2"])
    assert auth.cli_users(["passwd", "bob"]) == 1  # the two differ: nothing changed
    assert "differ" in capsys.readouterr().err and auth.verify("bob", "second password")
    assert auth.cli_users(["remove", "alice"]) == 1  # the last admin
    assert auth.cli_users(["set-role", "bob", "root"]) == 2  # argparse's usage error
    assert auth.cli_users(["remove", "bob"]) == 0 and auth.get_user("bob") is None
    actions = [(e["user"], e["details"]["command"]) for e in auth.read_audit(10)]
    assert actions == [("cli", "remove"), ("cli", "set-role"), ("cli", "add"), ("cli", "add")]
    assert os.stat(auth.users_path()).st_size > 0


# --- the sign-in gate (AppTest) -----------------------------------------------------------------
def gate_page() -> AppTest:
    return AppTest.from_file(str(ROOT / "pages" / "signin.py"), default_timeout=30)


def test_gate_shows_only_the_form_then_signs_in(logdir):
    auth.add_user("alice", PW, auth.RUNNER)
    at = gate_page().run()
    assert not at.exception
    assert [t.value for t in at.title] == ["Sign in"]
    assert {w.key for w in at.text_input} == {"signin_name", "signin_password"}
    assert not at.sidebar.button and not at.markdown  # nothing but the form
    at.text_input(key="signin_name").set_value("alice")
    at.text_input(key="signin_password").set_value("wrong password")
    at.button(key="signin_submit").click()
    at.run()
    assert "Wrong name or password" in at.error[0].value
    throttle.reset()
    at.text_input(key="signin_name").set_value("alice")
    at.text_input(key="signin_password").set_value(PW)
    at.button(key="signin_submit").click()
    at.run()
    assert not at.exception
    assert [t.value for t in at.title] == ["Account"]
    assert auth.user_from_token(at.session_state["twinboard_token"]).name == "alice"


def test_gate_accepts_a_valid_token_and_signs_out(logdir):
    token = auth.make_token(auth.add_user("alice", PW, auth.RUNNER))
    at = gate_page()
    at.session_state["twinboard_token"] = token
    at.run()
    assert not at.exception
    assert [t.value for t in at.title] == ["Account"]
    assert "Signed in as **alice** (runner)" in at.sidebar.caption[0].value
    at.sidebar.button(key="signout").click()
    at.run()
    assert [t.value for t in at.title] == ["Sign in"]
    assert "twinboard_token" not in at.session_state


def test_gate_in_solo_mode_is_the_local_admin(logdir, monkeypatch):
    monkeypatch.delenv("TWINBOARD_TEAM")
    at = gate_page().run()
    assert not at.exception and [t.value for t in at.title] == ["Account"]
    assert not at.text_input and not at.sidebar.button  # no form, no sign-out
