"""Tests of vae_utils.plots: every function returns a Figure with the promised axes, labels and
artists on small synthetic data; mean_ci matches a hand computation and scipy; figures export."""

import math

import matplotlib

matplotlib.use("Agg")

import matplotlib.pyplot as plt
import numpy as np
import pandas as pd
import pytest
from matplotlib.collections import PathCollection, PolyCollection, QuadMesh
from matplotlib.container import ErrorbarContainer
from matplotlib.figure import Figure
from matplotlib.image import AxesImage
from scipy import stats

from vae_utils import plots


@pytest.fixture(autouse=True)
def close_figures():
    yield
    plt.close("all")


def _histories(lrs=(1e-3, 1e-2), seeds=(0, 1, 2), epochs=5):
    rows = []
    rng = np.random.default_rng(0)
    for lr in lrs:
        for seed in seeds:
            for e in range(1, epochs + 1):
                loss = 40 / e + rng.normal(0, 0.5)
                rows.append(
                    {
                        "learning_rate": lr,
                        "seed": seed,
                        "epoch": e,
                        "loss": loss,
                        "reconstruction_loss": loss - 5,
                        "kl_loss": 5.0,
                        "val_elbo": -loss,
                    }
                )
    return pd.DataFrame(rows)


def _sweep(diverge=False):
    rng = np.random.default_rng(1)
    rows = []
    for lr in (1e-3, 1e-2):
        for bs in (32, 64, 128, 256):
            for seed in range(3):
                y = -30 - 0.01 * bs + rng.normal(0, 0.3)
                if diverge and lr == 1e-2 and bs == 32 and seed == 0:
                    y = float("nan")
                rows.append({"learning_rate": lr, "batch_size": bs, "seed": seed, "test_elbo": y})
    return pd.DataFrame(rows)


def _lines(ax):
    return [ln for ln in ax.get_lines() if len(ln.get_xdata())]


# ---------------------------------------------------------------- mean_ci


def test_mean_ci_matches_a_hand_computed_t_interval():
    """For (1, 2, 3, 4): mean 2.5, s = sqrt(5/3), half-width t_{0.975,3} * s / 2 with t = 3.182446305."""
    mean, low, high = plots.mean_ci([1, 2, 3, 4])
    half = 3.182446305284263 * math.sqrt(5 / 3) / 2
    assert mean == pytest.approx(2.5)
    assert low == pytest.approx(2.5 - half, rel=1e-9)
    assert high == pytest.approx(2.5 + half, rel=1e-9)


def test_mean_ci_agrees_with_scipy_t_interval_at_several_levels():
    """mean_ci equals scipy.stats.t.interval(level, n-1, mean, sem) for random data."""
    x = np.random.default_rng(3).normal(5, 2, size=7)
    for level in (0.8, 0.95, 0.99):
        mean, low, high = plots.mean_ci(x, level)
        lo, hi = stats.t.interval(level, len(x) - 1, loc=x.mean(), scale=stats.sem(x))
        assert (mean, low, high) == pytest.approx((x.mean(), lo, hi), rel=1e-12)


def test_mean_ci_drops_non_finite_values_and_handles_tiny_samples():
    """NaN/inf (diverged runs) are ignored; one value has no interval; no values give all NaN."""
    assert plots.mean_ci([1.0, 2.0, float("nan"), float("inf")]) == pytest.approx(plots.mean_ci([1.0, 2.0]))
    m, lo, hi = plots.mean_ci([3.0])
    assert m == 3.0 and math.isnan(lo) and math.isnan(hi)
    assert all(math.isnan(v) for v in plots.mean_ci([float("nan")]))
    assert plots.mean_ci([2.0, 2.0, 2.0]) == (2.0, 2.0, 2.0)
    with pytest.raises(ValueError, match="level"):
        plots.mean_ci([1, 2], level=95)


def test_mean_ci_table_counts_finite_and_diverged_runs_per_group():
    """One row per (learning_rate, batch_size); n counts finite runs, n_diverged the NaN ones."""
    t = plots.mean_ci_table(_sweep(diverge=True), ["learning_rate", "batch_size"], "test_elbo")
    assert len(t) == 8
    row = t[(t.learning_rate == 1e-2) & (t.batch_size == 32)].iloc[0]
    assert (row.n, row.n_diverged) == (2, 1)
    assert row.half_width == pytest.approx((row.high - row.low) / 2)


