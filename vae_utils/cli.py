"""Command line: ``python -m vae_utils train ...`` (one run), ``python -m vae_utils sweep ...`` (a grid).

python -m vae_utils train --dataset digits --batch-size 64 --learning-rate 1e-3 --epochs 30
python -m vae_utils sweep --out results/sweeps/demo --batch-size 32 64 --learning-rate 1e-3 3e-3 --seeds 0 1 2

``sweep`` takes several values per field (the cartesian product; a flag given twice adds its
values), or a YAML/JSON ``--grid`` file (a dict, or a list of dicts; flags given on the command
line then apply to every dict). It prints the grid's results table and a summary, and exits 1
naming the failed runs, if any. ``train`` takes one value per field; a flag given twice is refused.
Negative numbers are values (``--learning-rate -1e-3`` is refused by the config, naming it).

Exit codes: 0 success; 1 a run failed or was not run, or the system refused (a file that cannot be
written, a full disk, a Dask scheduler that does not answer): one line naming the path or address
and what to do; 2 bad input (one line naming the parameter, the value and what is allowed);
130 interrupted (Ctrl-C or SIGTERM): what is complete, and how to resume.
"""

from __future__ import annotations

import argparse
import errno
import json
import re
import sys
import tempfile
from dataclasses import fields
from pathlib import Path

__all__ = ["main", "build_parser", "os_error_line", "error_line", "load_yaml", "yaml_problem"]

MAX_LINE = 400  # an error line is cut here: a value a reader typed may be megabytes long
LONG_S = 3600.0  # a sweep predicted to take longer needs --allow-long

# What to do about an OSError, by errno (the default: check the path).
ADVICE = {
    errno.ENOSPC: "free some space, then run the same command (complete runs are kept)",
    errno.EDQUOT: "free some space, then run the same command (complete runs are kept)",
    errno.EACCES: "choose a path you may write, or change its permissions",
    errno.EPERM: "choose a path you may write, or change its permissions",
    errno.EROFS: "choose a path on a writable filesystem",
    errno.ENOTDIR: "a folder in the path is a file: choose another path",
    errno.EISDIR: "it is a folder: give a file name",
    errno.ENOENT: "check the path (its folder must exist)",
    errno.ELOOP: "remove the link, or use another folder",
}


def error_line(message) -> str:
    """``error: <message>`` on one line of at most ``MAX_LINE`` characters (whitespace folded)."""
    text = " ".join(str(message).split())
    return "error: " + (text if len(text) <= MAX_LINE else text[: MAX_LINE - 20] + f" ... ({len(text)} chars)")


def load_yaml(stream):
    """``yaml.safe_load`` that refuses aliases (``*name``): a few hundred bytes of nested aliases
    expand to billions of values (an "alias bomb"), which hung the readers of parameter files."""
    import yaml

    class NoAliases(yaml.SafeLoader):
        def compose_node(self, parent, index):
            if self.check_event(yaml.AliasEvent):
                mark = self.peek_event().start_mark
                raise yaml.composer.ComposerError(None, None, "a YAML alias (*name), which is refused", mark)
            return super().compose_node(parent, index)

    return yaml.load(stream, Loader=NoAliases)  # a SafeLoader without aliases


def yaml_problem(e) -> str:
    """Where and why a YAML text failed: "is not valid YAML at line 3, column 5" or "uses a YAML alias ..."."""
    mark = getattr(e, "problem_mark", None)
    at = f" at line {mark.line + 1}, column {mark.column + 1}" if mark else ""
    problem = getattr(e, "problem", "") or ""
    if "alias" in problem:
        return f"uses {problem}{at} (aliases and anchors are not allowed: write the values out)"
    return f"is not valid YAML{at}"


def os_error_line(e: OSError) -> str:
    """One line for an OSError: the path (or the message), what went wrong, and what to do."""
    if isinstance(e, ConnectionError) and not e.filename:
        return f"error: {e}"
    what = e.strerror or str(e)
    where = f"{e.filename}: " if e.filename else ""
    return f"error: {where}{what}; {ADVICE.get(e.errno, 'check the path and try again')}"


class _Parser(argparse.ArgumentParser):
    """argparse with negative numbers in scientific notation as values: ``--learning-rate -1e-3``."""

    def __init__(self, *args, **kwargs):
        super().__init__(*args, **kwargs)
        self._negative_number_matcher = re.compile(r"^-(\d+\.?\d*|\.\d+)([eE][-+]?\d+)?$")


