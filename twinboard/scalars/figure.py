"""The scalar chart of one tag: the two sides side by side (two panels, one y range) or overlaid, a
hover that shows both sides and their difference, an optional difference strip under the panels,
and a box drag that selects an x range (the page re-reads it at full resolution). Pure: curves in,
figure out.

Layout, in pixels from the top: the tag (title) and the sampling note (its subtitle), then the panel
titles, then the panels; at the bottom the x axis, then the legend. The title and legend are placed in
the figure's own coordinates (`container`), so plotly reserves their room and pushes the plot area and
its axis labels clear of them: a wall-time axis' two-line labels no longer run into the legend.
"""
from __future__ import annotations

from collections.abc import Callable

import numpy as np
import plotly.graph_objects as go
import plotly.io as pio

from twinboard.scalars.charts import (
    DIFF_COLOR, FEW_POINTS, MAPPED_AXES, RAW_OPACITY, X_AXES, Curve, x_values, y_range)
from twinboard.scalars.compare import (
    MAX_TAG_CHARS, PANEL_AXES, STRIP_AXES, common, hover_columns, label)
from twinboard.scalars.prepared import Prepared, PreparedCache, prepare, sampling_note, start_of, typed_array
from twinboard.scalars.smoothing import MAX_POINTS, downsample

TITLE_PX, NOTE_PX, PANEL_TITLE_PX = 30, 26, 26  # rows above the plot area
LEGEND_PX = 28  # one row of legend entries
STRIP_PX = 120  # the difference strip, with the gap above it for the panels' tick labels
STRIP_SHARE, STRIP_GAP = 0.22, 0.15  # of the plot area's height: the strip, and the gap above it
# How the other side's point is named in the hover: its key, in the axis' own units.
KEY_WORDS = {"epoch": ("epoch", ":.4~g"), "samples": ("samples", ":,")}

_LINE_TEMPLATES: dict[str, dict] = {}


def line_template() -> dict:
    """The default plotly template (Streamlit's, once streamlit is imported) cut to what a line chart
    uses: its layout and its scatter defaults. Streamlit copies and walks a chart's whole template
    each time it sends one; the other trace types' defaults never apply here (halves that cost)."""
    name = str(pio.templates.default)
    if name not in _LINE_TEMPLATES:
        full = pio.templates[name].to_plotly_json() if name != "None" else {}
        _LINE_TEMPLATES[name] = {"layout": full.get("layout", {}),
                                 "data": {k: v for k, v in full.get("data", {}).items() if k == "scatter"}}
    return _LINE_TEMPLATES[name]


def _number(v: float) -> str:
    return f"{int(v):,}" if float(v).is_integer() else f"{v:,.6g}"


def _hover(curve: Curve, partner: Curve | None, x_axis: str, overlay: bool, titles: tuple[str, str]) -> str:
    """The hovertemplate of a curve's full-colour series. customdata columns: its step, the other
    side's key and value at the nearest point, left minus right (compare.hover_columns)."""
    own = "%{y:.5g}" + ("" if x_axis == "step" else " at step %{customdata[0]:,}")
    if partner is None:
        return own.replace("customdata[0]", "customdata") + f"<extra>{label(curve.name)}</extra>"
    delta = f"Δ {label(titles[0])} − {label(titles[1])}: %{{customdata[3]:+.4g}}"
    if overlay:  # the unified box lists both sides already: the right one adds the difference
        body = own if curve.side == 0 else f"{own}<br>{delta}"
        return f"{body}<extra>{label(curve.name)}</extra>"
    word, fmt = KEY_WORDS.get(x_axis, ("step", ":,"))
    other = f"{label(partner.name)}: %{{customdata[2]:.5g}} at {word} %{{customdata[1]{fmt}}}"
    return f"<b>{label(curve.name)}</b>: {own}<br>{other}<br>{delta}<extra></extra>"


