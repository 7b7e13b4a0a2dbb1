"""Calibration of the advisor's learning-rate rule: the best rate over the range test's breaking point.

    .venv/bin/python benchmarks/advisor_ratio.py --json results/advisor_ratio/digits.json          # Adam, digits
    .venv/bin/python benchmarks/advisor_ratio.py --dataset fashion_mnist --train-size 1000 --held-out-size 1000 \
        --json results/advisor_ratio/fashion_mnist.json
    .venv/bin/python benchmarks/advisor_ratio.py --dataset shapes16 --architecture conv --train-size 1000 ...
    .venv/bin/python benchmarks/advisor_ratio.py --pool results/advisor_ratio/*.json   # -> vae_utils/advisor/calibration.json
    .venv/bin/python benchmarks/advisor_ratio.py --pool results/advisor_ratio/momentum/*.json   # -> calibration_momentum.json

Any registered dataset (``vae_utils.core.data.REGISTRY``: digits, fashion_mnist when installed, ...) and
the generated ones of ``calibration_data.py`` (shapes8, shapes16: one kind of image at two resolutions;
manifold24: standardized continuous data); ``--train-size``/``--held-out-size`` keep the first n of the
splits (the range tests train on the same examples), ``--architecture conv`` the conv VAE.

1. A grid trained in this process (one TensorFlow thread by default; the generated datasets are
   registered here only, so papermill sweeps could not load them): batch sizes x learning rates
   (each twice the last) x seeds, 30 epochs, the seeds of a cell trained together (``train_seeds``).
   Each cell is cached as JSON under ``results/advisor_ratio/cache`` (keyed by its settings and
   ``provenance.training_version``). A cell with a diverged seed counts as the worst.
2. For each batch size, the best learning rate by the mean validation ELBO over seeds, interpolated
   in log rate (``analysis.best_lr``), and the rates whose mean lies within ``--delta`` nats.
3. For each batch size, the range test's breaking point as the advisor measures it
   (``rangetest.checked_range_test``: the median over ``--rt-seeds``, extended downward when it
   broke at its start).
4. The ratio best / break per batch size, and this data set's line log2 ratio = a + e log2(B/64).

``--pool`` fits the rule over several of these JSONs (``calibration.pool``: each data set's own line,
then their mean with a t-interval over data sets and the between-data-set SD), evaluates the pooled
rule and the rule fitted without each data set (leave one out) on each data set's grid (the advised
rate's validation ELBO read off the grid's mean curve, linear in log rate), and writes
the optimizer's calibration file (``calibration.path``: ``vae_utils/advisor/calibration.json`` for Adam,
``calibration_momentum.json`` for SGD with momentum; ``--out``), which ``rules.LR_RATIO`` reads.
"""

from __future__ import annotations

import argparse
import hashlib
import json
import math
import os
import sys
import time
from pathlib import Path

import numpy as np

sys.path.insert(0, str(Path(__file__).resolve().parent))
import calibration_data  # noqa: F401  (registers the generated datasets)

from vae_utils import load_dataset
from vae_utils.advisor import calibration as C
from vae_utils.claims import analysis as A
from vae_utils.core.config import TrainConfig
from vae_utils.core.data import subsample

BATCH_SIZES = [16, 64, 256]
ADAM_LRS = [5e-4, 1e-3, 2e-3, 4e-3, 8e-3, 1.6e-2, 3.2e-2]
CACHE = Path(__file__).resolve().parents[1] / "results" / "advisor_ratio" / "cache"


def set_threads(n: int) -> None:
    """TensorFlow's intra- and inter-op threads (before its first op)."""
    import tensorflow as tf

    tf.config.threading.set_intra_op_parallelism_threads(n)
    tf.config.threading.set_inter_op_parallelism_threads(n)


def _finite(vals) -> list:
    """Validation ELBOs for JSON: a diverged seed's (NaN, or None as read back from the cache) is None."""
    return [v if v is not None and math.isfinite(v) else None for v in vals]


def train_cell(base: dict, batch_size: int, lr: float, seeds, data=None, cache=CACHE) -> list[float]:
    """Validation ELBOs of one grid cell, one per seed (NaN: diverged); cached as JSON."""
    from vae_utils.core.training import train_seeds
    from vae_utils.provenance import training_version

    cell = {**base, "batch_size": int(batch_size), "learning_rate": float(lr)}
    key = json.dumps(
        {**cell, "seeds": list(seeds), "data": (data.meta.get("sha256") if data else None)}, sort_keys=True
    )
    path = Path(cache) / (hashlib.sha256((key + training_version()).encode()).hexdigest()[:16] + ".json")
    if path.is_file():
        return json.loads(path.read_text())["val_elbos"]
    results = train_seeds([TrainConfig(**cell, seed=s) for s in seeds], data)
    vals = [math.nan if r.metrics["diverged"] else float(r.metrics["val_elbo"]) for r in results]
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_text(json.dumps({"cell": json.loads(key), "val_elbos": _finite(vals)}))
    return vals


