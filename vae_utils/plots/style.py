"""The figures' one style: sizes readable at page width and on a phone, axes and labels shared by every plot (colours: ``colors``)."""

from __future__ import annotations

import contextlib
import itertools
import math
from collections.abc import Sequence
from pathlib import Path

import matplotlib as mpl
import matplotlib.pyplot as plt
import numpy as np
import pandas as pd
from cycler import cycler
from matplotlib import ticker
from matplotlib import transforms as mtransforms
from matplotlib.figure import Figure

from ..claims.analysis import mean_ci  # the project's one t-interval and its per-cell summary
from ..publish.labels import tick_text
from .colors import INK, PALETTE

__all__ = [
    "STYLE",
    "FONT_PT",
    "PAGE_PX",
    "MIN_TEXT_PX",
    "MAX_WIDTH_IN",
    "use_style",
    "style",
    "t_interval",
    "text_px",
    "PHONE_PX",
    "CROSS_AT",
    "MIN_PHONE_TEXT_PX",
    "log_ticks",
    "save_figure",
    "legend_below",
    "mean_ci",
    "tick_text",
]


ACTIVE_THRESHOLD = 0.01  # Var_x(z_mean) above which a latent unit is active (vae_utils.core.evaluation)


PAGE_PX = 670  # widest a figure is shown in the book (CSS px, 1280-px window; measured in Chromium)


CSS_PX_PER_IN = 96


PHONE_PX = 390  # a phone's column (CSS px): a figure is shown at most this wide there


MIN_PHONE_TEXT_PX = 6  # smallest text on a phone: 12 pt on a figure up to 10.8 in wide


MIN_TEXT_PX = 12  # smallest text at page width


FONT_PT = 12  # every text of every figure


MAX_WIDTH_IN = 9.3  # widest figure: 12 pt still renders >= 12 px


CROSS_AT = 0.04  # height (share of the axes) of the crosses for diverged runs; triangles sit on the edge


CROSS_ROOM = 0.08  # of a linear y axis added below the data when there are crosses


MAX_TICKS = 12  # a log axis over at most this many grid values labels each of them


STYLE = {
    "axes.prop_cycle": cycler(color=[INK, "#737373", PALETTE[1], PALETTE[5]]),  # no optimizer's colour
    "image.cmap": "viridis",  # perceptually uniform, colour-blind safe
    "figure.figsize": (6.4, 4.0),  # shown at natural size in the 750 px column
    "figure.dpi": 100,  # on screen
    "savefig.dpi": 200,  # PNG export: sharp on high-density screens
    "savefig.bbox": "tight",
    "figure.constrained_layout.use": True,
    "svg.fonttype": "none",  # SVG text stays text: small, searchable, testable
    "svg.hashsalt": "vae-utils",  # deterministic SVG ids: figures diff cleanly between builds
    "font.size": FONT_PT,
    "axes.titlesize": FONT_PT,
    "axes.labelsize": FONT_PT,
    "xtick.labelsize": FONT_PT,
    "ytick.labelsize": FONT_PT,
    "legend.fontsize": FONT_PT,
    "legend.title_fontsize": FONT_PT,
    "figure.titlesize": FONT_PT,
    "legend.frameon": False,
    "axes.spines.top": False,
    "axes.spines.right": False,
    "axes.grid": True,
    "grid.alpha": 0.3,
    "grid.linewidth": 0.6,
    "lines.linewidth": 2.0,
    "lines.markersize": 6,
    "axes.titlelocation": "left",
}


def use_style() -> None:
    """Set the book's style in matplotlib's global rcParams (call once per notebook)."""
    mpl.rcParams.update(STYLE)


@contextlib.contextmanager
def style():
    """The book's style inside a ``with`` block only; every plotting function here uses it."""
    with mpl.rc_context(STYLE):
        yield


def text_px(fontsize_pt: float, fig_width_in: float, page_px: float = PAGE_PX) -> float:
    """CSS pixels of a ``fontsize_pt`` text in a figure ``fig_width_in`` wide shown in the book's
    column: natural size (96 px per inch) scaled down to ``page_px`` when wider, never up."""
    natural = fig_width_in * CSS_PX_PER_IN
    return fontsize_pt * CSS_PX_PER_IN / 72 * min(1.0, page_px / natural)


def t_interval(level: float = 0.95):
    """A seaborn ``errorbar`` callable: the Student-t ``level`` interval of the mean over the values
    it is given (the seeds of one point), non-finite values dropped (``analysis.mean_ci``)."""

    def errorbar(values):
        _, low, high = mean_ci(values, level)
        return low, high

    return errorbar


def finite_mean(values) -> float:
    a = np.asarray(values, np.float64)
    a = a[np.isfinite(a)]
    return float(a.mean()) if len(a) else math.nan


def value_text(v) -> str:
    """A level for a tick or legend: numbers as ``tick_text``, names with spaces for underscores."""
    if isinstance(v, (int, float, np.integer, np.floating)) and not isinstance(v, bool):
        return tick_text(v)
    return str(v).replace("_", " ")


def require_columns(df, columns):
    if not isinstance(df, pd.DataFrame):
        raise ValueError(f"data is a {type(df).__name__}; allowed: a pandas DataFrame")
    missing = [c for c in columns if c is not None and c not in df.columns]
    if missing:
        raise ValueError(f"columns {missing} are not in the data; available: {list(df.columns)}")


def hue_levels(df, hue) -> list:
    if hue is None:
        return [None]
    return sorted(df[hue].dropna().unique().tolist(), key=lambda v: (isinstance(v, str), v))


def new_axes(ax, figsize=None):
    if ax is not None:
        return ax.figure, ax
    fig, ax = plt.subplots(figsize=figsize)
    return fig, ax


