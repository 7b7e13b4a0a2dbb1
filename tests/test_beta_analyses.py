"""vae_utils.claims.beta, the analyses of chapter 08, on hand-made sweep rows: each result is checked
against a recomputation with NumPy/SciPy/pandas written here, and the overfitting verdict's scope is
the overfitting runs' own (300 images, static binarization, 300 epochs), never the β grid's budget."""

import math

import matplotlib.pyplot as plt
import numpy as np
import pandas as pd
import pytest
from scipy import stats

from vae_utils.claims import beta as B
from vae_utils.claims import verdicts as V

SEEDS = [0, 1, 2, 3, 4]
BETAS = [0.5, 1.0, 2.0, 4.0]


def _grid(betas=BETAS, seeds=SEEDS, **config) -> pd.DataFrame:
    """Sweep rows at constant β: fewer active units, less KL and more reconstruction loss as β grows."""
    rng = np.random.default_rng(3)
    rows = []
    for b in betas:
        for s in seeds:
            units = int(np.clip(round(8 - 2 * math.log2(b) + rng.normal(0, 0.6)), 0, 8))
            kl, rec = 6 / b + rng.normal(0, 0.1), 20 + 2 * math.log2(b) + rng.normal(0, 0.1)
            rows.append(dict(run_id=f"{b}-{s}-{config}", dataset="digits", optimizer="adam", batch_size=64, epochs=30,
                             beta=b, seed=s, latent_dim=8, status="ok", kl_schedule="constant", active_units=units,
                             test_kl_loss=kl, test_reconstruction_loss=rec, test_elbo=-(kl + rec), test_nll=-(kl + rec),
                             train_elbo=-(kl + rec) + 0.3, val_elbo=-(kl + rec) - rng.normal(0, 0.05)) | config)  # fmt: skip
    return pd.DataFrame(rows).assign(floored=False)


def test_the_tuned_rate_of_every_beta_has_the_best_mean_validation_elbo():
    rows = [
        dict(beta=b, learning_rate=lr, seed=s, status="ok", val_elbo=-30 - abs(np.log2(lr / (0.004 / b))) + 0.1 * s)
        for b in (0.5, 2.0) for lr in (0.001, 0.002, 0.004, 0.008) for s in (1000, 1001)
    ]  # fmt: skip
    tuning = pd.DataFrame(rows)
    rate = B.tuned_rates(tuning)
    expected = tuning.groupby(["beta", "learning_rate"]).val_elbo.mean().groupby("beta").idxmax().map(lambda k: k[1])
    assert rate.to_dict() == expected.to_dict() == {0.5: 0.008, 2.0: 0.002}
    assert B.rate_at_one(pd.Series({0.25: 0.008, 2.0: 0.002, 4.0: 0.001})) == 0.002, "the nearest β to 1, in log"
    assert B.rate_at_one(pd.Series({0.25: 0.01, 1.0: 0.004, 4.0: 0.001})) == 0.004


def _tuning_preferring(best: float) -> pd.DataFrame:
    """Tuning rows (two rates per β) whose validation ELBO is best for β = ``best`` at its better rate."""
    rows = [
        dict(beta=b, learning_rate=lr, seed=s, status="ok", val_elbo=-30 - abs(b - best) - (lr == 0.001) + 0.01 * s)
        for b in BETAS for lr in (0.001, 0.004) for s in (1000, 1001)
    ]  # fmt: skip
    return pd.DataFrame(rows)


def test_the_rate_distortion_numbers_are_the_means_at_the_ends_and_the_best_beta_on_the_tuning_seeds():
    ok = _grid()
    means = ok.groupby("beta")[["test_kl_loss", "test_reconstruction_loss", "test_elbo"]].mean()
    not_test_best = next(b for b in BETAS if b != means.test_elbo.idxmax())
    rd = B.rate_distortion(ok, _tuning_preferring(not_test_best))
    assert rd["kl-lo"] == pytest.approx(means.test_kl_loss.iloc[0])
    assert rd["rec-hi"] == pytest.approx(means.test_reconstruction_loss.iloc[-1])
    assert rd["best"] == not_test_best, "the tuning seeds' validation ELBO chooses β, not the test ELBO"
    best = ok[ok.beta == rd["best"]].test_elbo
    assert rd["best-elbo"].estimate == pytest.approx(best.mean())
    assert rd["best-elbo"].high - rd["best-elbo"].estimate == pytest.approx(stats.sem(best) * stats.t.ppf(0.975, 4))


