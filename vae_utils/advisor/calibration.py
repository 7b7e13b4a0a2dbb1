"""The advisor's learning-rate rule as measured: ratio(B) = best rate / range-test break = at_64 (B/64)^exponent,
pooled over several data sets (``benchmarks/advisor_ratio.py --pool`` writes ``calibration.json`` beside
this module; ``rules.LR_RATIO`` reads it, so the numbers live in one place).

    from vae_utils.advisor import calibration
    cal = calibration.load()           # the pooled rule, its intervals, one row per data set and batch size
    calibration.per_dataset(cal)       # a table: each data set's own fit and how far the pooled rule lands
    calibration.pool(points)           # the fit itself, from {dataset, batch_size, ratio} points
    calibration.holdout()              # the advice on data kept aside from the fit, against their own grids

The pooled fit is two-stage (a random-effects summary): each data set's own least-squares line of
log2 ratio on log2(B / 64) gives (a_d, e_d); the rule is their mean, each data set one vote, with a
t-interval over data sets (k - 1 degrees of freedom), so the interval carries the data-to-data
variation, not only the scatter within one data set. A data set with one usable batch size adds its
ratio at 64 only (carried there by the other data sets' mean exponent), not an exponent. ``between_sd`` is the SD of the a_d in log2
units, and ``predict_low``/``predict_high`` bound the ratio at 64 for a new data set
(mean +- t sd sqrt(1 + 1/k)). The one-stage least squares over all points (``ols``) is kept beside it.
"""

from __future__ import annotations

import functools
import json
import math
from pathlib import Path

import numpy as np

__all__ = [
    "PATH",
    "NAMES",
    "name",
    "path",
    "load",
    "pool",
    "fit_line",
    "per_dataset",
    "rule",
    "values",
    "scope",
    "figure",
    "HOLDOUT",
    "holdout",
    "holdout_values",
    "holdout_scope",
]

PATH = Path(__file__).with_name("calibration.json")  # Adam's; another optimizer's: ``path(optimizer)``
HOLDOUT = PATH.with_name("holdout.json")  # the advice on the kept-aside sets (benchmarks/advisor_check.py --summary)
NAMES = {  # the data sets' names for readers
    "shapes8": "shapes, 8×8",
    "shapes16": "shapes, 16×16",
    "shapes8 (conv)": "shapes, 8×8, conv VAE",
    "shapes16 (conv)": "shapes, 16×16, conv VAE",
    "manifold24": "24-d manifold",
    "fashion_mnist": "Fashion-MNIST",
    "patches8": "photo patches, 8×8",
    "patches16": "photo patches, 16×16",
    "tabular": "breast-cancer table",
    "diabetes": "diabetes table",
}


def path(optimizer: str = "adam") -> Path:
    """The calibration file of ``optimizer``: ``calibration.json`` for Adam, ``calibration_<optimizer>.json`` else."""
    return PATH if optimizer == "adam" else PATH.with_name(f"calibration_{optimizer}.json")


def name(label: str) -> str:
    """A calibration data set's name for readers."""
    return NAMES.get(label, label)


def fit_line(batch_sizes, ratios) -> tuple[float, float]:
    """(log2 ratio at B = 64, exponent): least squares of log2 ratio on log2(B / 64)."""
    x = np.log2(np.asarray(batch_sizes, float) / 64)
    y = np.log2(np.asarray(ratios, float))
    if len(set(x)) < 2:
        return float(y.mean()), math.nan
    slope, intercept = np.polyfit(x, y, 1)
    return float(intercept), float(slope)


def _t_interval(values, level=0.95) -> tuple[float, float, float, float]:
    """(mean, low, high, sd) of ``values`` with a t-interval; NaN bounds for fewer than two."""
    from scipy import stats

    v = np.asarray([x for x in values if math.isfinite(x)], float)
    m = float(v.mean())
    if len(v) < 2:
        return m, math.nan, math.nan, math.nan
    sd = float(v.std(ddof=1))
    h = stats.t.ppf(0.5 + level / 2, len(v) - 1) * sd / math.sqrt(len(v))
    return m, m - h, m + h, sd


