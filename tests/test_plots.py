"""Tests of vae_utils.plots: every function returns a Figure with the promised axes, words,
colours and artists on small synthetic data, readable at page width; mean_ci matches a hand
computation and scipy; figures export.

Run: ``.venv/bin/pytest tests/test_plots.py`` (about 20 s; no TensorFlow).
"""

import itertools
import math
import re
from pathlib import Path

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
from vae_utils.claims import analysis
from vae_utils.publish.figures import figure_bytes
from vae_utils.publish.labels import label

REPO = Path(__file__).resolve().parents[1]
IDENTIFIER = re.compile(r"[A-Za-z0-9]_[A-Za-z0-9]")  # test_elbo, batch_size, z_mean, B_simple


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


def _sweep(diverge=False, lrs=(1e-3, 1e-2)):
    rng = np.random.default_rng(1)
    rows = []
    for lr in lrs:
        for bs in (32, 64, 128, 256):
            for seed in range(3):
                y = -30 - 0.01 * bs + rng.normal(0, 0.3)
                if diverge and lr == lrs[-1] and bs == 32 and seed == 0:
                    y = float("nan")
                rows.append({"learning_rate": lr, "batch_size": bs, "seed": seed, "test_elbo": y, "step_noise": 1 / bs})
    return pd.DataFrame(rows)


def _grid_table():
    """A 6 x 5 heatmap from -104 to -30 nats: wide enough that clipping would hide differences."""
    bs, lr = [16, 32, 64, 128, 256, 512], [1e-4, 3e-4, 1e-3, 3e-3, 1e-2]
    values = np.linspace(-104, -30, 30).reshape(6, 5)
    t = pd.DataFrame(values, index=pd.Index(bs, name="batch_size"), columns=pd.Index(lr, name="learning_rate"))
    t.name = "test_elbo"
    return t, t.abs() * 0.01


def _with_outlier():
    """Five batch sizes 1–2 nats apart, three seeds each; one seed of batch 64 at −160 nats."""
    d = _sweep(lrs=(1e-3,))
    d = pd.concat([d, d.assign(batch_size=512, test_elbo=d.test_elbo - 1.0)]).drop_duplicates(["batch_size", "seed"])
    d.loc[(d.batch_size == 64) & (d.seed == 0), "test_elbo"] = -160.0
    return d.reset_index(drop=True)


def _rules(broke_on="sgd"):
    """The batch-size-and-rate chapter's scaling rules: per optimizer, three rules at three batch
    sizes, ten seeds; Adam's linear rule at batch 512 far below (−160), SGD's broken down there
    (``broke`` True with a finite ELBO, as the store records some divergences)."""
    rng = np.random.default_rng(3)
    rows = []
    for o, rule, b, s in itertools.product(
        ("adam", "sgd"), ("linear", "square root", "retuned"), (32, 128, 512), range(10)
    ):
        y = -23.7 - 0.4 * np.log2(b / 32) + rng.normal(0, 0.15)
        far = rule == "linear" and b == 512
        rows.append({"optimizer": o, "rule": rule, "batch_size": b, "seed": s,
                     "test_elbo": -160 + rng.normal(0, 5) if far and o == "adam" else y,
                     "broke": bool(far and o == broke_on)})  # fmt: skip
    return pd.DataFrame(rows)


def _rules_figure(df=None):
    """Two panels (Adam, SGD) of test ELBO against batch size, one line per rule, as chapter 06 draws them."""
    df = _rules() if df is None else df
    with plots.style():
        fig, axes = plt.subplots(1, 2, figsize=(9.0, 3.8))
    for ax, o in zip(axes, ("adam", "sgd"), strict=True):
        plots.plot_metric_vs(df[df.optimizer == o], "batch_size", "test_elbo", hue="rule", logx=True, ax=ax)
        ax.set_title({"adam": "Adam", "sgd": "SGD"}[o], loc="left")
    return fig


def _settings():
    """Each optimizer at its default and its tuned rate, four seeds (the optimizer chapter's comparison)."""
    rng = np.random.default_rng(4)
    rows = [
        {"optimizer": o, "setting": s, "seed": k, "test_elbo": -24 - (2.0 if (o, s) == ("SGD", "default rate") else 0) + rng.normal(0, 0.2)}
        for o in ("Adam", "AdamW", "RMSprop", "SGD", "SGD with momentum")
        for s in ("default rate", "tuned rate")
        for k in range(4)
    ]  # fmt: skip
    return pd.DataFrame(rows)


def _close_grid():
    """The optimizer chapter's shared grid: twelve rates, 0.008 and 0.01 a quarter of a doubling apart."""
    rates = [5e-4, 1e-3, 2e-3, 4e-3, 8e-3, 1e-2, 1.6e-2, 3.2e-2, 6.4e-2, 0.128, 0.256, 0.512]
    rng = np.random.default_rng(5)
    rows = [
        {"optimizer": o, "learning_rate": r, "seed": k, "val_elbo": -24 - abs(np.log10(r) + 2) + rng.normal(0, 0.1)}
        for o in ("adam", "sgd")
        for r in rates
        for k in range(3)
    ]
    return pd.DataFrame(rows)


