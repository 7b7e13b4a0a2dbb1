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
* **One colour, one meaning, book-wide** (``colors``). Adam, AdamW, RMSprop, SGD and SGD with
  momentum keep ``OPTIMIZER_COLORS`` in every figure, by name or by the words the book prints;
  ordered hue variables (batch size, learning rate, β) get a light-to-dark cividis ramp whose
  levels differ in lightness (``SEQUENTIAL``); other names (budget, rule, default-vs-tuned) are
  ink and grey with line styles and markers (``NEUTRAL``); a single series is ``INK``. Pass
  ``palette=`` to override.
* **Readable on a phone.** ``check_legible(fig)`` lists every text below 6 px when the figure is
  shown in a 390-px column; ``publish_figure`` warns with it. Legends sit beside the axes, never
  over the data (``legends_over_data(fig)`` checks it).
* **Axes that say what the grid was.** A log axis over at most 12 grid values has a labelled tick
  at each of them; other log axes are labelled at 1-2-5 steps, never at one lonely decade. A
  categorical x (optimizer names) gets points with intervals, never lines between categories.
* **Uncertainty and failures** (``edges``). Means are over seeds with a Student-t interval
  (``t_interval``, the seaborn ``errorbar`` callable built on ``analysis.mean_ci``); every run is
  a dot; runs that broke down (non-finite, or flagged ``broke``/``diverged``) are crosses at the
  bottom edge. A few groups far below the rest no longer flatten the others: the y axis keeps the
  differences between group means visible (``informative_ylim``), every run beyond the axis is a
  triangle at its edge (after a later ``set_ylim`` too), the words under the x label count both,
  and ``publish_figure`` adds ``edge_note(fig)`` to the caption.
* **Direct labels.** Lines over a numeric x are labelled at their right end (``direct_labels``),
  so no legend sits far from its lines.
* **Heatmaps** write each cell as "mean ± half-width" in the colour (black or white) that
  contrasts most with the cell (WCAG contrast ratio, ``contrast_ratio``; seaborn's own annot
  switches at a luminance of 0.408, which leaves mid-tone cells below 4.5:1). The colour range
  spans the data; a range limited by ``vmin``/``vmax`` shows arrows on the colour bar and marks
  each clipped cell ▲ (above) or ▼ (below).

Modules: ``style`` (sizes, axes shared by every plot), ``colors``, ``edges``, ``legible``,
``curves`` (histories, a metric
against a setting), ``heatmaps``, ``images``, ``latents`` (rate-distortion, KL per dimension).
"""

from . import colors as _colors
from . import curves as _curves
from . import edges as _edges
from . import heatmaps as _heatmaps
from . import images as _images
from . import latents as _latents
from . import legible as _legible
from . import style as _style
from .colors import *  # noqa: F403
from .curves import *  # noqa: F403
from .edges import *  # noqa: F403
from .heatmaps import *  # noqa: F403
from .images import *  # noqa: F403
from .latents import *  # noqa: F403
from .legible import *  # noqa: F403
from .style import *  # noqa: F403

__all__ = [
    *_style.__all__,
    *_colors.__all__,
    *_edges.__all__,
    *_legible.__all__,
    *_curves.__all__,
    *_heatmaps.__all__,
    *_images.__all__,
    *_latents.__all__,
]
