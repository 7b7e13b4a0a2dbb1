"""The strategy chapters' protocol (``vae_utils.claims.protocol``) on hand-made run tables.

Run: ``.venv/bin/pytest tests/test_protocol.py`` (seconds; no training).
"""

import math

import numpy as np
import pandas as pd
import pytest

from vae_utils.claims import protocol as P


def _runs(rows):
    df = pd.DataFrame(rows, columns=["batch_size", "learning_rate", "seed", "val_elbo", "test_elbo", "status"])
    df["test_nll"] = -df["test_elbo"]
    return df


def test_unstable_runs_are_the_diverged_ones_and_those_with_a_non_finite_bound():
    df = _runs(
        [(32, 1e-3, 0, -25, -25, "ok"), (32, 1e-3, 1, np.nan, np.nan, "diverged"), (32, 1e-3, 2, -25, np.inf, "ok")]
    )
    assert list(P.unstable(df)) == [False, True, True]


def test_tune_picks_the_best_mean_validation_elbo_per_group_and_a_breaking_rate_never_wins():
    """At batch 32 the rate 4e-3 has the best mean over its stable seeds but broke one seed: 2e-3 wins."""
    rows = []
    for s in range(3):
        rows += [(32, 1e-3, s, -26.0, -26.0, "ok"), (32, 2e-3, s, -25.0, -25.1, "ok")]
        rows += [(32, 4e-3, s, -24.0, -24.0, "ok") if s else (32, 4e-3, s, np.nan, np.nan, "diverged")]
        rows += [
            (64, 1e-3, s, -27.0, -27.0, "ok"),
            (64, 2e-3, s, -26.5, -26.4, "ok"),
            (64, 4e-3, s, -26.0 + 0.1 * s, -26.0, "ok"),
        ]
    tuned = P.tune(_runs(rows), by="batch_size").set_index("batch_size")
    assert tuned.loc[32, "learning_rate"] == 2e-3 and tuned.loc[32, "interior"]
    assert tuned.loc[64, "learning_rate"] == 4e-3 and tuned.loc[64, "edge"] == "high" and not tuned.loc[64, "interior"]
    assert tuned.loc[64, "mean"] == pytest.approx(-25.9)
    assert tuned.loc[32, "n"] == 3 and tuned.loc[32, "n_unstable"] == 0


def test_at_tuned_keeps_the_evaluation_runs_at_each_groups_chosen_rate():
    tuned = pd.DataFrame({"batch_size": [32, 64], "learning_rate": [2e-3, 4e-3]})
    ev = _runs(
        [
            (32, 2e-3, 0, -25, -25, "ok"),
            (32, 4e-3, 0, -24, -24, "ok"),
            (64, 4e-3, 0, -26, -26, "ok"),
            (64, 2e-3, 1, -26, -26, "ok"),
        ]
    )
    kept = P.at_tuned(ev, tuned, by="batch_size")
    assert sorted(zip(kept.batch_size, kept.learning_rate, strict=True)) == [(32, 2e-3), (64, 4e-3)]


def test_breaking_rates_are_the_first_unstable_rate_per_seed_and_censored_when_none_broke():
    rows = [
        (32, 0.01, 0, -25, -25, "ok"),
        (32, 0.02, 0, np.nan, np.nan, "diverged"),
        (32, 0.04, 0, -30, -30, "ok"),
        (32, 0.01, 1, -25, -25, "ok"),
        (32, 0.02, 1, -25, -25, "ok"),
        (32, 0.04, 1, -25, np.inf, "ok"),
        (64, 0.01, 0, -25, -25, "ok"),
        (64, 0.02, 0, -25, -25, "ok"),
        (64, 0.04, 0, -25, -25, "ok"),
    ]
    b = P.breaking_rates(_runs(rows), by="batch_size").set_index(["batch_size", "seed"])
    assert b.loc[(32, 0), "breaking_rate"] == 0.02 and b.loc[(32, 0), "largest_stable"] == 0.01
    assert b.loc[(32, 1), "breaking_rate"] == 0.04 and not b.loc[(32, 1), "censored"]
    assert b.loc[(64, 0), "censored"] and b.loc[(64, 0), "breaking_rate"] == 0.04


def test_with_a_floor_a_run_that_ends_worse_than_untrained_breaks_down_too():
    """Seed 0 never overflows, but at 0.04 it ends at -60 nats, below the untrained model's -45."""
    rows = [(32, 0.01, 0, -25, -25, "ok"), (32, 0.02, 0, -26, -26, "ok"), (32, 0.04, 0, -60, -60, "ok")]
    assert P.breaking_rates(_runs(rows), by="batch_size").censored.all()
    b = P.breaking_rates(_runs(rows), by="batch_size", floor=-45.0)
    assert b.breaking_rate.tolist() == [0.04] and not b.censored.any()


