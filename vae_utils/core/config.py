"""Training configuration: one frozen, validated dataclass per run. No TensorFlow import here.

    from vae_utils.core.config import TrainConfig
    TrainConfig(dataset="digits", batch_size=64, learning_rate=1e-3)   # raises ValueError on bad input
    TrainConfig.from_dict({"learning_rate": "1e-3", "hidden_units": "256,128"})  # from YAML, JSON, a CLI

Every field is checked when the config is made; a bad value raises ``ValueError`` whose
message names the field, the value and what is allowed. Values are also put in one canonical
form there (the only place the project does it): integers in float fields become floats, numpy
scalars Python numbers, ``hidden_units`` a tuple. So ``beta=1`` and ``beta=1.0`` are one config
with one run id, however it was written. ``from_dict`` also reads text, as YAML, a command line
or a papermill parameter gives it: "1e-3" a number, "256,128" two widths, "learned" None.
Kept free of TensorFlow so that sweeps, the CLI and the book driver can validate grids
without paying the ~6 s import; the project's TensorFlow-free constants live here too.
"""

from __future__ import annotations

import math
from dataclasses import asdict, dataclass, fields

import numpy as np

from .data import DATASETS, HELD_OUT_SIZES, IMAGE_SHAPES, TRAIN_SIZES
from .optimizers import OPTIMIZERS

__all__ = [
    "TrainConfig",
    "FIELDS",
    "OPTIMIZERS",
    "ARCHITECTURES",
    "LR_SCHEDULES",
    "KL_SCHEDULES",
    "ACTIVE_THRESHOLD",
    "MAX_SEED",
    "SGD_VARIANTS",
    "fail",
]

KL_SCHEDULES = ("constant", "linear", "cyclical", "free_bits")
ARCHITECTURES = ("mlp", "conv")  # as vae_utils.core.model.ARCHITECTURES (kept free of Keras here)
LR_SCHEDULES = ("constant", "warmup", "cosine", "warmup_cosine")
SGD_VARIANTS = ("sgd", "momentum")  # the optimizers that count as SGD where a chapter compares Adam with "SGD"
ACTIVE_THRESHOLD = 0.01  # a latent unit is active when Var_x(E_q[z_u]) exceeds this (Burda et al. 2016)
BINARIZATIONS = ("dynamic", "static")
MAX_SEED = 2**31 - 1  # TensorFlow's seeds are int32
FLOAT_FIELDS = ("learning_rate", "beta", "kl_ratio", "free_bits", "momentum", "weight_decay", "decoder_variance")


def _is_int(v):
    return isinstance(v, (int, np.integer)) and not isinstance(v, (bool, np.bool_))


def _is_real(v):
    return isinstance(v, (int, float, np.integer, np.floating)) and not isinstance(v, (bool, np.bool_))


def _number(text: str, want_int: bool):
    try:
        return int(text) if want_int else float(text)
    except ValueError:
        return text  # left as it is: validation names the field


def _parse(name: str, v, default):
    """A config value given as text (YAML, a command line, papermill) as the value it stands for."""
    if not isinstance(v, str):
        return v
    if name == "hidden_units":
        return tuple(_number(u.strip(), True) for u in v.split(",") if u.strip())
    if name == "decoder_variance" and v.strip().lower() in ("learned", "none", "null"):
        return None
    if name in ("train_size", "held_out_size"):
        return None if v.strip().lower() in ("all", "none", "null", "") else _number(v.strip(), want_int=True)
    if isinstance(default, (int, float)) and not isinstance(default, bool):
        return _number(v.strip(), want_int=isinstance(default, int) and name not in FLOAT_FIELDS)
    return v


def _canonical(name: str, v):
    """The one normalisation of a config value (see the module docstring); never validates."""
    if isinstance(v, np.generic):  # numpy scalars hash and serialise like Python numbers
        v = v.item()
    if name == "hidden_units":
        if _is_int(v):
            return (int(v),)
        if isinstance(v, (list, tuple, np.ndarray)):
            return tuple(u.item() if isinstance(u, np.generic) else u for u in v)
        return v
    if name in FLOAT_FIELDS and _is_int(v):
        return float(v)
    if name in ("train_size", "held_out_size") and _is_int(v) and v == 0:
        return None  # 0 means all, as the chapters document it: one config with None
    return v


