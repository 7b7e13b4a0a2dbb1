"""Command line: ``python -m vae_utils train ...`` (one run).

python -m vae_utils train --dataset digits --batch-size 64 --learning-rate 1e-3 --epochs 30
"""

from __future__ import annotations

import argparse
import json
import sys
from dataclasses import fields

__all__ = ["main", "build_parser"]


def _add_train(sub):
    from .training import TrainConfig

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


def build_parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(prog="python -m vae_utils", description=__doc__.splitlines()[0])
    sub = parser.add_subparsers(dest="command", required=True)
    _add_train(sub)
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
