"""The batch-size chapter's analyses: the two budgets, the breaking-rate scan, the critical batch
size and the noise scale over training (chapter 04; chapter 11 checks the advisor against them).

    from vae_utils.claims import batch
    cells = batch.budget_cells("digits", "adam", [16, 64, 256], epochs=30, updates=600, eval_every=10)
    tuned = batch.tune_rates(tuning_runs)                   # the rate per (budget, batch size)
    effects, interaction = batch.budget_slopes(evaluation)  # test ELBO per doubling, per budget
    usable = batch.usable_targets(tuning_curves, targets)   # chosen on the tuning seeds' curves
    crit = batch.critical_batch(curves, targets, usable)    # B_crit on the evaluation seeds' curves
    batch.noise_summary(noise), batch.noise_change(noise)   # B_simple per checkpoint, and how it moves

    design = batch.Design(cells, tuned, scan, floor, targets, usable, tuning_seeds)
    for seeds in fam.looks(evaluation_seeds):               # 5, 10, then 20 seeds while a claim is open
        runs = batch.judge_look(fam, design, seeds, run, curves, runs)   # trains the open claims' arms

Every function takes the runs (rows of ``experiments.sweep``) or their curves and returns frames,
``stats.Estimate`` objects or words for a page; none plots or publishes, and only ``judge_look``
trains, through the sweep it is handed. Pure pandas/NumPy.
"""

from __future__ import annotations

import math
from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass

import numpy as np
import pandas as pd

from ..core.data import TRAIN_SIZES
from ..publish.numbers import fmt, fmt_interval
from ..publish.scope import join_and
from . import protocol, stats
from .analysis import HyperbolaFit, fit_hyperbola, steps_to_target_table

__all__ = [
    "BUDGETS",
    "budget_cells",
    "budget_of",
    "tuning_grid",
    "tune_rates",
    "evaluation_grid",
    "judged",
    "protocol_values",
    "rates_table",
    "tuned_rate",
    "budget_slopes",
    "generalization_gap",
    "scan_grid",
    "scan_values",
    "stability",
    "tuned_runs",
    "reach_shares",
    "usable_targets",
    "CriticalBatch",
    "critical_batch",
    "target_slopes",
    "noise_summary",
    "noise_change",
    "change_words",
    "bsimple_at_target",
    "noise_values",
    "memory_values",
    "ARMS",
    "Design",
    "judge_look",
    "seed_values",
]

BUDGETS = ("fixed epochs", "fixed updates")
OPTIMIZER_NAMES = {"adam": "Adam", "sgd": "plain SGD"}


# ---------------------------------------------------------------------------------------------
# The two budgets


def budget_cells(
    dataset: str, optimizer: str, batch_sizes: Sequence[int], epochs: int, updates: int, eval_every: int
) -> dict[tuple[str, int], dict]:
    """{(budget, batch size): sweep config}: "fixed epochs" trains ``epochs`` epochs; "fixed updates"
    trains the whole number of epochs (at least 1) nearest ``updates`` updates and records the
    validation ELBO every ``eval_every`` updates (for the updates to a target)."""
    n_train = TRAIN_SIZES[dataset]
    base = {"dataset": dataset, "optimizer": optimizer}
    cells = {}
    for b in batch_sizes:
        cells["fixed epochs", b] = {**base, "batch_size": b, "epochs": epochs}
        per_epoch = n_train // b
        cells["fixed updates", b] = {
            **base, "batch_size": b, "epochs": max(1, round(updates / per_epoch)), "eval_every": eval_every,
        }  # fmt: skip
    return cells


def budget_of(runs: pd.DataFrame) -> np.ndarray:
    """Which budget each run belongs to: the fixed-updates runs are the ones evaluated every few updates."""
    return np.where(runs.eval_every > 0, "fixed updates", "fixed epochs")


def tuning_grid(cells: Mapping, learning_rates: Sequence[float], seeds: Sequence[int]) -> list[dict]:
    """Every cell at every rate of the grid, on the tuning seeds."""
    return [{**c, "learning_rate": list(learning_rates), "seed": list(seeds)} for c in cells.values()]


