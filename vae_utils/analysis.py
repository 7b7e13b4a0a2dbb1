"""Statistics behind the strategy chapters: intervals over seeds, steps-to-target, the
McCandlish hyperbola, learning-rate checks, scaling rules, and verdicts computed from data.

    from vae_utils import analysis as A
    cells = A.summarize(df, ["batch_size"], "test_elbo")          # mean, 95% CI, n, per-seed values
    eff = A.slope_effect(df.batch_size, df.step_noise, logx=True) # an Effect: estimate and CI
    v = A.verdict("Larger batches are more stable", eff, direction=-1)
    v.label, v.text                                               # "supported", "... -0.21 (95% CI ...)"

Every interval is a two-sided ``level`` interval: a t-interval for means, differences and
regression slopes, a stratified bootstrap percentile interval for rank correlations.
Nothing here imports TensorFlow; everything works on NumPy arrays and pandas DataFrames
(``vae_utils.sweeps.load_results`` / ``load_histories``).

Verdict labels: ``supported`` (the interval excludes no-effect in the claimed direction),
``not supported`` (it excludes no-effect the other way, or it is consistent with no effect;
the text says which), ``depends on <condition>`` (supported under some conditions, not
under others), ``insufficient data`` (fewer than two finite values: no interval).
"""

from __future__ import annotations

import math
from collections.abc import Iterable, Mapping, Sequence
from dataclasses import dataclass, field

import numpy as np
import pandas as pd
from scipy import optimize, stats

__all__ = [
    "Effect",
    "Verdict",
    "HyperbolaFit",
    "LRCheck",
    "fmt",
    "mean_ci",
    "summarize",
    "difference_effect",
    "slope_effect",
    "rank_effect",
    "steps_to_target",
    "steps_to_target_table",
    "fit_hyperbola",
    "noise_scale_summary",
    "best_lr",
    "lr_interior",
    "lr_scaling_exponent",
    "scaling_rule_check",
    "rank_agreement",
    "verdict",
    "not_run",
    "consistency_verdict",
    "combine_verdicts",
    "glue_verdict",
    "best_per_group",
    "SUPPORTED",
    "NOT_SUPPORTED",
    "INSUFFICIENT",
]

SUPPORTED = "supported"
NOT_SUPPORTED = "not supported"
INSUFFICIENT = "insufficient data"
NOT_RUN = "not run"


def fmt(x, digits: int = 3) -> str:
    """A number for prose: ``digits`` significant digits, a true minus sign, 'n/a' for NaN."""
    if x is None or (isinstance(x, float) and not math.isfinite(x)):
        return "n/a"
    x = float(x)
    if x == 0:
        return "0"
    if abs(x) >= 10**digits:
        s = f"{x:,.0f}"
    else:
        s = f"{x:.{digits}g}"
        if "e" in s:  # very small numbers: keep scientific notation, readable
            mant, exp = s.split("e")
            s = f"{mant}×10^{int(exp)}"
    return s.replace("-", "−")


def _finite(values) -> np.ndarray:
    a = np.asarray(list(values) if not isinstance(values, np.ndarray) else values, dtype=np.float64).ravel()
    return a[np.isfinite(a)]


def mean_ci(values, level: float = 0.95) -> tuple[float, float, float]:
    """(mean, low, high): the t-interval of the mean of the finite ``values``.

    One value gives (value, nan, nan); none gives three NaNs. Zero spread gives (m, m, m).
    Non-finite values (diverged runs) are dropped.
    """
    if not 0 < level < 1:
        raise ValueError(f"level={level!r} is not allowed; allowed: a number in (0, 1)")
    a = _finite(values)
    if len(a) == 0:
        return (math.nan, math.nan, math.nan)
    m = float(a.mean())
    if len(a) < 2:
        return (m, math.nan, math.nan)
    half = float(stats.t.ppf(0.5 + level / 2, len(a) - 1) * a.std(ddof=1) / math.sqrt(len(a)))
    return (m, m - half, m + half)


