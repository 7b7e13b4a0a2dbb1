"""Analysis helpers against hand-computed cases (t quantiles from tables: t(0.975, 2) = 4.302653,
t(0.975, 4) = 2.776445)."""

import math

import numpy as np
import pandas as pd
import pytest

from vae_utils import analysis as A

T2, T4 = 4.302653, 2.776445


def test_mean_ci_is_the_t_interval_of_the_mean():
    """[1, 2, 3]: mean 2, sd 1, half-width t(0.975, 2) / sqrt(3)."""
    m, lo, hi = A.mean_ci([1.0, 2.0, 3.0])
    half = T2 / math.sqrt(3)
    assert m == 2.0
    assert lo == pytest.approx(2 - half, rel=1e-6) and hi == pytest.approx(2 + half, rel=1e-6)


def test_mean_ci_with_one_value_or_nan_gives_no_interval():
    """One finite value: the mean and no interval; NaNs (diverged runs) are dropped."""
    m, lo, hi = A.mean_ci([3.0, float("nan")])
    assert m == 3.0 and math.isnan(lo) and math.isnan(hi)
    assert all(math.isnan(v) for v in A.mean_ci([]))


def test_summarize_keeps_every_seed_and_counts_divergences():
    """One row per cell; per-seed values kept in order; a diverged run is counted, not averaged."""
    df = pd.DataFrame(
        {
            "batch_size": [8, 8, 8, 64, 64, 64],
            "seed": [0, 1, 2, 0, 1, 2],
            "test_elbo": [1.0, 2.0, 3.0, 5.0, float("nan"), 7.0],
            "status": ["ok", "ok", "ok", "ok", "diverged", "ok"],
        }
    )
    s = A.summarize(df, "batch_size", "test_elbo")
    r8, r64 = s.iloc[0], s.iloc[1]
    assert r8["mean"] == 2.0 and r8["n"] == 3 and r8["n_diverged"] == 0
    assert r8["high"] == pytest.approx(2 + T2 / math.sqrt(3), rel=1e-6)
    assert r8["values"] == (1.0, 2.0, 3.0) and r8["seeds"] == (0, 1, 2)
    assert r64["mean"] == 6.0 and r64["n"] == 2 and r64["n_runs"] == 3 and r64["n_diverged"] == 1


def test_difference_effect_is_the_welch_interval():
    """[1,2,3] - [4,5,6]: d = -3, se = sqrt(2/3), Welch dof = 4."""
    e = A.difference_effect([1, 2, 3], [4, 5, 6])
    half = T4 * math.sqrt(2 / 3)
    assert e.estimate == -3.0
    assert e.low == pytest.approx(-3 - half, rel=1e-6) and e.high == pytest.approx(-3 + half, rel=1e-6)


def test_slope_effect_matches_a_hand_computed_regression():
    """x = 0..3, y = [0, 1, 1, 3]: slope 4.5/5 = 0.9, SSE 0.7, se sqrt(0.35/5)."""
    e = A.slope_effect([0, 1, 2, 3], [0, 1, 1, 3])
    half = T2 * math.sqrt(0.07)
    assert e.estimate == pytest.approx(0.9)
    assert e.low == pytest.approx(0.9 - half, rel=1e-6) and e.high == pytest.approx(0.9 + half, rel=1e-6)


def test_slope_effect_on_log2_x_recovers_a_power_law():
    """y = 3 log2(B) exactly: slope 3 with a zero-width interval."""
    b = np.array([8, 16, 32, 64])
    e = A.slope_effect(b, 3 * np.log2(b), logx=True)
    assert e.estimate == pytest.approx(3.0) and e.low == pytest.approx(3.0) and e.high == pytest.approx(3.0)


def test_rank_effect_of_a_monotone_trend_excludes_zero():
    """Three seeds at each of four batch sizes, well separated: rho near 1, interval above 0."""
    x = np.repeat([8, 16, 32, 64], 3)
    y = np.repeat([4.0, 3.0, 2.0, 1.0], 3) + np.tile([0.0, 0.1, 0.2], 4)
    e = A.rank_effect(x, y, n_boot=300)
    assert e.estimate < -0.9 and e.high < 0