def _all_figures() -> dict[str, Figure]:
    """One figure of every plotting function, on small synthetic data."""
    rng = np.random.default_rng(0)
    means, half = plots.heatmap_tables(_sweep(diverge=True), "batch_size", "learning_rate", "test_elbo")
    rd = pd.DataFrame({"beta": [1, 1, 2, 2], "kl_loss": [5, 6, 2, 3], "reconstruction_loss": [9, 8, 12, 13]})
    opt = pd.DataFrame(
        {"optimizer": ["sgd", "adam"] * 4, "seed": [0, 0, 1, 1, 2, 2, 3, 3], "test_elbo": rng.normal(-30, 1, 8)}
    )
    return {
        "history": plots.plot_history(_histories(), hue="learning_rate"),
        "history-one": plots.plot_history(_histories(lrs=(1e-3,), seeds=(0,))),
        "images": plots.plot_images(rng.random((24, 64)), (8, 8), ncols=12),
        "recon": plots.plot_reconstructions(rng.random((12, 64)), rng.random((12, 64)), (8, 8), n=12),
        "grid": plots.plot_latent_grid(rng.random((5, 5, 64)), (8, 8)),
        "traversal": plots.plot_traversal(rng.random((4, 7, 64)), (8, 8), kl_per_dim=[1, 0.5, 0, 0]),
        "scatter": plots.plot_latent_scatter(rng.normal(size=(60, 2)), np.arange(60) % 10),
        "density": plots.plot_2d_density(rng.normal(size=(50, 2)), rng.normal(size=(50, 2))),
        "metric": plots.plot_metric_vs(_sweep(diverge=True), "batch_size", "test_elbo", hue="learning_rate", logx=True),
        "metric-logy": plots.plot_metric_vs(_sweep(), "batch_size", "step_noise", logx=True, logy=True, band=False),
        "categorical": plots.plot_metric_vs(opt, "optimizer", "test_elbo"),
        "categorical-hue": plots.plot_metric_vs(_settings(), "optimizer", "test_elbo", hue="setting"),
        "outlier": plots.plot_metric_vs(_with_outlier(), "batch_size", "test_elbo", logx=True),
        "rules": _rules_figure(),
        "close-grid": plots.plot_metric_vs(_close_grid(), "learning_rate", "val_elbo", hue="optimizer", logx=True),
        "batch-sizes": plots.plot_metric_vs(_with_outlier(), "learning_rate", "test_elbo", hue="batch_size", logx=True),
        "heatmap": plots.plot_heatmap(means, ci_table=half, higher_is_better=True),
        "heatmap-wide": plots.plot_heatmap(_grid_table()[0], ci_table=_grid_table()[1], vmin=-90),
        "rate-distortion": plots.plot_rate_distortion(rd),
        "kl": plots.plot_kl_per_dim(rng.random((3, 8)), rng.random((3, 8)) * 10.0 ** -rng.integers(0, 5, 8)),
    }


@pytest.fixture(scope="module")
def figures():
    figs = _all_figures()
    yield figs
    for fig in figs.values():
        plt.close(fig)


@pytest.fixture(scope="module")
def rendered(figures):
    """Each figure's saved (SVG, PNG) bytes, rendered once for the checks that read them."""
    return {name: figure_bytes(fig) for name, fig in figures.items()}


def _texts(fig):
    """Every visible, non-empty Text of a figure (tick labels included)."""
    found = fig.findobj(matplotlib.text.Text)
    return [t for t in found if t.get_visible() and t.get_text().strip() and t.get_figure() is fig]


def _words_of(fig):
    """Axis labels, titles, legend titles and colour-bar labels of a figure."""
    out = []
    for ax in fig.axes:
        out += [ax.get_xlabel(), ax.get_ylabel(), ax.get_title(), ax.get_title(loc="left")]
        legend = ax.get_legend()
        if legend is not None:
            out.append(legend.get_title().get_text())
    out += [lg.get_title().get_text() for lg in fig.legends]
    return [w for w in out if w]


def _lines(ax):
    return [ln for ln in ax.get_lines() if len(ln.get_xdata())]


# ---------------------------------------------------------------- readable at page width


def test_text_px_scales_a_font_to_the_page_column_and_never_up():
    """12 pt = 16 CSS px on a figure that fits the 670 px a figure gets; a 9.3-in figure (893 px)
    is shown at 670/893 of its size, so 12 pt reads 12.0 px."""
    assert plots.text_px(12, 6.4) == pytest.approx(16.0)
    assert plots.text_px(12, 9.3) == pytest.approx(16.0 * 670 / 892.8)
    assert plots.text_px(12, 9.3) >= plots.MIN_TEXT_PX > plots.text_px(12, 10.0)
    assert plots.text_px(9, 13.0) < 8  # what the old 9-pt ticks on a 13-in figure were


@pytest.mark.slow
def test_every_text_of_every_figure_renders_at_least_12_px_at_page_width(figures, rendered):
    """For each figure, its saved (tight) SVG width and each text's font size give >= 12 CSS px."""
    for name, fig in figures.items():
        svg = rendered[name][0].decode()
        width_pt = float(re.search(r'<svg[^>]*width="([0-9.]+)pt"', svg).group(1))
        small = [
            (t.get_text(), t.get_fontsize())
            for t in _texts(fig)
            if plots.text_px(t.get_fontsize(), width_pt / 72) < plots.MIN_TEXT_PX
        ]
        assert small == [], (name, width_pt / 72, small)
        assert width_pt / 72 <= plots.MAX_WIDTH_IN + 0.5, name


@pytest.mark.slow
def test_no_figure_shows_an_underscore_identifier_in_labels_legends_or_colour_bars(figures, rendered):
    """Axis labels, titles, legend titles and colour-bar labels (figure objects) and every text of
    the saved SVG (svg.fonttype none keeps text as text) are words, never `test_elbo`."""
    for name, fig in figures.items():
        bad = [w for w in _words_of(fig) if IDENTIFIER.search(w)]
        assert bad == [], (name, bad)
        svg = rendered[name][0].decode()
        texts = [m.strip() for m in re.findall(r"<text[^>]*>([^<]*)</text>", svg)]
        if name not in ("images", "recon"):  # image grids have no text
            assert texts, name
        assert [t for t in texts if IDENTIFIER.search(t)] == [], name