def summarize(
    df: pd.DataFrame, by: str | Sequence[str], metric: str, level: float = 0.95, seed_col: str = "seed"
) -> pd.DataFrame:
    """One row per cell of ``by``: mean, CI ``low``/``high``, ``sd``, ``n`` (finite values),
    ``n_runs``, ``n_diverged`` (status 'diverged' or a non-finite metric), and the per-seed
    ``values`` and ``seeds`` as tuples, so nothing is averaged away."""
    by = [by] if isinstance(by, str) else list(by)
    rows = []
    for key, g in df.groupby(by, sort=True, dropna=False):
        key = key if isinstance(key, tuple) else (key,)
        vals = g[metric].to_numpy(dtype=np.float64)
        m, lo, hi = mean_ci(vals, level)
        fin = vals[np.isfinite(vals)]
        diverged = ~np.isfinite(vals)
        if "status" in g:
            diverged = diverged | (g["status"].to_numpy() == "diverged")
        row = dict(zip(by, key, strict=True))
        row.update(
            mean=m,
            low=lo,
            high=hi,
            sd=float(fin.std(ddof=1)) if len(fin) > 1 else math.nan,
            n=len(fin),
            n_runs=len(g),
            n_diverged=int(diverged.sum()),
            values=tuple(float(v) for v in vals),
            seeds=tuple(int(s) for s in g[seed_col]) if seed_col in g else (),
        )
        rows.append(row)
    cols = [*by, "mean", "low", "high", "sd", "n", "n_runs", "n_diverged", "values", "seeds"]
    return pd.DataFrame(rows, columns=cols)


@dataclass(frozen=True)
class Effect:
    """A measured effect: an estimate with its ``level`` interval [low, high] from ``n`` values."""

    name: str  # what was measured, e.g. "slope of step_noise on log2(batch size)"
    estimate: float
    low: float
    high: float
    n: int
    level: float = 0.95
    method: str = ""  # e.g. "OLS slope, t-interval"
    unit: str = ""  # e.g. "nats"

    @property
    def has_ci(self) -> bool:
        return all(math.isfinite(v) for v in (self.estimate, self.low, self.high))

    def format(self, digits: int = 3) -> str:
        u = f" {self.unit}" if self.unit else ""
        if not math.isfinite(self.estimate):
            return f"n/a (n = {self.n})"
        if not self.has_ci:
            return f"{fmt(self.estimate, digits)}{u} (no interval: n = {self.n})"
        pct = f"{100 * self.level:g}%"
        return f"{fmt(self.estimate, digits)}{u} ({pct} CI {fmt(self.low, digits)} to {fmt(self.high, digits)}, n = {self.n})"

    def __str__(self) -> str:
        return f"{self.name}: {self.format()}"


def difference_effect(a, b, level: float = 0.95, name: str = "difference of means", unit: str = "") -> Effect:
    """mean(a) - mean(b) with a Welch t-interval (unequal variances). Non-finite values are dropped."""
    a, b = _finite(a), _finite(b)
    n = len(a) + len(b)
    if len(a) == 0 or len(b) == 0:
        return Effect(name, math.nan, math.nan, math.nan, n, level, "Welch t-interval", unit)
    d = float(a.mean() - b.mean())
    if len(a) < 2 or len(b) < 2:
        return Effect(name, d, math.nan, math.nan, n, level, "Welch t-interval", unit)
    va, vb = a.var(ddof=1) / len(a), b.var(ddof=1) / len(b)
    se = math.sqrt(va + vb)
    if se == 0:
        return Effect(name, d, d, d, n, level, "Welch t-interval", unit)
    dof = (va + vb) ** 2 / (va**2 / (len(a) - 1) + vb**2 / (len(b) - 1))
    half = float(stats.t.ppf(0.5 + level / 2, dof) * se)
    return Effect(name, d, d - half, d + half, n, level, "Welch t-interval", unit)