def cell_mean(vals) -> float:
    """The mean over seeds; NaN when any seed diverged (the cell counts as the worst)."""
    v = np.asarray([np.nan if x is None else x for x in vals], float)
    return float(v.mean()) if np.all(np.isfinite(v)) else math.nan


def batch_row(cells: dict, lrs, delta: float) -> dict:
    """The best rate of one batch size's cells ({lr: val ELBOs}) and the rates within ``delta`` of it."""
    means = np.array([cell_mean(cells[lr]) for lr in lrs])
    check = A.best_lr(lrs, means)
    top = float(np.nanmax(means))
    near = [lr for lr, m in zip(lrs, means, strict=True) if m >= top - delta]
    return {
        "best_lr_grid": check.best,
        "best_lr": check.best_interpolated,
        "interior": bool(check.interior),
        "best_val_elbo": top,
        "within_delta_low": min(near),
        "within_delta_high": max(near),
    }


def _grid(args, base) -> dict:
    """{batch size: {rate: val ELBOs per seed}}, trained (or read from the cache) one cell at a time."""
    grid = {}
    for b in args.batch_sizes:
        grid[b] = {}
        for lr in args.learning_rates:
            t = time.process_time()
            grid[b][lr] = train_cell(base, b, lr, args.seeds)
            m = cell_mean(grid[b][lr])
            print(f"  batch {b} lr {lr:g}: mean val ELBO {m:.2f} ({time.process_time() - t:.0f} CPU-s)", flush=True)
    return grid


def calibrate(args) -> dict:
    """Steps 1 to 4 of the module docstring for one data set."""
    from vae_utils.advisor.rangetest import checked_range_test

    base = {
        "dataset": args.dataset,
        "architecture": args.architecture,
        "optimizer": args.optimizer,
        "epochs": args.epochs,
    }
    base |= {k: v for k, v in (("train_size", args.train_size), ("held_out_size", args.held_out_size)) if v}
    cpu0, t0 = time.process_time(), time.time()
    grid = _grid(args, base)
    cpu_grid = time.process_time() - cpu0
    ds = subsample(load_dataset(args.dataset), args.train_size, args.held_out_size)
    model_config = TrainConfig(**base).model_config(ds.dim, ds.likelihood, ds.image_shape)
    rows = []
    for b in args.batch_sizes:
        rt = checked_range_test(ds, b, args.optimizer, model_config, seeds=tuple(args.rt_seeds))
        row = {"batch_size": b, **batch_row(grid[b], args.learning_rates, args.delta)}
        row |= {"lr_break": rt.lr_break, "lr_breaks": rt.repeats["breaks"], "extended": rt.repeats["extended"]}
        row["ratio"] = row["best_lr"] / row["lr_break"]
        rows.append(row)
        print(
            f"batch {b:4d}: best lr {row['best_lr']:.4g} (grid {row['best_lr_grid']:.4g}, interior {row['interior']}), "
            f"within {args.delta} nats {row['within_delta_low']:.4g}..{row['within_delta_high']:.4g}; "
            f"break {row['lr_break']:.4g} ({', '.join(f'{v:.3g}' for v in row['lr_breaks'])}); ratio {row['ratio']:.3f}",
            flush=True,
        )
    inner = [r for r in rows if r["interior"] and math.isfinite(r["ratio"])]
    a, e = C.fit_line([r["batch_size"] for r in inner], [r["ratio"] for r in inner]) if inner else (math.nan, math.nan)
    cpu = time.process_time() - cpu0
    print(
        f"fit: ratio = {2**a:.3f} x (B / 64)^{e:.2f}; CPU {cpu:.0f} s (grid {cpu_grid:.0f}), wall {time.time() - t0:.0f} s"
    )
    cells = [
        {
            "batch_size": b,
            "learning_rate": lr,
            "val_elbos": _finite(vals),
        }
        for b, by_lr in grid.items()
        for lr, vals in by_lr.items()
    ]
    label = args.label or (args.dataset if args.architecture == "mlp" else f"{args.dataset} ({args.architecture})")
    return {
        "label": label,
        **base,
        "likelihood": ds.likelihood,
        "n_train": len(ds.train),
        "seeds": args.seeds,
        "rt_seeds": args.rt_seeds,
        "delta": args.delta,
        "rows": rows,
        "cells": cells,
        "ratio_at_64": 2**a,
        "exponent": e,
        "cpu_s": cpu,
        "cpu_grid_s": cpu_grid,
        "wall_s": time.time() - t0,
        "load_average": os.getloadavg(),
    }


