"""A model graph as a plotly figure: readable at its default zoom, panned and zoomed in the browser.

Nodes are boxes (scopes: rectangles with a "+", ops: ellipses) drawn as filled polygons in data
units, so they grow and shrink with the zoom; labels are text in pixels, so they stay 12 px. The
axes are locked to SLOT_PX pixels per slot and LAYER_PX per layer (`scaleanchor`): at the default
zoom a slot holds a LABEL_CHARS-character label, and the figure opens at that scale on the part of
the graph that matters (the search match, the scope just opened, else the top), never shrunk to
fit. Every node is a point of the trace named NODES_TRACE whose customdata is its name: that is
what a click reports back (`clicked_scope`).
"""
from __future__ import annotations

import math
from typing import Collection, Iterable, Mapping

import plotly.graph_objects as go

from twinboard.graphs.layout import Layout, layered_layout
from twinboard.graphs.model import Graph
from twinboard.graphs.view import FILL, node_kind, short_name
from twinboard.text import html

SLOT_PX, LAYER_PX = 160, 92  # screen pixels per slot (x unit) and per layer (y unit) at the default zoom
BOX_W, BOX_H = 0.86, 0.5  # a node's box, in slots and layers: 138 x 46 px, two lines of 12 px text
FONT_PX, EDGE_FONT_PX = 12, 10
LABEL_CHARS = 19  # at 12 px Helvetica (about 6.5 px a character) 19 characters fill 124 of 138 px
TWIN_GAP = 0.05  # slots (8 px) between an edge and its twin going the other way
EDGE_LABELS_MAX = 60  # shapes written on edges up to this many edges; hover shows them always
MIN_HEIGHT, MAX_HEIGHT = 300, 760  # px; a taller graph is panned, not shrunk
MARGIN = {"l": 4, "r": 4, "t": 8, "b": 36}  # the legend sits below: the chart's toolbar shows at the top
NODES_TRACE = "nodes"
TEXT, MUTED, EDGE, CONTROL = "#263238", "#546e7a", "#78909c", "#b0bec5"
LINE = {"group": ("#1e88e5", 2.0), "op": ("#90a4ae", 1.0), "param": ("#66bb6a", 1.0),
        "io": ("#fb8c00", 1.5), "missing": ("#e53935", 1.5)}
NAMES = {"group": "scope (click to open)", "op": "op", "param": "parameter", "io": "input / output",
         "missing": "missing input"}
MATCH_FILL, MATCH_LINE = "#ffd54f", "#e65100"
# A click selects a point, and plotly then fades every unselected point of every trace: arrows and
# edge labels keep their look (a click is a command here, not a selection to show).
KEEP_LOOK = {"selected": {"marker": {"opacity": 1}, "textfont": {"color": MUTED}},
             "unselected": {"marker": {"opacity": 1}, "textfont": {"color": MUTED}}}


def _outline(x: float, y: float, rect: bool) -> tuple[list[float], list[float]]:
    """A closed polygon around (x, y): the box of a scope, or an ellipse (24 sides) for an op."""
    w, h = BOX_W / 2, BOX_H / 2
    if rect:
        return [x - w, x + w, x + w, x - w, x - w], [y - h, y - h, y + h, y + h, y - h]
    angles = [2 * math.pi * k / 24 for k in range(25)]
    return [x + w * math.cos(a) for a in angles], [y + h * math.sin(a) for a in angles]


def _boundary(p: tuple[float, float], q: tuple[float, float], rect: bool) -> tuple[float, float]:
    """Where the segment p -> q enters the box or ellipse around q (data units, y up)."""
    dx, dy = q[0] - p[0], q[1] - p[1]
    w, h = BOX_W / 2, BOX_H / 2
    if rect:
        t = min(w / abs(dx) if dx else math.inf, h / abs(dy) if dy else math.inf)
    else:
        t = 1 / math.hypot(dx / w, dy / h) if (dx or dy) else 0.0
    t = min(t, 1.0)
    return q[0] - t * dx, q[1] - t * dy


def _angle(p: tuple[float, float], q: tuple[float, float]) -> float:
    """Screen angle of p -> q in degrees clockwise from up (plotly's marker.angle for "arrow")."""
    return math.degrees(math.atan2((q[0] - p[0]) * SLOT_PX, (q[1] - p[1]) * LAYER_PX))


def _hover(row, kind: str) -> str:
    out = f" · out {row['shape']}" if row["shape"] else ""
    if kind == "group":
        ops = (row["attrs"] or {}).get("op types")
        lines = [f"scope · {row['count']} ops{out}", *([str(ops)] if ops else []), "click to open one level"]
    else:
        lines = [f"{row['op']}{out}", *([str(row["device"])] if row["device"] else [])]
    return "<br>".join([f"<b>{_escape(row['name'])}</b>", *map(_escape, lines)])


