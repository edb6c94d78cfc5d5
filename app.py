"""Twinboard: a table of contents. Each page lives in pages/ and is one view."""
import streamlit as st


def run() -> None:
    st.set_page_config(page_title="Twinboard", page_icon=":material/compare:", layout="wide")
    pages = [
        st.Page("pages/launch.py", title="Launch", icon=":material/rocket_launch:", default=True),
        st.Page("pages/scalars.py", title="Scalars", icon=":material/show_chart:"),
    ]
    st.navigation(pages).run()


run()
