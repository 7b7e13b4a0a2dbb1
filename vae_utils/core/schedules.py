"""What changes over the updates of a run: the learning rate, Adam's step size and the KL weight, and
the run's numbers that enter a compiled graph as tensors. Both engines (``training``'s Keras loop and
``fastpath``) read them here, so a schedule is defined once.

    lr = learning_rate_at("warmup_cosine", step, 1e-3, warmup_steps=100, total_steps=3000)
    h = hyper(config, steps_per_epoch)        # {"learning_rate": tensor, "beta": tensor, ...}
    lr, alpha, weight = at_step(config, step, h)
"""

from __future__ import annotations

import math

import tensorflow as tf

from .config import TrainConfig
from .objective import kl_weight
from .optimizers import OPTIMIZERS, adam_alpha

__all__ = ["learning_rate_at", "hyper", "at_step"]


def learning_rate_at(schedule, step, learning_rate, warmup_steps, total_steps):
    """Learning rate at optimizer ``step`` (0-based); works on tensors and numbers.

    1) warm-up (``warmup``, ``warmup_cosine``): linear from lr/W to lr over the first W steps;
    2) then constant (``warmup``), or cosine decay towards 0, reached at step T = epochs x steps_per_epoch,
       one past the last update (``cosine``, ``warmup_cosine``).
    """
    step = tf.cast(step, tf.float32)
    lr = tf.cast(learning_rate, tf.float32)
    if schedule == "constant":
        return lr
    warm = tf.cast(warmup_steps, tf.float32) if schedule.startswith("warmup") else tf.constant(0.0)
    factor = tf.minimum(1.0, (step + 1.0) / tf.maximum(warm, 1.0))
    if schedule in ("cosine", "warmup_cosine"):
        progress = tf.clip_by_value((step - warm) / tf.maximum(tf.cast(total_steps, tf.float32) - warm, 1.0), 0.0, 1.0)
        factor = factor * 0.5 * (1.0 + tf.cos(math.pi * progress))
    return lr * factor


def hyper(config: TrainConfig, steps_per_epoch: int) -> dict:
    """The numbers of a run that enter the graph as tensors (so runs that differ only in them share one
    compiled graph): rates, β and the KL schedule's, step counts, and the optimizers' constants."""
    f = lambda v: tf.constant(float(v), tf.float32)
    return {
        "learning_rate": f(config.learning_rate),
        "beta": f(config.beta),
        "free_bits": f(config.free_bits),
        "total_steps": f(config.epochs * steps_per_epoch),
        "kl_warmup_steps": f(config.kl_warmup_epochs * steps_per_epoch),
        "kl_cycles": f(config.kl_cycles),
        "kl_ratio": f(config.kl_ratio),
        "lr_warmup_steps": f(config.lr_warmup_epochs * steps_per_epoch),
        "momentum": f(config.momentum),
        "weight_decay": f(config.weight_decay),
    }


def at_step(config: TrainConfig, step, h):
    """Learning rate, the optimizer's step size (Adam's alpha, else the rate) and the KL weight at
    optimizer step ``step`` (0-based)."""
    lr = learning_rate_at(config.lr_schedule, step, h["learning_rate"], h["lr_warmup_steps"], h["total_steps"])
    weight = kl_weight(
        config.kl_schedule, step, h["total_steps"], h["beta"], h["kl_warmup_steps"], h["kl_cycles"], h["kl_ratio"]
    )
    alpha = adam_alpha(lr, step) if OPTIMIZERS[config.optimizer].adam_alpha else lr
    return lr, alpha, weight
