"""Embeddings: the same validation samples as PyTorch and TensorFlow represent them, side by side."""
from __future__ import annotations

import numpy as np
import pandas as pd
import streamlit as st

from pages.common import side_label
from pages.pair_picker import pick_pair
from twinboard import embeddings
from twinboard.text import code, md

METHODS = ("PCA 2-D", "PCA 3-D", "t-SNE 2-D", "t-SNE 3-D")
NONE = "(none)"
K = 10  # neighbours for the k-NN overlap


@st.cache_data(show_spinner="Reading embeddings…", max_entries=32)
def _load(path: str, sig: tuple) -> tuple[list[embeddings.Embedding], list[str]]:
    # sig (the configs' mtimes and sizes) is in the key so a new export is read again.
    found = embeddings.read_embeddings(path)
    return list(found), [p.message for p in found.problems()]


@st.cache_data(show_spinner="Projecting…", max_entries=64)
def _project(path: str, sig: tuple, name: str, method: str, perplexity: float, max_iter: int,
             cap: int) -> tuple[np.ndarray, np.ndarray, tuple[float, ...], int]:
    """(shown sample indices, coords, explained variance, N) for one run, step and parameters."""
    emb = next(e for e in _load(path, sig)[0] if e.name == name)
    idx = embeddings.subsample(emb.n, cap)
    dims = 3 if "3-D" in method else 2
    x = emb.tensor[idx]
    if method.startswith("PCA"):
        proj = embeddings.pca(x, dims)
    else:
        proj = embeddings.tsne(x, dims, perplexity=perplexity, max_iter=max_iter)
    return idx, proj.coords, proj.explained, emb.n


@st.cache_data(show_spinner="Comparing the two sides…", max_entries=32)
def _similarity(lpath: str, lsig: tuple, rpath: str, rsig: tuple) -> pd.DataFrame:
    return embeddings.similarity_by_step(_load(lpath, lsig)[0], _load(rpath, rsig)[0], k=K)


def _pick_from_chart(chart_key: str) -> None:
    """A point clicked in either chart becomes the chosen sample (highlighted in both)."""
    points = (st.session_state.get(chart_key) or {}).get("selection", {}).get("points", [])
    for p in points:
        data = p.get("customdata")
        if isinstance(data, list):
            data = data[0] if data else None
        if data is not None:
            st.session_state["emb_sample"] = int(data)
            return


