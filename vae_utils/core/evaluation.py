"""Held-out evaluation of a trained VAE: ELBO, importance-weighted NLL, latent activity.

    from vae_utils import evaluate
    m = evaluate(result.model, ds.test, k=500, seed=0)
    m["elbo"], m["nll"], m["active_units"], m["kl_per_dim"]

All values are in nats per example, with the reduction of ``vae_utils.core.objective``.

* ``elbo``: E_q[log p(x|z)] - KL(q(z|x) || p(z)), reconstruction averaged over the k samples,
  KL analytic. A lower bound on log p(x); higher is better.
* ``nll``: -log p(x) estimated by the importance-weighted bound (Burda et al. 2016),
  -log (1/k) sum_i p(x, z_i) / q(z_i | x), z_i ~ q(z | x). An upper bound on the NLL that
  tightens as k grows; k = 1 gives -ELBO (with a Monte-Carlo KL).
* ``active_units``: latent dimensions whose posterior mean varies over the data,
  Var_x(E_q[z_u]) > 0.01 (Burda et al. 2016).
"""

from __future__ import annotations

import numpy as np
import tensorflow as tf

from .config import ACTIVE_THRESHOLD
from .model import reparameterize
from .objective import gaussian_kl, log_normal, reconstruction_loss

__all__ = [
    "check_array",
    "evaluate",
    "encode",
    "reconstruct",
    "sample_prior",
    "latent_traversal",
    "latent_grid",
    "independent_bernoulli_nll",
    "untrained_elbo",
    "ACTIVE_THRESHOLD",
]


def check_array(name: str, x, dim: int | None = None) -> np.ndarray:
    """Return ``x`` as float32 (n, d), or raise ValueError naming ``name`` if it is unusable."""
    arr = np.asarray(x)
    if arr.ndim != 2 or arr.shape[0] < 1:
        raise ValueError(f"{name} has shape {arr.shape}; allowed: a 2-D array (n_examples >= 1, n_features)")
    if dim is not None and arr.shape[1] != dim:
        raise ValueError(f"{name} has {arr.shape[1]} features; allowed: {dim} (the model's input_dim)")
    if not np.issubdtype(arr.dtype, np.number):
        raise ValueError(f"{name} has dtype {arr.dtype}; allowed: a numeric array")
    if not np.all(np.isfinite(arr)):
        bad = int(np.size(arr) - np.isfinite(arr).sum())
        raise ValueError(f"{name} holds {bad} NaN or infinite values; allowed: finite values only")
    return arr.astype(np.float32, copy=False)


def _eval_function(model):
    """The model's compiled evaluation step, built once per model and kept on it."""
    fn = getattr(model, "_vae_eval_fn", None)
    if fn is None:
        fn = tf.function(
            lambda x, k, seed: _eval_chunk(
                model.posterior, model.decoder, model.likelihood, model.decoder_log_var, x, k, seed
            ),
            reduce_retracing=True,
            autograph=False,
        )
        model._vae_eval_fn = fn
    return fn


def _eval_chunk(posterior, decoder, likelihood, log_var, x, k, seed):
    z_mean, z_log_var = posterior(x, training=False)
    n, latent = tf.shape(z_mean)[0], tf.shape(z_mean)[1]
    eps = tf.random.stateless_normal(tf.stack([k, n, latent]), seed=seed)
    z = reparameterize(z_mean, z_log_var, eps)  # (k, n, L)
    decoded = decoder(tf.reshape(z, [-1, latent]), training=False)
    decoded = tf.reshape(decoded, tf.stack([k, n, tf.shape(x)[1]]))
    log_px_z = -reconstruction_loss(tf.broadcast_to(x, tf.shape(decoded)), decoded, likelihood, log_var)  # (k, n)
    log_w = log_px_z + log_normal(z, 0.0, 0.0) - log_normal(z, z_mean, z_log_var)
    iwae = tf.reduce_logsumexp(log_w, axis=0) - tf.math.log(tf.cast(k, tf.float32))
    kl_dim = gaussian_kl(z_mean, z_log_var)
    return -tf.reduce_mean(log_px_z, axis=0), kl_dim, iwae, z_mean


