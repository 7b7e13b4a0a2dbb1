"""The fast training loop of the MLP VAE: one flat parameter vector per run, the epoch under XLA, seeds stacked.

    from vae_utils.core.training import train, train_seeds
    train(config)                  # uses this module when supports(config) is True
    train_seeds([c0, c1, c2])      # configs that differ only in seed: one compiled stack for all

``train()``'s Keras path spends most of a small step dispatching kernels: at batch 32 the Keras
Adam update alone is ~270 of ~390 kernels per step (a read, ``Pow``, ``Sqrt``, ``RealDiv`` and
assigns for each of 10 variables). This module computes the same step with the same formulas:

* every run's weights are one flat vector (the Keras layers' kernels and biases end to end, in
  the order of ``VAE.trainable_variables``; ``Layout``), so the optimizer update is a handful of
  element-wise ops over one tensor; weights and optimizer state (Adam's m and v, momenta,
  RMSprop's velocity) are loop variables of the epoch's ``tf.while_loop``, not variables;
* the updates of an epoch and the per-epoch validation ELBO run as one XLA computation
  (``jit_compile``; static shapes: the batches are cut once per epoch, so nothing recompiles);
  the epoch's randomness is drawn before it, by the same TensorFlow ops as the Keras path
  (XLA's random numbers would differ);
* several seeds of one configuration train as one stack: every tensor gets a leading member
  axis and the products are batched (``train_seeds``).

The optimizer formulas are Keras's (``optimizers.OPTIMIZERS[...].update``), the loss is ``objective``'s per member
(``stacked_negative_elbo``), the gradient TensorFlow's autodiff of it, each member's shuffle,
binarization and noise are drawn from its own seed exactly as the Keras path draws them, and its
initial weights are ``build_vae(model_config, seed)``'s. So results equal the Keras path's within
float32 rounding (tests/test_fastpath.py); XLA's ``exp`` and ``log1p`` and its choice of product
kernels (which depends on the stack size) make them differ in the last bits, which training
amplifies slowly. Members never mix (the one cross-member op is the sum of their losses, whose
gradient is 1 for each); a member whose loss turns non-finite gets the void update the Keras
path gives, then keeps its state while the others go on.

What it covers: the MLP VAE of ``model.build_vae`` (any depth), every optimizer, learning-rate
schedule and KL schedule of ``TrainConfig``, Bernoulli and Gaussian likelihoods (fixed or learned
decoder variance). Anything else (``supports`` is False: another ``architecture``) trains on the
Keras path.
"""

from __future__ import annotations

import math

import numpy as np
import tensorflow as tf

from .config import TrainConfig
from .data import binarize_tensor
from .model import ModelConfig, reparameterize
from .objective import gaussian_kl, reconstruction_loss
from .optimizers import OPTIMIZERS
from .schedules import at_step

__all__ = ["supports", "Layout", "StackedTrainer", "stacked_negative_elbo", "stacked_trainer", "val_noise"]

JIT_COMPILE = True  # XLA on the epoch's updates: ~1.5x faster at batch <= 64, ~1.5 s to compile a new graph
EVAL_MAX_BATCH_ELEMENTS = 2_000_000  # evaluation.evaluate's default chunking: the same noise per chunk


def supports(config: TrainConfig) -> bool:
    """Whether this module trains ``config``: the MLP VAE (any depth, likelihood, optimizer, schedule)."""
    return getattr(config, "architecture", "mlp") == "mlp"


# -- the flat parameter vector ------------------------------------------------------------------


