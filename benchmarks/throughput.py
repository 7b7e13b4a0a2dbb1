"""Training throughput of ``vae_utils.train()``: the Keras ``fit`` pattern, train()'s two engines, stacked seeds, JAX.

    .venv/bin/python benchmarks/throughput.py              # the table (a few minutes on 2 cores)
    .venv/bin/python benchmarks/throughput.py --threads 2  # TensorFlow (and JAX) on 2 threads
    .venv/bin/python benchmarks/throughput.py --profile    # plus where the time of one Keras-path step goes

Contestants, each training the same 64-256-8 MLP VAE (``vae_utils.build_vae``, the same initial
weights) on the same digits training set with dynamically binarized batches, Adam(1e-3) and the
same loss (``vae_utils.core.objective.negative_elbo``), in this one process, with TensorFlow op
determinism on (``train()`` turns it on):

* **fit**: the Keras example (keras-io examples/generative/vae.py): a ``keras.Model`` subclass
  with a custom ``train_step``, compiled with the defaults, ``model.fit(x, batch_size=..., shuffle=True)``;
* **train(), Keras path** (``engine="keras"``, what train() was before the fast path): the Keras
  model and optimizer, a whole epoch in one ``tf.function``;
* **train(), fast path** (the default): ``vae_utils.core.fastpath``, one flat parameter vector, the
  epoch's updates and its validation ELBO under XLA;
* **train_seeds, 10 seeds**: ten seeds of the config in one stack; examples/s counts all ten;
* **JAX** (when ``import jax`` works; not a dependency): ``jax.jit`` over the epoch with
  ``lax.scan``, the same weights and Adam formula (``benchmarks/jax_vae.py``); and the same with
  the validation ELBO after each epoch inside the jitted function, the work train() does per epoch.

Throughput is steady state: examples over the epochs after the first (which traces and compiles)
divided by their time, timed around each contestant's compiled epoch (fit: per epoch by a
callback). The fast path's epochs include its per-epoch validation ELBO (270 examples forward),
the Keras path's do not (it runs after the epoch): that only disfavours the fast path. Both wall
and CPU seconds are reported: on a shared machine, CPU time is the figure that contention
disturbs least. Each figure is the median of ``--repeats`` runs, contestants interleaved (A B C A
B C) so that load from other processes hits them alike; the load average is printed.
GFLOP/s counts the MLP's matmul FLOPs, forward and backward (3 x the forward 2 * sum(in * out) per
example), against the float32 peak measured here with a large ``tf.matmul`` (the best of several
measurements: load only lowers it, and a low peak would flatter the percentage).
"""

from __future__ import annotations

import argparse
import datetime
import os
import platform
import statistics
import sys
import time

os.environ.setdefault("TF_CPP_MIN_LOG_LEVEL", "2")
os.environ.setdefault("KERAS_BACKEND", "tensorflow")

import itertools

import keras
import numpy as np
import tensorflow as tf

import vae_utils
from vae_utils import ModelConfig, TrainConfig, build_vae, load_dataset, train
from vae_utils.core.objective import negative_elbo

LATENT, HIDDEN = 8, (256,)
TARGET_SPEEDUP = 10.0  # train() over fit, at batch 32
TARGET_JAX = {32: 1.0, 256: 1.0}  # train() over JAX, by batch size (issue 22)
SEEDS = 10  # train_seeds' stack


# ---------------------------------------------------------------- FLOPs and peak


def mlp_flops_per_example(input_dim: int, hidden=HIDDEN, latent: int = LATENT) -> int:
    """Matmul FLOPs of one training step per example: 3 x forward, forward = 2 * sum(in * out).

    Encoder input -> hidden... -> (z_mean, z_log_var); decoder latent -> hidden (mirrored) -> input.
    (The backward pass skips the gradient with respect to the data, so 3x slightly over-counts:
    by 2 * input_dim * hidden[0], 7 % here.)
    """
    enc = [input_dim, *hidden]
    dec = [latent, *reversed(hidden), input_dim]
    fwd = sum(a * b for a, b in itertools.pairwise(enc)) + 2 * enc[-1] * latent
    fwd += sum(a * b for a, b in itertools.pairwise(dec))
    return 3 * 2 * fwd


