"""The VAE model, in the shape of the Keras VAE example (keras-io examples/generative/vae.py).

    from vae_utils.core.model import ModelConfig, build_vae
    vae = build_vae(ModelConfig(input_dim=64, latent_dim=8, hidden_units=(256,)), seed=0)
    z_mean, z_log_var, z = vae.encoder(x)
    decoded = vae.decoder(z)          # Bernoulli logits, or the Gaussian mean

The encoder has two heads, ``z_mean`` and ``z_log_var``, and a ``Sampling`` layer
(the reparameterization trick, z = z_mean + exp(z_log_var / 2) * eps, with a seeded
generator). The decoder's output matches the likelihood: logits for Bernoulli data; the
mean for Gaussian data, whose per-dimension log-variance ``vae.decoder_log_var`` is fixed
or learned. ``hidden_units=()`` gives linear maps (the probabilistic-PCA case).

Two architectures (``ModelConfig.architecture``); both take and return flat rows (n, D), so the
training loop and the evaluation never see the difference:

* ``mlp``: dense layers of ``hidden_units`` (ReLU) in the encoder, mirrored in the decoder.
* ``conv``: the Keras example's convolutional VAE for images of ``image_shape`` (height and width
  divisible by 4). Encoder: Reshape to (h, w, 1) -> Conv2D(32, 3, strides 2, same, relu) ->
  Conv2D(64, 3, strides 2, same, relu) -> Flatten -> Dense(u, relu) for each u in ``hidden_units``
  (the example: (16,)) -> ``z_mean`` / ``z_log_var``. Decoder, as in the example without mirroring
  ``hidden_units``: Dense(h/4 * w/4 * 64, relu) -> Reshape -> Conv2DTranspose(64, 3, strides 2, same,
  relu) -> Conv2DTranspose(32, 3, strides 2, same, relu) -> Conv2DTranspose(1, 3, same) -> Flatten:
  logits (or the Gaussian mean) of the D = h * w pixels.

Every layer's initial weights are drawn from its own seed, derived from the run seed.
"""

from __future__ import annotations

import math
from dataclasses import dataclass

import keras
from keras import layers

__all__ = [
    "ModelConfig",
    "Sampling",
    "VAE",
    "build_vae",
    "reparameterize",
    "activation_width",
    "LIKELIHOODS",
    "ARCHITECTURES",
    "CONV_FILTERS",
]

LIKELIHOODS = ("bernoulli", "gaussian")
ARCHITECTURES = ("mlp", "conv")
CONV_FILTERS = (32, 64)  # the Keras example's two stride-2 convolutions (the decoder runs them backwards)


@dataclass(frozen=True)
class ModelConfig:
    """Architecture of a VAE: an MLP, or the Keras example's convolutional VAE (see the module docstring)."""

    input_dim: int  # data dimensions D
    latent_dim: int = 8  # latent dimensions
    hidden_units: tuple[int, ...] = (256,)  # encoder widths; the decoder mirrors them
    likelihood: str = "bernoulli"  # "bernoulli" (logits) or "gaussian" (mean + variance)
    decoder_variance: float | None = 1.0  # Gaussian only: fixed variance; None: learned per dimension
    architecture: str = "mlp"  # "mlp" or "conv"
    image_shape: tuple[int, int] | None = None  # conv only: (height, width), each divisible by 4

    def __post_init__(self):
        if self.likelihood not in LIKELIHOODS:
            raise ValueError(f"likelihood={self.likelihood!r} is not known; allowed: {', '.join(LIKELIHOODS)}")
        if self.architecture not in ARCHITECTURES:
            raise ValueError(f"architecture={self.architecture!r} is not known; allowed: {', '.join(ARCHITECTURES)}")
        if self.architecture == "conv":
            shape = self.image_shape
            if shape is None or len(shape) != 2 or any(s % 4 for s in shape) or shape[0] * shape[1] != self.input_dim:
                raise ValueError(
                    f"image_shape={shape!r} is not allowed for architecture='conv'; allowed: (height, width), "
                    f"each divisible by 4, with height * width = input_dim ({self.input_dim})"
                )
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


