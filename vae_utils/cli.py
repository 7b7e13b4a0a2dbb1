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


def _add_train(sub):
    from .config import TrainConfig

    p = sub.add_parser("train", help="train one VAE and print its held-out metrics as JSON")
    for f in fields(TrainConfig):
        flag = "--" + f.name.replace("_", "-")
        if f.name == "hidden_units":
            p.add_argument(flag, type=int, nargs="*", default=list(f.default))
        elif f.name == "decoder_variance":
            p.add_argument(
                flag,
                type=lambda s: None if s == "learned" else float(s),
                default=f.default,
                help="a variance > 0, or 'learned'",
            )
        else:
            p.add_argument(flag, type=type(f.default), default=f.default)
    p.add_argument("--history", metavar="CSV", help="also write the per-epoch history to this CSV file")
    p.set_defaults(func=_train)


def _train(args) -> int:
    from .training import TrainConfig, train

    opts = {k: v for k, v in vars(args).items() if k not in ("func", "command", "history")}
    result = train(TrainConfig(**opts))
    print(result.history.to_string(index=False), file=sys.stderr)
    print(json.dumps({"config": result.config.to_dict(), "metrics": result.metrics}, indent=2, default=str))
    if args.history:
        result.history.to_csv(args.history, index=False)
    return 0


def _hidden(token: str):
    return tuple(int(u) for u in token.split(",") if u.strip())


def _variance(token: str):
    return None if token.lower() in ("learned", "none") else float(token)


def _add_sweep(sub):
    from .config import TrainConfig

    p = sub.add_parser("sweep", help="train a grid of runs through the papermill template, cached in a store")
    p.add_argument("--out", help="results store (default: results/sweeps/default under the repo root)")
    p.add_argument("--grid", metavar="FILE", help="a YAML or JSON grid: a dict of fields to values, or a list of dicts")
    for f in fields(TrainConfig):
        flag = "--" + f.name.replace("_", "-")
        if f.name == "hidden_units":
            kind, hint = _hidden, "comma-separated widths per architecture, e.g. 256 128,64"
        elif f.name == "decoder_variance":
            kind, hint = _variance, "variances > 0, or 'learned'"
        else:
            kind, hint = type(f.default), None
        p.add_argument(flag, type=kind, nargs="+", default=None, help=hint)
    p.add_argument("--seeds", type=int, nargs="+", default=None, help="seeds, one run each (same as --seed)")
    p.add_argument("--workers", type=int, default=None, help="parallel kernels (default: one per core)")
    p.add_argument("--scheduler", metavar="ADDRESS", help="a Dask scheduler, e.g. tcp://host:8786")
    p.add_argument("--timeout", type=float, default=None, metavar="S", help="per-run timeout in seconds")
    p.add_argument("--no-progress", action="store_true", help="no progress bar")
    p.add_argument("--csv", metavar="FILE", help="also write the results table to this CSV file")
    p.set_defaults(func=_sweep)


def _coerce(value, default):
    """YAML reads 1e-3 as a string: numbers in strings become numbers where the field wants one."""
    if isinstance(value, list):
        return [_coerce(v, default) for v in value]
    if isinstance(value, str) and isinstance(default, (int, float)) and not isinstance(default, bool):
        try:
            return type(default)(float(value)) if isinstance(default, float) else int(value)
        except ValueError:
            return value
    return value


def _load_grid(path: str):
    import yaml

    from .config import TrainConfig

    with open(path) as f:
        grid = yaml.safe_load(f)  # JSON is YAML too
    defaults = {f.name: f.default for f in fields(TrainConfig)}
    items = grid if isinstance(grid, list) else [grid]
    if not all(isinstance(g, dict) for g in items):
        raise ValueError(f"grid={path!r} is not allowed; allowed: a YAML/JSON dict or list of dicts")
    return [{k: _coerce(v, defaults.get(k)) for k, v in g.items()} for g in items]


def _sweep(args) -> int:
    from .sweeps import default_store, format_summary, sweep

    flags = {k: v for k, v in vars(args).items() if v is not None}
    given = {k: flags[k] for k in flags if k not in _SWEEP_OPTIONS}
    if "seeds" in given:
        if "seed" in given:
            raise ValueError("give --seed or --seeds, not both")
        given["seed"] = given.pop("seeds")
    grid = [{**g, **given} for g in _load_grid(args.grid)] if args.grid else given
    out = args.out or default_store("default")
    df = sweep(
        grid, out, workers=args.workers, scheduler=args.scheduler, timeout_s=args.timeout, progress=not args.no_progress
    )
    varying = [c for c in given if c in df and df[c].astype(str).nunique() > 1]
    if args.grid:
        varying = [c for c in df.columns[: df.columns.get_loc("run_id")] if df[c].astype(str).nunique() > 1]
    cols = [*varying, "seed", "run_id", "status", "test_elbo", "test_nll", "active_units", "wall_time_s"]
    cols = list(dict.fromkeys(cols))
    print(df[cols].to_string(index=False, float_format=lambda v: f"{v:.4g}"))
    if args.csv:
        df.to_csv(args.csv, index=False)
    summary = df.attrs["summary"]
    if args.no_progress:  # otherwise sweep printed it
        print(format_summary(summary, out), file=sys.stderr)
    return 1 if summary["failed"] else 0


_SWEEP_OPTIONS = ("func", "command", "out", "grid", "workers", "scheduler", "timeout", "no_progress", "csv")


def build_parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(prog="python -m vae_utils", description=__doc__.splitlines()[0])
    sub = parser.add_subparsers(dest="command", required=True)
    _add_train(sub)
    _add_sweep(sub)
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
