"""One run choice across the app, in a real browser: the pair just started is every page's default, a
pair picked on one page is the pair on the next, a bookmark on a fresh server opens the app's own
navigation on the pair it names, and a run card's Scalars link opens that pair.

The app here runs with its own logdir and a trainer command that writes real event files with
tensorboardX (loss/val, accuracy/val for five steps) and then runs tests/stub_trainer.py for the
status files and exit code: a launched pair is listed within a second or two, without framework
imports. The logdir also holds pairs that sort before a new run by name (`zz-older`, `aa-newer`
runs, older) and an uploaded pair, so "the newest local pair" differs from every name order.
"""
from __future__ import annotations

import re
import shlex
import time
from pathlib import Path

import pytest
from playwright.sync_api import expect

from tests.browser import harness
from tests.browser.conftest import UI_TIMEOUT_MS, assert_no_error_boxes, choose_pair
from tests.stub_trainer import STUB

# Page title -> its picker's key prefix (pick_pair(key) on each view page).
VIEWS = {"Scalars": "scalars", "Histograms": "hist", "Embeddings": "emb", "Graphs": "graphs", "Parity": "parity"}
NAV = ["Launch", "Scalars", "Histograms", "Images", "Embeddings", "Graphs", "Parity", "Speed", "Deploy", "Sweeps",
       "Upload"]
CUSTOM = "Any two runs…"
UPLOADED = "uploads/alice"
# A trainer for the launcher (given the spec path and the framework): events first, so the pair is listed by the
# time the stub reports it finished. No braces in the code: the launcher fills {python}, {spec}, {framework}.
TRAINER_CODE = f"""
import subprocess, sys
from pathlib import Path
from tensorboardX import SummaryWriter
spec, framework = sys.argv[1], sys.argv[2]
writer = SummaryWriter(str(Path(spec).parent / framework))
for step in range(1, 6):
    writer.add_scalar('loss/val', 1.0 / step, step)
    writer.add_scalar('accuracy/val', 0.5 + step / 20, step)
writer.close()
sys.exit(subprocess.call([sys.executable, {str(STUB)!r}, spec, framework]))
"""
TRAINER_CMD = f"{{python}} -c {shlex.quote(TRAINER_CODE)} {{spec}} {{framework}}"
FINAL = "final: loss/val 0.2 · accuracy/val 75.0%"  # the last of five steps, both sides
ENV = {"TWINBOARD_TRAINER_CMD": TRAINER_CMD, "TWINBOARD_MAX_PROCS": "2"}


@pytest.fixture(scope="module")
def nav_logdir(tmp_path_factory) -> Path:
    """Two finished local pairs (zz-older, then aa-newer) and an uploaded pair written after both."""
    from tensorboardX import SummaryWriter

    from twinboard import runs
    from twinboard.contract import RunSpec

    root = tmp_path_factory.mktemp("navigation") / "logs"
    for name in ("zz-older", "aa-newer"):
        out = runs.launch(RunSpec(steps=5), root, name=name, trainer_cmd=TRAINER_CMD)
        assert isinstance(out, runs.Launched), out
        outcomes = runs.wait(name, timeout=120, logdir=root)
        assert all(isinstance(o, runs.Finished) for o in outcomes.values()), (
            outcomes, [(root / name / f"{fw}.stderr").read_text()[-2000:] for fw in runs.FRAMEWORKS])
        time.sleep(0.05)  # distinct `created` times
    for fw in runs.FRAMEWORKS:
        with SummaryWriter(str(root / UPLOADED / fw)) as writer:
            writer.add_scalar("loss", 1.0, 1)
    assert [p.label for p in runs.list_pairs(root)] == ["aa-newer", "zz-older", UPLOADED]
    yield root
    harness.kill_spawned(root)


@pytest.fixture(scope="module")
def nav_server(nav_logdir, _chromium_available):
    app = harness.AppServer(nav_logdir, nav_logdir.parent / "streamlit.log", env=ENV)
    app.start()
    yield app
    app.stop()
    harness.kill_spawned(nav_logdir)
    assert not harness.leftover_processes(nav_logdir)


def combo(page, key: str, side: str = "pair"):
    return page.locator(f".st-key-{key}_{side} input[role='combobox']")


def nav_links(page):
    return page.get_by_test_id("stSidebarNav").get_by_role("link")


