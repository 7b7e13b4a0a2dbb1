"""The advisor's acceptance check (issue 21): its advice against an independent grid, on a data file.

    .venv/bin/python benchmarks/advisor_check.py --make-data results/advisor_check     # the two kept-aside sets
    .venv/bin/python benchmarks/advisor_check.py --data results/advisor_check/patches8.npy --likelihood bernoulli
    .venv/bin/python benchmarks/advisor_check.py --data results/advisor_check/tabular.npy --likelihood gaussian

1. The advisor (``vae_utils.advisor.advise``, whichever is installed: the rule in ``rules.LR_RATIO``) for
   each ``--advisor-seeds`` seed, without its confirmation grid (``--confirm`` runs it): the advised batch
   size and learning rate, the range test's breaking point and the lowest rate that test swept.
2. An independent grid on the same split: batch sizes (``--batch-sizes``; default every power of two from
   half the smallest advised batch to twice the largest) x learning rates each twice the last x ``--seeds``,
   ``--epochs`` epochs, trained in this process (``advisor_ratio.train_cell``: cached), ranked by the mean
   validation ELBO over seeds; and each advised cell itself with the same seeds.
3. Per advisor seed: the advice, the grid's best rate at the advised batch (interpolated in log rate) and
   the advice's rate over it, the advice's rank among the grid's cells, its ELBO gap to the grid's best
   cell in nats and in seed-to-seed SDs (root mean square of the cells' SDs within 2 nats of the best),
   and whether the advised rate is at least 10x the range test's lowest rate; and the grid rates at the
   advised batch within one seed SD of that batch's best (on a flat curve the best rate itself is ill-defined).

``--summary`` also writes this data file's rows into ``vae_utils/advisor/holdout.json``
(``calibration.HOLDOUT``; the other data files' rows are kept), which chapter 11 renders; with ``--confirm``,
beside them as the check with the advisor's confirmation on (``with_confirmation``).

Acceptance (issue 21): the advised rate within 2x of the grid's best at its batch, its validation ELBO
within one seed-to-seed SD of the best, and no advice below 10x the range test's lowest rate.
The sets kept aside from the rule's calibration (``calibration_data.write_holdout``) must never be
calibrated on.
"""

from __future__ import annotations

import argparse
import inspect
import json
import math
import sys
import time
from pathlib import Path

import numpy as np

sys.path.insert(0, str(Path(__file__).resolve().parent))
import advisor_ratio as R
import calibration_data

from vae_utils.advisor import advise, calibration
from vae_utils.advisor.datafile import load_file
from vae_utils.advisor.rules import DELTA, LR_RATIO, PLACEHOLDER
from vae_utils.claims import analysis as A
from vae_utils.fileio import read_json, write_json

LRS = [2.5e-4, 5e-4, 1e-3, 2e-3, 4e-3, 8e-3, 1.6e-2, 3.2e-2, 6.4e-2]


def run_advisor(path, likelihood, seed, confirm) -> dict:
    """One advice: batch, rate, break, and the lowest rate of the range test at the advised batch."""
    t = time.process_time()
    adv = advise(path, likelihood=likelihood, seed=seed, confirm=confirm, progress=False)
    rec = adv.recommendation
    at_b = [rt for rt in adv.range_tests if rt.batch_size == rec.batch_size] or adv.range_tests
    out = {"seed": seed, "batch_size": rec.batch_size, "learning_rate": rec.learning_rate, "lr_break": rec.lr_break}
    out |= {"lr_min": float(at_b[-1].settings["lr_min"]), "headline": rec.headline, "warnings": adv.warnings}
    c = adv.confirmation
    out |= {"cpu_s": time.process_time() - t, "confirmation_ran": bool(c.get("ran"))}
    out |= {"confirmation": c.get("decision"), "fresh_seeds": c.get("fresh_seeds", [])}
    print(
        f"advice seed {seed}: batch {rec.batch_size}, lr {rec.learning_rate:.3g} (break {rec.lr_break:.3g})"
        + (f"; confirmation: {c['verdict']}" if c.get("ran") else ""),
        flush=True,
    )
    return out


