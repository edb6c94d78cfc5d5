"""AppTest for the Upload page: import through st.file_uploader (AppTest supports it in this
Streamlit), a refusal shown as an error that changed nothing, rename, delete with confirmation,
the mapping editor, and the export buttons."""
from __future__ import annotations

import io
import zipfile
from pathlib import Path

import pytest
from streamlit.testing.v1 import AppTest

from tests.test_uploads import EV, event_bytes, snapshot, zip_link
from twinboard import tagmap

ROOT = Path(__file__).resolve().parents[1]
TIMEOUT = 30


def page() -> AppTest:
    return AppTest.from_file(str(ROOT / "pages" / "upload.py"), default_timeout=TIMEOUT)


def keras_zip() -> bytes:
    buf = io.BytesIO()
    with zipfile.ZipFile(buf, "w") as z:
        z.writestr(f"train/{EV}", event_bytes(3, "epoch_loss"))
        z.writestr(f"validation/{EV}", event_bytes(3, "epoch_loss"))
    return buf.getvalue()


def texts(at: AppTest, kind: str) -> str:
    return "\n".join(str(e.value) for e in at.get(kind))


@pytest.fixture
def logdir(tmp_path, monkeypatch) -> Path:
    monkeypatch.setenv("TWINBOARD_LOGDIR", str(tmp_path))
    return tmp_path


def upload(at: AppTest, files: list[tuple[str, bytes]], name: str = "") -> AppTest:
    at.file_uploader(key="upload_files").set_value([(n, d, "application/octet-stream") for n, d in files])
    at.run()
    at.text_input(key="upload_name").set_value(name)
    at.button(key="upload_import").click()
    return at.run()


def test_empty_logdir_renders(logdir):
    at = page().run()
    assert not at.exception
    assert at.title[0].value == "Upload"
    uploader = at.file_uploader(key="upload_files")
    assert uploader.accept_multiple_files
    assert at.button(key="upload_import").disabled  # nothing chosen yet
    assert "No uploads yet." in texts(at, "info")


def test_upload_through_the_page_then_rename_delete(logdir):
    at = upload(page().run(), [("keras-run.zip", keras_zip())])
    assert not at.exception and not at.error, texts(at, "error")
    assert "Imported **keras-run**" in texts(at, "success")
    assert (logdir / "uploads" / "keras-run" / "train" / EV).is_file()
    assert at.selectbox(key="upload_selected").value == "keras-run"

    at.text_input(key="upload_new_name").set_value("bob")
    at.run()
    at.button(key="upload_rename").click()
    at.run()
    assert not at.exception
    assert [p.name for p in (logdir / "uploads").iterdir()] == ["bob"]
    assert at.selectbox(key="upload_selected").value == "bob"

    at.button(key="upload_delete").click()
    at.run()
    assert "Delete **bob**" in texts(at, "warning")
    at.button(key="upload_delete_no").click()  # cancel: nothing removed
    at.run()
    assert (logdir / "uploads" / "bob").is_dir()
    at.button(key="upload_delete").click()
    at.run()
    at.button(key="upload_delete_yes").click()
    at.run()
    assert not at.exception
    assert not (logdir / "uploads" / "bob").exists()
    assert "No uploads yet." in texts(at, "info")


def test_refused_upload_shows_the_entry_and_changes_nothing(logdir):
    at = upload(page().run(), [("keras-run.zip", keras_zip())])
    before = snapshot(logdir)
    at = upload(at, [("evil.zip", zip_link("run/link", b"/etc/passwd"))], name="evil")
    assert "run/link" in texts(at, "error") and "symbolic link" in texts(at, "error")
    at = upload(at, [("again.zip", keras_zip())], name="keras-run")
    assert "already exists" in texts(at, "error")
    assert snapshot(logdir) == before


def test_mapping_editor_saves_factors_and_previews(logdir):
    at = upload(page().run(), [("k.zip", keras_zip())])
    assert not at.exception
    preview = next(d.value for d in at.dataframe if "our tag" in d.value.columns)
    assert set(zip(preview["logged tag"], preview["our tag"])) == {("epoch_loss", "loss/train"),
                                                                   ("epoch_loss", "loss/val")}
    at.number_input(key="upload_map_k_spe").set_value(5.0)
    at.number_input(key="upload_map_k_bs").set_value(8)
    at.selectbox(key="upload_map_k_x").set_value("samples")
    at.button(key="upload_map_k_save").click()
    at.run()
    assert not at.exception and not at.error
    saved = tagmap.load(logdir / "uploads" / "k")
    assert (saved.steps_per_epoch, saved.batch_size, saved.x_axis) == (5.0, 8, "samples")
    assert saved.rules == tagmap.default_mapping(["train", "validation"]).rules


def test_export_offers_csv_and_parquet(logdir):
    at = upload(page().run(), [("k.zip", keras_zip())])
    at.multiselect(key="export_runs").set_value(["uploads/k/train", "uploads/k/validation"])
    at.run()
    assert not at.exception
    assert at.multiselect(key="export_tags").options == ["epoch_loss"]
    assert "6 points" in texts(at, "caption")
    labels = {b.label: b.disabled for b in at.get("download_button")}
    assert labels == {"Download CSV": False, "Download Parquet": False}
    at.checkbox(key="export_mapped").check()
    at.multiselect(key="export_runs").set_value(["uploads/k/train"])
    at.run()
    assert set(at.multiselect(key="export_tags").options) == {"loss/train", "loss/val"}
    at.multiselect(key="export_tags").set_value(["loss/val"])
    at.run()
    assert not at.exception and "3 points" in texts(at, "caption")
