"""Gradient-noise scale of a VAE (McCandlish et al. 2018), for the batch-size chapter.

The mean-squared norm of a minibatch gradient of size B is E|G_B|^2 = |G|^2 + tr(Sigma) / B,
where G is the full-batch gradient and Sigma the per-example gradient covariance.
Measuring E|G_B|^2 at two batch sizes gives unbiased estimates of both terms
(their Appendix A.1), and the simple noise scale B_simple = tr(Sigma) / |G|^2: the batch size
above which larger batches stop buying proportionally fewer steps.

    from vae_utils.core.noise import gradient_noise_scale
    gradient_noise_scale(result.model, ds.train, b_small=8, b_big=512)["b_simple"]
"""

from __future__ import annotations

import numpy as np
import tensorflow as tf

from .data import binarize_tensor
from .evaluation import check_array
from .model import reparameterize
from .objective import negative_elbo

__all__ = ["noise_scale_from_norms", "gradient_noise_scale"]


def noise_scale_from_norms(b_small: float, g2_small: float, b_big: float, g2_big: float) -> dict:
    """|G|^2, tr(Sigma) and B_simple from mean-squared gradient norms at two batch sizes."""
    if not 0 < b_small < b_big:
        raise ValueError(f"b_small={b_small!r}, b_big={b_big!r}; allowed: 0 < b_small < b_big")
    g2 = (b_big * g2_big - b_small * g2_small) / (b_big - b_small)
    trace_sigma = (g2_small - g2_big) / (1.0 / b_small - 1.0 / b_big)
    return {"g2": float(g2), "trace_sigma": float(trace_sigma), "b_simple": float(trace_sigma / g2)}


_TRACED: dict = {}  # one entry: a private copy of the last model shape measured, and its traced |G_B|^2


def _squared_norm_fn(model, beta: float):
    """The compiled squared norm of the gradient of the negative ELBO on a batch at ``model``'s current weights.
    It runs on a private copy of the model, built once per model configuration and beta and given ``model``'s
    weights at each call, so the checkpoints of a measurement (new models of one configuration) share one
    trace instead of retracing for each; ``model`` itself is never written."""
    key = (repr(model.config), model.likelihood, beta)
    if _TRACED.get("key") != key:
        from .model import build_vae

        copy = build_vae(model.config)
        _TRACED.clear()
        _TRACED.update(key=key, model=copy, fn=_traced(copy, beta))
    _TRACED["model"].set_weights(model.get_weights())
    return _TRACED["fn"]


def _traced(model, beta: float):
    variables = model.trainable_variables
    bernoulli = model.likelihood == "bernoulli"

    @tf.function(reduce_retracing=True, autograph=False)
    def squared_norm(xb, key):
        if bernoulli:
            xb = binarize_tensor(xb, key)
        with tf.GradientTape() as tape:
            z_mean, z_log_var = model.posterior(xb, training=True)
            eps = tf.random.stateless_normal(tf.shape(z_mean), seed=key + 1)
            decoded = model.decoder(reparameterize(z_mean, z_log_var, eps), training=True)
            loss, _, _ = negative_elbo(xb, decoded, z_mean, z_log_var, model.likelihood, beta, model.decoder_log_var)
        grads = tape.gradient(loss, variables)
        return tf.add_n([tf.reduce_sum(tf.square(g)) for g in grads if g is not None])

    return squared_norm


def gradient_noise_scale(
    model, x, b_small: int = 8, b_big: int = 512, n_batches: int = 64, beta: float = 1.0, seed: int = 0
) -> dict:
    """Estimate B_simple of the negative ELBO at ``model``'s current weights on data ``x``.

    Averages |G_B|^2 over ``n_batches`` random batches at each size. Examples are drawn with
    replacement, so the batch gradient is a mean of B independent per-example gradients and
    E|G_B|^2 = |G|^2 + tr(Sigma)/B holds exactly for the data set (drawing without replacement
    would shrink the second term by the finite-population factor (n - B)/(n - 1): 0.59 for
    B = 512 of digits' 1257 examples). Bernoulli data are binarized per batch, as in training.
    Returns the estimates and the two mean-squared norms.
    """
    x = check_array("x", x, dim=model.config.input_dim)
    n = len(x)
    if not 1 <= b_small < b_big <= n:
        raise ValueError(f"b_small={b_small!r}, b_big={b_big!r}; allowed: 1 <= b_small < b_big <= {n} (the data)")
    squared_norm = _squared_norm_fn(model, float(beta))

    rng = np.random.default_rng(seed)
    g2 = {}
    for b in (b_small, b_big):
        norms = [
            float(
                squared_norm(tf.constant(x[rng.choice(n, size=b, replace=True)]), tf.constant([seed, 2 * i], tf.int64))
            )
            for i in range(n_batches)
        ]
        g2[b] = float(np.mean(norms))
    out = noise_scale_from_norms(b_small, g2[b_small], b_big, g2[b_big])
    out.update(g2_small=g2[b_small], g2_big=g2[b_big], b_small=b_small, b_big=b_big, n_batches=n_batches)
    return out
