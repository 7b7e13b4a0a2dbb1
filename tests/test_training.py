"""Training (vae_utils.train): determinism, learning, divergence, the loss reduction, schedules.

Also the source article's bugs, each turned into a test that it is absent here: z_log_var is a
learned head of the encoder; the KL term reaches training; the effective beta does not change
with the batch size.
"""

import math

import keras
import numpy as np
import pytest

import vae_utils
from vae_utils import Dataset, TrainConfig, evaluate, independent_bernoulli_nll, train
from vae_utils.core import fastpath
from vae_utils.core.config import LR_SCHEDULES
from vae_utils.core.model import build_vae
from vae_utils.core.optimizers import OPTIMIZERS
from vae_utils.core.schedules import hyper, learning_rate_at

SHORT = dict(dataset="digits", batch_size=64, learning_rate=1e-3, epochs=3, eval_k=20)
HISTORY_COLUMNS = {
    "epoch",
    "steps",
    "examples_seen",
    "wall_time_s",
    "loss",
    "reconstruction_loss",
    "kl_loss",
    "val_elbo",
    "learning_rate",
}


# --- determinism ------------------------------------------------------------------------------------


@pytest.mark.slow
@pytest.mark.parametrize("engine", ["fast", "keras"])
def test_one_config_run_twice_gives_an_identical_history_and_metrics(assert_same_run, engine):
    """Two runs of one config (either engine): identical history (but wall time), metrics (but timing), step
    losses and weights."""
    config = TrainConfig(**SHORT)
    assert_same_run(train(config, engine=engine), train(config, engine=engine))


@pytest.mark.slow
def test_runs_are_identical_with_a_fresh_compiled_trainer_and_after_other_runs_share_it(assert_same_run):
    """Clearing the compiled-trainer cache, or running another config through the same compiled graph in
    between, does not change a run: the cached trainer's weights and optimizer slots are reset."""
    for engine in ("fast", "keras"):
        config = TrainConfig(**SHORT)
        vae_utils.core.training._TRAINERS.clear()
        fastpath._TRAINERS.clear()
        first = train(config, engine=engine)
        train(TrainConfig(**{**SHORT, "learning_rate": 3e-3, "seed": 5}), engine=engine)  # same graph, other numbers
        assert_same_run(first, train(config, engine=engine))
        vae_utils.core.training._TRAINERS.clear()
        fastpath._TRAINERS.clear()
        assert_same_run(first, train(config, engine=engine))


@pytest.mark.slow
def test_different_seeds_give_different_histories():
    """Seeds 0 and 1 of one config give different training losses, validation ELBOs and test metrics."""
    a, b = train(TrainConfig(**SHORT, seed=0)), train(TrainConfig(**SHORT, seed=1))
    for column in ("loss", "reconstruction_loss", "kl_loss", "val_elbo"):
        assert not np.array_equal(a.history[column].to_numpy(), b.history[column].to_numpy()), column
    assert a.metrics["test_elbo"] != b.metrics["test_elbo"]


def test_a_returned_model_is_its_own_and_survives_later_runs(digits):
    """result.model reproduces result.metrics, also after another run has reused the same compiled trainer."""
    result = train(TrainConfig(**SHORT))
    before = evaluate(result.model, digits.test, k=20, seed=0)
    assert before["elbo"] == pytest.approx(result.metrics["test_elbo"], rel=1e-6)
    assert before["nll"] == pytest.approx(result.metrics["test_nll"], rel=1e-6)
    train(TrainConfig(**{**SHORT, "seed": 3}))
    assert evaluate(result.model, digits.test, k=20, seed=0) == before


# --- learning -----------------------------------------------------------------------------------------


def test_a_short_digits_run_improves_the_test_elbo_over_an_untrained_model(trained_digits, digits):
    """20 epochs of Adam raise the test ELBO by > 10 nats over the freshly initialised model of the same seed."""
    config = trained_digits.config
    untrained = build_vae(config.model_config(digits.dim, digits.likelihood), seed=config.seed)
    untrained_elbo = evaluate(untrained, digits.test, k=config.eval_k, seed=config.seed)["elbo"]
    assert trained_digits.metrics["test_elbo"] > untrained_elbo + 10.0, (trained_digits.metrics, untrained_elbo)
    history = trained_digits.history
    assert history["loss"].iloc[-1] < history["loss"].iloc[0] - 10.0
    assert history["val_elbo"].iloc[-1] > history["val_elbo"].iloc[0]


