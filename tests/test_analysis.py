"""Analysis helpers against hand-computed cases (t quantile from tables: t(0.975, 2) = 4.302653)."""

import math

import numpy as np
import pandas as pd
import pytest

from vae_utils.claims import analysis as A

T2 = 4.302653


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
    """One row per run_id with its kept columns; a run that never reaches the target is flagged."""
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


def test_fit_hyperbola_with_one_batch_size_returns_nan():
    """One batch size cannot separate S_min from B_crit: no fit (NaN), not an error."""
    fit = A.fit_hyperbola([32, 32], [100, 110])
    assert not fit.ok and math.isnan(fit.b_crit)


def test_best_lr_finds_an_interior_best_and_flags_an_edge():
    """Best in the middle: interior; best at the largest value (or NaN = diverged beyond it): edge."""
    c = A.best_lr([1e-4, 1e-3, 1e-2], [-30.0, -25.0, -28.0])
    assert c.best == 1e-3 and c.interior and c.edge is None
    # Three-point parabola vertex, equal steps h = ln 10 in log LR: offset h (f0 - f2) / (2 (f0 - 2 f1 + f2))
    # = ln 10 (-2) / (2 (-8)) = ln 10 / 8 from the middle point.
    assert c.best_interpolated == pytest.approx(1e-3 * 10 ** (1 / 8), rel=1e-9)
    assert c.text == "the best learning rate, 0.001, lies inside the grid 0.0001 to 0.01"
    c = A.best_lr([1e-2, 1e-4, 1e-3], [-25.0, -30.0, -28.0])  # unsorted input
    assert c.best == 1e-2 and not c.interior and c.edge == "high" and "widen it upwards" in c.text
    c = A.best_lr([1e-4, 1e-3, 1e-2], [-25.0, -28.0, float("nan")])
    assert c.edge == "low"
    c = A.best_lr([1e-4, 1e-3, 1e-2], [3.0, 2.0, 4.0], higher_is_better=False)
    assert c.best == 1e-3 and c.interior


def test_steps_to_target_table_flags_a_target_reached_at_the_first_evaluation():
    """A run already past the target at its first evaluation gives an upper bound, flagged at_first."""
    h = pd.DataFrame(
        {"run_id": ["a"] * 3 + ["b"] * 3, "steps": [10, 20, 30] * 2, "val_elbo": [-30, -25, -20, -21, -20, -19]}
    )
    t = A.steps_to_target_table(h, -22.0).set_index("run_id")
    assert not t.loc["a", "at_first"] and t.loc["a", "steps_to_target"] == pytest.approx(26.0)
    assert t.loc["b", "at_first"] and t.loc["b", "steps_to_target"] == 10