def test_steps_to_target_interpolates_the_first_crossing():
    """val_elbo -30, -25, -20 at steps 10, 20, 30: -22 is reached 60% of the way from 20 to 30."""
    h = pd.DataFrame({"steps": [10, 20, 30], "epoch": [1, 2, 3], "val_elbo": [-30.0, -25.0, -20.0]})
    assert A.steps_to_target(h, -22.0) == pytest.approx(26.0)
    assert A.steps_to_target(h, -22.0, interpolate=False) == 30.0
    assert A.steps_to_target(h, -22.0, x="epoch") == pytest.approx(2.6)
    assert A.steps_to_target(h, -35.0) == 10.0  # reached at the first point
    assert math.isnan(A.steps_to_target(h, -10.0))  # never reached


def test_steps_to_target_ignores_points_after_divergence():
    """A NaN (diverged) point never counts as reaching the target."""
    h = pd.DataFrame({"steps": [10, 20], "val_elbo": [-30.0, float("nan")]})
    assert math.isnan(A.steps_to_target(h, -25.0))


def test_steps_to_target_table_gives_one_row_per_run():
    h = pd.DataFrame(
        {
            "run_id": ["a"] * 3 + ["b"] * 3,
            "batch_size": [8] * 3 + [64] * 3,
            "steps": [10, 20, 30, 1, 2, 3],
            "val_elbo": [-30.0, -25.0, -20.0, -40.0, -39.0, -38.0],
        }
    )
    t = A.steps_to_target_table(h, -22.0, keep=["batch_size"])
    assert list(t["run_id"]) == ["a", "b"] and list(t["batch_size"]) == [8, 64]
    assert t["steps_to_target"].iloc[0] == pytest.approx(26.0) and not t["reached"].iloc[1]


def test_fit_hyperbola_recovers_s_min_and_b_crit_from_exact_data():
    """S = 100 (1 + 32 / B) exactly: S_min = 100, B_crit = 32, E_min = 3200, and the
    McCandlish relation (S/S_min - 1)(E/E_min - 1) = 1 holds at every batch size."""
    b = np.array([8, 16, 32, 64, 128, 256, 512])
    fit = A.fit_hyperbola(b, 100 * (1 + 32 / b))
    assert fit.s_min == pytest.approx(100, rel=1e-6) and fit.b_crit == pytest.approx(32, rel=1e-6)
    assert fit.e_min == pytest.approx(3200, rel=1e-6) and fit.rmse_log < 1e-8
    s, e = fit.steps(b), fit.examples(b)
    np.testing.assert_allclose((s / fit.s_min - 1) * (e / fit.e_min - 1), 1.0, rtol=1e-6)


def test_fit_hyperbola_interval_covers_b_crit_close_to_its_level():
    """Monte Carlo: 3 seeds at 6 batch sizes with 5% log-normal noise. A Wald interval on a
    nonlinear parameter covers a little less than 95% (about 93% over 400 repetitions);
    200 repetitions must land within 2 binomial standard errors (3.1%) of 93%."""
    b = np.repeat([8, 16, 32, 64, 128, 256], 3)
    covered = 0
    for rep in range(200):
        s = 200 * (1 + 50 / b) * np.exp(np.random.default_rng(rep).normal(0, 0.05, len(b)))
        fit = A.fit_hyperbola(b, s)
        covered += fit.b_crit_low < 50 < fit.b_crit_high
    assert abs(covered / 200 - 0.93) < 2 * math.sqrt(0.93 * 0.07 / 200)
    assert fit.effect().has_ci


def test_fit_hyperbola_with_one_batch_size_returns_nan():
    fit = A.fit_hyperbola([32, 32], [100, 110])
    assert not fit.ok and math.isnan(fit.b_crit)


def test_noise_scale_summary_averages_repeated_measurements():
    ms = [{"epoch": 1, "b_simple": v, "g2": 1.0, "trace_sigma": v} for v in (10.0, 20.0, 30.0)]
    s = A.noise_scale_summary(ms, by="epoch")
    assert s["b_simple_mean"].iloc[0] == 20.0 and s["b_simple_n"].iloc[0] == 3
    assert s["b_simple_high"].iloc[0] == pytest.approx(20 + T2 * 10 / math.sqrt(3), rel=1e-6)
    assert A.noise_scale_summary(ms)["b_simple_mean"].iloc[0] == 20.0


