"""Statistical tests for the book's verdicts, all returning one result type, ``Estimate``.

    from vae_utils import stats as S
    e = S.welch(df[df.optimizer == "adam"].test_elbo, df[df.optimizer == "sgd"].test_elbo,
                name="test ELBO(adam) − test ELBO(sgd)", unit="nats")
    e.estimate, e.low, e.high, e.p        # mean difference, 95% CI, two-sided p against 0
    e.at_level(0.99)                      # the same test with a 99% interval (for Holm, see holm)
    S.per_seed_slope(df, "batch_size", "test_elbo", logx=True)   # the preferred trend test
    S.paired(S.seed_slopes(ep, "batch_size", "test_elbo", logx=True),   # do two trends differ?
             S.seed_slopes(up, "batch_size", "test_elbo", logx=True))
    S.seeds_for_power(delta=0.5, sd=0.4)  # seeds per group to detect 0.5 nats at 80% power

Every interval is a two-sided ``level`` interval from a t distribution (Welch–Satterthwaite
degrees of freedom for differences of independent means), dual to the two-sided p-value: the
``level`` interval excludes ``null`` exactly when p < 1 − level. That duality is what lets
``holm`` hand each test a confidence level consistent with its step-down decision.

Zero spread is not certainty. When the values have no spread (identical per-seed differences, a
perfect fit), or a spread below half the measurement's ``resolution`` (1 for counts such as active
units; the step of a grid), the t-test's p would be 0 and its interval zero-wide. Then the
p-value comes from an exact permutation test instead (sign flips of the values for one sample or
seed-matched pairs, re-assignment of the runs for two groups, re-pairing for a slope; five seeds
that each gain exactly 2 units give p = 2/2⁵ = 0.0625, an exact sign test), and there is no
interval (NaN ``low``/``high``): with no spread the data cannot say how far the mean might lie
from what was seen, so a verdict on it decides by p alone and never reads "equivalent".

The independent unit is the seed: runs sharing a seed share initial weights and data order, so
seed-matched differences (``paired``) and per-seed slopes (``per_seed_slope``) remove that
common noise and stay valid with few values per level. Every function drops non-finite values
(diverged runs) and returns a result with a NaN interval and NaN p when too few values remain,
rather than raising. Nothing here imports TensorFlow.
"""

from __future__ import annotations

import dataclasses
import itertools
import math
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from typing import NamedTuple

import numpy as np
import pandas as pd
from scipy import optimize, special, stats

from ..publish.numbers import MINUS, fmt, fmt_interval, fmt_level, fmt_p  # noqa: F401 (re-exported)

__all__ = [
    "Estimate",
    "HolmResult",
    "KINDS",
    "fmt",
    "fmt_interval",
    "welch",
    "paired",
    "one_sample",
    "slope",
    "per_seed_slope",
    "bend",
    "seed_slopes",
    "permutation_trend",
    "with_divergence",
    "interaction",
    "omnibus",
    "pairwise",
    "log_mean",
    "holm",
    "power",
    "seeds_for_power",
    "detectable_effect",
]

NAN = math.nan
# Designs for the power functions: how the standard error and degrees of freedom grow with n
# (seeds per group). "interaction" is a difference of differences of four groups of n.
KINDS = ("two-sample", "one-sample", "paired", "interaction")


# ---------------------------------------------------------------------------------------------
# The result type


@dataclass(frozen=True)
class Estimate:
    """A measured effect with its ``level`` interval and two-sided p-value against ``null``.

    ``se`` and ``df`` (the t reference: estimate ± t(df) se) let ``at_level`` recompute the
    interval at another level. ``scale`` is "log" for ``log_mean``: se and the t-interval live
    on the natural-log scale and the interval is mapped back with exp. ``sd`` is the spread used
    for power (pooled within-group SD, or SD of differences / per-seed slopes), ``kind`` the
    design for ``seeds_for_power`` ("" when seeds cannot be counted, e.g. a pooled OLS slope).
    A result with a p-value but no interval (a permutation trend, an omnibus test) has NaN
    ``low``/``high``/``se``.
    """

    name: str  # what was measured, in words with units, e.g. "test ELBO(adam) − test ELBO(sgd)"
    estimate: float
    low: float
    high: float
    p: float  # two-sided, against null
    null: float = 0.0
    n: int | tuple[int, ...] = 0  # observations, or group sizes
    sd: float = NAN
    level: float = 0.95
    method: str = ""
    unit: str = ""
    se: float = NAN
    df: float = NAN
    scale: str = "linear"  # "linear" | "log"
    kind: str = ""  # one of KINDS, or "" (no seed count)
    note: str = ""  # a sentence for the verdict: why there is no test, or what the test counted

    @property
    def has_interval(self) -> bool:
        return all(math.isfinite(v) for v in (self.estimate, self.low, self.high))

    @property
    def tested(self) -> bool:
        """True when there is a p-value to judge (with or without an interval)."""
        return math.isfinite(self.p)

    @property
    def n_min(self) -> int:
        """The smallest group size (the number of observations for a one-group result)."""
        return int(min(self.n)) if isinstance(self.n, tuple) and self.n else int(self.n or 0)

    def at_level(self, level: float) -> Estimate:
        """The same test with its interval at ``level`` (the estimate and p do not change)."""
        _check_level(level)
        if not (math.isfinite(self.se) and math.isfinite(self.estimate) and self.df > 0):
            return dataclasses.replace(self, level=level)
        half = float(stats.t.ppf(0.5 + level / 2, self.df)) * self.se
        if self.scale == "log":
            centre = math.log(self.estimate)
            return dataclasses.replace(self, low=math.exp(centre - half), high=math.exp(centre + half), level=level)
        return dataclasses.replace(self, low=self.estimate - half, high=self.estimate + half, level=level)

    def detectable(self, alpha: float = 0.05, power: float = 0.8) -> float:
        """The smallest true effect a two-sided t-test with this se and df detects with ``power``
        at ``alpha`` (in the estimate's units; on a log scale, as a ratio minus the null). NaN
        without a standard error."""
        if not (math.isfinite(self.se) and self.df > 0):
            return NAN
        d = _ncp_for_power(self.df, alpha, power) * self.se
        return self.null * math.expm1(d) if self.scale == "log" else d

    def format(self, unit: bool = True) -> str:
        """'−1.2 nats (95% CI −1.9 to −0.5)': rounded to what the interval supports."""
        return fmt_interval(self.estimate, self.low, self.high, self.level, self.unit if unit else "")

    def __str__(self) -> str:
        return f"{self.name}: {self.format()}, p = {fmt_p(self.p)} ({self.method})"


