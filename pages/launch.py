"""Launch: a form for the RunSpec, and every run in the logdir with live progress per framework."""
from __future__ import annotations

import dataclasses
import datetime as dt

import streamlit as st

from pages.common import framework_badge
from twinboard.contract import spec as specmod
from twinboard.contract import RunSpec, SpecError
from twinboard import runs
from twinboard.config import logdir

REFRESH_S = 2.0  # the run list's refresh interval while any job is queued or running
SHOWN_RUNS = 20  # newest runs listed before "show all"
STATE_COLORS = {"queued": "gray", "running": "blue", "finished": "green", "failed": "red", "stopped": "orange"}
CHOICES = {"task": specmod.TASKS, "model": specmod.MODELS, "optimizer": specmod.OPTIMIZERS,
           "init": specmod.INITS, "dtype": specmod.DTYPES}
# The form's sections, by field name; any field not named here (new ones included) goes to Advanced.
SECTIONS = {
    "Data and model": ("task", "model", "hidden"),
    "Training": ("batch_size", "epochs", "steps", "seed"),
    "Logging": ("log_every", "histogram_every"),
    "Numerics": ("init", "dtype", "threads"),
}
OPTIMIZER_FIELDS = {"sgd": ("lr", "momentum"), "adam": ("lr", "beta1", "beta2", "eps")}
FLOAT_STEPS = {"lr": 0.001, "momentum": 0.05, "beta1": 0.01, "beta2": 0.001, "eps": 1e-9,
               "weight_decay": 1e-4, "val_fraction": 0.05}
LABELS = {"lr": "learning rate", "beta1": "Adam β1", "beta2": "Adam β2", "eps": "Adam ε",
          "momentum": "SGD momentum", "hidden": "hidden sizes", "init": "initial weights"}


def _help(name: str) -> str | None:
    """A RunSpec field's help text (its dataclass metadata): the tooltip of its widget."""
    return specmod.field_help(name) or None


def _type(f: dataclasses.Field) -> str:
    """'int', 'float', 'str', 'tuple[int, ...]': the annotation as text, postponed or not."""
    return f.type if isinstance(f.type, str) else getattr(f.type, "__name__", None) or str(f.type)


def _field_widget(f: dataclasses.Field, default, where=st) -> object:
    """One widget for one RunSpec field, chosen from its type; keyed `launch_<field>`."""
    key, label, tip = f"launch_{f.name}", LABELS.get(f.name, f.name.replace("_", " ")), _help(f.name)
    if f.name in CHOICES:
        options = list(CHOICES[f.name])
        return where.selectbox(label, options, index=options.index(default), key=key, help=tip)
    if _type(f).startswith("tuple"):
        return where.text_input(label, ", ".join(map(str, default)), key=key, help=tip,
                                placeholder="comma-separated whole numbers")
    if _type(f) == "int":
        return where.number_input(label, value=int(default), step=1, key=key, help=tip)
    if _type(f) == "float":
        return where.number_input(label, value=float(default), step=FLOAT_STEPS.get(f.name, 0.01),
                                  format="%g", key=key, help=tip)
    return where.text_input(label, str(default), key=key, help=tip)


def _parse(f: dataclasses.Field, raw: object) -> object:
    """A widget's value as the field's type; tuple fields come from 'a, b, c' text."""
    if not _type(f).startswith("tuple"):
        return raw
    parts = [p.strip() for p in str(raw).replace(";", ",").split(",") if p.strip()]
    try:
        return tuple(int(p) for p in parts)
    except ValueError:
        raise SpecError(f"RunSpec.{f.name}={raw!r}: must be comma-separated whole numbers") from None


def _spec_form() -> tuple[dict, str, bool]:
    """Draw the form; (raw field values, run name, submitted)."""
    defaults, fields = RunSpec(), {f.name: f for f in dataclasses.fields(RunSpec)}
    values: dict[str, object] = {}
    # Outside the form, so that switching it shows that optimizer's settings at once.
    values["optimizer"] = st.segmented_control(
        "Optimizer", list(specmod.OPTIMIZERS), default=defaults.optimizer, key="launch_optimizer",
        format_func=lambda o: {"sgd": "SGD (momentum)", "adam": "Adam"}.get(o, o),
        help=_help("optimizer")) or defaults.optimizer
    placed = {"optimizer", *(n for names in SECTIONS.values() for n in names),
              *(n for names in OPTIMIZER_FIELDS.values() for n in names)}
    with st.form("launch_form", border=True):
        sections = {**SECTIONS, "Optimizer": OPTIMIZER_FIELDS[values["optimizer"]]}
        for col, (title, names) in zip(st.columns(len(sections)), sections.items()):
            col.markdown(f"**{title}**")
            for name in names:
                values[name] = _field_widget(fields[name], getattr(defaults, name), col)
        with st.expander("Advanced"):
            name = st.text_input("run name (optional)", key="launch_name",
                                 help="Folder name in the logdir; default: time-task-model-optimizer")
            rest = [f for f in fields.values() if f.name not in placed]
            for i, col in enumerate(st.columns(3)):
                for f in rest[i::3]:
                    values[f.name] = _field_widget(f, getattr(defaults, f.name), col)
        submitted = st.form_submit_button("Start", type="primary", key="launch_start",
                                          icon=":material/play_arrow:")
    return values, name.strip(), submitted


