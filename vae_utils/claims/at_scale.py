"""The at-scale chapter's analyses (chapters/09_at_scale.ipynb): the Recipe's claims re-tested on
Fashion-MNIST, with the 784-256-16 MLP VAE for every headline claim and the Keras example's conv VAE for
β, under the digits chapters' protocol, each claim with the seeds its question needs.

    design = at_scale.Design.from_parameters(globals())    # the chapter's parameters, and what follows
    tuned = at_scale.tune(sweep(at_scale.tuning_grid(design), out), design)   # on the tuning seeds
    plan = at_scale.Plan(design, tuned)                     # the runs each claim needs
    for seeds in fam.looks(design.evaluation_seeds):        # more seeds only for the claims still open
        runs = sweep(plan.grid(seeds, fam.is_open), out)
        ev = plan.evaluation(runs, load_histories(out, run_ids=runs.run_id), load_curves(out, run_ids=runs.run_id))
        fam.add("fm-bs-gap", **ev.batch_gap())              # each claim's estimate, runs and tuning seeds

The chapter trains; this module selects runs, computes the estimates the verdicts judge and the values
the page states (``{key: value}`` dicts for ``verdicts.publish_values("fm", ...)``). Effects are computed
on measured values only: a run that broke down is a missing value in a trend, and a divergence
``stats.with_divergence`` ranks worst when two arms are compared, never a floor value standing in for
it. Runs that end with no active latent unit are reported on their own (``collapse_table``), and the
claims they confound are also estimated without them (``Evaluation.code_users``). Without the data
the page gets placeholders: ``publish_missing``. pandas and NumPy only (``noise_scale`` imports
TensorFlow when called).
"""

from __future__ import annotations

import math
from collections.abc import Callable, Sequence
from dataclasses import dataclass, fields

import numpy as np
import pandas as pd

from ..core.data import FASHION_MNIST_ENV, HELD_OUT_SIZES, REGISTRY, TRAIN_SIZES, available
from ..publish.numbers import fmt
from ..publish.scope import join_and, span
from . import batch, protocol, rates, stats
from .analysis import fit_hyperbola, steps_to_target_table
from .records import record

__all__ = [
    "CHAPTER",
    "NAMES",
    "Design",
    "pick",
    "measured",
    "tuning_grid",
    "Tuned",
    "tune",
    "Plan",
    "Evaluation",
    "slow_runs",
    "breaking",
    "collapse_table",
    "using_code",
    "quality_values",
    "rerun_values",
    "noise_scale",
    "data_note",
    "missing_reason",
    "announce",
    "publish_missing",
]

CHAPTER = "09_at_scale"
NAMES = {"adam": "Adam", "sgd": "plain SGD", "momentum": "SGD with momentum"}
SGD_CLAIMS = {"sgd": "fm-opt-adam-sgd", "momentum": "fm-opt-adam-momentum"}
REACHED = 0.8  # the share of runs that must reach a target (cross it between two evaluations) for it to count


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
    """``runs`` with ``metric`` missing (NaN) where a run broke down: a trend leaves it out, a figure
    draws it as a cross at the bottom edge."""
    return runs.assign(**{metric: runs[metric].where(~protocol.unstable(runs))})


def _epochs(n: int) -> str:
    return f"{n} epoch{'s' * (n != 1)}"


# ---------------------------------------------------------------------------------------------
# The design: the chapter's parameters, and what follows from them


@dataclass(frozen=True)
class Design:
    """The chapter's parameters (same names), and the settings they imply: the two budgets of the
    batch-size experiment, the MLP and conv configurations every setting starts from."""

    dataset: str
    train_size: int  # 0: all
    held_out_size: int  # 0: all
    epochs: int
    latent_dim: int
    hidden_units: list
    batch_size: int
    batch_sizes: list
    eval_every: int
    targets: list
    learning_rates: list
    batch_lrs: list
    sgd_lrs: list
    momentum_lrs: list
    adam_default_lr: float
    sgd_default_lr: float
    ladder_lrs: list
    target_val_elbo: float
    schedule_lr: float
    lr_warmup_epochs: int
    betas: list
    beta_lrs: list
    collapse_betas: list
    conv_betas: list
    conv_train_size: int
    conv_epochs: int
    conv_lr: float
    dense_units: int
    evaluation_seeds: list
    looks: list
    tuning_seeds: list
    noise_epochs: list
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
    def n_conv(self) -> int:
        return self.conv_train_size or TRAIN_SIZES[self.dataset]

    def per_epoch(self, b: int) -> int:
        """Updates per epoch at batch ``b`` (the last partial batch is dropped)."""
        return self.n_train // b

    @property
    def updates(self) -> int:
        """The fixed number of updates: what the reference batch takes in ``epochs``."""
        return self.epochs * self.per_epoch(self.batch_size)

    @property
    def budgets(self) -> dict[str, dict[int, int]]:
        """{budget: {batch size: epochs}}: a fixed number of epochs, and a fixed number of updates
        (the fewest whole epochs that take at least ``updates``)."""
        fixed = {b: max(1, math.ceil(self.updates / self.per_epoch(b))) for b in self.batch_sizes}
        return {"fixed epochs": dict.fromkeys(self.batch_sizes, self.epochs), "fixed updates": fixed}

    @property
    def cells(self) -> list[tuple[int, int]]:
        """The (batch size, epochs) settings of both budgets, each tuned once."""
        return sorted({(b, e) for per in self.budgets.values() for b, e in per.items()})

    @property
    def mlp(self) -> dict:
        """The configuration every MLP setting varies: Adam at the reference batch for ``epochs``,
        β = 1, scored with one importance sample."""
        return dict(
            dataset=self.dataset, architecture="mlp", hidden_units=list(self.hidden_units), latent_dim=self.latent_dim,
            train_size=self.train_size or None, held_out_size=self.held_out_size or None, eval_k=1,
            optimizer="adam", batch_size=self.batch_size, epochs=self.epochs,
        )  # fmt: skip

    @property
    def conv(self) -> dict:
        """The Keras example's conv VAE, at its optimizer and rate (Adam, ``conv_lr``), on the first
        ``conv_train_size`` training images for ``conv_epochs``."""
        return {**self.mlp, "architecture": "conv", "hidden_units": [self.dense_units], "epochs": self.conv_epochs,
                "learning_rate": self.conv_lr, "train_size": self.conv_train_size or None}  # fmt: skip

    @property
    def grids(self) -> dict[str, list]:
        """{optimizer: the rates it is tuned over at the reference setting}."""
        return {"adam": list(self.learning_rates), "sgd": list(self.sgd_lrs), "momentum": list(self.momentum_lrs)}

    @property
    def defaults(self) -> dict[str, float]:
        """{optimizer: Keras' default learning rate}."""
        return {"adam": self.adam_default_lr, "sgd": self.sgd_default_lr, "momentum": self.sgd_default_lr}

    @property
    def model(self) -> str:
        """'784-256-16 MLP VAE'."""
        return "-".join(map(str, [28 * 28, *self.hidden_units, self.latent_dim])) + " MLP VAE"

    def values(self, records) -> dict:
        """What the page states about the design (known without data), with the Δs of the claims'
        ``records`` (``Family.records``)."""
        n, full, fu = self.n_train, TRAIN_SIZES[self.dataset], self.budgets["fixed updates"]
        return {
            "model": self.model, "latent": self.latent_dim, "dense": self.dense_units, "n-train": n,
            "n-train-full": full, "digits-n-train": TRAIN_SIZES["digits"], "n-held": self.n_held, "epochs": self.epochs, "examples": n * self.epochs,
            "batch-sizes": ", ".join(map(str, self.batch_sizes)), "b0": self.batch_size, "updates": self.updates,
            "fu-epochs": ", ".join(f"{fu[b]} at batch {b}" for b in self.batch_sizes), "eval-every": self.eval_every,
            "targets": span(self.targets, "nats"), "lr-target": fmt(self.target_val_elbo), "grid": span(self.learning_rates),
            "ladder": span(self.ladder_lrs), "batch-lrs": span(self.batch_lrs), "beta-lrs": span(self.beta_lrs), "sgd-lrs": span(self.sgd_lrs),
            "momentum-lrs": span(self.momentum_lrs), "schedule-lr": self.schedule_lr, "warmup": self.lr_warmup_epochs,
            "betas": ", ".join(map(fmt, self.betas)), "collapse-betas": join_and(list(map(fmt, self.collapse_betas))),
            "conv-betas": join_and(list(map(fmt, self.conv_betas))), "conv-epochs": self.conv_epochs,
            "conv-n-train": self.n_conv, "conv-examples": self.n_conv * self.conv_epochs, "conv-lr": self.conv_lr,
            "looks": join_and(list(map(str, self.looks))), "n-first": self.looks[0], "n-seeds-max": len(self.evaluation_seeds), "n-tuning": len(self.tuning_seeds),
            "nll-k": self.nll_k, "nll-seed": str(self.evaluation_seeds[0]), "subsample": self._subsample(),
            "delta": records["fm-bs-gap"].delta, "delta-digits": record("bs-gap").delta,
            "delta-steps": records["fm-bs-steps"].delta, "delta-slow": records["fm-lr-slow"].delta,
            "delta-units": records["fm-beta-collapse"].delta,
        }  # fmt: skip

    def _subsample(self) -> str:
        n, full = self.n_train, TRAIN_SIZES[self.dataset]
        return (
            f"{n:,} of {full:,} ({100 * n / full:.2g}%) training images, {_epochs(self.epochs)} "
            f"({n * self.epochs:,} examples per run) for the MLP, {self.n_conv:,} images for "
            f"{_epochs(self.conv_epochs)} for the conv VAE, "
            f"the first {self.n_held:,} of the {HELD_OUT_SIZES[self.dataset]:,} validation and test images, and "
            "one importance sample (k = 1) in the sweeps' test metrics"
        )


