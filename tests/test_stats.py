"""vae_utils.claims.stats against independent references: hand computations, scipy, NumPy recomputations
and Monte-Carlo estimates (t quantiles from tables: t(0.975, 2) = 4.302653, t(0.975, 4) = 2.776445).

The simulation tests draw normal data under the null and check each test's false-positive rate
against the nominal 5% within Monte-Carlo error (a few thousand datasets; fixed seeds).
"""

import itertools
import math

import numpy as np
import pandas as pd
import pytest
from scipy import stats

from vae_utils.claims import stats as S

T2, T4 = 4.302653, 2.776445


def _mc_bound(n_sims: int, rate: float = 0.05, z: float = 3.5) -> float:
    """z Monte-Carlo standard errors of a rate estimated from n_sims datasets."""
    return z * math.sqrt(rate * (1 - rate) / n_sims)


# ---------------------------------------------------------------------------------------------
# Welch, paired, one-sample


def test_welch_is_the_hand_computed_interval_of_a_difference_of_means():
    """[1,2,3] − [4,5,6]: d = −3, se = sqrt(2/3), Welch df = 4, so the 95% CI is −3 ± t(0.975, 4) se."""
    e = S.welch([1, 2, 3], [4, 5, 6])
    half = T4 * math.sqrt(2 / 3)
    assert e.estimate == -3.0 and e.df == pytest.approx(4.0)
    assert e.low == pytest.approx(-3 - half, rel=1e-6) and e.high == pytest.approx(-3 + half, rel=1e-6)
    assert e.n == (3, 3) and e.sd == pytest.approx(1.0) and e.se == pytest.approx(math.sqrt(2 / 3))
    assert e.method == "Welch t-test" and e.kind == "two-sample"


def test_welch_matches_scipy_at_every_level():
    """Estimate, p, df and the interval at 95% and (via at_level) 99.5% equal scipy's ttest_ind(equal_var=False)."""
    rng = np.random.default_rng(0)
    a, b = rng.normal(1, 1, 7), rng.normal(0, 2, 12)
    e = S.welch(a, b, unit="nats")
    ref = stats.ttest_ind(a, b, equal_var=False)
    assert e.estimate == pytest.approx(a.mean() - b.mean())
    assert e.p == pytest.approx(ref.pvalue) and e.df == pytest.approx(ref.df)
    for level in (0.95, 0.995):
        ci = ref.confidence_interval(level)
        got = e.at_level(level)
        assert (got.low, got.high) == pytest.approx((ci.low, ci.high), rel=1e-9)
        assert got.level == level and got.p == e.p


def test_welch_against_a_nonzero_null_tests_the_shifted_difference():
    """null = 0.5: the p of mean(a) − mean(b) = 0.5 (scipy on b + 0.5); the interval does not move."""
    rng = np.random.default_rng(1)
    a, b = rng.normal(1, 1, 8), rng.normal(0, 1, 8)
    e0, e1 = S.welch(a, b), S.welch(a, b, null=0.5)
    assert e1.p == pytest.approx(stats.ttest_ind(a, b + 0.5, equal_var=False).pvalue)
    assert (e1.low, e1.high) == pytest.approx((e0.low, e0.high))


def test_welch_drops_diverged_runs_and_gives_no_interval_below_two_values():
    """NaN/inf are dropped; a group with one finite value gives the difference with a NaN interval and p."""
    e = S.welch([1.0, np.nan, 3.0, np.inf], [4.0, 5.0, 6.0])
    assert e.n == (2, 3) and e.estimate == pytest.approx(2.0 - 5.0)
    e1 = S.welch([1.0, np.nan], [4.0, 5.0, 6.0])
    assert e1.estimate == -4.0 and math.isnan(e1.low) and math.isnan(e1.p) and not e1.has_interval
    assert math.isnan(S.welch([], [1.0, 2.0]).estimate)


def test_welch_with_no_spread_gives_an_exact_permutation_p_and_no_interval():
    """Identical values in each group are not certainty: the p of the permutation test over the
    C(5, 2) = 10 ways to split the runs (the observed split is the most extreme: 2 × 1/10) and no
    interval, at any level."""
    e = S.welch([2.0, 2.0, 2.0], [1.0, 1.0])
    assert e.estimate == 1.0 and e.p == pytest.approx(0.2) and not e.has_interval
    assert "exact permutation test" in e.method and "no interval" in e.method
    assert not e.at_level(0.99).has_interval