def _empty(name, n, level, method, unit, null=0.0, estimate=NAN, kind="", scale="linear") -> Estimate:
    return Estimate(name, estimate, NAN, NAN, NAN, null, n, NAN, level, method, unit, kind=kind, scale=scale)


# ---------------------------------------------------------------------------------------------
# Formatting


# ---------------------------------------------------------------------------------------------
# Input checks


def _check_level(level) -> None:
    if not (isinstance(level, int | float) and 0 < level < 1):
        raise ValueError(f"level={level!r} is not allowed; allowed: a number in (0, 1)")


def _finite(values) -> np.ndarray:
    a = np.asarray(values.to_numpy() if isinstance(values, pd.Series) else values, dtype=np.float64).ravel()
    return a[np.isfinite(a)]


def _t_parts(estimate: float, se: float, df: float, null: float, level: float) -> tuple[float, float, float]:
    """(low, high, p) of a t-test; a zero standard error gives no interval and no p (NaN): no
    spread is not certainty (callers with an exact test use it instead)."""
    if not se > 0:
        return NAN, NAN, NAN
    half = float(stats.t.ppf(0.5 + level / 2, df)) * se
    p = float(2 * stats.t.sf(abs(estimate - null) / se, df))
    return estimate - half, estimate + half, p


# ---------------------------------------------------------------------------------------------
# No spread: exact permutation tests instead of a t-test (module docstring)

N_RESAMPLES = 9999  # permutation tests are exact up to this many arrangements, else seeded Monte Carlo
NO_INTERVAL = "no spread, so no interval"


def _no_spread(sd: float, values: np.ndarray, resolution: float) -> bool:
    """True when ``sd`` is zero, float noise (below 1e-12, absolute or relative to the values), or
    below half the measurement's ``resolution``."""
    scale = float(np.max(np.abs(values))) if len(values) else 0.0
    return not sd > max(resolution / 2, 1e-12 * scale, 1e-12)


def _check_resolution(resolution) -> None:
    if not (isinstance(resolution, int | float) and math.isfinite(resolution) and resolution >= 0):
        raise ValueError(f"resolution={resolution!r} is not allowed; allowed: a finite number >= 0 (the step)")


def _exact_words(res_null_distribution: np.ndarray, what: str) -> str:
    exact = len(res_null_distribution) < N_RESAMPLES
    return f"{'exact ' if exact else ''}{what}{'' if exact else f' ({N_RESAMPLES:,} resamples)'}; {NO_INTERVAL}"


def _mean_last(x, axis=-1):
    return np.mean(x, axis=axis)


def _sign_flip(x: np.ndarray, null: float, level, name, unit, method, kind) -> Estimate:
    """mean(x) with the two-sided p of an exact sign-flip test of x − null and no interval."""
    res = stats.permutation_test(
        (x - null,), _mean_last, permutation_type="samples", vectorized=True, n_resamples=N_RESAMPLES,
        alternative="two-sided", rng=np.random.default_rng(0),
    )  # fmt: skip
    words = _exact_words(res.null_distribution, f"{method.split(',')[0]}: sign-flip permutation test")
    sd = float(x.std(ddof=1))
    return Estimate(name, float(x.mean()), NAN, NAN, float(res.pvalue), null, len(x), sd, level, words, unit, kind=kind)


def _diff_of_means(a, b, axis=-1):
    return np.mean(a, axis=axis) - np.mean(b, axis=axis)


def _exact_two_sample(a, b, d, sd, null, level, name, unit) -> Estimate:
    """mean(a) − mean(b) with the two-sided p of a permutation test of the runs' groups (a shifted
    by null) and no interval."""
    res = stats.permutation_test(
        (a - null, b), _diff_of_means, permutation_type="independent", vectorized=True, n_resamples=N_RESAMPLES,
        alternative="two-sided", rng=np.random.default_rng(0),
    )  # fmt: skip
    words = _exact_words(res.null_distribution, "permutation test of the difference of means")
    return Estimate(name, d, NAN, NAN, float(res.pvalue), null, (len(a), len(b)), sd, level, words, unit,
                    kind="two-sample")  # fmt: skip


def _se_from_ci(low: float, high: float, df: float, level: float) -> float:
    return (high - low) / (2 * float(stats.t.ppf(0.5 + level / 2, df)))


# ---------------------------------------------------------------------------------------------
# Means and differences


