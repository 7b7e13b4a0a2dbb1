"""Pages made from the executed chapters, written into the staged sources just before Sphinx runs.

Nothing on these pages is typed by hand: each is computed from what the chapters published when they
executed (read from the execution cache), from the build's parameters, or from ``CITATION.cff``.

* ``_static/verdicts.json``: every verdict, machine-readable (served at ``<html>/_static/verdicts.json``).
* ``_generated/findings.md``: every verdict by chapter, included by the Findings page.
* ``_generated/outcomes.md``, ``answers.md``, ``conclusion.md``, ``recipe-<topic>.md``: the vocabulary, the
  landing page's answers, the conclusion's table and the Recipe's lines, rendered from the claim records
  and the verdicts (``bookdriver.claim_pages``).
* ``_generated/at-scale.md``: the at-scale chapter's table of each claim on digits beside Fashion-MNIST.
* ``_generated/figures.md``: the figure index (number, title, chapter, downloads), and
  ``_generated/figure-citations.md``: a citation per figure (text and BibTeX), for How to cite.
* ``_generated/parameters.md`` and ``_generated/environment.md``: the build's parameters and
  software, for the Reproducing appendix (so a parameter file for one chapter re-executes that
  chapter only: no notebook receives every chapter's parameters).
* Every Markdown page that names a verdict or a quantity (``{{ v_<id> }}``, ``{{ q_<id> }}``) gets
  them as front-matter substitutions (``bookdriver.findings``).
* ``_config.yml``: the book's address and repository from ``CITATION.cff``, the one place they are
  written (the theme's repository and issue buttons use them).

After Sphinx, ``public_reports`` rewrites its execution reports (``<html>/reports/**/*.err.log``) with
paths relative to the repository (``vae_utils.localpaths``): a published file names no local folder.
"""

from __future__ import annotations

import json
import platform
from pathlib import Path

from vae_utils.claims.records import TOPICS
from vae_utils.publish.markup import html_escape, md_cell, md_code, md_escape

from . import claim_pages
from .findings import (
    MIME_TYPE,
    VALUE_MIME_TYPE,
    findings_markdown,
    front_matter,
    read_verdicts,
    scale_comparison_markdown,
    substitutions,
    verdict_keys,
)
from .paths import BookPaths

__all__ = ["generate", "citation", "public_reports", "FIGURE_MIME_TYPE", "TABLE_MIME_TYPE"]

FIGURE_MIME_TYPE = "application/vnd.vae-figure+json"  # vae_utils.publish.figures.MIME_TYPE
TABLE_MIME_TYPE = "application/vnd.vae-table+json"  # vae_utils.publish.tables.MIME_TYPE
PACKAGES = ("tensorflow", "tensorflow-cpu", "keras", "numpy", "pandas", "scipy", "scikit-learn", "matplotlib",
            "seaborn", "jupyter-book", "myst-nb", "sphinx", "papermill", "jupyter-cache")  # fmt: skip


def citation(root: Path) -> dict:
    """The book's citation data from ``CITATION.cff``: title, authors, year, url, repository."""
    import yaml

    cff = yaml.safe_load((root / "CITATION.cff").read_text(encoding="utf-8"))
    authors = [
        a.get("name") or f"{a.get('given-names', '')} {a.get('family-names', '')}".strip()
        for a in cff.get("authors", [])
    ]
    return {
        "title": cff["title"],
        "authors": authors,
        "year": str(cff.get("date-released", ""))[:4],
        "url": cff.get("url", "").rstrip("/"),
        "repository": cff.get("repository-code", "").rstrip("/"),
    }