def test_paired_aligns_series_on_their_common_seeds_and_matches_ttest_rel():
    """Series indexed by seed, in different orders and with seeds the other lacks: the test uses the
    seed-matched pairs only, and equals scipy's ttest_rel (p, CI) on those pairs."""
    a = pd.Series([1.0, 2.5, 2.0, 4.0, 9.0], index=[0, 1, 2, 3, 7])
    b = pd.Series([0.5, 1.0, 3.0, 1.5, 8.0], index=[3, 2, 1, 0, 5])  # seed 5 and 7 unmatched
    e = S.paired(a, b, unit="nats")
    x, y = a.loc[[0, 1, 2, 3]].to_numpy(), b.loc[[0, 1, 2, 3]].to_numpy()
    ref = stats.ttest_rel(x, y)
    ci = ref.confidence_interval(0.95)
    assert e.n == 4 and e.estimate == pytest.approx(np.mean(x - y))
    assert e.p == pytest.approx(ref.pvalue) and (e.low, e.high) == pytest.approx((ci.low, ci.high))
    assert e.sd == pytest.approx(np.std(x - y, ddof=1)) and e.kind == "paired"
    assert e.at_level(0.9).low == pytest.approx(ref.confidence_interval(0.9).low)


def test_paired_drops_a_seed_whose_run_diverged_on_either_side():
    """A NaN in a or b removes that seed's pair."""
    a = pd.Series([1.0, np.nan, 3.0, 5.0], index=[0, 1, 2, 3])
    b = pd.Series([0.0, 1.0, 1.0, np.inf], index=[0, 1, 2, 3])
    e = S.paired(a, b)
    assert e.n == 2 and e.estimate == pytest.approx(1.5)


def test_paired_refuses_duplicate_seeds_and_unequal_lengths():
    """A seed must appear once per side; plain arrays pair by position and need the same length."""
    with pytest.raises(ValueError, match=r"a has duplicate seeds \[1\].*allowed"):
        S.paired(pd.Series([1.0, 2.0], index=[1, 1]), pd.Series([1.0, 2.0], index=[0, 1]))
    with pytest.raises(ValueError, match=r"a has 3 values, b has 2.*allowed"):
        S.paired([1, 2, 3], [1, 2])


def test_one_sample_matches_ttest_1samp_against_its_null():
    """Mean with a t-interval and p against null = 1, as scipy's ttest_1samp(popmean=1)."""
    x = np.array([0.8, 1.9, 2.4, 1.1, 3.0])
    e = S.one_sample(x, null=1.0)
    ref = stats.ttest_1samp(x, 1.0)
    ci = ref.confidence_interval(0.95)
    assert e.estimate == pytest.approx(x.mean()) and e.p == pytest.approx(ref.pvalue)
    assert (e.low, e.high) == pytest.approx((ci.low, ci.high)) and e.null == 1.0


# ---------------------------------------------------------------------------------------------
# Trends


def test_slope_matches_a_hand_computed_regression_and_linregress():
    """x = 0..3, y = [0, 1, 1, 3]: slope 4.5/5 = 0.9, SSE 0.7, se sqrt(0.35/5); p as linregress."""
    e = S.slope([0, 1, 2, 3], [0, 1, 1, 3])
    half = T2 * math.sqrt(0.07)
    assert e.estimate == pytest.approx(0.9) and e.df == 2
    assert e.low == pytest.approx(0.9 - half, rel=1e-6) and e.high == pytest.approx(0.9 + half, rel=1e-6)
    assert e.p == pytest.approx(stats.linregress([0, 1, 2, 3], [0, 1, 1, 3]).pvalue)
    assert e.sd == pytest.approx(math.sqrt(0.35))


def test_slope_on_log2_x_is_per_doubling():
    """y = 3 log2(B) + noise-free: slope 3 per doubling (a perfect fit: no interval, see below)."""
    b = np.array([8, 16, 32, 64, 128])
    e = S.slope(b, 3 * np.log2(b) + 1, logx=True)
    assert e.estimate == pytest.approx(3.0) and not e.has_interval


def _seed_grid(n_seeds, levels=(8, 16, 32, 64), slope=0.0, seed=0):
    """Rows (batch_size, seed, y): y = slope log2(B) + a per-seed offset + noise."""
    rng = np.random.default_rng(seed)
    b = np.tile(levels, n_seeds)
    s = np.repeat(np.arange(n_seeds), len(levels))
    y = slope * np.log2(b) + np.repeat(rng.normal(0, 3, n_seeds), len(levels)) + rng.normal(0, 1, len(b))
    return pd.DataFrame({"batch_size": b, "seed": s, "y": y})


def test_per_seed_slope_is_a_t_test_over_numpy_slopes_fitted_per_seed():
    """np.polyfit per seed on log2(B), then the mean slope with a t-interval over seeds."""
    df = _seed_grid(6, slope=-0.4).sample(frac=1.0, random_state=3)  # row order must not matter
    e = S.per_seed_slope(df, "batch_size", "y", logx=True, unit="nats")
    slopes = np.array([np.polyfit(np.log2(g.batch_size), g.y, 1)[0] for _, g in df.groupby("seed")])
    m, sd, n = slopes.mean(), slopes.std(ddof=1), len(slopes)
    half = stats.t.ppf(0.975, n - 1) * sd / math.sqrt(n)
    assert e.n == 6 and e.estimate == pytest.approx(m)
    assert (e.low, e.high) == pytest.approx((m - half, m + half))
    assert e.p == pytest.approx(stats.ttest_1samp(slopes, 0).pvalue) and e.sd == pytest.approx(sd)


