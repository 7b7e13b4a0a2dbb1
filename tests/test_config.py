"""Bad input is refused with a ValueError that names the field, the value and what is allowed.

TrainConfig checks every field when it is made; train(config, data=Dataset(...)) and evaluate()
check the arrays they are given (NaN, wrong shape, wrong feature count).
"""

import math
import re

import numpy as np
import pytest

from vae_utils import Dataset, TrainConfig, evaluate, train
from vae_utils.core.model import ModelConfig, build_vae


def _message(field, value):
    """The start of the promised message: the field and the repr of its value, then what is allowed."""
    return re.escape(f"{field}={value!r}") + r".*allowed"


BAD_FIELDS = [
    ("batch_size", 0),
    ("batch_size", -8),
    ("batch_size", 1258),  # digits has 1257 training examples
    ("batch_size", 32.5),
    ("batch_size", "64"),
    ("batch_size", True),
    ("batch_size", None),
    ("learning_rate", 0.0),
    ("learning_rate", -1e-3),
    ("learning_rate", math.nan),
    ("learning_rate", math.inf),
    ("learning_rate", "fast"),
    ("learning_rate", True),
    ("optimizer", "lbfgs"),
    ("optimizer", "Adam"),
    ("optimizer", None),
    ("dataset", "cifar10"),
    ("kl_schedule", "sigmoid"),
    ("lr_schedule", "step"),
    ("epochs", 0),
    ("epochs", 2.0),
    ("beta", -0.1),
    ("beta", math.nan),
    ("beta", "1"),
    ("latent_dim", 0),
    ("latent_dim", 2.5),
    ("seed", -1),
    ("seed", 1.0),
    ("hidden_units", (256, 0)),
    ("hidden_units", "256"),
    ("hidden_units", (128.0,)),
    ("kl_ratio", 0.0),
    ("kl_ratio", 1.5),
    ("free_bits", -0.5),
    ("momentum", 1.0),
    ("weight_decay", -1.0),
    ("decoder_variance", 0.0),
    ("eval_k", 0),
    ("kl_warmup_epochs", 0),
    ("kl_cycles", 0),
    ("lr_warmup_epochs", -1),
]


@pytest.mark.parametrize(("field", "value"), BAD_FIELDS, ids=[f"{f}={v!r}" for f, v in BAD_FIELDS])
def test_a_bad_train_config_field_raises_value_error_naming_field_value_and_what_is_allowed(field, value):
    """TrainConfig(**{field: value}) raises ValueError('<field>=<value!r> is not allowed; allowed: ...')."""
    with pytest.raises(ValueError, match=_message(field, value)):
        TrainConfig(**{field: value})


def test_batch_size_is_checked_against_the_named_datasets_training_set():
    """batch_size = 700 is fine for digits (1257 training examples) and refused for gaussian2d (700 -> 701 too many)."""
    assert TrainConfig(dataset="digits", batch_size=701).batch_size == 701
    assert TrainConfig(dataset="gaussian2d", batch_size=700).batch_size == 700
    with pytest.raises(ValueError, match=_message("batch_size", 701) + ".*700"):
        TrainConfig(dataset="gaussian2d", batch_size=701)


def test_a_good_config_is_frozen_hashable_and_normalises_numpy_scalars_and_lists():
    """NumPy scalars become Python numbers and a hidden_units list a tuple; the config is frozen and hashable."""
    config = TrainConfig(batch_size=np.int64(32), learning_rate=np.float32(0.5), hidden_units=[64, 32])
    assert type(config.batch_size) is int and type(config.learning_rate) is float
    assert config.hidden_units == (64, 32)
    assert config == TrainConfig(batch_size=32, learning_rate=0.5, hidden_units=(64, 32))
    assert hash(config) == hash(TrainConfig(batch_size=32, learning_rate=0.5, hidden_units=(64, 32)))
    with pytest.raises(AttributeError):
        config.batch_size = 8  # frozen
    assert config.to_dict()["hidden_units"] == [64, 32]


def test_train_refuses_something_that_is_not_a_config():
    """train({'batch_size': 64}) raises ValueError naming config."""
    with pytest.raises(ValueError, match=r"config='dict'.*allowed"):
        train({"batch_size": 64})


# --- arrays given to train(config, data=Dataset(...)) and to evaluate --------------------------------------

_RNG = np.random.default_rng(0)
_GOOD = _RNG.normal(size=(40, 2)).astype(np.float32)


def _with_nan(a):
    a = a.copy()
    a[3, 1] = np.nan
    return a


