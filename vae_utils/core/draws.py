"""The randomness of one training epoch, keyed by (seed, epoch): the shuffle, the dynamic
binarization and the reparameterization noise. Both engines draw it here, under XLA.

    x_epoch, noise = epoch_draws(x_train, epoch, seed, steps, batch_size, latent_dim, bernoulli)
    draw = compiled_draws(n, batch_size, latent_dim, bernoulli)   # the same, one XLA computation
    x_epoch, noise = draw(x_train, epoch, seed)                   # [steps, batch, dim], [steps, batch, latent]

Stateless random ops under XLA: the fast path calls ``epoch_draws`` inside its compiled epoch, the
Keras path calls ``compiled_draws``, the same function compiled alone. XLA's random numbers differ
from TensorFlow's kernels' for the same seed, but XLA's are XLA's wherever the function is compiled:
the bits (shuffle, binarization) are equal bit for bit; the Gaussian noise, whose Box-Muller
transform is floating-point code, was equal in every configuration tried
(tests/test_fastpath.py checks it) and may at worst differ in the last bit where XLA vectorises it
differently, which is float32 rounding.
"""

from __future__ import annotations

import functools

import tensorflow as tf

__all__ = ["epoch_draws", "compiled_draws", "ALG", "BINARIZE_OFFSET", "NOISE_OFFSET"]

ALG = "philox"  # under XLA on a CPU 9x faster than the default ("auto_select": ThreeFry there)
BINARIZE_OFFSET = 7919  # the binarization's stream: seed + this (a prime: streams of nearby seeds never meet)
NOISE_OFFSET = 104729  # the noise's stream: seed + this


def epoch_draws(x_train, epoch, seed, steps: int, batch_size: int, latent_dim: int, bernoulli: bool):
    """One epoch's batches and noise for one run: ([steps, batch_size, dim], [steps, batch_size, latent_dim]).

    1) the shuffle: the rows of ``x_train`` ordered by a uniform draw keyed by (seed, epoch), the
       first ``steps * batch_size`` kept (the last partial batch is dropped);
    2) dynamic binarization of those rows (Bernoulli data; Burda et al. 2016), keyed by (seed + 7919, epoch):
       each value x becomes 1 with probability x, as ``data.binarize_tensor`` does, drawn as integers;
    3) the reparameterization noise of every update, keyed by (seed + 104729, epoch).
    """
    seed, epoch = tf.cast(seed, tf.int32), tf.cast(epoch, tf.int32)
    n = x_train.shape[0]
    order = tf.argsort(tf.random.stateless_uniform([n], seed=tf.stack([seed, epoch]), alg=ALG))
    x_epoch = tf.gather(x_train, order[: steps * batch_size])
    if bernoulli:  # x = 1 with probability x: u < x for u = k / 2^23 uniform on [0, 1)
        k = _uniform_integers(
            tf.shape(x_epoch), x_epoch.shape.num_elements(), tf.stack([seed + BINARIZE_OFFSET, epoch])
        )
        x_epoch = tf.cast(tf.cast(k, tf.float32) < x_epoch * 2.0**23, x_epoch.dtype)
    noise_seed = tf.stack([seed + NOISE_OFFSET, epoch])
    noise = tf.random.stateless_normal([steps, batch_size, latent_dim], seed=noise_seed, alg=ALG)
    return tf.reshape(x_epoch, [steps, batch_size, -1]), noise


def _uniform_integers(shape, size: int, seed):
    """Integers uniform on [0, 2^23) in ``shape`` of ``size`` elements: the top 23 bits of each half of
    ``ceil(size / 2)`` 64-bit Philox draws. Divided by 2^23 they are, bit for bit, the float32 numbers
    ``stateless_uniform(shape, seed, alg="philox")`` gives under XLA (tests/test_fastpath.py), at a
    quarter of the cost there on a CPU: XLA fuses the float draws into their consumer less well."""
    wide = tf.random.stateless_uniform([(size + 1) // 2], seed=seed, alg=ALG, minval=None, maxval=None, dtype=tf.uint64)
    halves = tf.reshape(tf.bitcast(wide, tf.uint32), [-1])[:size]
    return tf.reshape(tf.bitwise.right_shift(halves, 9), shape)


@functools.lru_cache(maxsize=64)
def compiled_draws(n: int, batch_size: int, latent_dim: int, bernoulli: bool):
    """``epoch_draws`` for a training set of ``n`` rows as one XLA computation: ``draw(x_train, epoch, seed)``."""
    steps = n // batch_size

    @tf.function(jit_compile=True, autograph=False)
    def draw(x_train, epoch, seed):
        return epoch_draws(x_train, epoch, seed, steps, batch_size, latent_dim, bernoulli)

    return draw
