"""Training configuration: one frozen, validated dataclass per run. No TensorFlow import here.

    from vae_utils.config import TrainConfig
    TrainConfig(dataset="digits", batch_size=64, learning_rate=1e-3)   # raises ValueError on bad input

Every field is checked when the config is made; a bad value raises ``ValueError`` whose
message names the field, the value and what is allowed. Kept free of TensorFlow so that
sweeps, the CLI and the book driver can validate grids without paying the ~6 s import.
"""

from __future__ import annotations

import math
from dataclasses import asdict, dataclass, fields

import numpy as np

from .data import DATASETS, TRAIN_SIZES

__all__ = ["TrainConfig", "OPTIMIZERS", "LR_SCHEDULES", "KL_SCHEDULES", "fail"]

KL_SCHEDULES = ("constant", "linear", "cyclical", "free_bits")
OPTIMIZERS = ("sgd", "momentum", "rmsprop", "adam", "adamw")
LR_SCHEDULES = ("constant", "warmup", "cosine", "warmup_cosine")


def _is_int(v):
    return isinstance(v, (int, np.integer)) and not isinstance(v, (bool, np.bool_))


def _is_real(v):
    return isinstance(v, (int, float, np.integer, np.floating)) and not isinstance(v, (bool, np.bool_))


def fail(name, value, allowed):
    """Raise the project's bad-input error: the field, the value, what is allowed."""
    raise ValueError(f"{name}={value!r} is not allowed; allowed: {allowed}")


@dataclass(frozen=True)
class TrainConfig:
    """Everything that defines one training run. Validated on creation; hashable; ``asdict``-able."""

    dataset: str = "digits"  # one of DATASETS
    batch_size: int = 64  # examples per update; 1 .. training-set size
    learning_rate: float = 1e-3  # peak learning rate
    optimizer: str = "adam"  # sgd, momentum (SGD + 0.9 momentum), rmsprop, adam, adamw
    epochs: int = 30  # passes over the training set (the last partial batch is dropped)
    seed: int = 0  # initial weights, shuffles, binarization and sampling noise
    latent_dim: int = 8  # latent dimensions
    hidden_units: tuple[int, ...] = (256,)  # encoder widths; the decoder mirrors them
    beta: float = 1.0  # KL weight; 1 is the ELBO
    kl_schedule: str = "constant"  # constant, linear (warm-up), cyclical, free_bits
    kl_warmup_epochs: int = 10  # linear: epochs to ramp the KL weight from 0 to beta
    kl_cycles: int = 4  # cyclical: number of cycles M over the run (Fu et al. 2019)
    kl_ratio: float = 0.5  # cyclical: fraction R of each cycle spent ramping up
    free_bits: float = 0.25  # free_bits: nats per latent dimension below which KL is not penalized
    lr_schedule: str = "constant"  # constant, warmup (linear, then constant), cosine (to 0), warmup_cosine
    lr_warmup_epochs: int = 5  # warmup and warmup_cosine: epochs of linear warm-up
    momentum: float = 0.9  # momentum optimizer only
    weight_decay: float = 0.004  # adamw only (the Keras default)
    decoder_variance: float | None = 1.0  # Gaussian data: fixed decoder variance; None: learned
    eval_k: int = 500  # importance samples for the test NLL (IWAE bound)
    split_seed: int = 0  # the dataset's train/val/test split (kept fixed across runs)

    def __post_init__(self):
        if isinstance(self.hidden_units, (list, np.ndarray)):
            object.__setattr__(self, "hidden_units", tuple(self.hidden_units))
        for f in fields(self):  # normalise numpy scalars so configs hash and serialise alike
            v = getattr(self, f.name)
            if isinstance(v, np.integer) and not isinstance(v, np.bool_):
                object.__setattr__(self, f.name, int(v))
            elif isinstance(v, np.floating):
                object.__setattr__(self, f.name, float(v))
        self._validate()

    def _validate(self):
        c = self
        if c.dataset not in DATASETS:
            fail("dataset", c.dataset, ", ".join(DATASETS))
        for name in (
            "batch_size",
            "epochs",
            "latent_dim",
            "kl_warmup_epochs",
            "kl_cycles",
            "lr_warmup_epochs",
            "eval_k",
        ):
            v = getattr(c, name)
            if not _is_int(v) or v < 1:
                fail(name, v, "an integer >= 1")
        for name in ("seed", "split_seed"):
            v = getattr(c, name)
            if not _is_int(v) or v < 0:
                fail(name, v, "an integer >= 0")
        n_train = TRAIN_SIZES[c.dataset]
        if c.batch_size > n_train:
            fail("batch_size", c.batch_size, f"1 .. {n_train} (the {c.dataset} training set)")
        if not _is_real(c.learning_rate) or not math.isfinite(c.learning_rate) or c.learning_rate <= 0:
            fail("learning_rate", c.learning_rate, "a finite number > 0")
        if not isinstance(c.optimizer, str) or c.optimizer not in OPTIMIZERS:
            fail("optimizer", c.optimizer, ", ".join(OPTIMIZERS))
        if not isinstance(c.kl_schedule, str) or c.kl_schedule not in KL_SCHEDULES:
            fail("kl_schedule", c.kl_schedule, ", ".join(KL_SCHEDULES))
        if not isinstance(c.lr_schedule, str) or c.lr_schedule not in LR_SCHEDULES:
            fail("lr_schedule", c.lr_schedule, ", ".join(LR_SCHEDULES))
        if not _is_real(c.beta) or not math.isfinite(c.beta) or c.beta < 0:
            fail("beta", c.beta, "a finite number >= 0")
        if not _is_real(c.free_bits) or not math.isfinite(c.free_bits) or c.free_bits < 0:
            fail("free_bits", c.free_bits, "a finite number >= 0")
        if not _is_real(c.kl_ratio) or not 0 < c.kl_ratio <= 1:
            fail("kl_ratio", c.kl_ratio, "a number in (0, 1]")
        if not _is_real(c.momentum) or not 0 <= c.momentum < 1:
            fail("momentum", c.momentum, "a number in [0, 1)")
        if not _is_real(c.weight_decay) or not math.isfinite(c.weight_decay) or c.weight_decay < 0:
            fail("weight_decay", c.weight_decay, "a finite number >= 0")
        if c.decoder_variance is not None and (
            not _is_real(c.decoder_variance) or not math.isfinite(c.decoder_variance) or c.decoder_variance <= 0
        ):
            fail("decoder_variance", c.decoder_variance, "a finite number > 0, or None (learned)")
        if not isinstance(c.hidden_units, tuple) or not all(_is_int(u) and u >= 1 for u in c.hidden_units):
            fail("hidden_units", c.hidden_units, "a tuple of integers >= 1 (may be empty: linear maps)")

    def model_config(self, input_dim: int, likelihood: str):
        from .model import ModelConfig  # imports Keras: only when a model is built

        return ModelConfig(input_dim, self.latent_dim, self.hidden_units, likelihood, self.decoder_variance)

    def to_dict(self) -> dict:
        d = asdict(self)
        d["hidden_units"] = list(self.hidden_units)
        return d
