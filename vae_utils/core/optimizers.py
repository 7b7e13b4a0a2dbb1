"""The optimizers, each defined once: the Keras optimizer the reference engine builds and the update
the fast path applies to flat tensors, with the same formulas and op order (Keras 3's).

    from vae_utils.core.optimizers import OPTIMIZERS, OptimizerSpec, register_optimizer
    OPTIMIZERS["adam"].keras(config)            # keras.optimizers.Adam(config.learning_rate)
    theta, slots = OPTIMIZERS["adam"].update(theta, grad, slots, lr, alpha, h)

``register_optimizer(OptimizerSpec(...))`` adds one: ``TrainConfig`` validates against this registry,
both engines train it, and pages name it by ``words``. Nothing here imports TensorFlow until an
optimizer is built or traced, so validating a config stays cheap.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass

__all__ = ["OptimizerSpec", "OPTIMIZERS", "register_optimizer", "adam_alpha"]

# Keras's optimizer constants (keras.optimizers defaults, as the Keras builders below use them)
ADAM_BETA_1, ADAM_BETA_2, ADAM_EPSILON = 0.9, 0.999, 1e-7
RMSPROP_RHO, RMSPROP_EPSILON = 0.9, 1e-7


@dataclass(frozen=True)
class OptimizerSpec:
    """One optimizer for both engines.

    ``keras(config)`` builds the Keras optimizer (its learning rate is set at every step by the loop);
    ``update(theta, grad, slots, lr, alpha, h)`` returns (theta, slots) for flat tensors, where
    ``slots`` holds ``slots`` state tensors the size of theta, ``lr`` is this step's learning rate,
    ``alpha`` Adam's bias-corrected step size when ``adam_alpha`` (else ``lr``) and ``h`` the run's
    numbers as tensors (``schedules.hyper``: momentum, weight_decay, ...)."""

    name: str
    words: str  # how figures and tables name it
    slots: int
    keras: Callable
    update: Callable
    adam_alpha: bool = False


OPTIMIZERS: dict[str, OptimizerSpec] = {}


def register_optimizer(spec: OptimizerSpec) -> OptimizerSpec:
    """Add ``spec`` (replacing one of the same name) and return it."""
    OPTIMIZERS[spec.name] = spec
    return spec


def adam_alpha(lr, step):
    """Adam's step size at 0-based optimizer steps ``step`` (Keras: local_step = iterations + 1)."""
    import tensorflow as tf

    t = tf.cast(step + 1, tf.float32)
    beta_1_power = tf.pow(tf.constant(ADAM_BETA_1, tf.float32), t)
    beta_2_power = tf.pow(tf.constant(ADAM_BETA_2, tf.float32), t)
    return lr * tf.sqrt(1 - beta_2_power) / (1 - beta_1_power)


def _sgd(theta, grad, slots, lr, alpha, h):  # SGD.update_step without momentum
    return theta - grad * lr, slots


def _momentum(theta, grad, slots, lr, alpha, h):  # SGD with momentum, nesterov=False
    (m,) = slots
    m = m * h["momentum"] - grad * lr
    return theta + m, [m]


def _rmsprop(theta, grad, slots, lr, alpha, h):  # RMSprop: rho=0.9, epsilon=1e-7, no momentum, not centered
    import tensorflow as tf

    (v,) = slots
    v = RMSPROP_RHO * v + (1 - RMSPROP_RHO) * tf.square(grad)
    return theta - (lr * grad) / tf.sqrt(v + RMSPROP_EPSILON), [v]


def _adam(theta, grad, slots, lr, alpha, h):
    import tensorflow as tf

    m, v = slots
    m = m + (grad - m) * (1 - ADAM_BETA_1)
    v = v + (tf.square(grad) - v) * (1 - ADAM_BETA_2)
    return theta - (m * alpha) / (tf.sqrt(v) + ADAM_EPSILON), [m, v]


def _adamw(theta, grad, slots, lr, alpha, h):  # BaseOptimizer._apply_weight_decay before the Adam step
    return _adam(theta - theta * h["weight_decay"] * lr, grad, slots, lr, alpha, h)


def _keras(name: str, **options) -> Callable:
    def build(config):
        import keras

        extra = {key: getattr(config, field) for key, field in options.items()}
        return getattr(keras.optimizers, name)(config.learning_rate, **extra)

    return build


for _spec in (
    OptimizerSpec("sgd", "SGD", 0, _keras("SGD"), _sgd),
    OptimizerSpec("momentum", "SGD with momentum", 1, _keras("SGD", momentum="momentum"), _momentum),
    OptimizerSpec("rmsprop", "RMSprop", 1, _keras("RMSprop"), _rmsprop),
    OptimizerSpec("adam", "Adam", 2, _keras("Adam"), _adam, adam_alpha=True),
    OptimizerSpec("adamw", "AdamW", 2, _keras("AdamW", weight_decay="weight_decay"), _adamw, adam_alpha=True),
):
    register_optimizer(_spec)
