"""Sign-in for team mode: the gate app.py puts before every page, and who is signed in.

Solo mode (the default) has no sign-in: every call here returns the implicit local admin.

How a reload keeps someone signed in: Streamlit sends no Set-Cookie of its own, so after a sign-in
the NEXT script run writes the signed token (twinboard.auth.sessions) into a ``twinboard_session``
cookie from the browser side, with a script in ``st.html(..., unsafe_allow_javascript=True)`` (it runs
in the page itself, not in an iframe). A reload opens a new connection whose handshake carries the
cookie, and ``st.context.cookies`` hands it back. Within one connection the token lives in
``st.session_state`` (the connection's cookies were read when it opened and do not change). The token is
checked on every run, so a removed user, a new password or an expired session ends at the next click.
"""
from __future__ import annotations

import json
import time

import streamlit as st

from twinboard import auth
from twinboard.auth.sessions import token_expiry
from twinboard.auth.users import MAX_PASSWORD

COOKIE = "twinboard_session"
TOKEN_KEY = "twinboard_token"  # session_state: this connection's token
COOKIE_KEY = "twinboard_cookie_write"  # session_state: (value, max_age_s) to write on the next run
SIGNED_OUT_KEY = "twinboard_signed_out"  # session_state: ignore the connection's cookie, it predates sign-out


def _signed_in() -> auth.User | None:
    """The user this connection's token stands for (checked now), or None."""
    if not auth.team_mode():
        return auth.LOCAL_ADMIN
    token = st.session_state.get(TOKEN_KEY)
    if not token and not st.session_state.get(SIGNED_OUT_KEY):
        token = st.context.cookies.get(COOKIE)
    user = auth.user_from_token(token)
    if user is None:
        st.session_state.pop(TOKEN_KEY, None)
    else:
        st.session_state[TOKEN_KEY] = token
    return user


def current_user() -> auth.User:
    """Who is signed in (solo: the local admin). Nobody, in team mode (only when a page skipped the
    gate): ends this run after saying so, so no caller ever acts for an anonymous visitor."""
    user = _signed_in()
    if user is None:
        st.warning("Sign in first.")
        st.stop()
    return user


def _write_cookie() -> None:
    """Write (or, with max-age 0, delete) the session cookie in the browser, once, if one is pending."""
    pending = st.session_state.pop(COOKIE_KEY, None)
    if pending is None:
        return
    value, max_age = pending
    attributes = f"; path=/; max-age={int(max_age)}; SameSite=Strict"
    st.html(f"<script>document.cookie = {json.dumps(f'{COOKIE}={value}{attributes}')}"
            " + (location.protocol === 'https:' ? '; Secure' : '');</script>", unsafe_allow_javascript=True)


def gate() -> auth.User | None:
    """The signed-in user (solo: the local admin); in team mode with nobody signed in, renders only
    the sign-in form and returns None: the caller renders nothing else (app.py: ``st.stop()``)."""
    try:
        user = _signed_in()
    except (auth.AuthError, ValueError) as err:  # a broken users file or secret, a bad TWINBOARD_TEAM
        st.error(f"Sign-in is unavailable: {err}")
        return None
    _write_cookie()
    if user is None:
        _sign_in_form()
    return user


def _sign_in_form() -> None:
    st.title("Sign in")
    if not auth.list_users():
        st.info("This team server has no users yet. On the server, run "
                "`twinboard users add NAME --role admin`, then sign in here.")
    # clear_on_submit: the password does not linger in the form (nor in session state) after this run
    with st.form("signin_form", clear_on_submit=True):
        name = st.text_input("Name", key="signin_name", max_chars=32, autocomplete="username")
        password = st.text_input("Password", type="password", key="signin_password", max_chars=MAX_PASSWORD,
                                 autocomplete="current-password")  # password managers fill it
        submitted = st.form_submit_button("Sign in", key="signin_submit", type="primary")
    if not submitted:
        return
    result = auth.sign_in(name.strip(), password)
    if not result:
        st.error(result.reason)
        return
    token = auth.make_token(result.user)
    st.session_state[TOKEN_KEY] = token
    st.session_state.pop(SIGNED_OUT_KEY, None)
    st.session_state[COOKIE_KEY] = (token, max(0, (token_expiry(token) or 0) - int(time.time())))
    st.rerun()  # the next run is signed in and writes the cookie


def sign_out() -> None:
    """End this session: forget the token, delete the cookie (on the next run), and rerun to the form.
    The token itself stays valid until it expires; a password change ends every session at once."""
    user = auth.user_from_token(st.session_state.get(TOKEN_KEY))
    if user is not None:
        auth.record(user, "sign_out", user.name)
    st.session_state.pop(TOKEN_KEY, None)
    st.session_state[SIGNED_OUT_KEY] = True
    st.session_state[COOKIE_KEY] = ("", 0)
    st.rerun()


def sidebar_badge(user: auth.User) -> None:
    """'Signed in as NAME (role)' and a Sign out button, in the sidebar (team mode only)."""
    if not auth.team_mode():
        return
    st.sidebar.caption(f"Signed in as **{user.name}** ({user.role})")
    if st.sidebar.button("Sign out", key="signout", icon=":material/logout:"):
        sign_out()


if __name__ == "__main__":  # run as a page of its own (st.Page, AppTest): the gate, then who is signed in
    signed_in = gate()
    if signed_in is not None:
        st.title("Account")
        st.write(f"Signed in as **{signed_in.name}** ({signed_in.role}).")
        sidebar_badge(signed_in)
