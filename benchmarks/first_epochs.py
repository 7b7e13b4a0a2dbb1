"""How much of a build's training time its first epochs take beyond a typical epoch (compiling, mostly).

    .venv/bin/python benchmarks/first_epochs.py results/sweeps/strategies results/sweeps/at-scale

Reads every run record of the stores: a run's history has the wall time at the end of each epoch
(a stacked run's is its share of the stack's). The first epoch's excess is its time minus the
median of the later epochs: tracing and compiling the epoch's graph, which a kernel pays for each
graph (batch size, optimizer, schedules, stack size) it has not trained before. Printed per store
and per batch size, against the runs' training time (``train_time_s``).
"""

from __future__ import annotations

import argparse
import json
import sys
from collections import Counter
from pathlib import Path

import numpy as np


def first_epoch_excess(record: dict) -> float | None:
    """Seconds the first epoch took beyond the median later epoch; None with fewer than 3 epochs."""
    wall = np.asarray(record.get("history", {}).get("wall_time_s") or [], float)
    if len(wall) < 3:
        return None
    epochs = np.diff(np.concatenate([[0.0], wall]))
    return float(epochs[0] - np.median(epochs[1:]))


def main(argv=None) -> int:
    p = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    p.add_argument("stores", nargs="+", type=Path)
    args = p.parse_args(argv)
    for out in args.stores:
        excess, train, by_batch, runs = 0.0, 0.0, Counter(), 0
        for path in sorted(out.glob("runs/*/record.json")):
            record = json.loads(path.read_text())
            extra = first_epoch_excess(record)
            train += (record.get("metrics") or {}).get("train_time_s") or 0.0
            runs += 1
            if extra is not None:
                excess += extra
                by_batch[record["config"]["batch_size"]] += extra
        share = excess / train if train else float("nan")
        print(f"{out}: {runs} runs, training {train:,.0f} s, first epochs' excess {excess:,.0f} s ({share:.0%})")
        print("  by batch size: " + ", ".join(f"{b}: {s:,.0f} s" for b, s in sorted(by_batch.items())))
    return 0


if __name__ == "__main__":
    sys.exit(main())
