"""Smoothing, downsampling, x axes, shared y range and the scalar figure (twinboard.smoothing/charts)."""
import json
import math

import numpy as np
import pytest

from twinboard import scalars
from twinboard.scalars import MAX_POINTS, downsample, ema


def tensorboard_ema(values, w):
    """vz_line_chart2's resmoothDataset, transcribed line by line (the reference)."""
    last = 0.0 if len(values) else math.nan
    num_accum = 0
    is_constant = all(v == values[0] for v in values)
    out = []
    for v in values:
        if is_constant or not math.isfinite(v):
            out.append(v)
            continue
        last = last * w + (1 - w) * v
        num_accum += 1
        debias_weight = 1 - w ** num_accum if w != 1 else 1
        out.append(last / debias_weight)
    return out


# --- EMA -----------------------------------------------------------------------------------------
def test_ema_hand_computed():
    # w = 0.5 over [1, 2, 4]:
    #   last = 0.5            debias 0.5   -> 1
    #   last = 0.25 + 1 = 1.25  debias 0.75  -> 5/3
    #   last = 0.625 + 2 = 2.625 debias 0.875 -> 3
    np.testing.assert_allclose(ema(np.array([1.0, 2.0, 4.0]), 0.5), [1.0, 5 / 3, 3.0], rtol=1e-12)


def test_ema_passes_non_finite_through_and_counts_only_finite_points():
    values = [1.0, math.nan, 2.0, math.inf, 4.0, -math.inf]
    got = ema(np.array(values), 0.5)
    # NaN / inf in place; the finite ones smooth as if the others were not there
    assert math.isnan(got[1]) and got[3] == math.inf and got[5] == -math.inf
    np.testing.assert_allclose(got[[0, 2, 4]], [1.0, 5 / 3, 3.0], rtol=1e-12)
    np.testing.assert_allclose(got, tensorboard_ema(values, 0.5), rtol=1e-12)


@pytest.mark.parametrize("w", [0.0, 0.3, 0.6, 0.9, 0.99, 0.999])
def test_ema_matches_tensorboard_on_noisy_series(w):
    rng = np.random.default_rng(0)
    values = np.cumsum(rng.normal(size=3000)) + 100
    values[[5, 400, 401, 2999]] = [np.nan, np.inf, np.nan, -np.inf]
    np.testing.assert_allclose(ema(values, w), tensorboard_ema(values.tolist(), w), rtol=1e-9)


def test_ema_off_constant_and_empty():
    v = np.array([3.0, 1.0, 2.0])
    np.testing.assert_array_equal(ema(v, 0.0), v)
    np.testing.assert_array_equal(ema(np.full(5, 7.0), 0.9), np.full(5, 7.0))
    assert ema(np.array([]), 0.9).size == 0
    with pytest.raises(ValueError, match="1"):
        ema(v, 1.0)


# --- downsampling --------------------------------------------------------------------------------
def noisy(n, seed=0):
    rng = np.random.default_rng(seed)
    x = np.arange(n, dtype=np.int64) * 10
    y = np.sin(np.arange(n) / 5000) + rng.normal(scale=0.1, size=n)
    return x, y