class _Once(argparse.Action):
    """A flag that may be given once: a second one is refused, not silently kept."""

    def __call__(self, parser, namespace, values, option_string=None):
        if getattr(namespace, self.dest, None) is not None:
            raise argparse.ArgumentError(self, "given twice; allowed: once")
        setattr(namespace, self.dest, values)


def _config_flags(p, several: bool):
    """One flag per TrainConfig field, read as text: ``TrainConfig.from_dict`` parses and validates it.

    ``several``: a flag takes one value or more, and given twice adds its values."""
    from .core.config import TrainConfig

    hints = {
        "hidden_units": "comma-separated widths, e.g. 256 or 128,64",
        "decoder_variance": "a variance > 0, or learned",
    }
    for f in fields(TrainConfig):
        default = ",".join(map(str, f.default)) if f.name == "hidden_units" else f.default
        help_ = hints.get(f.name) if several else hints.get(f.name, f"default: {default}")
        kwargs = {"nargs": "+", "action": "extend"} if several else {"action": _Once}
        p.add_argument("--" + f.name.replace("_", "-"), default=None, metavar=f.name.upper(), help=help_, **kwargs)


def _add_train(sub):
    p = sub.add_parser("train", help="train one VAE and print its held-out metrics as JSON")
    _config_flags(p, several=False)
    p.add_argument("--history", action=_Once, metavar="CSV", help="also write the per-epoch history to this CSV file")
    p.set_defaults(func=_train)


def check_output_file(path: str, flag: str) -> Path:
    """``path`` if a file can be written there, checked before any training starts: ValueError when
    it names a folder or a file in a missing folder, OSError when the system refuses a new file there."""
    target = Path(path)
    folder = target.parent
    if target.is_dir() or not folder.is_dir():
        what = "a folder" if target.is_dir() else f"in a folder that does not exist ({folder})"
        raise ValueError(f"{flag}={path} is {what}; allowed: a file name in an existing folder")
    if not target.exists() or target.is_file():
        try:
            with tempfile.TemporaryFile(dir=folder):
                pass
        except OSError as e:
            raise type(e)(e.errno, f"{e.strerror} ({flag}, checked before training)", str(target)) from None
    return target


def write_table(df, path: Path, **kwargs) -> None:
    """Write a CSV atomically (a regular file) or directly (a device such as /dev/stdout)."""
    from .fileio import atomic_path

    if path.exists() and not path.is_file():
        df.to_csv(path, **kwargs)
        return
    with atomic_path(path) as tmp:
        df.to_csv(tmp, **kwargs)


def _train(args) -> int:
    from .core.config import FIELDS, TrainConfig
    from .fileio import jsonable

    config = TrainConfig.from_dict({k: v for k, v in vars(args).items() if k in FIELDS and v is not None})
    history = check_output_file(args.history, "--history") if args.history else None
    from .core.training import train  # TensorFlow: only once the input is known to be good

    result = train(config)
    print(result.history.to_string(index=False), file=sys.stderr)
    print(
        json.dumps(jsonable({"config": result.config.to_dict(), "metrics": result.metrics}), indent=2, allow_nan=False)
    )
    if history is not None:
        write_table(result.history, history, index=False)
    return 0


def _add_sweep(sub):
    p = sub.add_parser("sweep", help="train a grid of runs through the papermill template, cached in a store")
    p.add_argument("--out", action=_Once, help="results store (default: results/sweeps/default under the repo root)")
    p.add_argument(
        "--grid",
        action=_Once,
        metavar="FILE",
        help="a YAML or JSON grid: a dict of fields to values, or a list of dicts",
    )
    _config_flags(p, several=True)
    p.add_argument("--seeds", nargs="+", action="extend", default=None, help="seeds, one run each (same as --seed)")
    p.add_argument("--workers", action=_Once, type=int, default=None, help="parallel kernels (default: one per core)")
    p.add_argument("--scheduler", action=_Once, metavar="ADDRESS", help="a Dask scheduler, e.g. tcp://127.0.0.1:8786")
    p.add_argument("--timeout", action=_Once, type=float, default=None, metavar="S", help="per-run timeout in seconds")
    p.add_argument(
        "--max-wait",
        action=_Once,
        type=float,
        default=None,
        metavar="S",
        help="wait at most S seconds for runs another process holds, or for a Dask worker; then report them as not run",
    )
    p.add_argument("--no-progress", action="store_true", help="no progress bar")
    p.add_argument("--allow-long", action="store_true", help="run a sweep predicted to take over an hour")
    p.add_argument("--csv", action=_Once, metavar="FILE", help="also write the results table to this CSV file")
    p.set_defaults(func=_sweep)


