"""A user uploads a colleague's zip of event files and finds its runs listed, and on Scalars as a pair."""
from __future__ import annotations

import io
import subprocess
import sys
import textwrap
import zipfile

import pytest
from playwright.sync_api import expect

from tests.browser import harness
from tests.browser.conftest import UI_TIMEOUT_MS, assert_no_error_boxes, choose_pair

UPLOAD = "colleague"
STEPS = 25  # points per series in the upload

# tensorboardX, in its own process (the test process stays framework-free like the app): a torch/ and a
# tensorflow/ folder, the layout a colleague's matched run has, so the upload pairs up by itself.
WRITER = textwrap.dedent("""
    import sys
    from tensorboardX import SummaryWriter
    root, steps = sys.argv[1], int(sys.argv[2])
    for fw, scale in (("torch", 1.0), ("tensorflow", 1.1)):
        with SummaryWriter(f"{root}/{fw}") as w:
            for step in range(1, steps + 1):
                w.add_scalar("loss/train", scale * 2.0 / step, step)
                w.add_scalar("accuracy/train", 1 - 1.0 / (step + 1), step)
""")


@pytest.fixture(scope="module")
def upload_zip(tmp_path_factory) -> bytes:
    folder = tmp_path_factory.mktemp("upload") / "events"
    subprocess.run([sys.executable, "-c", WRITER, str(folder), str(STEPS)], check=True, timeout=120,
                   cwd=harness.REPO)
    buf = io.BytesIO()
    with zipfile.ZipFile(buf, "w", zipfile.ZIP_DEFLATED) as zf:
        for path in sorted(folder.rglob("*")):
            if path.is_file():
                zf.write(path, path.relative_to(folder))  # torch/..., tensorflow/... at the top
    assert sum("tfevents" in n for n in zipfile.ZipFile(io.BytesIO(buf.getvalue())).namelist()) == 2
    return buf.getvalue()


def test_an_uploaded_zip_is_imported_listed_and_charted(page, server, logdir, upload_zip):
    harness.open_page(page, server, "Upload")
    assert_no_error_boxes(page, "Upload page")
    uploader = page.locator("[class*='st-key-upload_files_']")  # the key changes after each import
    uploader.locator("input[type=file]").set_input_files(
        files=[{"name": f"{UPLOAD}.zip", "mimeType": "application/zip", "buffer": upload_zip}])
    expect(uploader).to_contain_text(f"{UPLOAD}.zip")
    import_button = page.get_by_role("button", name="Import")
    expect(import_button).to_be_enabled()
    import_button.click()

    done = page.locator("[data-testid='stAlertContentSuccess']").filter(has_text=f"Imported {UPLOAD}")
    expect(done).to_be_visible(timeout=UI_TIMEOUT_MS)
    expect(done).to_contain_text("2 runs (tensorflow, torch)")
    assert_no_error_boxes(page, "Upload page after the import")
    # Listed: the uploads table's select box offers it, and its files are in the logdir.
    expect(page.locator(".st-key-upload_selected input[role='combobox']")).to_have_value(UPLOAD)
    for fw in ("torch", "tensorflow"):
        assert any("tfevents" in p.name for p in (logdir / "uploads" / UPLOAD / fw).iterdir()), fw

    # The upload is a matched pair of its own on Scalars; its curves hold every point it brought.
    harness.open_page(page, server, "Scalars")
    choose_pair(page, "scalars", f"uploads/{UPLOAD} (uploaded)")  # the picker marks uploads (Pair.shown)
    page.locator(".st-key-scalars_filter input").fill("^loss/train$")
    page.locator(".st-key-scalars_filter input").press("Enter")
    page.wait_for_function("""(steps) => {
        const charts = PLOTS;
        if (charts.length !== 1) return false;
        const full = charts[0]._fullData || [];
        return ['PyTorch', 'TensorFlow'].every(side =>
            full.some(t => (t.name || '').startsWith(side) && t._length === steps));
    }""".replace("PLOTS", harness.PLOTS_JS), arg=STEPS, timeout=UI_TIMEOUT_MS)
    assert_no_error_boxes(page, "Scalars page on the upload")
