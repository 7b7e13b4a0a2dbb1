"""Datasets (vae_utils.load_dataset): documented sizes, disjoint fixed splits, binarization, offline errors."""

import time

import numpy as np
import pytest
from sklearn.datasets import load_digits

from vae_utils import DATASETS, load_dataset
from vae_utils.data import TRAIN_SIZES

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


@pytest.mark.parametrize("name", ["mnist", "fashion_mnist"])
def test_keras_datasets_offline_fail_fast_with_instructions(name, tmp_path, monkeypatch):
    """With VAE_UTILS_OFFLINE=1 and an empty KERAS_HOME, mnist and fashion_mnist raise RuntimeError within
    seconds, saying the file is missing, where the cache is, how to download it and what works offline."""
    monkeypatch.setenv("VAE_UTILS_OFFLINE", "1")
    monkeypatch.setenv("KERAS_HOME", str(tmp_path))
    start = time.perf_counter()
    with pytest.raises(RuntimeError) as info:
        load_dataset(name)
    assert time.perf_counter() - start < 5.0
    message = str(info.value)
    assert f"dataset={name!r}" in message
    assert str(tmp_path / "datasets") in message  # where to put the file
    assert f"keras.datasets.{name}.load_data()" in message  # how to get it
    assert "digits" in message  # what to use instead


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


def test_every_listed_dataset_is_offline_or_a_keras_download():
    """DATASETS lists the three offline datasets and the two Keras ones, and no other."""
    assert set(DATASETS) == set(SIZES) | {"mnist", "fashion_mnist"}
