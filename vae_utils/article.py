"""The source article's VAE program, corrected (Keras 3, TensorFlow backend); copy it and run it.

    python -m vae_utils.article            # 100 epochs on a noisy circle, as the article trains
    from vae_utils.article import main     # vae, history = main(data="normal", epochs=5)

Same structure as the article: data, a VAE class, a loss, compile and fit. Its four bugs, fixed:
1) z_log_var is a learned head of the encoder, not a max over the encoder's output;
2) the loss is computed inside train_step, where z_mean and z_log_var exist;
3) both terms are summed over dimensions, then averaged over the batch (nats per example),
   so the KL's weight does not grow with the batch size;
4) the data have latent structure. data="normal" keeps the article's standard-normal noise:
   the decoder models N(0, I) without z, so the KL goes to zero (posterior collapse is optimal).
"""

import keras
import numpy as np
import tensorflow as tf
from keras import layers, ops


def make_data(data="circle", n=1000, seed=1):
    """2-D points: a noisy circle (one latent factor, the angle) or the article's noise."""
    rng = np.random.default_rng(seed)
    if data == "normal":  # the article's data: nothing to encode
        return rng.normal(size=(n, 2)).astype("float32")
    angle = rng.uniform(0, 2 * np.pi, size=n)
    circle = 4 * np.stack([np.cos(angle), np.sin(angle)], axis=1)
    return (circle + 0.1 * rng.normal(size=(n, 2))).astype("float32")


def vae_loss(x, x_reconstructed, z_mean, z_log_var):
    """Negative ELBO per example: Gaussian reconstruction (unit variance) + KL to N(0, I)."""
    # fix 3: each term summed over dimensions, then averaged over the batch: nats per example
    reconstruction_loss = ops.mean(ops.sum(0.5 * ops.square(x - x_reconstructed) + 0.5 * np.log(2 * np.pi), axis=1))
    kl_loss = ops.mean(-0.5 * ops.sum(1 + z_log_var - ops.square(z_mean) - ops.exp(z_log_var), axis=1))
    return reconstruction_loss + kl_loss, reconstruction_loss, kl_loss


class VAE(keras.Model):
    def __init__(self, latent_dim=2, data_dim=2, seed=1):
        super().__init__()
        self.hidden = layers.Dense(128, activation="relu")  # encoder
        self.z_mean_head = layers.Dense(latent_dim)
        self.z_log_var_head = layers.Dense(latent_dim)  # fix 1: a learned head
        self.decoder = keras.Sequential([layers.Dense(128, activation="relu"), layers.Dense(data_dim)])
        self.noise = keras.random.SeedGenerator(seed)
        self.trackers = [keras.metrics.Mean(name=n) for n in ("loss", "reconstruction_loss", "kl_loss")]

    @property
    def metrics(self):
        return self.trackers

    def call(self, x):
        h = self.hidden(x)
        z_mean, z_log_var = self.z_mean_head(h), self.z_log_var_head(h)
        z = z_mean + ops.exp(0.5 * z_log_var) * keras.random.normal(ops.shape(z_mean), seed=self.noise)
        return self.decoder(z), z_mean, z_log_var

    def train_step(self, x):  # fix 2: the KL is computed where z_mean and z_log_var exist
        with tf.GradientTape() as tape:
            losses = vae_loss(x, *self(x, training=True))
        gradients = tape.gradient(losses[0], self.trainable_weights)
        self.optimizer.apply(gradients, self.trainable_weights)
        for tracker, value in zip(self.trackers, losses, strict=True):
            tracker.update_state(value)
        return {t.name: t.result() for t in self.trackers}


def main(data="circle", epochs=100, batch_size=32, seed=1, verbose=2):
    keras.utils.set_random_seed(seed)  # the same run every time
    X = make_data(data, seed=seed)
    vae = VAE(latent_dim=2, seed=seed)
    vae.compile(optimizer=keras.optimizers.Adam(learning_rate=0.001))
    history = vae.fit(X, epochs=epochs, batch_size=batch_size, verbose=verbose)
    return vae, history


if __name__ == "__main__":
    main()
