"""Learning-rate analyses of the two rate chapters, moved out of the pages so they can be tested.

05_learning_rate: where the best rate of a grid lies, the *breaking rate* (per seed, where training
breaks down on a ladder of rates of its own above the best, shifted by a random fraction of a rung;
the median over the seeds by Kaplan–Meier, a seed that never broke censored at its top rung), the
updates a rate needs to reach a target, whether a small rate has stopped improving (a decision with its own Δ and three results) and where it ends,
schedules against a constant rate. 06_batch_lr: the rates the scaling rules give when the batch
grows, the runs of each rule, and its effect on the test ELBO.

    from vae_utils.claims import rates
    best = rates.best_rate(tuning)                   # by mean validation ELBO; a rate that breaks a seed never wins
    ladder = sweep([{**base, **l} for l in rates.break_ladders(best.rate, seeds, doublings=7)])
    rates.breaking_rate(ladder, best.rate, floor)    # the seeds' median breaking rate, censoring counted
    crossed = rates.crossings(history, target=-26.0) # per run: the updates to the target, or why there are none
    usable = rates.usable_rates(crossed[crossed.seed.isin(tuning_seeds)], best.rate)  # chosen on the tuning seeds
    slow = rates.updates_to_target(crossed[crossed.seed.isin(seeds)], usable)         # judged on the others
    p = rates.precision(long, history, delta=0.1)    # the convergence check, then the two measures
    p.check.outcome                                  # "converged", "still improving" or "undecided"

Every function takes the rows ``sweep`` returns (one per run) or the histories ``load_histories``
returns (one per run and epoch), and returns an ``Estimate``, a frame, or a small record. Light: no
TensorFlow; the figure functions import the plotting package when called.
"""

from __future__ import annotations

import math
from collections.abc import Sequence
from dataclasses import dataclass
from typing import NamedTuple

import numpy as np
import pandas as pd
from scipy import stats as sps

from ..core.optimizers import OPTIMIZERS
from ..publish.numbers import fmt, fmt_interval, fmt_level
from ..publish.scope import span
from . import protocol, stats
from .analysis import steps_to_target_table
from .stats import Estimate

__all__ = [
    "BestRate",
    "best_rate",
    "break_ladders",
    "survival_median",
    "Breaking",
    "breaking_rate",
    "breaking_values",
    "breakdowns",
    "crossings",
    "usable_rates",
    "updates_to_target",
    "end_of_run",
    "ConvergenceCheck",
    "convergence_check",
    "Precision",
    "precision",
    "schedule_runs",
    "schedule_effects",
    "RULES",
    "rule_rate",
    "scaling_arms",
    "rule_runs",
    "rule_effects",
    "scaling_exponent",
    "Drawn",
    "final_figure",
    "updates_figure",
    "long_run_figure",
    "schedules_figure",
    "breakdowns_table",
    "tuning_heatmaps",
    "rules_figure",
    "rates_table",
    "span_of",
]

CONVERGED, STILL_IMPROVING, UNDECIDED = "converged", "still improving", "undecided"


def _name(optimizer: str) -> str:
    """How figures and tables name an optimizer ("Adam", "SGD")."""
    return OPTIMIZERS[optimizer].words if optimizer in OPTIMIZERS else optimizer


def _shown(runs: pd.DataFrame, metric: str = "test_elbo") -> pd.DataFrame:
    """``runs`` with ``metric`` NaN where a run diverged: a figure draws those as crosses."""
    return runs.assign(**{metric: runs[metric].where(~protocol.unstable(runs))})


# ---------------------------------------------------------------------------------------------
# 05: the grid


@dataclass(frozen=True)
class BestRate:
    """The best rate of a grid by mean validation ELBO, and where it lies in words."""

    rate: float
    where: str  # "inside the grid", or which edge (then the grid should be widened)


def best_rate(grid: pd.DataFrame) -> BestRate:
    """The grid's rate with the best mean validation ELBO (``protocol.tune``: a rate at which any seed
    breaks down counts as the worst), and whether it lies inside the grid."""
    row = protocol.tune(grid, over="learning_rate").iloc[0]
    if row.learning_rate is None or not math.isfinite(row.learning_rate):
        return BestRate(math.nan, "nowhere: every rate of the grid broke down on some seed")
    if row.interior:
        return BestRate(float(row.learning_rate), "inside the grid")
    if row.edge is None:
        return BestRate(float(row.learning_rate), "in a grid too small to tell (fewer than three rates)")
    return BestRate(float(row.learning_rate), f"at the {row.edge} edge of the grid: widen it")