# ---------------------------------------------------------------------------------------------
# Tuning: every setting's rate, on the tuning seeds' validation ELBO


def tuning_grid(d: Design) -> list[dict]:
    """The tuning runs: each optimizer over its grid at the reference setting, every other (batch size,
    epochs) over the batch-size rates, every β other than 1 over the β rates (β = 1 is Adam's)."""
    seeds, ref = list(d.tuning_seeds), d.mlp
    grid = [{**ref, "optimizer": o, "learning_rate": rates_, "seed": seeds} for o, rates_ in d.grids.items()]
    grid += [
        {**ref, "batch_size": b, "epochs": e, "learning_rate": list(d.batch_lrs), "seed": seeds}
        for b, e in d.cells
        if (b, e) != (d.batch_size, d.epochs)
    ]
    others = sorted({b for b in [*d.betas, *d.collapse_betas] if b != 1.0})
    return grid + ([{**ref, "beta": others, "learning_rate": list(d.beta_lrs), "seed": seeds}] if others else [])


@dataclass(frozen=True)
class Tuned:
    """The tuned rates (``rates`` per optimizer at the reference setting, ``cell_rates`` per (batch size,
    epochs), ``beta_rates`` per β), the β with the best validation ELBO, where Adam's rate lies in its
    grid, the table for the page, the tuning runs and their validation ELBO per epoch (``history``), and
    the best setting (a config) by validation ELBO. Every later choice is made on these runs too: the
    targets of the critical batch size (``targets``) and the ladder's rungs that time a target (``rungs``)."""

    rates: dict
    cell_rates: dict
    beta_rates: dict
    best_beta: float
    where: str
    table: pd.DataFrame
    runs: pd.DataFrame
    history: pd.DataFrame
    best: dict
    best_name: str
    targets: list
    rungs: list


def _where(row) -> str:
    """Where a tuned rate lies in its grid, in words."""
    if row is None or not math.isfinite(row["mean"]):
        return "nowhere: every rate of the grid broke down on some seed"
    if row.interior:
        return "inside the grid"
    return f"at the {row.edge} edge of the grid: widen it" if row.edge else "in a grid too small to tell"


def _tuned_rows(tuning: pd.DataFrame, d: Design) -> tuple[pd.DataFrame, pd.DataFrame, pd.DataFrame]:
    """(per optimizer, per (batch size, epochs), per β): ``protocol.tune`` on the tuning runs."""
    adam = pick(tuning, optimizer="adam")
    by_opt = protocol.tune(pick(tuning, batch_size=d.batch_size, epochs=d.epochs, beta=1.0), by="optimizer")
    by_cell = protocol.tune(pick(adam, beta=1.0), by=["batch_size", "epochs"]).set_index(["batch_size", "epochs"])
    by_beta = protocol.tune(pick(adam, batch_size=d.batch_size, epochs=d.epochs), by="beta").set_index("beta")
    by_opt = by_opt[by_opt.optimizer.isin(list(d.grids))].set_index("optimizer")
    return by_opt, by_cell.loc[[c for c in d.cells if c in by_cell.index]], by_beta


