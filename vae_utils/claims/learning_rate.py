"""The learning-rate chapter's looks (chapter 05): which runs each look trains, and the claims it judges.

    design = learning_rate.Design(base, learning_rates, epochs, usable, peaks, schedules, warmup_epochs,
                                  precise_rates, precise_epochs, delta_converged, target, tuning_seeds)
    runs = {}
    for seeds in fam.looks(evaluation_seeds):       # 5, 10, then 20 seeds while a claim is open
        runs = learning_rate.judge_look(fam, design, seeds, run, histories, runs)
    grid, sched = learning_rate.grid_runs(runs), learning_rate.schedule_runs(runs)

Each look trains, on its seeds, the arms (``ARMS``) of the claims still open, and hands each open claim
its estimate on them (``verdicts.Family(..., looks=...)``, ``claims.sequential``). The full grid of
rates is described, not judged (the final-quality figure): it is trained on the first look's seeds
only. The time-to-target slope is judged at each look on the seeds so far; the precision claims wait
for the convergence check, which is itself made at the looks' nominal level. The analyses are in
``claims.rates``; only ``judge_look`` trains, through the sweep it is handed.
"""

from __future__ import annotations

import math
from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass

import pandas as pd

from . import rates, stats
from .sequential import nominal_alpha

__all__ = [
    "ARMS",
    "SCHEDULES",
    "Design",
    "arm_grid",
    "judge_look",
    "time_to_target",
    "grid_runs",
    "schedule_runs",
    "seed_values",
]

SCHEDULES = {"warmup": "lr-warmup", "cosine": "lr-cosine", "warmup_cosine": "lr-warmup-cosine"}
ARMS = {  # the runs each look may train, and the claims they serve ("grid": none, the first look only)
    "grid": (),
    "slow": ("lr-slow",),
    "constant": tuple(SCHEDULES.values()),
    **{s: (claim,) for s, claim in SCHEDULES.items()},
    "long": ("lr-precise", "lr-jitter"),
}
SLOPE = "slope of log2(updates to target) on log2(learning rate)"


@dataclass(frozen=True)
class Design:
    """What the looks train and judge, fixed before the first: the runs' ``base`` config (dataset,
    optimizer, batch size), the grid's ``rates`` and ``epochs``, the ``usable`` rates of the slope
    (chosen on the tuning seeds: ``rates.usable_rates``), the schedules' ``peaks``, the ``schedules``
    run and their warm-up, the precision test's two rates and long budget, the convergence check's Δ,
    the validation-ELBO ``target`` and the ``tuning_seeds`` (said in each verdict's scope)."""

    base: Mapping
    rates: Sequence[float]
    epochs: int
    usable: Sequence[float]
    peaks: Sequence[float]
    schedules: Sequence[str]
    warmup_epochs: int
    precise_rates: Sequence[float]
    precise_epochs: int
    delta_converged: float
    target: float
    tuning_seeds: Sequence[int]


def arm_grid(design: Design, arm: str, seeds: Sequence[int]) -> list[dict]:
    """The sweep grid of one arm on ``seeds`` (empty when the arm has nothing to train)."""
    d, seeds = design, list(seeds)
    at = {**d.base, "seed": seeds, "epochs": d.epochs}
    rates_of = {"grid": d.rates, "slow": d.usable, "constant": d.peaks}
    if arm in rates_of:
        return [{**at, "learning_rate": list(rates_of[arm])}] if len(rates_of[arm]) else []
    if arm in SCHEDULES:
        schedule = {"lr_schedule": arm, "lr_warmup_epochs": d.warmup_epochs, "learning_rate": list(d.peaks)}
        return [{**at, **schedule}] if arm in d.schedules else []
    if arm == "long":
        return [{**at, "learning_rate": list(d.precise_rates), "epochs": d.precise_epochs}]
    raise ValueError(f"arm={arm!r} is not allowed; allowed: one of {', '.join(ARMS)}")


def _wanted(fam, arm: str, runs: Mapping) -> bool:
    """An arm trains at a look when a claim it serves is open; the described grid at the first look."""
    return arm not in runs if not ARMS[arm] else any(fam.is_open(c) for c in ARMS[arm])


def judge_look(fam, design: Design, seeds: Sequence[int], run: Callable, histories: Callable, runs=None) -> dict:
    """One look of ``fam``: train, on ``seeds``, the arms whose claims are still open (one sweep, so the
    runs share the workers), and hand every open claim its estimate from this look's runs. ``run``: a
    grid -> its sweep rows (stored runs are reused); ``histories``: run ids -> their per-epoch rows.
    Returns ``runs`` ({arm: its latest runs}, and "precision": the last ``rates.Precision``): after the
    last look, each arm with the seeds it got."""
    runs = dict(runs or {})
    grids = {arm: g for arm in ARMS if _wanted(fam, arm, runs) and (g := arm_grid(design, arm, seeds))}
    if grids:
        run([g for gs in grids.values() for g in gs])  # the look's runs, trained together
    runs |= {arm: run(g) for arm, g in grids.items()}  # each arm's rows (now stored: no training)
    _judge_slow(fam, design, runs, histories)
    _judge_precision(fam, design, runs, histories, final=len(seeds) >= fam.plan[-1])
    _judge_schedules(fam, design, runs)
    return runs


