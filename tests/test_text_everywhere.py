"""Text from uploads is text on every page: run names, tag names, graph node names, projector metadata,
an upload's settings.json and typed patterns reach markdown (labels, messages, captions) escaped, and
plotly (titles, legends, hover) as entities.

One logdir, written once per module by real writers: tensorboardX (scalars, histograms, a GraphDef)
in a child process, the trainers' projector export for embeddings. Its two runs are folders of an
upload's archive, named as an archive may name them (anything but '/'): one a Markdown link, the
other an HTML tag; the tags, node names and metadata inside are as hostile. The right run's event
file ends in a damaged record, so the pages' problem messages quote its path too.
"""
from __future__ import annotations

import json
import re
import subprocess
import sys
from pathlib import Path

import numpy as np
import pytest
from streamlit.testing.v1 import AppTest

from trainers import export_embedding
from twinboard.contract import frame
from twinboard.text import code, html, md

ROOT = Path(__file__).resolve().parents[1]
TIMEOUT = 60  # s per script run on a small shared machine

LINK = "[x](http:evil)"  # a Markdown link (a folder name cannot hold '/')
IMG = "<img src=x onerror=alert(1)>"  # HTML, for st.markdown and for plotly
FIELD = "%{fullData}"  # a hovertemplate field
# The two runs; listed by name, so the IMG one is the left side ('<' sorts before '[').
LINK_RUN, IMG_RUN = f"uploads/up/{LINK}", f"uploads/up/{IMG}"
SCALAR_TAG = f"{LINK}/{IMG} {FIELD}"  # its group (the expander) is LINK
HIST_TAG = f"weights/{LINK}/{IMG}"
NODE = f"{LINK}/{IMG} {FIELD}/MatMul"
EMB_TAG = f"{IMG} [e](evil)"  # no '/' or ':' (the projector's tensor name is <tag>:<step>)
COLUMNS = [LINK, IMG]  # projector metadata columns; no "label": the first colours and highlights
N = 12  # embedded samples

# SummaryWriter's add_* clean a tag (its characters outside [-/\w.] become '_'); its file writer writes
# the summary it is given, as other writers (tf.summary's raw ops, TF1, any tool) may name tags.
WRITER = r'''
import json, sys
import numpy as np
from tensorboardX import SummaryWriter, summary
from tensorboardX.proto.event_pb2 import Event
from tensorboardX.proto.graph_pb2 import GraphDef
from tensorboardX.proto.summary_pb2 import Summary

names = json.loads(sys.argv[1])
for k, folder in enumerate(sys.argv[2:]):
    w = SummaryWriter(folder)
    raw = w._get_file_writer()
    for step in range(10):
        w.add_scalar("loss/train", 1.0 / (step + 1) + 0.01 * k, step)
        raw.add_summary(Summary(value=[Summary.Value(tag=names["scalar"], simple_value=step * (1 + k))]), step)
        if step % 5 == 0:
            histo = summary.histogram("h", np.random.default_rng(step + k).normal(size=64), 30)
            histo.value[0].tag = names["hist"]
            raw.add_summary(histo, step)
    g = GraphDef()
    g.node.add(name="input", op="Placeholder")
    g.node.add(name=names["node"], op="MatMul", input=["input"])
    raw.add_event(Event(graph_def=g.SerializeToString(), step=0))
    w.close()
'''


def _settings(layer: str, mode: str, eps: int) -> dict:
    """An upload's settings.json: a layer, an execution mode and an optimizer key of the visitor's."""
    return {"execution_mode": mode, "optimizer": {LINK: eps},
            "layers": [{"name": layer, "type": "Dense", "output_shape": [None, 4], "params": 20}]}


@pytest.fixture(scope="module")
def hostile(tmp_path_factory) -> Path:
    root = tmp_path_factory.mktemp("hostile") / "logs"
    folders = [root / LINK_RUN, root / IMG_RUN]
    names = {"scalar": SCALAR_TAG, "hist": HIST_TAG, "node": NODE}
    done = subprocess.run([sys.executable, "-c", WRITER, json.dumps(names), *map(str, folders)], cwd=ROOT,
                          capture_output=True, text=True, timeout=180)
    assert done.returncode == 0, done.stderr[-3000:]
    record = bytearray(frame(b"\x00" * 16))
    record[-1] ^= 0xFF  # a complete record with a wrong CRC: a problem that names the file
    with open(next(folders[1].glob("events.out.tfevents.*")), "ab") as f:
        f.write(bytes(record))
    rng = np.random.default_rng(0)
    rows = [[LINK if i % 2 else IMG, f"{IMG} {i}"] for i in range(N)]
    for folder, layer, mode, eps in ((folders[0], LINK, IMG, 1), (folders[1], IMG, LINK, 2)):
        (folder / "settings.json").write_text(json.dumps(_settings(layer, mode, eps)))
        export_embedding.write(folder, "tensorflow", 5, rng.normal(size=(N, 4)), rows, COLUMNS, tag=EMB_TAG)
    return root