def test_the_best_beta_compares_each_beta_at_its_own_tuned_rate_where_no_run_broke():
    tuning = _tuning_preferring(1.0)
    tempting = (tuning.beta == 2.0) & (tuning.learning_rate == 0.004)
    tuning.loc[tempting, "val_elbo"] = [0.0, np.nan]  # the best validation ELBO, at a rate that broke a seed
    tuning.loc[tempting & tuning.val_elbo.isna(), "status"] = "diverged"
    assert B.tuned_rates(tuning)[2.0] == 0.001
    assert B.best_beta(tuning) == 1.0
    assert B.best_beta(_tuning_preferring(4.0)) == 4.0


def test_the_collapse_slope_is_the_mean_over_seeds_of_each_seeds_slope_on_log2_beta():
    ok = _grid()
    slopes = [np.polyfit(np.log2(g.beta), g.active_units, 1)[0] for _, g in ok.groupby("seed")]
    e = B.collapse_slope(ok)
    assert e.estimate == pytest.approx(np.mean(slopes))
    assert e.p == pytest.approx(stats.ttest_1samp(slopes, 0).pvalue)
    assert e.unit == "units"


def test_the_positive_control_of_the_remedies_finds_where_a_constant_beta_collapses_units():
    evaluation = _grid()
    means = evaluation.groupby("beta").active_units.mean()
    assert B.collapsed(evaluation, [1.0, 2.0, 4.0], 8) == [b for b in (1.0, 2.0, 4.0) if means[b] < 7.5]
    table = B.control_table(evaluation, [4.0, 8.0])
    assert list(table["β"]) == [1.0, 4.0, 8.0]
    column = "mean active units (of 8), constant β"
    assert table[column].iloc[1] == pytest.approx(means[4.0]) and math.isnan(table[column].iloc[2])
    assert set(B.control_runs(evaluation, [4.0]).beta) == {1.0, 4.0}


class _Recorder:
    """A stand-in for verdicts.Family that records what each claim was handed."""

    def __init__(self):
        self.calls = {}

    def add(self, id, effect, runs=None):
        self.calls[id] = ("add", effect, runs)

    def not_testable(self, id, reason, runs=None):
        self.calls[id] = ("not testable", reason, runs)

    def not_run(self, id, parameter, value):
        self.calls[id] = ("not run", parameter, value)


def _remedies(evaluation, schedules, gain):
    rows = evaluation[evaluation.beta >= 2.0]
    return pd.concat(
        [rows.assign(kl_schedule=s, active_units=np.minimum(rows.active_units + gain[s], 8)) for s in schedules]
    )


def test_each_remedy_is_judged_paired_by_seed_where_units_collapse_and_only_there():
    evaluation = _grid()
    remedies = _remedies(evaluation, ["linear", "free_bits"], {"linear": 0, "free_bits": 3})
    fam = _Recorder()
    B.judge_remedies(fam, remedies, evaluation, ["linear", "free_bits"], [2.0, 4.0])
    assert fam.calls["beta-cyclical"] == ("not run", "kl_schedules", "cyclical")
    kind, effects, runs = fam.calls["beta-free-bits"]
    assert kind == "add" and list(effects) == ["at β = 2", "at β = 4"]
    const = evaluation[evaluation.beta == 4.0].set_index("seed").active_units
    fb = remedies[(remedies.kl_schedule == "free_bits") & (remedies.beta == 4.0)].set_index("seed").active_units
    assert effects["at β = 4"].estimate == pytest.approx((fb - const).mean())
    assert sum(len(r) for r in runs) == 2 * 2 * len(SEEDS), "the constant and the free-bits runs at β = 2 and 4"


def test_a_remedy_is_not_testable_where_no_beta_collapses_units():
    evaluation = _grid(betas=[0.5, 1.0])
    remedies = _remedies(evaluation.assign(beta=evaluation.beta * 4), ["linear"], {"linear": 0})
    fam = _Recorder()
    B.judge_remedies(fam, remedies, evaluation, ["linear"], [0.5])
    kind, reason, runs = fam.calls["beta-linear"]
    assert kind == "not testable" and "At β = 0.5" in reason and "positive control failed" in reason
    assert set(runs.beta) == {0.5}