def welch(
    a, b, level: float = 0.95, null: float = 0.0, name: str = "", unit: str = "", resolution: float = 0.0
) -> Estimate:
    """mean(a) − mean(b) with a Welch t-interval and p (``scipy.stats.ttest_ind``, unequal
    variances). Non-finite values are dropped; fewer than 2 finite values in a group give a NaN
    interval and p. ``sd`` is the pooled SD sqrt((var a + var b) / 2), ``kind`` "two-sample".
    With no spread beyond ``resolution``: a permutation test and no interval (module docstring)."""
    _check_level(level)
    _check_resolution(resolution)
    a, b = _finite(a), _finite(b)
    name = name or f"mean(a) {MINUS} mean(b)"
    method = "Welch t-test"
    n = (len(a), len(b))
    if min(n) == 0:
        return _empty(name, n, level, method, unit, null, kind="two-sample")
    d = float(a.mean() - b.mean())
    if min(n) < 2:
        return _empty(name, n, level, method, unit, null, estimate=d, kind="two-sample")
    va, vb = float(a.var(ddof=1)), float(b.var(ddof=1))
    sd = math.sqrt((va + vb) / 2)
    if _no_spread(sd, np.concatenate([a, b]), resolution):
        return _exact_two_sample(a, b, d, sd, null, level, name, unit)
    res = stats.ttest_ind(a, b + null, equal_var=False)  # shifting b tests mean(a) − mean(b) = null
    ci = res.confidence_interval(level)
    low, high = float(ci.low) + null, float(ci.high) + null
    se = _se_from_ci(low, high, float(res.df), level)
    return Estimate(
        name, d, low, high, float(res.pvalue), null, n, sd, level, method, unit, se, float(res.df), kind="two-sample"
    )


def _mean_test(x: np.ndarray, null, level, name, unit, method, kind, resolution: float = 0.0) -> Estimate:
    """One-sample t-test of mean(x) against null (``scipy.stats.ttest_1samp``); with no spread
    beyond ``resolution``, an exact sign-flip test and no interval."""
    n = len(x)
    if len(x) == 0:
        return _empty(name, n, level, method, unit, null, kind=kind)
    m = float(x.mean())
    if len(x) < 2:
        return _empty(name, n, level, method, unit, null, estimate=m, kind=kind)
    sd = float(x.std(ddof=1))
    if _no_spread(sd, x, resolution):
        return _sign_flip(x, null, level, name, unit, method, kind)
    res = stats.ttest_1samp(x, popmean=null)
    ci = res.confidence_interval(level)
    se = sd / math.sqrt(len(x))
    return Estimate(
        name, m, float(ci.low), float(ci.high), float(res.pvalue), null, n, sd, level, method, unit, se, float(res.df),
        kind=kind,
    )  # fmt: skip


def one_sample(
    x, null: float = 0.0, level: float = 0.95, name: str = "", unit: str = "", resolution: float = 0.0
) -> Estimate:
    """mean(x) with a t-interval and the two-sided p against ``null`` (``scipy.stats.ttest_1samp``).
    Non-finite values are dropped; fewer than 2 give a NaN interval and p. With no spread beyond
    ``resolution`` (1 for counts): an exact sign-flip test and no interval (module docstring)."""
    _check_level(level)
    _check_resolution(resolution)
    return _mean_test(_finite(x), null, level, name or "mean", unit, "one-sample t-test", "one-sample", resolution)


def paired(
    a, b, level: float = 0.95, null: float = 0.0, name: str = "", unit: str = "", resolution: float = 0.0
) -> Estimate:
    """Mean of the seed-matched differences a − b with a t-interval (``scipy.stats.ttest_rel``).

    ``a`` and ``b`` are pandas Series indexed by seed and are aligned on their common seeds
    (other sequences pair by position and must have the same length). Runs that share a seed
    share initial weights and data order, so the difference within a seed removes that common
    noise: the test has the power of the differences' spread, not of the runs'. Pairs with a
    non-finite value (a diverged run) are dropped. ``sd`` is the SD of the differences. With no
    spread beyond ``resolution``: an exact sign-flip test and no interval (module docstring).
    """
    _check_level(level)
    _check_resolution(resolution)
    if not (isinstance(a, pd.Series) and isinstance(b, pd.Series)):
        a, b = np.asarray(a, np.float64).ravel(), np.asarray(b, np.float64).ravel()
        if len(a) != len(b):
            raise ValueError(
                f"a has {len(a)} values, b has {len(b)}; allowed: the same length (or Series indexed by seed)"
            )
        a, b = pd.Series(a), pd.Series(b)
    for label, s in (("a", a), ("b", b)):
        if s.index.has_duplicates:
            dup = sorted(set(s.index[s.index.duplicated()]))
            raise ValueError(f"{label} has duplicate seeds {dup}; allowed: one value per seed")
    common = a.index.intersection(b.index)
    a, b = a.loc[common], b.loc[common]
    x, y = a.to_numpy(np.float64), b.to_numpy(np.float64)
    ok = np.isfinite(x) & np.isfinite(y)
    x, y = x[ok], y[ok]
    name = name or f"mean of paired differences a {MINUS} b"
    method = "paired t-test (seed-matched)"
    return _mean_test(x - y, null, level, name, unit, method, "paired", resolution)  # = scipy's ttest_rel


def interaction(a1, b1, a2, b2, level: float = 0.95, null: float = 0.0, name: str = "", unit: str = "") -> Estimate:
    """(mean a1 − mean b1) − (mean a2 − mean b2): does the effect of A vs B differ between
    condition 1 and condition 2? A t-interval with Welch–Satterthwaite degrees of freedom,
    se² = Σ var_i / n_i, df = se⁴ / Σ (var_i / n_i)² / (n_i − 1). Four independent groups;
    non-finite values dropped; a group with fewer than 2 values gives a NaN interval and p.
    ``sd`` is the root-mean variance of the four groups, ``kind`` "interaction"."""
    _check_level(level)
    groups = [_finite(g) for g in (a1, b1, a2, b2)]
    n = tuple(len(g) for g in groups)
    name = name or f"(a1 {MINUS} b1) {MINUS} (a2 {MINUS} b2)"
    method = "interaction, Welch–Satterthwaite t"
    if min(n) == 0:
        return _empty(name, n, level, method, unit, null, kind="interaction")
    m = [float(g.mean()) for g in groups]
    d = (m[0] - m[1]) - (m[2] - m[3])
    if min(n) < 2:
        return _empty(name, n, level, method, unit, null, estimate=d, kind="interaction")
    v = np.array([g.var(ddof=1) / len(g) for g in groups])
    se = float(math.sqrt(v.sum()))
    sd = float(math.sqrt(np.mean([g.var(ddof=1) for g in groups])))
    if not se > 0:
        return _empty(
            name, n, level, f"{method}; {NO_INTERVAL} and no test", unit, null, estimate=d, kind="interaction"
        )
    df = float(v.sum() ** 2 / np.sum(v**2 / (np.array(n) - 1)))
    low, high, p = _t_parts(d, se, df, null, level)
    return Estimate(name, d, low, high, p, null, n, sd, level, method, unit, se, df, kind="interaction")