@pytest.mark.parametrize("n", [2001, 10_000, 250_000])
def test_downsample_bound_endpoints_and_extremes(n):
    x, y = noisy(n)
    y[n // 3] = 50.0  # a spike LTTB alone might drop
    y[n // 2] = -50.0
    idx = downsample(x, y, MAX_POINTS)
    assert len(idx) <= MAX_POINTS
    assert len(idx) > MAX_POINTS * 0.9  # and it uses the budget
    assert np.all(np.diff(idx) > 0)
    assert idx[0] == 0 and idx[-1] == n - 1
    assert np.argmax(y) in idx and np.argmin(y) in idx


def test_downsample_short_series_is_untouched():
    x, y = noisy(1500)
    np.testing.assert_array_equal(downsample(x, y), np.arange(1500))


def test_downsample_keeps_where_a_run_diverged():
    x, y = noisy(50_000)
    y[30_000:] = np.nan
    idx = downsample(x, y, 500)
    assert len(idx) <= 500 and 30_000 in idx and idx[-1] == 49_999
    assert np.nanargmax(y) in idx and np.nanargmin(y) in idx


def test_downsample_tiny_budgets_and_unsorted_x():
    x, y = noisy(10_000)
    for k in (1, 2, 3, 4, 5, 10):
        idx = downsample(x, y, k)
        assert len(idx) <= k and idx[0] == 0
    x_restarted = np.concatenate([x[:5000], x[:5000]])  # a run that restarted from step 0
    idx = downsample(x_restarted, y, 1000)
    assert len(idx) <= 1000 and idx[-1] == 9999


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


# --- figures -------------------------------------------------------------------------------------
def curves(n=100_001, x_axis="step"):
    step = np.arange(n, dtype=np.int64)
    wall = 1.7e9 + step * 0.01
    rng = np.random.default_rng(1)
    a = np.exp(-step / 20_000) + rng.random(n) * 0.1
    b = np.exp(-step / 25_000) + rng.random(n) * 0.1
    x = step / 100.0 if x_axis in ("epoch", "samples") else None  # what tagmap.to_x would give
    return [scalars.Curve("PyTorch", 0, "#D55E00", step, wall, a, x=x),
            scalars.Curve("TensorFlow", 1, "#0072B2", step[:500], wall[:500] + 3, b[:500],
                         x=None if x is None else x[:500])]


@pytest.mark.parametrize("overlay", [False, True])
@pytest.mark.parametrize("x_axis", list(scalars.X_AXES))
@pytest.mark.parametrize("log_y", [False, True])
def test_scalar_figure_bounded_and_labelled(overlay, x_axis, log_y):
    fig = scalars.scalar_figure("loss/train", curves(x_axis=x_axis), smoothing=0.6, x_axis=x_axis,
                               log_y=log_y, overlay=overlay)
    assert all(len(t.x) <= MAX_POINTS for t in fig.data)
    assert len(fig.data) == 4  # raw + smoothed per curve
    assert "of 100,001 points" in fig.layout.title.subtitle.text
    assert any("of 100,001" in (t.name or "") for t in fig.data)
    json.loads(fig.to_json())  # serialisable (no inf)
    if not overlay:
        assert fig.layout.yaxis.range == fig.layout.yaxis2.range  # one shared y range


def test_scalar_figure_zoomed_range_is_full_resolution():
    fig = scalars.scalar_figure("loss/train", curves(), smoothing=0.0, step_range=(1000, 2999))
    assert [len(t.x) for t in fig.data] == [2000, 0]
    assert not fig.layout.title.subtitle.text
    assert fig.data[0].x[0] == 1000 and fig.data[0].x[-1] == 2999


def test_zoom_keeps_whole_series_smoothing():
    c = curves(5000)[0]
    zoom = scalars.prepare(c, 0.9, step_range=(3000, 3999))
    np.testing.assert_allclose(zoom.smooth_y, ema(c.value, 0.9)[3000:4000])
    np.testing.assert_array_equal(zoom.smooth_step, np.arange(3000, 4000))


def test_mapped_x_is_drawn_zoomed_and_sampled_in_its_own_units():
    """A per-step run (x = step / 3 epochs) and a per-epoch run on one epoch axis."""
    step = np.arange(6000, dtype=np.int64)
    per_step = scalars.Curve("local", 0, "#EE4C2C", step, 1.7e9 + step, np.cos(step / 500), x=step / 3.0)
    per_epoch = scalars.Curve("keras", 1, "#2E6FD8", np.arange(3), 1.7e9 + np.arange(3),
                             np.array([0.9, 0.7, 0.6]), x=np.array([1.0, 2.0, 3.0]))
    fig = scalars.scalar_figure("loss/train", [per_step, per_epoch], x_axis="epoch", overlay=True)
    assert fig.layout.xaxis.title.text == "epoch"
    assert len(fig.data[0].x) <= MAX_POINTS and fig.data[0].x[-1] == pytest.approx(5999 / 3)
    assert list(fig.data[1].x) == [1.0, 2.0, 3.0] and list(fig.data[1].customdata[:, 0]) == [0, 1, 2]
    # The per-epoch run's hover compares with the per-step run's point at its epoch (x = 3/3), and the
    # difference is left minus right whichever side is hovered.
    assert fig.data[1].customdata[0].tolist() == [0, 1.0, np.cos(3 / 500), np.cos(3 / 500) - 0.9]
    fig = scalars.scalar_figure("loss/train", [per_step, per_epoch], x_axis="epoch", step_range=(1.5, 2.0))
    assert list(fig.data[1].x) == [2.0]  # the range is in epochs, for both runs
    assert min(fig.data[0].x) >= 1.5 and max(fig.data[0].x) <= 2.0 and len(fig.data[0].x) == 2
    with pytest.raises(ValueError, match="x axis 'samples'"):
        scalars.prepare(scalars.Curve("no x", 0, "#000", step, step * 1.0, step * 1.0), x_axis="samples")


def test_prepared_cache_reuses_only_what_the_last_run_used():
    cache, calls = scalars.PreparedCache(), []

    def compute(name):
        return lambda: calls.append(name) or name
    assert cache.get("a", compute("a")) == "a" and cache.get("a", compute("a")) == "a"
    cache.rotate()
    cache.get("a", compute("a"))
    cache.get("b", compute("b"))
    assert calls == ["a", "b"]  # "a" came from the run before
    cache.rotate()
    cache.rotate()  # a run that used nothing: everything goes
    cache.get("a", compute("a"))
    assert calls == ["a", "b", "a"]


def test_cached_and_encoded_figures_send_what_plain_ones_send():
    """The page's fast path (PreparedCache, typed arrays made here) against plotly's own path."""
    import plotly.io
    import plotly.tools
    from _plotly_utils.utils import to_typed_array_spec

    def sent(fig):  # what st.plotly_chart puts in its proto
        return plotly.io.to_json(plotly.tools.return_figure_from_figure_or_data(fig, True), validate=False)

    cs = curves(20_000)
    keyed = [scalars.Curve(c.name, c.side, c.color, c.step, c.wall_time, c.value, key=i) for i, c in enumerate(cs)]
    cache = scalars.PreparedCache()
    for x_axis, difference in (("step", False), ("wall", False), ("step", True), ("relative", True)):
        plain = sent(scalars.scalar_figure("t", cs, smoothing=0.6, x_axis=x_axis, difference=difference))
        for _ in range(2):  # computed, then reused (the strip too)
            cache.rotate()
            assert sent(scalars.scalar_figure("t", keyed, smoothing=0.6, x_axis=x_axis, cache=cache,
                                             encode=True, difference=difference)) == plain
    for a in (np.arange(5), np.arange(5) * 10**6, np.arange(5) * 10**12, np.linspace(0, 1, 5),
              np.arange(5, dtype=np.float32), np.array([], np.int64),
              scalars.wall_datetime(np.array([1.7e9, 1.7e9 + 1]))):
        ours, theirs = scalars.typed_array(a), to_typed_array_spec(a)
        assert json.dumps(ours, default=str) == json.dumps(theirs, default=str)


def test_figures_carry_a_template_cut_to_line_charts():
    fig = scalars.scalar_figure("t", curves(100))
    template = fig.layout.template.to_plotly_json()
    assert set(template.get("data", {})) <= {"scatter"} and template["layout"]


@pytest.mark.parametrize("smoothing", [0.0, 0.6])
def test_a_lone_point_is_drawn_with_a_marker(smoothing):
    one = scalars.Curve("PyTorch", 0, "#EE4C2C", np.array([60]), np.array([1.7e9]), np.array([2.5]),
                       x=np.array([60.0]))
    step = np.arange(1, 2001)
    many = scalars.Curve("TensorFlow", 1, "#FF8F00", step, 1.7e9 + step, np.sin(step / 50.0), x=step.astype(float))
    fig = scalars.scalar_figure("perf/step_ms", [one, many], smoothing=smoothing)
    shown = {tr.name.split(" (")[0]: tr.mode for tr in fig.data if tr.hoverinfo != "skip"}
    assert "markers" in shown["PyTorch"] and shown["TensorFlow"] == "lines"


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


# --- the two sides compared (scalars.compare) and the chart that shows it --------------------------
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


def test_a_hostile_run_name_is_shown_as_text():
    step = np.arange(5)
    evil = '<a href="http://evil">x</a> %{y} & co'
    cs = [scalars.Curve(evil, 0, "#D55E00", step, 1.7e9 + step, step * 1.0),
          scalars.Curve("TensorFlow", 1, "#0072B2", step, 1.7e9 + step, step * 2.0)]
    fig = scalars.scalar_figure("<b>tag</b>", cs, panel_titles=(evil, "TensorFlow"))
    texts = [fig.layout.title.text, *(a.text for a in fig.layout.annotations),
             *(t.name for t in fig.data), *(t.hovertemplate for t in fig.data)]
    assert not any("<a" in t or "%{y} &" in t or "<b>tag" in t for t in texts), texts
    assert "&lt;a href=&#34;http://evil&#34;&gt;x&lt;/a&gt; &#37;{y} &amp; co" in fig.data[0].name


@pytest.mark.parametrize("overlay", [False, True])
@pytest.mark.parametrize("x_axis", list(scalars.X_AXES))
def test_difference_strip_lines_up_with_the_panels(overlay, x_axis):
    import plotly.graph_objects as go

    cs = curves(5000, x_axis)
    fig = scalars.scalar_figure("loss/train", cs, smoothing=0.6, x_axis=x_axis, overlay=overlay, difference=True)
    go.Figure(fig.to_dict())  # valid plotly, every attribute checked
    strips = [t for t in fig.data if t.name == "difference"]
    assert [t.xaxis for t in strips] == (["x3"] if overlay else ["x3", "x4"])
    left, right = (scalars.prepare(c, 0.6, x_axis) for c in cs)
    expected = left.full_y[:500] - right.full_y  # the steps both logged: TensorFlow's first 500
    np.testing.assert_allclose(strips[0].y, expected)
    np.testing.assert_array_equal(strips[0].customdata, np.arange(500))
    if x_axis in ("relative", "wall") and not overlay:  # each strip on its own panel's clock
        assert (strips[0].x[0] != strips[1].x[0]) == (x_axis == "wall")  # relative: both start at 0
    layout = fig.layout
    assert layout.xaxis3.matches == "x" and layout.yaxis3.domain[1] < layout.yaxis.domain[0]
    assert layout.yaxis3.range[0] <= expected.min() and layout.yaxis3.range[1] >= max(expected.max(), 0)
    assert not layout.xaxis.title.text and layout.xaxis3.title.text == scalars.X_AXES[x_axis]
    none_common = [cs[0], scalars.Curve("TensorFlow", 1, "#0072B2", np.array([10**6]), np.array([2e9]),
                                        np.array([1.0]), x=np.array([1e4]))]
    fig = scalars.scalar_figure("t", none_common, x_axis=x_axis, overlay=overlay, difference=True)
    assert any("no steps logged by both sides" in a.text for a in fig.layout.annotations)


def test_layout_keeps_title_note_panels_and_legend_apart():
    fig = scalars.scalar_figure("loss/train", curves(), smoothing=0.6, x_axis="wall", overlay=True)
    layout = fig.layout
    # The title (with its note) and the legend sit in the figure's own coordinates, where plotly
    # reserves their room: the axis' two-line date labels and its title go above the legend.
    assert (layout.title.yref, layout.title.yanchor, layout.legend.yref, layout.legend.yanchor) == \
        ("container", "top", "container", "bottom")
    assert layout.xaxis.automargin and layout.margin.t >= 30 + 26  # title and note rows
    side = scalars.scalar_figure("loss/train", curves(), smoothing=0.6).layout
    assert side.margin.t >= 30 + 26 + 26  # and the panel titles, above the plot area (yanchor bottom)
    assert all(a.yanchor == "bottom" and a.y == 1.0 for a in side.annotations)
    assert side.dragmode == "select" and side.selectdirection == "h" and side.hovermode == "x unified"


def test_an_empty_zoom_says_so_in_each_empty_panel():
    cs = curves(1000)  # TensorFlow stops at step 499
    fig = scalars.scalar_figure("t", cs, step_range=(600, 700))
    notes = [a for a in fig.layout.annotations if a.yanchor != "bottom"]
    assert [a.text for a in notes] == ["no points between step 600 and 700"] and notes[0].x > 0.5
    assert "Δ" not in fig.data[0].hovertemplate and fig.data[0].customdata.ndim == 1  # nothing to compare
    fig = scalars.scalar_figure("t", cs, step_range=(2000.5, 3000.25), overlay=True)
    assert [a.text for a in fig.layout.annotations] == ["no points between step 2,000.5 and 3,000.25"]
    fig = scalars.scalar_figure("t", cs[:1])  # a tag only one side logged
    assert [a.text for a in fig.layout.annotations if a.yanchor != "bottom"] == ["t is not logged on this side"]


def test_a_dragged_box_becomes_a_zoom_range():
    cs = curves(1000)
    box = {"xref": "x", "yref": "y", "x": [250.4, 120.2], "y": [0, 1]}
    assert scalars.box_range(box, "step", cs, (0, 999)) == (121, 250)  # sorted, inward to whole steps
    assert scalars.box_range({**box, "x": [-50, 5000]}, "step", cs, (0, 999)) == (0, 999)  # clamped
    assert scalars.box_range({**box, "x": [3.2, 3.7]}, "step", cs, (0, 999)) is None  # no whole step inside
    assert scalars.box_range({**box, "x": [1.25, 2.5]}, "epoch", cs, (0.0, 9.99)) == (1.25, 2.5)
    # Time axes: the steps of the box's side inside it (TensorFlow's clock runs 3 s behind PyTorch's).
    assert scalars.box_range({**box, "x": [1.0, 2.0]}, "relative", cs, (0, 999)) == (100, 200)
    right = scalars.box_range({**box, "xref": "x2", "x": [1.0, 2.0]}, "relative", cs, (0, 999))
    assert right == (100, 200)  # relative to its own start
    wall = {**box, "x": ["2023-11-14 22:13:21", "2023-11-14 22:13:22.5"]}  # 1.7e9 s = 22:13:20 UTC
    assert scalars.box_range(wall, "wall", cs, (0, 999)) == (100, 250)
    assert scalars.box_range({**wall, "xref": "x2"}, "wall", cs, (0, 999)) is None  # TF had not started
    with pytest.raises(ValueError, match="axis 'x2': not a panel"):  # overlay has one panel
        scalars.box_range({**wall, "xref": "x2"}, "wall", cs, (0, 999), overlay=True)
    assert scalars.box_range({**wall, "xref": "x"}, "wall", cs, (0, 999), overlay=True) == (100, 250)
    for bad, why in [({"x": [1]}, r"\[1\]: expected \[start, end\]"), ({**box, "x": [1, "soon"]}, "'soon' is not"),
                     ({**box, "x": [1, "9" * 99]}, "is not a number"), ({**box, "xref": "x9"}, "axis 'x9'"),
                     ({**box, "x": [1, float("nan")]}, "nan is not a finite"), ("box", "None")]:
        with pytest.raises(ValueError, match=why):
            scalars.box_range(bad, "step", cs, (0, 999))
    with pytest.raises(ValueError, match="'2023-13-45' is not a date"):
        scalars.box_range({**box, "x": ["2023-13-45", "2024-01-01"]}, "wall", cs, (0, 999))


def test_typed_customdata_is_sent_as_plotly_sends_it():
    from _plotly_utils.utils import to_typed_array_spec

    cols = scalars.hover_columns(np.arange(4), np.arange(4), np.ones(4), 0, np.arange(4), np.zeros(4))
    assert scalars.typed_array(cols) == to_typed_array_spec(cols) and "shape" in scalars.typed_array(cols)