def break_ladders(best: float, seeds: Sequence[int], doublings: int, per_doubling: int = 2) -> list[dict]:
    """Per seed, the rates of its breaking-rate ladder as a sweep grid (``{"seed": s, "learning_rate":
    [...]}``): ``doublings × per_doubling`` rungs from ``best`` up, ``per_doubling`` to each doubling,
    the whole ladder shifted up by the seed's own random fraction of a rung (``protocol.dithered_ladder``)."""
    if not (math.isfinite(best) and best > 0):
        raise ValueError(f"best={best!r} is not allowed; allowed: a finite rate > 0 (the grid's best rate)")
    if doublings < 1 or per_doubling < 1:
        raise ValueError(f"doublings={doublings!r}, per_doubling={per_doubling!r} are not allowed; allowed: ≥ 1")
    ladder = [best * 2 ** (k / per_doubling) for k in range(doublings * per_doubling)]
    return [{"seed": int(s), "learning_rate": protocol.dithered_ladder(ladder, int(s))} for s in seeds]


def survival_median(values, censored, level: float = 0.95) -> tuple[float, float, float]:
    """The Kaplan–Meier median of right-censored ``values`` (``scipy.stats.ecdf``; a curve that stays at
    exactly one half takes the midpoint to the next event, as a sample median does; ``inf`` when it never
    reaches one half) and a distribution-free ``level`` interval for the median: the order statistics of
    the binomial sign test (``scipy.stats.quantile_test``), at least ``level`` for any continuous
    distribution. A censored value is a lower bound, so the lower end reads the values as they are and the
    upper end reads each censored one as ``inf`` (an upper end among them is ``inf``). Kaplan–Meier's
    log–log band, used before, missed the truth above its upper end 5.5 % of the time at ten values."""
    x, c = np.asarray(values, np.float64), np.asarray(censored, bool)
    if not len(x) or not np.isfinite(x).all():
        raise ValueError(f"values={x.tolist()!r} are not allowed; allowed: one or more finite numbers")
    sf = sps.ecdf(sps.CensoredData.right_censored(x, c)).sf
    q, p = sf.quantiles, sf.probabilities
    events = np.sort(x[~c])
    at = np.flatnonzero(p <= 0.5 + 1e-9)
    if not len(at):
        median = math.inf
    else:
        i, after = at[0], events[events > q[at[0]]]
        median = float((q[i] + after[0]) / 2) if abs(p[i] - 0.5) < 1e-9 and len(after) else float(q[i])
    ci = lambda data: sps.quantile_test(data, q=float(np.median(x)), p=0.5).confidence_interval(level)
    low, high = float(ci(x).low), float(ci(np.where(c, math.inf, x)).high)  # NaN: too few values for the level
    return median, -math.inf if math.isnan(low) else low, math.inf if math.isnan(high) else high


@dataclass(frozen=True)
class Breaking:
    """The breaking rate measured on dithered ladders: ``per_seed`` (``protocol.breaking_rates``: each
    seed's last stable and first broken rung, or censored at its top rung), and the Kaplan–Meier
    median over the seeds on the log rate with its ``level`` order-statistic interval (``survival_median``)."""

    per_seed: pd.DataFrame
    best: float
    median: float
    low: float
    high: float
    level: float = 0.95

    @property
    def seeds(self) -> int:
        return len(self.per_seed)

    @property
    def never(self) -> int:
        """Seeds that no rung of their ladder broke (right-censored at their top rung)."""
        return int(self.per_seed.censored.sum())

    @property
    def bound(self) -> float:
        """The lowest top rung of the censored seeds: every one of them ran stably up to it."""
        return float(self.per_seed[self.per_seed.censored].breaking_rate.min()) if self.never else math.nan

    @property
    def estimate(self) -> Estimate:
        """The median as an ``Estimate`` (no p-value; the upper end NaN where the band never reaches one half)."""
        high = self.high if math.isfinite(self.high) else math.nan
        return Estimate("median breaking rate (Kaplan–Meier on log rate)", self.median, self.low, high, math.nan,
                        n=self.seeds, level=self.level, method="Kaplan–Meier, order-statistic interval", scale="log",
                        note=f"{self.never} of {self.seeds} seeds never broke down on their ladders" if self.never else "")  # fmt: skip