def test_labels_come_from_one_mapping_and_a_caller_may_override_them():
    """plot_metric_vs names its axes with vae_utils.publish.labels; labels= replaces one entry."""
    fig = plots.plot_metric_vs(_sweep(), "batch_size", "test_elbo")
    ax = fig.axes[0]
    assert (ax.get_xlabel(), ax.get_ylabel()) == ("batch size", "test ELBO (nats)")
    assert label("test_nll") == "test NLL, IWAE (nats)" and label("beta") == "β"
    fig = plots.plot_metric_vs(_sweep(), "batch_size", "test_elbo", labels={"test_elbo": "ELBO on test digits (nats)"})
    assert fig.axes[0].get_ylabel() == "ELBO on test digits (nats)"


def test_every_text_of_every_figure_is_at_least_6_px_tall_in_a_390_px_phone_column(figures):
    """check_legible: shown 390 px wide, each figure's texts (ticks, labels, keys) read >= 6 px:
    font pt × 390 / (saved width in × 72), the saved width being the tight box of what is drawn."""
    small = {name: plots.check_legible(fig) for name, fig in figures.items()}
    assert {name: found for name, found in small.items() if found} == {}


def test_check_legible_names_the_texts_that_a_phone_would_shrink_below_6_px():
    """Two-panel figures 13 in wide with 9-pt ticks (what the book had) read about 3.8 px at 390 px."""
    with plots.style():
        fig, axes = plt.subplots(1, 2, figsize=(13, 3.8))
    for ax in axes:
        ax.plot([1, 2, 3], [3, 1, 2])
        ax.tick_params(labelsize=9)
    found = plots.check_legible(fig)
    assert found and all("9 pt" in f for f in found)
    assert plots.check_legible(fig, column_px=1280) == []


def test_no_legend_covers_a_plotted_point_or_line(figures):
    """legends_over_data: no legend box holds a point of its axes' lines or scatters (the optimizer
    chapter's default-vs-tuned legend sat on SGD's default runs)."""
    covered = {name: plots.legends_over_data(fig) for name, fig in figures.items()}
    assert {name: found for name, found in covered.items() if found} == {}


def test_legends_over_data_finds_a_legend_placed_on_the_points():
    """The check is not vacuous: a legend put in the middle of a cloud of points is reported."""
    with plots.style():
        fig, ax = plt.subplots()
    rng = np.random.default_rng(0)
    ax.scatter(rng.normal(size=400), rng.normal(size=400), label="runs")
    ax.legend(loc="center")
    assert plots.legends_over_data(fig) and "over" in plots.legends_over_data(fig)[0]


# ---------------------------------------------------------------- colours


def test_palette_is_seaborn_colorblind_palette():
    """PALETTE is the seaborn 'colorblind' palette, so figures match seaborn plots in the book."""
    sns = pytest.importorskip("seaborn")
    assert list(plots.PALETTE) == sns.color_palette("colorblind").as_hex()


def test_ordered_hue_levels_get_sequential_colours_and_names_get_categorical_ones():
    """Numbers (batch size, learning rate, β) go light to dark (luminance falls with the level, each
    at least 3:1 against white); optimizer names get their book-wide colours."""
    colors = plots.hue_colors("learning_rate", [1e-4, 3e-4, 1e-3, 3e-3, 1e-2])
    contrast = [plots.contrast_ratio(c, "white") for c in colors.values()]
    assert contrast == sorted(contrast) and contrast[0] >= 3.0
    optimizers = plots.hue_colors("optimizer", ["adam", "sgd"])
    assert optimizers == {"adam": plots.OPTIMIZER_COLORS["adam"], "sgd": plots.OPTIMIZER_COLORS["sgd"]}
    assert list(plots.hue_colors("batch_size", [32, 64], palette="colorblind").values()) == list(plots.PALETTE[:2])


def test_plot_metric_vs_colours_a_numeric_hue_sequentially():
    """The lines of two learning rates carry hue_colors' sequential colours, lightest first."""
    fig = plots.plot_metric_vs(_sweep(), "batch_size", "test_elbo", hue="learning_rate", logx=True)
    expected = list(plots.hue_colors("learning_rate", [1e-3, 1e-2]).values())
    got = [matplotlib.colors.to_hex(ln.get_color()) for ln in _lines(fig.axes[0])]
    assert got == expected


def test_contrast_ratio_matches_the_wcag_examples():
    """Black on white is 21:1, a colour on itself 1:1, WCAG's #767676 on white about 4.54:1."""
    assert plots.contrast_ratio("black", "white") == pytest.approx(21.0)
    assert plots.contrast_ratio("#336699", "#336699") == pytest.approx(1.0)
    assert plots.contrast_ratio("#767676", "white") == pytest.approx(4.54, abs=0.01)


# ---------------------------------------------------------------- log axes


def test_a_log_axis_over_a_grid_labels_every_grid_value_and_nothing_else():
    """Five learning rates on a log x axis: five major ticks, at the rates, each labelled; no minor ticks."""
    df = _sweep(lrs=(1e-4, 3e-4, 1e-3, 3e-3, 1e-2)).rename(columns={"learning_rate": "lr_grid"})
    fig = plots.plot_metric_vs(df, "lr_grid", "test_elbo", logx=True)
    ax = fig.axes[0]
    fig.draw_without_rendering()
    np.testing.assert_allclose(ax.get_xticks(), [1e-4, 3e-4, 1e-3, 3e-3, 1e-2])
    assert [t.get_text() for t in ax.get_xticklabels()] == ["10⁻⁴", "3×10⁻⁴", "0.001", "0.003", "0.01"]
    assert len(ax.xaxis.get_minorticklocs()) == 0