def matmul_peak_gflops(n: int = 2048, reps: int = 10, repeats: int = 5) -> float:
    """float32 matmul throughput of this process: the best of ``repeats`` timings of ``reps`` n x n products."""
    a = tf.random.stateless_normal([n, n], seed=[1, 2])
    b = tf.random.stateless_normal([n, n], seed=[3, 4])

    @tf.function
    def chain(a, b):
        c = tf.zeros([n, n])
        for _ in tf.range(reps):
            c += tf.matmul(a, b)  # the add is ~1/n of the work
        return c

    chain(a, b).numpy()  # trace and warm up
    best = 0.0
    for _ in range(repeats):
        t0 = time.perf_counter()
        chain(a, b).numpy()
        best = max(best, reps * 2 * n**3 / (time.perf_counter() - t0) / 1e9)
    return best


# ---------------------------------------------------------------- the Keras-example baseline


class KerasExampleVAE(keras.Model):
    """The keras-io VAE example's pattern: custom ``train_step``, metric trackers, ``model.fit``."""

    def __init__(self, encoder, decoder, seed: int = 0, **kwargs):
        super().__init__(**kwargs)
        self.encoder = encoder  # returns z_mean, z_log_var, z (a Sampling layer)
        self.decoder = decoder
        self.binarize_seed = keras.random.SeedGenerator(seed + 1)
        self.total_loss_tracker = keras.metrics.Mean(name="loss")
        self.reconstruction_loss_tracker = keras.metrics.Mean(name="reconstruction_loss")
        self.kl_loss_tracker = keras.metrics.Mean(name="kl_loss")

    @property
    def metrics(self):
        return [self.total_loss_tracker, self.reconstruction_loss_tracker, self.kl_loss_tracker]

    def train_step(self, data):
        # dynamic binarization of the batch, as in train()
        x = tf.cast(keras.random.uniform(tf.shape(data), seed=self.binarize_seed) < data, tf.float32)
        with tf.GradientTape() as tape:
            z_mean, z_log_var, z = self.encoder(x, training=True)
            logits = self.decoder(z, training=True)
            loss, reconstruction_loss, kl_loss = negative_elbo(x, logits, z_mean, z_log_var, "bernoulli")
        grads = tape.gradient(loss, self.trainable_weights)
        self.optimizer.apply_gradients(zip(grads, self.trainable_weights, strict=True))
        self.total_loss_tracker.update_state(loss)
        self.reconstruction_loss_tracker.update_state(reconstruction_loss)
        self.kl_loss_tracker.update_state(kl_loss)
        return {m.name: m.result() for m in self.metrics}


class EpochTimer(keras.callbacks.Callback):
    def __init__(self):
        super().__init__()
        self.times = []

    def on_epoch_begin(self, epoch, logs=None):
        self._t0 = (time.perf_counter(), time.process_time())

    def on_epoch_end(self, epoch, logs=None):
        self.times.append((time.perf_counter() - self._t0[0], time.process_time() - self._t0[1]))


def rates(times: list, examples_per_epoch: int) -> tuple[float, float]:
    """(examples per wall second, per CPU second) over the epochs after the first."""
    steady = times[1:]
    n = examples_per_epoch * len(steady)
    return n / sum(t[0] for t in steady), n / sum(t[1] for t in steady)


def fit_rates(x_train: np.ndarray, batch_size: int, epochs: int, seed: int = 0) -> tuple[float, float]:
    """The Keras-example VAE under ``model.fit``."""
    base = build_vae(ModelConfig(x_train.shape[1], LATENT, HIDDEN, "bernoulli"), seed=seed)
    model = KerasExampleVAE(base.encoder, base.decoder, seed=seed)
    model.compile(optimizer=keras.optimizers.Adam(1e-3))  # defaults: jit_compile="auto" (False on CPU)
    timer = EpochTimer()
    model.fit(x_train, epochs=epochs, batch_size=batch_size, shuffle=True, verbose=0, callbacks=[timer])
    return rates(timer.times, len(x_train))


