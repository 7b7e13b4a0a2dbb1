"""The fast training loop of the MLP VAE: one flat parameter vector per run, the epoch under XLA, seeds stacked.

    from vae_utils.core.training import train, train_seeds
    train(config)                  # uses this module when supports(config) is True
    train_seeds([c0, c1, c2])      # configs that differ only in seed: one compiled stack for all
    train_group([c0, c1, c2], data, steps_per_epoch)   # what both call, once per stack

``train()``'s Keras path spends most of a small step dispatching kernels: at batch 32 the Keras
Adam update alone is ~270 of ~390 kernels per step (a read, ``Pow``, ``Sqrt``, ``RealDiv`` and
assigns for each of 10 variables). This module computes the same step with the same formulas:

* every run's weights are one flat vector between epochs (the Keras layers' kernels and biases end
  to end, in the order of ``VAE.trainable_variables``; ``Layout``); inside the epoch the weights and
  the optimizer state (Adam's m and v, momenta, RMSprop's velocity) are loop variables of its
  ``tf.while_loop``, one tensor per kernel and bias (``Layout.tensors``), not variables, so the
  update is a few element-wise ops per tensor and no step slices or joins the flat vector;
* an epoch is one XLA computation (``jit_compile``; static shapes, so nothing recompiles): its
  randomness (each member's shuffle, binarization and noise: ``draws.epoch_draws``, which the Keras
  path runs compiled alone, so both engines train on the same numbers), its updates and its
  validation ELBO;
* several seeds of one configuration train as one stack: every tensor gets a leading member
  axis and the products are batched (``train_seeds``);
* the compiled epoch is called with flat tensors (``direct``): ``tf.function``'s own call binds
  its ~20 arguments in Python for ~0.6 ms, about 7 % of a batch-32 epoch.

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
import time
from dataclasses import dataclass

import numpy as np
import tensorflow as tf

from .config import TrainConfig
from .data import Dataset
from .direct import direct
from .draws import epoch_draws
from .model import ModelConfig, reparameterize
from .objective import gaussian_kl, reconstruction_loss
from .optimizers import OPTIMIZERS
from .result import Loop, TrainResult, evaluator, finish, initial_weights, load_weights
from .schedules import at_step, hyper

__all__ = [
    "supports",
    "train_group",
    "Layout",
    "StackedTrainer",
    "stacked_negative_elbo",
    "stacked_trainer",
    "val_noise",
]

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

    def join(self, tensors):
        """The flat vector ([S, size], or [size] for one run) of ``tensors`` (``tensors``' inverse)."""
        lead = tensors[0].shape[:-2] if len(tensors[0].shape) == 3 else []
        return tf.concat([tf.reshape(t, [*lead, -1]) for t in tensors], axis=-1)


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
    val_elbo [S, n_val], losses [steps, S], curve [steps, S]): the summed (loss, reconstruction,
    KL) of each member's finite updates, their count, whether the member is still going (all its
    losses finite), the per-example single-sample ELBO on the validation set after the epoch,
    every update's loss (a member's first ``done`` are its finite updates', then the non-finite
    one if it stopped; later rows are not its), and with ``config.eval_every`` = k > 0 the mean
    validation ELBO after every update whose 1-based number in the run is a multiple of k (NaN
    after the others; shape [0, S] when k = 0).
    """

    def __init__(self, model_config: ModelConfig, config: TrainConfig, n_train: int, members: int, key=None):
        self.layout = Layout(model_config)
        self.members = members
        self.run_epoch = direct(_compile_epoch(self.layout, config, n_train, members), graph=key)


@dataclass(frozen=True)
class _Shape:
    """The static numbers of one compiled epoch: XLA compiles one computation per value of each."""

    steps: int  # updates per epoch
    batch_size: int
    latent_dim: int
    bernoulli: bool  # binarize the batches
    members: int  # runs in the stack
    every: int  # config.eval_every: the validation ELBO after every k-th update (0: never)
    free_bits: bool  # the KL term is the free-bits hinge

    @property
    def lead(self) -> list:
        """The member axis of a stack; one run has none (see ``squeeze``)."""
        return [self.members] if self.members > 1 else []

    def squeeze(self, t):
        """One run drops the member axis: XLA compiles a [1, B, in] x [1, in, out] product differently
        from the per-member products of a stack, and one run's result must not depend on its company."""
        return t if self.members > 1 else tf.squeeze(t, axis=0)

    def unsqueeze(self, t):
        return t if self.members > 1 else tf.expand_dims(t, axis=0)