def _batches(advice, n_train, given) -> list[int]:
    if given:
        return sorted(given)
    low = max(8, min(a["batch_size"] for a in advice) // 2)
    high = min(n_train // 8, 2 * max(a["batch_size"] for a in advice))
    return [2**k for k in range(int(math.log2(low)), int(math.log2(high)) + 1)]


def grid_cells(base, batches, args, data) -> list[dict]:
    """The grid's cells, trained (or read from the cache) one at a time."""
    cells = []
    for b in batches:
        for lr in args.learning_rates:
            vals = R.train_cell(base, b, lr, args.seeds, data)
            cells.append({"batch_size": b, "learning_rate": lr, "val_elbos": vals})
            print(f"  grid batch {b} lr {lr:g}: {R.cell_mean(vals):.2f}", flush=True)
    return cells


def window(cells, batch_size: int, width: float) -> tuple[float, float]:
    """The grid rates at ``batch_size`` whose mean validation ELBO lies within ``width`` nats of that batch
    size's best: (lowest, highest). On a flat curve "the best rate" is ill-defined; this range is not."""
    at_b = [(c["learning_rate"], R.cell_mean(c["val_elbos"])) for c in cells if c["batch_size"] == batch_size]
    top = max(m for _, m in at_b if math.isfinite(m))
    near = [lr for lr, m in at_b if math.isfinite(m) and m >= top - width]
    return min(near), max(near)


def verdict(advice: dict, cells: list[dict], advised_vals) -> dict:
    """Step 3 for one advice: ``cells`` are the grid's ({batch_size, learning_rate, val_elbos})."""
    b, lr = advice["batch_size"], advice["learning_rate"]
    at_b = sorted((c for c in cells if c["batch_size"] == b), key=lambda c: c["learning_rate"])
    check = A.best_lr([c["learning_rate"] for c in at_b], [R.cell_mean(c["val_elbos"]) for c in at_b])
    means = np.array([R.cell_mean(c["val_elbos"]) for c in cells])
    best = float(np.nanmax(means))
    mine = R.cell_mean(advised_vals)
    sd = R.seed_sd(cells, b, best) if at_b else math.nan
    ranked = np.where(np.isfinite(means), means, -np.inf)
    rank = int((ranked > (mine if math.isfinite(mine) else -np.inf)).sum()) + 1
    low, high = window(cells, b, sd) if at_b and math.isfinite(sd) else (math.nan, math.nan)
    return {
        **advice,
        "rates_within_one_sd": [low, high],
        "advice_in_window": bool(low / math.sqrt(2) <= lr <= high * math.sqrt(2)),
        "advised_val_elbo": mine,
        "grid_best_lr_at_batch": check.best_interpolated,
        "grid_best_interior": bool(check.interior),
        "advice_over_best": lr / check.best_interpolated,
        "rank": rank,
        "n_cells": len(cells) + 1,
        "gap_nats": best - mine,
        "seed_sd": sd,
        "gap_sds": (best - mine) / sd if sd > 0 else math.nan,
        "above_10x_lowest": lr >= 10 * advice["lr_min"],
    }


def check(args) -> dict:
    """Steps 1 to 3 for one data file."""
    cpu0 = time.process_time()
    data = load_file(args.data, likelihood=args.likelihood)
    base = {"dataset": PLACEHOLDER, "optimizer": "adam", "epochs": args.epochs}
    if args.grid_only:  # the grid alone (it does not depend on the advice), into the cache
        return {"cells": grid_cells(base, args.batch_sizes, args, data)}
    advice = [run_advisor(args.data, args.likelihood, s, args.confirm) for s in args.advisor_seeds]
    cells = grid_cells(base, _batches(advice, len(data.train), args.batch_sizes), args, data)
    rows = []
    for a in advice:
        vals = R.train_cell(base, a["batch_size"], a["learning_rate"], args.seeds, data)
        rows.append(verdict(a, cells, vals))
    return {
        "data": str(args.data),
        "likelihood": args.likelihood,
        "budget_minutes": inspect.signature(advise).parameters["budget_minutes"].default,  # the advisor's default
        "n_train": len(data.train),
        "rule": LR_RATIO["adam"],
        "seeds": args.seeds,
        "epochs": args.epochs,
        "rows": rows,
        "cells": cells,
        "cpu_s": time.process_time() - cpu0,
    }


def _print(out: dict) -> None:
    print(f"{out['data']} ({out['likelihood']}, {out['n_train']} training examples); rule {out['rule']}")
    for r in out["rows"]:
        print(
            f"  advisor seed {r['seed']}: batch {r['batch_size']}, lr {r['learning_rate']:.3g}; grid's best at that batch "
            f"{r['grid_best_lr_at_batch']:.3g} (interior {r['grid_best_interior']}); advice/best {r['advice_over_best']:.2f}; "
            f"rank {r['rank']} of {r['n_cells']}; gap {r['gap_nats']:.2f} nats = {r['gap_sds']:.1f} seed SDs; "
            f">= 10x lowest rate ({r['lr_min']:.2g}): {r['above_10x_lowest']}; grid rates within one SD of the "
            f"best at that batch: {r['rates_within_one_sd'][0]:.3g} to {r['rates_within_one_sd'][1]:.3g}"
        )
    print(f"  CPU {out['cpu_s']:.0f} s")


SUMMARY_KEYS = (
    "seed", "batch_size", "learning_rate", "lr_break", "lr_min", "grid_best_lr_at_batch", "grid_best_interior",
    "advice_over_best", "rank", "n_cells", "gap_nats", "seed_sd", "gap_sds", "above_10x_lowest",
    "rates_within_one_sd", "confirmation_ran", "confirmation",
)  # fmt: skip


def write_summary(out: dict, path=calibration.HOLDOUT, confirm: bool = False) -> None:
    """This check's rows into ``path`` under the data file's name, the other files' rows kept. With
    ``confirm`` (the advisor ran its confirmation): into that set's ``with_confirmation`` instead, beside
    the rows of the check without it (which must be there, with the same rule)."""
    name = Path(out["data"]).stem
    held = read_json(path) if Path(path).is_file() else {"sets": []}
    if confirm:
        entry = next((s for s in held["sets"] if s["name"] == name and s["rule"] == out["rule"]), None)
        if entry is None:
            raise SystemExit(
                f"{path}: no check of {name} without its confirmation under rule {out['rule']}; run it first"
            )
        entry["with_confirmation"] = {
            "delta": DELTA,
            "budget_minutes": out["budget_minutes"],
            "rows": [{k: r.get(k) for k in SUMMARY_KEYS} for r in out["rows"]],
        }
        write_json(path, held)
        return
    entry = {"name": name, "likelihood": out["likelihood"], "n_train": out["n_train"], "rule": out["rule"]}
    entry |= {
        "epochs": out["epochs"],
        "seeds": out["seeds"],
        "learning_rates": sorted({c["learning_rate"] for c in out["cells"]}),
    }
    entry |= {"batch_sizes": sorted({c["batch_size"] for c in out["cells"]})}
    entry["rows"] = [{k: r.get(k) for k in SUMMARY_KEYS} for r in out["rows"]]
    old = next((s for s in held["sets"] if s["name"] == name), {})
    if old.get("with_confirmation") and all(old[k] == entry[k] for k in ("rule", "seeds", "epochs")):
        entry["with_confirmation"] = old["with_confirmation"]  # the same check again: its confirmed rows still hold
    held["sets"] = sorted([s for s in held["sets"] if s["name"] != name] + [entry], key=lambda s: s["name"])
    write_json(path, held)


def main(argv=None) -> int:
    p = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    p.add_argument("--data", help="a .npy file (examples x features, or images)")
    p.add_argument("--likelihood", default="bernoulli", choices=("bernoulli", "gaussian"))
    p.add_argument("--make-data", metavar="DIR", help="write the two kept-aside sets as .npy files here, then stop")
    p.add_argument("--advisor-seeds", type=int, nargs="+", default=[0, 1, 2])
    p.add_argument("--confirm", action="store_true", help="let the advisor run its confirmation grid")
    p.add_argument("--batch-sizes", type=int, nargs="+", default=None)
    p.add_argument("--learning-rates", type=float, nargs="+", default=LRS)
    p.add_argument("--seeds", type=int, nargs="+", default=[0, 1, 2])
    p.add_argument("--epochs", type=int, default=30)
    p.add_argument("--threads", type=int, default=1)
    p.add_argument("--json", default=None)
    p.add_argument("--summary", action="store_true", help="write the rows into vae_utils/advisor/holdout.json")
    p.add_argument("--grid-only", action="store_true", help="train the grid (--batch-sizes) into the cache, then stop")
    args = p.parse_args(argv)
    if args.make_data:
        for path, likelihood in calibration_data.write_holdout(args.make_data).items():
            print(f"{path}: {likelihood}")
        return 0
    R.set_threads(args.threads)
    out = check(args)
    if args.grid_only:
        return 0
    _print(out)
    if args.json:
        Path(args.json).write_text(json.dumps(out, indent=1, default=str))
    if args.summary:
        write_summary(out, confirm=args.confirm)
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
