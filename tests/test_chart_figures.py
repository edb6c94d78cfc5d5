"""The scalar figure (twinboard.scalars.figure): bounded and labelled on every axis, zoomed at full
resolution, cached and encoded as plotly would send it, the difference strip, its layout, empty
zooms and a dragged box. Smoothing and downsampling: test_smoothing_downsampling.py."""
import json

import numpy as np
import pytest

from twinboard import scalars
from twinboard.scalars import MAX_POINTS, ema


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


# --- the two sides compared on the chart: names, strip, layout, zoom, drag -----------------------
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
