"""AppTest for the Upload page: import through st.file_uploader (AppTest supports it in this
Streamlit), a refusal that lists every bad file and changed nothing, rename and delete (with
confirmation) moving every control along, names from uploads shown as text, the mapping editor,
and the export buttons."""
from __future__ import annotations

import io
import zipfile
from pathlib import Path

import pytest
from streamlit.testing.v1 import AppTest

from tests.upload_archives import EV, event_bytes, snapshot, zip_link
from twinboard import tagmap
from twinboard.text import md

ROOT = Path(__file__).resolve().parents[1]
TIMEOUT = 30


def page() -> AppTest:
    return AppTest.from_file(str(ROOT / "pages" / "upload.py"), default_timeout=TIMEOUT)


def keras_zip(*folders: str) -> bytes:
    buf = io.BytesIO()
    with zipfile.ZipFile(buf, "w") as z:
        for folder in folders or ("train", "validation"):
            z.writestr(f"{folder}/{EV}", event_bytes(3, "epoch_loss"))
    return buf.getvalue()


def texts(at: AppTest, kind: str) -> str:
    return "\n".join(str(e.value) for e in at.get(kind))


def uploader(at: AppTest):
    """The uploader now on the page (its key changes after each import, which empties it)."""
    found = [u for u in at.get("file_uploader") if u.key and u.key.startswith("upload_files_")]
    assert len(found) == 1, [u.key for u in at.get("file_uploader")]
    return found[0]


@pytest.fixture
def logdir(tmp_path, monkeypatch) -> Path:
    monkeypatch.setenv("TWINBOARD_LOGDIR", str(tmp_path))
    return tmp_path


def upload(at: AppTest, files: list[tuple[str, bytes]], name: str = "") -> AppTest:
    uploader(at).set_value([(n, d, "application/octet-stream") for n, d in files])
    at.run()
    at.text_input(key="upload_name").set_value(name)
    at.button(key="upload_import").click()
    return at.run()


def test_empty_logdir_renders(logdir):
    at = page().run()
    assert not at.exception
    assert at.title[0].value == "Upload"
    assert uploader(at).accept_multiple_files
    assert at.button(key="upload_import").disabled  # nothing chosen yet
    assert "No uploads yet." in texts(at, "info")


def test_the_page_states_the_importers_caps(logdir, monkeypatch):
    """The page's own text and the uploader's per-file limit come from the importer's caps."""
    at = page().run()
    assert "Up to 1 GiB uncompressed per upload" in texts(at, "caption")
    assert "200MB" not in texts(at, "caption") + texts(at, "markdown")
    monkeypatch.setenv("TWINBOARD_UPLOAD_MAX_BYTES", str(50 << 20))
    at = page().run()
    assert "Up to 50 MiB uncompressed per upload" in texts(at, "caption")
    assert uploader(at).proto.max_upload_size_mb == 50
    monkeypatch.setenv("TWINBOARD_UPLOAD_MAX_BYTES", "lots")
    at = page().run()
    assert not at.exception and "TWINBOARD\\_UPLOAD\\_MAX\\_BYTES" in texts(at, "error")


def test_import_empties_the_uploader_and_selects_the_upload(logdir):
    at = upload(page().run(), [("keras-run.zip", keras_zip())], name="first")
    assert not at.exception and not at.error, texts(at, "error")
    assert "Imported **first**" in texts(at, "success")
    assert (logdir / "uploads" / "first" / "train" / EV).is_file()
    assert uploader(at).value == [] and at.button(key="upload_import").disabled  # the uploader is empty
    assert at.text_input(key="upload_name").value == ""
    assert at.selectbox(key="upload_selected").value == "first"
    at = upload(at, [("keras-run.zip", keras_zip())], name="second")  # the new uploader takes files
    assert "Imported **second**" in texts(at, "success")
    assert at.selectbox(key="upload_selected").value == "second"
    at.run()  # the notice was for the run after the import, not for ever
    assert "Imported" not in texts(at, "success")


