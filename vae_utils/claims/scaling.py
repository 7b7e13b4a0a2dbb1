"""The batch × learning-rate chapter's looks (chapter 06): which runs each look trains, and the claims it judges.

    arms = rates.scaling_arms(tuned, batch_sizes)      # each rule's rate at every larger batch, and retuned
    design = scaling.Design(base, arms, optimizers, tuning_seeds)
    evaluation = None
    for seeds in fam.looks(evaluation_seeds):          # 5, 10, then 20 seeds while a claim is open
        evaluation = scaling.judge_look(fam, design, seeds, run, evaluation)

A claim (``bl-<optimizer>-<rule>``) compares one optimizer's runs along one rule with its runs at the
smallest batch; each look trains, on its seeds, the rule's runs and the smallest batch's for every claim
still open, and hands each its estimate on them (``verdicts.Family(..., looks=...)``). The rates retuned
at the larger batches are drawn beside the rules, not judged: they are trained on the first look's
seeds only. The analyses are in ``claims.rates``; only ``judge_look`` trains, through the sweep it is
handed.
"""

from __future__ import annotations

from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass

import numpy as np
import pandas as pd

from . import rates

__all__ = ["SLUGS", "Design", "claim_of", "look_grid", "judge_look", "seed_values"]

SLUGS = {"linear": "linear", "square root": "sqrt"}  # a rule's name in its claim's id


def claim_of(optimizer: str, rule: str) -> str:
    """'bl-adam-sqrt': the claim of ``optimizer`` under ``rule``."""
    return f"bl-{optimizer}-{SLUGS[rule]}"


@dataclass(frozen=True)
class Design:
    """What the looks train and judge, fixed before the first: the runs' ``base`` config (dataset,
    epochs), the ``arms`` of ``rates.scaling_arms`` (the rates chosen on the tuning seeds), the
    ``optimizers`` this build runs, and the ``tuning_seeds`` (said in each verdict's scope)."""

    base: Mapping
    arms: pd.DataFrame
    optimizers: Sequence[str]
    tuning_seeds: Sequence[int]


def _wanted(fam, arm, first: bool) -> bool:
    """An arm trains at a look when a claim it serves is open: the smallest batch's tuned runs serve
    both rules; the retuned runs serve none (described at the first look only)."""
    if arm.rule == "retuned":
        return first
    rules = list(SLUGS) if arm.rule == "tuned" else [arm.rule]
    return any(fam.is_open(claim_of(arm.optimizer, r)) for r in rules)


def look_grid(fam, design: Design, seeds: Sequence[int], first: bool) -> list[dict]:
    """The sweep of one look: every arm a claim still open needs (and at the ``first`` look the
    retuned arms), on ``seeds``."""
    arms = design.arms[design.arms.optimizer.isin(design.optimizers)]
    return [
        {**design.base, "optimizer": a.optimizer, "batch_size": int(a.batch_size),
         "learning_rate": float(a.learning_rate), "seed": list(seeds)}
        for a in arms.itertuples() if _wanted(fam, a, first)
    ]  # fmt: skip


def judge_look(fam, design: Design, seeds: Sequence[int], run: Callable, evaluation=None) -> pd.DataFrame:
    """One look of ``fam``: train, on ``seeds``, the arms of the claims still open (``look_grid``; ``run``:
    a grid -> its sweep rows, stored runs reused) and hand every open claim its estimate on this look's
    runs. Returns the evaluation runs of every look so far, each once: every arm with the seeds it got."""
    grid = look_grid(fam, design, seeds, first=evaluation is None)
    looked = run(grid) if grid else pd.DataFrame(columns=["run_id", "optimizer", "batch_size", "learning_rate"])
    for o in ("adam", "sgd"):
        for rule in SLUGS:
            claim = claim_of(o, rule)
            if o not in design.optimizers:  # this build's parameters left the optimizer out
                fam.not_run(claim, "optimizers", o)
            elif fam.is_open(claim):
                runs = rates.rule_runs(looked, design.arms, o, rule)  # the smallest batch's runs, then the rule's
                fam.add(claim, rates.rule_effects(runs), runs=runs, tuned_on=list(design.tuning_seeds))
    parts = [p for p in (evaluation, looked) if p is not None and len(p)]
    return pd.concat(parts, ignore_index=True).drop_duplicates("run_id").reset_index(drop=True)


WHERE = {"tuned": "at the smallest batch", "linear": "under the linear rule", "square root": "under the square-root rule",
         "retuned": "at the retuned rates"}  # fmt: skip


def seed_values(evaluation: pd.DataFrame, design: Design, looks: Sequence[int]) -> dict:
    """The design's looks and the evaluation seeds each optimizer's arms got, in words for a page: 'looks'
    ('5, 10 and 20') and 'seeds-by-arm' ('Adam: 5 at the smallest batch, 5 under the linear rule, …;
    plain SGD: …')."""
    parts = []
    for o in design.optimizers:
        counts = []
        for rule, words in WHERE.items():
            arms = design.arms[(design.arms.optimizer == o) & (design.arms.rule == rule)]
            of = evaluation[evaluation.optimizer == o]
            at = [of[(of.batch_size == b) & np.isclose(of.learning_rate.astype(float), lr)].seed.nunique()
                  for b, lr in zip(arms.batch_size, arms.learning_rate, strict=True)]  # fmt: skip
            if at and max(at):
                counts.append(f"{max(at)} {words}")
        parts.append(f"{rates.OPTIMIZERS[o].words}: {', '.join(counts)}")
    looks = [str(n) for n in looks]
    return {"looks": ", ".join(looks[:-1]) + " and " + looks[-1] if len(looks) > 1 else looks[0],
            "seeds-by-arm": "; ".join(parts)}  # fmt: skip
