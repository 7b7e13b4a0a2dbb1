"""Train a VAE from one frozen ``TrainConfig``: a compiled, deterministic loop.

    from vae_utils import TrainConfig, train
    result = train(TrainConfig(dataset="digits", batch_size=64, learning_rate=1e-3, epochs=30))
    result.history      # one row per epoch: loss, reconstruction_loss, kl_loss, val_elbo, ...
    result.metrics      # test_elbo, test_nll (IWAE), active_units, samples_per_s, diverged, ...
    result.model        # the trained Keras VAE (build_vae's encoder and decoder)
    result.curve        # with eval_every=k: the validation ELBO after every k-th update
    train_seeds([TrainConfig(seed=s) for s in range(10)])  # ten seeds in one compiled stack

Two engines, one result. The Keras path (``engine="keras"``) runs the model and optimizer the
code chapter shows (``build_vae``, ``keras.optimizers``) with a whole epoch inside one
``tf.function``, so Python is entered once per epoch, not once per step as in ``model.fit``. The
fast path (``fastpath``, the default for the MLP VAE) computes the same updates on one flat
parameter vector under XLA and can stack several seeds; it gives the Keras path's results within
float32 rounding. Other architectures train on the Keras path.

Determinism: initial weights, shuffles, binarization and reparameterization noise are
all drawn from ``config.seed`` (stateless ops keyed by seed and epoch), and
TensorFlow op determinism is on, so one config gives a bit-identical history on one machine
(a seed trained in a stack of another size may differ in the last bits: ``train_seeds``).

Divergence is a result: when the training loss turns NaN or infinite the epoch stops at
that step, ``metrics["diverged"]`` is True with the epoch and step recorded (and
``metrics["divergence"]`` says what broke: the training loss, the validation ELBO, or a
held-out bound that is not finite), and the call returns normally.
"""

from __future__ import annotations

import functools
import math
import resource
import time
from dataclasses import dataclass, field

import keras
import numpy as np
import pandas as pd
import tensorflow as tf

from ..cpuslots import cpu_slot
from .config import LR_SCHEDULES, TrainConfig, fail
from .data import Dataset, binarize, binarized_once, load_dataset, subsample
from .draws import compiled_draws
from .evaluation import check_array, evaluate
from .model import VAE, ModelConfig, activation_width, build_vae, reparameterize
from .objective import kl_weight, negative_elbo
from .optimizers import OPTIMIZERS
from .schedules import hyper, learning_rate_at

tf.get_logger().setLevel("ERROR")  # runs of new graph shapes retrace on purpose (see _Trainer): no warnings

__all__ = [
    "TrainConfig",
    "TrainResult",
    "train",
    "train_seeds",
    "seed_groups",
    "ENGINES",
    "LR_SCHEDULES",
    "make_optimizer",
    "step_noise",
    "activation_memory_mb",
]


@dataclass
class TrainResult:
    """What ``train`` returns. ``model`` is the trained Keras VAE, built on first use."""

    config: TrainConfig
    history: pd.DataFrame  # one row per epoch
    metrics: dict  # held-out metrics, cost, divergence
    _model: object = field(repr=False)  # the trained VAE, or a function that builds it (sweeps never look)
    step_loss: np.ndarray = field(repr=False, default=None)  # training loss of every update, in order
    curve: pd.DataFrame = field(repr=False, default=None)  # eval_every > 0: steps, examples_seen, val_elbo

    @property
    def model(self) -> VAE:
        """The trained encoder/decoder: a Keras ``VAE`` of ``model.build_vae``."""
        if not isinstance(self._model, keras.Model):
            self._model = self._model()
        return self._model


def make_optimizer(config: TrainConfig):
    """The Keras optimizer of ``config`` (``optimizers.OPTIMIZERS``); its learning rate is set at every step by the loop."""
    return OPTIMIZERS[config.optimizer].keras(config)


