"""The β study of chapter 08: rate and distortion over a grid of KL weights, active units, KL
schedules as remedies where a constant β collapses units, and the gap between training and
validation ELBO in a setting built to overfit.

    from vae_utils.claims import beta
    rate = beta.tuned_rates(tuning)                                   # the rate tuned for every β
    design = {"evaluation": [...], "remedies": [...], "overfit": [...]}   # each experiment's grid, no seeds
    fam, judged = verdicts.Family("08_beta", looks=(5, 10, 20)), []
    for look in fam.looks(seeds):                                       # seeds while a claim is open
        ran = {k: sweep(g, out) for k, g in beta.look_grids(fam, design, look).items()}  # open claims' runs
        ran["hist"] = load_histories(out, run_ids=ran["overfit"].run_id) if "overfit" in ran else None
        judged.append(beta.judge_look(fam, ran, floor, kl_schedules, collapse_betas))
    evaluation, remedies, overfit, hist = beta.pooled(judged)          # every run with the seeds it got
    beta.rate_distortion(ok, tuning)                                  # KL at the ends, the best β (on tuning seeds)

Each look hands the claims still open their estimates (``judge_look``): the collapse slope over
the β grid, each schedule against a constant β (``judge_remedies``), and the gap slope of the
overfitting runs when their control passes (``overfit_control``), else not testable. The
overfitting test takes part in the looks like the others: its control is checked on the seeds of
each look it runs in, the seeds its verdict is then judged on.

Every run is scored with β = 1 on held-out data (the true ELBO), whatever β it was trained with. A
remedy is judged only where a constant β collapses units (its positive control), and the overfitting
claim only where the validation ELBO falls from its best epoch (its positive control). The figure
builders import matplotlib when called; everything else is pandas/NumPy/SciPy, like ``claims``.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from dataclasses import dataclass

import numpy as np
import pandas as pd

from ..publish.numbers import MINUS, fmt
from . import protocol, stats
from .optimizers import looks_words  # the design's looks in words, as chapter 07 says them
from .stats import Estimate

__all__ = [
    "SCHEDULES",
    "look_grids",
    "judge_look",
    "pooled",
    "seeds_words",
    "looks_words",
    "tuned_rates",
    "rate_at_one",
    "rate_distortion",
    "collapse_slope",
    "rates_table",
    "control_table",
    "control_runs",
    "collapsed",
    "remedy_effects",
    "judge_remedies",
    "val_fall",
    "Control",
    "overfit_control",
    "gap_slope",
    "default_gap",
    "settings_words",
    "numbers",
    "rate_distortion_figure",
    "schedule_runs",
    "schedules_figure",
    "gap_figure",
]

SCHEDULES = {"linear": "beta-linear", "cyclical": "beta-cyclical", "free_bits": "beta-free-bits"}  # claim ids
ACTIVE = "active_units"


def tuned_rates(tuning: pd.DataFrame) -> pd.Series:
    """The learning rate with the best mean validation ELBO for every β (``protocol.tune``), by β."""
    return protocol.tune(tuning, over="learning_rate", by="beta").set_index("beta").learning_rate


def rate_at_one(rate: pd.Series) -> float:
    """The rate tuned at β = 1, or at the β nearest to 1 (in log) when 1 is not on the grid."""
    betas = rate.index.to_numpy(np.float64)
    return float(rate.iloc[int(np.argmin(np.abs(np.log(betas))))])


def best_beta(tuning: pd.DataFrame) -> float:
    """The β whose tuning runs, each β at its own tuned rate, have the best mean validation ELBO:
    chosen on the tuning seeds, never on the runs the page then reports."""
    tuned = protocol.tune(tuning, over="learning_rate", by="beta")  # `mean`: the tuned rate's validation ELBO
    return float(tuned.beta[tuned["mean"].idxmax()])


def rate_distortion(ok: pd.DataFrame, tuning: pd.DataFrame) -> dict[str, object]:
    """The numbers the rate–distortion section states, over the evaluation runs that trained
    (``ok``): the mean test KL and reconstruction loss at the smallest and the largest β, the β the
    tuning seeds' validation ELBO prefers (``best_beta``) and its test ELBO with its interval."""
    kl = ok.groupby("beta").test_kl_loss.mean()
    rec = ok.groupby("beta").test_reconstruction_loss.mean()
    best = best_beta(tuning)
    return {
        "kl-lo": float(kl.iloc[0]),
        "kl-hi": float(kl.iloc[-1]),
        "rec-lo": float(rec.iloc[0]),
        "rec-hi": float(rec.iloc[-1]),
        "best": best,
        "best-elbo": stats.one_sample(ok[np.isclose(ok.beta, best)].test_elbo, name="test ELBO", unit="nats"),
    }


