"""A matched CNN pair on the Parity page, in Chromium: torch writes its convolutions NCHW and Keras
NHWC, so `layers.conv1.output_shape` reads [N, 16, 8, 8] on one side and [N, 8, 8, 16] on the other.
That is one model in two layouts: the page must call the pair matched and within tolerance, not "not
the same run". The pair is real (the launcher and both trainers), small (150 steps, ~30 s)."""
from __future__ import annotations

import tempfile
from pathlib import Path

from playwright.sync_api import expect

from tests.browser import harness
from tests.browser.conftest import RUN_TIMEOUT_S, UI_TIMEOUT_MS, assert_no_error_boxes, choose_pair

RUN_NAME = "cnn-pair"
# 150 steps, every one logged: long enough for float32 rounding to show (the two sides' losses first
# differ around step 50, by ~1e-7), short of where float32 training drifts apart (~180 steps).
SPEC = {"model": "cnn", "steps": 150, "log_every": 1, "histogram_every": 150, "embedding_samples": 16}
SHOT = Path(tempfile.gettempdir()) / "twinboard-parity-cnn.png"


def _cnn_pair(logdir: Path, runs_started: dict) -> str:
    from twinboard import runs
    from twinboard.contract import RunSpec

    out = runs.launch(RunSpec(**SPEC), logdir=logdir, name=RUN_NAME)
    assert isinstance(out, runs.Launched), out
    runs_started[RUN_NAME] = out.run_id
    outcomes = runs.wait(out.run_id, timeout=RUN_TIMEOUT_S, logdir=logdir)
    assert all(isinstance(o, runs.Finished) for o in outcomes.values()), (
        outcomes, {fw: (logdir / out.run_id / f"{fw}.stderr").read_text()[-2000:] for fw in runs.FRAMEWORKS
                   if (logdir / out.run_id / f"{fw}.stderr").exists()})
    return out.run_id


def test_matched_cnn_pair_is_built_the_same_and_within_tolerance(page, server, logdir, runs_started):
    run_id = _cnn_pair(logdir, runs_started)
    harness.open_page(page, server, "Parity")
    choose_pair(page, "parity", run_id)
    harness.wait_idle(page, UI_TIMEOUT_MS)
    verdict = page.locator("[data-testid='stAlertContentSuccess']").filter(has_text="Matched, within tolerance.")
    expect(verdict).to_be_visible(timeout=UI_TIMEOUT_MS)
    text = verdict.inner_text()
    assert "The two models are built the same" in text, text
    assert "NCHW against NHWC" in text and "No setting that changes the numbers differs" in text, text
    assert "agree within tolerance at all 150 compared steps" in text, text
    assert "rtol 1e-05, atol 1e-05" in text, text  # float32's defaults, as the sliders show them
    sidebar = page.locator("[data-testid='stSidebar']")
    expect(sidebar.get_by_text("Relative tolerance (rtol)")).to_be_visible()
    expect(sidebar.get_by_text("Absolute tolerance (atol)")).to_be_visible()
    first = page.locator("[data-testid='stMetric']").filter(has_text="Curves part at step")
    expect(first.locator("[data-testid='stMetricValue']")).to_have_text("none")
    body = page.locator("[data-testid='stMain']").inner_text()
    assert "not the same run" not in body and "not built the same" not in body
    assert "In layout only" in body and "layers.conv1.output_shape" in body
    drawn = f"() => {harness.PLOTS_JS}.filter(el => (el._fullData || []).some(t => (t._length || 0) > 1)).length >= 2"
    page.wait_for_function(drawn, timeout=UI_TIMEOUT_MS)  # the two curves and their difference
    assert_no_error_boxes(page, "Parity page, CNN pair")
    page.screenshot(path=str(SHOT), full_page=True)
    print(f"screenshot: {SHOT}")