def elbo_at(cells, batch_size: int, lr: float) -> tuple[float, bool]:
    """The grid's mean validation ELBO at ``lr`` (linear in log2 rate between grid rates; the edge value
    outside the grid) and whether ``lr`` lay inside the grid."""
    pts = sorted((c["learning_rate"], cell_mean(c["val_elbos"])) for c in cells if c["batch_size"] == batch_size)
    x, y = np.log2([p[0] for p in pts]), np.array([p[1] for p in pts])
    inside = bool(x[0] <= math.log2(lr) <= x[-1])
    y = np.where(np.isfinite(y), y, np.nanmin(y) - 100.0)  # a diverged cell: far below the rest
    return float(np.interp(math.log2(lr), x, y)), inside


def beside_divergence(cells, batch_size: int, lr: float) -> bool:
    """Whether ``lr`` lies between (or on) grid rates of which one had a diverged seed: there ``elbo_at``
    reads the line towards a cell it counts as far below the rest, a pessimistic bound, not a measurement."""
    pts = sorted((c["learning_rate"], cell_mean(c["val_elbos"])) for c in cells if c["batch_size"] == batch_size)
    below = [m for r, m in pts if r <= lr][-1:]
    above = [m for r, m in pts if r >= lr][:1]
    return any(not math.isfinite(m) for m in below + above)


def seed_sd(cells, batch_size: int, best: float, within: float = 2.0) -> float:
    """The seed-to-seed SD at one batch size: the root mean square of the cells' SDs over seeds, over the
    cells whose mean lies within ``within`` nats of the best (where the advice should land)."""
    sds = [
        np.std(c["val_elbos"], ddof=1)
        for c in cells
        if c["batch_size"] == batch_size and math.isfinite(m := cell_mean(c["val_elbos"])) and m >= best - within
    ]
    return float(np.sqrt(np.mean(np.square(sds)))) if sds else math.nan


def _points(runs) -> list[dict]:
    """One calibration point per data set and batch size whose best rate lies inside its grid."""
    return [
        {"dataset": r["label"], "batch_size": row["batch_size"], "ratio": row["ratio"]}
        for r in runs
        for row in r["rows"]
        if row["interior"] and math.isfinite(row["ratio"])
    ]


def _evaluate(run, row, rule, loo) -> dict:
    """How far the pooled rule's (and the leave-one-out rule's) advice lands from this grid's best."""
    b, cells = row["batch_size"], run["cells"]
    out = {"dataset": run["label"], "likelihood": run["likelihood"], "architecture": run["architecture"]}
    out |= {k: row[k] for k in ("batch_size", "best_lr", "lr_break", "ratio", "interior", "best_val_elbo")}
    sd = seed_sd(cells, b, row["best_val_elbo"])
    for name, r in (("pooled", rule), ("loo", loo)):
        lr = r["at_64"] * (b / 64) ** r["exponent"] * row["lr_break"]
        elbo, inside = elbo_at(cells, b, lr)
        gap = row["best_val_elbo"] - elbo
        out |= {f"{name}_lr": lr, f"{name}_over_best": lr / row["best_lr"], f"{name}_gap_nats": gap}
        out |= {f"{name}_gap_sds": gap / sd if sd > 0 else math.nan, f"{name}_inside_grid": inside}
        out[f"{name}_beside_divergence"] = beside_divergence(cells, b, lr)
    return out | {"seed_sd": sd}


def pool_runs(runs) -> dict:
    """The pooled rule over calibration runs, and each run's batch sizes evaluated under it."""
    points = _points(runs)
    rule = C.pool(points)
    evaluated = []
    for run in runs:
        others = [p for p in points if p["dataset"] != run["label"]]
        loo = C.pool(others) if len({p["dataset"] for p in others}) >= 2 else rule
        evaluated += [_evaluate(run, row, rule, loo) for row in run["rows"] if math.isfinite(row["lr_break"])]
    keep = ("label", "dataset", "architecture", "likelihood", "n_train", "epochs", "seeds", "rt_seeds", "cpu_s", "rows")
    optimizer = runs[0].get("optimizer", "adam")
    return {
        "optimizer": optimizer,
        "rule": rule,
        "points": evaluated,
        "runs": [{k: r.get(k) for k in keep} for r in runs],
    }


