"""Where a sweep run's time goes: kernel start, data, compiling, training, validation, evaluation, the record.

    .venv/bin/python benchmarks/run_breakdown.py                      # the sweep_grid grid, 1 thread
    .venv/bin/python benchmarks/run_breakdown.py --seeds 0 1 2 3 4 5 6 7 8 9 --epochs 30
    PYTHONPATH=/tmp/old .venv/bin/python benchmarks/run_breakdown.py  # an older vae_utils (before/after)

Part 1 (in this process, as a sweep kernel would): the template's training cell over a grid,
each run claimed, trained and recorded in a scratch store, with timers around the toolkit's
parts (wrapped here, the code is unchanged): loading the dataset, the initial weights, compiling
a new graph (the first epoch of a graph: tracing, XLA), the compiled epochs (training, and on
the fast path the per-epoch validation ELBO inside them), the per-epoch validation outside them
(Keras path), the held-out evaluation (IWAE with ``eval_k`` samples on the test set + the
training-set ELBO), the record (JSON + Parquet, fsynced) and the rest (host bookkeeping). CPU
seconds and wall seconds both: the machine is shared, and CPU time is what contention disturbs
least. Seeds of one config train together when the toolkit has ``train_seeds`` (the template's
cell), one by one otherwise.

Part 2 (``--kernel``): the cost of a sweep kernel outside runs, from a real one-run sweep
through papermill: kernel time minus the run's own time (Python, the kernel, TensorFlow and
vae_utils imports, the first trace, papermill's notebook writing).
"""

from __future__ import annotations

import argparse
import collections
import contextlib
import os
import shutil
import sys
import tempfile
import time
from pathlib import Path

os.environ.setdefault("TF_CPP_MIN_LOG_LEVEL", "2")

BATCH_SIZES = [16, 32, 64, 128, 256, 512]
LEARNING_RATES = [1e-4, 3e-4, 1e-3, 3e-3, 1e-2]

T = collections.defaultdict(lambda: [0.0, 0.0])  # part -> [wall s, CPU s]


@contextlib.contextmanager
def timed(part: str):
    w, c = time.perf_counter(), time.process_time()
    try:
        yield
    finally:
        T[part][0] += time.perf_counter() - w
        T[part][1] += time.process_time() - c


def wrap(obj, name: str, part: str) -> None:
    """Time every call of ``obj.name`` under ``part`` (nested timings are subtracted by the caller)."""
    if not hasattr(obj, name):
        return
    f = getattr(obj, name)

    def g(*a, **k):
        with timed(part):
            return f(*a, **k)

    setattr(obj, name, g)


def instrument():
    """Wrap the toolkit's parts; returns the names of the parts that nest inside train()."""
    from vae_utils.core import training

    try:  # where the held-out evaluation and the initial weights live since the engines share them
        from vae_utils.core import result
    except ImportError:  # an older vae_utils: in training
        result = training
    wrap(training, "load_dataset", "load the dataset")  # (cached per process where the toolkit caches it)
    for module in {training, result}:
        wrap(module, "build_vae", "build_vae (initial weights)")
    wrap(training, "_val_elbo", "per-epoch validation (outside the compiled epoch)")
    wrap(result, "_held_out_metrics", "held-out evaluation (IWAE + training-set ELBO)")
    seen = set()

    def epochs(trainer_cls, attr="run_epoch"):
        """Time the compiled epoch of every trainer; its first call per trainer is compiling."""
        init = trainer_cls.__init__

        def new_init(self, *a, **k):
            init(self, *a, **k)
            f = getattr(self, attr)

            def g(*aa, **kk):
                part = "compiled epochs (training)" if id(self) in seen else "compiling a new graph (first epoch)"
                seen.add(id(self))
                with timed(part):
                    out = f(*aa, **kk)
                    [v.numpy() for v in out if hasattr(v, "numpy")]  # wait for the result
                return out

            setattr(self, attr, g)

        trainer_cls.__init__ = new_init

    epochs(training._Trainer)
    try:
        from vae_utils.core import fastpath

        epochs(fastpath.StackedTrainer)
        wrap(fastpath, "val_noise", "validation noise")
    except ImportError:
        pass


def grid(seeds: list[int], epochs: int) -> list:
    from vae_utils import TrainConfig

    return [
        TrainConfig(dataset="digits", batch_size=b, learning_rate=lr, seed=s, epochs=epochs)
        for b in BATCH_SIZES
        for lr in LEARNING_RATES
        for s in seeds
    ]