def test_a_short_digits_run_beats_the_independent_bernoulli_baseline_in_test_nll(trained_digits, digits):
    """Test NLL (IWAE, k = 200) is below the per-pixel independent-Bernoulli NLL by more than 1 nat."""
    baseline = independent_bernoulli_nll(digits.train, digits.test)
    assert trained_digits.metrics["test_nll"] < baseline - 1.0, (trained_digits.metrics["test_nll"], baseline)
    assert 0 < trained_digits.metrics["test_nll"] < -trained_digits.metrics["test_elbo"]


def test_history_and_metrics_have_the_documented_shape(trained_digits, digits):
    """One history row per epoch with the documented columns and counters; the documented metrics, finite."""
    h, m, config = trained_digits.history, trained_digits.metrics, trained_digits.config
    steps_per_epoch = len(digits.train) // config.batch_size
    assert set(h.columns) >= HISTORY_COLUMNS
    assert h["epoch"].tolist() == list(range(1, config.epochs + 1))
    assert h["steps"].tolist() == [steps_per_epoch * e for e in range(1, config.epochs + 1)]
    assert (h["examples_seen"] == h["steps"] * config.batch_size).all()
    assert (h["wall_time_s"] > 0).all() and h["wall_time_s"].is_monotonic_increasing
    assert np.isfinite(h[["loss", "reconstruction_loss", "kl_loss", "val_elbo"]].to_numpy()).all()
    assert len(trained_digits.step_loss) == steps_per_epoch * config.epochs
    for key in ("test_elbo", "test_nll", "wall_time_s", "samples_per_s", "peak_memory_mb"):
        assert math.isfinite(m[key]) and (m[key] > 0 or key == "test_elbo"), key
    assert m["test_elbo"] < 0
    assert len(m["kl_per_dim"]) == config.latent_dim
    assert 1 <= m["active_units"] <= config.latent_dim  # the latent code is used: no collapse on digits
    assert trained_digits.config == config and isinstance(trained_digits.model, keras.Model)


@pytest.mark.slow
@pytest.mark.parametrize(
    ("optimizer", "learning_rate"), [("sgd", 0.05), ("momentum", 0.01), ("rmsprop", 1e-3), ("adamw", 1e-3)]
)
def test_every_optimizer_trains_and_lowers_the_loss(optimizer, learning_rate):
    """Each optimizer (adam: the shared run) lowers the training loss over 3 epochs without diverging."""
    assert set(OPTIMIZERS) == {"sgd", "momentum", "rmsprop", "adam", "adamw"}
    result = train(TrainConfig(**{**SHORT, "batch_size": 128, "optimizer": optimizer, "learning_rate": learning_rate}))
    assert not result.metrics["diverged"]
    assert result.history["loss"].iloc[-1] < result.history["loss"].iloc[0] - 2.0


# --- divergence -------------------------------------------------------------------------------------


@pytest.mark.slow
def test_sgd_at_a_huge_learning_rate_returns_normally_with_diverged_true():
    """SGD at lr = 100 on digits: train() returns; diverged is True, the epoch and 1-based step are recorded,
    the steps before it are finite, and the test metrics are NaN."""
    result = train(TrainConfig(dataset="digits", optimizer="sgd", learning_rate=100.0, epochs=3, eval_k=10))
    m = result.metrics
    assert m["diverged"] is True
    assert isinstance(m["diverged_epoch"], int) and 1 <= m["diverged_epoch"] <= 3
    assert isinstance(m["diverged_step"], int) and m["diverged_step"] >= 1
    assert np.isfinite(result.step_loss[: m["diverged_step"] - 1]).all()
    assert len(result.step_loss) in (m["diverged_step"] - 1, m["diverged_step"])
    if len(result.step_loss) == m["diverged_step"]:  # the non-finite loss itself may be recorded
        assert not np.isfinite(result.step_loss[-1])
    assert math.isnan(m["test_elbo"]) and math.isnan(m["test_nll"])
    assert len(result.history) == m["diverged_epoch"]


def test_a_run_whose_held_out_bound_is_not_finite_is_reported_as_diverged():
    """Adam at lr = 0.1 keeps every training loss finite but breaks the model (test NLL not finite):
    the run is diverged, at its last epoch and step, with the reason recorded."""
    result = train(TrainConfig(dataset="digits", optimizer="adam", learning_rate=0.1, epochs=30, eval_k=50))
    m = result.metrics
    assert np.isfinite(result.step_loss).all()
    assert not (math.isfinite(m["test_nll"]) and math.isfinite(m["test_elbo"]))
    assert m["diverged"] is True and m["divergence"] == "test metrics"
    assert m["diverged_epoch"] == 30 and m["diverged_step"] == m["steps"]


