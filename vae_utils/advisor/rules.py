"""The advisor's rules: the learning-rate ratio (``calibration``: measured on several data sets), the batch-size range, and the
``Recommendation`` they produce. ``recommend`` (the measurements) and ``confirm`` (the grid around a
recommendation) both read them, so neither imports the other's internals.
"""

from __future__ import annotations

import math
from dataclasses import dataclass, field

from ..core.data import TRAIN_SIZES
from . import calibration

__all__ = [
    "LR_RATIO",
    "RATIO_SOURCE",
    "RATIO_BATCHES",
    "extrapolation",
    "DELTA",
    "MIN_BATCH",
    "OPTIMIZERS",
    "HELD_FIXED",
    "PLACEHOLDER",
    "Recommendation",
    "lr_ratio",
    "batch_range",
]

# Best learning rate / range-test breaking point as ratio(B) = at_64 x (B / 64) ** exponent, for Adam and for SGD
# with momentum 0.9: each rule pooled over six data sets of both likelihoods (digits; the first 1,000 Fashion-MNIST
# training images; generated shapes at 8x8 and 16x16 and a standardized 24-d manifold, 1,000 each; the 8x8 shapes
# with the conv VAE), each data set's own line counted once; read from the optimizer's calibration file
# (calibration.path; benchmarks/advisor_ratio.py --pool), which holds its intervals, the spread between data
# sets and each data set's line (README "The advisor").
LR_RATIO = {optimizer: calibration.rule(calibration.path(optimizer)) for optimizer in ("adam", "momentum")}
# Where each ratio was measured, in words for the advice's reasons.
RATIO_SOURCE = {
    optimizer: f"pooled over {len({p['dataset'] for p in calibration.load(calibration.path(optimizer))['points']})} "
    "data sets of both likelihoods"
    for optimizer in LR_RATIO
}
# The batch sizes each rule was measured at (its calibration's smallest and largest): beyond them it is extrapolated.
RATIO_BATCHES = {
    optimizer: (min(b := [p["batch_size"] for p in calibration.load(calibration.path(optimizer))["points"]]), max(b))
    for optimizer in LR_RATIO
}
DELTA = 0.5  # nats: a validation ELBO within this of the best counts as as good (the strategy chapters' margin)
MIN_BATCH = 8  # the smallest batch size advised
OPTIMIZERS = tuple(LR_RATIO)
HELD_FIXED = ("latent_dim", "hidden_units", "decoder_variance", "beta", "eval_k")
PLACEHOLDER = max(TRAIN_SIZES, key=TRAIN_SIZES.get)  # TrainConfig's dataset for file data (see _config)


@dataclass
class Recommendation:
    """What to train with, and why."""

    batch_size: int
    batch_range: tuple[int, int]
    learning_rate: float
    optimizer: str
    lr_break: float  # the range test's breaking point at batch_size
    lr_ratio: float  # learning_rate / lr_break
    b_simple: float
    b_simple_interval: tuple[float, float]
    reasons: list[str] = field(default_factory=list)
    watch: list[str] = field(default_factory=list)
    alternatives: dict = field(default_factory=dict)  # other optimizers tested: their rates
    batch_allowed: tuple[int, int] | None = None  # the batch sizes B_simple's interval allows, when wider
    headline: dict = field(default_factory=dict)  # set when the confirmation's best replaced the advice


def lr_ratio(optimizer: str, batch_size: int, table: dict | None = None) -> float:
    """The best learning rate over the range test's breaking point at ``batch_size`` (``LR_RATIO``,
    or ``table``: {optimizer: a number, or {"at_64": ..., "exponent": ...}})."""
    r = (table or LR_RATIO)[optimizer]
    if isinstance(r, (int, float)):
        return float(r)
    return float(r["at_64"] * (batch_size / 64) ** r["exponent"])


def extrapolation(optimizer: str, batch_size: int) -> str | None:
    """A sentence for the advice when ``batch_size`` lies outside the batch sizes ``optimizer``'s calibrated
    rule was measured at (``RATIO_BATCHES``); None inside them."""
    if optimizer not in RATIO_BATCHES:
        return None
    low, high = RATIO_BATCHES[optimizer]
    if low <= batch_size <= high:
        return None
    return (
        f"The rate's rule was measured at batch sizes {low} to {high}; at batch {batch_size} it is extrapolated: "
        "take the rate as a centre to search around by factors of 2 (the confirmation grid does)."
    )


def _pow2(x: float) -> int:
    return int(2 ** round(math.log2(max(x, 1.0))))


def batch_range(b_simple: float, n_train: int, min_batch: int = MIN_BATCH) -> tuple[int, int, int]:
    """(low, high, recommended): [B_simple/4, B_simple] in powers of two within [min_batch, n_train/8];
    the recommended one nearest B_simple/2. A non-finite B_simple gives the whole allowed range."""
    cap = max(min_batch, min(n_train // 8, TRAIN_SIZES[PLACEHOLDER]))
    cap = 2 ** int(math.log2(cap))
    clip = lambda b: int(min(max(b, min_batch), cap))
    if not (math.isfinite(b_simple) and b_simple > 0):
        return clip(min_batch), cap, clip(_pow2(math.sqrt(min_batch * cap)))
    low, high = clip(_pow2(b_simple / 4)), clip(_pow2(b_simple))
    return low, high, int(min(max(_pow2(b_simple / 2), low), high))
