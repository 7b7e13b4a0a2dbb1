"""The fast training step of the MLP VAE: raw TensorFlow ops on one flat parameter vector per run.

    from vae_utils.training import train, train_seeds
    train(config)                  # uses this module when supports(config) is True
    train_seeds([c0, c1, c2])      # configs that differ only in seed: one compiled graph for all

``train()`` with the Keras model and optimizer spends most of a small step dispatching kernels:
at batch 32 the Keras Adam update alone is ~270 of ~390 kernels per step (a read, ``Pow``,
``Sqrt``, ``RealDiv`` and assigns for each of 10 variables). This module computes the same
step with the same formulas, but

* every run's weights are one flat vector (the Keras layers' kernels and biases, laid end to
  end; the two heads ``z_mean`` and ``z_log_var`` as one ``[hidden, 2 * latent]`` matmul), so the
  optimizer update is a handful of element-wise ops over one tensor, whatever the depth;
* the optimizer state (Adam's m and v, momenta, RMSprop's velocity) and the weights are loop
  variables of the epoch's ``tf.while_loop``, not ``tf.Variable``s: no reads, no assigns;
* the learning rate, the KL weight and Adam's bias correction of every step are computed once
  per epoch as vectors;
* several seeds of one configuration (a "group") train together: every tensor has a leading
  member axis, matmuls are batched, so S runs cost far less than S separate runs at small
  batch sizes; the per-epoch validation ELBO is computed inside the same compiled call.

The formulas are Keras's (``keras.optimizers`` Adam, AdamW, SGD with and without momentum,
RMSprop; see ``_update``), and the randomness is ``training``'s: each member draws its shuffle,
binarization and reparameterization noise from its own seed exactly as ``train()``'s reference
path does, and its initial weights are ``build_vae(model_config, seed)``'s. So results equal
the reference path's within float32 rounding (tests/test_fastpath.py). A member whose loss
turns non-finite gets the same void update as the reference path, then is frozen while the
others go on; members never mix (the only cross-member op is the sum of their losses, whose
gradient is 1 for each).

What it covers: the MLP VAE of ``model.build_vae`` (``architecture`` "mlp"), every optimizer,
learning-rate schedule and KL schedule of ``config``, Bernoulli and Gaussian likelihoods (fixed
or learned decoder variance). Anything else (``supports`` is False) falls back to the Keras
path in ``training``.
"""

from __future__ import annotations

import math

import numpy as np
import tensorflow as tf

from .config import TrainConfig
from .data import binarize_tensor
from .model import ModelConfig, reparameterize
from .objective import gaussian_kl, kl_weight, reconstruction_loss
from .training import _hyper, learning_rate_at

__all__ = ["supports", "Layout", "StackedTrainer", "stacked_negative_elbo", "stacked_trainer", "hyper", "val_noise"]

import os
XLA = os.environ.get("VAE_FAST_XLA", "1") == "1"
MANUAL = os.environ.get("VAE_FAST_MANUAL", "0") == "1"
EVAL_MAX_BATCH_ELEMENTS = 2_000_000  # evaluation.evaluate's default chunking: the same noise per chunk
# Keras's optimizer constants (keras.optimizers defaults, as training.make_optimizer builds them)
ADAM_BETA_1, ADAM_BETA_2, ADAM_EPSILON = 0.9, 0.999, 1e-7
RMSPROP_RHO, RMSPROP_EPSILON = 0.9, 1e-7


def supports(config: TrainConfig, model_config: ModelConfig | None = None) -> bool:
    """Whether this module trains ``config``: the MLP VAE (any depth, likelihood, optimizer, schedule)."""
    return getattr(config, "architecture", "mlp") == "mlp" and (
        model_config is None or getattr(model_config, "architecture", "mlp") == "mlp"
    )


# -- the flat parameter vector ------------------------------------------------------------------


