"""The optimizer comparison of chapter 07: each optimizer at its Keras default learning rate and at
a rate tuned on other seeds, compared on the evaluation seeds.

    from vae_utils.claims import optimizers as optimizer_study
    tuning = sweep(optimizer_study.tuning_grid(base, defaults, learning_rates, tuning_seeds), out)
    tuned = protocol.tune(tuning, over="learning_rate", by="optimizer")
    settings = optimizer_study.settings(defaults, tuned)          # {"default rates": {...}, "tuned rates": {...}}
    best, best_default = optimizer_study.winner(tuned), optimizer_study.default_best(tuning, defaults)
    fam, looks = verdicts.Family("07_optimizers", looks=(5, 10, 20)), []
    for look in fam.looks(seeds):                                  # seeds while a claim is open
        grid = optimizer_study.look_grid(fam, base, settings, best, best_default, look)
        looks.append(sweep(grid, out))                             # only the arms of the open claims
        optimizer_study.judge_look(fam, looks[-1], settings, floor, best, best_default, tuning_seeds)
    runs = optimizer_study.compare(optimizer_study.pooled(looks), settings, floor)  # each arm, its seeds
    f_stats, gains = optimizer_study.differ(runs)                   # do they differ at all?
    leads, inter = optimizer_study.lead(runs, "adam", "sgd")         # Adam against SGD, per setting
    optimizer_study.defaults_gain(runs, best, best_default)          # tuning against the best default

The tuning seeds choose (rates, the winner, the best default) on the validation ELBO; the evaluation
seeds judge on the test ELBO, so a choice never grades itself. A run that broke down is drawn at
``floor`` (the untrained model's test ELBO) but compared as a divergence, never as a number made of
the floor (``stats.with_divergence``).

The evaluation seeds come in looks (``verdicts.Family(..., looks=...)``): each look trains only the
arms of the claims still open (``look_grid``) and hands every open claim its estimate on the look's
seeds (``judge_look``); the figures then draw every arm with the seeds it got (``pooled``), and a
comparison of two arms pairs only the seeds both ran. Pure pandas/NumPy/SciPy, like ``claims``.
"""

from __future__ import annotations

import math
from collections.abc import Mapping, Sequence
from dataclasses import dataclass

import numpy as np
import pandas as pd

from ..core.optimizers import OPTIMIZERS
from ..publish.numbers import MINUS, fmt
from . import protocol, stats
from .stats import Estimate

__all__ = [
    "DEFAULT",
    "TUNED",
    "Comparison",
    "words",
    "in_words",
    "rate_span",
    "tuning_grid",
    "settings",
    "evaluation_grid",
    "arms",
    "look_grid",
    "judge_look",
    "pooled",
    "compare",
    "differ",
    "f_words",
    "seeds_words",
    "looks_words",
    "lead",
    "winner",
    "pairs_table",
    "best_against",
    "default_best",
    "defaults_gain",
    "numbers",
    "rates_table",
]

DEFAULT, TUNED = "default rates", "tuned rates"  # the two settings: the conditions of the verdicts


def words(optimizer: str) -> str:
    """How pages name an optimizer ("AdamW", "SGD with momentum"): the registry's words."""
    spec = OPTIMIZERS.get(optimizer)
    return spec.words if spec else optimizer


def in_words(runs: pd.DataFrame) -> pd.DataFrame:
    """``runs`` with each optimizer named in words, for a figure's legend or axis."""
    return runs.assign(optimizer=runs.optimizer.map(words))


def rate_span(rates: Mapping[str, float]) -> str:
    """'from 0.002 (Adam) to 0.256 (SGD)' (or 'at 0.016 for every optimizer'): the smallest and the largest
    of the rates, with their optimizers."""
    if not rates:
        return "nowhere (every rate broke down)"
    lo, hi = min(rates, key=rates.get), max(rates, key=rates.get)
    if rates[lo] == rates[hi]:
        return f"at {fmt(rates[lo])} for every optimizer"
    return f"from {fmt(rates[lo])} ({words(lo)}) to {fmt(rates[hi])} ({words(hi)})"


def tuning_grid(base: Mapping, defaults: Mapping[str, float], learning_rates: Sequence[float], seeds) -> list[dict]:
    """The tuning sweep: every optimizer at every rate of the shared grid and at its own default rate
    (so that the best optimizer at its default can be chosen on the tuning seeds too)."""
    return [
        {**base, "optimizer": o, "learning_rate": sorted({*map(float, learning_rates), float(lr)}), "seed": list(seeds)}
        for o, lr in defaults.items()
    ]


