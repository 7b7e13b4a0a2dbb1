"""Shared fixtures for the vae_utils tests: one digits dataset and one short trained run per session.

Every test runs offline on the CPU. Training a model costs seconds, so tests that only need
*a* trained digits VAE share ``trained_digits`` instead of training their own.
"""

import contextlib
import json
import os
import signal
import subprocess
import sys
import time
from pathlib import Path

os.environ.setdefault("VAE_UTILS_OFFLINE", "1")  # no test may reach for the network
os.environ.setdefault("TF_CPP_MIN_LOG_LEVEL", "2")

# The processes the tests start get SIGINT's default disposition, however pytest was started. A
# background job (`nohup make test &`, `make test-busy`) inherits SIGINT ignored, an ignored signal
# stays ignored across exec, and the commands under test rightly keep what they inherit: the Ctrl-C
# tests' commands would then ignore their Ctrl-C. A handled signal is reset to the default at exec.
if signal.getsignal(signal.SIGINT) is signal.SIG_IGN:
    signal.signal(signal.SIGINT, signal.default_int_handler)

import pytest

import vae_utils

# Metrics that measure the machine, not the computation: excluded from determinism checks.
TIMING_KEYS = frozenset({"wall_time_s", "train_time_s", "samples_per_s", "peak_memory_mb"})

# The short digits run shared by the tests (issue 2: "a short digits run").
DIGITS_RUN = dict(dataset="digits", batch_size=64, learning_rate=1e-3, optimizer="adam", epochs=20, eval_k=200)


# Modules that start first and last under ``make test``'s workers (xdist hands modules out in this order,
# ``--no-loadscope-reorder``): the smoke build of test_book is the longest single piece, so it starts at
# once in one worker while the other runs the rest; test_built_verdicts and test_at_scale_chapter read that
# build, so they come last.
FIRST, LAST = ("test_book.py",), ("test_at_scale_chapter.py", "test_built_verdicts.py")


def pytest_collection_modifyitems(items):
    """Order the modules: FIRST, the rest as collected, LAST (a stable sort: tests keep their order)."""
    rank = lambda item: 0 if item.path.name in FIRST else 2 if item.path.name in LAST else 1
    items.sort(key=rank)


@pytest.fixture(scope="session")
def digits():
    """The digits dataset with the default split."""
    return vae_utils.load_dataset("digits")


@pytest.fixture(scope="session")
def trained_digits():
    """A TrainResult of 20 epochs of Adam (1e-3, batch 64) on digits; shared, never modified."""
    return vae_utils.train(vae_utils.TrainConfig(**DIGITS_RUN))


@pytest.fixture(scope="session")
def timing_keys():
    """Names of the metrics that depend on the machine's speed rather than on the config."""
    return TIMING_KEYS


@pytest.fixture(scope="session")
def assert_same_run():
    """``assert_same_run(a, b)``: two TrainResults are the same run: histories equal in every column but
    wall_time_s, metrics equal but for timing, the same step losses and weights, bit for bit."""
    import numpy as np
    import pandas as pd

    def check(a, b):
        pd.testing.assert_frame_equal(
            a.history.drop(columns="wall_time_s"), b.history.drop(columns="wall_time_s"), check_exact=True
        )
        strip = lambda m: {k: v for k, v in m.items() if k not in TIMING_KEYS}
        assert strip(a.metrics) == strip(b.metrics)
        np.testing.assert_array_equal(a.step_loss, b.step_loss)
        for wa, wb in zip(a.model.get_weights(), b.model.get_weights(), strict=True):
            np.testing.assert_array_equal(wa, wb)

    return check


# -- Dask: a real scheduler and real workers on loopback ----------------------------------------------

DASK = str(Path(sys.executable).parent / "dask")


@pytest.fixture(scope="module")
def dask_scheduler(tmp_path_factory):
    """A ``dask scheduler`` on 127.0.0.1 (no worker); its address."""
    info = tmp_path_factory.mktemp("dask") / "scheduler.json"
    proc = subprocess.Popen(
        [DASK, "scheduler", "--host", "127.0.0.1", "--port", "0", "--no-dashboard", "--scheduler-file", str(info)]
    )
    deadline = time.time() + 120  # a failure bound, never reached by a scheduler that starts
    while not (info.exists() and "address" in info.read_text()):
        if proc.poll() is not None or time.time() > deadline:
            pytest.fail(f"the dask scheduler did not start (exit code {proc.poll()})")
        time.sleep(0.05)
    yield json.loads(info.read_text())["address"]
    proc.terminate()
    proc.communicate(timeout=30)


@contextlib.contextmanager
def dask_workers(address: str, n: int = 1):
    """``n`` ``dask worker`` processes (each with its nanny) on 127.0.0.1, one task slot each, joined
    to the scheduler at ``address``; their processes. They are stopped on leaving."""
    from distributed import Client

    cmd = [DASK, "worker", address, "--host", "127.0.0.1", "--nthreads", "1", "--no-dashboard"]
    procs = [subprocess.Popen(cmd) for _ in range(n)]
    try:
        with Client(address, timeout=30) as client:
            client.wait_for_workers(n, timeout=300)
        yield procs
    finally:
        for proc in procs:
            proc.terminate()
        for proc in procs:
            proc.communicate(timeout=60)