@pytest.fixture
def logdir(hostile, monkeypatch) -> Path:
    monkeypatch.setenv("TWINBOARD_LOGDIR", str(hostile))
    return hostile


def page(name: str) -> AppTest:
    return AppTest.from_file(str(ROOT / "pages" / f"{name}.py"), default_timeout=TIMEOUT)


TEXTS = ("markdown", "caption", "info", "warning", "error", "success", "subheader", "title", "toast")
LABELLED = ("expander", "selectbox", "multiselect", "text_input", "toggle", "slider", "select_slider", "radio",
            "checkbox", "button", "number_input", "metric")
CODE_SPAN = re.compile(r"(?<!`)(`+)(?!`)(.+?)(?<!`)\1(?!`)")  # CommonMark: a fence closes on its own length
# What the hostile names would do unescaped: a link's `](`, an HTML tag's `<` (a backslash before
# either makes it text; the names hold no backslash of their own).
ACTIVE = re.compile(r"(?<!\\)\]\((?:http|evil)|(?<!\\)<img")


def markdown_shown(at: AppTest) -> list[str]:
    """Every Markdown string the page sent: message bodies and widget, metric and expander labels."""
    out = [str(e.value) for kind in TEXTS for e in at.get(kind)]
    return out + [str(e.label) for kind in LABELLED for e in at.get(kind)]


def assert_markdown_is_text(at: AppTest) -> str:
    """No link, image or HTML tag from the hostile names outside a code span (where it is inert);
    returns everything shown, joined, for the page's own checks."""
    shown = markdown_shown(at)
    for body in shown:
        bare = CODE_SPAN.sub("", body)
        assert not ACTIVE.search(bare), body
    return "\n".join(shown)


def _strings(value):
    if isinstance(value, dict):
        for k, v in value.items():
            # plotly's theme is not ours; customdata is what a click reports back (the graphs' node
            # names), shown only where a hovertemplate names it, and none names a string one
            if k not in ("template", "customdata"):
                yield from _strings(v)
    elif isinstance(value, list):
        for v in value:
            yield from _strings(v)
    elif isinstance(value, str):
        yield value


def figure_strings(at: AppTest) -> list[str]:
    """Every string of every plotly figure on the page: titles, trace names, hover text and templates."""
    strings = [s for chart in at.get("plotly_chart") for s in _strings(json.loads(chart.proto.spec))]
    for s in strings:  # plotly reads these as HTML-ish text with %{...} fields
        assert "<img" not in s and FIELD not in s, s
    return strings


def test_scalars(logdir):
    at = page("scalars").run()
    assert not at.exception, at.exception
    shown = assert_markdown_is_text(at)
    assert f"**{md(LINK)}** · 1" in [e.label for e in at.expander]  # the tag's group
    assert md(IMG_RUN) in shown  # the damaged file's path, in the warning
    strings = figure_strings(at)
    assert any(s.startswith(html(SCALAR_TAG)) for s in strings)  # the chart's title
    assert any(html(LINK_RUN) in s for s in strings)  # the side's name: panel title, legend, hover
    at.sidebar.text_input(key="scalars_filter").set_value("[p](http:evil)|`x").run()  # matches nothing
    shown = assert_markdown_is_text(at)
    assert f"No tag matches {code('[p](http:evil)|`x')}." in shown
    at.sidebar.text_input(key="scalars_filter").set_value(f"({IMG}").run()  # not a regex
    shown = assert_markdown_is_text(at)
    assert at.error and md(IMG) in at.error[0].value


def test_histograms(logdir):
    at = page("histograms").run()
    assert not at.exception, at.exception
    shown = assert_markdown_is_text(at)
    assert f"**{md(HIST_TAG)}**" in [m.value for m in at.markdown]
    assert code(LINK_RUN) in at.caption[0].value and code(IMG_RUN) in at.caption[0].value
    assert code(str(next((logdir / IMG_RUN).glob("events.out.tfevents.*")))) in shown  # the damaged file
    strings = figure_strings(at)
    assert html(f"{LINK_RUN} · {HIST_TAG}") in strings  # the panel's title, side and tag as text
    at.radio(key="hist_mode").set_value("compare").run()
    assert not at.exception, at.exception
    assert_markdown_is_text(at)
    assert any(f"{md(LINK_RUN)} shows step" in c.value for c in at.caption)
    strings = figure_strings(at)
    assert any(s.startswith(html(LINK_RUN)) for s in strings)  # the legend names the side as text
    at.text_input(key="hist_filter").set_value(f"{LINK}$").run()
    assert f"No histogram tag matches {code(LINK + '$')}; there are 1." in assert_markdown_is_text(at)


