"""Read a results store into tidy pandas tables (see ``vae_utils.experiments.store`` for the layout).

    from vae_utils.experiments import load_results, load_histories, load_step_losses
    runs = load_results("results/sweeps/batch-size")        # one row per run
    hist = load_histories("results/sweeps/batch-size")      # one row per (run, epoch)
    steps = load_step_losses("results/sweeps/batch-size")   # one row per (run, update)
    curves = load_curves("results/sweeps/batch-size")       # one row per (run, evaluation): eval_every runs

Every table carries ``run_id`` and the ``TrainConfig`` columns (``hidden_units`` as a tuple), so
they join and group alike. Only complete, well-formed records are read (``store.read_record``); a
run being trained, or one killed half-way, is absent until it completes, and a malformed record is
left out with a warning naming its file. Failed runs are rows with ``status == "failed"`` and NaN
metrics. A store also keeps the records of older training code (another ``code_version``): the
tables hold the current version's only, with a warning saying how many older records were left
out; ``all_versions=True`` keeps every version (the ``code_version`` column tells them apart).
``run_ids=`` reads only the runs named (e.g. those a ``sweep`` call returned). A path that holds no
store raises ``FileNotFoundError``.
"""

from __future__ import annotations

import errno
import re
import warnings
from pathlib import Path

import numpy as np
import pandas as pd

from ..core.config import FIELDS
from ..core.data import TRAIN_SIZES
from ..provenance import training_version
from .store import STEP_LOSS, read_record, run_dir

__all__ = [
    "SCALAR_METRICS",
    "load_results",
    "load_histories",
    "load_step_losses",
    "load_curves",
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

CURVE_COLUMNS = ("steps", "examples_seen", "val_elbo")


def _config_row(rec: dict) -> dict:
    cfg = dict(rec["config"])
    cfg["hidden_units"] = tuple(cfg.get("hidden_units") or ())
    return {f: cfg.get(f) for f in FIELDS}


def read_records(out, all_versions: bool = False, run_ids=None) -> list[dict]:
    """Every complete, well-formed record of the store ``out``, in run-id order: of the current
    training code only (warning how many older ones were left out), or of every version.

    ``run_ids`` (e.g. a ``sweep`` table's ``run_id`` column): read only those runs, whatever their
    version (a run id already names its code version); a large store is then not read whole."""
    out = Path(out)
    if not out.is_dir():
        raise FileNotFoundError(errno.ENOENT, "no results store here (not a folder)", str(out))
    runs = out / "runs"
    if run_ids is not None:
        run_ids = sorted(set(map(str, run_ids)))
        bad = [r for r in run_ids if not re.fullmatch(r"[0-9a-f]{16}", r)]
        if bad:
            raise ValueError(f"run_ids holds {bad[0]!r}; allowed: run ids (16 hex digits, the run_id column)")
        recs = (read_record(out, rid) for rid in run_ids)
        return [r for r in recs if r is not None]
    recs = (read_record(out, d.name) for d in sorted(runs.iterdir()) if d.is_dir()) if runs.is_dir() else ()
    recs = [r for r in recs if r is not None]
    if all_versions:
        return recs
    version = training_version()
    current = [r for r in recs if r["code_version"] == version]
    if len(current) < len(recs):
        warnings.warn(
            f"{out}: left out {len(recs) - len(current)} record(s) of older training code; kept "
            f"{len(current)} of the current version {version} (all_versions=True keeps every version)",
            UserWarning,
            stacklevel=3,
        )
    return current


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


def load_results(out, all_versions: bool = False, run_ids=None) -> pd.DataFrame:
    """One row per record in the store ``out``: config columns, run_id, status, error, the scalar
    metrics, kl_per_dim, code_version. ``all_versions``: also records of older training code."""
    return records_to_frame(read_records(out, all_versions, run_ids))


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


def load_histories(out, all_versions: bool = False, run_ids=None) -> pd.DataFrame:
    """One row per (run, epoch): run_id, the config columns, status, then the history columns.

    The history's ``learning_rate`` (the rate at the epoch's last update, which schedules move)
    is the column ``lr`` here: ``learning_rate`` is the config's (peak) rate, as in ``load_results``.
    """
    return histories_frame(read_records(out, all_versions, run_ids))


def curves_frame(records) -> pd.DataFrame:
    def make(rec):
        curve = rec.get("curve") or {}
        return pd.DataFrame({c: [_nan(v) for v in curve.get(c, [])] for c in CURVE_COLUMNS if c in curve})

    df = _long(records, make)
    for c in CURVE_COLUMNS:
        if c in df:
            df[c] = pd.to_numeric(df[c], errors="coerce")
    return df


def load_curves(out, all_versions: bool = False, run_ids=None) -> pd.DataFrame:
    """One row per (run, evaluation) of the runs trained with ``eval_every`` > 0: run_id, the config
    columns, status, ``steps`` (updates so far), ``examples_seen`` and ``val_elbo`` (the mean
    single-sample validation ELBO, as in the history). Runs without evaluations have no rows."""
    return curves_frame(read_records(out, all_versions, run_ids))


def _read_step_losses(path: Path) -> pd.DataFrame | None:
    """A run's step-loss table, or None (with a warning naming the file) when it cannot be read."""
    import pyarrow.parquet as pq

    try:
        df = pq.read_table(path).to_pandas()
    except (OSError, ValueError) as e:  # missing, a folder, not Parquet (pyarrow's errors are OSError or ValueError)
        warnings.warn(
            f"{path}: cannot be read ({e}); that run's step losses are left out", RuntimeWarning, stacklevel=4
        )
        return None
    if not {"step", "loss"} <= set(df.columns):
        warnings.warn(f"{path}: has no step and loss columns; left out", RuntimeWarning, stacklevel=4)
        return None
    return df[["step", "loss"]]


def step_losses_frame(out, records) -> pd.DataFrame:
    def make(rec):
        if rec["status"] == "failed":
            return None
        df = _read_step_losses(run_dir(out, rec["run_id"]) / STEP_LOSS)  # never a path read from the record
        if df is None:
            return None
        cfg = rec["config"]
        n_train = cfg.get("train_size") or TRAIN_SIZES[cfg["dataset"]]
        steps_per_epoch = max(1, n_train // cfg["batch_size"])  # the last partial batch is dropped
        df.insert(1, "epoch", (df["step"] - 1) // steps_per_epoch + 1)
        return df

    return _long(records, make)


def load_step_losses(out, all_versions: bool = False, run_ids=None) -> pd.DataFrame:
    """One row per (run, update): run_id, the config columns, status, step (1-based), epoch, loss."""
    return step_losses_frame(out, read_records(out, all_versions, run_ids))
