"""Datasets (vae_utils.load_dataset): documented sizes, disjoint fixed splits, binarization, offline errors;
the IDX reader and where Fashion-MNIST is looked for (with fake files in temporary directories)."""

import gzip
import re
import struct

import numpy as np
import pytest
from sklearn.datasets import load_digits

from vae_utils import DATASETS, load_dataset
from vae_utils.core import data
from vae_utils.core.data import FASHION_MNIST_ENV, TRAIN_SIZES, read_idx

SKIP_FASHION = "Fashion-MNIST is not installed (apt-get install dataset-fashion-mnist, or set VAE_FASHION_MNIST_DIR)"

SIZES = {  # (train, val, test, dim, likelihood)
    "gaussian2d": (700, 150, 150, 2, "gaussian"),
    "digits": (1257, 270, 270, 64, "bernoulli"),
    "moons": (1400, 300, 300, 2, "gaussian"),
}


@pytest.mark.parametrize("name", sorted(SIZES))
def test_offline_datasets_have_the_documented_split_sizes_dtype_and_likelihood(name):
    """train/val/test are float32 (n, d) arrays of the documented sizes; TRAIN_SIZES agrees with the loader."""
    ds = load_dataset(name)
    n_train, n_val, n_test, dim, likelihood = SIZES[name]
    assert [a.shape for a in (ds.train, ds.val, ds.test)] == [(n_train, dim), (n_val, dim), (n_test, dim)]
    assert all(a.dtype == np.float32 for a in (ds.train, ds.val, ds.test))
    assert ds.dim == dim and ds.likelihood == likelihood and ds.name == name
    assert TRAIN_SIZES[name] == n_train
    for split in ("train", "val", "test"):
        labels = getattr(ds, f"{split}_labels")
        assert labels is None or len(labels) == len(getattr(ds, split))


@pytest.mark.parametrize("name", ["gaussian2d", "moons"])
def test_point_data_splits_are_disjoint_and_cover_every_example(name):
    """The three splits of gaussian2d (1000 examples) and moons (2000) share no row and together hold them all."""
    ds = load_dataset(name)
    rows = np.concatenate([ds.train, ds.val, ds.test])
    assert len(rows) == sum(SIZES[name][:3])
    assert len(np.unique(rows, axis=0)) == len(rows)  # continuous data: equal rows would be the same example


def test_gaussian2d_is_the_articles_standard_normal_noise():
    """gaussian2d holds 1000 draws of a 2-D standard normal: mean 0 and variance 1 within 4 standard errors."""
    ds = load_dataset("gaussian2d")
    x = np.concatenate([ds.train, ds.val, ds.test]).astype(np.float64)
    assert x.shape == (1000, 2)
    assert np.all(np.abs(x.mean(axis=0)) < 4 / np.sqrt(1000))
    assert np.all(np.abs(x.var(axis=0) - 1) < 4 * np.sqrt(2 / 1000))
    assert ds.image_shape is None


def test_digits_train_is_intensities_and_val_test_are_binary_and_identical_across_calls():
    """digits: train holds intensities in [0, 1] (training binarizes each batch afresh); val and test are
    binarized once, in {0, 1}, and identical across calls, so held-out NLLs are comparable across runs."""
    a, b = load_dataset("digits"), load_dataset("digits")
    assert a.train.min() >= 0 and a.train.max() <= 1
    assert len(np.unique(a.train)) > 2  # grey levels survive in the training split
    for split in ("val", "test"):
        assert set(np.unique(getattr(a, split))) <= {0.0, 1.0}
        np.testing.assert_array_equal(getattr(a, split), getattr(b, split))
    np.testing.assert_array_equal(a.train, b.train)
    assert a.image_shape == (8, 8)


def test_digits_splits_are_disjoint_and_use_all_1797_images():
    """Each digits training row is a distinct original image; the remaining 540 images, and only they,
    can have produced the binarized val/test rows (1 only where the intensity is > 0, 0 only where it is < 1)."""
    ds = load_dataset("digits")
    bunch = load_digits()
    original = (bunch.data / 16.0).astype(np.float32)
    assert len(np.unique(original, axis=0)) == 1797  # no duplicate images: rows identify examples
    index = {row.tobytes(): i for i, row in enumerate(original)}
    train_ids = [index[row.tobytes()] for row in ds.train]
    assert len(set(train_ids)) == 1257
    rest = np.setdiff1d(np.arange(1797), train_ids)
    assert len(rest) == len(ds.val) + len(ds.test) == 540
    held_out = np.concatenate([ds.val, ds.test])
    held_labels = np.concatenate([ds.val_labels, ds.test_labels])
    np.testing.assert_array_equal(np.sort(held_labels), np.sort(bunch.target[rest]))
    for row, label in zip(held_out, held_labels, strict=True):  # a compatible source image exists among `rest`
        candidates = original[rest][bunch.target[rest] == label]
        compatible = np.all((row == 0) | (candidates > 0), axis=1) & np.all((row == 1) | (candidates < 1), axis=1)
        assert compatible.any()


