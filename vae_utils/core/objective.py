"""The VAE objective: negative ELBO = reconstruction_loss + beta * kl_loss.

Reduction, the same everywhere in this project (training, evaluation, tables, plots):

* ``reconstruction_loss`` = -log p(x | z), **summed over the data dimensions**;
* ``kl_loss`` = KL(q(z | x) || N(0, I)), analytic, **summed over the latent dimensions**;
* each is then **averaged over the examples of the batch**.

So every loss is in nats per example, independent of the batch size. Two reductions that
look harmless are not: averaging the reconstruction over the D pixels (a per-pixel mean
cross-entropy) while summing the KL divides the reconstruction by D, i.e. sets the effective
beta to D (shown by training in the objective chapter); and summing the KL over the batch
while averaging the reconstruction (the source article's code) makes beta grow with the
batch size.

KL-weight schedules (``kl_weight``) and free bits (``free_bits_kl``) act on the training
objective only; reported ``kl_loss`` values are always the true KL. ``negative_elbo`` is the one
function that combines the terms: the compiled training step calls it, with the schedule's weight
as ``beta`` and, under free bits, the floor as ``free_bits``.
"""

from __future__ import annotations

import math

import tensorflow as tf

from .config import KL_SCHEDULES

__all__ = [
    "LOG_2PI",
    "gaussian_kl",
    "bernoulli_log_likelihood",
    "gaussian_log_likelihood",
    "log_normal",
    "reconstruction_loss",
    "negative_elbo",
    "free_bits_kl",
    "kl_weight",
    "KL_SCHEDULES",
]

LOG_2PI = math.log(2.0 * math.pi)


def gaussian_kl(z_mean, z_log_var):
    """KL(N(z_mean, exp(z_log_var)) || N(0, I)) per latent dimension, shape (..., latent_dim)."""
    return 0.5 * (tf.square(z_mean) + tf.exp(z_log_var) - 1.0 - z_log_var)


def bernoulli_log_likelihood(x, logits):
    """log p(x | logits) summed over the last axis; x in {0, 1} (or [0, 1])."""
    return -tf.reduce_sum(tf.nn.sigmoid_cross_entropy_with_logits(labels=x, logits=logits), axis=-1)


def gaussian_log_likelihood(x, mean, log_var):
    """log N(x; mean, exp(log_var)) summed over the last axis."""
    return -0.5 * tf.reduce_sum(LOG_2PI + log_var + tf.square(x - mean) * tf.exp(-log_var), axis=-1)


def log_normal(z, mean, log_var):
    """log N(z; mean, diag(exp(log_var))) summed over the last axis (log q or log prior)."""
    return gaussian_log_likelihood(z, mean, log_var)


def reconstruction_loss(x, decoded, likelihood, log_var=None):
    """-log p(x | z) per example: summed over data dimensions, one value per row."""
    if likelihood == "bernoulli":
        return -bernoulli_log_likelihood(x, decoded)
    if likelihood == "gaussian":
        return -gaussian_log_likelihood(x, decoded, log_var)
    raise ValueError(f"likelihood={likelihood!r} is not known; allowed: 'bernoulli', 'gaussian'")


def free_bits_kl(kl_per_dim, free_bits):
    """Free-bits KL (Kingma et al. 2016): sum over dims of max(lambda, batch-mean KL of that dim).

    ``kl_per_dim`` has shape (batch, latent_dim); returns a scalar in nats per example.
    """
    return tf.reduce_sum(tf.maximum(tf.reduce_mean(kl_per_dim, axis=0), free_bits))


def negative_elbo(x, decoded, z_mean, z_log_var, likelihood, beta=1.0, log_var=None, free_bits=None):
    """Return (loss, reconstruction_loss, kl_loss), batch means in nats per example.

    loss = mean_batch[ reconstruction ] + beta * KL term, where the KL term is
    mean_batch[ sum_latent KL ], or with ``free_bits`` (nats per latent dimension) the free-bits
    KL of ``free_bits_kl``. ``beta`` may be a tensor (a KL schedule's weight at this step). The
    returned ``kl_loss`` is always the true KL, whatever the weighting.
    """
    recon = tf.reduce_mean(reconstruction_loss(x, decoded, likelihood, log_var))
    kl_dim = gaussian_kl(z_mean, z_log_var)
    kl = tf.reduce_mean(tf.reduce_sum(kl_dim, axis=-1))
    kl_term = kl if free_bits is None else free_bits_kl(kl_dim, free_bits)
    return recon + beta * kl_term, recon, kl


def kl_weight(schedule, step, total_steps, beta, warmup_steps=0, cycles=4, ratio=0.5):
    """The KL weight at optimizer ``step`` (0-based) of ``total_steps``; works on tensors.

    1) ``constant`` and ``free_bits``: beta throughout.
    2) ``linear``: beta * min(1, step / warmup_steps) (Bowman et al. 2016; Sonderby et al. 2016).
    3) ``cyclical``: ``cycles`` cycles over the run; in each, a linear rise over the first
       ``ratio`` of the cycle, then beta (Fu et al. 2019, M=4, R=0.5).
    """
    step = tf.cast(step, tf.float32)
    beta = tf.cast(beta, tf.float32)
    if schedule in ("constant", "free_bits"):
        return beta
    if schedule == "linear":
        return beta * tf.minimum(1.0, step / tf.maximum(tf.cast(warmup_steps, tf.float32), 1.0))
    if schedule == "cyclical":
        period = tf.maximum(tf.cast(total_steps, tf.float32) / tf.cast(cycles, tf.float32), 1.0)
        tau = tf.math.floormod(step, period) / period
        return beta * tf.minimum(1.0, tau / tf.cast(ratio, tf.float32))
    raise ValueError(f"kl_schedule={schedule!r} is not known; allowed: {', '.join(KL_SCHEDULES)}")
