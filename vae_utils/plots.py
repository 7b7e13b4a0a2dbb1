"""Figures for the book: one style readable at page width, and functions that take data and return a Figure.

    from vae_utils import plots
    plots.use_style()                                   # once per notebook (every function also applies it)
    fig = plots.plot_history(result.history)            # loss, reconstruction, KL, validation ELBO per epoch
    fig = plots.plot_metric_vs(df, "batch_size", "test_elbo", hue="learning_rate", logx=True)
    means, half = plots.heatmap_tables(df, "batch_size", "learning_rate", "test_elbo")
    fig = plots.plot_heatmap(means, ci_table=half, higher_is_better=True)
    plots.save_figure(fig, "figures/elbo_vs_batch")     # .svg and .png (or publish it: vae_utils.figures)

Nothing here calls ``plt.show()``. What a reader sees:

* **Words, not identifiers.** Axis labels, legend titles and colour bars come from
  ``vae_utils.labels.label`` ("test ELBO (nats)", "batch size", "β"); every function takes
  ``labels={column: words}`` to override one.
* **Text readable at page width.** A figure is shown at most ``PAGE_PX`` (670) CSS pixels wide
  (measured: the book's figures at a 1280-px window; 740-775 px at other widths), so one ``w``
  inches wide is shown at ``min(1, 670 / (96 w))`` of its natural size. Every text is ``FONT_PT``
  (12 pt): 16 px (the body text's size) on a figure up to 7 in wide, >= 12 px up to 9.3 in
  (``MAX_WIDTH_IN``). ``text_px`` computes it; the tests check it on every figure.
* **Colours that follow the variable.** Ordered hue variables (numbers: batch size, learning
  rate, β) get a sequential seaborn palette (``SEQUENTIAL``), light to dark; unordered ones
  (optimizer, schedule) the colour-blind-safe ``PALETTE``. Pass ``palette=`` to override.
* **Axes that say what the grid was.** A log axis over at most 12 grid values has a labelled tick
  at each of them; other log axes are labelled at 1-2-5 steps, never at one lonely decade. A
  categorical x (optimizer names) gets points with intervals, never lines between categories.
* **Uncertainty and failures.** Means are over seeds with a Student-t interval (``t_interval``,
  the seaborn ``errorbar`` callable built on ``analysis.mean_ci``); every run is a dot;
  diverged runs (non-finite values) are crosses at the bottom edge, counted in the legend.
* **Direct labels.** Lines over a numeric x are labelled at their right end (``direct_labels``),
  so no legend sits far from its lines.
* **Heatmaps** write each cell as "mean ± half-width" in the colour (black or white) that
  contrasts most with the cell (WCAG contrast ratio, ``contrast_ratio``; seaborn's own annot
  switches at a luminance of 0.408, which leaves mid-tone cells below 4.5:1). The colour range
  spans the data; a range limited by ``vmin``/``vmax`` shows arrows on the colour bar and marks
  each clipped cell ▲ (above) or ▼ (below).
"""

from __future__ import annotations

import contextlib
import itertools
import math
from collections.abc import Mapping, Sequence
from pathlib import Path

import matplotlib as mpl
import matplotlib.pyplot as plt
import numpy as np
import pandas as pd
from cycler import cycler
from matplotlib import ticker
from matplotlib.figure import Figure

from .analysis import mean_ci, summarize  # the project's one t-interval and its per-cell summary
from .labels import is_ordered, tick_text
from .labels import label as words

__all__ = [
    "PALETTE",
    "SEQUENTIAL",
    "STYLE",
    "FONT_PT",
    "PAGE_PX",
    "MIN_TEXT_PX",
    "MAX_WIDTH_IN",
    "use_style",
    "style",
    "mean_ci",
    "t_interval",
    "text_px",
    "contrast_ratio",
    "hue_colors",
    "tick_text",
    "log_ticks",
    "heatmap_tables",
    "save_figure",
    "plot_history",
    "plot_images",
    "plot_reconstructions",
    "plot_latent_grid",
    "plot_traversal",
    "plot_latent_scatter",
    "plot_metric_vs",
    "plot_heatmap",
    "plot_rate_distortion",
    "plot_kl_per_dim",
    "plot_2d_density",
]

# seaborn's "colorblind" palette (Okabe-Ito based, 10 colours), spelled out so the style needs no
# seaborn import; tests check it against seaborn. For unordered categories only.
PALETTE = (
    "#0173b2",
    "#de8f05",
    "#029e73",
    "#d55e00",
    "#cc78bc",
    "#ca9161",
    "#fbafe4",
    "#949494",
    "#ece133",
    "#56b4e9",
)
SEQUENTIAL = "flare"  # seaborn's light-to-dark palette for ordered levels (orange to purple)
SEQUENTIAL_RANGE = (0.25, 1.0)  # the part used: lighter colours fall below 3:1 contrast with white
DIVERGED_COLOR = "#d55e00"  # vermillion: crosses for runs that diverged
ACTIVE_THRESHOLD = 0.01  # Var_x(z_mean) above which a latent unit is active (vae_utils.evaluation)
PAGE_PX = 670  # widest a figure is shown in the book (CSS px, 1280-px window; measured in Chromium)
CSS_PX_PER_IN = 96
MIN_TEXT_PX = 12  # smallest text at page width
FONT_PT = 12  # every text of every figure
MAX_WIDTH_IN = 9.3  # widest figure: 12 pt still renders >= 12 px
MAX_TICKS = 12  # a log axis over at most this many grid values labels each of them