class Layout:
    """Where each Keras weight sits in a run's flat parameter vector.

    Blocks, in order: each encoder hidden layer (kernel, bias), the heads (kernel [hidden, 2L]
    = z_mean's and z_log_var's kernels side by side, bias [2L]), each decoder hidden layer, the
    output layer, and the Gaussian decoder's log-variance when it is learned.
    """

    def __init__(self, c: ModelConfig):
        self.config = c
        enc = [c.input_dim, *c.hidden_units]
        dec = [c.latent_dim, *reversed(c.hidden_units), c.input_dim]
        self.encoder = [(f"encoder_dense_{i}", enc[i], enc[i + 1]) for i in range(len(c.hidden_units))]
        self.heads = (enc[-1], 2 * c.latent_dim)
        out = "logits" if c.likelihood == "bernoulli" else "x_mean"
        names = [f"decoder_dense_{i}" for i in range(len(c.hidden_units))] + [out]
        self.decoder = [(names[i], dec[i], dec[i + 1]) for i in range(len(dec) - 1)]
        self.learned_log_var = c.likelihood == "gaussian" and c.decoder_variance is None
        shapes = []
        for _, a, b in self.encoder:
            shapes += [(a, b), (b,)]
        shapes += [self.heads, (self.heads[1],)]
        for _, a, b in self.decoder:
            shapes += [(a, b), (b,)]
        if self.learned_log_var:
            shapes.append((c.input_dim,))
        self.shapes = shapes
        self.sizes = [math.prod(s) for s in shapes]
        self.size = sum(self.sizes)

    def flatten(self, weights: dict) -> np.ndarray:
        """One run's flat vector from its Keras weights ``{"layer/kernel": array, ...}``."""
        parts = []
        for name, _, _ in self.encoder:
            parts += [weights[f"{name}/kernel"], weights[f"{name}/bias"]]
        parts.append(np.concatenate([weights["z_mean/kernel"], weights["z_log_var/kernel"]], axis=1))
        parts.append(np.concatenate([weights["z_mean/bias"], weights["z_log_var/bias"]]))
        for name, _, _ in self.decoder:
            parts += [weights[f"{name}/kernel"], weights[f"{name}/bias"]]
        if self.learned_log_var:
            parts.append(weights["decoder_log_var"])
        return np.concatenate([np.asarray(p, np.float32).ravel() for p in parts])

    def unflatten(self, theta: np.ndarray) -> dict:
        """The Keras weights ``{"layer/kernel": array, ...}`` of one run's flat vector (trainable ones only)."""
        blocks = np.split(np.asarray(theta), np.cumsum(self.sizes)[:-1])
        blocks = [b.reshape(s) for b, s in zip(blocks, self.shapes, strict=True)]
        out, k = {}, 0
        for name, _, _ in self.encoder:
            out[f"{name}/kernel"], out[f"{name}/bias"] = blocks[k], blocks[k + 1]
            k += 2
        latent = self.config.latent_dim
        out["z_mean/kernel"], out["z_log_var/kernel"] = blocks[k][:, :latent], blocks[k][:, latent:]
        out["z_mean/bias"], out["z_log_var/bias"] = blocks[k + 1][:latent], blocks[k + 1][latent:]
        k += 2
        for name, _, _ in self.decoder:
            out[f"{name}/kernel"], out[f"{name}/bias"] = blocks[k], blocks[k + 1]
            k += 2
        if self.learned_log_var:
            out["decoder_log_var"] = blocks[k]
        return out

    def tensors(self, theta):
        """The weight tensors of ``theta`` (shape [..., size]): a list in block order, each [..., *shape]."""
        lead = list(theta.shape[:-1])
        parts = tf.split(theta, self.sizes, axis=-1)
        out = []
        for p, s in zip(parts, self.shapes, strict=True):
            shape = [*lead, *s] if len(s) == 2 or not lead else [*lead, 1, *s]  # biases broadcast over the batch
            out.append(tf.reshape(p, shape))
        return out


def _dense(h, kernel, bias):
    """A Dense layer's ``h @ kernel + bias``; as Keras does it (``BiasAdd``) when there is no member axis."""
    if len(bias.shape) == 1:
        return tf.nn.bias_add(tf.matmul(h, kernel), bias)
    return tf.matmul(h, kernel) + bias