def test_a_dithered_ladder_is_the_ladder_shifted_by_less_than_one_step_and_reproducible():
    ladder = [0.01, 0.02, 0.04, 0.08]
    shifted = P.dithered_ladder(ladder, seed=3, salt=16)
    ratio = np.array(shifted) / np.array(ladder)
    assert np.allclose(ratio, ratio[0]) and 1 <= ratio[0] < 2
    assert P.dithered_ladder(ladder, seed=3, salt=16) == shifted
    assert P.dithered_ladder(ladder, seed=4, salt=16) != shifted
    with pytest.raises(ValueError, match="a rising geometric ladder"):
        P.dithered_ladder([0.01, 0.02, 0.05], seed=0)


def test_dithered_ladders_measure_a_trend_smaller_than_one_rung_without_bias():
    """True breaking rates rise by 0.2 doublings per doubling of the batch, from 16 to 256 (0.8 doublings
    in all, less than one rung of a doubling ladder). On one fixed ladder every seed reads the same rounded
    slope with no spread (which gets no interval, rather than a zero-width one); on dithered ladders the midpoint
    estimate recovers 0.2 within its standard error."""
    from vae_utils.claims import stats as S

    ladder = [0.01 * 2**k for k in range(8)]
    batch_sizes = [16, 64, 256]
    truth = {b: 0.03 * (b / 16) ** 0.2 for b in batch_sizes}

    def runs(ladder_of):
        rows = [
            (b, r, s, -25.0, np.nan if r >= truth[b] else -25.0, "ok")
            for s in range(40)
            for b in batch_sizes
            for r in ladder_of(s, b)
        ]
        return _runs(rows)

    fixed = P.breaking_rates(runs(lambda s, b: ladder), by="batch_size")
    flat = S.per_seed_slope(fixed, "batch_size", "breaking_point", logx=True, logy=True)
    assert flat.sd == 0 and not flat.has_interval  # rounding is not certainty: no interval, an exact p
    dithered = P.breaking_rates(runs(lambda s, b: P.dithered_ladder(ladder, s, b)), by="batch_size")
    est = S.per_seed_slope(dithered, "batch_size", "breaking_point", logx=True, logy=True)
    assert est.sd > 0 and abs(est.estimate - 0.2) < 3 * est.se


def test_seed_spread_is_the_median_standard_deviation_across_seeds():
    rows = [(32, 1e-3, s, 0, v, "ok") for s, v in enumerate([-25.0, -25.2, -25.4])]  # sd 0.2
    rows += [(64, 1e-3, s, 0, v, "ok") for s, v in enumerate([-26.0, -26.4, -26.8])]  # sd 0.4
    rows += [(128, 1e-3, s, 0, v, "ok") for s, v in enumerate([-27.0, -27.6, -28.2])]  # sd 0.6
    rows += [(128, 1e-3, 9, np.nan, np.nan, "diverged")]
    assert P.seed_spread(_runs(rows), "batch_size") == pytest.approx(0.4)


def test_the_critical_batch_curve_recovers_b_crit_from_exact_steps_and_flags_unreached_targets():
    """Validation curves that reach target t after S(B) = S_min (1 + B_crit / B) updates (S_min 100,
    B_crit 64), linear in steps around the crossing: the fit recovers 64 for a reached target."""
    rows = []
    for b in (16, 32, 64, 128, 256):
        s = 100 * (1 + 64 / b)
        for seed in range(3):
            steps = np.linspace(0, 3 * s, 31)  # val_elbo rises 2 nats per s updates, from -30
            rows.extend(
                {"run_id": f"{b}-{seed}", "batch_size": b, "steps": t, "val_elbo": -30 + 2 * t / s} for t in steps
            )
    hist = pd.DataFrame(rows)
    curve = P.critical_batch_curve(hist, targets=[-28.0, -10.0]).set_index("target")
    assert curve.loc[-28.0, "usable"] and curve.loc[-28.0, "b_crit"] == pytest.approx(64, rel=1e-3)
    assert curve.loc[-28.0, "s_min"] == pytest.approx(100, rel=1e-3)
    assert not curve.loc[-10.0, "usable"] and math.isnan(curve.loc[-10.0, "b_crit"])


def test_tune_over_a_category_picks_the_best_mean_and_has_no_edge():
    """Choosing an optimizer (a name, not a grid value): the best mean validation ELBO wins; no interior/edge."""
    df = _runs(
        [(64, 1e-3, s, v, v, "ok") for s, v in enumerate([-25.0, -25.2])]
        + [(64, 1e-2, s, v, v, "ok") for s, v in enumerate([-24.0, -24.4])]
    )
    df["optimizer"] = ["sgd", "sgd", "adam", "adam"]
    tuned = P.tune(df, over="optimizer")
    assert (
        tuned["optimizer"].iloc[0] == "adam"
        and tuned["interior"].iloc[0] is None
        and tuned["mean"].iloc[0] == pytest.approx(-24.2)
    )


