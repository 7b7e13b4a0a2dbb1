"""Command line of the book driver: ``python -m bookdriver build|params`` (see the package docstring)."""

from __future__ import annotations

import argparse
import hashlib
import json
import sys
from pathlib import Path

from .params import load_parameters
from .paths import ROOT, book_paths
from .stage import stage

__all__ = ["main"]


def _digest(obj) -> str:
    return hashlib.sha256(json.dumps(obj, sort_keys=True, default=str).encode()).hexdigest()[:12]


def _jobs(text: str) -> int:
    from vae_utils.cpuslots import MAX_PROCESSES

    try:
        value = int(text)
    except ValueError:
        value = 0
    if not 1 <= value <= MAX_PROCESSES:
        raise argparse.ArgumentTypeError(f"jobs={text!r} is not allowed; allowed: an integer from 1 to {MAX_PROCESSES}")
    return value


def _parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(prog="python -m bookdriver", description="Build the book VAE Training Strategies.")
    sub = parser.add_subparsers(dest="command", required=True)
    commands = (("build", "stage, execute and build the HTML book"), ("params", "print the parameters"),
                ("check", "check a built book's pages against its verdicts"))  # fmt: skip
    for name, help_ in commands:
        p = sub.add_parser(name, help=help_)
        p.add_argument("--profile", default="full", help="full (default) or a folder name of profiles/, e.g. smoke")
        p.add_argument("--params", metavar="FILE", help="YAML keyed by chapter stem: {04_batch_size: {epochs: 10}}")
        p.add_argument("--root", type=Path, default=ROOT, help=argparse.SUPPRESS)
        if name == "build":
            p.add_argument("--all", action="store_true", help="re-read every page (the execution cache still holds)")
            p.add_argument("-v", "--verbose", action="store_true", help="show Sphinx's own progress lines")
            p.add_argument(
                "-j",
                "--jobs",
                type=_jobs,
                default=None,
                help="CPU budget: chapters executed at once, and training processes at once across them (default: the cores)",
            )
            p.add_argument("--allow-long", action="store_true", help="run a build predicted to take over an hour")
    return parser


def _run(args) -> int:
    from .build import build

    if args.command == "build":
        return build(args.profile, args.params, args.root, args.all, not args.verbose, args.jobs, args.allow_long)
    paths = book_paths(args.profile, args.root)
    if args.command == "check":
        from .consistency import check

        problems = check(paths.html)
        print("\n".join(problems) or f"{paths.html}: no contradiction between the pages and verdicts.json")
        return 1 if problems else 0
    effective = stage(paths, load_parameters(args.profile, args.params, args.root), verbose=False)
    print(json.dumps({"profile": args.profile, "digest": _digest(effective), "chapters": effective}, indent=2))
    return 0


def main(argv=None) -> int:
    """Exit codes: 0 built; 1 a chapter or Sphinx failed (the chapter's name, its error and the
    command to resume), another build of this tree runs (its pid, host and start), or the system
    refused (one line naming the path and what to do); 2 bad input (profile, parameters, YAML); 130 interrupted by Ctrl-C or SIGTERM (what the cache holds)."""
    import yaml

    from vae_utils.cli import error_line, os_error_line

    from .build import BuildLocked

    args = _parser().parse_args(argv)
    try:
        return _run(args)
    except ValueError as e:
        print(error_line(e), file=sys.stderr)
        return 2
    except yaml.YAMLError as e:  # the book's own _toc.yml or _config.yml
        print(error_line(f"a YAML file of the book is not valid: {e}"), file=sys.stderr)
        return 2
    except OSError as e:
        print(os_error_line(e), file=sys.stderr)
        return 1
    except BuildLocked as e:  # another build of this tree runs: one line naming it
        print(f"error: {e}", file=sys.stderr)
        return 1
    except KeyboardInterrupt as e:
        print(str(e) or "interrupted; run the same command to resume", file=sys.stderr)
        return 130
