"""Bring your own data (task=file): every kind of bad .npz and .csv refused with a message naming the
array or column and nothing written; size caps, the quota and names in use; good files summarised
and read back exactly; the launcher's check naming the field."""
from __future__ import annotations

import io
import re
import struct
import zipfile

import numpy as np
import pytest

from tests.datafile_payloads import GOOD, X, Y, csv_bytes, folder, npz, with_
from twinboard import datafiles
from twinboard.contract import RunSpec, SpecError
from twinboard.contract.datafile import DataFileError, read_data, read_path


def many_entries() -> bytes:
    """A zip whose directory lists 1,200 entries: refused before zipfile parses it."""
    buf = io.BytesIO()
    with zipfile.ZipFile(buf, "w") as z:
        for i in range(1200):
            z.writestr(f"entry-{i:05d}-padding.npy", b"")
    return buf.getvalue()


def damaged_crc() -> bytes:
    """A stored .npz with one byte of x_train's data flipped: only the zip's CRC can tell."""
    payload = bytearray(npz(**GOOD))
    info = zipfile.ZipFile(io.BytesIO(bytes(payload))).getinfo("x_train.npy")
    n, extra = struct.unpack_from("<HH", payload, info.header_offset + 26)
    payload[info.header_offset + 30 + n + extra + info.file_size - 1] ^= 1
    return bytes(payload)


X3, XS = GOOD["x_train"].reshape(64, 5, 1), np.array(["a"] * 320).reshape(64, 5)
BAD = {  # case: (name, payload, the array or column the message names, words of its reason)
    "nan": ("d.npz", lambda: with_(x_train=np.where(np.arange(320).reshape(64, 5) == 16, np.nan, X[:64])),
            "x_train", "x_train[3, 1] = nan"),
    "inf target": ("d.npz", lambda: with_(y_train=X[:64, 0], y_val=np.full(16, np.inf)), "y_val", "infinity"),
    "object array": ("d.npz", lambda: with_(y_val=np.array([None] * 16, dtype=object)), "y_val", "Python objects"),
    "missing array": ("d.npz", lambda: with_(x_val=None), "x_val", "missing"),
    "extra array": ("d.npz", lambda: with_(names=np.zeros(3)), "names.npy", "unexpected"),
    "row counts": ("d.npz", lambda: with_(y_train=Y[:63]), "y_train", "63 rows but x_train has 64"),
    "negative label": ("d.npz", lambda: with_(y_val=Y[64:] - 1), "y_val", "labels run from 0"),
    "too many classes": ("d.npz", lambda: with_(y_train=Y[:64] * 5000), "y_train", "at most 1000 classes"),
    "one class": ("d.npz", lambda: with_(y_train=Y[:64] * 0, y_val=Y[64:] * 0), "y_train", "2 classes"),
    "label kinds": ("d.npz", lambda: with_(y_train=Y[:64].astype(float)), "y_val", "the same in both"),
    "features": ("d.npz", lambda: with_(x_val=X[64:, :4]), "x_val", "4 features but x_train has 5"),
    "3-D x": ("d.npz", lambda: with_(x_train=X3), "x_train", "2 dimensions"),
    "strings": ("d.npz", lambda: with_(x_train=XS), "x_train", "only plain numbers"),
    "float32 range": ("d.npz", lambda: with_(x_val=X[64:] * 1e300), "x_val", "float32"),
    # Caps: refused from the .npy header; the arrays' data (1 MB, 32 MB of zeros) is never read.
    "row cap": ("d.npz", lambda: npz(True, **{**GOOD, "x_train": np.zeros((1_000_001, 1), bool),
                                            "y_train": np.zeros(1_000_001, np.int8)}), "x_train", "1,000,001 rows"),
    "value cap": ("d.npz", lambda: npz(True, **{**GOOD, "x_train": np.zeros((4_000, 8_001), bool),
                                              "y_train": np.zeros(4_000, np.int8),
                                              "x_val": np.zeros((16, 8_001))}), "x_train", "more than 32,000,000"),
    "zip directory": ("d.npz", many_entries, "", "its zip directory takes"),
    "cut short": ("d.npz", lambda: npz(**GOOD)[:3000], "", "no zip directory"),
    "damaged": ("d.npz", damaged_crc, "x_train", "CRC"),
    "not a zip": ("d.npz", lambda: b"x_train,y_train\n1,2\n", "", "not a .npz"),
    "text cell": ("d.csv", lambda: b"a,b\n1,2\n3,x\n", "column 'b'", "data row 2 holds 'x'"),
    "empty cell": ("d.csv", lambda: b"a,b\n1,2\n3,\n", "column 'b'", "data row 2 is empty"),
    "ragged row": ("d.csv", lambda: b"a,b,c\n1,2,3\n4,5\n", "data row 2", "2 values; the header names 3"),
    "nan cell": ("d.csv", lambda: b"a,b\n1,2\nnan,4\n", "column 'a'", "data row 2 holds nan"),
    "same column twice": ("d.csv", lambda: b"a,b,a\n1,2,3\n", "column 'a'", "named twice"),
    "nameless column": ("d.csv", lambda: b"a,,b\n1,2,3\n", "column 2", "printable characters"),
    "no rows": ("d.csv", lambda: b"a,b\n", "", "no data rows"),
    "not UTF-8": ("d.csv", lambda: b"a,b\n\xff,1\n", "", "not UTF-8"),
    "one column": ("d.csv", lambda: b"y\n1\n2\n", "header", "needs 2 to"),
    "path in the name": ("../d.npz", lambda: npz(**GOOD), "", "not a data file name"),
    "hidden name": (".d.npz", lambda: npz(**GOOD), "", "not a data file name"),
    "other suffix": ("d.txt", lambda: b"a,b\n1,2\n", "", "not a data file name"),
}