def test_a_log_y_axis_over_continuous_values_has_several_labelled_ticks_not_one_decade():
    """Values from 1/256 to 1/32 (less than a decade): at least three labelled ticks inside the view."""
    fig = plots.plot_metric_vs(_sweep(), "batch_size", "step_noise", logx=True, logy=True)
    ax = fig.axes[0]
    fig.draw_without_rendering()
    lo, hi = ax.get_ylim()
    inside = [t.get_text() for t in ax.get_yticklabels() if lo <= t.get_position()[1] <= hi and t.get_text()]
    assert len(inside) >= 3, inside


def test_tick_text_reads_like_a_person_writes_numbers():
    assert [plots.tick_text(v) for v in (0.001, 3e-4, 1e-5, 256, 16384, -2.5, 0)] == [
        "0.001",
        "3×10⁻⁴",
        "10⁻⁵",
        "256",
        "16,384",
        "−2.5",
        "0",
    ]


# ---------------------------------------------------------------- sweeps


def test_plot_metric_vs_draws_mean_interval_and_every_seed_per_hue_level():
    """2 learning rates x 4 batch sizes x 3 seeds: per level a mean line of 4 points at the seed
    means, a t-interval band, 12 dots; log x ticks at the batch sizes; levels labelled at line ends."""
    df = _sweep()
    fig = plots.plot_metric_vs(df, "batch_size", "test_elbo", hue="learning_rate", logx=True)
    ax = fig.axes[0]
    lines = _lines(ax)
    assert len(lines) == 2 and all(len(ln.get_xdata()) == 4 for ln in lines)
    expected = df[df.learning_rate == 1e-3].groupby("batch_size")["test_elbo"].mean().to_numpy()
    np.testing.assert_allclose(lines[0].get_ydata(), expected)
    assert sum(isinstance(c, PolyCollection) for c in ax.collections) == 2
    dots = [c for c in ax.collections if isinstance(c, PathCollection)]
    assert sum(len(c.get_offsets()) for c in dots) == 24
    assert [t.get_text() for t in ax.get_xticklabels()] == ["32", "64", "128", "256"]
    assert {"0.001", "0.01", "learning rate"} <= {t.get_text() for t in ax.texts}  # direct labels
    assert ax.get_legend() is None


def test_the_interval_is_the_t_interval_over_seeds():
    """The band's extent at one x is analysis.mean_ci of that group's seeds (seaborn errorbar callable)."""
    df = _sweep()
    fig = plots.plot_metric_vs(df, "batch_size", "test_elbo")
    band = next(c for c in fig.axes[0].collections if isinstance(c, PolyCollection))
    verts = band.get_paths()[0].vertices
    at32 = verts[np.isclose(verts[:, 0], 32), 1]
    _, lo, hi = plots.mean_ci(df[df.batch_size == 32].test_elbo)
    assert at32.min() == pytest.approx(lo) and at32.max() == pytest.approx(hi)
    assert plots.t_interval(0.9)([1.0, 2.0, 3.0]) == pytest.approx(plots.mean_ci([1.0, 2.0, 3.0], 0.9)[1:])


def test_diverged_runs_are_crosses_and_counted_and_error_bars_replace_the_band():
    """A NaN run is a cross at the bottom edge, the words under the x label say '× 1 run diverged';
    band=False draws error bars."""
    fig = plots.plot_metric_vs(_sweep(diverge=True), "batch_size", "test_elbo", hue="learning_rate", band=False)
    ax = fig.axes[0]
    assert "× 1 run diverged" in [t.get_text() for t in ax.texts]
    crosses = [c for c in ax.collections if isinstance(c, PathCollection) and len(c.get_offsets()) == 1]
    assert any(c.get_offsets()[0][1] == pytest.approx(plots.CROSS_AT) for c in crosses)
    assert not any(isinstance(c, PolyCollection) for c in ax.collections)
    assert sum(isinstance(c, ErrorbarContainer) for c in ax.containers) == 2


def test_a_categorical_x_has_points_with_intervals_and_no_lines_between_categories():
    """Optimizer names: ticks in order, means as markers, no solid line joins two x positions."""
    rng = np.random.default_rng(0)
    df = pd.DataFrame({"optimizer": ["sgd", "adam", "rmsprop"] * 3, "seed": np.repeat([0, 1, 2], 3)})
    df["test_elbo"] = rng.normal(-30, 1, 9)
    fig = plots.plot_metric_vs(df, "optimizer", "test_elbo")
    ax = fig.axes[0]
    assert [t.get_text() for t in ax.get_xticklabels()] == ["adam", "rmsprop", "sgd"]
    for ln in ax.get_lines():
        x = np.asarray(ln.get_xdata(), float)
        x = x[np.isfinite(x)]
        joins = len(np.unique(np.round(x, 6))) > 1 and ln.get_linestyle() not in ("None", "", " ")
        assert not joins or np.ptp(x) < 0.5, "a line joins two categories"
    means = df.groupby("optimizer")["test_elbo"].mean().to_numpy()
    markers = [ln for ln in ax.get_lines() if ln.get_marker() == "o"]
    np.testing.assert_allclose(np.sort(markers[0].get_ydata()), np.sort(means))


def test_the_y_axis_ends_near_the_data():
    """The y range exceeds the span of the means' intervals and dots by at most 10% on each side."""
    df = _sweep()
    fig = plots.plot_metric_vs(df, "batch_size", "test_elbo")
    ax = fig.axes[0]
    s = analysis.summarize(df, "batch_size", "test_elbo")
    lo, hi = min(s["low"].min(), df.test_elbo.min()), max(s["high"].max(), df.test_elbo.max())
    y0, y1 = ax.get_ylim()
    assert lo - 0.1 * (hi - lo) <= y0 <= lo and hi <= y1 <= hi + 0.1 * (hi - lo)


