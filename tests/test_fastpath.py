"""The fast path (vae_utils.core.fastpath) and multi-seed training (train_seeds): same results as the Keras path.

Contracts: for every optimizer, learning-rate schedule and KL schedule the book uses, the fast path
gives the reference (Keras model and optimizer) path's losses, validation ELBOs and held-out metrics
within float32 rounding; seeds trained together in one stack give the runs trained one by one; a
stack trained twice is bit-identical; a seed that diverges stops alone, its record says so, and the
others are unaffected; the objective of a stack is negative_elbo per member; the weights round-trip
between the flat vector and the Keras layers; a sweep trains a config's seeds as one stack while
claiming and recording each run on its own.
"""

import math

import keras
import numpy as np
import pytest
import tensorflow as tf

from vae_utils import Dataset, TrainConfig, build_vae, evaluate
from vae_utils.core import draws, fastpath, training
from vae_utils.core.config import FIELDS
from vae_utils.core.objective import negative_elbo
from vae_utils.core.schedules import hyper
from vae_utils.core.training import seed_groups, train, train_seeds
from vae_utils.experiments import runner, store, sweep
from vae_utils.experiments.grid import expand_grid

SHORT = dict(dataset="digits", batch_size=128, learning_rate=3e-3, epochs=3, eval_k=20)
METRICS = ("test_elbo", "test_nll", "test_reconstruction_loss", "test_kl_loss", "val_elbo", "train_elbo")


def _assert_close_runs(a, b, atol=2e-3, hinge=False):
    """Two results of one config agree within float32 rounding (amplified a little by training):
    every update's loss, every history column but time, the held-out metrics, the weights."""
    np.testing.assert_allclose(a.step_loss, b.step_loss, rtol=1e-4, atol=atol)
    columns = ["epoch", "steps", "examples_seen", "loss", "reconstruction_loss", "kl_loss", "val_elbo", "learning_rate"]
    np.testing.assert_allclose(a.history[columns].to_numpy(), b.history[columns].to_numpy(), rtol=1e-4, atol=atol)
    for key in METRICS:
        assert a.metrics[key] == pytest.approx(b.metrics[key], rel=1e-4, abs=atol), key
    np.testing.assert_allclose(a.metrics["kl_per_dim"], b.metrics["kl_per_dim"], rtol=1e-3, atol=atol)
    assert a.metrics["active_units"] == b.metrics["active_units"]
    assert a.metrics["diverged"] == b.metrics["diverged"]
    for wa, wb in zip(a.model.get_weights(), b.model.get_weights(), strict=True):
        if hinge:  # a few weights of a unit at the free-bits hinge move apart: compare each matrix as a whole
            assert np.linalg.norm(wa - wb) <= 1e-2 * np.linalg.norm(wb) + 1e-4
        else:
            # A hidden unit whose input sits at the ReLU's kink for some example switches on in one engine and
            # off in the other by float32 rounding; Adam then moves that unit's weights apart by up to ~1e-3
            # (AdamW after 3 epochs on an Intel Xeon: 8 of 16,384 first-layer weights, all of units 80 and 102).
            # So all but 0.1 % of each matrix's weights agree to 1e-3, and each matrix as a whole to 1e-3.
            close = np.isclose(wa, wb, rtol=1e-3, atol=1e-4)
            assert close.mean() >= 0.999, f"{np.size(close) - close.sum()} of {np.size(close)} weights differ"
            assert np.linalg.norm(wa - wb) <= 1e-3 * np.linalg.norm(wb) + 1e-4


# --- the same results as the Keras path -------------------------------------------------------------


CASES = [
    *({"optimizer": o} for o in ("adam", "sgd", "momentum", "rmsprop", "adamw")),
    *({"lr_schedule": s} for s in ("warmup", "cosine", "warmup_cosine")),
    *({"kl_schedule": s} for s in ("linear", "cyclical", "free_bits")),
    {"optimizer": "sgd", "learning_rate": 0.05, "lr_schedule": "warmup_cosine", "kl_schedule": "cyclical"},
]


