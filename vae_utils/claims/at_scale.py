"""The at-scale chapter's analyses (chapters/09_at_scale.ipynb): four digits claims re-tested on
Fashion-MNIST with the Keras example's conv VAE, under the digits chapters' protocol.

    design = at_scale.Design.from_parameters(globals())   # the chapter's parameters, and what follows from them
    tuned = at_scale.tune(runs, design)                    # every setting's rate, chosen on the tuning seeds
    judged, grid = at_scale.judged_runs(runs, evaluation, design)
    arms = at_scale.batch_arms(judged, design, tuned)      # {budget: the runs it compares}
    effects, interaction = at_scale.batch_slopes(arms)     # what fam.add("fm-bs-gap", ...) judges

The chapter trains; this module selects runs, computes the estimates the verdicts judge and the
values the page states (``{key: value}`` dicts for ``verdicts.publish_values("fm", ...)``). Effects
are computed on measured values only: a run that broke down is a missing value (or, comparing two
arms, a divergence ``stats.with_divergence`` ranks worst), never a floor value standing in for it
(``protocol.floored``). Without the data the page gets placeholders: ``publish_missing``. pandas and NumPy only (no TensorFlow).
"""

from __future__ import annotations

import math
from dataclasses import dataclass, fields

import numpy as np
import pandas as pd

from ..core.data import FASHION_MNIST_ENV, HELD_OUT_SIZES, TRAIN_SIZES, available
from ..publish.numbers import fmt
from . import analysis, protocol, stats
from .records import record

__all__ = [
    "Design",
    "Tuned",
    "pick",
    "tune",
    "judged_runs",
    "measured",
    "headline",
    "quality_values",
    "batch_arms",
    "batch_slopes",
    "batch_values",
    "rate_scan",
    "time_to_target",
    "optimizer_arms",
    "optimizer_effects",
    "optimizer_values",
    "optimizer_frames",
    "beta_runs",
    "beta_values",
    "headline_values",
    "data_note",
    "missing_reason",
    "announce",
    "publish_missing",
]

CHAPTER = "09_at_scale"
SGD_NAMES = {"momentum": "SGD with momentum", "sgd": "plain SGD"}
REACHED = 0.8  # the share of seeds a rate must bring to the target between two evaluations to count


def pick(df: pd.DataFrame, **where) -> pd.DataFrame:
    """The rows of ``df`` whose columns take the given value, or one of the given values (numbers by isclose)."""
    keep = np.ones(len(df), dtype=bool)
    for col, want in where.items():
        want = list(want) if isinstance(want, list | tuple) else [want]
        if pd.api.types.is_numeric_dtype(df[col]):
            have = df[col].to_numpy(np.float64)[:, None]
            keep &= np.isclose(have, np.asarray(want, np.float64)[None, :]).any(axis=1)
        else:
            keep &= df[col].isin(want).to_numpy()
    return df[keep]


def measured(runs: pd.DataFrame, metric: str = "test_elbo") -> pd.DataFrame:
    """``runs`` with ``metric`` missing (NaN) where a run broke down (column ``broke``): a trend leaves
    it out, a figure draws it as a cross at the bottom edge."""
    return runs.assign(**{metric: runs[metric].where(~runs["broke"])})


# ---------------------------------------------------------------------------------------------
# The design: the chapter's parameters, and what follows from them


