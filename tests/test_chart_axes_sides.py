"""What a scalar chart is built from, apart from its figure: x axes, the shared y range, tag groups,
and the two sides: their colours (for colour-blind eyes too), the shown runs' stores and curves,
the points where the sides meet, and the sides' names. Figures: test_chart_figures.py."""
import math

import numpy as np
import pytest

from twinboard import scalars


# --- x axis, ranges, tags ------------------------------------------------------------------------
def test_relative_and_wall_time():
    wall = np.array([1000.5, 1001.0, 1010.25])
    np.testing.assert_allclose(scalars.relative_time(wall), [0.0, 0.5, 9.75])
    np.testing.assert_allclose(scalars.relative_time(wall, start=1000.0), [0.5, 1.0, 10.25])
    dt = scalars.wall_datetime(wall)
    assert dt.dtype == np.dtype("datetime64[ms]")
    assert str(dt[0]) == "1970-01-01T00:16:40.500"
    np.testing.assert_array_equal(scalars.x_values(np.array([1, 2, 3]), wall, "step"), [1, 2, 3])
    with pytest.raises(ValueError, match="x axis"):
        scalars.x_values(np.array([1]), wall[:1], "epoch")
    assert scalars.first_wall_time([np.array([5.0, 6.0]), np.array([]), np.array([3.0])]) == 3.0
    assert scalars.step_bounds([np.array([10, 20]), np.array([0, 5])]) == (0, 20)
    assert scalars.step_bounds([np.array([])]) is None
    assert scalars.x_bounds([np.array([10.0, 20.0]), np.array([0, 5])]) == (0, 20)
    assert scalars.x_bounds([np.array([1.0, 2.0]), np.array([0.5, np.nan])]) == (0.5, 2.0)
    assert scalars.x_bounds([np.array([]), np.array([np.nan])]) is None


def test_y_range_shared_linear_and_log():
    lo, hi = scalars.y_range([np.array([1.0, 2.0]), np.array([np.nan, 4.0, np.inf])])
    assert lo < 1.0 and hi > 4.0 and math.isclose(hi - lo, 3.0 * 1.1)
    lo, hi = scalars.y_range([np.array([-1.0, 0.01, 100.0])], log=True)
    assert lo < -2 and hi > 2  # log10 units, the non-positive value ignored
    assert scalars.y_range([np.array([np.nan])]) is None
    assert scalars.y_range([np.array([-3.0])], log=True) is None
    assert scalars.y_range([np.array([0.05, 0.05])]) == pytest.approx([0.045, 0.055])
    lo, hi = scalars.y_range([np.array([0.0])])
    assert lo < 0.0 < hi


def test_tag_groups_and_filter():
    tags = ["perf/step_ms", "loss/val", "lr", "accuracy/train", "loss/train", "zeta/x", "alpha"]
    groups = scalars.group_tags(tags)
    assert list(groups) == ["loss", "accuracy", "lr", "perf", "alpha", "zeta"]
    assert groups["loss"] == ["loss/train", "loss/val"]
    assert scalars.filter_tags(tags, "train$") == ["accuracy/train", "loss/train"]
    assert scalars.filter_tags(tags, "  ") == tags
    with pytest.raises(scalars.TagFilterError, match=r"'loss\('"):
        scalars.filter_tags(tags, "loss(")


# Machado, Oliveira & Fernandes (2009), severity 1.0: linear RGB as a dichromat sees it.
CVD = {"protanopia": [[0.152286, 1.052583, -0.204868], [0.114503, 0.786281, 0.099216],
                      [-0.003882, -0.048116, 1.051998]],
       "deuteranopia": [[0.367322, 0.860646, -0.227968], [0.280085, 0.672501, 0.047413],
                        [-0.011820, 0.042940, 0.968881]],
       "tritanopia": [[1.255528, -0.076749, -0.178779], [-0.078411, 0.930809, 0.147602],
                      [0.004733, 0.691367, 0.303900]]}


