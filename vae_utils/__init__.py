"""vae_utils: the toolkit behind the book *VAE Training Strategies*.

    from vae_utils import TrainConfig, train, load_dataset, evaluate
    result = train(TrainConfig(dataset="digits", batch_size=64, learning_rate=1e-3, epochs=30))
    print(result.metrics["test_elbo"], result.metrics["test_nll"])

Subpackages, by purpose (README "Layout" draws them):

* ``core``: the training core (config, data, model, objective, optimizers, schedules, training,
  fastpath, evaluation, noise);
* ``claims``: the claims and their statistics (stats, verdicts, protocol, analysis);
* ``plots`` and ``publish``: figures that take data and return a Figure; numbered, cited figures and
  tables with provenance, and words for column names;
* ``experiments``: grids of runs through a papermill template into a results store (``sweep``,
  ``load_results``);
* ``advisor``: batch size and learning rate for a reader's own data;
* ``errata``: the source article's program, corrected, and a pitfall trained on purpose.

Beside them: ``cli`` (``python -m vae_utils``), ``provenance`` (code versions), ``cpuslots`` (at most
N training processes at once), ``fileio`` (atomic writes, JSON) and ``processes`` (Ctrl-C and
process trees). The book's build driver lives outside the package, in the repository's
``bookdriver/``.

Names are imported on first use, so ``import vae_utils`` (and validating a config or a grid)
does not pay TensorFlow's ~6 s import; ``train``, ``evaluate`` and the model do.
"""

import importlib
import os

os.environ.setdefault("TF_CPP_MIN_LOG_LEVEL", "2")  # keep TensorFlow's C++ start-up chatter out of notebooks
os.environ.setdefault("KERAS_BACKEND", "tensorflow")

from . import xlacache  # after the environment: TensorFlow reads the cache's flag when it loads

xlacache.enable()  # XLA's compiled programs shared by a build's processes, when $VAE_XLA_CACHE names a folder

__version__ = "0.1.0"

_EXPORTS = {
    "core.config": ("TrainConfig", "OPTIMIZERS", "LR_SCHEDULES", "KL_SCHEDULES"),
    "core.data": ("DATASETS", "Dataset", "load_dataset"),
    "core.evaluation": ("evaluate", "independent_bernoulli_nll"),
    "core.model": ("ModelConfig", "build_vae"),
    "core.training": ("TrainResult", "train", "train_seeds"),
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
