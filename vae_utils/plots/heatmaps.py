"""Heatmaps of a metric over two settings (batch size x learning rate), each cell written as mean ± half-width."""

from __future__ import annotations

import math
from collections.abc import Mapping

import matplotlib as mpl
import numpy as np
import pandas as pd
from matplotlib.figure import Figure

from ..claims.analysis import summarize  # the project's one t-interval and its per-cell summary
from ..publish.labels import label as words
from .colors import text_color_on
from .style import MAX_WIDTH_IN, declutter_xticks, new_axes, require_columns, style, value_text

__all__ = ["heatmap_tables", "plot_heatmap"]


def heatmap_tables(df: pd.DataFrame, index: str, columns: str, y: str, level: float = 0.95):
    """(means, half_widths): two ``index`` x ``columns`` tables of ``y`` over seeds
    (``analysis.summarize``), for ``plot_heatmap``; ``means.attrs["n_diverged"]`` holds the
    number of diverged runs per cell, which ``plot_heatmap`` marks."""
    require_columns(df, [index, columns, y])
    t = summarize(df, [index, columns], y, level)
    t["half_width"] = (t["high"] - t["low"]) / 2
    means = t.pivot(index=index, columns=columns, values="mean")
    half = t.pivot(index=index, columns=columns, values="half_width")
    means.name = half.name = y
    means.attrs["n_diverged"] = t.pivot(index=index, columns=columns, values="n_diverged")
    return means, half


def _ci_format(half) -> str:
    """A format with the decimals that give the median CI half-width two significant digits."""
    h = np.asarray([] if half is None else half, np.float64)
    h = h[np.isfinite(h) & (h > 0)]
    return f".{max(0, 1 - math.floor(math.log10(np.median(h))))}f" if len(h) else ".3g"


def _cell_text(v, half, fmt, lo, hi) -> str:
    if not np.isfinite(v):
        return "n/a"
    text = format(v, fmt).replace("-", "−")
    if half is not None and np.isfinite(half):
        text += f"\n± {format(half, fmt)}"
    if hi is not None and v > hi:
        text += " ▲"
    if lo is not None and v < lo:
        text += " ▼"
    return text


def _annotate_cells(ax, mesh, values, half, fmt, vmin, vmax, n_diverged):
    """Each cell's text in the colour that contrasts most with the cell (NaN cells: the axes'
    grey); clipped cells marked ▲/▼; cells with diverged runs say how many."""
    nr, nc = values.shape
    for r in range(nr):
        for c in range(nc):
            v = values[r, c]
            background = mesh.to_rgba(v) if np.isfinite(v) else ax.get_facecolor()
            text = _cell_text(v, None if half is None else half[r, c], fmt, vmin, vmax)
            if n_diverged is not None and n_diverged[r, c] > 0:
                text += f"\n✕ {int(n_diverged[r, c])}"
            ax.text(c + 0.5, r + 0.5, text, ha="center", va="center", color=text_color_on(background), zorder=4)


def plot_heatmap(
    table: pd.DataFrame,
    annot: bool = True,
    ci_table: pd.DataFrame | None = None,
    fmt: str | None = ".1f",
    cmap: str = "viridis",
    label: str | None = None,
    higher_is_better: bool | None = None,
    ax=None,
    *,
    vmin: float | None = None,
    vmax: float | None = None,
    labels: Mapping[str, str] | None = None,
) -> Figure:
    """A table (e.g. batch size x learning rate means of the test ELBO) as a seaborn heatmap.

    Each cell reads "mean ± half-width" when ``ci_table`` (same shape: CI half-widths) is given,
    in black or white by contrast with the cell; all-diverged cells are grey and read "n/a"; cells
    with diverged runs (``table.attrs["n_diverged"]``, from ``heatmap_tables``) add "✕ k".
    ``higher_is_better`` outlines the best cell. The colour range spans the data unless ``vmin``/
    ``vmax`` limit it: then the colour bar has arrows and clipped cells are marked ▲/▼. Axis
    labels are the words for the table's index and column names; the colour bar is ``label`` or
    the words for ``table.name``.
    """
    import seaborn as sns

    if not isinstance(table, pd.DataFrame):
        raise ValueError(f"table is a {type(table).__name__}; allowed: a pandas DataFrame (use heatmap_tables)")
    values = table.to_numpy(np.float64)
    half = None if ci_table is None else ci_table.reindex(index=table.index, columns=table.columns).to_numpy(np.float64)
    lo, hi, extend = _clipped_range(values, vmin, vmax)
    cbar_label = label or words(getattr(table, "name", None), labels)
    if extend != "neither":
        cbar_label += "\n(range limited: ▲ above, ▼ below)"
    nr, nc = values.shape
    with style():
        fig, ax = new_axes(ax, figsize=(min(MAX_WIDTH_IN, 1.15 * nc + 2.9), 0.75 * nr + 1.6))
        ax.set_facecolor("0.85")  # all-diverged (NaN) cells
        sns.heatmap(
            table,
            cmap=cmap,
            vmin=vmin,
            vmax=vmax,
            annot=False,
            linewidths=1,
            linecolor="white",
            ax=ax,
            cbar_kws={"label": cbar_label, "extend": extend},
        )
        _heatmap_axes(ax, table, labels)
        if higher_is_better is not None:
            _outline_best(ax, values, higher_is_better)
        if annot:
            _annotate(ax, table, values, half, fmt, (lo, hi))
        declutter_xticks(ax)
    return fig