def run_cell(configs, out: Path) -> int:
    """The template's training cell: claim, train (seeds together when possible), record."""
    from vae_utils.core import training
    from vae_utils.experiments import store

    groups = training.seed_groups(configs) if hasattr(training, "seed_groups") else [[c] for c in configs]
    n = 0
    for group in groups:
        with contextlib.ExitStack() as claims:
            with timed("claim (lock, record check)"):
                runs = [claims.enter_context(store.claim(out, c, "bench", "w0", "nb.ipynb", "v")) for c in group]
            with timed("train()"):
                if len(runs) > 1:
                    results = training.train_seeds([r.config for r in runs])
                else:
                    results = [training.train(runs[0].config)]
            for run, result in zip(runs, results, strict=True):
                with timed("record (JSON + Parquet, fsync)"):
                    run.record(result)
                n += 1
    return n


def kernel_overhead(threads: int) -> tuple[float, float, float]:
    """(kernel wall s, the run's own s, load) of a one-run sweep through papermill."""
    from vae_utils.experiments import sweep

    out = Path(tempfile.mkdtemp(prefix="kernel-bench-"))
    try:
        os.environ["VAE_SWEEP_WORKERS"] = "1"
        df = sweep({"dataset": "digits", "batch_size": 512, "epochs": 1, "eval_k": 1}, out, progress=False)
        s = df.attrs["summary"]
        return s["kernel_s"], s["run_s"], os.getloadavg()[0]
    finally:
        shutil.rmtree(out, ignore_errors=True)


def main(argv=None) -> int:
    p = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    p.add_argument("--seeds", type=int, nargs="+", default=[0, 1, 2])
    p.add_argument("--epochs", type=int, default=30)
    p.add_argument("--threads", type=int, default=1, help="TensorFlow threads, as a sweep worker on 2 cores gets")
    p.add_argument("--kernel", action="store_true", help="also time a sweep kernel's start through papermill")
    args = p.parse_args(argv)

    with timed("import TensorFlow + vae_utils"):
        import tensorflow as tf

        tf.config.threading.set_intra_op_parallelism_threads(args.threads)
        tf.config.threading.set_inter_op_parallelism_threads(args.threads)
        import vae_utils
        from vae_utils.core import training  # noqa: F401
    instrument()
    configs = grid(args.seeds, args.epochs)
    out = Path(tempfile.mkdtemp(prefix="breakdown-"))
    load0 = os.getloadavg()
    try:
        with timed("total"):
            n = run_cell(configs, out)
    finally:
        shutil.rmtree(out, ignore_errors=True)
    load1 = os.getloadavg()

    nested = [
        "load the dataset",
        "build_vae (initial weights)",
        "validation noise",
        "compiling a new graph (first epoch)",
        "compiled epochs (training)",
        "per-epoch validation (outside the compiled epoch)",
        "held-out evaluation (IWAE + training-set ELBO)",
    ]
    rest = [T["train()"][i] - sum(T[k][i] for k in nested) for i in (0, 1)]
    total = T["total"]
    print(f"# run breakdown: vae_utils {vae_utils.__file__}")
    print(
        f"{n} runs ({len(BATCH_SIZES)} batch sizes x {len(LEARNING_RATES)} learning rates x {len(args.seeds)} seeds),"
    )
    print(f"digits, {args.epochs} epochs, {args.threads} thread(s); load {load0[0]:.1f} -> {load1[0]:.1f}")
    print()
    print("| part | wall s | CPU s | CPU ms per run | share of CPU |")
    print("|---|---:|---:|---:|---:|")
    rows = [*nested, "train(): the rest (host bookkeeping, weights, results)", "claim (lock, record check)"]
    rows += ["record (JSON + Parquet, fsync)"]
    for part in rows:
        w, c = rest if part.startswith("train(): the rest") else T[part]
        if w or c:
            print(f"| {part} | {w:.1f} | {c:.1f} | {c / n * 1e3:.0f} | {c / total[1]:.0%} |")
    print(f"| all runs | {total[0]:.1f} | {total[1]:.1f} | {total[1] / n * 1e3:.0f} | 100% |")
    print(
        f"| (once per kernel) import TensorFlow + vae_utils | {T['import TensorFlow + vae_utils'][0]:.1f} | "
        f"{T['import TensorFlow + vae_utils'][1]:.1f} | | |"
    )
    if args.kernel:
        kernel_s, run_s, load = kernel_overhead(args.threads)
        print(
            f"\nsweep kernel through papermill, one tiny run: kernel {kernel_s:.1f} s, run {run_s:.2f} s, "
            f"outside runs {kernel_s - run_s:.1f} s (load {load:.1f})"
        )
    return 0


if __name__ == "__main__":
    sys.exit(main())