def _forward(layout: Layout, weights, x, eps):
    """Encoder, reparameterization, decoder for a batch ``x`` [..., B, D] with noise ``eps`` [..., B, L]."""
    k, h = 0, x
    for _ in layout.encoder:
        h = tf.nn.relu(_dense(h, weights[k], weights[k + 1]))
        k += 2
    wm, wl = tf.split(weights[k], 2, axis=-1)
    bm, bl = tf.split(weights[k + 1], 2, axis=-1)
    z_mean, z_log_var = _dense(h, wm, bm), _dense(h, wl, bl)
    k += 2
    h = reparameterize(z_mean, z_log_var, eps)
    for j in range(len(layout.decoder)):
        h = _dense(h, weights[k], weights[k + 1])
        if j < len(layout.decoder) - 1:
            h = tf.nn.relu(h)
        k += 2
    return h, z_mean, z_log_var


def _log_var(layout: Layout, weights):
    c = layout.config
    if c.likelihood != "gaussian":
        return None
    if layout.learned_log_var:
        return weights[-1]  # [..., 1, D]
    return tf.constant(math.log(c.decoder_variance), tf.float32)  # as VAE.decoder_log_var's constant init


def stacked_negative_elbo(x, decoded, z_mean, z_log_var, likelihood, beta=1.0, log_var=None, free_bits=None):
    """``objective.negative_elbo`` for a stack of runs: (loss, reconstruction_loss, kl_loss), each [...].

    Inputs have leading member axes: ``x`` and ``decoded`` [..., B, D], ``z_mean`` and
    ``z_log_var`` [..., B, L]. Each member's values are negative_elbo's on its own batch: the
    reconstruction summed over the data dimensions, the KL over the latent ones, both averaged
    over the batch; the free-bits KL sums max(lambda, batch-mean KL of a dimension).
    """
    recon = tf.reduce_mean(reconstruction_loss(x, decoded, likelihood, log_var), axis=-1)
    kl_dim = gaussian_kl(z_mean, z_log_var)
    kl = tf.reduce_mean(tf.reduce_sum(kl_dim, axis=-1), axis=-1)
    kl_term = kl if free_bits is None else tf.reduce_sum(tf.maximum(tf.reduce_mean(kl_dim, axis=-2), free_bits), -1)
    return recon + beta * kl_term, recon, kl


def _loss_and_gradient(layout: Layout, theta, x, eps, weight, free_bits=None):
    """(loss, reconstruction_loss, kl_loss) of each member, and the gradient of their sum w.r.t. ``theta``.

    The forward pass is ``_forward`` + ``stacked_negative_elbo``; the backward pass is written out
    (a dozen ops instead of autodiff's ~150 at this size): for the output layer
    d(loss)/d(logits) = (sigmoid(logits) - x) / B (Bernoulli) or (mean - x) / (variance B) (Gaussian),
    then back through the Dense layers and ReLUs, the reparameterization
    (dz/dz_mean = 1, dz/dz_log_var = eps * exp(z_log_var / 2) / 2) and the analytic KL
    (d/dz_mean = weight z_mean / B, d/dz_log_var = weight (exp(z_log_var) - 1) / (2 B); under free
    bits only in dimensions whose batch-mean KL is at or above the floor, as tf.maximum's gradient).
    """
    c = layout.config
    weights = layout.tensors(theta)
    n_enc, n_dec = len(layout.encoder), len(layout.decoder)
    # forward, keeping each layer's input
    acts = [x]
    for i in range(n_enc):
        acts.append(tf.nn.relu(_dense(acts[-1], weights[2 * i], weights[2 * i + 1])))
    k = 2 * n_enc
    z_mean, z_log_var = tf.split(_dense(acts[-1], weights[k], weights[k + 1]), 2, axis=-1)
    std = tf.exp(0.5 * z_log_var)
    dec = [z_mean + std * eps]
    for j in range(n_dec):
        out = _dense(dec[-1], weights[k + 2 + 2 * j], weights[k + 3 + 2 * j])
        dec.append(tf.nn.relu(out) if j < n_dec - 1 else out)
    decoded, log_var = dec[-1], _log_var(layout, weights)
    loss, recon, kl = stacked_negative_elbo(x, decoded, z_mean, z_log_var, c.likelihood, weight, log_var, free_bits)

    # backward
    inv_b = 1.0 / float(x.shape[-2])
    grads = [None] * len(weights)
    if c.likelihood == "bernoulli":
        d = (tf.sigmoid(decoded) - x) * inv_b
    else:
        precision = tf.exp(-log_var)
        d = (decoded - x) * precision * inv_b
        if layout.learned_log_var:
            grads[-1] = tf.reduce_sum(0.5 * (1.0 - tf.square(x - decoded) * precision), axis=-2, keepdims=True) * inv_b
    for j in reversed(range(n_dec)):
        w = k + 2 + 2 * j
        grads[w], grads[w + 1] = _dense_grads(dec[j], d, weights[w + 1])
        d = tf.matmul(d, weights[w], transpose_b=True)
        if j > 0:
            d = tf.raw_ops.ReluGrad(gradients=d, features=dec[j])
    kl_scale = weight * inv_b
    if free_bits is not None:  # only the dimensions whose batch-mean KL is at or above the floor
        kl_mean = tf.reduce_mean(gaussian_kl(z_mean, z_log_var), axis=-2, keepdims=True)
        kl_scale = kl_scale * tf.cast(kl_mean >= free_bits, tf.float32)
    d_mean = d + kl_scale * z_mean
    d_log_var = d * eps * 0.5 * std + kl_scale * 0.5 * (tf.exp(z_log_var) - 1.0)
    d = tf.concat([d_mean, d_log_var], axis=-1)
    grads[k], grads[k + 1] = _dense_grads(acts[-1], d, weights[k + 1])
    for i in reversed(range(n_enc)):
        d = tf.raw_ops.ReluGrad(gradients=tf.matmul(d, weights[2 * i + 2], transpose_b=True), features=acts[i + 1])
        grads[2 * i], grads[2 * i + 1] = _dense_grads(acts[i], d, weights[2 * i + 1])
    lead = list(theta.shape[:-1])
    flat = tf.concat([tf.reshape(g, [*lead, -1]) for g in grads], axis=-1)
    return loss, recon, kl, flat