def log_ticks(axis, values=None, grid: bool = True) -> None:
    """Label a log axis: with ``grid``, a tick at each of at most ``MAX_TICKS`` ``values`` (the grid
    of a sweep); else at 1-2-5 steps over the span of ``values`` (default: the axis' data), every
    1-2-3-5-7 step when that is less than a decade, every decade when more than three; no minor ticks."""
    v = np.asarray(axis.get_data_interval() if values is None else values, np.float64)
    v = np.unique(v[np.isfinite(v) & (v > 0)])
    if grid and values is not None and 0 < len(v) <= MAX_TICKS:
        axis.set_major_locator(ticker.FixedLocator(v))
    else:
        span = math.log10(v.max() / v.min()) if len(v) > 1 else 2.0
        # less than a decade: 1-2-3-5-7 (every integer step crowds 9 against 10)
        subs = (1.0, 2.0, 3.0, 5.0, 7.0) if span < 1 else (1.0, 2.0, 5.0) if span < 3 else (1.0,)
        axis.set_major_locator(ticker.LogLocator(base=10, subs=subs))
    axis.set_major_formatter(ticker.FuncFormatter(tick_text))
    axis.set_minor_locator(ticker.NullLocator())


def declutter_xticks(ax) -> None:
    """Rotate the x tick labels by 45° when any two of them overlap; if two neighbours still clash
    (grid values closer than a line of text, such as 0.008 and 0.01), leave the second unlabelled
    (its tick stays)."""
    ax.figure.draw_without_rendering()
    labels = sorted((t for t in ax.get_xticklabels() if t.get_visible() and t.get_text()), key=_anchor_x)
    boxes = [t.get_window_extent() for t in labels]
    if not any(a.x1 + 2 > b.x0 for a, b in itertools.pairwise(boxes)):
        return
    ax.tick_params(axis="x", labelrotation=45)
    for t in ax.get_xticklabels():
        t.set_horizontalalignment("right")
        t.set_rotation_mode("anchor")
    line = FONT_PT * ax.figure.dpi / 72
    kept = None
    for t in labels:
        if kept is not None and (_anchor_x(t) - _anchor_x(kept)) * math.sin(math.radians(45)) < line:
            t.set_visible(False)
        else:
            kept = t


def _anchor_x(text) -> float:
    """The display x of a tick label's anchor (its tick)."""
    return float(text.get_transform().transform(text.get_position())[0])


def _spread(ys: np.ndarray, gap: float) -> np.ndarray:
    """Positions as close to ``ys`` as possible, each at least ``gap`` apart (same order)."""
    order = np.argsort(ys)
    out = np.asarray(ys, np.float64)[order].copy()
    for _ in range(50):
        moved = False
        for i in range(1, len(out)):
            if out[i] - out[i - 1] < gap:
                mid = (out[i] + out[i - 1]) / 2
                out[i - 1], out[i] = mid - gap / 2, mid + gap / 2
                moved = True
        if not moved:
            break
    result = np.empty_like(out)
    result[order] = out
    return result


def label_line_ends(ax, ends: dict, colors: dict, title: str) -> None:
    """Write each level right of the axes, level with its line's end (``ends``: level -> (x, y)),
    spread so that no two overlap, with ``title`` (the hue's words) above them.

    Labels sit in axes coordinates, clamped to the axes' height: a line that ends above or below the
    axes is labelled at that edge with an arrow (↑, ↓), so a later ``set_ylim`` can never push text
    far outside the figure (and stretch it); they are placed again whenever the limits change."""
    if not ends:
        return
    levels = list(ends)
    fig = ax.figure
    at = mtransforms.offset_copy(ax.transAxes, fig=fig, x=6, units="points")
    texts = {
        lv: ax.text(1.0, 0.5, "", color=colors[lv], va="center", ha="left", transform=at, clip_on=False,
                    fontweight="bold")
        for lv in levels
    }  # fmt: skip
    head = ax.text(1.0, 0.5, title, color="0.25", va="center", ha="left", transform=at, clip_on=False)

    def place(_=None):
        to_axes = ax.transAxes.inverted().transform
        frac = np.array([to_axes(ax.transData.transform(ends[lv])) for lv in levels])
        ys = np.clip(frac[:, 1], 0.0, 1.0)
        height_pt = ax.get_position().height * fig.get_size_inches()[1] * 72
        gap = FONT_PT * 1.25 / max(height_pt, 1.0)
        ys = _spread(ys, gap)
        for lv, y, raw in zip(levels, ys, frac[:, 1], strict=True):
            arrow = " ↑" if raw > 1.0 else " ↓" if raw < 0.0 else ""
            texts[lv].set_text(value_text(lv) + arrow)
            texts[lv].set_y(y)
        head.set_y(ys.max() + gap)

    place()
    ax.callbacks.connect("ylim_changed", place)
    ax.callbacks.connect("xlim_changed", place)


def legend_below(ax, **kwargs):
    """Move the legend of ``ax`` (or its labelled artists) under the figure, outside every axes, so
    it never covers the data (needs the style's constrained layout); returns the figure legend."""
    handles, names = ax.get_legend_handles_labels()
    if ax.get_legend() is not None:
        ax.get_legend().remove()
    return ax.figure.legend(handles, names, loc="outside lower center", **kwargs)


def save_figure(fig: Figure, path, formats: Sequence[str] = ("svg", "png")) -> list[Path]:
    """Save ``fig`` as ``path`` + each suffix in ``formats`` (parent folders created); return the paths."""
    base = Path(path)
    base.parent.mkdir(parents=True, exist_ok=True)
    out = []
    with style():
        for fmt in formats:
            p = base.with_suffix("." + fmt)
            fig.savefig(p, format=fmt)
            out.append(p)
    return out
