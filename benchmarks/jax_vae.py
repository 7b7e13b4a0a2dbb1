"""The JAX contestant of ``throughput.py``: the same MLP VAE, ``jax.jit`` over a whole epoch with ``lax.scan``.

Optional: JAX is not a dependency of the project (``.venv/bin/pip install jax`` to run it);
``throughput.py`` skips this contestant when ``import jax`` fails.

Same model, weights, data, loss and optimizer as ``vae_utils.train()``: the 64-256-8 MLP VAE
with ``build_vae``'s initial weights (handed over as NumPy arrays), the digits training set
shuffled and binarized afresh each epoch, the negative ELBO (reconstruction summed over pixels,
KL over latent dimensions, both averaged over the batch) and Keras's Adam formula
(lr 1e-3, beta_1 0.9, beta_2 0.999, epsilon 1e-7). The randomness is JAX's own (``jax.random``),
so losses match ``train()``'s in distribution, not bit for bit. Threads: XLA's CPU client is
told through ``XLA_FLAGS`` when JAX starts (``init``).
"""

from __future__ import annotations

import os
import time


def init(threads: int) -> bool:
    """Import JAX, on one thread when ``threads`` is 1; False when JAX is not installed.

    The thread flags go through ``XLA_FLAGS``, which JAX reads when its CPU client starts; the
    variable is restored afterwards, so TensorFlow's own XLA (``train()``'s fast path) never sees it."""
    before = os.environ.get("XLA_FLAGS")
    if threads == 1:  # XLA:CPU's Eigen products on the calling thread (the default uses every core)
        os.environ["XLA_FLAGS"] = f"{before or ''} --xla_cpu_multi_thread_eigen=false".strip()
    try:
        import jax

        jax.devices()  # start the CPU client now, with these flags
    except ImportError:
        return False
    finally:
        if before is None:
            os.environ.pop("XLA_FLAGS", None)
        else:
            os.environ["XLA_FLAGS"] = before
    return True


def _per_example(params, x, eps):
    """(reconstruction, KL) per example: nats, summed over pixels and latent dimensions."""
    import jax
    import jax.numpy as jnp

    w1, b1, wm, bm, wl, bl, w2, b2, w3, b3 = params
    h = jax.nn.relu(x @ w1 + b1)
    z_mean, z_log_var = h @ wm + bm, h @ wl + bl
    z = z_mean + jnp.exp(0.5 * z_log_var) * eps
    logits = jax.nn.relu(z @ w2 + b2) @ w3 + b3
    # sigmoid cross-entropy, as tf.nn.sigmoid_cross_entropy_with_logits computes it
    recon = jnp.sum(jnp.maximum(logits, 0) - logits * x + jnp.log1p(jnp.exp(-jnp.abs(logits))), axis=-1)
    kl = 0.5 * jnp.sum(jnp.square(z_mean) + jnp.exp(z_log_var) - 1.0 - z_log_var, axis=-1)
    return recon, kl


def _forward_loss(params, x, eps):
    import jax.numpy as jnp

    recon, kl = _per_example(params, x, eps)
    return jnp.mean(recon) + jnp.mean(kl)


def make_epoch(n: int, batch_size: int, latent_dim: int = 8, learning_rate: float = 1e-3):
    """A jitted epoch: (params, m, v, t, x_train, key, x_val, eps_val) -> (params, m, v, t, mean loss,
    validation ELBO); the validation ELBO (one fixed noise draw, as train() records every epoch) is
    computed when ``x_val`` has rows."""
    import jax
    import jax.numpy as jnp
    from jax import lax

    steps = n // batch_size
    b1, b2, eps_adam = 0.9, 0.999, 1e-7
    grad_fn = jax.value_and_grad(_forward_loss)

    def step(carry, batch):
        params, m, v, t = carry
        xb, eps = batch
        loss, g = grad_fn(params, xb, eps)
        t = t + 1.0
        alpha = learning_rate * jnp.sqrt(1 - b2**t) / (1 - b1**t)
        m = jax.tree_util.tree_map(lambda m, g: m + (g - m) * (1 - b1), m, g)
        v = jax.tree_util.tree_map(lambda v, g: v + (g * g - v) * (1 - b2), v, g)
        params = jax.tree_util.tree_map(lambda p, m, v: p - m * alpha / (jnp.sqrt(v) + eps_adam), params, m, v)
        return (params, m, v, t), loss

    @jax.jit
    def epoch(params, m, v, t, x_train, key, x_val, eps_val):
        k_order, k_bin, k_noise = jax.random.split(key, 3)
        order = jax.random.permutation(k_order, n)[: steps * batch_size]
        x = x_train[order]
        x = (jax.random.uniform(k_bin, x.shape) < x).astype(jnp.float32)  # dynamic binarization
        x = x.reshape(steps, batch_size, -1)
        noise = jax.random.normal(k_noise, (steps, batch_size, latent_dim))
        (params, m, v, t), losses = lax.scan(step, (params, m, v, t), (x, noise))
        val_elbo = jnp.float32(0.0)
        if x_val.shape[0]:
            recon, kl = _per_example(params, x_val, eps_val)
            val_elbo = -jnp.mean(recon + kl)
        return params, m, v, t, jnp.mean(losses), val_elbo

    return epoch


def epoch_times(x_train, initial_weights: list, batch_size: int, epochs: int, seed: int = 0, x_val=None) -> list:
    """(wall s, CPU s) of each epoch of the jitted loop (the first compiles).

    ``initial_weights``: the kernels and biases in the order w1, b1, z_mean (w, b), z_log_var
    (w, b), decoder hidden (w, b), output (w, b), as NumPy arrays. ``x_val``: also compute the
    validation ELBO after each epoch, as train() does."""
    import jax
    import jax.numpy as jnp

    n = len(x_train)
    epoch = make_epoch(n, batch_size, latent_dim=initial_weights[2].shape[1])
    params = [jnp.asarray(w) for w in initial_weights]
    m = [jnp.zeros_like(p) for p in params]
    v = [jnp.zeros_like(p) for p in params]
    t, x, key = jnp.float32(0.0), jnp.asarray(x_train), jax.random.PRNGKey(seed)
    latent = initial_weights[2].shape[1]
    x_val = jnp.zeros((0, x.shape[1])) if x_val is None else jnp.asarray(x_val)
    eps_val = jax.random.normal(jax.random.PRNGKey(seed + 1), (x_val.shape[0], latent))
    times = []
    for e in range(epochs):
        w0, c0 = time.perf_counter(), time.process_time()
        params, m, v, t, loss, _ = epoch(params, m, v, t, x, jax.random.fold_in(key, e), x_val, eps_val)
        loss.block_until_ready()
        times.append((time.perf_counter() - w0, time.process_time() - c0))
    if not bool(jnp.isfinite(loss)):
        raise RuntimeError(f"JAX run diverged (loss {loss})")
    return times