def _annotate(ax, table, values, half, fmt, lo_hi) -> None:
    """Each cell's text (``_annotate_cells``), upright when too wide; the ✕ k key when needed."""
    n_div = table.attrs.get("n_diverged")
    n_div = None if n_div is None else n_div.reindex(index=table.index, columns=table.columns).to_numpy()
    _annotate_cells(ax, ax.collections[0], values, half, fmt or _ci_format(half), *lo_hi, n_div)
    _fit_cell_texts(ax, *values.shape)
    if n_div is not None and np.nansum(n_div) > 0:
        ax.set_title("✕ k: runs of the cell that diverged (left out of the mean)", color="0.3")


def _fit_cell_texts(ax, nr: int, nc: int) -> None:
    """Cell texts wider than their cell (many narrow columns) turned upright when they fit so,
    never shrunk: two neighbours' numbers must not run into each other."""
    ax.figure.draw_without_rendering()
    box = ax.get_window_extent()
    cell_w, cell_h = box.width / nc, box.height / nr
    texts = [t for t in ax.texts if t.get_text()]
    sizes = [t.get_window_extent() for t in texts]
    if not sizes or max(b.width for b in sizes) <= cell_w - 2:
        return
    if max(b.width for b in sizes) <= cell_h - 2:
        for t in texts:  # turned a quarter counter-clockwise, ◀ reads ▼ and ▶ reads ▲
            t.set_text(t.get_text().translate(_UPRIGHT))
            t.set_rotation(90)


_UPRIGHT = str.maketrans({"▼": "◀", "▲": "▶"})


def _heatmap_axes(ax, table, labels) -> None:
    """Tick labels at the table's values, axis labels in words, no grid or tick marks."""
    ax.grid(False)
    ax.set_xticklabels([value_text(c) for c in table.columns], rotation=0)
    ax.set_yticklabels([value_text(r) for r in table.index], rotation=0)
    ax.set_xlabel(words(table.columns.name, labels))
    ax.set_ylabel(words(table.index.name, labels))
    ax.tick_params(length=0)


def _clipped_range(values, vmin, vmax):
    """(low, high, extend): the limits that cut data off (None when they cut nothing) and the
    colour bar's ``extend`` for them."""
    finite = values[np.isfinite(values)]
    lo = vmin if vmin is not None and len(finite) and finite.min() < vmin else None
    hi = vmax if vmax is not None and len(finite) and finite.max() > vmax else None
    extend = {(False, False): "neither", (True, False): "min", (False, True): "max", (True, True): "both"}
    return lo, hi, extend[(lo is not None, hi is not None)]


def _outline_best(ax, values, higher_is_better: bool) -> None:
    """A black-and-white outline (visible on light and dark cells) around the best cell."""
    if not np.isfinite(values).any():
        return
    flat = np.where(np.isfinite(values), values, -np.inf if higher_is_better else np.inf)
    r, c = np.unravel_index(np.argmax(flat) if higher_is_better else np.argmin(flat), values.shape)
    ax.add_patch(mpl.patches.Rectangle((c, r), 1, 1, fill=False, edgecolor="black", lw=4, zorder=3))
    ax.add_patch(mpl.patches.Rectangle((c, r), 1, 1, fill=False, edgecolor="white", lw=1.5, zorder=3))
