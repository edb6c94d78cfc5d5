"""The Images page's four views, each drawing one thing for the two sides of a pair: the pictures
logged under each tag, the confusion matrices, the PR curves, and the samples the two sides'
predictions part on. Widget keys start with `img_`."""
from __future__ import annotations

from dataclasses import dataclass

import numpy as np
import streamlit as st

from pages.common import tag_filter
from twinboard import images, runs
from twinboard.text import code, md

MAX_SAMPLES = 48  # sample pictures a disagreement list shows (it says how many more)
SAMPLE_SCALE = 6  # image pixels a sample pixel (Streamlit would draw a small image blurred)
SAMPLE_WIDTH = 120  # px a sample is shown at: about eight to a row
PR_COLUMNS = 2


@dataclass(frozen=True)
class Side:
    run: runs.EventRun
    label: str  # 'PyTorch', 'TensorFlow' or a run's name: plain text
    color: str


def _step_slider(steps: list[int], key: str, label: str = "Step") -> int:
    if len(steps) == 1:
        st.caption(f"{label} {steps[0]} (the only one logged)")
        return steps[0]
    return st.select_slider(label, options=steps, value=steps[-1], key=key)


# --- pictures ---------------------------------------------------------------------------------------
def pictures(store: images.MediaStore, sides: list[Side]) -> None:
    tags = sorted(set(store.tags(sides[0].run.name)) | set(store.tags(sides[1].run.name)))
    if not tags:
        st.info(f"No images in {code(sides[0].run.name)} or {code(sides[1].run.name)} yet. The trainers write "
                "them at each evaluation of a classification task; the text task saves its predictions only "
                "(see *Where they disagree*). Other writers' `add_image`, `tf.summary.image` and Keras' "
                "`write_images` show here too.")
        return
    shown, pattern = tag_filter(tags, "img_filter", st, "Filter tags (regular expression)", "misclassified|confusion")
    if not shown:
        st.info(f"No image tag matches {code(pattern)}; there are {len(tags)}.")
        return
    records = {tag: [store.get(side.run.name, tag) for side in sides] for tag in shown}
    steps = sorted({r.step for pair in records.values() for recs in pair for r in recs})
    step = _step_slider(steps, "img_step")
    for tag, pair in records.items():
        st.markdown(f"**{md(tag)}**")
        for col, side, recs in zip(st.columns(2), sides, pair):
            record = images.nearest_record(recs, step)
            if record is None:
                col.info(f"{md(side.label)}: {code(tag)} is not logged in {code(side.run.name)}.")
                continue
            near = "" if record.step == step else " (nearest logged)"
            col.caption(f"{md(side.label)} · step {record.step}{near}")
            try:
                col.image([p.data for p in record.pictures],
                          caption=[md(f"{p.width} x {p.height} {p.format.upper()}") for p in record.pictures])
            except Exception as err:  # noqa: BLE001 - a damaged picture past its header: say so, go on
                col.warning(f"{code(tag)} at step {record.step} cannot be shown: {md(err, 300)}")
            if record.description:
                col.caption(md(record.description, 1500))


# --- confusion matrices ------------------------------------------------------------------------------
def no_predictions(sides: list[Side], found: list) -> None:
    missing = [side for side in sides if side.run not in [s.run for s, _ in found]]
    st.info(f"No saved predictions in {', '.join(code(s.run.name) for s in missing)}. The trainers save "
            "each validation sample's predicted class at every evaluation (classification tasks); uploaded "
            "event files carry none. The pictures they logged are under Pictures.")


def confusions(sides: list[Side], found: list[tuple[Side, images.Predictions]]) -> None:
    if not found:
        no_predictions(sides, found)
        return
    steps = sorted(set.intersection(*(set(p.steps) for _, p in found)))
    if not steps:
        st.info("The two runs saved predictions at no common step yet.")
        return
    step = _step_slider(steps, "img_cm_step")
    n_classes = 1 + max(int(p.labels.max(initial=0)) for _, p in found)
    try:
        preds = [saved.at(step)[0] for _, saved in found]
    except images.PredictionsError as err:
        st.warning(md(err, 1000), icon=":material/warning:")
        return
    n_classes = max([n_classes] + [1 + int(p.max(initial=0)) for p in preds])
    matrices = [images.confusion(saved.labels.ravel(), p.ravel(), n_classes) for (_, saved), p in zip(found, preds)]
    for (side, _), col, m in zip(found, st.columns(len(found)), matrices):
        acc = np.trace(m) / max(m.sum(), 1)
        col.plotly_chart(images.confusion_figure(m, f"{side.label} · step {step} · accuracy {acc:.1%}"),
                         key=f"img_cm_{side.run.name}", width="stretch")
    if len(matrices) == 2 and matrices[0].shape == matrices[1].shape:
        diff = matrices[0] - matrices[1]
        left, right = found[0][0].label, found[1][0].label
        st.columns(2)[0].plotly_chart(images.confusion_figure(diff, f"{left} minus {right} · step {step}",
                                                              difference=True), key="img_cm_diff", width="stretch")
        cells = int(np.count_nonzero(diff))
        st.caption(f"{cells} of {diff.size} cells differ at step {step}." if cells else
                   f"The two confusion matrices are equal at step {step}.")