def test_a_normal_run_does_not_diverge(trained_digits):
    """The shared digits run reports diverged False, no divergence epoch or step, and finite test metrics."""
    m = trained_digits.metrics
    assert m["diverged"] is False and m["diverged_epoch"] is None and m["diverged_step"] is None
    assert math.isfinite(m["test_elbo"]) and math.isfinite(m["test_nll"])


# --- the source article's bugs are absent -----------------------------------------------------------


def test_z_log_var_is_a_learned_dense_head_of_the_encoder_that_depends_on_x(trained_digits, digits):
    """z_log_var is the output of a trainable Dense layer named z_log_var fed by the hidden layer (not a
    function of the encoder's output), it moved during training, differs from z_mean and varies with x."""
    encoder, config = trained_digits.model.encoder, trained_digits.config
    head = encoder.get_layer("z_log_var")
    assert isinstance(head, keras.layers.Dense) and head is not encoder.get_layer("z_mean")
    assert head.input is encoder.get_layer("encoder_dense_0").output
    assert any(w is head.kernel for w in encoder.trainable_weights)
    initial = build_vae(config.model_config(digits.dim, digits.likelihood), seed=config.seed)
    assert not np.allclose(head.get_weights()[0], initial.encoder.get_layer("z_log_var").get_weights()[0])

    z_mean, z_log_var = (np.asarray(t) for t in trained_digits.model.posterior(digits.test[:100]))
    assert not np.allclose(z_log_var, z_mean)
    assert z_log_var.std(axis=0).max() > 0.05  # a different variance for different inputs
    _, one = trained_digits.model.posterior(digits.test[:1])
    np.testing.assert_allclose(np.asarray(one)[0], z_log_var[0], rtol=1e-5, atol=1e-6)  # this call's output


def test_the_kl_term_reaches_training():
    """beta = 0 and beta = 1 give different KL trajectories (beta = 0: the KL grows unchecked); a large beta
    shrinks the KL; the training loss is reconstruction + beta * KL in every epoch."""
    runs = {beta: train(TrainConfig(**{**SHORT, "epochs": 6, "beta": beta})) for beta in (0.0, 1.0, 8.0)}
    kl = {beta: r.history["kl_loss"].to_numpy() for beta, r in runs.items()}
    assert not np.allclose(kl[0.0], kl[1.0])
    assert kl[0.0][-1] > 5 * kl[1.0][-1]
    assert kl[8.0][-1] < kl[1.0][-1] and kl[8.0][-1] < kl[8.0][0]
    for beta, r in runs.items():
        h = r.history
        np.testing.assert_allclose(h["loss"], h["reconstruction_loss"] + beta * h["kl_loss"], rtol=1e-5)


@pytest.mark.slow
def test_the_effective_beta_and_the_loss_scale_do_not_depend_on_the_batch_size():
    """At batch sizes 1, 16 and 512 (one epoch, weights frozen by lr = 1e-30) the epoch's KL equals the
    analytic KL of the initial model averaged over the examples, its reconstruction equals the closed-form
    expected reconstruction within 4 standard errors, and loss = reconstruction + beta * KL.

    The source article summed the KL over the batch and averaged the reconstruction: there the KL
    (and so the effective beta) would grow 512-fold from batch 1 to batch 512.
    """
    rng = np.random.default_rng(0)
    x = rng.normal(size=(512, 3)).astype(np.float32)
    data = Dataset("toy", x, x[:50], x[50:100], "gaussian")
    beta = 2.5
    base = dict(optimizer="sgd", learning_rate=1e-30, epochs=1, latent_dim=2, hidden_units=(), beta=beta, eval_k=2)

    initial = build_vae(TrainConfig(**base).model_config(3, "gaussian"), seed=0)
    w_mu, b_mu = (v.astype(np.float64) for v in initial.encoder.get_layer("z_mean").get_weights())
    w_lv, b_lv = (v.astype(np.float64) for v in initial.encoder.get_layer("z_log_var").get_weights())
    w_dec, b_dec = (v.astype(np.float64) for v in initial.decoder.get_layer("x_mean").get_weights())
    x64 = x.astype(np.float64)
    mu, log_var = x64 @ w_mu + b_mu, x64 @ w_lv + b_lv
    kl = 0.5 * np.sum(mu**2 + np.exp(log_var) - 1 - log_var, axis=1)
    # -log N(x; W z + b, I) with z ~ q: mean and variance in closed form (a Gaussian quadratic form).
    r = x64 - mu @ w_dec - b_dec
    a_at = np.einsum("nl,ld,le->nde", np.exp(log_var), w_dec, w_dec)  # A A^T per example, A = W^T diag(sd)
    recon_mean = 0.5 * 3 * math.log(2 * math.pi) + 0.5 * (np.sum(r**2, axis=1) + np.trace(a_at, axis1=1, axis2=2))
    recon_var = 0.25 * (4 * np.einsum("nd,nde,ne->n", r, a_at, r) + 2 * np.einsum("nde,ned->n", a_at, a_at))
    recon_se = math.sqrt(recon_var.mean() / len(x))

    for batch_size in (1, 16, 512):
        h = train(TrainConfig(**base, batch_size=batch_size), data=data).history.iloc[0]
        assert h["kl_loss"] == pytest.approx(kl.mean(), rel=1e-5), batch_size
        assert abs(h["reconstruction_loss"] - recon_mean.mean()) < 4 * recon_se, (batch_size, h, recon_mean.mean())
        assert h["loss"] == pytest.approx(h["reconstruction_loss"] + beta * h["kl_loss"], rel=1e-5), batch_size