def test_best_lr_finds_an_interior_best_and_flags_an_edge():
    """Best in the middle: interior; best at the largest value (or NaN = diverged beyond it): edge."""
    c = A.best_lr([1e-4, 1e-3, 1e-2], [-30.0, -25.0, -28.0])
    assert c.best == 1e-3 and c.interior and c.edge is None
    assert 1e-4 < c.best_interpolated < 1e-2
    c = A.best_lr([1e-2, 1e-4, 1e-3], [-25.0, -30.0, -28.0])  # unsorted input
    assert c.best == 1e-2 and not c.interior and c.edge == "high" and "widen it upwards" in c.text
    c = A.best_lr([1e-4, 1e-3, 1e-2], [-25.0, -28.0, float("nan")])
    assert c.edge == "low"
    c = A.best_lr([1e-4, 1e-3, 1e-2], [3.0, 2.0, 4.0], higher_is_better=False)
    assert c.best == 1e-3 and c.interior


def test_lr_scaling_exponent_is_one_for_linear_scaling():
    e = A.lr_scaling_exponent([16, 32, 64, 128], [1e-3, 2e-3, 4e-3, 8e-3])
    assert e.estimate == pytest.approx(1.0)


def test_scaling_rule_check_uses_the_nearest_grid_lr_and_a_welch_difference():
    """Linear rule from (32, 1e-3): at 64 it asks for 2e-3. There the metric equals the base
    (within); at 128 the rule's 4e-3 is off the grid, the nearest is 3e-3, and it is worse (loss)."""
    rows = []
    for seed, noise in enumerate([0.0, 0.1, -0.1]):
        rows += [
            {"batch_size": 32, "learning_rate": 1e-3, "seed": seed, "test_elbo": -25 + noise},
            {"batch_size": 64, "learning_rate": 1e-3, "seed": seed, "test_elbo": -27 + noise},
            {"batch_size": 64, "learning_rate": 2e-3, "seed": seed, "test_elbo": -25 - noise},
            {"batch_size": 128, "learning_rate": 3e-3, "seed": seed, "test_elbo": -29 + noise},
        ]
    t = A.scaling_rule_check(pd.DataFrame(rows), "test_elbo", 32, 1e-3, "linear").set_index("batch_size")
    assert t.loc[64, "lr_used"] == 2e-3 and t.loc[64, "within"] and not t.loc[64, "loss"]
    assert t.loc[128, "lr_used"] == 3e-3 and t.loc[128, "lr_off"] == pytest.approx(0.75)
    assert t.loc[128, "diff"] == pytest.approx(-4.0) and t.loc[128, "loss"] and not t.loc[128, "within"]
    with pytest.raises(ValueError, match="rule"):
        A.scaling_rule_check(pd.DataFrame(rows), "test_elbo", 32, 1e-3, "cubic")


def test_rank_agreement_is_kendall_tau():
    """Three items, one swapped pair: (2 concordant - 1 discordant) / 3."""
    e = A.rank_agreement({"sgd": 1, "adam": 2, "rmsprop": 3}, {"sgd": 1, "adam": 3, "rmsprop": 2})
    assert e.estimate == pytest.approx(1 / 3) and e.n == 3


def _effect(est, lo, hi, n=12):
    return A.Effect("slope of step_noise on log2 B", est, lo, hi, n)


def test_verdict_is_supported_when_the_interval_excludes_zero_in_the_claimed_direction():
    v = A.verdict("Larger batches are more stable", _effect(-0.3, -0.5, -0.1), direction=-1)
    assert v.label == "supported" and v.supported
    assert "−0.3" in v.text and "95% CI −0.5 to −0.1" in v.text
    assert v.markdown.startswith("**Supported.**")


def test_verdict_is_not_supported_when_the_opposite_holds():
    """The claim predicts a decrease; the interval lies above zero."""
    v = A.verdict("Larger batches are more stable", _effect(0.3, 0.1, 0.5), direction=-1)
    assert v.label == "not supported" and "opposite holds" in v.text


def test_verdict_is_not_supported_when_consistent_with_no_effect():
    """The hand-computed slope 0.9 (CI about -0.24 to 2.04) does not support a positive trend."""
    e = A.slope_effect([0, 1, 2, 3], [0, 1, 1, 3])
    v = A.verdict("y grows with x", e, direction=1)
    assert v.label == "not supported" and "consistent with no effect" in v.text


def test_verdict_with_one_seed_reports_insufficient_data_instead_of_crashing():
    e = A.difference_effect([1.0], [2.0])
    v = A.verdict("a beats b", e, direction=1)
    assert v.label == "insufficient data" and "no confidence interval" in v.text
    assert A.verdict("any", A.slope_effect([1], [2]), direction=-1).label == "insufficient data"


