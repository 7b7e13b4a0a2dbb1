"""The VAE objective (vae_utils.core.objective) against independent references.

Analytic KL against a Monte-Carlo estimate; log-likelihoods against SciPy; the negative ELBO
of a tiny hand-set model against a full NumPy forward pass; the batch reduction; the KL-weight
schedules and free bits against hand-computed values.
"""

import math

import keras
import numpy as np
import pytest
import tensorflow as tf
from scipy import special, stats

from vae_utils.core.model import ModelConfig, build_vae
from vae_utils.core.objective import (
    bernoulli_log_likelihood,
    free_bits_kl,
    gaussian_kl,
    gaussian_log_likelihood,
    kl_weight,
    log_normal,
    negative_elbo,
    reconstruction_loss,
)


def test_gaussian_kl_matches_a_monte_carlo_estimate_within_four_standard_errors():
    """gaussian_kl(mu, log_var) equals E_q[log q(z) - log N(z; 0, 1)] per dimension, within 4 standard errors."""
    mu = np.array([0.0, 1.5, -0.7, 0.3, 2.0])
    log_var = np.array([0.0, -1.0, 0.8, -3.0, 1.2])
    analytic = gaussian_kl(tf.constant(mu), tf.constant(log_var)).numpy()

    n = 400_000
    sd = np.exp(0.5 * log_var)
    z = mu + sd * np.random.default_rng(0).standard_normal((n, len(mu)))
    log_ratio = stats.norm.logpdf(z, mu, sd) - stats.norm.logpdf(z)
    estimate = log_ratio.mean(axis=0)
    se = log_ratio.std(axis=0, ddof=1) / math.sqrt(n)

    assert analytic.shape == mu.shape
    assert np.all(np.abs(analytic - estimate) < 4 * se + 1e-12), (analytic, estimate, se)
    assert analytic[0] == 0.0  # q equal to the prior: no divergence


def test_bernoulli_log_likelihood_matches_scipy_summed_over_the_last_axis():
    """bernoulli_log_likelihood(x, logits) = sum_d log Bernoulli(x_d; sigmoid(logits_d)), one value per row."""
    rng = np.random.default_rng(1)
    logits = rng.normal(scale=3.0, size=(7, 10))
    x = (rng.random((7, 10)) < 0.4).astype(np.float64)
    reference = stats.bernoulli.logpmf(x, special.expit(logits)).sum(axis=-1)
    got = bernoulli_log_likelihood(tf.constant(x), tf.constant(logits)).numpy()
    np.testing.assert_allclose(got, reference, rtol=1e-10)


def test_bernoulli_log_likelihood_of_intensities_is_the_cross_entropy():
    """For x in [0, 1] (not binarized) the value is sum_d x log p + (1 - x) log(1 - p)."""
    rng = np.random.default_rng(2)
    logits, x = rng.normal(size=(5, 6)), rng.random((5, 6))
    p = special.expit(logits)
    reference = np.sum(x * np.log(p) + (1 - x) * np.log1p(-p), axis=-1)
    np.testing.assert_allclose(bernoulli_log_likelihood(tf.constant(x), tf.constant(logits)).numpy(), reference)


def test_gaussian_log_likelihood_and_log_normal_match_scipy():
    """gaussian_log_likelihood(x, mean, log_var) = sum_d log N(x_d; mean_d, exp(log_var_d)), as SciPy computes it."""
    rng = np.random.default_rng(3)
    x, mean = rng.normal(size=(6, 4)), rng.normal(size=(6, 4))
    log_var = rng.normal(scale=0.5, size=(6, 4))
    reference = stats.norm.logpdf(x, mean, np.exp(0.5 * log_var)).sum(axis=-1)
    np.testing.assert_allclose(
        gaussian_log_likelihood(tf.constant(x), tf.constant(mean), tf.constant(log_var)).numpy(), reference
    )
    one_row = stats.multivariate_normal(mean[0], np.diag(np.exp(log_var[0]))).logpdf(x[0])
    np.testing.assert_allclose(log_normal(tf.constant(x), tf.constant(mean), tf.constant(log_var)).numpy()[0], one_row)


def test_reconstruction_loss_refuses_an_unknown_likelihood():
    """reconstruction_loss with likelihood='poisson' raises ValueError naming the value."""
    with pytest.raises(ValueError, match=r"likelihood='poisson'.*allowed"):
        reconstruction_loss(tf.zeros([1, 2]), tf.zeros([1, 2]), "poisson")