def log_mean(x, null: float = 1.0, level: float = 0.95, name: str = "", unit: str = "") -> Estimate:
    """The geometric mean of positive values with a t-interval on their natural logs, mapped
    back with exp (so the interval never goes below 0), and the p of log-mean = log(null).
    For positive quantities: noise scales, critical batch sizes, ratios. Non-finite and
    non-positive values are dropped. ``sd`` and ``se`` are on the log scale."""
    _check_level(level)
    if not (math.isfinite(null) and null > 0):
        raise ValueError(f"null={null!r} is not allowed; allowed: a finite number > 0 (a ratio or a scale)")
    a = _finite(x)
    logs = np.log(a[a > 0])
    r = _mean_test(logs, math.log(null), level, name or "geometric mean", unit, "t-test on log values", "one-sample")
    exp = lambda v: math.exp(v) if math.isfinite(v) else NAN
    return dataclasses.replace(r, estimate=exp(r.estimate), low=exp(r.low), high=exp(r.high), null=null, scale="log")


# ---------------------------------------------------------------------------------------------
# Trends


def _xy(x, y, logx: bool, logy: bool) -> tuple[np.ndarray, np.ndarray]:
    """Finite (x, y) pairs, log2-transformed where asked (non-positive values dropped there)."""
    x, y = np.asarray(x, np.float64).ravel(), np.asarray(y, np.float64).ravel()
    if len(x) != len(y):
        raise ValueError(f"x has {len(x)} values, y has {len(y)}; allowed: the same length")
    ok = np.isfinite(x) & np.isfinite(y) & (x > 0 if logx else True) & (y > 0 if logy else True)
    x, y = x[ok], y[ok]
    return (np.log2(x) if logx else x), (np.log2(y) if logy else y)


def _trend_name(name: str, logx: bool, logy: bool) -> str:
    return name or f"slope of {'log2 ' if logy else ''}y per {'doubling of x' if logx else 'unit of x'}"


def slope(
    x, y, logx=False, logy=False, level: float = 0.95, null: float = 0.0, name="", unit="", resolution: float = 0.0
):
    """OLS slope of y on x (``scipy.stats.linregress``; log2 of x and/or y when asked: per
    doubling) with a t-interval on n − 2 degrees of freedom. Treats every run as independent:
    prefer ``per_seed_slope`` when seeds repeat across levels. Pairs with a non-finite value
    (or a non-positive one under a log) are dropped; fewer than 3 pairs or one distinct x give a
    NaN interval. ``sd`` is the residual SD; no seed count (``kind`` ""). Residuals with no spread
    beyond ``resolution`` (of y; a perfect fit): a permutation test of the pairing, no interval."""
    _check_level(level)
    _check_resolution(resolution)
    xs, ys = _xy(x, y, logx, logy)
    name, method, n = _trend_name(name, logx, logy), "OLS slope, t-interval", len(xs)
    if n < 2 or np.ptp(xs) == 0:
        return _empty(name, n, level, method, unit, null)
    res = stats.linregress(xs, ys)
    if n < 3:
        return _empty(name, n, level, method, unit, null, estimate=float(res.slope))
    b, se, df = float(res.slope), float(res.stderr), n - 2.0
    resid_sd = float(math.sqrt(np.sum((ys - res.intercept - b * xs) ** 2) / df))
    if _no_spread(resid_sd, ys, resolution):
        return _exact_slope(xs, ys, b, resid_sd, null, level, name, unit)
    low, high, p = _t_parts(b, se, df, null, level)
    if null == 0 and se > 0:
        p = float(res.pvalue)
    return Estimate(name, b, low, high, p, null, n, resid_sd, level, method, unit, se, df)


def _exact_slope(xs, ys, b, resid_sd, null, level, name, unit) -> Estimate:
    """The OLS slope with the two-sided p of a permutation test of the pairing of y − null·x with x
    (``scipy.stats.permutation_test``, "pairings") and no interval."""
    cx = xs - xs.mean()
    sxx = float(np.sum(cx * cx))
    stat = lambda y, axis=-1: np.sum(cx * y, axis=axis) / sxx
    res = stats.permutation_test(
        (ys - null * xs,), stat, permutation_type="pairings", vectorized=True, n_resamples=N_RESAMPLES,
        alternative="two-sided", rng=np.random.default_rng(0),
    )  # fmt: skip
    words = _exact_words(res.null_distribution, "OLS slope: permutation test of the pairing")
    return Estimate(name, b, NAN, NAN, float(res.pvalue), null, len(xs), resid_sd, level, words, unit)


