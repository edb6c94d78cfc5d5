"""Deploy: the pair's models as each framework deploys them (TorchScript, torch.export, ONNX, ExecuTorch;
SavedModel, TFLite float32, int8 and float16), each measured in its own runtime after training: size,
load time, single-sample latency, throughput, validation accuracy and its distance from the trained
model; int8's accuracy cost beside its size gain; PyTorch's ONNX model against TensorFlow's TFLite
model; a download and a load snippet per artifact, and the reason for each format a side could not
produce."""
from __future__ import annotations

import time

import streamlit as st

from pages.common import framework_badge
from pages.pair_picker import pick_pair
from twinboard import deploy, runs
from twinboard.config import logdir
from twinboard.text import code, md

REFRESH_S = 3.0  # while the pair trains or exports: the export is written once training has ended
CHART_CONFIG = {"displaylogo": False}
LINE_CHARS = 1000
HOW = ("**How these are measured**, in each trainer's process after training, one thread in every runtime: "
       "latency is {calls} single-sample calls (validation rows in turn) after {warmup} warm-up calls, each "
       "timed alone, numpy in and numpy out; throughput is batches of {batch}; accuracy, loss and the largest "
       "difference from the trained model are over the whole validation split. Load time: from the file to a "
       "ready runtime.")
NO_EXPORT = ("No export for this pair yet. A pair started from the Launch form with **Export after training** "
             "on exports at its end; for a run that has ended, `twinboard export RUN-ID` exports it (a run made "
             "before exports existed is trained again from its spec.json: the same seed gives the same model).")


def _read(pair: runs.Pair) -> tuple[list[deploy.Deploy], list[str]]:
    found, problems = [], []
    for run in pair.runs:
        dep, why = deploy.read_deploy(run.path, run.framework or run.name)
        if why:
            problems.append(f"{run.name}: {why}")
        if dep is not None:
            found.append(dep)
            problems += [f"{run.name}: {p}" for p in dep.problems]
    return found, problems


def _sides(deploys: list[deploy.Deploy]) -> None:
    for d in deploys:
        lines = []
        if d.error:
            st.error(f"{framework_badge(d.framework)} the export failed: {md(d.error, LINE_CHARS)}",
                     icon=":material/error:")
        if d.weights and d.weights.get("source"):
            lines.append(f"weights {md(d.weights['source'], 300)}")
        if d.created:
            lines.append(f"exported {time.strftime('%Y-%m-%d %H:%M:%S', time.localtime(d.created))}")
        if d.framework_version:
            lines.append(f"framework {md(d.framework_version, 80)}")
        st.markdown(f"- {framework_badge(d.framework)} " + "; ".join(lines))
        if d.mobile:
            st.caption(f"Mobile format: **{md(d.mobile['format'], 100)}**. {md(d.mobile['why'], LINE_CHARS)}")


def _agreement(pair: runs.Pair, deploys: list[deploy.Deploy]) -> None:
    st.subheader("Do the deployed models agree?")
    if pair.left.group != pair.right.group:
        st.caption("PyTorch's ONNX model is compared with TensorFlow's TFLite model for the two sides of one run.")
        return
    agreement, why = deploy.read_agreement(pair.left.path.parent)
    if agreement is None:
        st.caption(md(why) if why else "Not compared yet: the side that finishes its export second compares them.")
        return
    if agreement.get("error"):
        st.warning(md(agreement["error"], LINE_CHARS), icon=":material/warning:")
        return
    c = st.columns(4)
    c[0].metric("Largest output difference", f"{agreement['max_abs_diff']:.3g}" if agreement["max_abs_diff"] is not None else "–",
                help="max |ONNX − TFLite| over every output of every validation row")
    c[1].metric("Predicted class differs", f"{(agreement.get('class_disagreement') or 0) * 100:.2f}%",
                help=f"{int(agreement.get('disagreeing') or 0):,} of {int(agreement.get('n') or 0):,} rows")
    for col, key, label in ((c[2], "onnx_accuracy", "ONNX accuracy"), (c[3], "tflite_accuracy", "TFLite accuracy")):
        col.metric(label, f"{agreement[key]:.4f}" if agreement.get(key) is not None else "–")
    st.caption(md(agreement.get("compared") or "", 300) + ". " + md("; ".join(deploy.agreement_lines(agreement))) + "."
               + (" Computed before the latest export: re-run `twinboard export` to compare the new files."
                  if deploy.is_stale(agreement, deploys) else ""))