def test_rename_moves_every_control_along(logdir):
    at = upload(page().run(), [("a.zip", keras_zip())], name="alpha")
    at = upload(at, [("b.zip", keras_zip())], name="beta")
    at.selectbox(key="upload_selected").set_value("alpha")
    at.run()
    at.multiselect(key="export_runs").set_value(["uploads/alpha/train", "uploads/beta/train"])
    at.run()
    at.text_input(key="upload_new_name").set_value("gamma")
    at.run()
    at.button(key="upload_rename").click()
    at.run()
    assert not at.exception and not at.error, texts(at, "error")
    assert sorted(p.name for p in (logdir / "uploads").iterdir()) == ["beta", "gamma"]
    assert "Renamed **alpha** to **gamma**." in texts(at, "success")
    assert at.selectbox(key="upload_selected").value == "gamma"  # not the first in the list
    assert at.text_input(key="upload_new_name").value == ""
    assert [e.label for e in at.expander] == ["Tag mapping and x axis for **gamma**"]
    assert at.number_input(key="upload_map_gamma_spe") is not None  # the panel is gamma's
    assert at.multiselect(key="export_runs").value == ["uploads/gamma/train", "uploads/beta/train"]
    at.number_input(key="upload_map_gamma_bs").set_value(4)
    at.button(key="upload_map_gamma_save").click()
    at.run()
    assert tagmap.load(logdir / "uploads" / "gamma").batch_size == 4  # saved into the renamed folder


def test_a_refused_rename_says_why_and_moves_nothing(logdir):
    at = upload(page().run(), [("a.zip", keras_zip())], name="alpha")
    at = upload(at, [("b.zip", keras_zip())], name="beta")
    at.text_input(key="upload_new_name").set_value("alpha")  # beta is selected; alpha is taken
    at.run()
    at.button(key="upload_rename").click()
    at.run()
    assert "Not renamed" in texts(at, "error") and "already exists" in texts(at, "error")
    assert at.selectbox(key="upload_selected").value == "beta"
    assert sorted(p.name for p in (logdir / "uploads").iterdir()) == ["alpha", "beta"]


def test_delete_asks_first_then_moves_every_control_along(logdir):
    at = upload(page().run(), [("a.zip", keras_zip())], name="alpha")
    at = upload(at, [("b.zip", keras_zip())], name="beta")
    at.selectbox(key="upload_selected").set_value("alpha")
    at.run()
    at.multiselect(key="export_runs").set_value(["uploads/alpha/train", "uploads/beta/validation"])
    at.run()
    at.button(key="upload_delete").click()
    at.run()
    assert "Delete **alpha**" in texts(at, "warning")
    assert (logdir / "uploads" / "alpha").is_dir()  # asked, not done
    at.button(key="upload_delete_no").click()
    at.run()
    assert (logdir / "uploads" / "alpha").is_dir() and "Delete **alpha**" not in texts(at, "warning")
    at.button(key="upload_delete").click()
    at.run()
    at.button(key="upload_delete_yes").click()
    at.run()
    assert not at.exception and not at.error, texts(at, "error")
    assert not (logdir / "uploads" / "alpha").exists()
    assert "Deleted **alpha**." in texts(at, "success")
    assert at.selectbox(key="upload_selected").value == "beta"
    assert [e.label for e in at.expander] == ["Tag mapping and x axis for **beta**"]
    assert at.multiselect(key="export_runs").value == ["uploads/beta/validation"]
    at.button(key="upload_delete").click()
    at.run()
    at.button(key="upload_delete_yes").click()
    at.run()
    assert not at.exception and "No uploads yet." in texts(at, "info")


def test_refused_upload_lists_every_bad_file_and_changes_nothing(logdir):
    at = upload(page().run(), [("keras-run.zip", keras_zip())])
    before = snapshot(logdir)
    bad = [("good.zip", keras_zip()), ("evil.zip", zip_link("run/link", b"/etc/passwd")),
           ("notes.txt", b"hello"), (EV, b"not an event file at all"), ("also-good.zip", keras_zip("x"))]
    at = upload(at, bad, name="evil")
    error = texts(at, "error")
    assert "Upload refused, nothing was changed. 3 problem(s)" in error
    assert md("evil.zip:run/link") in error and "symbolic link" in error
    assert md("notes.txt") in error and "not an event file" in error
    assert md(EV) in error and "not a valid event file" in error
    assert "good.zip" not in error.replace("also-good", "")
    assert uploader(at).value  # refused: the files stay, to be fixed and tried again
    at = upload(at, [("again.zip", keras_zip())], name="keras-run")
    assert "1 problem(s)" in texts(at, "error") and "already exists" in texts(at, "error")
    assert snapshot(logdir) == before


def test_names_from_an_upload_are_shown_as_text(logdir):
    hostile = ["[x](http:evil)", "![i](http:evil.png)", "<img src=x onerror=alert(1)>"]
    at = upload(page().run(), [("h.zip", keras_zip(*hostile))], name="h")
    assert not at.exception and not at.error, texts(at, "error")
    success = texts(at, "success")
    for name in sorted(hostile):
        assert md(name) in success
    assert "](" not in success.replace("\\](", "") and "<img" not in success.replace("\\<img", "")


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
