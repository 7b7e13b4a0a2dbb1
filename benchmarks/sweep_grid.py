"""Benchmark of ``vae_utils.experiments.sweep`` on the default grid; prints a table, writes JSON.

    .venv/bin/python benchmarks/sweep_grid.py                 # 6 batch sizes x 5 learning rates x 3 seeds
    .venv/bin/python benchmarks/sweep_grid.py --workers 2 --epochs 5 --out /tmp/bench

For each worker count, a fresh store: wall time, kernels, the overhead fraction (kernel time
not spent inside ``train``: interpreter, kernel and TensorFlow start, data loading, record
writing, idle work-stealing tails); "run s" is the time inside runs (``train`` with its
held-out evaluation, and the record), "loop s" the epoch loops alone. Then the cached rerun of the last
store, in process and through the CLI (which pays Python + TensorFlow imports). Targets on a
2-core machine: grid <= 3 min with 2 workers, overhead <= 25 %, cached rerun <= 10 s.
Timings depend on what else the machine runs: the load average is printed beside them.
"""

from __future__ import annotations

import argparse
import json
import os
import shutil
import subprocess
import sys
import time
from pathlib import Path

import numpy as np

from vae_utils.experiments import default_store, sweep

BATCH_SIZES = [16, 32, 64, 128, 256, 512]
LEARNING_RATES = [1e-4, 3e-4, 1e-3, 3e-3, 1e-2]
SEEDS = [0, 1, 2]


def grid(epochs: int, seeds=SEEDS) -> dict:
    return {
        "dataset": "digits",
        "batch_size": BATCH_SIZES,
        "learning_rate": LEARNING_RATES,
        "seed": seeds,
        "epochs": epochs,
    }


def load() -> str:
    return "/".join(f"{x:.1f}" for x in os.getloadavg())


def main(argv=None) -> int:
    p = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    p.add_argument("--workers", type=int, nargs="+", default=[1, 2])
    p.add_argument("--epochs", type=int, default=30)
    p.add_argument("--seeds", type=int, default=len(SEEDS), help="seeds 0 .. N-1 per config (the book: 10)")
    p.add_argument("--out", type=Path, default=default_store("benchmark"))
    p.add_argument("--json", type=Path, default=None, help="default: <out>/sweep_grid.json")
    args = p.parse_args(argv)
    g = grid(args.epochs, list(range(args.seeds)))
    seeds = list(range(args.seeds))
    n_runs = len(BATCH_SIZES) * len(LEARNING_RATES) * len(seeds)
    print(f"grid: {len(BATCH_SIZES)} batch sizes x {len(LEARNING_RATES)} learning rates x {len(seeds)} seeds")
    print(f"      = {n_runs} runs, digits, {args.epochs} epochs; {os.cpu_count()} cores")

    rows, frames = [], {}
    for w in args.workers:
        out = args.out / f"workers-{w}"
        shutil.rmtree(out, ignore_errors=True)  # a fresh store: nothing cached
        before = load()
        t0 = time.perf_counter()
        df = sweep(g, out, workers=w, progress=True)
        wall = time.perf_counter() - t0
        s = df.attrs["summary"]
        frames[w] = df
        rows.append(
            {
                "case": f"{w} worker(s)",
                "wall_s": wall,
                "runs": s["ran"],
                "kernels": s["kernels"],
                "kernel_s": s["kernel_s"],
                "run_s": s["run_s"],
                "train_loop_s": s["train_loop_s"],
                "overhead": s["overhead"],
                "runs_per_min": s["ran"] / wall * 60,
                "status": f"ok {s['ok']}, diverged {s['diverged']}, failed {s['failed']}",
                "load_before": before,
                "load_after": load(),
            }
        )

    last = args.out / f"workers-{args.workers[-1]}"
    t0 = time.perf_counter()
    cached = sweep(g, last, progress=False)
    rows.append(
        {"case": "cached rerun (in process)", "wall_s": time.perf_counter() - t0, "runs": 0, "load_after": load()}
    )
    assert cached.attrs["summary"]["cached"] == n_runs
    cmd = [
        sys.executable,
        "-m",
        "vae_utils",
        "sweep",
        "--out",
        str(last),
        "--no-progress",
        "--epochs",
        str(args.epochs),
    ]
    cmd += ["--batch-size", *map(str, BATCH_SIZES), "--learning-rate", *map(str, LEARNING_RATES)]
    cmd += ["--seeds", *map(str, seeds)]
    t0 = time.perf_counter()
    proc = subprocess.run(cmd, capture_output=True, text=True)
    rows.append({"case": "cached rerun (CLI, incl. imports)", "wall_s": time.perf_counter() - t0, "runs": 0})
    assert proc.returncode == 0 and f"ran 0, cached {n_runs}" in proc.stderr, proc.stderr[-2000:]

    if len(frames) > 1:  # the same runs, whichever worker count trained them
        a, b = (frames[w].set_index("run_id")["test_elbo"] for w in args.workers[:2])
        diff = float(np.nanmax(np.abs(a - b.loc[a.index])))
        print(f"max |test_elbo difference| between {args.workers[0]} and {args.workers[1]} workers: {diff:.3g}")

    print()
    print(
        f"{'case':34} {'wall s':>8} {'runs':>5} {'kernels':>7} {'kernel s':>8} {'run s':>8} {'loop s':>8} {'overhead':>8}  load"
    )
    for r in rows:
        ov = f"{r['overhead']:.0%}" if "overhead" in r else ""
        ks = f"{r['kernel_s']:.0f}" if "kernel_s" in r else ""
        ts = f"{r['run_s']:.0f}" if "run_s" in r else ""
        ls = f"{r['train_loop_s']:.0f}" if "train_loop_s" in r else ""
        kn = str(r.get("kernels", ""))
        ld = (
            f"{r.get('load_before', '')} -> {r.get('load_after', '')}"
            if "load_before" in r
            else r.get("load_after", "")
        )
        print(f"{r['case']:34} {r['wall_s']:8.1f} {r['runs']:5d} {kn:>7} {ks:>8} {ts:>8} {ls:>8} {ov:>8}  {ld}")
    path = args.json or args.out / "sweep_grid.json"
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_text(json.dumps({"epochs": args.epochs, "seeds": len(seeds), "runs": n_runs, "rows": rows}, indent=1))
    print(f"\nwritten: {path}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
