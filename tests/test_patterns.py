"""No regex that can hang, rule outputs that cannot blow up, and text from uploads shown as text.

The adversarial inputs are the classic catastrophic-backtracking ones: on 30 characters Python's re
tries ~2^30 ways before it gives up (minutes); RE2 answers in microseconds.
"""
from __future__ import annotations

import subprocess
import sys
import time

import pytest

from twinboard import scalars, tagmap, text
from twinboard.tagmap import Mapping, MappingError, Rule

ADVERSARIAL = "a" * 30  # no 'b' / 'X' at the end: a backtracking engine tries every split first


def elapsed(fn) -> float:
    start = time.perf_counter()
    fn()
    return time.perf_counter() - start


def test_the_inputs_really_hang_pythons_re():
    """The same pattern and text in Python's re, in a child process: still busy after 2 s."""
    code = f"import re; re.search(r'(.+)+X', {ADVERSARIAL!r})"
    with pytest.raises(subprocess.TimeoutExpired):
        subprocess.run([sys.executable, "-c", code], timeout=2, check=False)  # killed on timeout


def test_a_tag_filter_cannot_hang():
    tags = [ADVERSARIAL, "loss/train", ADVERSARIAL + "X"]
    took = elapsed(lambda: scalars.filter_tags(tags * 100, "(.+)+X"))
    assert scalars.filter_tags(tags, "(.+)+X") == [ADVERSARIAL + "X"]
    assert took < 0.25, f"filtering 300 tags took {took:.3f} s"


@pytest.mark.parametrize("rule", [Rule("(?:a|a)*b", ".*", "x"), Rule(".*", "(?:a|a)*b", "x"),
                                  Rule("(a+)+b", "(.+)+X", "x"), Rule("(?P<m>a|a)*b", "(?P=m)", "{m}")])
def test_a_mapping_rule_cannot_hang(rule):
    mapping = Mapping((rule,))
    took = elapsed(lambda: [tagmap.resolve(ADVERSARIAL + str(i), ADVERSARIAL, mapping) for i in range(100)])
    assert tagmap.resolve(ADVERSARIAL, ADVERSARIAL, mapping) == (ADVERSARIAL, None)  # no match: kept
    assert took < 0.25, f"100 look-ups took {took:.3f} s"


def test_merge_children_is_re2_too(tmp_path):
    mapping = Mapping(merge_children="(?:a|a)*b")
    (tmp_path / ADVERSARIAL).mkdir()
    (tmp_path / ADVERSARIAL / "events.out.tfevents.1.h").write_bytes(b"")
    assert elapsed(lambda: tagmap.companions(tmp_path, mapping)) < 0.25
    with pytest.raises(MappingError, match="merge_children"):
        Mapping(merge_children="(?<=a)b")


def test_patterns_are_capped_and_named():
    long = "a" * (tagmap.MAX_PATTERN_CHARS + 1)
    with pytest.raises(scalars.TagFilterError, match=f"tag filter 'aaa.*is {len(long)} characters; the cap is 500"):
        scalars.filter_tags(["a"], long)
    with pytest.raises(MappingError, match="run pattern 'aaa.*the cap is 500"):
        Mapping((Rule(long, "x", "y"),))
    assert scalars.filter_tags(["a" * 500], "a" * 500) == ["a" * 500]  # at the cap: fine
    with pytest.raises(MappingError, match=r"'\(\?<=a\)b' is not a valid regular expression.*lookaround"):
        Mapping((Rule("(?<=a)b", "x", "y"),))
    with pytest.raises(MappingError, match=r"\(\?P=nope\) in the tag pattern names no group"):
        Mapping((Rule("(?P<m>a)", "(?P=nope)", "{m}"),))
    with pytest.raises(MappingError, match="group name 'm' is defined twice"):
        Mapping((Rule("(?P<m>a)", "(?P<m>b)", "{m}"),))


@pytest.mark.parametrize("to,why", [
    ("{metric:>200000000}", "{metric:>200000000}"),  # a 200 MB string from str.format
    ("{metric.__class__}", "{metric.__class__}"),
    ("{metric[0]}", "{metric[0]}"),
    ("{metric!r}", "{metric!r}"),
    ("{0}", "{0}"),
    ("{}", "{}"),
])
def test_rule_outputs_take_plain_fields_only(to, why):
    shown = why.replace("[", r"\[").replace("{", r"\{")
    with pytest.raises(MappingError, match=f"field '{shown}' is not allowed"):
        Mapping((Rule("(?P<metric>.+)", ".*", to),))


