"""Any value written into a page as literal text: Markdown (MyST) text, a Markdown code span, HTML.

    from vae_utils.publish.markup import md_escape, md_code, html_escape
    f"# Training advice for {md_escape(name)}"     # renders as written, whatever ``name`` holds
    f"| {md_code(value)} |"                         # a code span no backtick in ``value`` can close
    f"<title>{html_escape(title)}</title>"

The one place the toolkit and the book driver (``bookdriver``) make a value that is not theirs (a
reader's parameter, a file name, a store name) safe to paste into a page, a MyST directive or a
report: such a value never becomes markup, a role, a substitution, math or raw HTML.
"""

from __future__ import annotations

import html
import re

__all__ = ["md_escape", "md_code", "md_cell", "html_escape"]

# Characters CommonMark or a MyST extension the book enables reads anywhere in a line: emphasis, links,
# raw HTML and entities, code spans, tables, roles ({name}`x`), substitutions ({{ x }}), dollar math;
# and '.', ':', '@', which linkify reads as a link (x.com, http://..., a@b.org) unless one is escaped.
_MD_INLINE = re.compile(r"([!$&*.:<>@\[\\\]_`{|}~])")
# At the start of a line any punctuation may open a block (# heading, - list, ::: fence, % comment,
# (label)= target, > quote, +++ break): a value's first character is escaped when it is punctuation.
_PUNCTUATION = re.compile(r"""([!-/:-@\[-`{-~])""")
_LINE_BREAKS = re.compile(r"[\r\n]+")  # a line break in a value could start a block (or end a table row)


def _one_line(value) -> str:
    return _LINE_BREAKS.sub(" ", str(value))


def md_escape(value) -> str:
    """``value`` as Markdown text on one line that MyST renders exactly as written (special
    characters backslash-escaped, line breaks as spaces)."""
    text = _one_line(value)
    first = len(text) - len(text.lstrip()) + 1  # up to the first character that is not a space
    return _PUNCTUATION.sub(r"\\\1", text[:first]) + _MD_INLINE.sub(r"\\\1", text[first:])


def md_code(value) -> str:
    """``value`` as a Markdown code span on one line: its fence is one backtick longer than the longest
    run of backticks inside, so the value cannot close it (CommonMark reads nothing inside a span)."""
    text = _one_line(value) or " "  # an empty span would read as two backticks
    runs = [len(r) for r in re.findall(r"`+", text)]
    fence = "`" * (max(runs, default=0) + 1)
    if text.startswith("`") or text.endswith("`") or (text.startswith(" ") and text.endswith(" ") and text.strip()):
        text = f" {text} "  # CommonMark strips one space on each side of such a span
    return f"{fence}{text}{fence}"


def md_cell(markdown: str) -> str:
    """Markdown (already escaped or a code span) as one cell of a pipe table: every '|' escaped,
    inside code spans too (the table reads ``\\|`` as a literal bar before the cell is parsed)."""
    return _one_line(markdown).replace("|", "\\|")


def html_escape(value) -> str:
    """``value`` as HTML text or an attribute value (``&``, ``<``, ``>`` and both quotes escaped)."""
    return html.escape(str(value), quote=True)