def _member_draws(x_train, epoch, seeds, shape: _Shape):
    """Each member's batches and noise, [steps, (S,) batch, ...]: ``draws.epoch_draws`` of its own seed."""
    s = shape
    x_epoch, noise = epoch_draws(x_train, epoch, seeds, s.steps, s.batch_size, s.latent_dim, s.bernoulli)
    return (x_epoch, noise) if s.members > 1 else (x_epoch[:, 0], noise[:, 0])


def _loss_and_gradient(layout: Layout, weights, xb, eps, weight, free_bits):
    """Each member's (loss, reconstruction, KL) on its batch ``xb`` with noise ``eps``, and the gradient
    (a list like ``weights``, ``layout.tensors``' blocks)."""
    with tf.GradientTape() as tape:
        tape.watch(weights)
        decoded, z_mean, z_log_var = _forward(layout, weights, xb, eps)
        log_var = _log_var(layout, weights)
        loss, recon, kl = stacked_negative_elbo(
            xb, decoded, z_mean, z_log_var, layout.config.likelihood, weight, log_var, free_bits
        )
        total = tf.reduce_sum(loss)  # members are independent: d total / d theta_s = d loss_s / d theta_s
    return loss, recon, kl, tape.gradient(total, weights)


def _update_fn(layout: Layout, config: TrainConfig, shape: _Shape):
    """One update of every active member: the body of the epoch's while loop.

    ``update(i, weights, slots, sums, done, losses, active, curve, batches)`` with ``batches`` =
    (x_epoch, noise, x_val, eps_val, epoch, h) returns the loop state after update ``i``. Weights
    and each slot are lists of ``layout.tensors``' blocks: the optimizer's element-wise formulas run
    on each block (the same numbers as on the flat vector), and no step slices or joins the vector."""
    optimizer = OPTIMIZERS[config.optimizer].update

    def update(i, weights, slots, sums, done, losses, active, curve, batches):
        x_epoch, noise, x_val, eps_val, epoch, h = batches
        step = epoch * shape.steps + i
        lr, alpha, weight = at_step(config, step, h)
        floor = h["free_bits"] if shape.free_bits else None
        loss, recon, kl, grad = _loss_and_gradient(layout, weights, x_epoch[i], noise[i], weight, floor)
        weights, slots = _step(optimizer, weights, grad, slots, lr, alpha, h)
        counted = tf.logical_and(tf.math.is_finite(loss), active)
        values = tf.stack([loss, recon, kl], axis=-1)
        sums += tf.where(counted[..., None], values, tf.zeros_like(values))
        done += tf.cast(counted, tf.int32)
        if shape.every:  # the validation ELBO after every ``every``-th update of the run (NaN in between)
            curve = curve.write(i, _curve_point(layout, weights, x_val, eps_val, step, shape.every, loss))
        return i + 1, weights, slots, sums, done, losses.write(i, loss), counted, curve

    return update


def _step(optimizer, weights, grad, slots, lr, alpha, h):
    """The optimizer's update of each block: (weights, slots). Every member of a stack is updated, also
    one that has stopped: only a divergence stops a member, its later updates are masked out of the
    sums and losses, and its weights are not used (``run_epoch``). Freezing it instead
    (``tf.where(active, new, old)`` on every block) made XLA copy all weights and slots each step."""
    new = [
        optimizer(w, g, [s[j] for s in slots], lr, alpha, h) for j, (w, g) in enumerate(zip(weights, grad, strict=True))
    ]
    return [w for w, _ in new], [[s[k] for _, s in new] for k in range(len(slots))]