@dataclass(frozen=True)
class Design:
    """The chapter's parameters (same names), and the settings they imply: the two budgets of the
    batch-size experiment, the configuration every setting starts from, the optimizers' names."""

    dataset: str
    train_size: int  # 0: all
    held_out_size: int  # 0: all
    epochs: int
    latent_dim: int
    dense_units: int
    learning_rates: list
    batch_sizes: list
    batch_lrs: list
    sgd_variant: str
    adam_default_lr: float
    sgd_default_lr: float
    betas: list
    beta_lrs: list
    seeds: list
    tuning_seeds: list
    target_val_elbo: float
    nll_k: int

    @classmethod
    def from_parameters(cls, namespace) -> Design:
        """The design from a namespace that holds the chapter's parameters (the notebook's ``globals()``)."""
        return cls(**{f.name: namespace[f.name] for f in fields(cls)})

    @property
    def n_train(self) -> int:
        return self.train_size or TRAIN_SIZES[self.dataset]

    @property
    def n_held(self) -> int:
        return self.held_out_size or HELD_OUT_SIZES[self.dataset]

    @property
    def b0(self) -> int:
        """The smallest batch: the reference setting's, and the reference of the batch-size slopes."""
        return min(self.batch_sizes)

    @property
    def b_big(self) -> int:
        return max(self.batch_sizes)

    @property
    def updates(self) -> int:
        """The fixed number of updates: what the largest batch takes in ``epochs``."""
        return self.epochs * (self.n_train // self.b_big)

    @property
    def budgets(self) -> dict[str, dict[int, int]]:
        """{budget: {batch size: epochs}}: a fixed number of epochs, and a fixed number of updates."""
        fixed_updates = {b: max(1, round(self.updates / (self.n_train // b))) for b in self.batch_sizes}
        return {"fixed epochs": dict.fromkeys(self.batch_sizes, self.epochs), "fixed updates": fixed_updates}

    @property
    def cells(self) -> list[tuple[int, int]]:
        """The (batch size, epochs) settings of both budgets, each tuned once."""
        return sorted({(b, e) for per in self.budgets.values() for b, e in per.items()})

    @property
    def sgd_name(self) -> str:
        return SGD_NAMES.get(self.sgd_variant, self.sgd_variant)

    @property
    def names(self) -> dict[str, str]:
        """{optimizer: its name in words}: Adam and the SGD it is compared with."""
        return {"adam": "Adam", self.sgd_variant: self.sgd_name}

    @property
    def defaults(self) -> dict[str, float]:
        """{optimizer: Keras' default learning rate}."""
        return {"adam": self.adam_default_lr, self.sgd_variant: self.sgd_default_lr}

    @property
    def reference(self) -> dict:
        """The configuration every setting varies: the Keras example's conv VAE, Adam, the smallest
        batch, the full budget, β = 1, scored with one importance sample."""
        return dict(
            dataset=self.dataset, architecture="conv", hidden_units=[self.dense_units], latent_dim=self.latent_dim,
            train_size=self.train_size or None, held_out_size=self.held_out_size or None, eval_k=1,
            optimizer="adam", batch_size=self.b0, epochs=self.epochs,
        )  # fmt: skip

    def values(self, records) -> dict:
        """What the page states about the design (known without data), with the Δs of the claims'
        ``records`` (``Family.records``)."""
        n, full = self.n_train, TRAIN_SIZES[self.dataset]
        epochs = f"{self.epochs} epoch{'s' * (self.epochs != 1)}"
        subsample = (
            f"{n:,} of {full:,} ({100 * n / full:.2g}%) training images, {epochs} ({self.epochs * (n // self.b0):,} "
            f"updates at batch {self.b0}), the first {self.n_held:,} of the {HELD_OUT_SIZES[self.dataset]:,} "
            "validation and test images, and one importance sample (k = 1) in the sweeps' test metrics"
        )
        return {
            "sgd-name": self.sgd_name, "latent": self.latent_dim, "dense": self.dense_units, "n-train": n,
            "n-train-full": full, "epochs": self.epochs, "updates": self.updates, "b0": self.b0, "b-big": self.b_big,
            "fixed-epochs-small": self.budgets["fixed updates"][self.b0], "n-seeds": len(self.seeds),
            "n-tuning": len(self.tuning_seeds), "grid": f"{fmt(min(self.learning_rates))} to {fmt(max(self.learning_rates))}",
            "betas": ", ".join(map(fmt, self.betas)), "lr-target": fmt(self.target_val_elbo), "nll-k": self.nll_k,
            "nll-n": self.n_held, "nll-seed": str(self.seeds[0]), "subsample": subsample,
            "delta": records["fm-bs-gap"].delta, "delta-digits": record(records["fm-bs-gap"].repeats).delta,
            "delta-slow": records["fm-lr-slow"].delta, "delta-units": records["fm-beta-collapse"].delta,
        }  # fmt: skip


# ---------------------------------------------------------------------------------------------
# Tuning: every setting's rate, on the tuning seeds' validation ELBO


@dataclass(frozen=True)
class Tuned:
    """The tuned rates (``rates`` per optimizer, ``cell_rates`` per (batch size, epochs), ``beta_rates``
    per β), their table for the page, the tuning runs, and the best setting (a config) by validation ELBO."""

    rates: dict
    cell_rates: dict
    beta_rates: dict
    table: pd.DataFrame
    runs: pd.DataFrame
    best: dict
    best_name: str


def _setting(d: Design, config: dict) -> str:
    """'Adam, batch 32, β = 4, learning rate 0.004' (β only when it is not 1)."""
    beta = f", β = {fmt(config['beta'])}" if config.get("beta", 1.0) != 1.0 else ""
    name = d.names.get(config["optimizer"], config["optimizer"])
    return f"{name}, batch {config['batch_size']}{beta}, learning rate {fmt(config['learning_rate'])}"


def tune(runs: pd.DataFrame, d: Design) -> Tuned:
    """Every setting's rate: each optimizer over the shared grid, each (batch size, epochs) and each β
    over its own rates, by the best mean validation ELBO of the tuning seeds (``protocol.tune``)."""
    tuning = pick(runs, seed=d.tuning_seeds).drop_duplicates("run_id")
    adam = pick(tuning, optimizer="adam")
    by_opt = protocol.tune(pick(tuning, batch_size=d.b0, epochs=d.epochs, beta=1.0), by="optimizer")
    by_cell = protocol.tune(pick(adam, beta=1.0, learning_rate=d.batch_lrs), by=["batch_size", "epochs"])
    by_beta = protocol.tune(pick(adam, batch_size=d.b0, epochs=d.epochs, learning_rate=d.beta_lrs), by="beta")
    by_opt = by_opt[by_opt.optimizer.isin(list(d.names))].set_index("optimizer")
    by_cell = by_cell.set_index(["batch_size", "epochs"])
    by_cell = by_cell.loc[[c for c in d.cells if c in by_cell.index]]  # only the cells of the two budgets
    by_beta = by_beta.set_index("beta")
    tuned = [({"optimizer": o}, d.names[o], "shared grid", r) for o, r in by_opt.iterrows()]
    tuned += [
        ({"batch_size": b, "epochs": e}, f"Adam, batch {b}, {e} epoch{'s' * (e != 1)}", "batch-size rates", r)
        for (b, e), r in by_cell.iterrows()
    ]
    tuned += [({"beta": b}, f"Adam, β = {fmt(b)}", "β rates", r) for b, r in by_beta.iterrows()]
    table = pd.DataFrame(
        [
            {"setting": name, "rates tried": grid, "tuned rate": r.learning_rate,
             "mean validation ELBO (nats)": r["mean"], "inside the grid": bool(r.interior),
             "tuning runs that broke at it": r.n_unstable}
            for _, name, grid, r in tuned
        ]
    )  # fmt: skip
    best = _best([({**d.reference, **change}, r) for change, _, _, r in tuned], d)
    rates = (by_opt.learning_rate.to_dict(), by_cell.learning_rate.to_dict(), by_beta.learning_rate.to_dict())
    return Tuned(*rates, table, tuning, best, _setting(d, best))


def _best(candidates: list, d: Design) -> dict:
    """The config with the best mean validation ELBO among the tuned settings at the full budget."""
    full = [(c, r) for c, r in candidates if c["epochs"] == d.epochs and np.isfinite(r["mean"])]
    if not full:
        return {**d.reference, "learning_rate": d.adam_default_lr}
    config, row = max(full, key=lambda cr: cr[1]["mean"])
    return {**config, "learning_rate": float(row.learning_rate)}


# ---------------------------------------------------------------------------------------------
# The runs the verdicts judge, and what the page says about them


def judged_runs(runs: pd.DataFrame, evaluation: pd.DataFrame, d: Design) -> tuple[pd.DataFrame, pd.DataFrame]:
    """(the evaluation runs scored with one importance sample, the learning-rate grid's runs on the
    evaluation seeds), each with a column ``broke``: the run broke down (``protocol.unstable``)."""
    single = evaluation[evaluation.eval_k == 1].drop_duplicates("run_id")
    grid = pick(runs, seed=d.seeds).drop_duplicates("run_id")
    return single.assign(broke=protocol.unstable(single)), grid.assign(broke=protocol.unstable(grid))


def headline(evaluation: pd.DataFrame, tuned: Tuned, d: Design) -> pd.Series:
    """The best tuned setting's run scored with ``nll_k`` importance samples (the headline test NLL)."""
    best = tuned.best
    keys = {k: best[k] for k in ("optimizer", "batch_size", "epochs", "learning_rate")}
    return pick(evaluation, seed=d.seeds[0], eval_k=d.nll_k, beta=best.get("beta", 1.0), **keys).iloc[0]


def _rising(history: pd.DataFrame, runs: pd.DataFrame) -> str:
    """The share of ``runs`` (stable ones) whose validation ELBO still rose over their last epoch."""
    h = history[history.run_id.isin(runs.run_id[~runs.broke])].sort_values(["run_id", "epoch"])
    last_two = h.groupby("run_id").val_elbo.agg(lambda v: v.iloc[-1] > v.iloc[-2] if len(v) > 1 else np.nan)
    ends = last_two.dropna()
    return f"{ends.astype(float).mean():.0%}" if len(ends) else "n/a (one evaluation per run)"


def quality_values(judged: pd.DataFrame, grid: pd.DataFrame, history: pd.DataFrame, d: Design, delta: float) -> dict:
    """What the page says about the runs as a whole: the runs that broke down, the runs that
    never use their latent code, the seed-to-seed spread and the effect it lets the seeds detect,
    how Δ compares with the ELBO, and whether training was still improving at the end."""
    setting = ["optimizer", "batch_size", "epochs", "beta", "learning_rate"]
    pool = pd.concat([judged, grid]).drop_duplicates("run_id")
    pool = pool[(pool.beta == 1.0) & ~pool.broke]
    dead = pool.active_units == 0  # runs that ignore their latent code
    spread = protocol.seed_spread(judged, setting)
    mean_elbo = float(judged.test_elbo[~judged.broke].mean())
    return {
        "n-broke": int(judged.broke.sum()), "collapsed": f"{int(dead.sum())} of {len(pool)}",
        "collapsed-elbo": float(pool.test_elbo[dead].mean()), "active-elbo": float(pool.test_elbo[~dead].mean()),
        "spread": spread, "spread-active": protocol.seed_spread(judged[judged.active_units > 0], setting),
        "detectable": stats.detectable_effect(len(d.seeds), spread) if spread > 0 else math.nan,
        "mean-elbo": mean_elbo, "delta-share": f"{100 * delta / abs(mean_elbo):.2g}%" if abs(mean_elbo) > 0 else "n/a",
        "rising": _rising(history, judged),
    }  # fmt: skip


# ---------------------------------------------------------------------------------------------
# Batch size: the test ELBO against log2 of the batch, under two budgets


def batch_arms(judged: pd.DataFrame, d: Design, tuned: Tuned) -> dict[str, pd.DataFrame]:
    """{budget: its runs (a column ``budget``)}, every batch size at the rate tuned for it and its epochs."""
    adam = pick(judged, optimizer="adam", beta=1.0)
    return {
        budget: pd.concat(
            [pick(adam, batch_size=b, epochs=e, learning_rate=tuned.cell_rates[b, e]) for b, e in per.items()]
        ).assign(budget=budget)
        for budget, per in d.budgets.items()
    }


def batch_slopes(arms: dict[str, pd.DataFrame]) -> tuple[dict, stats.Estimate]:
    """({budget: the per-seed slope of the test ELBO on log2 batch size}, the slopes' seed-matched
    difference between the budgets): what claim fm-bs-gap judges."""
    trained = {k: measured(v) for k, v in arms.items()}
    slope = dict(x="batch_size", y="test_elbo", logx=True)
    effects = {
        k: stats.per_seed_slope(v, **slope, name="test ELBO per doubling of the batch", unit="nats")
        for k, v in trained.items()
    }
    (k1, a), (k2, b) = trained.items()
    interaction = stats.paired(
        stats.seed_slopes(a, **slope), stats.seed_slopes(b, **slope), name=f"slope at {k1} − slope at {k2}", unit="nats"
    )
    return effects, interaction


def batch_values(arms: dict[str, pd.DataFrame], d: Design) -> dict:
    """Active units at the smallest and the largest batch under a fixed number of epochs, and the
    note for the side-by-side table (``bs-gap-note``)."""
    fixed = arms["fixed epochs"]
    au = fixed[~fixed.broke].groupby("batch_size").active_units.mean()
    big, small = au.get(d.b_big, math.nan), au.get(d.b0, math.nan)
    u = {b: d.epochs * (d.n_train // b) for b in (d.b_big, d.b0)}
    note = (
        f"In {d.epochs} epoch{'s' * (d.epochs != 1)} batch {d.b_big} takes {u[d.b_big]:,} updates and batch {d.b0} "
        f"{u[d.b0]:,}; with the fixed number of epochs they end with {fmt(big)} and {fmt(small)} active units "
        f"of {d.latent_dim}."
    )
    return {
        "au-big": f"{big:.1f}" if math.isfinite(big) else "n/a",
        "au-small": f"{small:.1f}" if math.isfinite(small) else "n/a",
        "bs-gap-note": note,
    }


# ---------------------------------------------------------------------------------------------
# The learning rate: where it is best, where it breaks, how slow a small one is


@dataclass(frozen=True)
class RateScan:
    """The learning-rate grid on the evaluation seeds: the best rate (by validation ELBO), where it lies,
    the breaking rate (the geometric mean over the seeds that broke within the grid) and the runs per rate."""

    best: float
    where: str
    breaking: stats.Estimate | None
    never_broke: int
    counts: pd.DataFrame

    def values(self) -> dict:
        """The page's ``lr-best``, ``lr-interior``, ``lr-break``, ``lr-break-ratio``."""
        brk = self.breaking
        return {
            "lr-best": self.best, "lr-interior": self.where, "lr-break": brk if brk else "not reached by the grid",
            "lr-break-ratio": brk.estimate / self.best if brk else "n/a", "lr-never-broke": self.never_broke,
        }  # fmt: skip


def rate_scan(grid: pd.DataFrame) -> RateScan:
    """The best rate of the grid, whether it lies inside it, the breaking rates, and the runs per rate."""
    chosen = protocol.tune(grid, over="learning_rate").iloc[0]
    where = "inside the grid" if chosen.interior else f"at the {chosen.edge} edge of the grid: widen it"
    breaking = protocol.breaking_rates(grid)
    found = breaking[~breaking.censored]
    brk = stats.log_mean(found.breaking_rate, name="breaking rate") if len(found) > 1 else None
    counts = grid.groupby("learning_rate").agg(runs=("seed", "size"), broke=("broke", "sum")).reset_index()
    counts = counts.rename(columns={"learning_rate": "learning rate", "broke": "runs that broke down"})
    return RateScan(float(chosen.learning_rate), where, brk, int(breaking.censored.sum()), counts)


def time_to_target(history: pd.DataFrame, grid: pd.DataFrame, d: Design, best: float) -> tuple[pd.DataFrame, dict]:
    """(the runs that crossed the target validation ELBO between two evaluations, at the rates up to
    ``best`` where at least four seeds in five did, with their ``steps_to_target``; the page's values
    and the note for the side-by-side table)."""
    curves = history[history.run_id.isin(grid.run_id)]
    tt = analysis.steps_to_target_table(curves, d.target_val_elbo, keep=["learning_rate", "seed"])
    if tt.empty:
        tt = pd.DataFrame(columns=["run_id", "learning_rate", "seed", "steps_to_target", "reached", "at_first"])
    tt["crossed"] = tt.reached.astype(bool) & ~tt.at_first.astype(bool)  # between two evaluations
    reach = tt.groupby("learning_rate").crossed.mean()
    usable = [lr for lr in d.learning_rates if lr <= best and reach.get(lr, 0) >= REACHED]
    crossed = tt[tt.learning_rate.isin(usable) & tt.crossed]
    slow = grid.merge(crossed[["run_id", "steps_to_target"]], on="run_id")
    rates = ", ".join(map(fmt, usable)) or "none"
    note = (
        f"Target {fmt(d.target_val_elbo)} nats, {len(usable)} rate(s) usable ({rates}); evaluations once per "
        f"epoch of {d.n_train // d.b0:,} updates."
    )
    span = f"rates {fmt(min(usable))} to {fmt(max(usable))}" if usable else "no rate qualified"
    return slow, {"lr-slow-range": span, "lr-slow-note": note}


# ---------------------------------------------------------------------------------------------
# Adam against SGD, at default and at tuned rates


def optimizer_arms(judged: pd.DataFrame, d: Design, tuned: Tuned) -> dict[str, dict[str, pd.DataFrame]]:
    """{"default rate" / "tuned rate": {optimizer: its runs at that rate}} at the reference setting."""
    ref = pick(judged, batch_size=d.b0, epochs=d.epochs, beta=1.0)
    rates = {"default rate": d.defaults, "tuned rate": tuned.rates}
    return {s: {o: pick(ref, optimizer=o, learning_rate=r[o]) for o in d.names} for s, r in rates.items()}


def optimizer_effects(arms: dict, d: Design) -> tuple[dict, stats.Estimate]:
    """({rate setting: Adam's test ELBO against SGD's, seed by seed, a run that broke down ranked worst},
    Adam's lead when tuned minus its lead at defaults): what claim fm-opt-adam-sgd judges."""
    sgd, name = d.sgd_variant, f"test ELBO(Adam) − test ELBO({d.sgd_name})"
    values = {s: {o: protocol.outcome_values(r) for o, r in by.items()} for s, by in arms.items()}
    effects = {s: stats.with_divergence(v["adam"], v[sgd], name=name, unit="nats") for s, v in values.items()}
    lead = {s: v["adam"] - v[sgd] for s, v in values.items()}
    interaction = stats.paired(
        lead["tuned rate"], lead["default rate"], name="Adam's lead when tuned − its lead at defaults", unit="nats"
    )
    return effects, interaction


def optimizer_frames(arms: dict, tuned: Tuned, d: Design) -> tuple[pd.DataFrame, pd.DataFrame]:
    """(the tuning runs across the shared grid that trained, the compared runs with a column ``setting``),
    with the optimizers' names in words: what the figure draws."""
    shared = pick(tuned.runs, optimizer=list(d.names), batch_size=d.b0, epochs=d.epochs, beta=1.0)
    compared = pd.concat([r.assign(setting=s) for s, by in arms.items() for r in by.values()])
    named = lambda df: df.assign(optimizer=df.optimizer.map(d.names))
    return named(shared[~protocol.unstable(shared)]), named(measured(compared))


def optimizer_values(d: Design, tuned: Tuned) -> dict:
    """The tuned rates the page states, and the note for the side-by-side table."""
    adam, sgd = tuned.rates.get("adam", math.nan), tuned.rates.get(d.sgd_variant, math.nan)
    digits = "" if d.sgd_variant == "sgd" else " (digits: plain SGD)"
    note = (
        f"Adam against {d.sgd_name}{digits}, tuned rates {fmt(adam)} and {fmt(sgd)}; defaults "
        f"{fmt(d.adam_default_lr)} and {fmt(d.sgd_default_lr)}."
    )
    return {"rate-adam": adam, "rate-sgd": sgd, "opt-adam-sgd-note": note}


# ---------------------------------------------------------------------------------------------
# β: rate, distortion and active units


def beta_runs(judged: pd.DataFrame, d: Design, tuned: Tuned) -> pd.DataFrame:
    """Every β at the rate tuned for it, at the reference setting, the runs that broke down left out."""
    ref = pick(judged, optimizer="adam", batch_size=d.b0, epochs=d.epochs)
    runs = pd.concat([pick(ref, beta=b, learning_rate=tuned.beta_rates[b]) for b in d.betas if b in tuned.beta_rates])
    return runs[~runs.broke]


def beta_values(runs: pd.DataFrame, d: Design) -> dict:
    """The KL term at the smallest and largest β, the β with the best test ELBO, and the note."""
    by = runs.groupby("beta")
    kl, units, elbo = by.test_kl_loss.mean(), by.active_units.mean(), by.test_elbo.mean()
    at = lambda s, i: float(s.iloc[i]) if len(s) else math.nan
    counts = ", ".join(f"{u:.1f}" for u in units)
    note = f"Active units (of {d.latent_dim}) at β = {', '.join(map(fmt, units.index))}: {counts or 'none'}."
    return {
        "beta-kl-lo": at(kl, 0), "beta-kl-hi": at(kl, -1),
        "beta-best": fmt(elbo.idxmax()) if len(elbo) else "n/a", "beta-collapse-note": note,
    }  # fmt: skip


def headline_values(run: pd.Series, tuned: Tuned) -> dict:
    """The best configuration's test NLL (nats per image, importance-weighted) and its test ELBO."""
    return {"nll": float(run.test_nll), "nll-elbo": float(run.test_elbo), "nll-config": tuned.best_name}


# ---------------------------------------------------------------------------------------------
# The data: where they were read from, or what is missing


def missing_reason(dataset: str) -> str:
    """Why nothing was measured, and how to get the data (a verdict's reason, the placeholders' caption)."""
    how = (
        f"apt-get install dataset-fashion-mnist (Debian; offline from the package mirror), or set {FASHION_MNIST_ENV} "
        "to a folder holding its four IDX files"
        if dataset == "fashion_mnist"
        else f"put it where vae_utils.core.data.available('{dataset}') finds it"
    )
    return f"Not measured: the data are missing ({dataset} is not installed on this machine; {how}, then rebuild)."


def data_note(d: Design) -> str:
    """The page's note on the data: where they were read from and how much of them this build used,
    or a warning that they are missing and nothing was measured."""
    where = available(d.dataset)
    if where is None:
        return (
            f":::{{warning}}\n{missing_reason(d.dataset)} Nothing on this page was measured in this build; every "
            "verdict reads *not testable*.\n:::"
        )
    epochs = f"{d.epochs} epoch{'s' * (d.epochs != 1)}"
    held = f"first {d.n_held:,}" if d.held_out_size else "all"
    return (
        f"Data: `{d.dataset}`, read from `{where}`. This build trains on the first {d.n_train:,} of the "
        f"{TRAIN_SIZES[d.dataset]:,} training images for {epochs} and scores on the {held} validation and test "
        "images: {ref}`fm-rerun` gives the full-scale run."
    )


def announce(d: Design) -> bool:
    """In the notebook: show the data note and glue it as ``fm-data-note``; True when the data are there."""
    from IPython.display import Markdown, display
    from myst_nb import glue

    note = data_note(d)
    glue("fm-data-note", Markdown(note), display=False)
    display(Markdown(note))
    return available(d.dataset) is not None


def publish_missing(family, d: Design) -> None:
    """In the notebook, without the data: every claim of ``family`` not testable (the reason says what
    is missing), and a placeholder for every figure, table and value the page pastes and the design
    does not give (``publish.placeholders``), and for each claim's note in the side-by-side table."""
    from ..publish.placeholders import publish_placeholders

    reason = missing_reason(d.dataset)
    for claim in family.records:
        family.not_testable(claim, reason)
    given = ["fm-data-note", *(f"fm-{k}" for k in d.values(family.records))]
    notes = [f"{claim}-note" for claim in family.records]
    publish_placeholders(CHAPTER, reason, published=given, extra=notes)