def collapse_slope(ok: pd.DataFrame) -> Estimate:
    """Active units per doubling of β: one slope per seed on log₂ β, a t-test over the seeds."""
    return stats.per_seed_slope(ok, "beta", ACTIVE, logx=True, name="active units per doubling of β", unit="units")


def _constant(evaluation: pd.DataFrame) -> pd.Series:
    return evaluation.set_index(["beta", "seed"]).sort_index()[ACTIVE]


def rates_table(rate: pd.Series) -> pd.DataFrame:
    """The tuned rate of every β, in words."""
    return pd.DataFrame({"β": rate.index.to_numpy(), "tuned learning rate": rate.to_numpy()})


def _control_betas(betas: Sequence[float]) -> list[float]:
    return sorted({1.0, *map(float, betas)})


def control_table(evaluation: pd.DataFrame, betas: Sequence[float]) -> pd.DataFrame:
    """The positive control of the remedies: mean active units at a constant β, at β = 1 and at each of
    ``betas`` (NaN where not run), out of the model's latent dimensions."""
    betas = _control_betas(betas)
    means = evaluation.groupby("beta")[ACTIVE].mean()
    of = f"mean active units (of {_one(evaluation, 'latent_dim')}), constant β"
    return pd.DataFrame({"β": betas, of: [means.get(b, np.nan) for b in betas]})


def control_runs(evaluation: pd.DataFrame, betas: Sequence[float]) -> pd.DataFrame:
    """The runs ``control_table`` reads."""
    return evaluation[evaluation.beta.isin(_control_betas(betas))]


def collapsed(evaluation: pd.DataFrame, betas: Sequence[float], latent_dim: int) -> list[float]:
    """The β of ``betas`` at which a constant weight leaves, on average, more than half a unit inactive."""
    means = evaluation.groupby("beta")[ACTIVE].mean()
    return [b for b in betas if b in means.index and means[b] < latent_dim - 0.5]


def remedy_effects(remedies: pd.DataFrame, evaluation: pd.DataFrame, schedule: str, betas) -> dict[str, Estimate]:
    """{"at β = 2": active units(schedule) − active units(constant β)}, seed by seed, for each β."""
    remedy = remedies.set_index(["kl_schedule", "beta", "seed"]).sort_index()[ACTIVE]
    constant = _constant(evaluation)
    name = f"active units({schedule}) {MINUS} active units(constant)"
    return {
        f"at β = {fmt(b)}": stats.paired(remedy.loc[(schedule, b)], constant.loc[b], name=name, unit="units")
        for b in betas
    }


def judge_remedies(fam, remedies, evaluation, kl_schedules: Sequence[str], collapse_betas) -> None:
    """Hand the family each open schedule's claim: not run when the build left the schedule out, not
    testable when no β of ``collapse_betas`` collapses units at a constant weight (the positive control),
    else the paired effects at the β that do collapse, with the runs they rest on."""
    where = collapsed(evaluation, collapse_betas, int(_one(evaluation, "latent_dim")))
    constant = evaluation[evaluation.beta.isin(where or collapse_betas)]
    for schedule, id in SCHEDULES.items():
        if not fam.is_open(id):  # decided at an earlier look: this look did not run it
            continue
        if schedule not in kl_schedules:
            fam.not_run(id, "kl_schedules", schedule)
        elif not where:
            betas = " and ".join(fmt(b) for b in collapse_betas)
            reason = f"At β = {betas} a constant weight kept every unit active: no collapse to remedy (the positive control failed)."
            fam.not_testable(id, reason, runs=constant)
        else:
            runs = [constant, remedies[(remedies.kl_schedule == schedule) & remedies.beta.isin(where)]]
            fam.add(id, remedy_effects(remedies, evaluation, schedule, where), runs=runs)


