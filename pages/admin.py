"""Admin (team mode): users, the RunSpec limits, the quotas in force, and the audit log.

app.py lists this page only for an admin in team mode, and the page refuses anyone else itself; each
change goes through twinboard.auth.admin, which checks the role again and records it in the audit log.
Changes are callbacks that read the widgets' values when they run (not when the page was drawn), so a
value typed just before a click is the one used, and the tables drawn after them show the change.
"""
from __future__ import annotations

import streamlit as st

from pages.signin import current_user
from twinboard import auth
from twinboard.auth import admin
from twinboard.config import logdir
from twinboard.contract import CEILINGS, LimitsError, load_limits
from twinboard.text import md, size

REFUSED = (auth.AuthError, auth.PermissionDenied, LimitsError)


def _notice(where: str) -> None:
    if (said := st.session_state.pop(f"admin_notice_{where}", None)) is not None:
        getattr(st, said[0])(said[1])


def _change(where: str, done: str, change, *args, clear: tuple[str, ...] = ()) -> bool:
    """admin.`change`(the signed-in user, *args), then a notice for section `where`; the widgets in
    `clear` (passwords) are emptied either way."""
    for key in clear:
        st.session_state[key] = ""
    try:
        change(current_user(), *args, logdir=logdir())
    except REFUSED as err:
        st.session_state[f"admin_notice_{where}"] = ("error", f"Nothing changed: {md(err)}")
        return False
    st.session_state[f"admin_notice_{where}"] = ("success", done)
    return True


def _add_user() -> None:
    state = st.session_state
    name, role = state.get("admin_add_name", "").strip(), state.get("admin_add_role", auth.VIEWER)
    if _change("users", f"Added **{md(name)}** ({role}).", admin.add_user, name, state.get("admin_add_password", ""),
               role, clear=("admin_add_password",)):
        state["admin_add_name"] = ""


def _set_role(name: str) -> None:
    role = st.session_state.get(f"admin_role_{name}")
    _change("users", f"**{md(name)}** is now {md(role)}.", admin.set_role, name, role)


def _set_password(name: str) -> None:
    _change("users", f"New password for **{md(name)}**; their open sessions have ended.", admin.set_password, name,
            st.session_state.get("admin_new_password", ""), clear=("admin_new_password",))


def _remove(name: str) -> None:
    st.session_state.pop("admin_confirm_remove", None)
    _change("users", f"Removed **{md(name)}**.", admin.remove_user, name)


def _users_section() -> None:
    st.subheader("Users")
    _notice("users")
    found = auth.list_users(logdir=logdir())
    st.dataframe(admin.user_rows(found), hide_index=True)
    with st.form("admin_add_form"):
        st.markdown("**Add a user**")
        left, mid, right = st.columns(3)
        left.text_input("Name", key="admin_add_name", max_chars=32, help="1-32 letters, digits, '.', '_' or '-'")
        mid.text_input("Password", key="admin_add_password", type="password", autocomplete="new-password",
                       help=f"{auth.users.MIN_PASSWORD} characters or more")
        right.selectbox("Role", auth.ROLES, key="admin_add_role")
        st.form_submit_button("Add user", key="admin_add", on_click=_add_user)
    if not found:
        return
    st.markdown("**Change a user**")
    names = [u.name for u in found]
    if st.session_state.get("admin_pick") not in names:  # removed meanwhile (here, another session, the CLI)
        st.session_state.pop("admin_pick", None)
    name = st.selectbox("User", names, key="admin_pick")
    role_now = next(u.role for u in found if u.name == name)
    left, mid, right = st.columns(3)
    left.selectbox("Role", auth.ROLES, index=auth.ROLES.index(role_now), key=f"admin_role_{name}")
    left.button("Set role", key="admin_set_role", on_click=_set_role, args=(name,))
    with mid.form("admin_password_form", border=False):
        st.text_input("New password", key="admin_new_password", type="password", autocomplete="new-password")
        st.form_submit_button("Reset password", key="admin_set_password", on_click=_set_password, args=(name,))
    if st.session_state.get("admin_confirm_remove") != name:
        right.button("Remove…", key="admin_remove", on_click=st.session_state.update,
                     kwargs={"admin_confirm_remove": name})
        return
    right.warning(f"Remove **{md(name)}**? Their sessions end; what they own stays theirs by name.")
    yes, no = right.columns(2)
    yes.button("Yes, remove", key="admin_remove_yes", type="primary", on_click=_remove, args=(name,))
    no.button("Cancel", key="admin_remove_no", on_click=st.session_state.pop, args=("admin_confirm_remove",))