def tune(runs: pd.DataFrame, history: pd.DataFrame, d: Design) -> Tuned:
    """Every setting's rate by the best mean validation ELBO of the tuning seeds (``protocol.tune``: a
    rate at which any seed broke down is never chosen), the best β, the best setting overall, and the
    choices the evaluation runs are judged at (``usable_targets``, ``usable_rungs``), all on the tuning
    runs and their validation ELBO per epoch (``history``)."""
    tuning = pick(runs, seed=d.tuning_seeds).drop_duplicates("run_id")
    by_opt, by_cell, by_beta = _tuned_rows(tuning, d)
    rows = [({"optimizer": o}, NAMES.get(o, o), span(d.grids[o]), r) for o, r in by_opt.iterrows()]
    rows += [({"batch_size": b, "epochs": e}, f"Adam, batch {b}, {_epochs(e)}", span(r.grid), r)
             for (b, e), r in by_cell.iterrows()]  # fmt: skip
    rows += [({"beta": b}, f"Adam, β = {fmt(b)}", span(r.grid), r) for b, r in by_beta.iterrows()]
    table = pd.DataFrame(
        [{"setting": name, "rates tried": grid, "tuned rate": r.learning_rate, "mean validation ELBO (nats)": r["mean"],
          "inside the grid": bool(r.interior), "tuning runs that broke at it": r.n_unstable}
         for _, name, grid, r in rows]
    )  # fmt: skip
    finite = by_beta[np.isfinite(by_beta["mean"].astype(float))]
    best_beta = float(finite["mean"].astype(float).idxmax()) if len(finite) else math.nan
    best = _best([({**d.mlp, **change}, r) for change, _, _, r in rows], d)
    where = _where(by_opt.loc["adam"] if "adam" in by_opt.index else None)
    rates_ = [x.learning_rate.dropna().to_dict() for x in (by_opt, by_cell, by_beta)]
    history = history[history.run_id.isin(tuning.run_id)] if len(history) else history
    choices = usable_targets(tuning, history, rates_[1], d), usable_rungs(tuning, history, rates_[0].get("adam"), d)
    return Tuned(*rates_, best_beta, where, table, tuning, history, best, _setting(best), *choices)


def usable_targets(tuning: pd.DataFrame, history: pd.DataFrame, cell_rates: dict, d: Design) -> list[float]:
    """The targets of the critical batch size that every batch size reaches in at least four runs in five
    on the tuning seeds, under the fixed number of updates at the rate tuned for it (``batch.usable_targets``)."""
    fixed = d.budgets["fixed updates"]
    at = [pick(tuning, batch_size=b, epochs=e, learning_rate=cell_rates[b, e], beta=1.0, optimizer="adam")
          for b, e in fixed.items() if (b, e) in cell_rates]  # fmt: skip
    runs = pd.concat(at) if at else tuning.iloc[:0]
    curves = history[history.run_id.isin(runs.run_id)] if len(history) else history
    return batch.usable_targets(curves, d.targets, min_reached=REACHED) if len(curves) else []


def usable_rungs(tuning: pd.DataFrame, history: pd.DataFrame, best: float | None, d: Design) -> list[int]:
    """The rungs of the ladder that time the target for fm-lr-slow, chosen on the tuning seeds: a rung is
    usable when Adam's tuning runs at both its ends (rates of its grid) cross the target between two
    evaluations in at least four runs in five, and its upper end is at most the best rate."""
    grid = pick(tuning, optimizer="adam", batch_size=d.batch_size, epochs=d.epochs, beta=1.0)
    h = history[history.run_id.isin(grid.run_id)] if len(history) else history
    if best is None or not len(h):
        return []
    tt = _crossings(h, d.target_val_elbo)
    share = (tt.reached.astype(bool) & ~tt.at_first.astype(bool)).groupby(tt.learning_rate).mean()
    ok = [r for r, x in share.items() if x >= REACHED and r <= best * (1 + 1e-9)]
    step = d.ladder_lrs[1] / d.ladder_lrs[0]
    has = lambda rate: any(math.isclose(rate, r, rel_tol=1e-6) for r in ok)
    return [k for k, low in enumerate(d.ladder_lrs) if has(low) and has(low * step)]


def _setting(config: dict) -> str:
    """'Adam, batch 32, β = 4, learning rate 0.004' (β only when it is not 1)."""
    beta = f", β = {fmt(config['beta'])}" if config.get("beta", 1.0) != 1.0 else ""
    name = NAMES.get(config["optimizer"], config["optimizer"])
    return f"{name}, batch {config['batch_size']}{beta}, learning rate {fmt(config['learning_rate'])}"


def _best(candidates: list, d: Design) -> dict:
    """The config with the best mean validation ELBO among the tuned settings at the full budget."""
    full = [(c, r) for c, r in candidates if c["epochs"] == d.epochs and np.isfinite(float(r["mean"]))]
    if not full:
        return {**d.mlp, "learning_rate": d.adam_default_lr}
    config, row = max(full, key=lambda cr: float(cr[1]["mean"]))
    return {**config, "learning_rate": float(row.learning_rate)}


# ---------------------------------------------------------------------------------------------
# The evaluation runs each claim needs, at the seeds it has taken


def _batch_arms(d: Design, t: Tuned, seeds: list) -> list[dict]:
    """Every batch size at the rate tuned for it under each budget; the fixed-updates runs also record
    the validation ELBO every ``eval_every`` updates (the updates to a target)."""
    grid = []
    for budget, per in d.budgets.items():
        every = {"eval_every": d.eval_every if budget == "fixed updates" else 0}
        grid += [{**d.mlp, "batch_size": b, "epochs": e, "learning_rate": t.cell_rates[b, e], **every, "seed": seeds}
                 for b, e in per.items() if (b, e) in t.cell_rates]  # fmt: skip
    return grid


def _steps_arms(d: Design, t: Tuned, seeds: list) -> list[dict]:
    """The fixed-updates runs of ``_batch_arms``."""
    fixed = d.budgets["fixed updates"]
    return [
        g for g in _batch_arms(d, t, seeds) if g["eval_every"] == d.eval_every and fixed[g["batch_size"]] == g["epochs"]
    ]


def _ladder(d: Design, t: Tuned, seeds: list) -> list[dict]:
    """Adam at the reference setting over every seed's own shifted copy of the ladder (``protocol.dithered_ladder``)."""
    return [{**d.mlp, "learning_rate": protocol.dithered_ladder(d.ladder_lrs, s, salt=d.batch_size), "seed": s}
            for s in seeds]  # fmt: skip


def _optimizer_arms(sgd: str) -> Callable:
    def arms(d: Design, t: Tuned, seeds: list) -> list[dict]:
        """Adam and ``sgd``, each at its Keras default and at its tuned rate."""
        return [{**d.mlp, "optimizer": o, "learning_rate": sorted({d.defaults[o], t.rates[o]}), "seed": seeds}
                for o in ("adam", sgd) if o in t.rates]  # fmt: skip

    return arms


def _schedule_arms(d: Design, t: Tuned, seeds: list) -> list[dict]:
    """A constant rate and warm-up + cosine decay, both at the peak ``schedule_lr``."""
    peak = {**d.mlp, "learning_rate": d.schedule_lr, "seed": seeds}
    return [peak, {**peak, "lr_schedule": "warmup_cosine", "lr_warmup_epochs": d.lr_warmup_epochs}]


