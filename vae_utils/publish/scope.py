"""The scope of a verdict, computed from the runs it judged: never typed.

    from vae_utils.publish.scope import scope_of
    s = scope_of(runs, tuned_on=[10, 11, 12])  # runs: the rows of ``sweep`` a verdict rests on
    s["text"]   # 'digits (1,257 training images, dynamic binarization), 64-256-8 MLP, Adam, batch 64,
                #  30 epochs, 10 seeds (0–9); rates tuned on 3 other seeds (10–12)'

The record names the dataset, the training images, the model, the optimizers, the batch sizes, the
budget (epochs, with the updates they make), β when it is not 1, the seeds, the number of runs and how
many of them diverged (not in the text: for the checks of a built book's verdicts.json), so
a page's scope always matches the configs of the runs in the store (a test compares them). Light: no
TensorFlow; pandas only for the frame it reads.
"""

from __future__ import annotations

import reprlib
from collections.abc import Iterable, Sequence, Set

from ..core.config import TrainConfig
from ..core.data import REGISTRY
from .numbers import fmt, quantity

__all__ = ["scope_of", "scope_text", "model_name", "span", "join_and", "provenance_of"]

_OPTIMIZER_NAMES = {"sgd": "SGD", "momentum": "SGD with momentum", "rmsprop": "RMSprop", "adam": "Adam",
                    "adamw": "AdamW"}  # fmt: skip
_DEFAULT = TrainConfig()


def _values(runs, column: str) -> list:
    """The distinct values of ``column`` over ``runs``, sorted (the config default when absent)."""
    if column not in runs:
        return [getattr(_DEFAULT, column)]
    vals = {None if v != v else v for v in runs[column].tolist()}  # NaN (absent) as None
    return sorted(vals, key=lambda v: (v is None, v if v is not None else 0))


def span(values: Sequence, unit: str = "", many: str = "") -> str:
    """'64', '64 and 128', '16 to 512' (with ``unit`` after, and ``many`` before a range)."""
    vals = [fmt(v) if isinstance(v, int | float) else str(v) for v in values]
    u = f" {unit}" if unit else ""
    if len(vals) == 1:
        return quantity(values[0], unit) if isinstance(values[0], int | float) else f"{vals[0]}{u}"
    if len(vals) == 2:
        return f"{vals[0]} and {vals[1]}{u}"
    return f"{many}{vals[0]} to {vals[-1]}{u}"


def join_and(items: Sequence[str]) -> str:
    """'a', 'a and b', 'a, b and c'."""
    items = list(items)
    return " and ".join(items) if len(items) < 3 else f"{', '.join(items[:-1])} and {items[-1]}"


def model_name(dataset: str, architecture: str, hidden_units: tuple, latent_dim: int) -> str:
    """'64-256-8 MLP' or 'conv VAE (16 latent dimensions)'."""
    if architecture == "conv":
        return f"conv VAE ({latent_dim} latent dimensions)"
    spec = REGISTRY.get(dataset)
    widths = [str(spec.dim) if spec else "?", *map(str, hidden_units), str(latent_dim)]
    return "-".join(widths) + " MLP"


def _images(runs) -> str:
    """'1,257 training images': each run's ``train_size``, or its dataset's whole training split."""
    sizes = set()
    for dataset, size in _rows(runs, ("dataset", "train_size")):
        full = REGISTRY[dataset].train_size if dataset in REGISTRY else None
        n = full if size is None or size != size or size == 0 else size  # None, NaN, 0: the whole split
        sizes |= {int(n)} if n is not None else set()
    return span(sorted(sizes), "training images") if sizes else "training images not known"


def _seeds(seeds: list) -> str:
    seeds = sorted(int(s) for s in seeds)
    contiguous = seeds == list(range(seeds[0], seeds[-1] + 1)) if seeds else False
    if len(seeds) == 1:
        return f"1 seed ({seeds[0]})"
    which = (
        f"{seeds[0]}–{seeds[-1]}" if contiguous else ", ".join(map(str, seeds[:6])) + ("…" if len(seeds) > 6 else "")
    )
    return f"{len(seeds)} seeds ({which})"


