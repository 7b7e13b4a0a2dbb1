"""The randomness of one training epoch, keyed by (seed, epoch): the shuffle, the dynamic
binarization and the reparameterization noise. Both engines draw it here, under XLA.

    x_epoch, noise = epoch_draws(x_train, epoch, seeds, steps, batch_size, latent_dim, bernoulli)
    #   [steps, S, batch, dim], [steps, S, batch, latent]: run s of a stack of S runs, its own seeds[s]
    draw = compiled_draws(n, batch_size, latent_dim, bernoulli)   # one run, as one XLA computation
    x_epoch, noise = draw(x_train, epoch, seed)                   # [steps, batch, dim], [steps, batch, latent]

Each run's numbers come from one stateless Philox draw keyed by (seed, epoch), cut into three parts:
the shuffle's sort keys, the binarization's integers and the noise's uniforms. One draw per run,
and every transform after it done once for the whole stack, keep the compiled program small: a
stack of ten compiles its draws in less than half the time that three draws per run took (3.5 s
against 7.6 s on digits, ``benchmarks/README.md``). A run's numbers depend on its seed and the epoch only, never on its
place in a stack or the stack's size: the bits and the shuffle are equal bit for bit; the Gaussian
noise is float32 code applied element by element, equal in every configuration tried
(tests/test_draws.py and tests/test_fastpath.py check both).
"""

from __future__ import annotations

import functools
import math

import tensorflow as tf

__all__ = ["epoch_draws", "compiled_draws", "ALG"]

ALG = "philox"  # under XLA on a CPU 9x faster than the default ("auto_select": ThreeFry there)


def epoch_draws(x_train, epoch, seeds, steps: int, batch_size: int, latent_dim: int, bernoulli: bool):
    """One epoch's batches and noise for each run: ([steps, S, batch_size, dim], [steps, S, batch_size, latent_dim]).

    ``seeds`` holds one seed per run (a 1-D tensor of static length S). For each run, one Philox draw
    keyed by (seed, epoch) gives 32-bit words (``_words``), cut in three:
    1) the shuffle: the rows of ``x_train`` ordered by n sort keys (24-bit integers, exact in float32;
       a tie, rare, is broken the same way every time), the first ``steps * batch_size`` kept (the last partial batch is dropped);
    2) dynamic binarization of those rows (Bernoulli data; Burda et al. 2016): each value x becomes 1
       with probability x, as u < x for u = k / 2^23 with k uniform on [0, 2^23);
    3) the reparameterization noise of every update: Box-Muller on pairs of uniforms (k + 1/2) / 2^23.
    """
    n, dim = x_train.shape
    seeds = tf.cast(seeds, tf.int32)
    members, taken = seeds.shape[0], steps * batch_size
    n_bits = taken * dim if bernoulli else 0
    pairs = (taken * latent_dim + 1) // 2
    words = _words(seeds, tf.cast(epoch, tf.int32), n + n_bits + 2 * pairs)  # [S, words]
    # 1) the shuffle, step-major: order[i, s] holds run s's rows of batch i
    keys = tf.cast(tf.bitwise.right_shift(words[:, :n], 8), tf.float32)  # 24 bits: exact in float32
    order = tf.argsort(keys, axis=-1)[:, :taken]
    order = tf.transpose(tf.reshape(order, [members, steps, batch_size]), [1, 0, 2])
    x_epoch = tf.gather(x_train, order)  # [steps, S, batch, dim]
    integers = tf.bitwise.right_shift(words[:, n:], 9)  # 23-bit integers
    # 2) the binarization: x = 1 with probability x
    if bernoulli:
        k = tf.transpose(tf.reshape(integers[:, :n_bits], [members, steps, batch_size, dim]), [1, 0, 2, 3])
        x_epoch = tf.cast(tf.cast(k, tf.float32) < x_epoch * 2.0**23, x_epoch.dtype)
    # 3) the noise: z = sqrt(-2 log u1) (cos, sin)(2 pi u2), never u = 0
    u = (tf.cast(integers[:, n_bits:], tf.float32) + 0.5) * 2.0**-23
    radius, angle = tf.sqrt(-2.0 * tf.math.log(u[:, :pairs])), (2.0 * math.pi) * u[:, pairs:]
    noise = tf.concat([radius * tf.cos(angle), radius * tf.sin(angle)], axis=1)[:, : taken * latent_dim]
    noise = tf.transpose(tf.reshape(noise, [members, steps, batch_size, latent_dim]), [1, 0, 2, 3])
    return x_epoch, noise


def _words(seeds, epoch, size: int):
    """[S, size] uniform 32-bit words: run s's are the halves of ceil(size / 2) 64-bit Philox draws keyed by
    (seeds[s], epoch). One random op per run: a stateless op takes one key, and XLA's cost of
    compiling it grows with the number of such ops, not with their size."""
    rows = []
    for s in range(seeds.shape[0]):
        key = tf.stack([seeds[s], epoch])
        wide = tf.random.stateless_uniform(
            [(size + 1) // 2], seed=key, alg=ALG, minval=None, maxval=None, dtype=tf.uint64
        )
        rows.append(tf.reshape(tf.bitcast(wide, tf.uint32), [-1])[:size])
    return tf.stack(rows)


@functools.lru_cache(maxsize=64)
def compiled_draws(n: int, batch_size: int, latent_dim: int, bernoulli: bool):
    """``epoch_draws`` of one run for a training set of ``n`` rows, one XLA computation: ``draw(x_train, epoch, seed)``."""
    steps = n // batch_size

    @tf.function(jit_compile=True, autograph=False)
    def draw(x_train, epoch, seed):
        x_epoch, noise = epoch_draws(x_train, epoch, seed[None], steps, batch_size, latent_dim, bernoulli)
        return x_epoch[:, 0], noise[:, 0]

    return draw