def settings(defaults: Mapping[str, float], tuned: pd.DataFrame) -> dict[str, dict[str, float]]:
    """{DEFAULT: {optimizer: default rate}, TUNED: {optimizer: tuned rate}} in the order of ``defaults``;
    an optimizer with no tuned rate (every rate broke) is left out of TUNED."""
    chosen = dict(zip(tuned.optimizer, tuned.learning_rate, strict=True))
    return {
        DEFAULT: {o: float(lr) for o, lr in defaults.items()},
        TUNED: {o: float(chosen[o]) for o in defaults if o in chosen and pd.notna(chosen[o])},
    }


def evaluation_grid(base: Mapping, rates: Mapping[str, Mapping[str, float]], seeds) -> list[dict]:
    """The evaluation sweep: every optimizer at the rate of every setting, on the evaluation seeds."""
    return [
        {**base, "optimizer": o, "learning_rate": lr, "seed": list(seeds)}
        for r in rates.values()
        for o, lr in r.items()
    ]


def arms(fam, rates: Mapping[str, Mapping[str, float]], best: str, best_default: str | None) -> list[tuple[str, float]]:
    """The (optimizer, rate) arms the claims still open in ``fam`` need, in the order of ``rates``:
    every arm for opt-differ, Adam's and SGD's for opt-adam-sgd, the tuned ``best`` and
    ``best_default`` at its default rate for opt-defaults (an arm two claims share, once)."""
    out = []
    for s, r in rates.items():
        for o, lr in r.items():
            need = (
                fam.is_open("opt-differ")
                or (fam.is_open("opt-adam-sgd") and o in ("adam", "sgd"))
                or (fam.is_open("opt-defaults") and (s, o) in ((TUNED, best), (DEFAULT, best_default)))
            )
            if need and (o, float(lr)) not in out:
                out.append((o, float(lr)))
    return out


def look_grid(fam, base: Mapping, rates, best: str, best_default: str | None, seeds) -> list[dict]:
    """The sweep of one look: the arms of the open claims (``arms``) on ``seeds``."""
    return [{**base, "optimizer": o, "learning_rate": lr, "seed": list(seeds)} for o, lr in arms(fam, rates, best, best_default)]  # fmt: skip


def judge_look(fam, evaluation: pd.DataFrame, rates, floor: float, best: str, best_default: str | None, tuned_on) -> None:  # fmt: skip
    """Hand every claim still open its estimate on one look's runs (``evaluation``: the look's
    sweep), each with the runs it judged and the seeds the rates were tuned on."""
    c = compare(evaluation, rates, floor)
    if fam.is_open("opt-differ"):
        f, gains = differ(c)
        fam.add("opt-differ", f, runs=evaluation, tuned_on=tuned_on, interaction=gains)
    if fam.is_open("opt-adam-sgd"):
        leads, change = lead(c, "adam", "sgd")
        fam.add("opt-adam-sgd", leads, runs=c.of(None, "adam", "sgd"), tuned_on=tuned_on, interaction=change)
    if fam.is_open("opt-defaults"):
        runs = [c.of(TUNED, best), c.of(DEFAULT, best_default)]
        fam.add("opt-defaults", defaults_gain(c, best, best_default), runs=runs, tuned_on=tuned_on)


def pooled(looks: Sequence[pd.DataFrame]) -> pd.DataFrame:
    """The runs of every look, each once: every arm with the seeds it got."""
    return pd.concat(looks, ignore_index=True).drop_duplicates("run_id").reset_index(drop=True)


@dataclass(frozen=True)
class Comparison:
    """The evaluation runs of each setting: ``runs[setting]`` (floored test ELBO and a ``floored``
    column), ``test[setting]`` (seed × optimizer, floored: for figures and tables) and
    ``outcome[setting]`` (the same with NaN for a run that broke down: for the verdicts)."""

    settings: dict[str, dict[str, float]]
    floor: float  # the untrained model's test ELBO: where a run that broke down is drawn
    runs: dict[str, pd.DataFrame]
    test: dict[str, pd.DataFrame]
    outcome: dict[str, pd.DataFrame]

    @property
    def all_runs(self) -> pd.DataFrame:
        """Every evaluation run once per setting it belongs to, with a column ``setting``."""
        return pd.concat([d.assign(setting=s) for s, d in self.runs.items()], ignore_index=True)

    def ran(self, setting: str, optimizer: str) -> pd.Series:
        """``outcome[setting][optimizer]`` on the seeds that arm ran (NaN: a run that broke down), so
        that an arm given more seeds by a later look is paired only on the seeds both arms share."""
        return self.outcome[setting][optimizer][self.test[setting][optimizer].notna()]

    def of(self, setting: str | None, *optimizer: str) -> pd.DataFrame:
        """The runs of ``optimizer`` (several; none: all) in ``setting`` (None: either, each run once)."""
        d = self.runs[setting] if setting is not None else pd.concat(self.runs.values()).drop_duplicates("run_id")
        return (d[d.optimizer.isin(optimizer)] if optimizer else d).reset_index(drop=True)


