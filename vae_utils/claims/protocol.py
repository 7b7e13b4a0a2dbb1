"""The protocol of the strategy chapters: tune on some seeds, judge on others; where training breaks.

    from vae_utils import protocol as P
    tuned = P.tune(tuning_runs, over="learning_rate", by="batch_size")   # chosen on validation ELBO
    judged = P.at_tuned(evaluation_runs, tuned, by="batch_size")          # the runs the verdicts use
    P.breaking_rates(scan_runs, by="batch_size")                          # per seed: the first rate that breaks
    P.dithered_ladder([0.016, 0.032, 0.064], seed=3)                       # that seed's ladder, shifted

Why two sets of seeds: a configuration picked as the best of a grid looks better on the runs it was
picked from than it is (the winner's curse), and a verdict that compares it with anything else
inherits that bias. So the chapters choose learning rates, winners and baselines with *tuning
seeds*, on the validation ELBO, and judge them with other *evaluation seeds*, on test metrics:
choice and verdict never share data. A run is *unstable* when its loss diverged or a held-out
bound is not finite; in a tuning grid it counts as the worst possible value, never as missing.
Nothing here imports TensorFlow.
"""

from __future__ import annotations

import math
from collections.abc import Sequence

import numpy as np
import pandas as pd

from .analysis import best_lr, fit_hyperbola, steps_to_target_table

__all__ = [
    "unstable",
    "floored",
    "outcome_values",
    "tune",
    "at_tuned",
    "breaking_rates",
    "dithered_ladder",
    "seed_spread",
    "critical_batch_curve",
]


def _by(by) -> list[str]:
    return [by] if isinstance(by, str) else list(by or ())


def unstable(runs: pd.DataFrame) -> pd.Series:
    """True for runs whose loss diverged or whose held-out ELBO or NLL is not finite."""
    bad = runs["status"].ne("ok")
    for metric in ("test_elbo", "test_nll"):
        if metric in runs:
            bad |= ~np.isfinite(runs[metric].to_numpy(np.float64))
    return bad


def floored(runs: pd.DataFrame, metric: str, floor: float) -> pd.DataFrame:
    """``runs`` with ``metric`` of every unstable run set to ``floor`` (e.g. the untrained model's
    test ELBO, ``evaluation.untrained_elbo``) and a column ``floored``: for figures and tables,
    where a setting that breaks training is shown at its best possible value, never dropped.

    Never compute an effect size from floored values: the floor is a choice, not a measurement
    (another floor moves the effect), and arms that both diverge on every seed would differ by
    exactly 0. Compare arms with ``stats.with_divergence(outcome_values(a), outcome_values(b))``:
    divergence is an outcome of its own there."""
    bad = unstable(runs)
    return runs.assign(**{metric: runs[metric].where(~bad, floor), "floored": bad})


def outcome_values(runs: pd.DataFrame, metric: str = "test_elbo", seed: str = "seed") -> pd.Series:
    """``metric`` per seed with NaN for every unstable run, whatever a ``floored`` column holds:
    the input ``stats.with_divergence`` reads (a non-finite value is a run that diverged)."""
    if runs[seed].duplicated().any():
        dup = sorted(set(runs[seed][runs[seed].duplicated()]))
        raise ValueError(f"runs has duplicate seeds {dup}; allowed: one run per seed (one arm)")
    values = runs[metric].to_numpy(np.float64).copy()
    bad = unstable(runs) | (runs["floored"].astype(bool) if "floored" in runs else False)
    values[bad.to_numpy()] = np.nan
    return pd.Series(values, index=pd.Index(runs[seed].to_numpy(), name=seed), name=metric)