def test_seed_slopes_are_numpy_slopes_indexed_by_seed_for_comparing_two_trends():
    """seed_slopes: np.polyfit per seed, indexed by seed; two budgets' trends compared seed by seed
    with paired() equal ttest_rel on those slopes."""
    a, b = _seed_grid(5, slope=-0.5, seed=1), _seed_grid(5, slope=0.0, seed=2)
    a["seed"] = a.seed + 10  # seeds 10..14
    sa = S.seed_slopes(a, "batch_size", "y", logx=True)
    ref = {s: np.polyfit(np.log2(g.batch_size), g.y, 1)[0] for s, g in a.groupby("seed")}
    assert list(sa.index) == [10, 11, 12, 13, 14] and sa.to_numpy() == pytest.approx([ref[s] for s in sa.index])
    sb = S.seed_slopes(b.assign(seed=b.seed + 10), "batch_size", "y", logx=True)
    e = S.paired(sa, sb, name="slope(fixed epochs) − slope(fixed updates)")
    assert e.p == pytest.approx(stats.ttest_rel(sa.to_numpy(), sb.to_numpy()).pvalue) and e.n == 5


def test_per_seed_slope_skips_a_seed_left_with_one_level():
    """A seed whose other runs diverged has no slope and does not count in n."""
    df = _seed_grid(4)
    df.loc[(df.seed == 2) & (df.batch_size != 8), "y"] = np.nan
    assert S.per_seed_slope(df, "batch_size", "y", logx=True).n == 3


def test_per_seed_slope_names_a_missing_column():
    """A column that is not in df: ValueError naming it and the columns there are."""
    with pytest.raises(ValueError, match=r"column 'lr' is not in df; allowed"):
        S.per_seed_slope(_seed_grid(3), "lr", "y")


def test_permutation_trend_is_exact_on_a_tiny_case_by_enumeration():
    """n = 5 (120 re-pairings < n_resamples): the p-value equals the two-sided p over every
    permutation of y, with Spearman's rho from scipy (ties in x get average ranks)."""
    x = np.array([1.0, 2.0, 2.0, 3.0, 4.0])
    y = np.array([0.3, 0.1, 0.5, 0.4, 0.9])
    e = S.permutation_trend(x, y)
    obs = stats.spearmanr(x, y).statistic
    null = np.array([stats.spearmanr(x, np.array(p)).statistic for p in itertools.permutations(y)])
    p_ref = min(1.0, 2 * min(np.mean(null >= obs - 1e-12), np.mean(null <= obs + 1e-12)))
    assert e.estimate == pytest.approx(obs) and e.p == pytest.approx(p_ref)
    assert math.isnan(e.low) and math.isnan(e.high) and e.n == 5


def test_permutation_trend_is_repeatable_with_its_seed():
    """The same seed gives the same p; the p approximates the exact one within resampling error."""
    df = _seed_grid(3, slope=-0.5, seed=4)
    p1 = S.permutation_trend(df.batch_size, df.y, n_resamples=2000, seed=7).p
    p2 = S.permutation_trend(df.batch_size, df.y, n_resamples=2000, seed=7).p
    assert p1 == p2 and 0 < p1 <= 1


def test_permutation_trend_without_variation_gives_no_p():
    """A constant y (or fewer than 3 pairs): NaN p, nothing to permute."""
    assert math.isnan(S.permutation_trend([1, 2, 3, 4], [1, 1, 1, 1]).p)
    assert math.isnan(S.permutation_trend([1, 2], [1, 2]).p)


# ---------------------------------------------------------------------------------------------
# Interaction, log-mean, several groups


def test_interaction_is_the_hand_computed_difference_of_differences():
    """Means 2, 5, 3, 4: (2 − 5) − (3 − 4) = −2. Each group has variance 1 and 3 values, so
    se = sqrt(4/3); equal variances and sizes give df = 4·2 = 8."""
    e = S.interaction([1, 2, 3], [4, 5, 6], [2, 3, 4], [3, 4, 5])
    se = math.sqrt(4 / 3)
    half = stats.t.ppf(0.975, 8) * se
    assert e.estimate == pytest.approx(-2.0) and e.se == pytest.approx(se) and e.df == pytest.approx(8.0)
    assert (e.low, e.high) == pytest.approx((-2 - half, -2 + half))
    assert e.p == pytest.approx(2 * stats.t.sf(2 / se, 8)) and e.n == (3, 3, 3, 3)