def time_to_target(design: Design, slow: pd.DataFrame | None, histories: Callable) -> pd.DataFrame:
    """The runs of the ``slow`` arm that crossed the target, with their updates to it (``rates.crossings``)."""
    if slow is None or not len(slow):
        return pd.DataFrame(columns=["run_id", "learning_rate", "seed", "steps_to_target", "crossed"])
    crossed = rates.crossings(histories(list(slow.run_id)), design.target)
    return rates.updates_to_target(crossed, design.usable)


def _judge_slow(fam, design: Design, runs: Mapping, histories: Callable) -> None:
    if not fam.is_open("lr-slow"):
        return
    if not len(design.usable):
        why = "No rate up to the best crossed the target on at least four in five tuning seeds."
        fam.add("lr-slow", stats.Estimate(SLOPE, math.nan, math.nan, math.nan, math.nan, note=why))
        return
    slow = time_to_target(design, runs["slow"], histories)
    e = stats.per_seed_slope(slow, "learning_rate", "steps_to_target", logx=True, logy=True, name=SLOPE)
    fam.add("lr-slow", e, runs=runs["slow"][runs["slow"].run_id.isin(slow.run_id)], tuned_on=design.tuning_seeds)


def check_level(fam) -> float:
    """The convergence check's level: 95%, or Pocock's nominal level when it is made at several looks."""
    return 1 - nominal_alpha(0.05, fam.plan) if len(fam.plan) > 1 else 0.95


def _judge_precision(fam, design: Design, runs: Mapping, histories: Callable, final: bool) -> None:
    """The precision claims once the check finds the small rate converged; not testable when it is
    still improving, a long run diverged, or the check is undecided at the last look; open (an untested
    estimate, so the next look adds seeds) when it is undecided before."""
    if not (fam.is_open("lr-precise") or fam.is_open("lr-jitter")):
        return
    long = runs["long"]
    p = rates.precision(long, histories(list(long.run_id)), design.delta_converged, level=check_level(fam))
    runs["precision"] = p
    for claim, effect in (("lr-precise", p.final_elbo), ("lr-jitter", p.movement)):
        if p.testable:
            fam.add(claim, effect, runs=long)
        elif final or p.diverged or p.check.outcome == rates.STILL_IMPROVING:
            fam.not_testable(claim, p.reason, runs=long)
        else:
            untested = stats.Estimate(effect.name, math.nan, math.nan, math.nan, math.nan, unit=effect.unit)
            fam.add(claim, untested, runs=long)


def schedule_runs(runs: Mapping) -> pd.DataFrame:
    """The schedules' runs and, as ``lr_schedule`` "constant", the constant runs at their peaks."""
    scheduled = [runs[s] for s in SCHEDULES if s in runs]
    constant = runs.get("constant")
    if constant is None or not scheduled:
        return pd.DataFrame(columns=["lr_schedule", "learning_rate", "seed", "test_elbo", "run_id"])
    return rates.schedule_runs(constant, pd.concat(scheduled, ignore_index=True))


def _judge_schedules(fam, design: Design, runs: Mapping) -> None:
    sched = schedule_runs(runs)
    for s, claim in SCHEDULES.items():
        if s not in design.schedules:
            fam.not_run(claim, "schedules", s)
        elif fam.is_open(claim):
            judged = sched[sched.lr_schedule.isin([s, "constant"])]
            effects, interaction = rates.schedule_effects(judged, s)
            fam.add(claim, effects, runs=judged, interaction=interaction)


def grid_runs(runs: Mapping) -> pd.DataFrame:
    """Every constant-rate run of the 30-epoch grid the looks trained, each once: the described grid on
    the first look's seeds, and the rates the claims judged with the seeds they got."""
    parts = [runs[a] for a in ("grid", "slow", "constant") if a in runs]
    return pd.concat(parts, ignore_index=True).drop_duplicates("run_id").reset_index(drop=True)


WHERE = {"grid": "in the grid of rates", "slow": "at the timed rates", "constant": "at a constant rate at the peaks",
         "warmup": "with warm-up", "cosine": "with cosine decay", "warmup_cosine": "with warm-up and cosine decay",
         "long": "in the long runs"}  # fmt: skip


def seed_values(runs: Mapping, looks: Sequence[int]) -> dict:
    """The design's looks and the evaluation seeds each arm got, in words for a page: 'looks' ('5, 10
    and 20') and 'seeds-by-arm' ('5 seeds in the grid of rates, 20 at the timed rates, ...')."""
    parts = [f"{runs[arm].seed.nunique()} {WHERE[arm]}" for arm in ARMS if arm in runs and len(runs[arm])]
    parts[:1] = [parts[0].replace(" ", " seeds ", 1)] if parts else []
    return {"looks": _and([str(n) for n in looks]), "seeds-by-arm": _and(parts)}


def _and(words: Sequence[str]) -> str:
    """'a', 'a and b', 'a, b and c'."""
    return ", ".join(words[:-1]) + " and " + words[-1] if len(words) > 1 else "".join(words)
