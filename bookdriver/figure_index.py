"""The book's figures as files: every glued figure of the executed pages, as SVG and PNG.

MyST-NB stores each page's glued outputs in ``jupyter_execute/<page>.glue.json`` whether the page
was executed or taken from the cache, so the files always match the pages. They land in
``<html>/_static/figures/`` with ``index.json`` and ``index.html`` listing the captions.
"""

from __future__ import annotations

import ast
import base64
import contextlib
import json

from vae_utils.publish.markup import html_escape

from .paths import BookPaths
from .stage import write_if_changed

__all__ = ["collect_figures"]


def collect_figures(paths: BookPaths) -> list[dict]:
    """Write every glued figure as ``<name>.svg|png`` into ``<html>/_static/figures``.

    MyST-NB stores each page's glued outputs in ``jupyter_execute/<page>.glue.json`` whether the
    page was executed or taken from the cache, so the files always match the pages.
    """
    found = []
    for glue_path in sorted(paths.executed.rglob("*.glue.json")):
        glued = {k: v.get("data", {}) for k, v in json.loads(glue_path.read_text(encoding="utf-8")).items()}
        page = glue_path.relative_to(paths.executed).as_posix().removesuffix(".glue.json") + ".html"
        for name, data in glued.items():
            if "image/svg+xml" not in data and "image/png" not in data:
                continue
            caption = glued.get(f"{name}-caption", {}).get("text/plain", "")
            with contextlib.suppress(ValueError, SyntaxError):
                caption = str(ast.literal_eval(caption))
            files = []
            if "image/svg+xml" in data:
                svg = data["image/svg+xml"]
                svg = "".join(svg) if isinstance(svg, list) else svg
                write_if_changed(paths.figures / f"{name}.svg", svg.encode())
                files.append(f"{name}.svg")
            if "image/png" in data:
                write_if_changed(paths.figures / f"{name}.png", base64.b64decode(data["image/png"]))
                files.append(f"{name}.png")
            found.append({"name": name, "page": page, "caption": caption, "files": files})
    if found:
        write_if_changed(paths.figures / "index.json", json.dumps(found, indent=2).encode())
        write_if_changed(paths.figures / "index.html", _figure_index_html(found).encode())
        _drop_stale(paths, {file for f in found for file in f["files"]})
    return found


def _drop_stale(paths: BookPaths, current: set[str]) -> None:
    """Remove figure files an earlier build wrote that no page glues any more (a renamed figure).
    Only this module writes into ``_static/figures``, and only ``.svg`` and ``.png`` are touched."""
    for f in paths.figures.iterdir():
        if f.suffix in (".svg", ".png") and f.name not in current:
            f.unlink()


def _figure_index_html(figures: list[dict]) -> str:
    rows = "\n".join(
        f'<tr><td><a href="../../{html_escape(f["page"])}">{html_escape(f["name"])}</a></td>'
        f"<td>{' '.join(f'<a href={chr(34)}{html_escape(x)}{chr(34)}>{html_escape(x)}</a>' for x in f['files'])}</td>"
        f"<td>{html_escape(f['caption'])}</td></tr>"
        for f in figures
    )
    return (
        '<!DOCTYPE html>\n<html lang="en"><head><meta charset="utf-8"><title>Figures</title>'
        "<style>body{font-family:sans-serif;margin:2em}td{vertical-align:top;padding:.3em .6em}"
        "tr:nth-child(even){background:#f4f4f4}</style></head><body>\n"
        "<h1>Figures of <em>VAE Training Strategies</em></h1>\n"
        "<p>Every figure of the book, as SVG and PNG, with its provenance caption.</p>\n"
        f"<table><tr><th>Figure</th><th>Files</th><th>Caption</th></tr>\n{rows}\n</table></body></html>\n"
    )