def seen_as(color: str, vision: str | None) -> np.ndarray:
    """CIELAB of `color` (#rrggbb) as seen with `vision` (a CVD key, None for typical vision)."""
    srgb = np.array([int(color[i:i + 2], 16) for i in (1, 3, 5)]) / 255
    rgb = np.where(srgb <= 0.04045, srgb / 12.92, ((srgb + 0.055) / 1.055) ** 2.4)
    if vision:
        rgb = np.clip(np.array(CVD[vision]) @ rgb, 0, 1)
    xyz = np.array([[0.4124, 0.3576, 0.1805], [0.2126, 0.7152, 0.0722], [0.0193, 0.1192, 0.9505]]) @ rgb
    f = lambda t: np.where(t > 0.008856, np.cbrt(t), 7.787 * t + 16 / 116)  # noqa: E731
    fx, fy, fz = f(xyz / np.array([0.95047, 1.0, 1.08883]))
    return np.array([116 * fy - 16, 500 * (fx - fy), 200 * (fy - fz)])


def apart(a: str, b: str, vision: str | None) -> float:
    return float(np.linalg.norm(seen_as(a, vision) - seen_as(b, vision)))


def test_side_colors_stay_apart_for_colour_blind_eyes():
    torch, tf = scalars.FRAMEWORK_COLORS["torch"], scalars.FRAMEWORK_COLORS["tensorflow"]
    assert scalars.side_colors("torch", "tensorflow") == (torch, tf)
    assert apart("#EE4C2C", "#FF8F00", "deuteranopia") < 25  # the old red and orange: one line to many
    for vision in (None, *CVD):  # the pair on every chart: far apart (CIELAB distance) for everyone
        assert apart(torch, tf, vision) > 80, vision
    # Every pair of colours two sides can get (uploads, two runs of one framework) stays apart for
    # the common deficiencies (protanopia, deuteranopia: ~8% of men).
    pairs = {scalars.side_colors(a, b) for a in ("torch", "tensorflow", None) for b in ("torch", "tensorflow", None)}
    assert len(pairs) == 9 - 2 and all(left != right for left, right in pairs)  # (torch, torch) = (tf, tf)'s shape
    for left, right in pairs:
        for vision in (None, "protanopia", "deuteranopia"):
            assert apart(left, right, vision) > 40, (left, right, vision)


# --- the shown runs' stores and their curves (scalars.store, scalars.curves) ----------------------
def _write_scalars(folder, tags, steps) -> None:
    from tensorboard.compat.proto import event_pb2

    from twinboard.events import frame

    folder.mkdir(parents=True, exist_ok=True)
    records = [frame(event_pb2.Event(wall_time=999.0, file_version="brain.Event:2").SerializeToString())]
    for step in steps:
        ev = event_pb2.Event(wall_time=1000.0 + step, step=step)
        for tag in tags:
            ev.summary.value.add(tag=tag, simple_value=float(step))
        records.append(frame(ev.SerializeToString()))
    with open(folder / "events.out.tfevents.1.test", "ab") as f:
        f.write(b"".join(records))


def test_run_stores_read_only_the_shown_folders_and_name_runs_as_the_logdir(tmp_path):
    from twinboard import runs

    for fw in ("torch", "tensorflow"):
        _write_scalars(tmp_path / "a" / fw, ["loss/train", "lr"], range(10))
    _write_scalars(tmp_path / "b" / "torch", ["loss/train"], range(3))
    opened = []

    def open_store(path):
        opened.append(path.relative_to(tmp_path).as_posix())
        return scalars.LockedStore(path)
    store = scalars.RunStores(tmp_path, open_store)
    assert store.refresh(["a"]) == 40
    assert store.runs() == ["a/tensorflow", "a/torch"] and store.tags("a/torch") == ["loss/train", "lr"]
    assert store.tags("b/torch") == []  # not shown: not read
    _write_scalars(tmp_path / "a" / "torch", ["lr"], [10])
    assert store.refresh() == 1 and opened == ["a"]  # the same store, only the new bytes
    assert store.series("a/torch", "lr").step.tolist() == list(range(11))
    assert store.refresh(["b/torch"]) == 3 and store.runs() == ["b/torch"] and opened == ["a", "b/torch"]
    assert [scalars.join_run(f, r) for f, r in [(".", "x/y"), ("x", "."), ("x", "y")]] == ["x/y", "x", "x/y"]

    pair = runs.Pair(*(runs.EventRun(f"a/{fw}", tmp_path / "a" / fw, fw, "local") for fw in ("torch", "tensorflow")),
                     "a")
    mappings, problems = scalars.load_mappings(tmp_path, [pair])
    assert not problems and scalars.first_axis(mappings) == "step"
    assert scalars.folders(tmp_path, [pair], mappings) == ["a/tensorflow", "a/torch"]
    store.refresh(scalars.folders(tmp_path, [pair], mappings))
    mapped = scalars.map_runs(store, tmp_path, [pair], mappings)
    assert scalars.mapped_tags(mapped) == ["loss/train", "lr"]
    curves, cannot = scalars.tag_curves(store, [pair], mapped, "lr", "step", {}, lambda r: r.framework)
    assert not cannot and [(c.name, c.side, c.color) for c in curves] == [("torch", 0, "#D55E00"),
                                                                          ("tensorflow", 1, "#0072B2")]
    named, _ = scalars.tag_curves(store, [pair], mapped, "lr", "step", {})  # default names: the frameworks
    assert [c.name for c in named] == ["PyTorch", "TensorFlow"] and {c.pair for c in named} == {0}
    assert len(curves[0].value) == 11 and len(curves[1].value) == 10
    assert scalars.run_starts(store, mapped) == {"a/torch": 1000.0, "a/tensorflow": 1000.0}
    assert scalars.zoom_bounds(store, mapped, ["lr"], "step") == (0, 10)
    assert scalars.zoom_bounds(store, mapped, ["lr"], "step", total_steps=50) == (0, 50)  # a job's total
    assert scalars.zoom_bounds(store, mapped, ["nope"], "step") is None