def test_interaction_with_unequal_spreads_uses_welch_satterthwaite_df():
    """df = (Σ v_i)^2 / Σ v_i^2/(n_i − 1), v_i = var_i / n_i, against a NumPy recomputation."""
    rng = np.random.default_rng(2)
    g = [rng.normal(0, s, n) for s, n in ((1, 4), (2, 6), (0.5, 5), (3, 10))]
    e = S.interaction(*g)
    v = np.array([x.var(ddof=1) / len(x) for x in g])
    df = v.sum() ** 2 / np.sum(v**2 / (np.array([4, 6, 5, 10]) - 1))
    assert e.df == pytest.approx(df) and e.se == pytest.approx(math.sqrt(v.sum()))


def test_log_mean_is_the_geometric_mean_and_its_interval_never_goes_below_zero():
    """[1, 2, 4, 8]: geometric mean 2^1.5; interval exp(mean log ± t se log). Widely spread
    positive values still give low > 0; non-positive values are dropped."""
    e = S.log_mean([1, 2, 4, 8, 0.0, -1.0, np.nan])
    logs = np.log([1, 2, 4, 8])
    half = stats.t.ppf(0.975, 3) * logs.std(ddof=1) / 2
    assert e.estimate == pytest.approx(2**1.5) and e.n == 4
    assert (e.low, e.high) == pytest.approx((math.exp(logs.mean() - half), math.exp(logs.mean() + half)))
    assert e.p == pytest.approx(stats.ttest_1samp(logs, 0.0).pvalue)
    wide = S.log_mean([1e-3, 1e3, 5.0])
    assert 0 < wide.low < wide.estimate < wide.high
    assert wide.at_level(0.9999).low > 0


def test_log_mean_refuses_a_non_positive_null():
    """null is a ratio or scale: it must be > 0."""
    with pytest.raises(ValueError, match=r"null=0.*allowed: a finite number > 0"):
        S.log_mean([1, 2], null=0)


def test_omnibus_matches_f_oneway_and_kruskal():
    """F and H with their p equal scipy's; non-finite values are dropped first."""
    groups = {"a": [1.0, 2.0, 3.0, np.nan], "b": [2.0, 4.0, 5.0], "c": [7.0, 8.0, 6.5]}
    clean = [[1.0, 2.0, 3.0], [2.0, 4.0, 5.0], [7.0, 8.0, 6.5]]
    f, h = S.omnibus(groups), S.omnibus(groups, method="kruskal")
    assert (f.estimate, f.p) == pytest.approx(tuple(stats.f_oneway(*clean)))
    assert (h.estimate, h.p) == pytest.approx(tuple(stats.kruskal(*clean)))
    assert f.n == (3, 3, 3) and math.isnan(f.low)
    with pytest.raises(ValueError, match=r"method='t'.*allowed: 'anova', 'kruskal'"):
        S.omnibus(groups, method="t")


def test_pairwise_gives_every_pair_or_every_group_against_the_reference():
    """3 groups: 3 pairs in dict order (first − second); with a reference, 2 differences against it."""
    groups = {"adam": [1, 2, 3], "sgd": [4, 5, 6], "rmsprop": [2, 3, 5]}
    pairs = S.pairwise(groups, unit="nats", metric="test ELBO")
    assert [e.name for e in pairs] == [
        "test ELBO(adam) − test ELBO(sgd)",
        "test ELBO(adam) − test ELBO(rmsprop)",
        "test ELBO(sgd) − test ELBO(rmsprop)",
    ]
    assert pairs[0].estimate == S.welch([1, 2, 3], [4, 5, 6]).estimate
    ref = S.pairwise(groups, reference="sgd")
    assert [e.name for e in ref] == ["mean(adam) − mean(sgd)", "mean(rmsprop) − mean(sgd)"]
    with pytest.raises(ValueError, match=r"reference='lamb' is not a group"):
        S.pairwise(groups, reference="lamb")


# ---------------------------------------------------------------------------------------------
# Holm


def test_holm_matches_a_hand_computed_example():
    """p = (0.01, 0.04, 0.03, 0.005), m = 4. Sorted: 0.005, 0.01, 0.03, 0.04; adjusted
    max-cumulative of 4·0.005, 3·0.01, 2·0.03, 1·0.04 = 0.02, 0.03, 0.06, 0.06. Rejected while
    p_(i) <= 0.05/(4 − i): 0.005 <= 0.0125, 0.01 <= 0.0167, not 0.03 > 0.025 (k = 2). Levels:
    1 − 0.05/4, 1 − 0.05/3, then 1 − 0.05/2 for the rest."""
    r = S.holm([0.01, 0.04, 0.03, 0.005])
    assert r.p_adjusted == pytest.approx([0.03, 0.06, 0.06, 0.02])
    assert r.level == pytest.approx([1 - 0.05 / 3, 0.975, 0.975, 1 - 0.05 / 4])
    assert r.rejected.tolist() == [True, False, False, True]