@pytest.mark.parametrize("name", sorted(SIZES))
def test_splits_are_fixed_for_a_seed_and_change_with_it(name):
    """Two loads with one split seed give identical arrays and labels; another seed gives another split."""
    a, b, c = load_dataset(name, seed=0), load_dataset(name, seed=0), load_dataset(name, seed=1)
    for split in ("train", "val", "test"):
        np.testing.assert_array_equal(getattr(a, split), getattr(b, split))
        if a.train_labels is not None:
            np.testing.assert_array_equal(getattr(a, f"{split}_labels"), getattr(b, f"{split}_labels"))
    assert not np.array_equal(a.train, c.train)
    assert c.train.shape == a.train.shape


def test_mnist_offline_fails_fast_with_instructions(tmp_path, monkeypatch):
    """With VAE_UTILS_OFFLINE=1 and an empty KERAS_HOME, mnist raises RuntimeError without touching the
    network (any connection attempt fails this test, on any machine, with no clock involved), saying the
    file is missing, where the cache is, how to download it and what works offline."""
    import socket

    def no_network(*args, **kwargs):
        raise AssertionError(f"load_dataset('mnist') tried the network offline: {args}")

    monkeypatch.setenv("VAE_UTILS_OFFLINE", "1")
    monkeypatch.setenv("KERAS_HOME", str(tmp_path))
    monkeypatch.setattr(socket.socket, "connect", no_network)
    monkeypatch.setattr(socket, "getaddrinfo", no_network)
    with pytest.raises(RuntimeError) as info:
        load_dataset("mnist")
    message = str(info.value)
    assert "dataset='mnist'" in message
    assert str(tmp_path / "datasets") in message  # where to put the file
    assert "keras.datasets.mnist.load_data()" in message  # how to get it
    assert "digits" in message  # what to use instead
    assert data.available("mnist") is None


# --- the IDX reader and where Fashion-MNIST is looked for -------------------------------------------


def _write_idx(path, array, code):
    """An IDX file written by hand from the format's description: 0, 0, type code, ndim, big-endian sizes, data."""
    big_endian = {0x08: ">u1", 0x09: ">i1", 0x0B: ">i2", 0x0C: ">i4", 0x0D: ">f4", 0x0E: ">f8"}[code]
    header = bytes([0, 0, code, array.ndim]) + struct.pack(f">{array.ndim}I", *array.shape)
    raw = header + np.asarray(array).astype(big_endian).tobytes()
    if str(path).endswith(".gz"):
        raw = gzip.compress(raw, compresslevel=1)
    path.write_bytes(raw)
    return path


@pytest.mark.parametrize("suffix", ["", ".gz"])
@pytest.mark.parametrize(
    ("code", "dtype", "shape"),
    [(0x08, np.uint8, (5, 4, 3)), (0x08, np.uint8, (7,)), (0x0C, np.int32, (2, 3)), (0x0D, np.float32, (3, 2))],
)
def test_read_idx_returns_the_array_of_the_header_shape_and_type_from_plain_and_gzipped_files(
    tmp_path, code, dtype, shape, suffix
):
    """read_idx gives back exactly the array written: the shape of the header's sizes, the dtype of its
    type code (in native byte order), the values; the same whether the file is gzipped or not."""
    rng = np.random.default_rng(0)
    array = (rng.integers(0, 256, shape) if dtype == np.uint8 else rng.normal(size=shape) * 1000).astype(dtype)
    if dtype == np.int32:
        array = array - 500  # negative values survive the big-endian round trip
    out = read_idx(_write_idx(tmp_path / f"a-idx{suffix}", array, code))
    assert out.shape == shape and out.dtype == np.dtype(dtype) and out.dtype.isnative
    np.testing.assert_array_equal(out, array)