def _check_data(data: Dataset, config: TrainConfig):
    if not isinstance(data, Dataset):
        fail("data", type(data).__name__, "a vae_utils.Dataset (or None: load config.dataset)")
    for split in ("train", "val", "test"):
        check_array(f"data.{split}", getattr(data, split), dim=data.dim if split != "train" else None)
    if data.likelihood == "bernoulli" and (data.train.min() < 0 or data.train.max() > 1):
        fail("data.train", "values outside [0, 1]", "intensities in [0, 1] for Bernoulli data")
    if config.batch_size > len(data.train):
        fail("batch_size", config.batch_size, f"1 .. {len(data.train)} (the training set)")


class _Trainer:
    """A model, an optimizer and one compiled epoch function, reused by every run of the same graph.

    Tracing a ``tf.function`` costs more than training a small VAE for an epoch, so runs that
    differ only in numbers (seed, learning rate, beta, schedule lengths) share one trace: the
    numbers enter as tensors, and each run starts by loading freshly seeded initial weights and
    zeroed optimizer slots. Results are identical to a fresh trainer's.
    """

    def __init__(self, model_config: ModelConfig, config: TrainConfig, n_train: int):
        self.vae = build_vae(model_config, seed=0)
        self.optimizer = make_optimizer(config)
        self.optimizer.build(self.vae.trainable_variables)
        self.run_epoch = _compile_epoch(self.vae, self.optimizer, config, n_train)

    def reset(self, initial: VAE):
        self.vae.set_weights(initial.get_weights())
        for v in self.optimizer.variables:  # iterations, slots (momenta, velocities) to zero
            v.assign(np.zeros(v.shape, v.dtype))


def _compile_step(vae, optimizer, config: TrainConfig):
    """One update on a batch ``xb`` with noise ``eps``: the loss of ``objective.negative_elbo``."""
    variables = vae.trainable_variables
    kl_schedule, lr_schedule = config.kl_schedule, config.lr_schedule

    def step(xb, eps, step, h):
        if lr_schedule != "constant":
            optimizer.learning_rate.assign(
                learning_rate_at(lr_schedule, step, h["learning_rate"], h["lr_warmup_steps"], h["total_steps"])
            )
        weight = kl_weight(
            kl_schedule, step, h["total_steps"], h["beta"], h["kl_warmup_steps"], h["kl_cycles"], h["kl_ratio"]
        )
        with tf.GradientTape() as tape:
            z_mean, z_log_var = vae.posterior(xb, training=True)
            decoded = vae.decoder(reparameterize(z_mean, z_log_var, eps), training=True)
            loss, recon, kl = negative_elbo(
                xb,
                decoded,
                z_mean,
                z_log_var,
                vae.likelihood,
                beta=weight,
                log_var=vae.decoder_log_var,
                free_bits=h["free_bits"] if kl_schedule == "free_bits" else None,
            )
        optimizer.apply(tape.gradient(loss, variables), variables)
        return loss, recon, kl

    return step


def _compile_epoch(vae, optimizer, config: TrainConfig, n: int):
    """The compiled epoch: every update of one pass over the data inside one ``tf.function``."""
    bs = config.batch_size
    step = _compile_step(vae, optimizer, config)
    draw = compiled_draws(n, bs, vae.config.latent_dim, vae.likelihood == "bernoulli")

    @tf.function
    def run_epoch(x_train, epoch, seed, steps_per_epoch, h):
        # 1) the epoch's randomness up front, keyed by (seed, epoch): shuffle, binarization, noise,
        #    drawn under XLA by the function the fast path compiles into its epoch (``draws``)
        x_epoch, noise = draw(x_train, epoch, seed)
        if config.lr_schedule == "constant":
            optimizer.learning_rate.assign(h["learning_rate"])

        # 2) the updates, until the epoch ends or the loss stops being finite
        def body(i, sums, losses, finite):
            loss, recon, kl = step(x_epoch[i], noise[i], epoch * steps_per_epoch + i, h)
            finite = tf.math.is_finite(loss)  # a non-finite loss ends the loop after this (void) update
            values = tf.stack([loss, recon, kl])
            return i + 1, sums + tf.where(finite, values, tf.zeros_like(values)), losses.write(i, loss), finite

        i, sums, losses, finite = tf.while_loop(
            lambda i, sums, losses, finite: tf.logical_and(i < steps_per_epoch, finite),
            body,
            (tf.constant(0), tf.zeros([3]), tf.TensorArray(tf.float32, size=steps_per_epoch), tf.constant(True)),
        )
        done = i - tf.cast(tf.logical_not(finite), tf.int32)  # completed (finite) updates
        return sums, done, finite, losses.gather(tf.range(i))

    return run_epoch