def _overfit(fall_at_b0=2.0, gap_at_b0=5.0):
    """Overfitting runs (300 images, static binarization, 300 epochs) and their validation curves."""
    runs = _grid(betas=[0.1, 1.0], train_size=300, binarization="static", epochs=300)
    runs = runs.assign(train_elbo=runs.val_elbo + np.where(runs.beta == 0.1, gap_at_b0, 0.5))
    epochs = np.arange(1, 301)
    hist = pd.concat(
        [
            pd.DataFrame({"beta": r.beta, "seed": r.seed, "epoch": epochs,
                          "val_elbo": -30 - (fall_at_b0 if r.beta == 0.1 else 0.0) * (epochs > 100) * (epochs - 100) / 200})
            for r in runs.itertuples()
        ]
    )  # fmt: skip
    return runs, hist


def test_the_fall_of_the_validation_elbo_is_its_best_minus_its_last_epoch():
    _, hist = _overfit(fall_at_b0=2.0)
    fall = B.val_fall(hist)
    expected = hist.groupby(["beta", "seed"]).val_elbo.max() - hist.groupby(["beta", "seed"]).val_elbo.last()
    pd.testing.assert_series_equal(fall, expected, check_names=False)
    assert fall.loc[0.1].mean() == pytest.approx(2.0)


def test_the_overfitting_control_needs_a_fall_beyond_delta_and_a_gap_beyond_one_nat():
    runs, hist = _overfit(fall_at_b0=2.0, gap_at_b0=5.0)
    assert B.overfit_control(runs, B.val_fall(hist), delta=0.1).ok
    runs, hist = _overfit(fall_at_b0=0.05)
    c = B.overfit_control(runs, B.val_fall(hist), delta=0.1)
    assert not c.ok and "fell by only 0.05 nats" in c.reason and c.beta == 0.1
    runs, hist = _overfit(gap_at_b0=0.5)
    c = B.overfit_control(runs, B.val_fall(hist), delta=0.1)
    assert not c.ok and "by only 0.5 nats" in c.reason


def test_the_gap_slope_is_the_mean_over_seeds_of_each_seeds_slope_on_log2_beta():
    runs, _ = _overfit()
    gap = runs.train_elbo - runs.val_elbo
    slopes = [np.polyfit(np.log2(g.beta), gap[g.index], 1)[0] for _, g in runs.groupby("seed")]
    assert B.gap_slope(runs).estimate == pytest.approx(np.mean(slopes))


def test_the_overfitting_verdicts_scope_and_the_prose_state_the_overfitting_runs_budget():
    """The β grid trains 30 epochs on every image; the overfitting test 300 epochs on 300 images,
    statically binarized: its verdict and the prose must say the latter (it once said "30 epochs")."""
    evaluation, (overfit, hist) = _grid(), _overfit()
    tuning = evaluation.assign(learning_rate=0.004, seed=evaluation.seed + 1000)
    fam = V.Family("08_beta")
    fam.add("beta-overfit", B.gap_slope(overfit), runs=overfit)
    for schedule, claim in B.SCHEDULES.items():
        fam.not_run(claim, "kl_schedules", schedule)
    fam.add("beta-collapse", B.collapse_slope(evaluation), runs=evaluation)
    scope = fam["beta-overfit"].scope
    assert "300 training images, static binarization" in scope and "300 epochs" in scope and "30 epochs" not in scope
    assert "β 0.1 and 1" in scope
    control = B.overfit_control(overfit, B.val_fall(hist), delta=0.1)
    words = B.numbers(tuning, evaluation, evaluation.iloc[:0], overfit, control)
    assert (words["epochs"], words["overfit-epochs"]) == (30, 300)
    assert words["overfit-n"] == "300 training images" and words["overfit-binarization"] == "static"
    assert words["n-train"] == "1,257 training images" and words["overfit-betas"] == [0.1, 1.0]
    assert words["overfit-control"] == "enough overfitting for the test" and words["collapsed"] == "none"
    assert words["default-gap"].estimate == pytest.approx(
        (evaluation.train_elbo - evaluation.val_elbo)[evaluation.beta == 1].mean()
    )


def test_the_figures_draw_two_panels_each():
    evaluation, (overfit, hist) = _grid(), _overfit()
    remedies = _remedies(evaluation, ["linear"], {"linear": 1})
    for fig in (
        B.rate_distortion_figure(evaluation),
        B.schedules_figure(evaluation, remedies),
        B.gap_figure(overfit, hist),
    ):
        assert len(fig.axes) >= 2
        plt.close(fig)
    assert set(B.schedule_runs(evaluation, remedies).kl_schedule) == {"constant", "linear"}
