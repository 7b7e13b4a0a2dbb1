"""Read a results store into tidy pandas tables (see ``vae_utils.experiments.store`` for the layout).

    from vae_utils.experiments import load_results, load_histories, load_step_losses
    runs = load_results("results/sweeps/batch-size")        # one row per run
    hist = load_histories("results/sweeps/batch-size")      # one row per (run, epoch)
    steps = load_step_losses("results/sweeps/batch-size")   # one row per (run, update)

Every table carries ``run_id`` and the ``TrainConfig`` columns (``hidden_units`` as a tuple), so
they join and group alike. Only complete records are read; a run being trained, or one killed
half-way, is absent until it completes. Failed runs are rows with ``status == "failed"`` and
NaN metrics. A store keeps the records of older code versions too (their ``code_version``
differs); ``sweep`` returns the rows of its own grid at the current version.
"""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pandas as pd

from ..config import FIELDS
from ..data import TRAIN_SIZES
from .store import read_record

__all__ = [
    "SCALAR_METRICS",
    "load_results",
    "load_histories",
    "load_step_losses",
    "records_to_frame",
    "read_records",
]

SCALAR_METRICS = (
    "test_elbo",
    "test_nll",
    "test_reconstruction_loss",
    "test_kl_loss",
    "val_elbo",
    "train_elbo",
    "active_units",
    "wall_time_s",
    "train_time_s",
    "samples_per_s",
    "step_noise",
    "activation_memory_mb",
    "peak_memory_mb",
    "diverged_epoch",
    "diverged_step",
    "epochs_completed",
    "steps",
    "examples_seen",
)
HISTORY_COLUMNS = (
    "epoch",
    "steps",
    "examples_seen",
    "wall_time_s",
    "loss",
    "reconstruction_loss",
    "kl_loss",
    "val_elbo",
    "learning_rate",
)


def _config_row(rec: dict) -> dict:
    cfg = dict(rec["config"])
    cfg["hidden_units"] = tuple(cfg.get("hidden_units") or ())
    return {f: cfg.get(f) for f in FIELDS}


def read_records(out) -> list[dict]:
    """Every complete record of a store, in run-id order."""
    runs = Path(out) / "runs"
    if not runs.is_dir():
        return []
    recs = (read_record(out, d.name) for d in sorted(runs.iterdir()) if d.is_dir())
    return [r for r in recs if r is not None]


def _nan(v):
    return np.nan if v is None else v


def records_to_frame(records: list[dict]) -> pd.DataFrame:
    """The tidy results table of some records: config columns, run_id, status, error, metrics, kl_per_dim."""
    rows = []
    for rec in records:
        m = rec.get("metrics") or {}
        row = _config_row(rec)
        row.update(run_id=rec["run_id"], status=rec["status"], error=rec.get("error"))
        row.update({k: _nan(m.get(k)) for k in SCALAR_METRICS})
        row["kl_per_dim"] = [_nan(v) for v in m.get("kl_per_dim") or []]
        row.update(code_version=rec.get("code_version"), notebook=rec.get("notebook"))
        rows.append(row)
    columns = [
        *FIELDS,
        "run_id",
        "status",
        "error",
        *SCALAR_METRICS,
        "kl_per_dim",
        "code_version",
        "notebook",
    ]
    df = pd.DataFrame(rows, columns=columns)
    for k in SCALAR_METRICS:
        df[k] = pd.to_numeric(df[k], errors="coerce").astype(float)
    return df


def load_results(out) -> pd.DataFrame:
    """One row per record in the store ``out``: config columns, run_id, status, error, the scalar metrics, kl_per_dim."""
    return records_to_frame(read_records(out))


def _long(records, make) -> pd.DataFrame:
    parts = []
    for rec in records:
        part = make(rec)
        if part is None or len(part) == 0:
            continue
        keys = {"run_id": rec["run_id"], **_config_row(rec), "status": rec["status"]}
        for i, (k, v) in enumerate(keys.items()):
            part.insert(i, k, [v] * len(part))
        parts.append(part)
    return pd.concat(parts, ignore_index=True) if parts else pd.DataFrame()


def histories_frame(records) -> pd.DataFrame:
    def make(rec):
        h = rec.get("history") or {}
        part = pd.DataFrame({c: [_nan(v) for v in h.get(c, [])] for c in HISTORY_COLUMNS if c in h})
        return part.rename(columns={"learning_rate": "lr"})  # "learning_rate" is the config's column

    df = _long(records, make)
    for c in [*HISTORY_COLUMNS, "lr"]:
        if c in df:
            df[c] = pd.to_numeric(df[c], errors="coerce")
    return df


def load_histories(out) -> pd.DataFrame:
    """One row per (run, epoch): run_id, the config columns, status, then the history columns.

    The history's ``learning_rate`` (the rate at the epoch's last update, which schedules move)
    is the column ``lr`` here: ``learning_rate`` is the config's (peak) rate, as in ``load_results``.
    """
    return histories_frame(read_records(out))


def step_losses_frame(out, records) -> pd.DataFrame:
    import pyarrow.parquet as pq

    def make(rec):
        if not rec.get("step_loss"):
            return None
        path = Path(out) / "runs" / rec["run_id"] / rec["step_loss"]
        df = pq.read_table(path).to_pandas()
        cfg = rec["config"]
        steps_per_epoch = max(1, TRAIN_SIZES[cfg["dataset"]] // cfg["batch_size"])  # the last partial batch is dropped
        df.insert(1, "epoch", (df["step"] - 1) // steps_per_epoch + 1)
        return df

    return _long(records, make)


def load_step_losses(out) -> pd.DataFrame:
    """One row per (run, update): run_id, the config columns, status, step (1-based), epoch, loss."""
    return step_losses_frame(out, read_records(out))