def _start(values: dict, name: str, root) -> None:
    fields = {f.name: f for f in dataclasses.fields(RunSpec)}
    try:
        spec = RunSpec(**{k: _parse(fields[k], v) for k, v in values.items()})
    except SpecError as err:
        st.error(f"Not started: {err}", icon=":material/error:")
        return
    with st.spinner("Starting both trainers…"):
        outcome = runs.launch(spec, logdir=root, name=name or None)
    if isinstance(outcome, runs.Launched):
        st.success(f"Started **{outcome.run_id}**: it appears below; watch it on the Scalars page.",
                   icon=":material/rocket_launch:")
    else:
        code = "" if outcome.exit_code is None else f" (exit code {outcome.exit_code})"
        st.error(f"Launch failed{code}.", icon=":material/error:")
        st.code(outcome.stderr or "(no output)", language=None)


def _progress_text(job: runs.JobStatus) -> str:
    if job.state == "queued":
        return "queued: waiting for a free slot"
    if job.total_steps:
        return f"{job.step or 0:,} of {job.total_steps:,} steps"
    return "starting…" if job.state == "running" else "no progress reported"


def _summary(spec: dict) -> str:
    """One line of the spec for the run list: what differs between runs, in words."""
    g = spec.get
    opt = (f"sgd lr={g('lr')} momentum={g('momentum')}" if g("optimizer") == "sgd"
           else f"{g('optimizer')} lr={g('lr')}")
    length = f"{g('steps')} steps" if g("steps") else f"{g('epochs')} epochs"
    return (f"{g('task')} · {g('model')} {tuple(g('hidden') or ())} · {opt} · batch {g('batch_size')} · "
            f"{length} · seed {g('seed')} · {g('dtype')} · init {g('init')}")


def _run_card(run: runs.RunStatus, root) -> None:
    with st.container(border=True, key=f"launch_card_{run.run_id}"):
        head, button = st.columns([5, 1], vertical_alignment="center")
        created = dt.datetime.fromtimestamp(run.created).strftime("%Y-%m-%d %H:%M:%S")
        head.markdown(f"**{run.run_id}** :{STATE_COLORS.get(run.state, 'gray')}-badge[{run.state}]  \n"
                      f":small[:gray[{created} · {_summary(run.spec)}]]")
        if run.active and button.button("Stop", key=f"launch_stop_{run.run_id}", icon=":material/stop:"):
            with st.spinner(f"Stopping {run.run_id}…"):
                try:
                    runs.stop(run.run_id, logdir=root)
                except runs.LauncherError as err:
                    st.error(str(err))
            st.rerun()  # the whole page: the list may have nothing active any more
        for col, (fw, job) in zip(st.columns(max(len(run.frameworks), 1)), run.frameworks.items()):
            with col:
                st.markdown(f"{framework_badge(fw)} :{STATE_COLORS.get(job.state, 'gray')}-badge[{job.state}]")
                st.progress(job.progress, text=_progress_text(job))
                if job.state == "failed":
                    code = "no exit status" if job.exit_code is None else f"exit code {job.exit_code}"
                    with st.expander(f"Error: {code}"):
                        st.code(job.error or "(no stderr)", language=None)


def _runs_list(root, live: bool) -> None:
    """The run list; a fragment that reruns every REFRESH_S while `live` (decided by the last full run)."""
    found = sorted(runs.list_runs(root), key=lambda r: (r.created, r.run_id), reverse=True)
    active = any(r.active for r in found)
    if active != live:
        st.rerun()  # a full run re-declares this fragment with the timer on, or off
    if not found:
        st.info(f"No runs yet in `{root}`. Start one above.", icon=":material/info:")
        return
    show_all = len(found) > SHOWN_RUNS and st.toggle(f"Show all {len(found)} runs", key="launch_show_all")
    for run in found if show_all else found[:SHOWN_RUNS]:
        _run_card(run, root)


def main() -> None:
    root = logdir()
    st.title("Launch a matched run")
    st.caption("One spec, two trainers: PyTorch and TensorFlow train the same model on the same batches. "
               f"Runs are written to `{root}`.")
    values, name, submitted = _spec_form()
    if submitted:
        _start(values, name, root)
    st.subheader("Runs")
    live = any(r.active for r in runs.list_runs(root))
    st.fragment(run_every=REFRESH_S if live else None)(_runs_list)(root, live)


main()
