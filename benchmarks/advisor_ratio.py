"""Calibration of the advisor's learning-rate ratio: the best rate over the range test's breaking point.

    .venv/bin/python benchmarks/advisor_ratio.py                   # Adam, digits (about 3 minutes on 2 cores)
    .venv/bin/python benchmarks/advisor_ratio.py --optimizer momentum --learning-rates 0.004 0.008 ...
    .venv/bin/python benchmarks/advisor_ratio.py --dataset fashion_mnist --train-size 5000 --json fm5k.json
    .venv/bin/python benchmarks/advisor_ratio.py --dataset fashion_mnist --architecture conv --train-size 5000
    .venv/bin/python benchmarks/advisor_ratio.py --dataset gaussian2d --batch-sizes 16 32 64 --json g2d.json

Any registered dataset (``vae_utils.core.data.REGISTRY``: digits, gaussian2d, moons, mnist, fashion_mnist
when its files are installed); ``--train-size`` trains on the first n of the shuffled training split
(the range tests too), ``--architecture conv`` the conv VAE (image datasets). Issue 21 item 2 calibrates
the ratio on several of these and pools the rows (``--json`` per dataset).

1. A grid through ``sweep`` (cached in the results store ``strategies``, shared with the strategy
   chapters): batch sizes x learning rates (each twice the last) x seeds, 30 epochs on digits.
2. For each batch size, the best learning rate by the mean validation ELBO over seeds, interpolated
   in log rate (``analysis.best_lr``: a parabola through the best grid point and its neighbours),
   and the range of grid rates whose mean lies within ``--delta`` nats of the best mean.
3. For each batch size, the range test's breaking point (``rangetest.vae_range_test``, default
   settings) for ``--rt-seeds`` seeds; their geometric mean.
4. The ratio best / breaking point per batch size; its geometric mean over the batch sizes whose
   best rate lies inside the grid, with a t-interval on the log scale (``stats.log_mean``); and the
   fit ratio(B) = ratio_64 (B / 64)^exponent (least squares on log2 ratio against log2 B), the two
   numbers ``advisor.LR_RATIO`` holds.

Prints a table and writes JSON (``--json``).
"""

from __future__ import annotations

import argparse
import json
import math
import os
import time

import numpy as np

from vae_utils import load_dataset
from vae_utils.advisor.rangetest import vae_range_test
from vae_utils.claims import analysis as A
from vae_utils.claims import stats as S
from vae_utils.core.config import TrainConfig
from vae_utils.core.data import subsample
from vae_utils.experiments import default_store, sweep

BATCH_SIZES = [16, 32, 64, 128, 256, 512]
ADAM_LRS = [5e-4, 1e-3, 2e-3, 4e-3, 8e-3, 1.6e-2, 3.2e-2, 6.4e-2]


def _data(args):
    """The dataset as the sweep trains it (the first ``--train-size`` examples of its training split) and
    the model config of the grid's runs, for the range tests."""
    ds = subsample(load_dataset(args.dataset), args.train_size or None, args.held_out_size or None)
    config = TrainConfig(dataset=args.dataset, architecture=args.architecture)
    return ds, config.model_config(ds.dim, ds.likelihood, ds.image_shape)


