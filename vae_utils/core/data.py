"""Datasets for the book: bundled, generated or read from local files, split once with a fixed seed.

    from vae_utils import load_dataset
    ds = load_dataset("digits")       # ds.train, ds.val, ds.test: float32 (n, d)
    from vae_utils.core.data import available
    available("fashion_mnist")        # where its files are, or None (never raises, never downloads)

``digits``, ``moons`` and ``gaussian2d`` need nothing. ``fashion_mnist`` (Xiao et al. 2017) is read
with NumPy from its four IDX files (gzipped or plain), looked for in this order: the directory named
by the environment variable ``VAE_FASHION_MNIST_DIR``; Debian's package
(``apt-get install dataset-fashion-mnist``: /usr/share/datasets/fashion-mnist); the Keras download
cache (``$KERAS_HOME`` or ``~/.keras``, then ``datasets/fashion-mnist``). It is never downloaded: when
no place has the files, the error names the three places and the command that fills each.
``mnist`` comes from the Keras cache's ``mnist.npz`` (read with NumPy), downloaded by Keras only
where a network is reachable and ``VAE_UTILS_OFFLINE`` is unset.

The 28x28 datasets keep Keras' 60,000/10,000 train/test split and carve a fixed validation split of
10,000 images out of the training images (seeded); the test set is for reported test metrics only.
They are read once per process (a sweep's runs in one kernel share them), so their arrays are read-only.
``subsample(ds, train_size, held_out_size)`` keeps the first n of each split (``TrainConfig.train_size``,
``TrainConfig.held_out_size``): a fixed random subset, since every split is in a random order.

Bernoulli datasets keep ``train`` as intensities in [0, 1]: the training loop
binarizes each batch afresh (dynamic binarization, Burda et al. 2015).
``val`` and ``test`` are binarized once with a fixed seed, so held-out NLLs are
comparable across runs, seeds and configs.
"""

from __future__ import annotations

import dataclasses
import functools
import gzip
import math
import os
import socket
from collections.abc import Callable, Mapping
from dataclasses import dataclass, field

import numpy as np

__all__ = [
    "binarized_once",
    "Dataset",
    "DatasetSpec",
    "register_dataset",
    "DATASETS",
    "load_dataset",
    "available",
    "read_idx",
    "TRAIN_SIZES",
    "IMAGE_SHAPES",
    "FASHION_MNIST_ENV",
    "binarize",
    "binarize_tensor",
    "subsample",
    "HELD_OUT_SIZES",
]

VAL_FRACTION = 0.15  # held-out fractions for the small datasets
TEST_FRACTION = 0.15
BINARIZE_SEED = 12345  # fixed: the held-out binarization never changes


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


@dataclass(frozen=True)
class DatasetSpec:
    """One dataset, defined in one place: how to load it and what is known without loading it.

    ``register_dataset(DatasetSpec(...))`` adds one; ``DATASETS``, ``TRAIN_SIZES``, ``HELD_OUT_SIZES``
    and ``IMAGE_SHAPES`` are live views of the registry, so a registered dataset is validated,
    trained and costed like the built-in ones."""

    name: str
    load: Callable[[int], Dataset]  # split seed -> Dataset
    train_size: int  # training examples, known without loading (validates batch_size, train_size)
    held_out_size: int  # validation and test examples each (validates held_out_size)
    likelihood: str  # "bernoulli" or "gaussian"
    dim: int  # values per example (the sweep's cost estimate)
    image_shape: tuple[int, int] | None = None  # (height, width): image data, which the conv VAE can take
    source: str | None = None  # where it comes from when it needs no files
    locate: Callable[[], str | None] | None = None  # where its files are, or None; for data read from files
    title: str | None = None  # its name in figures, tables and scope lines ("Fashion-MNIST"); else ``name``


REGISTRY: dict[str, DatasetSpec] = {}


def register_dataset(spec: DatasetSpec) -> DatasetSpec:
    """Add ``spec`` to the registry (replacing one of the same name) and return it."""
    REGISTRY[spec.name] = spec
    return spec


class _SpecField(Mapping):
    """{dataset name: one field of its spec}, read live from the registry."""

    def __init__(self, attribute: str, skip_none: bool = False):
        self._attribute, self._skip_none = attribute, skip_none

    def _items(self) -> dict:
        values = {name: getattr(spec, self._attribute) for name, spec in REGISTRY.items()}
        return {k: v for k, v in values.items() if v is not None or not self._skip_none}

    def __getitem__(self, name):
        return self._items()[name]

    def __iter__(self):
        return iter(self._items())

    def __len__(self) -> int:
        return len(self._items())

    def __repr__(self) -> str:
        return repr(self._items())