def _escape(text: str) -> str:
    # plotly renders a subset of HTML in text; names come from event files (anyone's upload), so any
    # tag-like text (and a `%{...}` field) in them is shown as text
    return html(text, limit=None)


def _label(row, kind: str, marked: bool) -> str:
    name = _escape(short_name(row["name"], LABEL_CHARS))
    if kind == "group":
        name, detail = "+ " + name, f"{row['count']} op" + ("s" if row["count"] != 1 else "")
    else:
        detail = "" if short_name(row["name"], LABEL_CHARS) == row["op"] else short_name(row["op"], LABEL_CHARS)
    name = f"<b>{name}</b>" if marked else name
    return name + (f"<br><span style='color:{MUTED}'>{_escape(detail)}</span>" if detail else "")


def view_window(layout: Layout, focus: Iterable[str], height: int) -> tuple[list[float], list[float]]:
    """Initial x and y ranges: centred on the focus nodes (else the top of the graph), at LAYER_PX per
    layer; the x range is a 1-slot seed that plotly widens to the chart's width at SLOT_PX per slot."""
    rows = (height - MARGIN["t"] - MARGIN["b"]) / LAYER_PX  # layers the plot area shows
    focus = [n for n in focus if n in layout.x]
    top, bottom = 0.6, -(layout.depth - 1) - 0.6
    if focus:
        cy = -sum(layout.layer[n] for n in focus) / len(focus)
        y0 = min(top, max(bottom + rows, cy + rows / 2))
    else:
        y0 = top
    y1 = y0 - rows
    shown = focus or [n for n, k in layout.layer.items() if y1 <= -k <= y0]
    cx = sum(layout.x[n] for n in shown) / len(shown) if shown else 0.0
    return [cx - 0.5, cx + 0.5], [y1, y0]


def _edge_traces(graph: Graph, layout: Layout, kind: Mapping[str, str]) -> list[go.Scatter]:
    """Data edges (solid), control edges (dotted), their arrowheads at the target's outline, and a point
    mid-edge per edge that shows its tensor shape on hover (and as text when there are few edges)."""
    lines: dict[bool, tuple[list, list]] = {False: ([], []), True: ([], [])}
    tip_x, tip_y, tip_angle = [], [], []
    mid_x, mid_y, mid_text, mid_side, mid_hover = [], [], [], [], []
    src_dst = list(zip(graph.edges["src"], graph.edges["dst"]))
    pairs = set(src_dst)
    shapes = graph.edges["shape"] if "shape" in graph.edges.columns else [""] * len(src_dst)
    for (src, dst), control, shape, route in zip(src_dst, graph.edges["control"], shapes, layout.routes):
        if not route:
            continue  # a self loop: nothing to draw between a node and itself
        # an edge with a twin going back (a torch scope that calls a layer and gets its output) is
        # moved aside, one to each side, so both arrows and both shapes show
        side = (1 if src < dst else -1) if (dst, src) in pairs else 0
        route = [(x + side * TWIN_GAP, -y) for x, y in route]
        tip = _boundary(route[-2], route[-1], kind[dst] == "group")
        xs, ys = lines[bool(control)]
        xs.extend([p[0] for p in route[:-1]] + [tip[0], None])
        ys.extend([p[1] for p in route[:-1]] + [tip[1], None])
        tip_x.append(tip[0])
        tip_y.append(tip[1])
        tip_angle.append(_angle(route[-2], route[-1]))
        j = (len(route) - 2) // 2  # the middle segment, which lies in the gap between two layers
        # twins' shapes at different heights: edges meeting at one hub leave room for one label each
        f = 0.5 if not side else 0.38 if side > 0 else 0.62
        t = f if route[j][1] >= route[j + 1][1] else 1 - f  # f of the way down from the upper end
        mid_x.append(route[j][0] + t * (route[j + 1][0] - route[j][0]))
        mid_y.append(route[j][1] + t * (route[j + 1][1] - route[j][1]))
        shape = "" if control else str(shape)
        mid_text.append(_escape(shape))
        mid_side.append("middle left" if side < 0 else "middle right")
        mid_hover.append("<br>".join([_escape(f"{src} → {dst}"), *([_escape(shape)] if shape else []),
                                      *(["control dependency"] if control else [])]))
    traces = [go.Scatter(x=xs, y=ys, mode="lines", hoverinfo="skip", showlegend=False,
                         line={"color": CONTROL if control else EDGE, "width": 1.2,
                               "dash": "dot" if control else "solid"})
              for control, (xs, ys) in lines.items() if xs]
    if tip_x:
        traces.append(go.Scatter(x=tip_x, y=tip_y, mode="markers", hoverinfo="skip", showlegend=False,
                                 marker={"symbol": "arrow", "size": 10, "angle": tip_angle, "color": EDGE},
                                 **KEEP_LOOK))
        show = len(src_dst) <= EDGE_LABELS_MAX
        traces.append(go.Scatter(x=mid_x, y=mid_y, mode="markers+text" if show else "markers", name="edges",
                                 text=mid_text, textposition=mid_side, hovertext=mid_hover,
                                 hovertemplate="%{hovertext}<extra></extra>", showlegend=False,
                                 textfont={"size": EDGE_FONT_PX, "color": MUTED},
                                 marker={"size": 8, "color": "rgba(0,0,0,0)"}, **KEEP_LOOK))
    return traces