@pytest.mark.parametrize("case", list(BAD))
def test_each_kind_of_bad_file_is_refused_naming_the_array_and_nothing_is_written(case, data_logdir):
    name, make, where, words = BAD[case]
    payload = make()
    before = folder(data_logdir)
    with pytest.raises(DataFileError) as err:
        datafiles.save_data_file(data_logdir, name, payload)
    assert err.value.where == where and words in err.value.reason, str(err.value)
    assert str(err.value).startswith(f"{name[:200]}: {where + ': ' if where else ''}")
    assert folder(data_logdir) == before and datafiles.list_data_files(data_logdir) == []
    if not case.endswith("name"):  # the trainers' reader says the same
        with pytest.raises(DataFileError, match="^" + re.escape(str(err.value)) + "$"):
            read_data(payload, name)


def test_size_caps_the_quota_and_names_in_use_are_refused_and_change_nothing(data_logdir, monkeypatch):
    good = npz(**GOOD)
    datafiles.save_data_file(data_logdir, "kept.npz", good)
    before = folder(data_logdir)
    with pytest.raises(DataFileError, match="exists"):
        datafiles.save_data_file(data_logdir, "kept.npz", npz(**{**GOOD, "x_val": X[64:] + 1}))
    monkeypatch.setenv("TWINBOARD_DATA_QUOTA_BYTES", str(len(good) + 100))
    with pytest.raises(DataFileError, match="quota"):
        datafiles.save_data_file(data_logdir, "second.npz", good)
    monkeypatch.setenv("TWINBOARD_DATA_MAX_BYTES", "1000")
    with pytest.raises(DataFileError, match=r"more than a data file may have here \(1,000\)"):
        datafiles.save_data_file(data_logdir, "big.csv", csv_bytes())
    monkeypatch.setenv("TWINBOARD_DATA_MAX_BYTES", "lots")
    with pytest.raises(DataFileError, match="TWINBOARD_DATA_MAX_BYTES"):
        datafiles.save_data_file(data_logdir, "other.npz", good)
    assert folder(data_logdir) == before  # the first file as it was, no temporary file left