def pool(points, level: float = 0.95) -> dict:
    """The pooled rule from ``points`` ({dataset, batch_size, ratio} each): module docstring."""
    from scipy import stats

    by = {}
    for p in points:
        by.setdefault(p["dataset"], []).append(p)
    fits = {d: fit_line([p["batch_size"] for p in ps], [p["ratio"] for p in ps]) for d, ps in by.items()}
    slopes = [f[1] for f in fits.values() if math.isfinite(f[1])]
    for d, (_, e) in list(fits.items()):  # one batch size: its ratio at 64 through the others' mean exponent
        if not math.isfinite(e) and slopes:
            x, y = np.log2([p["batch_size"] / 64 for p in by[d]]), np.log2([p["ratio"] for p in by[d]])
            fits[d] = (float(np.mean(y - np.mean(slopes) * x)), math.nan)
    a, a_low, a_high, a_sd = _t_interval([f[0] for f in fits.values()], level)
    e, e_low, e_high, e_sd = _t_interval([f[1] for f in fits.values()], level)
    k = len(fits)
    t = stats.t.ppf(0.5 + level / 2, k - 1) if k > 1 else math.nan
    spread = t * a_sd * math.sqrt(1 + 1 / k) if k > 1 else math.nan
    ols = fit_line([p["batch_size"] for p in points], [p["ratio"] for p in points])
    return {
        "at_64": 2**a,
        "at_64_low": 2**a_low,
        "at_64_high": 2**a_high,
        "exponent": e,
        "exponent_low": e_low,
        "exponent_high": e_high,
        "between_sd": a_sd,  # log2 units: the data sets' own ratios at 64 around the rule
        "exponent_sd": e_sd,
        "predict_low": 2 ** (a - spread),
        "predict_high": 2 ** (a + spread),
        "n_datasets": k,
        "n_points": len(points),
        "level": level,
        "ols": {"at_64": 2 ** ols[0], "exponent": ols[1]},
        "datasets": {d: {"at_64": 2 ** f[0], "exponent": f[1]} for d, f in fits.items()},
    }


@functools.cache
def load(path: str | None = None) -> dict:
    """The committed calibration (``calibration.json``): {"rule": pool(...), "points": [...], ...}."""
    return json.loads(Path(path or PATH).read_text(encoding="utf-8"))


def rule(path: str | None = None) -> dict:
    """{"at_64": ..., "exponent": ...}: the pooled rule (Adam's, or the one in ``path``), as ``rules.LR_RATIO`` holds it."""
    r = load(path)["rule"]
    return {"at_64": round(r["at_64"], 4), "exponent": round(r["exponent"], 3)}


def per_dataset(cal: dict | None = None):
    """One row per data set and batch size: its measured ratio, the pooled rule's advice over the grid's best
    rate, the same for the rule fitted without that data set (leave one out), and the validation ELBO the
    pooled advice loses against the grid's best (read off the grid's mean curve, linear in log rate), in
    nats and in seed-to-seed SDs. Columns in words, for a table."""
    import pandas as pd

    cal = cal or load()
    df = pd.DataFrame(cal["points"])
    if df.empty:
        return df
    return pd.DataFrame(
        {
            "data set": df.dataset.map(name),
            "likelihood": df.likelihood,
            "batch size": df.batch_size,
            "best rate / break": df.ratio,
            "advised rate / best rate": df.pooled_over_best,
            "the same, rule fitted without this data set": df.loo_over_best,
            "ELBO lost (nats)": df.pooled_gap_nats,
            "ELBO lost (seed-to-seed SDs)": df.pooled_gap_sds,
            "beside a diverged rate": (
                df["pooled_beside_divergence"] if "pooled_beside_divergence" in df else pd.Series(False, index=df.index)
            ).map({True: "yes", False: "no"}),
        }
    )


