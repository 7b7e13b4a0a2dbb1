"""Figures for the book: one colour-blind-safe style, and functions that take data and return a Figure.

    from vae_utils import plots
    plots.use_style()                                   # once per notebook (every function also applies it)
    fig = plots.plot_history(result.history)            # loss, reconstruction_loss, kl_loss, val_elbo per epoch
    fig = plots.plot_metric_vs(df, "batch_size", "test_elbo", hue="learning_rate", logx=True)
    plots.save_figure(fig, "figures/elbo_vs_batch")     # .svg and .png

Nothing here calls ``plt.show()``; notebooks glue the returned figures. Names on axes and in
legends are the column names of histories and result tables (``loss``, ``reconstruction_loss``,
``kl_loss``, ``val_elbo``, ``test_elbo``, ``z_mean``), so a figure reads like the table behind it.

Uncertainty: ``mean_ci`` is a Student-t interval over seeds (the runs of one config are the
sample); non-finite values (diverged runs) are dropped from it and drawn separately as crosses.
"""

from __future__ import annotations

import contextlib
import math
from collections.abc import Sequence
from pathlib import Path

import matplotlib as mpl
import matplotlib.pyplot as plt
import numpy as np
import pandas as pd
from cycler import cycler
from matplotlib.figure import Figure

from .analysis import mean_ci  # the one t-interval of the project; re-exported here for the figures

