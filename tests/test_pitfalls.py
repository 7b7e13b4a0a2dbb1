"""The per-pixel-mean pitfall (vae_utils.errata.pitfalls): a hidden KL weight equal to the number of pixels.

The loss is checked against a NumPy re-computation and against the identity
per_pixel_mean_loss = negative_elbo(beta=D) / D; the training loop against its contract.
"""

import numpy as np
import pytest
from scipy import special

import vae_utils
from vae_utils.core.model import build_vae
from vae_utils.core.objective import negative_elbo
from vae_utils.errata.pitfalls import per_pixel_mean_loss, train_per_pixel_mean


def _batch(rng, n=16, d=64, latent=4):
    x = (rng.uniform(size=(n, d)) < 0.4).astype("float32")
    logits = rng.normal(size=(n, d)).astype("float32")
    z_mean, z_log_var = rng.normal(size=(2, n, latent)).astype("float32")
    return x, logits, z_mean, z_log_var


def test_the_per_pixel_mean_loss_matches_numpy():
    """Mean binary cross-entropy over pixels and batch + batch mean of the summed closed-form KL."""
    x, logits, z_mean, z_log_var = _batch(np.random.default_rng(0))
    p = special.expit(logits)
    bce = -(x * np.log(p) + (1 - x) * np.log(1 - p)).mean()
    kl = (0.5 * (z_mean**2 + np.exp(z_log_var) - 1 - z_log_var)).sum(axis=1).mean()
    assert float(per_pixel_mean_loss(x, logits, z_mean, z_log_var)) == pytest.approx(bce + kl, rel=1e-5)


def test_the_per_pixel_mean_is_the_elbo_with_beta_equal_to_the_pixel_count_divided_by_it():
    """per_pixel_mean_loss = negative_elbo(beta=D) / D, so both have the same minimizer."""
    x, logits, z_mean, z_log_var = _batch(np.random.default_rng(1), d=64)
    loss, _, _ = negative_elbo(x, logits, z_mean, z_log_var, "bernoulli", beta=64.0)
    assert float(per_pixel_mean_loss(x, logits, z_mean, z_log_var)) == pytest.approx(float(loss) / 64, rel=1e-5)


@pytest.mark.slow
def test_training_with_the_per_pixel_mean_is_deterministic_and_changes_the_weights(digits):
    """Two runs of one config give the same weights, and those differ from the untrained model's."""
    config = vae_utils.TrainConfig(dataset="digits", epochs=1, batch_size=128, latent_dim=2, seed=3)
    a, b = (train_per_pixel_mean(config, digits) for _ in range(2))
    untrained = build_vae(config.model_config(digits.dim, digits.likelihood), seed=config.seed)
    for wa, wb, _ in zip(a.get_weights(), b.get_weights(), untrained.get_weights(), strict=True):
        np.testing.assert_array_equal(wa, wb)
    assert any(not np.array_equal(wa, w0) for wa, w0 in zip(a.get_weights(), untrained.get_weights(), strict=True))


def test_gaussian_data_are_refused_with_the_parameter_named():
    """The per-pixel BCE needs Bernoulli data; Gaussian data get a one-line error."""
    data = vae_utils.load_dataset("gaussian2d")
    with pytest.raises(ValueError, match=r"data.likelihood='gaussian' is not allowed"):
        train_per_pixel_mean(vae_utils.TrainConfig(dataset="gaussian2d", epochs=1), data)
