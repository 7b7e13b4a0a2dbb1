"""How the latent code is used: the rate-distortion plane and the KL per latent dimension."""

from __future__ import annotations

from collections.abc import Mapping

import matplotlib.pyplot as plt
import numpy as np
import pandas as pd
from matplotlib.figure import Figure

from ..claims.analysis import mean_ci  # the project's one t-interval and its per-cell summary
from ..publish.labels import label as words
from .colors import INK, hue_colors
from .style import (
    ACTIVE_THRESHOLD,
    hue_levels,
    log_ticks,
    new_axes,
    require_columns,
    style,
    value_text,
)

__all__ = ["plot_rate_distortion", "plot_kl_per_dim"]


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
    require_columns(df, [x, y, hue])
    d = df[np.isfinite(df[x].to_numpy(np.float64)) & np.isfinite(df[y].to_numpy(np.float64))]
    colors = hue_colors(hue, hue_levels(d, hue))
    with style():
        fig, ax = new_axes(ax, figsize=(6.4, 5.0))
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
                f"{words(hue, labels)} = {value_text(level)}",
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
    colors = [INK if a else "#bdbdbd" for a in active]  # active units dark, the rest light grey
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
            ax2.axhline(threshold, color="0.45", ls="--", lw=1.5, label=f"active above {threshold:g}")
            ax2.set_yscale("log")
            log_ticks(ax2.yaxis, np.r_[var, threshold], grid=False)
            ax2.set_xlabel("latent dimension")
            ax2.set_ylabel("variance of the posterior\nmean over the data")
            ax2.set_xticks(dims)
            ax2.legend(loc="lower right", bbox_to_anchor=(1.0, 1.0), borderaxespad=0.2)  # above: never over a bar
            ax.set_title(f"{int(active.sum())} of {len(kl)} units active", color="0.3")
    return fig