def test_holm_five_values_with_an_untestable_one_left_out_of_m():
    """p = (0.014, NaN, 0.2, 0.001, 0.04, 0.012): m = 5. Sorted 0.001, 0.012, 0.014, 0.04, 0.2:
    adjusted 0.005, 0.048, 0.048 (3·0.014 = 0.042 < 0.048), 0.08, 0.2; rejected 0.001 <= 0.01,
    0.012 <= 0.0125, 0.014 <= 0.0167, not 0.04 > 0.025 (k = 3); NaN stays NaN."""
    r = S.holm([0.014, np.nan, 0.2, 0.001, 0.04, 0.012])
    assert r.p_adjusted[[0, 2, 3, 4, 5]] == pytest.approx([0.048, 0.2, 0.005, 0.08, 0.048])
    assert math.isnan(r.p_adjusted[1]) and math.isnan(r.level[1]) and not r.rejected[1]
    assert r.level[[3, 5, 0, 4, 2]] == pytest.approx([0.99, 0.9875, 1 - 0.05 / 3, 0.975, 0.975])
    assert r.rejected.tolist() == [True, False, False, True, False, True]


def test_holm_levels_make_each_interval_agree_with_the_step_down_decision():
    """For Welch tests, the interval at Holm's level excludes 0 exactly for the rejected ones, and
    p_adjusted < alpha exactly then."""
    rng = np.random.default_rng(5)
    effects = [S.welch(rng.normal(d, 1, 10), rng.normal(0, 1, 10)) for d in (0.0, 0.3, 0.8, 1.2, 1.6, 2.0)]
    r = S.holm([e.p for e in effects])
    assert 0 < r.rejected.sum() < len(effects)
    for e, lev, rej, padj in zip(effects, r.level, r.rejected, r.p_adjusted, strict=True):
        adj = e.at_level(lev)
        assert (adj.low > 0 or adj.high < 0) == rej == (padj <= 0.05)


def test_holm_refuses_p_values_outside_zero_one():
    """A p of 1.2 is a bug upstream: ValueError naming the values."""
    with pytest.raises(ValueError, match=r"pvalues=.*1.2.*allowed"):
        S.holm([0.1, 1.2])


def test_every_interval_excludes_the_null_exactly_when_p_is_below_one_minus_level():
    """The duality Holm's levels rely on, for every test with an interval."""
    rng = np.random.default_rng(6)
    a, b, c, d = (rng.normal(m, 1, 8) for m in (0.9, 0, 0.2, 0))
    df = _seed_grid(5, slope=0.3, seed=6)
    results = [
        S.welch(a, b),
        S.paired(pd.Series(a), pd.Series(b)),
        S.one_sample(a, null=0.5),
        S.slope(df.batch_size, df.y, logx=True),
        S.per_seed_slope(df, "batch_size", "y", logx=True),
        S.interaction(a, b, c, d),
        S.log_mean(np.exp(a), null=1.5),
    ]
    for e in results:
        for level in (0.8, 0.95, 0.99, 0.999):
            adj = e.at_level(level)
            assert (adj.low > e.null or adj.high < e.null) == (e.p < 1 - level), (e.name, level)


# ---------------------------------------------------------------------------------------------
# Power


@pytest.mark.parametrize(
    ("delta", "kind", "n"),
    [(1.0, "two-sample", 17), (0.5, "two-sample", 64), (0.5, "one-sample", 34), (0.5, "paired", 34)],
)
def test_seeds_for_power_matches_the_textbook_sample_sizes(delta, kind, n):
    """Cohen / G*Power: two-sided alpha 0.05, power 0.8: d = 1 → 17 per group, d = 0.5 → 64,
    one-sample (or paired) d = 0.5 → 34; and one fewer seed falls short of 80%."""
    assert S.seeds_for_power(delta, 1.0, kind=kind) == n
    assert S.power(delta, 1.0, n, kind=kind) >= 0.8 > S.power(delta, 1.0, n - 1, kind=kind)


def test_three_seeds_per_group_have_little_power_for_a_one_sd_effect():
    """The audit's point: 3 vs 3 detects a 1-SD difference about 16% of the time (pooled t)."""
    assert 0.1 < S.power(1.0, 1.0, 3) < 0.2


def test_detectable_effect_inverts_the_power_function():
    """At the detectable effect the power is exactly 0.8; it scales with sd."""
    for n, kind in ((10, "two-sample"), (10, "paired"), (6, "interaction")):
        d = S.detectable_effect(n, 2.0, kind=kind)
        assert S.power(d, 2.0, n, kind=kind) == pytest.approx(0.8, abs=1e-6)
        assert S.detectable_effect(n, 1.0, kind=kind) == pytest.approx(d / 2)