def main(argv=None) -> int:
    p = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    p.add_argument("--optimizer", default="adam")
    p.add_argument("--dataset", default="digits", help="a registered dataset (default: digits)")
    p.add_argument("--architecture", default="mlp", choices=("mlp", "conv"))
    p.add_argument("--train-size", type=int, default=None, help="the first n training examples (default: all)")
    p.add_argument("--held-out-size", type=int, default=None, help="the first n validation and test examples")
    p.add_argument("--batch-sizes", type=int, nargs="+", default=BATCH_SIZES)
    p.add_argument("--learning-rates", type=float, nargs="+", default=ADAM_LRS)
    p.add_argument("--seeds", type=int, nargs="+", default=[0, 1, 2])
    p.add_argument("--rt-seeds", type=int, nargs="+", default=[0, 1, 2, 3, 4])
    p.add_argument("--epochs", type=int, default=30)
    p.add_argument("--delta", type=float, default=0.5, help="nats: rates within this of the best mean count")
    p.add_argument("--store", default="strategies")
    p.add_argument("--workers", type=int, default=None)
    p.add_argument("--json", default=None, help="write the results here")
    args = p.parse_args(argv)

    t0 = time.time()
    grid = {
        "dataset": args.dataset,
        "architecture": args.architecture,
        **{k: v for k, v in (("train_size", args.train_size), ("held_out_size", args.held_out_size)) if v},
        "optimizer": args.optimizer,
        "batch_size": args.batch_sizes,
        "learning_rate": args.learning_rates,
        "seed": args.seeds,
        "epochs": args.epochs,
    }
    df = sweep(grid, out=default_store(args.store), workers=args.workers)
    t_grid = time.time() - t0
    df.loc[df.status != "ok", "val_elbo"] = np.nan
    ds, model_config = _data(args)
    rows = []
    t1 = time.time()
    for b in args.batch_sizes:
        d = A.summarize(df[df.batch_size == b], "learning_rate", "val_elbo")
        check = A.best_lr(d.learning_rate, d["mean"])
        top = float(np.nanmax(d["mean"]))
        near = d[d["mean"] >= top - args.delta].learning_rate
        breaks = [vae_range_test(ds, b, args.optimizer, model_config, seed=s).lr_break for s in args.rt_seeds]
        lr_break = S.log_mean(breaks, name="breaking point").estimate
        rows.append(
            {
                "batch_size": b,
                "best_lr_grid": check.best,
                "best_lr": check.best_interpolated,
                "interior": check.interior,
                "best_val_elbo": top,
                "within_delta_low": float(near.min()),
                "within_delta_high": float(near.max()),
                "lr_break": lr_break,
                "lr_breaks": breaks,
                "ratio": check.best_interpolated / lr_break,
            }
        )
    t_rt = time.time() - t1
    inner = [r for r in rows if r["interior"]]
    ratios = [r["ratio"] for r in inner]
    e = S.log_mean(ratios, name="best learning rate / breaking point")
    # ratio(B) = ratio_64 (B / 64)^exponent: least squares of log2 ratio on log2(B / 64)
    x = np.log2([r["batch_size"] / 64 for r in inner])
    exponent, log2_at_64 = np.polyfit(x, np.log2(ratios), 1)
    e_exp = S.slope([r["batch_size"] for r in inner], ratios, logx=True, logy=True, name="exponent")
    for r in rows:
        print(
            f"batch {r['batch_size']:4d}: best lr {r['best_lr']:.4g} (grid {r['best_lr_grid']:.4g}, "
            f"interior {r['interior']}), within {args.delta} nats: {r['within_delta_low']:.4g}..{r['within_delta_high']:.4g}; "
            f"break {r['lr_break']:.4g} (seeds {', '.join(f'{v:.3g}' for v in r['lr_breaks'])}); ratio {r['ratio']:.3f}"
        )
    print(f"ratio over {len(ratios)} batch sizes with an interior best: {e.format()}")
    print(f"fit: ratio = {2**log2_at_64:.3f} x (B / 64)^{exponent:.2f} (exponent {e_exp.format()})")
    print(f"grid {t_grid:.0f} s, range tests {t_rt:.0f} s; load average {os.getloadavg()}")
    out = {
        "dataset": args.dataset,
        "architecture": args.architecture,
        "train_size": args.train_size,
        "held_out_size": args.held_out_size,
        "optimizer": args.optimizer,
        "epochs": args.epochs,
        "seeds": args.seeds,
        "delta": args.delta,
        "rows": rows,
        "ratio": e.estimate,
        "ratio_low": e.low,
        "ratio_high": e.high,
        "ratio_log_sd": e.sd if math.isfinite(e.sd) else None,
        "ratio_at_64": float(2**log2_at_64),
        "exponent": float(exponent),
        "exponent_low": e_exp.low,
        "exponent_high": e_exp.high,
        "grid_s": t_grid,
        "range_tests_s": t_rt,
    }
    if args.json:
        with open(args.json, "w") as f:
            json.dump(out, f, indent=1)
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