def _beta_arms(d: Design, t: Tuned, seeds: list) -> list[dict]:
    """The MLP at every β of ``collapse_betas``, each at the rate tuned for it."""
    return [{**d.mlp, "beta": b, "learning_rate": t.beta_rates[b], "seed": seeds} for b in d.collapse_betas
            if b in t.beta_rates]  # fmt: skip


def _conv_arms(d: Design, t: Tuned, seeds: list) -> list[dict]:
    return [{**d.conv, "beta": list(d.conv_betas), "seed": seeds}]


# Each claim in a few words, for the line that says how many seeds each took.
ARM_WORDS = {
    "fm-bs-gap": "the batch gap",
    "fm-bs-steps": "the updates to a target",
    "fm-lr-slow": "the small rate",
    "fm-opt-adam-sgd": "Adam against SGD",
    "fm-opt-adam-momentum": "Adam against momentum",
    "fm-lr-warmup-cosine": "warm-up and cosine",
    "fm-beta-collapse": "β in the MLP",
    "fm-conv-beta-collapse": "β in the conv VAE",
}
ARMS = {
    "fm-bs-gap": _batch_arms,
    "fm-bs-steps": _steps_arms,
    "fm-lr-slow": _ladder,
    "fm-opt-adam-sgd": _optimizer_arms("sgd"),
    "fm-opt-adam-momentum": _optimizer_arms("momentum"),
    "fm-lr-warmup-cosine": _schedule_arms,
    "fm-beta-collapse": _beta_arms,
    "fm-conv-beta-collapse": _conv_arms,
}  # claim -> the evaluation runs it judges, at given seeds


class Plan:
    """Which evaluation runs each claim needs, and the seeds each has taken: a claim still open at a look
    takes that look's seeds, a decided one keeps the seeds it was decided on (its runs are in the store)."""

    def __init__(self, d: Design, tuned: Tuned):
        self.d, self.tuned, self.taken = d, tuned, {}

    def grid(self, seeds: Sequence[int], is_open: Callable[[str], bool]) -> list[dict]:
        """The sweep grid of a look: every claim's runs at its seeds, and the headline NLL run."""
        for claim in ARMS:
            if claim not in self.taken or is_open(claim):
                self.taken[claim] = [int(s) for s in seeds]
        grid = [g for claim, s in self.taken.items() for g in ARMS[claim](self.d, self.tuned, s)]
        return [*grid, {**self.tuned.best, "eval_k": self.d.nll_k, "seed": int(self.d.evaluation_seeds[0])}]

    def evaluation(self, runs: pd.DataFrame, history: pd.DataFrame, curves: pd.DataFrame) -> Evaluation:
        """What the claims read from a look's runs, their validation ELBO per epoch (``history``) and
        every ``eval_every`` updates (``curves``)."""
        return Evaluation(runs, history, curves, self.d, self.tuned, dict(self.taken))

    def seeds_values(self) -> dict:
        """How many evaluation seeds each claim took, in words (``seeds-taken``)."""
        by_n: dict[int, list[str]] = {}
        for claim, s in self.taken.items():
            by_n.setdefault(len(s), []).append(claim)
        parts = [f"{n} for {join_and([ARM_WORDS[c] for c in ids])}" for n, ids in sorted(by_n.items())]
        return {"seeds-taken": "; ".join(parts) or "none", "n-seeds": max(map(len, self.taken.values()), default=0)}


# ---------------------------------------------------------------------------------------------
# What the claims read from a look's runs


