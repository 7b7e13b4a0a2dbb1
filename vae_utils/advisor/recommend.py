"""An advisor for a reader's own data: batch size and learning rate from measurements, in minutes.

    from vae_utils.advisor import advise
    advice = advise("my_images.npy", likelihood="bernoulli", budget_minutes=5, out="advice")
    advice.recommendation.batch_size, advice.recommendation.learning_rate
    advice.to_dict()          # every step's numbers and timings (also out/advice.json)

or ``python -m vae_utils advise --data my_images.npy [--likelihood gaussian] [--out advice]``.
``data`` may also be a named dataset ("digits"), a ``Dataset`` or an array.

The steps, each timed and reported with its numbers:

1. **split**: the file read, validated and split 70/15/15 with ``split_seed`` (``datafile``);
2. **range test** (``rangetest``) at the probe batch size, for each optimizer asked (Adam; SGD
   with momentum 0.9 too with ``optimizers=("adam", "momentum")``): the breaking point lr_break,
   the median over ``range_repeats`` seeds (``rangetest.checked_range_test``), its spread reported.
   A break counts only where the rate it sets, ratio(B) x lr_break, is at least 10x the test's
   lowest rate; a test that breaks at its start is run again from a 100x lower rate, and a test
   without a break says so;
3. **noise scale**: ``short_seeds`` independent short runs (about ``short_updates`` updates) at the rate
   the advice itself would use, ratio(B) x lr_break (below), each read at checkpoints of its last half
   (``noisescale.CHECKPOINTS``) and pooled (``noisescale.pooled_b_simple``); over the runs, their
   geometric mean with a t-interval on the log scale (``noise_over_runs``) and the curve per checkpoint;
4. **recommendation** (rules below);
5. **confirmation** (optional, when it fits the budget): batch sizes B/2, B, 2B x rates lr/2, lr,
   2 lr x ``grid_seeds`` seeds (or fewer seeds, or the cross through the advice: ``confirm._plans``),
   ``grid_epochs`` epochs, through ``experiments.sweep`` and its cache for a named dataset (in-process
   ``train`` for a file: sweeps load datasets by name); decided by the paired interval over seeds of
   the gap between the grid's best and the advice (a beaten advice is replaced by the grid's best).

Rules of the recommendation:

* **batch-size range** [B_simple / 4, B_simple], each end rounded to a power of two and kept within
  [MIN_BATCH, n_train / 8] (at least 8 updates per epoch); the **batch size** is the power of two
  nearest B_simple / 2, inside it. B_simple estimates the critical batch size (McCandlish et al. 2018): below it, larger batches cut
  the number of updates almost proportionally; above it, they mostly cost compute. With
  S(B) = S_min (1 + B_crit / B), B = B_crit / 4 needs 1.25 x the fewest examples, B = B_crit 2x the
  fewest updates and 2x the fewest examples; B_crit / 2 takes 3x the fewest updates for 1.5x the
  fewest examples.
* **learning rate** = ratio(B) x lr_break, with lr_break from a range test at the recommended
  batch size B and ratio(B) = at_64 x (B / 64)^exponent (``LR_RATIO``, ``lr_ratio``): the best rate
  over the breaking point, pooled over six data sets of both likelihoods for each optimizer
  (``calibration``; ``benchmarks/advisor_ratio.py --pool``): per data set, 30-epoch grids of rates at
  two or three batch sizes, three seeds, the best rate by mean validation ELBO interpolated in log
  rate, over the geometric mean of five range tests' breaking points, a line through log2 ratio
  against log2 B; the rule is the mean of the data sets' lines. The breaking point barely moves with
  the batch (a short run from fresh weights), the best rate of a 30-epoch run grows with it, hence the
  exponent (``calibration.json``, ``calibration_momentum.json``). The numbers depend on the range test's settings
  (``rangetest.DEFAULTS``) and on the budget of epochs; the confirmation grid checks them.
* the **optimizer**: the first of ``optimizers`` (Adam by default, the book's robust choice).
"""

from __future__ import annotations

import dataclasses
import math
import os
import sys
import time
from dataclasses import asdict, dataclass, field
from pathlib import Path

import numpy as np

from ..core.config import TrainConfig
from ..core.data import DATASETS, TRAIN_SIZES, Dataset, load_dataset
from .confirm import confirmation as _confirm
from .noisescale import CHECKPOINTS, checkpoint_updates, curve_words, noise_curve, pooled_b_simple, still_growing
from .rules import (
    DELTA,
    HELD_FIXED,
    LR_RATIO,
    MIN_BATCH,
    OPTIMIZERS,
    PLACEHOLDER,
    RATIO_SOURCE,
    Recommendation,
    batch_range,
    extrapolation,
    lr_ratio,
)

SHORT_HELD_OUT = 2000  # validation and test examples the short run evaluates (at most)

__all__ = [
    "advise",
    "Advice",
    "Recommendation",
    "LR_RATIO",
    "DELTA",
    "MIN_BATCH",
    "lr_ratio",
    "batch_range",
    "noise_scale_interval",
    "checkpoint_noise_scale",
    "resolve_data",
    "add_parser",
]