class Layout:
    """Where each Keras weight sits in a run's flat parameter vector.

    Blocks, in the order of ``VAE.trainable_variables``: each encoder hidden layer (kernel,
    bias), ``z_mean``, ``z_log_var``, each decoder hidden layer, the output layer, and the
    Gaussian decoder's log-variance when it is learned. (The two heads stay two products: under
    XLA a fused [hidden, 2 * latent] product rounds differently alone and in a stack.)
    """

    def __init__(self, c: ModelConfig):
        self.config = c
        enc = [c.input_dim, *c.hidden_units]
        dec = [c.latent_dim, *reversed(c.hidden_units), c.input_dim]
        out = "logits" if c.likelihood == "bernoulli" else "x_mean"
        layers = [(f"encoder_dense_{i}", enc[i], enc[i + 1]) for i in range(len(c.hidden_units))]
        layers += [("z_mean", enc[-1], c.latent_dim), ("z_log_var", enc[-1], c.latent_dim)]
        decoder = [f"decoder_dense_{i}" for i in range(len(c.hidden_units))] + [out]
        layers += [(decoder[i], dec[i], dec[i + 1]) for i in range(len(dec) - 1)]
        self.n_encoder, self.n_decoder = len(c.hidden_units), len(dec) - 1
        self.names, self.shapes = [], []
        for name, a, b in layers:
            self.names += [f"{name}/kernel", f"{name}/bias"]
            self.shapes += [(a, b), (b,)]
        self.learned_log_var = c.likelihood == "gaussian" and c.decoder_variance is None
        if self.learned_log_var:
            self.names.append("decoder_log_var")
            self.shapes.append((c.input_dim,))
        self.sizes = [math.prod(s) for s in self.shapes]
        self.size = sum(self.sizes)

    def flatten(self, weights: dict) -> np.ndarray:
        """One run's flat vector from its Keras weights ``{"layer/kernel": array, ...}``."""
        return np.concatenate([np.asarray(weights[name], np.float32).ravel() for name in self.names])

    def unflatten(self, theta: np.ndarray) -> dict:
        """The Keras weights ``{"layer/kernel": array, ...}`` of one run's flat vector (the trainable ones)."""
        blocks = np.split(np.asarray(theta), np.cumsum(self.sizes)[:-1])
        return {name: b.reshape(s) for name, b, s in zip(self.names, blocks, self.shapes, strict=True)}

    def tensors(self, theta):
        """The weight tensors of ``theta`` ([S, size], or [size] for one run): a list in block order.

        Stacked: kernels [S, in, out] and vectors [S, 1, n] (broadcast over the batch); one run:
        kernels [in, out] and vectors [n]."""
        parts = tf.split(theta, self.sizes, axis=-1)
        if len(theta.shape) == 1:
            return [tf.reshape(p, s) for p, s in zip(parts, self.shapes, strict=True)]
        shapes = [[-1, *s] if len(s) == 2 else [-1, 1, *s] for s in self.shapes]
        return [tf.reshape(p, s) for p, s in zip(parts, shapes, strict=True)]


def _forward(layout: Layout, weights, x, eps):
    """Encoder, reparameterization, decoder for batches ``x`` [(S,) B, D] with noise ``eps`` [(S,) B, L]."""
    dense = lambda h, k: tf.matmul(h, weights[2 * k]) + weights[2 * k + 1]
    h = x
    for k in range(layout.n_encoder):
        h = tf.nn.relu(dense(h, k))
    z_mean, z_log_var = dense(h, layout.n_encoder), dense(h, layout.n_encoder + 1)
    h = reparameterize(z_mean, z_log_var, eps)
    for j in range(layout.n_decoder):
        h = dense(h, layout.n_encoder + 2 + j)
        if j < layout.n_decoder - 1:
            h = tf.nn.relu(h)
    return h, z_mean, z_log_var


def _log_var(layout: Layout, weights):
    c = layout.config
    if c.likelihood != "gaussian":
        return None
    if layout.learned_log_var:
        return weights[-1]  # [S, 1, D] or [D]
    return tf.constant(math.log(c.decoder_variance), tf.float32)  # as VAE.decoder_log_var's constant init