@pytest.mark.slow
@pytest.mark.parametrize("change", CASES, ids=lambda c: "-".join(map(str, c.values())))
def test_the_fast_path_gives_the_keras_paths_results_within_float32_rounding(change):
    """Per optimizer and schedule (lr warm-up of 1 epoch, KL warm-up of 2): the same step losses, history,
    held-out metrics and weights as the Keras model and optimizer, to about four significant digits."""
    config = TrainConfig(**{**SHORT, "lr_warmup_epochs": 1, "kl_warmup_epochs": 2, "free_bits": 0.5, **change})
    fast, keras_path = train(config, engine="fast"), train(config, engine="keras")
    assert not np.array_equal(fast.step_loss, np.zeros_like(fast.step_loss))
    # Free bits' hinge max(KL_d, λ) switches a dimension's gradient on or off by float32 rounding when
    # its KL sits at λ; on some CPUs' kernels (an Intel Xeon here) the weights of that one unit then end
    # up to 3e-3 apart after 4 epochs, so there weights compare as whole matrices (losses, history and
    # metrics as tightly as in every other case).
    _assert_close_runs(fast, keras_path, hinge=config.kl_schedule == "free_bits")


@pytest.mark.slow
@pytest.mark.parametrize(
    ("dataset", "change"),
    [
        ("moons", {"hidden_units": (32, 16), "latent_dim": 2}),
        ("gaussian2d", {"decoder_variance": None, "latent_dim": 2}),
    ],
)
def test_the_fast_path_covers_gaussian_data_deeper_mlps_and_a_learned_decoder_variance(dataset, change):
    """Gaussian likelihood (fixed or learned variance), two hidden layers, no hidden layer mismatch: Keras path results."""
    config = TrainConfig(**{**SHORT, "dataset": dataset, "batch_size": 64, "optimizer": "adamw", **change})
    fast, keras_path = train(config, engine="fast"), train(config, engine="keras")
    _assert_close_runs(fast, keras_path, atol=1e-4)
    if change.get("decoder_variance", 1.0) is None:  # the learned log-variance moved, in both paths alike
        assert not np.allclose(fast.model.decoder_log_var.numpy(), 0.0)
        np.testing.assert_allclose(
            fast.model.decoder_log_var.numpy(), keras_path.model.decoder_log_var.numpy(), atol=1e-4
        )


def test_the_fast_path_is_what_train_uses_for_the_mlp_and_it_is_deterministic(timing_keys):
    """train() with the default engine equals engine="fast" bit for bit, and two calls agree bit for bit."""
    config = TrainConfig(**SHORT)
    a, b = train(config), train(config, engine="fast")
    pd_equal = lambda x, y: np.testing.assert_array_equal(
        x.history.drop(columns="wall_time_s").to_numpy(), y.history.drop(columns="wall_time_s").to_numpy()
    )
    pd_equal(a, b)
    np.testing.assert_array_equal(a.step_loss, b.step_loss)
    strip = lambda m: {k: v for k, v in m.items() if k not in timing_keys}
    assert strip(a.metrics) == strip(b.metrics)


def test_a_result_model_is_a_keras_vae_built_on_first_use_that_reproduces_the_metrics(digits):
    """result.model is a Keras VAE of build_vae with the trained weights: its evaluation gives result.metrics."""
    result = train(TrainConfig(**SHORT))
    model = result.model
    assert isinstance(model, keras.Model) and model is result.model  # built once
    assert model.encoder.get_layer("z_mean") is not model.encoder.get_layer("z_log_var")
    again = evaluate(model, digits.test, k=20, seed=0)
    assert again["elbo"] == pytest.approx(result.metrics["test_elbo"], rel=1e-6)
    assert again["nll"] == pytest.approx(result.metrics["test_nll"], rel=1e-6)


# --- several seeds in one stack -------------------------------------------------------------------------


@pytest.mark.slow
def test_seeds_trained_together_equal_seeds_trained_one_by_one():
    """train_seeds of four seeds (one stack) gives each seed's train() result within float32 rounding, in order,
    each with its own config; the stack size is recorded. One epoch (39 RMSprop updates): over three, the
    batched products' rounding on an Intel Xeon grows past 1e-4 relative in the step losses."""
    configs = [
        TrainConfig(**{**SHORT, "batch_size": 32, "epochs": 1, "optimizer": "rmsprop", "seed": s}) for s in (3, 0, 7, 1)
    ]
    together = train_seeds(configs)
    assert [r.config for r in together] == configs
    for config, result in zip(configs, together, strict=True):
        _assert_close_runs(result, train(config))
        assert result.metrics["group_size"] == 4
    assert together[0].metrics["test_elbo"] != together[1].metrics["test_elbo"]  # the seeds differ


