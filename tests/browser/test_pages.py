"""Every page opens without an exception box or an st.error box: on an empty logdir (a first visit) and
on one holding a finished real pair."""
from __future__ import annotations

import pytest
from playwright.sync_api import expect

from tests.browser import harness
from tests.browser.conftest import assert_no_error_boxes

HEADINGS = {"Launch": "Launch a matched run"}  # st.title of each page, where it is not the page's name


@pytest.fixture(scope="module")
def empty_server(tmp_path_factory, _chromium_available):
    root = tmp_path_factory.mktemp("empty") / "logs"
    app = harness.AppServer(root, root.parent / "streamlit.log").start()
    yield app
    app.stop()
    harness.kill_spawned(root)
    assert not harness.leftover_processes(root)


def _check(page, server, title: str, where: str) -> None:
    harness.open_page(page, server, title)
    expect(page.get_by_role("heading", name=HEADINGS.get(title, title), exact=True)).to_be_visible()
    assert_no_error_boxes(page, f"{title} page, {where}")


@pytest.mark.parametrize("title", list(harness.PAGES))
def test_page_on_an_empty_logdir(page, empty_server, title):
    _check(page, empty_server, title, "empty logdir")


@pytest.mark.parametrize("title", list(harness.PAGES))
def test_page_with_a_finished_pair(page, server, finished_run, title):
    _check(page, server, title, f"logdir holding {finished_run}")
