"""What a training run returns, and how both engines book it: ``TrainResult``, the epoch loop's
record (``Loop``), the held-out metrics and the run's cost.

    loop = Loop()
    loop.book_epoch(config, epoch, seconds, sums, done, finite, losses, val_elbo, steps_per_epoch)
    result = finish(config, model_config, data, loop, evaluator(model_config), weights, group_size, start)

``training`` (the Keras engine) and ``fastpath`` (the fast engine) both end here, so a history row,
a divergence and a metric mean the same thing whichever engine trained the run. The caches of
initial weights and of the Keras model that evaluates held-out data live here too.
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

from .config import TrainConfig
from .data import Dataset, binarize
from .evaluation import evaluate
from .model import VAE, ModelConfig, activation_width, build_vae
from .schedules import learning_rate_at

__all__ = [
    "TrainResult",
    "Loop",
    "finish",
    "step_noise",
    "activation_memory_mb",
    "initial_weights",
    "load_weights",
    "evaluator",
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


# -- the epochs -----------------------------------------------------------------------------------


def _epoch_row(config, epoch, steps, elapsed, sums, done, val_elbo, steps_per_epoch) -> dict:
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
        "examples_seen": steps * config.batch_size,
        "wall_time_s": elapsed,
        "loss": float(means[0]),
        "reconstruction_loss": float(means[1]),
        "kl_loss": float(means[2]),
        "val_elbo": val_elbo,
        "learning_rate": float(lr),
    }


@dataclass
class Loop:
    """What the epoch loop leaves: the history rows, every update's loss, timings, what broke."""

    rows: list = field(default_factory=list)
    step_losses: list = field(default_factory=list)
    steps: int = 0
    train_time: float = 0.0  # inside the compiled epochs only
    steady_time: float = 0.0  # the same, without the first epoch (which includes tracing)
    steady_examples: int = 0
    curve: list = field(default_factory=list)  # eval_every: {steps, examples_seen, val_elbo} per evaluation
    divergence: tuple | None = None  # (what, epoch, 1-based global step)

    def book_epoch(self, config, epoch, seconds, sums, done, finite, losses, val_elbo, steps_per_epoch, elapsed=None):
        """Book epoch ``epoch`` (0-based): ``seconds`` in the compiled epoch, the summed (loss,
        reconstruction, KL) of its ``done`` finite updates, whether they all were (``finite``), their
        losses (and the non-finite one), the validation ELBO after it; ``elapsed`` is the history's
        wall time (default: the time in compiled epochs so far). Records a divergence if one happened."""
        self.train_time += seconds
        if epoch > 0:
            self.steady_time += seconds
            self.steady_examples += done * config.batch_size
        self.steps += done
        self.step_losses.append(losses)
        elapsed = self.train_time if elapsed is None else elapsed
        self.rows.append(_epoch_row(config, epoch, self.steps, elapsed, sums, done, val_elbo, steps_per_epoch))
        if not finite:
            self.divergence = ("training loss", epoch + 1, self.steps + 1)
        elif not math.isfinite(val_elbo):
            self.divergence = ("validation ELBO", epoch + 1, self.steps)


# -- the result -----------------------------------------------------------------------------------


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


def _cost_metrics(loop: Loop, config: TrainConfig, model_config: ModelConfig, step_loss, group_size: int) -> dict:
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


def finish(config, model_config, data, loop: Loop, evaluator, weights_or_model, group_size: int, start: float):
    """The TrainResult of a finished loop: held-out metrics (none after a divergence), cost, what broke.

    ``evaluator`` is a Keras VAE holding the trained weights; ``weights_or_model`` the model to hand
    back, or the trained weights by name (the fast path: the model is then built when first asked for)."""
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
    model = weights_or_model
    if isinstance(weights_or_model, dict):
        model = functools.partial(_trained_model, model_config, config.seed, weights_or_model)
    curve = pd.DataFrame(loop.curve, columns=["steps", "examples_seen", "val_elbo"])
    return TrainResult(config, pd.DataFrame(loop.rows), metrics, model, step_loss, curve)


# -- caches: initial weights, an evaluation model -------------------------------------------------


def _weight_key(variable) -> str:
    return variable.path.removeprefix("vae/")  # "encoder_dense_0/kernel", ..., "decoder_log_var"


@functools.lru_cache(maxsize=256)
def initial_weights(model_config: ModelConfig, seed: int) -> dict:
    """``build_vae(model_config, seed)``'s weights by name; built once per (architecture, seed)."""
    weights = {_weight_key(v): v.numpy() for v in build_vae(model_config, seed=seed).weights}
    for w in weights.values():
        w.setflags(write=False)
    return weights


def load_weights(vae: VAE, weights: dict) -> None:
    """Assign ``weights`` (by name, as ``initial_weights`` gives them) to ``vae``'s variables."""
    for v in vae.weights:
        if _weight_key(v) in weights:
            v.assign(weights[_weight_key(v)])


def _trained_model(model_config: ModelConfig, seed: int, weights: dict) -> VAE:
    vae = build_vae(model_config, seed=seed)
    load_weights(vae, weights)
    return vae


_EVALUATORS: dict = {}  # model config -> a VAE whose weights are loaded before each evaluation


def evaluator(model_config: ModelConfig) -> VAE:
    """One Keras VAE per architecture for held-out metrics: its compiled evaluation is traced once."""
    if model_config not in _EVALUATORS:
        if len(_EVALUATORS) >= 8:
            _EVALUATORS.pop(next(iter(_EVALUATORS)))
        _EVALUATORS[model_config] = build_vae(model_config, seed=0)
    return _EVALUATORS[model_config]