class Evaluation:
    """A look's evaluation runs (column ``broke``: the run broke down), their histories and curves, and
    each claim's estimate as ``fam.add`` takes it (``fam.add(id, **ev.batch_gap())``), on the runs of
    the seeds that claim has taken."""

    def __init__(self, runs, history, curves, d: Design, tuned: Tuned, taken: dict):
        runs = runs.drop_duplicates("run_id")
        self.runs = runs.assign(broke=protocol.unstable(runs)) if len(runs) else runs.assign(broke=False)
        self.history, self.curves, self.d, self.tuned, self.taken = history, curves, d, tuned, taken
        self._crit = None

    def of(self, claim: str, architecture: str = "mlp") -> pd.DataFrame:
        """The runs scored with one importance sample at the seeds ``claim`` has taken."""
        r = self.runs
        return r[(r.eval_k == 1) & (r.architecture == architecture) & r.seed.isin(self.taken.get(claim, []))]

    def _reference(self, claim: str) -> pd.DataFrame:
        """``claim``'s runs at the reference setting: constant rate, β = 1, no extra evaluations."""
        r = self.of(claim)
        return pick(
            r, batch_size=self.d.batch_size, epochs=self.d.epochs, beta=1.0, eval_every=0, lr_schedule="constant"
        )

    def _add(self, effect, runs, tuned: bool = True, **more) -> dict:
        return {"effect": effect, "runs": runs, **({"tuned_on": list(self.d.tuning_seeds)} if tuned else {}), **more}

    # -- batch size ---------------------------------------------------------------------------

    def batch_arms(self, claim: str = "fm-bs-gap") -> dict[str, pd.DataFrame]:
        """{budget: its runs (a column ``budget``)}: every batch size at the rate tuned for it and its epochs."""
        r, t, out = pick(self.of(claim), beta=1.0, optimizer="adam", lr_schedule="constant"), self.tuned, {}
        for budget, per in self.d.budgets.items():
            runs = r[r.eval_every == (self.d.eval_every if budget == "fixed updates" else 0)]
            got = [pick(runs, batch_size=b, epochs=e, learning_rate=t.cell_rates[b, e]) for b, e in per.items()
                   if (b, e) in t.cell_rates]  # fmt: skip
            out[budget] = pd.concat(got).assign(budget=budget) if got else runs.iloc[:0].assign(budget=budget)
        return out

    def batch_gap(self) -> dict:
        """fm-bs-gap: per budget, the per-seed slope of the test ELBO on log2 batch size, and the
        seed-matched difference of the slopes between the budgets."""
        arms = self.batch_arms()
        effects, interaction = batch_slopes(arms)
        return self._add(effects, list(arms.values()), interaction=interaction)

    def critical_batch(self) -> batch.CriticalBatch:
        """B_crit at every target (``batch.critical_batch``) on the fixed-updates runs' curves."""
        if self._crit is None:
            fu = self.batch_arms("fm-bs-steps")["fixed updates"]
            curves = self.curves[self.curves.run_id.isin(fu.run_id)] if len(self.curves) else self.curves
            usable = self.tuned.targets
            self._crit = (
                batch.critical_batch(curves, self.d.targets, usable) if len(curves) else _no_curves(self.d.targets)
            )
        return self._crit

    def bs_steps(self) -> dict:
        """fm-bs-steps: doublings of the updates to the hardest usable target per doubling of the batch."""
        fu = self.batch_arms("fm-bs-steps")["fixed updates"]
        crit = self.critical_batch()
        fewer, _ = batch.target_slopes(crit.runs)
        return self._add(fewer, fu[fu.run_id.isin(crit.runs.run_id)] if len(crit.runs) else fu)

    # -- the learning rate --------------------------------------------------------------------

    def ladder(self) -> pd.DataFrame:
        """The evaluation seeds' ladder runs (Adam at the reference setting, each seed's own rates)."""
        ref = self._reference("fm-lr-slow")
        own = [pick(ref[ref.seed == s], learning_rate=protocol.dithered_ladder(self.d.ladder_lrs, s, salt=self.d.batch_size))
               for s in self.taken.get("fm-lr-slow", [])]  # fmt: skip
        return pd.concat(own) if own else ref.iloc[:0]

    def slow(self) -> tuple[pd.DataFrame, dict]:
        """The ladder runs that crossed the target, on the rungs below the best rate (``slow_runs``), and
        the page's values."""
        ladder = self.ladder()
        history = self.history[self.history.run_id.isin(ladder.run_id)] if len(self.history) else self.history
        return slow_runs(history, ladder, self.d, self.tuned.rungs)

    def lr_slow(self) -> dict:
        """fm-lr-slow: the per-seed slope of log2(updates to the target) on log2(rate) over ``slow``'s runs."""
        slow, _ = self.slow()
        name = "slope of log2(updates to target) on log2(learning rate)"
        slope = stats.per_seed_slope(slow, "learning_rate", "steps_to_target", logx=True, logy=True, name=name)
        ladder = self.ladder()
        return self._add(slope, ladder[ladder.run_id.isin(slow.run_id)] if len(slow) else ladder)

    # -- optimizers and the schedule ----------------------------------------------------------

    def optimizer_arms(self, sgd: str) -> dict[str, dict[str, pd.DataFrame]]:
        """{"default rate" / "tuned rate": {optimizer: its runs at that rate}} for Adam against ``sgd``."""
        ref = self._reference(SGD_CLAIMS[sgd])
        rates_ = {"default rate": self.d.defaults, "tuned rate": self.tuned.rates}
        return {s: {o: pick(ref, optimizer=o, learning_rate=r[o]) for o in ("adam", sgd) if o in r}
                for s, r in rates_.items()}  # fmt: skip

    def optimizer(self, sgd: str) -> dict:
        """fm-opt-adam-sgd / fm-opt-adam-momentum: Adam's test ELBO against ``sgd``'s, seed by seed, at
        default and at tuned rates (a run that broke down ranked worst), and how much tuning moves the lead."""
        arms = self.optimizer_arms(sgd)
        effects, interaction = optimizer_effects(arms, sgd)
        return self._add(effects, [r for by in arms.values() for r in by.values()], interaction=interaction)

    def optimizer_frames(self) -> tuple[pd.DataFrame, pd.DataFrame]:
        """(the tuning runs of every optimizer over its grid that trained, the compared runs with a column
        ``setting``), the optimizers named in words: what the figure draws."""
        d = self.d
        grid = pick(self.tuned.runs, batch_size=d.batch_size, epochs=d.epochs, beta=1.0)
        grid = grid[~protocol.unstable(grid)]
        arms = [
            r.assign(setting=s) for sgd in SGD_CLAIMS for s, by in self.optimizer_arms(sgd).items() for r in by.values()
        ]
        compared = measured(pd.concat(arms).drop_duplicates(["run_id", "setting"])) if arms else grid.iloc[:0]
        named = lambda df: df.assign(optimizer=df.optimizer.map(lambda o: NAMES.get(o, o)))
        return named(grid), named(compared)

    def schedule_runs(self) -> pd.DataFrame:
        """A constant rate and warm-up + cosine decay at the peak ``schedule_lr`` (column ``lr_schedule``)."""
        r = pick(self.of("fm-lr-warmup-cosine"), batch_size=self.d.batch_size, epochs=self.d.epochs, beta=1.0,
                 optimizer="adam", eval_every=0, learning_rate=self.d.schedule_lr)  # fmt: skip
        warm = r[(r.lr_schedule == "warmup_cosine") & (r.lr_warmup_epochs == self.d.lr_warmup_epochs)]
        return pd.concat([r[r.lr_schedule == "constant"], warm])

    def schedule(self) -> dict:
        """fm-lr-warmup-cosine: test ELBO(warm-up + cosine) − test ELBO(constant) at the peak, seed by seed."""
        runs = self.schedule_runs()
        effects, _ = rates.schedule_effects(runs, "warmup_cosine")
        return self._add(effects, runs)

    # -- β ------------------------------------------------------------------------------------

    def beta_runs(self) -> pd.DataFrame:
        """Every β of ``collapse_betas`` at the rate tuned for it, at the reference setting, the runs that
        broke down left out."""
        r = pick(self.of("fm-beta-collapse"), batch_size=self.d.batch_size, epochs=self.d.epochs, optimizer="adam",
                 eval_every=0, lr_schedule="constant")  # fmt: skip
        got = [
            pick(r, beta=b, learning_rate=rate)
            for b, rate in self.tuned.beta_rates.items()
            if b in self.d.collapse_betas
        ]
        runs = pd.concat(got) if got else r.iloc[:0]
        return runs[~runs.broke]

    def conv_runs(self) -> pd.DataFrame:
        """The conv VAE at every β (Adam at ``conv_lr``), the runs that broke down left out."""
        r = pick(self.of("fm-conv-beta-collapse", "conv"), epochs=self.d.conv_epochs, learning_rate=self.d.conv_lr,
                 beta=list(self.d.conv_betas))  # fmt: skip
        return r[~r.broke]

    def beta(self, conv: bool = False) -> dict:
        """fm-beta-collapse / fm-conv-beta-collapse: the per-seed slope of the active units on log2 β."""
        runs = self.conv_runs() if conv else self.beta_runs()
        name = "active units per doubling of β"
        slope = stats.per_seed_slope(runs, "beta", "active_units", logx=True, name=name, unit="units")
        return self._add(slope, runs, tuned=not conv)

    def headline(self) -> pd.Series | None:
        """The best tuned setting's run scored with ``nll_k`` importance samples (the headline test NLL)."""
        b = self.tuned.best
        keys = {k: b[k] for k in ("optimizer", "batch_size", "epochs", "learning_rate", "architecture")}
        r = pick(self.runs, seed=self.d.evaluation_seeds[0], eval_k=self.d.nll_k, beta=b.get("beta", 1.0), **keys)
        return r.iloc[0] if len(r) else None

    # -- collapse ------------------------------------------------------------------------------

    def judged_runs(self) -> pd.DataFrame:
        """Every run a verdict compares settings on (the ladder's rates and the headline run left out)."""
        ladder = self.ladder().run_id
        r = self.runs[(self.runs.eval_k == 1) & ~self.runs.run_id.isin(ladder)]
        return r[r.seed.isin({s for seeds in self.taken.values() for s in seeds})]

    def code_user_effects(self) -> dict[str, dict[str, stats.Estimate]]:
        """{claim: {condition: its estimate}} for the claims collapse confounds, on the runs that use their
        latent code (``using_code``): the batch-size slopes and Adam's lead over each SGD."""
        out = {"fm-bs-gap": batch_slopes({k: using_code(v) for k, v in self.batch_arms().items()})[0]}
        for sgd, claim in SGD_CLAIMS.items():
            arms = {s: {o: using_code(r) for o, r in by.items()} for s, by in self.optimizer_arms(sgd).items()}
            out[claim] = optimizer_effects(arms, sgd)[0]
        return out

    def code_users(self) -> dict:
        """The page's words for ``code_user_effects`` (``<id>-active``) and the runs they leave out (``<id>-dead``)."""
        runs = {"fm-bs-gap": list(self.batch_arms().values())}
        runs |= {
            claim: [r for by in self.optimizer_arms(sgd).values() for r in by.values()]
            for sgd, claim in SGD_CLAIMS.items()
        }
        out = {}
        for claim, effects in self.code_user_effects().items():
            key = claim.removeprefix("fm-")
            out |= {
                f"{key}-active": _conditions_words(effects),
                f"{key}-dead": _dead(pd.concat(runs[claim]).drop_duplicates("run_id")),
            }
        return out

    # -- what the page states -----------------------------------------------------------------

    def batch_values(self) -> dict:
        """Active units at the smallest and the largest batch under a fixed number of epochs, and the
        note for the side-by-side table."""
        d, fixed = self.d, self.batch_arms()["fixed epochs"]
        au = fixed[~fixed.broke].groupby("batch_size").active_units.mean()
        lo, hi = min(d.batch_sizes), max(d.batch_sizes)
        ups = ", ".join(f"{d.epochs * d.per_epoch(b):,}" for b in d.batch_sizes)
        fu = d.budgets["fixed updates"]
        note = (f"{d.model} on {d.n_train:,} images: batches {', '.join(map(str, d.batch_sizes))} take {ups} updates in "
                f"{_epochs(d.epochs)}; with about {d.updates:,} updates each, batch {lo} trains {_epochs(fu[lo])} and batch "
                f"{hi} {_epochs(fu[hi])}.")  # fmt: skip
        return {"au-big": fmt(au.get(hi, math.nan), 3), "au-small": fmt(au.get(lo, math.nan), 3), "bs-gap-note": note}

    def bcrit_values(self) -> dict:
        """B_crit at the hardest usable target, how it moves over the targets, and the note."""
        crit = self.critical_batch()
        note = f"B_crit {crit.text}; fixed-updates runs of about {self.d.updates:,} updates."
        return {"bcrit": crit.text, "bcrit-target": fmt(crit.target), "bcrit-trend": crit.trend, "bs-steps-note": note}

    def lr_values(self) -> tuple[dict, pd.DataFrame]:
        """(the best rate and where it lies, the breaking rate and ratio, the time-to-target rungs; per rung
        of the ladder, its runs and how many broke down)."""
        best = self.tuned.rates.get("adam", math.nan)
        brk, table = breaking(self.ladder(), self.d, best)
        return {"lr-best": best, "lr-interior": self.tuned.where, **brk, **self.slow()[1]}, table

    def optimizer_values(self) -> dict:
        """The tuned rates the page states, and the notes for the side-by-side table."""
        r, d = self.tuned.rates, self.d
        out = {f"rate-{o}": r.get(o, math.nan) for o in NAMES}
        for sgd, claim in SGD_CLAIMS.items():
            out[f"{claim[3:]}-note"] = (
                f"Adam against {NAMES[sgd]} at batch {d.batch_size}: tuned rates {fmt(r.get('adam', math.nan))} and "
                f"{fmt(r.get(sgd, math.nan))}; Keras defaults {fmt(d.adam_default_lr)} and {fmt(d.sgd_default_lr)}."
            )
        return out

    def schedule_values(self) -> dict:
        """The peak over the best constant rate, and the note."""
        d, best = self.d, self.tuned.rates.get("adam", math.nan)
        note = (f"Only the large peak, {fmt(d.schedule_lr)} ({fmt(d.schedule_lr / best, 2)} times Adam's tuned rate); "
                f"warm-up over {_epochs(d.lr_warmup_epochs)} of {d.epochs}.")  # fmt: skip
        return {"peak-ratio": fmt(d.schedule_lr / best, 2), "lr-warmup-cosine-note": note}

    def beta_values(self) -> dict:
        """The KL term at the smallest and the largest β, the best β on the tuning seeds' validation ELBO,
        the rate each β of the MLP trained at (the count of active units depends on it), the active units
        per β of both models, and the notes."""
        mlp, conv = self.beta_runs(), self.conv_runs()
        kl = mlp.groupby("beta").test_kl_loss.mean()
        at = lambda s, i: float(s.iloc[i]) if len(s) else math.nan
        rates = [(b, r) for b, r in self.tuned.beta_rates.items() if b in self.d.collapse_betas]
        return {"beta-kl-lo": at(kl, 0), "beta-kl-hi": at(kl, -1), "beta-best": fmt(self.tuned.best_beta),
                "beta-rates": join_and([f"{fmt(r)} at β = {fmt(b)}" for b, r in sorted(rates)]) or "none tuned",
                "beta-collapse-note": _units_note(mlp, self.d, "MLP"),
                "conv-beta-collapse-note": _units_note(conv, self.d, "conv VAE")}  # fmt: skip

    def headline_values(self) -> dict:
        """The best configuration's test NLL (nats per image, importance-weighted) and its test ELBO."""
        run = self.headline()
        nll, elbo = (float(run.test_nll), float(run.test_elbo)) if run is not None else (math.nan, math.nan)
        return {"nll": nll, "nll-elbo": elbo, "nll-config": self.tuned.best_name}


