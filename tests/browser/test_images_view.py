"""The Images page on the finished real pair (its 300 steps evaluate every 2): both sides' pictures
drawn as images, and the disagreement view's chart and the count said in words."""
from __future__ import annotations

import re

from playwright.sync_api import expect

from tests.browser import harness
from tests.browser.conftest import UI_TIMEOUT_MS, assert_no_error_boxes, choose_pair

# Images the browser has decoded (naturalWidth > 0): drawn, not a broken link.
IMAGES_JS = """(n) => [...document.querySelectorAll('[data-testid="stImage"] img')]
    .filter(img => img.complete && img.naturalWidth > 0).length >= n"""


def test_images_page_shows_both_sides_and_where_they_disagree(page, server, finished_run):
    harness.open_page(page, server, "Images")
    choose_pair(page, "img", finished_run)
    page.wait_for_function(IMAGES_JS, arg=6, timeout=UI_TIMEOUT_MS)  # 3 tags of the MLP, each side
    for side in ("PyTorch", "TensorFlow"):  # the inputs are drawn once, at the first evaluation
        expect(page.get_by_text(f"{side} · step 300")).to_have_count(2)
        expect(page.get_by_text(f"{side} · step 2 (nearest logged)")).to_have_count(1)
    assert_no_error_boxes(page, "Images page, pictures")

    page.get_by_text("Where they disagree").click()
    expect(page.get_by_text(re.compile(r"^At step 300, PyTorch and TensorFlow predict"))).to_be_visible()
    drawn = f"() => {harness.PLOTS_JS}.some(el => (el._fullData || []).some(t => (t._length || 0) >= 100))"
    page.wait_for_function(drawn, timeout=UI_TIMEOUT_MS)  # the agreement over 150 evaluations, drawn
    assert_no_error_boxes(page, "Images page, where they disagree")
