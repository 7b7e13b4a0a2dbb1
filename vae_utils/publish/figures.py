"""Citable figures: one call shows a figure in the notebook, glues it into the book with its
caption and alt text, and writes it as SVG and PNG with the data it plots as CSV.

In a chapter's code cell (tag it ``remove-output``, or ``remove-cell`` when the code is
bookkeeping: glue works from removed cells too)::

    from vae_utils.publish.figures import publish_figure
    publish_figure(fig, "bs-elbo", "Larger batches reach a worse test ELBO at a fixed number of epochs.",
                   {"params": {"batch_size": [32, 64], "epochs": 30}, "seeds": [0, 1, 2], "runs": 6},
                   alt="Test ELBO falls from -30 to -35 nats as the batch size grows from 32 to 512.")

and where the figure belongs in the chapter's Markdown (then ``{numref}`fig-bs-elbo``` anywhere)::

    :::{glue:md} bs-elbo-figure
    :format: myst
    :::

Contract
--------
* The caption is one **bold** title sentence (the first sentence of ``caption``; any further
  sentences follow in normal weight), then the provenance in normal weight (``format_provenance``:
  parameters, seeds, runs, budget, code version), then the downloads as links:
  ``[SVG](../_static/figures/<name>.svg)``, ``[PNG](...)``, ``[CSV](...)``. ``link_base`` is where the files sit
  seen from the page: ``../_static/figures`` for a page under ``chapters/``.
* Glued keys: ``<name>`` the image (``image/svg+xml`` shown by the HTML page, ``image/png``,
  ``text/plain`` = the alt text); ``<name>-caption`` the caption (``text/markdown`` with bold and
  links, ``text/plain`` without: for ``{glue:text}`` and the book driver's figure index);
  ``<name>-figure`` a MyST ``{glue:figure}`` directive (label ``fig-<name>``, ``:alt:``, the
  caption pasted with the ``{glue:md}`` role) that ``{glue:md}`` with ``:format: myst`` renders;
  ``<name>-meta`` a JSON record (``MIME_TYPE``) with the title, label, alt text, caption,
  provenance and files, for figure indexes and citations.
* Why so: a ``{glue:figure}`` directive takes its alt text only from its ``:alt:`` option, so a
  figure whose alt text is computed must be pasted as glued MyST; the caption is pasted with the
  ``{glue:md}`` role, which parses CommonMark (bold, links) by default, and CommonMark links are
  written as they are (``../_static/...``) instead of being resolved as Sphinx documents. A chapter
  may still write ``{glue:figure}`` itself with ``{glue:md}`<name>-caption``` as its caption (then
  the alt text is whatever the chapter writes in ``:alt:``).
* Display: the figure and its caption (bold title, provenance, file names; no links) are shown as
  the cell's output, so a chapter run by plain papermill shows its figures; the book hides that
  copy when the cell is tagged ``remove-output`` or ``remove-cell``.
* The caption gains a sentence for runs drawn at an axis' edge (``plots.edges.edge_note``: how
  many lie beyond the axis, and how far); a text that would read below 6 px in a phone's 390-px
  column, or a legend over plotted points, is a warning (``plots.legible``).
* ``name``: letters, digits, ``-`` and ``_``; never ``:`` (``{glue:text}`` reads ``key:format``).
* Files: ``<name>.svg``, ``<name>.png`` and ``<name>.csv`` (the ``data=`` frame the chapter
  plotted, or the values read from the figure's artists: ``publish.figure_data``; column names in
  words with units), the CSV glued as ``<name>-data`` (``text/csv``). In the built HTML book they are at
  ``_static/figures/<name>.svg|png|csv``: the build driver (``bookdriver``) extracts them from the
  executed notebooks, so they always match the page. Run outside the book, ``publish_figure``
  also writes them (and ``<name>.json``) into ``$VAE_BOOK_FIGURES`` (default ``_build/figures``
  under the working directory); ``VAE_BOOK_FIGURES=""`` writes none.
"""

from __future__ import annotations

import base64
import io
import json
import os
import re
import warnings
from pathlib import Path

from ..fileio import write_bytes
from ..provenance import code_version
from .markup import md_escape  # re-exported: tables and chapters import it from here
from .scope import provenance_of

__all__ = [
    "publish_figure",
    "Caption",
    "format_provenance",
    "figure_bytes",
    "figures_dir",
    "split_title",
    "md_escape",
    "FIGURES_ENV",
    "STATIC_SUBDIR",
    "LINK_BASE",
    "MIME_TYPE",
]

FIGURES_ENV = "VAE_BOOK_FIGURES"  # where publish_figure writes files; "" writes none
STATIC_SUBDIR = "_static/figures"  # where the files sit in the built HTML book
LINK_BASE = "../" + STATIC_SUBDIR  # the files seen from a page under chapters/
MIME_TYPE = "application/vnd.vae-figure+json"
CSV_MIME_TYPE = "text/csv"  # the data behind a figure, glued under <name>-data
FILE_KINDS = ("svg", "png", "csv")
PNG_DPI = 150
_NAME = re.compile(r"^[A-Za-z0-9][A-Za-z0-9_-]*$")
_SENTENCE_END = re.compile(r"[.!?]\s+(?=[A-Z0-9(\"“])")
_ABBREVIATIONS = ("e.g.", "i.e.", "cf.", "vs.", "Fig.", "Eq.", "et al.", "approx.")