def _no_curves(targets: Sequence[float]) -> batch.CriticalBatch:
    """What ``batch.critical_batch`` says when no run recorded a curve (``eval_every`` 0): no target usable."""
    nan = math.nan
    curve = pd.DataFrame([{"target": float(t), "min_share_reached": 0.0, "usable": False, "b_crit": nan, "b_crit_low": nan,
                           "b_crit_high": nan, "s_min": nan, "e_min": nan, "n": 0} for t in targets])  # fmt: skip
    runs = pd.DataFrame(columns=["run_id", "batch_size", "seed", "steps_to_target", "examples"])
    return batch.CriticalBatch(curve, float(min(targets)), runs, fit_hyperbola([], []))


def _units_note(runs: pd.DataFrame, d: Design, model: str) -> str:
    """'MLP: active units (of 16) at β = 0.25, 1, 4: 16, 15.8, 6.2; runs with none: 0, 0, 1.'"""
    if not len(runs):
        return f"{model}: no run trained."
    by = runs.groupby("beta")
    units = ", ".join(fmt(u, 3) for u in by.active_units.mean())
    dead = ", ".join(str(int(n)) for n in by.active_units.apply(lambda u: (u == 0).sum()))
    betas = ", ".join(map(fmt, by.active_units.mean().index))
    return f"{model}: active units (of {d.latent_dim}) at β = {betas}: {units}; runs with none: {dead}."


