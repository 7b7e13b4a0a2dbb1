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
float32 rounding. Other architectures train on the Keras path. This module prepares the data and
picks the engine; ``fastpath.train_group`` trains a stack; both book their epochs and build the
result with ``result``.

Determinism: initial weights, shuffles, binarization and reparameterization noise are
all drawn from ``config.seed`` (stateless ops keyed by seed and epoch, under XLA: ``draws``), and
TensorFlow op determinism is on, so one config gives a bit-identical history on one machine
(a seed trained in a stack of another size may differ in the last bits: ``train_seeds``).

Divergence is a result: when the training loss turns NaN or infinite the epoch stops at
that step, ``metrics["diverged"]`` is True with the epoch and step recorded (and
``metrics["divergence"]`` says what broke: the training loss, the validation ELBO, or a
held-out bound that is not finite), and the call returns normally.
"""

from __future__ import annotations

import functools
import time

import numpy as np
import tensorflow as tf

from .. import xlacache
from ..cpuslots import cpu_slot
from . import fastpath
from .config import LR_SCHEDULES, TrainConfig, fail
from .data import Dataset, binarized_once, load_dataset, subsample
from .draws import compiled_draws
from .evaluation import check_array, evaluate
from .model import VAE, ModelConfig, build_vae, reparameterize
from .objective import kl_weight, negative_elbo
from .optimizers import OPTIMIZERS
from .result import Loop, TrainResult, activation_memory_mb, finish, step_noise
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

    @tf.function(autograph=False)  # explicit loops: AutoGraph's conversion only costs ~2 s per process
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


def _determinism_enabled() -> bool:
    from tensorflow.python.framework import config as tf_config  # no public getter in TF 2.x

    return tf_config.is_op_determinism_enabled()


def _val_elbo(vae, x, seed):
    """Single-sample ELBO on held-out data with fixed noise (cheap, for the per-epoch curve)."""
    return evaluate(vae, x, k=1, seed=seed, activity=False)["elbo"]


def _run_epochs(trainer: _Trainer, data: Dataset, config: TrainConfig, steps_per_epoch: int) -> Loop:
    """One compiled call per epoch, then the validation ELBO; stops at the first non-finite value."""
    loop, start = Loop(), time.perf_counter()
    x_train, seed, n_steps = tf.constant(data.train, tf.float32), tf.constant(config.seed), tf.constant(steps_per_epoch)
    h = hyper(config, steps_per_epoch)
    for epoch in range(config.epochs):
        t0 = time.perf_counter()
        sums, done, finite, losses = trainer.run_epoch(x_train, tf.constant(epoch), seed, n_steps, h)
        sums, done, finite = sums.numpy(), int(done), bool(finite)
        seconds = time.perf_counter() - t0
        val_elbo = _val_elbo(trainer.vae, data.val, seed=config.seed) if finite else float("nan")
        elapsed = time.perf_counter() - start
        loop.book_epoch(config, epoch, seconds, sums, done, finite, losses.numpy(), val_elbo, steps_per_epoch, elapsed)
        if loop.divergence:
            break
    return loop


# -- the dataset, loaded once per process ------------------------------------------------------------


@functools.lru_cache(maxsize=4)
def _dataset(name: str, split_seed: int) -> Dataset:
    """``load_dataset`` once per process (a sweep's kernel trains hundreds of runs on one dataset)."""
    data = load_dataset(name, split_seed)
    for split in (data.train, data.val, data.test):
        split.setflags(write=False)  # shared by every run: nobody may change it
    return data


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
    return finish(config, model_config, data, loop, trainer.vae, vae, 1, start)


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
            result = _train_keras(config, data, steps_per_epoch)
        else:
            result = fastpath.train_group([config], data, steps_per_epoch)[0]
    xlacache.publish()  # what XLA compiled for it, for the build's other processes (vae_utils.xlacache)
    return result


STACK_BYTES = 256 * 2**20  # at most this much of epoch data (S x n_train x dim float32) in one stack
# at most this many weights (S x the model's) in one stack: past it, a stack trains slower per run than the
# runs one by one (its weights and Adam's slots outgrow the cache). AMD EPYC, one thread: the 64-256-8 MLP
# on digits (39,504 weights) 12 ms per run and epoch in a stack of 10, 15 in one of 20, 16 alone; the
# 784-256-16 MLP on Fashion-MNIST (415,024) 303 ms alone, 354 in a stack of 2 (benchmarks/README.md)
STACK_WEIGHTS = 400_000


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
    (at most ``STACK_BYTES`` of epoch data and ``STACK_WEIGHTS`` weights per stack), which costs less
    than the runs one by one;
    configs the fast path does not cover are trained one by one. Timing metrics are each run's
    share of its stack (``metrics["group_size"]`` runs).
    """
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
    weights = fastpath.Layout(configs[0].model_config(data.dim, data.likelihood, data.image_shape)).size
    size = max(1, min(STACK_BYTES // (data.train.nbytes or 1), STACK_WEIGHTS // weights))
    with cpu_slot():
        stacks = [list(configs[k : k + size]) for k in range(0, len(configs), size)]
        results = [r for stack in stacks for r in fastpath.train_group(stack, data, steps_per_epoch)]
    xlacache.publish()
    return results
