"""Plotly figures for the Embeddings page; pure: arrays and frames in, figures out.

Both sides of a pair are drawn with one `ColorSpec` built from both sides' values, so a label has
the same colour left and right. Every point carries its sample index as customdata, which is what a
chart selection reports back to the page. Metadata values, column names and titles are plain text
(projector metadata comes from uploads): the figures escape them for plotly (`twinboard.text.html`).
"""
from __future__ import annotations

from dataclasses import dataclass, field

import numpy as np
import pandas as pd
import plotly.graph_objects as go
from plotly.colors import qualitative

from twinboard.text import html

PALETTE = qualitative.Plotly + qualitative.D3 + qualitative.Alphabet
RAMP = ("\u00a0\u00a0", "░░", "▒▒", "▓▓", "██")  # 2 chars per pixel: tiles look square in monospace
DIM, HIGHLIGHT_LINE = 0.15, "#111111"


@dataclass(frozen=True)
class ColorSpec:
    column: str | None  # the metadata column coloured by; None: one colour
    kind: str  # "category" (a colour per value), "continuous" (a shared colour scale) or "none"
    colors: dict[str, str] = field(default_factory=dict)  # category value -> colour, in legend order
    cmin: float = 0.0  # continuous: the scale's ends, shared by both sides
    cmax: float = 1.0


def value_sort_key(value: str) -> tuple:
    try:
        return (0, float(value), "")
    except ValueError:
        return (1, 0.0, value)


def color_spec(column: str | None, *values: pd.Series) -> ColorSpec:
    """One colour assignment for the given column on every side; numbers with >12 values get a scale."""
    if column is None:
        return ColorSpec(None, "none")
    seen = sorted({str(v) for s in values for v in s}, key=value_sort_key)
    numeric = all(value_sort_key(v)[0] == 0 for v in seen)
    if numeric and len(seen) > 12:
        nums = [float(v) for v in seen]
        return ColorSpec(column, "continuous", cmin=min(nums), cmax=max(nums))
    return ColorSpec(column, "category", {v: PALETTE[i % len(PALETTE)] for i, v in enumerate(seen)})


def digit_art(image: np.ndarray) -> str:
    """An [h, w] image in [0, 1] as block characters, one hover line per pixel row."""
    levels = np.clip((np.asarray(image) * (len(RAMP) - 1)).round().astype(int), 0, len(RAMP) - 1)
    return "<br>".join("".join(RAMP[v] for v in row) for row in levels)


def hover_texts(metadata: pd.DataFrame, images: np.ndarray | None, index: np.ndarray) -> list[str]:
    """Per shown point: its sample number, every metadata column and, for images, the pixels as text;
    plotly text (shown through `%{text}`), the metadata escaped."""
    cols = list(metadata.columns)
    out = []
    for i in index:
        lines = [f"<b>sample #{int(i)}</b>"]
        if cols:
            row = metadata.iloc[int(i)]
            lines += [f"{html(c, 100)}: {html(row[c], 200)}" for c in cols]
        if images is not None:
            lines.append(digit_art(images[int(i)]))
        out.append("<br>".join(lines))
    return out


def _scatter(coords: np.ndarray, dims: int, **kw) -> go.BaseTraceType:
    if dims == 3:
        marker = kw.pop("marker")
        marker["size"] = max(2, marker.get("size", 6) - 3)
        return go.Scatter3d(x=coords[:, 0], y=coords[:, 1], z=coords[:, 2], mode="markers",
                            marker=marker, **kw)
    return go.Scatter(x=coords[:, 0], y=coords[:, 1], mode="markers", **kw)


