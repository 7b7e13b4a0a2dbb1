"""Throughput and evaluation cost of the convolutional VAE on Fashion-MNIST: ``train()`` against ``model.fit``.

    .venv/bin/python benchmarks/throughput_conv.py                  # the tables (about 20 minutes on 2 cores)
    .venv/bin/python benchmarks/throughput_conv.py --repeats 1 --batch-sizes 32 256 --no-eval   # a quick look

Both contestants train the same model, the Keras example's convolutional VAE as ``vae_utils`` builds it
(``TrainConfig(architecture="conv", hidden_units=(16,), latent_dim=16)``: Conv2D 32/64, Dense 16, z 16,
Conv2DTranspose 64/32/1; the same initial weights), on the same ``--n-train`` Fashion-MNIST training images
with dynamically binarized batches, Adam(1e-3) and the same loss (``vae_utils.core.objective.negative_elbo``),
with TensorFlow op determinism on for both. The baseline is the Keras example's pattern (keras-io
examples/generative/vae.py): a ``keras.Model`` subclass with a custom ``train_step``, ``compile()`` with the
defaults and ``model.fit(x, batch_size=..., shuffle=True)``.

Threads are fixed when TensorFlow runs its first op, so each measurement runs in a fresh worker process
(``worker`` mode) with 1 or 2 intra-op threads (inter-op: 1 and 2 alike). Workers run one at a time and
alternate between the thread settings, repeat after repeat; within a worker, fit and ``train()`` alternate
batch size by batch size. Throughput is steady state (epochs after the first, which includes tracing), the
median over ``--repeats`` workers. The load average is printed with each line: the machine is shared.

The evaluation part times ``vae_utils.evaluate`` on test images with k importance samples (the IWAE bound,
``TrainConfig.eval_k``) and k = 1 (the per-epoch validation ELBO), and one whole ``train()`` call split into
its parts, so that a sweep's cost can be planned (see benchmarks/README.md, "Convolutional VAE").
"""

from __future__ import annotations

import argparse
import dataclasses
import datetime
import json
import os
import statistics
import subprocess
import sys
import time

os.environ.setdefault("TF_CPP_MIN_LOG_LEVEL", "2")
os.environ.setdefault("KERAS_BACKEND", "tensorflow")

CONV = dict(dataset="fashion_mnist", architecture="conv", hidden_units=(16,), latent_dim=16)


