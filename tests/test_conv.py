"""The convolutional VAE (TrainConfig.architecture="conv"): the Keras example's layers, flat rows in and out,
and the same training loop as the MLP: it learns, it is deterministic, a divergence is a result.

The learning test trains on a slice of Fashion-MNIST and skips when the data are not installed;
the other tests use synthetic 28x28 images, so the conv path is tested on every machine.
"""

import dataclasses
import math
import re

import numpy as np
import pytest

from vae_utils import Dataset, TrainConfig, evaluate, independent_bernoulli_nll, train
from vae_utils.core import data
from vae_utils.core.model import ModelConfig, activation_width, build_vae
from vae_utils.core.training import activation_memory_mb

SKIP_FASHION = "Fashion-MNIST is not installed (apt-get install dataset-fashion-mnist, or set VAE_FASHION_MNIST_DIR)"
# One short conv run's shape: the learning and determinism tests share one compiled graph (same sizes).
N_TRAIN, N_HELD_OUT = 2048, 500
SHORT = dict(
    dataset="fashion_mnist",
    architecture="conv",
    hidden_units=(16,),
    latent_dim=8,
    batch_size=32,
    learning_rate=1e-3,
    epochs=2,
    eval_k=10,
)


def _conv_config(image_shape=(28, 28), latent_dim=2, hidden_units=(16,)):
    h, w = image_shape
    return ModelConfig(h * w, latent_dim, hidden_units, architecture="conv", image_shape=image_shape)


def _synthetic_images(n, seed):
    """28x28 intensities: a bright rectangle of random place and size on a dim background, per image."""
    rng = np.random.default_rng(seed)
    x = np.full((n, 28, 28), 0.05, np.float32)
    for img in x:
        top, left = rng.integers(0, 18, 2)
        height, width = rng.integers(6, 11, 2)
        img[top : top + height, left : left + width] = rng.uniform(0.7, 1.0)
    return x.reshape(n, 784)


@pytest.fixture(scope="module")
def synthetic():
    """A Dataset of synthetic 28x28 images (N_TRAIN training, N_HELD_OUT validation and test, binarized once)."""
    train_x, val_x, test_x = (_synthetic_images(n, s) for n, s in ((N_TRAIN, 0), (N_HELD_OUT, 1), (N_HELD_OUT, 2)))
    val_x, test_x = data.binarize(val_x, 0), data.binarize(test_x, 1)
    return Dataset("synthetic 28x28", train_x, val_x, test_x, "bernoulli", (28, 28))


# --- configuration ---------------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("values", "message"),
    [
        (dict(architecture="cnn"), "architecture='cnn' is not allowed; allowed: mlp, conv"),
        (dict(architecture="Conv"), "architecture='Conv' is not allowed; allowed: mlp, conv"),
        (dict(architecture=None), "architecture=None is not allowed; allowed: mlp, conv"),
        (
            dict(architecture="conv", dataset="moons"),
            "architecture='conv' is not allowed; allowed: mlp for dataset='moons' (conv needs an image dataset: "
            "digits, mnist, fashion_mnist)",
        ),
    ],
)
def test_architecture_is_validated_naming_the_field_the_value_and_what_is_allowed(values, message):
    """An unknown architecture, or conv on a dataset that is not images, raises ValueError with the one-line message."""
    with pytest.raises(ValueError, match=re.escape(message)):
        TrainConfig(**values)


def test_architecture_defaults_to_mlp_and_reads_from_text():
    """The default is the MLP; conv is accepted for the image datasets, also from a mapping of text."""
    assert TrainConfig().architecture == "mlp"
    for dataset in ("digits", "mnist", "fashion_mnist"):
        assert TrainConfig(dataset=dataset, architecture="conv").architecture == "conv"
    config = TrainConfig.from_dict({"dataset": "fashion_mnist", "architecture": "conv", "hidden_units": "16"})
    assert config == TrainConfig(dataset="fashion_mnist", architecture="conv", hidden_units=(16,))
    assert config.to_dict()["architecture"] == "conv"


@pytest.mark.parametrize("image_shape", [None, (28, 27), (30, 30), (6, 6)])
def test_a_conv_model_needs_an_image_shape_divisible_by_4_that_matches_the_input(image_shape):
    """ModelConfig(architecture="conv") refuses a missing image shape, sides not divisible by 4, or h * w != input_dim."""
    with pytest.raises(ValueError, match=re.escape(f"image_shape={image_shape!r} is not allowed")):
        ModelConfig(784, 2, (16,), architecture="conv", image_shape=image_shape)


# --- the model -------------------------------------------------------------------------------------


@pytest.mark.parametrize(("image_shape", "n"), [((28, 28), 5), ((8, 8), 3)])
def test_conv_vae_takes_and_returns_flat_rows(image_shape, n):
    """Encoder: (n, h*w) -> z_mean, z_log_var, z of (n, latent); decoder: (n, latent) -> (n, h*w) logits;
    the posterior heads as the training loop calls them."""
    config = _conv_config(image_shape, latent_dim=4)
    vae = build_vae(config, seed=0)
    x = np.random.default_rng(0).random((n, config.input_dim)).astype(np.float32)
    z_mean, z_log_var, z = vae.encoder(x)
    assert z_mean.shape == z_log_var.shape == z.shape == (n, 4)
    assert vae.decoder(z).shape == (n, config.input_dim) and vae(x).shape == (n, config.input_dim)
    assert [t.shape for t in vae.posterior(x)] == [(n, 4), (n, 4)]