def projection_figure(coords: np.ndarray, index: np.ndarray, values: pd.Series | None,
                      spec: ColorSpec, hover: list[str], title: str, axis_titles: list[str],
                      highlight: np.ndarray | None = None, selected: int | None = None,
                      height: int = 480) -> go.Figure:
    """Scatter of shown points (coords[j] is sample index[j]) in 2-D or 3-D.

    values: the colouring column for the shown points. highlight: bool per shown point (a chosen
    label); the rest are dimmed. selected: a sample index, drawn as a large outlined diamond.
    """
    coords = np.asarray(coords, dtype=np.float64)
    dims = coords.shape[1]
    index = np.asarray(index)
    hover = np.asarray(hover, dtype=object)
    dimmed = highlight is not None and bool(np.any(highlight))
    fig = go.Figure()
    base_opacity = DIM if dimmed else 0.85
    common = dict(hovertemplate="%{text}<extra></extra>")
    if spec.kind == "category" and values is not None:
        vals = values.astype(str).to_numpy()
        for value, colour in spec.colors.items():
            m = vals == value
            if not m.any():
                continue
            fig.add_trace(_scatter(coords[m], dims, name=html(value, 100), legendgroup=html(value, None), text=hover[m],
                                   customdata=index[m], opacity=base_opacity,
                                   marker=dict(color=colour, size=7), **common))
    elif spec.kind == "continuous" and values is not None:
        nums = pd.to_numeric(values, errors="coerce").to_numpy()
        fig.add_trace(_scatter(coords, dims, name=html(spec.column, 100), text=hover, customdata=index,
                               opacity=base_opacity, showlegend=False,
                               marker=dict(color=nums, cmin=spec.cmin, cmax=spec.cmax, size=7,
                                           colorscale="Viridis", showscale=True,
                                           colorbar=dict(title=html(spec.column, 100))), **common))
    else:
        fig.add_trace(_scatter(coords, dims, name="samples", text=hover, customdata=index,
                               opacity=base_opacity, showlegend=False,
                               marker=dict(color=PALETTE[0], size=7), **common))
    if dimmed:
        m = np.asarray(highlight, dtype=bool)
        colours = _point_colours(values[m] if values is not None else None, spec, int(m.sum()))
        fig.add_trace(_scatter(coords[m], dims, name="highlighted", text=hover[m], customdata=index[m],
                               marker=dict(color=colours, size=9,
                                           line=dict(color=HIGHLIGHT_LINE, width=1)), **common))
    if selected is not None and selected in set(index.tolist()):
        j = int(np.flatnonzero(index == selected)[0])
        fig.add_trace(_scatter(coords[j:j + 1], dims, name=f"sample #{selected}", text=hover[j:j + 1],
                               customdata=index[j:j + 1],
                               marker=dict(color="rgba(0,0,0,0)", size=18, symbol="diamond",
                                           line=dict(color=HIGHLIGHT_LINE, width=3)), **common))
    fig.update_layout(title=dict(text=html(title), font=dict(size=14)), height=height,
                      margin=dict(l=10, r=10, t=60, b=10), legend=dict(itemsizing="constant"),
                      hoverlabel=dict(font=dict(family="monospace", size=11)),
                      legend_title_text=html(spec.column or "", 100))
    if dims == 3:
        fig.update_layout(scene=dict(xaxis_title=axis_titles[0], yaxis_title=axis_titles[1],
                                     zaxis_title=axis_titles[2], aspectmode="data"))
    else:
        fig.update_xaxes(title_text=axis_titles[0], zeroline=False)
        fig.update_yaxes(title_text=axis_titles[1], zeroline=False, scaleanchor="x", scaleratio=1)
    return fig


def _point_colours(values: pd.Series | None, spec: ColorSpec, n: int) -> list[str] | str:
    if values is None or spec.kind == "none":
        return PALETTE[0]
    if spec.kind == "category":
        return [spec.colors.get(str(v), "#888888") for v in values]
    from plotly.colors import sample_colorscale

    span = (spec.cmax - spec.cmin) or 1.0
    nums = pd.to_numeric(values, errors="coerce").fillna(spec.cmin).to_numpy()
    return sample_colorscale("Viridis", list(np.clip((nums - spec.cmin) / span, 0, 1)))


def step_text(step: int | None) -> str:
    return "—" if step is None or pd.isna(step) else f"{int(step):,}"


@dataclass(frozen=True)
class SimilarityView:
    """What the similarity section shows for a `similarity_by_step` frame and the chosen step."""
    step: int | None  # the step the metrics are at; None: no metrics
    cka: float  # linear CKA at `step` (nan without metrics)
    knn_overlap: float  # k-NN overlap at `step`
    chart: bool  # a chart over the steps: only with two steps or more, one point is no curve
    note: str | None  # why there is no chart, and how to get one


MORE_STEPS = ("To follow it over training, export more steps: the RunSpec field `embedding_steps` "
              "(`twinboard launch --embedding-steps 100 200 …`, or **embedding steps** under Advanced "
              "in the Launch form); the final step is always exported.")