# ---------------------------------------------------------------- heatmaps


def test_heatmap_tables_summarize_each_cell_over_seeds_and_count_divergences():
    """means and half-widths equal analysis.summarize per cell; attrs['n_diverged'] counts NaN runs."""
    df = _sweep(diverge=True)
    means, half = plots.heatmap_tables(df, "batch_size", "learning_rate", "test_elbo")
    s = analysis.summarize(df, ["batch_size", "learning_rate"], "test_elbo").set_index(["batch_size", "learning_rate"])
    assert means.loc[32, 1e-2] == pytest.approx(s.loc[(32, 1e-2), "mean"])
    assert half.loc[64, 1e-3] == pytest.approx((s.loc[(64, 1e-3), "high"] - s.loc[(64, 1e-3), "low"]) / 2)
    assert means.attrs["n_diverged"].loc[32, 1e-2] == 1 and means.attrs["n_diverged"].loc[64, 1e-2] == 0


def test_plot_heatmap_annotates_each_cell_with_mean_half_width_and_diverged_runs():
    """A 4 x 2 table: 8 'mean\\n± hw' texts (true minus), an all-NaN cell reads n/a, a cell with a
    diverged run adds '✕ 1'; axis labels and colour bar in words."""
    means, half = plots.heatmap_tables(_sweep(diverge=True), "batch_size", "learning_rate", "test_elbo")
    means.iloc[1, 0] = np.nan
    fig = plots.plot_heatmap(means, ci_table=half, higher_is_better=True)
    ax = fig.axes[0]
    texts = [t.get_text() for t in ax.texts]
    assert len(texts) == 8 and texts[2] == "n/a"
    assert texts[0] == f"{means.iloc[0, 0]:.1f}\n± {half.iloc[0, 0]:.1f}".replace("-", "−")
    assert texts[1].endswith("\n✕ 1")
    assert (ax.get_xlabel(), ax.get_ylabel()) == ("learning rate", "batch size")
    assert fig.axes[1].get_ylabel() == "test ELBO (nats)"


def test_heatmap_cell_text_contrasts_at_least_4_5_to_1_with_its_cell():
    """Every cell's text colour against the cell's colour (from the mesh's colour map and norm): WCAG
    contrast >= 4.5 over a range of 74 nats, where seaborn's own rule (switch at luminance 0.408)
    would put white on mid-tone cells at about 3:1."""
    table, half = _grid_table()
    fig = plots.plot_heatmap(table, ci_table=half)
    ax = fig.axes[0]
    mesh = next(c for c in ax.collections if isinstance(c, QuadMesh))
    ratios = []
    for t in ax.texts:
        c, r = (int(v) for v in t.get_position())
        cell = mesh.to_rgba(table.iloc[r, c])
        ratios.append(plots.contrast_ratio(t.get_color(), cell))
    assert len(ratios) == 30 and min(ratios) >= 4.5


def test_cell_texts_of_a_narrow_heatmap_never_run_into_each_other():
    """Nine rates in a 4.65-in panel (the batch-and-rate chapter's heatmaps read "−24.9−24.1−23.7"):
    the numbers stand upright in their cells, still 12 pt, no two boxes overlapping; a clipped
    cell's ▼ is written ◀ so that, turned with its number, it still points down."""
    rng = np.random.default_rng(0)
    t = pd.DataFrame(
        rng.normal(-25, 1, (3, 9)),
        index=pd.Index([32, 128, 512], name="batch_size"),
        columns=pd.Index(np.geomspace(2.5e-4, 0.064, 9), name="learning_rate"),
    )
    t.name = "val_elbo"
    with plots.style():
        fig, axes = plt.subplots(1, 2, figsize=(9.3, 3.6))
    for ax in axes:
        plots.plot_heatmap(t, ci_table=None, ax=ax, fmt=".1f", vmin=-25.5)
    fig.draw_without_rendering()
    for ax in axes:
        boxes = [x.get_window_extent() for x in ax.texts if x.get_text()]
        assert len(boxes) == 27 and all(x.get_fontsize() == plots.FONT_PT for x in ax.texts)
        assert not any(a.overlaps(b) for a, b in itertools.combinations(boxes, 2))
    clipped = [x.get_text() for x in axes[0].texts if x.get_text().endswith("◀")]  # upright: it points down
    assert clipped and not any("▼" in x.get_text() for x in axes[0].texts)


def test_the_colour_range_spans_the_data_unless_limited_and_then_says_so():
    """Default: the norm covers -104..-30 (no cell clipped, no 'extend'). With vmin=-60 the colour bar
    gets a 'min' arrow, its label says the range is limited, and exactly the cells below -60 carry ▼."""
    table, half = _grid_table()
    fig = plots.plot_heatmap(table, ci_table=half)
    mesh = next(c for c in fig.axes[0].collections if isinstance(c, QuadMesh))
    assert mesh.norm.vmin <= -104 and mesh.norm.vmax >= -30
    assert not any("▼" in t.get_text() or "▲" in t.get_text() for t in fig.axes[0].texts)
    fig = plots.plot_heatmap(table, ci_table=half, vmin=-60)
    marked = [t for t in fig.axes[0].texts if t.get_text().endswith("▼")]
    assert len(marked) == int((table.to_numpy() < -60).sum())
    cbar = fig.axes[1]
    assert "range limited" in cbar.get_ylabel()
    assert fig.axes[0].collections[0].colorbar.extend == "min"


# ---------------------------------------------------------------- learning curves, images, latents