def breaking_rate(ladder: pd.DataFrame, best: float, floor: float | None = None, level: float = 0.95) -> Breaking:
    """The ``Breaking`` of the ladder runs (``break_ladders``): a run breaks down when it is unstable
    or, given a ``floor``, ends with a test ELBO below it. Each seed's breaking rate is the geometric
    midpoint of its last stable and first broken rung (``breaking_point``); a seed that never broke
    is right-censored at its top rung: counted, never dropped."""
    per_seed = protocol.breaking_rates(ladder, floor=floor)
    at = per_seed.breaking_point.where(~per_seed.censored, per_seed.breaking_rate)
    m, lo, hi = survival_median(np.log(at.to_numpy(np.float64)), per_seed.censored.to_numpy(bool), level)
    exp = lambda v: math.exp(v) if math.isfinite(v) else v
    return Breaking(per_seed, float(best), exp(m), exp(lo), exp(hi), level)


def _interval(e: float, low: float, high: float, level: float, top: float) -> str:
    """'0.09 (95% CI 0.064 to 0.13)', or with an open upper end: '0.09 (95% CI 0.064 to above 0.5)'."""
    if math.isfinite(high):
        return fmt_interval(e, low, high, level)
    return f"{fmt(e)} ({fmt_level(level)} CI {fmt(low)} to above {fmt(top)})"


def breaking_values(b: Breaking) -> dict[str, str]:
    """The page's words: ``break`` (the median with its interval, or a lower bound when too many seeds
    never broke for a median), ``break-ratio`` (over the best rate, with the same interval),
    ``break-counts`` (how many seeds broke, how many never did and up to where) and ``break-summary``
    (the sentences that say them)."""
    never = f"{b.never} of {b.seeds} seeds never broke up to {fmt(b.bound)}" if b.never else ""
    counts = f"{b.seeds - b.never} of {b.seeds} seeds broke down on their ladders"
    counts += f" and {b.never} never broke up to {fmt(b.bound)}" if b.never else ""
    if not math.isfinite(b.median):
        bound, ratio = f"at least {fmt(b.bound)}", f"at least {fmt(b.bound / b.best)}"
        summary = (f"Too many seeds never broke down for a median: {never}, so the median breaking rate is "
                   f"{bound}, {ratio} times the best rate.")  # fmt: skip
        return {"break": f"{bound}: {never}", "break-ratio": ratio, "break-counts": counts, "break-summary": summary}
    top = float(b.per_seed.breaking_rate.max())
    median = _interval(b.median, b.low, b.high, b.level, top)
    ratio = _interval(b.median / b.best, b.low / b.best, b.high / b.best, b.level, top / b.best)
    summary = (f"Here {counts}. Their median breaking rate is {median}: {ratio} times the best rate, "
               f"{fmt(b.best)}.")  # fmt: skip
    return {"break": median, "break-ratio": ratio, "break-counts": counts, "break-summary": summary}


def breakdowns(b: Breaking, ladder: pd.DataFrame) -> pd.DataFrame:
    """Per seed: its ladder, the last rung it ran stably, the first that broke it (or none), and its
    breaking rate (the geometric midpoint of the two; above the top rung when none broke it)."""
    rows = []
    for s in b.per_seed.itertuples():
        rungs = ladder[ladder.seed == s.seed].learning_rate
        stable = fmt(s.largest_stable) if math.isfinite(s.largest_stable) else "none"
        rows.append({"seed": s.seed, "ladder": f"{fmt(rungs.min())} to {fmt(rungs.max())} ({len(rungs)} rungs)",
                     "last stable rung": stable, "first rung that broke": "none" if s.censored else fmt(s.breaking_rate),
                     "breaking rate": f"above {fmt(s.breaking_rate)} (censored)" if s.censored else fmt(s.breaking_point)})  # fmt: skip
    return pd.DataFrame(rows)


