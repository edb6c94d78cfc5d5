"""Patterns a visitor types (tag filters, mapping rules) compiled by RE2, and rule outputs checked.

Python's `re` backtracks: `(.+)+X` on 30 characters without an X takes seconds to minutes, holding
the interpreter (and every session of a shared server) for that long. RE2 matches in time linear in
the text, so no pattern can hang a page; it has no backreferences or lookaround, which is what
linear time costs. Patterns are also capped in length, so compiling one is cheap as well.

A rule's output (`to`) is a template of plain `{name}` fields only: `str.format` would also take
format specs (`{metric:>200000000}` builds a 200 MB string) and attribute or index access
(`{m.__class__}`), so templates are parsed here and filled by `fill`, never by `str.format`.
"""
from __future__ import annotations

import functools
import re
import string

import re2

MAX_PATTERN_CHARS = 500  # a pattern longer than this is refused before it is compiled
MAX_TO_CHARS = 200  # a rule's output template, and the tag it produces, at most this long
_FIELD = re.compile(r"[A-Za-z_][A-Za-z0-9_]*")  # fixed and linear: a group name, nothing more


class PatternError(ValueError):
    """A pattern or template that cannot be used; the message names it and says why."""


def _shown(text: str, limit: int = 80) -> str:
    """`text` quoted for a message, cut so a 100 kB paste does not become a 100 kB error."""
    return repr(text if len(text) <= limit else text[:limit] + "…")


def compile_pattern(text: str, what: str, ignore_case: bool = False,
                    max_chars: int | None = MAX_PATTERN_CHARS) -> re2._Regexp:
    """`text` compiled by RE2 (Perl-like syntax without backreferences or lookaround).

    `what` names the pattern in the message of the PatternError raised for a non-string, a
    pattern over `max_chars` (None: no cap, for patterns built here from escaped names), or one
    RE2 refuses."""
    if max_chars is not None:
        capped(text, what, max_chars)
    elif not isinstance(text, str):
        raise PatternError(f"{what}: {text!r} is not text")
    return _compile(text, what, ignore_case)


def capped(text: str, what: str, max_chars: int = MAX_PATTERN_CHARS) -> str:
    """`text` itself, or PatternError naming it when it is not a string or over `max_chars`."""
    if not isinstance(text, str):
        raise PatternError(f"{what}: {text!r} is not text")
    if len(text) > max_chars:
        raise PatternError(f"{what} {_shown(text)} is {len(text)} characters; the cap is {max_chars}")
    return text


@functools.lru_cache(maxsize=1024)  # the Scalars filter and every rule are looked up on each page run
def _compile(text: str, what: str, ignore_case: bool) -> re2._Regexp:
    options = re2.Options()
    options.log_errors = False  # the error comes back as PatternError; RE2 would also print it to stderr
    options.case_sensitive = not ignore_case
    try:
        return re2.compile(text, options)
    except re2.error as e:
        reason = e.args[0].decode(errors="replace") if e.args and isinstance(e.args[0], bytes) else str(e)
        # Python's re on the pattern text is safe here: no nested repeats, and the text is capped.
        hint = ("; backreferences and lookaround are not supported (matching must stay linear-time)"
                if re.search(r"\(\?(?:P=|<?[=!])|\\[1-9]", text) else "")
        raise PatternError(f"{what} {_shown(text)} is not a valid regular expression: {reason}{hint}") from None


def literal(text: str) -> str:
    """A pattern matching exactly `text` (every non-alphanumeric escaped, as RE2 reads it)."""
    return "(?:" + re2.escape(text) + ")"


def template_fields(template: str, what: str) -> tuple[str, ...]:
    """The group names a rule's output template uses, in order; PatternError for anything but
    literal text and plain `{name}` fields (`{{`/`}}` are literal braces), or a template over
    MAX_TO_CHARS."""
    capped(template, what, MAX_TO_CHARS)
    fields = []
    try:
        parsed = list(string.Formatter().parse(template))
    except ValueError as e:  # an unmatched brace
        raise PatternError(f"{what} {_shown(template)}: {e}") from None
    for _, field, spec, conversion in parsed:
        if field is None:
            continue
        if not _FIELD.fullmatch(field) or spec or conversion:
            shown = "{" + field + (f"!{conversion}" if conversion else "") + (f":{spec}" if spec else "") + "}"
            raise PatternError(f"{what} {_shown(template)}: field {_shown(shown)} is not allowed; "
                               "only plain {name} fields naming a group of the rule")
        fields.append(field)
    return tuple(fields)


def fill(template: str, groups: dict[str, str], what: str) -> str:
    """`template` with each `{name}` replaced by groups[name]. PatternError for a field no group
    filled, or a result over MAX_TO_CHARS (a long captured name); measured before it is built."""
    parts = list(string.Formatter().parse(template))
    size = 0
    for literal, field, _, _ in parts:
        if field is not None and field not in groups:
            raise PatternError(f"{what}: {template!r} needs group {field!r}, which the rule did not capture")
        size += len(literal) + (len(groups[field]) if field is not None else 0)
    if size > MAX_TO_CHARS:
        raise PatternError(f"{what}: {template!r} makes a tag of {size} characters; the cap is {MAX_TO_CHARS}")
    return "".join(literal + (groups[field] if field is not None else "") for literal, field, _, _ in parts)