def scope_of(runs, tuned_on: Iterable[int] | None = None, tuned: str = "rates") -> dict:
    """The scope of a verdict judged on ``runs`` (a frame of run configs, or several frames): a dict
    with the facts and ``text``, one line for a page. ``tuned_on``: the seeds ``tuned`` (the rates)
    were chosen on, when the verdict compares tuned settings."""
    import pandas as pd

    frames = [runs] if isinstance(runs, pd.DataFrame) else list(runs)
    runs = pd.concat(frames, ignore_index=True) if frames else pd.DataFrame()
    if "run_id" in runs:  # a run two frames share is one run
        runs = runs.drop_duplicates("run_id")
    if runs.empty:
        return {"runs": 0, "diverged": 0, "text": "no runs"}
    datasets = _values(runs, "dataset")
    models = sorted(
        {model_name(*row) for row in _rows(runs, ("dataset", "architecture", "hidden_units", "latent_dim"))}
    )
    s = {
        "dataset": datasets,
        "training_images": _images(runs),
        "binarization": _values(runs, "binarization"),
        "model": models,
        "optimizer": [_OPTIMIZER_NAMES.get(o, o) for o in _values(runs, "optimizer")],
        "batch_size": [int(b) for b in _values(runs, "batch_size")],
        "epochs": [int(e) for e in _values(runs, "epochs")],
        "beta": [float(b) for b in _values(runs, "beta")],
        "seeds": sorted(int(x) for x in _values(runs, "seed")),
        "runs": len(runs),
        "diverged": _diverged(runs),
        "tuned_on": sorted(int(x) for x in tuned_on) if tuned_on is not None else None,
        "tuned": tuned,
    }
    return s | {"text": scope_text(s)}


def _diverged(runs) -> int:
    """How many of the runs diverged: status not "ok", or a held-out bound not finite (as
    ``claims.protocol.unstable``). A verdict whose runs diverged must say how they entered its effect."""
    import numpy as np

    bad = runs["status"].ne("ok").to_numpy() if "status" in runs else np.zeros(len(runs), bool)
    for metric in ("test_elbo", "test_nll"):
        if metric in runs:
            bad = bad | ~np.isfinite(runs[metric].to_numpy(np.float64))
    return int(bad.sum())


def _rows(runs, columns):
    cols = [runs[c] if c in runs else [getattr(_DEFAULT, c)] * len(runs) for c in columns]
    return {tuple(tuple(v) if isinstance(v, list) else v for v in row) for row in zip(*cols, strict=True)}


def scope_text(s: dict) -> str:
    """One line from a ``scope_of`` record."""
    titles = [(REGISTRY[d].title if d in REGISTRY else None) or d for d in s["dataset"]]
    data = f"{join_and(titles)} ({s['training_images']}, {join_and(s['binarization'])} binarization)"
    parts = [data, join_and(s["model"]), join_and(s["optimizer"])]
    parts.append("batch " + span(s["batch_size"]) if len(s["batch_size"]) == 1 else "batches " + span(s["batch_size"]))
    parts.append(span(s["epochs"], "epochs"))
    if s["beta"] != [1.0]:
        parts.append("β " + span(s["beta"]))
    parts.append(_seeds(s["seeds"]))
    text = ", ".join(parts)
    if s.get("tuned_on"):
        text += f"; {s['tuned']} tuned on {_seeds(s['tuned_on']).replace(' seed', ' other seed', 1)}"
    return text


def provenance_of(provenance) -> dict | None:
    """A figure's or table's provenance: a dict as it is, or the runs it shows (a frame of ``sweep`` rows,
    or several) as {"scope": their scope's text, "runs": how many}, so a caption's budget and seeds are
    the runs' own, never typed."""
    import pandas as pd

    if provenance is None or isinstance(provenance, dict):
        return provenance
    several = isinstance(provenance, Iterable) and not isinstance(provenance, str | bytes | pd.Series | Set)
    frames = [provenance] if isinstance(provenance, pd.DataFrame) else list(provenance) if several else None
    if frames is None or not all(isinstance(f, pd.DataFrame) for f in frames):
        what = f"[{', '.join(type(f).__name__ for f in frames)}]" if frames else reprlib.repr(provenance)
        raise ValueError(f"provenance={what} is not allowed; allowed: a dict, None, or the runs (data frames)")
    s = scope_of(frames)
    return {"scope": s["text"], "runs": s["runs"]}
