"""Grids of training runs: what a sweep trains, and where its results go.

    from vae_utils.experiments.grid import expand_grid, default_store
    expand_grid({"batch_size": [32, 64], "learning_rate": 1e-3, "seeds": [0, 1, 2]})  # 6 TrainConfigs
    default_store("batch-size")   # <repo>/results/sweeps/batch-size, or $VAE_RESULTS_DIR/sweeps/batch-size

A grid is a dict of ``TrainConfig`` fields to one value or a list of values (their cartesian
product; ``seeds`` is an alias of ``seed``), a list of such dicts (their union), a ``TrainConfig``,
or a list of them. Every config is validated, and put in canonical form, by ``TrainConfig`` itself.
"""

from __future__ import annotations

import itertools
import math
import os
from pathlib import Path

import numpy as np

from ..core.config import FIELDS, TrainConfig

__all__ = ["expand_grid", "default_store", "repo_root", "estimated_seconds", "RESULTS_ENV", "MAX_GRID_RUNS"]

RESULTS_ENV = "VAE_RESULTS_DIR"  # overrides <repo root>/results
MAX_GRID_RUNS = 100_000  # the most runs one grid may hold (the book's largest chapter trains ~500)
# CPU seconds per training example, measured (README, "Measured performance"): the digits MLP through a
# sweep, 300 runs x 30 epochs x 1,257 examples in 103 s on one worker (stacked seeds, evaluation and
# kernel included); the conv VAE, 0.67 ms per example (benchmarks/README.md, the at-scale cost model).
S_PER_EXAMPLE = {"mlp": 1e-5, "conv": 0.67e-3}
RUN_OVERHEAD_S = {"mlp": 0.1, "conv": 1.8}  # per run: evaluation, the record (same sources)


def repo_root(start: str | os.PathLike | None = None) -> Path | None:
    """The nearest folder at or above ``start`` (default: cwd) whose pyproject.toml names this project."""
    here = Path(start or os.getcwd()).resolve()
    for d in (here, *here.parents):
        p = d / "pyproject.toml"
        if p.is_file() and 'name = "vae-utils"' in p.read_text(errors="replace"):
            return d
    return None


def default_store(name: str) -> Path:
    """``<repo root>/results/sweeps/<name>``; ``$VAE_RESULTS_DIR`` replaces ``<repo root>/results``,
    and ``./results`` stands in when no repo root is found above the working directory (an
    installed package used outside the repository)."""
    if not isinstance(name, str) or not name or "/" in name or "\\" in name or name in (".", ".."):
        raise ValueError(f"name={name!r} is not allowed; allowed: a non-empty folder name without '/'")
    env = os.environ.get(RESULTS_ENV)
    if env:
        base = Path(env)
    else:
        root = repo_root()
        base = (root / "results") if root else Path("results")
    return (base / "sweeps" / name).resolve()


def _values(name, v) -> list:
    """The values a grid entry stands for: a list/tuple/array is several, anything else one.
    ``hidden_units``: a tuple, a string "256,128" or a list of ints is ONE architecture; a list of
    those is several."""
    if name == "hidden_units":
        if isinstance(v, list) and v and all(isinstance(u, (list, tuple, str)) for u in v):
            return list(v)
        return [v]
    if isinstance(v, np.ndarray):
        v = v.tolist()
    if isinstance(v, (list, tuple, range)):
        if len(v) == 0:
            raise ValueError(f"{name}=[] is not allowed; allowed: one value or a non-empty list of values")
        return list(v)
    return [v]


def _expand_dict(item: dict) -> list[TrainConfig]:
    item = dict(item)
    if "seeds" in item:
        if "seed" in item:
            raise ValueError("grid has both 'seed' and 'seeds'; allowed: one of them")
        item["seed"] = item.pop("seeds")
    for k in item:
        if k not in FIELDS:
            raise ValueError(f"grid parameter {k!r} is not allowed; allowed: {', '.join(FIELDS)} (and seeds)")
    keys = list(item)
    values = [_values(k, item[k]) for k in keys]
    _check_size(math.prod(len(v) for v in values))  # before the product is built: 10^10 used to hang
    combos = itertools.product(*values)
    return [TrainConfig.from_dict(dict(zip(keys, combo, strict=True))) for combo in combos]


def _check_size(n: int) -> None:
    if n > MAX_GRID_RUNS:
        raise ValueError(
            f"grid has {n} runs; allowed: at most {MAX_GRID_RUNS} (split it into several sweeps, or use fewer values)"
        )


def estimated_seconds(c: TrainConfig) -> float:
    """CPU seconds one run of ``c`` is expected to take: epochs x training examples x the measured
    seconds per example (scaled by the input size for the MLP), plus its evaluation."""
    from ..core.data import REGISTRY

    spec = REGISTRY[c.dataset]
    n = c.train_size or spec.train_size
    scale = max(1.0, spec.dim / 64) if c.architecture == "mlp" else 1.0
    return c.epochs * n * S_PER_EXAMPLE[c.architecture] * scale + RUN_OVERHEAD_S[c.architecture]


def expand_grid(grid) -> list[TrainConfig]:
    """The configs of a grid (see the module docstring), validated, duplicates dropped, in grid order.
    Raises ValueError naming the first bad parameter."""
    if isinstance(grid, (dict, TrainConfig)):
        grid = [grid]
    if not isinstance(grid, (list, tuple)) or not grid:
        raise ValueError(f"grid={grid!r} is not allowed; allowed: a dict, a TrainConfig, or a non-empty list of them")
    sizes = [math.prod(len(_values(k, v)) for k, v in item.items()) if isinstance(item, dict) else 1 for item in grid]
    _check_size(sum(sizes))
    configs, seen = [], set()
    for item in grid:
        if isinstance(item, TrainConfig):
            batch = [item]
        elif isinstance(item, dict):
            batch = _expand_dict(item)
        else:
            raise ValueError(
                f"grid entry {item!r} is not allowed; allowed: a dict of TrainConfig fields or a TrainConfig"
            )
        for c in batch:
            if c not in seen:
                seen.add(c)
                configs.append(c)
    return configs