def compare(evaluation: pd.DataFrame, rates: Mapping[str, Mapping[str, float]], floor: float) -> Comparison:
    """Split ``evaluation`` by setting (an optimizer's runs at that setting's rate; a run can belong
    to both when the tuned rate is the default) and pivot each to seed × optimizer."""
    floored = protocol.floored(evaluation, "test_elbo", floor)
    runs, test, outcome = {}, {}, {}
    for s, r in rates.items():
        want = floored.optimizer.map(r).astype(float)
        d = floored[np.isclose(floored.learning_rate.astype(float), want)]
        order = [o for o in r if o in set(d.optimizer)]
        runs[s] = d.reset_index(drop=True)
        test[s] = d.pivot_table(index="seed", columns="optimizer", values="test_elbo")[order]
        outcome[s] = d.assign(test_elbo=d.test_elbo.where(~d.floored)).pivot_table(
            index="seed", columns="optimizer", values="test_elbo", dropna=False
        )[order]
    return Comparison({k: dict(v) for k, v in rates.items()}, float(floor), runs, test, outcome)


def differ(c: Comparison) -> tuple[dict[str, Estimate], Estimate]:
    """Do the optimizers differ at all? A one-way ANOVA across them per setting (an omnibus test: it
    does not pick the two most different after looking), and the interaction: an ANOVA of the
    seed-matched gains from tuning (tuned − default), which differ when tuning helps some more."""
    f = {
        s: stats.omnibus(dict(t.items()), name="F statistic, one-way ANOVA across the optimizers")
        for s, t in c.test.items()
    }
    both = [o for o in c.test[TUNED] if o in c.test[DEFAULT]]
    gains = stats.omnibus(
        {o: c.test[TUNED][o] - c.test[DEFAULT][o] for o in both},
        name="F statistic of the seed-matched gains from tuning, across the optimizers",
    )
    return f, gains


def f_words(f: Mapping) -> str:
    """'F statistic, default rates: 1,000; tuned rates: 56' (a test without one: 'n/a'), from the
    Estimates of ``differ`` or the conditions of the opt-differ verdict (each with an ``estimate``)."""
    f = {s: getattr(e, "effect", e) for s, e in f.items()}  # a verdict's condition holds its Estimate
    f = {s: e for s, e in f.items() if e is not None}
    if not f:
        return "F statistic not computed (the claim was not tested)"
    return "F statistic, " + "; ".join(f"{s}: {fmt(e.estimate)}" for s, e in f.items())


def seeds_words(c: Comparison) -> str:
    """How many evaluation seeds the arms got: '5' when every arm got the same, else '5 to 20'."""
    counts = sorted({int(n) for t in c.test.values() for n in t.notna().sum()})
    return str(counts[0]) if len(counts) == 1 else f"{counts[0]} to {counts[-1]}"


def looks_words(plan: Sequence[int]) -> str:
    """The design's looks in words: '5, 10 and 20' ('2' with one look)."""
    plan = [str(n) for n in plan]
    return plan[0] if len(plan) == 1 else f"{', '.join(plan[:-1])} and {plan[-1]}"


def lead(c: Comparison, a: str, b: str) -> tuple[dict[str, Estimate], Estimate]:
    """``a``'s lead over ``b`` in test ELBO per setting, seed by seed (a rank test when a run broke
    down: ``stats.with_divergence``), and whether tuning changes it (tuned lead − default lead)."""
    name = f"test ELBO({words(a)}) {MINUS} test ELBO({words(b)})"
    leads = {s: stats.with_divergence(c.ran(s, a), c.ran(s, b), name=name, unit="nats") for s in c.outcome}
    tuned, default = c.test[TUNED], c.test[DEFAULT]
    inter = stats.paired(
        tuned[a] - tuned[b],
        default[a] - default[b],
        name=f"{words(a)}'s lead when tuned {MINUS} its lead at defaults",
        unit="nats",
    )
    return leads, inter


