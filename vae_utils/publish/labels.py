"""Words for column names: what figures and tables call a column of a history or a results table.

    from vae_utils.publish.labels import label, LABELS
    label("test_elbo")                              # 'test ELBO (nats)'
    label("batch_size")                             # 'batch size'
    label("rank", {"rank": "latent unit, by KL"})   # a caller's own word wins
    label("my_column")                              # 'my column': never an underscore identifier
    tick_text(0.0003), tick_text(16384)             # '3×10⁻⁴', '16,384': numbers as tick labels

Code keeps the Keras-example names (``test_elbo``, ``kl_loss``, ``z_mean``); a reader sees words
with units. ``LABELS`` is the one mapping; ``vae_utils.plots`` and ``vae_utils.publish.tables`` use it for
every axis, legend title, colour bar and column header, and a caller may override any entry.
"""

from __future__ import annotations

import math
from collections.abc import Mapping

__all__ = ["LABELS", "label", "is_ordered", "tick_text"]

LABELS: dict[str, str] = {
    # results of a run (vae_utils.experiments.results.SCALAR_METRICS)
    "test_elbo": "test ELBO (nats)",
    "val_elbo": "validation ELBO (nats)",
    "train_elbo": "training ELBO (nats)",
    "elbo": "ELBO (nats)",
    "test_nll": "test NLL, IWAE (nats)",
    "nll": "NLL, IWAE (nats)",
    "test_reconstruction_loss": "test reconstruction (nats)",
    "test_kl_loss": "test KL (nats)",
    "active_units": "active latent units",
    "wall_time_s": "wall time (s)",
    "train_time_s": "training time (s)",
    "time_per_epoch_s": "time per epoch (s)",
    "seconds_per_epoch": "time per epoch (s)",
    "time_per_update_ms": "time per update (ms)",
    "samples_per_s": "throughput (examples/s)",
    "step_noise": "update-to-update loss noise (nats)",
    "activation_memory_mb": "activation memory (MB)",
    "peak_memory_mb": "peak memory (MB)",
    "diverged_epoch": "epoch of divergence",
    "diverged_step": "update of divergence",
    "epochs_completed": "epochs completed",
    "steps": "updates",
    "examples_seen": "examples seen",
    "steps_to_target": "updates to target",
    "examples_to_target": "examples to target",
    "gap": "train − validation ELBO (nats)",
    "gap_val": "train − validation ELBO (nats)",
    "gap_test": "train − test ELBO (nats)",
    "b_simple": "simple noise scale (examples)",
    # one epoch of a history (vae_utils.experiments.results.HISTORY_COLUMNS)
    "epoch": "epoch",
    "loss": "training loss (nats)",
    "reconstruction_loss": "reconstruction (nats)",
    "kl_loss": "KL (nats)",
    "lr": "learning rate at the epoch's end",
    "kl": "KL (nats)",
    "kl_per_dim": "KL per latent unit (nats)",
    "z_mean": "posterior mean",
    "z_log_var": "posterior log-variance",
    # configuration (vae_utils.core.config.FIELDS)
    "dataset": "data set",
    "batch_size": "batch size",
    "learning_rate": "learning rate",
    "optimizer": "optimizer",
    "epochs": "epochs",
    "seed": "seed",
    "latent_dim": "latent dimensions",
    "hidden_units": "hidden units",
    "beta": "β",
    "kl_schedule": "KL schedule",
    "kl_warmup_epochs": "KL warm-up epochs",
    "kl_cycles": "KL cycles",
    "kl_ratio": "KL ramp fraction",
    "free_bits": "free bits (nats per unit)",
    "lr_schedule": "learning-rate schedule",
    "lr_warmup_epochs": "warm-up epochs",
    "momentum": "momentum",
    "weight_decay": "weight decay",
    "eval_k": "importance samples",
    # summaries (vae_utils.claims.analysis.summarize)
    "mean": "mean",
    "low": "CI low",
    "high": "CI high",
    "sd": "SD",
    "n": "n",
    "n_runs": "runs",
    "n_diverged": "diverged runs",
    "half_width": "CI half-width",
}

# Hue variables with an order (sequential colours); everything else numeric is ordered too.
_UNORDERED = frozenset({"optimizer", "dataset", "kl_schedule", "lr_schedule", "setting", "budget"})


def label(name, overrides: Mapping[str, str] | None = None) -> str:
    """The words for column ``name``: ``overrides``, then ``LABELS``, else the name with spaces for
    underscores (so no figure or table shows an identifier)."""
    if name is None:
        return ""
    key = str(name)
    if overrides and key in overrides:
        return overrides[key]
    return LABELS.get(key, key.replace("_", " "))


def is_ordered(name, values) -> bool:
    """True when a variable's levels have an order (numbers: batch size, learning rate, β), so its
    colours should be sequential; False for names (optimizer, schedule) and known unordered columns."""
    import pandas as pd

    if str(name) in _UNORDERED:
        return False
    s = pd.Series(list(values))
    return bool(len(s)) and pd.api.types.is_numeric_dtype(s) and not pd.api.types.is_bool_dtype(s)


_SUPERSCRIPT = str.maketrans("-0123456789", "⁻⁰¹²³⁴⁵⁶⁷⁸⁹")


def tick_text(v, pos=None) -> str:
    """A tick label: 0.001, 3×10⁻⁴, 256, 16,384, with a true minus sign."""
    v = float(v)
    if v == 0 or not math.isfinite(v):
        return "0" if v == 0 else ""
    if abs(v) < 1e-3 or abs(v) >= 1e7:
        mant, exp = f"{v:.1e}".split("e")
        mant = mant.rstrip("0").rstrip(".")
        s = ("" if mant in ("1", "-1") else mant + "×") + "10" + str(int(exp)).translate(_SUPERSCRIPT)
        s = "-" + s if mant == "-1" else s
    elif abs(v) >= 1e4:
        s = f"{v:,.0f}"
    else:
        s = f"{v:g}"
    return s.replace("-", "−")