def _save_limits(changes: dict, done: str) -> None:
    if _change("limits", done, admin.save_limits, changes):
        for name in changes:  # their value boxes start again from what is now in force
            st.session_state.pop(f"admin_limit_value_{name}", None)


def _save_limit(name: str) -> None:
    value = st.session_state.get(f"admin_limit_value_{name}")
    _save_limits({name: value}, f"The {name} limit is now {value}.")


def _limits_section() -> None:
    st.subheader("Limits")
    st.caption("The most a RunSpec may ask for on this server, checked before a launch (Launch form, CLI): "
               "an admin may lower or raise each, up to its hard ceiling.")
    _notice("limits")
    try:
        current = load_limits(logdir())
    except LimitsError as err:  # an unusable file: every launch is refused until it is fixed
        st.error(md(err))
        if err.field is not None:
            st.button("Drop that entry", key="admin_limit_drop", on_click=_save_limits,
                      args=({err.field: None}, f"Dropped the entry **{md(err.field)}**."))
        return
    st.dataframe(admin.limit_rows(current), hide_index=True)
    name = st.selectbox("Limit", list(current), key="admin_limit_name", help="Its row above says what it bounds.")
    whole = admin.is_whole(name)
    with st.form("admin_limit_form"):
        st.number_input(f"New {name} limit (ceiling {CEILINGS[name]:,})", key=f"admin_limit_value_{name}",
                        value=int(current[name]) if whole else float(current[name]), step=1 if whole else None,
                        format=None if whole else "%g")
        st.form_submit_button("Save", key="admin_limit_save", type="primary", on_click=_save_limit, args=(name,))
    reset, reset_all = st.columns(2)
    reset.button(f"Reset {name} to default", key="admin_limit_reset", on_click=_save_limits,
                 args=({name: None}, f"The {name} limit is back to its default."))
    reset_all.button("Reset every limit to default", key="admin_limit_reset_all", on_click=_save_limits,
                     args=(admin.reset_all(current), "Every limit is back to its default."))


def _quotas_section() -> None:
    st.subheader("Quotas")
    st.caption("Read-only: environment variables read by the server (README, *Running it for a team*).")
    st.dataframe(admin.quota_rows(), hide_index=True)
    total, rows = admin.usage_summary(logdir())
    st.markdown(f"**Upload usage**: {size(total)} in all.")
    if rows:
        st.dataframe(rows, hide_index=True)


def _audit_section() -> None:
    st.subheader("Audit log")
    if not auth.allowed(current_user(), auth.VIEW_AUDIT):
        return st.info("Your role may not read the audit log.")
    entries = auth.read_audit(200, logdir=logdir())
    who, what = admin.audit_choices(entries)
    left, right = st.columns(2)
    by_users = left.multiselect("User", who, key="admin_audit_users", placeholder="every user")
    by_actions = right.multiselect("Action", what, key="admin_audit_actions", placeholder="every action")
    rows = admin.audit_rows(entries, by_users, by_actions)
    st.caption(f"The newest {len(entries)} entries, newest first; {len(rows)} shown.")
    st.dataframe(rows, hide_index=True)


def main() -> None:
    st.title("Admin")
    try:
        auth.require(current_user(), auth.MANAGE_USERS)
    except auth.PermissionDenied as err:
        st.error(f"This page is for admins only: {md(err)}.")
        st.stop()
    users, limits, quotas, audit = st.tabs(["Users", "Limits", "Quotas", "Audit log"])
    with users:
        _users_section()
    with limits:
        _limits_section()
    with quotas:
        _quotas_section()
    with audit:
        _audit_section()


main()
