"""The VAE model, in the shape of the Keras VAE example (keras-io examples/generative/vae.py).

    from vae_utils.model import ModelConfig, build_vae
    vae = build_vae(ModelConfig(input_dim=64, latent_dim=8, hidden_units=(256,)), seed=0)
    z_mean, z_log_var, z = vae.encoder(x)
    decoded = vae.decoder(z)          # Bernoulli logits, or the Gaussian mean

The encoder has two heads, ``z_mean`` and ``z_log_var``, and a ``Sampling`` layer
(the reparameterization trick, z = z_mean + exp(z_log_var / 2) * eps, with a seeded
generator). The decoder's output matches the likelihood: logits for Bernoulli data; the
mean for Gaussian data, whose per-dimension log-variance ``vae.decoder_log_var`` is fixed
or learned. ``hidden_units=()`` gives linear maps (the probabilistic-PCA case).
"""

from __future__ import annotations

import math
from dataclasses import dataclass

import keras
from keras import layers

__all__ = ["ModelConfig", "Sampling", "VAE", "build_vae", "reparameterize", "LIKELIHOODS"]

LIKELIHOODS = ("bernoulli", "gaussian")


@dataclass(frozen=True)
class ModelConfig:
    """Architecture of an MLP VAE."""

    input_dim: int  # data dimensions D
    latent_dim: int = 8  # latent dimensions
    hidden_units: tuple[int, ...] = (256,)  # encoder widths; the decoder mirrors them
    likelihood: str = "bernoulli"  # "bernoulli" (logits) or "gaussian" (mean + variance)
    decoder_variance: float | None = 1.0  # Gaussian only: fixed variance; None: learned per dimension

    def __post_init__(self):
        if self.likelihood not in LIKELIHOODS:
            raise ValueError(f"likelihood={self.likelihood!r} is not known; allowed: {', '.join(LIKELIHOODS)}")
        if self.decoder_variance is not None and not self.decoder_variance > 0:
            raise ValueError(
                f"decoder_variance={self.decoder_variance!r} is not allowed; allowed: > 0 or None (learned)"
            )


def reparameterize(z_mean, z_log_var, eps):
    """The reparameterization trick: z = z_mean + exp(z_log_var / 2) * eps, with eps ~ N(0, I) given.

    The one place the project draws z from q(z | x): the ``Sampling`` layer, the training step,
    the evaluation and the noise-scale estimate all call it with their own (seeded) eps.
    """
    return z_mean + keras.ops.exp(0.5 * z_log_var) * eps


class Sampling(layers.Layer):
    """z = reparameterize(z_mean, z_log_var, eps), eps ~ N(0, I) from a seeded generator."""

    def __init__(self, seed=None, **kwargs):
        super().__init__(**kwargs)
        self.seed_generator = keras.random.SeedGenerator(seed)

    def call(self, inputs):
        z_mean, z_log_var = inputs
        return reparameterize(z_mean, z_log_var, keras.random.normal(keras.ops.shape(z_mean), seed=self.seed_generator))


def _dense(width, name, seed, activation=None):
    # Seeded initializer per layer: no global seed, whose reset would also flush TensorFlow's
    # kernel caches and force every compiled function to be re-instantiated.
    return layers.Dense(
        width, activation=activation, name=name, kernel_initializer=keras.initializers.GlorotUniform(seed=seed)
    )


def _mlp(x, units, prefix, seed):
    for i, width in enumerate(units):
        x = _dense(width, f"{prefix}_dense_{i}", seed + i, "relu")(x)
    return x


class VAE(keras.Model):
    """Encoder + decoder (+ the Gaussian decoder's log-variance); ``call`` returns the decoded batch."""

    def __init__(self, encoder, decoder, config: ModelConfig, **kwargs):
        super().__init__(**kwargs)
        self.encoder = encoder
        # The two heads without the Sampling layer: training and evaluation draw their own
        # noise, keyed by (seed, step), so the loop can be replayed exactly.
        self.posterior = keras.Model(encoder.input, encoder.output[:2], name="posterior")
        self.decoder = decoder
        self.config = config
        self.likelihood = config.likelihood
        learned = config.decoder_variance is None
        init = 0.0 if learned else math.log(config.decoder_variance)
        self.decoder_log_var = self.add_weight(
            name="decoder_log_var",
            shape=(config.input_dim,),
            initializer=keras.initializers.Constant(init),
            trainable=learned and config.likelihood == "gaussian",
        )

    def call(self, x, training=False):
        _, _, z = self.encoder(x, training=training)
        return self.decoder(z, training=training)


def build_vae(config: ModelConfig, seed: int = 0) -> VAE:
    """Build encoder and decoder; initial weights are drawn from ``seed``."""
    base = 1000 * seed  # distinct initializer seeds for every layer of every run seed
    x_in = keras.Input(shape=(config.input_dim,), name="x")
    h = _mlp(x_in, config.hidden_units, "encoder", base)
    z_mean = _dense(config.latent_dim, "z_mean", base + 100)(h)
    z_log_var = _dense(config.latent_dim, "z_log_var", base + 101)(h)
    z = Sampling(seed=seed, name="z")([z_mean, z_log_var])
    encoder = keras.Model(x_in, [z_mean, z_log_var, z], name="encoder")

    z_in = keras.Input(shape=(config.latent_dim,), name="z")
    h = _mlp(z_in, tuple(reversed(config.hidden_units)), "decoder", base + 200)
    out = _dense(config.input_dim, "logits" if config.likelihood == "bernoulli" else "x_mean", base + 300)(h)
    decoder = keras.Model(z_in, out, name="decoder")
    return VAE(encoder, decoder, config, name="vae")
