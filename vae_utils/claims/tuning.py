"""The tuning chapter's looks (chapter 11): which batch sizes of the check grid each look trains, and the
claims it judges.

    grid, centres = confirm.advice_grid(data, advice, batch_factors, lr_factors, seeds, epochs)
    design = tuning.Design(grid, centres, rec.batch_size, target, noise["estimates"], measured_on)
    runs = {}
    for seeds in fam.looks(grid_seeds):              # 5, 10, then 20 seeds while a claim is open
        runs = tuning.judge_look(fam, design, seeds, run, histories, runs)
    df = tuning.grid_runs(runs)                      # every batch size with the seeds it got

The grid's advised batch size serves the claim about the advised rate; the other batch sizes the claim
about the advisor's rule there; the critical batch size is fitted over all of them, at each look on
the seeds so far, and set against the advisor's B_simple (measured once, on its own seeds). Each look
trains, on its seeds, the batch sizes of the claims still open (``verdicts.Family(..., looks=...)``).
A batch size where the other seeds choose the advised rate on every seed is untested (an identity, not
a measurement: ``advisor.confirm.rate_effects``), and its claim stays open for the next look. The
analyses are in ``advisor.confirm``; only ``judge_look`` trains, through the sweep it is handed.
"""

from __future__ import annotations

from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass

import pandas as pd

from ..advisor import confirm

__all__ = ["ARMS", "Design", "look_grid", "judge_look", "grid_runs", "seed_values"]

ARMS = {  # the batch sizes each look may train, and the claims they serve
    "advised": ("tune-rate", "tune-batch"),
    "others": ("tune-rate-rule", "tune-batch"),
}


@dataclass(frozen=True)
class Design:
    """What the looks train and judge, fixed before the first: the check ``grid`` (one sweep dict per
    batch size, ``confirm.advice_grid``) and the advisor's rate at each batch size (``centres``), the
    advised ``batch_size``, the validation-ELBO ``target`` of the critical batch size (the advisor's
    checkpoint), the advisor's ``b_simple`` estimates and the seeds it ``measured_on`` (said in scope)."""

    grid: Sequence[Mapping]
    centres: Mapping[int, float]
    batch_size: int
    target: float
    b_simple: Sequence[float]
    measured_on: Sequence[int]

    def arm(self, batch_size: int) -> str:
        """'advised' for the advised batch size, else 'others'."""
        return "advised" if int(batch_size) == int(self.batch_size) else "others"


def look_grid(fam, design: Design, seeds: Sequence[int]) -> dict[str, list[dict]]:
    """{arm: its sweep dicts on ``seeds``} for every arm a claim still open needs."""
    grids: dict[str, list[dict]] = {}
    for g in design.grid:
        arm = design.arm(g["batch_size"])
        if any(fam.is_open(c) for c in ARMS[arm]):
            grids.setdefault(arm, []).append({**g, "seed": list(seeds)})
    return grids


def judge_look(fam, design: Design, seeds: Sequence[int], run: Callable, histories: Callable, runs=None) -> dict:
    """One look of ``fam``: train, on ``seeds``, the batch sizes of the claims still open (one sweep;
    ``run``: a grid -> its sweep rows, stored runs reused; ``histories``: run ids -> per-epoch rows) and
    hand every open claim its estimate on this look's runs. Returns ``runs``: {arm: its latest runs},
    and the critical batch size's "pairs" and "fit" at the look that last judged it."""
    runs = dict(runs or {})
    grids = look_grid(fam, design, seeds)
    if grids:
        run([g for gs in grids.values() for g in gs])  # the look's runs, trained together
    runs |= {arm: run(g) for arm, g in grids.items()}  # each arm's rows (now stored: no training)
    looked = pd.concat([runs[a] for a in grids], ignore_index=True) if grids else None
    if looked is None:
        return runs
    b, tuned_on = design.batch_size, list(design.measured_on)
    at_advice, others = confirm.rate_check(looked, design.centres, b)
    if fam.is_open("tune-rate"):
        fam.add("tune-rate", at_advice, runs=looked[looked.batch_size == b], tuned_on=tuned_on)
    if fam.is_open("tune-rate-rule") and others:
        fam.add("tune-rate-rule", others, runs=looked[looked.batch_size != b], tuned_on=tuned_on)
    elif fam.is_open("tune-rate-rule"):
        fam.not_run("tune-rate-rule", "batch_factors", "a factor other than 1")
    if fam.is_open("tune-batch"):
        runs["pairs"], runs["fit"] = confirm.critical_batch_fit(looked, histories(list(looked.run_id)), design.target)
        judged = looked[looked.run_id.isin(runs["pairs"].run_id)]
        # final: the interval rests mostly on the advisor's few B_simple runs, which more grid seeds do not add
        fam.add("tune-batch", confirm.bsimple_vs_bcrit(design.b_simple, runs["fit"]), runs=judged, final=True)
    return runs


def grid_runs(runs: Mapping) -> pd.DataFrame:
    """The check grid's runs of every look, each once: every batch size with the seeds it got."""
    parts = [runs[a] for a in ARMS if a in runs]
    return pd.concat(parts, ignore_index=True).drop_duplicates("run_id").reset_index(drop=True)


def seed_values(runs: Mapping, looks: Sequence[int]) -> dict:
    """The design's looks and the seeds each arm got, in words for a page: 'looks' ('5, 10 and 20') and
    'seeds-by-arm' ('5 seeds at the advised batch size and 20 at the others')."""
    where = {"advised": "at the advised batch size", "others": "at the others"}
    parts = [f"{runs[a].seed.nunique()} {where[a]}" for a in ARMS if a in runs and len(runs[a])]
    parts[:1] = [parts[0].replace(" ", " seeds ", 1)] if parts else []
    looks = [str(n) for n in looks]
    return {"looks": ", ".join(looks[:-1]) + " and " + looks[-1] if len(looks) > 1 else looks[0],
            "seeds-by-arm": " and ".join(parts)}  # fmt: skip
