"""Held-out evaluation (vae_utils.evaluate): the IWAE bound, the probabilistic-PCA oracle, latent activity.

The oracle: a linear-Gaussian VAE whose decoder is probabilistic PCA, x = W z + b + noise, has the
exact marginal log N(x; b, W W^T + sigma^2 I) and an exact Gaussian posterior, so the ELBO and the
importance-weighted bound can be checked against closed forms, not against the code itself.
"""

import itertools
import math

import numpy as np
import pytest
from scipy import stats

from vae_utils import evaluate, independent_bernoulli_nll
from vae_utils.core.evaluation import encode, latent_grid, latent_traversal, reconstruct, sample_prior
from vae_utils.core.model import ModelConfig, build_vae

# --- the IWAE bound on a trained digits model ------------------------------------------------------

KS = (1, 10, 100, 1000)
SEEDS = (0, 1, 2, 3, 4)


@pytest.fixture(scope="module")
def iwae_by_k(trained_digits, digits):
    """evaluate() of the shared trained model on the test set for every k in KS and seed in SEEDS."""
    return {k: [evaluate(trained_digits.model, digits.test, k=k, seed=s) for s in SEEDS] for k in KS}


def _mean_se(values):
    values = np.asarray(values, np.float64)
    return values.mean(), values.std(ddof=1) / math.sqrt(len(values))


def test_iwae_nll_is_below_minus_elbo_beyond_monte_carlo_noise(iwae_by_k):
    """For k >= 10, nll < -elbo by more than 4 standard errors (over seeds); for k = 1 they agree within noise."""
    for k in KS:
        gaps = [-r["elbo"] - r["nll"] for r in iwae_by_k[k]]
        gap, se = _mean_se(gaps)
        if k == 1:  # IWAE with one sample is the ELBO (with a Monte-Carlo KL)
            assert abs(gap) < 4 * se + 0.05, (k, gap, se)
        else:
            assert gap > 4 * se and gap > 0.05, (k, gap, se)


def test_iwae_nll_decreases_as_k_grows(iwae_by_k):
    """The mean NLL estimate over seeds does not rise from k = 1 to 10, 100, 1000 beyond 3 standard errors."""
    stats_by_k = [_mean_se([r["nll"] for r in iwae_by_k[k]]) for k in KS]
    for (m1, s1), (m2, s2) in itertools.pairwise(stats_by_k):
        assert m2 <= m1 + 3 * math.hypot(s1, s2), stats_by_k
    assert stats_by_k[-1][0] < stats_by_k[0][0] - 0.1  # and it tightens by a visible amount overall


def test_evaluate_is_deterministic_for_a_seed_and_changes_with_the_seed(trained_digits, digits):
    """Two calls with one seed give identical numbers; another seed gives a different Monte-Carlo estimate."""
    a = evaluate(trained_digits.model, digits.test, k=10, seed=7)
    b = evaluate(trained_digits.model, digits.test, k=10, seed=7)
    c = evaluate(trained_digits.model, digits.test, k=10, seed=8)
    assert a == b
    assert a["nll"] != c["nll"]
    assert a["kl_loss"] == c["kl_loss"]  # the analytic KL has no Monte-Carlo noise


# --- the probabilistic-PCA oracle ----------------------------------------------------------------

D, L, SIGMA2 = 6, 2, 0.3


@pytest.fixture(scope="module")
def ppca():
    """A PPCA model (W with orthogonal columns, bias b, noise sigma^2), data drawn from it, and log p(x)."""
    rng = np.random.default_rng(0)
    q, _ = np.linalg.qr(rng.normal(size=(D, L)))
    s = np.array([2.0, 1.2])  # column norms of W
    w, b = q * s, rng.normal(size=D)
    cov = w @ w.T + SIGMA2 * np.eye(D)
    x = rng.multivariate_normal(b, cov, size=300).astype(np.float32)
    log_px = stats.multivariate_normal(b, cov).logpdf(x.astype(np.float64))
    # Exact posterior: N(M^-1 W^T (x - b), sigma^2 M^-1), M = W^T W + sigma^2 I = diag(s^2 + sigma^2).
    m_inv = 1.0 / (s**2 + SIGMA2)
    post_mean = (x - b) @ w * m_inv
    post_var = SIGMA2 * m_inv
    return dict(w=w, b=b, x=x, log_px=log_px, m_inv=m_inv, post_mean=post_mean, post_var=post_var)


