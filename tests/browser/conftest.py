"""Fixtures for the browser tests: the real app on a loopback port, Debian's Chromium, one real pair.

Without /usr/bin/chromium these tests skip with a message saying how to enable them; under CI=true
(`.ci/run` installs chromium) a missing browser is a failure, not a skip. Teardown stops every run
the tests started, the server, and anything else still carrying the test logdir in its environment,
then fails if a process survived.
"""
from __future__ import annotations

import os
import tempfile
import time
from pathlib import Path

import pytest

from tests.browser import harness

# The pair every view is checked on. Compute-bound on purpose (batch 512, two 512-wide layers): a step
# then costs about the same in both frameworks (~0.07 s idle, ~0.15 s busy on the 2-core machine), so
# each side trains for 20-45 s, long enough to watch its curve grow after the page has opened. A small,
# overhead-bound model finishes PyTorch's steps in under a second, before a refresh could show growth.
RUN_NAME = "browser-pair"
STEPS = 300
FORM = {"steps": str(STEPS), "batch_size": "512", "hidden": "512, 512", "log_every": "5", "histogram_every": "100"}
RUN_SPEC = {"steps": STEPS, "batch_size": 512, "hidden": (512, 512), "log_every": 5, "histogram_every": 100}
RUN_TIMEOUT_S = 300  # a pair's whole life on a busy 2-core machine: imports alone took 30-45 s there
UI_TIMEOUT_MS = 90_000  # one page run and its charts drawn, on that machine (5-15 s seen, busy)
FAILURES = Path(tempfile.gettempdir()) / "twinboard-browser-failures"  # screenshots of failed tests (kept)


def _ci() -> bool:
    return os.environ.get("CI", "").strip().lower() in ("1", "true", "yes")


@pytest.fixture(scope="session", autouse=True)
def _chromium_available():
    why = harness.chromium_missing()
    if why is None:
        return
    if _ci():
        pytest.fail(f"CI=true but the browser tests cannot run: {why}", pytrace=False)
    pytest.skip(why)


@pytest.fixture(scope="session")
def logdir(tmp_path_factory) -> Path:
    return tmp_path_factory.mktemp("browser") / "logs"


@pytest.fixture(scope="session")
def server(logdir, _chromium_available):
    """The app, served on a free loopback port with TWINBOARD_LOGDIR = a temp folder."""
    from twinboard import runs

    logdir.mkdir(parents=True, exist_ok=True)
    app = harness.AppServer(logdir, logdir.parent / "streamlit.log", env={"TWINBOARD_MAX_PROCS": "2"})
    app.start()
    yield app
    # Teardown: the launcher's own stop for every run still going, then the server, then anything left.
    try:
        for run in runs.list_runs(logdir):
            if run.state in ("running", "queued"):
                runs.stop(run.run_id, logdir=logdir, grace=2.0)
    finally:
        app.stop()
        harness.kill_spawned(logdir)
    deadline = time.monotonic() + 10
    while harness.leftover_processes(logdir) and time.monotonic() < deadline:
        time.sleep(0.2)
    left = harness.leftover_processes(logdir)
    assert not left, "processes the browser tests started are still alive:\n" + "\n".join(left)


@pytest.fixture(scope="session")
def browser(_chromium_available):
    from playwright.sync_api import sync_playwright

    with sync_playwright() as pw:
        chromium = harness.launch_browser(pw)
        yield chromium
        chromium.close()


@pytest.hookimpl(hookwrapper=True)
def pytest_runtest_makereport(item, call):
    outcome = yield
    report = outcome.get_result()
    setattr(item, f"rep_{report.when}", report)  # the page fixture looks at rep_call to save evidence


@pytest.fixture
def page(browser, request):
    """A fresh browser tab at 1400x900. When the test fails: a full-page screenshot, the JavaScript
    errors, and the state of every run in the test's logdir are printed with the failure."""
    context = browser.new_context(viewport=harness.VIEWPORT)
    context.set_default_timeout(UI_TIMEOUT_MS)
    tab = context.new_page()
    js_errors: list[str] = []
    tab.on("pageerror", lambda err: js_errors.append(str(err)[:500]))
    yield tab
    report = getattr(request.node, "rep_call", None)
    if report is not None and report.failed:
        shot = FAILURES / f"{request.node.name[:120]}.png"
        shot.parent.mkdir(parents=True, exist_ok=True)
        try:
            tab.screenshot(path=str(shot), full_page=True, timeout=30_000)
            print(f"screenshot of the page at failure: {shot}")
        except Exception as err:  # the evidence is a bonus; never hide the real failure behind it
            print(f"no screenshot: {err}")
        if js_errors:
            print("JavaScript errors on the page:\n" + "\n".join(js_errors))
        root = request.node.funcargs.get("logdir")
        if root is not None:
            _print_runs(root)
    context.close()


def _print_runs(root: Path) -> None:
    from twinboard import runs

    try:
        for run in runs.list_runs(root):
            for fw, job in run.frameworks.items():
                print(f"run {run.run_id} {fw}: {job.describe()}" + (f"\n{job.error}" if job.error else ""))
    except Exception as err:
        print(f"cannot list runs in {root}: {err}")


@pytest.fixture(scope="session")
def runs_started() -> dict[str, str]:
    """run name -> run id of the pairs the tests started (test_launch registers its own here)."""
    return {}


@pytest.fixture(scope="session")
def finished_run(server, logdir, runs_started) -> str:
    """The id of a finished real pair: the one the Launch test started through the form if it ran,
    else one started here through the launcher (so each test file also runs alone)."""
    from twinboard.contract import RunSpec
    from twinboard import runs

    run_id = runs_started.get(RUN_NAME)
    if run_id is None:
        out = runs.launch(RunSpec(**RUN_SPEC), logdir=logdir, name=RUN_NAME)
        assert isinstance(out, runs.Launched), out
        run_id = runs_started[RUN_NAME] = out.run_id
    outcomes = runs.wait(run_id, timeout=RUN_TIMEOUT_S, logdir=logdir)
    assert all(isinstance(o, runs.Finished) for o in outcomes.values()), (
        outcomes, {fw: (logdir / run_id / f"{fw}.stderr").read_text()[-2000:] for fw in runs.FRAMEWORKS
                   if (logdir / run_id / f"{fw}.stderr").exists()})
    return run_id


# --- helpers the tests share ------------------------------------------------------------------------
def assert_no_error_boxes(page, where: str) -> None:
    boxes = harness.error_boxes(page)
    assert not boxes, f"{where}: the page shows error boxes:\n" + "\n---\n".join(boxes)


def choose_pair(page, key: str, label: str) -> None:
    """Pick `label` in a page's sidebar "Matched pair" selectbox (key `<key>_pair`) unless it is shown."""
    from playwright.sync_api import expect

    combo = page.locator(f".st-key-{key}_pair input[role='combobox']")
    expect(combo).to_be_visible()
    if combo.input_value() == label:
        return
    harness.choose_option(page, combo, label, timeout=UI_TIMEOUT_MS)
    expect(combo).to_have_value(label)