def _pairs(x, y):
    x, y = np.asarray(x, np.float64).ravel(), np.asarray(y, np.float64).ravel()
    if len(x) != len(y):
        raise ValueError(f"x has {len(x)} values, y has {len(y)}; allowed: the same length")
    ok = np.isfinite(x) & np.isfinite(y)
    return x[ok], y[ok]


def slope_effect(x, y, logx: bool = False, logy: bool = False, level: float = 0.95, name: str = "", unit: str = ""):
    """OLS slope of y on x (log2 x and/or log2 y when asked) with a t-interval on n - 2 degrees
    of freedom. Pairs with a non-finite value (or a non-positive one under a log) are dropped."""
    x, y = _pairs(x, y)
    if logx:
        keep = x > 0
        x, y = np.log2(x[keep]), y[keep]
    if logy:
        keep = y > 0
        x, y = x[keep], np.log2(y[keep])
    name = name or f"slope of {'log2 ' if logy else ''}y on {'log2 ' if logx else ''}x"
    n = len(x)
    if n < 2 or np.ptp(x) == 0:
        return Effect(name, math.nan, math.nan, math.nan, n, level, "OLS slope, t-interval", unit)
    res = stats.linregress(x, y)
    if n < 3:
        return Effect(name, float(res.slope), math.nan, math.nan, n, level, "OLS slope, t-interval", unit)
    half = float(stats.t.ppf(0.5 + level / 2, n - 2) * res.stderr)
    return Effect(name, float(res.slope), res.slope - half, res.slope + half, n, level, "OLS slope, t-interval", unit)


def rank_effect(x, y, level: float = 0.95, n_boot: int = 2000, seed: int = 0, name: str = "") -> Effect:
    """Spearman rank correlation of y with x, with a percentile bootstrap interval that
    resamples y within each distinct x (the design, e.g. the batch-size grid, stays fixed)."""
    x, y = _pairs(x, y)
    name = name or "Spearman rank correlation"
    n = len(x)
    if n < 3 or np.ptp(x) == 0 or np.ptp(y) == 0:
        est = math.nan if n < 3 or np.ptp(x) == 0 else 0.0
        return Effect(name, est, math.nan, math.nan, n, level, "Spearman, stratified bootstrap")
    est = float(stats.spearmanr(x, y).statistic)
    rng = np.random.default_rng(seed)
    groups = [np.flatnonzero(x == v) for v in np.unique(x)]
    boots = []
    for _ in range(n_boot):
        idx = np.concatenate([rng.choice(g, size=len(g), replace=True) for g in groups])
        yb = y[idx]
        if np.ptp(yb) > 0:
            boots.append(stats.spearmanr(x[idx], yb).statistic)
    boots = np.asarray(boots, np.float64)
    boots = boots[np.isfinite(boots)]
    if len(boots) < 10:
        return Effect(name, est, math.nan, math.nan, n, level, "Spearman, stratified bootstrap")
    lo, hi = np.quantile(boots, [0.5 - level / 2, 0.5 + level / 2])
    return Effect(name, est, float(lo), float(hi), n, level, "Spearman, stratified bootstrap")


# ---------------------------------------------------------------------------------------------
# Steps to a target, and the steps/batch-size trade-off


def steps_to_target(
    history: pd.DataFrame,
    target: float,
    metric: str = "val_elbo",
    x: str = "steps",
    higher_is_better: bool = True,
    interpolate: bool = True,
) -> float:
    """The first ``x`` (steps, epochs, examples_seen, wall_time_s) at which ``metric`` reaches
    ``target``: linearly interpolated between the last point before the crossing and the first
    one after it (or that first point when ``interpolate`` is False, or when the first recorded
    point already reaches it). NaN when never reached. Non-finite points (divergence) never count."""
    h = history.sort_values(x)
    xs, ys = h[x].to_numpy(np.float64), h[metric].to_numpy(np.float64)
    reached = np.isfinite(ys) & ((ys >= target) if higher_is_better else (ys <= target))
    hits = np.flatnonzero(reached)
    if len(hits) == 0:
        return math.nan
    i = int(hits[0])
    if i == 0 or not interpolate or not np.isfinite(ys[i - 1]) or ys[i] == ys[i - 1]:
        return float(xs[i])
    frac = (target - ys[i - 1]) / (ys[i] - ys[i - 1])
    return float(xs[i - 1] + frac * (xs[i] - xs[i - 1]))