__all__ = [
    "PALETTE",
    "STYLE",
    "use_style",
    "style",
    "mean_ci",
    "mean_ci_table",
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

# seaborn's "colorblind" palette (Okabe-Ito based, 10 colours), spelled out so importing this
# module does not import seaborn; tests check it against seaborn.
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
DIVERGED_COLOR = "#d55e00"  # vermillion: crosses for runs that diverged
ACTIVE_THRESHOLD = 0.01  # Var_x(z_mean) above which a latent unit is active (vae_utils.evaluation)

STYLE = {
    "axes.prop_cycle": cycler(color=list(PALETTE)),
    "image.cmap": "viridis",  # perceptually uniform, colour-blind safe
    "figure.figsize": (6.4, 4.0),  # fits the book's text width
    "figure.dpi": 100,  # on screen
    "savefig.dpi": 200,  # PNG export: sharp on high-density screens
    "savefig.bbox": "tight",
    "figure.constrained_layout.use": True,
    "svg.fonttype": "none",  # SVG text stays text: small, searchable
    "svg.hashsalt": "vae-utils",  # deterministic SVG ids: figures diff cleanly between builds
    "font.size": 10,
    "axes.titlesize": 11,
    "axes.labelsize": 10,
    "xtick.labelsize": 9,
    "ytick.labelsize": 9,
    "legend.fontsize": 9,
    "legend.title_fontsize": 9,
    "legend.frameon": False,
    "axes.spines.top": False,
    "axes.spines.right": False,
    "axes.grid": True,
    "grid.alpha": 0.3,
    "grid.linewidth": 0.6,
    "lines.linewidth": 1.8,
    "lines.markersize": 5,
}


def use_style() -> None:
    """Set the book's style in matplotlib's global rcParams (call once per notebook)."""
    mpl.rcParams.update(STYLE)


@contextlib.contextmanager
def style():
    """The book's style inside a ``with`` block only; every plotting function here uses it."""
    with mpl.rc_context(STYLE):
        yield


# ---------------------------------------------------------------- statistics


def mean_ci_table(df: pd.DataFrame, by, y: str, level: float = 0.95) -> pd.DataFrame:
    """One row per group of ``by``: mean, low, high, half_width of ``y``; n (finite), n_diverged."""
    by = [by] if isinstance(by, str) else list(by)
    _require_columns(df, [*by, y])
    rows = []
    for key, group in df.groupby(by, sort=True, dropna=False):
        key = key if isinstance(key, tuple) else (key,)
        v = group[y].to_numpy(np.float64)
        mean, low, high = mean_ci(v, level)
        finite = int(np.isfinite(v).sum())
        rows.append(
            {
                **dict(zip(by, key, strict=True)),
                "mean": mean,
                "low": low,
                "high": high,
                "half_width": (high - low) / 2,
                "n": finite,
                "n_diverged": len(v) - finite,
            }
        )
    return pd.DataFrame(rows)


def heatmap_tables(df: pd.DataFrame, index: str, columns: str, y: str, level: float = 0.95):
    """(means, half_widths): two ``index`` x ``columns`` tables of ``y`` over seeds, for ``plot_heatmap``."""
    t = mean_ci_table(df, [index, columns], y, level)
    means = t.pivot(index=index, columns=columns, values="mean")
    half = t.pivot(index=index, columns=columns, values="half_width")
    means.name = half.name = y
    return means, half


# ---------------------------------------------------------------- helpers


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


def _require_columns(df, columns):
    if not isinstance(df, pd.DataFrame):
        raise ValueError(f"data is a {type(df).__name__}; allowed: a pandas DataFrame")
    missing = [c for c in columns if c is not None and c not in df.columns]
    if missing:
        raise ValueError(f"columns {missing} are not in the data; available: {list(df.columns)}")


def _fmt(v) -> str:
    if isinstance(v, (float, np.floating)):
        return f"{v:g}"
    return str(v)


def _hue_levels(df, hue):
    if hue is None:
        return [None]
    return sorted(df[hue].dropna().unique().tolist())


def _color(i: int) -> str:
    return PALETTE[i % len(PALETTE)]


def _new_axes(ax, figsize=None):
    if ax is not None:
        return ax.figure, ax
    fig, ax = plt.subplots(figsize=figsize)
    return fig, ax


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


# ---------------------------------------------------------------- learning curves


def plot_history(
    history,
    metrics: Sequence[str] = ("loss", "reconstruction_loss", "kl_loss", "val_elbo"),
    x: str = "epoch",
    hue: str | None = None,
    units: str | None = "seed",
    ncols: int | None = None,
    logy: bool = False,
) -> Figure:
    """Learning curves, one panel per metric.

    ``history`` is one run's ``TrainResult.history``, or a long DataFrame of many runs (their
    histories concatenated with config columns such as ``learning_rate`` and ``seed``), or a
    list of such frames. With several ``units`` (seeds) per hue level, each run is a thin line and
    their mean a thick one; ``hue`` colours groups (e.g. ``hue="learning_rate"``).
    """
    if isinstance(history, (list, tuple)):
        history = pd.concat(list(history), ignore_index=True)
    _require_columns(history, [x, *metrics, hue])
    units = units if units is not None and units in history.columns else None
    ncols = ncols or min(len(metrics), 4)
    nrows = math.ceil(len(metrics) / ncols)
    levels = _hue_levels(history, hue)
    with style():
        fig, axes = plt.subplots(nrows, ncols, figsize=(3.2 * ncols, 2.7 * nrows), squeeze=False, sharex=True)
        for k, ax in enumerate(axes.flat):
            if k >= len(metrics):
                fig.delaxes(ax)
                continue
            metric = metrics[k]
            for i, level in enumerate(levels):
                d = history if level is None else history[history[hue] == level]
                color = _color(i)
                label = None if level is None else _fmt(level)
                runs = [g for _, g in d.groupby(units)] if units else [d]
                if len(runs) > 1:
                    for g in runs:
                        ax.plot(g[x], g[metric], color=color, lw=0.7, alpha=0.35)
                    mean = d.groupby(x)[metric].mean()
                    ax.plot(mean.index, mean.to_numpy(), color=color, lw=2.0, label=label)
                else:
                    ax.plot(d[x], d[metric], color=color, label=label)
            ax.set_xlabel(x)
            ax.set_ylabel(metric)
            if logy:
                ax.set_yscale("log")
        if hue is not None:
            handles, labels = fig.axes[0].get_legend_handles_labels()
            fig.legend(handles, labels, title=hue, loc="outside right center")
    return fig


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
    """A grid of images (rows of ``images`` reshaped to ``image_shape``), one axes per image."""
    imgs = _as_images(images, image_shape)
    n = len(imgs)
    if titles is not None and len(titles) != n:
        raise ValueError(f"{len(titles)} titles for {n} images; allowed: one title per image")
    ncols = max(1, min(ncols, n))
    nrows = math.ceil(n / ncols)
    with style():
        fig, axes = plt.subplots(nrows, ncols, figsize=(size * ncols, size * nrows + 0.2 * (titles is not None)))
        axes = np.atleast_1d(axes).ravel()
        for k, ax in enumerate(axes):
            if k >= n:
                fig.delaxes(ax)
                continue
            ax.imshow(imgs[k], cmap=cmap, vmin=vmin, vmax=vmax, interpolation="nearest")
            ax.set_xticks([])
            ax.set_yticks([])
            ax.grid(False)
            if titles is not None:
                ax.set_title(titles[k], fontsize=8)
    return fig


def plot_reconstructions(x, x_hat, image_shape, n: int = 10, labels=("x", "reconstruction")) -> Figure:
    """Originals (top row) above their reconstructions (bottom row), the first ``n`` of each."""
    a, b = _as_images(x, image_shape), _as_images(x_hat, image_shape)
    if len(a) != len(b):
        raise ValueError(f"{len(a)} originals but {len(b)} reconstructions; allowed: the same number")
    n = min(n, len(a))
    with style():
        fig, axes = plt.subplots(2, n, figsize=(0.9 * n + 0.6, 2.0), squeeze=False)
        for row, (imgs, label) in enumerate(zip((a, b), labels, strict=True)):
            for j in range(n):
                ax = axes[row, j]
                ax.imshow(imgs[j], cmap="gray_r", vmin=0, vmax=1, interpolation="nearest")
                ax.set_xticks([])
                ax.set_yticks([])
                ax.grid(False)
            axes[row, 0].set_ylabel(label)
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
        fig, ax = plt.subplots(figsize=(5.0, 5.0))
        ext = (-limit - step / 2, limit + step / 2, -limit - step / 2, limit + step / 2)
        ax.imshow(img, cmap="gray", vmin=0, vmax=1, extent=ext, interpolation="nearest")
        ax.grid(False)
        ax.set_xlabel(f"z[{dims[0]}]")
        ax.set_ylabel(f"z[{dims[1]}]")
    return fig


def plot_traversal(traversal, image_shape, values=None, dims=None, kl_per_dim=None) -> Figure:
    """Latent traversal (``evaluation.latent_traversal``): one row per latent dimension, one column per value.

    ``kl_per_dim`` (optional) labels each row with its KL, so collapsed (inactive) rows can be told apart.
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
    with style():
        fig, ax = plt.subplots(figsize=(0.55 * cols + 1.2, 0.55 * rows + 0.6))
        ax.imshow(img, cmap="gray", vmin=0, vmax=1, interpolation="nearest")
        ax.grid(False)
        ax.set_xticks([j * (w + 1) + (w - 1) / 2 for j in range(cols)], [f"{v:g}" for v in values])
        ylabels = [f"z[{u}]" for u in dims]
        if kl_per_dim is not None:
            kl = np.asarray(kl_per_dim, np.float64)
            ylabels = [f"z[{u}]  KL {kl[u]:.2f}" for u in dims]
        ax.set_yticks([i * (h + 1) + (h - 1) / 2 for i in range(rows)], ylabels)
        ax.set_xlabel("latent value")
        for side in ("left", "bottom"):
            ax.spines[side].set_visible(False)
        ax.tick_params(length=0)
    return fig


# ---------------------------------------------------------------- latent space


def plot_latent_scatter(z, labels=None, dims=(0, 1), name: str = "z_mean", ax=None, s: float = 8.0) -> Figure:
    """Two latent coordinates of each example (e.g. ``z_mean`` from ``evaluation.encode``), coloured by label."""
    z = np.asarray(z, np.float64)
    if z.ndim != 2 or z.shape[1] <= max(dims):
        raise ValueError(f"z has shape {z.shape}; allowed: (n, latent_dim) with latent_dim > {max(dims)}")
    with style():
        fig, ax = _new_axes(ax, figsize=(4.8, 4.2))
        if labels is None:
            ax.scatter(z[:, dims[0]], z[:, dims[1]], s=s, alpha=0.7, color=PALETTE[0], linewidths=0)
        else:
            labels = np.asarray(labels)
            if len(labels) != len(z):
                raise ValueError(f"{len(labels)} labels for {len(z)} points; allowed: one label per point")
            for i, lab in enumerate(np.unique(labels)):
                m = labels == lab
                ax.scatter(z[m, dims[0]], z[m, dims[1]], s=s, alpha=0.8, color=_color(i), label=_fmt(lab), linewidths=0)
            ax.legend(title="label", loc="center left", bbox_to_anchor=(1.0, 0.5), markerscale=2)
        ax.set_xlabel(f"{name}[{dims[0]}]")
        ax.set_ylabel(f"{name}[{dims[1]}]")
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
        fig, axes = plt.subplots(1, 2, figsize=(7.6, 3.7), sharex=True, sharey=True)
        for ax, a, title in zip(axes, (p, q), labels, strict=True):
            if kind == "hist":
                ax.hist2d(a[:, 0], a[:, 1], bins=bins, range=rng, density=True, cmap="viridis")
                ax.grid(False)
            else:
                ax.scatter(a[:, 0], a[:, 1], s=4, alpha=0.5, linewidths=0, color=PALETTE[0])
            ax.set_title(title)
            ax.set_xlabel("x[0]")
            ax.set_xlim(rng[0])
            ax.set_ylim(rng[1])
        axes[0].set_ylabel("x[1]")
    return fig


# ---------------------------------------------------------------- sweeps


def _positions(values):
    """Numeric x stays numeric; anything else is placed at 0, 1, 2, ... in sorted order."""
    s = pd.Series(values)
    if pd.api.types.is_numeric_dtype(s):
        return s.to_numpy(np.float64), None
    cats = sorted(s.dropna().unique().tolist(), key=str)
    return s.map({c: i for i, c in enumerate(cats)}).to_numpy(np.float64), cats


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
) -> Figure:
    """Mean of ``y`` over seeds against ``x`` (one line per ``hue`` level) with its ``ci`` t-interval,
    plus every run as a point; diverged runs (non-finite ``y``) as crosses at the bottom edge.

    ``band=True`` shades the interval; ``False`` draws error bars. ``ci=None`` draws means only.
    """
    _require_columns(df, [x, y, hue])
    pos, cats = _positions(df[x])
    d = df.assign(_x=pos)
    levels = _hue_levels(d, hue)
    with style():
        fig, ax = _new_axes(ax)
        any_diverged = False
        for i, level in enumerate(levels):
            g = d if level is None else d[d[hue] == level]
            color = _color(i)
            label = None if level is None else _fmt(level)
            yv = g[y].to_numpy(np.float64)
            ok = np.isfinite(yv)
            ax.scatter(g["_x"][ok], yv[ok], s=12, color=color, alpha=0.45, linewidths=0, zorder=2)
            if (~ok).any():
                any_diverged = True
                ax.scatter(
                    g["_x"][~ok],
                    np.full((~ok).sum(), 0.02),
                    marker="x",
                    s=30,
                    color=color,
                    transform=ax.get_xaxis_transform(),
                    clip_on=False,
                    zorder=3,
                )
            t = mean_ci_table(g, "_x", y, ci if ci is not None else 0.95)
            ax.plot(t["_x"], t["mean"], marker="o", color=color, label=label, zorder=4)
            if ci is not None:
                if band:
                    ax.fill_between(t["_x"], t["low"], t["high"], color=color, alpha=0.2, linewidth=0, zorder=1)
                else:
                    err = np.vstack([t["mean"] - t["low"], t["high"] - t["mean"]])
                    ax.errorbar(t["_x"], t["mean"], yerr=err, fmt="none", ecolor=color, capsize=3, zorder=4)
        if logx:
            ax.set_xscale("log")
        if logy:
            ax.set_yscale("log")
        if cats is not None:
            ax.set_xticks(range(len(cats)), [str(c) for c in cats])
        elif logx:
            ticks = np.unique(pos[np.isfinite(pos)])
            if len(ticks) <= 12:
                ax.set_xticks(ticks, [f"{v:g}" for v in ticks])
                ax.minorticks_off()
        ax.set_xlabel(x)
        ax.set_ylabel(y)
        handles, labels = ax.get_legend_handles_labels()
        if any_diverged:
            handles.append(mpl.lines.Line2D([], [], marker="x", ls="", color="0.3"))
            labels.append("diverged")
        if hue is not None or any_diverged:
            ax.legend(handles, labels, title=hue)
        if ci is not None:
            ax.set_title(f"mean ± {ci:.0%} CI over {units or 'runs'}", fontsize=9, loc="left", color="0.3")
    return fig


def plot_heatmap(
    table: pd.DataFrame,
    annot: bool = True,
    ci_table: pd.DataFrame | None = None,
    fmt: str = ".1f",
    cmap: str = "viridis",
    label: str | None = None,
    higher_is_better: bool | None = None,
    ax=None,
) -> Figure:
    """A table (e.g. batch_size x learning_rate means of test_elbo) as a heatmap.

    Each cell reads "mean ± half-width" when ``ci_table`` (same shape: CI half-widths) is given;
    empty (all-diverged) cells are grey and read "n/a". ``higher_is_better`` marks the best cell.
    Axis labels are the table's index and column names; the colour bar is ``label`` or ``table.name``.
    """
    if not isinstance(table, pd.DataFrame):
        raise ValueError(f"table is a {type(table).__name__}; allowed: a pandas DataFrame (use heatmap_tables)")
    values = table.to_numpy(np.float64)
    if ci_table is not None:
        ci_table = ci_table.reindex(index=table.index, columns=table.columns)
        half = ci_table.to_numpy(np.float64)
    cm = mpl.colormaps[cmap].with_extremes(bad="0.85")
    with style():
        nr, nc = values.shape
        fig, ax = _new_axes(ax, figsize=(1.2 * nc + 1.8, 0.55 * nr + 1.2))
        im = ax.imshow(np.ma.masked_invalid(values), cmap=cm, aspect="auto")
        ax.grid(False)
        ax.set_xticks(range(nc), [_fmt(c) for c in table.columns])
        ax.set_yticks(range(nr), [_fmt(r) for r in table.index])
        ax.set_xlabel(table.columns.name or "")
        ax.set_ylabel(table.index.name or "")
        for side in ("left", "bottom"):
            ax.spines[side].set_visible(False)
        ax.tick_params(length=0)
        cbar = fig.colorbar(im, ax=ax)
        cbar.set_label(label or getattr(table, "name", None) or "")
        best = None
        if higher_is_better is not None and np.isfinite(values).any():
            flat = np.where(np.isfinite(values), values, -np.inf if higher_is_better else np.inf)
            best = np.unravel_index(np.argmax(flat) if higher_is_better else np.argmin(flat), values.shape)
            ax.add_patch(
                mpl.patches.Rectangle(
                    (best[1] - 0.5, best[0] - 0.5), 1, 1, fill=False, edgecolor="black", linewidth=2.0, zorder=3
                )
            )
        if annot:
            finite = values[np.isfinite(values)]
            mid = (finite.min() + finite.max()) / 2 if len(finite) else 0.0
            for r in range(nr):
                for c in range(nc):
                    v = values[r, c]
                    if not np.isfinite(v):
                        text, color = "n/a", "0.3"
                    else:
                        text = format(v, fmt)
                        if ci_table is not None and np.isfinite(half[r, c]):
                            text += f"\n± {format(half[r, c], fmt)}"
                        color = "black" if v > mid else "white"  # viridis: light at the top
                    ax.text(c, r, text, ha="center", va="center", fontsize=8, color=color, zorder=4)
    return fig


def plot_rate_distortion(
    df: pd.DataFrame,
    x: str = "kl_loss",
    y: str = "reconstruction_loss",
    hue: str = "beta",
    ci: float | None = 0.95,
    elbo_lines: bool = True,
    ax=None,
) -> Figure:
    """Rate (``kl_loss``) against distortion (``reconstruction_loss``), one point per run, the
    mean per ``hue`` level (default: beta) joined in order and labelled.

    ``elbo_lines`` draws dotted lines of equal negative ELBO (rate + distortion = const), on which
    beta trades one for the other.
    """
    _require_columns(df, [x, y, hue])
    d = df[np.isfinite(df[x].to_numpy(np.float64)) & np.isfinite(df[y].to_numpy(np.float64))]
    levels = _hue_levels(d, hue)
    with style():
        fig, ax = _new_axes(ax, figsize=(5.2, 4.2))
        means = []
        for i, level in enumerate(levels):
            g = d[d[hue] == level]
            color = _color(i)
            ax.scatter(g[x], g[y], s=12, color=color, alpha=0.45, linewidths=0)
            mx, xl, xh = mean_ci(g[x], ci or 0.95)
            my, yl, yh = mean_ci(g[y], ci or 0.95)
            means.append((mx, my))
            if ci is not None and np.isfinite(xl):
                ax.errorbar(mx, my, xerr=[[mx - xl], [xh - mx]], yerr=[[my - yl], [yh - my]], color=color, capsize=2)
            ax.scatter([mx], [my], s=40, color=color, edgecolor="black", linewidths=0.6, zorder=4, label=_fmt(level))
            ax.annotate(f"{hue}={_fmt(level)}", (mx, my), xytext=(5, 4), textcoords="offset points", fontsize=8)
        if means:
            m = np.array(means)
            ax.plot(m[:, 0], m[:, 1], color="0.5", lw=1.0, zorder=3)
        if elbo_lines and len(d):
            ax.autoscale_view()
            x0, x1 = ax.get_xlim()
            y0, y1 = ax.get_ylim()
            for c in np.linspace(x0 + y0, x1 + y1, 8)[1:-1]:
                ax.plot([x0, x1], [c - x0, c - x1], ls=":", lw=0.8, color="0.6", zorder=0)
            ax.set_xlim(x0, x1)
            ax.set_ylim(y0, y1)
        ax.set_xlabel(f"{x} (rate, nats)")
        ax.set_ylabel(f"{y} (distortion, nats)")
        ax.legend(title=hue, loc="upper right")
    return fig


def plot_kl_per_dim(
    kl_per_dim,
    z_mean_variance=None,
    threshold: float = ACTIVE_THRESHOLD,
    ci: float = 0.95,
) -> Figure:
    """KL of each latent dimension as bars (``metrics["kl_per_dim"]``); a 2-D array (runs x dims)
    gives means with ``ci`` error bars.

    With ``z_mean_variance`` (``evaluate(...)["z_mean_variance"]``), a second panel shows
    Var_x(z_mean) per dimension on a log axis with the active-unit threshold; bars of active
    units are coloured, inactive ones grey, in both panels.
    """

    def summary(a):
        a = np.atleast_2d(np.asarray(a, np.float64))
        if a.shape[0] == 1:
            return a[0], None
        m = np.array([mean_ci(col, ci) for col in a.T])
        return m[:, 0], np.vstack([m[:, 0] - m[:, 1], m[:, 2] - m[:, 0]])

    kl, kl_err = summary(kl_per_dim)
    dims = np.arange(len(kl))
    panels = 1 if z_mean_variance is None else 2
    if z_mean_variance is not None:
        var, var_err = summary(z_mean_variance)
        if len(var) != len(kl):
            raise ValueError(f"{len(var)} variances for {len(kl)} KL values; allowed: one per latent dimension")
        active = var > threshold
    else:
        active = np.ones(len(kl), bool)
    colors = [PALETTE[0] if a else PALETTE[7] for a in active]
    with style():
        fig, axes = plt.subplots(1, panels, figsize=(3.6 * panels + 0.6, 3.2), squeeze=False)
        ax = axes[0, 0]
        ax.bar(dims, kl, color=colors, yerr=kl_err, capsize=2)
        ax.set_xlabel("latent dimension")
        ax.set_ylabel("kl_loss per dimension (nats)")
        ax.set_xticks(dims)
        if panels == 2:
            ax2 = axes[0, 1]
            ax2.bar(dims, np.maximum(var, 1e-12), color=colors, yerr=var_err, capsize=2)
            ax2.axhline(threshold, color=DIVERGED_COLOR, ls="--", lw=1.2, label=f"active threshold {threshold:g}")
            ax2.set_yscale("log")
            ax2.set_xlabel("latent dimension")
            ax2.set_ylabel("Var(z_mean) over the data")
            ax2.set_xticks(dims)
            ax2.legend(loc="lower right")
            ax.set_title(f"{int(active.sum())} of {len(kl)} units active", fontsize=9, loc="left", color="0.3")
    return fig