def test_floored_runs_count_a_breakdown_at_the_floor_and_say_so():
    df = _runs([(32, 1e-3, 0, -25, -25.0, "ok"), (32, 1e-3, 1, np.nan, np.nan, "diverged")])
    out = P.floored(df, "test_elbo", -44.0)
    assert list(out.test_elbo) == [-25.0, -44.0] and list(out.floored) == [False, True]


# ---------------------------------------------------------------------------------------------
# Diverged runs: an outcome, never a floor value in an effect size


def _arm(values, status=None):
    """One arm's runs, one per seed: NaN values diverged."""
    status = status or ["ok" if np.isfinite(v) else "diverged" for v in values]
    return _runs([(512, 0.1, s, v, v, st) for s, (v, st) in enumerate(zip(values, status, strict=True))])


def test_outcome_values_are_nan_for_every_unstable_run_even_after_flooring():
    """Floored runs (status 'ok' with a non-finite bound included) come back as NaN, indexed by seed."""
    runs = _arm([-25.0, np.nan, -26.0], status=["ok", "diverged", "ok"])
    runs.loc[2, "test_elbo"] = np.inf  # finished, but its bound is not finite
    out = P.outcome_values(P.floored(runs, "test_elbo", -44.0))
    assert list(out.index) == [0, 1, 2] and out.iloc[0] == -25.0 and out.iloc[1:].isna().all()
    with pytest.raises(ValueError, match=r"duplicate seeds \[0\]"):
        P.outcome_values(pd.concat([runs, runs.iloc[:1]]))


def test_four_diverged_seeds_of_ten_are_compared_by_ranks_never_by_a_floor():
    """Arm a finishes every seed near −25; arm b diverges on 4 of 10 and finishes the rest near −25.
    The effect is a rank-biserial correlation (> 0: a better) with no interval; its p is the signed-rank
    permutation test's with the diverged runs ranked worst, and the counts and Fisher's p are stated."""
    from vae_utils.claims import stats as S

    rng = np.random.default_rng(1)
    a = P.outcome_values(_arm(list(-25 + 0.3 * rng.standard_normal(10))))
    b = P.outcome_values(_arm([np.nan] * 4 + list(-25 + 0.3 * rng.standard_normal(6))))
    e = S.with_divergence(a, b, unit="nats")
    assert e.estimate > 0 and not e.has_interval and e.tested and e.n == 10
    assert "diverged: 0 of 10 runs (a), 4 of 10 (b)" in e.method and "Fisher" in e.method
    assert "ranked worst" in e.method and "Wilcoxon" in e.method
    ind = S.with_divergence(a, b, seed_matched=False)
    assert "Mann–Whitney" in ind.method and ind.n == (10, 10) and ind.estimate > 0


def test_without_divergence_the_usual_t_tests_stand():
    """No diverged run: paired (seed-matched) or Welch, identical to calling them."""
    from vae_utils.claims import stats as S

    a, b = pd.Series([1.0, 2.0, 3.5, 4.0]), pd.Series([0.5, 1.0, 3.0, 2.0])
    assert S.with_divergence(a, b) == S.paired(a, b)
    assert S.with_divergence(a, b, seed_matched=False) == S.welch(a, b)


def test_two_arms_that_both_diverge_on_every_seed_are_not_testable_and_say_why():
    """Floored, both arms would differ by exactly 0 and read 'equivalent'; compared as outcomes there is no
    test, and the verdict says both arms diverged on every seed."""
    from vae_utils.claims import stats as S
    from vae_utils.claims import verdicts as V

    a, b = (P.outcome_values(_arm([np.nan] * 5)) for _ in range(2))
    e = S.with_divergence(a, b)
    assert not e.tested and "Every run of both arms diverged" in e.note
    v = V.judge("bl-sgd-linear", "The linear rule keeps SGD's ELBO", e, 0, 0.5)
    assert v.outcome == V.NOT_TESTABLE and "Every run of both arms diverged" in v.reason


def test_a_lower_is_better_metric_ranks_divergence_worst_too():
    """For an NLL (lower is better) a diverged run is still the worst: arm a, never diverging and lower,
    has a positive rank-biserial correlation."""
    from vae_utils.claims import stats as S

    a = pd.Series([80.0, 81.0, 82.0, 80.5, 81.5, 80.2])
    b = pd.Series([np.nan, np.nan, np.nan, 80.6, 81.4, 80.1])
    assert S.with_divergence(a, b, higher_is_better=False).estimate > 0