def tune(
    runs: pd.DataFrame,
    over: str = "learning_rate",
    by: str | Sequence[str] = (),
    metric: str = "val_elbo",
    higher_is_better: bool = True,
) -> pd.DataFrame:
    """For each group of ``by``, the value of ``over`` whose runs have the best mean ``metric``.

    An unstable run counts as the worst possible value, so a rate that breaks one seed in three is
    never chosen over one that trains them all. Returns one row per group: the ``by`` columns,
    ``over`` (the choice), ``mean`` (its mean metric over the stable runs), ``n`` (runs),
    ``n_unstable``, ``interior`` (False when the choice is the grid's smallest or largest value)
    and ``edge`` ("low", "high" or None), ``grid`` (the values tried)."""
    by = _by(by)
    sign = 1.0 if higher_is_better else -1.0
    scored = runs.assign(_score=np.where(unstable(runs), -np.inf, sign * runs[metric].to_numpy(np.float64)))
    rows = []
    for key, group in scored.groupby(by, sort=True) if by else [((), scored)]:
        key = key if isinstance(key, tuple) else (key,)
        cells = group.groupby(over)["_score"].mean()  # -inf when any run of the cell broke
        best, interior, edge = _best_cell(cells)
        chosen = group[group[over] == best] if best is not None else group.iloc[:0]
        rows.append(
            dict(zip(by, key, strict=True))
            | {
                over: best,
                "mean": sign * float(chosen["_score"].mean()) if len(chosen) else math.nan,
                "n": len(chosen),
                "n_unstable": int(np.isinf(chosen["_score"]).sum()),
                "interior": interior,
                "edge": edge,
                "grid": tuple(cells.index),
            }
        )
    return pd.DataFrame(rows, columns=[*by, over, "mean", "n", "n_unstable", "interior", "edge", "grid"])


def _best_cell(cells: pd.Series):
    """(best value, interior, edge) of a Series of scores (higher better, -inf for broken cells)
    indexed by a grid: numeric grids also say whether the best is an edge of the grid."""
    if not np.isfinite(cells.to_numpy(np.float64)).any():
        return None, False, None
    if not pd.api.types.is_numeric_dtype(cells.index):
        return cells.idxmax(), None, None
    check = best_lr(cells.index.to_numpy(np.float64), cells.to_numpy())
    return cells.index[np.isclose(cells.index.to_numpy(np.float64), check.best)][0], check.interior, check.edge


def at_tuned(
    runs: pd.DataFrame, tuned: pd.DataFrame, over: str = "learning_rate", by: str | Sequence[str] = ()
) -> pd.DataFrame:
    """The rows of ``runs`` (evaluation seeds) at the value ``tune`` chose for their group."""
    by = _by(by)
    keep = np.zeros(len(runs), dtype=bool)
    for _, choice in tuned.iterrows():
        match = np.isclose(runs[over].to_numpy(np.float64), choice[over])
        for col in by:
            match &= (runs[col] == choice[col]).to_numpy()
        keep |= match
    return runs[keep]


def breaking_rates(
    runs: pd.DataFrame,
    by: str | Sequence[str] = (),
    rate: str = "learning_rate",
    seed: str = "seed",
    floor: float | None = None,
    metric: str = "test_elbo",
) -> pd.DataFrame:
    """Per group and seed, the smallest ``rate`` at which the run breaks down.

    A run breaks down when it is unstable, or, given a ``floor`` (e.g. the untrained model's test
    ELBO), when its ``metric`` ends below it: training that leaves the model worse than it started
    failed as surely as one that overflowed. A seed that no rate of the grid broke is *censored*:
    its value is the largest rate tried and ``censored`` is True (the breaking rate lies above it).
    Returns the ``by`` columns, ``seed``, ``breaking_rate``, ``censored``, ``largest_stable``
    (the largest rate below it) and ``breaking_point``: the geometric midpoint of the two, the
    estimate to use with a ``dithered_ladder`` (the breaking rate itself where one of them is missing)."""
    by = _by(by)
    broken = unstable(runs)
    if floor is not None:
        broken |= runs[metric].to_numpy(np.float64) < floor
    runs = runs.assign(_unstable=broken)
    rows = []
    for key, group in runs.groupby([*by, seed], sort=True):
        key = key if isinstance(key, tuple) else (key,)
        group = group.sort_values(rate)
        broke = group[group["_unstable"]]
        first = float(broke[rate].iloc[0]) if len(broke) else float(group[rate].iloc[-1])
        below = group[group[rate] < first][rate] if len(broke) else group[rate]
        rows.append(
            dict(zip([*by, seed], key, strict=True))
            | {
                "breaking_rate": first,
                "censored": not len(broke),
                "largest_stable": float(below.max()) if len(below) else math.nan,
            }
        )
    df = pd.DataFrame(rows, columns=[*by, seed, "breaking_rate", "censored", "largest_stable"])
    bracketed = ~df.censored & df.largest_stable.notna()
    midpoint = np.sqrt(df.largest_stable * df.breaking_rate)
    return df.assign(breaking_point=midpoint.where(bracketed, df.breaking_rate))


