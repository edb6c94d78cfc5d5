"""Twinboard: a table of contents. Each page lives in pages/ and is one view."""
import streamlit as st


def run() -> None:
    st.set_page_config(page_title="Twinboard", page_icon=":material/compare:", layout="wide")
    pages = [
        st.Page("pages/launch.py", title="Launch", icon=":material/rocket_launch:", default=True),
        st.Page("pages/scalars.py", title="Scalars", icon=":material/show_chart:"),
        st.Page("pages/histograms.py", title="Histograms", icon=":material/bar_chart:"),
        st.Page("pages/embeddings.py", title="Embeddings", icon=":material/scatter_plot:"),
        st.Page("pages/graphs.py", title="Graphs", icon=":material/account_tree:"),
        st.Page("pages/parity.py", title="Parity", icon=":material/difference:"),
        st.Page("pages/upload.py", title="Upload", icon=":material/upload_file:"),
    ]
    st.navigation(pages).run()


run()