@dataclass
class Advice:
    """Everything ``advise`` measured: the data, each step's numbers and timings, the advice."""

    data: dict
    architecture: str
    range_tests: list = field(repr=False)  # RangeTest objects, in the order run
    noise: dict
    short_run: dict
    recommendation: Recommendation
    confirmation: dict
    timings: dict  # step -> seconds
    budget_s: float
    warnings: list = field(default_factory=list)
    files: dict = field(default_factory=dict)  # what write_report wrote
    total_s: float = math.nan  # wall time of the whole call, report included

    def to_dict(self) -> dict:
        """JSON-ready: every number, the range-test curves included."""
        d = {k: getattr(self, k) for k in ("data", "architecture", "noise", "short_run", "confirmation")}
        d["recommendation"] = asdict(self.recommendation)
        d["range_tests"] = [rt.summary() | {"curve": rt.frame().to_dict(orient="list")} for rt in self.range_tests]
        d.update(timings_s=self.timings, total_s=self.total_s, budget_s=self.budget_s, warnings=self.warnings)
        return d

    def summary(self) -> str:
        """The advice in a few plain lines, warnings right after the headline."""
        r = self.recommendation
        lines = [
            f"batch size {r.batch_size} (range {r.batch_range[0]}-{r.batch_range[1]}), "
            f"learning rate {r.learning_rate:.3g} ({r.optimizer}), range test's divergence rate {r.lr_break:.3g}",
            *[f"Warning: {w}" for w in self.warnings],
            *r.reasons,
            "Watch: " + " ".join(r.watch),
        ]
        c = self.confirmation
        if c.get("ran"):
            lines.append(c["verdict"])
        elif c.get("reason"):
            lines.append(f"Confirmation grid not run: {c['reason']}")
        return "\n".join(lines)


# ---------------------------------------------------------------------------------------------
# Data and configs


def resolve_data(data, likelihood="bernoulli", architecture="mlp", key=None, split_seed=0) -> Dataset:
    """A ``Dataset`` from a path (.npy/.npz/.csv), a named dataset, an array, or a Dataset."""
    from .datafile import from_array, load_file

    if isinstance(data, Dataset):
        return data
    if isinstance(data, (str, os.PathLike)):
        if str(data) in DATASETS and not Path(data).exists():
            ds = load_dataset(str(data), split_seed)
            return dataclasses.replace(ds, meta={**ds.meta, "split_seed": split_seed})
        return load_file(data, likelihood, architecture, key=key, split_seed=split_seed)
    if isinstance(data, np.ndarray):
        return from_array(data, likelihood, architecture, split_seed=split_seed)
    raise ValueError(
        f"data={type(data).__name__} is not allowed; allowed: a .npy/.npz/.csv path, one of {', '.join(DATASETS)}, "
        "an array of examples, or a vae_utils.Dataset"
    )


def _check_architecture(architecture: str) -> None:
    if architecture not in ("mlp", "conv"):
        raise ValueError(f"architecture={architecture!r} is not allowed; allowed: mlp, conv")


def _config(data: Dataset, fixed: dict, **fields) -> TrainConfig:
    """A TrainConfig for ``data``. For file data the ``dataset`` field is a placeholder (the largest
    named training set, so TrainConfig's batch-size bound admits the file's batches): ``train``
    receives the Dataset itself, and the advisor's reports name the file."""
    dataset = data.name if data.name in DATASETS else PLACEHOLDER
    return TrainConfig.from_dict({"dataset": dataset, "split_seed": data.meta.get("split_seed", 0), **fixed, **fields})


def _model_config(data: Dataset, fixed: dict):
    return _config(data, fixed).model_config(data.dim, data.likelihood, data.image_shape)


def _data_info(data: Dataset) -> dict:
    m = data.meta
    return {
        "name": data.name,
        "n_train": len(data.train),
        "n_val": len(data.val),
        "n_test": len(data.test),
        "dim": data.dim,
        "likelihood": data.likelihood,
        "image_shape": list(data.image_shape) if data.image_shape else None,
        "array": m.get("array"),
        "sha256": m.get("sha256"),
        "split_seed": m.get("split_seed", 0),
        "split": "70% train, 15% validation, 15% test, shuffled once with split_seed",
    }


def _data_warnings(data: Dataset, fixed: dict) -> list[str]:
    out = []
    if data.likelihood == "gaussian" and fixed.get("decoder_variance", 1.0) is not None:
        sd = float(np.std(data.train))
        if not 0.2 < sd < 5:
            out.append(
                f"The data's standard deviation is {sd:.3g}; a Gaussian decoder with variance "
                f"{fixed.get('decoder_variance', 1.0):g} suits data on a unit scale: standardize them, or "
                "pass config={'decoder_variance': None} to learn it."
            )
    return out


# ---------------------------------------------------------------------------------------------
# Steps


class _Clock:
    """Step timings against the budget, and the progress lines."""

    def __init__(self, budget_s: float, log):
        self.start, self.budget_s, self.log, self.timings = time.perf_counter(), budget_s, log, {}

    @property
    def left_s(self) -> float:
        return self.budget_s - (time.perf_counter() - self.start)

    def done(self, step: str, t0: float, message: str) -> None:
        dt = time.perf_counter() - t0
        self.timings[step] = self.timings.get(step, 0.0) + dt
        self.log(f"advise: {message} ({dt:.1f} s; {time.perf_counter() - self.start:.0f} s of {self.budget_s:.0f})")