def steps_to_target_table(
    histories: pd.DataFrame,
    target: float,
    metric: str = "val_elbo",
    x: str = "steps",
    by: str | Sequence[str] = "run_id",
    keep: Sequence[str] = (),
    higher_is_better: bool = True,
    interpolate: bool = True,
) -> pd.DataFrame:
    """``steps_to_target`` for every run of a long history table (``load_histories``): one row per
    ``by`` group with its ``keep`` columns (e.g. batch_size, learning_rate, seed), the column
    ``x`` + '_to_target', ``reached``, and ``at_first`` (the first evaluation already reached it:
    the value is only an upper bound, and a trend over such values measures the evaluation grid)."""
    by = [by] if isinstance(by, str) else list(by)
    rows = []
    for key, g in histories.groupby(by, sort=False):
        key = key if isinstance(key, tuple) else (key,)
        row = dict(zip(by, key, strict=True))
        row.update({k: g[k].iloc[0] for k in keep if k not in row})
        v = steps_to_target(g, target, metric, x, higher_is_better, interpolate)
        row[f"{x}_to_target"] = v
        row["reached"] = bool(math.isfinite(v))
        row["at_first"] = bool(math.isfinite(v) and v <= g[x].min())
        rows.append(row)
    return pd.DataFrame(rows)


@dataclass(frozen=True)
class HyperbolaFit:
    """S(B) = S_min (1 + B_crit / B), i.e. (S/S_min - 1)(E/E_min - 1) = 1 with E = B S and
    B_crit = E_min / S_min (McCandlish et al. 2018). Fitted by least squares on log S."""

    s_min: float  # the fewest steps, reached as B -> infinity
    b_crit: float  # the critical batch size: twice S_min steps and twice E_min examples
    e_min: float  # the fewest examples, reached as B -> 0
    n: int  # (batch size, steps) pairs used
    n_batch_sizes: int
    rmse_log: float  # root-mean-square residual of log S (relative error)
    b_crit_low: float = math.nan  # level interval (t on log B_crit)
    b_crit_high: float = math.nan
    level: float = 0.95

    @property
    def ok(self) -> bool:
        return math.isfinite(self.s_min) and math.isfinite(self.b_crit)

    def steps(self, batch_size) -> np.ndarray:
        """Predicted steps to target at ``batch_size``."""
        return self.s_min * (1.0 + self.b_crit / np.asarray(batch_size, np.float64))

    def examples(self, batch_size) -> np.ndarray:
        """Predicted examples to target, E = B S = E_min (1 + B / B_crit)."""
        return np.asarray(batch_size, np.float64) * self.steps(batch_size)

    def effect(self) -> Effect:
        return Effect(
            "critical batch size B_crit",
            self.b_crit,
            self.b_crit_low,
            self.b_crit_high,
            self.n,
            self.level,
            "least squares on log S, t-interval on log B_crit",
        )