_TRAINERS: dict = {}  # graph key -> _Trainer


def _trainer(model_config: ModelConfig, config: TrainConfig, n_train: int) -> _Trainer:
    key = (
        model_config,
        n_train,
        config.batch_size,
        config.optimizer,
        config.momentum,
        config.weight_decay,
        config.kl_schedule,
        config.lr_schedule,
    )
    if key not in _TRAINERS:
        if len(_TRAINERS) >= 32:  # bound memory in long sweeps
            _TRAINERS.pop(next(iter(_TRAINERS)))
        _TRAINERS[key] = _Trainer(model_config, config, n_train)
    return _TRAINERS[key]


def step_noise(step_loss: np.ndarray, tail: float = 0.25) -> float:
    """Step-to-step noise of the training loss: std of successive differences / sqrt(2),
    over the last ``tail`` of the updates (the trend cancels in the differences)."""
    x = np.asarray(step_loss, np.float64)
    x = x[int(len(x) * (1 - tail)) :]
    x = x[np.isfinite(x)]
    return float(np.std(np.diff(x)) / math.sqrt(2)) if len(x) > 2 else float("nan")


def activation_memory_mb(model_config: ModelConfig, batch_size: int) -> float:
    """Estimated memory of one step's activations and their gradients (float32), in MB.

    Every layer's output is kept for the backward pass and gets a gradient of the same size:
    2 x 4 bytes x batch x ``model.activation_width`` (layer outputs, the input, the noise and the sample).
    The parameter and optimizer memory does not depend on the batch and is left out.
    """
    return 2 * 4 * batch_size * activation_width(model_config) / 1e6


def _determinism_enabled() -> bool:
    from tensorflow.python.framework import config as tf_config  # no public getter in TF 2.x

    return tf_config.is_op_determinism_enabled()


def _val_elbo(vae, x, seed):
    """Single-sample ELBO on held-out data with fixed noise (cheap, for the per-epoch curve)."""
    return evaluate(vae, x, k=1, seed=seed, activity=False)["elbo"]


def _epoch_row(config, epoch, steps, examples, elapsed, sums, done, val_elbo, steps_per_epoch) -> dict:
    means = sums / done if done else np.full(3, np.nan)
    lr = learning_rate_at(
        config.lr_schedule,
        max(steps - 1, 0),
        config.learning_rate,
        config.lr_warmup_epochs * steps_per_epoch,
        config.epochs * steps_per_epoch,
    )
    return {
        "epoch": epoch + 1,
        "steps": steps,
        "examples_seen": examples,
        "wall_time_s": elapsed,
        "loss": float(means[0]),
        "reconstruction_loss": float(means[1]),
        "kl_loss": float(means[2]),
        "val_elbo": val_elbo,
        "learning_rate": float(lr),
    }


def _held_out_metrics(model, data: Dataset, config: TrainConfig, val_elbo: float) -> dict:
    """Test ELBO, IWAE NLL, active units; the training-set ELBO for the generalization gap."""
    test = evaluate(model, data.test, k=config.eval_k, seed=config.seed)
    x_fit = data.train
    if data.likelihood == "bernoulli":  # one fixed binarization of the training set
        x_fit = binarize(x_fit, config.seed)
    fit = evaluate(model, x_fit, k=1, seed=config.seed, activity=False)
    return {
        "test_elbo": test["elbo"],
        "test_nll": test["nll"],
        "test_reconstruction_loss": test["reconstruction_loss"],
        "test_kl_loss": test["kl_loss"],
        "val_elbo": val_elbo,  # the last epoch's: the same weights, data, noise and k
        "train_elbo": fit["elbo"],
        "active_units": test["active_units"],
        "kl_per_dim": test["kl_per_dim"],
    }