def _range_test(data, batch_size, optimizer, *, fixed, seed, settings, clock, warnings, ratios, repeats, **_other):
    """The checked range test at ``batch_size`` (``rangetest.checked_range_test``): ``repeats`` seeds from
    ``seed``, the median break; a break counts only where the advice it sets, ratio(B) x break, is at
    least 10x the test's lowest rate (so a test that breaks at its start is extended downward)."""
    from .rangetest import DEFAULTS, checked_range_test

    t0 = time.perf_counter()
    floor = max(10.0, 10.0 / lr_ratio(optimizer, batch_size, ratios))
    seeds = [seed + k for k in range(repeats)]
    settings = {"min_ratio": floor} | settings
    rt = checked_range_test(data, batch_size, optimizer, _model_config(data, fixed), seeds, **settings)
    rep = rt.repeats
    lr_min = rep["extended"] or (DEFAULTS | settings)["lr_min"]
    if rep["extended"]:
        warnings.append(
            f"The range test ({optimizer}, batch {batch_size}) broke within {floor:.3g}x its lowest rate; it was "
            f"run again from lr {lr_min:.3g} (100x lower)."
        )
    if not rt.found:
        warnings.append(
            f"No divergence rate was found: the range test did not break ({optimizer}, batch {batch_size}, {rep['n']} seeds): the loss did not rise "
            f"between {floor * lr_min:.3g} and {rt.settings['lr_max']:g}; the rate with the lowest loss, "
            f"{rt.lr_lowest:.3g}, stands in for it. Check the data's scale and likelihood."
        )
        rt.lr_break = max(rt.lr_lowest, floor * lr_min) if math.isfinite(rt.lr_lowest) else rt.lr_lowest
    spread = f"{rep['n_found']} of {rep['n']} seeds; range {rep['low']:.3g} to {rep['high']:.3g}"
    clock.done(
        "range_test",
        t0,
        f"range test, {optimizer} at batch {batch_size}: the loss starts to rise at lr {rt.lr_break:.3g} "
        f"(median; {spread}; {rt.steps_run} updates each)",
    )
    return rt