# --- KL and learning-rate schedules in training -----------------------------------------------------------


@pytest.mark.slow
def test_kl_schedules_weight_the_kl_in_training_as_documented():
    """In training, loss - reconstruction is: < 0.2 KL in the first linear warm-up epoch and beta * KL after it;
    beta * KL in the second (flat) half of each cycle; L * lambda under free bits while every dim is below lambda."""
    steps = 1257 // 64  # 19 steps per epoch; schedules are set in epochs
    linear = train(TrainConfig(**{**SHORT, "epochs": 6, "kl_schedule": "linear", "kl_warmup_epochs": 5})).history
    weighted = linear["loss"] - linear["reconstruction_loss"]
    assert weighted.iloc[0] < (steps - 1) / (5 * steps) * linear["kl_loss"].iloc[0] + 1e-6
    assert weighted.iloc[5] == pytest.approx(linear["kl_loss"].iloc[5], rel=1e-5)

    cyc = train(TrainConfig(**{**SHORT, "epochs": 4, "kl_schedule": "cyclical", "kl_cycles": 2, "kl_ratio": 0.5}))
    weighted = (cyc.history["loss"] - cyc.history["reconstruction_loss"]).to_numpy()
    kl = cyc.history["kl_loss"].to_numpy()
    np.testing.assert_allclose(weighted[[1, 3]], kl[[1, 3]], rtol=1e-5)  # flat halves: weight 1
    assert (weighted[[0, 2]] < (steps - 1) / steps * kl[[0, 2]] + 1e-6).all()  # ramps: weight t / 19 < 1

    free = train(TrainConfig(**{**SHORT, "epochs": 1, "kl_schedule": "free_bits", "free_bits": 10.0})).history
    assert free["kl_loss"].iloc[0] < 10.0  # so every one of the 8 dimensions is below lambda = 10
    assert (free["loss"] - free["reconstruction_loss"]).iloc[0] == pytest.approx(8 * 10.0, rel=1e-5)


@pytest.mark.parametrize(
    ("schedule", "step", "expected"),
    [
        ("constant", 0, 1.0),
        ("constant", 77, 1.0),
        ("warmup", 0, 0.1),  # linear from lr / W at step 0 ...
        ("warmup", 4, 0.5),
        ("warmup", 9, 1.0),  # ... to lr at step W - 1
        ("warmup", 60, 1.0),
        ("cosine", 0, 1.0),
        ("cosine", 25, 0.5 * (1 + math.cos(math.pi * 0.25))),
        ("cosine", 50, 0.5),
        ("cosine", 100, 0.0),
        ("warmup_cosine", 4, 0.5),  # warm-up first: no decay yet
        ("warmup_cosine", 10, 1.0),  # decay starts after W steps
        ("warmup_cosine", 60, 0.5),  # halfway through the T - W decay steps
        ("warmup_cosine", 85, 0.5 * (1 + math.cos(math.pi * 0.75))),
        ("warmup_cosine", 110, 0.0),
    ],
)
def test_learning_rate_at_matches_hand_computed_values(schedule, step, expected):
    """learning_rate_at with lr = 0.02, W = 10 warm-up steps, T = 100 (cosine) or 110 (warmup_cosine) total steps."""
    total = 110 if schedule == "warmup_cosine" else 100
    got = float(learning_rate_at(schedule, step, 0.02, warmup_steps=10, total_steps=total))
    assert got == pytest.approx(0.02 * expected, abs=1e-8)