@pytest.mark.parametrize(("df", "alpha"), [(4, 0.05 / 4), (2, 0.05 / 2), (5, 0.05 / 3), (9, 0.05 / 5), (20, 0.05 / 9)])
def test_detectable_effect_at_holm_adjusted_levels_is_finite_where_scipys_nct_cdf_returns_nan(df, alpha):
    """scipy's nct.cdf is NaN far in its lower tail (nct.cdf(-4.31, 4, 8)), which made the power root-finder
    fail at Holm levels with few seeds; the power's lower tail is taken by reflection (nct.sf at -ncp), so
    the detectable effect exists and the power there is 0.8."""
    e = S.Estimate("x", 0.1, 0.0, 0.2, 0.2, se=0.05, df=float(df))
    d = e.detectable(alpha=alpha)
    assert math.isfinite(d) and d > 0
    assert S._t_power(d / 0.05, df, alpha) == pytest.approx(0.8, abs=1e-6)


def test_power_agrees_with_a_monte_carlo_estimate():
    """Two-sample, n = 17, d = 1: the fraction of 4000 simulated t-tests with p < 0.05 matches
    power() within Monte-Carlo error (about 0.81)."""
    rng = np.random.default_rng(7)
    x, y = rng.normal(1, 1, (4000, 17)), rng.normal(0, 1, (4000, 17))
    hit = np.mean(stats.ttest_ind(x, y, axis=1).pvalue < 0.05)
    want = S.power(1.0, 1.0, 17)
    assert abs(hit - want) < _mc_bound(4000, want)


def test_interaction_power_matches_a_monte_carlo_estimate():
    """kind 'interaction' (four groups of n): simulated interactions at n = 12, Δ = 1.2 SD."""
    rng = np.random.default_rng(8)
    g = rng.normal(0, 1, (1500, 4, 12))
    g[:, 0] += 1.2
    v = g.var(axis=2, ddof=1) / 12
    t = (g[:, 0].mean(1) - g[:, 1].mean(1) - g[:, 2].mean(1) + g[:, 3].mean(1)) / np.sqrt(v.sum(1))
    df = v.sum(1) ** 2 / np.sum(v**2 / 11, axis=1)
    hit = np.mean(2 * stats.t.sf(np.abs(t), df) < 0.05)
    want = S.power(1.2, 1.0, 12, kind="interaction")
    assert abs(hit - want) < _mc_bound(1500, want)


@pytest.mark.parametrize(
    ("kwargs", "match"),
    [
        ({"delta": 0.0, "sd": 1.0}, r"delta=0.0 is not allowed; allowed: a finite number > 0"),
        ({"delta": 1.0, "sd": -1.0}, r"sd=-1.0 is not allowed"),
        ({"delta": 1.0, "sd": 1.0, "kind": "welch"}, r"kind='welch' is not allowed; allowed: 'two-sample'"),
        ({"delta": 1.0, "sd": 1.0, "power": 0.01}, r"power=0.01 is not allowed"),
        ({"delta": 1.0, "sd": 1.0, "alpha": 1.5}, r"alpha=1.5 is not allowed"),
    ],
)
def test_seeds_for_power_names_the_bad_parameter(kwargs, match):
    """Each invalid argument: ValueError naming it, its value and what is allowed."""
    with pytest.raises(ValueError, match=match):
        S.seeds_for_power(**kwargs)


def test_at_level_refuses_a_level_outside_zero_one():
    """level = 95 (a percentage) is a mistake: ValueError."""
    with pytest.raises(ValueError, match=r"level=95 is not allowed; allowed: a number in \(0, 1\)"):
        S.welch([1, 2], [3, 4]).at_level(95)


# ---------------------------------------------------------------------------------------------
# Formatting


def test_fmt_writes_numbers_for_prose():
    """Three significant digits, a true minus sign, thousands separators from 10^digits up,
    '×10^' for tiny numbers, and 'n/a' for every non-finite value, NumPy's float32 and
    float16 included (the former analysis.fmt printed 'nan' / 'inf' for those)."""
    assert S.fmt(-0.31234) == "−0.312" and S.fmt(12345.6) == "12,346" and S.fmt(0) == "0"
    assert S.fmt(0.0001234) == "0.000123" and S.fmt(1.5e-12) == "1.5×10⁻¹²" and S.fmt(0.31234, 2) == "0.31"
    for missing in (None, float("nan"), -math.inf, np.float32("nan"), np.float16("inf")):
        assert S.fmt(missing) == "n/a"