def crossings(history: pd.DataFrame, target: float) -> pd.DataFrame:
    """Per run (``learning_rate``, ``seed``, ``run_id``): the updates until its validation ELBO first
    reaches ``target`` (interpolated between epochs, ``steps_to_target``) and ``crossed``: it reached the
    target between two evaluations. A run that never reaches it, or is past it at the first evaluation,
    gives only a bound."""
    tt = steps_to_target_table(history, target, keep=["learning_rate", "seed"])
    if not len(tt):
        return pd.DataFrame(columns=["run_id", "learning_rate", "seed", "steps_to_target", "crossed"])
    return tt.assign(crossed=tt.reached & ~tt.at_first).drop(columns=["reached", "at_first"])


def usable_rates(crossed: pd.DataFrame, best: float, share: float = 0.8) -> list[float]:
    """The rates up to ``best`` at which at least ``share`` of the seeds of ``crossed`` (``crossings``)
    cross the target within the budget. Pass the tuning seeds' crossings, and a ``best`` chosen on them:
    rates chosen on the runs that judge them carry those runs' luck into the slope (the best rate's runs
    are the lucky ones; ``tests/test_selection_simulations.py``)."""
    if not len(crossed) or not math.isfinite(best):
        return []
    reach = crossed.groupby("learning_rate").crossed.mean()
    return [float(r) for r in reach.index[(reach.index <= best * (1 + 1e-9)) & (reach >= share)]]


def updates_to_target(crossed: pd.DataFrame, rates: Sequence[float]) -> pd.DataFrame:
    """The runs of ``crossed`` (``crossings``) at the ``rates`` that crossed the target: the runs whose
    updates to the target the slope is fitted on."""
    at = np.isclose(crossed.learning_rate.to_numpy(np.float64)[:, None], np.asarray(list(rates), float)[None, :])
    return crossed[at.any(axis=1) & crossed.crossed.astype(bool).to_numpy()].reset_index(drop=True)


# ---------------------------------------------------------------------------------------------
# 05: precision, given time to converge


def end_of_run(history: pd.DataFrame, fraction: float = 0.25) -> pd.DataFrame:
    """Per run (``learning_rate``, ``seed``), over the last ``fraction`` of its epochs: ``gain``, the
    least-squares slope of the validation ELBO per epoch times the number of epochs in that window
    (nats: what the run still gained there, less noisy than last minus first), and ``movement``, the
    spread of the epoch-to-epoch changes, SD / √2 (nats: how much the model still moves)."""
    rows = []
    for (lr, seed), g in history.groupby(["learning_rate", "seed"], sort=True):
        epochs = int(g.epochs.iloc[0]) if "epochs" in g else int(g.epoch.max())
        w = g[g.epoch > (1 - fraction) * epochs].sort_values("epoch")
        x, y = w.epoch.to_numpy(np.float64), w.val_elbo.to_numpy(np.float64)
        ok = len(x) >= 2 and np.isfinite(y).all()
        gain = float(np.polyfit(x, y, 1)[0] * len(x)) if ok else math.nan
        move = float(np.std(np.diff(y), ddof=0) / math.sqrt(2)) if ok and len(x) >= 3 else math.nan
        rows.append({"learning_rate": lr, "seed": seed, "gain": gain, "movement": move})
    return pd.DataFrame(rows, columns=["learning_rate", "seed", "gain", "movement"])


@dataclass(frozen=True)
class ConvergenceCheck:
    """Has a run stopped improving? Its gain over the last quarter (``end_of_run``), mean over seeds
    with an interval (95%, or the nominal level of a look), against the check's own Δ: *converged*
    when the interval lies wholly below Δ, *still improving* when it lies wholly above, *undecided*
    otherwise (or without an interval)."""

    gain: Estimate
    delta: float
    rate: float
    epochs: int

    @property
    def outcome(self) -> str:
        if not self.gain.has_interval:
            return UNDECIDED
        return (
            CONVERGED if self.gain.high < self.delta else STILL_IMPROVING if self.gain.low > self.delta else UNDECIDED
        )

    @property
    def words(self) -> str:
        """The result for the page, and what it rests on."""
        d, r = f"Δ = {fmt(self.delta)} nats", fmt(self.rate)
        if not self.gain.has_interval:
            return f"the check is undecided (too few seeds for an interval to set against {d})"
        return {
            CONVERGED: f"the rate {r} has converged (the whole interval lies below {d})",
            STILL_IMPROVING: f"the rate {r} is still improving (the whole interval lies above {d})",
            UNDECIDED: f"the check is undecided (the interval reaches both sides of {d})",
        }[self.outcome]

    @property
    def reason(self) -> str:
        """Why a claim that needs a converged run cannot be tested here, and what would decide it."""
        gained = f"over the last quarter of {self.epochs} epochs its validation ELBO gained {self.gain.format()}"
        d = f"the check's Δ of {fmt(self.delta)} nats"
        if self.outcome == STILL_IMPROVING:
            return (f"The convergence check found the rate {fmt(self.rate)} still improving: {gained}, wholly above "
                    f"{d}. A longer run (`precise_epochs`) would let it converge.")  # fmt: skip
        where = (
            f"an interval that reaches both sides of {d}" if self.gain.has_interval else "too few seeds for an interval"
        )
        return (f"The convergence check of the rate {fmt(self.rate)} was undecided: {gained}, {where}. More epochs "
                "(`precise_epochs`) or more seeds would decide it.")  # fmt: skip


