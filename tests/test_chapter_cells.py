"""What a reader sees of each chapter's code: read from the chapter notebooks, no kernel.

Run: ``.venv/bin/pytest tests/test_chapter_cells.py`` (a second).

Bookkeeping (gluing values, publishing figures, tables and verdicts) is removed from the page, so no
visible cell calls a glue or publishing helper; every figure is shown once (a cell that publishes a
figure hides its own copy, and the chapter pastes the glued figure once); the driver's injected
parameters do not open the page.
"""

import re
from pathlib import Path

import nbformat
import pytest

REPO = Path(__file__).resolve().parents[1]
CHAPTERS = sorted((REPO / "chapters").glob("*.ipynb"))
HIDDEN = {"remove-cell", "remove-input"}
HELPERS = re.compile(r"\b(glue|publish_figure|publish_table|publish_data|publish_value|publish)\(")
FIGURE_NAME = re.compile(r"publish_figure\(\s*\w+,\s*f?\"([A-Za-z0-9_-]+)\"")


def _tags(cell) -> set:
    return set(cell.metadata.get("tags", []))


@pytest.mark.parametrize("path", CHAPTERS, ids=lambda p: p.stem)
def test_no_visible_cell_calls_glue_or_a_publishing_helper(path):
    nb = nbformat.read(path, as_version=4)
    visible = [
        c.source.splitlines()[0]
        for c in nb.cells
        if c.cell_type == "code" and not _tags(c) & HIDDEN and HELPERS.search(c.source)
    ]
    assert visible == []


@pytest.mark.parametrize("path", CHAPTERS, ids=lambda p: p.stem)
def test_each_figure_is_shown_once(path):
    """A cell that publishes a figure hides its output (remove-cell or remove-output), and the page
    pastes each figure exactly once (its ``-figure`` glue, or a ``{glue:figure}`` of its name)."""
    nb = nbformat.read(path, as_version=4)
    shown_twice = [
        c.source.splitlines()[0]
        for c in nb.cells
        if c.cell_type == "code" and "publish_figure(" in c.source and not _tags(c) & {"remove-cell", "remove-output"}
    ]
    assert shown_twice == []
    text = "\n".join(c.source for c in nb.cells if c.cell_type == "markdown")
    for name in FIGURE_NAME.findall("\n".join(c.source for c in nb.cells if c.cell_type == "code")):
        pastes = len(re.findall(rf"{{glue:md}} {re.escape(name)}-figure\b", text))
        pastes += len(re.findall(rf"{{glue:figure}} {re.escape(name)}\n", text))
        assert pastes == 1, (name, pastes)