def figures_dir() -> Path | None:
    """The folder ``publish_figure`` writes files into, or None when ``$VAE_BOOK_FIGURES`` is ``""``."""
    value = os.environ.get(FIGURES_ENV, os.path.join("_build", "figures"))
    return Path(value) if value else None


def figure_bytes(fig) -> tuple[bytes, bytes]:
    """(SVG, PNG) bytes of a matplotlib Figure; the SVG is reproducible (fixed ids, no date)."""
    import matplotlib

    svg, png = io.BytesIO(), io.BytesIO()
    with matplotlib.rc_context({"svg.hashsalt": "vae-utils", "svg.fonttype": "none"}):
        fig.savefig(svg, format="svg", bbox_inches="tight", metadata={"Date": None})
    fig.savefig(png, format="png", dpi=PNG_DPI, bbox_inches="tight", metadata={"Software": None})
    return svg.getvalue(), png.getvalue()


def _short(value) -> str:
    if isinstance(value, float):
        return f"{value:g}"
    if isinstance(value, (list, tuple)):
        return "[" + ", ".join(_short(v) for v in value) + "]"
    if isinstance(value, dict):
        return ", ".join(f"{k}={_short(v)}" for k, v in value.items())
    return str(value)


def format_provenance(provenance: dict) -> str:
    """One sentence from a provenance dict (plain text).

    Known keys: ``params`` (a dict of the parameters), ``seeds`` (a list), ``runs`` (an int),
    ``budget`` (the quantity held fixed, a string); any other key is listed as ``key=value``.
    The code version is always appended.
    """
    p = dict(provenance_of(provenance) or {})
    parts = []
    if "scope" in p:
        parts.append(f"Runs: {p.pop('scope')}.")
    if "budget" in p:
        parts.append(f"Budget held fixed: {p.pop('budget')}.")
    params = p.pop("params", None)
    extra = {k: p.pop(k) for k in list(p) if k not in ("seeds", "runs")}
    if params or extra:
        parts.append(f"Parameters: {_short({**(params or {}), **extra})}.")
    if "seeds" in p:
        seeds = p["seeds"]
        seeds = list(seeds) if isinstance(seeds, (list, tuple, range)) else [seeds]
        parts.append(f"Seeds: {_short(seeds)}.")
    if "runs" in p:
        runs = int(p["runs"])
        parts.append(f"{runs} training run{'s' if runs != 1 else ''}.")
    parts.append(f"Code: vae_utils {code_version()}.")
    return " ".join(parts)


def split_title(caption: str) -> tuple[str, str]:
    """(title, rest): the first sentence of ``caption`` (ending in '.', '!' or '?'; a '.' is added
    when missing) and the sentences after it. Abbreviations such as 'e.g.' do not end a sentence."""
    text = " ".join(str(caption).split())
    for m in _SENTENCE_END.finditer(text):
        head = text[: m.start() + 1]
        if not head.endswith(_ABBREVIATIONS):
            return head, text[m.end() :]
    return (text if text[-1:] in ".!?" else text + "."), ""


class Caption(str):
    """The caption string; as a cell's last value it displays nothing (it is shown under the figure)."""

    def _ipython_display_(self):
        pass


class MimeBundle:
    """A display object with exactly the given MIME representations."""

    def __init__(self, bundle: dict):
        self.bundle = bundle

    def _repr_mimebundle_(self, include=None, exclude=None):
        return dict(self.bundle)


def check_publishable(name: str, caption: str, provenance) -> None:
    if not isinstance(name, str) or not _NAME.match(name):
        raise ValueError(f"name={name!r} is not allowed; allowed: letters, digits, '-' and '_' (no ':')")
    if not isinstance(caption, str) or not caption.strip():
        raise ValueError(f"caption={caption!r} is not allowed; allowed: a non-empty string")
    provenance_of(provenance)  # a dict, None, or the runs: anything else is refused there


def _one_line(text: str) -> str:
    return " ".join(str(text).split())


def _captions(name: str, caption: str, provenance, link_base: str) -> tuple[str, str, str]:
    """(plain, markdown with links, markdown without links) captions of a figure."""
    title, rest = split_title(caption)
    prov = format_provenance(provenance or {})
    body = f" {rest}" if rest else ""
    files = [f"{name}.{kind}" for kind in FILE_KINDS]
    plain = f"{title}{body} {prov} Files: {', '.join(files)}."
    base = link_base.rstrip("/")
    links = ", ".join(f"[{f.rsplit('.', 1)[1].upper()}]({base}/{f})" for f in files)
    data = " (CSV: the plotted values)"
    md = f"**{title}**{body} {md_escape(prov)} Download: {links}{data}."
    shown = f"**{title}**{body} {md_escape(prov)} Files: {', '.join(md_escape(f) for f in files)}."
    return plain, md, shown