def fit_hyperbola(batch_size, steps, level: float = 0.95) -> HyperbolaFit:
    """Fit S(B) = S_min (1 + B_crit / B) to (batch size, steps-to-target) pairs (one per run;
    NaN steps, targets never reached, are dropped), by least squares on log S in the parameters
    log S_min and log B_crit. The interval for B_crit is a t-interval (n - 2 degrees of freedom)
    on log B_crit from the fit's Jacobian, mapped back. Needs >= 2 batch sizes; >= 3 runs for an interval."""
    b, s = _pairs(batch_size, steps)
    keep = (b > 0) & (s > 0)
    b, s = b[keep], s[keep]
    nb, n = len(np.unique(b)), len(b)
    if nb < 2:
        return HyperbolaFit(math.nan, math.nan, math.nan, n, nb, math.nan, level=level)
    # 1) a linear start: S = S_min + (S_min B_crit) / B
    slope, intercept = np.polyfit(1.0 / b, s, 1)
    s0 = max(intercept, 0.5 * float(np.min(s)))
    c0 = min(max(slope / s0, 1e-2 * float(np.min(b))), 1e2 * float(np.max(b)))

    # 2) least squares on log S: every batch size counts by its relative error
    def resid(p):
        return p[0] + np.log1p(np.exp(p[1]) / b) - np.log(s)

    r = optimize.least_squares(resid, [math.log(s0), math.log(c0)], method="trf")
    s_min, b_crit = float(np.exp(r.x[0])), float(np.exp(r.x[1]))
    sse = float(np.sum(r.fun**2))
    lo = hi = math.nan
    # 3) the interval: t on log B_crit, covariance s^2 (J^T J)^-1
    if n > 2:
        try:
            cov = np.linalg.inv(r.jac.T @ r.jac) * sse / (n - 2)
            half = float(stats.t.ppf(0.5 + level / 2, n - 2) * math.sqrt(max(cov[1, 1], 0.0)))
            lo, hi = b_crit * math.exp(-half), b_crit * math.exp(half)
        except np.linalg.LinAlgError:
            pass
    return HyperbolaFit(s_min, b_crit, s_min * b_crit, n, nb, math.sqrt(sse / n), lo, hi, level)


def noise_scale_summary(measurements: pd.DataFrame | Iterable[Mapping], by: str | Sequence[str] = (), level=0.95):
    """Mean and CI of the gradient-noise scale B_simple, |G|^2 and tr(Sigma) over repeated
    measurements (``gradient_noise_scale`` dicts with labels such as seed, epoch, batch_size).
    Returns one row per ``by`` cell (one row overall when ``by`` is empty)."""
    df = measurements if isinstance(measurements, pd.DataFrame) else pd.DataFrame(list(measurements))
    by = [by] if isinstance(by, str) else list(by)
    key = by or ["_all"]
    if not by:
        df = df.assign(_all=0)
    out = None
    for metric in ("b_simple", "g2", "trace_sigma"):
        s = summarize(df, key, metric, level).rename(
            columns={c: f"{metric}_{c}" for c in ("mean", "low", "high", "sd", "n", "values")}
        )
        s = s.drop(columns=["n_runs", "n_diverged", "seeds"])
        out = s if out is None else out.merge(s, on=key)
    return out.drop(columns=["_all"]) if not by else out


# ---------------------------------------------------------------------------------------------
# Learning rates


@dataclass(frozen=True)
class LRCheck:
    """Where the best learning rate of a grid lies."""

    best: float  # the grid value with the best mean
    interior: bool  # False when the best is the smallest or largest value of the grid
    edge: str | None  # "low", "high" or None
    grid: tuple[float, ...]
    best_interpolated: float  # vertex of a parabola in log LR through the best and its neighbours

    @property
    def text(self) -> str:
        if self.interior:
            return f"the best learning rate, {fmt(self.best)}, lies inside the grid {fmt(self.grid[0])} to {fmt(self.grid[-1])}"
        return (
            f"the best learning rate, {fmt(self.best)}, is the {'smallest' if self.edge == 'low' else 'largest'} value "
            f"of the grid: widen it {'downwards' if self.edge == 'low' else 'upwards'}"
        )