def _diverged_metrics(latent_dim: int) -> dict:
    nan = float("nan")
    keys = ("test_elbo", "test_nll", "test_reconstruction_loss", "test_kl_loss", "val_elbo", "train_elbo")
    return {**dict.fromkeys(keys, nan), "active_units": 0, "kl_per_dim": [nan] * latent_dim}


@dataclass
class _Loop:
    """What the epoch loop leaves: the history rows, every update's loss, timings, what broke."""

    rows: list = field(default_factory=list)
    step_losses: list = field(default_factory=list)
    steps: int = 0
    train_time: float = 0.0  # inside the compiled epochs only
    steady_time: float = 0.0  # the same, without the first epoch (which includes tracing)
    steady_examples: int = 0
    curve: list = field(default_factory=list)  # eval_every: {steps, examples_seen, val_elbo} per evaluation
    divergence: tuple | None = None  # (what, epoch, 1-based global step)


def _run_epochs(trainer: _Trainer, data: Dataset, config: TrainConfig, steps_per_epoch: int) -> _Loop:
    """One compiled call per epoch, then the validation ELBO; stops at the first non-finite value."""
    loop, start = _Loop(), time.perf_counter()
    x_train, seed, n_steps = tf.constant(data.train, tf.float32), tf.constant(config.seed), tf.constant(steps_per_epoch)
    h = hyper(config, steps_per_epoch)
    for epoch in range(config.epochs):
        t0 = time.perf_counter()
        sums, done, finite, losses = trainer.run_epoch(x_train, tf.constant(epoch), seed, n_steps, h)
        sums, done, finite = sums.numpy(), int(done), bool(finite)
        dt = time.perf_counter() - t0
        loop.train_time += dt
        if epoch > 0:
            loop.steady_time += dt
            loop.steady_examples += done * config.batch_size
        loop.steps += done
        loop.step_losses.append(losses.numpy())
        val_elbo = _val_elbo(trainer.vae, data.val, seed=config.seed) if finite else float("nan")
        elapsed = time.perf_counter() - start
        row = _epoch_row(
            config, epoch, loop.steps, loop.steps * config.batch_size, elapsed, sums, done, val_elbo, steps_per_epoch
        )
        loop.rows.append(row)
        if not finite:
            loop.divergence = ("training loss", epoch + 1, loop.steps + 1)
        elif not math.isfinite(val_elbo):
            loop.divergence = ("validation ELBO", epoch + 1, loop.steps)
        if loop.divergence:
            break
    return loop


def _cost_metrics(
    loop: _Loop, config: TrainConfig, model_config: ModelConfig, step_loss: np.ndarray, group_size: int = 1
) -> dict:
    examples = loop.steps * config.batch_size
    return {
        "steps": loop.steps,
        "examples_seen": examples,
        "train_time_s": loop.train_time,
        "samples_per_s": loop.steady_examples / loop.steady_time
        if loop.steady_time > 0
        else examples / max(loop.train_time, 1e-9),
        "peak_memory_mb": resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024.0,  # whole process
        "activation_memory_mb": activation_memory_mb(model_config, config.batch_size),
        "step_noise": step_noise(step_loss),
        "eval_k": config.eval_k,
        "group_size": group_size,  # runs trained together in one graph; timings are this run's share
    }


