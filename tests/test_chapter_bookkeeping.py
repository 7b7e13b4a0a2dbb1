"""Chapters read like lectures: the code a reader sees is the experiment, not its bookkeeping.

Bookkeeping is every statement that publishes (figures, tables, values, verdict boxes, run tables),
glues, displays Markdown, or imports the publishing helpers; building the family of claims is the
design (Holm's family), not bookkeeping. Issue 17 set the bounds: at most a quarter of a chapter's code
(counted in statements, so that line breaks do not matter), and at most half of the 2,311 hidden lines
the notebook chapters had before the claim tables (hidden: cells tagged remove-* or hide-*).
"""

from __future__ import annotations

import ast
import json
from pathlib import Path

import pytest

REPO = Path(__file__).resolve().parents[1]
NOTEBOOKS = sorted((REPO / "chapters").glob("*.ipynb"))
HIDDEN_BEFORE = 2311  # hidden code lines of the notebook chapters before issue 17
CLAIM_CHAPTERS = {
    p.stem for p in (REPO / "vae_utils" / "claims" / "tables").glob("*.yaml")
}  # chapters that judge claims
BOOKKEEPING_CALLS = {"publish_figure", "publish_table", "publish_data", "publish_value", "publish_values", "glue",
                     "publish", "display", "Markdown", "runs_used", "publish_runs", "publish_missing"}  # fmt: skip
BOOKKEEPING_MODULES = ("vae_utils.publish", "myst_nb", "IPython.display", "vae_utils.experiments.ledger")


def _cells(path: Path) -> list[tuple[list[str], str]]:
    nb = json.loads(path.read_text(encoding="utf-8"))
    return [
        (c.get("metadata", {}).get("tags", []), "".join(c["source"])) for c in nb["cells"] if c["cell_type"] == "code"
    ]


def _names(node: ast.AST) -> set[str]:
    out = set()
    for n in ast.walk(node):
        if isinstance(n, ast.Call):
            f = n.func
            out.add(f.attr if isinstance(f, ast.Attribute) else getattr(f, "id", ""))
    return out


def _is_bookkeeping(stmt: ast.stmt) -> bool:
    if isinstance(stmt, ast.Import | ast.ImportFrom):
        mods = [stmt.module or ""] if isinstance(stmt, ast.ImportFrom) else [a.name for a in stmt.names]
        return any(m.startswith(BOOKKEEPING_MODULES) for m in mods)
    if isinstance(stmt, ast.If | ast.For | ast.With | ast.Try):
        return False  # judged by the statements inside
    return bool(_names(stmt) & BOOKKEEPING_CALLS)


def _bookkeeping_lines(source: str) -> tuple[int, int]:
    """(statements, bookkeeping statements) of one cell. Statements, not physical lines: how a formatter
    breaks a call over lines changes nothing. A compound statement (if, for, with) counts the simple
    statements inside it; a magic (%pip) is one statement of code."""
    lines = source.splitlines()
    magic = lambda ln: ln[: len(ln) - len(ln.lstrip())] + "pass"  # keeps the indentation
    text = "\n".join(magic(ln) if ln.lstrip().startswith(("%", "!")) else ln for ln in lines)
    simple = [s for s in ast.walk(ast.parse(text)) if isinstance(s, ast.stmt) and not _compound(s)]
    simple = [s for s in simple if not (isinstance(s, ast.Expr) and isinstance(s.value, ast.Constant))]  # docstrings
    return len(simple), sum(_is_bookkeeping(s) for s in simple)


def _compound(stmt: ast.stmt) -> bool:
    return isinstance(stmt, ast.If | ast.For | ast.While | ast.With | ast.Try | ast.FunctionDef | ast.ClassDef)


def _hidden(tags: list[str]) -> bool:
    return any(t.startswith(("remove", "hide")) for t in tags)


def _counts(path: Path) -> dict:
    total = book = hidden = 0  # statements, bookkeeping statements, hidden physical lines
    for tags, source in _cells(path):
        if "parameters" in tags or "injected-parameters" in tags:
            continue
        code, kept = _bookkeeping_lines(source)
        total, book = total + code, book + kept
        hidden += len(source.splitlines()) if _hidden(tags) else 0
    return {"code": total, "bookkeeping": book, "hidden": hidden}


@pytest.mark.parametrize("path", [p for p in NOTEBOOKS if p.stem in CLAIM_CHAPTERS], ids=lambda p: p.stem)
def test_bookkeeping_is_at_most_a_quarter_of_a_chapters_code(path):
    c = _counts(path)
    assert c["bookkeeping"] <= 0.25 * c["code"], c


def test_the_chapters_hide_at_most_half_the_code_they_hid_before_the_claim_tables():
    hidden = sum(_counts(p)["hidden"] for p in NOTEBOOKS)
    assert hidden <= HIDDEN_BEFORE / 2, hidden


def test_the_count_sees_publishing_as_bookkeeping():
    """The check can fail: a cell that only publishes is all bookkeeping."""
    code, kept = _bookkeeping_lines(
        'publish_figure(\n    fig,\n    "x",\n    "Caption.",\n)\nverdicts.publish_values("x", {})'
    )
    assert (code, kept) == (2, 2)
    assert _bookkeeping_lines("x = train(config)\nif x:\n    fig = plots.plot_history(x)") == (2, 0)