def test_fmt_interval_rounds_to_two_significant_digits_of_the_half_width():
    """Half-width 0.65 → 2 decimals; 3.2 → 1 decimal; 1300 → hundreds; a true minus sign."""
    assert S.fmt_interval(-1.2345, -1.8845, -0.5845, 0.95, "nats") == "−1.23 nats (95% CI −1.88 to −0.58)"
    assert S.fmt_interval(10.04, 6.84, 13.24, 0.9875) == "10.0 (98.75% CI 6.8 to 13.2)"
    assert S.fmt_interval(41234.0, 39934.0, 42534.0) == "41,200 (95% CI 39,900 to 42,500)"
    assert S.fmt_interval(0.5, np.nan, np.nan) == "0.5 (no interval)"


# ---------------------------------------------------------------------------------------------
# False-positive rates under the null (Monte Carlo)


@pytest.mark.slow
@pytest.mark.parametrize("n", [3, 10])
def test_welch_false_positive_rate_under_the_null(n):
    """2000 pairs of normal groups with equal means: at n = 10 the rate is 5% within MC error. At
    n = 3 Welch is known to be conservative (its df approximation: 3.6% from 400,000 simulations
    with scipy), so there the rate is checked against 3.6% and must not exceed 5%."""
    rng = np.random.default_rng(10 + n)
    x = rng.normal(size=(2000, 2, n))
    rate = np.mean([S.welch(x[i, 0], x[i, 1]).p < 0.05 for i in range(len(x))])
    nominal = 0.05 if n == 10 else 0.0356
    assert abs(rate - nominal) < _mc_bound(2000, nominal)
    assert rate < 0.05 + _mc_bound(2000)


@pytest.mark.slow
@pytest.mark.parametrize("n", [3, 10])
def test_paired_false_positive_rate_under_the_null_with_a_shared_seed_effect(n):
    """Seed effects (SD 3) shared by both runs of a seed plus independent noise: the paired test
    keeps its 5% rate (the shared part cancels)."""
    rng = np.random.default_rng(20 + n)
    shared = rng.normal(0, 3, (2000, 1, n))
    x = shared + rng.normal(size=(2000, 2, n))
    rate = np.mean([S.paired(x[i, 0], x[i, 1]).p < 0.05 for i in range(len(x))])
    assert abs(rate - 0.05) < _mc_bound(2000)


@pytest.mark.slow
@pytest.mark.parametrize("n", [3, 10])
def test_per_seed_slope_false_positive_rate_under_the_null(n):
    """No trend, 4 batch sizes, n seeds with a shared per-seed offset: the per-seed slope test
    rejects 5% of 1000 datasets within MC error (even with 3 values per level)."""
    rate = np.mean(
        [S.per_seed_slope(_seed_grid(n, seed=1000 * n + i), "batch_size", "y", logx=True).p < 0.05 for i in range(1000)]
    )
    assert abs(rate - 0.05) < _mc_bound(1000)


@pytest.mark.parametrize("n", [3, 10])
def test_permutation_trend_false_positive_rate_under_the_null(n):
    """No trend, independent runs at 4 batch sizes with n each: 500 datasets, 499 permutations each
    (slow, so a coarse bound): the rate is 5% within MC error."""
    levels = np.repeat([8, 16, 32, 64], n)
    rng = np.random.default_rng(30 + n)
    rate = np.mean(
        [
            S.permutation_trend(levels, rng.normal(size=len(levels)), n_resamples=499, seed=i).p < 0.05
            for i in range(500)
        ]
    )
    assert abs(rate - 0.05) < _mc_bound(500)


@pytest.mark.slow
@pytest.mark.parametrize("n", [3, 10])
def test_omnibus_then_holm_keeps_the_family_wise_error_of_five_groups(n):
    """Five groups with equal means: ANOVA at 5%, and only when it rejects, all 10 Welch pairs under
    Holm. A family-wise error needs the gate, so the rate is at most the ANOVA's 5% (MC bound)."""
    rng = np.random.default_rng(40 + n)
    errors = 0
    for _ in range(1500):
        groups = {f"g{j}": rng.normal(size=n) for j in range(5)}
        if S.omnibus(groups).p < 0.05:
            errors += bool(S.holm([e.p for e in S.pairwise(groups)]).rejected.any())
    assert errors / 1500 < 0.05 + _mc_bound(1500)


@pytest.mark.slow
def test_holm_keeps_the_family_wise_error_when_one_group_really_differs():
    """A partial null, where the ANOVA gate gives no protection: group 0 is 3 SD away, groups 1-4
    are equal (6 true-null pairs), n = 10. Holm over all 10 pairs falsely rejects a true-null pair in
    at most 5% of 400 datasets (coarse MC bound); unadjusted tests would in about a fifth."""
    rng = np.random.default_rng(50)
    holm_err = raw_err = 0
    null_pairs = [i for i, (a, b) in enumerate(itertools.combinations(range(5), 2)) if a > 0]
    for _ in range(400):
        groups = {f"g{j}": rng.normal(3.0 if j == 0 else 0.0, 1.0, 10) for j in range(5)}
        p = np.array([e.p for e in S.pairwise(groups)])
        holm_err += bool(S.holm(p).rejected[null_pairs].any())
        raw_err += bool((p[null_pairs] < 0.05).any())
    assert holm_err / 400 < 0.05 + _mc_bound(400)
    assert raw_err / 400 > 0.1