def _curve_point(layout: Layout, weights, x_val, eps_val, step, every: int, like):
    """Each member's mean validation ELBO after update ``step`` (0-based) when step + 1 is a multiple of ``every``, else NaN."""
    evaluate = lambda: tf.reduce_mean(_val_elbo(layout, weights, x_val, eps_val), axis=-1)
    skip = lambda: tf.fill(tf.shape(like), float("nan"))
    return tf.cond(tf.equal((step + 1) % every, 0), evaluate, skip)


def _initial_state(layout: Layout, theta, slots, active, shape: _Shape):
    """The while loop's state before the first update: (i, weights, slots, sums, done, losses, active, curve),
    the weights and each slot as ``layout.tensors``' blocks."""
    s, lead = shape, shape.lead
    return (
        tf.constant(0),
        layout.tensors(s.squeeze(theta)),
        [layout.tensors(s.squeeze(v)) for v in slots],
        tf.zeros([*lead, 3]),
        tf.zeros(lead, tf.int32),
        tf.TensorArray(tf.float32, size=s.steps, element_shape=lead),  # static size: XLA needs it
        s.squeeze(active),
        tf.TensorArray(tf.float32, size=s.steps if s.every else 0, element_shape=lead),
    )


def _compile_epoch(layout: Layout, config: TrainConfig, n: int, members: int):
    """The compiled epoch, one XLA computation: the epoch's randomness, its updates, the validation ELBO."""
    c, bs = layout.config, config.batch_size
    bernoulli, free_bits = c.likelihood == "bernoulli", config.kl_schedule == "free_bits"
    shape = _Shape(n // bs, bs, c.latent_dim, bernoulli, members, config.eval_every, free_bits)
    update = _update_fn(layout, config, shape)

    @tf.function(jit_compile=JIT_COMPILE, autograph=False)  # explicit loops; AutoGraph would cost ~2 s a process
    def run_epoch(x_train, x_val, eps_val, epoch, seeds, theta, slots, active, h):
        # 1) the epoch's randomness: each member's shuffle, binarization and noise (``draws``)
        x_epoch, noise = _member_draws(x_train, epoch, seeds, shape)
        # 2) the updates, until the epoch ends or no member is still going
        batches = (x_epoch, noise, x_val, shape.squeeze(eps_val), epoch, h)
        state = tf.while_loop(
            lambda i, *state: tf.logical_and(i < shape.steps, tf.reduce_any(state[-2])),
            lambda *state: update(*state, batches),
            _initial_state(layout, theta, slots, active, shape),
        )
        _, weights, slots, sums, done, losses, active, curve = state
        # 3) the validation ELBO of the epoch's final weights
        val_elbo = _val_elbo(layout, weights, x_val, shape.squeeze(eps_val))
        theta, slots = layout.join(weights), [layout.join(v) for v in slots]
        # 4) the results with the member axis, also for one run
        losses = losses.stack() if members > 1 else losses.stack()[:, None]
        curve = curve.stack() if shape.every else tf.zeros([0, members])
        curve = curve if members > 1 or not shape.every else curve[:, None]
        out = tf.nest.map_structure(shape.unsqueeze, (theta, slots, sums, done, active, val_elbo))
        theta, slots, sums, done, active, val_elbo = out
        return theta, slots, sums, done, active, val_elbo, losses, curve

    return run_epoch


def _val_elbo(layout: Layout, weights, x_val, eps_val):
    """Per-example single-sample ELBO, -reconstruction - KL, of each member on ``x_val`` [n, D] with noise [(S,) n, L]
    (``weights``: ``layout.tensors``' blocks)."""
    lead = weights[0].shape[:-2]  # [S] for a stack, [] for one run
    x_val = tf.broadcast_to(x_val, [*lead, *x_val.shape])
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
        _TRAINERS[key] = StackedTrainer(model_config, config, n_train, members, key=("fastpath", *key))
    return _TRAINERS[key]


# -- training a stack: the epochs, each member's bookkeeping, the results ----------------------------


def train_group(configs: list[TrainConfig], data: Dataset, steps_per_epoch: int) -> list[TrainResult]:
    """Train ``configs`` (one config, several seeds; or one run) as one stack: one TrainResult each, in order.

    1) the stack's compiled epoch and its inputs; 2) the epochs, each member booked as the Keras
    path books a run; 3) each member's held-out metrics and result. Timings are each member's share."""
    base, members = configs[0], len(configs)
    model_config = base.model_config(data.dim, data.likelihood, data.image_shape)
    trainer = stacked_trainer(model_config, base, len(data.train), members)
    inputs = _stack_inputs(trainer, configs, data, steps_per_epoch)
    start = time.perf_counter()
    theta, loops = _run_stack(trainer, configs, inputs, steps_per_epoch)
    shared = (time.perf_counter() - start - sum(loop.train_time for loop in loops)) / members  # host bookkeeping
    model, results = evaluator(model_config), []
    for config, loop, row in zip(configs, loops, theta.numpy(), strict=True):
        t0 = time.perf_counter()
        weights = trainer.layout.unflatten(row)
        if loop.divergence is None:
            load_weights(model, weights)
        results.append(finish(config, model_config, data, loop, model, weights, members, t0 - loop.train_time - shared))
    return results


def _stack_inputs(trainer: StackedTrainer, configs: list[TrainConfig], data: Dataset, steps_per_epoch: int) -> dict:
    """The stack's tensors: initial weights (``build_vae``'s, per seed) and zeroed optimizer slots, the
    data, each member's validation noise (``evaluate``'s) and seed, and the run's numbers (``hyper``)."""
    base, model_config = configs[0], trainer.layout.config
    theta = np.stack([trainer.layout.flatten(initial_weights(model_config, c.seed)) for c in configs])
    noise = np.stack([val_noise(c.seed, len(data.val), data.dim, base.latent_dim) for c in configs])
    return {
        "theta": tf.constant(theta),
        "slots": [tf.zeros(theta.shape) for _ in range(OPTIMIZERS[base.optimizer].slots)],
        "x_train": tf.constant(data.train),
        "x_val": tf.constant(data.val),
        "eps_val": tf.constant(noise),
        "seeds": tf.constant([c.seed for c in configs], tf.int32),
        "h": hyper(base, steps_per_epoch),
    }


def _run_stack(trainer: StackedTrainer, configs, inputs: dict, steps_per_epoch: int):
    """The stack's epochs, one compiled call each, until every member has stopped: (theta, loops)."""
    theta, slots, alive = inputs["theta"], inputs["slots"], np.ones(len(configs), bool)
    loops = [Loop() for _ in configs]
    data = (inputs["x_train"], inputs["x_val"], inputs["eps_val"])
    for epoch in range(configs[0].epochs):
        if not alive.any():
            break
        t0 = time.perf_counter()
        theta, slots, *out = trainer.run_epoch(
            *data, tf.constant(epoch), inputs["seeds"], theta, slots, tf.constant(alive), inputs["h"]
        )
        out = [np.asarray(v) for v in out]
        share = (time.perf_counter() - t0) / alive.sum()  # each active member's share of the call
        for s in np.flatnonzero(alive):
            member = [v[s] for v in out[:4]] + [v[:, s] for v in out[4:]]
            _book_member(loops[s], configs[s], epoch, share, member, steps_per_epoch)
            alive[s] = loops[s].divergence is None
    return theta, loops


def _book_member(loop: Loop, config: TrainConfig, epoch: int, seconds: float, out: list, steps_per_epoch: int):
    """Book one member's epoch from its slices of ``run_epoch``'s outputs: (sums, done, still going,
    val_elbo, losses, curve)."""
    sums, done, still, val, losses, curve = out
    done, still = int(done), bool(still)
    if config.eval_every:  # the evaluations after the member's finite updates
        values = curve[:done]
        for j in np.flatnonzero((loop.steps + np.arange(1, done + 1)) % config.eval_every == 0):
            step = loop.steps + j + 1
            loop.curve.append({"steps": step, "examples_seen": step * config.batch_size, "val_elbo": float(values[j])})
    val_elbo = float(np.mean(val.astype(np.float64))) if still else float("nan")
    losses = losses[: done + int(not still)]  # the non-finite loss itself is kept
    loop.book_epoch(config, epoch, seconds, sums, done, still, losses, val_elbo, steps_per_epoch)