# --- the negative ELBO of a tiny model with hand-set weights --------------------------------------


def _set_tiny_weights(vae, seed):
    """Hand-set every Dense layer of a (D=4, hidden 3, L=2) VAE; return the weights by layer name."""
    rng = np.random.default_rng(seed)
    weights = {}
    for model in (vae.encoder, vae.decoder):
        for layer in model.layers:
            if isinstance(layer, keras.layers.Dense):
                kernel_shape = tuple(layer.kernel.shape)
                w = (rng.normal(scale=0.8, size=kernel_shape), rng.normal(scale=0.3, size=kernel_shape[1]))
                layer.set_weights([a.astype(np.float32) for a in w])
                weights[layer.name] = w
    return weights


def _numpy_negative_elbo(x, eps, w, likelihood, beta, decoder_variance):
    """Negative ELBO of the tiny MLP VAE, written out in NumPy: encoder, sampling, decoder, loss."""
    relu = lambda a: np.maximum(a, 0.0)
    dense = lambda a, name: a @ w[name][0] + w[name][1]
    h = relu(dense(x, "encoder_dense_0"))
    mu, log_var = dense(h, "z_mean"), dense(h, "z_log_var")
    z = mu + np.exp(0.5 * log_var) * eps
    out = dense(relu(dense(z, "decoder_dense_0")), "logits" if likelihood == "bernoulli" else "x_mean")
    if likelihood == "bernoulli":
        log_px = np.sum(x * -np.logaddexp(0.0, -out) + (1 - x) * -np.logaddexp(0.0, out), axis=1)
    else:
        log_px = stats.norm.logpdf(x, out, math.sqrt(decoder_variance)).sum(axis=1)
    kl = 0.5 * np.sum(mu**2 + np.exp(log_var) - 1.0 - log_var, axis=1)  # closed form, checked above by MC
    recon = -log_px
    return recon.mean() + beta * kl.mean(), recon.mean(), kl.mean()


@pytest.mark.parametrize(("likelihood", "decoder_variance"), [("bernoulli", None), ("gaussian", 0.5)])
def test_negative_elbo_of_a_hand_set_tiny_model_matches_a_numpy_recomputation(likelihood, decoder_variance):
    """(loss, reconstruction, KL) of a hand-set model = NumPy's recon + beta * KL, summed over dims, mean over batch."""
    config = ModelConfig(
        input_dim=4, latent_dim=2, hidden_units=(3,), likelihood=likelihood, decoder_variance=decoder_variance or 1.0
    )
    vae = build_vae(config, seed=0)
    weights = _set_tiny_weights(vae, seed=4)
    assert set(weights) == {"encoder_dense_0", "z_mean", "z_log_var", "decoder_dense_0", vae.decoder.layers[-1].name}

    rng = np.random.default_rng(5)
    x = (rng.random((9, 4)) < 0.5).astype(np.float64) if likelihood == "bernoulli" else rng.normal(size=(9, 4))
    eps = rng.standard_normal((9, 2))
    beta = 0.7

    z_mean, z_log_var = vae.posterior(x.astype(np.float32))
    decoded = vae.decoder(z_mean + tf.exp(0.5 * z_log_var) * eps.astype(np.float32))
    got = negative_elbo(
        tf.constant(x, tf.float32), decoded, z_mean, z_log_var, likelihood, beta=beta, log_var=vae.decoder_log_var
    )
    want = _numpy_negative_elbo(x, eps, weights, likelihood, beta, decoder_variance or 1.0)
    np.testing.assert_allclose([float(v) for v in got], want, rtol=2e-5)