def _load_grid(path: str):
    """The grid of a YAML/JSON file: a list of dicts; ValueError naming the file when it is not one."""
    import yaml

    try:
        with open(path, encoding="utf-8") as f:
            grid = load_yaml(f)  # JSON is YAML too; text values are parsed by TrainConfig.from_dict
    except OSError as e:
        raise ValueError(
            f"--grid {path}: cannot be read ({e.strerror or e}); allowed: a readable YAML or JSON file"
        ) from None
    except (yaml.YAMLError, UnicodeDecodeError) as e:
        raise ValueError(f"--grid {path}: {yaml_problem(e)}; allowed: a YAML/JSON dict or list of dicts") from None
    items = grid if isinstance(grid, list) else [grid]
    if not items or not all(isinstance(g, dict) for g in items):
        raise ValueError(f"--grid {path}: holds {type(grid).__name__}; allowed: a YAML/JSON dict or list of dicts")
    return items


def _sweep_grid(args):
    from .core.config import FIELDS

    given = {k: v for k, v in vars(args).items() if v is not None and (k in FIELDS or k == "seeds")}
    if "seeds" in given:
        if "seed" in given:
            raise ValueError("give --seed or --seeds, not both")
        given["seed"] = given.pop("seeds")
    return [{**g, **given} for g in _load_grid(args.grid)] if args.grid else given


def _sweep(args) -> int:
    from .core.config import FIELDS
    from .experiments import default_store, expand_grid, sweep
    from .experiments.runner import format_summary

    grid = expand_grid(_sweep_grid(args))  # bad input first: nothing is written before it is checked
    out = Path(args.out) if args.out else default_store("default")
    if out.exists() and not out.is_dir():
        raise ValueError(f"--out={out} is a file; allowed: a folder (created when missing)")
    csv = check_output_file(args.csv, "--csv") if args.csv else None
    _check_cost(grid, out, args.workers, args.allow_long)
    df = sweep(
        grid,
        out,
        workers=args.workers,
        scheduler=args.scheduler,
        timeout_s=args.timeout,
        progress=not args.no_progress,
        wait_s=args.max_wait,
    )
    varying = [c for c in FIELDS if df[c].astype(str).nunique() > 1]
    cols = [*varying, "seed", "run_id", "status", "test_elbo", "test_nll", "active_units", "wall_time_s"]
    print(df[list(dict.fromkeys(cols))].to_string(index=False, float_format=lambda v: f"{v:.4g}"))
    if csv is not None:
        write_table(df, csv, index=False)
    summary = df.attrs["summary"]
    if args.no_progress:  # otherwise sweep printed it
        print(format_summary(summary, out), file=sys.stderr)
    return 1 if summary["failed"] or summary["not_run"] else 0


def _check_cost(configs, out: Path, workers, allow_long: bool) -> None:
    """Say what a sweep will cost, before it starts: the runs the store does not hold x their epochs x
    examples at the measured rate, over the workers; above ``LONG_S`` only with ``--allow-long``."""
    from .cpuslots import check_processes
    from .experiments import store
    from .experiments.grid import estimated_seconds
    from .experiments.runner import default_workers
    from .provenance import training_version

    n = check_processes("workers", workers) if workers is not None else default_workers()
    version = training_version()
    todo = [
        c for c in configs if not (out.is_dir() and store.is_done(store.read_record(out, store.run_id(c, version))))
    ]
    seconds = sum(estimated_seconds(c) for c in todo) / n
    what = f"{len(todo)} run(s) to train on {n} worker(s)"
    if seconds > LONG_S and not allow_long:
        raise ValueError(
            f"the sweep is predicted to take about {_duration(seconds)} ({what}); allowed: a sweep under an hour, "
            f"or --allow-long to run it anyway"
        )
    if seconds > 300:
        print(f"sweep: {what}, predicted to take about {_duration(seconds)}", file=sys.stderr)


def _duration(seconds: float) -> str:
    if seconds < 3600:
        return f"{seconds / 60:.0f} min"
    hours = seconds / 3600
    return f"{hours:.1f} h" if hours < 1000 else f"{hours:.3g} h"


def build_parser() -> argparse.ArgumentParser:
    parser = _Parser(prog="python -m vae_utils", description=__doc__.splitlines()[0])
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
        print(error_line(e), file=sys.stderr)
        return 2
    except OSError as e:  # the system said no: a path, a full disk, an unreachable scheduler
        print(os_error_line(e), file=sys.stderr)
        return 1
    except KeyboardInterrupt as e:  # a sweep says what is complete; elsewhere nothing was written
        print(str(e) or "interrupted before any run was recorded; run the same command to start again", file=sys.stderr)
        return 130


if __name__ == "__main__":
    sys.exit(main())