def best_lr(lrs, scores, higher_is_better: bool = True) -> LRCheck:
    """The best of ``scores`` (one mean per learning rate; NaN, e.g. diverged, counts as worst)."""
    lrs = np.asarray(lrs, np.float64)
    sc = np.asarray(scores, np.float64)
    order = np.argsort(lrs)
    lrs, sc = lrs[order], sc[order]
    if not np.any(np.isfinite(sc)):
        return LRCheck(math.nan, False, None, tuple(lrs), math.nan)
    sign = 1.0 if higher_is_better else -1.0
    filled = np.where(np.isfinite(sc), sign * sc, -np.inf)
    i = int(np.argmax(filled))
    edge = "low" if i == 0 else "high" if i == len(lrs) - 1 else None
    interp = float(lrs[i])
    if edge is None and np.all(np.isfinite(filled[i - 1 : i + 2])):
        u = np.log(lrs[i - 1 : i + 2])
        a, b_, _ = np.polyfit(u, filled[i - 1 : i + 2], 2)
        if a < 0:
            interp = float(np.exp(np.clip(-b_ / (2 * a), u[0], u[2])))
    return LRCheck(float(lrs[i]), edge is None and len(lrs) >= 3, edge, tuple(float(v) for v in lrs), interp)


def lr_interior(summary: pd.DataFrame, lr: str = "learning_rate", metric: str = "mean", higher_is_better=True):
    """``best_lr`` on a ``summarize`` table with one row per learning rate."""
    return best_lr(summary[lr], summary[metric], higher_is_better)


def lr_scaling_exponent(batch_sizes, best_lrs, level: float = 0.95) -> Effect:
    """The exponent p of best LR proportional to B^p (slope of log2 best LR on log2 B, t-interval):
    1 is the linear scaling rule, 0.5 the square-root rule."""
    e = slope_effect(batch_sizes, best_lrs, logx=True, logy=True, level=level)
    return Effect("exponent p in best LR ∝ B^p", e.estimate, e.low, e.high, e.n, level, e.method)


def scaling_rule_check(
    df: pd.DataFrame,
    metric: str,
    base_batch: int,
    base_lr: float,
    rule: str,
    batch: str = "batch_size",
    lr: str = "learning_rate",
    level: float = 0.95,
    higher_is_better: bool = True,
) -> pd.DataFrame:
    """Does an LR scaling rule keep ``metric`` where it was at (base_batch, base_lr)?

    For each batch size B of ``df`` (per-seed rows), the rule's LR is base_lr (B/base_batch)^p,
    p = 1 (``linear``, Goyal et al. 2017) or 0.5 (``sqrt``); the nearest grid LR in log scale is
    used (``lr_used``, with ``lr_off`` = used / rule). ``diff`` is mean(metric at B) minus
    mean(at the base), with a Welch interval; ``within`` is True when that interval contains 0;
    ``loss`` is True when the interval excludes 0 on the worse side.
    """
    p = {"linear": 1.0, "sqrt": 0.5}.get(rule)
    if p is None:
        raise ValueError(f"rule={rule!r} is not allowed; allowed: 'linear', 'sqrt'")
    base = df[(df[batch] == base_batch) & np.isclose(df[lr], base_lr)][metric]
    rows = []
    for b in sorted(df[batch].unique()):
        sub = df[df[batch] == b]
        grid = np.unique(sub[lr].to_numpy(np.float64))
        want = base_lr * (b / base_batch) ** p
        used = float(grid[np.argmin(np.abs(np.log(grid) - math.log(want)))])
        vals = sub[np.isclose(sub[lr], used)][metric]
        e = difference_effect(vals, base, level)
        m, lo, hi = mean_ci(vals, level)
        worse = (e.high < 0) if higher_is_better else (e.low > 0)
        rows.append(
            {
                batch: b,
                "lr_rule": want,
                "lr_used": used,
                "lr_off": used / want,
                "mean": m,
                "low": lo,
                "high": hi,
                "n": int(np.isfinite(vals.to_numpy(np.float64)).sum()),
                "n_runs": len(vals),
                "diff": e.estimate,
                "diff_low": e.low,
                "diff_high": e.high,
                "within": bool(e.has_ci and e.low <= 0 <= e.high),
                "loss": bool(e.has_ci and worse),
            }
        )
    return pd.DataFrame(rows)


