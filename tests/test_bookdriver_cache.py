"""A corrupted execution cache is named, set aside and rebuilt, not fatal (issue 23, item 5).

Through ``python -m bookdriver build --root <a two-chapter book>``: the chapters print a line each, so
a build costs about 10 s (two kernels and Sphinx). The cache is damaged the ways a disk error or a
killed copy damages it: random bytes in its database ``global.db``, or a cached notebook that is
garbled, random bytes, or gone.

Run: ``.venv/bin/pytest tests/test_bookdriver_cache.py`` (``slow``: ~1 minute).
"""

import os
import shutil
import subprocess
import sys
from pathlib import Path

import nbformat
import pytest

pytestmark = pytest.mark.slow

REPO = Path(__file__).resolve().parents[1]
CHAPTERS = ("one", "two")


def tiny_book(root: Path) -> Path:
    """A book of an intro page and two one-line notebook chapters that builds without a warning."""
    (root / "chapters").mkdir(parents=True)
    (root / "profiles" / "smoke").mkdir(parents=True)
    (root / "_static").mkdir()
    (root / "_static" / "custom.css").write_text("")
    (root / "_config.yml").write_text(
        "title: t\nonly_build_toc_files: true\nexecute:\n  execute_notebooks: cache\n  timeout: 60\n"
    )
    (root / "references.bib").write_text("")
    shutil.copy(REPO / "CITATION.cff", root / "CITATION.cff")
    toc = "format: jb-book\nroot: chapters/intro\nparts:\n  - caption: Chapters\n    chapters:\n"
    (root / "_toc.yml").write_text(toc + "".join(f"      - file: chapters/{s}\n" for s in CHAPTERS))
    (root / "chapters" / "intro.md").write_text("# Intro\n")
    for stem in CHAPTERS:
        nb = nbformat.v4.new_notebook(
            metadata={"kernelspec": {"name": "python3", "language": "python", "display_name": "Python 3"}}
        )
        nb.cells = [
            nbformat.v4.new_markdown_cell(f"# Chapter {stem}"),
            nbformat.v4.new_code_cell("n: int = 2  # a number", metadata={"tags": ["parameters"]}),
            nbformat.v4.new_code_cell(f"print('chapter {stem}', n)"),
        ]
        nbformat.write(nb, root / "chapters" / f"{stem}.ipynb")
    return root


def build(root: Path) -> subprocess.CompletedProcess:
    cmd = [sys.executable, "-m", "bookdriver", "build", "--root", str(root), "--profile", "smoke", "--jobs", "1"]
    return subprocess.run(cmd, cwd=REPO, capture_output=True, text=True, timeout=900)


def warnings_of(proc) -> list[str]:
    return [line for line in proc.stderr.splitlines() if "warning" in line.lower()]


@pytest.fixture
def built(tmp_path):
    """A built two-chapter book; its execution cache folder."""
    root = tiny_book(tmp_path / "book")
    first = build(root)
    assert first.returncode == 0, first.stderr[-3000:]
    assert "2 chapters executed, 0 from the cache" in first.stderr
    return root, root / "_build" / "smoke" / "_build" / ".jupyter_cache"


@pytest.mark.parametrize("junk", [os.urandom(28672), b""], ids=["random bytes", "emptied"])
def test_a_cache_database_that_does_not_read_is_set_aside_named_and_rebuilt(built, junk):
    """One warning line naming ``global.db`` and where the cache went; the build executes every
    chapter again and succeeds; the damaged cache is kept byte for byte beside the new one; the
    next build finds everything in the new cache, without a warning."""
    root, cache = built
    (cache / "global.db").write_bytes(junk)
    again = build(root)
    assert again.returncode == 0, again.stderr[-3000:]
    assert "Traceback" not in again.stderr
    (line,) = warnings_of(again)
    (aside,) = cache.parent.glob(".jupyter_cache.corrupt-*")
    assert str(cache / "global.db") in line and str(aside) in line, line
    assert (aside / "global.db").read_bytes() == junk
    assert "2 chapters executed, 0 from the cache" in again.stderr
    third = build(root)
    assert third.returncode == 0 and not warnings_of(third), third.stderr[-3000:]
    assert "0 chapters executed, 2 from the cache" in third.stderr


def garble(path: Path) -> None:
    path.write_text('{"cells": [{"cell_type": "code", "sour')


def random_bytes(path: Path) -> None:
    path.write_bytes(os.urandom(4096))


def remove(path: Path) -> None:
    path.unlink()


@pytest.mark.parametrize("damage", [garble, random_bytes, remove], ids=lambda f: f.__name__)
def test_a_damaged_cached_notebook_is_set_aside_and_only_its_chapter_executes_again(built, damage):
    """One warning line naming the cached notebook's file and its chapter; that chapter executes
    again, the other comes from the cache; the damaged file is kept (when there is one)."""
    root, cache = built
    (notebook,) = [p for p in cache.glob("executed/*/base.ipynb") if "chapter two" in p.read_text()]
    damage(notebook)
    before = notebook.read_bytes() if notebook.exists() else None
    again = build(root)
    assert again.returncode == 0, again.stderr[-3000:]
    assert "Traceback" not in again.stderr
    (line,) = warnings_of(again)
    assert str(notebook) in line and "two.ipynb" in line, line
    assert "1 chapters executed, 1 from the cache" in again.stderr
    if before is not None:
        (kept,) = cache.parent.glob(f".jupyter_cache.corrupt-*/executed/{notebook.parent.name}/base.ipynb")
        assert kept.read_bytes() == before
        assert str(kept.parent.parent.parent) in line
