"""The Upload page keeps its controls in step: a rename moves the picker, the mapping panel and the
export selection along and says so; an import empties the uploader; names from an upload are text.

Its own server and logdir: the hostile run names here must not show up on the other tests' pages.
Event files come from tensorboardX, in its own process (the test process stays framework-free).
"""
from __future__ import annotations

import io
import subprocess
import sys
import textwrap
import zipfile

import pytest
from playwright.sync_api import expect

from tests.browser import harness
from tests.browser.conftest import UI_TIMEOUT_MS, assert_no_error_boxes

# Folder names a visitor could put in an archive, each a Markdown or HTML construct if shown raw.
HOSTILE = ("[x](http:evil)", "![i](http:evil.png)", "<img src=x onerror=alert(1)>")
WRITER = textwrap.dedent("""
    import sys
    from tensorboardX import SummaryWriter
    root = sys.argv[1]
    for folder in sys.argv[2:]:
        with SummaryWriter(f"{root}/{folder}") as w:
            for epoch in range(4):
                w.add_scalar("epoch_loss", 1.0 / (epoch + 1), epoch)
""")


def zipped(tmp_path_factory, folders: tuple[str, ...]) -> bytes:
    root = tmp_path_factory.mktemp("written")
    subprocess.run([sys.executable, "-c", WRITER, str(root), *folders], check=True, timeout=120, cwd=harness.REPO)
    buf = io.BytesIO()
    with zipfile.ZipFile(buf, "w", zipfile.ZIP_DEFLATED) as zf:
        for path in sorted(root.rglob("*")):
            if path.is_file():
                zf.write(path, path.relative_to(root).as_posix())
    assert sum("tfevents" in n for n in zipfile.ZipFile(io.BytesIO(buf.getvalue())).namelist()) == len(folders)
    return buf.getvalue()


@pytest.fixture(scope="module")
def state_server(tmp_path_factory, _chromium_available):
    """Two uploads (alpha, beta: Keras-style train/ and validation/) imported as the CLI would."""
    from twinboard import uploads

    root = tmp_path_factory.mktemp("upload-state") / "logs"
    keras = zipped(tmp_path_factory, ("train", "validation"))
    for name in ("alpha", "beta"):
        uploads.import_upload([(f"{name}.zip", keras)], name, root)
    app = harness.AppServer(root, root.parent / "streamlit.log").start()
    yield app
    app.stop()
    harness.kill_spawned(root)
    assert not harness.leftover_processes(root)


def open_list(page, key: str):
    """Open a select box's or multiselect's list and return its options. A rerun still drawing the
    page can close a list just opened, so it is opened again until options show (3 tries)."""
    combo = page.locator(f".st-key-{key} input[role='combobox']")
    options = page.get_by_role("option")
    for _ in range(3):
        harness.wait_idle(page, UI_TIMEOUT_MS)
        combo.click()
        try:
            expect(options.first).to_be_visible(timeout=10_000)
            break
        except AssertionError:
            page.keyboard.press("Escape")
    return options


def pick(page, key: str, option: str) -> None:
    harness.choose_option(page, page.locator(f".st-key-{key} input[role='combobox']"), option, timeout=UI_TIMEOUT_MS)


def test_a_rename_moves_every_control_along(page, state_server):
    harness.open_page(page, state_server, "Upload")
    picker = page.locator(".st-key-upload_selected input[role='combobox']")
    expect(picker).to_have_value("alpha")
    pick(page, "upload_selected", "beta")
    expect(page.get_by_text("Tag mapping and x axis for beta")).to_be_visible()
    pick(page, "export_runs", "uploads/beta/train (uploaded)")
    chips = page.locator(".st-key-export_runs [data-tag]")  # the chosen runs' chips
    expect(chips).to_have_text(["uploads/beta/train (uploaded)"])

    page.locator(".st-key-upload_new_name input").fill("gamma")
    page.locator(".st-key-upload_new_name input").press("Enter")
    harness.wait_idle(page, UI_TIMEOUT_MS)
    page.locator(".st-key-upload_rename button").click()

    done = page.locator("[data-testid='stAlertContentSuccess']").filter(has_text="Renamed beta to gamma.")
    expect(done).to_be_visible(timeout=UI_TIMEOUT_MS)
    harness.wait_idle(page, UI_TIMEOUT_MS)
    expect(picker).to_have_value("gamma")  # the picker shows the renamed upload, not another one
    expect(page.get_by_text("Tag mapping and x axis for gamma")).to_be_visible()
    expect(page.get_by_text("Tag mapping and x axis for beta")).to_have_count(0)
    expect(chips).to_have_text(["uploads/gamma/train (uploaded)"])  # the export selection followed
    expect(page.get_by_text("points; columns run, tag, step")).to_contain_text("4 points")
    expect(page.locator(".st-key-upload_new_name input")).to_have_value("")
    assert_no_error_boxes(page, "Upload page after the rename")
    assert sorted(p.name for p in (state_server.logdir / "uploads").iterdir()) == ["alpha", "gamma"]

    expect(open_list(page, "upload_selected")).to_have_text(["alpha", "gamma"])  # what is on disk
    page.keyboard.press("Escape")


def test_an_import_empties_the_uploader_and_shows_names_as_text(page, state_server, tmp_path_factory):
    harness.open_page(page, state_server, "Upload")
    expect(page.get_by_text("Up to 1 GiB uncompressed per upload")).to_be_visible()
    dropzone = page.locator("[data-testid='stFileUploaderDropzoneInstructions']")
    expect(dropzone).not_to_contain_text("200MB")
    expect(dropzone).to_contain_text("1GB")

    data = zipped(tmp_path_factory, HOSTILE)
    uploader = page.locator("[class*='st-key-upload_files_']")
    uploader.locator("input[type=file]").set_input_files(
        files=[{"name": "hostile.zip", "mimeType": "application/zip", "buffer": data}])
    expect(uploader).to_contain_text("hostile.zip")
    page.get_by_role("button", name="Import").click()

    done = page.locator("[data-testid='stAlertContentSuccess']").filter(has_text="Imported hostile")
    expect(done).to_be_visible(timeout=UI_TIMEOUT_MS)
    for name in HOSTILE:  # shown as the characters themselves ...
        expect(done).to_contain_text(name)
    assert done.locator("a, img").count() == 0  # ... and nothing became a link or an image
    harness.wait_idle(page, UI_TIMEOUT_MS)
    expect(page.locator("[class*='st-key-upload_files_']")).not_to_contain_text("hostile.zip")  # emptied
    expect(page.locator("[data-testid='stFileUploaderFile']")).to_have_count(0)
    expect(page.get_by_role("button", name="Import")).to_be_disabled()
    expect(page.locator(".st-key-upload_selected input[role='combobox']")).to_have_value("hostile")
    assert_no_error_boxes(page, "Upload page after the import")
