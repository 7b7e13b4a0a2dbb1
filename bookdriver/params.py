"""Chapter parameters: a profile's files and a reader's file, checked before anything runs.

    from bookdriver.params import load_parameters, check_parameters
    params = load_parameters("smoke", "my.yaml")         # {chapter_stem: {name: value}}
    check_parameters(params, notebooks, origin="my.yaml")  # ValueError naming chapter, name, value

A parameter file is YAML keyed by chapter stem, one mapping per chapter (``04_batch_size: {epochs:
10}``). Every value is checked against the chapter's ``parameters`` cell before any chapter runs:
the name must exist, the value must have the default's type (a list stays a non-empty list of the
default's element type) and lie in the parameter's range (``RULES``: one table for every chapter, keyed
by parameter name: seeds 0 .. 2**31 - 1, counts >= 1, names from the toolkit's lists), values that
become a ``TrainConfig`` field must be valid for it, and a results ``store`` must be a folder name,
never a path. YAML aliases are refused (``vae_utils.cli.load_yaml``).

``check_cost`` predicts a build's time from its parameters (each chapter's share of the measured cold
build, scaled by the parameters that set its runs, epochs and data) and refuses one above an hour
unless ``allow_long`` (``--allow-long``).
"""

from __future__ import annotations

import fnmatch
import json
import math
import os
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path

from vae_utils.core.config import DATASETS, KL_SCHEDULES, LR_SCHEDULES, MAX_SEED, OPTIMIZERS, SGD_VARIANTS
from vae_utils.cpuslots import MAX_PROCESSES

from .paths import ROOT, check_profile

__all__ = ["load_parameters", "check_parameters", "check_cost", "read_yaml", "reference_seconds", "RULES", "rule_for"]

LONG_S = 3600.0  # a build predicted to take longer needs --allow-long
# Seconds each chapter took at its defaults in a profile's reference cold build (two chapters at a time
# on 2 cores, so about the CPU seconds each used): bookdriver/reference_seconds.json, keyed by profile,
# written by `benchmarks/book_build.py --write-reference` from a cold build's execution cache.
REFERENCE_SECONDS = json.loads((Path(__file__).with_name("reference_seconds.json")).read_text())


def reference_seconds(profile: str) -> dict[str, float]:
    """Chapter stem -> seconds in ``profile``'s reference cold build; {} for a profile without one."""
    return {stem: float(s) for stem, s in REFERENCE_SECONDS.get(profile, {}).get("seconds", {}).items()}


CHAPTER_CPU_S = reference_seconds("full")
OTHER_CHAPTER_CPU_S = 125.0  # a chapter the reference build did not have


@dataclass(frozen=True)
class Rule:
    """The values a parameter (each item, for a list) may take: a test, and its words for the error."""

    ok: Callable[[object], bool]
    allowed: str


def _ints(lo: int, hi: int | None = None, note: str = "") -> Rule:
    words = f"an integer from {lo} to {hi}" if hi is not None else f"an integer >= {lo}"
    test = lambda v: isinstance(v, int) and not isinstance(v, bool) and lo <= v and (hi is None or v <= hi)
    return Rule(test, words + (f" ({note})" if note else ""))


def _reals(lo: float | None, above: bool = True, hi: float | None = None) -> Rule:
    """Finite numbers > lo (>= lo when not ``above``), at most ``hi``; any finite number when lo is None."""
    words = "a finite number" if lo is None else f"a number {'>' if above else '>='} {lo:g}"
    words += f" and <= {hi:g}" if hi is not None else ""

    def test(v) -> bool:
        if isinstance(v, bool) or not isinstance(v, (int, float)) or not math.isfinite(v):
            return False
        low = lo is None or (v > lo if above else v >= lo)
        return low and (hi is None or v <= hi)

    return Rule(test, words)


def _one_of(names) -> Rule:
    return Rule(lambda v: v in names, f"one of {', '.join(names)}")


def _address(v) -> bool:
    from vae_utils.experiments.runner import _check_address

    try:
        return v == "" or bool(_check_address(v))
    except ValueError:
        return False