def rank_agreement(a: Mapping | pd.Series, b: Mapping | pd.Series) -> Effect:
    """Kendall's tau between two scorings of the same items (e.g. optimizers at defaults and
    tuned), with the exact or asymptotic significance as the interval-free evidence; the
    returned Effect carries tau as its estimate and no interval."""
    a, b = pd.Series(a, dtype=float), pd.Series(b, dtype=float)
    common = [k for k in a.index if k in b.index and np.isfinite(a[k]) and np.isfinite(b[k])]
    if len(common) < 2:
        return Effect("Kendall tau", math.nan, math.nan, math.nan, len(common))
    tau = float(stats.kendalltau(a[common], b[common]).statistic)
    return Effect("Kendall tau", tau, math.nan, math.nan, len(common), method="Kendall tau")


# ---------------------------------------------------------------------------------------------
# Verdicts


@dataclass(frozen=True)
class Verdict:
    """A claim of the article judged against a measurement."""

    claim: str  # the claim, in words
    label: str  # "supported" | "not supported" | "depends on <condition>" | "insufficient data"
    text: str  # the reason, with the numbers formatted
    effects: tuple[Effect, ...] = field(default=(), repr=False)

    @property
    def supported(self) -> bool:
        return self.label == SUPPORTED

    @property
    def markdown(self) -> str:
        """'**Supported.** <text>': the body of a boxed Verdict."""
        return f"**{self.label[0].upper() + self.label[1:]}.** {self.text}"

    def __str__(self) -> str:
        return f"{self.claim}: {self.label}. {self.text}"


def verdict(
    claim: str,
    effect: Effect,
    direction: int = 1,
    null: float = 0.0,
    measured_as: str | None = None,
    favour: str | None = None,
    against: str | None = None,
) -> Verdict:
    """Judge ``claim`` by ``effect``: the claim predicts effect > ``null`` (``direction`` = +1),
    < ``null`` (-1), or != ``null`` (0).

    supported: the interval excludes ``null`` on the claimed side; not supported: it excludes
    ``null`` on the other side (the opposite holds) or contains it (consistent with no effect);
    insufficient data: no interval (fewer than two values, or one seed per cell).
    ``favour`` / ``against`` replace the default wording of the two directions.
    """
    if direction not in (-1, 0, 1):
        raise ValueError(f"direction={direction!r} is not allowed; allowed: -1, 0, 1")
    what = measured_as or effect.name
    shown = f"{what} = {effect.format()}"
    if not effect.has_ci:
        return Verdict(
            claim,
            INSUFFICIENT,
            f"{shown}: no confidence interval, so no verdict (run more seeds or grid points).",
            (effect,),
        )
    above, below = effect.low > null, effect.high < null
    if direction == 0:
        if above or below:
            return Verdict(claim, SUPPORTED, f"{shown}: the interval excludes {fmt(null)}.", (effect,))
        return Verdict(
            claim, NOT_SUPPORTED, f"{shown}: the interval contains {fmt(null)}, consistent with no effect.", (effect,)
        )
    right, wrong = (above, below) if direction > 0 else (below, above)
    if right:
        tail = favour or f"the interval lies {'above' if direction > 0 else 'below'} {fmt(null)}"
        return Verdict(claim, SUPPORTED, f"{shown}: {tail}.", (effect,))
    if wrong:
        tail = against or f"the interval lies {'below' if direction > 0 else 'above'} {fmt(null)}: the opposite holds"
        return Verdict(claim, NOT_SUPPORTED, f"{shown}: {tail}.", (effect,))
    return Verdict(
        claim, NOT_SUPPORTED, f"{shown}: the interval contains {fmt(null)}, consistent with no effect.", (effect,)
    )


