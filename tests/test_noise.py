"""The gradient-noise scale (vae_utils.core.noise, McCandlish et al. 2018) against known and exact values.

E|G_B|^2 = |G|^2 + tr(Sigma) / B for a batch of B examples drawn independently (with replacement) from
a data set with mean gradient G and per-example gradient covariance Sigma. Linear regression gives
per-example gradients in closed form, so the exact B_simple = tr(Sigma) / |G|^2 is known.
"""

import math

import numpy as np
import pytest

from vae_utils.core.noise import gradient_noise_scale, noise_scale_from_norms


@pytest.mark.parametrize(
    ("g2", "trace_sigma", "b_small", "b_big"),
    [(3.0, 50.0, 8, 512), (0.01, 2.5, 1, 2), (120.0, 7.0, 32, 64)],
)
def test_noise_scale_from_norms_recovers_g2_and_trace_sigma_from_exact_norms(g2, trace_sigma, b_small, b_big):
    """Given E|G_B|^2 = |G|^2 + tr(Sigma)/B at two batch sizes, it returns |G|^2, tr(Sigma) and their ratio."""
    out = noise_scale_from_norms(b_small, g2 + trace_sigma / b_small, b_big, g2 + trace_sigma / b_big)
    assert out["g2"] == pytest.approx(g2, rel=1e-9)
    assert out["trace_sigma"] == pytest.approx(trace_sigma, rel=1e-9)
    assert out["b_simple"] == pytest.approx(trace_sigma / g2, rel=1e-9)


@pytest.mark.parametrize(("b_small", "b_big"), [(8, 8), (64, 8), (0, 8), (-1, 4)])
def test_noise_scale_from_norms_refuses_batch_sizes_out_of_order(b_small, b_big):
    """b_small must be > 0 and below b_big; otherwise ValueError naming both."""
    with pytest.raises(ValueError, match=rf"b_small={b_small}, b_big={b_big}.*allowed"):
        noise_scale_from_norms(b_small, 2.0, b_big, 1.0)


def _regression_gradients(n=1000, p=5, seed=0):
    """Per-example gradients of 0.5 (x.w - y)^2 at a point w0 away from the optimum, and their exact G, tr(Sigma)."""
    rng = np.random.default_rng(seed)
    x = rng.normal(size=(n, p)) * np.linspace(0.5, 2.0, p)
    w_star = rng.normal(size=p)
    y = x @ w_star + rng.normal(scale=0.5, size=n)
    w0 = w_star + 0.15 * rng.normal(size=p)
    grads = (x @ w0 - y)[:, None] * x  # (n, p): d/dw 0.5 (x.w - y)^2
    g = grads.mean(axis=0)
    trace_sigma = np.sum(grads.var(axis=0))  # population covariance of the finite data set
    return grads, float(g @ g), float(trace_sigma)


def test_two_batch_size_estimator_recovers_the_exact_noise_scale_of_linear_regression():
    """From mean-squared norms of sampled minibatch gradients at B = 4 and 128, noise_scale_from_norms estimates
    |G|^2, tr(Sigma) and B_simple; over 20 independent replicates each agrees with the exact value within 4 SE."""
    grads, g2_exact, trace_exact = _regression_gradients()
    b_exact = trace_exact / g2_exact
    assert 4 < b_exact < 128  # a regime where both batch sizes carry information

    rng = np.random.default_rng(1)
    estimates = []
    for _ in range(20):
        norms = {}
        for b in (4, 128):
            batch_grads = grads[rng.integers(len(grads), size=(1000, b))].mean(axis=1)
            norms[b] = float(np.mean(np.sum(batch_grads**2, axis=1)))
        out = noise_scale_from_norms(4, norms[4], 128, norms[128])
        estimates.append((out["g2"], out["trace_sigma"], out["b_simple"]))
    estimates = np.array(estimates)
    mean, se = estimates.mean(axis=0), estimates.std(axis=0, ddof=1) / math.sqrt(len(estimates))
    for name, m, s, exact in zip(
        ("g2", "trace_sigma", "b_simple"), mean, se, (g2_exact, trace_exact, b_exact), strict=True
    ):
        assert abs(m - exact) < 4 * s, (name, m, s, exact)
    assert abs(mean[2] - b_exact) < 0.05 * b_exact  # and the error bar itself is small


def test_gradient_noise_scale_of_a_trained_digits_model_is_finite_and_positive(trained_digits, digits):
    """On the shared trained model: E|G_B|^2 falls with B, |G|^2 and tr(Sigma) are positive, B_simple is finite
    and positive and equals noise_scale_from_norms of the returned norms; one seed gives one answer."""
    out = gradient_noise_scale(trained_digits.model, digits.train, b_small=8, b_big=256, n_batches=16, seed=0)
    assert out["g2_small"] > out["g2_big"] > 0
    assert out["g2"] > 0 and out["trace_sigma"] > 0
    assert math.isfinite(out["b_simple"]) and out["b_simple"] > 0
    again = noise_scale_from_norms(8, out["g2_small"], 256, out["g2_big"])
    assert again["b_simple"] == pytest.approx(out["b_simple"], rel=1e-12)
    assert gradient_noise_scale(trained_digits.model, digits.train, b_small=8, b_big=256, n_batches=16, seed=0) == out


@pytest.mark.parametrize(("b_small", "b_big"), [(0, 8), (16, 16), (8, 5000)])
def test_gradient_noise_scale_refuses_batch_sizes_outside_the_data(trained_digits, digits, b_small, b_big):
    """b_small >= 1, b_small < b_big and b_big <= the number of examples; otherwise ValueError."""
    with pytest.raises(ValueError, match=rf"b_small={b_small}, b_big={b_big}.*allowed.*1257"):
        gradient_noise_scale(trained_digits.model, digits.train, b_small=b_small, b_big=b_big, n_batches=2)