def seed_slopes(df: pd.DataFrame, x: str, y: str, seed: str = "seed", logx: bool = False, logy: bool = False):
    """One OLS slope of ``y`` on ``x`` (log2 where asked) per seed: a Series indexed by seed.
    Rows with a non-finite value (or non-positive under a log2) are dropped; a seed with fewer
    than 2 distinct x left has no slope. Compare two conditions' trends with
    ``paired(seed_slopes(df1, ...), seed_slopes(df2, ...))`` (seeds shared) or ``welch``."""
    for col in (x, y, seed):
        if col not in df.columns:
            raise ValueError(f"column {col!r} is not in df; allowed: one of {list(df.columns)}")
    xs = np.asarray(df[x], np.float64)
    ys = np.asarray(df[y], np.float64)
    ok = np.isfinite(xs) & np.isfinite(ys) & (xs > 0 if logx else True) & (ys > 0 if logy else True)
    xs, ys = (np.log2(xs[ok]) if logx else xs[ok]), (np.log2(ys[ok]) if logy else ys[ok])
    seeds, g = np.unique(df[seed].to_numpy()[ok], return_inverse=True)
    keep, slopes = _group_slopes(xs, ys, g.ravel())
    return pd.Series(slopes, index=pd.Index(seeds[keep], name=seed), name=f"slope of {y} on {x}")


def per_seed_slope(
    df: pd.DataFrame,
    x: str,
    y: str,
    seed: str = "seed",
    logx: bool = False,
    logy: bool = False,
    level: float = 0.95,
    null: float = 0.0,
    name: str = "",
    unit: str = "",
    resolution: float = 0.0,
) -> Estimate:
    """The preferred trend test: one OLS slope of ``y`` on ``x`` per seed (across the levels of
    x, ``seed_slopes``), then a one-sample t-test over the seeds' slopes. Seeds are the
    independent units, so the test is valid with few values per level, and the seed's shared
    initial weights and data order cancel within its slope. Rows with a non-finite value (or
    non-positive under a log2) are dropped; a seed with fewer than 2 distinct x left gives no
    slope. ``n`` is the number of seeds with a slope, ``sd`` the SD of their slopes. Slopes with
    no spread beyond ``resolution`` (in slope units; e.g. one grid step over the span of log2 x
    for a quantity read off a grid): an exact sign-flip test over seeds and no interval."""
    _check_level(level)
    _check_resolution(resolution)
    slopes = seed_slopes(df, x, y, seed, logx, logy).to_numpy()
    name = _trend_name(name, logx, logy)
    method = "per-seed OLS slope, t-test over seeds"
    return _mean_test(slopes, null, level, name, unit, method, "one-sample", resolution)