def test_good_files_read_back_exactly_with_their_summaries(data_logdir):
    saved = datafiles.save_data_file(data_logdir, "digits-like.npz", npz(True, **GOOD))
    assert (saved.kind, saved.train_rows, saved.val_rows, saved.features, saved.classes) == ("npz", 64, 16, 5, 3)
    back = read_path(data_logdir / "data" / "digits-like.npz")
    assert back.summary == saved and all(np.array_equal(back.arrays[k], v) for k, v in GOOD.items())
    regression = read_data(npz(**{**GOOD, "y_train": X[:64, :1], "y_val": X[64:, :1]}), "r.npz")
    assert regression.summary.classes == 0 and regression.arrays["y_val"].shape == (16,)
    assert "regression" in regression.summary.describe()
    table = datafiles.save_data_file(data_logdir, "houses.csv", csv_bytes().replace(b"\n", b"\r\n"))
    assert table.classes is None and table.columns == ("a", "b", "c", "d", "e", "price")
    price = table.for_target("price")
    assert price.classes == 0 and price.features == 5 and price.describe().startswith("80 rows (split by the seed)")
    labels = read_data(b"\xef\xbb\xbfx1,x2,label\n0.5,1,2\n\"1.5\",2,0\n\n2.5,3,1\n", "l.csv", "label")
    assert labels.summary.classes == 3 and labels.arrays["y"].tolist() == [2, 0, 1]
    assert labels.arrays["x"].tolist() == [[0.5, 1], [1.5, 2], [2.5, 3]]
    assert labels.summary.class_columns == {"x2": 4, "label": 3}  # whole numbers 0..19: class labels
    with pytest.raises(DataFileError, match="column 'nope': no such column; the columns are 'x1', 'x2', 'label'"):
        read_data(b"x1,x2,label\n0.5,1,2\n", "l.csv", "nope")
    listed = datafiles.list_data_files(data_logdir)
    assert [(e.name, e.summary.sha256 if e.summary else None) for e in listed] == [
        ("digits-like.npz", saved.sha256), ("houses.csv", table.sha256)]
    (data_logdir / "data" / "by-hand.csv").write_bytes(b"a,b\n1,oops\n")
    (data_logdir / "data" / "notes.txt").write_text("not a data file")
    bad = [e for e in datafiles.list_data_files(data_logdir) if e.summary is None]
    assert [(e.name, e.error) for e in bad] == [("by-hand.csv", "column 'b': data row 1 holds 'oops': numbers only")]
    datafiles.delete_data_file(data_logdir, "by-hand.csv")
    with pytest.raises(DataFileError, match="not in the data folder"):
        datafiles.delete_data_file(data_logdir, "by-hand.csv")


def test_the_launch_check_names_the_field(data_logdir):
    spec = RunSpec(task="file", data="d.npz", hidden=(8,))
    with pytest.raises(SpecError, match="not in the data folder") as err:
        datafiles.check_launch(spec, data_logdir)
    assert err.value.field == "data" and str(data_logdir) not in str(err.value)  # no server path for visitors
    datafiles.save_data_file(data_logdir, "d.npz", npz(**GOOD))
    datafiles.save_data_file(data_logdir, "t.csv", csv_bytes())
    assert datafiles.check_launch(spec, data_logdir).classes == 3
    assert datafiles.check_launch(RunSpec(), data_logdir) is None
    refusals = [
        (spec.replace(target="y"), "target", "a .npz brings its own"),
        (spec.replace(data="t.csv", target="cost"), "target", "no such column"),
        # 5000 features x 4096 hidden units: 20M weights, past the 10M this server allows
        (spec.replace(data="wide.npz", hidden=(4096,)), "hidden", "more than the 10000000 allowed"),
        (spec.replace(data="t.csv", target="price", val_fraction=0.999), "val_fraction", "none to train on"),
    ]
    wide = {"x_train": np.zeros((2, 5000), np.float32), "y_train": np.array([0, 1]),
            "x_val": np.zeros((1, 5000), np.float32), "y_val": np.array([1])}
    datafiles.save_data_file(data_logdir, "wide.npz", npz(**wide))
    for bad, field, words in refusals:
        with pytest.raises(SpecError, match=words) as err:
            datafiles.check_launch(bad, data_logdir)
        assert err.value.field == field, str(err.value)
    assert datafiles.check_launch(spec.replace(data="t.csv", target="price"), data_logdir).classes == 0