# --- PR curves ---------------------------------------------------------------------------------------
def pr_curves(store: images.MediaStore, sides: list[Side]) -> None:
    found = [set(store.tags(side.run.name, images.PR_PLUGIN)) for side in sides]
    tags = sorted(found[0] | found[1], key=images.class_order)
    if not tags:
        st.info(f"No PR curves in {code(sides[0].run.name)} or {code(sides[1].run.name)} yet. The trainers write "
                "one a class at each evaluation (tasks with up to 20 classes).")
        return
    records = {tag: [store.get(side.run.name, tag) for side in sides] for tag in tags}
    steps = sorted({r.step for pair in records.values() for recs in pair for r in recs})
    step = _step_slider(steps, "img_pr_step")
    cols = st.columns(PR_COLUMNS)
    for k, (tag, pair) in enumerate(records.items()):
        drawn = [(side.label, side.color, r.step, *images.defined_pr(r.data))
                 for side, recs in zip(sides, pair) if (r := images.nearest_record(recs, step)) is not None]
        cols[k % PR_COLUMNS].plotly_chart(images.pr_figure(drawn, tag), key=f"img_pr_{tag}", width="stretch")


# --- where they disagree ------------------------------------------------------------------------------
def _sample_grid(saved: images.Predictions, idx: np.ndarray, captions: list[str]) -> None:
    if saved.images is None:
        return
    big = [saved.images[i].repeat(SAMPLE_SCALE, 0).repeat(SAMPLE_SCALE, 1) for i in idx]
    st.image(big, caption=[md(c, 300) for c in captions],  # captions are Markdown: run names as text
             width=SAMPLE_WIDTH)


def _samples(left: Side, a: images.Predictions, right: Side, c: images.Comparison, idx: np.ndarray,
             what: str) -> None:
    shown = idx[:MAX_SAMPLES]
    (pa, ca), (pb, cb) = c.left, c.right
    if a.labels.ndim == 1:
        captions = [f"#{i} · true {a.labels[i]} · {left.label} {pa[i]} ({ca[i]:.0%}) · "
                    f"{right.label} {pb[i]} ({cb[i]:.0%})" for i in shown.tolist()]  # plain text
        more = f" (the first {len(shown)} shown)" if len(idx) > len(shown) else ""
        st.caption(f"{md(what)}{more}:")
        _sample_grid(a, shown, captions)
        if a.images is None:
            st.text("\n".join(captions))
        return
    _sequences(left, a, right, c, idx, what)


def _sequences(left: Side, a: images.Predictions, right: Side, c: images.Comparison, idx: np.ndarray,
               what: str) -> None:
    """A sequence task (the text model): per sample, the text to predict and each side's predicted
    next characters, the positions in `idx` (flat: sample * T + position) highlighted."""
    by_sample = images.positions_by_sample(idx, a.labels.shape[1])
    shown = list(by_sample)[:MAX_SAMPLES // 4]
    more = f" (the first {len(shown)} samples of {len(by_sample)})" if len(by_sample) > len(shown) else ""
    st.caption(f"{md(what)}{more}, highlighted in each sample's text:")
    for n in shown:
        marks = by_sample[n]
        st.markdown(f"**sample {n}**, next characters: {images.marked_chars(a.labels[n], marks, a.vocab)}  \n"
                    f"{md(left.label)}: {images.marked_chars(c.left[0][n], marks, a.vocab)}  \n"
                    f"{md(right.label)}: {images.marked_chars(c.right[0][n], marks, a.vocab)}")


def disagreement(left: Side, a: images.Predictions, right: Side, b: images.Predictions, agreement) -> None:
    why = images.comparable(a, b)
    if why is not None:
        st.info(f"{md(left.label)} and {md(right.label)} cannot be compared sample by sample: {md(why)}.")
        return
    if isinstance(agreement, str):
        st.warning(md(agreement, 1000), icon=":material/warning:")
        return
    steps = agreement["step"].tolist()
    if not steps:
        st.info("The two runs saved predictions at no common step yet.")
        return
    st.plotly_chart(images.agreement_figure(agreement, left.label, right.label, (left.color, right.color)),
                    key="img_agreement", width="stretch")
    step = _step_slider(steps, "img_dis_step")
    try:
        c = images.compare(a, b, step)
    except images.PredictionsError as err:
        st.warning(md(err, 1000), icon=":material/warning:")
        return
    unit = "validation samples" if a.labels.ndim == 1 else "predicted positions"
    st.markdown(md(images.in_words(c, left.label, right.label, unit)))
    if c.differ.size:
        _samples(left, a, right, c, c.differ, f"The {c.differ.size:,} {unit} they predict differently")
    wrong = c.both_wrong
    st.markdown(md(f"Both get {wrong.size:,} of {c.total:,} {unit} wrong at step {step}."
                   if wrong.size else f"No {unit[:-1]} is wrong on both sides at step {step}."))
    if wrong.size:
        _samples(left, a, right, c, wrong, f"The {wrong.size:,} {unit} both get wrong")
