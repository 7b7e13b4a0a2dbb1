"""Command line: ``python -m vae_utils train ...`` (one run), ``python -m vae_utils sweep ...`` (a grid).

python -m vae_utils train --dataset digits --batch-size 64 --learning-rate 1e-3 --epochs 30
python -m vae_utils sweep --out results/sweeps/demo --batch-size 32 64 --learning-rate 1e-3 3e-3 --seeds 0 1 2

``sweep`` takes several values per field (the cartesian product), or a YAML/JSON ``--grid`` file
(a dict, or a list of dicts; flags given on the command line then apply to every dict). It
prints the grid's results table and a summary, and exits 1 naming the failed runs, if any.
"""

from __future__ import annotations

import argparse
import json
import sys
from dataclasses import fields

__all__ = ["main", "build_parser"]


def _config_flags(p, nargs=None):
    """One flag per TrainConfig field, read as text: ``TrainConfig.from_dict`` parses and validates it."""
    from .config import TrainConfig

    hints = {
        "hidden_units": "comma-separated widths, e.g. 256 or 128,64",
        "decoder_variance": "a variance > 0, or learned",
    }
    for f in fields(TrainConfig):
        default = ",".join(map(str, f.default)) if f.name == "hidden_units" else f.default
        help_ = hints.get(f.name, f"default: {default}") if nargs is None else hints.get(f.name)
        p.add_argument("--" + f.name.replace("_", "-"), nargs=nargs, default=None, metavar=f.name.upper(), help=help_)


def _add_train(sub):
    p = sub.add_parser("train", help="train one VAE and print its held-out metrics as JSON")
    _config_flags(p)
    p.add_argument("--history", metavar="CSV", help="also write the per-epoch history to this CSV file")
    p.set_defaults(func=_train)


def _train(args) -> int:
    from .config import FIELDS
    from .training import TrainConfig, train

    config = TrainConfig.from_dict({k: v for k, v in vars(args).items() if k in FIELDS and v is not None})
    result = train(config)
    print(result.history.to_string(index=False), file=sys.stderr)
    print(json.dumps({"config": result.config.to_dict(), "metrics": result.metrics}, indent=2, default=str))
    if args.history:
        result.history.to_csv(args.history, index=False)
    return 0


def _add_sweep(sub):
    p = sub.add_parser("sweep", help="train a grid of runs through the papermill template, cached in a store")
    p.add_argument("--out", help="results store (default: results/sweeps/default under the repo root)")
    p.add_argument("--grid", metavar="FILE", help="a YAML or JSON grid: a dict of fields to values, or a list of dicts")
    _config_flags(p, nargs="+")
    p.add_argument("--seeds", nargs="+", default=None, help="seeds, one run each (same as --seed)")
    p.add_argument("--workers", type=int, default=None, help="parallel kernels (default: one per core)")
    p.add_argument("--scheduler", metavar="ADDRESS", help="a Dask scheduler, e.g. tcp://127.0.0.1:8786")
    p.add_argument("--timeout", type=float, default=None, metavar="S", help="per-run timeout in seconds")
    p.add_argument("--no-progress", action="store_true", help="no progress bar")
    p.add_argument("--csv", metavar="FILE", help="also write the results table to this CSV file")
    p.set_defaults(func=_sweep)


def _load_grid(path: str):
    import yaml

    with open(path) as f:
        grid = yaml.safe_load(f)  # JSON is YAML too; text values are parsed by TrainConfig.from_dict
    items = grid if isinstance(grid, list) else [grid]
    if not all(isinstance(g, dict) for g in items):
        raise ValueError(f"grid={path!r} is not allowed; allowed: a YAML/JSON dict or list of dicts")
    return items


def _sweep(args) -> int:
    from .config import FIELDS
    from .experiments import default_store, sweep
    from .experiments.runner import format_summary

    flags = {k: v for k, v in vars(args).items() if v is not None}
    given = {k: v for k, v in flags.items() if k in FIELDS or k == "seeds"}
    if "seeds" in given:
        if "seed" in given:
            raise ValueError("give --seed or --seeds, not both")
        given["seed"] = given.pop("seeds")
    grid = [{**g, **given} for g in _load_grid(args.grid)] if args.grid else given
    out = args.out or default_store("default")
    df = sweep(
        grid, out, workers=args.workers, scheduler=args.scheduler, timeout_s=args.timeout, progress=not args.no_progress
    )
    varying = [c for c in FIELDS if df[c].astype(str).nunique() > 1]
    cols = [*varying, "seed", "run_id", "status", "test_elbo", "test_nll", "active_units", "wall_time_s"]
    cols = list(dict.fromkeys(cols))
    print(df[cols].to_string(index=False, float_format=lambda v: f"{v:.4g}"))
    if args.csv:
        df.to_csv(args.csv, index=False)
    summary = df.attrs["summary"]
    if args.no_progress:  # otherwise sweep printed it
        print(format_summary(summary, out), file=sys.stderr)
    return 1 if summary["failed"] else 0


def build_parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(prog="python -m vae_utils", description=__doc__.splitlines()[0])
    sub = parser.add_subparsers(dest="command", required=True)
    _add_train(sub)
    _add_sweep(sub)
    from .advisor import add_parser as _add_advise  # imports no TensorFlow

    _add_advise(sub)
    return parser


def main(argv=None) -> int:
    args = build_parser().parse_args(argv)
    try:
        return args.func(args)
    except ValueError as e:  # bad input: one clear line, no traceback
        print(f"error: {e}", file=sys.stderr)
        return 2


if __name__ == "__main__":
    sys.exit(main())
