"""A loss-reduction pitfall, trained on purpose: the reconstruction averaged over pixels, the KL summed.

The objective chapter trains this variant beside the ELBO to show that a per-pixel mean is a hidden
KL weight: with D pixels, ``per_pixel_mean_loss`` = ``negative_elbo(beta=D) / D``, the same minimizer
as the ELBO with beta = D (the test suite checks the identity)::

    from vae_utils import TrainConfig, load_dataset
    from vae_utils.errata.pitfalls import train_per_pixel_mean
    model = train_per_pixel_mean(TrainConfig(dataset="digits", epochs=60), load_dataset("digits"))

Bernoulli data only (digits, MNIST): the per-pixel mean is of the binary cross-entropy. The loop is
deliberately plain (dynamic binarization, one stateless seed per step, Adam), not ``train()``'s, so
that the variant differs from the book's training in its loss only, and never enters the run cache.
"""

from __future__ import annotations

import numpy as np
import tensorflow as tf

from ..core.data import binarize_tensor
from ..core.model import build_vae
from ..core.objective import gaussian_kl

__all__ = ["per_pixel_mean_loss", "train_per_pixel_mean"]


def per_pixel_mean_loss(x, logits, z_mean, z_log_var):
    """Mean over pixels and batch of the binary cross-entropy, plus the KL summed over latent dimensions
    and averaged over the batch: the common variant whose effective beta is the number of pixels."""
    reconstruction = tf.reduce_mean(tf.nn.sigmoid_cross_entropy_with_logits(labels=x, logits=logits))
    kl = tf.reduce_mean(tf.reduce_sum(gaussian_kl(z_mean, z_log_var), axis=-1))
    return reconstruction + kl


def train_per_pixel_mean(config, data):
    """A VAE of ``config``'s architecture trained on ``data.train`` with ``per_pixel_mean_loss``
    (``config``'s epochs, batch size, learning rate and seed, Adam); returns the Keras model."""
    if data.likelihood != "bernoulli":
        raise ValueError(
            f"data.likelihood={data.likelihood!r} is not allowed; allowed: 'bernoulli' (the per-pixel BCE)"
        )
    model = build_vae(config.model_config(data.dim, data.likelihood, data.image_shape), seed=config.seed)
    opt = tf.keras.optimizers.Adam(config.learning_rate)
    x_train = tf.constant(data.train)
    variables = model.posterior.trainable_variables + model.decoder.trainable_variables

    @tf.function
    def step(xb, key):
        xb = binarize_tensor(xb, key)
        with tf.GradientTape() as tape:
            z_mean, z_log_var = model.posterior(xb, training=True)
            eps = tf.random.stateless_normal(tf.shape(z_mean), seed=key + 1)
            logits = model.decoder(z_mean + tf.exp(0.5 * z_log_var) * eps, training=True)
            loss = per_pixel_mean_loss(xb, logits, z_mean, z_log_var)
        opt.apply(tape.gradient(loss, variables), variables)

    rng = np.random.default_rng(config.seed)
    n_batches = len(data.train) // config.batch_size
    for epoch in range(config.epochs):
        order = rng.permutation(len(data.train))
        for i in range(n_batches):
            idx = order[i * config.batch_size : (i + 1) * config.batch_size]
            step(tf.gather(x_train, idx), tf.constant([config.seed, epoch * 100000 + i], tf.int64))
    return model