def conv_flops_per_example(h: int = 28, w: int = 28, hidden: int = 16, latent: int = 16) -> int:
    """Multiply-add FLOPs (2 per MAC) of one training step per example: 3 x the forward pass.

    Conv2D: out_h * out_w * 9 * c_in * c_out MACs; Conv2DTranspose (stride s): in_h * in_w * 9 * c_in * c_out;
    Dense: in * out. (The backward pass skips the gradient for the input image: 3x over-counts slightly.)"""
    q, half = (h // 4) * (w // 4), (h // 2) * (w // 2)
    macs = half * 9 * 1 * 32 + q * 9 * 32 * 64  # encoder convolutions
    macs += q * 64 * hidden + hidden * 2 * latent  # Dense(16), z_mean and z_log_var
    macs += latent * q * 64  # decoder Dense(7 * 7 * 64)
    macs += q * 9 * 64 * 64 + half * 9 * 64 * 32 + h * w * 9 * 32 * 1  # the three transposed convolutions
    return 3 * 2 * macs


def load() -> str:
    return "/".join(f"{v:.2f}" for v in os.getloadavg())


# ---------------------------------------------------------------- worker: one process, fixed threads


def _worker_setup(threads: int):
    import keras
    import tensorflow as tf

    tf.config.threading.set_intra_op_parallelism_threads(threads)
    tf.config.threading.set_inter_op_parallelism_threads(threads)
    tf.config.experimental.enable_op_determinism()  # as train() does: the same settings for both
    keras.utils.set_random_seed(0)  # fit's shuffle needs a global seed under op determinism


def _subset(n_train: int):
    from vae_utils import load_dataset

    full = load_dataset("fashion_mnist")
    return dataclasses.replace(full, train=full.train[:n_train], train_labels=None)


def _keras_example_vae(config, seed: int):
    """The keras-io example's pattern around vae_utils' encoder and decoder (the same initial weights):
    ``throughput.py``'s ``KerasExampleVAE``, imported once the worker has fixed its threads."""
    import keras
    from throughput import KerasExampleVAE

    from vae_utils.core.model import build_vae

    base = build_vae(config.model_config(784, "bernoulli", (28, 28)), seed=seed)
    model = KerasExampleVAE(base.encoder, base.decoder, seed=seed)
    model.compile(optimizer=keras.optimizers.Adam(1e-3))  # defaults: jit_compile="auto" (False on CPU)
    return model


def fit_epochs(x_train, batch_size: int, epochs: int, seed: int) -> list[tuple[float, float]]:
    """(wall s, CPU s) of each epoch of ``model.fit`` on the Keras-example VAE."""
    import keras

    from vae_utils import TrainConfig

    times = []

    class Timer(keras.callbacks.Callback):
        def on_epoch_begin(self, epoch, logs=None):
            self.t0 = time.perf_counter(), time.process_time()

        def on_epoch_end(self, epoch, logs=None):
            times.append((time.perf_counter() - self.t0[0], time.process_time() - self.t0[1]))

    model = _keras_example_vae(TrainConfig(**CONV, batch_size=batch_size), seed)
    model.fit(x_train, epochs=epochs, batch_size=batch_size, shuffle=True, verbose=0, callbacks=[Timer()])
    return times


def train_epochs(data, batch_size: int, epochs: int, seed: int) -> list[tuple[float, float]]:
    """(wall s, CPU s) of each compiled epoch of ``train()``: the function train() calls once per epoch
    (``training._trainer(...).run_epoch``, timed as train() times its ``samples_per_s``), called here
    directly so that its CPU time can be read too; the per-epoch validation ELBO is timed in the eval part."""
    import tensorflow as tf

    from vae_utils import TrainConfig
    from vae_utils.core import schedules, training
    from vae_utils.core.model import build_vae

    config = TrainConfig(**CONV, batch_size=batch_size, epochs=epochs, seed=seed, eval_k=1)
    model_config = config.model_config(784, "bernoulli", (28, 28))
    steps = len(data.train) // batch_size
    trainer = training._trainer(model_config, config, len(data.train))
    trainer.reset(build_vae(model_config, seed=seed))
    x, hyper = tf.constant(data.train), schedules.hyper(config, steps)
    times = []
    for epoch in range(epochs):
        t0 = time.perf_counter(), time.process_time()
        trainer.run_epoch(x, tf.constant(epoch), tf.constant(seed), tf.constant(steps), hyper)[0].numpy()
        times.append((time.perf_counter() - t0[0], time.process_time() - t0[1]))
    return times


def _steady(times, examples: int) -> dict:
    """Examples per wall second and CPU seconds per 1,000 examples over the epochs after the first."""
    wall, cpu = (sum(t[i] for t in times[1:]) for i in (0, 1))
    n = examples * (len(times) - 1)
    return {"per_s": n / wall, "cpu_per_1000": cpu / n * 1000}


def worker_throughput(args):
    _worker_setup(args.threads)
    data = _subset(args.n_train)
    for bs in args.batch_sizes:
        examples = len(data.train) // bs * bs
        fit = _steady(fit_epochs(data.train, bs, args.epochs, seed=args.seed), examples)
        own = _steady(train_epochs(data, bs, args.epochs, seed=args.seed), examples)
        row = {"threads": args.threads, "batch_size": bs, "fit": fit["per_s"], "train": own["per_s"]}
        row |= {"fit_cpu_per_1000": fit["cpu_per_1000"], "train_cpu_per_1000": own["cpu_per_1000"], "load": load()}
        print(json.dumps(row), flush=True)


def _time(fn, repeats: int = 1) -> float:
    fn()  # trace and warm up
    times = []
    for _ in range(repeats):
        t0 = time.perf_counter()
        fn()
        times.append(time.perf_counter() - t0)
    return statistics.median(times)


def worker_eval(args):
    """Seconds of evaluate() per 1,000 test images at each k; one train() call split into its parts."""
    from vae_utils import TrainConfig, evaluate, train

    _worker_setup(args.threads)
    data = _subset(args.n_train)
    config = TrainConfig(**CONV, batch_size=128, epochs=args.epochs, eval_k=args.run_eval_k)
    t0 = time.perf_counter()
    result = train(config, data)
    total = time.perf_counter() - t0
    m, history = result.metrics, result.history
    epoch_s = history["wall_time_s"].diff().fillna(history["wall_time_s"].iloc[0])
    row = {
        "what": "train()",
        "threads": args.threads,
        "n_train": len(data.train),
        "epochs": args.epochs,
        "eval_k": config.eval_k,
        "total_s": total,
        "first_epoch_s": float(epoch_s.iloc[0]),  # tracing, the epoch, the validation ELBO
        "later_epoch_s": float(epoch_s.iloc[1:].median()),  # the epoch, the validation ELBO (10,000 images, k = 1)
        "after_epochs_s": total - float(history["wall_time_s"].iloc[-1]),  # test metrics (eval_k), train ELBO
        "samples_per_s": m["samples_per_s"],
        "test_nll": m["test_nll"],
        "test_elbo": m["test_elbo"],
        "load": load(),
    }
    print(json.dumps(row))
    model = result.model
    n = args.eval_n
    row = {"what": "evaluate", "threads": args.threads, "n": n, "load": load()}
    row["val_elbo_k1_per_1000_s"] = _time(lambda: evaluate(model, data.val, k=1, activity=False), 3) / 10
    for k in args.eval_ks:
        evaluate(model, data.test[:10], k=k)  # trace and warm up
        t0 = time.perf_counter()
        out = evaluate(model, data.test[:n], k=k)
        row[f"k{k}_per_1000_s"] = (time.perf_counter() - t0) / n * 1000
        row[f"k{k}_nll"] = out["nll"]
    print(json.dumps(row))


# ---------------------------------------------------------------- driver


def _run_worker(mode: str, threads: int, args) -> list[dict]:
    cmd = [sys.executable, __file__, mode, "--threads", str(threads), "--n-train", str(args.n_train)]
    cmd += ["--epochs", str(args.epochs), "--seed", str(args.seed), "--batch-sizes", *map(str, args.batch_sizes)]
    cmd += ["--eval-ks", *map(str, args.eval_ks), "--eval-n", str(args.eval_n), "--run-eval-k", str(args.run_eval_k)]
    out = subprocess.run(cmd, check=True, capture_output=True, text=True).stdout
    rows = [json.loads(line) for line in out.splitlines() if line.startswith("{")]
    for r in rows:
        print("  " + json.dumps(r), flush=True)
    return rows


def main(argv=None):
    p = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    p.add_argument("--batch-sizes", type=int, nargs="+", default=[32, 64, 128, 256])
    p.add_argument("--threads-list", type=int, nargs="+", default=[1, 2])
    p.add_argument("--repeats", type=int, default=3, help="workers per thread setting; the median is reported")
    p.add_argument("--n-train", type=int, default=5000, help="training images per epoch")
    p.add_argument("--epochs", type=int, default=3, help="epochs per run (the first is not timed)")
    p.add_argument("--seed", type=int, default=0)
    p.add_argument("--eval-ks", type=int, nargs="+", default=[1, 10, 100, 500])
    p.add_argument("--eval-n", type=int, default=1000, help="test images per evaluate() timing")
    p.add_argument("--run-eval-k", type=int, default=10, help="eval_k of the whole train() call that is timed")
    p.add_argument("--no-eval", action="store_true", help="skip the evaluation-cost part")
    p.add_argument("--threads", type=int, default=2, help=argparse.SUPPRESS)
    p.add_argument("mode", nargs="?", default="driver", choices=["driver", "worker", "eval"])
    args = p.parse_args(argv)
    if args.mode == "worker":
        return worker_throughput(args)
    if args.mode == "eval":
        return worker_eval(args)

    import tensorflow as tf

    print(f"# conv throughput: {datetime.datetime.now().isoformat(timespec='minutes')}; TensorFlow {tf.__version__}")
    print(f"{os.cpu_count()} CPUs; load average at start {load()}; {conv_flops_per_example():,} FLOPs/example/step")
    rows = []
    for r in range(args.repeats):
        for threads in args.threads_list if r % 2 == 0 else reversed(args.threads_list):
            rows += _run_worker("worker", threads, args)
    print(f"\nload average at end {load()}\n")
    print(
        "| batch size | threads | fit examples/s | train() examples/s (best) | speed-up | "
        "CPU s per 1,000 examples: fit / train() | train() GFLOP/s | s per 50,000-image epoch |"
    )
    print("|---:|---:|---:|---:|---:|---:|---:|---:|")
    flops = conv_flops_per_example()
    for bs in args.batch_sizes:
        for threads in args.threads_list:
            sel = [x for x in rows if x["batch_size"] == bs and x["threads"] == threads]
            fit, own, cpu_fit, cpu_own = (
                statistics.median(x[k] for x in sel) for k in ("fit", "train", "fit_cpu_per_1000", "train_cpu_per_1000")
            )
            best = max(x["train"] for x in sel)
            print(
                f"| {bs} | {threads} | {fit:,.0f} | {own:,.0f} ({best:,.0f}) | {own / fit:.2f}x | "
                f"{cpu_fit:.2f} / {cpu_own:.2f} | {own * flops / 1e9:.0f} | {50000 / own:.0f} |"
            )
    if not args.no_eval:
        print()
        for threads in args.threads_list:
            _run_worker("eval", threads, args)


if __name__ == "__main__":
    main()