def go(page, title: str, tries: int = 3) -> None:
    """Open a page as a visitor does: its link in the sidebar navigation (same session, no reload).

    A click that lands while the sidebar is being redrawn (a rerun finishing) can be lost, as it
    would be for a person, who clicks again: so does this, and says so."""
    from playwright.sync_api import TimeoutError as PlaywrightTimeout

    url = re.compile(rf"/{harness.PAGES[title]}(\?|$)")
    for attempt in range(1, tries + 1):
        harness.wait_idle(page, UI_TIMEOUT_MS)
        nav_links(page).filter(has_text=re.compile(rf"{title}$")).click()  # the text ends with the title
        try:
            page.wait_for_url(url, wait_until="commit", timeout=UI_TIMEOUT_MS // tries)
            break
        except PlaywrightTimeout:
            print(f"click {attempt} on {title!r} in the navigation did not navigate (url {page.url})")
    else:
        raise AssertionError(f"{tries} clicks on {title!r} did not open it; the page is at {page.url}")
    harness.wait_idle(page, UI_TIMEOUT_MS)


def pick(page, key: str, side: str, shown: str) -> None:
    """Choose the option shown as `shown` in the picker widget `<key>_<side>`."""
    box = combo(page, key, side)
    harness.choose_option(page, box, shown, timeout=UI_TIMEOUT_MS)
    expect(box).to_have_value(shown)


def query(page) -> str:
    return page.evaluate("() => decodeURIComponent(window.location.search)")


def expect_query(page, wanted: str) -> None:
    """Wait until the address bar's query string (decoded) is `wanted`: the app rewrites it after the
    rerun a pick causes, which may start after the page first looks idle."""
    from playwright.sync_api import TimeoutError as PlaywrightTimeout

    try:
        page.wait_for_function("(q) => decodeURIComponent(window.location.search) === q", arg=wanted,
                               timeout=UI_TIMEOUT_MS)
    except PlaywrightTimeout:
        raise AssertionError(f"the URL's query is {query(page)!r}, not {wanted!r}") from None


def test_a_bookmark_on_a_fresh_server_opens_the_app_navigation_on_its_pair(page, nav_logdir, _chromium_available):
    """The first request a fresh server gets is a page URL with a pair: the app's own navigation (not
    Streamlit's pages-folder one, which would list common, signin, ...) and the pair from the URL."""
    fresh = harness.AppServer(nav_logdir, nav_logdir.parent / "fresh-streamlit.log", env=ENV)
    with fresh:
        page.goto(f"{fresh.url}/scalars?pair={UPLOADED}", wait_until="domcontentloaded")
        harness.wait_idle(page, UI_TIMEOUT_MS)
        expect(combo(page, "scalars")).to_have_value(f"{UPLOADED} (uploaded)", timeout=UI_TIMEOUT_MS)
        entries = [t.strip().splitlines()[-1] for t in nav_links(page).all_inner_texts()]  # after the icon's name
        assert entries == NAV, entries
        assert not {"common", "app", "signin"} & {e.lower() for e in entries}
        expect_query(page, f"?pair={UPLOADED}")
        assert_no_error_boxes(page, "Scalars from a bookmark")


def test_after_start_every_page_opens_on_the_new_pair(page, nav_server, nav_logdir):
    harness.open_page(page, nav_server, "Launch")
    page.locator(".st-key-launch_steps input").fill("5")
    page.get_by_role("button", name="Start").click()
    started = page.locator("[data-testid='stAlertContentSuccess']").filter(has_text="Started")
    expect(started).to_be_visible(timeout=UI_TIMEOUT_MS)
    run_id = re.search(r"Started (\S+):", started.inner_text()).group(1)
    _wait_listed(nav_logdir, run_id)
    for title, key in VIEWS.items():
        go(page, title)
        expect(combo(page, key)).to_have_value(run_id, timeout=UI_TIMEOUT_MS)
        expect_query(page, f"?pair={run_id}")


def test_a_pair_picked_on_one_page_is_the_pair_on_the_next(page, nav_server):
    harness.open_page(page, nav_server, "Scalars")
    choose_pair(page, "scalars", "zz-older")
    expect_query(page, "?pair=zz-older")
    go(page, "Histograms")
    expect(combo(page, "hist")).to_have_value("zz-older")
    go(page, "Parity")
    expect(combo(page, "parity")).to_have_value("zz-older")

    # Any two runs: the pickers are named by position, not framework, and the choice travels too.
    pick(page, "parity", "pair", CUSTOM)
    sidebar = page.get_by_test_id("stSidebar")
    expect(sidebar.get_by_text("Left run", exact=True)).to_be_visible()
    expect(sidebar.get_by_text("Right run", exact=True)).to_be_visible()
    expect(sidebar.get_by_text(re.compile("PyTorch side|TensorFlow side"))).to_have_count(0)
    pick(page, "parity", "left", f"{UPLOADED}/torch (uploaded)")
    pick(page, "parity", "right", "zz-older/tensorflow")
    expect_query(page, f"?left={UPLOADED}/torch&right=zz-older/tensorflow")
    go(page, "Scalars")
    expect(combo(page, "scalars")).to_have_value(CUSTOM)
    expect(combo(page, "scalars", "left")).to_have_value(f"{UPLOADED}/torch (uploaded)")
    expect(combo(page, "scalars", "right")).to_have_value("zz-older/tensorflow")


def test_a_run_cards_scalars_link_opens_that_pair(page, nav_server):
    harness.open_page(page, nav_server, "Launch")
    card = page.locator(".st-key-launch_card_zz-older")
    expect(card.get_by_text(FINAL)).to_have_count(2)  # each side's final metrics
    card.get_by_role("link", name="Scalars").click()
    page.wait_for_url(re.compile(r"/scalars\?pair=zz-older$"))
    harness.wait_idle(page, UI_TIMEOUT_MS)
    expect(combo(page, "scalars")).to_have_value("zz-older")  # not the newest pair, the default
    expect(page.get_by_role("heading", name="Scalars")).to_be_visible()
    assert_no_error_boxes(page, "Scalars from a run card")


def _wait_listed(root: Path, run_id: str, timeout: float = 120) -> None:
    from twinboard import runs

    deadline = time.monotonic() + timeout
    while run_id not in [p.label for p in runs.list_pairs(root)]:
        failed = {fw: j.error for fw, j in runs.get_run(run_id, root).frameworks.items() if j.state == "failed"}
        assert not failed, failed
        assert time.monotonic() < deadline, f"{run_id} not listed as a pair after {timeout} s"
        time.sleep(0.2)