def _config(paths: BookPaths, cite: dict) -> bytes:
    """The staged ``_config.yml``: the repository's, with the title, address and repository from CITATION.cff."""
    import yaml

    cfg = yaml.safe_load((paths.root / "_config.yml").read_text(encoding="utf-8"))
    cfg["title"] = cite["title"]  # the site's title is the title a citation gives
    cfg.setdefault("repository", {})["url"] = cite["repository"]
    cfg.setdefault("html", {})["baseurl"] = cite["url"] + "/"
    head = "# Staged by bookdriver from _config.yml; repository and baseurl from CITATION.cff\n"
    return (head + yaml.safe_dump(cfg, sort_keys=False, allow_unicode=True)).encode()


def _table(rows: list[list[str]], header: list[str]) -> str:
    """A pipe table of Markdown cells (a value from outside goes through ``md_escape`` or ``md_code`` first)."""
    cells = [header, ["---"] * len(header), *rows]
    return "\n".join("| " + " | ".join(md_cell(c) for c in r) + " |" for r in cells) + "\n"


def _download(name: str, files=None) -> str:
    """Links to a figure's files (raw HTML: MyST would read a Markdown link as a cross-reference)."""
    base = "../_static/figures/" + html_escape(name)
    kinds = [f.rsplit(".", 1)[1] for f in files] if files else ["svg", "png"]
    return " · ".join(f'<a href="{base}.{k}">{k.upper()}</a>' for k in kinds)


def _thumbnail(f: dict) -> str:
    """A small image of the figure, linking to its PNG (the driver writes ``thumbs/<name>.png``)."""
    base = "../_static/figures/"
    name, alt = html_escape(f["name"]), html_escape(f.get("alt") or f["title"])
    return (
        f'<a href="{base}{name}.png"><img class="vae-thumb" src="{base}thumbs/{name}.png" alt="{alt}" width="160"></a>'
    )


def _figure_pages(figures: list[dict], titles: dict) -> str:
    rows = [
        [_thumbnail(f), f"{{numref}}`{f['label']}`", f["title"],
         f"{{doc}}`{titles.get(f['page'], f['page'])} <{f['page']}>`", _download(f["name"], f.get("files"))]
        for f in figures
    ]  # fmt: skip
    return (
        _table(rows, ["", "figure", "what it shows", "chapter", "download"])
        if rows
        else "No chapter of this build published a figure.\n"
    )


def _bibtex(f: dict, cite: dict, version: str) -> str:
    key = "vts-" + f["name"]
    where = f"{cite['url']}/chapters/{f['page']}.html#{f['label']}"
    return (
        f"@misc{{{key},\n  title = {{{{{f['title'].rstrip('.')}}}}},\n  author = {{{' and '.join(cite['authors'])}}},\n"
        f"  howpublished = {{Figure in \\emph{{{cite['title']}}}, \\url{{{where}}}}},\n  year = {{{cite['year']}}},\n"
        f"  note = {{vae\\_utils {version}}}\n}}"
    )


def _citations(figures: list[dict], titles: dict, cite: dict, version: str) -> str:
    out = []
    for page in dict.fromkeys(f["page"] for f in figures):
        out += [f":::{{dropdown}} {titles.get(page, page)}", ""]
        for f in (f for f in figures if f["page"] == page):
            where = f"{cite['url']}/chapters/{page}.html#{f['label']}"
            out += [
                f"**{{numref}}`{f['label']}`**: {', '.join(cite['authors'])} ({cite['year']}). {f['title']} In *{cite['title']}*. <{where}>",
                "",
            ]
            out += ["```bibtex", _bibtex(f, cite, version), "```", ""]
        out += [":::", ""]
    return "\n".join(out) if figures else "No chapter of this build published a figure.\n"


def _book_bibtex(cite: dict, version: str) -> str:
    return (
        "```bibtex\n@book{vae_training_strategies,\n"
        f"  title     = {{{{{cite['title']}}}}},\n  author    = {{{{{' and '.join(cite['authors'])}}}}},\n"
        f"  year      = {{{cite['year']}}},\n  url       = {{{cite['url']}}},\n"
        f"  note      = {{Executable book; vae\\_utils code version {version}}}\n}}\n```\n"
    )