def _curve_traces(curve: Curve, prep: Prepared, partner: tuple[Curve, Prepared] | None, x_axis: str,
                  overlay: bool, titles: tuple[str, str]) -> list[dict]:
    """The faint raw series (when smoothed) and the full-colour one, whose hover names both sides."""
    axes = {} if overlay else {"xaxis": PANEL_AXES[curve.side], "yaxis": "y" if curve.side == 0 else "y2"}
    name = label(curve.name)
    shown = f"{name} ({prep.shown:,} of {prep.total:,})" if prep.sampled else name
    line = {"color": curve.color, "dash": curve.dash, "width": 1.8}
    # A few points (a short run's perf/*, one validation point) get markers: a lone point drawn as a
    # line is invisible.
    mode = "lines+markers" if len(prep.raw_y) <= FEW_POINTS else "lines"
    x, y, step = prep.main
    custom = step
    if partner is not None and partner[1].total == 0:
        partner = None  # nothing of the other side in the range: a plain hover, not NaNs
    if partner is not None:
        other = partner[1]
        key = x if x_axis in MAPPED_AXES else step  # as Prepared.full_key: the sides meet there
        custom = hover_columns(step, key, y, curve.side, other.full_key, other.full_y)
    traces = []
    if prep.smooth_y is not None:
        traces.append({"type": "scatter", "x": prep.raw_x, "y": prep.raw_y, "customdata": prep.raw_step,
                       "mode": "lines", "legendgroup": name, "name": f"{name} (raw)", "showlegend": False,
                       "opacity": RAW_OPACITY, "line": {**line, "width": 1}, "hoverinfo": "skip", **axes})
    traces.append({"type": "scatter", "x": x, "y": y, "customdata": custom, "mode": mode,
                   "marker": {"size": 5, "color": curve.color}, "name": shown, "legendgroup": name,
                   "showlegend": True, "opacity": 1.0, "line": line,
                   "hovertemplate": _hover(curve, partner and partner[0], x_axis, overlay, titles), **axes})
    return traces


def _strip_points(left: Curve, lp: Prepared, right: Curve, rp: Prepared, x_axis: str, overlay: bool,
                  max_points: int) -> tuple[list[np.ndarray], np.ndarray, np.ndarray]:
    """([x under each panel], left minus right, step) at the keys both sides logged, sampled. On a
    time axis each panel's x is its own run's clock; overlaid, the one strip is on the left run's."""
    li, ri = common(lp.full_key, rp.full_key)
    diff = lp.full_y[li] - rp.full_y[ri]
    diff[~np.isfinite(diff)] = np.nan
    pick = downsample(lp.full_key[li], diff, max_points) if li.size else li
    li, ri, diff = li[pick], ri[pick], diff[pick]
    xs = []
    for curve, prep, idx in [(left, lp, li)] if overlay else [(left, lp, li), (right, rp, ri)]:
        xs.append(prep.full_key[idx] if x_axis in MAPPED_AXES else
                  x_values(prep.full_step[idx], prep.full_wall[idx], x_axis, start_of(curve)))
    return xs, diff, lp.full_step[li]


def _strip_traces(pairs: dict[int, list], x_axis: str, overlay: bool, max_points: int,
                  cached: Callable) -> tuple[list, bool]:
    """The difference strip: one trace per pair (and per panel side by side), and whether any pair
    had a key both sides logged. `cached(left, right, compute)` keeps a pair's points between runs."""
    traces, any_common = [], False
    for (left, lp), (right, rp) in (v for v in pairs.values() if len(v) == 2):
        xs, diff, step = cached(left, right, lambda: _strip_points(left, lp, right, rp, x_axis, overlay, max_points))
        any_common = any_common or bool(diff.size)
        for strip, x in enumerate(xs if diff.size else []):
            traces.append({"type": "scatter", "x": x, "y": diff, "customdata": step, "mode": "lines",
                           "line": {"color": DIFF_COLOR, "dash": left.dash, "width": 1.4},
                           "name": "difference", "showlegend": False, "xaxis": STRIP_AXES[strip],
                           "yaxis": "y3" if strip == 0 else "y4",
                           "hovertemplate": "Δ %{y:+.4g} at step %{customdata:,}<extra></extra>"})
    return traces, any_common


