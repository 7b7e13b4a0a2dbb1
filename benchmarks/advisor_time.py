"""Wall time of ``python -m vae_utils advise`` on digits: the advice alone, and with its confirmation grid.

    .venv/bin/python benchmarks/advisor_time.py              # 3 x advice alone, then grid cold and cached
    .venv/bin/python benchmarks/advisor_time.py --repeats 5 --budget-minutes 5

Each run is a fresh process (Python, TensorFlow and the advisor's imports included), as a reader
would type it. The confirmation grid runs into a fresh temporary results store (cold: every run
trained), then again into the same store (cached). The per-step times come from advice.json.
Load averages are printed beside the times: the machine may be shared.
"""

from __future__ import annotations

import argparse
import json
import os
import subprocess
import sys
import tempfile
import time
from pathlib import Path


def _advise(out: Path, extra: list[str]) -> tuple[float, dict]:
    cmd = [sys.executable, "-m", "vae_utils", "advise", "--data", "digits", "--out", str(out), *extra]
    t0 = time.perf_counter()
    subprocess.run(cmd, check=True, capture_output=True)
    wall = time.perf_counter() - t0
    return wall, json.loads((out / "advice.json").read_text())


def _line(label: str, wall: float, d: dict) -> str:
    steps = ", ".join(f"{k} {v:.1f}" for k, v in d["timings_s"].items())
    c = d["confirmation"]
    grid = f"; grid: {c.get('verdict') or c.get('reason')}" if c.get("ran") or "reason" in c else ""
    load = "/".join(f"{v:.1f}" for v in os.getloadavg())
    return f"{label}: {wall:.1f} s wall (in advise {d['total_s']:.1f} s: {steps}){grid} [load {load}]"


def main(argv=None) -> int:
    p = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    p.add_argument("--repeats", type=int, default=3)
    p.add_argument("--budget-minutes", type=float, default=5.0)
    args = p.parse_args(argv)
    with tempfile.TemporaryDirectory() as tmp:
        tmp = Path(tmp)
        for i in range(args.repeats):
            wall, d = _advise(tmp / f"a{i}", ["--no-confirm"])
            print(_line(f"advice alone #{i + 1}", wall, d), flush=True)
        budget = ["--budget-minutes", str(args.budget_minutes), "--store", str(tmp / "store")]
        for label in ("with the grid, cold store", "with the grid, cached"):
            wall, d = _advise(tmp / label.replace(" ", "-").replace(",", ""), budget)
            print(_line(label, wall, d), flush=True)
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