def stacked_negative_elbo(x, decoded, z_mean, z_log_var, likelihood, beta=1.0, log_var=None, free_bits=None):
    """``objective.negative_elbo`` for a stack of runs: (loss, reconstruction_loss, kl_loss), each [S].

    Inputs have a leading member axis: ``x`` and ``decoded`` [S, B, D], ``z_mean`` and
    ``z_log_var`` [S, B, L]. Each member's values are negative_elbo's on its own batch: the
    reconstruction summed over the data dimensions, the KL over the latent ones, both averaged
    over the batch; the free-bits KL sums max(lambda, batch-mean KL of a dimension).
    """
    recon = tf.reduce_mean(reconstruction_loss(x, decoded, likelihood, log_var), axis=-1)
    kl_dim = gaussian_kl(z_mean, z_log_var)
    kl = tf.reduce_mean(tf.reduce_sum(kl_dim, axis=-1), axis=-1)
    kl_term = kl if free_bits is None else tf.reduce_sum(tf.maximum(tf.reduce_mean(kl_dim, axis=-2), free_bits), -1)
    return recon + beta * kl_term, recon, kl


# -- the compiled epoch -----------------------------------------------------------------------------------


class StackedTrainer:
    """One compiled epoch function for ``members`` runs of one graph (batch size, optimizer, schedules).

    ``run_epoch(x_train, x_val, eps_val, epoch, seeds, theta, slots, active, hyper)`` trains every
    active member for one epoch and returns (theta, slots, sums [S, 3], done [S], active [S],
    losses [steps run, S], val_elbo [S, n_val], curve [steps run, S]): the summed (loss,
    reconstruction, KL) of each member's finite updates, their count, whether the member is still
    going (all its losses finite), every update's loss, the per-example single-sample ELBO on the
    validation set after the epoch, and with ``config.eval_every`` = k > 0 the mean validation
    ELBO after every update whose 1-based number in the run is a multiple of k (NaN after the
    others; shape [0, S] when k = 0).
    """

    def __init__(self, model_config: ModelConfig, config: TrainConfig, n_train: int, members: int):
        self.layout = Layout(model_config)
        self.members = members
        self.run_epoch = _compile_epoch(self.layout, config, n_train, members)


def _epoch_data(x_train, epoch, seeds, n, steps, bs, latent, bernoulli, members):
    """Each member's shuffled, binarized batches and noise, [steps, S, bs, ...], drawn as the reference path does."""
    xs, noises = [], []
    for s in range(members):
        seed = seeds[s]
        order = tf.argsort(tf.random.stateless_uniform([n], seed=tf.stack([seed, epoch])))
        x_epoch = tf.gather(x_train, order[: steps * bs])
        if bernoulli:
            x_epoch = binarize_tensor(x_epoch, tf.stack([seed + 7919, epoch]))
        xs.append(tf.reshape(x_epoch, [steps, bs, -1]))
        noises.append(tf.random.stateless_normal(tf.stack([steps, bs, latent]), seed=tf.stack([seed + 104729, epoch])))
    return tf.stack(xs, axis=1), tf.stack(noises, axis=1)