def test_histograms_name_two_tensorflow_runs_by_their_names(logdir, tmp_path, monkeypatch):
    """Two runs of one framework are not both 'TensorFlow': as on Scalars, a side that is not half
    of a matched pair is its run's name."""
    import shutil

    names = ["uploads/tf/a/tensorflow", "uploads/tf/b/tensorflow"]
    for name in names:
        shutil.copytree(logdir / LINK_RUN, tmp_path / name)
    monkeypatch.setenv("TWINBOARD_LOGDIR", str(tmp_path))
    at = page("histograms")
    at.query_params.update({"left": names[0], "right": names[1]})
    at.run()
    assert not at.exception, at.exception
    caption = at.caption[0].value
    assert caption.startswith(f"Left: {md(names[0])} {code(names[0])} · right: {md(names[1])}"), caption
    titles = [json.loads(c.proto.spec)["layout"]["title"]["text"] for c in at.get("plotly_chart")]
    assert [t.split(" · ")[0] for t in titles] == names and "TensorFlow" not in " ".join(titles)


def test_graphs(logdir):
    at = page("graphs").run()
    assert not at.exception, at.exception
    shown = assert_markdown_is_text(at)
    assert [s.value for s in at.subheader][:2] == [md(IMG_RUN), md(LINK_RUN)]
    assert code(IMG_RUN) in shown and code(LINK_RUN) in shown
    assert f"Mismatch in {md(LINK)}, {md(IMG)}: parameter counts" in shown  # the layers of settings.json
    assert any("corrupt" in e.value and md(IMG_RUN) in e.value for e in at.error)
    assert f"input → {html(LINK)}" in figure_strings(at)  # an edge's hover: the scope collapsed into
    at.selectbox(key="graphs_collapse").set_value("every op").run()
    assert not at.exception, at.exception
    assert any(f"<b>{html(NODE)}</b>" in s for s in figure_strings(at))  # the op's hover, its name as text
    at.text_input(key="graphs_search").set_value(LINK).run()
    assert_markdown_is_text(at)
    assert at.selectbox(key="graphs_match_0").value == NODE and NODE in [t.value for t in at.text]
    at.text_input(key="graphs_search").set_value(f"{IMG}{LINK}").run()
    assert f"No node name contains “{md(IMG + LINK)}”." in assert_markdown_is_text(at)


def test_embeddings(logdir):
    at = page("embeddings").run()
    assert not at.exception, at.exception
    assert_markdown_is_text(at)
    assert at.sidebar.selectbox(key="emb_hl_label").label == f"Highlight {md(LINK)}"
    left = json.loads(at.get("plotly_chart")[0].proto.spec)
    assert left["layout"]["title"]["text"].startswith(html(f"{IMG_RUN} · PCA 2-D"))
    assert left["layout"]["legend"]["title"]["text"] == html(LINK)
    assert {t["name"] for t in left["data"]} == {html(LINK), html(IMG)}
    hover = " ".join(t for trace in left["data"] for t in trace["text"])
    assert f"{html(IMG)}: {html(IMG)} 3" in hover and f"{html(LINK)}: {html(LINK)}" in hover
    figure_strings(at)
    at.sidebar.selectbox(key="emb_color").set_value("(none)").run()  # the highlight falls back to "label"
    assert not at.exception, at.exception
    assert_markdown_is_text(at)


def test_parity(logdir):
    at = page("parity").run()
    assert not at.exception, at.exception
    shown = assert_markdown_is_text(at)
    assert f"{md(IMG_RUN + ' (uploaded)')} against {md(LINK_RUN + ' (uploaded)')}" in shown
    assert f"Execution: {md(IMG_RUN)} {md(LINK)}; {md(LINK_RUN)} {md(IMG)}." in shown  # settings.json's values
    assert code(f"optimizer.{LINK}") in shown and code(f"layers.{IMG}.type") in shown  # verdict, reasons
    assert any(md(IMG_RUN) in w.value and "corrupt" in w.value for w in at.warning)
    strings = figure_strings(at)
    assert html(IMG_RUN) in strings and any(html(IMG_RUN) in s for s in strings if s.startswith("step"))
    at.sidebar.selectbox(key="parity_tag").set_value(SCALAR_TAG).run()
    assert not at.exception, at.exception
    shown = assert_markdown_is_text(at)
    assert f"Comparing {code(SCALAR_TAG)}" in shown
    strings = figure_strings(at)
    assert html(SCALAR_TAG, 120) in strings and any(html(SCALAR_TAG, 120) in s for s in strings if "|" in s)


def test_launch_run_cards(logdir, tmp_path, monkeypatch):
    """A run folder copied in by hand may be named anything; its card says the name as text."""
    name = f"{LINK} {IMG}"
    (tmp_path / name).mkdir()
    (tmp_path / name / "run.json").write_text(json.dumps({"spec": {}, "created": 1.0, "frameworks": [LINK]}))
    monkeypatch.setenv("TWINBOARD_LOGDIR", str(tmp_path))
    at = page("launch").run()
    assert not at.exception, at.exception
    shown = assert_markdown_is_text(at)
    assert f"**{md(name)}**" in shown and f"-badge[{md(LINK)}]" in shown