@pytest.mark.parametrize(
    ("content", "message"),
    [
        (b"PK\x03\x04 not an idx file", "is not an IDX file"),
        (bytes([0, 0, 0x08, 2]) + struct.pack(">2I", 3, 4) + bytes(11), "holds 11 data bytes; allowed: 12"),
        (bytes([0, 0, 0x42, 1]) + struct.pack(">I", 1) + bytes(1), "is not an IDX file"),
    ],
)
def test_read_idx_refuses_a_file_that_is_not_idx_or_is_cut_short(tmp_path, content, message):
    """Another format, an unknown type code, or fewer data bytes than the header promises raise ValueError naming the path."""
    path = tmp_path / "bad-idx"
    path.write_bytes(content)
    with pytest.raises(ValueError, match=re.escape(f"path={str(path)!r}") + ".*" + re.escape(message)):
        read_idx(path)


N_FAKE = 10_003  # training images of a fake Fashion-MNIST: 10,000 go to validation, 3 are left to train on


def _fake_fashion_mnist(directory, fill, gz=True):
    """The four IDX files of a fake Fashion-MNIST whose pixels all equal ``fill``: N_FAKE training images, 4 test images."""
    directory.mkdir(parents=True, exist_ok=True)
    sizes = {"train": N_FAKE, "t10k": 4}
    for split, n in sizes.items():
        ext = ".gz" if gz and split == "t10k" else ""  # gzipped and plain files side by side
        _write_idx(directory / f"{split}-images-idx3-ubyte{ext}", np.full((n, 28, 28), fill, np.uint8), 0x08)
        _write_idx(directory / f"{split}-labels-idx1-ubyte{ext}", (np.arange(n) % 10).astype(np.uint8), 0x08)
    return directory


@pytest.fixture
def places(tmp_path, monkeypatch):
    """Three empty places, standing in for $VAE_FASHION_MNIST_DIR, Debian's directory and the Keras cache."""
    env, debian, keras_home = tmp_path / "env", tmp_path / "debian", tmp_path / "keras"
    monkeypatch.setenv(FASHION_MNIST_ENV, str(env))
    monkeypatch.setattr(data, "FASHION_MNIST_DEBIAN", str(debian))
    monkeypatch.setenv("KERAS_HOME", str(keras_home))
    return {"env": env, "debian": debian, "keras": keras_home / "datasets" / "fashion-mnist"}


def test_fashion_mnist_is_looked_for_in_the_env_directory_then_debian_then_the_keras_cache(places, monkeypatch):
    """available() returns the first place holding all four files: the environment variable's directory, then
    Debian's, then the Keras cache; a place with a file missing is passed over; load_dataset reads from that place."""
    assert data.available("fashion_mnist") is None
    for name, fill in (("keras", 30), ("debian", 20), ("env", 10)):
        _fake_fashion_mnist(places[name], fill)
        assert data.available("fashion_mnist") == str(places[name])  # the new place comes first
    ds = load_dataset("fashion_mnist")
    assert ds.train.shape == (3, 784) and ds.val.shape == (10_000, 784) and ds.test.shape == (4, 784)
    np.testing.assert_array_equal(ds.train, np.float32(10 / 255))  # read from the env directory
    assert str(places["env"]) in ds.meta["source"]

    (places["env"] / "train-images-idx3-ubyte").unlink()  # incomplete: skipped
    assert data.available("fashion_mnist") == str(places["debian"])
    monkeypatch.delenv(FASHION_MNIST_ENV)
    assert data.available("fashion_mnist") == str(places["debian"])
    np.testing.assert_array_equal(load_dataset("fashion_mnist").train, np.float32(20 / 255))
    for stem in ("t10k-images-idx3-ubyte.gz", "train-labels-idx1-ubyte"):
        (places["debian"] / stem).unlink()
    assert data.available("fashion_mnist") == str(places["keras"])
    np.testing.assert_array_equal(load_dataset("fashion_mnist").train, np.float32(30 / 255))


def test_a_fake_fashion_mnist_is_split_and_binarized_like_the_real_one(places):
    """From the files: 10,000 of the training images go to validation (binarized once), the rest train (intensities
    in [0, 1]), the test images are binarized once; labels follow their images; the arrays cannot be written to."""
    _fake_fashion_mnist(places["env"], 255, gz=False)
    ds = load_dataset("fashion_mnist", seed=3)
    assert ds.likelihood == "bernoulli" and ds.image_shape == (28, 28) and ds.dim == 784
    assert [len(a) for a in (ds.train, ds.val, ds.test)] == [3, 10_000, 4]
    assert all(a.dtype == np.float32 for a in (ds.train, ds.val, ds.test))
    np.testing.assert_array_equal(ds.val, 1.0)  # intensity 1: every binarized pixel is on
    np.testing.assert_array_equal(ds.test_labels, [0, 1, 2, 3])
    labels = np.concatenate([ds.train_labels, ds.val_labels])
    np.testing.assert_array_equal(np.bincount(labels), np.bincount(np.arange(N_FAKE) % 10))
    with pytest.raises(ValueError, match="read-only"):
        ds.train[0, 0] = 0.5