def test_rule_output_length_is_capped_when_saved_and_when_applied():
    with pytest.raises(MappingError, match="is 201 characters; the cap is 200"):
        Mapping((Rule(".*", ".*", "x" * 201),))
    with pytest.raises(MappingError, match="needs group 'nope', which the patterns do not define"):
        Mapping((Rule("(?P<m>.+)", ".*", "{m}/{nope}"),))
    assert tagmap.resolve("r", "t", Mapping((Rule(".*", ".*", "{{literal}}"),)))[0] == "{literal}"
    doubled = Mapping((Rule(".*", "(?P<m>.+)", "{m}/{m}"),))
    assert tagmap.resolve("r", "x" * 99, doubled)[0] == "x" * 99 + "/" + "x" * 99  # 199 characters
    with pytest.raises(MappingError, match=r"makes a tag of 201 characters; the cap is 200 \(run 'r', tag 'xxx"):
        tagmap.resolve("r", "x" * 100, doubled)


def test_run_groups_required_in_the_tag_are_literal_text():
    m = Mapping((Rule("(?:.*/)?(?P<m>[^/]+)_(?P<s>train|val)", "(?i:(?P=m))", "{m}/{s}"),))
    assert tagmap.resolve("up/a.b_val", "A.B", m)[0] == "a.b/val"  # case-insensitive, as in the rule
    assert tagmap.resolve("up/a.b_val", "axb", m)[0] == "axb"  # the '.' of the run name is a dot
    assert tagmap.resolve("up/(x+)_train", "(x+)", m)[0] == "(x+)/train"


# --- text from uploads is text ---------------------------------------------------------------------
HOSTILE = ["[x](http://evil)", "![i](http://evil/i.png)", "<img src=x onerror=alert(1)>",
           ":red[alert] :material/home: $x^2$", "# heading", "*bold* _it_ `code`", "a\nb\r\nc"]


@pytest.mark.parametrize("name", HOSTILE)
def test_md_escapes_every_markdown_and_html_construct(name):
    out = text.md(name)
    unescaped = out.replace("\\\\", "")
    for ch in "[]()!<>:$#*_`":  # each special character appears only escaped
        assert all(unescaped[i - 1] == "\\" for i, c in enumerate(unescaped) if c == ch), (ch, out)
    assert "\n" not in out and "\r" not in out
    assert out.replace("\\", "") == " ".join(name.replace("\r\n", "\n").split("\n")).replace("\\", "")


def test_md_exact_forms_and_bounds():
    assert text.md("[x](http://evil)") == r"\[x\]\(http\:\/\/evil\)"
    assert text.md("<img src=x onerror=alert(1)>") == r"\<img src\=x onerror\=alert\(1\)\>"
    assert text.md("plain name 42") == "plain name 42"
    assert text.md("y" * 600) == "y" * 500 + "…"
    assert text.md("a\x00b\x1bc") == "abc"
    assert text.md_list(["a", "[b]"] + ["c"] * 30, shown=3) == r"a, \[b\], c and 29 more"
    assert text.md_items([("e.zip:x", "bad"), ("f", "<b>")], shown=1) == "- **e\\.zip\\:x**: bad\n- … and 1 more"


def test_code_spans_hold_any_name():
    assert text.code("uploads/bob/train") == "` uploads/bob/train `"
    assert text.code("a`b``c") == "``` a`b``c ```"  # a fence longer than any backtick run inside
    assert text.code("[x](http://evil)\nline") == "` [x](http://evil) line `"


def test_html_escapes_plotly_markup_and_template_fields():
    assert text.html("<img src=x onerror=alert(1)>") == "&lt;img src=x onerror=alert(1)&gt;"
    assert text.html('<a href="http://evil">x</a>') == "&lt;a href=&#34;http://evil&#34;&gt;x&lt;/a&gt;"
    assert text.html("loss %{y} & 'q'<br>") == "loss &#37;{y} &amp; &#39;q&#39;&lt;br&gt;"
    assert text.html("a\nb") == "a b" and text.html("z" * 600).endswith("…")


def test_sizes_read_like_the_caps():
    assert [text.size(n) for n in (512, 1536, 50 << 20, 1 << 30)] == ["512 bytes", "1.5 KiB", "50 MiB", "1 GiB"]