def test_plot_history_of_one_run_has_one_panel_and_line_per_metric_in_words():
    """One run's history: 4 default metrics -> 4 panels, y labels in words with units, one line each."""
    fig = plots.plot_history(_histories(lrs=(1e-3,), seeds=(0,)))
    assert isinstance(fig, Figure)
    assert [ax.get_ylabel() for ax in fig.axes] == [
        "training loss (nats)",
        "reconstruction (nats)",
        "KL (nats)",
        "validation ELBO (nats)",
    ]
    assert all(len(_lines(ax)) == 1 for ax in fig.axes)


def test_plot_history_draws_every_seed_thin_plus_a_mean_per_hue_level():
    """2 learning rates x 3 seeds: per panel 2 x (3 thin + 1 mean) lines; legend titled in words."""
    h = _histories()
    fig = plots.plot_history(h, metrics=("loss", "val_elbo"), hue="learning_rate")
    panels = [ax for ax in fig.axes if _lines(ax)]
    assert len(panels) == 2
    for ax in panels:
        lines = _lines(ax)
        assert len(lines) == 8
        assert sum(ln.get_linewidth() > 1.5 for ln in lines) == 2
    legend = fig.legends[0]
    assert legend.get_title().get_text() == "learning rate"
    assert [t.get_text() for t in legend.get_texts()] == ["0.001", "0.01"]
    mean_line = next(ln for ln in _lines(panels[0]) if ln.get_linewidth() > 1.5)
    expected = h[h.learning_rate == 1e-3].groupby("epoch")["loss"].mean().to_numpy()
    np.testing.assert_allclose(mean_line.get_ydata(), expected)


def test_plot_history_refuses_a_metric_that_is_not_a_column():
    """A missing metric raises ValueError naming it."""
    with pytest.raises(ValueError, match="elbo_typo"):
        plots.plot_history(_histories(), metrics=("elbo_typo",))


def test_plot_images_makes_one_axes_per_image_with_titles_and_fits_the_page():
    """10 flat 8x8 images in 4 columns: 10 axes, each one 8x8 image; 24 columns stay <= 10 in wide."""
    imgs = np.random.default_rng(0).random((10, 64))
    fig = plots.plot_images(imgs, (8, 8), ncols=4, titles=[str(i) for i in range(10)])
    assert len(fig.axes) == 10
    assert fig.axes[3].get_title(loc="center") == "3"
    np.testing.assert_allclose(fig.axes[0].get_images()[0].get_array(), imgs[0].reshape(8, 8), rtol=1e-6)
    assert plots.plot_images(np.zeros((24, 64)), (8, 8), ncols=24).get_size_inches()[0] <= plots.MAX_WIDTH_IN


def test_plot_images_refuses_mismatched_shapes_and_titles():
    """Rows that are not image_shape, or a wrong number of titles, raise ValueError."""
    with pytest.raises(ValueError, match="image"):
        plots.plot_images(np.zeros((3, 10)), (8, 8))
    with pytest.raises(ValueError, match="titles"):
        plots.plot_images(np.zeros((3, 64)), (8, 8), titles=["a"])


def test_plot_reconstructions_has_originals_above_reconstructions():
    """n=5: a 2 x 5 grid; rows labelled 'original' and 'reconstruction'; the bottom row shows x_hat."""
    x, x_hat = np.zeros((6, 64)), np.ones((6, 64))
    fig = plots.plot_reconstructions(x, x_hat, (8, 8), n=5)
    assert len(fig.axes) == 10
    assert fig.axes[0].get_ylabel() == "original" and fig.axes[5].get_ylabel() == "reconstruction"
    assert fig.axes[5].get_images()[0].get_array().mean() == 1.0


def test_plot_latent_grid_is_one_mosaic_with_latent_value_extent():
    """A (5, 5, 64) grid -> one image of 5*9-1 pixels a side spanning [-limit, limit] in z[0], z[1]."""
    fig = plots.plot_latent_grid(np.random.default_rng(0).random((5, 5, 64)), (8, 8), limit=2.0)
    ax = fig.axes[0]
    (im,) = ax.get_images()
    assert isinstance(im, AxesImage) and im.get_array().shape == (44, 44)
    left, right, bottom, top = im.get_extent()
    assert left < -2.0 < 2.0 < right and bottom < -2.0 < 2.0 < top
    assert (ax.get_xlabel(), ax.get_ylabel()) == ("latent z[0]", "latent z[1]")


def test_plot_traversal_labels_each_row_by_latent_dimension():
    """A (3 dims, 7 values) traversal: one mosaic, 7 x-tick values, y-ticks z[u] with KL when given."""
    t = np.random.default_rng(0).random((3, 7, 64))
    fig = plots.plot_traversal(t, (8, 8), values=np.linspace(-3, 3, 7), kl_per_dim=[1.0, 0.5, 0.0])
    ax = fig.axes[0]
    assert len(ax.get_images()) == 1
    assert [tk.get_text() for tk in ax.get_xticklabels()] == ["−3", "−2", "−1", "0", "1", "2", "3"]
    assert [tk.get_text() for tk in ax.get_yticklabels()][2] == "z[2]  KL 0.00"


def test_plot_latent_scatter_colours_each_label_and_names_axes_in_words():
    """3 labels -> 3 scatter collections, a legend of 3, axes 'posterior mean, z[0]' and z[1]."""
    rng = np.random.default_rng(0)
    z, y = rng.normal(size=(60, 4)), np.repeat([0, 1, 2], 20)
    fig = plots.plot_latent_scatter(z, y)
    ax = fig.axes[0]
    cols = [c for c in ax.collections if isinstance(c, PathCollection)]
    assert len(cols) == 3 and all(len(c.get_offsets()) == 20 for c in cols)
    assert len(ax.get_legend().get_texts()) == 3
    assert (ax.get_xlabel(), ax.get_ylabel()) == ("posterior mean, z[0]", "posterior mean, z[1]")