def _compile_epoch(layout: Layout, config: TrainConfig, n: int, members: int):
    """The compiled epoch: randomness in TensorFlow (the reference path's streams), the updates under XLA."""
    c = layout.config
    bs, latent, bernoulli = config.batch_size, c.latent_dim, c.likelihood == "bernoulli"
    steps = n // bs
    free_bits = config.kl_schedule == "free_bits"
    every = config.eval_every

    def step(i, theta, slots, sums, done, losses, active, curve, x_epoch, noise, x_val, eps_val, epoch, h):
        lr, alpha, weight = at_step(config, epoch * steps + i, h)
        with tf.GradientTape() as tape:
            tape.watch(theta)
            weights = layout.tensors(theta)
            decoded, z_mean, z_log_var = _forward(layout, weights, x_epoch[i], noise[i])
            loss, recon, kl = stacked_negative_elbo(
                x_epoch[i],
                decoded,
                z_mean,
                z_log_var,
                c.likelihood,
                beta=weight,
                log_var=_log_var(layout, weights),
                free_bits=h["free_bits"] if free_bits else None,
            )
            total = tf.reduce_sum(loss)  # members are independent: d total / d theta_s = d loss_s / d theta_s
        new_theta, new_slots = OPTIMIZERS[config.optimizer].update(
            theta, tape.gradient(total, theta), slots, lr, alpha, h
        )
        keep = active[..., None]  # a stopped member keeps its state; one that diverges now gets its void update
        theta = tf.where(keep, new_theta, theta)
        slots = [tf.where(keep, a, b) for a, b in zip(new_slots, slots, strict=True)]
        finite = tf.math.is_finite(loss)
        counted = tf.logical_and(finite, active)
        values = tf.stack([loss, recon, kl], axis=-1)
        sums += tf.where(counted[..., None], values, tf.zeros_like(values))
        done += tf.cast(counted, tf.int32)
        if every:  # the validation ELBO after every ``every``-th update of the run (NaN in between)

            def evaluate():
                return tf.reduce_mean(_val_elbo(layout, theta, x_val, eps_val), axis=-1)

            def skip():
                return tf.fill(tf.shape(loss), float("nan"))

            curve = curve.write(i, tf.cond(tf.equal((epoch * steps + i + 1) % every, 0), evaluate, skip))
        return i + 1, theta, slots, sums, done, losses.write(i, loss), counted, curve

    # One run drops the member axis: XLA compiles a [1, B, in] x [1, in, out] product differently from
    # the per-member products of a stack, and one run's result must not depend on its company.
    lead = [members] if members > 1 else []

    def squeeze(t):
        return t if members > 1 else tf.squeeze(t, axis=0)

    def unsqueeze(t):
        return t if members > 1 else tf.expand_dims(t, axis=0)

    @tf.function(jit_compile=JIT_COMPILE)
    def updates(x_epoch, noise, x_val, eps_val, epoch, theta, slots, active, h):
        if members == 1:
            x_epoch, noise = x_epoch[:, 0], noise[:, 0]
        init = (
            tf.constant(0),
            squeeze(theta),
            [squeeze(v) for v in slots],
            tf.zeros([*lead, 3]),
            tf.zeros(lead, tf.int32),
            tf.TensorArray(tf.float32, size=steps, element_shape=lead),  # static size: XLA needs it
            squeeze(active),
            tf.TensorArray(tf.float32, size=steps if every else 0, element_shape=lead),
        )
        i, theta, slots, sums, done, losses, active, curve = tf.while_loop(
            lambda i, *state: tf.logical_and(i < steps, tf.reduce_any(state[-2])),
            lambda *state: step(*state, x_epoch, noise, x_val, squeeze(eps_val), epoch, h),
            init,
        )
        val_elbo = _val_elbo(layout, theta, x_val, squeeze(eps_val))
        losses = losses.stack() if members > 1 else losses.stack()[:, None]
        curve = curve.stack() if every else tf.zeros([0, members])
        curve = curve if members > 1 or not every else curve[:, None]
        out = (theta, slots, sums, done, active, val_elbo)
        theta, slots, sums, done, active, val_elbo = tf.nest.map_structure(unsqueeze, out)
        return i, theta, slots, sums, done, losses, active, val_elbo, curve

    @tf.function
    def run_epoch(x_train, x_val, eps_val, epoch, seeds, theta, slots, active, h):
        x_epoch, noise = _epoch_data(x_train, epoch, seeds, n, steps, bs, latent, bernoulli, members)
        i, theta, slots, sums, done, losses, active, val_elbo, curve = updates(
            x_epoch, noise, x_val, eps_val, epoch, theta, slots, active, h
        )
        return theta, slots, sums, done, active, losses[:i], val_elbo, curve[:i]

    return run_epoch


def _val_elbo(layout: Layout, theta, x_val, eps_val):
    """Per-example single-sample ELBO, -reconstruction - KL, of each member on ``x_val`` [n, D] with noise [(S,) n, L]."""
    weights = layout.tensors(theta)
    x_val = tf.broadcast_to(x_val, [*theta.shape[:-1], *x_val.shape])
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
    key += (config.eval_every,)
    if key not in _TRAINERS:
        if len(_TRAINERS) >= 32:  # bound memory in long sweeps
            _TRAINERS.pop(next(iter(_TRAINERS)))
        _TRAINERS[key] = StackedTrainer(model_config, config, n_train, members)
    return _TRAINERS[key]