def convergence_check(
    gains: pd.Series, delta: float, rate: float, epochs: int, level: float = 0.95
) -> ConvergenceCheck:
    """The ``ConvergenceCheck`` of per-seed ``gains`` (nats) at ``rate`` after ``epochs``, its interval at
    ``level`` (a check made at several looks uses their nominal level: ``learning_rate.judge_look``)."""
    if not (isinstance(delta, int | float) and math.isfinite(delta) and delta > 0):
        raise ValueError(f"delta={delta!r} is not allowed; allowed: a finite number of nats > 0")
    name = f"validation ELBO gained over the last quarter at {fmt(rate)}"
    gain = stats.one_sample(gains, level=level, name=name, unit="nats")
    return ConvergenceCheck(gain, float(delta), float(rate), int(epochs))


@dataclass(frozen=True)
class Precision:
    """The precision test of a small and a large rate trained long: the check that the small rate
    converged, then two seed-matched measures, small minus large: the final test ELBO (nats), and
    log2 of how much the model still moves at the end (doublings)."""

    check: ConvergenceCheck
    final_elbo: Estimate
    movement: Estimate
    diverged: int
    runs: int
    small: float
    large: float

    @property
    def testable(self) -> bool:
        """Both runs finished and the small rate converged: only then is the comparison fair."""
        return self.diverged == 0 and self.check.outcome == CONVERGED

    @property
    def reason(self) -> str:
        if self.diverged:
            return f"{self.diverged} of the {self.runs} long runs diverged."
        return self.check.reason

    def values(self) -> dict[str, object]:
        """The numbers and words the page states (for ``verdicts.publish_values``)."""
        return {"lo": self.small, "hi": self.large, "long": self.check.epochs, "lo-gain": self.check.gain,
                "check": self.check.words, "check-delta": self.check.delta,
                "check-level": fmt_level(self.check.gain.level)}  # fmt: skip


def precision(
    long: pd.DataFrame, history: pd.DataFrame, delta: float, fraction: float = 0.25, level: float = 0.95
) -> Precision:
    """``Precision`` of the ``long`` runs (two rates, the same seeds) from their ``history``; ``delta``
    is the convergence check's Δ (nats of gain over the last ``fraction`` of the run), ``level`` its
    interval's."""
    pair = sorted(long.learning_rate.unique())
    if len(pair) != 2:
        raise ValueError(
            f"long runs at rates {pair} are not allowed; allowed: runs at exactly two rates, small and large"
        )
    small, large = pair
    ends = end_of_run(history[history.run_id.isin(long.run_id)], fraction).set_index(["learning_rate", "seed"])
    test = long.set_index(["learning_rate", "seed"]).test_elbo
    lo, hi = fmt(small), fmt(large)
    final = stats.paired(test.loc[small], test.loc[large], name=f"test ELBO({lo}) − test ELBO({hi})", unit="nats")
    move = np.log2(ends.movement)
    movement = stats.paired(move.loc[small], move.loc[large], unit="doublings",
                            name=f"log2 end-of-run movement({lo}) − log2 movement({hi})")  # fmt: skip
    check = convergence_check(ends.gain.loc[small], delta, small, int(long.epochs.iloc[0]), level)
    return Precision(check, final, movement, int(protocol.unstable(long).sum()), len(long), small, large)