# ---------------------------------------------------------------- style


def test_palette_is_seaborn_colorblind_palette():
    """PALETTE is the seaborn 'colorblind' palette, so figures match seaborn plots in the book."""
    sns = pytest.importorskip("seaborn")
    assert list(plots.PALETTE) == sns.color_palette("colorblind").as_hex()


def test_style_hides_top_and_right_spines_and_use_style_sets_rcparams():
    """Figures made by the module have no top/right spines; use_style() sets the global rcParams."""
    fig = plots.plot_metric_vs(_sweep(), "batch_size", "test_elbo")
    ax = fig.axes[0]
    assert not ax.spines["top"].get_visible() and not ax.spines["right"].get_visible()
    with matplotlib.rc_context():
        plots.use_style()
        assert matplotlib.rcParams["axes.spines.top"] is False
        assert matplotlib.rcParams["axes.prop_cycle"].by_key()["color"][0] == plots.PALETTE[0]


# ---------------------------------------------------------------- learning curves


def test_plot_history_of_one_run_has_one_panel_and_line_per_metric():
    """One run's history: 4 default metrics -> 4 axes, each y-label the metric name, one line each."""
    h = _histories(lrs=(1e-3,), seeds=(0,))
    fig = plots.plot_history(h)
    assert isinstance(fig, Figure)
    assert [ax.get_ylabel() for ax in fig.axes] == ["loss", "reconstruction_loss", "kl_loss", "val_elbo"]
    assert all(ax.get_xlabel() == "epoch" for ax in fig.axes)
    assert all(len(_lines(ax)) == 1 for ax in fig.axes)


def test_plot_history_draws_every_seed_thin_plus_a_mean_per_hue_level():
    """2 learning rates x 3 seeds: per panel 2 x (3 thin + 1 mean) lines; legend titled by the hue column."""
    fig = plots.plot_history(_histories(), metrics=("loss", "val_elbo"), hue="learning_rate")
    assert len(fig.axes) == 2
    for ax in fig.axes:
        lines = _lines(ax)
        assert len(lines) == 8
        assert sum(ln.get_linewidth() > 1.5 for ln in lines) == 2
    legend = fig.legends[0]
    assert legend.get_title().get_text() == "learning_rate"
    assert [t.get_text() for t in legend.get_texts()] == ["0.001", "0.01"]
    # the mean line is the mean over seeds
    h = _histories()
    mean_line = next(ln for ln in _lines(fig.axes[0]) if ln.get_linewidth() > 1.5)
    expected = h[h.learning_rate == 1e-3].groupby("epoch")["loss"].mean().to_numpy()
    np.testing.assert_allclose(mean_line.get_ydata(), expected)


def test_plot_history_refuses_a_metric_that_is_not_a_column():
    """A missing metric raises ValueError naming it."""
    with pytest.raises(ValueError, match="elbo_typo"):
        plots.plot_history(_histories(), metrics=("elbo_typo",))


# ---------------------------------------------------------------- images


def test_plot_images_makes_one_axes_per_image_with_titles():
    """10 flat 8x8 images in 4 columns: 10 visible axes (unused cells removed), each one 8x8 image."""
    imgs = np.random.default_rng(0).random((10, 64))
    fig = plots.plot_images(imgs, (8, 8), ncols=4, titles=[str(i) for i in range(10)])
    assert len(fig.axes) == 10
    assert fig.axes[3].get_title() == "3"
    im = fig.axes[0].get_images()[0]
    assert im.get_array().shape == (8, 8)
    np.testing.assert_allclose(im.get_array(), imgs[0].reshape(8, 8), rtol=1e-6)


def test_plot_images_refuses_mismatched_shapes_and_titles():
    """Rows that are not image_shape, or a wrong number of titles, raise ValueError."""
    with pytest.raises(ValueError, match="image"):
        plots.plot_images(np.zeros((3, 10)), (8, 8))
    with pytest.raises(ValueError, match="titles"):
        plots.plot_images(np.zeros((3, 64)), (8, 8), titles=["a"])