def _dense_grads(inputs, d, bias):
    """Gradients of a Dense layer's kernel and bias, given its inputs and d(loss)/d(output)."""
    if len(bias.shape) == 1:
        return tf.matmul(inputs, d, transpose_a=True), tf.reduce_sum(d, axis=-2)
    return tf.matmul(inputs, d, transpose_a=True), tf.reduce_sum(d, axis=-2, keepdims=True)


# -- the optimizers, on flat vectors ------------------------------------------------------------------


def slot_count(optimizer: str) -> int:
    """Optimizer state tensors per run, each the size of the parameter vector."""
    return {"sgd": 0, "momentum": 1, "rmsprop": 1, "adam": 2, "adamw": 2}[optimizer]


def _update(optimizer, theta, grad, slots, lr, alpha, h):
    """One update of Keras's ``optimizer`` on flat tensors; returns (theta, slots).

    ``lr``: this step's learning rate; ``alpha``: Adam's lr * sqrt(1 - beta_2^t) / (1 - beta_1^t).
    The op order follows keras.optimizers (Keras 3) so that float32 rounding stays close.
    """
    if optimizer == "sgd":  # SGD.update_step without momentum
        return theta - grad * lr, slots
    if optimizer == "momentum":  # SGD with momentum, nesterov=False
        (m,) = slots
        m = m * h["momentum"] - grad * lr
        return theta + m, [m]
    if optimizer == "rmsprop":  # RMSprop: rho=0.9, epsilon=1e-7, no momentum, not centered
        (v,) = slots
        v = RMSPROP_RHO * v + (1 - RMSPROP_RHO) * tf.square(grad)
        return theta - (lr * grad) / tf.sqrt(v + RMSPROP_EPSILON), [v]
    if optimizer == "adamw":  # BaseOptimizer._apply_weight_decay before the Adam step
        theta = theta - theta * h["weight_decay"] * lr
    m, v = slots
    m = m + (grad - m) * (1 - ADAM_BETA_1)
    v = v + (tf.square(grad) - v) * (1 - ADAM_BETA_2)
    return theta - (m * alpha) / (tf.sqrt(v) + ADAM_EPSILON), [m, v]


def _adam_alpha(lr, step):
    """Adam's step size at 0-based optimizer steps ``step`` (Keras: local_step = iterations + 1)."""
    t = tf.cast(step + 1, tf.float32)
    beta_1_power = tf.pow(tf.constant(ADAM_BETA_1, tf.float32), t)
    beta_2_power = tf.pow(tf.constant(ADAM_BETA_2, tf.float32), t)
    return lr * tf.sqrt(1 - beta_2_power) / (1 - beta_1_power)