def test_plot_2d_density_shows_data_and_samples_side_by_side():
    """Two panels titled 'data' and 'model samples', each with one 2-D histogram (QuadMesh)."""
    rng = np.random.default_rng(0)
    fig = plots.plot_2d_density(rng.normal(size=(300, 2)), rng.normal(size=(200, 2)), bins=20)
    assert [ax.get_title(loc="left") for ax in fig.axes] == ["data", "model samples"]
    assert all(sum(isinstance(c, QuadMesh) for c in ax.collections) == 1 for ax in fig.axes)
    fig = plots.plot_2d_density(rng.normal(size=(300, 2)), rng.normal(size=(200, 2)), kind="scatter")
    assert len(fig.axes[1].collections[0].get_offsets()) == 200


def test_plot_rate_distortion_joins_the_mean_point_of_each_beta_and_labels_it():
    """3 betas x 2 seeds: axes 'rate: KL (nats)' and 'distortion: reconstruction (nats)'; each mean
    labelled 'β = ...'; the mean path goes through the per-β means."""
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
    assert (ax.get_xlabel(), ax.get_ylabel()) == ("rate: KL (nats)", "distortion: reconstruction (nats)")
    assert [t.get_text() for t in ax.texts] == ["β = 0.5", "β = 1", "β = 4"]
    path = next(ln for ln in ax.get_lines() if len(ln.get_xdata()) == 3)
    np.testing.assert_allclose(path.get_xdata(), [20.5, 12.5, 3.5])


def test_plot_kl_per_dim_colours_active_units_and_draws_the_threshold():
    """8 dims, 3 with variance > 0.01: two panels of 8 bars; 3 dark bars (ink: no optimizer's
    colour); a threshold line at 0.01."""
    kl = [2.0, 1.5, 1.0, 0.001, 0.0, 0.0, 0.0, 0.0]
    var = [0.9, 0.5, 0.2, 0.001, 0.0, 0.0, 0.0, 0.0]
    fig = plots.plot_kl_per_dim(kl, var)
    ax, ax2 = fig.axes
    assert len(ax.patches) == 8 and len(ax2.patches) == 8
    active_color = matplotlib.colors.to_rgba(plots.INK)
    assert sum(p.get_facecolor() == active_color for p in ax.patches) == 3
    assert any(np.allclose(ln.get_ydata(), 0.01) for ln in ax2.get_lines())
    assert ax.get_title(loc="left") == "3 of 8 units active"
    assert ax2.get_yscale() == "log"


def test_plot_kl_per_dim_of_several_runs_has_error_bars():
    """A (runs, dims) array gives bars at the mean over runs, each with an error bar."""
    kl = np.random.default_rng(0).random((4, 6))
    fig = plots.plot_kl_per_dim(kl)
    ax = fig.axes[0]
    np.testing.assert_allclose([p.get_height() for p in ax.patches], kl.mean(axis=0))
    (bars,) = [c for c in ax.containers if isinstance(c, ErrorbarContainer)]
    assert len(bars.lines[2][0].get_segments()) == 6


# ---------------------------------------------------------------- mean_ci (analysis.mean_ci, re-exported)


def test_mean_ci_matches_a_hand_computed_t_interval():
    """For (1, 2, 3, 4): mean 2.5, s = sqrt(5/3), half-width t_{0.975,3} * s / 2 with t = 3.182446305."""
    mean, low, high = plots.mean_ci([1, 2, 3, 4])
    half = 3.182446305284263 * math.sqrt(5 / 3) / 2
    assert (mean, low, high) == pytest.approx((2.5, 2.5 - half, 2.5 + half), rel=1e-9)


def test_mean_ci_agrees_with_scipy_t_interval_and_drops_non_finite_values():
    """mean_ci equals scipy.stats.t.interval(level, n-1, mean, sem); NaN/inf (diverged runs) are ignored."""
    x = np.random.default_rng(3).normal(5, 2, size=7)
    for level in (0.8, 0.95, 0.99):
        lo, hi = stats.t.interval(level, len(x) - 1, loc=x.mean(), scale=stats.sem(x))
        assert plots.mean_ci(x, level) == pytest.approx((x.mean(), lo, hi), rel=1e-12)
    assert plots.mean_ci([1.0, 2.0, float("nan"), float("inf")]) == pytest.approx(plots.mean_ci([1.0, 2.0]))


# ---------------------------------------------------------------- export, style, size


@pytest.mark.slow
def test_every_figure_saves_to_svg_and_png(tmp_path, figures):
    """save_figure writes a non-empty .svg and .png for each plotting function's figure."""
    for name, fig in figures.items():
        paths = plots.save_figure(fig, tmp_path / "figs" / name)
        assert [p.suffix for p in paths] == [".svg", ".png"]
        assert all(p.stat().st_size > 1000 for p in paths), name


def test_a_categorical_figure_drawn_twice_from_the_same_runs_is_the_same_figure_and_leaves_numpys_generator_alone():
    """Every run is a jittered dot, and seaborn jitters with NumPy's global generator: unseeded, the dots
    moved between two executions of a chapter (chapter 8's schedules figure). Drawn twice with the global
    generator elsewhere in between, the SVG is the same; a caller's draws after a figure are what they were."""
    d = pd.DataFrame([{"kl_schedule": k, "beta": b, "seed": s, "test_elbo": -25.0 - b + 0.3 * s}
                      for k in ("constant", "linear") for b in (1.0, 4.0) for s in range(5)])  # fmt: skip
    svg = lambda: figure_bytes(plots.plot_metric_vs(d, "kl_schedule", "test_elbo", hue="beta"))[0]
    first = svg()
    np.random.seed(7)  # noqa: NPY002 (the global generator seaborn uses)
    assert svg() == first
    np.random.seed(11)  # noqa: NPY002
    expected = np.random.random(3)  # noqa: NPY002
    np.random.seed(11)  # noqa: NPY002
    svg()
    assert np.array_equal(np.random.random(3), expected)  # noqa: NPY002