BAD_DATA = [
    ("data.train", dict(train=_with_nan(_GOOD)), r" holds 1 NaN.*allowed"),
    ("data.val", dict(val=_with_nan(_GOOD[:10])), r" holds 1 NaN.*allowed"),
    (
        "data.test",
        dict(test=np.where(_GOOD[:10] > 1, np.inf, _GOOD[:10])),
        r" holds \d+ NaN or infinite.*allowed",
    ),
    ("data.train", dict(train=_GOOD[:, 0]), r" has shape \(40,\).*allowed"),
    ("data.train", dict(train=_GOOD[:, :, None]), r" has shape \(40, 2, 1\).*allowed"),
    ("data.train", dict(train=_GOOD[:0]), r" has shape \(0, 2\).*allowed"),
    ("data.val", dict(val=_RNG.normal(size=(10, 3))), r" has 3 features; allowed: 2"),
    ("data.test", dict(test=_RNG.normal(size=(10, 1))), r" has 1 features; allowed: 2"),
    ("data.train", dict(train=np.full((40, 2), "a")), r" has dtype <U1.*allowed"),
]


@pytest.mark.parametrize(
    ("field", "change", "message"), BAD_DATA, ids=[f"{f}-{i}" for i, (f, _, _) in enumerate(BAD_DATA)]
)
def test_train_refuses_a_dataset_with_nan_or_the_wrong_shape(field, change, message):
    """train(config, data=Dataset(...)) with a NaN, infinite, non-2-D, empty or mis-sized split raises ValueError."""
    splits = {"train": _GOOD, "val": _GOOD[:10], "test": _GOOD[10:20], **change}
    data = Dataset("custom", splits["train"], splits["val"], splits["test"], "gaussian")
    with pytest.raises(ValueError, match=re.escape(field) + message):
        train(TrainConfig(batch_size=8, epochs=1, hidden_units=(4,), latent_dim=2), data=data)


def test_train_refuses_a_batch_larger_than_a_custom_training_set_and_bernoulli_data_outside_0_1():
    """batch_size 64 > 40 custom training examples, and Bernoulli intensities above 1, raise ValueError."""
    data = Dataset("custom", _GOOD, _GOOD[:10], _GOOD[10:20], "gaussian")
    with pytest.raises(ValueError, match=_message("batch_size", 64) + ".*40"):
        train(TrainConfig(batch_size=64, epochs=1), data=data)
    pixels = np.abs(_GOOD) * 2  # intensities up to ~5
    with pytest.raises(ValueError, match=r"data\.train=.*outside \[0, 1\].*allowed"):
        train(
            TrainConfig(batch_size=8, epochs=1), data=Dataset("custom", pixels, pixels[:5], pixels[5:10], "bernoulli")
        )
    with pytest.raises(ValueError, match=r"data='ndarray'.*allowed"):
        train(TrainConfig(batch_size=8, epochs=1), data=_GOOD)


@pytest.fixture(scope="module")
def small_model():
    """An untrained two-dimensional Gaussian VAE."""
    return build_vae(ModelConfig(input_dim=2, latent_dim=2, hidden_units=(4,), likelihood="gaussian"), seed=0)


@pytest.mark.parametrize(
    ("x", "message"),
    [
        (_with_nan(_GOOD), r"x holds 1 NaN or infinite values; allowed: finite"),
        (np.full((3, 2), np.inf), r"x holds 6 NaN or infinite values; allowed: finite"),
        (_GOOD[:, 0], r"x has shape \(40,\).*allowed: a 2-D array"),
        (_GOOD[None], r"x has shape \(1, 40, 2\).*allowed: a 2-D array"),
        (_RNG.normal(size=(5, 3)), r"x has 3 features; allowed: 2"),
        ([[1.0, "b"]], r"x has dtype <U.*allowed: a numeric array"),
    ],
    ids=["nan", "inf", "1-D", "3-D", "features", "strings"],
)
def test_evaluate_refuses_arrays_with_nan_or_the_wrong_shape(small_model, x, message):
    """evaluate(model, x) raises ValueError naming x, what is wrong with it, and what is allowed."""
    with pytest.raises(ValueError, match=message):
        evaluate(small_model, x, k=2)


@pytest.mark.parametrize("k", [0, -3, 2.5, True, "10"])
def test_evaluate_refuses_a_bad_number_of_importance_samples(small_model, k):
    """evaluate(..., k=k) with k not an integer >= 1 raises ValueError naming k."""
    with pytest.raises(ValueError, match=_message("k", k)):
        evaluate(small_model, _GOOD, k=k)
