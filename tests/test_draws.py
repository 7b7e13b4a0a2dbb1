"""The epoch's randomness (vae_utils.core.draws): each run's shuffle, binarization and noise.

Contracts: a run's draws depend on its seed and the epoch only, not on the stack it trains in;
the shuffle takes distinct rows and puts each row at each position equally often; binarization
makes a value x one with probability x; the noise is standard normal. The references are
closed forms and Monte-Carlo error bars (scipy.stats), not the code under test.
"""

import numpy as np
import pytest
import tensorflow as tf
from scipy import stats

from vae_utils.core import draws


def _draw(x, epoch, seeds, batch_size, latent_dim, bernoulli=True):
    """``epoch_draws`` under XLA, as the fast path runs it: numpy ([steps, S, B, D], [steps, S, B, L])."""
    steps = x.shape[0] // batch_size
    fn = tf.function(
        lambda x, e, s: draws.epoch_draws(x, e, s, steps, batch_size, latent_dim, bernoulli),
        jit_compile=True,
        autograph=False,
    )
    out = fn(tf.constant(x), tf.constant(epoch), tf.constant(seeds, tf.int32))
    return tuple(t.numpy() for t in out)


def test_a_runs_draws_depend_on_its_seed_and_the_epoch_not_on_its_company_in_a_stack():
    """Run 5 in a stack of three, run 5 alone and the one-run function the Keras path calls give the same
    batches and noise bit for bit; another seed or another epoch gives other draws."""
    x = np.random.default_rng(0).random((203, 12), dtype=np.float32)
    stacked_x, stacked_noise = _draw(x, 3, [0, 5, 9], 16, 3)
    alone_x, alone_noise = _draw(x, 3, [5], 16, 3)
    np.testing.assert_array_equal(stacked_x[:, 1], alone_x[:, 0])
    np.testing.assert_array_equal(stacked_noise[:, 1], alone_noise[:, 0])
    keras_x, keras_noise = draws.compiled_draws(203, 16, 3, True)(tf.constant(x), tf.constant(3), tf.constant(5))
    np.testing.assert_array_equal(keras_x.numpy(), alone_x[:, 0])
    np.testing.assert_array_equal(keras_noise.numpy(), alone_noise[:, 0])
    other_epoch_x, other_epoch_noise = _draw(x, 4, [5], 16, 3)
    assert not np.array_equal(stacked_x[:, 0], stacked_x[:, 1])
    assert not np.array_equal(other_epoch_x, alone_x) and not np.array_equal(other_epoch_noise, alone_noise)


def test_the_shuffle_takes_distinct_rows_and_drops_the_last_partial_batch():
    """Rows numbered 0..n-1 come back as steps x batch distinct row numbers, for each run of a stack."""
    n, batch_size = 103, 10
    x = np.arange(n, dtype=np.float32)[:, None]
    x_epoch, noise = _draw(x, 0, [1, 2], batch_size, 2, bernoulli=False)
    assert x_epoch.shape == (10, 2, batch_size, 1) and noise.shape == (10, 2, batch_size, 2)
    for s in range(2):
        rows = x_epoch[:, s].ravel()
        assert len(set(rows.tolist())) == 100 and set(rows.tolist()) <= set(range(n))


@pytest.mark.slow
def test_the_shuffle_puts_each_row_at_each_position_equally_often():
    """Over 400 epochs of 12 rows, where row 0 lands is uniform on the 12 positions (chi-square), and so is
    which row comes first."""
    x = np.arange(12, dtype=np.float32)[:, None]
    fn = tf.function(
        lambda e: draws.epoch_draws(tf.constant(x), e, tf.constant([7]), 1, 12, 1, False)[0],
        jit_compile=True,
        autograph=False,
    )
    orders = np.array([fn(tf.constant(e)).numpy().ravel() for e in range(400)])
    where_row_0 = np.bincount(np.argmax(orders == 0, axis=1), minlength=12)
    first_row = np.bincount(orders[:, 0].astype(int), minlength=12)
    assert stats.chisquare(where_row_0).pvalue > 1e-3
    assert stats.chisquare(first_row).pvalue > 1e-3


def test_binarization_makes_a_value_one_with_probability_equal_to_it():
    """Columns of constant values p: the share of ones is p within 4 standard errors (0 and 1 exactly)."""
    p = np.array([0.0, 0.01, 0.1, 0.37, 0.5, 0.9, 1.0], np.float32)
    x = np.tile(p, (4000, 1))
    x_epoch, _ = _draw(x, 2, [3, 4], 50, 1)
    assert set(np.unique(x_epoch).tolist()) <= {0.0, 1.0}
    share = x_epoch.reshape(-1, len(p)).mean(axis=0)
    se = np.sqrt(p * (1 - p) / (x_epoch.size / len(p)))
    assert share[0] == 0.0 and share[-1] == 1.0
    assert np.all(np.abs(share - p) <= 4 * se + 1e-12), (share, p)


def test_the_noise_is_standard_normal_with_uncorrelated_pairs():
    """200,000 values: mean 0 and variance 1 within 4 standard errors, a Kolmogorov-Smirnov test against
    N(0, 1), and the Box-Muller pairs (cosine half, sine half) uncorrelated within 4 / sqrt(pairs)."""
    x = np.zeros((2000, 1), np.float32)
    _, noise = _draw(x, 1, [11], 20, 100, bernoulli=False)
    z = noise.ravel().astype(np.float64)
    n = z.size
    assert abs(z.mean()) < 4 / np.sqrt(n)
    assert abs(z.var() - 1) < 4 * np.sqrt(2 / n)
    assert stats.kstest(z, "norm").pvalue > 1e-3
    half = n // 2
    assert abs(np.corrcoef(z[:half], z[half:])[0, 1]) < 4 / np.sqrt(half)
    assert np.isfinite(z).all() and np.abs(z).max() < 6  # 23-bit uniforms, never 0: |z| < 5.8