def test_two_sided_verdict_and_consistency_verdict():
    assert A.verdict("optimizers differ", _effect(0.3, 0.1, 0.5), direction=0).supported
    assert A.verdict("optimizers differ", _effect(0.3, -0.1, 0.5), direction=0).label == "not supported"
    assert A.consistency_verdict("linear rule", _effect(0.9, 0.6, 1.2), 1.0).supported
    assert A.consistency_verdict("linear rule", _effect(0.4, 0.2, 0.6), 1.0).label == "not supported"


def test_consistency_verdict_with_a_margin_is_an_equivalence_test():
    """Within +-0.5: kept; excludes 0: changed; contains 0 but reaches past the margin: undecided."""
    assert A.consistency_verdict("kept", _effect(-0.1, -0.3, 0.2), 0.0, margin=0.5).supported
    assert A.consistency_verdict("kept", _effect(-0.1, -0.2, -0.05), 0.0, margin=0.5).supported  # small, real
    assert A.consistency_verdict("kept", _effect(-1.3, -3.1, 0.5), 0.0, margin=0.5).label == "insufficient data"
    assert A.consistency_verdict("kept", _effect(-3.4, -3.8, -3.0), 0.0, margin=0.5).label == "not supported"


def test_combined_verdict_depends_on_the_condition_when_conditions_disagree():
    """Larger batches help at a fixed number of updates but not at a fixed number of epochs."""
    up = A.verdict("bigger is better", _effect(0.5, 0.2, 0.8), direction=1)
    down = A.verdict("bigger is better", _effect(-0.5, -0.8, -0.2), direction=1)
    none = A.verdict("bigger is better", _effect(0.1, float("nan"), float("nan")), direction=1)
    v = A.combine_verdicts("bigger is better", {"fixed updates": up, "fixed epochs": down}, "the budget")
    assert v.label == "depends on the budget"
    assert v.text.startswith("supported for fixed updates, not for fixed epochs")
    assert A.combine_verdicts("c", {"a": up, "b": up}, "x").label == "supported"
    assert A.combine_verdicts("c", {"a": down, "b": none}, "x").label == "not supported"
    assert A.combine_verdicts("c", {"a": none}, "x").label == "insufficient data"
    assert A.combine_verdicts("c", {"a": up, "b": none}, "x").label == "insufficient data"  # not shown everywhere


def test_fmt_writes_numbers_for_prose():
    assert A.fmt(-0.31234) == "−0.312" and A.fmt(float("nan")) == "n/a" and A.fmt(12345.6) == "12,346"
    assert A.fmt(0.0001234) == "0.000123"


def test_best_per_group_picks_the_best_rate_per_batch_size_and_flags_edges():
    """Batch 16: best at the middle rate (interior); batch 64: best at the largest (edge)."""
    s = pd.DataFrame(
        {
            "batch_size": [16, 16, 16, 64, 64, 64],
            "learning_rate": [1e-3, 2e-3, 4e-3, 1e-3, 2e-3, 4e-3],
            "mean": [-25.0, -24.0, -26.0, -27.0, -26.0, -25.0],
        }
    )
    b = A.best_per_group(s, "batch_size").set_index("batch_size")
    assert b.loc[16, "learning_rate"] == 2e-3 and b.loc[16, "interior"]
    assert b.loc[64, "learning_rate"] == 4e-3 and not b.loc[64, "interior"] and b.loc[64, "edge"] == "high"


def test_verdict_markdown_capitalizes_the_label_for_the_boxed_verdict():
    v = A.combine_verdicts(
        "c", {"a": A.verdict("c", _effect(1, 0.5, 2), 1), "b": A.verdict("c", _effect(-1, -2, -0.5), 1)}, "x"
    )
    assert v.markdown.startswith("**Depends on x.**")


def test_steps_to_target_table_flags_a_target_reached_at_the_first_evaluation():
    """A run already past the target at its first evaluation gives an upper bound, flagged at_first."""
    h = pd.DataFrame(
        {"run_id": ["a"] * 3 + ["b"] * 3, "steps": [10, 20, 30] * 2, "val_elbo": [-30, -25, -20, -21, -20, -19]}
    )
    t = A.steps_to_target_table(h, -22.0).set_index("run_id")
    assert not t.loc["a", "at_first"] and t.loc["a", "steps_to_target"] == pytest.approx(26.0)
    assert t.loc["b", "at_first"] and t.loc["b", "steps_to_target"] == 10