def _note(text: str, x: float, y: float, yref: str = "paper") -> dict:
    return {"text": text, "x": x, "y": y, "xref": "paper", "yref": yref, "xanchor": "center", "showarrow": False,
            "font": {"size": 13, "color": "#555"}}


def scalar_figure(tag: str, curves: list[Curve], *, smoothing: float = 0.0, x_axis: str = "step",
                  log_y: bool = False, overlay: bool = False,
                  panel_titles: tuple[str, str] = ("PyTorch", "TensorFlow"),
                  step_range: tuple[float, float] | None = None, max_points: int = MAX_POINTS,
                  height: int = 340, cache: PreparedCache | None = None, encode: bool = False,
                  difference: bool = False) -> go.Figure:
    """One tag: curves side by side (two panels, one shared y range) or overlaid on one chart;
    `difference`: a strip under them of left minus right at the steps both logged.

    The figure is written as plotly's JSON structure and wrapped without re-validation: validating
    (and `make_subplots`) cost ~60 ms a chart, most of a live refresh of ten charts (issue 7).
    tests/test_chart_figures.py validates what this builds. With a `cache`, curves that carry a key
    reuse the points prepared for them in the previous page run. `encode`: the traces' arrays as
    plotly's typed array specs already (`typed_array`), so st.plotly_chart does not convert each
    one again (~0.5 ms an array in plotly's own path); the JSON sent is the same.
    """
    def prepared_(c: Curve) -> Prepared:
        def compute() -> Prepared:
            return prepare(c, smoothing, x_axis, step_range, max_points)
        if cache is None or c.key is None:
            return compute()
        return cache.get((c.key, c.start, smoothing, x_axis, step_range, max_points), compute)

    prepared = [prepared_(c) for c in curves]
    pairs: dict[int, list] = {}
    for c, p in sorted(zip(curves, prepared), key=lambda cp: cp[0].side):
        pairs.setdefault(c.pair, []).append((c, p))
    partner_of = {id(c): next((o for o in pairs[c.pair] if o[0].side != c.side), None) for c in curves}
    traces = [t for c, p in zip(curves, prepared)
              for t in _curve_traces(c, p, partner_of[id(c)], x_axis, overlay, panel_titles)]
    strip = difference and any(len(v) == 2 for v in pairs.values())

    def cached(left: Curve, right: Curve, compute):  # again only when either side's points changed
        if cache is None or left.key is None or right.key is None:
            return compute()
        return cache.get(("strip", left.key, right.key, left.start, right.start, smoothing, x_axis, step_range,
                          max_points, overlay), compute)
    strip_traces, any_common = _strip_traces(pairs, x_axis, overlay, max_points, cached) if strip else ([], False)
    traces += strip_traces
    # One range for both strips, zero included, set here: plotly.js 3.8 autoranged two strip axes
    # tied by `matches` to its empty-axis default [-1, 4] (seen in Chromium).
    strip_range = y_range([t["y"] for t in strip_traces] + [np.zeros(1)])
    if encode:
        for trace in traces:
            for k in ("x", "y", "customdata"):
                trace[k] = typed_array(trace[k])
    note = sampling_note(prepared, max_points)
    legend = overlay or len({c.dash for c in curves}) > 1  # side by side, one pair: panel titles say it
    layout = _layout(tag, note, legend, overlay, strip, x_axis, height, panel_titles)
    for name in (() if not strip else ("yaxis3",) if overlay else ("yaxis3", "yaxis4")):
        layout[name]["range"] = strip_range
    rng = y_range([a for p in prepared for a in (p.raw_y, p.smooth_y) if a is not None], log=log_y)
    for name in ("yaxis",) if overlay else ("yaxis", "yaxis2"):
        layout[name].update({"type": "log"} if log_y else {}, **({"range": rng} if rng is not None else {}))
    notes = layout.setdefault("annotations", [])
    bottom = STRIP_SHARE + STRIP_GAP if strip else 0.0
    for side, centre in ([(None, 0.5)] if overlay else [(0, 0.24), (1, 0.76)]):
        mine = [p for c, p in zip(curves, prepared) if side is None or c.side == side]
        if not mine and curves:
            notes.append(_note(f"{label(tag, MAX_TAG_CHARS)} is not logged on this side", centre, (1 + bottom) / 2))
        elif mine and step_range is not None and all(p.total == 0 for p in mine):
            lo, hi = step_range
            unit = X_AXES[x_axis] if x_axis in MAPPED_AXES else "step"
            notes.append(_note(f"no points between {unit} {_number(lo)} and {_number(hi)}", centre,
                               (1 + bottom) / 2))
    if strip and not any_common:
        notes.append(_note("no steps logged by both sides to subtract", 0.5, STRIP_SHARE / 2))
    return go.Figure({"data": traces, "layout": layout}, _validate=False)