def _dead(runs: pd.DataFrame) -> str:
    """'2 of 30 runs': the runs that trained and ended with no active unit."""
    dead = (~runs.broke & (runs.active_units == 0)).sum() if len(runs) else 0
    return f"{int(dead)} of {len(runs)} runs"


def _conditions_words(effects: dict) -> str:
    """'fixed epochs: −4.1 nats (95% CI …); fixed updates: …'."""
    return "; ".join(f"{k}: {e.format() if e.tested else 'not testable'}" for k, e in effects.items()) or "n/a"


def using_code(runs: pd.DataFrame) -> pd.DataFrame:
    """The runs that use their latent code: at least one active unit, or broke down (ranked worst as before)."""
    return runs[runs.broke | (runs.active_units > 0)]


# ---------------------------------------------------------------------------------------------
# The estimates


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


def optimizer_effects(arms: dict, sgd: str) -> tuple[dict, stats.Estimate]:
    """({rate setting: Adam's test ELBO against ``sgd``'s, seed by seed, a run that broke down ranked
    worst}, Adam's lead when tuned minus its lead at defaults)."""
    name = f"test ELBO(Adam) − test ELBO({NAMES[sgd]})"
    values = {s: {o: protocol.outcome_values(r) for o, r in by.items()} for s, by in arms.items()}
    effects = {s: stats.with_divergence(v["adam"], v[sgd], name=name, unit="nats") for s, v in values.items()}
    lead = {s: v["adam"] - v[sgd] for s, v in values.items()}
    interaction = stats.paired(
        lead["tuned rate"], lead["default rate"], name="Adam's lead when tuned − its lead at defaults", unit="nats"
    )
    return effects, interaction


def _rungs(ladder: pd.DataFrame, d: Design) -> pd.Series:
    """Each ladder run's rung: the index of its rate in its seed's shifted ladder."""

    def rung(r) -> int:
        own = np.log(protocol.dithered_ladder(d.ladder_lrs, int(r.seed), salt=d.batch_size))
        return int(np.argmin(np.abs(own - math.log(r.learning_rate))))

    return pd.Series([rung(r) for r in ladder.itertuples()], index=ladder.index, dtype=int)


def slow_runs(
    history: pd.DataFrame, ladder: pd.DataFrame, d: Design, rungs: Sequence[int]
) -> tuple[pd.DataFrame, dict]:
    """(the evaluation seeds' ladder runs on the usable ``rungs`` (chosen on the tuning seeds:
    ``usable_rungs``) that crossed the target validation ELBO between two evaluations, with their
    ``steps_to_target``; the page's values). A run past the target at its first evaluation, or never
    reaching it, gives only a bound and is left out."""
    cols = ["run_id", "learning_rate", "seed", "steps_to_target", "reached", "at_first"]
    tt = _crossings(history, d.target_val_elbo) if len(history) else pd.DataFrame(columns=cols)
    tt = tt.merge(ladder[["run_id"]].assign(rung=_rungs(ladder, d)), on="run_id")
    crossed = tt.reached.astype(bool) & ~tt.at_first.astype(bool)
    slow = tt[tt.rung.isin(list(rungs)) & crossed].reset_index(drop=True)
    step = d.ladder_lrs[1] / d.ladder_lrs[0] if len(d.ladder_lrs) > 1 else 1.0
    where = f"rates {fmt(d.ladder_lrs[min(rungs)])} to {fmt(d.ladder_lrs[max(rungs)] * step)}" if rungs else "no rung"
    note = (f"Target {fmt(d.target_val_elbo)} nats, {len(rungs)} rung(s) of the ladder usable on the tuning seeds; "
            f"evaluations once per epoch of {d.per_epoch(d.batch_size):,} updates.")  # fmt: skip
    return slow, {"lr-slow-range": where, "lr-slow-note": note}


def _crossings(history: pd.DataFrame, target: float) -> pd.DataFrame:
    """Per run: the updates until the validation ELBO first reaches ``target`` (``steps_to_target_table``)."""
    return steps_to_target_table(history, target, keep=["learning_rate", "seed"])


# ---------------------------------------------------------------------------------------------
# The quantities: where training breaks, collapse, the spread, what a re-run costs


def breaking(ladder: pd.DataFrame, d: Design, best: float) -> tuple[dict, pd.DataFrame]:
    """({lr-break, lr-break-ratio, lr-never-broke}, per rung: runs and runs that broke down). Each seed's
    breaking point is the geometric midpoint of its largest stable rate and the first rate that broke it
    on its own shifted ladder (``protocol.breaking_rates``); their geometric mean over the seeds that broke
    within the ladder is the breaking rate, over the best rate the breaking ratio; seeds that never broke
    are left out and counted, as in chapter 05."""
    per_seed = protocol.breaking_rates(ladder) if len(ladder) else pd.DataFrame(columns=["censored", "breaking_point"])
    found = per_seed[~per_seed.censored.astype(bool)]
    never = f"{int(per_seed.censored.sum())} of {len(per_seed)}"
    if len(found) < 2:
        top = fmt(ladder.learning_rate.max()) if len(ladder) else "n/a"
        values = {"lr-break": f"not bracketed: fewer than two seeds broke below {top}", "lr-break-ratio": "n/a"}
    else:
        e = stats.log_mean(found.breaking_point, name="breaking rate, geometric mean over seeds")
        ratio = f"{fmt(e.estimate / best, 2)} (95% CI {fmt(e.low / best, 2)} to {fmt(e.high / best, 2)})"
        values = {"lr-break": e.format(), "lr-break-ratio": ratio}
    return values | {"lr-never-broke": never}, _rung_table(ladder, d)


def _rung_table(ladder: pd.DataFrame, d: Design) -> pd.DataFrame:
    """Per rung of the ladder: its rates over the seeds, its runs, and how many broke down."""
    r = ladder.assign(broke=protocol.unstable(ladder), rung=_rungs(ladder, d))
    g = r.groupby("rung").agg(low=("learning_rate", "min"), high=("learning_rate", "max"), runs=("seed", "size"),
                              broke=("broke", "sum"))  # fmt: skip
    rates_ = [f"{fmt(lo)} to {fmt(hi)}" if hi > lo else fmt(lo) for lo, hi in zip(g.low, g.high, strict=True)]
    return pd.DataFrame({"rung": [fmt(d.ladder_lrs[i]) for i in g.index], "rates (shifted per seed)": rates_,
                         "runs": g.runs.to_numpy(), "runs that broke down": g.broke.astype(int).to_numpy()})  # fmt: skip