def main() -> None:
    st.title("Embeddings")
    st.caption("Last hidden layer activations of one fixed validation subset (same samples, same order, "
               "on both sides), as exported at each step in the run's `embedding_steps` and at the end.")
    pair = pick_pair("emb")
    if pair is None:
        return
    sides = []
    try:
        for run in pair.runs:
            sig = embeddings.signature(run.path)
            found, skipped = _load(str(run.path), sig)
            sides.append((run, sig, found))
            for msg in skipped:
                st.warning(f"{md(side_label(run), 100)}: skipped embedding {md(msg, 1000)}")
    except embeddings.EmbeddingError as e:
        st.error(md(e, 1000))
        return
    if not any(found for _, _, found in sides):
        st.info("Neither run has exported embeddings yet (they appear after training, or at the steps "
                "in the spec's `embedding_steps`).")
        return

    tags = sorted({e.tag for _, _, found in sides for e in found})
    tag = st.sidebar.selectbox("Embedding", tags, key="emb_tag") if len(tags) > 1 else tags[0]
    by_side = [{e.step: e for e in found if e.tag == tag} for _, _, found in sides]
    steps = sorted({s for d in by_side for s in d}, key=lambda s: -1 if s is None else s)
    step = st.sidebar.selectbox("Step", steps, index=len(steps) - 1, key="emb_step",
                                format_func=lambda s: "—" if s is None else f"{s:,}")
    method = st.sidebar.radio("Projection", METHODS, key="emb_method")
    perplexity, max_iter = 30.0, 500
    if method.startswith("t-SNE"):
        perplexity = float(st.sidebar.slider("Perplexity", 2, 100, 30, key="emb_perplexity"))
        max_iter = int(st.sidebar.slider("Iterations", 250, 2000, 500, step=250, key="emb_iter"))
    cap = int(st.sidebar.number_input("Points per chart (at most)", 50, 20000, 2000, step=250,
                                      key="emb_cap", help="A seeded subsample, the same samples on both sides."))
    chosen = [d.get(step) for d in by_side]
    present = [e for e in chosen if e is not None]
    columns = list(dict.fromkeys(c for e in present for c in e.metadata.columns))
    default_col = columns.index("label") + 1 if "label" in columns else (1 if columns else 0)
    color_by = st.sidebar.selectbox("Colour by", [NONE] + columns, index=default_col, key="emb_color")
    color_by = None if color_by == NONE else color_by
    spec = embeddings.color_spec(color_by, *[e.metadata[color_by] for e in present
                                               if color_by in e.metadata])
    label_col = "label" if "label" in columns else color_by
    labels = sorted({str(v) for e in present if label_col in e.metadata for v in e.metadata[label_col]},
                    key=embeddings.value_sort_key)
    hl_label = st.sidebar.selectbox(f"Highlight {md(label_col or 'label', 100)}", [NONE] + labels,
                                    key="emb_hl_label")  # a metadata column's name: text in the label
    ref = present[0]
    sample_names = {i: f"#{i}" + (f" · {label_col} {ref.metadata[label_col].iloc[i]}"
                                  if label_col in ref.metadata else "") for i in range(ref.n)}
    if st.session_state.get("emb_sample") not in (None, NONE) and st.session_state["emb_sample"] not in sample_names:
        st.session_state["emb_sample"] = NONE  # a new step or run with fewer samples
    sample = st.sidebar.selectbox("Sample", [NONE] + list(sample_names), key="emb_sample",
                                  format_func=lambda i: i if i == NONE else sample_names[i])
    sample = None if sample == NONE else int(sample)

    results = []
    for (run, sig, _), emb in zip(sides, chosen):
        results.append(None if emb is None else
                       _project(str(run.path), sig, emb.name, method, perplexity, max_iter, cap))
    aligned = _align(results, method)

    cols = st.columns(2)
    for side, (col, (run, _, _), emb, res) in enumerate(zip(cols, sides, chosen, aligned)):
        with col:
            if res is None:
                st.info(f"{md(side_label(run), 100)} ({code(run.name)}) has no embedding {code(tag)} at step {step}.")
                continue
            idx, coords, explained, n = res
            values = emb.metadata[color_by].iloc[idx] if color_by in emb.metadata else None
            hl = None
            if hl_label != NONE and label_col in emb.metadata:
                hl = (emb.metadata[label_col].iloc[idx].astype(str) == hl_label).to_numpy()
            shown = f"{len(idx):,} of {n:,} points" if len(idx) < n else f"all {n:,} points"
            title = f"{side_label(run)} · {method} · step {step} · showing {shown}"  # text: the figure escapes it
            fig = embeddings.projection_figure(
                coords, idx, values, spec, embeddings.hover_texts(emb.metadata, emb.images, idx),
                title, embeddings.axis_titles(method, explained), highlight=hl, selected=sample)
            key = f"emb_chart_{side}"
            st.plotly_chart(fig, key=key, on_select=lambda k=key: _pick_from_chart(k),
                            selection_mode="points", width="stretch")
            st.caption(f"{code(run.name)} · {emb.tensor.shape[1]} dimensions")
    st.caption(embeddings.alignment_note(method))
    if sample is not None:
        _sample_details(sides, chosen, sample)
    _similarity_section(sides, step)


def _align(results: list, method: str) -> list:
    """Right side made comparable to the left on the same samples: PCA signs, t-SNE orientation."""
    left, right = results
    if left is None or right is None or not np.array_equal(left[0], right[0]):
        return results
    fix = embeddings.flip_to_match if method.startswith("PCA") else embeddings.procrustes
    return [left, (right[0], fix(left[1], right[1]), right[2], right[3])]


def _sample_details(sides, chosen, sample: int) -> None:
    st.subheader(f"Sample #{sample}")
    img_col, table_col = st.columns([1, 3])
    images = next((e.images for e in chosen if e is not None and e.images is not None), None)
    if images is not None and sample < len(images):
        big = np.kron(images[sample], np.ones((16, 16)))  # 8x8 -> 128x128, crisp pixels
        img_col.image(np.clip(big, 0, 1), caption="input image", clamp=True)
    rows = []
    for (run, _, _), emb in zip(sides, chosen):
        if emb is not None and sample < emb.n:
            rows.append({"side": side_label(run), **emb.metadata.iloc[sample].to_dict()})
    table_col.dataframe(pd.DataFrame(rows), hide_index=True)


def _similarity_section(sides, step) -> None:
    st.subheader("How alike are the two embeddings?")
    (lrun, lsig, _), (rrun, rsig, _) = sides
    frame = _similarity(str(lrun.path), lsig, str(rrun.path), rsig)
    view = embeddings.similarity_view(frame, step)
    if view.step is not None:
        a, b = st.columns(2)
        a.metric(f"Linear CKA at step {embeddings.step_text(view.step)}", f"{view.cka:.3f}")
        b.metric(f"{K}-NN overlap at step {embeddings.step_text(view.step)}", f"{view.knn_overlap:.3f}")
    if view.note:
        st.info(view.note, icon=":material/timeline:")
    if view.chart:
        st.plotly_chart(embeddings.similarity_figure(frame, K, step), key="emb_similarity", width="stretch")
    if len(frame):
        st.caption(embeddings.similarity_caption(int(frame["n"].max()), K))


main()