DATASETS = REGISTRY.keys()  # the names, live
TRAIN_SIZES = _SpecField("train_size")
HELD_OUT_SIZES = _SpecField("held_out_size")  # validation and test sizes (equal for every dataset)
IMAGE_SHAPES = _SpecField("image_shape", skip_none=True)  # image datasets only


def subsample(ds: Dataset, train_size: int | None = None, held_out_size: int | None = None) -> Dataset:
    """``ds`` cut to its first ``train_size`` training examples and first ``held_out_size`` validation and test
    examples (``TrainConfig.train_size``, ``TrainConfig.held_out_size``); None keeps a split whole.

    Every split is already in a random order (the training and validation splits are drawn by the split seed;
    Fashion-MNIST's and MNIST's test files are shuffled), so the first n are a random subset, fixed and nested
    (the first 5,000 hold the first 1,000)."""
    if train_size is None and held_out_size is None:
        return ds
    cut = {}
    for name, n, splits in (("train_size", train_size, ("train",)), ("held_out_size", held_out_size, ("val", "test"))):
        if n is None:
            continue
        limit = min(len(getattr(ds, split)) for split in splits)
        if isinstance(n, bool) or not isinstance(n, (int, np.integer)) or not 1 <= n <= limit:
            raise ValueError(f"{name}={n!r} is not allowed; allowed: an integer from 1 to {limit}, or None")
        for split in splits:
            labels = getattr(ds, f"{split}_labels")
            cut |= {split: getattr(ds, split)[:n], f"{split}_labels": None if labels is None else labels[:n]}
    meta = {**ds.meta, "train_size": train_size, "held_out_size": held_out_size}
    return dataclasses.replace(ds, **cut, meta=meta)


def binarized_once(ds: Dataset) -> Dataset:
    """``ds`` with its training images binarized once, by a fixed seed (``TrainConfig.binarization
    = "static"``): every epoch then sees the same binary images, as in a static-binarization
    benchmark. Without it, training binarizes each batch afresh (dynamic binarization), which acts
    as an augmentation and makes overfitting much harder {Burda et al. 2016}."""
    if ds.likelihood != "bernoulli":
        raise ValueError(
            f"binarization='static' is not allowed for dataset={ds.name!r}; allowed: Bernoulli (image) data"
        )
    return dataclasses.replace(
        ds, train=binarize(ds.train, BINARIZE_SEED + 2), meta={**ds.meta, "binarization": "static"}
    )


def split_arrays(x, y, seed):
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
    (tr, va, te), _ = split_arrays(x, None, seed)
    return Dataset("gaussian2d", tr, va, te, "gaussian", meta={"source": "standard normal noise, as in the article"})


def _moons(seed):
    from sklearn.datasets import make_moons

    x, y = make_moons(n_samples=2000, noise=0.05, random_state=0)
    x = ((x - x.mean(0)) / x.std(0)).astype(np.float32)  # standardized: unit scale per axis
    (tr, va, te), (ytr, yva, yte) = split_arrays(x, y, seed)
    return Dataset("moons", tr, va, te, "gaussian", None, ytr, yva, yte, meta={"source": "sklearn make_moons"})


def _digits(seed):
    from sklearn.datasets import load_digits

    bunch = load_digits()
    x = (bunch.data / 16.0).astype(np.float32)  # 0..16 -> [0, 1]
    (tr, va, te), (ytr, yva, yte) = split_arrays(x, bunch.target, seed)
    va, te = binarize(va, BINARIZE_SEED), binarize(te, BINARIZE_SEED + 1)
    return Dataset("digits", tr, va, te, "bernoulli", (8, 8), ytr, yva, yte, meta={"source": "sklearn load_digits"})


_IMAGE_VAL_SIZE = 10_000  # mnist, fashion_mnist: validation images carved from the 60,000 training images

# Fashion-MNIST (Xiao et al. 2017): the four standard IDX files, looked for in FASHION_MNIST_ENV's
# directory, then Debian's package, then the Keras download cache; read with NumPy, never downloaded.
FASHION_MNIST_ENV = "VAE_FASHION_MNIST_DIR"
FASHION_MNIST_DEBIAN = "/usr/share/datasets/fashion-mnist"
IDX_FILES = {
    "train_images": "train-images-idx3-ubyte",
    "train_labels": "train-labels-idx1-ubyte",
    "test_images": "t10k-images-idx3-ubyte",
    "test_labels": "t10k-labels-idx1-ubyte",
}
_IDX_DTYPES = {0x08: ">u1", 0x09: ">i1", 0x0B: ">i2", 0x0C: ">i4", 0x0D: ">f4", 0x0E: ">f8"}