def _short_run(data, batch_size, lr, optimizer, fixed, seed, updates, clock):
    """A short run at the advice's own rate: the checkpoint for the noise scale, and what to watch."""
    from ..core.training import train

    per_epoch = max(1, len(data.train) // batch_size)
    epochs = max(1, round(updates / per_epoch))
    # A large file: a part of one epoch (its first examples; the split is shuffled), and a bounded
    # held-out set, so that the run is its updates, not a whole epoch of millions of rows.
    sizes = {"train_size": min(updates * batch_size, TRAIN_SIZES[PLACEHOLDER]) if updates < per_epoch else None}
    sizes["held_out_size"] = SHORT_HELD_OUT if min(len(data.val), len(data.test)) > SHORT_HELD_OUT else None
    t0 = time.perf_counter()
    config = _config(
        data,
        {**fixed, "eval_k": 100, **sizes},
        batch_size=batch_size,
        learning_rate=lr,
        optimizer=optimizer,
        epochs=epochs,
        seed=seed,
    )
    result = train(config, data)
    m = result.metrics
    keys = ("val_elbo", "train_elbo", "test_elbo", "test_nll", "active_units", "diverged", "samples_per_s")
    out = {k: m[k] for k in keys} | {
        "epochs": epochs,
        "updates": m["steps"],
        "batch_size": batch_size,
        "learning_rate": lr,
        "optimizer": optimizer,
        "latent_dim": config.latent_dim,
        "train_time_s": m["train_time_s"],
        "wall_time_s": m["wall_time_s"],
    }
    clock.done(
        "short_run",
        t0,
        f"short run: {epochs} epochs ({m['steps']} updates) at lr {lr:.3g}, validation "
        f"ELBO {m['val_elbo']:.2f} nats, {m['active_units']} active units",
    )
    return result, out


def _b_simple_summary(e, values: list) -> dict:
    """B_simple's geometric mean and interval (``stats.log_mean``'s estimate ``e``) with the values it summarizes."""
    return {"b_simple": e.estimate, "low": e.low, "high": e.high, "level": e.level, "estimates": values}


def noise_scale_interval(estimate, repeats: int = 5, level: float = 0.95) -> dict:
    """B_simple from ``repeats`` independent estimates: ``estimate(seed)`` returns a dict with
    ``b_simple`` (``noise.noise_scale_from_norms``'s); their geometric mean and a t-interval on
    the log scale (``stats.log_mean``). Non-positive estimates (a noisy |G|^2 below 0: B_simple
    too large to measure with these batch sizes) are counted and left out."""
    from ..claims import stats as S

    runs = [estimate(seed) for seed in range(repeats)]
    values = [float(r["b_simple"]) for r in runs]
    e = S.log_mean(values, level=level, name="B_simple", unit="examples")
    return {
        **_b_simple_summary(e, values),
        "n_positive": int(sum(v > 0 and math.isfinite(v) for v in values)),
        "g2": [float(r.get("g2", math.nan)) for r in runs],
        "trace_sigma": [float(r.get("trace_sigma", math.nan)) for r in runs],
    }


def noise_over_runs(per_run: list[dict], usable=None, level: float = 0.95) -> dict:
    """B_simple over independent short runs: each run's geometric mean (``noise_scale_interval``'s
    ``b_simple``), then their geometric mean with a t-interval on the log scale over the runs
    (``stats.log_mean``), so the interval holds the run-to-run variation, not only the resampling of
    one checkpoint. ``usable`` (one bool per run; default all) leaves out collapsed runs. The
    seed-to-seed spread is ``spread_factor``: exp(SD of the runs' log B_simple), a x/÷ factor."""
    from ..claims import stats as S

    usable = [True] * len(per_run) if usable is None else list(usable)
    values = [float(r["b_simple"]) for r, ok in zip(per_run, usable, strict=True) if ok]
    e = S.log_mean(values, level=level, name="B_simple over runs", unit="examples")
    logs = np.log([v for v in values if v > 0 and math.isfinite(v)])
    return {
        **_b_simple_summary(e, values),
        "n_positive": len(logs),
        "n_runs": len(per_run),
        "n_used": int(sum(usable)),
        "spread_factor": float(np.exp(np.std(logs, ddof=1))) if len(logs) >= 2 else math.nan,
        "runs": per_run,
    }


def checkpoint_noise_scale(
    model, data, seed: int = 0, b_small: int = MIN_BATCH, b_big: int = 512, n_batches: int = 32, repeats: int = 5
) -> dict:
    """B_simple of ``model``'s weights on ``data.train`` as the advisor measures it at its checkpoint:
    ``repeats`` estimates of ``n_batches`` batches at each of two batch sizes (``noise.gradient_noise_scale``,
    batch-sampling seeds from ``seed``), summarised by ``noise_scale_interval``. The batch-size chapter
    measures its checkpoints with it too, so the two pages differ only in the runs they measure."""
    from ..core.noise import gradient_noise_scale

    b_big = min(b_big, len(data.train))
    b_small = min(b_small, b_big // 2)
    out = noise_scale_interval(
        lambda s: gradient_noise_scale(model, data.train, b_small, b_big, n_batches, seed=1000 + 97 * seed + s),
        repeats,
    )
    return out | {"b_small": b_small, "b_big": b_big, "n_batches": n_batches, "repeats": repeats}


def _noise_step(model, data, n_batches, repeats, clock, run: tuple, updates: int) -> dict:
    """B_simple of checkpoint ``run`` = (j, i), the i-th of short run j (batch-sampling seeds from 10 j + i)."""
    t0 = time.perf_counter()
    out = checkpoint_noise_scale(model, data, 10 * run[0] + run[1], MIN_BATCH, 512, n_batches, repeats)
    clock.done(
        "noise_scale",
        t0,
        f"noise scale of run {run[0]} after {updates} updates: B_simple {out['b_simple']:.3g} examples (95% CI "
        f"{out['low']:.3g} to {out['high']:.3g} on this checkpoint; {out['n_positive']} of {repeats} estimates positive)",
    )
    return out


def _watch(short: dict) -> list[str]:
    """What to watch in training, with the short run's numbers as the first reading."""
    gap_iwae = -short["test_nll"] - short["test_elbo"]  # IWAE bound - ELBO (both of log p(x)), >= 0
    gap_fit = short["train_elbo"] - short["val_elbo"]
    return [
        f"Active units (latent dimensions the encoder uses): {short['active_units']} of {short['latent_dim']} after "
        "the short run; a count that falls during training is posterior collapse (try a KL warm-up).",
        f"IWAE vs ELBO: the importance-weighted bound lies {gap_iwae:.2f} nats above the ELBO after the short run; "
        "a growing gap means the encoder lags the decoder.",
        f"Train vs validation ELBO: the training ELBO lies {abs(gap_fit):.2f} nats {'above' if gap_fit >= 0 else 'below'} "
        "the validation ELBO after the short run; a widening gap is overfitting (stop earlier, or shrink the model).",
    ]


def _batch_rule(bs: float, n: int, b: int) -> str:
    """The rule that set the batch size ``b``, with its numbers."""
    cap = batch_range(math.inf, n)[1] if n else b
    if not (math.isfinite(bs) and bs > 0):
        return f"{b}, the geometric middle of the allowed {MIN_BATCH} to {cap} (no usable B_simple)"
    half = bs / 2
    if b == cap and half > cap * math.sqrt(2):
        return (
            f"{b}, the cap: B_simple/2 = {half:.3g} lies above it, and at most 1/8 of the {n} training examples "
            f"({n // 8}) rounded down to a power of two is {cap}"
        )
    if b == MIN_BATCH and half < MIN_BATCH / math.sqrt(2):
        return f"{b}, the smallest batch advised: B_simple/2 = {half:.3g} lies below it"
    return f"{b}, the power of two nearest B_simple/2 = {half:.3g}"


def _batch_uncertainty(noise, n, low, high) -> tuple[int, int] | None:
    """The batch sizes B_simple's interval allows (the rule at each end of it), when they reach beyond the
    advised range [low, high]; else None."""
    lo, hi = noise["low"], noise["high"]
    if not (math.isfinite(lo) and math.isfinite(hi)):
        return None
    allowed = (batch_range(lo, n)[2], batch_range(hi, n)[2])
    return allowed if allowed[0] < low or allowed[1] > high else None


def _recommend(data, noise, rt_probe, rt_at_b, optimizer, ratios, low, high, b) -> Recommendation:
    n = len(data.train)
    bs, lo, hi = noise["b_simple"], noise["low"], noise["high"]
    ratio = lr_ratio(optimizer, b, ratios)
    r = ratios[optimizer]
    how = f"{r:g}" if isinstance(r, (int, float)) else f"{r['at_64']:g} x ({b} / 64)^{r['exponent']:g} = {ratio:.3g}"
    lr = ratio * rt_at_b.lr_break
    rep = rt_at_b.repeats or {"n": 1, "low": rt_at_b.lr_break, "high": rt_at_b.lr_break}
    spread = f"{rep['n']} seeds, {_g(rep['low'])} to {_g(rep['high'])}"
    reasons = [
        f"B_simple, the gradient-noise scale, is {bs:.3g} examples (95% CI {lo:.3g} to {hi:.3g} over "
        f"{noise.get('n_used', 1)} independent short runs; seed-to-seed spread x/÷ {_g(noise.get('spread_factor'))}): "
        "below it, larger batches cut the number of updates almost proportionally; above it, they mostly cost compute.",
        f"Batch sizes from B_simple/4 to B_simple, in powers of two, give {low} to {high} (at least {MIN_BATCH}, at "
        f"most 1/8 of the {n} training examples). The batch size is {_batch_rule(bs, n, b)}.",
        f"At batch {b}, the range test's loss starts to rise at lr {rt_at_b.lr_break:.3g} (median over {spread}); "
        f"the rate is {how} times that rate (the range test's divergence rate): the best rate's ratio to it, "
        f"{RATIO_SOURCE.get(optimizer, 'as measured')}.",
    ]
    outside = extrapolation(optimizer, b) if r == LR_RATIO.get(optimizer) else None  # not for a rule given
    if outside:
        reasons.append(outside)
    allowed = _batch_uncertainty(noise, n, low, high)
    if allowed:
        reasons.append(
            f"The batch size is uncertain: B_simple's interval allows batch sizes from {allowed[0]} to {allowed[1]}, "
            f"wider than the advised {low} to {high}; any of them is defensible."
        )
    if not (noise["n_positive"] >= 2 and math.isfinite(bs)):
        reasons.append("Too few usable B_simple estimates for an interval: the batch range is the whole allowed one.")
    reasons += _settling_reasons(noise)
    if rt_probe.batch_size != b:
        reasons.append(f"(The probe's range test at batch {rt_probe.batch_size} broke at {rt_probe.lr_break:.3g}.)")
    rec = Recommendation(b, (low, high), lr, optimizer, rt_at_b.lr_break, ratio, bs, (lo, hi), reasons)
    rec.batch_allowed = allowed
    return rec


def _settling_reasons(noise: dict) -> list[str]:
    """Where B_simple was read (each run pooled over checkpoints of its last half) and whether it had settled."""
    if not noise.get("curve"):
        return []
    text = f"Each run's B_simple pools its checkpoints: {curve_words(noise)}."
    if still_growing(noise):
        text += (
            " It had not settled: a full-length run's B_simple is likely larger, so the batch size is the low end of "
            "what a long run can use."
        )
    return [text]


def _g(x) -> str:
    return f"{x:.3g}" if isinstance(x, (int, float)) and math.isfinite(x) else "n/a"


# ---------------------------------------------------------------------------------------------
# The advisor


def _check_args(budget_minutes, optimizers, fixed):
    if isinstance(budget_minutes, bool) or not isinstance(budget_minutes, (int, float)) or not budget_minutes > 0:
        raise ValueError(f"budget_minutes={budget_minutes!r} is not allowed; allowed: a number of minutes > 0")
    if isinstance(optimizers, str):
        optimizers = (optimizers,)
    bad = [o for o in optimizers if o not in OPTIMIZERS] or ([] if optimizers else ["(none)"])
    if bad:
        raise ValueError(
            f"optimizers={list(optimizers)!r} is not allowed; allowed: one or more of {', '.join(OPTIMIZERS)}"
        )
    unknown = sorted(set(fixed) - set(HELD_FIXED))
    if unknown:
        raise ValueError(f"config key {unknown[0]!r} is not allowed; allowed: {', '.join(HELD_FIXED)}")
    return tuple(optimizers)


def _check_options(out, workers, seeds: dict) -> None:
    """The options that used to fail only after the measurements (losing the advice): ``out`` must be
    a folder or a new path in one, ``workers`` 1..MAX_PROCESSES, the seeds 0..MAX_SEED."""
    from ..core.config import MAX_SEED
    from ..cpuslots import check_processes

    for name, v in seeds.items():
        if isinstance(v, bool) or not isinstance(v, (int, np.integer)) or not 0 <= v <= MAX_SEED:
            raise ValueError(f"{name}={v!r} is not allowed; allowed: an integer from 0 to {MAX_SEED}")
    if workers is not None:
        check_processes("workers", workers)
    if out is not None:
        target = Path(out)
        if target.exists() and not target.is_dir():
            raise ValueError(f"out={str(out)!r} is a file; allowed: a folder for the report (created when missing)")
        parent = next((p for p in (target, *target.parents) if p.exists()), Path("."))
        if not parent.is_dir():
            raise ValueError(f"out={str(out)!r} lies under the file {parent}; allowed: a folder for the report")


def _stderr(message: str) -> None:
    print(message, file=sys.stderr, flush=True)


def advise(
    data,
    likelihood: str = "bernoulli",
    architecture: str = "mlp",
    budget_minutes: float = 5.0,
    out=None,
    *,
    key: str | None = None,
    optimizers=("adam",),
    config: dict | None = None,
    split_seed: int = 0,
    seed: int = 0,
    probe_batch: int = 64,
    range_test: dict | None = None,
    range_repeats: int = 3,
    short_updates: int = 300,
    short_seeds: int = 3,
    noise_repeats: int = 5,
    noise_batches: int = 32,
    confirm: bool = True,
    grid_seeds=(0, 1, 2),
    grid_epochs: int = 30,
    delta: float = DELTA,
    lr_ratios: dict | None = None,
    store=None,
    workers: int | None = None,
    progress: bool = True,
) -> Advice:
    """Measure, then recommend a batch size and a learning rate for ``data`` (module docstring).

    ``config``: TrainConfig fields held fixed (HELD_FIXED); ``range_test``: overrides of
    ``rangetest.DEFAULTS``; ``range_repeats``: seeds per range test; ``short_seeds``: short runs for
    B_simple; ``lr_ratios``: overrides of ``LR_RATIO``; ``store``: the confirmation sweep's store;
    ``out``: a folder for the report. The short runs are shortened to fit the budget, and the
    confirmation grid runs only when its estimated cost fits what is left."""
    fixed, optimizers = _checked(
        architecture, budget_minutes, out, optimizers, config, seed, split_seed, workers, range_repeats, short_seeds
    )
    ratios = LR_RATIO | dict(lr_ratios or {})
    clock = _Clock(60.0 * budget_minutes, _stderr if progress else (lambda m: None))
    opts = dict(fixed=fixed, seed=seed, settings=dict(range_test or {}), clock=clock, warnings=[], ratios=ratios)
    opts.update(repeats=range_repeats, short_seeds=short_seeds)
    # 1-3) the split, the range tests at the probe batch size, the short run and the noise scale
    data, warnings = _load(data, likelihood, architecture, key, split_seed, fixed, clock)
    probe = int(min(probe_batch, max(MIN_BATCH, len(data.train) // 10)))
    tests, short, noise = _measure(data, probe, optimizers, ratios, short_updates, noise_batches, noise_repeats, opts)
    warnings += short.pop("warnings")
    # 4) the recommendation, with range tests at the recommended batch size
    rec, at_b = _recommend_all(data, noise, short, tests, probe, optimizers, ratios, opts)
    # 5) the confirmation grid, when asked and affordable (its best replaces a beaten advice); then the report
    confirmation = {"ran": False, "reason": "not asked (confirm=False)"}
    if confirm:
        confirmation = _follow_confirmation(
            rec, _confirm(data, fixed, rec, short, grid_seeds, grid_epochs, delta, store, workers, clock)
        )
    range_tests = list(tests.values()) + [t for o, t in at_b.items() if t is not tests[o]]
    warnings += opts["warnings"]
    info, timings = _data_info(data), clock.timings
    advice = Advice(info, architecture, range_tests, noise, short, rec, confirmation, timings, clock.budget_s, warnings)
    return _finish(advice, out, clock)


def _checked(
    architecture, budget_minutes, out, optimizers, config, seed, split_seed, workers, range_repeats, short_seeds
):
    """Every argument checked before anything is measured: (the fields held fixed, the optimizers)."""
    fixed = dict(config or {})
    optimizers = _check_args(budget_minutes, optimizers, fixed)
    for name, v in (("range_repeats", range_repeats), ("short_seeds", short_seeds)):
        if isinstance(v, bool) or not isinstance(v, int) or not 1 <= v <= 9:
            raise ValueError(f"{name}={v!r} is not allowed; allowed: an integer from 1 to 9")
    _check_options(out, workers, {"seed": seed, "split_seed": split_seed})
    _check_architecture(architecture)
    if architecture != "mlp":
        fixed["architecture"] = architecture
    return fixed, optimizers


def _measure(data, probe, optimizers, ratios, short_updates, noise_batches, noise_repeats, opts):
    """Steps 2-3: the range tests at the probe batch size, ``short_seeds`` independent short runs at the
    rate the advice would use, and the noise scale on each run's weights (``noise_over_runs``; collapsed
    runs left out). Returns (range tests, the first run's summary with every run's, noise)."""
    tests = {o: _range_test(data, probe, o, **opts) for o in optimizers}
    opt, clock = optimizers[0], opts["clock"]
    if not math.isfinite(tests[opt].lr_break):  # never a derived "learning_rate=nan": name the data
        raise ValueError(
            f"{data.name}: the loss was not finite at any learning rate of the range test; check the data's scale "
            "(standardize it) and its likelihood"
        )
    lr_safe = lr_ratio(opt, probe, ratios) * tests[opt].lr_break
    k = opts["short_seeds"]
    updates = _updates_within_budget(short_updates, tests[opt], clock, runs=k * sum(CHECKPOINTS))
    runs, per_run, warnings = [], [], []
    repeats = max(2, math.ceil(noise_repeats / len(CHECKPOINTS)))
    for j in range(k):
        seed, ckpts = opts["seed"] + j, []
        for i, n in enumerate(checkpoint_updates(updates, max(1, len(data.train) // probe))):  # last: the short run
            result, short = _short_run(data, probe, lr_safe, opt, opts["fixed"], seed, n, clock)
            ckpt = _noise_step(result.model, data, noise_batches, repeats, clock, (j, i), short["updates"])
            ckpts.append(ckpt | {"updates": short["updates"]})
        per_run.append(pooled_b_simple(ckpts) | {"checkpoints": ckpts})
        short["b_simple"], short["seed"] = per_run[-1]["b_simple"], seed
        short["collapsed"] = short["active_units"] <= short["latent_dim"] // 8  # 0 or 1 of 8
        runs.append(short)
    usable = [not r["collapsed"] for r in runs]
    noise = noise_over_runs(per_run, usable) | noise_curve(per_run, usable)
    noise.update({key: per_run[0]["checkpoints"][0][key] for key in ("b_small", "b_big", "n_batches", "repeats")})
    warnings += _run_warnings(runs, lr_safe)
    short = dict(runs[0], runs=[dict(r) for r in runs], warnings=warnings)
    return tests, short, noise


def _run_warnings(runs, lr) -> list[str]:
    """A diverged short run, and collapsed ones (their B_simple is left out: it measures a model that
    does not use its latent space)."""
    out = []
    if any(r["diverged"] for r in runs):
        out.append(f"A short run at lr {lr:.3g} diverged: its noise scale is measured on its last weights.")
    collapsed = [r for r in runs if r["collapsed"]]
    if collapsed:
        units = ", ".join(f"{r['active_units']} of {r['latent_dim']}" for r in collapsed)
        out.append(
            f"Posterior collapse: {len(collapsed)} of {len(runs)} short runs ended with few active units ({units}); "
            "their B_simple is not used. Retry with a KL warm-up (config beta below 1 at first), a smaller "
            "latent_dim, or check that the likelihood suits the data."
        )
    return out


def _recommend_all(data, noise, short, tests, probe, optimizers, ratios, opts):
    """Step 4: the batch range from B_simple, range tests at the recommended batch size, the rate for
    the first optimizer and the others' rates as alternatives. Returns (Recommendation, range tests at B)."""
    low, high, b = batch_range(noise["b_simple"], len(data.train))
    at_b = {o: tests[o] if b == probe else _range_test(data, b, o, **opts) for o in optimizers}
    t0, opt = time.perf_counter(), optimizers[0]
    rec = _recommend(data, noise, tests[opt], at_b[opt], opt, ratios, low, high, b)
    rec.watch = _watch(short)
    rec.alternatives = {
        o: {"learning_rate": lr_ratio(o, b, ratios) * at_b[o].lr_break, "lr_break": at_b[o].lr_break}
        for o in optimizers[1:]
    }
    msg = f"advice: batch {b} (range {low}-{high}), {opt} at lr {rec.learning_rate:.3g}"
    opts["clock"].done("recommendation", t0, msg)
    return rec, at_b


def _follow_confirmation(rec: Recommendation, c: dict) -> dict:
    """When the confirmation grid's best beat the measured advice by more than delta beyond the seeds'
    noise on fresh seeds (``confirm.fresh_verdict``: "beaten"), the grid's best becomes the advice; the measured one is kept
    in ``rec.headline["measured"]`` and the reason comes first. Returns ``c``."""
    if c.get("decision") != "beaten":
        return c
    b = c["best"]
    measured = {"batch_size": rec.batch_size, "learning_rate": rec.learning_rate}
    reason = (
        f"The confirmation grid's best cell (batch {b['batch_size']}, lr {b['learning_rate']:.3g}) beat the "
        f"measured advice (batch {rec.batch_size}, lr {rec.learning_rate:.3g}) by {c['gap']:.2f} nats of validation "
        f"ELBO on {len(c['fresh_seeds'])} fresh seeds ({c['level']:.1%} CI {c['gap_low']:.2f} to {c['gap_high']:.2f}, "
        f"paired over seeds), more than delta = {c['delta']:g} nats: it is the advice. The reasons below are the "
        "measured advice's."
    )
    rec.headline = {"measured": measured, "source": "confirmation grid", "reason": reason}
    rec.batch_size, rec.learning_rate = b["batch_size"], b["learning_rate"]
    rec.lr_ratio = rec.learning_rate / rec.lr_break
    rec.reasons.insert(0, reason)
    return c


def _load(data, likelihood, architecture, key, split_seed, fixed, clock):
    """Read, validate and split the data (refused before TensorFlow is imported), then import TensorFlow
    (timed as a step of its own)."""
    import importlib

    t0 = time.perf_counter()
    data = resolve_data(data, likelihood, architecture, key, split_seed)
    t_split = time.perf_counter() - t0
    t0 = time.perf_counter()
    for module in ("..core.noise", ".rangetest", "..core.training"):
        importlib.import_module(module, __package__)
    clock.done("imports", t0, "TensorFlow and the training code imported")
    t0 = time.perf_counter() - t_split
    clock.done(
        "split",
        t0,
        f"data {data.name}: {len(data.train)} train / {len(data.val)} validation / "
        f"{len(data.test)} test examples of {data.dim} features, {data.likelihood}",
    )
    return data, _data_warnings(data, fixed)


def _updates_within_budget(updates: int, rt, clock, runs: int = 1) -> int:
    """Each short run's updates, cut so that the ``runs`` of them take at most a third of the budget left
    (at the range test's rate of updates, tracing included: an overestimate); at least 20."""
    per_s = rt.steps_run / max(rt.wall_time_s, 1e-3)
    return int(max(20, min(updates, per_s * max(clock.left_s, 0.0) / (3 * runs))))


def _finish(advice: Advice, out, clock) -> Advice:
    """The report (when ``out``), the total time, and a warning when the budget was exceeded."""
    if time.perf_counter() - clock.start > clock.budget_s:
        over = time.perf_counter() - clock.start - clock.budget_s
        advice.warnings.append(f"The measurements alone took {over:.0f} s more than the budget.")
    advice.total_s = time.perf_counter() - clock.start
    if out is not None:
        from .report import write_report

        t0 = time.perf_counter()
        advice.files = write_report(advice, out)  # its JSON holds the total before the report
        clock.done("report", t0, f"report written to {out}")
    clock.log(f"advise: total {time.perf_counter() - clock.start:.1f} s of a {clock.budget_s:.0f} s budget")
    advice.total_s = time.perf_counter() - clock.start
    return advice


# ---------------------------------------------------------------------------------------------
# Command line


def add_parser(subparsers) -> None:
    """Register ``advise`` on the ``python -m vae_utils`` command line (``cli.build_parser``)."""
    p = subparsers.add_parser("advise", help="measure, then recommend a batch size and learning rate for your data")
    p.add_argument("--data", required=True, metavar="FILE", help=".npy, .npz or .csv of examples x features, or digits")
    p.add_argument(
        "--key", metavar="NAME", help="the array of an .npz file to use (default: the only one, or x/data/...)"
    )
    p.add_argument("--likelihood", choices=("bernoulli", "gaussian"), default="bernoulli")
    p.add_argument("--architecture", choices=("mlp", "conv"), default="mlp")
    p.add_argument("--budget-minutes", type=float, default=5.0, metavar="N", help="default: 5")
    p.add_argument("--out", metavar="DIR", help="write advice.md/.html/.json and the range-test figure here")
    p.add_argument("--optimizers", nargs="+", default=["adam"], choices=OPTIMIZERS, help="the first is recommended")
    p.add_argument("--no-confirm", action="store_true", help="skip the confirmation grid")
    p.add_argument("--seed", type=int, default=0, help="weights, batches and noise of the measurements")
    p.add_argument("--split-seed", type=int, default=0, help="the train/validation/test split")
    p.add_argument("--latent-dim", type=int, help="default: 8")
    p.add_argument("--hidden-units", metavar="W[,W...]", help="encoder widths, e.g. 256 or 512,256 (default: 256)")
    p.add_argument("--store", metavar="DIR", help="results store of the confirmation sweep (named datasets)")
    p.add_argument("--workers", type=int, help="sweep workers (default: one per core)")
    p.set_defaults(func=_advise_command)


def _check_flags(args) -> None:
    """What ``advise`` checks before measuring, checked first and named by the flags the user typed."""
    checks = (
        ("--seed", {"seeds": {"seed": args.seed}}),
        ("--split-seed", {"seeds": {"split_seed": args.split_seed}}),
        ("--workers", {"workers": args.workers}),
        ("--out", {"out": args.out}),
    )
    for flag, given in checks:
        try:
            _check_options(**({"out": None, "workers": None, "seeds": {}} | given))
        except ValueError as e:
            name = flag[2:].replace("-", "_")
            raise ValueError(str(e).replace(f"{name}=", f"{flag}=", 1)) from None


def _advise_command(args) -> int:
    import json

    _check_flags(args)

    config = {k: v for k, v in (("latent_dim", args.latent_dim), ("hidden_units", args.hidden_units)) if v is not None}
    advice = advise(
        args.data,
        args.likelihood,
        args.architecture,
        args.budget_minutes,
        args.out,
        key=args.key,
        optimizers=tuple(args.optimizers),
        config=config,
        split_seed=args.split_seed,
        seed=args.seed,
        confirm=not args.no_confirm,
        store=args.store,
        workers=args.workers,
    )
    print(advice.summary())
    if args.out is None:
        r = advice.recommendation
        print(
            json.dumps(
                {
                    "batch_size": r.batch_size,
                    "batch_range": r.batch_range,
                    "learning_rate": r.learning_rate,
                    "optimizer": r.optimizer,
                }
            )
        )
    return 0
