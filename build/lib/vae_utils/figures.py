"""Citable figures: one call glues a figure into the book and writes it as SVG and PNG.

    from vae_utils.figures import publish_figure
    publish_figure(fig, "batch-size-elbo", "Test ELBO against batch size, fixed epochs.",
                   {"params": {"batch_size": [32, 64], "epochs": 30}, "seeds": [0, 1, 2], "runs": 6})

then, in the chapter's Markdown::

    ```{glue:figure} batch-size-elbo
    :name: fig-batch-size-elbo

    {glue:text}`batch-size-elbo-caption`
    ```

    {numref}`fig-batch-size-elbo` shows ...

Contract
--------
* ``publish_figure`` glues the figure under ``name`` (through ``myst_nb.glue(..., display=False)``)
  with both an ``image/svg+xml`` and an ``image/png`` representation (the HTML page shows the
  SVG), and glues the caption, a plain string, under ``<name>-caption``. It returns the caption.
* ``{glue:text}`` inside a ``{glue:figure}`` caption renders the string as plain text
  (MyST-NB 1.x strips the quotes of the stored ``text/plain`` repr), so a caption holds no
  Markdown. ``name`` may hold letters, digits, ``-`` and ``_``; never ``:`` (``{glue:text}``
  reads ``key:format``).
* The caption is ``<caption> <provenance>``: the parameters, the seeds, the number of runs and
  the code version (``vae_utils.provenance.code_version()``: ``vae_utils.__version__`` plus a short
  hash of the package's code), then the two file names a reader can download.
* Files: ``<name>.svg`` and ``<name>.png``. In the built HTML book they are at
  ``_static/figures/<name>.svg|png``: the build driver (``bookdriver``) extracts them from the
  executed notebooks, so they always match the page, also when Jupyter Book's cache skipped
  the execution. Run outside the book (plain papermill, an interactive kernel),
  ``publish_figure`` also writes them into ``$VAE_BOOK_FIGURES`` (default ``_build/figures``
  under the working directory); ``VAE_BOOK_FIGURES=""`` writes none.
"""

from __future__ import annotations

import base64
import io
import json
import os
import re
from pathlib import Path

from .provenance import code_version

__all__ = [
    "publish_figure",
    "Caption",
    "format_provenance",
    "figure_bytes",
    "figures_dir",
    "FIGURES_ENV",
    "STATIC_SUBDIR",
]

FIGURES_ENV = "VAE_BOOK_FIGURES"  # where publish_figure writes files; "" writes none
STATIC_SUBDIR = "_static/figures"  # where the files sit in the built HTML book
PNG_DPI = 150
_NAME = re.compile(r"^[A-Za-z0-9][A-Za-z0-9_-]*$")


def figures_dir() -> Path | None:
    """The folder ``publish_figure`` writes files into, or None when ``$VAE_BOOK_FIGURES`` is ``""``."""
    value = os.environ.get(FIGURES_ENV, os.path.join("_build", "figures"))
    return Path(value) if value else None


def figure_bytes(fig) -> tuple[bytes, bytes]:
    """(SVG, PNG) bytes of a matplotlib Figure; the SVG is reproducible (fixed ids, no date)."""
    import matplotlib

    svg, png = io.BytesIO(), io.BytesIO()
    with matplotlib.rc_context({"svg.hashsalt": "vae-utils"}):
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
    """One sentence from a provenance dict.

    Known keys: ``params`` (a dict of the parameters), ``seeds`` (a list), ``runs`` (an int),
    ``budget`` (the quantity held fixed, a string); any other key is listed as ``key=value``.
    The code version is always appended.
    """
    p = dict(provenance or {})
    parts = []
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


class Caption(str):
    """The caption string; as a cell's last value it displays nothing (it is shown under the figure)."""

    def _ipython_display_(self):
        pass


class _FigureBundle:
    """What IPython displays for a published figure: SVG (shown in HTML), PNG, and an alt text."""

    def __init__(self, svg: bytes, png: bytes, alt: str):
        self.svg, self.png, self.alt = svg, png, alt

    def _repr_mimebundle_(self, include=None, exclude=None):
        return {
            "image/svg+xml": self.svg.decode("utf-8"),
            "image/png": base64.b64encode(self.png).decode("ascii"),
            "text/plain": self.alt,
        }


def publish_figure(fig, name: str, caption: str, provenance: dict | None = None, close: bool = True) -> str:
    """Glue ``fig`` under ``name`` and its caption under ``<name>-caption``; write SVG and PNG.

    Returns the caption (a ``str`` that displays nothing as a cell's last value): ``caption``
    followed by the provenance (see ``format_provenance``) and the download file names.
    ``close`` closes the figure so the notebook shows it once, under its caption.
    """
    from myst_nb import glue

    if not isinstance(name, str) or not _NAME.match(name):
        raise ValueError(f"name={name!r} is not allowed; allowed: letters, digits, '-' and '_' (no ':')")
    if not isinstance(caption, str) or not caption.strip():
        raise ValueError(f"caption={caption!r} is not allowed; allowed: a non-empty string")
    if provenance is not None and not isinstance(provenance, dict):
        raise ValueError(f"provenance={provenance!r} is not allowed; allowed: a dict or None")
    svg, png = figure_bytes(fig)
    text = caption.strip()
    if text[-1] not in ".!?":
        text += "."
    full = Caption(f"{text} {format_provenance(provenance or {})} Files: {name}.svg, {name}.png.")
    glue(name, _FigureBundle(svg, png, alt=text), display=False)
    glue(f"{name}-caption", str(full), display=False)
    out = figures_dir()
    if out is not None:
        out.mkdir(parents=True, exist_ok=True)
        (out / f"{name}.svg").write_bytes(svg)
        (out / f"{name}.png").write_bytes(png)
        (out / f"{name}.json").write_text(
            json.dumps({"name": name, "caption": full, "provenance": provenance or {}}, indent=2, default=str)
        )
    if close:
        import matplotlib.pyplot as plt

        plt.close(fig)
    return full
