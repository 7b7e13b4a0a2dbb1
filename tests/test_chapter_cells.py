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


def _markdown_sources():
    for path in sorted((REPO / "chapters").glob("*.md")):
        yield path.name, path.read_text(encoding="utf-8")
    for path in CHAPTERS:
        nb = nbformat.read(path, as_version=4)
        yield path.name, "\n".join(c.source for c in nb.cells if c.cell_type == "markdown")


def test_no_heading_carries_a_hand_written_number():
    """Sphinx numbers the sections ("9.1."); a heading "## 1. ..." would read "9.1. 1."."""
    numbered = {name: re.findall(r"^#{1,6} \d+[.)] .*$", text, re.M) for name, text in _markdown_sources()}
    assert {name: found for name, found in numbered.items() if found} == {}


def _captions():
    """(chapter, figure name, caption text) of every ``publish_figure`` call with a literal caption
    (an f-string's fields read as "{}")."""
    import ast

    for path in CHAPTERS:
        for cell in nbformat.read(path, as_version=4).cells:
            if cell.cell_type != "code" or "publish_figure(" not in cell.source:
                continue
            for node in ast.walk(ast.parse(cell.source)):
                if (
                    isinstance(node, ast.Call)
                    and getattr(node.func, "id", "") == "publish_figure"
                    and len(node.args) > 2
                ):
                    name, caption = node.args[1], node.args[2]
                    parts = caption.values if isinstance(caption, ast.JoinedStr) else [caption]
                    text = "".join(p.value if isinstance(p, ast.Constant) else "{}" for p in parts)
                    yield path.stem, getattr(name, "value", "?"), text


def test_no_caption_repeats_its_own_title():
    """The caption's second sentence does not start over with the title's words ("Training and test
    ELBO against ... Training and test ELBO (β = 1) against ...")."""
    from vae_utils.publish.figures import split_title

    def words(text, n=4):
        return [w.strip(".,:;()").lower() for w in text.split()[:n]]

    repeats = []
    for stem, name, text in _captions():
        title, rest = split_title(text)
        if rest and words(rest) == words(title):
            repeats.append((stem, name))
    assert repeats == []
    assert len(list(_captions())) > 20