STYLE = {
    "axes.prop_cycle": cycler(color=list(PALETTE)),
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


# ---------------------------------------------------------------- measures and helpers


def text_px(fontsize_pt: float, fig_width_in: float, page_px: float = PAGE_PX) -> float:
    """CSS pixels of a ``fontsize_pt`` text in a figure ``fig_width_in`` wide shown in the book's
    column: natural size (96 px per inch) scaled down to ``page_px`` when wider, never up."""
    natural = fig_width_in * CSS_PX_PER_IN
    return fontsize_pt * CSS_PX_PER_IN / 72 * min(1.0, page_px / natural)


def _luminance(color) -> float:
    """WCAG relative luminance of a colour."""
    c = np.asarray(mpl.colors.to_rgb(color), np.float64)
    c = np.where(c <= 0.04045, c / 12.92, ((c + 0.055) / 1.055) ** 2.4)
    return float(0.2126 * c[0] + 0.7152 * c[1] + 0.0722 * c[2])


def contrast_ratio(a, b) -> float:
    """WCAG 2 contrast ratio of two colours, 1 (same) to 21 (black on white)."""
    la, lb = sorted((_luminance(a), _luminance(b)), reverse=True)
    return (la + 0.05) / (lb + 0.05)


def _text_color(background) -> str:
    """Black or white, whichever contrasts more with ``background`` (always >= 4.58:1)."""
    return "black" if contrast_ratio(background, "black") >= contrast_ratio(background, "white") else "white"


def t_interval(level: float = 0.95):
    """A seaborn ``errorbar`` callable: the Student-t ``level`` interval of the mean over the values
    it is given (the seeds of one point), non-finite values dropped (``analysis.mean_ci``)."""

    def errorbar(values):
        _, low, high = mean_ci(values, level)
        return low, high

    return errorbar


def _finite_mean(values) -> float:
    a = np.asarray(values, np.float64)
    a = a[np.isfinite(a)]
    return float(a.mean()) if len(a) else math.nan


def _fmt(v) -> str:
    """A level for a tick or legend: numbers as ``tick_text``, names with spaces for underscores."""
    if isinstance(v, (int, float, np.integer, np.floating)) and not isinstance(v, bool):
        return tick_text(v)
    return str(v).replace("_", " ")


def hue_colors(name, levels, palette=None) -> dict:
    """{level: colour} for the levels of a hue variable: sequential (``SEQUENTIAL``) when the levels
    are ordered (numbers), the colour-blind ``PALETTE`` otherwise; ``palette`` (a name, a list or a
    dict) overrides."""
    import seaborn as sns

    levels = list(levels)
    if isinstance(palette, Mapping):
        return {lv: palette[lv] for lv in levels}
    if palette is not None:
        colors = sns.color_palette(palette, len(levels)) if isinstance(palette, str) else list(palette)
    elif is_ordered(name, levels):
        cmap = sns.color_palette(SEQUENTIAL, as_cmap=True)
        at = np.linspace(*SEQUENTIAL_RANGE, len(levels)) if len(levels) > 1 else [np.mean(SEQUENTIAL_RANGE)]
        colors = [mpl.colors.to_hex(cmap(float(t))) for t in at]
    else:
        colors = [PALETTE[i % len(PALETTE)] for i in range(len(levels))]
    return {lv: mpl.colors.to_hex(colors[i % len(colors)]) for i, lv in enumerate(levels)}


def _require_columns(df, columns):
    if not isinstance(df, pd.DataFrame):
        raise ValueError(f"data is a {type(df).__name__}; allowed: a pandas DataFrame")
    missing = [c for c in columns if c is not None and c not in df.columns]
    if missing:
        raise ValueError(f"columns {missing} are not in the data; available: {list(df.columns)}")


def _levels(df, hue) -> list:
    if hue is None:
        return [None]
    return sorted(df[hue].dropna().unique().tolist(), key=lambda v: (isinstance(v, str), v))


def _new_axes(ax, figsize=None):
    if ax is not None:
        return ax.figure, ax
    fig, ax = plt.subplots(figsize=figsize)
    return fig, ax


def log_ticks(axis, values=None, grid: bool = True) -> None:
    """Label a log axis: with ``grid``, a tick at each of at most ``MAX_TICKS`` ``values`` (the grid
    of a sweep); else at 1-2-5 steps over the span of ``values`` (default: the axis' data), every
    integer step when that is less than a decade, every decade when more than three; no minor ticks."""
    v = np.asarray(axis.get_data_interval() if values is None else values, np.float64)
    v = np.unique(v[np.isfinite(v) & (v > 0)])
    if grid and values is not None and 0 < len(v) <= MAX_TICKS:
        axis.set_major_locator(ticker.FixedLocator(v))
    else:
        span = math.log10(v.max() / v.min()) if len(v) > 1 else 2.0
        subs = tuple(range(1, 10)) if span < 1 else (1.0, 2.0, 5.0) if span < 3 else (1.0,)
        axis.set_major_locator(ticker.LogLocator(base=10, subs=subs))
    axis.set_major_formatter(ticker.FuncFormatter(tick_text))
    axis.set_minor_locator(ticker.NullLocator())


def _declutter_xticks(ax) -> None:
    """Rotate the x tick labels by 45° when any two of them overlap."""
    ax.figure.draw_without_rendering()
    boxes = [t.get_window_extent() for t in ax.get_xticklabels() if t.get_visible() and t.get_text()]
    boxes.sort(key=lambda b: b.x0)
    if any(a.x1 + 2 > b.x0 for a, b in itertools.pairwise(boxes)):
        ax.tick_params(axis="x", labelrotation=45)
        for t in ax.get_xticklabels():
            t.set_horizontalalignment("right")
            t.set_rotation_mode("anchor")


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


def _direct_labels(ax, ends: dict, colors: dict, title: str) -> None:
    """Write each level at the right end of its line (``ends``: level -> (x, y)), spread so that no
    two overlap, with ``title`` (the hue's words) above them."""
    if not ends:
        return
    levels = list(ends)
    to_px = ax.transData.transform
    px = np.array([to_px(ends[lv]) for lv in levels])
    gap = FONT_PT * 1.25 * ax.figure.dpi / 72
    ys = _spread(px[:, 1], gap)
    x_px = px[:, 0].max() + 8
    inv = ax.transData.inverted()
    for lv, y in zip(levels, ys, strict=True):
        x, yd = inv.transform((x_px, y))
        ax.text(x, yd, _fmt(lv), color=colors[lv], va="center", ha="left", clip_on=False, fontweight="bold")
    x, yd = inv.transform((x_px, ys.max() + gap))
    ax.text(x, yd, title, color="0.25", va="center", ha="left", clip_on=False)


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


def _as_images(images, image_shape):
    a = np.asarray(images, dtype=np.float32)
    shape = tuple(image_shape)
    if a.shape[-len(shape) :] == shape:
        return a.reshape(-1, *shape)
    if a.shape[-1] == int(np.prod(shape)):
        return a.reshape(-1, *shape)
    raise ValueError(f"images of shape {a.shape} do not hold images of shape {shape}")


def _mosaic(tiles, pad: float = 1.0):
    """Tile an (rows, cols, h, w) array into one (rows*(h+1)-1, cols*(w+1)-1) image, 1-pixel gaps."""
    rows, cols, h, w = tiles.shape
    out = np.full((rows * (h + 1) - 1, cols * (w + 1) - 1), pad, np.float32)
    for i in range(rows):
        for j in range(cols):
            out[i * (h + 1) : i * (h + 1) + h, j * (w + 1) : j * (w + 1) + w] = tiles[i, j]
    return out


def _bare(ax) -> None:
    ax.set_xticks([])
    ax.set_yticks([])
    ax.grid(False)
    for spine in ax.spines.values():
        spine.set_visible(False)


# ---------------------------------------------------------------- learning curves


def _history_panel(data, x, hue, units, colors, **_):
    """One FacetGrid panel: every run thin, the mean over runs thick, per hue level."""
    import seaborn as sns

    ax = plt.gca()
    for level, color in colors.items():
        d = data if level is None else data[data[hue] == level]
        many = units is not None and d[units].nunique() > 1
        if many:
            sns.lineplot(d, x=x, y="value", units=units, estimator=None, color=color, lw=0.8, alpha=0.35, ax=ax)
        sns.lineplot(d, x=x, y="value", estimator=_finite_mean, errorbar=None, color=color, lw=2.2, ax=ax)


def plot_history(
    history,
    metrics: Sequence[str] = ("loss", "reconstruction_loss", "kl_loss", "val_elbo"),
    x: str = "epoch",
    hue: str | None = None,
    units: str | None = "seed",
    ncols: int | None = None,
    logy: bool = False,
    *,
    labels: Mapping[str, str] | None = None,
    palette=None,
) -> Figure:
    """Learning curves, one panel per metric (a seaborn FacetGrid), each y axis in words with units.

    ``history`` is one run's ``TrainResult.history``, a long DataFrame of many runs (histories
    concatenated with config columns such as ``learning_rate`` and ``seed``), or a list of such
    frames. With several ``units`` (seeds) per hue level, each run is a thin line and their mean a
    thick one; ``hue`` colours groups (sequential colours for numbers), named in a legend.
    """
    import seaborn as sns

    if isinstance(history, (list, tuple)):
        history = pd.concat(list(history), ignore_index=True)
    _require_columns(history, [x, *metrics, hue])
    units = units if units is not None and units in history.columns else None
    ncols = ncols or {1: 1, 2: 2, 3: 3, 4: 2}.get(len(metrics), 3)
    keep = [c for c in {x, hue, units} if c is not None]
    long = history.melt(id_vars=keep, value_vars=list(metrics), var_name="metric", value_name="value")
    colors = hue_colors(hue, _levels(history, hue), palette) if hue else {None: PALETTE[0]}
    width = min(MAX_WIDTH_IN - 1.6 * (hue is not None), 3.3 * ncols)
    with style(), mpl.rc_context({"figure.constrained_layout.use": False}):
        g = sns.FacetGrid(
            long,
            col="metric",
            col_order=list(metrics),
            col_wrap=ncols if len(metrics) > 1 else None,
            sharey=False,
            height=2.9,
            aspect=width / ncols / 2.9,
            despine=False,
        )
        g.map_dataframe(_history_panel, x=x, hue=hue, units=units, colors=colors)
        for ax, metric in zip(g.axes.flat, metrics, strict=True):
            ax.set_title("")
            ax.set_ylabel(words(metric, labels))
            ax.set_xlabel(words(x, labels))
            ax.tick_params(labelbottom=True)
            if pd.api.types.is_integer_dtype(history[x]):
                ax.xaxis.set_major_locator(ticker.MaxNLocator(integer=True))
            if logy:
                ax.set_yscale("log")
                log_ticks(ax.yaxis)
        if hue is not None:
            handles = {_fmt(lv): mpl.lines.Line2D([], [], color=c, lw=2.2) for lv, c in colors.items()}
            g.add_legend(legend_data=handles, title=words(hue, labels))
        g.tight_layout()
    return g.figure


# ---------------------------------------------------------------- images


def plot_images(
    images,
    image_shape,
    ncols: int = 8,
    titles: Sequence[str] | None = None,
    vmin: float | None = 0.0,
    vmax: float | None = 1.0,
    cmap: str = "gray_r",
    size: float = 0.9,
) -> Figure:
    """A grid of images (rows of ``images`` reshaped to ``image_shape``), one axes per image; the
    grid is at most ``MAX_WIDTH_IN`` wide."""
    imgs = _as_images(images, image_shape)
    n = len(imgs)
    if titles is not None and len(titles) != n:
        raise ValueError(f"{len(titles)} titles for {n} images; allowed: one title per image")
    ncols = max(1, min(ncols, n))
    nrows = math.ceil(n / ncols)
    size = min(size, MAX_WIDTH_IN / ncols)
    with style():
        fig, axes = plt.subplots(nrows, ncols, figsize=(size * ncols, size * nrows + 0.3 * (titles is not None)))
        axes = np.atleast_1d(axes).ravel()
        for k, ax in enumerate(axes):
            if k >= n:
                fig.delaxes(ax)
                continue
            ax.imshow(imgs[k], cmap=cmap, vmin=vmin, vmax=vmax, interpolation="nearest")
            _bare(ax)
            if titles is not None:
                ax.set_title(titles[k], loc="center")
    return fig


def plot_reconstructions(x, x_hat, image_shape, n: int = 10, labels=("original", "reconstruction")) -> Figure:
    """Originals (top row) above their reconstructions (bottom row), the first ``n`` of each."""
    a, b = _as_images(x, image_shape), _as_images(x_hat, image_shape)
    if len(a) != len(b):
        raise ValueError(f"{len(a)} originals but {len(b)} reconstructions; allowed: the same number")
    n = min(n, len(a))
    size = min(0.75, (MAX_WIDTH_IN - 2.0) / n)
    with style():
        fig, axes = plt.subplots(2, n, figsize=(size * n + 1.6, 2 * size + 0.2), squeeze=False)
        for row, (imgs, name) in enumerate(zip((a, b), labels, strict=True)):
            for j in range(n):
                ax = axes[row, j]
                ax.imshow(imgs[j], cmap="gray_r", vmin=0, vmax=1, interpolation="nearest")
                _bare(ax)
            axes[row, 0].set_ylabel(name, rotation=0, ha="right", va="center")
    return fig


def plot_latent_grid(grid, image_shape, limit: float = 2.5, dims=(0, 1)) -> Figure:
    """Decoded images over a square grid of two latent dimensions (``evaluation.latent_grid``).

    ``grid`` has shape (n, n, D): row 0 is the top (largest second coordinate), as
    ``latent_grid`` makes it; axis ticks are latent values.
    """
    g = np.asarray(grid, np.float32)
    if g.ndim != 3 or g.shape[0] != g.shape[1]:
        raise ValueError(f"grid has shape {g.shape}; allowed: (n, n, D) from evaluation.latent_grid")
    n = g.shape[0]
    tiles = _as_images(g.reshape(n * n, -1), image_shape).reshape(n, n, *image_shape)
    img = _mosaic(1.0 - tiles, pad=1.0)  # dark ink on white, white gaps
    step = 2 * limit / (n - 1) if n > 1 else 1.0
    with style():
        fig, ax = plt.subplots(figsize=(6.0, 6.0))
        ext = (-limit - step / 2, limit + step / 2, -limit - step / 2, limit + step / 2)
        ax.imshow(img, cmap="gray", vmin=0, vmax=1, extent=ext, interpolation="nearest")
        ax.grid(False)
        ax.set_xlabel(f"latent z[{dims[0]}]")
        ax.set_ylabel(f"latent z[{dims[1]}]")
    return fig


def plot_traversal(traversal, image_shape, values=None, dims=None, kl_per_dim=None) -> Figure:
    """Latent traversal (``evaluation.latent_traversal``): one row per latent dimension, one column per value.

    ``kl_per_dim`` (optional) labels each row with its KL in nats, so collapsed (inactive) rows
    can be told apart.
    """
    t = np.asarray(traversal, np.float32)
    if t.ndim != 3:
        raise ValueError(f"traversal has shape {t.shape}; allowed: (n_dims, n_values, D)")
    rows, cols = t.shape[:2]
    values = np.linspace(-3, 3, cols) if values is None else np.asarray(values)
    dims = list(range(rows)) if dims is None else list(dims)
    if len(values) != cols or len(dims) != rows:
        raise ValueError(f"traversal has shape {t.shape}, but {len(dims)} dims and {len(values)} values")
    tiles = _as_images(t.reshape(rows * cols, -1), image_shape).reshape(rows, cols, *image_shape)
    h, w = image_shape
    img = _mosaic(1.0 - tiles, pad=1.0)
    cell = min(0.6, (MAX_WIDTH_IN - 2.6) / cols)
    with style():
        fig, ax = plt.subplots(figsize=(cell * cols + 2.6, cell * rows + 0.8))
        ax.imshow(img, cmap="gray", vmin=0, vmax=1, interpolation="nearest")
        ax.grid(False)
        ax.set_xticks([j * (w + 1) + (w - 1) / 2 for j in range(cols)], [tick_text(v) for v in values])
        ylabels = [f"z[{u}]" for u in dims]
        if kl_per_dim is not None:
            kl = np.asarray(kl_per_dim, np.float64)
            ylabels = [f"z[{u}]  KL {kl[u]:.2f}" for u in dims]
        ax.set_yticks([i * (h + 1) + (h - 1) / 2 for i in range(rows)], ylabels)
        ax.set_xlabel("value of the traversed latent dimension")
        for side in ("left", "bottom"):
            ax.spines[side].set_visible(False)
        ax.tick_params(length=0)
    return fig


# ---------------------------------------------------------------- latent space


def plot_latent_scatter(
    z, labels=None, dims=(0, 1), name: str = "z_mean", ax=None, s: float = 10.0, legend_title: str = "class"
) -> Figure:
    """Two latent coordinates of each example (e.g. ``z_mean`` from ``evaluation.encode``),
    coloured by class label (unordered: the colour-blind palette)."""
    z = np.asarray(z, np.float64)
    if z.ndim != 2 or z.shape[1] <= max(dims):
        raise ValueError(f"z has shape {z.shape}; allowed: (n, latent_dim) with latent_dim > {max(dims)}")
    with style():
        fig, ax = _new_axes(ax, figsize=(6.4, 5.2))
        if labels is None:
            ax.scatter(z[:, dims[0]], z[:, dims[1]], s=s, alpha=0.7, color=PALETTE[0], linewidths=0)
        else:
            labels = np.asarray(labels)
            if len(labels) != len(z):
                raise ValueError(f"{len(labels)} labels for {len(z)} points; allowed: one label per point")
            for i, lab in enumerate(np.unique(labels)):
                m = labels == lab
                color = PALETTE[i % len(PALETTE)]
                ax.scatter(z[m, dims[0]], z[m, dims[1]], s=s, alpha=0.8, color=color, label=_fmt(lab), linewidths=0)
            ax.legend(title=legend_title, loc="center left", bbox_to_anchor=(1.0, 0.5), markerscale=2)
        ax.set_xlabel(f"{words(name)}, z[{dims[0]}]")
        ax.set_ylabel(f"{words(name)}, z[{dims[1]}]")
    return fig


def plot_2d_density(points, samples, kind: str = "hist", bins: int = 60, labels=("data", "model samples")) -> Figure:
    """2-D data beside samples from the model, on shared axes (``kind``: "hist" density or "scatter")."""
    p, q = np.asarray(points, np.float64), np.asarray(samples, np.float64)
    for name, a in (("points", p), ("samples", q)):
        if a.ndim != 2 or a.shape[1] != 2:
            raise ValueError(f"{name} has shape {a.shape}; allowed: (n, 2)")
    if kind not in ("hist", "scatter"):
        raise ValueError(f"kind={kind!r} is not known; allowed: 'hist', 'scatter'")
    both = np.concatenate([p, q])
    both = both[np.all(np.isfinite(both), axis=1)]
    lo, hi = np.percentile(both, 0.5, axis=0), np.percentile(both, 99.5, axis=0)
    pad = 0.1 * (hi - lo)
    rng = [(lo[0] - pad[0], hi[0] + pad[0]), (lo[1] - pad[1], hi[1] + pad[1])]
    with style():
        fig, axes = plt.subplots(1, 2, figsize=(8.4, 4.2), sharex=True, sharey=True)
        for ax, a, title in zip(axes, (p, q), labels, strict=True):
            if kind == "hist":
                ax.hist2d(a[:, 0], a[:, 1], bins=bins, range=rng, density=True, cmap="viridis")
                ax.grid(False)
            else:
                ax.scatter(a[:, 0], a[:, 1], s=5, alpha=0.5, linewidths=0, color=PALETTE[0])
            ax.set_title(title)
            ax.set_xlabel("first coordinate")
            ax.set_xlim(rng[0])
            ax.set_ylim(rng[1])
        axes[0].set_ylabel("second coordinate")
    return fig


# ---------------------------------------------------------------- sweeps


def _clean(df: pd.DataFrame, y: str) -> pd.DataFrame:
    """A copy with non-finite ``y`` as NaN (seaborn and the means skip them)."""
    v = pd.to_numeric(df[y], errors="coerce").to_numpy(np.float64)
    return df.assign(**{y: np.where(np.isfinite(v), v, np.nan)})


def _is_categorical(s: pd.Series) -> bool:
    return not pd.api.types.is_numeric_dtype(s) or pd.api.types.is_bool_dtype(s)


def _numeric_lines(ax, d, x, y, hue, colors, ci, band):
    """Mean over seeds per x (a seaborn lineplot with the t-interval), one line per hue level, and
    every finite run as a dot; returns {level: (x, y)} of each line's right end."""
    import seaborn as sns

    ends = {}
    for level, color in colors.items():
        g = d if level is None else d[d[hue] == level]
        ok = g[np.isfinite(g[y])]
        ax.scatter(ok[x], ok[y], s=16, color=color, alpha=0.4, linewidths=0, zorder=2)
        err = t_interval(ci) if ci is not None else None
        style_kws = (
            {"err_style": "band", "err_kws": {"alpha": 0.2, "linewidth": 0}}
            if band
            else {"err_style": "bars", "err_kws": {"capsize": 4, "elinewidth": 1.5}}
        )
        sns.lineplot(
            ok,
            x=x,
            y=y,
            estimator=_finite_mean,
            errorbar=err,
            color=color,
            marker="o",
            markeredgewidth=0,
            ax=ax,
            zorder=4,
            **style_kws,
        )
        means = ok.groupby(x)[y].mean()
        if len(means):
            ends[level] = (float(means.index[-1]), float(means.iloc[-1]))
    return ends


def _categorical_points(ax, d, x, y, hue, colors, ci, order):
    """Points with intervals per category (a seaborn pointplot without lines) and every run as a
    dot (a stripplot), dodged per hue level; returns the x position of each (category, level)."""
    import seaborn as sns

    n = len(colors)
    hue_kw = {"hue": hue, "hue_order": list(colors), "palette": colors} if hue else {"color": colors[None]}
    ok = d[np.isfinite(d[y])]
    sns.stripplot(
        ok,
        x=x,
        y=y,
        order=order,
        dodge=hue is not None,
        jitter=0.06,
        alpha=0.45,
        size=5,
        legend=False,
        ax=ax,
        zorder=2,
        **hue_kw,
    )
    sns.pointplot(
        ok,
        x=x,
        y=y,
        order=order,
        estimator=_finite_mean,
        errorbar=t_interval(ci) if ci else None,
        linestyle="none",
        markers="o",
        capsize=0.12,
        err_kws={"linewidth": 2.0},
        dodge=(0.8 - 0.8 / n) if hue else False,
        legend=False,
        ax=ax,
        zorder=4,
        **hue_kw,
    )
    offsets = np.linspace(-0.4 + 0.4 / n, 0.4 - 0.4 / n, n) if hue else [0.0]
    return {(c, lv): i + off for i, c in enumerate(order) for lv, off in zip(colors, offsets, strict=True)}


def _diverged(ax, d, x, y, hue, colors, position) -> int:
    """Crosses at the bottom edge for runs whose ``y`` is not finite; returns how many."""
    bad = d[~np.isfinite(d[y])]
    for level, color in colors.items():
        g = bad if level is None else bad[bad[hue] == level]
        if len(g):
            xs = [position(v, level) for v in g[x]]
            ax.scatter(
                xs,
                np.full(len(xs), 0.03),
                marker="x",
                s=50,
                linewidths=2,
                color=color,
                transform=ax.get_xaxis_transform(),
                clip_on=False,
                zorder=5,
            )
    return len(bad)


def plot_metric_vs(
    df: pd.DataFrame,
    x: str,
    y: str,
    hue: str | None = None,
    logx: bool = False,
    ci: float | None = 0.95,
    units: str | None = "seed",
    logy: bool = False,
    band: bool = True,
    ax=None,
    *,
    labels: Mapping[str, str] | None = None,
    palette=None,
    direct_labels: bool | None = None,
    note: bool | None = None,
) -> Figure:
    """Mean of ``y`` over seeds against ``x``, one line per ``hue`` level, with its ``ci``
    t-interval (a band, or error bars with ``band=False``; ``ci=None``: means only); every run is a
    dot, diverged runs (non-finite ``y``) are crosses at the bottom edge, counted in the legend.

    A numeric ``x`` gets lines (seaborn ``lineplot``), labelled at their ends when ``direct_labels``
    (default: numeric x with at most 8 hue levels); a categorical ``x`` (names) gets points with
    intervals and no lines (seaborn ``pointplot``). ``logx``/``logy`` label every grid value.
    ``note`` (default: when the function makes its own axes) states what the bars are.
    """
    _require_columns(df, [x, y, hue])
    d = _clean(df, y)
    colors = hue_colors(hue, _levels(d, hue), palette) if hue else {None: PALETTE[0]}
    categorical = _is_categorical(d[x])
    with style():
        fig, ax = _new_axes(ax)
        if logx and not categorical:
            ax.set_xscale("log")
        if categorical:
            order = sorted(d[x].dropna().unique().tolist(), key=str)
            pos = _categorical_points(ax, d, x, y, hue, colors, ci, order)
            n_bad = _diverged(ax, d, x, y, hue, colors, lambda v, lv: pos[(v, lv)])
            ends = {}
        else:
            ends = _numeric_lines(ax, d, x, y, hue, colors, ci, band)
            n_bad = _diverged(ax, d, x, y, hue, colors, lambda v, lv: v)
            if logx:
                log_ticks(ax.xaxis, d[x].to_numpy(np.float64))
        if logy:
            ax.set_yscale("log")
            log_ticks(ax.yaxis, d[y].to_numpy(np.float64), grid=False)
        if categorical:
            ax.set_xticks(range(len(order)), [_fmt(c) for c in order])
        _finish_metric_axes(ax, x, y, hue, colors, labels, n_bad, ends, direct_labels, categorical)
        if note if note is not None else (fig.axes == [ax] and ci is not None):
            what = f"mean ± {ci:.0%} CI over {'seeds' if units else 'runs'}" if ci else "mean"
            ax.set_title(f"{what}; dots: runs", color="0.3")
        _declutter_xticks(ax)
    return fig


def _finish_metric_axes(ax, x, y, hue, colors, labels, n_bad, ends, direct_labels, categorical):
    """Words on the axes, then the hue levels as direct labels or a legend, and the diverged count."""
    ax.set_xlabel(words(x, labels))
    ax.set_ylabel(words(y, labels))
    if categorical:
        ax.grid(False, axis="x")
    direct = direct_labels if direct_labels is not None else (hue is not None and not categorical and len(colors) <= 8)
    handles, names = [], []
    if hue is not None and direct and ends:
        ax.figure.canvas.draw()  # final limits before placing text in pixels
        _direct_labels(ax, ends, colors, words(hue, labels))
    elif hue is not None:
        handles = [mpl.lines.Line2D([], [], color=c, marker="o", lw=0 if categorical else 2) for c in colors.values()]
        names = [_fmt(lv) for lv in colors]
    if n_bad:
        handles.append(mpl.lines.Line2D([], [], marker="x", ls="", color="0.3", markersize=8, markeredgewidth=2))
        names.append(f"diverged: {n_bad} run{'s' if n_bad != 1 else ''}")
    if handles:
        title = words(hue, labels) if hue is not None and not (direct and ends) else None
        outside = {"loc": "center left", "bbox_to_anchor": (1.0, 0.5)} if len(handles) > 4 else {"loc": "best"}
        ax.legend(handles, names, title=title, **outside)


def heatmap_tables(df: pd.DataFrame, index: str, columns: str, y: str, level: float = 0.95):
    """(means, half_widths): two ``index`` x ``columns`` tables of ``y`` over seeds
    (``analysis.summarize``), for ``plot_heatmap``; ``means.attrs["n_diverged"]`` holds the
    number of diverged runs per cell, which ``plot_heatmap`` marks."""
    _require_columns(df, [index, columns, y])
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
            ax.text(c + 0.5, r + 0.5, text, ha="center", va="center", color=_text_color(background), zorder=4)


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
        fig, ax = _new_axes(ax, figsize=(min(MAX_WIDTH_IN, 1.15 * nc + 2.9), 0.75 * nr + 1.6))
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
            n_div = table.attrs.get("n_diverged")
            n_div = None if n_div is None else n_div.reindex(index=table.index, columns=table.columns).to_numpy()
            _annotate_cells(ax, ax.collections[0], values, half, fmt or _ci_format(half), lo, hi, n_div)
            if n_div is not None and np.nansum(n_div) > 0:
                ax.set_title("✕ k: runs of the cell that diverged (left out of the mean)", color="0.3")
        _declutter_xticks(ax)
    return fig


def _heatmap_axes(ax, table, labels) -> None:
    """Tick labels at the table's values, axis labels in words, no grid or tick marks."""
    ax.grid(False)
    ax.set_xticklabels([_fmt(c) for c in table.columns], rotation=0)
    ax.set_yticklabels([_fmt(r) for r in table.index], rotation=0)
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


def plot_rate_distortion(
    df: pd.DataFrame,
    x: str = "kl_loss",
    y: str = "reconstruction_loss",
    hue: str = "beta",
    ci: float | None = 0.95,
    elbo_lines: bool = True,
    ax=None,
    *,
    labels: Mapping[str, str] | None = None,
) -> Figure:
    """Rate (``kl_loss``) against distortion (``reconstruction_loss``), one dot per run, the mean per
    ``hue`` level (default: β; sequential colours) with its ``ci`` interval, joined in order and
    labelled "β = 0.5" beside each mean.

    ``elbo_lines`` draws dotted lines of equal negative ELBO (rate + distortion = const), on which
    β trades one for the other.
    """
    _require_columns(df, [x, y, hue])
    d = df[np.isfinite(df[x].to_numpy(np.float64)) & np.isfinite(df[y].to_numpy(np.float64))]
    colors = hue_colors(hue, _levels(d, hue))
    with style():
        fig, ax = _new_axes(ax, figsize=(6.4, 5.0))
        means = []
        for level, color in colors.items():
            g = d[d[hue] == level]
            ax.scatter(g[x], g[y], s=16, color=color, alpha=0.45, linewidths=0)
            mx, xl, xh = mean_ci(g[x], ci or 0.95)
            my, yl, yh = mean_ci(g[y], ci or 0.95)
            means.append((mx, my))
            if ci is not None and np.isfinite(xl):
                ax.errorbar(mx, my, xerr=[[mx - xl], [xh - mx]], yerr=[[my - yl], [yh - my]], color=color, capsize=3)
            ax.scatter([mx], [my], s=60, color=color, edgecolor="black", linewidths=0.8, zorder=4)
            ax.annotate(
                f"{words(hue, labels)} = {_fmt(level)}",
                (mx, my),
                xytext=(7, 5),
                textcoords="offset points",
                color="0.15",
            )
        if means:
            m = np.array(means)
            ax.plot(m[:, 0], m[:, 1], color="0.5", lw=1.0, zorder=3)
        if elbo_lines and len(d):
            _elbo_lines(ax)
        ax.set_xlabel(f"rate: {words(x, labels)}")
        ax.set_ylabel(f"distortion: {words(y, labels)}")
    return fig


def _elbo_lines(ax) -> None:
    """Dotted lines of constant rate + distortion across the current view, limits kept."""
    ax.autoscale_view()
    x0, x1 = ax.get_xlim()
    y0, y1 = ax.get_ylim()
    for c in np.linspace(x0 + y0, x1 + y1, 8)[1:-1]:
        ax.plot([x0, x1], [c - x0, c - x1], ls=":", lw=0.9, color="0.6", zorder=0)
    ax.set_xlim(x0, x1)
    ax.set_ylim(y0, y1)


def _mean_and_error(a, ci):
    """Means over rows of a (runs x dims) array and their ``ci`` error bars (None for one run)."""
    a = np.atleast_2d(np.asarray(a, np.float64))
    if a.shape[0] == 1:
        return a[0], None
    m = np.array([mean_ci(col, ci) for col in a.T])
    return m[:, 0], np.vstack([m[:, 0] - m[:, 1], m[:, 2] - m[:, 0]])


def plot_kl_per_dim(
    kl_per_dim,
    z_mean_variance=None,
    threshold: float = ACTIVE_THRESHOLD,
    ci: float = 0.95,
) -> Figure:
    """KL of each latent dimension as bars (``metrics["kl_per_dim"]``); a 2-D array (runs x dims)
    gives means with ``ci`` error bars.

    With ``z_mean_variance`` (``evaluate(...)["z_mean_variance"]``), a second panel shows the
    variance of the posterior mean over the data per dimension on a log axis with the active-unit
    threshold; bars of active units are coloured, inactive ones grey, in both panels.
    """
    kl, kl_err = _mean_and_error(kl_per_dim, ci)
    dims = np.arange(len(kl))
    panels = 1 if z_mean_variance is None else 2
    if z_mean_variance is not None:
        var, var_err = _mean_and_error(z_mean_variance, ci)
        if len(var) != len(kl):
            raise ValueError(f"{len(var)} variances for {len(kl)} KL values; allowed: one per latent dimension")
        active = var > threshold
    else:
        active = np.ones(len(kl), bool)
    colors = [PALETTE[0] if a else PALETTE[7] for a in active]
    with style():
        fig, axes = plt.subplots(1, panels, figsize=(4.2 * panels + 0.6, 3.8), squeeze=False)
        ax = axes[0, 0]
        ax.bar(dims, kl, color=colors, yerr=kl_err, capsize=3)
        ax.set_xlabel("latent dimension")
        ax.set_ylabel("KL per dimension (nats)")
        ax.set_xticks(dims)
        if panels == 2:
            ax2 = axes[0, 1]
            ax2.bar(dims, np.maximum(var, 1e-12), color=colors, yerr=var_err, capsize=3)
            ax2.axhline(threshold, color=DIVERGED_COLOR, ls="--", lw=1.5, label=f"active above {threshold:g}")
            ax2.set_yscale("log")
            log_ticks(ax2.yaxis, np.r_[var, threshold], grid=False)
            ax2.set_xlabel("latent dimension")
            ax2.set_ylabel("variance of the posterior\nmean over the data")
            ax2.set_xticks(dims)
            ax2.legend(loc="lower right")
            ax.set_title(f"{int(active.sum())} of {len(kl)} units active", color="0.3")
    return fig