def _linear_vae(p, mean_scale=1.0, log_var_shift=0.0):
    """A linear-Gaussian VAE with the PPCA decoder and the exact encoder, optionally made wrong on purpose."""
    vae = build_vae(ModelConfig(D, L, hidden_units=(), likelihood="gaussian", decoder_variance=SIGMA2), seed=0)
    w, b, m_inv = p["w"], p["b"], p["m_inv"]
    f32 = lambda a: np.asarray(a, np.float32)
    vae.decoder.get_layer("x_mean").set_weights([f32(w.T), f32(b)])
    vae.encoder.get_layer("z_mean").set_weights([f32(mean_scale * w * m_inv), f32(-mean_scale * (b @ w) * m_inv)])
    vae.encoder.get_layer("z_log_var").set_weights(
        [np.zeros((D, L), np.float32), f32(np.log(p["post_var"]) + log_var_shift)]
    )
    return vae


def _elbo_standard_error(p, q_mean, q_var, k):
    """Standard error of evaluate()'s ELBO: its reconstruction term is a k-sample mean per example.

    -log p(x|z) = |r - A eps|^2 / (2 sigma^2) + const with r = x - b - W m, A = W diag(sqrt(v)),
    and Var|r - A eps|^2 = 4 r^T A A^T r + 2 tr((A A^T)^2) for eps ~ N(0, I).
    """
    r = p["x"] - p["b"] - q_mean @ p["w"].T
    a = p["w"] * np.sqrt(q_var)
    aat = a @ a.T
    var = (4 * np.einsum("nd,de,ne->n", r, aat, r) + 2 * np.trace(aat @ aat)) / (4 * SIGMA2**2)
    return math.sqrt(var.mean() / (len(r) * k))


def test_linear_encoder_set_to_the_exact_posterior_outputs_it(ppca):
    """The hand-set encoder returns the PPCA posterior mean and log-variance (a check of the oracle itself)."""
    z_mean, z_log_var = encode(_linear_vae(ppca), ppca["x"])
    np.testing.assert_allclose(z_mean, ppca["post_mean"], atol=1e-5)
    np.testing.assert_allclose(z_log_var, np.broadcast_to(np.log(ppca["post_var"]), z_log_var.shape), atol=1e-6)


def test_elbo_with_the_exact_posterior_equals_the_ppca_marginal_likelihood(ppca):
    """Exact encoder: ELBO = mean log N(x; b, W W^T + sigma^2 I) within 4 standard errors and ~1e-4 relative;
    every importance weight equals p(x), so the IWAE NLL matches -log p(x) to float precision at any k."""
    vae = _linear_vae(ppca)
    log_px = ppca["log_px"].mean()
    k = 2000
    result = evaluate(vae, ppca["x"], k=k, seed=0)
    se = _elbo_standard_error(ppca, ppca["post_mean"], ppca["post_var"], k)
    assert abs(result["elbo"] - log_px) < 4 * se, (result["elbo"], log_px, se)
    assert abs(result["elbo"] - log_px) < 3e-4 * abs(log_px)
    for k in (1, 10):
        assert evaluate(vae, ppca["x"], k=k, seed=1)["nll"] == pytest.approx(-log_px, rel=1e-5)


def test_a_wrong_encoder_lowers_the_elbo_by_the_kl_to_the_true_posterior_and_iwae_recovers_log_px(ppca):
    """Wrong encoder: ELBO = log p(x) - KL(q || p(z|x)) (closed form) within 4 SE, strictly below log p(x);
    the IWAE estimate with k = 1000 comes back to -log p(x) within 0.01 nats."""
    q_mean, q_var = 0.5 * ppca["post_mean"], ppca["post_var"] * math.exp(1.5)
    vae = _linear_vae(ppca, mean_scale=0.5, log_var_shift=1.5)
    np.testing.assert_allclose(encode(vae, ppca["x"])[0], q_mean, atol=1e-5)
    p_mean, p_var = ppca["post_mean"], ppca["post_var"]
    kl_to_posterior = 0.5 * np.sum(q_var / p_var + (q_mean - p_mean) ** 2 / p_var - 1 + np.log(p_var / q_var), axis=1)
    log_px = ppca["log_px"].mean()

    k = 1000
    result = evaluate(vae, ppca["x"], k=k, seed=0)
    se = _elbo_standard_error(ppca, q_mean, q_var, k)
    expected_elbo = log_px - kl_to_posterior.mean()
    assert abs(result["elbo"] - expected_elbo) < 4 * se, (result["elbo"], expected_elbo, se)
    assert result["elbo"] < log_px - 1.0  # strictly below, by far more than the noise
    assert abs(result["nll"] + log_px) < 0.01, (result["nll"], -log_px)
    assert evaluate(vae, ppca["x"], k=1, seed=0)["nll"] > -log_px + 1.0  # one sample is far from it