def test_negative_elbo_of_a_batch_is_the_mean_of_its_single_example_losses():
    """The reduction is a batch mean: loss, reconstruction and KL of a batch of 16 = means of 16 one-example values.

    This is the source article's bug turned into a test: summing the KL over the batch while
    averaging the reconstruction makes the effective beta grow with the batch size.
    """
    rng = np.random.default_rng(6)
    x = tf.constant((rng.random((16, 5)) < 0.5).astype(np.float32))
    logits = tf.constant(rng.normal(size=(16, 5)).astype(np.float32))
    z_mean = tf.constant(rng.normal(size=(16, 3)).astype(np.float32))
    z_log_var = tf.constant(rng.normal(scale=0.5, size=(16, 3)).astype(np.float32))

    batch = [float(v) for v in negative_elbo(x, logits, z_mean, z_log_var, "bernoulli", beta=2.0)]
    singles = np.array(
        [
            [
                float(v)
                for v in negative_elbo(
                    x[i : i + 1], logits[i : i + 1], z_mean[i : i + 1], z_log_var[i : i + 1], "bernoulli", beta=2.0
                )
            ]
            for i in range(16)
        ]
    )
    np.testing.assert_allclose(batch, singles.mean(axis=0), rtol=1e-5)
    # The same batch repeated 4 times (a 4x larger batch of the same examples) gives the same numbers.
    big = [
        float(v)
        for v in negative_elbo(
            tf.tile(x, [4, 1]),
            tf.tile(logits, [4, 1]),
            tf.tile(z_mean, [4, 1]),
            tf.tile(z_log_var, [4, 1]),
            "bernoulli",
            beta=2.0,
        )
    ]
    np.testing.assert_allclose(big, batch, rtol=1e-5)
    assert batch[0] == pytest.approx(batch[1] + 2.0 * batch[2], rel=1e-6)


# --- KL schedules and free bits ---------------------------------------------------------------------


@pytest.mark.parametrize(
    ("step", "expected"),
    [(0, 0.0), (25, 0.25), (50, 0.5), (99, 0.99), (100, 1.0), (250, 1.0)],
)
def test_linear_kl_warmup_rises_from_zero_to_beta_over_the_warmup_steps(step, expected):
    """linear: weight = beta * min(1, step / warmup_steps), here beta = 2, warmup = 100 steps."""
    got = float(kl_weight("linear", step, total_steps=1000, beta=2.0, warmup_steps=100))
    assert got == pytest.approx(2.0 * expected, abs=1e-6)


@pytest.mark.parametrize(
    ("step", "expected"),
    [
        (0, 0.0),  # start of cycle 1
        (50, 0.4),  # tau = 50/250 = 0.2; ramp 0.2 / R = 0.4
        (125, 1.0),  # tau = 0.5 = R: the ramp ends
        (200, 1.0),  # held at beta for the rest of the cycle
        (249, 1.0),
        (250, 0.0),  # cycle 2 starts from zero again
        (300, 0.4),
        (500, 0.0),  # cycle 3
        (812, 0.496),  # cycle 4: tau = 62/250 = 0.248
        (999, 1.0),
    ],
)
def test_cyclical_kl_weight_follows_fu_et_al_with_m_cycles_and_ratio_r(step, expected):
    """cyclical (Fu et al. 2019), T = 1000 steps, M = 4 cycles, R = 0.5: weight = beta * min(1, tau / R), tau = (t mod T/M) / (T/M)."""
    got = float(kl_weight("cyclical", step, total_steps=1000, beta=1.5, cycles=4, ratio=0.5))
    assert got == pytest.approx(1.5 * expected, abs=1e-5)


@pytest.mark.parametrize("schedule", ["constant", "free_bits"])
def test_constant_and_free_bits_schedules_keep_the_weight_at_beta(schedule):
    """constant and free_bits: the KL weight is beta at every step."""
    assert [float(kl_weight(schedule, s, 100, 0.3)) for s in (0, 50, 99)] == pytest.approx([0.3] * 3)


def test_kl_weight_refuses_an_unknown_schedule():
    """kl_weight('sigmoid', ...) raises ValueError naming the schedule."""
    with pytest.raises(ValueError, match=r"kl_schedule='sigmoid'.*allowed"):
        kl_weight("sigmoid", 0, 10, 1.0)


def test_free_bits_kl_is_the_sum_over_dimensions_of_the_clamped_batch_mean():
    """free_bits_kl = sum_u max(lambda, mean_batch KL_u), compared with NumPy; dims below lambda count lambda."""
    rng = np.random.default_rng(7)
    kl_per_dim = rng.gamma(shape=1.0, scale=[0.05, 0.5, 2.0, 0.1], size=(32, 4))
    for free_bits in (0.0, 0.25, 1.0):
        expected = np.maximum(kl_per_dim.mean(axis=0), free_bits).sum()
        assert float(free_bits_kl(tf.constant(kl_per_dim), free_bits)) == pytest.approx(expected, rel=1e-12)
    # With lambda = 0 free bits is the plain KL (summed over dims, averaged over the batch).
    assert float(free_bits_kl(tf.constant(kl_per_dim), 0.0)) == pytest.approx(kl_per_dim.sum(axis=1).mean())