def values(cal: dict | None = None) -> dict:
    """The pooled rule's numbers for prose (``verdicts.publish_values("cal", ...)``)."""
    cal = cal or load()
    r = cal["rule"]
    pts = cal["points"]
    far = [max(p["pooled_over_best"], 1 / p["pooled_over_best"]) for p in pts]
    read = [p for p in pts if not p.get("pooled_beside_divergence")]  # the losses read between two stable rates
    return {
        "at-64": r["at_64"],
        "at-64-low": r["at_64_low"],
        "at-64-high": r["at_64_high"],
        "exponent": r["exponent"],
        "exponent-low": r["exponent_low"],
        "exponent-high": r["exponent_high"],
        "predict-low": r["predict_low"],
        "predict-high": r["predict_high"],
        "n-datasets": r["n_datasets"],
        "within-2x": sum(f <= 2 for f in far),
        "n-points": len(pts),
        "batch-low": min((p["batch_size"] for p in pts), default=math.nan),
        "batch-high": max((p["batch_size"] for p in pts), default=math.nan),
        "worst-factor": max(far) if far else math.nan,
        "max-gap-sds": max((p["pooled_gap_sds"] for p in read), default=math.nan),
        "n-beside-divergence": len(pts) - len(read),
    }


def scope(cal: dict | None = None) -> dict:
    """A caption's provenance: the data sets, budgets and seeds the calibration rests on."""
    cal = cal or load()
    runs = cal["runs"]
    sets = ", ".join(f"{name(r['label'])} ({r['n_train']:,} training examples)" for r in runs)
    epochs = sorted({r["epochs"] for r in runs})
    seeds = max((len(r["seeds"]) for r in runs), default=0)
    cells = sum(len(r["rows"]) for r in runs)
    from ..core.optimizers import OPTIMIZERS

    optimizer = OPTIMIZERS[cal.get("optimizer", "adam")].words
    text = (
        f"{sets}; {optimizer}, {'/'.join(map(str, epochs))} epochs, up to {seeds} seeds per grid cell, "
        f"{cells} batch sizes in all (benchmarks/advisor_ratio.py)"
    )
    return {"scope": text}


def figure(cal: dict | None = None):
    """Best rate / break against the batch size: each data set's points and line, and the pooled rule."""
    import matplotlib.pyplot as plt

    from ..plots import log_ticks

    cal = cal or load()
    r = cal["rule"]
    fig, ax = plt.subplots()
    batches = set()
    for run, marker in zip(cal["runs"], "osD^vP*X" * 4, strict=False):  # colours repeat: markers tell them apart
        rows = [x for x in run["rows"] if x["interior"] and math.isfinite(x["ratio"])]
        batches |= {x["batch_size"] for x in rows}
        if rows:
            xy = [x["batch_size"] for x in rows], [x["ratio"] for x in rows]
            ax.plot(*xy, marker=marker, lw=1, label=name(run["label"]))
    bb = np.geomspace(min(batches, default=16), max(batches, default=512), 50)
    line = r["at_64"] * (bb / 64) ** r["exponent"]
    ax.plot(bb, line, color="0.1", lw=2.2, label="the pooled rule")
    band = (r["predict_low"] / r["at_64"], r["predict_high"] / r["at_64"])
    ax.fill_between(bb, line * band[0], line * band[1], color="0.5", alpha=0.18, label="a new data set (95%)")
    ax.set(xscale="log", yscale="log", xlabel="batch size", ylabel="best learning rate / range-test break")
    log_ticks(ax.xaxis, sorted(batches))
    log_ticks(ax.yaxis, grid=False)
    return fig


def holdout(path: str | None = None):
    """The advice on the data sets kept aside from the calibration (``HOLDOUT``): one row per data set and
    advisor seed, the advice against that data set's own grid (its best rate at the advised batch size,
    interpolated in log rate, and the validation ELBO the advice loses against the grid's best cell, in
    nats and in seed-to-seed SDs); then the rows of the sets checked again with the advisor's confirmation
    on, with how it decided. Columns in words, for a table."""
    import pandas as pd

    sets = load(path or HOLDOUT)["sets"]
    runs = [(s, r, "off") for s in sets for r in s["rows"]]
    runs += [(s, r, CONFIRMATION[r.get("confirmation")]) for s in sets for r in _confirmed_rows(s)]
    rows = [
        {
            "data set": name(s["name"]),
            "likelihood": s["likelihood"],
            "confirmation": how,
            "advisor seed": r["seed"],
            "batch size": r["batch_size"],
            "advised rate": r["learning_rate"],
            "grid's best rate": r["grid_best_lr_at_batch"],
            "advised rate / best rate": r["advice_over_best"],
            "ELBO lost (nats)": r["gap_nats"],
            "ELBO lost (seed-to-seed SDs)": r["gap_sds"],
        }
        for s, r, how in runs
    ]
    return pd.DataFrame(rows)