def figure_markdown(name: str, alt: str) -> str:
    """The MyST ``{glue:figure}`` directive that pastes figure ``name`` with label ``fig-<name>``,
    alt text ``alt`` and the caption glued under ``<name>-caption``."""
    return f"```{{glue:figure}} {name}\n:name: fig-{name}\n:alt: {_one_line(alt)}\n\n{{glue:md}}`{name}-caption`\n```\n"


def _meta(name: str, caption: str, alt: str, plain: str, provenance) -> dict:
    """The figure's JSON record (glued as ``<name>-meta``, written as ``<name>.json``)."""
    return {
        "name": name,
        "label": f"fig-{name}",
        "title": split_title(caption)[0],
        "alt": alt,
        "caption": plain,
        "provenance": provenance or {},
        "files": [f"{name}.{kind}" for kind in FILE_KINDS],
        "code_version": code_version(),
    }


def publish_figure(
    fig,
    name: str,
    caption: str,
    provenance: dict | None = None,
    close: bool = True,
    *,
    alt: str | None = None,
    display: bool = True,
    link_base: str = LINK_BASE,
    data=None,
) -> Caption:
    """Show ``fig`` with its caption, glue it for the book (see the module docstring), write SVG,
    PNG and CSV; return the plain caption (a ``str`` that displays nothing as a cell's last value).

    ``caption``: its first sentence is the bold title; ``alt``: what the figure shows, for readers
    who cannot see it (default: the title); ``close`` closes the figure after publishing; ``data``:
    the DataFrame the figure plots, written as ``<name>.csv`` with its columns in words (default:
    the values read from the figure's artists, ``publish.figure_data``).
    """
    from IPython.display import Markdown
    from IPython.display import display as show
    from myst_nb import glue

    from .figure_data import data_csv, figure_data

    check_publishable(name, caption, provenance)
    caption = _said_at_the_edges(fig, name, caption)
    provenance = provenance_of(provenance)  # the runs shown, as their scope
    svg, png = figure_bytes(fig)
    csv = data_csv(figure_data(fig) if data is None else data)
    plain, md, shown = _captions(name, caption, provenance, link_base)
    alt = _one_line(alt) if alt else split_title(caption)[0]
    image = MimeBundle(
        {"image/svg+xml": svg.decode("utf-8"), "image/png": base64.b64encode(png).decode(), "text/plain": alt}
    )
    meta = _meta(name, caption, alt, plain, provenance)
    glue(name, image, display=False)
    glue(f"{name}-data", MimeBundle({CSV_MIME_TYPE: csv, "text/plain": f"{name}.csv"}), display=False)
    glue(f"{name}-caption", MimeBundle({"text/markdown": md, "text/plain": plain}), display=False)
    glue(
        f"{name}-figure", MimeBundle({"text/markdown": figure_markdown(name, alt), "text/plain": plain}), display=False
    )
    glue(
        f"{name}-meta",
        MimeBundle({MIME_TYPE: json.loads(json.dumps(meta, default=str)), "text/plain": name}),
        display=False,
    )
    if display:
        show(image)
        show(Markdown(shown))
    _write_files(name, {"svg": svg, "png": png, "csv": csv.encode()}, {**meta, "caption": plain})
    if close:
        import matplotlib.pyplot as plt

        plt.close(fig)
    return Caption(plain)


def _said_at_the_edges(fig, name: str, caption: str) -> str:
    """``caption`` with the sentence about runs drawn at an axis' edge (``plots.edges.edge_note``:
    triangles beyond the axis, crosses not yet named); warns when a text of ``fig`` would be
    smaller than 6 px in a phone's 390-px column, or a legend covers plotted points
    (``plots.legible``)."""
    from ..plots.edges import edge_note
    from ..plots.legible import check_legible, legends_over_data

    small = check_legible(fig)
    if small:
        warnings.warn(f"figure {name!r}: text below 6 px at 390 px: {', '.join(small[:5])}", stacklevel=3)
    covered = legends_over_data(fig)
    if covered:
        warnings.warn(f"figure {name!r}: {'; '.join(covered)}", stacklevel=3)
    note = edge_note(fig, caption)
    return f"{caption.rstrip()} {note}" if note else caption


def _write_files(name: str, files: dict[str, bytes], meta: dict) -> None:
    """``<name>.svg|png|csv|json`` into ``figures_dir()`` (nothing when it is None)."""
    out = figures_dir()
    if out is None:
        return
    for suffix, data in {**files, "json": json.dumps(meta, indent=2, default=str).encode()}.items():
        _write_atomic(out / f"{name}.{suffix}", data)


def _write_atomic(path: Path, data: bytes) -> None:
    path.parent.mkdir(parents=True, exist_ok=True)
    write_bytes(path, data)
