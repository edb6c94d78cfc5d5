"""Text a visitor controls (run, tag and upload names, projector metadata, their error messages),
made safe for the two places that would read it as markup.

Streamlit renders every label, st.success/st.error/st.warning message and st.markdown as Markdown
(with its own extras: `:red[...]` colours, `:material/icon:`, `$...$` LaTeX), so a run named
`[x](http://evil)` would become a link and `![i](http://evil/i.png)` a request to another host.
Plotly reads hover text, trace names and titles as a subset of HTML (`<a href>`, `<b>`, `<br>`), and
hovertemplates substitute `%{...}`. `md` and `html` turn any string into text that shows as itself.
"""
from __future__ import annotations

import html as _html
import re

# CommonMark lets a backslash escape any ASCII punctuation, and only that: escaping all of it turns
# off every construct (links, images, emphasis, code, headings, lists, tables, HTML, Streamlit's
# directives and LaTeX) without having to know which ones a given renderer supports.
_MD_SPECIAL = re.compile(r"([!-/:-@\[-`{-~])")
_LINE_BREAKS = re.compile(r"[\r\n\u2028\u2029]+")
_CONTROL = re.compile(r"[\x00-\x08\x0b\x0c\x0e-\x1f\x7f]")


def _clean(text: object, limit: int | None) -> str:
    """str(text) on one line (line breaks -> spaces), control characters dropped, cut at `limit`."""
    s = _CONTROL.sub("", _LINE_BREAKS.sub(" ", str(text)))
    return s[:limit] + "…" if limit is not None and len(s) > limit else s


def md(text: object, limit: int | None = 500) -> str:
    """`text` (str() of it) as Markdown that renders as exactly that text, on one line.

    Line breaks become spaces (a newline could start a heading or a table inside a label), control
    characters are dropped, and past `limit` characters (None: no limit) the text is cut with an
    ellipsis so a 100 kB name cannot fill the page. Not for use inside backticks: a code span shows
    backslashes literally."""
    return _MD_SPECIAL.sub(r"\\\1", _clean(text, limit))


def code(text: object, limit: int | None = 500) -> str:
    """`text` as a whole Markdown code span (backticks included): for names shown in monospace.

    A name holding a backtick would close a plain `...` span early and the rest would be read as
    Markdown; the fence here is one backtick longer than any run inside, and the padding spaces
    are the ones CommonMark strips. Line breaks, control characters and `limit` as in `md`.
    (Streamlit still shows `:material/x:` inside a code span as `:material_x:`; text all the same.)"""
    s = _clean(text, limit)
    fence = "`" * (max((len(run) for run in re.findall(r"`+", s)), default=0) + 1)
    return f"{fence} {s} {fence}"


def md_list(items: list, shown: int = 20, limit: int = 200) -> str:
    """The first `shown` items, each through `md` (cut at `limit`), joined by ", ", then
    "and N more": an archive of 10,000 folders is one short line."""
    more = f" and {len(items) - shown} more" if len(items) > shown else ""
    return ", ".join(md(i, limit) for i in items[:shown]) + more


def md_items(items: list[tuple[object, object]], shown: int = 20) -> str:
    """A Markdown bullet list, `- **name**: reason` for each (name, reason) pair, both through `md`;
    past `shown` items one last bullet counts the rest."""
    lines = [f"- **{md(name, 200)}**: {md(reason)}" for name, reason in items[:shown]]
    return "\n".join(lines + ([f"- … and {len(items) - shown} more"] if len(items) > shown else []))


def html(text: object, limit: int | None = 500) -> str:
    """`text` (str() of it) as plotly text (hover, trace names, titles) that shows as exactly that.

    `<`, `>`, `&` and quotes become entities, and `%` becomes `&#37;` so `%{...}` in a name is not
    a hovertemplate field (plotly decodes numeric entities after substituting fields). Line breaks
    become spaces, and past `limit` characters (None: no limit) the text is cut with an ellipsis."""
    # Numeric entities for quotes: plotly.js decodes those, but shows `&quot;` literally.
    return (_html.escape(_clean(text, limit), quote=False).replace('"', "&#34;").replace("'", "&#39;")
            .replace("%", "&#37;"))


def size(n: int) -> str:
    """Bytes for people, in binary units as the caps are set: 1073741824 -> '1 GiB', 1536 -> '1.5 KiB'."""
    value = float(n)
    for unit in ("bytes", "KiB", "MiB", "GiB", "TiB"):
        if abs(value) < 1024 or unit == "TiB":
            break
        value /= 1024
    return f"{int(n)} bytes" if unit == "bytes" else f"{value:.4g} {unit}"