def _needed(fam, kind: str, entry: Mapping, remedy_betas: set) -> bool:
    if kind == "remedies":  # a schedule no claim judges runs at every look
        return entry["kl_schedule"] not in SCHEDULES or fam.is_open(SCHEDULES[entry["kl_schedule"]])
    if kind == "overfit":
        return fam.is_open("beta-overfit")
    remedy_open = any(fam.is_open(id) for id in SCHEDULES.values())  # their constant-β runs, at their β
    return fam.is_open("beta-collapse") or (remedy_open and float(entry["beta"]) in remedy_betas)


def look_grids(fam, design: Mapping[str, Sequence[Mapping]], seeds) -> dict[str, list[dict]]:
    """One look's grids (``sweep_each`` trains them in one sweep): of each experiment's grid in ``design``
    ({"evaluation": each β at its rate, "remedies": one entry per schedule and β, "overfit": ...}, without
    seeds) the entries the open claims need, on ``seeds``: every β while beta-collapse is open, else the
    constant β of the open remedies; a schedule's runs while its claim is open; the overfitting runs while
    beta-overfit is. An experiment no open claim needs is left out."""
    remedy_betas = {float(e["beta"]) for e in design.get("remedies", ())}
    grids = {
        kind: [{**e, "seed": list(seeds)} for e in entries if _needed(fam, kind, e, remedy_betas)]
        for kind, entries in design.items()
    }
    return {k: g for k, g in grids.items() if g}


def judge_look(fam, ran: Mapping, floor: float, kl_schedules: Sequence[str], collapse_betas) -> dict:
    """Hand every claim still open its estimate on one look's runs (``ran``: the sweeps of
    ``look_grids``, and ``hist``, the overfitting runs' histories): the collapse slope, the remedies,
    the gap slope where the overfitting control passes. Returns ``ran`` with the evaluation floored."""
    ran = dict(ran)
    if "evaluation" in ran:
        ran["evaluation"] = protocol.floored(ran["evaluation"], "test_elbo", floor)
        ok = ran["evaluation"][~ran["evaluation"].floored]
        if fam.is_open("beta-collapse"):
            fam.add("beta-collapse", collapse_slope(ok), runs=ok)
        if any(fam.is_open(id) for id in SCHEDULES.values()):
            judge_remedies(fam, ran.get("remedies", ok.iloc[:0]), ran["evaluation"], kl_schedules, collapse_betas)
    if "overfit" in ran and fam.is_open("beta-overfit"):
        overfit = ran["overfit"]
        control = overfit_control(overfit, val_fall(ran["hist"]), delta=fam.record("beta-overfit").delta)
        if control.ok:
            fam.add("beta-overfit", gap_slope(overfit), runs=overfit)
        else:
            fam.not_testable("beta-overfit", control.reason, runs=overfit)
    return ran


def pooled(judged: Sequence[Mapping]) -> tuple[pd.DataFrame, pd.DataFrame, pd.DataFrame, pd.DataFrame]:
    """(evaluation, remedies, overfit, hist) over every look, each run once (each with the seeds it got)."""

    def pool(kind, key):
        frames = [j[kind] for j in judged if j.get(kind) is not None]
        return pd.concat(frames, ignore_index=True).drop_duplicates(key).reset_index(drop=True)

    return pool("evaluation", "run_id"), pool("remedies", "run_id"), pool("overfit", "run_id"), pool("hist", ["run_id", "epoch"])  # fmt: skip


def seeds_words(*runs: pd.DataFrame) -> str:
    """How many seeds each setting got over ``runs`` (β, schedule, training set): '5' when all got the
    same, else '5 to 20'."""
    keys = ["beta", "kl_schedule", "train_size", "epochs"]
    counts = sorted({int(n) for r in runs if len(r) for n in r.groupby([k for k in keys if k in r], dropna=False).seed.nunique()})  # fmt: skip
    return "n/a" if not counts else str(counts[0]) if len(counts) == 1 else f"{counts[0]} to {counts[-1]}"


def val_fall(hist: pd.DataFrame) -> pd.Series:
    """How far each run's validation ELBO fell from its best epoch by its last, by (β, seed)."""
    return hist.groupby(["beta", "seed"]).val_elbo.agg(lambda v: float(v.max() - v.iloc[-1]))


