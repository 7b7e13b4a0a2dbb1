"""The book's figures and data as files: every glued figure of the executed pages as SVG, PNG, CSV
(the values it plots) and a thumbnail, and every glued table or run table as CSV.

MyST-NB stores each page's glued outputs in ``jupyter_execute/<page>.glue.json`` whether the page
was executed or taken from the cache, so the files always match the pages. Figures land in
``<html>/_static/figures/`` (``<name>.svg|png|csv``, ``thumbs/<name>.png``, with ``index.json`` and
``index.html`` listing the captions and each PNG's size), tables in ``<html>/_static/tables/<name>.csv``.
"""

from __future__ import annotations

import ast
import base64
import contextlib
import io
import json
from pathlib import Path

from vae_utils.publish.markup import html_escape

from .paths import BookPaths
from .stage import write_if_changed

__all__ = ["collect_figures", "png_size", "THUMB_PX", "FIGURE_SIZE_LIMITS", "out_of_bounds"]

THUMB_PX = 240  # thumbnail width on the Figures page
CSV = "text/csv"
# A figure at page width: at most this many pixels a side, an aspect ratio (width / height) in this range.
FIGURE_SIZE_LIMITS = {"max_px": 2400, "aspect": (0.6, 7.0)}


def _text(value) -> str:
    return "".join(value) if isinstance(value, list) else str(value)


def png_size(data: bytes) -> tuple[int, int]:
    """(width, height) of a PNG, from its header."""
    return int.from_bytes(data[16:20], "big"), int.from_bytes(data[20:24], "big")


def out_of_bounds(figures: list[dict]) -> dict[str, tuple[int, int]]:
    """{name: (width, height)} of the figures whose PNG is too large or too narrow or wide."""
    lo, hi = FIGURE_SIZE_LIMITS["aspect"]
    return {
        f["name"]: tuple(f["size"])
        for f in figures
        if f.get("size")
        and (max(f["size"]) > FIGURE_SIZE_LIMITS["max_px"] or not lo <= f["size"][0] / max(f["size"][1], 1) <= hi)
    }


def _thumbnail(png: bytes) -> bytes:
    from PIL import Image

    image = Image.open(io.BytesIO(png))
    image.thumbnail((THUMB_PX, THUMB_PX * 4))
    out = io.BytesIO()
    image.save(out, format="PNG", optimize=True)
    return out.getvalue()


def _write_figure(paths: BookPaths, name: str, data: dict, csv) -> tuple[list[str], list[int] | None]:
    """Write one figure's files; return their names and the PNG's size."""
    files, size = [], None
    if "image/svg+xml" in data:
        write_if_changed(paths.figures / f"{name}.svg", _text(data["image/svg+xml"]).encode())
        files.append(f"{name}.svg")
    if "image/png" in data:
        png = base64.b64decode(_text(data["image/png"]))
        write_if_changed(paths.figures / f"{name}.png", png)
        write_if_changed(paths.figures / "thumbs" / f"{name}.png", _thumbnail(png))
        files.append(f"{name}.png")
        size = list(png_size(png))
    if csv is not None:
        write_if_changed(paths.figures / f"{name}.csv", _text(csv).encode())
        files.append(f"{name}.csv")
    return files, size


def _caption(glued: dict, name: str) -> str:
    caption = glued.get(f"{name}-caption", {}).get("text/plain", "")
    with contextlib.suppress(ValueError, SyntaxError):
        caption = str(ast.literal_eval(caption))
    return caption


def collect_figures(paths: BookPaths) -> list[dict]:
    """Write every glued figure (SVG, PNG, CSV, thumbnail) into ``<html>/_static/figures`` and every
    glued table's CSV into ``<html>/_static/tables``; return the figures' records."""
    found, tables = [], set()
    for glue_path in sorted(paths.executed.rglob("*.glue.json")):
        glued = {k: v.get("data", {}) for k, v in json.loads(glue_path.read_text(encoding="utf-8")).items()}
        page = glue_path.relative_to(paths.executed).as_posix().removesuffix(".glue.json") + ".html"
        for name, data in glued.items():
            if "image/svg+xml" in data or "image/png" in data:
                files, size = _write_figure(paths, name, data, glued.get(f"{name}-data", {}).get(CSV))
                found.append(
                    {"name": name, "page": page, "caption": _caption(glued, name), "files": files, "size": size}
                )
            elif CSV in data and name.endswith("-data"):
                base = name.removesuffix("-data")
                if not any(k in glued.get(base, {}) for k in ("image/svg+xml", "image/png")):
                    write_if_changed(_tables(paths) / f"{base}.csv", _text(data[CSV]).encode())
                    tables.add(f"{base}.csv")
    if found:
        write_if_changed(paths.figures / "index.json", json.dumps(found, indent=2).encode())
        write_if_changed(paths.figures / "index.html", _figure_index_html(found).encode())
        _drop_stale(paths.figures, {file for f in found for file in f["files"]})
        _drop_stale(paths.figures / "thumbs", {f"{f['name']}.png" for f in found})
    _drop_stale(_tables(paths), tables)
    return found


def _tables(paths: BookPaths) -> Path:
    return paths.figures.parent / "tables"


def _drop_stale(folder: Path, current: set[str]) -> None:
    """Remove files an earlier build wrote that no page glues any more (a renamed figure or table).
    Only this module writes into these folders, and only ``.svg``, ``.png`` and ``.csv`` are touched."""
    for f in folder.iterdir() if folder.is_dir() else []:
        if f.suffix in (".svg", ".png", ".csv") and f.name not in current:
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
        "<p>Every figure of the book, as SVG and PNG with the data it plots as CSV, with its provenance caption.</p>\n"
        f"<table><tr><th>Figure</th><th>Files</th><th>Caption</th></tr>\n{rows}\n</table></body></html>\n"
    )
