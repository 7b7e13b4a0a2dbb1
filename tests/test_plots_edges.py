"""Tests of what a figure's axes do not show and what its colours mean (``vae_utils.plots.edges``,
``vae_utils.plots.colors``): a y range that keeps the differences between group means visible when
a few runs lie far off, runs beyond the axis and runs that broke down drawn at its edge and said
in the caption, optimizer colours fixed book-wide, default-vs-tuned never in an optimizer's colour,
batch sizes in well-separated lightness.

Run: ``.venv/bin/pytest tests/test_plots_edges.py`` (about 20 s; no TensorFlow).
"""

import itertools

import matplotlib

matplotlib.use("Agg")

import matplotlib.pyplot as plt
import numpy as np
import pandas as pd
import pytest
from test_plots import _rules, _rules_figure, _settings, _sweep, _with_outlier

from vae_utils import plots
from vae_utils.plots import edges


@pytest.fixture(autouse=True)
def close_figures():
    yield
    plt.close("all")


def _group_means(df, by="batch_size", y="test_elbo"):
    return df.groupby(by)[y].mean()


def _marks(ax, marker):
    """Display coordinates of the visible edge markers (``marker``: "v" or "^") of ``ax``."""
    out = [
        ln.get_transform().transform(np.c_[ln.get_xdata(), ln.get_ydata()])
        for ln in ax.get_lines()
        if ln.get_marker() == marker and ln.get_linestyle() == "None" and ln.get_visible() and len(ln.get_xdata())
    ]
    return np.vstack(out) if out else np.empty((0, 2))


def _crosses(ax):
    """Display coordinates of the crosses (diverged runs) of ``ax``."""
    found = [
        c.get_offset_transform().transform(np.asarray(c.get_offsets(), float))
        for c in ax.collections
        if isinstance(c, matplotlib.collections.PathCollection) and c.get_offset_transform() != ax.transData
    ]
    return np.vstack(found) if found else np.empty((0, 2))


# ---------------------------------------------------------------- a y range that shows the means


def test_one_far_outlier_no_longer_hides_the_differences_between_group_means():
    """Five batch sizes 1–2 nats apart and one seed at −160: the axis is clipped so the means the
    outlier did not drag down span at least SHARE of it; the outlier is a triangle on the bottom
    edge, counted under the x label."""
    df = _with_outlier()
    fig = plots.plot_metric_vs(df, "batch_size", "test_elbo", logx=True)
    ax = fig.axes[0]
    fig.canvas.draw()
    lo, hi = ax.get_ylim()
    means = _group_means(df)
    kept = means[means > -50]  # batch 64's mean is dragged to about −73
    assert np.ptp(kept) / (hi - lo) >= edges.SHARE
    assert lo > -40 and means.max() < hi
    below = _marks(ax, "v")
    assert len(below) == 1 and abs(below[0, 1] - ax.get_window_extent().y0) < 1.0
    assert "▼ 1 run below the axis" in [t.get_text() for t in ax.texts]


def test_without_an_outlier_the_axis_spans_all_the_runs():
    """No group far off: informative_ylim returns None and every run is inside the axis."""
    df = _sweep(lrs=(1e-3,))
    means = _group_means(df)
    assert edges.informative_ylim(means, df.test_elbo, edges.within_noise(df, ["batch_size"], "test_elbo")) is None
    ax = plots.plot_metric_vs(df, "batch_size", "test_elbo").axes[0]
    lo, hi = ax.get_ylim()
    assert lo < df.test_elbo.min() and df.test_elbo.max() < hi and len(_marks(ax, "v")) == 0


def test_the_best_groups_are_never_cut_off_only_a_minority_far_below():
    """One group far above four poor ones is the finding, not an outlier: nothing is cut. Two far
    below six close ones are cut, the farthest included; two of five are not a few."""
    assert list(edges.core_means([-24.0, -150.0, -152.0, -155.0, -160.0])) == [-160.0, -155.0, -152.0, -150.0, -24.0]
    eight = [-160.0, -60.0, -25.0, -24.8, -24.5, -24.3, -24.1, -24.0]
    assert list(edges.core_means(eight)) == eight[2:]
    # the rules figure of a short build: three rules share the smallest batch's runs (equal means),
    # two of five means lie below: not a few, so nothing is cut
    assert len(edges.core_means([-32.4, -32.1, -27.14, -27.14, -27.14], noise=0.03)) == 5
    assert list(edges.core_means([-26.0, -25.0, -24.5, -24.0], noise=0.5)) == [-26.0, -25.0, -24.5, -24.0]


def test_a_later_set_ylim_moves_the_runs_it_cuts_to_the_edge_and_the_caption_says_so():
    """The optimizer chapter narrows its axis to the 8 nats below the best after plotting: the runs
    below become triangles, counted, and edge_note names how many and the lowest value in nats."""
    df = _with_outlier()
    fig = plots.plot_metric_vs(df, "batch_size", "test_elbo", logx=True, clip=False)
    ax = fig.axes[0]
    assert len(_marks(ax, "v")) == 0
    ax.set_ylim(-33.0, -29.0)
    fig.canvas.draw()
    n_below = int((df.test_elbo < -33.0).sum())
    assert len(_marks(ax, "v")) == n_below >= 1
    assert f"▼ {n_below} run{'s' if n_below > 1 else ''} below the axis" in [t.get_text() for t in ax.texts]
    runs = f"{n_below} run{'s' if n_below > 1 else ''}"
    assert plots.edge_note(fig) == f"Triangles (▼) on the bottom edge: {runs} below the axis, the lowest at −160 nats."


# ---------------------------------------------------------------- runs that broke down