def fail(name, value, allowed):
    """Raise the project's bad-input error: the field, the value, what is allowed."""
    raise ValueError(f"{name}={value!r} is not allowed; allowed: {allowed}")


@dataclass(frozen=True)
class TrainConfig:
    """Everything that defines one training run. Validated on creation; hashable; ``asdict``-able."""

    dataset: str = "digits"  # one of DATASETS
    batch_size: int = 64  # examples per update; 1 .. training-set size
    learning_rate: float = 1e-3  # peak learning rate
    optimizer: str = "adam"  # one of OPTIMIZERS: sgd, momentum (SGD with momentum), rmsprop, adam, adamw
    epochs: int = 30  # passes over the training set (the last partial batch is dropped)
    seed: int = 0  # initial weights, shuffles, binarization and sampling noise
    latent_dim: int = 8  # latent dimensions
    hidden_units: tuple[int, ...] = (256,)  # mlp: encoder widths, mirrored; conv: dense widths after the convs
    architecture: str = "mlp"  # mlp (dense layers), conv (the Keras example's conv VAE; image datasets only)
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
    decoder_variance: float | None = 1.0  # Gaussian data: fixed decoder variance; None (or "learned"): learned
    eval_k: int = 100  # importance samples for the test NLL (IWAE bound; 100 as in the advisor and at scale)
    eval_every: int = 0  # also the validation ELBO every n updates (TrainResult.curve); 0: after each epoch only
    split_seed: int = 0  # the dataset's train/val/test split (kept fixed across runs)
    train_size: int | None = None  # train on the first n of the (shuffled) training split; None, 0, "all": all
    held_out_size: int | None = None  # evaluate on the first n validation and n test examples; None, 0 or "all": all
    binarization: str = "dynamic"  # Bernoulli data: dynamic (a fresh binary draw every epoch), static (one fixed draw)

    def __post_init__(self):
        for f in fields(self):
            object.__setattr__(self, f.name, _canonical(f.name, getattr(self, f.name)))
        self._validate()

    @classmethod
    def from_dict(cls, values: dict) -> TrainConfig:
        """A config from a mapping whose values may be text (YAML, JSON, a record, a command line).

        Unknown keys raise ValueError naming them and the known fields."""
        if not isinstance(values, dict):
            fail("config", values, "a mapping of TrainConfig fields to values")
        defaults = {f.name: f.default for f in fields(cls)}
        unknown = sorted(set(values) - set(defaults))
        if unknown:
            raise ValueError(
                f"config field(s) {', '.join(map(repr, unknown))} are not known; allowed: {', '.join(defaults)}"
            )
        return cls(**{k: _parse(k, v, defaults[k]) for k, v in values.items()})

    def _validate(self):
        """Each field against its rule; the first bad one raises ``fail`` naming it."""
        if self.dataset not in DATASETS:
            fail("dataset", self.dataset, ", ".join(DATASETS))
        _check_counts(self)
        _check_sizes(self)
        _check_numbers(self)
        _check_names(self)
        _check_architecture(self)

    def model_config(self, input_dim: int, likelihood: str, image_shape: tuple[int, int] | None = None):
        """The model's architecture for data of ``input_dim`` features; conv reads ``image_shape``
        (by default the dataset's, from ``data.IMAGE_SHAPES``)."""
        from .model import ModelConfig  # imports Keras: only when a model is built

        shape = None
        if self.architecture == "conv":
            shape = tuple(image_shape) if image_shape is not None else IMAGE_SHAPES.get(self.dataset)
        return ModelConfig(
            input_dim, self.latent_dim, self.hidden_units, likelihood, self.decoder_variance, self.architecture, shape
        )

    def to_dict(self) -> dict:
        d = asdict(self)
        d["hidden_units"] = list(self.hidden_units)
        return d


FIELDS = tuple(f.name for f in fields(TrainConfig))  # in declaration order: the config columns of every table


# -- the rules of _validate, field by field ---------------------------------------------------------

