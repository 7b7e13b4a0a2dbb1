"""The runs this process's sweeps returned: a chapter's run table, one row per run.

    from vae_utils.experiments.ledger import runs_used
    runs = runs_used()   # config, seed, run_id, status, error, metrics of every run swept so far

Every ``sweep`` call records the frame it returns; ``runs_used`` is their union (a run returned by
two calls counts once), so a chapter can publish exactly the runs it used (``publish.tables.publish_data``)
even when its results store holds other chapters' runs too. ``forget`` starts a new ledger.
"""

from __future__ import annotations

import pandas as pd

__all__ = ["record", "runs_used", "forget", "publish_runs"]

_FRAMES: list[pd.DataFrame] = []
_FIRST = ["run_id", "status", "dataset", "batch_size", "learning_rate", "optimizer", "epochs", "seed"]


def record(frame: pd.DataFrame) -> None:
    """Remember the runs of one ``sweep`` call."""
    _FRAMES.append(frame.copy())


def forget() -> None:
    _FRAMES.clear()


def runs_used() -> pd.DataFrame:
    """One row per run the sweeps of this process returned, the identifying columns first; list
    values (``hidden_units``, ``kl_per_dim``) as text, so the table writes as CSV."""
    if not _FRAMES:
        return pd.DataFrame(columns=_FIRST)
    runs = pd.concat(_FRAMES, ignore_index=True).drop_duplicates("run_id", keep="last")
    for column in runs.columns:
        if runs[column].map(lambda v: isinstance(v, (list, tuple))).any():
            runs[column] = runs[column].map(lambda v: " ".join(map(str, v)) if isinstance(v, (list, tuple)) else v)
    first = [c for c in _FIRST if c in runs.columns]
    return runs[first + [c for c in runs.columns if c not in first]].reset_index(drop=True)


def publish_runs(name: str) -> str:
    """In a chapter: publish ``runs_used()`` as its run table, ``_static/tables/<name>.csv`` (every run the
    chapter used: configuration, seed, status, metrics)."""
    from ..publish.tables import publish_data

    return publish_data(runs_used(), name)