# --- latent activity, KL per dimension, the baseline, helpers ---------------------------------------


def test_active_units_and_kl_per_dim_match_a_numpy_recomputation():
    """active_units counts dims with Var_x(z_mean) > 0.01; kl_per_dim is the closed-form KL averaged over x
    and sums to kl_loss; elbo = -(reconstruction_loss + kl_loss)."""
    vae = build_vae(ModelConfig(3, 3, hidden_units=(), likelihood="gaussian"), seed=0)
    kernel = np.diag([1.0, 0.2, 0.05]).astype(np.float32)  # Var(z_mean) = 1, 0.04, 0.0025 for x ~ N(0, I)
    bias = np.array([0.5, -1.0, 0.0], np.float32)
    vae.encoder.get_layer("z_mean").set_weights([kernel, bias])
    log_var_kernel = (0.3 * np.random.default_rng(1).normal(size=(3, 3))).astype(np.float32)
    log_var_bias = np.array([-1.0, 0.0, 0.5], np.float32)
    vae.encoder.get_layer("z_log_var").set_weights([log_var_kernel, log_var_bias])
    x = np.random.default_rng(2).standard_normal((4000, 3)).astype(np.float32)

    result = evaluate(vae, x, k=5, seed=0)
    mu = x.astype(np.float64) @ kernel + bias
    log_var = x.astype(np.float64) @ log_var_kernel + log_var_bias
    kl = 0.5 * (mu**2 + np.exp(log_var) - 1 - log_var)
    np.testing.assert_allclose(result["z_mean_variance"], mu.var(axis=0), rtol=1e-4)
    assert result["active_units"] == int(np.sum(mu.var(axis=0) > 0.01)) == 2
    np.testing.assert_allclose(result["kl_per_dim"], kl.mean(axis=0), rtol=1e-4)
    assert sum(result["kl_per_dim"]) == pytest.approx(result["kl_loss"], rel=1e-9)
    assert result["elbo"] == pytest.approx(-(result["reconstruction_loss"] + result["kl_loss"]), rel=1e-9)


def test_independent_bernoulli_nll_matches_scipy(digits):
    """The baseline NLL = -mean_x sum_d log Bernoulli(x_d; clip(mean_train_d, 1e-3, 1 - 1e-3))."""
    p = np.clip(digits.train.astype(np.float64).mean(axis=0), 1e-3, 1 - 1e-3)
    reference = -stats.bernoulli.logpmf(digits.test, p).sum(axis=1).mean()
    assert independent_bernoulli_nll(digits.train, digits.test) == pytest.approx(reference, rel=1e-12)


def test_reconstructions_samples_and_traversals_are_pixel_probabilities_of_the_right_shape(trained_digits, digits):
    """The helpers return Bernoulli means in [0, 1] with shapes (n, D), (n, D), (dims, values, D), (n, n, D)."""
    model = trained_digits.model
    outputs = {
        "reconstruct": (reconstruct(model, digits.test[:5]), (5, 64)),
        "sample_prior": (sample_prior(model, 7, seed=0), (7, 64)),
        "latent_traversal": (latent_traversal(model, digits.test[:1], dims=[0, 3]), (2, 9, 64)),
        "latent_grid": (latent_grid(model, n=4), (4, 4, 64)),
    }
    for name, (array, shape) in outputs.items():
        assert array.shape == shape, name
        assert np.all((array >= 0) & (array <= 1)), name
    np.testing.assert_array_equal(sample_prior(model, 7, seed=0), outputs["sample_prior"][0])


def test_the_untrained_elbo_is_close_to_coin_flips_and_a_short_run_beats_it(digits):
    """untrained_elbo(config) is the test ELBO of the seeded initial weights: logits near 0 put each of
    the 64 pixels at probability 1/2, about 64 ln 2 = 44.4 nats of reconstruction plus a small KL, and
    one epoch of training improves on it (what a broken run counts as in the strategy chapters)."""
    from vae_utils import TrainConfig, train
    from vae_utils.core.evaluation import untrained_elbo

    config = TrainConfig(epochs=1, seed=3)
    floor = untrained_elbo(config, digits)
    assert -64 * math.log(2) - 6 < floor < -64 * math.log(2) + 2
    assert untrained_elbo(config, digits) == floor  # seeded: the same weights, the same value
    assert train(config, digits).metrics["test_elbo"] > floor + 5