def graph_figure(graph: Graph, highlight: Collection[str] = (), focus: Iterable[str] = ()) -> go.Figure:
    """The graph (collapsed or not) drawn top to bottom; `highlight` names are drawn as search matches,
    `focus` names are where the view opens."""
    nodes = graph.nodes
    layout = layered_layout(list(nodes["name"]), zip(graph.edges["src"], graph.edges["dst"]))
    groups = nodes["group"] if "group" in nodes.columns else [False] * len(nodes)
    counts = nodes["count"] if "count" in nodes.columns else [1] * len(nodes)
    rows = [dict(r, group=bool(g), count=int(c)) for r, g, c in zip(nodes.to_dict("records"), groups, counts)]
    kind = {r["name"]: node_kind(r["op"], r["group"]) for r in rows}
    marked = set(highlight) & set(kind)
    pos = {n: (layout.x[n], -float(layout.layer[n])) for n in kind}
    fig = go.Figure(_edge_traces(graph, layout, kind))

    for k in ("group", "io", "param", "op", "missing"):
        names = [n for n in kind if kind[n] == k]
        if names:
            fig.add_trace(_boxes(names, pos, k == "group", FILL[k], *LINE[k], NAMES[k], k == "missing"))
    if marked:
        fig.add_trace(_boxes(sorted(marked), pos, False, MATCH_FILL, MATCH_LINE, 3.0, "search match", False,
                             rect_of={n: kind[n] == "group" for n in marked}))
    fig.add_scatter(
        x=[pos[r["name"]][0] for r in rows], y=[pos[r["name"]][1] for r in rows], name=NODES_TRACE,
        mode="markers+text", showlegend=False, customdata=[r["name"] for r in rows],
        text=[_label(r, kind[r["name"]], r["name"] in marked) for r in rows],
        hovertext=[_hover(r, kind[r["name"]]) for r in rows], hovertemplate="%{hovertext}<extra></extra>",
        textposition="middle center", textfont={"size": FONT_PX, "color": TEXT, "family": "Helvetica, Arial, sans-serif"},
        marker={"size": 40, "color": "rgba(0,0,0,0)"},  # invisible: a wide target for hover and click
        selected={"textfont": {"color": TEXT}}, unselected={"textfont": {"color": TEXT}})

    height = int(min(MAX_HEIGHT, max(MIN_HEIGHT, layout.depth * LAYER_PX + MARGIN["t"] + MARGIN["b"] + 12)))
    xrange, yrange = view_window(layout, focus, height)
    axis = {"showgrid": False, "zeroline": False, "showticklabels": False, "title": None}
    fig.update_layout(
        height=height, margin=MARGIN, dragmode="pan", hovermode="closest", hoverdistance=30,
        plot_bgcolor="#ffffff", showlegend=True,
        legend={"orientation": "h", "x": 0, "y": 0, "yanchor": "top", "font": {"size": 12}},
        xaxis={**axis, "range": xrange},
        yaxis={**axis, "range": yrange, "scaleanchor": "x", "scaleratio": LAYER_PX / SLOT_PX})
    return fig


def _boxes(names: list[str], pos: Mapping[str, tuple[float, float]], rect: bool, fill: str, line: str,
           width: float, legend: str, dashed: bool, rect_of: Mapping[str, bool] | None = None) -> go.Scatter:
    """One trace of filled outlines (None between them), so hundreds of nodes cost one SVG path."""
    xs: list[float | None] = []
    ys: list[float | None] = []
    for n in names:
        ox, oy = _outline(*pos[n], rect if rect_of is None else rect_of[n])
        xs += [*ox, None]
        ys += [*oy, None]
    return go.Scatter(x=xs, y=ys, mode="lines", fill="toself", fillcolor=fill, name=legend, hoverinfo="skip",
                      line={"color": line, "width": width, "dash": "dash" if dashed else "solid"})


def clicked_scope(points: Iterable[Mapping], expandable: Collection[str]) -> str | None:
    """The first clicked point (a chart selection's points) that is a scope one can open, else None."""
    for p in points:
        data = p.get("customdata")
        if isinstance(data, (list, tuple)):
            data = data[0] if data else None
        if isinstance(data, str) and data in expandable:
            return data
    return None


def focus_nodes(names: Iterable[str], highlight: Collection[str], expanded: list[str]) -> list[str]:
    """Where to open the view: the search match, else the nodes of the scope opened last, else none."""
    names = list(names)
    if highlight:
        return [n for n in names if n in highlight]
    if expanded:
        inside = expanded[-1] + "/"
        return [n for n in names if n.startswith(inside)]
    return []