def _print_pool(cal: dict) -> None:
    r = cal["rule"]
    print(
        f"pooled over {r['n_datasets']} data sets ({r['n_points']} batch sizes): ratio = {r['at_64']:.3f} "
        f"({r['at_64_low']:.3f} to {r['at_64_high']:.3f}) x (B/64)^{r['exponent']:.2f} "
        f"({r['exponent_low']:.2f} to {r['exponent_high']:.2f}); between-data-set SD {r['between_sd']:.2f} log2 units; "
        f"a new data set's ratio at 64: {r['predict_low']:.3f} to {r['predict_high']:.3f}"
    )
    for d, f in r["datasets"].items():
        print(f"  {d}: {f['at_64']:.3f} x (B/64)^{f['exponent']:.2f}")
    for p in cal["points"]:
        print(
            f"  {p['dataset']:>16} B={p['batch_size']:4d}: advised/best {p['pooled_over_best']:.2f} (loo {p['loo_over_best']:.2f}), "
            f"gap {p['pooled_gap_nats']:.2f} nats = {p['pooled_gap_sds']:.1f} SD (loo {p['loo_gap_nats']:.2f} nats)"
        )


def markdown(cal: dict) -> str:
    """The per-data-set evaluation as a Markdown table (README "The advisor")."""
    lines = [
        "| data set | likelihood | batch | best rate | break | best / break | advice / best | leave one out | ELBO lost |",
        "|---|---|---:|---:|---:|---:|---:|---:|---:|",
    ]
    lines.extend(
        f"| {p['dataset']} | {p['likelihood']} | {p['batch_size']} | {p['best_lr']:.3g}{'' if p['interior'] else ' (edge)'} "
        f"| {p['lr_break']:.3g} | {p['ratio']:.3f} | {p['pooled_over_best']:.2f} | {p['loo_over_best']:.2f} "
        f"| {p['pooled_gap_nats']:.2f} nats ({p['pooled_gap_sds']:.1f} SD) |"
        for p in cal["points"]
    )
    return "\n".join(lines)


def main(argv=None) -> int:
    p = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    p.add_argument("--optimizer", default="adam")
    p.add_argument("--dataset", default="digits", help="a registered or generated dataset (default: digits)")
    p.add_argument("--label", default=None, help="the data set's name in the pooled fit (default: dataset[ (conv)])")
    p.add_argument("--architecture", default="mlp", choices=("mlp", "conv"))
    p.add_argument("--train-size", type=int, default=None, help="the first n training examples (default: all)")
    p.add_argument("--held-out-size", type=int, default=None, help="the first n validation and test examples")
    p.add_argument("--batch-sizes", type=int, nargs="+", default=BATCH_SIZES)
    p.add_argument("--learning-rates", type=float, nargs="+", default=ADAM_LRS)
    p.add_argument("--seeds", type=int, nargs="+", default=[0, 1, 2])
    p.add_argument("--rt-seeds", type=int, nargs="+", default=[0, 1, 2])
    p.add_argument("--epochs", type=int, default=30)
    p.add_argument("--delta", type=float, default=0.5, help="nats: rates within this of the best mean count")
    p.add_argument("--threads", type=int, default=1, help="TensorFlow threads (default: 1)")
    p.add_argument("--json", default=None, help="write the results here")
    p.add_argument("--pool", nargs="+", default=None, metavar="JSON", help="fit the rule over these runs' JSONs")
    p.add_argument(
        "--out",
        default=None,
        help="--pool: where the calibration goes (default: the optimizer's file beside calibration.py)",
    )
    args = p.parse_args(argv)
    if args.pool:
        runs = [json.loads(Path(f).read_text()) for f in args.pool]
        optimizers = {r.get("optimizer", "adam") for r in runs}
        if len(optimizers) != 1:
            p.error(f"--pool: runs of one optimizer only; these are of {sorted(optimizers)}")
        cal = pool_runs(runs)
        args.out = args.out or str(C.path(optimizers.pop()))
        _print_pool(cal)
        print(markdown(cal))
        Path(args.out).write_text(json.dumps(cal, indent=1) + "\n")
        return 0
    set_threads(args.threads)
    out = calibrate(args)
    if args.json:
        Path(args.json).parent.mkdir(parents=True, exist_ok=True)
        Path(args.json).write_text(json.dumps(out, indent=1))
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