# ---------------------------------------------------------------------------------------------
# 05: schedules


def schedule_runs(grid: pd.DataFrame, scheduled: pd.DataFrame) -> pd.DataFrame:
    """The runs of the schedules and, as ``lr_schedule`` "constant", the grid's runs at their peaks."""
    constant = grid[grid.learning_rate.isin(scheduled.learning_rate.unique())].assign(lr_schedule="constant")
    return pd.concat([constant, scheduled], ignore_index=True)


def schedule_effects(runs: pd.DataFrame, schedule: str) -> tuple[dict[str, Estimate], Estimate | None]:
    """Per peak rate, test ELBO(``schedule``) − test ELBO(constant) seed by seed (``with_divergence``:
    a diverged run is an outcome of its own, never a floor value); with two peaks, the interaction:
    the schedule's gain at the first peak minus at the second (seed-matched, diverged pairs dropped)."""
    effects, diffs = {}, []
    for lr in sorted(runs.learning_rate.unique()):
        at = runs[np.isclose(runs.learning_rate, lr)]
        a = protocol.outcome_values(at[at.lr_schedule == schedule])
        b = protocol.outcome_values(at[at.lr_schedule == "constant"])
        effects[f"peak {fmt(lr)}"] = stats.with_divergence(
            a, b, name=f"test ELBO({schedule}) − test ELBO(constant)", unit="nats"
        )
        diffs.append(a - b)
    if len(diffs) != 2:
        return effects, None
    name = "the schedule's gain at the first peak − at the second"
    return effects, stats.paired(*diffs, name=name, unit="nats")


# ---------------------------------------------------------------------------------------------
# 06: the scaling rules

RULES = {"linear": 1.0, "square root": 0.5}  # the exponent p in rate ∝ (batch growth)^p


def rule_rate(base: float, batch: int, base_batch: int, rule: str) -> float:
    """The rate a scaling rule gives at ``batch`` from ``base`` at ``base_batch``."""
    if rule not in RULES:
        raise ValueError(f"rule={rule!r} is not allowed; allowed: {', '.join(RULES)}")
    return float(base) * (batch / base_batch) ** RULES[rule]


def scaling_arms(tuned: pd.DataFrame, batch_sizes: Sequence[int]) -> pd.DataFrame:
    """The evaluation arms from the rates ``protocol.tune`` chose per optimizer and batch size: at the
    smallest batch its tuned rate ("tuned"); at every larger batch each rule's rate from it, exact, not
    the nearest grid point, and the rate tuned there ("retuned"). Columns optimizer, batch_size, rule,
    learning_rate."""
    b0, rows = min(batch_sizes), []
    for o, t in tuned.groupby("optimizer", sort=False):
        rate = t.set_index("batch_size").learning_rate
        rows.append((o, b0, "tuned", float(rate[b0])))
        for b in sorted(batch_sizes)[1:]:
            rows += [(o, b, rule, rule_rate(rate[b0], b, b0, rule)) for rule in RULES]
            rows.append((o, b, "retuned", float(rate[b])))
    return pd.DataFrame(rows, columns=["optimizer", "batch_size", "rule", "learning_rate"])


def rule_runs(evaluation: pd.DataFrame, arms: pd.DataFrame, optimizer: str, rule: str) -> pd.DataFrame:
    """The evaluation runs of one optimizer along one rule (the smallest batch's tuned runs first),
    with a column ``rule``."""
    mine = arms[(arms.optimizer == optimizer) & arms.rule.isin(["tuned", rule])]
    of = evaluation[evaluation.optimizer == optimizer]
    parts = [
        of[(of.batch_size == b) & np.isclose(of.learning_rate, lr)]
        for b, lr in zip(mine.batch_size, mine.learning_rate, strict=True)
    ]
    return pd.concat(parts, ignore_index=True).assign(rule=rule)


def rule_effects(runs: pd.DataFrame) -> dict[str, Estimate]:
    """Per larger batch of ``rule_runs``: test ELBO there − at the smallest batch, seed by seed, a
    diverged run an outcome of its own (``stats.with_divergence``); keys "4× larger batch"."""
    b0 = int(runs.batch_size.min())
    start = protocol.outcome_values(runs[runs.batch_size == b0])
    effects = {}
    for b in sorted(runs.batch_size.unique())[1:]:
        at = protocol.outcome_values(runs[runs.batch_size == b])
        name = f"test ELBO(batch {b}) − test ELBO(batch {b0})"
        effects[f"{b // b0}× larger batch"] = stats.with_divergence(at, start, name=name, unit="nats")
    return effects