# -- the compiled epoch -----------------------------------------------------------------------------------


class StackedTrainer:
    """One compiled epoch function for ``members`` runs of one graph (batch size, optimizer, schedules).

    ``run_epoch(x_train, x_val, eps_val, epoch, seeds, theta, slots, active, hyper)`` trains every
    active member for one epoch and returns (theta, slots, sums [S, 3], done [S], finite [S],
    losses [steps run, S], val_elbo [S, n_val]): the summed (loss, reconstruction, KL) of each
    member's finite updates, their count, whether its last loss was finite, every update's loss
    and the per-example single-sample ELBO on the validation set after the epoch.
    """

    def __init__(self, model_config: ModelConfig, config: TrainConfig, n_train: int, members: int):
        self.layout = Layout(model_config)
        self.members = members
        self.run_epoch = _compile_epoch(self.layout, config, n_train, members)


def _epoch_data(x_train, epoch, seeds, n, steps, bs, latent, bernoulli, members):
    """Each member's shuffled, binarized batches and noise, as training's reference path draws them."""
    xs, noises = [], []
    for s in range(members):
        seed = seeds[s]
        order = tf.argsort(tf.random.stateless_uniform([n], seed=tf.stack([seed, epoch])))
        x_epoch = tf.gather(x_train, order[: steps * bs])
        if bernoulli:
            x_epoch = binarize_tensor(x_epoch, tf.stack([seed + 7919, epoch]))
        xs.append(tf.reshape(x_epoch, [steps, bs, -1]))
        noises.append(tf.random.stateless_normal(tf.stack([steps, bs, latent]), seed=tf.stack([seed + 104729, epoch])))
    if members == 1:
        return xs[0], noises[0]  # [steps, bs, D]: no member axis
    return tf.stack(xs, axis=1), tf.stack(noises, axis=1)  # [steps, S, bs, D]


def _schedules(config: TrainConfig, step, h):
    """Learning rate, Adam's alpha and the KL weight at optimizer step ``step`` (a scalar).

    Computed per step with scalar ops, as the reference path does: Eigen's vectorized ``pow`` and
    ``cos`` round differently from the scalar ones in the last bit, and training amplifies that.
    """
    lr = learning_rate_at(config.lr_schedule, step, h["learning_rate"], h["lr_warmup_steps"], h["total_steps"])
    weight = kl_weight(
        config.kl_schedule, step, h["total_steps"], h["beta"], h["kl_warmup_steps"], h["kl_cycles"], h["kl_ratio"]
    )
    alpha = _adam_alpha(lr, step) if config.optimizer in ("adam", "adamw") else lr
    return lr, alpha, weight


