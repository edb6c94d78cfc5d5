"""Twinboard: a table of contents. Each page lives in pages/ and is one view.

In team mode (`twinboard serve --team`) nobody sees a page before signing in: the gate renders only
the sign-in form until then (pages/signin.py)."""
import streamlit as st

from pages import signin
from twinboard import auth


def run() -> None:
    st.set_page_config(page_title="Twinboard", page_icon=":material/compare:", layout="wide")
    user = signin.gate()
    if user is None:
        st.stop()
    signin.sidebar_badge(user)
    pages = [
        st.Page("pages/launch.py", title="Launch", icon=":material/rocket_launch:", default=True),
        st.Page("pages/scalars.py", title="Scalars", icon=":material/show_chart:"),
        st.Page("pages/histograms.py", title="Histograms", icon=":material/bar_chart:"),
        st.Page("pages/images.py", title="Images", icon=":material/image:"),
        st.Page("pages/embeddings.py", title="Embeddings", icon=":material/scatter_plot:"),
        st.Page("pages/graphs.py", title="Graphs", icon=":material/account_tree:"),
        st.Page("pages/parity.py", title="Parity", icon=":material/difference:"),
        st.Page("pages/speed.py", title="Speed", icon=":material/speed:"),
        st.Page("pages/deploy.py", title="Deploy", icon=":material/deployed_code:"),
        st.Page("pages/sweeps.py", title="Sweeps", icon=":material/grid_on:"),
        st.Page("pages/upload.py", title="Upload", icon=":material/upload_file:"),
    ]
    if auth.team_mode() and user.role == auth.ADMIN:  # the page refuses anyone else itself too
        pages.append(st.Page("pages/admin.py", title="Admin", icon=":material/admin_panel_settings:"))
    st.navigation(pages).run()


run()