def winner(tuned: pd.DataFrame) -> str:
    """The optimizer whose tuned rate had the best mean validation ELBO on the tuning seeds."""
    return str(tuned.set_index("optimizer")["mean"].idxmax())


def pairs_table(c: Comparison, best: str) -> pd.DataFrame:
    """The tuned ``best`` against every other tuned optimizer: seed-matched test-ELBO differences,
    each with its interval at its Holm-adjusted level over these comparisons and the adjusted p."""
    t = c.test[TUNED]
    pairs = [stats.paired(t[best], t[o], name=f"{words(best)} {MINUS} {words(o)}", unit="nats") for o in t if o != best]
    h = stats.holm([e.p for e in pairs])
    adjusted = [e.at_level(lvl) if np.isfinite(lvl) else e for e, lvl in zip(pairs, h.level, strict=True)]
    return pd.DataFrame(
        {
            "comparison": [e.name for e in pairs],
            "difference (nats)": [e.estimate for e in pairs],
            "low": [e.low for e in adjusted],
            "high": [e.high for e in adjusted],
            "Holm-adjusted p": h.p_adjusted,
        }
    )


def best_against(c: Comparison, best: str, other: str = "adam") -> Estimate | str:
    """The tuned ``best``'s test ELBO minus the tuned ``other``'s, seed by seed, with its 95% interval
    (not adjusted for other comparisons); a sentence instead when they are the same or one is absent."""
    if other not in c.outcome[TUNED]:
        return f"not measured: {words(other)} was not among the optimizers"
    if best == other:
        return f"0 nats ({words(other)} itself was best)"
    name = f"test ELBO({words(best)}) {MINUS} test ELBO({words(other)}), tuned"
    return stats.with_divergence(c.ran(TUNED, best), c.ran(TUNED, other), name=name, unit="nats")


def default_best(tuning: pd.DataFrame, defaults: Mapping[str, float]) -> str | None:
    """The optimizer with the best mean validation ELBO at its default rate, on the tuning seeds."""
    at_default = tuning[np.isclose(tuning.learning_rate.astype(float), tuning.optimizer.map(defaults).astype(float))]
    if at_default.empty:
        return None
    return str(protocol.tune(at_default, over="optimizer")["optimizer"].iloc[0])


def defaults_gain(c: Comparison, best: str, best_default: str | None) -> Estimate:
    """The tuned ``best`` against ``best_default`` at its default rate: test ELBO, seed by seed (a
    rank test when a run broke down); untested when no optimizer ran at its default."""
    if best_default is None:
        name, note = (
            "test ELBO(tuned) − test ELBO(best default)",
            "No optimizer ran at its default rate on the tuning seeds.",
        )
        return Estimate(name, math.nan, math.nan, math.nan, math.nan, unit="nats", note=note)
    name = f"test ELBO(tuned {words(best)}) {MINUS} test ELBO({words(best_default)} at its default)"
    return stats.with_divergence(c.ran(TUNED, best), c.ran(DEFAULT, best_default), name=name, unit="nats")


def numbers(c: Comparison, tuned: pd.DataFrame, f: Mapping[str, Estimate], best: str, best_vs_adam) -> dict:
    """The results the chapter's prose states, for ``verdicts.publish_values``: how many optimizers,
    the floor and how many runs broke down, tuned rates at an edge of the grid and their span, the F
    statistics, the winner, its rate and its lead over Adam, the seed-to-seed spread
    (``protocol.seed_spread``: the median over settings of the SD across seeds) and how many
    evaluation seeds the arms got (``seeds_words``)."""
    every = c.of(None)
    return {
        "n-opt": len(c.settings[DEFAULT]),
        "floor": c.floor,
        "n-floored": int(protocol.unstable(every).sum()),
        "n-edge": int((~tuned.interior.astype(bool)).sum()),
        "tuned-span": rate_span(c.settings[TUNED]),
        "f": f_words(f),
        "best": words(best),
        "best-rate": c.settings[TUNED][best],
        "best-vs-adam": best_vs_adam,
        "spread": protocol.seed_spread(every, ["optimizer", "learning_rate"]),
        "n-seeds": seeds_words(c),
    }


def rates_table(tuned: pd.DataFrame, defaults: Mapping[str, float]) -> pd.DataFrame:
    """The tuned rates beside the defaults, in words."""
    return pd.DataFrame(
        {
            "optimizer": tuned.optimizer.map(words),
            "Keras default rate": tuned.optimizer.map(defaults),
            "tuned rate": tuned.learning_rate,
            "tuned rate inside the grid": tuned.interior,
            "tuning runs that broke at it": tuned.n_unstable,
        }
    )