@dataclass(frozen=True)
class Control:
    """The positive control of the overfitting test at the smallest β: ``ok``, and ``reason`` when not."""

    ok: bool
    beta: float
    fall: Estimate  # the validation ELBO's fall from its best epoch, over the seeds
    gap: float  # mean training − validation ELBO at the end
    reason: str = ""


def overfit_control(overfit: pd.DataFrame, fall: pd.Series, delta: float, min_gap: float = 1.0) -> Control:
    """Did the setting overfit? At the smallest β the validation ELBO must fall by more than ``delta``
    from its best epoch (mean over seeds) and the final gap exceed ``min_gap`` nats."""
    b0 = float(overfit.beta.min())
    f = stats.one_sample(fall.loc[b0], name="fall of the validation ELBO from its best epoch", unit="nats")
    gap = float((overfit.train_elbo - overfit.val_elbo)[overfit.beta == b0].mean())
    if not fall.loc[b0].mean() > delta:
        why = f"the validation ELBO fell by only {fmt(fall.loc[b0].mean(), 2)} nats from its best epoch (Δ = {fmt(delta)})"
    elif not gap > min_gap:
        why = f"the training ELBO exceeded the validation ELBO by only {fmt(gap, 2)} nats (at least {fmt(min_gap)} needed)"
    else:
        return Control(True, b0, f, gap)
    return Control(
        False,
        b0,
        f,
        gap,
        f"The positive control failed: at β = {fmt(b0)} {why}, so there was no overfitting to narrow.",
    )


def gap_slope(overfit: pd.DataFrame) -> Estimate:
    """Training − validation ELBO (both with β = 1) per doubling of β: per-seed slopes, t-test over seeds."""
    gaps = overfit.assign(gap=overfit.train_elbo - overfit.val_elbo)
    return stats.per_seed_slope(
        gaps, "beta", "gap", logx=True, name="generalization gap per doubling of β", unit="nats"
    )


def default_gap(ok: pd.DataFrame) -> Estimate | str:
    """Training − validation ELBO at β = 1 in the default setting (all images, dynamic binarization)."""
    at_one = ok[np.isclose(ok.beta, 1.0)]
    if at_one.empty:
        return "not measured (β = 1 is not on this build's grid)"
    return stats.one_sample(at_one.train_elbo - at_one.val_elbo, name="training − validation ELBO", unit="nats")


def _one(runs: pd.DataFrame, column: str):
    """The values of ``column`` over ``runs``, sorted: one value as itself, several as a list, none as 'n/a'."""
    vals = sorted(runs[column].dropna().unique().tolist()) if column in runs and len(runs) else []
    return "n/a" if not vals else vals[0] if len(vals) == 1 else vals


def settings_words(tuning, evaluation, remedies, overfit) -> dict:
    """The settings the prose states, read from the runs themselves (never from the parameters, so a
    page cannot say "30 epochs" of runs that trained for 300)."""
    from ..core.optimizers import OPTIMIZERS
    from ..publish.scope import scope_of

    opt = _one(evaluation, "optimizer")
    return {
        "latent": _one(evaluation, "latent_dim"),
        "optimizer": OPTIMIZERS[opt].words if opt in OPTIMIZERS else opt,
        "epochs": _one(evaluation, "epochs"),
        "n-beta": evaluation.beta.nunique(),
        "grid": _one(evaluation, "beta"),
        "n-tuning": tuning.seed.nunique(),
        "n-lr": tuning.learning_rate.nunique(),
        "n-seeds": seeds_words(evaluation, remedies, overfit),
        "n-train": scope_of(evaluation)["training_images"],
        "collapse-betas": _one(remedies, "beta"),
        "warmup": _one(remedies, "kl_warmup_epochs"),  # every remedy run carries the schedules' settings
        "cycles": _one(remedies, "kl_cycles"),
        "free-bits-nats": _one(remedies, "free_bits"),
        "overfit-n": scope_of(overfit)["training_images"],
        "overfit-epochs": _one(overfit, "epochs"),
        "overfit-betas": _one(overfit, "beta"),
        "overfit-binarization": _one(overfit, "binarization"),
    }