_COUNTS = ("batch_size", "epochs", "latent_dim", "kl_warmup_epochs", "kl_cycles", "lr_warmup_epochs", "eval_k")
# name: (whether the value is allowed, what is allowed); every number must be real (not bool)
_NUMBERS = {
    "learning_rate": (lambda v: math.isfinite(v) and v > 0, "a finite number > 0"),
    "beta": (lambda v: math.isfinite(v) and v >= 0, "a finite number >= 0"),
    "free_bits": (lambda v: math.isfinite(v) and v >= 0, "a finite number >= 0"),
    "kl_ratio": (lambda v: 0 < v <= 1, "a number in (0, 1]"),
    "momentum": (lambda v: 0 <= v < 1, "a number in [0, 1)"),
    "weight_decay": (lambda v: math.isfinite(v) and v >= 0, "a finite number >= 0"),
}
_NAMES = {  # name: the allowed values (read when checked: registries may grow)
    "optimizer": lambda: OPTIMIZERS,
    "kl_schedule": lambda: KL_SCHEDULES,
    "lr_schedule": lambda: LR_SCHEDULES,
    "binarization": lambda: BINARIZATIONS,
    "architecture": lambda: ARCHITECTURES,
}


def _check_counts(c: TrainConfig) -> None:
    for name in _COUNTS:
        v = getattr(c, name)
        if not _is_int(v) or v < 1:
            fail(name, v, "an integer >= 1")
    if not _is_int(c.eval_every) or c.eval_every < 0:
        fail("eval_every", c.eval_every, "an integer >= 0 (0: the validation ELBO after each epoch only)")
    for name in ("seed", "split_seed"):
        v = getattr(c, name)
        if not _is_int(v) or not 0 <= v <= MAX_SEED:
            fail(name, v, f"an integer from 0 to {MAX_SEED} (2**31 - 1)")
    if not isinstance(c.hidden_units, tuple) or not all(_is_int(u) and u >= 1 for u in c.hidden_units):
        fail("hidden_units", c.hidden_units, "a tuple of integers >= 1 (may be empty: linear maps)")


def _check_sizes(c: TrainConfig) -> None:
    """train_size and held_out_size within the dataset's splits; batch_size within the training examples."""
    for name, limit, splits in (
        ("train_size", TRAIN_SIZES[c.dataset], "training set"),
        ("held_out_size", HELD_OUT_SIZES[c.dataset], "validation and test sets"),
    ):
        v = getattr(c, name)
        if v is not None and (not _is_int(v) or not 1 <= v <= limit):
            fail(name, v, f"an integer from 1 to {limit} (the {c.dataset} {splits}), or 0 or None (all)")
    n_train, what = (
        (c.train_size, "train_size") if c.train_size else (TRAIN_SIZES[c.dataset], f"the {c.dataset} training set")
    )
    if c.batch_size > n_train:
        fail("batch_size", c.batch_size, f"1 .. {n_train} ({what})")


def _check_numbers(c: TrainConfig) -> None:
    for name, (ok, allowed) in _NUMBERS.items():
        v = getattr(c, name)
        if not _is_real(v) or not ok(v):
            fail(name, v, allowed)
    v = c.decoder_variance
    if v is not None and (not _is_real(v) or not math.isfinite(v) or v <= 0):
        fail("decoder_variance", v, "a finite number > 0, or None (learned)")


def _check_names(c: TrainConfig) -> None:
    for name, allowed in _NAMES.items():
        v = getattr(c, name)
        if not isinstance(v, str) or v not in allowed():
            fail(name, v, ", ".join(allowed()))


def _check_architecture(c: TrainConfig) -> None:
    if c.architecture == "conv" and c.dataset not in IMAGE_SHAPES:
        fail(
            "architecture",
            c.architecture,
            f"mlp for dataset={c.dataset!r} (conv needs an image dataset: {', '.join(IMAGE_SHAPES)})",
        )
    if c.architecture == "conv" and c.eval_every:
        fail(
            "eval_every",
            c.eval_every,
            "0 for architecture='conv' (evaluations within an epoch need the MLP's fast path)",
        )