def _seed_bend(u: np.ndarray, y: np.ndarray) -> float:
    """y at the middle level(s) of u minus the straight line through the two end levels (means per level)."""
    levels = np.unique(u)
    if len(levels) < 3:
        return NAN
    means = np.array([y[u == lv].mean() for lv in levels])
    k = len(levels)
    mid = [k // 2] if k % 2 else [k // 2 - 1, k // 2]
    u_mid, y_mid = levels[mid].mean(), means[mid].mean()
    line = means[0] + (means[-1] - means[0]) * (u_mid - levels[0]) / (levels[-1] - levels[0])
    return float(y_mid - line)


def bend(
    df: pd.DataFrame,
    x: str,
    y: str,
    seed: str = "seed",
    logx: bool = False,
    level: float = 0.95,
    name: str = "",
    unit: str = "",
    resolution: float = 0.0,
) -> Estimate:
    """The shape a slope cannot see: per seed, ``y`` at the middle level(s) of ``x`` (log2 where
    asked) minus the straight line through its two end levels, then a one-sample t-test over seeds
    (an exact sign-flip test without spread). An inverted U has a positive bend however flat its
    slope. Judge a per-doubling slope's "no effect that matters" only with its bend within ±Δ too
    (``verdicts.Family.add(shape=...)``). Needs 3 or more levels per seed; rows with a non-finite
    value are dropped."""
    _check_level(level)
    _check_resolution(resolution)
    xs, ys = np.asarray(df[x], np.float64), np.asarray(df[y], np.float64)
    ok = np.isfinite(xs) & np.isfinite(ys) & (xs > 0 if logx else True)
    u = np.log2(xs[ok]) if logx else xs[ok]
    seeds = df[seed].to_numpy()[ok]
    values = np.array([_seed_bend(u[seeds == s], ys[ok][seeds == s]) for s in np.unique(seeds)])
    name = name or f"bend of {y}: the middle of {x} minus the line through its ends"
    method = "per-seed bend, t-test over seeds"
    return _mean_test(values[np.isfinite(values)], 0.0, level, name, unit, method, "one-sample", resolution)


def _group_slopes(x: np.ndarray, y: np.ndarray, g: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """(kept labels, slopes): OLS slope of y on x within each group label g = 0..k−1 (vectorized);
    groups with one distinct x are not kept."""
    if len(g) == 0:
        return np.zeros(0, bool), np.empty(0)
    k = int(g.max()) + 1
    cnt = np.bincount(g, minlength=k)
    mx = np.bincount(g, x, k) / np.maximum(cnt, 1)
    my = np.bincount(g, y, k) / np.maximum(cnt, 1)
    dx = x - mx[g]
    sxx = np.bincount(g, dx * dx, k)
    sxy = np.bincount(g, dx * (y - my[g]), k)
    keep = sxx > 1e-12 * np.maximum(np.bincount(g, x * x, k), 1e-300)
    return keep, sxy[keep] / sxx[keep]


def _spearman_of_ranks(rx: np.ndarray):
    """A vectorized statistic: Pearson correlation of fixed x ranks with permuted y ranks (the
    Spearman rho, ties given average ranks; permuting y permutes its ranks)."""
    cx = rx - rx.mean()
    nx = math.sqrt(float(np.sum(cx * cx)))

    def rho(ry, axis=-1):
        cy = ry - ry.mean(axis=axis, keepdims=True)
        return np.sum(cx * cy, axis=axis) / (nx * np.sqrt(np.sum(cy * cy, axis=axis)))

    return rho


def permutation_trend(
    x, y, n_resamples: int = 9999, seed: int = 0, logx: bool = False, name: str = "", unit: str = ""
) -> Estimate:
    """Spearman's rho of y with x and a two-sided permutation p-value (``scipy.stats.
    permutation_test``, permutation_type="pairings": y is re-paired with x at random; exact when
    ``n_resamples`` reaches the number of permutations). No interval (NaN low/high): for trends
    where seeds are not aligned across levels, so ``per_seed_slope`` does not apply. The random
    permutations come from ``numpy.random.default_rng(seed)``, so p is repeatable. Non-finite
    pairs are dropped; fewer than 3 pairs, or a constant x or y, give NaN p."""
    xs, ys = _xy(x, y, logx, False)
    name, method = name or "Spearman rho of y with x", "Spearman rho, permutation test"
    n = len(xs)
    if n < 3 or np.ptp(xs) == 0 or np.ptp(ys) == 0:
        return _empty(name, n, 0.95, method, unit)
    rx, ry = stats.rankdata(xs), stats.rankdata(ys)
    res = stats.permutation_test(
        (ry,),
        _spearman_of_ranks(rx),
        permutation_type="pairings",
        vectorized=True,
        n_resamples=n_resamples,
        alternative="two-sided",
        rng=np.random.default_rng(seed),
    )
    return Estimate(name, float(res.statistic), NAN, NAN, float(res.pvalue), 0.0, n, NAN, 0.95, method, unit)


# ---------------------------------------------------------------------------------------------
# Diverged runs: an outcome of their own, never a value


def _aligned(a, b, paired: bool) -> tuple[np.ndarray, np.ndarray]:
    """The two arms' values as arrays (seed-matched for ``paired``: Series on their common seeds)."""
    if paired and isinstance(a, pd.Series) and isinstance(b, pd.Series):
        common = a.index.intersection(b.index)
        a, b = a.loc[common], b.loc[common]
    x, y = np.asarray(a, np.float64).ravel(), np.asarray(b, np.float64).ravel()
    if paired and len(x) != len(y):
        raise ValueError(f"a has {len(x)} values, b has {len(y)}; allowed: the same length (or Series by seed)")
    return x, y


def _worst_ranked(x: np.ndarray, y: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """x and y with every diverged (non-finite) value set below all finite ones, by more than
    their range, so a diverged run ranks worst and a pair with one diverged run differs more than
    any two finished ones."""
    fin = np.concatenate([x[np.isfinite(x)], y[np.isfinite(y)]])
    worst = float(fin.min() - 2 * (np.ptp(fin) + 1)) if len(fin) else 0.0
    return np.where(np.isfinite(x), x, worst), np.where(np.isfinite(y), y, worst)


def _sum_last(x, axis=-1):
    return np.sum(x, axis=axis)


def _rank_test(x: np.ndarray, y: np.ndarray, paired: bool) -> tuple[float, float, str]:
    """(rank-biserial correlation, two-sided p, words): Wilcoxon's signed-rank statistic of the
    seed-matched differences (ties of two diverged runs dropped) or Mann–Whitney's rank sums,
    each by an exact (or seeded Monte Carlo) permutation test, so ties cost no accuracy."""
    perm = dict(vectorized=True, n_resamples=N_RESAMPLES, alternative="two-sided", rng=np.random.default_rng(0))
    if paired:
        d = x - y
        d = d[d != 0]
        if len(d) == 0:
            return 0.0, 1.0, "Wilcoxon signed-rank test"
        signed = np.sign(d) * stats.rankdata(np.abs(d))
        res = stats.permutation_test((signed,), _sum_last, permutation_type="samples", **perm)
        return float(signed.sum() / np.abs(signed).sum()), float(res.pvalue), "Wilcoxon signed-rank test"
    r = stats.rankdata(np.concatenate([x, y]))
    ra, rb = r[: len(x)], r[len(x) :]
    res = stats.permutation_test((ra, rb), _diff_of_means, permutation_type="independent", **perm)
    u = ra.sum() - len(x) * (len(x) + 1) / 2
    return float(2 * u / (len(x) * len(y)) - 1), float(res.pvalue), "Mann–Whitney U test"


def with_divergence(
    a,
    b,
    seed_matched: bool = True,
    higher_is_better: bool = True,
    level: float = 0.95,
    name: str = "",
    unit: str = "",
) -> Estimate:
    """Compare arm ``a`` with arm ``b`` where a non-finite value is a run that diverged (pass only runs
    that ran; ``protocol.outcome_values`` builds such Series from runs).

    No run diverged: ``paired`` (``seed_matched``: Series by seed) or ``welch``, as usual. Some
    diverged: a rank test with every diverged run ranked worst (Wilcoxon signed-rank over seeds, else
    Mann–Whitney), exact by permutation; the estimate is the rank-biserial correlation (> 0: ``a``
    better; ``name`` "x − y" becomes "… of x vs y …"), with no interval, so a verdict decides by p
    and direction and never states an effect
    in the metric's units: a floor value is not a measurement. The method names the test and the
    divergence counts with Fisher's exact test on them. Every run of both arms diverged: no test
    (``note`` says why); that is not "no difference"."""
    _check_level(level)
    x, y = _aligned(a, b, seed_matched)
    sign = 1.0 if higher_is_better else -1.0
    bad_a, bad_b = int((~np.isfinite(x)).sum()), int((~np.isfinite(y)).sum())
    if bad_a + bad_b == 0:
        return (paired if seed_matched else welch)(a, b, level=level, name=name, unit=unit)
    counts = f"diverged: {bad_a} of {len(x)} runs (a), {bad_b} of {len(y)} (b)"
    name = f"rank-biserial correlation of {(name or 'a − b').replace(' − ', ' vs ')}, diverged runs ranked worst"
    n = len(x) if seed_matched else (len(x), len(y))
    if bad_a == len(x) and bad_b == len(y):
        note = (
            f"Every run of both arms diverged ({counts}): nothing to compare, which is not the same as no difference."
        )
        return Estimate(name, NAN, NAN, NAN, NAN, 0.0, n, NAN, level, f"no test; {counts}", "", note=note)
    r, p, test = _rank_test(*_worst_ranked(sign * x, sign * y), seed_matched)
    fisher = stats.fisher_exact([[bad_a, len(x) - bad_a], [bad_b, len(y) - bad_b]]).pvalue
    method = (
        f"{test} by permutation, diverged runs ranked worst; {counts}; Fisher's exact test on them: p = {fmt_p(fisher)}"
    )
    return Estimate(name, r, NAN, NAN, p, 0.0, n, NAN, level, method, "", note=counts)


# ---------------------------------------------------------------------------------------------
# Several groups


def _groups(groups: Mapping[str, object]) -> dict[str, np.ndarray]:
    if not isinstance(groups, Mapping):
        raise ValueError(f"groups={type(groups).__name__} is not allowed; allowed: a dict {{label: values}}")
    return {str(k): _finite(v) for k, v in groups.items()}


def omnibus(groups: Mapping[str, object], method: str = "anova", name: str = "") -> Estimate:
    """Do the groups' means (``anova``: ``scipy.stats.f_oneway``) or distributions (``kruskal``:
    ``scipy.stats.kruskal``) differ at all? The estimate is the F or H statistic, with p and no
    interval; ``n`` the group sizes, ``sd`` the pooled within-group SD. Non-finite values are
    dropped, empty groups left out; fewer than 2 groups (or no within-group spread for ANOVA)
    give NaN p. Judge it only as "the groups differ" (direction 0)."""
    if method not in ("anova", "kruskal"):
        raise ValueError(f"method={method!r} is not allowed; allowed: 'anova', 'kruskal'")
    g = [v for v in _groups(groups).values() if len(v) > 0]
    n = tuple(len(v) for v in g)
    label = "one-way ANOVA" if method == "anova" else "Kruskal–Wallis test"
    name = name or f"{'F' if method == 'anova' else 'H'} statistic across {len(g)} groups"
    dof = sum(n) - len(g)
    sd = math.sqrt(sum(float(np.sum((v - v.mean()) ** 2)) for v in g) / dof) if dof > 0 else NAN
    pooled = np.concatenate(g) if g else np.empty(0)
    if len(g) < 2 or (method == "anova" and not sd > 0) or np.ptp(pooled) == 0:
        return dataclasses.replace(_empty(name, n, 0.95, label, ""), sd=sd)
    res = stats.f_oneway(*g) if method == "anova" else stats.kruskal(*g)
    return Estimate(name, float(res.statistic), NAN, NAN, float(res.pvalue), 0.0, n, sd, 0.95, label, "")


def pairwise(
    groups: Mapping[str, object], reference: str | None = None, level: float = 0.95, unit: str = "", metric: str = ""
) -> list[Estimate]:
    """Welch differences between groups, ready for ``holm``: every pair (first − second, in the
    dict's order) or, with ``reference``, each other group − the reference. Each result is named
    "<metric>(A) − <metric>(B)" (default metric name "mean")."""
    g = _groups(groups)
    if reference is not None and reference not in g:
        raise ValueError(f"reference={reference!r} is not a group; allowed: one of {list(g)}")
    label = metric or "mean"
    pairs = [(k, reference) for k in g if k != reference] if reference is not None else itertools.combinations(g, 2)
    return [welch(g[a], g[b], level, name=f"{label}({a}) {MINUS} {label}({b})", unit=unit) for a, b in pairs]


# ---------------------------------------------------------------------------------------------
# Multiplicity


class HolmResult(NamedTuple):
    """Holm's step-down procedure, in the input order: adjusted p-values, the confidence level at
    which each test's interval is judged, and whether it is rejected (NaN/False where p was NaN)."""

    p_adjusted: np.ndarray
    level: np.ndarray
    rejected: np.ndarray


def holm(pvalues: Sequence[float], alpha: float = 0.05) -> HolmResult:
    """Holm's step-down procedure over the finite ``pvalues`` (NaN: untestable, left out of m).

    Sorted p_(0) <= ... <= p_(m−1): p_adj_(i) = max_{j<=i} min(1, (m − j) p_(j)). Tests are rejected
    from rank 0 while p_(i) <= alpha / (m − i); let k be the first rank that is not. Levels: rank
    i < k is judged at 1 − alpha/(m − i), every rank from k on at 1 − alpha/(m − k). With the
    dual t-intervals, the interval at that level excludes the null exactly for the rejected tests,
    and the family-wise error rate is at most alpha.
    """
    if not (isinstance(alpha, int | float) and 0 < alpha < 1):
        raise ValueError(f"alpha={alpha!r} is not allowed; allowed: a number in (0, 1)")
    p = np.asarray(pvalues, np.float64).ravel()
    if np.any(np.isfinite(p) & ((p < 0) | (p > 1))):
        raise ValueError(f"pvalues={p.tolist()} is not allowed; allowed: numbers in [0, 1] or NaN")
    p_adj, level, rejected = np.full(len(p), NAN), np.full(len(p), NAN), np.zeros(len(p), bool)
    idx = np.flatnonzero(np.isfinite(p))
    m = len(idx)
    if m == 0:
        return HolmResult(p_adj, level, rejected)
    order = idx[np.argsort(p[idx], kind="stable")]
    ps = p[order]
    factors = m - np.arange(m)
    p_adj[order] = np.maximum.accumulate(np.minimum(1.0, factors * ps))
    ok = ps <= alpha / factors
    k = m if ok.all() else int(np.argmin(ok))
    levels = 1 - alpha / factors.astype(np.float64)
    levels[k:] = 1 - alpha / (m - k) if k < m else levels[k:]
    level[order] = levels
    rejected[order[:k]] = True
    return HolmResult(p_adj, level, rejected)


# ---------------------------------------------------------------------------------------------
# Power


def _check_power_args(alpha, power, kind) -> None:
    if not (isinstance(alpha, int | float) and 0 < alpha < 1):
        raise ValueError(f"alpha={alpha!r} is not allowed; allowed: a number in (0, 1)")
    if not (isinstance(power, int | float) and alpha < power < 1):
        raise ValueError(f"power={power!r} is not allowed; allowed: a number in (alpha={alpha}, 1)")
    if kind not in KINDS:
        raise ValueError(f"kind={kind!r} is not allowed; allowed: {', '.join(map(repr, KINDS))}")


def _design(n: float, kind: str) -> tuple[float, float]:
    """(se per unit SD, degrees of freedom) with n per group."""
    if kind == "two-sample":
        return math.sqrt(2 / n), 2 * n - 2
    if kind == "interaction":
        return math.sqrt(4 / n), 4 * n - 4
    return math.sqrt(1 / n), n - 1  # one-sample, paired


def _t_power(ncp: float, df: float, alpha: float) -> float:
    """Power of the two-sided t-test at ``alpha`` when the statistic is noncentral t(df, ncp)."""
    # scipy.special's functions behind stats.t.ppf and stats.nct.sf, called directly: the same numbers
    # (to 1e-16), 50x faster (power searches call this thousands of times per chapter and simulation)
    tc = float(special.stdtrit(df, 1 - alpha / 2))
    # lower tail P(T < -tc | ncp) as P(T > tc | -ncp): the same number, but scipy's nct.cdf has returned
    # NaN far in its lower tail (e.g. nct.cdf(-4.31, 4, 8); scipy issue 25470). special.nctdtr returns
    # NaN far in a tail at small df (nctdtr(1, -8, 25.5)), where nct.sf does not: then nct.sf answers.
    tails = [1 - special.nctdtr(df, c, tc) for c in (ncp, -ncp)]
    tails = [float(stats.nct.sf(tc, df, c)) if math.isnan(p) else p for p, c in zip(tails, (ncp, -ncp), strict=True)]
    return float(sum(tails))


def _ncp_for_power(df: float, alpha: float, power: float) -> float:
    """The noncentrality at which the two-sided t-test on df degrees of freedom has ``power``."""
    hi = 4.0
    while _t_power(hi, df, alpha) < power:
        hi *= 2
    return float(optimize.brentq(lambda c: _t_power(c, df, alpha) - power, 0.0, hi, xtol=1e-10))


def power(delta: float, sd: float, n: int, alpha: float = 0.05, kind: str = "two-sample") -> float:
    """The power of a two-sided t-test at ``alpha`` for a true effect ``delta`` with ``n`` per
    group and within-group SD ``sd`` (noncentral t, ``scipy.stats.nct``). For ``kind`` "paired",
    ``sd`` is the SD of the differences."""
    _check_power_args(alpha, 0.5 * (1 + alpha), kind)
    if not (n >= 2):
        raise ValueError(f"n={n!r} is not allowed; allowed: at least 2 per group")
    se1, df = _design(n, kind)
    return 1.0 if sd == 0 else _t_power(abs(delta) / (sd * se1), df, alpha)


def seeds_for_power(delta: float, sd: float, alpha: float = 0.05, power: float = 0.8, kind: str = "two-sample") -> int:
    """The smallest n per group (seeds) at which a two-sided t-test at ``alpha`` detects a true
    effect ``delta`` with at least ``power``, for within-group SD ``sd`` (SD of the differences
    for "paired"). Noncentral t (``scipy.stats.nct``), exact for normal data. Two-sample, d = 1:
    17; d = 0.5: 64; one-sample d = 0.5: 34."""
    _check_power_args(alpha, power, kind)
    if not (math.isfinite(delta) and delta > 0):
        raise ValueError(
            f"delta={delta!r} is not allowed; allowed: a finite number > 0 (the smallest effect of interest)"
        )
    if not (math.isfinite(sd) and sd >= 0):
        raise ValueError(f"sd={sd!r} is not allowed; allowed: a finite number >= 0")
    pw = lambda n: 1.0 if sd == 0 else _t_power(delta / (sd * _design(n, kind)[0]), _design(n, kind)[1], alpha)
    lo, hi = 1, 2  # invariant: pw(lo) < power (or lo = 1), pw(hi) >= power once found
    while pw(hi) < power:
        lo, hi = hi, hi * 2
    while hi - lo > 1:
        mid = (lo + hi) // 2
        lo, hi = (lo, mid) if pw(mid) >= power else (mid, hi)
    return hi


def detectable_effect(n: int, sd: float, alpha: float = 0.05, power: float = 0.8, kind: str = "two-sample") -> float:
    """The smallest true effect a two-sided t-test at ``alpha`` with ``n`` per group detects with
    ``power`` (noncentral t), in the units of ``sd``. Two-sample, n = 17, sd = 1: just under 1."""
    _check_power_args(alpha, power, kind)
    if not (n >= 2):
        raise ValueError(f"n={n!r} is not allowed; allowed: at least 2 per group")
    if not (math.isfinite(sd) and sd >= 0):
        raise ValueError(f"sd={sd!r} is not allowed; allowed: a finite number >= 0")
    se1, df = _design(n, kind)
    return _ncp_for_power(df, alpha, power) * sd * se1