def _label(r) -> str:
    """A run's setting in words: 'MLP, Adam, batch 32, 10 epochs, rate 0.002', with β and a schedule when set."""
    model = "conv VAE" if r.architecture == "conv" else "MLP"
    extra = f", β = {fmt(r.beta)}" if r.beta != 1.0 else ""
    extra += ", warm-up + cosine" if r.lr_schedule == "warmup_cosine" else ""
    extra += ", curves" if r.eval_every else ""
    name = NAMES.get(r.optimizer, r.optimizer)
    return f"{model}, {name}, batch {r.batch_size}, {_epochs(r.epochs)}, rate {fmt(r.learning_rate)}{extra}"


def collapse_table(runs: pd.DataFrame) -> pd.DataFrame:
    """Per setting (``Evaluation.judged_runs``): its runs, the runs that trained and ended with no active
    latent unit, and the mean active units of the runs that trained."""
    ok = runs.assign(setting=[_label(r) for r in runs.itertuples()], dead=~runs.broke & (runs.active_units == 0))
    g = ok.groupby("setting", sort=False)
    au = ok[~ok.broke].groupby("setting", sort=False).active_units.mean()
    return pd.DataFrame({"setting": list(g.groups), "runs": g.size().to_numpy(),
                         "runs with no active unit": g.dead.sum().astype(int).to_numpy(),
                         "mean active units": [float(au.get(k, math.nan)) for k in g.groups]})  # fmt: skip


def _rising(history: pd.DataFrame, runs: pd.DataFrame) -> str:
    """The share of ``runs`` (stable ones) whose validation ELBO still rose over their last epoch."""
    h = history[history.run_id.isin(runs.run_id[~runs.broke])].sort_values(["run_id", "epoch"])
    last_two = h.groupby("run_id").val_elbo.agg(lambda v: v.iloc[-1] > v.iloc[-2] if len(v) > 1 else np.nan)
    ends = last_two.dropna()
    return f"{ends.astype(float).mean():.0%}" if len(ends) else "n/a (one evaluation per run)"


def quality_values(ev: Evaluation, delta: float) -> dict:
    """What the page says about the runs the verdicts compare: the runs that broke down, the runs at
    β = 1 that never use their latent code (MLP and conv), the MLP's seed-to-seed spread (all runs and
    the runs that use their code) and the effect the first look's seeds detect, Δ against the mean test
    ELBO, and whether training still improved at the end."""
    runs = ev.judged_runs()
    mlp, conv = runs[runs.architecture == "mlp"], runs[runs.architecture == "conv"]
    setting = ["optimizer", "batch_size", "epochs", "beta", "learning_rate", "lr_schedule", "eval_every"]
    spread = protocol.seed_spread(mlp, setting)
    mean = float(mlp.test_elbo[~mlp.broke].mean()) if len(mlp) else math.nan
    one = lambda r: _dead(r[r.beta == 1.0])
    return {
        "n-broke": f"{int(runs.broke.sum())} of {len(runs)}", "collapsed": one(mlp), "collapsed-conv": one(conv),
        "spread": spread, "spread-active": protocol.seed_spread(mlp[mlp.active_units > 0], setting),
        "detectable": stats.detectable_effect(ev.d.looks[0], spread) if spread > 0 else math.nan,
        "mean-elbo": mean, "delta-share": f"{100 * delta / abs(mean):.2g}%" if abs(mean) > 0 else "n/a",
        "rising": _rising(ev.history, mlp) if len(ev.history) else "n/a",
    }  # fmt: skip


def rerun_values(runs: pd.DataFrame, d: Design, full_epochs: int = 30, cores: Sequence[int] = (2, 32)) -> dict:
    """This build's runs and their training cost by their own clocks (``wall_time_s``: each run's share of
    its stack, one thread each), and what the full-scale run (every training image, ``full_epochs`` epochs
    for both models, the same runs) would cost: each run's examples at its measured steady throughput
    (``samples_per_s``; compiling and scoring left out), in core-hours and in hours on each of ``cores``."""
    runs = runs.drop_duplicates("run_id")
    runs = runs[runs.status == "ok"]
    full = (
        TRAIN_SIZES[d.dataset]
        * full_epochs
        * runs.epochs
        / np.where(runs.architecture == "conv", d.conv_epochs, d.epochs)
    )
    hours = float((full / runs.samples_per_s.astype(float)).sum()) / 3600
    out = {"n-runs": len(runs), "train-cpu": f"{runs.wall_time_s.astype(float).sum():,.0f}"}
    for arch in ("mlp", "conv"):
        mine = runs[runs.architecture == arch]
        out |= {f"{arch}-runs": len(mine), f"{arch}-run-s": fmt(mine.wall_time_s.astype(float).mean(), 2)}
    return out | {"full-core-hours": fmt(hours, 2), **{f"full-hours-{c}": fmt(hours / c, 2) for c in cores}}


def noise_scale(d: Design, tuned: Tuned) -> pd.DataFrame:
    """B_simple at each of ``noise_epochs`` of Adam at the reference setting and its tuned rate, one run
    per tuning seed (it judges nothing), measured as the advisor measures it
    (``advisor.recommend.checkpoint_noise_scale``): one row per run with its metrics and ``b_simple``.
    Trains in this process (imports TensorFlow)."""
    from ..advisor.recommend import checkpoint_noise_scale
    from ..core.config import TrainConfig
    from ..core.data import load_dataset, subsample
    from ..core.training import train_seeds

    data = subsample(load_dataset(d.dataset), d.train_size or None, d.held_out_size or None)
    rate = tuned.rates.get("adam", d.adam_default_lr)
    rows = []
    for e in d.noise_epochs:
        configs = [
            TrainConfig(**{**d.mlp, "epochs": int(e), "learning_rate": rate, "seed": int(s)}) for s in d.tuning_seeds
        ]
        trained = train_seeds(configs, data)
        rows += [{**r.config.to_dict(), **r.metrics, "b_simple": checkpoint_noise_scale(r.model, data, seed=r.config.seed)["b_simple"]} for r in trained]  # fmt: skip
    return pd.DataFrame(rows)


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
    held = f"first {d.n_held:,}" if d.held_out_size else "all"
    return (
        f"Data: {REGISTRY[d.dataset].title or d.dataset} (`dataset = {d.dataset}`), read from `{where}`. This build trains on the first {d.n_train:,} of the "
        f"{TRAIN_SIZES[d.dataset]:,} training images ({d.n_train * d.epochs:,} examples per MLP run) and scores on "
        f"the {held} validation and test images: {{ref}}`fm-rerun` gives the full-scale run."
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