def numbers(tuning, evaluation, remedies, overfit, control: Control) -> dict:
    """Everything the chapter's prose states, for ``verdicts.publish_values``: the settings (read from
    the runs, ``settings_words``), the tuned rates, runs that broke down, the rate–distortion numbers,
    where a constant β collapsed units, the default setting's gap and the overfitting test's control."""
    ok = evaluation[~evaluation.floored] if "floored" in evaluation else evaluation
    rate = tuned_rates(tuning)
    tried = sorted(remedies.beta.unique()) if "beta" in remedies else []
    where = collapsed(evaluation, tried, int(_one(evaluation, "latent_dim")))
    passed = (
        "enough overfitting for the test"
        if control.ok
        else "too little for the test, so the claim is not testable here"
    )
    return (
        settings_words(tuning, evaluation, remedies, overfit)
        | rate_distortion(ok, tuning)
        | {
            "n-rates": int(rate.nunique()),
            "n-floored": int(protocol.unstable(evaluation).sum()),
            "collapsed": where or "none",
            "default-gap": default_gap(ok),
            "overfit-b0": control.beta,
            "overfit-fall": control.fall,
            "overfit-gap": control.gap,
            "overfit-control": passed,
        }
    )


# -- figures ---------------------------------------------------------------------------------------


def rate_distortion_figure(evaluation: pd.DataFrame):
    """Left: test KL against test reconstruction, per run and per β; right: test ELBO against β
    (runs that broke down drawn as divergences, not at the floor)."""
    import matplotlib.pyplot as plt

    from .. import plots

    ok = evaluation[~evaluation.floored] if "floored" in evaluation else evaluation
    fig, axes = plt.subplots(1, 2, figsize=(9.3, 3.9))
    plots.plot_rate_distortion(ok, x="test_kl_loss", y="test_reconstruction_loss", hue="beta", ax=axes[0])
    shown = (
        evaluation.assign(test_elbo=evaluation.test_elbo.where(~evaluation.floored))
        if "floored" in evaluation
        else evaluation
    )
    plots.plot_metric_vs(shown, "beta", "test_elbo", logx=True, ax=axes[1])
    return fig


def schedule_runs(evaluation: pd.DataFrame, remedies: pd.DataFrame) -> pd.DataFrame:
    """The remedies' runs and the constant-β runs at the same β (``kl_schedule`` "constant")."""
    constant = evaluation[evaluation.beta.isin(remedies.beta.unique())].assign(kl_schedule="constant")
    return pd.concat([constant, remedies], ignore_index=True)


def schedules_figure(evaluation: pd.DataFrame, remedies: pd.DataFrame):
    """Active units (left) and test ELBO (right) per KL schedule, against the constant β, one colour per β."""
    import matplotlib.pyplot as plt

    from .. import plots

    runs = schedule_runs(evaluation, remedies)
    fig, axes = plt.subplots(1, 2, figsize=(9.3, 3.8))
    plots.plot_metric_vs(runs, "kl_schedule", ACTIVE, hue="beta", ax=axes[0])
    plots.plot_metric_vs(runs, "kl_schedule", "test_elbo", hue="beta", ax=axes[1])
    return fig


def gap_figure(overfit: pd.DataFrame, hist: pd.DataFrame):
    """Left: training − validation ELBO against β; right: the mean validation ELBO per epoch at the
    smallest and the largest β."""
    import matplotlib.pyplot as plt

    from .. import plots

    fig, axes = plt.subplots(1, 2, figsize=(9.3, 3.8))
    plots.plot_metric_vs(
        overfit.assign(gap=overfit.train_elbo - overfit.val_elbo), "beta", "gap", logx=True, ax=axes[0]
    )
    ends = [float(overfit.beta.min()), float(overfit.beta.max())]
    colors = plots.hue_colors("beta", ends)
    for b, g in hist[hist.beta.isin(ends)].groupby("beta"):
        m = g.groupby("epoch").val_elbo.mean()
        axes[1].plot(m.index, m.to_numpy(), color=colors[b], label=f"β = {fmt(b)}")
    axes[1].set(xlabel="epoch", ylabel="validation ELBO (nats)")
    axes[1].legend(frameon=False)
    return fig