def train_rates(data, batch_size: int, epochs: int, seed: int = 0, engine="fast", seeds=1) -> tuple[float, float]:
    """train() on one engine (or train_seeds on ``seeds`` seeds), timed around its compiled epoch."""
    from vae_utils.core import fastpath, training

    configs = [
        TrainConfig(dataset=data.name, batch_size=batch_size, epochs=epochs, seed=seed + s, eval_k=1)
        for s in range(seeds)
    ]
    model_config = configs[0].model_config(data.dim, data.likelihood)
    if engine == "keras":
        trainer = training._trainer(model_config, configs[0], len(data.train))
    else:
        trainer = fastpath.stacked_trainer(model_config, configs[0], len(data.train), seeds)
    run_epoch, times = trainer.run_epoch, []

    def timed(*args):
        t0 = (time.perf_counter(), time.process_time())
        out = run_epoch(*args)
        out[0].numpy(), out[-1].numpy()  # wait for the epoch
        times.append((time.perf_counter() - t0[0], time.process_time() - t0[1]))
        return out

    trainer.run_epoch = timed
    try:
        if seeds > 1:
            training.train_seeds(configs, data)
        else:
            train(configs[0], data, engine=engine)
    finally:
        trainer.run_epoch = run_epoch
    return rates(times, len(data.train) // batch_size * batch_size * seeds)


def jax_rates(data, batch_size: int, epochs: int, seed: int = 0, validate: bool = False) -> tuple[float, float]:
    import jax_vae

    weights = {
        v.path: v.numpy() for v in build_vae(ModelConfig(data.dim, LATENT, HIDDEN), seed=seed).trainable_variables
    }
    order = ["encoder_dense_0", "z_mean", "z_log_var", "decoder_dense_0", "logits"]
    initial = [weights[f"{layer}/{w}"] for layer in order for w in ("kernel", "bias")]
    times = jax_vae.epoch_times(data.train, initial, batch_size, epochs, seed, data.val if validate else None)
    return rates(times, len(data.train) // batch_size * batch_size)


# ---------------------------------------------------------------- where the time goes


def _fused_adam_apply(opt, grads, variables):
    """Adam as one fused kernel per variable (``ResourceApplyAdam``), with Keras Adam's formula
    and slots: var -= lr * sqrt(1 - b2^t) / (1 - b1^t) * m / (sqrt(v) + epsilon)."""
    t = tf.cast(opt.iterations + 1, tf.float32)
    b1, b2 = tf.constant(opt.beta_1, tf.float32), tf.constant(opt.beta_2, tf.float32)
    b1p, b2p = tf.pow(b1, t), tf.pow(b2, t)
    lr = tf.cast(opt.learning_rate, tf.float32)
    for g, v in zip(grads, variables, strict=True):
        i = opt._get_variable_index(v)
        tf.raw_ops.ResourceApplyAdam(
            var=v.value.handle if hasattr(v, "value") else v.handle,
            m=opt._momentums[i].value.handle,
            v=opt._velocities[i].value.handle,
            beta1_power=b1p,
            beta2_power=b2p,
            lr=lr,
            beta1=b1,
            beta2=b2,
            epsilon=tf.constant(opt.epsilon, tf.float32),
            grad=g,
        )
    opt.iterations.assign_add(1)


def _time_round_robin(fns: dict, repeats: int) -> dict:
    """Time each zero-argument callable ``repeats`` times, interleaved; {name: sorted seconds}."""
    for f in fns.values():
        f()  # trace, compile, warm up
    times = {k: [] for k in fns}
    for _ in range(repeats):
        for k, f in fns.items():
            t0 = time.perf_counter()
            f()
            times[k].append(time.perf_counter() - t0)
    return {k: sorted(v) for k, v in times.items()}


def profile(data, batch_size: int, repeats: int) -> list[tuple[str, float, float]]:
    """Where one training step's time goes; rows of (what, min µs, median µs).

    1) train()'s own compiled epoch (``_Trainer.run_epoch``) on the real data at several step
       counts: the slope is the cost of one step, the intercept the fixed cost of one call;
    2) re-implementations of that step in a loop of ``steps`` steps inside one ``tf.function``,
       removing or replacing one ingredient at a time, and compiled with XLA;
    3) the lower bound: the step's matmuls alone (forward, input- and weight-gradient), XLA.
    Everything in one process, timed round-robin, so that load from other processes is shared.
    """
    from vae_utils.core import schedules, training

    cfg = TrainConfig(batch_size=batch_size, epochs=1, eval_k=1)
    mc = cfg.model_config(data.dim, data.likelihood)
    n, bs = len(data.train), batch_size
    full = n // bs
    x_train = tf.constant(data.train, tf.float32)
    trainer = training._Trainer(mc, cfg, n)
    trainer.reset(build_vae(mc, seed=0))
    hyper = schedules.hyper(cfg, full)

    def epoch(steps):
        return lambda: trainer.run_epoch(x_train, tf.constant(1), tf.constant(0), tf.constant(steps), hyper)[0].numpy()

    counts = sorted({1, max(1, full // 2), full})
    t = _time_round_robin({s: epoch(s) for s in counts}, repeats)
    slope_min, icpt_min = np.polyfit(counts, [t[s][0] for s in counts], 1)
    slope_med, icpt_med = np.polyfit(counts, [statistics.median(t[s]) for s in counts], 1)
    rows = [
        (f"train(): one step of run_epoch (slope over {counts} steps per call)", slope_min, slope_med),
        ("train(): fixed cost of one run_epoch call (intercept)", icpt_min, icpt_med),
        (f"train(): a whole epoch ({full} steps)", t[full][0], statistics.median(t[full])),
    ]

    # 2) the step, re-implemented, ingredient by ingredient
    steps = max(full, 40)  # enough steps per call that the fixed cost of a call is negligible
    vae = build_vae(mc, seed=0)
    variables = vae.trainable_variables
    n_rep = max(n, (steps + 1) * bs)
    xs = tf.constant(np.resize(data.train, (n_rep, data.dim)), tf.float32)

    def make(optimizer="adam", binarize=True, gather="slice", lr_assign=True, bookkeeping=True, part="all", jit=False):
        opt = keras.optimizers.SGD(1e-3) if optimizer == "sgd" else keras.optimizers.Adam(1e-3)
        opt.build(variables)

        def step(i, x, order):
            if gather == "epoch":  # x is this epoch's shuffled, binarized copy: a contiguous slice per step
                xb = x[i * bs : (i + 1) * bs]
            elif gather == "slice":  # as train(): a Python slice, dynamic shape
                xb = tf.gather(x, order[i * bs : (i + 1) * bs])
            elif gather == "static":  # tf.slice with a static size: XLA sees a fixed batch shape
                xb = tf.gather(x, tf.slice(order, [i * bs], [bs]))
            else:  # no gather: a fixed contiguous batch
                xb = x[:bs]
            if binarize and gather != "epoch":
                u = tf.random.stateless_uniform(tf.shape(xb), seed=tf.stack([7, i]))
                xb = tf.cast(u < xb, tf.float32)
            if lr_assign:
                opt.learning_rate.assign(schedules.learning_rate_at("constant", i, 1e-3, 0, steps))
            with tf.GradientTape() as tape:
                z_mean, z_log_var = vae.posterior(xb, training=True)
                eps = tf.random.stateless_normal(tf.shape(z_mean), seed=tf.stack([8, i]))
                logits = vae.decoder(z_mean + tf.exp(0.5 * z_log_var) * eps, training=True)
                loss, recon, kl = negative_elbo(xb, logits, z_mean, z_log_var, "bernoulli")
            if part == "all":
                grads = tape.gradient(loss, variables)
                if optimizer == "fused_adam":
                    _fused_adam_apply(opt, grads, variables)
                else:
                    opt.apply(grads, variables)
            elif part == "fwd_bwd":
                grads = tape.gradient(loss, variables)
                loss += tf.add_n([tf.reduce_sum(g) for g in grads]) * 0.0
            return loss, recon, kl

        @tf.function(jit_compile=jit)
        def loop(x, seed):
            order = tf.argsort(tf.random.stateless_uniform([n_rep], seed=tf.stack([seed, 1])))
            if gather == "epoch":  # one gather and one binarization for the whole epoch
                x = tf.gather(x, order[: steps * bs])
                x = tf.cast(tf.random.stateless_uniform(tf.shape(x), seed=tf.stack([seed, 7])) < x, tf.float32)
            sums = tf.zeros([3])
            losses = tf.TensorArray(tf.float32, size=steps, element_shape=[])  # static size: XLA needs it
            for i in tf.range(steps):
                loss, recon, kl = step(i, x, order)
                if bookkeeping:
                    if not tf.math.is_finite(loss):
                        break
                    sums += tf.stack([loss, recon, kl])
                    losses = losses.write(i, loss)
                else:
                    sums += loss
            return sums, losses.stack()

        return lambda: loop(xs, tf.constant(0))[0].numpy()

    variants = {
        "step as train() runs it (gather, binarize, lr assign, Keras Adam, bookkeeping)": {},
        "  - dynamic binarization": dict(binarize=False),
        "  - shuffled gather (a fixed contiguous batch)": dict(gather="none"),
        "  - learning-rate assign": dict(lr_assign=False),
        "  - loss bookkeeping (sums, TensorArray, is_finite break)": dict(bookkeeping=False),
        "  gather + binarize once per epoch, a contiguous slice per step": dict(gather="epoch"),
        "  Keras Adam -> SGD": dict(optimizer="sgd"),
        "  Keras Adam -> fused ResourceApplyAdam (same formula)": dict(optimizer="fused_adam"),
        "  forward + backward, no update": dict(part="fwd_bwd"),
        "  forward only": dict(part="fwd"),
        "XLA: whole loop jit_compile, batch index by tf.slice (static shape)": dict(gather="static", jit=True),
        "XLA: as above + fused Adam": dict(gather="static", jit=True, optimizer="fused_adam"),
        "XLA: whole loop jit_compile, batch index by Python slice (as train())": dict(jit=True),
    }
    fns = {}
    for name, kw in variants.items():
        fns[name] = make(**kw)
    # 3) the matmuls alone: forward, and for each layer the input- and weight-gradient products
    shapes = [(data.dim, HIDDEN[0]), (HIDDEN[0], 2 * LATENT), (LATENT, HIDDEN[0]), (HIDDEN[0], data.dim)]
    ws = [tf.random.stateless_normal(s, seed=[k, 0]) * 0.01 for k, s in enumerate(shapes)]
    acts = [tf.random.stateless_normal([bs, s[0]], seed=[k, 1]) for k, s in enumerate(shapes)]
    outs = [tf.random.stateless_normal([bs, s[1]], seed=[k, 2]) for k, s in enumerate(shapes)]

    def matmuls(jit):
        @tf.function(jit_compile=jit)
        def run():
            tot = tf.constant(0.0)
            for i in tf.range(steps):
                s = 1.0 + tf.cast(i, tf.float32) * 1e-9  # depends on the step: nothing is hoisted out of the loop
                for a, w, g in zip(acts, ws, outs, strict=True):
                    tot += tf.reduce_sum(tf.matmul(a * s, w))  # forward
                    tot += tf.reduce_sum(tf.matmul(g * s, w, transpose_b=True))  # gradient w.r.t. the input
                    tot += tf.reduce_sum(tf.matmul(a * s, g, transpose_a=True))  # gradient w.r.t. the weight
            return tot

        return lambda: run().numpy()

    fns["lower bound: the step's 12 matmuls alone"] = matmuls(False)
    fns["lower bound: the step's 12 matmuls alone (XLA)"] = matmuls(True)
    t = _time_round_robin(fns, repeats)
    for name, ts in t.items():
        rows.append((name, ts[0] / steps, statistics.median(ts) / steps))
    return [(name, lo * 1e6, med * 1e6) for name, lo, med in rows]


# ---------------------------------------------------------------- main


def machine() -> str:
    model = "unknown CPU"
    try:
        with open("/proc/cpuinfo") as f:
            model = next(line.split(":", 1)[1].strip() for line in f if line.startswith("model name"))
    except (OSError, StopIteration):
        pass
    return f"{os.cpu_count()} CPUs, {model}, {platform.system()} {platform.machine()}"


def load() -> str:
    return "/".join(f"{v:.2f}" for v in os.getloadavg())


def main(argv=None):
    p = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    p.add_argument("--batch-sizes", type=int, nargs="+", default=[32, 256])
    p.add_argument("--repeats", type=int, default=3, help="runs per figure; the median is reported")
    p.add_argument("--fit-epochs", type=int, default=6, help="epochs per model.fit run (the first is not timed)")
    p.add_argument("--train-epochs", type=int, default=30, help="epochs per train() run (the first is not timed)")
    p.add_argument(
        "--threads", type=int, default=1, help="TensorFlow (and JAX) threads; a sweep worker on 2 cores gets 1"
    )
    p.add_argument("--no-jax", action="store_true", help="leave JAX out even when it is installed")
    p.add_argument("--profile", action="store_true", help="also time the parts of one Keras-path training step")
    p.add_argument("--no-table", action="store_true", help="skip the table (with --profile)")
    p.add_argument(
        "--cpu", type=int, default=None, help="with --threads 1: the core to run on (default: the first allowed)"
    )
    p.add_argument("--no-pin", action="store_true", help="with --threads 1: do not pin the process to one core")
    args = p.parse_args(argv)
    allowed = sorted(os.sched_getaffinity(0))
    if args.threads == 1 and len(allowed) > 1 and argv is None and not args.no_pin:
        # JAX's runtime keeps extra threads whatever XLA_FLAGS say; pinning the process to one core makes
        # every contestant single-threaded alike. Affinity is read at import, so start afresh on that core.
        os.sched_setaffinity(0, {args.cpu if args.cpu is not None else allowed[0]})
        os.execv(sys.executable, [sys.executable, *sys.argv])

    sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))  # jax_vae beside this file
    import jax_vae

    has_jax = not args.no_jax and jax_vae.init(args.threads)
    tf.config.threading.set_intra_op_parallelism_threads(args.threads)  # before any op runs
    tf.config.threading.set_inter_op_parallelism_threads(args.threads)
    tf.config.experimental.enable_op_determinism()  # as train() does: the same settings for all
    keras.utils.set_random_seed(0)  # once, before any tracing: fit's shuffle needs a global seed under determinism
    data = load_dataset("digits")
    flops = mlp_flops_per_example(data.dim)
    print(f"# throughput: {datetime.datetime.now().isoformat(timespec='minutes')}")
    print(
        f"machine: {machine()}; TensorFlow {tf.__version__}, Keras {keras.__version__}, vae_utils {vae_utils.__version__}"
    )
    if has_jax:
        import jax

        print(f"JAX {jax.__version__}")
    print(f"load average (1/5/15 min) at start: {load()}")
    print(f"model: {data.dim}-{'-'.join(map(str, HIDDEN))}-{LATENT} MLP VAE; {flops} matmul FLOPs per example per step")
    print(
        f"threads: {args.threads} (TensorFlow intra- and inter-op{', JAX' if has_jax else ''}); "
        f"cores this process may use: {sorted(os.sched_getaffinity(0))}"
    )
    if args.no_table:
        return _profile_tables(data, args)

    contestants = {
        "fit": lambda bs, r: fit_rates(data.train, bs, args.fit_epochs, seed=r),
        "train(), Keras path": lambda bs, r: train_rates(data, bs, args.train_epochs, r, engine="keras"),
        "train(), fast path": lambda bs, r: train_rates(data, bs, args.train_epochs, r),
        f"train_seeds, {SEEDS} seeds": lambda bs, r: train_rates(data, bs, args.train_epochs, r, seeds=SEEDS),
    }
    if has_jax:
        contestants["JAX jit + lax.scan"] = lambda bs, r: jax_rates(data, bs, args.train_epochs, seed=r)
        contestants["JAX + per-epoch validation ELBO"] = lambda bs, r: jax_rates(
            data, bs, args.train_epochs, seed=r, validate=True
        )
    peaks, results = [matmul_peak_gflops()], {}
    for bs in args.batch_sizes:
        for f in contestants.values():
            f(bs, 99)  # trace and compile every graph first: the timed repeats are steady state
        got = {name: [] for name in contestants}
        for r in range(args.repeats):
            for name, f in contestants.items():
                got[name].append(f(bs, r))
            print(
                f"  batch {bs} repeat {r}: "
                + ", ".join(f"{k} {v[-1][0]:,.0f}/s" for k, v in got.items())
                + f" (load {load()})"
            )
        results[bs] = {k: tuple(statistics.median(x[i] for x in v) for i in (0, 1)) for k, v in got.items()}
        peaks.append(matmul_peak_gflops())  # again between batch sizes: the peak moves with the load
    peak = max(peaks)

    print()
    print(f"float32 matmul peak (2048 x 2048, best of {len(peaks)}): {peak:.0f} GFLOP/s")
    print(f"load average (1/5/15 min) at end: {load()}")
    for clock, i in (("wall", 0), ("CPU", 1)):
        print()
        print(f"examples per {clock} second (median of {args.repeats}):")
        print()
        print("| contestant | " + " | ".join(f"batch {bs}" for bs in results) + " |")
        print("|---|" + "---:|" * len(results))
        for name in contestants:
            print(f"| {name} | " + " | ".join(f"{results[bs][name][i]:,.0f}" for bs in results) + " |")
    print()
    fast = "train(), fast path"
    for bs, res in results.items():
        gflops = res[fast][0] * flops / 1e9
        line = f"batch {bs}: train() {gflops:.1f} GFLOP/s ({gflops / peak:.0%} of peak); "
        line += f"over fit {res[fast][0] / res['fit'][0]:.1f}x (CPU {res[fast][1] / res['fit'][1]:.1f}x)"
        if has_jax:
            jax_ = res["JAX jit + lax.scan"]
            line += f"; over JAX {res[fast][0] / jax_[0]:.2f}x (CPU {res[fast][1] / jax_[1]:.2f}x)"
        print(line)
        if bs == 32:
            ok = res[fast][0] / res["fit"][0] >= TARGET_SPEEDUP
            print(f"  target: >= {TARGET_SPEEDUP:.0f}x the fit pattern at batch 32: {'met' if ok else 'MISSED'}")
        if has_jax and bs in TARGET_JAX:
            ratio = res[fast][0] / res["JAX jit + lax.scan"][0]
            ok = ratio >= TARGET_JAX[bs]
            print(f"  target: >= {TARGET_JAX[bs]}x JAX at batch {bs}: {'met' if ok else 'MISSED'}")

    if args.profile:
        _profile_tables(data, args)


def _profile_tables(data, args):
    if args.profile:
        for bs in args.batch_sizes:
            print()
            print(f"## where the time goes, batch {bs} (median of {args.repeats}; load {load()})")
            print()
            print("| part | min µs | median µs |")
            print("|---|---:|---:|")
            for name, lo, med in profile(data, bs, args.repeats):
                print(f"| {name} | {lo:,.0f} | {med:,.0f} |")


if __name__ == "__main__":
    main()