def _layout(tag: str, note: str, legend: bool, overlay: bool, strip: bool, x_axis: str, height: int,
            titles: tuple[str, str]) -> dict:
    """Everything but the data: title, axes (and the strip's), panel titles, legend, drag to select."""
    top = TITLE_PX + (NOTE_PX if note else 0) + (0 if overlay else PANEL_TITLE_PX)
    title = {"text": label(tag, MAX_TAG_CHARS), "x": 0, "xanchor": "left", "xref": "container", "y": 1,
             "yanchor": "top", "yref": "container", "pad": {"t": 8, "l": 10}}
    if note:
        title["subtitle"] = {"text": note, "font": {"size": 11, "color": "#666"}}
    layout = {"template": line_template(), "title": title,
              "height": height + (LEGEND_PX if legend else 0) + (STRIP_PX if strip else 0),
              "hovermode": "x unified", "showlegend": legend,
              # A drag selects an x range (the page zooms to it at full resolution) instead of
              # zooming plotly's view of the points already sent.
              "dragmode": "select", "selectdirection": "h",
              "margin": {"l": 10, "r": 10, "t": top, "b": 8},
              "legend": {"orientation": "h", "xref": "container", "x": 0.01, "xanchor": "left",
                         "yref": "container", "y": 0, "yanchor": "bottom"}}
    x_title = {"title": {"text": X_AXES.get(x_axis, x_axis)}, "automargin": True}
    low = STRIP_SHARE + STRIP_GAP if strip else 0.0  # the panels sit above the strip and its gap
    width = 1.0 if overlay else (1 - 0.03) / 2  # what make_subplots(1, 2, horizontal_spacing=0.03) lays out
    spans = [[0.0, 1.0]] if overlay else [[0.0, width], [1 - width, 1.0]]
    for i, span in enumerate(spans):
        n = "" if i == 0 else "2"
        layout[f"xaxis{n}"] = {**(x_title if not strip else {"automargin": True}), "anchor": f"y{n}",
                               "domain": span, **({"matches": "x"} if i else {})}  # zoom together
        layout[f"yaxis{n}"] = {"anchor": f"x{n}", "domain": [low, 1.0],
                               **({"matches": "y", "showticklabels": False} if i else {})}
        if strip:
            s = str(3 + i)
            layout[f"xaxis{s}"] = {**x_title, "anchor": f"y{s}", "domain": span, "matches": "x"}
            layout[f"yaxis{s}"] = {"anchor": f"x{s}", "domain": [0.0, STRIP_SHARE], "zeroline": True,
                                   "zerolinecolor": "#999", "nticks": 4,
                                   **({"showticklabels": False} if i else
                                      {"title": {"text": "Δ", "font": {"size": 12}}})}
    if not overlay:
        layout["annotations"] = [{"text": label(text), "x": sum(span) / 2, "y": 1.0, "xref": "paper",
                                  "yref": "paper", "xanchor": "center", "yanchor": "bottom", "yshift": 4,
                                  "showarrow": False, "font": {"size": 15}}
                                 for text, span in zip(titles, spans)]
    return layout