def _finish(config, model_config, data, loop: _Loop, evaluator, weights_or_model, group_size: int, start: float):
    """The TrainResult of a finished loop: held-out metrics (none after a divergence), cost, what broke."""
    divergence = loop.divergence
    if divergence is None:
        held_out = _held_out_metrics(evaluator, data, config, loop.rows[-1]["val_elbo"])
        if not (math.isfinite(held_out["test_elbo"]) and math.isfinite(held_out["test_nll"])):
            divergence = ("test metrics", len(loop.rows), loop.steps)  # losses finite, the held-out bound not
    else:
        held_out = _diverged_metrics(config.latent_dim)
    step_loss = np.concatenate(loop.step_losses) if loop.step_losses else np.zeros(0)
    metrics = {
        "diverged": divergence is not None,
        "diverged_epoch": divergence[1] if divergence else None,
        "diverged_step": divergence[2] if divergence else None,
        "divergence": divergence[0] if divergence else None,  # what turned non-finite first
        "epochs_completed": len(loop.rows) - int(loop.divergence is not None),
        "wall_time_s": time.perf_counter() - start,
        **_cost_metrics(loop, config, model_config, step_loss, group_size),
        **held_out,
    }
    if isinstance(weights_or_model, dict):  # the fast path: the Keras model is built when first asked for
        model = functools.partial(_trained_model, model_config, config.seed, weights_or_model)
    else:
        model = weights_or_model
    curve = pd.DataFrame(loop.curve, columns=["steps", "examples_seen", "val_elbo"])
    return TrainResult(config, pd.DataFrame(loop.rows), metrics, model, step_loss, curve)


# -- caches: the dataset, initial weights, an evaluation model -------------------------------------


@functools.lru_cache(maxsize=4)
def _dataset(name: str, split_seed: int) -> Dataset:
    """``load_dataset`` once per process (a sweep's kernel trains hundreds of runs on one dataset)."""
    data = load_dataset(name, split_seed)
    for split in (data.train, data.val, data.test):
        split.setflags(write=False)  # shared by every run: nobody may change it
    return data


def _weight_key(variable) -> str:
    return variable.path.removeprefix("vae/")  # "encoder_dense_0/kernel", ..., "decoder_log_var"


@functools.lru_cache(maxsize=256)
def _initial_weights(model_config: ModelConfig, seed: int) -> dict:
    """``build_vae(model_config, seed)``'s weights by name; built once per (architecture, seed)."""
    weights = {_weight_key(v): v.numpy() for v in build_vae(model_config, seed=seed).weights}
    for w in weights.values():
        w.setflags(write=False)
    return weights


def _load_weights(vae: VAE, weights: dict) -> None:
    for v in vae.weights:
        if _weight_key(v) in weights:
            v.assign(weights[_weight_key(v)])


def _trained_model(model_config: ModelConfig, seed: int, weights: dict) -> VAE:
    vae = build_vae(model_config, seed=seed)
    _load_weights(vae, weights)
    return vae


_EVALUATORS: dict = {}  # model config -> a VAE whose weights are loaded before each evaluation


def _evaluator(model_config: ModelConfig) -> VAE:
    """One Keras VAE per architecture for held-out metrics: its compiled evaluation is traced once."""
    if model_config not in _EVALUATORS:
        if len(_EVALUATORS) >= 8:
            _EVALUATORS.pop(next(iter(_EVALUATORS)))
        _EVALUATORS[model_config] = build_vae(model_config, seed=0)
    return _EVALUATORS[model_config]


# -- the two paths ---------------------------------------------------------------------------


def _train_keras(config: TrainConfig, data: Dataset, steps_per_epoch: int) -> TrainResult:
    """The reference path: the Keras model and optimizer inside one compiled epoch (``_Trainer``)."""
    model_config = config.model_config(data.dim, data.likelihood, data.image_shape)
    vae = build_vae(model_config, seed=config.seed)  # the initial weights, and the model returned
    trainer = _trainer(model_config, config, len(data.train))
    trainer.reset(vae)
    start = time.perf_counter()
    loop = _run_epochs(trainer, data, config, steps_per_epoch)
    vae.set_weights(trainer.vae.get_weights())  # hand back a model of its own; the trainer is reused
    return _finish(config, model_config, data, loop, trainer.vae, vae, 1, start)