COUNT = _ints(1)
RATE = _reals(0)
WEIGHT = _reals(0, above=False)
RULES: dict[str, Rule] = {  # parameter name (an fnmatch pattern; the first match counts) -> its range
    "workers": _ints(0, MAX_PROCESSES, "0: one per core"),
    "train_size": _ints(0, note="0: all"),
    "held_out_size": _ints(0, note="0: all"),
    "eval_every": _ints(0, note="0: after each epoch only"),
    "break_doublings": _ints(1, note="doublings of the rate the breaking-rate ladder spans above the best rate"),
    "break_per_doubling": _ints(1, note="rungs of the ladder per doubling"),
    "dataset": _one_of(DATASETS),
    "optimizer": _one_of(OPTIMIZERS),
    "optimizers": _one_of(OPTIMIZERS),
    "sgd_variant": _one_of(SGD_VARIANTS),
    "schedules": _one_of(LR_SCHEDULES),
    "kl_schedules": _one_of(KL_SCHEDULES),
    "scheduler": Rule(_address, '"" (this machine) or a Dask scheduler address tcp://HOST:PORT'),
    "store": Rule(lambda v: isinstance(v, str), "a folder name"),  # and default_store's check below
    "kl_ratio": _reals(0, hi=1),
    "budget_minutes": _reals(0, hi=24 * 60),
    "looks": _ints(1, note="the seeds a claim has at each look"),
    "target*": _reals(None),
    "delta*": RATE,
    "*seed": _ints(0, MAX_SEED),
    "*seeds": _ints(0, MAX_SEED),
    "*epochs": COUNT,
    "*updates": COUNT,
    "*_k": COUNT,
    "*_ks": COUNT,
    "*_samples": COUNT,
    "*_size": COUNT,
    "*_sizes": COUNT,
    "*_dim": COUNT,
    "*_units": COUNT,
    "*_hidden": COUNT,
    "kl_cycles": COUNT,
    "*beta": WEIGHT,
    "*betas": WEIGHT,
    "free_bits": WEIGHT,
    "*learning_rate": RATE,
    "*_rates": RATE,
    "*_lr": RATE,
    "*_lrs": RATE,
    "doublings": RATE,
    "*_factors": RATE,
}


def rule_for(name: str) -> Rule | None:
    """The range of the parameter ``name`` (None: only its type is checked)."""
    return next((rule for pattern, rule in RULES.items() if fnmatch.fnmatchcase(name, pattern)), None)


def _range_error(where: str, name: str, value) -> str | None:
    """Why ``value`` is outside the range of ``name`` (None: it is inside, or ``name`` has no rule)."""
    rule = rule_for(name)
    if rule is None:
        return None
    for label, v in [(f"{name}[{i}]", v) for i, v in enumerate(value)] if isinstance(value, list) else [(name, value)]:
        if not rule.ok(v):
            return f"{where}: {label}={v!r} is not allowed; allowed: {rule.allowed}"
    return None


def read_yaml(path: Path) -> dict:
    """A YAML mapping from ``path``; ValueError naming the file when it is missing, not YAML, or not a mapping."""
    import yaml

    from vae_utils.cli import load_yaml, yaml_problem

    try:
        with open(path, encoding="utf-8") as f:
            data = load_yaml(f) or {}
    except OSError as e:
        raise ValueError(f"{path}: cannot be read ({e.strerror or e}); allowed: a readable YAML file") from None
    except (yaml.YAMLError, UnicodeDecodeError) as e:
        raise ValueError(f"{path}: {yaml_problem(e)}; allowed: a YAML mapping") from None
    if not isinstance(data, dict):
        raise ValueError(
            f"{path}: holds a {type(data).__name__}; allowed: a YAML mapping of chapter stems to parameters"
        )
    return data


def load_parameters(profile: str, params_file: str | Path | None = None, root: Path = ROOT) -> dict[str, dict]:
    """{chapter_stem: {name: value}}: ``profiles/<profile>/*.yaml``, then ``params_file`` on top."""
    check_profile(profile, root)
    prof_dir = root / "profiles" / profile
    out: dict[str, dict] = {}
    for path in sorted(prof_dir.glob("*.yaml")) if prof_dir.is_dir() else []:
        out.setdefault(path.stem, {}).update(read_yaml(path))
    if params_file:
        for stem, values in read_yaml(Path(params_file)).items():
            if not isinstance(values, dict):
                raise ValueError(f"{params_file}: {stem!r} must map parameter names to values")
            out.setdefault(str(stem), {}).update(values)
    return out


def _yaml_number(value, default):
    """YAML 1.1 reads ``1e-3`` (no dot) as text: such text counts as a number where the default is a float."""
    if isinstance(default, list) and isinstance(value, list) and default:
        return [_yaml_number(v, default[0]) for v in value]
    if isinstance(default, float) and isinstance(value, str):
        try:
            return float(value)
        except ValueError:
            return value
    return value


def _type_error(where: str, name: str, value, default) -> str | None:
    """Why ``value`` cannot stand for a parameter whose default is ``default`` (None: it can)."""
    if isinstance(default, list):
        if not isinstance(value, list) or not value:
            return f"{where}: {name}={value!r} is not allowed; allowed: a non-empty list, like the default {default!r}"
        errors = [_type_error(where, f"{name}[{i}]", v, default[0]) for i, v in enumerate(value)] if default else []
        return next((e for e in errors if e), None)
    if isinstance(default, bool):
        ok = isinstance(value, bool)
    elif isinstance(default, int):
        ok = isinstance(value, int) and not isinstance(value, bool)
    elif isinstance(default, float):
        ok = isinstance(value, (int, float)) and not isinstance(value, bool)
    else:
        ok = default is None or isinstance(value, type(default))
    if ok:
        return None
    return (
        f"{where}: {name}={value!r} is not allowed; allowed: a {type(default).__name__}, like the default {default!r}"
    )