# ---------------------------------------------------------------------------------------------
# Zero spread is not certainty


def test_five_seeds_each_gaining_exactly_two_units_give_the_exact_sign_test_p_not_zero():
    """Five identical differences of 2 active units: the exact sign-flip test gives 2/2⁵ = 0.0625 (the
    exact sign test's p, scipy's binomtest), never p = 0, and no interval of zero width."""
    for e in (S.one_sample([2, 2, 2, 2, 2]), S.paired([5, 6, 7, 8, 9], [3, 4, 5, 6, 7])):
        assert e.estimate == 2.0 and e.p == pytest.approx(stats.binomtest(5, 5).pvalue) == 0.0625
        assert not e.has_interval and "sign-flip" in e.method
        assert "no interval" in e.format()


def test_ten_identical_differences_are_significant_by_the_sign_flip_test_and_still_have_no_interval():
    """2/2¹⁰ = 0.00195: ten seeds agreeing is evidence, but the size of the effect is not shown."""
    e = S.paired(pd.Series(np.arange(10.0) + 2.0), pd.Series(np.arange(10.0)))
    assert e.p == pytest.approx(2 / 2**10) and not e.has_interval and e.n == 10


def test_all_zero_differences_give_p_one_and_no_interval():
    """The advice check's case: every difference set to 0 says nothing about how large a difference
    could be: p = 1, no interval."""
    e = S.paired([1.0, 2.0, 3.0], [1.0, 2.0, 3.0])
    assert e.estimate == 0 and e.p == pytest.approx(1.0) and not e.has_interval


def test_a_spread_below_half_the_resolution_counts_as_no_spread():
    """Counts (resolution 1) that differ by one unit in one seed of ten: the t-test would give p ≈ 6e-9,
    the sign-flip test gives 2/2¹⁰; without a resolution the t-test stands."""
    x = [2.0] * 9 + [3.0]
    assert S.one_sample(x).has_interval and S.one_sample(x).p < 1e-8
    e = S.one_sample(x, resolution=1)
    assert e.p == pytest.approx(2 / 2**10) and not e.has_interval
    with pytest.raises(ValueError, match=r"resolution=-1 is not allowed"):
        S.one_sample(x, resolution=-1)


def test_a_perfect_fit_gives_the_exact_pairing_p_and_no_interval():
    """log2(best rate) on a doubling grid rises exactly one step per two doublings: OLS residuals are
    zero, so the slope's p is the permutation test's (5 points, monotone: 2/5! both sides) and no
    interval; per-seed slopes all equal give the sign-flip p."""
    e = S.slope([16, 32, 64, 128, 256], [-10, -9.5, -9, -8.5, -8], logx=True)
    assert e.estimate == pytest.approx(0.5) and not e.has_interval
    assert e.p == pytest.approx(2 / 120)
    df = pd.DataFrame([dict(seed=s, b=b, y=0.5 * math.log2(b)) for s in range(6) for b in (16, 64, 256)])
    ps = S.per_seed_slope(df, "b", "y", logx=True)
    assert ps.estimate == pytest.approx(0.5) and ps.p == pytest.approx(2 / 2**6) and not ps.has_interval


def test_an_interaction_of_groups_without_spread_has_no_test():
    """Four constant groups: no t reference and no exact test here, so no p (not testable), no interval."""
    e = S.interaction([1.0, 1.0], [0.0, 0.0], [2.0, 2.0], [0.0, 0.0])
    assert e.estimate == -1.0 and not e.tested and not e.has_interval and "no test" in e.method


def test_no_interval_formats_as_no_spread_never_as_a_zero_width_interval():
    """fmt_interval of a degenerate interval says so instead of printing '0 (0 to 0)'."""
    assert S.fmt_interval(0.0, 0.0, 0.0, 0.99, "nats") == "0 nats (no spread: no interval)"


@pytest.mark.parametrize("df", [0.5, 1, 1.5, 2, 4, 9, 30])
@pytest.mark.parametrize("ncp", [-8.0, -1.0, 0.0, 2.5, 8.0])
def test_the_t_tests_power_is_scipys_noncentral_t_tail_sum_also_far_in_a_tail(df, ncp):
    tc = stats.t.ppf(1 - 0.0125 / 2, df)
    reference = stats.nct.sf(tc, df, ncp) + stats.nct.sf(tc, df, -ncp)
    assert S._t_power(ncp, df, 0.0125) == pytest.approx(reference, abs=1e-12)
