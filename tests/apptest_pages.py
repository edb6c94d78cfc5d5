"""AppTest helpers the Launch, Scalars and pair-choice page tests share: one place for how a page or the
whole app is opened (with a timeout a busy 2-core machine needs) and how its output is read back.
"""
from __future__ import annotations

import time
from pathlib import Path

from streamlit.testing.v1 import AppTest

ROOT = Path(__file__).resolve().parents[1]
TIMEOUT = 60  # s per AppTest run: a launch waits for both supervisors to register on a busy 2-core box


def page(name: str) -> AppTest:
    return AppTest.from_file(str(ROOT / "pages" / f"{name}.py"), default_timeout=TIMEOUT)


def texts(at: AppTest, kind: str) -> list[str]:
    return [str(e.value) for e in at.get(kind)]


def markdown(at: AppTest) -> str:
    return "\n".join(texts(at, "markdown"))


def wait_for(predicate, timeout=30.0):
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        if predicate():
            return
        time.sleep(0.1)
    raise AssertionError("timed out")


def app() -> AppTest:
    """The whole app (app.py's navigation): what page links and switching pages need."""
    return AppTest.from_file(str(ROOT / "app.py"), default_timeout=TIMEOUT)