def dithered_ladder(rates: Sequence[float], seed: int, salt: int = 0) -> list[float]:
    """``rates`` (a geometric ladder) shifted up by a random fraction of one of its steps, drawn from (seed, salt).

    A breaking rate read off a fixed ladder is quantized: seeds whose true breaking rates differ by
    less than a step land on the same rung, so a trend smaller than a step shows as no trend at all
    with zero spread across seeds, and a test would call it settled. With every (seed, setting)
    on its own shifted ladder the rounding error is uniform and independent of the true value: the
    midpoint of the bracketing rungs (``breaking_rates``' ``breaking_point``) is then unbiased on
    the log scale, and the rounding shows up as seed-to-seed spread that the test accounts for."""
    rates = np.asarray(rates, np.float64)
    if rates.ndim != 1 or len(rates) < 2 or not (rates > 0).all():
        raise ValueError(f"rates={rates.tolist()!r} is not allowed; allowed: two or more positive rates")
    ratios = rates[1:] / rates[:-1]
    if not np.allclose(ratios, ratios[0], rtol=1e-6) or ratios[0] <= 1:
        raise ValueError(f"rates={rates.tolist()!r} is not allowed; allowed: a rising geometric ladder (one ratio)")
    shift = np.random.default_rng([int(seed), int(salt)]).uniform()
    return [float(r) for r in rates * ratios[0] ** shift]


def seed_spread(runs: pd.DataFrame, by: str | Sequence[str], metric: str = "test_elbo") -> float:
    """The median, over the groups of ``by``, of the standard deviation of ``metric`` across seeds
    (stable runs only): the seed-to-seed spread that a smallest effect of interest is judged against."""
    ok = runs[~unstable(runs)]
    sds = ok.groupby(_by(by))[metric].std(ddof=1).dropna()
    return float(sds.median()) if len(sds) else math.nan


def critical_batch_curve(
    histories: pd.DataFrame,
    targets: Sequence[float],
    batch: str = "batch_size",
    metric: str = "val_elbo",
    x: str = "steps",
    min_reached: float = 0.8,
) -> pd.DataFrame:
    """The critical batch size fitted at each validation target (McCandlish et al. 2018).

    ``histories``: one row per (run, evaluation) of the runs to use (one learning rate per batch
    size). For every target: steps to reach it per run (interpolated between evaluations), the
    share of runs per batch size that reached it, and the hyperbola S(B) = S_min (1 + B_crit / B)
    fitted on the runs that did; a target counts as ``usable`` when every batch size reached it in
    at least ``min_reached`` of its runs. B_crit's interval is a t-interval on log B_crit."""
    rows = []
    for target in targets:
        tt = steps_to_target_table(histories, target, metric=metric, x=x, keep=[batch])
        share = tt.groupby(batch)["reached"].mean()
        fit = fit_hyperbola(tt[batch], tt[f"{x}_to_target"])
        rows.append(
            {
                "target": float(target),
                "min_share_reached": float(share.min()) if len(share) else 0.0,
                "usable": bool(len(share) and share.min() >= min_reached),
                "b_crit": fit.b_crit,
                "b_crit_low": fit.b_crit_low,
                "b_crit_high": fit.b_crit_high,
                "s_min": fit.s_min,
                "e_min": fit.e_min,
                "n": fit.n,
            }
        )
    return pd.DataFrame(rows)