def similarity_view(frame: pd.DataFrame, step: int | None) -> SimilarityView:
    """Metrics at `step` when it was compared (else at the only compared step), a chart only when
    there are steps to draw it over."""
    steps = list(dict.fromkeys(frame["step"])) if len(frame) else []
    now = frame[frame["step"] == step] if step is not None else frame.iloc[0:0]
    if not len(now) and len(steps) == 1:
        now = frame.iloc[:1]
    at = now["step"].iloc[0] if len(now) else None
    cka, knn = (float(now["cka"].iloc[0]), float(now["knn_overlap"].iloc[0])) if len(now) else (np.nan, np.nan)
    if not steps:
        note = ("No step was exported on both sides with the same samples, so there is nothing to compare. "
                + MORE_STEPS)
    elif len(steps) == 1:
        note = (f"Only step {step_text(steps[0])} was exported on both sides: one number each, no curve. "
                + MORE_STEPS)
    else:
        note = None
    return SimilarityView(None if at is None or pd.isna(at) else int(at), cka, knn, len(steps) > 1, note)


def similarity_caption(n: int, k: int) -> str:
    """What the two similarity numbers mean, on `n` samples with `k` neighbours."""
    return (f"Per exported step, on the same {n:,} samples on both sides. Linear CKA (Kornblith et al. 2019) "
            "compares the centred activations' similarity structure: 1 when one side is a rotation or "
            f"uniform scaling of the other, near 0 for unrelated ones. {k}-NN overlap: the mean share of "
            f"each sample's {k} nearest neighbours (Euclidean, itself excluded) that both sides agree on.")


def alignment_note(method: str) -> str:
    """How the two sides' projections were made comparable (PCA signs, t-SNE orientation)."""
    if method.startswith("PCA"):
        return ("PCA by SVD of the centred activations. Signs: on each side the sample with the largest "
                "|score| on a component scores positive; then each TensorFlow component's sign is flipped "
                "where that raises its correlation with the PyTorch one (axes stay PC1, PC2, …).")
    return ("t-SNE (scikit-learn, PCA init, seed 0) on each side; the TensorFlow picture is then rotated/"
            "reflected onto the PyTorch one by orthogonal Procrustes (no scaling), since t-SNE axes "
            "carry no meaning.")


def axis_titles(method: str, explained: tuple[float, ...]) -> list[str]:
    """Axis titles of a projection: PCA components with their explained variance, or t-SNE 1-3."""
    if method.startswith("PCA"):
        return [f"PC{i + 1} ({v:.0%})" for i, v in enumerate(explained)]
    return [f"t-SNE {i + 1}" for i in range(3)]


def similarity_figure(frame: pd.DataFrame, k: int = 10, current_step: int | None = None) -> go.Figure:
    """Linear CKA and k-NN overlap over exported steps (columns tag, step, cka, knn_overlap), y in [0, 1]."""
    fig = go.Figure()
    tags = list(dict.fromkeys(frame["tag"])) if len(frame) else []
    for tag in tags:
        part = frame[frame["tag"] == tag].sort_values("step")
        suffix = f" ({html(tag, 100)})" if len(tags) > 1 else ""
        fig.add_trace(go.Scatter(x=part["step"], y=part["cka"], mode="lines+markers",
                                 name=f"linear CKA{suffix}", line=dict(color=PALETTE[0])))
        fig.add_trace(go.Scatter(x=part["step"], y=part["knn_overlap"], mode="lines+markers",
                                 name=f"{k}-NN overlap{suffix}", line=dict(color=PALETTE[1], dash="dot")))
    if not tags:
        fig.add_annotation(text="no step exported on both sides with the same samples",
                           showarrow=False, x=0.5, y=0.5, xref="paper", yref="paper")
    if current_step is not None and tags:
        fig.add_vline(x=current_step, line=dict(color="#999999", dash="dash"))
    fig.update_layout(title=dict(text="PyTorch vs TensorFlow: similarity of the same samples' embeddings",
                                 font=dict(size=14)),
                      height=320, margin=dict(l=10, r=10, t=50, b=10), hovermode="x unified")
    fig.update_xaxes(title_text="step")
    fig.update_yaxes(title_text="similarity (1 = same geometry)", range=[0, 1.05])
    return fig