def test_style_hides_top_and_right_spines_and_use_style_sets_rcparams():
    """Figures made by the module have no top/right spines; use_style() sets the global rcParams."""
    ax = plots.plot_metric_vs(_sweep(), "batch_size", "test_elbo").axes[0]
    assert not ax.spines["top"].get_visible() and not ax.spines["right"].get_visible()
    with matplotlib.rc_context():
        plots.use_style()
        assert matplotlib.rcParams["xtick.labelsize"] == plots.FONT_PT


# Bounds for a figure at page width (PNG at publish_figure's 150 dpi): wide strips of images are
# allowed (a row of reconstructions), a figure taller than it is wide by more than 1.5 is not.
MAX_PNG_PX = 2400
ASPECT_RANGE = (0.6, 7.0)  # width / height


def _png_size(png: bytes) -> tuple[int, int]:
    from io import BytesIO

    from PIL import Image

    return Image.open(BytesIO(png)).size


def _tuning_figure():
    """The optimizer chapter's tuning figure: one optimizer far below the others, then the axis
    narrowed to the 8 nats below the best (as 07_optimizers does after plotting)."""
    rng = np.random.default_rng(2)
    rows = [
        {"optimizer": o, "learning_rate": lr, "seed": s, "val_elbo": base - 3 * abs(np.log10(lr) + 2.5) + rng.normal()}
        for o, base in {"adam": -30.0, "rmsprop": -31.0, "sgd": -180.0}.items()
        for lr in (1e-4, 1e-3, 1e-2, 1e-1)
        for s in range(3)
    ]
    d = pd.DataFrame(rows)
    fig = plots.plot_metric_vs(d, "learning_rate", "val_elbo", hue="optimizer", logx=True)
    top = d.groupby(["optimizer", "learning_rate"]).val_elbo.mean().max()
    fig.axes[0].set_ylim(top - 8, top + 0.5)
    return fig


@pytest.mark.slow
def test_every_figure_has_a_bounded_pixel_size_and_aspect_ratio(rendered):
    """No figure is stretched by text outside its axes: every PNG is at most 2400 px a side with an
    aspect ratio (width / height) within 0.6-7 (the optimizer chapter's tuning figure was 954 × 14,658)."""
    pngs = {name: png for name, (_, png) in rendered.items()} | {"tuning": figure_bytes(_tuning_figure())[1]}
    sizes = {name: _png_size(png) for name, png in pngs.items()}
    bad = {
        n: (w, h)
        for n, (w, h) in sizes.items()
        if max(w, h) > MAX_PNG_PX or not ASPECT_RANGE[0] <= w / h <= ASPECT_RANGE[1]
    }
    assert bad == {}


def test_direct_labels_stay_beside_the_axes_when_the_axis_is_narrowed_later():
    """A line whose end lies outside the axes (after ``set_ylim``) is labelled at the axes' edge,
    with an arrow saying where it went, never far outside the figure."""
    fig = _tuning_figure()
    ax = fig.axes[0]
    fig.canvas.draw()
    box = ax.get_window_extent()
    labels = [t for t in ax.texts if t.get_text().startswith(("SGD", "sgd"))]
    assert labels, [t.get_text() for t in ax.texts]
    y = labels[0].get_window_extent().y0
    assert box.y0 - 30 <= y <= box.y1 + 30
    assert "↓" in labels[0].get_text()


def _overlapping_ticks(fig) -> list[str]:
    """Tick labels of any axis of ``fig`` that overlap their neighbour, as the text they run into.
    Labels rotated by θ are parallel strips one line tall: they clear each other when their
    anchors lie at least a line's height apart across the strips (spacing × sin θ)."""
    fig.draw_without_rendering()
    found = []
    for ax in fig.axes:
        for axis, lo, hi in ((ax.xaxis, "x0", "x1"), (ax.yaxis, "y0", "y1")):
            labels = [t for t in axis.get_ticklabels() if t.get_visible() and t.get_text()]
            boxes = sorted(((t.get_window_extent(), t) for t in labels), key=lambda b: getattr(b[0], lo))
            for (a, ta), (b, tb) in itertools.pairwise(boxes):
                theta = np.radians(ta.get_rotation() % 180)
                if axis is ax.xaxis and np.sin(theta) > 0.1:
                    line = ta.get_fontsize() * fig.dpi / 72
                    gap = abs(
                        ta.get_transform().transform(ta.get_position())[0]
                        - tb.get_transform().transform(tb.get_position())[0]
                    )
                    clash = gap * np.sin(theta) < line
                else:
                    clash = getattr(a, hi) > getattr(b, lo) + 0.5 and a.overlaps(b)
                if clash:
                    found.append(ta.get_text() + tb.get_text())
    return found


def test_no_tick_labels_overlap_not_even_on_a_long_learning_curve(figures):
    """A single-panel learning curve over 120 epochs (the learning-rate chapter's long runs) read
    "90105120": its epoch ticks are spaced for the panel's width. Rates 0.008 and 0.01 of one grid
    ran into each other even at 45°: the second goes unlabelled."""
    long = _histories(lrs=(1e-3, 1e-2), epochs=120)
    curve = plots.plot_history(long, metrics=("val_elbo",), hue="learning_rate")
    overlaps = {name: _overlapping_ticks(fig) for name, fig in {**figures, "long-curve": curve}.items()}
    assert {name: found for name, found in overlaps.items() if found} == {}