def test_plot_reconstructions_has_originals_above_reconstructions():
    """n=5: a 2 x 5 grid; row labels 'x' and 'reconstruction'; the bottom row shows x_hat."""
    x, x_hat = np.zeros((6, 64)), np.ones((6, 64))
    fig = plots.plot_reconstructions(x, x_hat, (8, 8), n=5)
    assert len(fig.axes) == 10
    assert fig.axes[0].get_ylabel() == "x" and fig.axes[5].get_ylabel() == "reconstruction"
    assert fig.axes[5].get_images()[0].get_array().mean() == 1.0


def test_plot_latent_grid_is_one_mosaic_with_latent_value_extent():
    """A (5, 5, 64) grid -> one image of 5*9-1 pixels a side spanning [-limit, limit] in z[0], z[1]."""
    fig = plots.plot_latent_grid(np.random.default_rng(0).random((5, 5, 64)), (8, 8), limit=2.0)
    ax = fig.axes[0]
    (im,) = ax.get_images()
    assert im.get_array().shape == (44, 44)
    left, right, bottom, top = im.get_extent()
    assert left < -2.0 < 2.0 < right and bottom < -2.0 < 2.0 < top
    assert (ax.get_xlabel(), ax.get_ylabel()) == ("z[0]", "z[1]")


def test_plot_traversal_labels_each_row_by_latent_dimension():
    """A (3 dims, 7 values) traversal: one mosaic, 7 x-tick values, y-ticks z[u] with KL when given."""
    t = np.random.default_rng(0).random((3, 7, 64))
    fig = plots.plot_traversal(t, (8, 8), values=np.linspace(-3, 3, 7), kl_per_dim=[1.0, 0.5, 0.0])
    ax = fig.axes[0]
    assert len(ax.get_images()) == 1
    assert [tk.get_text() for tk in ax.get_xticklabels()] == ["-3", "-2", "-1", "0", "1", "2", "3"]
    assert [tk.get_text() for tk in ax.get_yticklabels()][2] == "z[2]  KL 0.00"


# ---------------------------------------------------------------- latent space


def test_plot_latent_scatter_colours_each_label_and_names_axes_z_mean():
    """3 labels -> 3 scatter collections, a legend of 3 entries, axes z_mean[0], z_mean[1]."""
    rng = np.random.default_rng(0)
    z, y = rng.normal(size=(60, 4)), np.repeat([0, 1, 2], 20)
    fig = plots.plot_latent_scatter(z, y)
    ax = fig.axes[0]
    cols = [c for c in ax.collections if isinstance(c, PathCollection)]
    assert len(cols) == 3 and all(len(c.get_offsets()) == 20 for c in cols)
    assert len(ax.get_legend().get_texts()) == 3
    assert (ax.get_xlabel(), ax.get_ylabel()) == ("z_mean[0]", "z_mean[1]")


def test_plot_2d_density_shows_data_and_samples_side_by_side():
    """Two panels titled 'data' and 'model samples', each with one 2-D histogram (QuadMesh)."""
    rng = np.random.default_rng(0)
    fig = plots.plot_2d_density(rng.normal(size=(300, 2)), rng.normal(size=(200, 2)), bins=20)
    assert [ax.get_title() for ax in fig.axes] == ["data", "model samples"]
    assert all(sum(isinstance(c, QuadMesh) for c in ax.collections) == 1 for ax in fig.axes)
    fig = plots.plot_2d_density(rng.normal(size=(300, 2)), rng.normal(size=(200, 2)), kind="scatter")
    assert len(fig.axes[1].collections[0].get_offsets()) == 200


# ---------------------------------------------------------------- sweeps