def scaling_exponent(tuning: pd.DataFrame) -> Estimate:
    """The exponent p in best rate ∝ batch^p: the rate tuned per tuning seed and batch size, one
    log–log slope per seed, a t-interval over the seeds (``stats.per_seed_slope``)."""
    per_seed = protocol.tune(tuning, over="learning_rate", by=["batch_size", "seed"])
    return stats.per_seed_slope(per_seed, "batch_size", "learning_rate", logx=True, logy=True, name="p")


# ---------------------------------------------------------------------------------------------
# Figures and tables, each with the caption and alt text that say what it draws


class Drawn(NamedTuple):
    """A figure (or a table) and the words that describe it, for ``publish_figure``/``publish_table``:
    the caption's first sentence is its title, which says what is shown, never what it proves."""

    shown: object  # a matplotlib Figure, or a DataFrame
    caption: str
    alt: str = ""


_DOTS = "Mean and 95% interval over seeds, every seed a dot, runs that diverged as crosses"


def final_figure(grid: pd.DataFrame, best: float, window: float = 12.0) -> Drawn:
    """Test ELBO against the rate, the best rate dotted; the axis shows at most ``window`` nats below
    the best mean."""
    from .. import plots

    fig = plots.plot_metric_vs(_shown(grid), "learning_rate", "test_elbo", logx=True)
    ax, stable = fig.axes[0], grid[~protocol.unstable(grid)]
    ax.axvline(best, color="0.5", ls=":", lw=1.2)
    if len(stable):
        top = stable.groupby("learning_rate").test_elbo.mean().max()
        ax.set_ylim(max(stable.test_elbo.min(), top - window) - 0.3, stable.test_elbo.max() + 0.3)
    caption = (f"Test ELBO against the learning rate after a fixed budget. {_DOTS}; the dotted line marks the "
               f"best rate by validation ELBO; the axis shows at most the {fmt(window)} nats below the best mean.")  # fmt: skip
    return Drawn(fig, caption, "Test ELBO against the learning rate on a log axis, the best rate marked.")


def updates_figure(table: pd.DataFrame, target: float) -> Drawn:
    """Updates to the target against the rate (``updates_to_target``), log–log; a note when no rate qualified."""
    import matplotlib.pyplot as plt

    from .. import plots

    caption = (f"Updates until the validation ELBO first reaches {fmt(target)} nats, against the learning rate, "
               "for the rates up to the best. Mean and 95% interval over the seeds that reached it, every seed a dot.")  # fmt: skip
    alt = "Updates to reach the target validation ELBO against the learning rate, on log–log axes."
    if len(table):
        return Drawn(
            plots.plot_metric_vs(table, "learning_rate", "steps_to_target", logx=True, logy=True), caption, alt
        )
    fig, ax = plt.subplots(figsize=(6.4, 2))
    ax.axis("off")
    ax.text(0.5, 0.5, "No rate crossed the target between two evaluations.", ha="center", va="center")
    return Drawn(fig, caption, "No rate crossed the target between two evaluations.")


def long_run_figure(history: pd.DataFrame, window: float = 4.0) -> Drawn:
    """Validation ELBO per epoch, one colour per rate; the axis shows the ``window`` nats below the best."""
    from .. import plots

    fig = plots.plot_history(history, metrics=("val_elbo",), hue="learning_rate")
    top = history.val_elbo.max()
    fig.axes[0].set_ylim(top - window, top + 0.3)
    caption = ("Validation ELBO over a long run at a small and a large rate. Thin lines are seeds, thick lines "
               f"their mean; the axis shows the {fmt(window)} nats below the best value.")  # fmt: skip
    return Drawn(fig, caption, "Validation ELBO per epoch for a small and a large learning rate over a long run.")