# --- the two sides compared point against point, and named (scalars.compare) ---------------------
def test_nearest_and_common_points():
    other = np.array([0, 10, 20, 20, 30], dtype=np.int64)  # a repeated step: the last written counts
    np.testing.assert_array_equal(scalars.nearest(np.array([0, 4, 5, 6, 20, 99, -3]), other),
                                  [0, 0, 0, 1, 3, 4, 0])  # a tie takes the earlier point
    assert scalars.nearest(np.array([1, 2]), np.array([])).size == 0
    li, ri = scalars.common(np.array([30, 0, 5, 20]), other)
    assert li.tolist() == [0, 1, 3] and ri.tolist() == [4, 0, 3]
    assert scalars.common(np.array([]), other)[0].size == 0
    cols = scalars.hover_columns(np.array([10, 15]), np.array([10, 15]), np.array([1.0, np.inf]), 1,
                                 other, np.array([5.0, 4.0, 3.0, 2.0, 1.0]))
    assert cols[0].tolist() == [10, 10, 4.0, 3.0]  # right side hovered: left (4) minus right (1)
    assert cols[1, :3].tolist() == [15, 10, 4.0] and np.isnan(cols[1, 3])  # no infinity in JSON
    lone = scalars.hover_columns(np.array([3]), np.array([3]), np.array([1.0]), 0, np.array([]), np.array([]))
    assert lone[0, 0] == 3 and np.isnan(lone[0, 1:]).all()


def _pair(root, left: str, right: str, fw=("torch", "tensorflow")):
    from twinboard import runs

    def run(name, f):
        return runs.EventRun(name, root / name, f, "local")
    return runs.make_pair(run(left, fw[0]), run(right, fw[1]))


def test_sides_are_named_by_framework_only_within_one_matched_run(tmp_path):
    from twinboard import runs

    matched = runs.Pair(*_pair(tmp_path, "r1/torch", "r1/tensorflow").runs, "r1")
    assert scalars.is_matched(matched) and scalars.panel_titles([matched]) == ("PyTorch", "TensorFlow")
    two_tf = _pair(tmp_path, "r1/tensorflow", "r2/tensorflow", ("tensorflow", "tensorflow"))
    assert scalars.panel_titles([two_tf]) == ("r1/tensorflow", "r2/tensorflow")
    across = _pair(tmp_path, "r1/torch", "r2/tensorflow")  # a torch and a tf run, not of one run folder
    assert not scalars.is_matched(across) and scalars.panel_titles([across]) == ("r1/torch", "r2/tensorflow")
    other = runs.Pair(*_pair(tmp_path, "r2/torch", "r2/tensorflow").runs, "r2")
    assert scalars.panel_titles([matched, other]) == ("PyTorch side", "TensorFlow side")
    assert scalars.panel_titles([two_tf, other]) == ("left side", "right side")
    assert scalars.curve_name([matched, other], 1, other.left) == "PyTorch · r2"
    long = _pair(tmp_path, "uploads/" + "x" * 200 + "/validation", "r2/tensorflow", (None, "tensorflow"))
    title = scalars.panel_titles([long])[0]
    assert len(title) == 60 and title.startswith("uploads/xx") and title.endswith("x/validation")
