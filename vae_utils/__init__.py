"""vae_utils: the toolkit behind the book *VAE Training Strategies*.

    from vae_utils import TrainConfig, train, load_dataset, evaluate
    result = train(TrainConfig(dataset="digits", batch_size=64, learning_rate=1e-3, epochs=30))
    print(result.metrics["test_elbo"], result.metrics["test_nll"])

Modules: ``data`` (datasets), ``model`` (encoder/decoder), ``objective`` (the ELBO and KL
schedules), ``training`` (``TrainConfig``, ``train``), ``evaluation`` (ELBO, IWAE NLL,
active units, reconstructions, samples), ``noise`` (gradient-noise scale), ``plots``.
"""

import os

os.environ.setdefault("TF_CPP_MIN_LOG_LEVEL", "2")  # keep TensorFlow's C++ start-up chatter out of notebooks
os.environ.setdefault("KERAS_BACKEND", "tensorflow")

from .data import DATASETS, Dataset, load_dataset  # noqa: E402
from .evaluation import evaluate, independent_bernoulli_nll  # noqa: E402
from .model import ModelConfig, build_vae  # noqa: E402
from .objective import KL_SCHEDULES  # noqa: E402
from .training import LR_SCHEDULES, OPTIMIZERS, TrainConfig, TrainResult, train  # noqa: E402

__version__ = "0.1.0"

__all__ = [
    "DATASETS",
    "Dataset",
    "load_dataset",
    "evaluate",
    "independent_bernoulli_nll",
    "ModelConfig",
    "build_vae",
    "LR_SCHEDULES",
    "OPTIMIZERS",
    "KL_SCHEDULES",
    "TrainConfig",
    "TrainResult",
    "train",
    "__version__",
]