def test_conv_vae_has_the_keras_examples_layers_and_parameter_counts():
    """With latent_dim=2 and hidden_units=(16,) the layers are the Keras example's (keras-io
    examples/generative/vae.py): 3x3 kernels, strides 2, 'same' padding, 32 then 64 filters, and its printed
    parameter counts, 69,076 in the encoder and 65,089 in the decoder."""
    vae = build_vae(_conv_config(), seed=0)
    assert vae.encoder.count_params() == 69_076 and vae.decoder.count_params() == 65_089
    convs = [layer for layer in vae.encoder.layers + vae.decoder.layers if "conv" in type(layer).__name__.lower()]
    assert [(type(c).__name__, c.filters, c.strides, c.padding) for c in convs] == [
        ("Conv2D", 32, (2, 2), "same"),
        ("Conv2D", 64, (2, 2), "same"),
        ("Conv2DTranspose", 64, (2, 2), "same"),
        ("Conv2DTranspose", 32, (2, 2), "same"),
        ("Conv2DTranspose", 1, (1, 1), "same"),
    ]
    assert all(c.kernel_size == (3, 3) for c in convs)
    assert [c.activation.__name__ for c in convs] == ["relu"] * 4 + ["linear"]  # logits out


def test_conv_initial_weights_are_drawn_from_the_seed():
    """One seed gives identical initial weights in two builds; another seed gives different ones in every kernel."""
    a, b, c = (build_vae(_conv_config(), seed=s) for s in (3, 3, 4))
    for wa, wb, wc in zip(a.get_weights(), b.get_weights(), c.get_weights(), strict=True):
        np.testing.assert_array_equal(wa, wb)
        if wa.ndim > 1:  # kernels (biases start at zero)
            assert not np.array_equal(wa, wc)


def test_conv_activation_memory_counts_every_feature_map():
    """28x28, hidden (16,), latent 8: per example 14*14*32 + 7*7*64 + 16 (encoder), 7*7*64 + 14*14*64 + 28*28*32
    (decoder), 5*8 (heads, noise, sample), 2*784 (input, logits) floats; twice that in bytes x 4 with the gradients."""
    config = _conv_config(latent_dim=8)
    width = 14 * 14 * 32 + 7 * 7 * 64 + 16 + 7 * 7 * 64 + 14 * 14 * 64 + 28 * 28 * 32 + 5 * 8 + 2 * 784
    assert activation_width(config) == width
    assert activation_memory_mb(config, 128) == pytest.approx(2 * 4 * 128 * width / 1e6)


# --- training --------------------------------------------------------------------------------------


@pytest.mark.slow
@pytest.mark.skipif(data.available("fashion_mnist") is None, reason=SKIP_FASHION)
def test_a_short_conv_run_on_fashion_mnist_improves_the_held_out_elbo_and_beats_independent_pixels():
    """Two epochs of Adam on 2,048 Fashion-MNIST images: the test ELBO rises above the untrained model's, the
    validation ELBO rises from the first epoch to the last, and the test NLL (IWAE) is below the NLL of
    independent Bernoulli pixels with the training means."""
    full = data.load_dataset("fashion_mnist")
    ds = dataclasses.replace(
        full,
        train=full.train[:N_TRAIN],
        val=full.val[:N_HELD_OUT],
        test=full.test[:N_HELD_OUT],
        train_labels=None,
        val_labels=None,
        test_labels=None,
    )
    config = TrainConfig(**SHORT)
    result = train(config, ds)
    untrained = evaluate(build_vae(config.model_config(784, "bernoulli", (28, 28)), seed=0), ds.test, k=10)
    m = result.metrics
    assert not m["diverged"] and m["steps"] == 2 * (N_TRAIN // 32)
    assert m["test_elbo"] > untrained["elbo"] + 50
    assert result.history["val_elbo"].iloc[-1] > result.history["val_elbo"].iloc[0]
    assert m["test_nll"] < independent_bernoulli_nll(ds.train, ds.test) - 10


@pytest.mark.slow
def test_a_conv_run_twice_gives_an_identical_history_metrics_and_weights(synthetic, assert_same_run):
    """Two one-epoch runs of one conv config on synthetic images: identical history (but wall time), metrics (but
    timing), step losses and weights; the run learns (test ELBO above the untrained model's)."""
    config = TrainConfig(**{**SHORT, "epochs": 1})  # the graph of the Fashion-MNIST run: traced once
    a, b = train(config, synthetic), train(config, synthetic)
    assert_same_run(a, b)
    untrained = evaluate(build_vae(a.model.config, seed=0), synthetic.test, k=10)
    assert a.metrics["test_elbo"] > untrained["elbo"] + 50
    assert a.metrics["activation_memory_mb"] == activation_memory_mb(a.model.config, 32)


@pytest.mark.slow
def test_a_diverging_conv_run_returns_normally_with_diverged_true(synthetic):
    """SGD at lr = 1e4 on the conv VAE: train() returns, diverged is True with its epoch and step, no test metrics."""
    small = dataclasses.replace(synthetic, train=synthetic.train[:256])
    result = train(TrainConfig(**{**SHORT, "optimizer": "sgd", "learning_rate": 1e4}), small)
    m = result.metrics
    assert m["diverged"] is True and m["divergence"] in ("training loss", "validation ELBO", "test metrics")
    assert isinstance(m["diverged_epoch"], int) and isinstance(m["diverged_step"], int)
    assert math.isnan(m["test_elbo"]) or m["divergence"] == "test metrics"
