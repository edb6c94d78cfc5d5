"""Team mode in a real browser (`twinboard serve --team`): nobody sees a page before signing in; a
viewer gets no control that changes anything; a runner may not stop a colleague's run, an admin may;
a reload keeps the session and signing out ends it.

The server's refusals when a control is forced are tested on the actions themselves
(tests/test_auth_actions.py): a Streamlit widget that was never drawn cannot be clicked at all.
"""
from __future__ import annotations

import os
import sys
from contextlib import contextmanager
from pathlib import Path

import pytest
from playwright.sync_api import expect

from tests.browser import harness
from tests.browser.conftest import UI_TIMEOUT_MS
from tests.stub_trainer import STUB

PASSWORD = "correct horse battery"
USERS = {"val": "viewer", "rita": "runner", "bob": "runner", "ada": "admin"}


@contextmanager
def _env(**values: str):
    saved = {k: os.environ.get(k) for k in values}
    os.environ.update(values)
    try:
        yield
    finally:
        for k, v in saved.items():
            os.environ.pop(k) if v is None else os.environ.__setitem__(k, v)


@pytest.fixture(scope="module")
def team(tmp_path_factory, _chromium_available):
    """A team server with four users and one running pair that bob launched (the stub, until stopped)."""
    from twinboard import auth, runs
    from twinboard.auth import actions
    from twinboard.contract import RunSpec

    logdir = tmp_path_factory.mktemp("team") / "logs"
    logdir.mkdir(parents=True)
    env = {"TWINBOARD_TEAM": "1", "TWINBOARD_MAX_PROCS": "2", "TWINBOARD_PASS_ENV": "STUB_",
           "TWINBOARD_TRAINER_CMD": f"{sys.executable} {STUB} {{spec}} {{framework}}", "STUB_MODE": "sleep"}
    with _env(TWINBOARD_LOGDIR=str(logdir), **env):
        for name, role in USERS.items():
            auth.add_user(name, PASSWORD, role, logdir=logdir)
        out = actions.launch(auth.get_user("bob", logdir=logdir), RunSpec(steps=5), "bob-run", logdir)
        assert isinstance(out, runs.Launched), out
    server = harness.AppServer(logdir, logdir.parent / "streamlit.log", env=env).start()
    yield server, logdir
    server.stop()
    harness.kill_spawned(logdir)


def sign_in(page, server, name: str) -> None:
    page.goto(server.url, wait_until="domcontentloaded")
    harness.wait_idle(page, UI_TIMEOUT_MS)
    page.get_by_role("textbox", name="Name").fill(name)
    page.get_by_role("textbox", name="Password").fill(PASSWORD)
    page.get_by_role("button", name="Sign in").click()
    expect(page.get_by_text(f"Signed in as {name}")).to_be_visible(timeout=UI_TIMEOUT_MS)
    harness.wait_idle(page, UI_TIMEOUT_MS)


def card(page, run_id: str):
    return page.locator(f".st-key-launch_card_{run_id}")


def test_an_anonymous_visitor_sees_only_the_sign_in(page, team):
    server, _ = team
    for path in ("", "/scalars", "/upload"):
        page.goto(server.url + path, wait_until="domcontentloaded")
        harness.wait_idle(page, UI_TIMEOUT_MS)
        expect(page.get_by_role("heading", name="Sign in")).to_be_visible()
        assert page.locator("[data-testid='stSidebarNav']").count() == 0, path
        assert page.get_by_text("Launch a matched run").count() == 0, path


def test_a_viewer_gets_no_control_that_changes_anything(page, team):
    server, _ = team
    sign_in(page, server, "val")
    expect(page.get_by_text("Your role can look at every run but not start one.")).to_be_visible()
    assert page.get_by_role("button", name="Start").count() == 0
    expect(card(page, "bob-run")).to_be_visible(timeout=UI_TIMEOUT_MS)
    assert card(page, "bob-run").get_by_role("button", name="Stop").count() == 0
    assert page.get_by_text(str(team[1])).count() == 0  # the server's path is not a visitor's business
    harness.open_page(page, server, "Upload")
    expect(page.get_by_text("Your role can look at every upload but not add one.")).to_be_visible()
    assert page.locator("[data-testid='stFileUploader']").count() == 0


def test_a_runner_may_not_stop_a_colleagues_run_and_a_reload_keeps_the_session(page, team):
    server, _ = team
    sign_in(page, server, "rita")
    expect(page.get_by_role("button", name="Start")).to_be_visible()
    expect(card(page, "bob-run")).to_be_visible(timeout=UI_TIMEOUT_MS)
    assert card(page, "bob-run").get_by_role("button", name="Stop").count() == 0
    page.reload(wait_until="domcontentloaded")
    harness.wait_idle(page, UI_TIMEOUT_MS)
    expect(page.get_by_text("Signed in as rita")).to_be_visible(timeout=UI_TIMEOUT_MS)
    page.get_by_role("button", name="Sign out").click()
    expect(page.get_by_role("heading", name="Sign in")).to_be_visible(timeout=UI_TIMEOUT_MS)
    page.reload(wait_until="domcontentloaded")
    harness.wait_idle(page, UI_TIMEOUT_MS)
    expect(page.get_by_role("heading", name="Sign in")).to_be_visible(timeout=UI_TIMEOUT_MS)


def test_an_admin_stops_anyones_run_and_it_is_recorded(page, team):
    from twinboard import auth, runs

    server, logdir = team
    sign_in(page, server, "ada")
    expect(page.get_by_text(str(logdir))).to_be_visible()  # an admin sees where the runs are
    stop = card(page, "bob-run").get_by_role("button", name="Stop")
    expect(stop).to_be_visible(timeout=UI_TIMEOUT_MS)
    stop.click()
    expect(card(page, "bob-run").get_by_text("stopped").first).to_be_visible(timeout=UI_TIMEOUT_MS)
    assert {j.state for j in runs.get_run("bob-run", logdir).frameworks.values()} == {"stopped"}
    done = [(a["user"], a["action"], a["target"]) for a in auth.read_audit(logdir=Path(logdir))]
    assert ("ada", "stop", "bob-run") in done and ("bob", "launch", "bob-run") in done
