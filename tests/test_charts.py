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


def test_side_colors():
    assert scalars.side_colors("torch", "tensorflow") == ("#EE4C2C", "#FF8F00")
    left, right = scalars.side_colors("torch", "torch")
    assert left != right
    assert scalars.FRAMEWORK_COLORS["torch"] != scalars.FRAMEWORK_COLORS["tensorflow"]


# --- figures -------------------------------------------------------------------------------------
def curves(n=100_001, x_axis="step"):
    step = np.arange(n, dtype=np.int64)
    wall = 1.7e9 + step * 0.01
    rng = np.random.default_rng(1)
    a = np.exp(-step / 20_000) + rng.random(n) * 0.1
    b = np.exp(-step / 25_000) + rng.random(n) * 0.1
    x = step / 100.0 if x_axis in ("epoch", "samples") else None  # what tagmap.to_x would give
    return [scalars.Curve("PyTorch", 0, "#EE4C2C", step, wall, a, x=x),
            scalars.Curve("TensorFlow", 1, "#FF8F00", step[:500], wall[:500] + 3, b[:500],
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
    assert list(fig.data[1].x) == [1.0, 2.0, 3.0] and list(fig.data[1].customdata) == [0, 1, 2]
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
    for x_axis in ("step", "wall"):
        plain = sent(scalars.scalar_figure("t", cs, smoothing=0.6, x_axis=x_axis))
        for _ in range(2):  # computed, then reused
            cache.rotate()
            assert sent(scalars.scalar_figure("t", keyed, smoothing=0.6, x_axis=x_axis, cache=cache,
                                             encode=True)) == plain
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
    assert not cannot and [(c.name, c.side, c.color) for c in curves] == [("torch", 0, "#EE4C2C"),
                                                                          ("tensorflow", 1, "#FF8F00")]
    assert len(curves[0].value) == 11 and len(curves[1].value) == 10
    assert scalars.run_starts(store, mapped) == {"a/torch": 1000.0, "a/tensorflow": 1000.0}
    assert scalars.zoom_bounds(store, mapped, ["lr"], "step") == (0, 10)
    assert scalars.zoom_bounds(store, mapped, ["lr"], "step", total_steps=50) == (0, 50)  # a job's total
    assert scalars.zoom_bounds(store, mapped, ["nope"], "step") is None