@pytest.mark.slow
def test_a_stack_trained_twice_is_bit_identical(timing_keys):
    """Two calls of train_seeds on the same configs: identical histories, step losses, metrics and weights."""
    configs = [TrainConfig(**{**SHORT, "kl_schedule": "cyclical", "seed": s}) for s in range(3)]
    fastpath._TRAINERS.clear()
    first = train_seeds(configs)
    second = train_seeds(configs)  # the compiled stack reused
    strip = lambda m: {k: v for k, v in m.items() if k not in timing_keys}
    for a, b in zip(first, second, strict=True):
        np.testing.assert_array_equal(a.step_loss, b.step_loss)
        np.testing.assert_array_equal(
            a.history.drop(columns="wall_time_s").to_numpy(), b.history.drop(columns="wall_time_s").to_numpy()
        )
        assert strip(a.metrics) == strip(b.metrics)
        for wa, wb in zip(a.model.get_weights(), b.model.get_weights(), strict=True):
            np.testing.assert_array_equal(wa, wb)


@pytest.mark.slow
def test_a_diverging_seed_in_a_stack_stops_alone_and_says_so():
    """SGD with momentum at lr 0.27: seeds 3 and 1 diverge in epoch 2, seed 0 in epoch 1, seed 2 does not. In one
    stack each diverging seed reports the epoch, step and reason train() reports alone, with NaN held-out
    metrics and the history up to that epoch; seed 2's run equals its run alone."""
    configs = [
        TrainConfig(**{**SHORT, "batch_size": 64, "optimizer": "momentum", "learning_rate": 0.27, "seed": s})
        for s in (3, 2, 0, 1)
    ]
    together = train_seeds(configs)
    alone = [train(c) for c in configs]
    assert [r.metrics["diverged"] for r in alone] == [True, False, True, True], "pick another lr: no mixed stack"
    assert len({r.metrics["diverged_epoch"] for r in alone if r.metrics["diverged"]}) > 1  # stops at different epochs
    for a, b in zip(together, alone, strict=True):
        m, ref = a.metrics, b.metrics
        assert (m["diverged"], m["divergence"], m["diverged_epoch"]) == (
            ref["diverged"],
            ref["divergence"],
            ref["diverged_epoch"],
        )
        if ref["diverged"]:
            assert abs(m["diverged_step"] - ref["diverged_step"]) <= 1
            assert math.isnan(m["test_elbo"]) and math.isnan(m["test_nll"])
            assert len(a.history) == ref["diverged_epoch"] and not np.isfinite(a.step_loss[-1])
            n = m["diverged_step"] - 6  # before the blow-up, the losses agree
            np.testing.assert_allclose(a.step_loss[:n], b.step_loss[:n], rtol=1e-3)
        else:
            _assert_close_runs(a, b)


def test_train_seeds_refuses_configs_that_differ_in_more_than_the_seed():
    """A list mixing learning rates is refused with the field named; an empty list or a non-config too."""
    with pytest.raises(ValueError, match="learning_rate"):
        train_seeds([TrainConfig(**SHORT), TrainConfig(**{**SHORT, "learning_rate": 1e-2, "seed": 1})])
    with pytest.raises(ValueError, match="configs"):
        train_seeds([])
    with pytest.raises(ValueError, match="configs"):
        train_seeds([TrainConfig(**SHORT), {"seed": 1}])
    with pytest.raises(ValueError, match="engine"):
        train(TrainConfig(**SHORT), engine="jax")


def test_seed_groups_cut_a_list_into_runs_of_one_config():
    """Consecutive configs that differ only in seed form a group; order is kept; a config reappearing later is new."""
    a = [TrainConfig(**{**SHORT, "seed": s}) for s in (0, 1)]
    b = [TrainConfig(**{**SHORT, "batch_size": 64, "seed": s}) for s in (0, 1, 2)]
    assert seed_groups([*a, *b, a[0]]) == [a, b, [a[0]]]
    assert seed_groups([]) == []


