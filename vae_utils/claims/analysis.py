"""Statistics behind the strategy chapters that are not tests: intervals over seeds,
steps-to-target, the McCandlish hyperbola, and where the best learning rate of a grid lies.

    from vae_utils import analysis as A
    cells = A.summarize(df, ["batch_size"], "test_elbo")          # mean, 95% CI, n, per-seed values
    t = A.steps_to_target_table(histories, -25.0, keep=["batch_size"])  # updates to a target, per run
    fit = A.fit_hyperbola(t.batch_size, t.steps_to_target)       # S_min, B_crit (with a CI), E_min
    A.best_lr(lrs, mean_scores).interior                         # does the grid bracket the best rate?

Every interval is a two-sided ``level`` t-interval (of a mean over seeds; of log B_crit in the
fit). Tests, p-values and verdicts live elsewhere: ``vae_utils.claims.stats`` (estimates and tests) and
``vae_utils.claims.verdicts`` (the claims' outcomes under Holm). Nothing here imports TensorFlow;
everything works on NumPy arrays and pandas DataFrames (``vae_utils.experiments.load_results``
/ ``load_histories``).
"""

from __future__ import annotations

import math
from collections.abc import Sequence
from dataclasses import dataclass

import numpy as np
import pandas as pd
from scipy import optimize, stats

from .stats import fmt

__all__ = [
    "HyperbolaFit",
    "LRCheck",
    "mean_ci",
    "summarize",
    "steps_to_target",
    "steps_to_target_table",
    "fit_hyperbola",
    "best_lr",
]


def _finite(values) -> np.ndarray:
    a = np.asarray(list(values) if not isinstance(values, np.ndarray) else values, dtype=np.float64).ravel()
    return a[np.isfinite(a)]


def _pairs(x, y):
    x, y = np.asarray(x, np.float64).ravel(), np.asarray(y, np.float64).ravel()
    if len(x) != len(y):
        raise ValueError(f"x has {len(x)} values, y has {len(y)}; allowed: the same length")
    ok = np.isfinite(x) & np.isfinite(y)
    return x[ok], y[ok]


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