def test_missing_fashion_mnist_names_the_three_places_and_how_to_fill_each(places):
    """With no place holding the files, available() is None (no exception) and load_dataset raises RuntimeError
    naming the environment variable and its value, Debian's directory and package, the Keras cache and its
    download command, and the datasets that need nothing."""
    _fake_fashion_mnist(places["keras"], 1)
    (places["keras"] / "t10k-labels-idx1-ubyte.gz").unlink()
    assert data.available("fashion_mnist") is None
    with pytest.raises(RuntimeError) as info:
        load_dataset("fashion_mnist")
    message = str(info.value)
    assert "dataset='fashion_mnist'" in message
    assert f"${FASHION_MNIST_ENV} ({places['env']})" in message
    assert f"{places['debian']}: `sudo apt-get install dataset-fashion-mnist`" in message
    assert str(places["keras"]) in message and "keras.datasets.fashion_mnist.load_data()" in message
    assert "t10k-labels-idx1-ubyte.gz" in message and "'digits'" in message


def test_available_answers_for_every_dataset_without_raising(places):
    """available() returns a place or a description for the bundled and generated datasets, None for missing files,
    and refuses only an unknown name."""
    assert data.available("digits") and data.available("moons") and data.available("gaussian2d")
    assert data.available("fashion_mnist") is None
    with pytest.raises(ValueError, match="dataset='cifar10' is not known; allowed"):
        data.available("cifar10")


@pytest.mark.slow
@pytest.mark.skipif(data.available("fashion_mnist") is None, reason=SKIP_FASHION)
def test_real_fashion_mnist_has_the_documented_splits_and_a_validation_split_carved_from_training():
    """Fashion-MNIST: 50,000 training intensities, 10,000 validation and 10,000 test images binarized once
    (1,000 of each class in the test set); fixed for a seed; each validation image is one of the 60,000 training
    images that did not go to training (its labels are exactly theirs, its pixels compatible with one of them)."""
    ds = load_dataset("fashion_mnist")
    assert [a.shape for a in (ds.train, ds.val, ds.test)] == [(50_000, 784), (10_000, 784), (10_000, 784)]
    assert TRAIN_SIZES["fashion_mnist"] == 50_000 and ds.image_shape == (28, 28)
    assert ds.train.min() >= 0 and ds.train.max() <= 1 and len(np.unique(ds.train[:100])) > 2
    assert set(np.unique(ds.val)) == set(np.unique(ds.test)) == {0.0, 1.0}
    np.testing.assert_array_equal(np.bincount(ds.test_labels), [1000] * 10)
    np.testing.assert_array_equal(load_dataset("fashion_mnist").val, ds.val)

    directory = data.available("fashion_mnist")
    raw = read_idx(data._idx_path(directory, "train-images-idx3-ubyte")).reshape(60_000, -1)
    raw_labels = read_idx(data._idx_path(directory, "train-labels-idx1-ubyte"))
    index = {row.tobytes(): i for i, row in enumerate(raw)}
    train_ids = {index[(row * 255).round().astype(np.uint8).tobytes()] for row in ds.train}
    rest = np.setdiff1d(np.arange(60_000), list(train_ids))
    assert len(rest) <= 10_000 + 60_000 - len(index)  # duplicates in the raw file aside, 10,000 are left
    np.testing.assert_array_equal(np.bincount(ds.val_labels, minlength=10), np.bincount(raw_labels[rest], minlength=10))
    intensity = raw[rest] / 255.0
    for row, label in zip(ds.val[:50], ds.val_labels[:50], strict=True):
        candidates = intensity[raw_labels[rest] == label]
        compatible = np.all((row == 0) | (candidates > 0), axis=1) & np.all((row == 1) | (candidates < 1), axis=1)
        assert compatible.any()