@pytest.mark.slow
@pytest.mark.skipif("architecture" not in FIELDS, reason="TrainConfig has no architecture field yet")
def test_an_architecture_the_fast_path_does_not_cover_falls_back_to_the_keras_path():
    """A conv config is trained by the Keras path, in train() and one by one in train_seeds()."""
    configs = [TrainConfig(**{**SHORT, "architecture": "conv", "epochs": 1, "seed": s}) for s in (0, 1)]
    assert not fastpath.supports(configs[0])
    for a, c in zip(train_seeds(configs), configs, strict=True):
        np.testing.assert_array_equal(a.step_loss, train(c, engine="keras").step_loss)


# --- the pieces -------------------------------------------------------------------------------------


@pytest.mark.parametrize(("likelihood", "free_bits"), [("bernoulli", None), ("bernoulli", 0.3), ("gaussian", None)])
def test_the_objective_of_a_stack_is_negative_elbo_of_each_member(likelihood, free_bits):
    """stacked_negative_elbo on [S, B, ...] equals objective.negative_elbo on each member's batch."""
    rng = np.random.default_rng(0)
    shape = lambda *s: tf.constant(rng.normal(size=s).astype(np.float32))
    x = tf.constant((rng.random((3, 16, 5)) < 0.5).astype(np.float32)) if likelihood == "bernoulli" else shape(3, 16, 5)
    decoded, z_mean, z_log_var, log_var = shape(3, 16, 5), shape(3, 16, 4), shape(3, 16, 4) * 0.3, shape(5) * 0.1
    lv = log_var if likelihood == "gaussian" else None
    got = fastpath.stacked_negative_elbo(x, decoded, z_mean, z_log_var, likelihood, 0.7, lv, free_bits)
    for s in range(3):
        want = negative_elbo(x[s], decoded[s], z_mean[s], z_log_var[s], likelihood, 0.7, lv, free_bits)
        np.testing.assert_allclose([float(g[s]) for g in got], [float(w) for w in want], rtol=1e-6)


@pytest.mark.parametrize("change", [{}, {"hidden_units": (16, 8), "latent_dim": 3}])
def test_the_flat_vector_round_trips_the_keras_weights(change):
    """flatten then unflatten gives every trainable Keras weight back by name; the layout's shapes are Keras's."""
    model_config = TrainConfig(**change).model_config(64, "bernoulli")
    vae = build_vae(model_config, seed=2)
    weights = {v.path: v.numpy() for v in vae.trainable_variables}
    layout = fastpath.Layout(model_config)
    assert layout.names == list(weights) and layout.size == sum(w.size for w in weights.values())
    back = layout.unflatten(layout.flatten(weights))
    for name, w in weights.items():
        np.testing.assert_array_equal(back[name], w)


def test_the_fast_paths_validation_noise_is_evaluates(digits):
    """val_noise draws the noise evaluate(k=1) draws, also when evaluate cuts the rows into several chunks."""
    model = build_vae(TrainConfig().model_config(digits.dim, digits.likelihood), seed=0)
    noise = fastpath.val_noise(5, len(digits.val), digits.dim, 8)
    z_mean, z_log_var = (np.asarray(t) for t in model.posterior(digits.val))
    decoded = model.decoder(z_mean + np.exp(0.5 * z_log_var) * noise)
    x = tf.constant(digits.val)
    recon = -tf.reduce_sum(tf.nn.sigmoid_cross_entropy_with_logits(labels=x, logits=decoded), axis=-1)
    kl = 0.5 * np.sum(z_mean**2 + np.exp(z_log_var) - 1 - z_log_var, axis=1)
    assert float(np.mean(recon.numpy() - kl)) == pytest.approx(
        evaluate(model, digits.val, k=1, seed=5)["elbo"], rel=1e-6
    )
    chunks = fastpath.val_noise(5, 40_000, 784, 8)  # evaluate's chunks: 2,551 rows each
    first = tf.random.stateless_normal([1, 2551, 8], seed=tf.constant([5, 0], tf.int64)).numpy()[0]
    second = tf.random.stateless_normal([1, 2551, 8], seed=tf.constant([5, 1], tf.int64)).numpy()[0]
    np.testing.assert_array_equal(chunks[:2551], first)
    np.testing.assert_array_equal(chunks[2551:5102], second)


