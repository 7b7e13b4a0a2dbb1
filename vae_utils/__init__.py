"""vae_utils: the toolkit behind the book *VAE Training Strategies*.

    from vae_utils import TrainConfig, train, load_dataset, evaluate
    result = train(TrainConfig(dataset="digits", batch_size=64, learning_rate=1e-3, epochs=30))
    print(result.metrics["test_elbo"], result.metrics["test_nll"])

Modules: ``config`` (``TrainConfig``: one frozen, validated configuration per run), ``data``
(datasets, split once with a fixed seed), ``model`` (encoder/decoder in the Keras VAE example's
shape), ``objective`` (the negative ELBO, KL schedules), ``training`` (``train``: a compiled,
deterministic loop), ``fastpath`` (the fast MLP loop: flat parameters, XLA epochs, stacked
seeds), ``evaluation`` (held-out ELBO, IWAE NLL, active units), ``noise`` (gradient-noise
scale), ``stats`` (estimates and tests, one result type ``Estimate``), ``verdicts`` (the
article's claims: six outcomes under Holm), ``protocol`` (tune on some seeds, judge on others;
where training breaks), ``analysis`` (intervals over seeds, steps-to-target, the critical-batch
hyperbola, the best rate of a grid), ``plots`` (figures that take data and return a Figure),
``figures`` (citable figures glued into the book), ``tables`` (tables for people), ``labels``
(words for column names), ``provenance`` (code and library versions), ``slots`` (at most N
training processes at once), ``advisor`` (batch size and learning rate for a reader's data),
``article`` (the source article's program, corrected), ``pitfalls`` (a loss-reduction pitfall,
trained on purpose). The subpackage ``experiments`` runs grids through a papermill template
into a results store (``sweep``, ``load_results``); the book's build driver lives outside the
package, in the repository's ``bookdriver/``.

Names are imported on first use, so ``import vae_utils`` (and validating a config or a grid)
does not pay TensorFlow's ~6 s import; ``train``, ``evaluate`` and the model do.
"""

import importlib
import os

os.environ.setdefault("TF_CPP_MIN_LOG_LEVEL", "2")  # keep TensorFlow's C++ start-up chatter out of notebooks
os.environ.setdefault("KERAS_BACKEND", "tensorflow")

__version__ = "0.1.0"

_EXPORTS = {
    "config": ("TrainConfig", "OPTIMIZERS", "LR_SCHEDULES", "KL_SCHEDULES"),
    "data": ("DATASETS", "Dataset", "load_dataset"),
    "evaluation": ("evaluate", "independent_bernoulli_nll"),
    "model": ("ModelConfig", "build_vae"),
    "training": ("TrainResult", "train", "train_seeds"),
    "experiments": (
        "sweep",
        "expand_grid",
        "default_store",
        "load_results",
        "load_histories",
        "load_step_losses",
        "load_curves",
    ),
}
_WHERE = {name: module for module, names in _EXPORTS.items() for name in names}

__all__ = [*_WHERE, "__version__"]


def __getattr__(name):
    if name in _WHERE:
        value = getattr(importlib.import_module(f".{_WHERE[name]}", __name__), name)
        globals()[name] = value  # later look-ups skip this hook
        return value
    raise AttributeError(f"module 'vae_utils' has no attribute {name!r}")


def __dir__():
    return sorted([*globals(), *_WHERE])
