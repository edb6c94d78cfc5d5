"""The Launch page's RunSpec form: one widget per field, keyed `launch_<field>`, each with the field's
help text and its values kept in session_state, so "launch again with changes" can fill it."""
from __future__ import annotations

import streamlit as st

from pages.launch_data import data_picker
from twinboard import runs
from twinboard.contract import RunSpec, field_help

SPEC_KEY = "launch_spec"  # session_state: the spec dict the form's widgets start from


def fill_form(spec: dict, overwrite: bool = False) -> None:
    """Start the form's widgets from `spec`: their state, set before they are drawn. Without
    `overwrite`, only widgets without a state get one (those not drawn last run: the other optimizer's)."""
    st.session_state[SPEC_KEY] = spec
    st.session_state.update({f"launch_{name}": value for name, value in runs.widget_values(spec).items()
                             if overwrite or f"launch_{name}" not in st.session_state})


def _field_widget(name: str, where=st) -> object:
    """One widget for one RunSpec field, keyed `launch_<field>`; its value comes from its state
    (_fill_form), so no default is passed. The tooltip is the field's help (dataclass metadata)."""
    key, label, tip, kind = f"launch_{name}", runs.field_label(name), field_help(name) or None, runs.field_kind(name)
    if kind == "choice":
        return where.selectbox(label, list(runs.form_choices(name)), key=key, help=tip)
    if kind == "bool":
        return where.checkbox(label, key=key, help=tip)
    if kind == "int":
        return where.number_input(label, step=1, key=key, help=tip)
    if kind == "float":
        return where.number_input(label, step=runs.FORM_STEPS.get(name, 0.01), format="%g", key=key, help=tip)
    return where.text_input(label, key=key, help=tip,
                            placeholder="comma-separated whole numbers" if kind == "tuple" else None)


def spec_form(root) -> tuple[dict, str, bool]:
    """Draw the form; (raw field values, run name, submitted)."""
    fill_form(st.session_state.get(SPEC_KEY) or RunSpec(**runs.FORM_DEFAULTS).to_dict())
    # Outside the form, so that switching them shows the data chooser, or that optimizer's settings, at once.
    top = st.columns([1, 2])
    values: dict[str, object] = {"task": _field_widget("task", top[0]), "optimizer": top[1].segmented_control(
        "Optimizer", list(runs.FORM_CHOICES["optimizer"]), key="launch_optimizer",
        format_func=lambda o: {"sgd": "SGD (momentum)", "adam": "Adam"}.get(o, o),
        help=field_help("optimizer")) or st.session_state[SPEC_KEY]["optimizer"]}
    # task=file: the data file and a CSV's target column come from the chooser; other tasks read none.
    chosen = data_picker(root) if values["task"] == "file" else None
    values.update(data=chosen[0] if chosen else "", target=chosen[1] if chosen else "")
    with st.form("launch_form", border=True):
        sections = {**runs.FORM_SECTIONS, "Optimizer": runs.OPTIMIZER_FIELDS[values["optimizer"]]}
        for col, (title, names) in zip(st.columns(len(sections)), sections.items()):
            col.markdown(f"**{title}**")
            for name in names:
                if name not in values:  # the task is drawn above the form
                    values[name] = _field_widget(name, col)
        with st.expander("Advanced"):
            name = st.text_input("run name (optional)", key="launch_name",
                                 help="Folder name in the logdir; default: time-task-model-optimizer")
            rest = runs.advanced_fields()
            for i, col in enumerate(st.columns(3)):
                for field in rest[i::3]:
                    values[field] = _field_widget(field, col)
        submitted = st.form_submit_button("Start", type="primary", key="launch_start",
                                          icon=":material/play_arrow:")
    return values, name.strip(), submitted
