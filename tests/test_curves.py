"""Validation curves within epochs (``TrainConfig.eval_every``): what chapter 04 reads the updates to a target from.

Contracts: with eval_every = k the run records the mean validation ELBO after every k-th update of
the run (counted across epochs); an evaluation that falls on an epoch's end equals that epoch's
history value; evaluating changes nothing about training; an evaluation of weights that do not move
equals the Keras model's single-sample ELBO with the same noise; seeds stacked together give the
curves of the seeds trained alone; the store records the curve and ``load_curves`` reads it back;
a value eval_every cannot take is refused with its name.
"""

import numpy as np
import pytest

from vae_utils import TrainConfig, build_vae, evaluate, load_dataset
from vae_utils.core.training import train, train_seeds
from vae_utils.experiments import load_curves, store

RUN = dict(dataset="digits", batch_size=128, learning_rate=3e-3, epochs=3, eval_k=5)  # 9 updates per epoch


@pytest.fixture(scope="module")
def every_three():
    """Three epochs of 9 updates, evaluated after updates 3, 6, ..., 27 (the epoch ends among them)."""
    return train(TrainConfig(**RUN, eval_every=3))


@pytest.mark.slow
def test_a_run_is_evaluated_after_every_kth_update_counted_across_epochs():
    result = train(TrainConfig(**RUN, eval_every=5))
    assert result.curve.steps.tolist() == [5, 10, 15, 20, 25]  # 27 updates; 10 and 20 fall inside epochs 2 and 3
    assert (result.curve.examples_seen == result.curve.steps * RUN["batch_size"]).all()
    assert np.isfinite(result.curve.val_elbo).all()


def test_an_evaluation_at_an_epochs_end_equals_that_epochs_validation_elbo(every_three):
    curve = every_three.curve.set_index("steps").val_elbo
    history = every_three.history.set_index("steps").val_elbo
    assert list(history.index) == [9, 18, 27]
    np.testing.assert_allclose(curve.loc[history.index].to_numpy(), history.to_numpy(), rtol=1e-6)
    assert curve.iloc[-1] > curve.iloc[0] + 3  # training moves the curve: the check above compares moving values


def test_evaluating_within_epochs_changes_nothing_about_training(every_three):
    plain = train(TrainConfig(**RUN))
    np.testing.assert_array_equal(plain.step_loss, every_three.step_loss)
    assert plain.metrics["test_elbo"] == every_three.metrics["test_elbo"]
    assert plain.curve.empty


@pytest.mark.slow
def test_an_evaluation_of_unmoved_weights_is_the_keras_models_single_sample_elbo():
    """A rate of 1e-30 leaves the weights where build_vae put them: every point of the curve is then the
    ELBO that evaluation.evaluate computes with the Keras model on the validation set, with the same noise."""
    config = TrainConfig(**{**RUN, "learning_rate": 1e-30, "epochs": 1}, eval_every=4, seed=3)
    result = train(config)
    data = load_dataset("digits")
    reference = evaluate(build_vae(config.model_config(data.dim, data.likelihood), seed=3), data.val, k=1, seed=3)
    assert result.curve.steps.tolist() == [4, 8]
    np.testing.assert_allclose(result.curve.val_elbo, reference["elbo"], rtol=1e-5)


@pytest.mark.slow
def test_seeds_trained_in_a_stack_give_the_curves_of_seeds_trained_alone(every_three):
    stacked = train_seeds([TrainConfig(**RUN, eval_every=3, seed=s) for s in (0, 1)])
    np.testing.assert_allclose(stacked[0].curve.val_elbo, every_three.curve.val_elbo, rtol=1e-4)
    assert not np.allclose(stacked[1].curve.val_elbo, stacked[0].curve.val_elbo)  # seed 1 is its own run


def test_the_store_records_the_curve_and_load_curves_reads_it_back(tmp_path, every_three):
    with store.claim(tmp_path, every_three.config) as run:
        run.record(every_three)
    curves = load_curves(tmp_path)
    assert curves.steps.tolist() == every_three.curve.steps.tolist()
    np.testing.assert_allclose(curves.val_elbo, every_three.curve.val_elbo)
    assert (curves.eval_every == 3).all() and (curves.batch_size == 128).all()


@pytest.mark.parametrize(
    ("change", "message"),
    [
        ({"eval_every": -1}, "eval_every=-1 is not allowed; allowed: an integer >= 0"),
        ({"eval_every": 2.5}, "eval_every=2.5 is not allowed"),
        (
            {"eval_every": 10, "architecture": "conv"},
            "eval_every=10 is not allowed; allowed: 0 for architecture='conv'",
        ),
    ],
)
def test_a_value_eval_every_cannot_take_is_refused_with_its_name(change, message):
    with pytest.raises(ValueError, match=message.replace("(", r"\(").replace(")", r"\)")):
        TrainConfig(**change)


def test_the_keras_engine_refuses_evaluations_within_epochs():
    with pytest.raises(
        ValueError, match="engine='keras' is not allowed; allowed: 'auto' or 'fast' when eval_every > 0"
    ):
        train(TrainConfig(**RUN, eval_every=3), engine="keras")