def schedules_figure(runs: pd.DataFrame) -> Drawn:
    """Test ELBO per schedule (``schedule_runs``), one colour per peak rate."""
    from .. import plots

    fig = plots.plot_metric_vs(_shown(runs).assign(peak=runs.learning_rate), "lr_schedule", "test_elbo", hue="peak")
    caption = f"Test ELBO of each learning-rate schedule at each peak rate. {_DOTS}."
    return Drawn(fig, caption, "Test ELBO per learning-rate schedule, one colour per peak rate.")


def breakdowns_table(b: Breaking, ladder: pd.DataFrame) -> Drawn:
    """``breakdowns`` with its caption (what a rung and a censored seed are)."""
    caption = ("Each evaluation seed's ladder of learning rates, where it last ran stably and where it first "
               "broke down. A seed's breaking rate is the geometric midpoint of the two rungs; a seed that no "
               "rung broke breaks above its top rung (censored), and is counted in the median, not dropped.")  # fmt: skip
    return Drawn(breakdowns(b, ladder), caption)


def tuning_heatmaps(tuning: pd.DataFrame, window: float = 6.0) -> Drawn:
    """One heatmap per optimizer of the tuning seeds' mean validation ELBO over batch size and rate, the
    best cell outlined; colours span the ``window`` nats below the best cell."""
    import matplotlib.pyplot as plt

    from .. import plots

    optimizers = list(dict.fromkeys(tuning.optimizer))
    fig, axes = plt.subplots(1, len(optimizers), figsize=(4.65 * len(optimizers), 3.6), squeeze=False)
    for ax, o in zip(axes[0], optimizers, strict=True):
        means, _ = plots.heatmap_tables(tuning[tuning.optimizer == o], index="batch_size", columns="learning_rate",
                                        y="val_elbo")  # fmt: skip
        vmin = np.nanmax(means.to_numpy()) - window
        plots.plot_heatmap(means, ci_table=None, higher_is_better=True, ax=ax, vmin=vmin, fmt=".1f")
        ax.set_title(_name(o), loc="left")
    caption = ("Mean validation ELBO of the tuning seeds over batch size and learning rate, per optimizer. The best "
               "cell is outlined (the tuned rate of every batch size is in the rates table below); the colours span "
               f"the {fmt(window)} nats below the best cell (lower cells are marked ▼).")  # fmt: skip
    return Drawn(fig, caption, "Heatmaps of validation ELBO over batch size and learning rate, one per optimizer.")


def rules_figure(evaluation: pd.DataFrame, arms: pd.DataFrame) -> Drawn:
    """Test ELBO against the batch size, one panel per optimizer, one line per rule and one retuned."""
    import matplotlib.pyplot as plt

    from .. import plots

    optimizers = list(dict.fromkeys(arms.optimizer))
    fig, axes = plt.subplots(1, len(optimizers), figsize=(4.65 * len(optimizers), 3.8), squeeze=False)
    for ax, o in zip(axes[0], optimizers, strict=True):
        runs = pd.concat([rule_runs(evaluation, arms, o, rule) for rule in [*RULES, "retuned"]], ignore_index=True)
        plots.plot_metric_vs(_shown(runs), "batch_size", "test_elbo", hue="rule", logx=True, ax=ax)
        ax.set_title(_name(o), loc="left")
    caption = ("Test ELBO against the batch size at the rate of each scaling rule and at the rate retuned for each "
               f"batch size. All start from the rate tuned at the smallest batch. {_DOTS} (evaluation seeds).")  # fmt: skip
    return Drawn(fig, caption, "Test ELBO against batch size, one panel per optimizer, one line per rule and retuned.")


def rates_table(arms: pd.DataFrame) -> Drawn:
    """The arms of ``scaling_arms`` as a table in words."""
    b0 = int(arms.batch_size.min())
    table = arms.assign(optimizer=arms.optimizer.map(lambda o: _name(o)))
    table = table.rename(columns={"batch_size": "batch size", "rule": "rate", "learning_rate": "learning rate"})
    caption = (f"The learning rates of the evaluation runs. From the rate tuned at batch {b0}, each rule's rate at "
               "the larger batches, and the rate retuned there.")  # fmt: skip
    return Drawn(table, caption)


def span_of(rates: Sequence[float]) -> str:
    """'0.000125 to 0.004' (sorted, distinct), or 'no rate' for none."""
    vals = sorted({float(r) for r in rates})
    return span(vals) if vals else "no rate"