def _conv(layer, filters, name, seed, **kwargs):
    """A 3x3, 'same'-padded (transposed) convolution with a seeded initializer, as in the Keras example."""
    init = keras.initializers.GlorotUniform(seed=seed)
    return layer(filters, 3, padding="same", name=name, kernel_initializer=init, **kwargs)


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


def _encoder_mlp(x, config: ModelConfig, base: int):
    return _mlp(x, config.hidden_units, "encoder", base)


def _encoder_conv(x, config: ModelConfig, base: int):
    h, w = config.image_shape
    x = layers.Reshape((h, w, 1), name="encoder_image")(x)
    for i, filters in enumerate(CONV_FILTERS):
        x = _conv(layers.Conv2D, filters, f"encoder_conv_{i}", base + 10 + i, strides=2, activation="relu")(x)
    return _mlp(layers.Flatten(name="encoder_flatten")(x), config.hidden_units, "encoder", base)


def _decoder_mlp(z, config: ModelConfig, base: int):
    return _mlp(z, tuple(reversed(config.hidden_units)), "decoder", base + 200)


def _decoder_conv(z, config: ModelConfig, base: int):
    h, w = config.image_shape
    x = _dense(h // 4 * w // 4 * CONV_FILTERS[-1], "decoder_dense", base + 200, "relu")(z)
    x = layers.Reshape((h // 4, w // 4, CONV_FILTERS[-1]), name="decoder_image")(x)
    for i, filters in enumerate(reversed(CONV_FILTERS)):
        x = _conv(layers.Conv2DTranspose, filters, f"decoder_conv_{i}", base + 210 + i, strides=2, activation="relu")(x)
    return x  # the output layer (Conv2DTranspose(1, 3, same), then Flatten) is added by build_vae


def build_vae(config: ModelConfig, seed: int = 0) -> VAE:
    """Build encoder and decoder; initial weights are drawn from ``seed``."""
    base = 1000 * seed  # distinct initializer seeds for every layer of every run seed
    conv = config.architecture == "conv"
    x_in = keras.Input(shape=(config.input_dim,), name="x")
    h = (_encoder_conv if conv else _encoder_mlp)(x_in, config, base)
    z_mean = _dense(config.latent_dim, "z_mean", base + 100)(h)
    z_log_var = _dense(config.latent_dim, "z_log_var", base + 101)(h)
    z = Sampling(seed=seed, name="z")([z_mean, z_log_var])
    encoder = keras.Model(x_in, [z_mean, z_log_var, z], name="encoder")

    z_in = keras.Input(shape=(config.latent_dim,), name="z")
    h = (_decoder_conv if conv else _decoder_mlp)(z_in, config, base)
    name = "logits" if config.likelihood == "bernoulli" else "x_mean"
    if conv:
        out = layers.Flatten(name=name)(_conv(layers.Conv2DTranspose, 1, f"{name}_image", base + 300)(h))
    else:
        out = _dense(config.input_dim, name, base + 300)(h)
    decoder = keras.Model(z_in, out, name="decoder")
    return VAE(encoder, decoder, config, name="vae")


def activation_width(config: ModelConfig) -> int:
    """Floats per example that one training step keeps for the backward pass (every layer's output,
    the input, the noise and the sample); ``training.activation_memory_mb`` doubles it for the gradients."""
    heads = 5 * config.latent_dim  # z_mean, z_log_var, eps, z and the KL terms
    if config.architecture == "mlp":
        return 2 * sum(config.hidden_units) + heads + 2 * config.input_dim
    h, w = config.image_shape
    encoder = h // 2 * w // 2 * CONV_FILTERS[0] + h // 4 * w // 4 * CONV_FILTERS[1] + sum(config.hidden_units)
    decoder = h // 4 * w // 4 * CONV_FILTERS[1] + h // 2 * w // 2 * CONV_FILTERS[1] + h * w * CONV_FILTERS[0]
    return encoder + decoder + heads + 2 * config.input_dim
