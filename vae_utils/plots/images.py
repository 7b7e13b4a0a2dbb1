"""Figures of images: grids of examples, reconstructions, latent-space grids and traversals, latent scatter, 2-D densities."""

from __future__ import annotations

import math
from collections.abc import Sequence

import matplotlib.pyplot as plt
import numpy as np
from matplotlib.figure import Figure

from ..publish.labels import label as words
from ..publish.labels import tick_text
from .colors import INK, PALETTE
from .style import MAX_WIDTH_IN, new_axes, style, value_text

__all__ = [
    "plot_images",
    "plot_reconstructions",
    "plot_latent_grid",
    "plot_traversal",
    "plot_latent_scatter",
    "plot_2d_density",
]


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


def plot_latent_scatter(
    z, labels=None, dims=(0, 1), name: str = "z_mean", ax=None, s: float = 10.0, legend_title: str = "class"
) -> Figure:
    """Two latent coordinates of each example (e.g. ``z_mean`` from ``evaluation.encode``),
    coloured by class label (unordered: the colour-blind palette)."""
    z = np.asarray(z, np.float64)
    if z.ndim != 2 or z.shape[1] <= max(dims):
        raise ValueError(f"z has shape {z.shape}; allowed: (n, latent_dim) with latent_dim > {max(dims)}")
    with style():
        fig, ax = new_axes(ax, figsize=(6.4, 5.2))
        if labels is None:
            ax.scatter(z[:, dims[0]], z[:, dims[1]], s=s, alpha=0.7, color=INK, linewidths=0)
        else:
            labels = np.asarray(labels)
            if len(labels) != len(z):
                raise ValueError(f"{len(labels)} labels for {len(z)} points; allowed: one label per point")
            for i, lab in enumerate(np.unique(labels)):
                m = labels == lab
                color = PALETTE[i % len(PALETTE)]
                ax.scatter(
                    z[m, dims[0]], z[m, dims[1]], s=s, alpha=0.8, color=color, label=value_text(lab), linewidths=0
                )
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
                ax.scatter(a[:, 0], a[:, 1], s=5, alpha=0.5, linewidths=0, color=INK)
            ax.set_title(title)
            ax.set_xlabel("first coordinate")
            ax.set_xlim(rng[0])
            ax.set_ylim(rng[1])
        axes[0].set_ylabel("second coordinate")
    return fig