def _parameters(effective: dict) -> str:
    rows = [
        [md_code(stem), md_code(name), md_code(repr(value))]
        for stem, values in effective.items()
        for name, value in values.items()
    ]
    return _table(rows, ["chapter (file)", "parameter", "value in this build"])


def _environment(profile: str) -> str:
    import importlib.metadata as md
    import os

    from vae_utils.provenance import code_version

    rows = [["vae_utils code version", code_version()], ["build profile", profile], ["Python", platform.python_version()],
            ["platform", platform.platform()], ["CPU cores", str(os.cpu_count())]]  # fmt: skip
    for name in PACKAGES:
        try:
            rows.append([name, md.version(name)])
        except md.PackageNotFoundError:
            continue
    return _table([[md_escape(c) for c in row] for row in rows], ["item", "version"])


def _titles(plan) -> dict:
    """Chapter stem -> its title (the first Markdown heading)."""
    titles = {}
    for stem, nb in plan.notebooks.items():
        for cell in nb.cells:
            line = (
                next((ln for ln in cell.source.splitlines() if ln.startswith("# ")), None)
                if cell.cell_type == "markdown"
                else None
            )
            if line:
                titles[stem] = line[2:].strip()
                break
    return titles


def generate(paths: BookPaths, plan) -> dict[str, bytes]:
    """Every generated file (see the module docstring), from the executed chapters in the cache."""
    from vae_utils.provenance import code_version

    kinds = (MIME_TYPE, VALUE_MIME_TYPE, FIGURE_MIME_TYPE)
    verdicts, values, figures = read_verdicts(paths.cache, plan.notebooks, kinds).values()
    titles, cite = _titles(plan), citation(paths.root)
    out = {
        "_config.yml": _config(paths, cite),
        "_static/verdicts.json": json.dumps(
            [{k: v for k, v in r.items() if k != "page"} for r in verdicts], indent=1, ensure_ascii=False
        ).encode(),
        "_generated/findings.md": findings_markdown(verdicts, titles).encode(),
        "_generated/outcomes.md": claim_pages.outcomes_markdown().encode(),
        "_generated/answers.md": claim_pages.answers_markdown(verdicts, values).encode(),
        "_generated/conclusion.md": claim_pages.conclusion_markdown(verdicts).encode(),
        **{
            f"_generated/recipe-{claim_pages.topic_slug(t)}.md": claim_pages.recipe_markdown(verdicts, t).encode()
            for t in TOPICS
        },
        "_generated/at-scale.md": scale_comparison_markdown(verdicts, values).encode(),
        "_generated/figures.md": _figure_pages(figures, titles).encode(),
        "_generated/figure-citations.md": _citations(figures, titles, cite, code_version()).encode(),
        "_generated/book-citation.md": _book_bibtex(cite, code_version()).encode(),
        "_generated/parameters.md": _parameters(plan.effective).encode(),
        "_generated/environment.md": _environment(paths.profile).encode(),
    }
    book = {"book_url": f"<{cite['url']}>", "book_repository": f"<{cite['repository']}>", "book_title": cite["title"]}
    for rel, source in plan.wanted.items():
        if rel.endswith(".md") and isinstance(source, Path):
            text = source.read_text(encoding="utf-8")
            keys = verdict_keys(text)
            used = {k: v for k, v in book.items() if "{{ " + k + " }}" in text}
            if keys or used:
                out[rel] = front_matter(text, substitutions(verdicts, keys, values) | used).encode()
    return out


def public_reports(paths: BookPaths) -> list[Path]:
    """Rewrite Sphinx's execution reports with public paths (``vae_utils.localpaths``); return them."""
    from vae_utils.localpaths import public_paths

    from .stage import write_if_changed

    reports = sorted(paths.reports.glob("**/*.err.log")) if paths.reports.exists() else []
    for report in reports:
        text = report.read_text(encoding="utf-8", errors="replace")
        write_if_changed(report, public_paths(text, paths.root).encode())
    return reports