def _fast_epoch(loop: _Loop, config, epoch, seconds, sums, done, alive, losses, val, steps_per_epoch) -> None:
    """Book one member's epoch of the fast path, as ``_run_epochs`` books the reference path's."""
    loop.train_time += seconds
    if epoch > 0:
        loop.steady_time += seconds
        loop.steady_examples += done * config.batch_size
    loop.steps += done
    loop.step_losses.append(losses[: done + int(not alive)])  # the non-finite loss itself is kept
    val_elbo = float(np.mean(val.astype(np.float64))) if alive else float("nan")
    loop.rows.append(
        _epoch_row(
            config,
            epoch,
            loop.steps,
            loop.steps * config.batch_size,
            loop.train_time,
            sums,
            done,
            val_elbo,
            steps_per_epoch,
        )
    )
    if not alive:
        loop.divergence = ("training loss", epoch + 1, loop.steps + 1)
    elif not math.isfinite(val_elbo):
        loop.divergence = ("validation ELBO", epoch + 1, loop.steps)


def _book_curve(loop: _Loop, config: TrainConfig, values: np.ndarray) -> None:
    """Book the evaluations of one member's epoch (``values``: one per finite update, NaN between evaluations)."""
    if config.eval_every:
        for j in np.flatnonzero((loop.steps + np.arange(1, len(values) + 1)) % config.eval_every == 0):
            step = loop.steps + j + 1
            loop.curve.append({"steps": step, "examples_seen": step * config.batch_size, "val_elbo": float(values[j])})


def _train_fast(configs: list[TrainConfig], data: Dataset, steps_per_epoch: int) -> list[TrainResult]:
    """The fast path (``fastpath``): every config of ``configs`` (they differ only in seed) in one graph."""
    from . import fastpath

    base, members = configs[0], len(configs)
    model_config = base.model_config(data.dim, data.likelihood, data.image_shape)
    trainer = fastpath.stacked_trainer(model_config, base, len(data.train), members)
    theta = tf.constant(np.stack([trainer.layout.flatten(_initial_weights(model_config, c.seed)) for c in configs]))
    slots = [tf.zeros_like(theta) for _ in range(OPTIMIZERS[base.optimizer].slots)]
    noise = np.stack([fastpath.val_noise(c.seed, len(data.val), data.dim, base.latent_dim) for c in configs])
    x_train, x_val, eps_val = tf.constant(data.train), tf.constant(data.val), tf.constant(noise)
    seeds, h = tf.constant([c.seed for c in configs], tf.int32), hyper(base, steps_per_epoch)
    loops, alive = [_Loop() for _ in configs], np.ones(members, bool)
    start = time.perf_counter()
    for epoch in range(base.epochs):
        if not alive.any():
            break
        t0 = time.perf_counter()
        theta, slots, *out = trainer.run_epoch(
            x_train, x_val, eps_val, tf.constant(epoch), seeds, theta, slots, tf.constant(alive), h
        )
        sums, done, still, losses, val, curve = (np.asarray(v) for v in out)
        share = (time.perf_counter() - t0) / alive.sum()  # each active member's share of the call
        for s in np.flatnonzero(alive):
            _book_curve(loops[s], configs[s], curve[: int(done[s]), s])
            book = (sums[s], int(done[s]), bool(still[s]), losses[:, s], val[s])
            _fast_epoch(loops[s], configs[s], epoch, share, *book, steps_per_epoch)
            alive[s] = loops[s].divergence is None
    evaluator, results = _evaluator(model_config), []
    shared = (time.perf_counter() - start - sum(loop.train_time for loop in loops)) / members  # host bookkeeping
    for config, loop, row in zip(configs, loops, theta.numpy(), strict=True):
        t0 = time.perf_counter()
        weights = trainer.layout.unflatten(row)
        if loop.divergence is None:
            _load_weights(evaluator, weights)
        results.append(
            _finish(config, model_config, data, loop, evaluator, weights, members, t0 - loop.train_time - shared)
        )
    return results


