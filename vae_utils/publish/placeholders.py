"""Placeholders for a page whose data are missing: every figure, table and value its Markdown pastes
gets a stand-in that says why, so the book still builds and the page says what it could not measure.

    publish_placeholders("09_at_scale", "Not measured: the data are missing (...).",
                         published=["fm-data-note"], extra=["fm-bs-gap-note"])

The keys come from the page itself (``pasted``: the ``{glue:text}`` and ``{glue}`` roles and the
``{glue:md}`` and ``{glue:figure}`` directives of the chapter notebook's Markdown cells), so the
placeholders cannot drift from what the page pastes. A ``{glue:md}`` key ending in ``-figure`` is a
figure (``publish_figure``'s name plus that suffix), one ending in ``-table`` a table. The verdicts
of the chapter's claims table (``<id>`` and ``<id>-short``) are left to ``verdicts.Family``
(``not_testable``), the keys in ``published`` to the chapter; ``extra`` values are keys another page
reads (the book driver's side-by-side table) that this page does not paste.
"""

from __future__ import annotations

import json
import re
from collections.abc import Iterable
from pathlib import Path

__all__ = ["NO_DATA", "pasted", "chapter_markdown", "empty_figure", "publish_placeholders"]

NO_DATA = "n/a (no data)"  # what a value reads when nothing was measured
CHAPTERS = Path(__file__).resolve().parents[2] / "chapters"
_ROLE = re.compile(r"\{glue(?::text)?\}`([A-Za-z0-9_-]+)(?::[^`]*)?`")
_DIRECTIVE = re.compile(r"^\s*(?::{3,}|`{3,})\{glue:(md|figure)\}\s+([A-Za-z0-9_-]+)\s*$", re.M)


def pasted(markdown: str) -> dict[str, list[str]]:
    """The glue keys a page's Markdown pastes, by kind: ``value`` (roles), ``figure`` and ``table``
    (their names, without the ``-figure`` / ``-table`` suffix), ``markdown`` (other ``{glue:md}``);
    each once, in the order of the page."""
    out: dict[str, list[str]] = {"value": [], "figure": [], "table": [], "markdown": []}
    found = [(m.start(), "value", m.group(1)) for m in _ROLE.finditer(markdown)]
    for m in _DIRECTIVE.finditer(markdown):
        kind, key = m.group(1), m.group(2)
        if kind == "figure":
            found.append((m.start(), "figure", key))
        elif key.endswith(("-figure", "-table")):
            stem, _, suffix = key.rpartition("-")
            found.append((m.start(), suffix, stem))
        else:
            found.append((m.start(), "markdown", key))
    for _, kind, key in sorted(found):
        if key not in out[kind]:
            out[kind].append(key)
    return out


def chapter_markdown(chapter: str, chapters: Path = CHAPTERS) -> str:
    """The Markdown cells of ``chapters/<chapter>.ipynb``, joined; "" when the notebook is not there
    (the package installed without the book: nothing pastes glue then)."""
    path = Path(chapters) / f"{chapter}.ipynb"
    if not path.is_file():
        return ""
    cells = json.loads(path.read_text(encoding="utf-8"))["cells"]
    return "\n".join("".join(c["source"]) for c in cells if c["cell_type"] == "markdown")


def _verdict_keys(chapter: str) -> set[str]:
    """``<id>`` and ``<id>-short`` of every claim the chapter's table declares (none without a table)."""
    from ..claims.records import TABLES, load

    if not (TABLES / f"{chapter}.yaml").is_file():
        return set()
    return {k for r in load(chapter) for k in (r.id, f"{r.id}-short")}


def empty_figure(message: str):
    """A low panel that only says ``message``: the figure of a page with nothing to draw."""
    import matplotlib.pyplot as plt

    fig, ax = plt.subplots(figsize=(6.4, 1.2))
    ax.axis("off")
    ax.text(0.5, 0.5, message, ha="center", va="center")
    return fig


def _figure(name: str, reason: str) -> None:
    from .figures import publish_figure

    fig = empty_figure("No data: not measured in this build.")
    publish_figure(fig, name, f"No data. {reason}", None, alt="An empty panel: the data were missing.", display=False)


def publish_placeholders(
    chapter: str, reason: str, published: Iterable[str] = (), extra: Iterable[str] = (), markdown: str | None = None
) -> dict[str, list[str]]:
    """In a notebook: a placeholder for every key the page of ``chapter`` pastes (its ``markdown``, by
    default read from the notebook) that is neither a verdict of its claims table nor in ``published``,
    and a value for every key of ``extra``: a figure and a table that say ``reason``, values that read
    ``NO_DATA``. Returns the keys it published, by kind."""
    import pandas as pd
    from IPython.display import Markdown
    from myst_nb import glue

    from ..claims.verdicts import publish_value
    from .tables import publish_table

    skip = set(published) | _verdict_keys(chapter)
    keys = pasted(chapter_markdown(chapter) if markdown is None else markdown)
    keys = {kind: [k for k in ks if k not in skip] for kind, ks in keys.items()}
    keys["value"] += [k for k in extra if k not in skip and k not in keys["value"]]
    for name in keys["figure"]:
        _figure(name, reason)
    for name in keys["table"]:
        publish_table(pd.DataFrame({"note": [reason]}), name, f"No data. {reason}", display=False)
    for key in keys["value"]:
        publish_value(key, NO_DATA)
    for key in keys["markdown"]:
        glue(key, Markdown(f"*{reason}*"), display=False)
    return keys