@pytest.mark.slow
@pytest.mark.parametrize(("batch_size", "members"), [(32, 1), (256, 1), (64, 3)])
def test_the_compiled_epoch_trains_on_the_batches_and_noise_the_keras_path_draws(
    monkeypatch, digits, batch_size, members
):
    """Inside the fast path's XLA epoch, update i of each member sees batch i and noise i of
    ``draws.compiled_draws`` (what the Keras path trains on) for its seed and the epoch, bit for bit.

    The loss function is replaced by a probe that reports, per member, which of the reference draws'
    steps the batch and noise equal (as the loss) and how far they are from it (as reconstruction and KL)."""
    n, seeds, epoch = len(digits.train), [5, 0, 9][:members], 2
    x_train = tf.constant(digits.train)
    draw = draws.compiled_draws(n, batch_size, 8, True)
    refs = [[t.numpy() for t in draw(x_train, tf.constant(epoch), tf.constant(s))] for s in seeds]
    ref_x, ref_noise = (tf.constant(np.stack([r[k] for r in refs])) for k in (0, 1))  # [S, steps, B, ...]

    def probe(layout, weights, xb, eps, weight, free_bits):
        xb, eps = (t if members > 1 else t[None] for t in (xb, eps))
        dx = tf.reduce_max(tf.abs(xb[:, None] - ref_x), axis=[2, 3])  # [S, steps]
        dn = tf.reduce_max(tf.abs(eps[:, None] - ref_noise), axis=[2, 3])
        step = tf.cast(tf.argmin(dx + dn, axis=1), tf.float32)
        out = [step, tf.reduce_min(dx, axis=1), tf.reduce_min(dn, axis=1)]
        out = out if members > 1 else [v[0] for v in out]
        return (*out, [tf.zeros_like(w) for w in weights])

    monkeypatch.setattr(fastpath, "_loss_and_gradient", probe)
    monkeypatch.setattr(fastpath, "_TRAINERS", {})
    config = TrainConfig(dataset="digits", batch_size=batch_size, optimizer="sgd", epochs=3)
    trainer = fastpath.stacked_trainer(config.model_config(digits.dim, digits.likelihood), config, n, members)
    theta = tf.zeros([members, trainer.layout.size])
    eps_val = tf.zeros([members, len(digits.val), 8])
    out = trainer.run_epoch(
        x_train,
        tf.constant(digits.val),
        eps_val,
        tf.constant(epoch),
        tf.constant(seeds),
        theta,
        [],
        tf.ones([members], bool),
        hyper(config, n // batch_size),
    )
    sums, done, losses = out[2].numpy(), out[3].numpy(), out[6].numpy()
    steps = n // batch_size
    assert done.tolist() == [steps] * members
    np.testing.assert_array_equal(losses, np.repeat(np.arange(steps, dtype=np.float32)[:, None], members, axis=1))
    np.testing.assert_array_equal(sums[:, 1:], 0.0)  # batches and noise equal, bit for bit


@pytest.mark.slow
def test_a_stack_that_would_hold_too_much_data_is_split():
    """With a tiny STACK_BYTES, train_seeds trains one seed per stack, and still one result per config."""
    data = Dataset(
        "toy", *(np.random.default_rng(0).random((n, 4), dtype=np.float32) for n in (64, 16, 16)), "bernoulli"
    )
    configs = [TrainConfig(**{**SHORT, "batch_size": 16, "epochs": 1, "seed": s}) for s in range(3)]
    before, training.STACK_BYTES = training.STACK_BYTES, 1
    try:
        results = train_seeds(configs, data)
    finally:
        training.STACK_BYTES = before
    assert [r.metrics["group_size"] for r in results] == [1, 1, 1]
    assert [r.config.seed for r in results] == [0, 1, 2]


@pytest.mark.slow
def test_a_stack_that_would_hold_too_many_weights_is_split():
    """With STACK_WEIGHTS twice one toy model's weights, five seeds train as stacks of 2, 2 and 1, in order."""
    data = Dataset(
        "toy", *(np.random.default_rng(0).random((n, 4), dtype=np.float32) for n in (64, 16, 16)), "bernoulli"
    )
    configs = [TrainConfig(**{**SHORT, "batch_size": 16, "epochs": 1, "seed": s}) for s in range(5)]
    weights = fastpath.Layout(configs[0].model_config(data.dim, data.likelihood, data.image_shape)).size
    before, training.STACK_WEIGHTS = training.STACK_WEIGHTS, 2 * weights
    try:
        results = train_seeds(configs, data)
    finally:
        training.STACK_WEIGHTS = before
    assert [r.metrics["group_size"] for r in results] == [2, 2, 2, 2, 1]
    assert [r.config.seed for r in results] == [0, 1, 2, 3, 4]


def test_the_book_s_mlps_stack_ten_digits_runs_and_train_fashion_mnist_runs_alone():
    """STACK_WEIGHTS lets the 64-256-8 MLP on digits stack ten seeds and keeps the 784-256-16 MLP alone."""
    from vae_utils.core.model import ModelConfig

    digits = fastpath.Layout(ModelConfig(input_dim=64, latent_dim=8, hidden_units=(256,))).size
    fashion = fastpath.Layout(ModelConfig(input_dim=784, latent_dim=16, hidden_units=(256,))).size
    by_hand = lambda d, h, L: (d * h + h) + 2 * (h * L + L) + (L * h + h) + (h * d + d)  # encoder, heads, decoder
    assert (digits, fashion) == (by_hand(64, 256, 8), by_hand(784, 256, 16)) == (39_504, 415_024)
    assert training.STACK_WEIGHTS // digits == 10 and training.STACK_WEIGHTS // fashion == 0


# --- sweeps ------------------------------------------------------------------------------------------


def test_plan_keeps_the_seeds_of_a_config_in_one_block():
    """Every config's seeds land in one block, next to each other, in grid order, while there are enough configs."""
    configs = expand_grid({"seed": [0, 1, 2], "batch_size": [16, 512], "learning_rate": [1e-3, 3e-3, 1e-2]})
    runs = [(store.run_id(c, "v"), c) for c in configs]
    blocks = runner.plan(runs, 2)
    assert len(blocks) == 2 and sorted(r for b in blocks for r, _ in b) == sorted(r for r, _ in runs)
    for block in blocks:
        groups = seed_groups([c for _, c in block])
        assert all([c.seed for c in g] == [0, 1, 2] for g in groups)
    one_config = [(store.run_id(c, "v"), c) for c in expand_grid({"seed": [0, 1, 2, 3]})]
    assert len(runner.plan(one_config, 2)) == 2  # fewer configs than workers: the seeds are shared out


@pytest.mark.slow
def test_a_sweep_trains_a_configs_seeds_as_one_stack_and_records_each_run(tmp_path):
    """Through the papermill template: each run has its own ok or diverged record, written as train() would
    write it, trained in a stack of the config's seeds; a cached rerun trains nothing."""
    grid = {**SHORT, "batch_size": 64, "optimizer": "momentum", "learning_rate": 0.27, "seed": [3, 2, 0]}
    df = sweep(grid, tmp_path / "store", workers=1, progress=False)
    assert df["status"].tolist() == ["diverged", "ok", "diverged"]
    for config, row in zip(expand_grid(grid), df.itertuples(), strict=True):
        alone = train(config)
        rec = store.read_record(tmp_path / "store", row.run_id)
        assert rec["config"] == config.to_dict() and rec["metrics"]["group_size"] == 3
        assert rec["metrics"]["diverged_epoch"] == alone.metrics["diverged_epoch"]
        if row.status == "ok":
            assert row.test_elbo == pytest.approx(alone.metrics["test_elbo"], rel=1e-4)
        else:
            assert rec["error"].startswith(f"diverged at epoch {alone.metrics['diverged_epoch']}")
    summary = df.attrs["summary"]
    assert summary["ran"] == 3 and 0 < summary["run_s"] < summary["kernel_s"]
    assert sweep(grid, tmp_path / "store", workers=1, progress=False).attrs["summary"]["ran"] == 0