def consistency_verdict(
    claim: str, effect: Effect, value: float, measured_as: str | None = None, margin: float | None = None
) -> Verdict:
    """Judge a claim that ``effect`` equals ``value`` (e.g. a change of 0, a scaling exponent of 1).

    Without ``margin``: supported when the interval contains ``value``, not supported when it
    excludes it. With ``margin`` (an equivalence test): supported when the whole interval lies
    within ``value`` +- ``margin``; not supported when it excludes ``value``; otherwise
    insufficient data (the interval contains ``value`` but is too wide to call it equal).
    """
    what = measured_as or effect.name
    shown = f"{what} = {effect.format()}"
    if not effect.has_ci:
        return Verdict(claim, INSUFFICIENT, f"{shown}: no confidence interval, so no verdict.", (effect,))
    if margin is not None and value - margin <= effect.low and effect.high <= value + margin:
        return Verdict(claim, SUPPORTED, f"{shown}: the interval lies within {fmt(value)} ± {fmt(margin)}.", (effect,))
    if effect.low <= value <= effect.high:
        if margin is None:
            return Verdict(claim, SUPPORTED, f"{shown}: the interval contains {fmt(value)}.", (effect,))
        return Verdict(
            claim,
            INSUFFICIENT,
            f"{shown}: the interval contains {fmt(value)} but reaches beyond ± {fmt(margin)}: too wide to decide.",
            (effect,),
        )
    side = "below" if effect.high < value else "above"
    return Verdict(claim, NOT_SUPPORTED, f"{shown}: the interval lies {side} {fmt(value)}.", (effect,))


def combine_verdicts(claim: str, by_condition: Mapping[str, Verdict], condition: str) -> Verdict:
    """One verdict from verdicts under several values of ``condition`` (e.g. the budget).

    supported: all are; depends on <condition>: some are supported and some not supported;
    not supported: none is supported and at least one is not supported; insufficient data:
    otherwise (all insufficient, or supported ones beside insufficient ones: not shown everywhere).
    """
    labels = [v.label for v in by_condition.values()]
    parts = "; ".join(f"{k}: {v.label} ({v.text.rstrip('.')})" for k, v in by_condition.items())
    effects = tuple(e for v in by_condition.values() for e in v.effects)
    yes = [k for k, v in by_condition.items() if v.label == SUPPORTED]
    no = [k for k, v in by_condition.items() if v.label == NOT_SUPPORTED]
    if labels and all(lab == SUPPORTED for lab in labels):
        return Verdict(claim, SUPPORTED, parts + ".", effects)
    if yes and no:
        return Verdict(
            claim,
            f"depends on {condition}",
            f"supported for {', '.join(yes)}, not for {', '.join(no)}. {parts}.",
            effects,
        )
    if no:
        return Verdict(claim, NOT_SUPPORTED, parts + ".", effects)
    return Verdict(claim, INSUFFICIENT, parts + ".", effects)


def not_run(claim: str, parameter: str, value) -> Verdict:
    """The verdict of a claim whose experiment these parameters left out (a reader's smaller grid)."""
    return Verdict(claim, NOT_RUN, f"`{value}` is not in the parameter `{parameter}` of this build; add it to run it.")


def glue_verdict(name: str, v: Verdict) -> Verdict:
    """Glue ``v`` for a chapter: its Markdown body under ``name`` (``{glue:md}`name```) and its
    label under ``<name>-label``. Returns ``v``."""
    from IPython.display import Markdown
    from myst_nb import glue

    glue(name, Markdown(v.markdown), display=False)
    glue(f"{name}-label", v.label, display=False)
    return v


def best_per_group(
    summary: pd.DataFrame, group: str, over: str = "learning_rate", metric: str = "mean", higher_is_better=True
) -> pd.DataFrame:
    """For each value of ``group`` (e.g. batch_size) in a ``summarize`` table over (group, over),
    the row whose ``metric`` is best (NaN counts as worst), with ``interior`` (False when that
    ``over`` value is an edge of the group's grid) and ``best_interpolated`` (see ``best_lr``)."""
    rows = []
    for _, sub in summary.groupby(group, sort=True):
        check = best_lr(sub[over], sub[metric], higher_is_better)
        if not math.isfinite(check.best):
            continue
        row = sub[np.isclose(sub[over], check.best)].iloc[0].to_dict()
        row.update(interior=check.interior, edge=check.edge, best_interpolated=check.best_interpolated)
        rows.append(row)
    return pd.DataFrame(rows)
