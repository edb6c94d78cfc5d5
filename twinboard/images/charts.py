"""Plotly figures for the Images page. Pure: numbers in, a figure out. Titles and side labels are
plain text (run names and tags come from uploads): the figures escape them (`twinboard.text.html`).

- confusion matrices as heatmaps with their counts written in, and the difference of two
  (left minus right) on a diverging scale centred on 0, so the cells where the sides part stand out;
- PR curves of one class, both sides on one axis (precision against recall);
- the agreement of two runs' predictions over the evaluation steps, with each side's accuracy.
"""
from __future__ import annotations

import numpy as np
import plotly.graph_objects as go

from twinboard.text import html, md

HEIGHT = 380  # px, a confusion matrix or the agreement chart
PR_HEIGHT = 300
AGREEMENT_COLOR = "#555555"  # neither framework's colour: agreement belongs to neither side


def _layout(fig: go.Figure, title: str, xtitle: str, ytitle: str, height: int = HEIGHT) -> go.Figure:
    fig.update_layout(title=dict(text=html(title), font=dict(size=14)), height=height,
                      margin=dict(l=50, r=20, t=50, b=40), xaxis_title=xtitle, yaxis_title=ytitle)
    return fig


def confusion_figure(matrix: np.ndarray, title: str, difference: bool = False) -> go.Figure:
    """A [C, C] matrix, rows the true class (class 0 on top), columns the predicted one; counts in
    the cells. `difference`: a left-minus-right matrix, red where left has more, blue where right has."""
    m = np.asarray(matrix)
    c = m.shape[0]
    ids = [str(k) for k in range(c)]
    peak = float(np.abs(m).max()) if m.size else 0.0
    if difference:
        scale = dict(colorscale="RdBu", reversescale=True, zmid=0, zmin=-max(peak, 1), zmax=max(peak, 1))
    else:
        scale = dict(colorscale="Blues", zmin=0, zmax=max(peak, 1))
    fig = go.Figure(go.Heatmap(
        z=m, x=ids, y=ids, text=m, texttemplate="%{text}" if c <= 20 else None, colorbar=dict(thickness=12),
        hovertemplate="true %{y}, predicted %{x}: %{z}<extra></extra>", **scale))
    fig.update_yaxes(autorange="reversed", type="category")
    fig.update_xaxes(type="category", side="bottom")
    return _layout(fig, title, "predicted class", "true class")


def pr_figure(sides: list[tuple[str, str, int, np.ndarray, np.ndarray]], title: str) -> go.Figure:
    """One class's PR curve from each side on one axis. `sides`: (label, colour, step, precision,
    recall) per side; the second dashed, so two equal curves both show."""
    fig = go.Figure()
    for k, (label, color, step, precision, recall) in enumerate(sides):
        name = html(label, 100)
        fig.add_trace(go.Scatter(
            x=recall, y=precision, mode="lines", name=f"{name}, step {step}",
            line=dict(color=color, width=2, dash="solid" if k == 0 else "dash"),
            hovertemplate=f"{name} step {step}<br>recall %{{x:.3f}}<br>precision %{{y:.3f}}<extra></extra>"))
    fig.update_xaxes(range=[0, 1.02])
    fig.update_yaxes(range=[0, 1.02])
    fig.update_layout(legend=dict(x=0.01, y=0.02, yanchor="bottom", bgcolor="rgba(255,255,255,0.7)"))
    return _layout(fig, title, "recall", "precision", PR_HEIGHT)


def agreement_figure(data: dict[str, np.ndarray], left: str, right: str, colors: tuple[str, str],
                     title: str = "Agreement over steps") -> go.Figure:
    """The share of validation predictions the two sides agree on at each evaluation step (solid,
    grey), and each side's validation accuracy from its saved predictions (dotted, its colour)."""
    fig = go.Figure()
    steps = data["step"]
    mode = "lines+markers" if len(steps) <= 30 else "lines"
    fig.add_trace(go.Scatter(x=steps, y=data["agreement"], mode=mode, name="agreement",
                             line=dict(color=AGREEMENT_COLOR, width=3),
                             hovertemplate="step %{x}<br>agree on %{y:.2%}<extra></extra>"))
    for key, label, color in (("accuracy_left", left, colors[0]), ("accuracy_right", right, colors[1])):
        name = html(f"{label} accuracy", 100)
        fig.add_trace(go.Scatter(x=steps, y=data[key], mode=mode, name=name, line=dict(color=color, dash="dot"),
                                 hovertemplate=f"{name}<br>step %{{x}}<br>%{{y:.2%}}<extra></extra>"))
    fig.update_yaxes(range=[0, 1.02], tickformat=".0%")
    if len(steps) <= 12:  # a few evaluations: tick each, no 22.5
        fig.update_xaxes(tickmode="array", tickvals=list(steps))
    else:
        fig.update_xaxes(tickformat="d")
    fig.update_layout(legend=dict(orientation="h", x=0, y=-0.2))
    return _layout(fig, title, "step", "share of validation predictions")


def defined_pr(data: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """(precision, recall) at the thresholds where the model predicts the class at all: above the
    highest probability TP + FP is 0 and TensorBoard's arithmetic gives precision 0, a point that
    would pull every curve down to the origin."""
    keep = (data[0] + data[1]) > 0
    return data[4][keep], data[5][keep]


def marked_chars(ids: np.ndarray, marks: set[int], vocab: np.ndarray | None) -> str:
    """Characters of `ids` as Markdown that shows them as text, those at positions `marks` on an
    orange background; a newline shows as ⏎, a space as a non-breaking one (Markdown would fold it)."""
    out = []
    for k, i in enumerate(ids.tolist()):
        ch = str(vocab[i]) if vocab is not None and 0 <= i < len(vocab) else f"<{i}>"
        ch = md({"\n": "⏎", " ": "\u00a0"}.get(ch, ch))
        out.append(f":orange-background[{ch}]" if k in marks else ch)
    return "".join(out)


def positions_by_sample(idx: np.ndarray, window: int) -> dict[int, set[int]]:
    """Flat positions (sample * window + position) grouped by sample, in the order first met."""
    by_sample: dict[int, set[int]] = {}
    for i in idx.tolist():
        by_sample.setdefault(i // window, set()).add(i % window)
    return by_sample


def class_order(tag: str) -> list:
    """Sort key of PR-curve tags: class_2 before class_10."""
    return [int(p) if p.isdigit() else p for p in tag.replace("_", "/").split("/")]