def test_plot_metric_vs_draws_mean_band_and_every_seed_per_hue_level():
    """2 learning rates x 4 batch sizes x 3 seeds: per level a mean line of 4 points at the seed means,
    a CI band (PolyCollection) and 12 points; log x ticks at the batch sizes; legend titled learning_rate."""
    df = _sweep()
    fig = plots.plot_metric_vs(df, "batch_size", "test_elbo", hue="learning_rate", logx=True)
    ax = fig.axes[0]
    lines = _lines(ax)
    assert len(lines) == 2 and all(len(ln.get_xdata()) == 4 for ln in lines)
    expected = df[df.learning_rate == 1e-3].groupby("batch_size")["test_elbo"].mean().to_numpy()
    np.testing.assert_allclose(lines[0].get_ydata(), expected)
    assert sum(isinstance(c, PolyCollection) for c in ax.collections) == 2
    points = [c for c in ax.collections if isinstance(c, PathCollection)]
    assert sum(len(c.get_offsets()) for c in points) == 24
    assert ax.get_xscale() == "log"
    assert [t.get_text() for t in ax.get_xticklabels()] == ["32", "64", "128", "256"]
    assert (ax.get_xlabel(), ax.get_ylabel()) == ("batch_size", "test_elbo")
    assert ax.get_legend().get_title().get_text() == "learning_rate"


def test_plot_metric_vs_band_matches_mean_ci():
    """The shaded band's vertical extent at one x is mean_ci of that group's seeds."""
    df = _sweep()
    fig = plots.plot_metric_vs(df, "batch_size", "test_elbo")
    band = next(c for c in fig.axes[0].collections if isinstance(c, PolyCollection))
    verts = band.get_paths()[0].vertices
    at32 = verts[np.isclose(verts[:, 0], 32), 1]
    _, lo, hi = plots.mean_ci(df[df.batch_size == 32].test_elbo)
    assert at32.min() == pytest.approx(lo) and at32.max() == pytest.approx(hi)


def test_plot_metric_vs_marks_diverged_runs_and_supports_error_bars():
    """A NaN run is drawn as a cross and named 'diverged' in the legend; band=False draws error bars."""
    fig = plots.plot_metric_vs(_sweep(diverge=True), "batch_size", "test_elbo", hue="learning_rate", band=False)
    ax = fig.axes[0]
    assert "diverged" in [t.get_text() for t in ax.get_legend().get_texts()]
    assert not any(isinstance(c, PolyCollection) for c in ax.collections)
    assert len(ax.containers) == 2  # one ErrorbarContainer per learning rate


def test_plot_metric_vs_places_categorical_x_in_order():
    """A string x (optimizer names) is placed at 0..k-1 with the names as tick labels."""
    df = pd.DataFrame({"optimizer": ["sgd", "adam", "sgd", "adam"], "test_elbo": [-40, -30, -41, -31]})
    fig = plots.plot_metric_vs(df, "optimizer", "test_elbo", units=None)
    assert [t.get_text() for t in fig.axes[0].get_xticklabels()] == ["adam", "sgd"]


def test_plot_heatmap_annotates_each_cell_with_mean_and_half_width():
    """A 4 x 2 (batch_size x learning_rate) table: one image, 8 'mean\\n± hw' texts, axis labels from
    the table's index/column names, colour bar labelled by the metric; an all-NaN cell reads n/a."""
    means, half = plots.heatmap_tables(_sweep(), "batch_size", "learning_rate", "test_elbo")
    means.iloc[0, 0] = np.nan
    fig = plots.plot_heatmap(means, ci_table=half, higher_is_better=True)
    ax = fig.axes[0]
    assert len(ax.get_images()) == 1
    texts = [t.get_text() for t in ax.texts]
    assert len(texts) == 8 and texts[0] == "n/a"
    assert texts[1] == f"{means.iloc[0, 1]:.1f}\n± {half.iloc[0, 1]:.1f}"
    assert (ax.get_xlabel(), ax.get_ylabel()) == ("learning_rate", "batch_size")
    assert fig.axes[1].get_ylabel() == "test_elbo"  # the colour bar


def test_plot_rate_distortion_joins_the_mean_point_of_each_beta():
    """3 betas x 2 seeds: axes kl_loss (rate) and reconstruction_loss (distortion); a mean marker per
    beta labelled beta=...; the mean path goes through the per-beta means."""
    df = pd.DataFrame(
        {
            "beta": np.repeat([0.5, 1.0, 4.0], 2),
            "seed": [0, 1] * 3,
            "kl_loss": [20, 21, 12, 13, 3, 4],
            "reconstruction_loss": [20, 21, 25, 26, 40, 41],
        }
    )
    fig = plots.plot_rate_distortion(df)
    ax = fig.axes[0]
    assert ax.get_xlabel().startswith("kl_loss") and ax.get_ylabel().startswith("reconstruction_loss")
    assert [t.get_text() for t in ax.texts] == ["beta=0.5", "beta=1", "beta=4"]
    path = next(ln for ln in ax.get_lines() if len(ln.get_xdata()) == 3)
    np.testing.assert_allclose(path.get_xdata(), [20.5, 12.5, 3.5])
    assert len(ax.get_legend().get_texts()) == 3


