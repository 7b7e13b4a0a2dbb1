"""The source article's VAE program, corrected (Keras 3, TensorFlow backend).

Run: python -m vae_utils.errata.article (100 epochs on a noisy circle), or main(...).
The article's structure (data, a VAE class, a loss, compile, fit), its bugs fixed:
1) z_log_var is a learned head, not a max over the encoder's output;
2) the loss is computed in train_step, where z_mean and z_log_var exist;
3) both terms are averaged over the batch, so the KL does not grow with it;
4) the data have latent structure; data="normal" (the article's noise) collapses.
"""

import keras
import numpy as np
import tensorflow as tf
from keras import layers, ops


def make_data(data="circle", n=1000, seed=1):
    """2-D points: a noisy circle (one latent factor, the angle) or N(0, I) noise."""
    rng = np.random.default_rng(seed)
    if data == "normal":  # the article's data: nothing to encode
        return rng.normal(size=(n, 2)).astype("float32")
    angle = rng.uniform(0, 2 * np.pi, size=n)  # fix 4: one latent factor
    circle = 4 * np.stack([np.cos(angle), np.sin(angle)], axis=1)
    return (circle + 0.1 * rng.normal(size=(n, 2))).astype("float32")


def vae_loss(x, x_reconstructed, z_mean, z_log_var):
    """Negative ELBO in nats per example: -log N(x; x_reconstructed, I) + KL."""
    squared_error = ops.sum(ops.square(x - x_reconstructed), axis=1)
    log_2pi = x.shape[-1] * np.log(2 * np.pi)
    reconstruction_loss = ops.mean(0.5 * (squared_error + log_2pi))  # fix 3: means
    kl = 1 + z_log_var - ops.square(z_mean) - ops.exp(z_log_var)
    kl_loss = ops.mean(-0.5 * ops.sum(kl, axis=1))  # fix 3: not a sum over the batch
    return reconstruction_loss + kl_loss, reconstruction_loss, kl_loss


class VAE(keras.Model):
    def __init__(self, latent_dim=2, data_dim=2, seed=1):
        super().__init__()
        self.hidden = layers.Dense(128, activation="relu")  # encoder
        self.z_mean_head = layers.Dense(latent_dim)
        self.z_log_var_head = layers.Dense(latent_dim)  # fix 1: a learned head
        self.decoder = keras.Sequential(
            [layers.Dense(128, activation="relu"), layers.Dense(data_dim)],
        )
        self.noise = keras.random.SeedGenerator(seed)
        names = ("loss", "reconstruction_loss", "kl_loss")
        self.trackers = [keras.metrics.Mean(name=name) for name in names]

    @property
    def metrics(self):
        return self.trackers

    def call(self, x):
        h = self.hidden(x)
        z_mean, z_log_var = self.z_mean_head(h), self.z_log_var_head(h)
        eps = keras.random.normal(ops.shape(z_mean), seed=self.noise)
        z = z_mean + ops.exp(0.5 * z_log_var) * eps
        return self.decoder(z), z_mean, z_log_var

    def train_step(self, x):  # fix 2: the KL is computed where z_log_var exists
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
    return vae, vae.fit(X, epochs=epochs, batch_size=batch_size, verbose=verbose)


if __name__ == "__main__":
    main()