@pytest.mark.slow
@pytest.mark.parametrize("schedule", [s for s in LR_SCHEDULES if s != "constant"])
def test_learning_rate_schedules_act_on_training(schedule):
    """History's learning_rate is the schedule at each epoch's last step; the schedule changes the updates:
    the first step's loss matches a constant-lr run, later steps do not."""
    config = dict(**{**SHORT, "epochs": 4, "lr_warmup_epochs": 2, "learning_rate": 3e-3})
    run, constant = train(TrainConfig(**config, lr_schedule=schedule)), train(TrainConfig(**config))
    steps = 1257 // 64
    expected = [learning_rate_at(schedule, steps * e - 1, 3e-3, 2 * steps, 4 * steps) for e in range(1, 5)]
    np.testing.assert_allclose(run.history["learning_rate"], [float(v) for v in expected], rtol=1e-6)
    assert run.step_loss[0] == constant.step_loss[0]  # same initial weights and first batch
    assert not np.array_equal(run.step_loss[2:], constant.step_loss[2:])


@pytest.mark.parametrize("kl_schedule", ["constant", "linear", "cyclical", "free_bits"])
def test_the_compiled_step_minimizes_the_objective_the_book_prints(kl_schedule, digits):
    """The loss of one compiled update equals ``objective.negative_elbo`` on the same batch and noise,
    with the KL schedule's weight at that step as beta and, under free bits, the floor: training
    calls the function the code chapter shows, it does not rebuild the loss inline."""
    import tensorflow as tf

    from vae_utils.core import training
    from vae_utils.core.data import binarize
    from vae_utils.core.model import reparameterize
    from vae_utils.core.objective import kl_weight, negative_elbo

    config = TrainConfig(kl_schedule=kl_schedule, kl_warmup_epochs=3, epochs=6, free_bits=0.4, beta=2.0)
    model_config = config.model_config(digits.dim, digits.likelihood)
    trainer = training._Trainer(model_config, config, len(digits.train))
    trainer.reset(build_vae(model_config, seed=4))
    steps_per_epoch = len(digits.train) // config.batch_size
    h = hyper(config, steps_per_epoch)
    xb = tf.constant(binarize(digits.train[:64], 0))
    eps = tf.constant(np.random.default_rng(1).standard_normal((64, config.latent_dim)).astype(np.float32))
    step = 40  # inside the warm-up and the first cycle: the weight is neither 0 nor beta
    z_mean, z_log_var = trainer.vae.posterior(xb, training=True)
    decoded = trainer.vae.decoder(reparameterize(z_mean, z_log_var, eps), training=True)
    weight = kl_weight(kl_schedule, step, config.epochs * steps_per_epoch, config.beta, 3 * steps_per_epoch, 4, 0.5)
    free_bits = config.free_bits if kl_schedule == "free_bits" else None
    expected = negative_elbo(xb, decoded, z_mean, z_log_var, "bernoulli", weight, free_bits=free_bits)
    got = training._compile_step(trainer.vae, trainer.optimizer, config)(xb, eps, tf.constant(step), h)
    np.testing.assert_allclose([float(v) for v in got], [float(v) for v in expected], rtol=1e-6)
    if kl_schedule in ("linear", "cyclical"):
        assert 0 < float(weight) < config.beta


@pytest.mark.slow
def test_static_binarization_trains_on_one_fixed_draw_and_can_overfit_where_dynamic_does_not(digits):
    """binarization='static' binarizes the training images once (the same draw for every seed and
    epoch): on 300 images for 150 epochs the training ELBO pulls away from the validation ELBO by
    two nats or more, while dynamic binarization, a fresh draw every epoch, keeps the gap small."""
    from vae_utils.core.data import binarized_once

    fixed = binarized_once(digits)
    assert set(np.unique(fixed.train)) == {0.0, 1.0} and np.array_equal(fixed.train, binarized_once(digits).train)
    gaps = {}
    for how in ("static", "dynamic"):
        m = train(TrainConfig(binarization=how, train_size=300, epochs=150, batch_size=32, eval_k=5), digits).metrics
        gaps[how] = m["train_elbo"] - m["val_elbo"]
    assert gaps["static"] > 2.0 and gaps["static"] > gaps["dynamic"] + 1.5, gaps
    with pytest.raises(ValueError, match="binarization='sometimes' is not allowed"):
        TrainConfig(binarization="sometimes")