def evaluate(model, x, k: int = 100, seed: int = 0, activity: bool = True, max_batch_elements: int = 2_000_000) -> dict:
    """ELBO, IWAE NLL (k samples), reconstruction and KL, active units; all per example, in nats."""
    if isinstance(k, bool) or not isinstance(k, (int, np.integer)) or k < 1:
        raise ValueError(f"k={k!r} is not allowed; allowed: an integer >= 1")
    x = check_array("x", x, dim=model.config.input_dim)
    n, d = x.shape
    chunk = max(1, min(n, max_batch_elements // (k * d)))
    recon, kl_dim, iwae, z_mean = [], [], [], []
    for j, start in enumerate(range(0, n, chunk)):
        out = _eval_function(model)(
            tf.constant(x[start : start + chunk]), tf.constant(k), tf.constant([seed, j], tf.int64)
        )
        for acc, v in zip((recon, kl_dim, iwae, z_mean), out, strict=True):
            acc.append(v.numpy().astype(np.float64))
    recon, kl_dim, iwae, z_mean = (np.concatenate(a) for a in (recon, kl_dim, iwae, z_mean))
    kl = kl_dim.sum(axis=1)
    out = {
        "elbo": float(np.mean(-recon - kl)),
        "nll": float(-np.mean(iwae)),
        "reconstruction_loss": float(np.mean(recon)),
        "kl_loss": float(np.mean(kl)),
        "kl_per_dim": [float(v) for v in kl_dim.mean(axis=0)],
        "k": int(k),
        "n": int(n),
    }
    if activity:
        variance = z_mean.var(axis=0)
        out["z_mean_variance"] = [float(v) for v in variance]
        out["active_units"] = int(np.sum(variance > ACTIVE_THRESHOLD))
    return out


def encode(model, x) -> tuple[np.ndarray, np.ndarray]:
    """Posterior parameters (z_mean, z_log_var) for each row of ``x``."""
    x = check_array("x", x, dim=model.config.input_dim)
    z_mean, z_log_var = model.posterior(x, training=False)
    return np.asarray(z_mean), np.asarray(z_log_var)


def _decode_mean(model, z) -> np.ndarray:
    out = np.asarray(model.decoder(np.asarray(z, np.float32), training=False))
    return 1.0 / (1.0 + np.exp(-out)) if model.likelihood == "bernoulli" else out


def reconstruct(model, x) -> np.ndarray:
    """Decoder mean (pixel probabilities, or the Gaussian mean) at the posterior mean of each row."""
    z_mean, _ = encode(model, x)
    return _decode_mean(model, z_mean)


def sample_prior(model, n: int, seed: int = 0) -> np.ndarray:
    """Decoder means for ``n`` draws z ~ N(0, I)."""
    z = np.random.default_rng(seed).standard_normal((n, model.config.latent_dim)).astype(np.float32)
    return _decode_mean(model, z)


def latent_traversal(model, x, dims=None, values=np.linspace(-3, 3, 9)) -> np.ndarray:
    """Decode z_mean(x) with one latent dimension swept over ``values``: shape (len(dims), len(values), D)."""
    z_mean, _ = encode(model, np.atleast_2d(x)[:1])
    dims = range(model.config.latent_dim) if dims is None else dims
    rows = []
    for u in dims:
        z = np.repeat(z_mean, len(values), axis=0)
        z[:, u] = values
        rows.append(_decode_mean(model, z))
    return np.stack(rows)


def latent_grid(model, n: int = 15, limit: float = 2.5) -> np.ndarray:
    """Decode an n x n grid over the first two latent dimensions (others at 0): shape (n, n, D)."""
    ticks = np.linspace(-limit, limit, n)
    z = np.zeros((n * n, model.config.latent_dim), np.float32)
    z[:, 0] = np.tile(ticks, n)
    z[:, 1] = np.repeat(ticks[::-1], n)
    return _decode_mean(model, z).reshape(n, n, -1)


def independent_bernoulli_nll(x_train, x_test, eps: float = 1e-3) -> float:
    """Baseline NLL: each pixel an independent Bernoulli with its training mean (clipped to [eps, 1-eps])."""
    p = np.clip(np.asarray(x_train, np.float64).mean(axis=0), eps, 1 - eps)
    x = np.asarray(x_test, np.float64)
    return float(-np.mean(np.sum(x * np.log(p) + (1 - x) * np.log1p(-p), axis=1)))


def untrained_elbo(config, data=None, k: int = 1) -> float:
    """Test ELBO of the model ``config`` builds before any update (its seeded initial weights).

    What a run that broke down is worth at best: the strategy chapters count a diverged run as this
    value instead of dropping it, so a setting that breaks training cannot look better than it is."""
    from .data import load_dataset
    from .model import build_vae

    data = data if data is not None else load_dataset(config.dataset, config.split_seed)
    model = build_vae(config.model_config(data.dim, data.likelihood), seed=config.seed)
    return evaluate(model, data.test, k=k, seed=config.seed, activity=False)["elbo"]