@pytest.mark.parametrize(
    ("kwargs", "message"),
    [
        (dict(name="cifar10"), r"dataset='cifar10' is not known; allowed: .*digits"),
        (dict(name="digits", seed=-1), r"seed=-1 is not allowed; allowed"),
        (dict(name="digits", seed=1.5), r"seed=1.5 is not allowed; allowed"),
        (dict(name="digits", seed=True), r"seed=True is not allowed; allowed"),
    ],
)
def test_load_dataset_refuses_unknown_names_and_bad_seeds(kwargs, message):
    """An unknown dataset name or a seed that is not an integer >= 0 raises ValueError naming it."""
    with pytest.raises(ValueError, match=message):
        load_dataset(**kwargs)


def test_every_listed_dataset_is_offline_or_one_of_the_two_28x28_image_sets():
    """DATASETS lists the three offline datasets, mnist and fashion_mnist, and no other."""
    assert set(DATASETS) == set(SIZES) | {"mnist", "fashion_mnist"}


# --- train_size, held_out_size: a fixed subset -----------------------------------------------------


def test_subsample_keeps_the_first_examples_of_each_split_and_refuses_sizes_out_of_range():
    """subsample(ds, n_train, n_held_out): the first rows and labels of the training split, and of the validation
    and test splits, nested in n; None keeps a split whole (both None: the dataset itself); a size outside
    1 .. the split's length is refused naming it."""
    ds = load_dataset("digits")
    small, smaller = data.subsample(ds, 100, 50), data.subsample(ds, 10)
    for split, n in (("train", 100), ("val", 50), ("test", 50)):
        np.testing.assert_array_equal(getattr(small, split), getattr(ds, split)[:n])
        np.testing.assert_array_equal(getattr(small, f"{split}_labels"), getattr(ds, f"{split}_labels")[:n])
    np.testing.assert_array_equal(smaller.train, small.train[:10])
    assert smaller.val is ds.val and smaller.test is ds.test and small.meta["train_size"] == 100
    assert data.subsample(ds) is ds
    for bad in (0, 1258, 2.5, True):
        with pytest.raises(
            ValueError, match=re.escape(f"train_size={bad!r} is not allowed; allowed: an integer from 1")
        ):
            data.subsample(ds, bad)
    with pytest.raises(
        ValueError, match=re.escape("held_out_size=271 is not allowed; allowed: an integer from 1 to 270")
    ):
        data.subsample(ds, None, 271)


@pytest.mark.parametrize(
    ("values", "message"),
    [
        (dict(train_size=-1), "train_size=-1 is not allowed; allowed: an integer from 1 to 1257"),
        (dict(train_size=1258), "train_size=1258 is not allowed; allowed: an integer from 1 to 1257"),
        (dict(train_size=100.0), "train_size=100.0 is not allowed"),
        (dict(train_size=100, batch_size=128), "batch_size=128 is not allowed; allowed: 1 .. 100 (train_size)"),
        (dict(held_out_size=271), "held_out_size=271 is not allowed; allowed: an integer from 1 to 270"),
        (dict(held_out_size=-1), "held_out_size=-1 is not allowed; allowed: an integer from 1 to 270"),
    ],
)
def test_subset_sizes_are_validated_against_the_dataset_and_the_batch_size(values, message):
    """train_size: an integer from 1 to the training-set size, at least the batch size; held_out_size: from 1 to
    the validation and test size."""
    from vae_utils import TrainConfig

    with pytest.raises(ValueError, match=re.escape(message)):
        TrainConfig(**values)


@pytest.mark.slow
def test_subset_sizes_read_from_text_and_a_run_trains_and_evaluates_on_that_many_examples():
    """from_dict reads "640" as 640 and "all" as None; train() with train_size=640 and batch 64 makes 10 updates
    an epoch (the whole digits training set would give 19), and its test metrics are those of the first 100 test
    images (the same weights evaluated there reproduce them)."""
    from vae_utils import TrainConfig, evaluate, train

    assert TrainConfig.from_dict({"train_size": "all", "held_out_size": "None"}) == TrainConfig()
    values = {"train_size": "640", "held_out_size": "100", "epochs": "2", "eval_k": "2", "hidden_units": "16"}
    config = TrainConfig.from_dict(values)
    assert (config.train_size, config.held_out_size) == (640, 100)
    result = train(config)
    assert result.metrics["steps"] == 20 and list(result.history["steps"]) == [10, 20]
    test = load_dataset("digits").test
    assert evaluate(result.model, test[:100], k=2)["elbo"] == pytest.approx(result.metrics["test_elbo"], rel=1e-6)
    assert evaluate(result.model, test, k=2)["elbo"] != pytest.approx(result.metrics["test_elbo"], rel=1e-6)
