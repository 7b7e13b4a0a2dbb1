"""Datasets for the book: small, bundled or generated, split once with a fixed seed.

    from vae_utils import load_dataset
    ds = load_dataset("digits")       # ds.train, ds.val, ds.test: float32 (n, d)

Every loader works offline except ``mnist`` and ``fashion_mnist``, which use the
Keras loader's cache (``~/.keras/datasets``) and fail fast with instructions when
the file is missing and no network is reachable.

Bernoulli datasets keep ``train`` as intensities in [0, 1]: the training loop
binarizes each batch afresh (dynamic binarization, Burda et al. 2015).
``val`` and ``test`` are binarized once with a fixed seed, so held-out NLLs are
comparable across runs, seeds and configs.
"""

from __future__ import annotations

import os
import socket
from dataclasses import dataclass, field

import numpy as np

__all__ = ["Dataset", "DATASETS", "load_dataset", "TRAIN_SIZES", "binarize", "binarize_tensor"]

VAL_FRACTION = 0.15  # held-out fractions for the small datasets
TEST_FRACTION = 0.15
BINARIZE_SEED = 12345  # fixed: the held-out binarization never changes

DATASETS = ("gaussian2d", "digits", "moons", "mnist", "fashion_mnist")
# Training-set sizes, known without loading (used to validate batch_size).
TRAIN_SIZES = {"gaussian2d": 700, "digits": 1257, "moons": 1400, "mnist": 50000, "fashion_mnist": 50000}


@dataclass(frozen=True)
class Dataset:
    """Fixed train/validation/test splits of one dataset."""

    name: str
    train: np.ndarray  # float32 (n, d); Bernoulli data: intensities in [0, 1]
    val: np.ndarray  # float32 (n, d); Bernoulli data: binarized once
    test: np.ndarray  # float32 (n, d); Bernoulli data: binarized once
    likelihood: str  # "bernoulli" or "gaussian"
    image_shape: tuple[int, ...] | None = None  # (8, 8) for digits; None for 2-D point data
    train_labels: np.ndarray | None = None
    val_labels: np.ndarray | None = None
    test_labels: np.ndarray | None = None
    meta: dict = field(default_factory=dict)

    @property
    def dim(self) -> int:
        return int(self.train.shape[1])


def _split(x, y, seed):
    """Shuffle once with ``seed`` and cut into train/val/test by the fixed fractions."""
    n = len(x)
    order = np.random.default_rng(seed).permutation(n)
    n_test = round(TEST_FRACTION * n)
    n_val = round(VAL_FRACTION * n)
    test, val, train = order[:n_test], order[n_test : n_test + n_val], order[n_test + n_val :]
    pick = lambda a, idx: None if a is None else a[idx]
    return (x[train], x[val], x[test]), (pick(y, train), pick(y, val), pick(y, test))


def binarize(x, seed) -> np.ndarray:
    """One fixed binarization of intensities ``x`` in [0, 1]: each pixel is 1 with its intensity.

    Used for the held-out splits (drawn once, so held-out NLLs compare across runs) and for the
    training-set ELBO of the generalization gap."""
    rng = np.random.default_rng(seed)
    return (rng.random(np.shape(x)) < x).astype(np.float32)


def binarize_tensor(x, seed):
    """Dynamic binarization inside TensorFlow graphs (Burda et al. 2016): a fresh draw per ``seed``.

    ``seed`` is a stateless seed (a shape-[2] integer tensor), so a training step or a noise-scale
    batch can be replayed exactly."""
    import tensorflow as tf

    return tf.cast(tf.random.stateless_uniform(tf.shape(x), seed=seed) < x, x.dtype)


def _gaussian2d(seed):
    # The source article's data: np.random.seed(1); X = np.random.normal(size=(1000, 2)).
    x = np.random.RandomState(1).normal(size=(1000, 2)).astype(np.float32)
    (tr, va, te), _ = _split(x, None, seed)
    return Dataset("gaussian2d", tr, va, te, "gaussian", meta={"source": "standard normal noise, as in the article"})


def _moons(seed):
    from sklearn.datasets import make_moons

    x, y = make_moons(n_samples=2000, noise=0.05, random_state=0)
    x = ((x - x.mean(0)) / x.std(0)).astype(np.float32)  # standardized: unit scale per axis
    (tr, va, te), (ytr, yva, yte) = _split(x, y, seed)
    return Dataset("moons", tr, va, te, "gaussian", None, ytr, yva, yte, meta={"source": "sklearn make_moons"})


def _digits(seed):
    from sklearn.datasets import load_digits

    bunch = load_digits()
    x = (bunch.data / 16.0).astype(np.float32)  # 0..16 -> [0, 1]
    (tr, va, te), (ytr, yva, yte) = _split(x, bunch.target, seed)
    va, te = binarize(va, BINARIZE_SEED), binarize(te, BINARIZE_SEED + 1)
    return Dataset("digits", tr, va, te, "bernoulli", (8, 8), ytr, yva, yte, meta={"source": "sklearn load_digits"})


_KERAS_FILES = {"mnist": "mnist.npz", "fashion_mnist": "fashion-mnist"}


def _network_reachable(host="storage.googleapis.com", port=443, timeout=3.0) -> bool:
    try:
        with socket.create_connection((host, port), timeout=timeout):
            return True
    except OSError:
        return False


def _keras_images(name, seed):
    cache = os.path.join(os.path.expanduser(os.environ.get("KERAS_HOME", "~/.keras")), "datasets")
    cached = os.path.exists(os.path.join(cache, _KERAS_FILES[name]))
    if not cached and (os.environ.get("VAE_UTILS_OFFLINE") or not _network_reachable()):
        raise RuntimeError(
            f"dataset={name!r} is not in the Keras cache ({cache}) and no network is reachable. "
            f'Download it once on a connected machine with `python -c "import keras; keras.datasets.{name}.load_data()"` '
            f"and copy {_KERAS_FILES[name]!r} into {cache}, or use an offline dataset: 'digits', 'moons', 'gaussian2d'."
        )
    import keras

    (xtr, ytr), (xte, yte) = getattr(keras.datasets, name).load_data()
    xtr = xtr.reshape(len(xtr), -1).astype(np.float32) / 255.0
    xte = xte.reshape(len(xte), -1).astype(np.float32) / 255.0
    order = np.random.default_rng(seed).permutation(len(xtr))
    tr, va = order[10000:], order[:10000]
    return Dataset(
        name,
        xtr[tr],
        binarize(xtr[va], BINARIZE_SEED),
        binarize(xte, BINARIZE_SEED + 1),
        "bernoulli",
        (28, 28),
        ytr[tr],
        ytr[va],
        yte,
        meta={"source": f"keras.datasets.{name}"},
    )


_LOADERS = {"gaussian2d": _gaussian2d, "digits": _digits, "moons": _moons}


def load_dataset(name: str, seed: int = 0) -> Dataset:
    """Load dataset ``name`` with its train/val/test split drawn by ``seed``."""
    if name not in DATASETS:
        raise ValueError(f"dataset={name!r} is not known; allowed: {', '.join(DATASETS)}")
    if isinstance(seed, bool) or not isinstance(seed, (int, np.integer)) or seed < 0:
        raise ValueError(f"seed={seed!r} is not allowed; allowed: an integer >= 0")
    if name in _KERAS_FILES:
        return _keras_images(name, int(seed))
    return _LOADERS[name](int(seed))