def tune_rates(tuning: pd.DataFrame) -> pd.DataFrame:
    """The rate with the best mean validation ELBO per (budget, batch size) (``protocol.tune``)."""
    return protocol.tune(tuning.assign(budget=budget_of(tuning)), over="learning_rate", by=["budget", "batch_size"])


def evaluation_grid(cells: Mapping, tuned: pd.DataFrame, seeds: Sequence[int]) -> list[dict]:
    """Every cell at its tuned rate, on the evaluation seeds (a cell without a tuned rate is left out)."""
    rate = tuned.set_index(["budget", "batch_size"]).learning_rate.dropna()
    return [{**c, "learning_rate": float(rate[key]), "seed": list(seeds)} for key, c in cells.items() if key in rate]


def judged(evaluation: pd.DataFrame, floor: float) -> pd.DataFrame:
    """The evaluation runs with their ``budget``, and every run that broke down at the test ELBO
    ``floor`` (``floored``; for figures only: the effects use the stable runs)."""
    return protocol.floored(evaluation.assign(budget=budget_of(evaluation)), "test_elbo", floor)


def protocol_values(tuning: pd.DataFrame, tuned: pd.DataFrame, evaluation: pd.DataFrame) -> dict:
    """The protocol's numbers, read off the runs themselves (never typed), and the chapter's Δs from its
    claims table (nats per doubling; doublings per doubling): for ``publish_values``."""
    from .records import record

    fe = evaluation[evaluation.budget == "fixed epochs"]
    fu = evaluation[evaluation.budget == "fixed updates"]
    sizes = sorted(int(b) for b in evaluation.batch_size.unique())
    dataset = str(evaluation.dataset.iloc[0])
    n_train = TRAIN_SIZES[dataset]
    epochs = int(fe.epochs.max()) if len(fe) else 0
    updates = [int(b_ep * (n_train // b)) for b, b_ep in fu.groupby("batch_size").epochs.first().items()]
    return {
        "optimizer": " and ".join(sorted({OPTIMIZER_NAMES.get(o, o) for o in evaluation.optimizer})),
        "n-b": len(sizes), "b-min": sizes[0], "b-max": sizes[-1], "epochs": epochs, "n-train": n_train,
        "steps-small": epochs * (n_train // sizes[0]), "steps-large": epochs * (n_train // sizes[-1]),
        "updates": span_words(updates), "eval-every": int(fu.eval_every.max()) if len(fu) else 0,
        "n-tuning": tuning.seed.nunique(), "n-lr": tuning.learning_rate.nunique(), "n-seeds": evaluation.seed.nunique(),
        "n-edge": f"{int((~tuned.interior.astype(bool)).sum())} of {len(tuned)}",
        "spread": fmt(protocol.seed_spread(evaluation, ["budget", "batch_size"]), 2),
        "n-floored": int(evaluation.floored.sum()),
        "delta": record("bs-gap").delta, "delta-doublings": record("bs-steps").delta,
    }  # fmt: skip


def span_words(values: Sequence[int]) -> str:
    """'570' or '570 to 608': the range of whole-epoch update counts the fixed-updates budget gives."""
    lo, hi = min(values, default=0), max(values, default=0)
    return f"{lo:,}" if lo == hi else f"{lo:,} to {hi:,}"


def rates_table(tuned: pd.DataFrame) -> pd.DataFrame:
    """One row per batch size, one column per budget: the tuned learning rates."""
    table = tuned.pivot(index="batch_size", columns="budget", values="learning_rate").reset_index()
    table.columns.name = None
    return table


def tuned_rate(tuned: pd.DataFrame, batch_size: int, budget: str = "fixed epochs") -> float:
    """The rate tuned under ``budget`` for ``batch_size``, or for the batch size nearest it (log scale)."""
    t = tuned[(tuned.budget == budget) & tuned.learning_rate.notna()]
    if not len(t):
        raise ValueError(f"budget={budget!r} has no tuned rate; allowed: one of {sorted(tuned.budget.unique())}")
    nearest = t.iloc[int(np.argmin(np.abs(np.log2(t.batch_size.to_numpy(np.float64) / batch_size))))]
    return float(nearest.learning_rate)


def budget_slopes(evaluation: pd.DataFrame) -> tuple[dict, stats.Estimate]:
    """Per budget, the test ELBO per doubling of the batch (``stats.per_seed_slope`` over the stable
    runs), and the paired difference of the seeds' slopes between the budgets (the interaction)."""
    ok = evaluation[~evaluation.floored]
    name = "test ELBO per doubling of the batch size"
    slope = lambda d: stats.per_seed_slope(d, "batch_size", "test_elbo", logx=True, name=name, unit="nats")
    effects = {b: slope(ok[ok.budget == b]) for b in BUDGETS if (ok.budget == b).any()}
    per_seed = {b: stats.seed_slopes(ok[ok.budget == b], "batch_size", "test_elbo", logx=True) for b in BUDGETS}
    inter = stats.paired(per_seed["fixed epochs"], per_seed["fixed updates"], unit="nats",
                         name="slope under fixed epochs − slope under fixed updates")  # fmt: skip
    return effects, inter


def generalization_gap(fe: pd.DataFrame) -> tuple[stats.Estimate, pd.DataFrame]:
    """On the fixed-epochs runs that trained (``fe``): the gap (training − test ELBO) per doubling of the
    batch, per seed; and their training and test ELBO as a long frame (``split``, ``elbo``) for the figure."""
    fe = fe.assign(gap=fe.train_elbo - fe.test_elbo)
    name = "generalization gap per doubling of the batch size"
    effect = stats.per_seed_slope(fe, "batch_size", "gap", logx=True, name=name, unit="nats")
    long = fe.melt(id_vars=["batch_size", "seed"], value_vars=["train_elbo", "test_elbo"], var_name="split",
                   value_name="elbo")  # fmt: skip
    return effect, long.assign(split=long.split.map({"train_elbo": "training ELBO", "test_elbo": "test ELBO"}))


# ---------------------------------------------------------------------------------------------
# Where training breaks


def scan_grid(
    dataset: str, rates: Mapping[str, Sequence[float]], batch_sizes: Sequence[int], seeds: Sequence[int], updates: int
) -> list[dict]:
    """The breaking-rate scan: every optimizer x batch size x seed on its own copy of the optimizer's
    ladder (``protocol.dithered_ladder``, salted with the batch size), about ``updates`` updates each."""
    n_train = TRAIN_SIZES[dataset]
    return [
        {"dataset": dataset, "optimizer": o, "batch_size": b, "epochs": max(1, round(updates / (n_train // b))),
         "learning_rate": protocol.dithered_ladder(ladder, s, salt=b), "seed": s, "eval_k": 20}
        for o, ladder in rates.items() for b in batch_sizes for s in seeds
    ]  # fmt: skip


def scan_values(scan: pd.DataFrame, breaking: pd.DataFrame) -> dict:
    """The scan's numbers from its runs: the batch sizes, the updates per run, the censored seeds."""
    dataset = str(scan.dataset.iloc[0])
    updates = [int(r.epochs * (TRAIN_SIZES[dataset] // r.batch_size)) for r in scan.itertuples()]
    return {"n-scan-b": scan.batch_size.nunique(), "scan-updates": span_words(updates),
            "n-censored": int(breaking.censored.sum())}  # fmt: skip


def stability(breaking: pd.DataFrame) -> tuple[dict, stats.Estimate]:
    """Per optimizer, doublings of the breaking rate per doubling of the batch (per seed, on the
    ``breaking_point`` of ``protocol.breaking_rates``), and SGD's slope − Adam's (the interaction)."""
    name = "doublings of the breaking rate per doubling of the batch size"
    opts = [o for o in OPTIMIZER_NAMES if (breaking.optimizer == o).any()]
    of = lambda o: breaking[breaking.optimizer == o]
    effects = {OPTIMIZER_NAMES[o]: stats.per_seed_slope(of(o), "batch_size", "breaking_point", logx=True, logy=True,
                                                        name=name, unit="doublings") for o in opts}  # fmt: skip
    slopes = {
        o: stats.seed_slopes(of(o), "batch_size", "breaking_point", logx=True, logy=True) for o in OPTIMIZER_NAMES
    }
    return effects, stats.paired(slopes["sgd"], slopes["adam"], name="SGD's slope − Adam's slope", unit="doublings")


# ---------------------------------------------------------------------------------------------
# The critical batch size


def tuned_runs(runs: pd.DataFrame, tuned: pd.DataFrame, budget: str = "fixed updates") -> pd.DataFrame:
    """The runs of ``budget`` at the rate tuned for their batch size (``protocol.at_tuned``). On the tuning
    seeds these are the runs that choose the target of the critical batch size: the same configs as the
    evaluation runs, other seeds."""
    chosen = tuned[(tuned.budget == budget) & tuned.learning_rate.notna()]
    return protocol.at_tuned(runs[budget_of(runs) == budget], chosen, by="batch_size")


def reach_shares(curves: pd.DataFrame, targets: Sequence[float]) -> pd.DataFrame:
    """Per target and batch size, the share of the runs whose validation ELBO reached the target at
    some evaluation (``steps_to_target``'s "reached": a finite value at or above it). Columns target,
    batch_size, share."""
    if not len(curves):
        return pd.DataFrame(columns=["target", "batch_size", "share"])
    runs = curves.groupby("run_id")
    top, sizes = runs.val_elbo.max().to_numpy(np.float64), runs.batch_size.first().to_numpy()
    t, b = np.asarray(targets, np.float64), np.unique(sizes)
    share = [[float((top[sizes == size] >= target).mean()) for size in b] for target in t]
    return pd.DataFrame({"target": np.repeat(t, len(b)), "batch_size": np.tile(b, len(t)), "share": np.ravel(share)})


def usable_targets(curves: pd.DataFrame, targets: Sequence[float], min_reached: float = 0.8) -> list[float]:
    """The targets that every batch size reaches in at least ``min_reached`` of its runs. Pass the
    tuning seeds' curves (``tuned_runs``): a target chosen on the runs that judge it is chosen where those
    runs happened to do well, so they would reach it more often than the configs do (``tests/
    test_selection_simulations.py``)."""
    shares = reach_shares(curves, targets)
    lowest = shares.groupby("target").share.min()
    return sorted(float(t) for t, share in lowest.items() if share >= min_reached)


@dataclass(frozen=True)
class CriticalBatch:
    """B_crit at every target (``curve``: ``protocol.critical_batch_curve``; ``usable`` marks the targets
    chosen on the tuning seeds), the ``target`` the verdicts use (the hardest usable one, else the
    easiest of the ladder), the runs' updates and examples to it (``runs``) and the hyperbola fitted to
    them (``fit``)."""

    curve: pd.DataFrame
    target: float
    runs: pd.DataFrame
    fit: HyperbolaFit

    @property
    def found(self) -> bool:
        """True when a usable target gave a finite B_crit."""
        row = self.row
        return row is not None and math.isfinite(row.b_crit)

    @property
    def row(self):
        rows = self.curve[self.curve.usable & (self.curve.target == self.target)]
        return rows.iloc[0] if len(rows) else None

    @property
    def text(self) -> str:
        """'69 (95% CI 50 to 96) at a target of −25 nats', or why there is none."""
        if not self.found:
            return "not determined in this build"
        r = self.row
        return f"{fmt_interval(r.b_crit, r.b_crit_low, r.b_crit_high)} at a target of {fmt(self.target)} nats"

    def table(self) -> pd.DataFrame:
        """The curve in words, for ``publish_table`` (``ci={"critical batch size": ("low", "high")}``)."""
        cols = {"target": "target", "min_share_reached": "smallest share of seeds reaching it",
                "b_crit": "critical batch size", "b_crit_low": "low", "b_crit_high": "high",
                "s_min": "fewest updates S_min"}  # fmt: skip
        return self.curve[list(cols)].rename(columns=cols)

    @property
    def trend(self) -> str:
        """How B_crit moves from the easiest to the hardest usable target, in words with both values."""
        return bcrit_trend(self.curve)


def critical_batch(curves: pd.DataFrame, targets: Sequence[float], usable: Sequence[float]) -> CriticalBatch:
    """B_crit at every target (``protocol.critical_batch_curve`` on the evaluation runs' validation
    curves), the hardest of the ``usable`` targets (chosen on other seeds: ``usable_targets``), and the
    updates and examples each run needed to reach it (the runs that reached it after their first
    evaluation: an earlier crossing is only an upper bound)."""
    curve = protocol.critical_batch_curve(curves, targets, x="steps")
    curve = curve.assign(usable=[any(np.isclose(t, u) for u in usable) for t in curve.target])
    target = float(curve.target[curve.usable].max()) if curve.usable.any() else float(min(targets))
    tt = steps_to_target_table(curves, target, x="steps", keep=["batch_size", "seed"])
    if len(tt):
        tt = tt[tt.reached & ~tt.at_first].assign(examples=lambda d: d.steps_to_target * d.batch_size)
    else:
        tt = pd.DataFrame(columns=["batch_size", "seed", "steps_to_target", "examples"])
    return CriticalBatch(curve, target, tt, fit_hyperbola(tt.batch_size, tt.steps_to_target))


def target_slopes(runs: pd.DataFrame) -> tuple[stats.Estimate, stats.Estimate]:
    """Doublings of the updates, and of the examples, to the target per doubling of the batch size
    (``stats.per_seed_slope`` on ``CriticalBatch.runs``)."""
    what = "doublings of the {} to the target per doubling of the batch size"
    slope = lambda y, w: stats.per_seed_slope(
        runs, "batch_size", y, logx=True, logy=True, name=what.format(w), unit="doublings"
    )
    return slope("steps_to_target", "updates"), slope("examples", "examples")


def bcrit_trend(curve: pd.DataFrame) -> str:
    """'rises from 40 (95% CI …) at −28 nats to 69 (…) at −25 nats' between the easiest and the
    hardest usable target (the verb from the two estimates, and whether their intervals overlap)."""
    u = curve[curve.usable & np.isfinite(curve.b_crit)].sort_values("target")
    if len(u) < 2:
        return "cannot be followed across targets in this build (fewer than two usable targets)"
    a, b = u.iloc[0], u.iloc[-1]
    verb = "rises" if b.b_crit > a.b_crit else "falls" if b.b_crit < a.b_crit else "stays"
    overlap = a.b_crit_high >= b.b_crit_low and b.b_crit_high >= a.b_crit_low
    words = lambda r: f"{fmt_interval(r.b_crit, r.b_crit_low, r.b_crit_high)} at {fmt(r.target)} nats"
    note = "; the two intervals overlap" if overlap else "; the two intervals do not overlap"
    return f"{verb} from {words(a)} to {words(b)}{note}"


# ---------------------------------------------------------------------------------------------
# The noise scale over training


def noise_summary(noise: pd.DataFrame) -> pd.DataFrame:
    """Per checkpoint (``epochs``; the runs' ``steps``, ``val_elbo`` and ``b_simple``): the updates, the mean
    validation ELBO, and B_simple's geometric mean over seeds with its 95% t-interval on the log scale
    (``stats.log_mean``) and the seeds counted."""
    rows = []
    for e, g in noise.groupby("epochs"):
        est = stats.log_mean(g.b_simple, name="B_simple", unit="examples")
        rows.append({"epochs": int(e), "updates": int(g.steps.max()), "validation ELBO": float(g.val_elbo.mean()),
                     "B_simple": est.estimate, "low": est.low, "high": est.high, "seeds": est.n})  # fmt: skip
    return pd.DataFrame(rows, columns=["epochs", "updates", "validation ELBO", "B_simple", "low", "high", "seeds"])


def noise_change(noise: pd.DataFrame) -> stats.Estimate:
    """Doublings of B_simple from the first checkpoint to the last, paired by seed (a t-test on the
    differences of log2 B_simple); NaN without two checkpoints."""
    wide = noise.assign(log2=np.log2(noise.b_simple.where(noise.b_simple > 0))).pivot(
        index="seed", columns="epochs", values="log2"
    )
    first, last = (wide.columns.min(), wide.columns.max()) if len(wide.columns) else (0, 0)
    name = f"doublings of B_simple from epoch {first} to epoch {last}"
    if first == last:
        return stats.Estimate(name, math.nan, math.nan, math.nan, math.nan, unit="doublings")
    return stats.paired(wide[last], wide[first], name=name, unit="doublings")


def change_words(e: stats.Estimate, up: str = "grows", down: str = "falls") -> str:
    """The direction an estimate of change in doublings supports, in words with the factor it stands for:
    'grows: the last value is 1.6 (95% CI 1.2 to 2.1) times the first', 'falls: …', or 'shows no clear
    direction: …' when the interval holds 0 (no change)."""
    if not e.has_interval:
        return "cannot be followed in this build (fewer than two checkpoints or seeds)"
    level = f"{100 * e.level:.0f}%"
    ratio = f"the last value is {fmt(2**e.estimate, 2)} ({level} CI {fmt(2**e.low, 2)} to {fmt(2**e.high, 2)}) times the first"
    if e.low > 0:
        return f"{up}: {ratio}"
    if e.high < 0:
        return f"{down}: {ratio}"
    return f"shows no clear direction: {ratio}"


def bsimple_at_target(summary: pd.DataFrame, crit: CriticalBatch) -> dict:
    """B_simple at the checkpoint whose mean validation ELBO lies nearest the target B_crit was fitted at
    (the same point of training), and B_simple / B_crit there: values for a page."""
    if not len(summary) or not crit.found:
        return {"matched-epochs": "n/a", "matched-elbo": "n/a", "matched": "not determined", "ratio": "n/a"}
    row = summary.iloc[int(np.argmin(np.abs(summary["validation ELBO"].to_numpy() - crit.target)))]
    return {
        "matched-epochs": int(row.epochs), "matched-elbo": float(row["validation ELBO"]),
        "matched": fmt_interval(row.B_simple, row.low, row.high), "ratio": float(row.B_simple / crit.row.b_crit),
    }  # fmt: skip


def noise_values(summary: pd.DataFrame, noise: pd.DataFrame, crit: CriticalBatch) -> dict:
    """The noise-scale section's values: the checkpoints, B_simple at the last with its interval, how it
    moves from the first to the last (``change_words``), the seeds' spread at the last (a geometric
    standard deviation, x/÷) and the comparison with B_crit at the matching checkpoint."""
    if not len(summary):
        return {"noise-epochs": "none", "noise-last": "n/a", "bsimple": "n/a"}
    last = summary.iloc[-1]
    at_last = noise.b_simple[(noise.epochs == last.epochs) & (noise.b_simple > 0)]
    epochs = [str(int(e)) for e in summary.epochs]
    return {
        "noise-epochs": epochs[0] if len(epochs) == 1 else ", ".join(epochs[:-1]) + " and " + epochs[-1],
        "noise-last": int(last.epochs), "bsimple": fmt_interval(last.B_simple, last.low, last.high),
        "bsimple-change": change_words(noise_change(noise)),
        "bsimple-spread": fmt(math.exp(np.log(at_last).std(ddof=1)), 2) if len(at_last) > 1 else "n/a",
        **bsimple_at_target(summary, crit),
    }  # fmt: skip


def memory_values(evaluation: pd.DataFrame) -> dict:
    """The activation memory of the largest batch (an estimate from the layer widths, MB), the
    process's peak (MB), and the reason the memory claim is not tested here."""
    b_max = int(evaluation.batch_size.max())
    act = float(evaluation[evaluation.batch_size == b_max].activation_memory_mb.mean())
    peak = float(evaluation.peak_memory_mb.max())
    reason = (
        f"By construction: the activations of an update grow linearly with the batch (an estimate, {fmt(act, 2)} MB "
        f"at batch {b_max}), while the process peak ({peak:,.0f} MB) is the framework's."
    )
    return {"act-mb": fmt(act, 2), "peak-mb": f"{peak:,.0f}", "reason": reason}


# ---------------------------------------------------------------------------------------------
# The looks: evaluation seeds where the question is open (``verdicts.Family(..., looks=...)``)

ARMS = {  # the runs each look may train, and the claims they serve
    "fixed epochs": ("bs-gap", "bs-underfit"),
    "fixed updates": ("bs-gap", "bs-steps", "bs-compute"),
    "scan": ("bs-stable",),
}


@dataclass(frozen=True)
class Design:
    """What the looks train and judge, fixed before the first: the budgets' ``cells`` at the rates
    ``tuned`` on the tuning seeds, the stability ``scan`` (``scan_grid`` over every evaluation seed;
    a look trains its seeds' rows), the test ELBO ``floor`` of a run that broke down, the ``targets``
    of the critical batch size and the ``usable`` ones (chosen on the tuning seeds: ``usable_targets``),
    and the ``tuning_seeds`` (said in each verdict's scope)."""

    cells: Mapping
    tuned: pd.DataFrame
    scan: Sequence[dict]
    floor: float
    targets: Sequence[float]
    usable: Sequence[float]
    tuning_seeds: Sequence[int]


def judge_look(fam, design: Design, seeds: Sequence[int], run: Callable, curves: Callable, runs=None) -> dict:
    """One look of ``fam``: train, on ``seeds``, the arms (``ARMS``) whose claims are still open, in one
    sweep (its workers share the runs, and a kernel traces a graph the arms share once), with ``run``
    (a grid -> its sweep rows; stored runs are reused), and hand every open claim its estimate from this
    look's runs. ``curves``: run ids -> their validation curves (``load_curves``). Returns
    ``runs`` ({arm: its latest runs}, plus "memory": the runs the memory claim was judged on) with the
    arms trained here replaced: after the last look, each arm with the seeds it got."""
    runs = dict(runs or {})
    grids = {arm: _arm_grid(design, arm, seeds) for arm, claims in ARMS.items() if any(map(fam.is_open, claims))}
    if len(grids) > 1:
        run([g for gs in grids.values() for g in gs])  # the look's runs, trained together (one sweep)
    for arm, grid in grids.items():  # each arm's rows (now stored: no training)
        runs[arm] = run(grid) if arm == "scan" else judged(run(grid), design.floor)
    _add_budget_claims(fam, design, runs, curves)
    if fam.is_open("bs-stable"):
        breaking = protocol.breaking_rates(runs["scan"], by=["optimizer", "batch_size"], floor=design.floor)
        effects, interaction = stability(breaking)
        fam.add("bs-stable", effects, runs=runs["scan"], interaction=interaction)
    if fam.is_open("bs-memory"):
        runs["memory"] = pd.concat([runs[b] for b in BUDGETS])
        fam.not_testable("bs-memory", memory_values(runs["memory"])["reason"], runs=runs["memory"])
    return runs


def _arm_grid(design: Design, arm: str, seeds: Sequence[int]) -> list[dict]:
    """The runs of one arm on ``seeds``: the stability scan's, or a budget's cells at their tuned rates."""
    if arm == "scan":
        return [g for g in design.scan if g["seed"] in set(seeds)]
    return evaluation_grid({k: c for k, c in design.cells.items() if k[0] == arm}, design.tuned, seeds)


def _add_budget_claims(fam, design: Design, runs: Mapping, curves: Callable) -> None:
    """The claims judged on the two budgets' runs of this look, those still open."""
    tuned_on = list(design.tuning_seeds)
    fe, fu = runs.get("fixed epochs"), runs.get("fixed updates")
    if fam.is_open("bs-gap"):
        both = pd.concat([fe, fu])
        effects, interaction = budget_slopes(both)
        fam.add("bs-gap", effects, runs=both, tuned_on=tuned_on, interaction=interaction)
    if fam.is_open("bs-underfit"):
        trained = fe[~fe.floored]
        fam.add("bs-underfit", generalization_gap(trained)[0], runs=trained, tuned_on=tuned_on)
    if fam.is_open("bs-steps") or fam.is_open("bs-compute"):
        crit = critical_batch(curves(fu.run_id), design.targets, design.usable)
        fewer_updates, more_examples = target_slopes(crit.runs)
        fam.add("bs-steps", fewer_updates, runs=fu, tuned_on=tuned_on)
        fam.add("bs-compute", more_examples, runs=fu, tuned_on=tuned_on)


def seed_values(runs: Mapping, looks: Sequence[int]) -> dict:
    """The design's looks and how many evaluation seeds each arm got over them, in words for a page:
    'looks' ('5, 10 and 20') and 'seeds-by-arm' ('5 seeds under fixed epochs, 20 under fixed updates
    and 10 in the stability scan')."""
    where = {
        "fixed epochs": "under fixed epochs",
        "fixed updates": "under fixed updates",
        "scan": "in the stability scan",
    }
    parts = [f"{runs[arm].seed.nunique()} {where[arm]}" for arm in ARMS if arm in runs]
    parts[:1] = [parts[0].replace(" ", " seeds ", 1)] if parts else []
    return {"looks": join_and([str(n) for n in looks]), "seeds-by-arm": join_and(parts)}