def read_idx(path) -> np.ndarray:
    """The array in one IDX file (LeCun's MNIST format), gzipped or plain, read with NumPy.

    Header: two zero bytes, a type byte (0x08 uint8, 0x09 int8, 0x0B int16, 0x0C int32,
    0x0D float32, 0x0E float64), the number of dimensions, then each size as a big-endian
    uint32; the values follow, big-endian, row-major. Raises ValueError on a malformed file."""
    with open(path, "rb") as f:
        raw = f.read()
    if raw[:2] == b"\x1f\x8b":  # the gzip magic number, whatever the file is called
        raw = gzip.decompress(raw)
    if len(raw) < 4 or raw[:2] != b"\0\0" or raw[2] not in _IDX_DTYPES:
        raise ValueError(f"path={str(path)!r} is not an IDX file; allowed: LeCun's IDX format, gzipped or plain")
    ndim, dtype = raw[3], np.dtype(_IDX_DTYPES[raw[2]])
    shape = tuple(int(s) for s in np.frombuffer(raw, ">u4", count=ndim, offset=4))
    offset = 4 + 4 * ndim
    if len(raw) - offset != math.prod(shape) * dtype.itemsize:
        raise ValueError(
            f"path={str(path)!r} holds {len(raw) - offset} data bytes; allowed: {math.prod(shape) * dtype.itemsize} "
            f"(shape {shape}, {dtype.name})"
        )
    return np.frombuffer(raw, dtype, offset=offset).reshape(shape).astype(dtype.newbyteorder("="))


def _keras_cache() -> str:
    return os.path.join(os.path.expanduser(os.environ.get("KERAS_HOME", "~/.keras")), "datasets")


def fashion_mnist_places() -> list[tuple[str, str]]:
    """Where Fashion-MNIST is looked for, in order: (what the place is, its directory)."""
    env = os.environ.get(FASHION_MNIST_ENV)
    return [
        (f"${FASHION_MNIST_ENV}", os.path.expanduser(env) if env else None),
        ("Debian's dataset-fashion-mnist", FASHION_MNIST_DEBIAN),
        ("the Keras cache", os.path.join(_keras_cache(), "fashion-mnist")),
    ]


def _idx_path(directory: str, stem: str) -> str | None:
    for name in (stem + ".gz", stem):
        path = os.path.join(directory, name)
        if os.path.isfile(path):
            return path
    return None


def _idx_directory() -> str | None:
    """The first place that holds all four Fashion-MNIST IDX files (gzipped or plain), or None."""
    for _, directory in fashion_mnist_places():
        if directory and all(_idx_path(directory, stem) for stem in IDX_FILES.values()):
            return directory
    return None


def _missing_fashion_mnist() -> RuntimeError:
    env, debian, keras_dir = (d for _, d in fashion_mnist_places())
    files = ", ".join(f"{stem}.gz" for stem in IDX_FILES.values())
    return RuntimeError(
        f"dataset='fashion_mnist' was not found; it needs the four IDX files ({files}, or unzipped) in one of: "
        f"1) the directory named by ${FASHION_MNIST_ENV} ({env or 'not set'}): put or link the files there; "
        f"2) {debian}: `sudo apt-get install dataset-fashion-mnist` (Debian, offline from the package mirror); "
        f"3) the Keras cache {keras_dir}: where a network exists, "
        '`python -c "import keras; keras.datasets.fashion_mnist.load_data()"`. '
        "Offline datasets that need nothing: 'digits', 'moons', 'gaussian2d'."
    )


def available(name: str) -> str | None:
    """Where dataset ``name`` would be read from (a directory, a file, or the bundled source), or None
    when its files are missing. Never raises for a known name and never reaches for the network."""
    if name not in DATASETS:
        raise ValueError(f"dataset={name!r} is not known; allowed: {', '.join(DATASETS)}")
    spec = REGISTRY[name]
    return spec.locate() if spec.locate is not None else spec.source


_GREY = np.arange(256).astype(np.float32) / 255.0  # uint8 grey level -> intensity in [0, 1]