def _missing(deploys: list[deploy.Deploy]) -> None:
    for side, fmt, why in deploy.missing(deploys):
        st.warning(f"**{md(side)} {md(fmt, 100)}** not available: {md(why, LINE_CHARS)}", icon=":material/block:")


def _charts(table) -> None:
    ok = table[table["error"].isna()]
    for row in (("size", "latency"), ("throughput", "accuracy")):
        cols = st.columns(2)
        for col, measure in zip(cols, row):
            col.plotly_chart(deploy.bar_figure(ok, measure), key=f"deploy_{measure}", config=CHART_CONFIG)


def _quantization(deploys: list[deploy.Deploy], table) -> None:
    st.subheader("Quantization: accuracy cost against size gain")
    quant = deploy.quantization_table(deploys)
    if quant.empty:
        st.caption("No quantized artifact in this export.")
        return
    st.dataframe(quant, hide_index=True, key="deploy_quant",
                 column_config={c: st.column_config.NumberColumn(c, format=f) for c, f in deploy.QUANT_FORMATS.items()})
    st.markdown("\n".join(f"- {md(line, LINE_CHARS)}" for line in deploy.quantization_lines(quant)))
    fig = deploy.quantization_figure(table[table["error"].isna()])
    if fig is not None:
        st.plotly_chart(fig, key="deploy_quant_fig", config=CHART_CONFIG)


def _downloads(deploys: list[deploy.Deploy]) -> None:
    st.subheader("Download and load")
    st.caption(f"Each snippet loads the artifact with its runtime alone; {deploy.INPUT_NOTE}.")
    cols = st.columns(max(1, len(deploys)))
    for col, d in zip(cols, deploys):
        col.markdown(framework_badge(d.framework))
        for a in d.artifacts:
            if not a["file"] or a["error"]:
                continue
            got, why = deploy.download(d.folder, a["file"])
            if got is None:
                col.caption(f"{md(a['format'], 100)}: {md(why, 300)}")
            else:
                col.download_button(f"{md(a['format'], 100)} ({got.size / 1e3:,.1f} KB)", got.data, file_name=got.name,
                                    mime=got.mime, key=f"deploy_dl_{d.framework}_{a['key']}",
                                    icon=":material/download:")
            found = deploy.snippet(a["key"], a["file"])
            if found:
                with col.expander(f"Load {md(a['format'], 100)}"):
                    st.code(found[1], language=found[0])


def _body(pair: runs.Pair, live: bool) -> None:
    if runs.pair_is_live(pair, logdir()) != live:
        st.rerun()
    deploys, problems = _read(pair)
    for problem in problems:
        st.warning(md(problem, LINE_CHARS), icon=":material/warning:")
    if not deploys:
        st.info("Training, then exporting: this page updates by itself." if live else NO_EXPORT,
                icon=":material/hourglass:" if live else ":material/info:")
        return
    _sides(deploys)
    _agreement(pair, deploys)
    st.subheader("Every artifact")
    table = deploy.artifact_table(deploys)
    st.dataframe(deploy.shown(table), hide_index=True, key="deploy_table",
                 column_config={c: st.column_config.NumberColumn(c, format=f) for c, f in deploy.FORMATS.items()})
    measured = next((d.measured for d in deploys if d.measured), {})
    st.caption(HOW.format(calls=measured.get("latency_calls", "?"), warmup=measured.get("warmup_calls", "?"),
                          batch=measured.get("throughput_batch", "?")))
    _missing(deploys)
    _charts(table)
    _quantization(deploys, table)
    _downloads(deploys)


def main() -> None:
    st.title("Deploy")
    pair = pick_pair("deploy")
    if pair is None:
        return
    st.caption(f"{code(pair.left.label)} against {code(pair.right.label)}")
    st.sidebar.button("Refresh now", key="deploy_refresh", icon=":material/refresh:")
    live = runs.pair_is_live(pair, logdir())
    st.fragment(run_every=REFRESH_S if live else None)(_body)(pair, live)


main()