def _prepare(config: TrainConfig, data: Dataset | None) -> tuple[Dataset, int]:
    if not isinstance(config, TrainConfig):
        fail("config", type(config).__name__, "a TrainConfig")
    if not _determinism_enabled():
        tf.config.experimental.enable_op_determinism()  # once: re-enabling re-instantiates compiled functions
    data = data if data is not None else _dataset(config.dataset, config.split_seed)
    data = subsample(data, config.train_size, config.held_out_size)
    if config.binarization == "static":
        data = binarized_once(data)
    _check_data(data, config)
    return data, len(data.train) // config.batch_size


ENGINES = ("auto", "fast", "keras")


def train(config: TrainConfig, data: Dataset | None = None, engine: str = "auto") -> TrainResult:
    """Train a VAE as ``config`` says; evaluate it on held-out data. See the module docstring.

    ``engine``: "keras" trains with the Keras model and optimizer (the reference path); "fast"
    with ``fastpath`` (the MLP VAE only); "auto" (default) the fast path when it supports the
    config. Both give the same results within float32 rounding.
    """
    from . import fastpath

    if engine not in ENGINES:
        fail("engine", engine, ", ".join(ENGINES))
    data, steps_per_epoch = _prepare(config, data)
    fast = fastpath.supports(config)
    if engine == "fast" and not fast:
        fail("engine", engine, "'auto' or 'keras' for this config (the fast path trains the MLP VAE only)")
    if engine == "keras" and config.eval_every:
        fail("engine", engine, "'auto' or 'fast' when eval_every > 0 (evaluations within an epoch are the fast path's)")
    with cpu_slot():  # a book build's budget of training processes (vae_utils.cpuslots); else free
        if engine == "keras" or not fast:
            return _train_keras(config, data, steps_per_epoch)
        return _train_fast([config], data, steps_per_epoch)[0]


STACK_BYTES = 256 * 2**20  # at most this much of epoch data (S x n_train x dim float32) in one stack


def seed_groups(configs: list[TrainConfig]) -> list[list[TrainConfig]]:
    """``configs`` cut into runs of consecutive configs that differ only in seed (for ``train_seeds``), in order."""
    groups, key = [], None
    for c in configs:
        k = {f: v for f, v in c.to_dict().items() if f != "seed"}
        if groups and k == key:
            groups[-1].append(c)
        else:
            groups.append([c])
            key = k
    return groups


def train_seeds(configs: list[TrainConfig], data: Dataset | None = None) -> list[TrainResult]:
    """Train configs that differ only in ``seed`` together; one TrainResult per config, in order.

    Each result equals ``train(config)``'s within float32 rounding (the same initial weights,
    shuffles, binarization and noise per seed; XLA may round a stacked product differently from a
    single one, so not always to the bit); a seed that diverges stops alone and its result says so
    as ``train`` would. On the fast path the seeds share one compiled graph with stacked weights
    (at most ``STACK_BYTES`` of epoch data per stack), which costs less than the runs one by one;
    configs the fast path does not cover are trained one by one. Timing metrics are each run's
    share of its stack (``metrics["group_size"]`` runs).
    """
    from . import fastpath

    if not isinstance(configs, (list, tuple)) or not configs:
        fail("configs", configs, "a non-empty list of TrainConfigs that differ only in seed")
    for c in configs:
        if not isinstance(c, TrainConfig):
            fail("configs", type(c).__name__, "a list of TrainConfigs")
    if len(seed_groups(configs)) > 1:
        base = configs[0].to_dict()
        other = next(c.to_dict() for c in configs if len(seed_groups([configs[0], c])) > 1)
        diff = sorted(k for k in base if k != "seed" and base[k] != other[k])
        fail("configs", f"configs that differ in {', '.join(diff)}", "configs that differ only in seed")
    data, steps_per_epoch = _prepare(configs[0], data)
    if not fastpath.supports(configs[0]):
        with cpu_slot():
            return [train(c, data) for c in configs]
    size = max(1, STACK_BYTES // (data.train.nbytes or 1))
    with cpu_slot():
        stacks = [list(configs[k : k + size]) for k in range(0, len(configs), size)]
        return [r for stack in stacks for r in _train_fast(stack, data, steps_per_epoch)]