def _image_dataset(name, x_train, y_train, x_test, y_test, seed, source) -> Dataset:
    """uint8 images: a seeded validation split of 10,000 carved from the training images,
    intensities in [0, 1] for training, validation and test binarized once with fixed seeds."""
    order = np.random.default_rng(seed).permutation(len(x_train))
    tr, va = order[_IMAGE_VAL_SIZE:], order[:_IMAGE_VAL_SIZE]
    flat = lambda x: _GREY[x.reshape(len(x), -1)]
    return Dataset(
        name,
        flat(x_train[tr]),
        binarize(flat(x_train[va]), BINARIZE_SEED),
        binarize(flat(x_test), BINARIZE_SEED + 1),
        "bernoulli",
        (28, 28),
        y_train[tr],
        y_train[va],
        y_test,
        meta={"source": source},
    )


def _stamp(paths) -> tuple:
    """The files' identities for the in-process cache: a replaced file is read again."""
    return tuple((p, os.stat(p).st_mtime_ns, os.stat(p).st_size) for p in paths)


@functools.lru_cache(maxsize=2)
def _read_images(name: str, stamp: tuple, seed: int) -> Dataset:
    """The 28x28 dataset ``name`` from the files in ``stamp``, split by ``seed``; kept per process (a
    sweep's runs in one kernel read and split the files once), so its arrays are made read-only."""
    paths = [p for p, _, _ in stamp]
    if name == "fashion_mnist":  # paths in IDX_FILES' order: train images, labels, test images, labels
        arrays = [read_idx(p) for p in paths]
        source = f"Fashion-MNIST (Xiao et al. 2017), IDX files in {os.path.dirname(paths[0])}"
    else:
        with np.load(paths[0]) as f:
            arrays = [f[key] for key in ("x_train", "y_train", "x_test", "y_test")]
        source = f"keras.datasets.mnist ({paths[0]})"
    ds = _image_dataset(name, *arrays, seed, source)
    for split in ("train", "val", "test", "train_labels", "val_labels", "test_labels"):
        getattr(ds, split).flags.writeable = False
    return ds


def _fashion_mnist(seed):
    directory = _idx_directory()
    if directory is None:
        raise _missing_fashion_mnist()
    return _read_images("fashion_mnist", _stamp(_idx_path(directory, stem) for stem in IDX_FILES.values()), seed)


def _network_reachable(host="storage.googleapis.com", port=443, timeout=3.0) -> bool:
    try:
        with socket.create_connection((host, port), timeout=timeout):
            return True
    except OSError:
        return False


def _mnist(seed):
    """MNIST from the Keras cache's mnist.npz (read with NumPy); downloaded by Keras where a network is."""
    path = os.path.join(_keras_cache(), "mnist.npz")
    if not os.path.isfile(path):
        if os.environ.get("VAE_UTILS_OFFLINE") or not _network_reachable():
            raise RuntimeError(
                f"dataset='mnist' is not in the Keras cache ({_keras_cache()}) and no network is reachable. "
                'Download it once on a connected machine with `python -c "import keras; keras.datasets.mnist.load_data()"` '
                f"and copy 'mnist.npz' into {_keras_cache()}, or use an offline dataset: 'digits', 'moons', 'gaussian2d'."
            )
        import keras

        keras.datasets.mnist.load_data()  # downloads mnist.npz into the cache
    return _read_images("mnist", _stamp([path]), seed)


def _mnist_file() -> str | None:
    path = os.path.join(_keras_cache(), "mnist.npz")
    return path if os.path.isfile(path) else None


for _spec in (
    DatasetSpec("gaussian2d", _gaussian2d, 700, 150, "gaussian", 2, source="generated (numpy)", title="2-D Gaussian"),
    DatasetSpec("digits", _digits, 1257, 270, "bernoulli", 64, (8, 8), source="bundled (sklearn load_digits)"),
    DatasetSpec("moons", _moons, 1400, 300, "gaussian", 2, source="generated (sklearn make_moons)"),
    DatasetSpec("mnist", _mnist, 50000, 10000, "bernoulli", 784, (28, 28), locate=_mnist_file, title="MNIST"),
    DatasetSpec(
        "fashion_mnist",
        _fashion_mnist,
        50000,
        10000,
        "bernoulli",
        784,
        (28, 28),
        locate=_idx_directory,
        title="Fashion-MNIST",
    ),
):
    register_dataset(_spec)


def load_dataset(name: str, seed: int = 0) -> Dataset:
    """Load dataset ``name`` with its train/val/test split drawn by ``seed``."""
    if name not in DATASETS:
        raise ValueError(f"dataset={name!r} is not known; allowed: {', '.join(DATASETS)}")
    if isinstance(seed, bool) or not isinstance(seed, (int, np.integer)) or seed < 0:
        raise ValueError(f"seed={seed!r} is not allowed; allowed: an integer >= 0")
    return REGISTRY[name].load(int(seed))