def _check_config_values(where: str, values: dict) -> None:
    """Validate the values that become ``TrainConfig`` fields (a name, or its plural for a list)."""
    from vae_utils.core.config import FIELDS, TrainConfig
    from vae_utils.experiments.grid import default_store

    if "store" in values:
        try:
            default_store(values["store"])
        except ValueError as e:
            raise ValueError(f"{where}: store: {e}") from None
    scalars = {k: v for k, v in values.items() if k in FIELDS}
    trials = [scalars] + [
        {**scalars, k[:-1]: v}
        for k, vs in values.items()
        if k.endswith("s") and k[:-1] in FIELDS and isinstance(vs, list)
        for v in vs
    ]
    for trial in trials:
        try:
            TrainConfig.from_dict(trial)
        except ValueError as e:
            raise ValueError(f"{where}: {e}") from None


def check_parameters(params: dict[str, dict], notebooks: dict[str, object], origin: str) -> dict[str, dict]:
    """``params`` with numbers read from YAML text; ValueError on the first unknown chapter, unknown
    name, or value its chapter cannot take."""
    from vae_utils.experiments.template import notebook_parameters

    checked = {}
    for stem, values in params.items():
        if stem not in notebooks:
            raise ValueError(f"{origin}: chapter {stem!r} is not known; allowed: {', '.join(sorted(notebooks))}")
        declared = notebook_parameters(notebooks[stem])
        unknown = sorted(set(values) - set(declared))
        if unknown:
            raise ValueError(
                f"{origin}: {stem} has no parameter {', '.join(unknown)}; allowed: {', '.join(declared) or '(none)'}"
            )
        values = {name: _yaml_number(value, declared[name].default) for name, value in values.items()}
        for name, value in values.items():
            error = _type_error(f"{origin}: {stem}", name, value, declared[name].default)
            error = error or _range_error(f"{origin}: {stem}", name, value)
            if error:
                raise ValueError(error)
        _check_config_values(f"{origin}: {stem}", {name: p.default for name, p in declared.items()} | values)
        checked[stem] = values
    return checked


def _ratio(new, old) -> float:
    """How many times ``old`` the value ``new`` is: a list's length, a count's size."""
    if isinstance(new, list) and isinstance(old, list):
        new, old = len(new), len(old)
    if isinstance(new, bool) or not isinstance(new, (int, float)) or not isinstance(old, (int, float)) or old <= 0:
        return 1.0
    try:
        return new / old
    except OverflowError:
        return math.inf


def _examples(values: dict) -> float:
    """Training examples x input size of a chapter's data (its cost per epoch, up to a constant)."""
    from vae_utils.core.data import REGISTRY

    spec = REGISTRY.get(values.get("dataset", "digits"))
    n = values.get("train_size") or (spec.train_size if spec else 1)
    return float(n) * (spec.dim if spec else 2)


def chapter_cpu_s(stem: str, values: dict, defaults: dict) -> float:
    """Predicted CPU seconds of a chapter: its share of the measured cold build at its defaults, times
    the ratio of every list (runs), epoch or update count and the data to its default (evaluation
    counts such as ``nll_k`` are left out: they cost a fraction of the training)."""
    cost = CHAPTER_CPU_S.get(stem, OTHER_CHAPTER_CPU_S)
    drivers = ("*epochs", "*updates")
    for name, value in values.items():
        old = defaults.get(name)
        if isinstance(old, list) or any(fnmatch.fnmatchcase(name, p) for p in drivers):
            cost *= _ratio(value, old)
    return cost * _ratio(_examples({**defaults, **values}), _examples(defaults))


def check_cost(params: dict[str, dict], notebooks: dict, jobs: int, allow_long: bool = False) -> float:
    """The build's predicted wall seconds (every chapter executed, ``jobs`` at a time on this machine's
    cores); ValueError naming the costliest chapters when it is above ``LONG_S`` and not ``allow_long``."""
    from vae_utils.experiments.template import notebook_parameters

    cores = len(os.sched_getaffinity(0)) if hasattr(os, "sched_getaffinity") else os.cpu_count() or 1
    costs = {}
    for stem, nb in notebooks.items():
        defaults = {k: p.default for k, p in notebook_parameters(nb).items()}
        costs[stem] = chapter_cpu_s(stem, params.get(stem, {}), defaults)
    seconds = sum(costs.values()) / max(1, min(jobs, cores))
    if seconds > LONG_S and not allow_long:
        top = sorted(costs, key=costs.get, reverse=True)[:3]
        shown = ", ".join(f"{s} ~{_hours(costs[s])} CPU" for s in top if costs[s] > 60)
        raise ValueError(
            f"the build is predicted to take about {_hours(seconds)} ({shown}; the measured cold build scaled by "
            f"the parameters that set runs, epochs and data); allowed: a build under an hour, or --allow-long "
            f"to run it anyway"
        )
    return seconds


def _hours(seconds: float) -> str:
    return f"{seconds / 60:.0f} min" if seconds < 3600 else f"{seconds / 3600:.3g} h"
