"""Figures for the book: one style readable at page width, and functions that take data and return a Figure.

    from vae_utils import plots
    plots.use_style()                                   # once per notebook (every function also applies it)
    fig = plots.plot_history(result.history)            # loss, reconstruction, KL, validation ELBO per epoch
    fig = plots.plot_metric_vs(df, "batch_size", "test_elbo", hue="learning_rate", logx=True)
    means, half = plots.heatmap_tables(df, "batch_size", "learning_rate", "test_elbo")
    fig = plots.plot_heatmap(means, ci_table=half, higher_is_better=True)
    plots.save_figure(fig, "figures/elbo_vs_batch")     # .svg and .png (or publish it: vae_utils.publish.figures)

Nothing here calls ``plt.show()``. What a reader sees:

* **Words, not identifiers.** Axis labels, legend titles and colour bars come from
  ``vae_utils.publish.labels.label`` ("test ELBO (nats)", "batch size", "β"); every function takes
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

Modules: ``style`` (palette, sizes, axes shared by every plot), ``curves`` (histories, a metric
against a setting), ``heatmaps``, ``images``, ``latents`` (rate-distortion, KL per dimension).
"""

from .curves import plot_history, plot_metric_vs
from .heatmaps import heatmap_tables, plot_heatmap
from .images import (
    plot_2d_density,
    plot_images,
    plot_latent_grid,
    plot_latent_scatter,
    plot_reconstructions,
    plot_traversal,
)
from .latents import plot_kl_per_dim, plot_rate_distortion
from .style import (
    FONT_PT,
    MAX_WIDTH_IN,
    MIN_TEXT_PX,
    PAGE_PX,
    PALETTE,
    SEQUENTIAL,
    STYLE,
    contrast_ratio,
    hue_colors,
    log_ticks,
    mean_ci,
    save_figure,
    style,
    t_interval,
    text_px,
    tick_text,
    use_style,
)

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