CONFIRMATION = {  # how the advisor's confirmation decided, for a table
    "beaten": "grid's best adopted",
    "confirmed": "confirmed",
    "best": "confirmed",
    "undecided": "undecided",
    None: "not run",
}


def _confirmed_rows(s: dict) -> list:
    return (s.get("with_confirmation") or {}).get("rows", [])


def holdout_values(path: str | None = None) -> dict:
    """The kept-aside check's numbers for prose, keys prefixed ``held-`` (chapter 11 publishes them with the
    rule's, ``verdicts.publish_values("cal", values() | holdout_values())``): advices within a factor of 2 of
    the grid's best rate, within one seed-to-seed SD of its best ELBO, the farthest factor."""
    data = load(path or HOLDOUT)
    rows = [r for s in data["sets"] for r in s["rows"]]
    far = [max(r["advice_over_best"], 1 / r["advice_over_best"]) for r in rows]
    values = {
        "n-datasets": len(data["sets"]),
        "n-advices": len(rows),
        "within-2x": sum(f <= 2 for f in far),
        "within-1sd": sum(r["gap_sds"] <= 1 for r in rows),
        "worst-factor": max(far),
        "max-gap-sds": max(r["gap_sds"] for r in rows),
        "grid-seeds": max(len(s["seeds"]) for s in data["sets"]),
    }
    return {f"held-{k}": v for k, v in values.items()} | _confirmed_values(data["sets"])


def _confirmed_values(sets) -> dict:
    """The kept-aside sets checked again with the advisor's confirmation on (``with_confirmation``): which
    sets, how the confirmation decided, and the advices within 2x and one SD of the grid's best then."""
    checked = [s for s in sets if _confirmed_rows(s)]
    rows = [r for s in checked for r in _confirmed_rows(s)]
    far = [max(r["advice_over_best"], 1 / r["advice_over_best"]) for r in rows]
    decided = [r.get("confirmation") for r in rows]
    values = {
        "sets": " and ".join(f"the {name(s['name'])}" for s in checked) or "none",
        "delta": max((s["with_confirmation"]["delta"] for s in checked), default=math.nan),
        "budget-minutes": max((s["with_confirmation"]["budget_minutes"] for s in checked), default=math.nan),
        "n-advices": len(rows),
        "beaten": decided.count("beaten"),
        "confirmed": decided.count("confirmed") + decided.count("best"),
        "undecided": decided.count("undecided"),
        "within-2x": sum(f <= 2 for f in far),
        "within-1sd": sum(r["gap_sds"] <= 1 for r in rows),
    }
    return {f"held-confirm-{k}": v for k, v in values.items()}


def holdout_scope(path: str | None = None) -> dict:
    """The kept-aside check's provenance for a caption: the data sets, grids, seeds and the rule checked."""
    sets = load(path or HOLDOUT)["sets"]

    def grid(s):
        lrs, bs = s["learning_rates"], s["batch_sizes"]
        return (
            f"{name(s['name'])} ({s['n_train']:,} training examples; batch sizes {', '.join(map(str, bs))} x rates "
            f"{min(lrs):g} to {max(lrs):g}, each twice the last, x {len(s['seeds'])} seeds; rule "
            f"{s['rule']['at_64']:.3g} (B/64)^{s['rule']['exponent']:.2f})"
        )

    epochs = "/".join(map(str, sorted({s["epochs"] for s in sets})))
    return {"scope": f"{'; '.join(map(grid, sets))}; Adam, {epochs} epochs (benchmarks/advisor_check.py)"}