def _compile_epoch(layout: Layout, config: TrainConfig, n: int, members: int):
    c = layout.config
    bs, latent, bernoulli = config.batch_size, c.latent_dim, c.likelihood == "bernoulli"
    steps = n // bs
    optimizer, free_bits = config.optimizer, config.kl_schedule == "free_bits"
    stacked = members > 1

    def loss_of(theta, xb, eps, weight, h):
        weights = layout.tensors(theta)
        decoded, z_mean, z_log_var = _forward(layout, weights, xb, eps)
        return stacked_negative_elbo(
            xb,
            decoded,
            z_mean,
            z_log_var,
            c.likelihood,
            beta=weight,
            log_var=_log_var(layout, weights),
            free_bits=h["free_bits"] if free_bits else None,
        )

    def body(i, theta, slots, sums, done, losses, active, x_epoch, noise, epoch, h):
        lr, alpha, weight = _schedules(config, epoch * steps + i, h)
        if MANUAL:
            loss, recon, kl, grad = _loss_and_gradient(
                layout, theta, x_epoch[i], noise[i], weight, h["free_bits"] if free_bits else None
            )
        else:
            with tf.GradientTape() as tape:
                tape.watch(theta)
                loss, recon, kl = loss_of(theta, x_epoch[i], noise[i], weight, h)
                total = tf.reduce_sum(loss)
            grad = tape.gradient(total, theta)
        new_theta, new_slots = _update(optimizer, theta, grad, list(slots), lr, alpha, h)
        finite = tf.math.is_finite(loss)
        if stacked:  # a member that stopped keeps its state; one that diverges now gets its void update
            keep = active[:, None]
            new_theta = tf.where(keep, new_theta, theta)
            new_slots = [tf.where(keep, a, b) for a, b in zip(new_slots, slots, strict=True)]
        counted = tf.logical_and(finite, active)
        values = tf.stack([loss, recon, kl], axis=-1)
        sums += tf.where(counted[..., None], values, tf.zeros_like(values))
        done += tf.cast(counted, tf.int32)
        return i + 1, new_theta, new_slots, sums, done, losses.write(i, loss), tf.logical_and(active, finite)

    lead = [members] if stacked else []

    def updates(x_epoch, noise, x_val, eps_val, epoch, theta, slots, active, h):
        init = (
            tf.constant(0),
            theta,
            list(slots),
            tf.zeros([*lead, 3]),
            tf.zeros(lead, tf.int32),
            tf.TensorArray(tf.float32, size=steps, element_shape=lead),
            active,
        )
        i, theta, slots, sums, done, losses, active = tf.while_loop(
            lambda i, *rest: tf.logical_and(i < steps, tf.reduce_any(rest[-1])),
            lambda *state: body(*state, x_epoch, noise, epoch, h),
            init,
        )
        val_elbo = _val_elbo(layout, theta, x_val, eps_val, members)
        return i, theta, slots, sums, done, losses.stack(), active, val_elbo

    if XLA:
        updates = tf.function(updates, jit_compile=True)

    @tf.function
    def run_epoch(x_train, x_val, eps_val, epoch, seeds, theta, slots, active, h):
        x_epoch, noise = _epoch_data(x_train, epoch, seeds, n, steps, bs, latent, bernoulli, members)
        i, theta, slots, sums, done, losses, active, val_elbo = updates(
            x_epoch, noise, x_val, eps_val, epoch, theta, slots, active, h
        )
        return theta, slots, sums, done, active, losses[:i], val_elbo

    return run_epoch


def _val_elbo(layout: Layout, theta, x_val, eps_val, members):
    """Per-example single-sample ELBO, -reconstruction - KL, on ``x_val`` [n, D] with noise ``eps_val`` [..., n, L]."""
    weights = layout.tensors(theta)
    if members > 1:
        x_val = tf.broadcast_to(x_val, [members, *x_val.shape])
    decoded, z_mean, z_log_var = _forward(layout, weights, x_val, eps_val)
    recon = reconstruction_loss(x_val, decoded, layout.config.likelihood, _log_var(layout, weights))
    return -recon - tf.reduce_sum(gaussian_kl(z_mean, z_log_var), axis=-1)


def val_noise(seed: int, n: int, dim: int, latent: int, k: int = 1) -> np.ndarray:
    """The noise ``evaluation.evaluate(model, x, k=1, seed=seed)`` draws for ``n`` rows of ``dim`` columns: [n, latent]."""
    chunk = max(1, min(n, EVAL_MAX_BATCH_ELEMENTS // (k * dim)))
    parts = []
    for j, start in enumerate(range(0, n, chunk)):
        rows = min(chunk, n - start)
        eps = tf.random.stateless_normal(tf.stack([k, rows, latent]), seed=tf.constant([seed, j], tf.int64))
        parts.append(eps.numpy()[0])
    return np.concatenate(parts)


_TRAINERS: dict = {}  # graph key -> StackedTrainer


def stacked_trainer(model_config: ModelConfig, config: TrainConfig, n_train: int, members: int) -> StackedTrainer:
    """The compiled trainer of this graph, shared by every group (or single run) of the same shapes."""
    key = (model_config, n_train, members, config.batch_size, config.optimizer, config.kl_schedule, config.lr_schedule)
    if key not in _TRAINERS:
        if len(_TRAINERS) >= 32:  # bound memory in long sweeps
            _TRAINERS.pop(next(iter(_TRAINERS)))
        _TRAINERS[key] = StackedTrainer(model_config, config, n_train, members)
    return _TRAINERS[key]


def hyper(config: TrainConfig, steps_per_epoch: int) -> dict:
    """The numbers of a run that enter the graph as tensors: training's, plus the optimizers' constants."""
    f = lambda v: tf.constant(float(v), tf.float32)
    return {**_hyper(config, steps_per_epoch), "momentum": f(config.momentum), "weight_decay": f(config.weight_decay)}
