"""Batch size and learning rate for a reader's own data (``python -m vae_utils advise``).

    from vae_utils.advisor import advise
    advice = advise("my_images.npy", likelihood="bernoulli", budget_minutes=5, out="advice")

Modules: ``recommend`` (``advise``: the measurements and the recommendation), ``rules`` (the
learning-rate ratio, the batch range, ``Recommendation``), ``rangetest`` (the learning-rate range
test), ``datafile`` (reading and checking a reader's file), ``confirm`` (the confirmation grid
around a recommendation), ``report`` (advice.md, advice.html, advice.json). Importing the package
imports no TensorFlow.
"""

from .recommend import Advice, add_parser, advise, resolve_data
from .rules import LR_RATIO, Recommendation, batch_range, lr_ratio

__all__ = ["advise", "Advice", "Recommendation", "LR_RATIO", "lr_ratio", "batch_range", "resolve_data", "add_parser"]