def test_plot_kl_per_dim_colours_active_units_and_draws_the_threshold():
    """8 dims, 3 with Var(z_mean) > 0.01: two panels of 8 bars; 3 coloured bars; a threshold line at 0.01."""
    kl = [2.0, 1.5, 1.0, 0.001, 0.0, 0.0, 0.0, 0.0]
    var = [0.9, 0.5, 0.2, 0.001, 0.0, 0.0, 0.0, 0.0]
    fig = plots.plot_kl_per_dim(kl, var)
    ax, ax2 = fig.axes
    assert len(ax.patches) == 8 and len(ax2.patches) == 8
    active_color = matplotlib.colors.to_rgba(plots.PALETTE[0])
    assert sum(p.get_facecolor() == active_color for p in ax.patches) == 3
    assert any(np.allclose(ln.get_ydata(), 0.01) for ln in ax2.get_lines())
    assert ax.get_title(loc="left") == "3 of 8 units active"
    assert ax2.get_yscale() == "log"


def test_plot_kl_per_dim_of_several_runs_has_error_bars():
    """A (runs, dims) array gives bars at the mean over runs, each with an error bar."""
    kl = np.random.default_rng(0).random((4, 6))
    fig = plots.plot_kl_per_dim(kl)
    ax = fig.axes[0]
    assert len(ax.patches) == 6
    np.testing.assert_allclose([p.get_height() for p in ax.patches], kl.mean(axis=0))
    (bars,) = [c for c in ax.containers if isinstance(c, ErrorbarContainer)]
    assert len(bars.lines[2][0].get_segments()) == 6  # one vertical error bar per dimension


# ---------------------------------------------------------------- export


def test_every_figure_saves_to_svg_and_png(tmp_path):
    """save_figure writes a non-empty .svg and .png for each plotting function's figure."""
    rng = np.random.default_rng(0)
    means, half = plots.heatmap_tables(_sweep(), "batch_size", "learning_rate", "test_elbo")
    figs = {
        "history": plots.plot_history(_histories(), hue="learning_rate"),
        "images": plots.plot_images(rng.random((4, 64)), (8, 8)),
        "recon": plots.plot_reconstructions(rng.random((3, 64)), rng.random((3, 64)), (8, 8)),
        "grid": plots.plot_latent_grid(rng.random((3, 3, 64)), (8, 8)),
        "traversal": plots.plot_traversal(rng.random((2, 5, 64)), (8, 8)),
        "scatter": plots.plot_latent_scatter(rng.normal(size=(20, 2)), np.arange(20) % 3),
        "density": plots.plot_2d_density(rng.normal(size=(50, 2)), rng.normal(size=(50, 2))),
        "metric": plots.plot_metric_vs(_sweep(diverge=True), "batch_size", "test_elbo", hue="learning_rate"),
        "heatmap": plots.plot_heatmap(means, ci_table=half),
        "rd": plots.plot_rate_distortion(
            pd.DataFrame({"beta": [1, 1, 2, 2], "kl_loss": [5, 6, 2, 3], "reconstruction_loss": [9, 8, 12, 13]})
        ),
        "kl": plots.plot_kl_per_dim([1.0, 0.0], [0.5, 0.0]),
    }
    for name, fig in figs.items():
        paths = plots.save_figure(fig, tmp_path / "figs" / name)
        assert [p.suffix for p in paths] == [".svg", ".png"]
        assert all(p.stat().st_size > 1000 for p in paths), name
        assert (tmp_path / "figs" / f"{name}.svg").read_text().lstrip().startswith("<?xml")


def test_image_types_are_real_matplotlib_images():
    """plot_images and plot_latent_grid draw AxesImage artists (not scatter or patches)."""
    fig = plots.plot_latent_grid(np.zeros((2, 2, 4)), (2, 2))
    assert isinstance(fig.axes[0].get_images()[0], AxesImage)