def test_a_run_that_broke_down_is_a_cross_on_the_bottom_edge_in_every_panel():
    """Chapter 06's rules figure: SGD's linear rule broke down at batch 512 (``broke`` True, its
    ELBO finite), Adam's lies at −160. Every panel with such runs has one cross per broken run on
    its bottom edge; Adam's far runs are triangles, not crosses, and the axis shows the rest."""
    df = _rules()
    fig = _rules_figure(df)
    fig.canvas.draw()
    adam, sgd = fig.axes
    bottom = sgd.get_window_extent().y0
    crosses = _crosses(sgd)
    assert len(crosses) == int(df[df.optimizer == "sgd"].broke.sum()) == 10
    assert np.all(np.abs(crosses[:, 1] - bottom) < 0.1 * sgd.get_window_extent().height)
    assert len(_crosses(adam)) == 0 and len(_marks(adam, "v")) == 10
    assert min(adam.get_ylim()) > -40
    note = plots.edge_note(fig)
    assert (
        "10 runs below the axis, the lowest at −1" in note
        and "Crosses (×) on the bottom edge: 10 runs that diverged." in note
    )


def test_broke_down_reads_every_way_the_store_and_the_claims_say_it():
    df = pd.DataFrame(
        {
            "test_elbo": [-24.0, np.nan, -25.0, -26.0, np.inf],
            "status": ["ok", "ok", "diverged", "ok", "ok"],
            "broke": [False, False, False, True, False],
        }
    )
    assert edges.broke_down(df, "test_elbo").tolist() == [False, True, True, True, True]


def test_the_caption_says_crosses_only_when_it_does_not_already():
    fig = _rules_figure(_rules().assign(test_elbo=lambda d: d.test_elbo.clip(lower=-30)))
    assert plots.edge_note(fig).startswith("Crosses (×) on the bottom edge: 10 runs that diverged.")
    assert plots.edge_note(fig, "Runs that diverged are drawn as crosses.") == ""


# ---------------------------------------------------------------- colours that mean one thing


def test_each_optimizer_has_one_colour_whatever_the_words_that_name_it():
    """'adam', 'Adam'; 'sgd', 'SGD', 'plain SGD'; 'momentum', 'SGD with momentum': one colour each,
    five distinct colours (ΔE > 20 between any two)."""
    same = [("adam", "Adam"), ("sgd", "SGD", "plain SGD"), ("momentum", "SGD with momentum"), ("rmsprop", "RMSprop")]
    for names in same:
        colors = {plots.hue_colors("optimizer", [n])[n] for n in names}
        assert colors == {plots.OPTIMIZER_COLORS[names[0]]}, names
    c = list(plots.OPTIMIZER_COLORS.values())
    assert min(plots.delta_e(a, b) for i, a in enumerate(c) for b in c[i + 1 :]) > 20


def test_default_and_tuned_never_wear_an_optimizers_colour():
    """The default-vs-tuned figure tells the two settings apart by ink and grey and by marker, and no
    colour of it is within ΔE 15 of an optimizer's colour."""
    looks = plots.hue_looks("setting", ["default rate", "tuned rate"])
    assert len({(k.color, k.marker) for k in looks.values()}) == 2
    fig = plots.plot_metric_vs(_settings(), "optimizer", "test_elbo", hue="setting")
    drawn = {
        matplotlib.colors.to_hex(c)
        for coll in fig.axes[0].collections
        for c in coll.get_facecolor()
        if coll.get_offset_transform() == fig.axes[0].transData
    }
    drawn |= {matplotlib.colors.to_hex(ln.get_color()) for ln in fig.axes[0].get_lines()}
    assert drawn and all(plots.delta_e(d, o) > 15 for d in drawn for o in plots.OPTIMIZER_COLORS.values())


def test_one_colour_means_one_thing_in_a_figure_of_optimizers_beside_settings():
    """A panel coloured by optimizer beside a panel of default-vs-tuned (the at-scale chapter's
    figure): no colour of the second panel is a colour of the first."""
    tuning = _settings().assign(learning_rate=lambda d: np.where(d.setting == "tuned rate", 1e-3, 1e-2))
    with plots.style():
        _, axes = plt.subplots(1, 2, figsize=(9.3, 3.8))
    plots.plot_metric_vs(tuning, "learning_rate", "test_elbo", hue="optimizer", logx=True, ax=axes[0])
    plots.plot_metric_vs(_settings(), "optimizer", "test_elbo", hue="setting", ax=axes[1])
    first = {matplotlib.colors.to_hex(ln.get_color()) for ln in axes[0].get_lines() if len(ln.get_xdata())}
    second = {matplotlib.colors.to_hex(ln.get_color()) for ln in axes[1].get_lines() if len(ln.get_xdata())}
    assert first <= set(plots.OPTIMIZER_COLORS.values()) and not first & second


def test_five_batch_sizes_differ_in_lightness_not_only_in_hue():
    """Five ordered levels: L* falls by at least 10 per level (the old 'flare' reds differed by
    about 8 and looked alike), neighbours differ by ΔE > 10, the lightest still 3:1 on white."""
    colors = list(plots.hue_colors("batch_size", [16, 32, 64, 128, 256]).values())
    light = [plots.lightness(c) for c in colors]
    assert all(a - b >= 10 for a, b in itertools.pairwise(light))
    assert all(plots.delta_e(a, b) > 10 for a, b in itertools.pairwise(colors))
    assert plots.contrast_ratio(colors[0], "white") >= 3.0


def test_a_single_series_is_drawn_in_ink_not_in_an_optimizers_colour():
    fig = plots.plot_metric_vs(_sweep(lrs=(1e-3,)), "batch_size", "test_elbo")
    assert {matplotlib.colors.to_hex(ln.get_color()) for ln in fig.axes[0].get_lines() if len(ln.get_xdata())} == {
        plots.INK
    }
