"""Faults of sweeps, for real: failing, diverging and timed-out runs, SIGKILL and resume, two sweeps
on one store, and the Dask path on a loopback ``distributed.LocalCluster``.

Run: ``.venv/bin/pytest tests/test_sweeps_faults.py`` (all ``slow``: each starts kernels, ~20-60 s).
"""

import json
import os
import signal
import subprocess
import sys
import time
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path

import pytest

from vae_utils.experiments import expand_grid, load_results, store, sweep

pytestmark = pytest.mark.slow

TINY = {"dataset": "digits", "epochs": 1, "eval_k": 10}


def cli(*args, **kwargs):
    return [sys.executable, "-m", "vae_utils", "sweep", "--no-progress", *map(str, args)]


def alive(pid: int) -> bool:
    """Whether a process runs (a zombie waiting for its reaper counts as dead)."""
    try:
        state = Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()[0]
    except (FileNotFoundError, IndexError):
        return False
    return state not in ("Z", "X")


def records(out) -> dict:
    """run_id -> the raw text of each complete record."""
    return {
        d.name: (d / "record.json").read_text()
        for d in sorted((Path(out) / "runs").iterdir())
        if store.read_record(out, d.name) is not None
    }


def test_a_failing_and_a_diverging_run_are_recorded_and_the_rest_of_the_sweep_completes(tmp_path, monkeypatch):
    """Through the CLI with a YAML grid: the diverging run is data (``diverged``), the failing one
    (MNIST with an empty Keras cache, offline) is ``failed`` with its traceback and executed
    notebook; the CLI exits 1 naming it. The same grid again retries only the failed run."""
    out = tmp_path / "store"
    (tmp_path / "grid.yaml").write_text(
        "- {batch_size: 64, learning_rate: 1e-3}  # YAML reads 1e-3 as a string; the CLI makes it a number\n"
        "- {optimizer: sgd, learning_rate: 100}\n"
        "- {dataset: mnist, batch_size: 64}\n"
    )
    cmd = cli("--out", out, "--grid", tmp_path / "grid.yaml", "--epochs", 1, "--eval-k", 10, "--workers", 1)
    env = {**os.environ, "KERAS_HOME": str(tmp_path / "empty-keras"), "VAE_UTILS_OFFLINE": "1"}
    proc = subprocess.run(cmd, capture_output=True, text=True, env=env, timeout=600)
    assert proc.returncode == 1, proc.stderr[-3000:]
    df = load_results(out).set_index("dataset")
    assert df.loc["mnist", "status"] == "failed"
    assert f"FAILED {df.loc['mnist', 'run_id']}: RuntimeError" in proc.stderr
    assert "ran 3, cached 0, diverged 1, failed 1" in proc.stderr
    ok = df[df["status"] == "ok"]
    assert len(ok) == 1 and ok["learning_rate"].iloc[0] == 1e-3 and ok["test_elbo"].notna().all()
    div = df[df["status"] == "diverged"]
    assert len(div) == 1 and div["optimizer"].iloc[0] == "sgd" and div["diverged_epoch"].iloc[0] == 1

    failed = store.read_record(out, df.loc["mnist", "run_id"])
    assert "not in the Keras cache" in failed["traceback"] and failed["error"].startswith("RuntimeError")
    notebook = store.run_dir(out, failed["run_id"]) / "train_vae.ipynb"
    assert "not in the Keras cache" in notebook.read_text(), "the executed notebook shows the traceback"

    for k in ("KERAS_HOME", "VAE_UTILS_OFFLINE"):  # the kernels of an in-process sweep inherit them
        monkeypatch.setenv(k, env[k])
    grid = [{"batch_size": 64}, {"optimizer": "sgd", "learning_rate": 100}, {"dataset": "mnist"}]
    again = sweep([{**g, "epochs": 1, "eval_k": 10} for g in grid], out, workers=1, progress=False)
    s = again.attrs["summary"]
    assert (s["ran"], s["cached"], s["diverged"], s["failed"]) == (1, 2, 1, 1)
    assert store.read_record(out, failed["run_id"])["sweep_id"] != failed["sweep_id"], "retried"


def test_a_sweep_killed_with_sigkill_resumes_without_losing_or_recomputing_runs(tmp_path):
    """SIGKILL the CLI mid-sweep: its kernel dies with it, completed records stay; a crafted record
    (valid JSON without a status) counts as missing, with a warning naming its file; the same
    command again trains exactly the runs left and removes the dead sweep's heartbeats."""
    out = tmp_path / "store"
    # six configs, not six seeds of one: a kernel trains a config's seeds as one stack and records them together
    rates = [1e-3, 2e-3, 3e-3, 4e-3, 5e-3, 6e-3]
    grid = {"dataset": "digits", "batch_size": 16, "epochs": 20, "eval_k": 10, "learning_rate": rates, "seed": 0}
    rids = [store.run_id(c) for c in expand_grid(grid)]
    cmd = cli("--out", out, "--batch-size", 16, "--epochs", 20, "--eval-k", 10, "--learning-rate", *rates)
    cmd += ["--seeds", "0", "--workers", "1"]
    proc = subprocess.Popen(cmd, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
    deadline = time.time() + 300
    while time.time() < deadline and sum(store.read_record(out, r) is not None for r in rids) < 2:
        time.sleep(0.05)
    heartbeat = next((out / "workers").glob("*-w0.json"))
    kernel_pid = store.read_json(heartbeat)["pid"]
    proc.send_signal(signal.SIGKILL)
    proc.wait()
    kept = records(out)
    assert 2 <= len(kept) < 6, "the kill should land mid-way"

    t0 = time.time()  # the orphaned kernel must not go on training
    while alive(kernel_pid) and time.time() - t0 < 120:  # it notices within a second; the rest is for a loaded machine
        time.sleep(0.2)
    assert not alive(kernel_pid)
    assert records(out) == kept

    missing = [r for r in rids if r not in kept]
    crafted = store.run_dir(out, missing[0]) / "record.json"
    crafted.parent.mkdir(parents=True, exist_ok=True)
    crafted.write_text(json.dumps({"run_id": missing[0], "complete": True, "config": {}}))
    dead_beats = sorted(p.name for p in (out / "workers").iterdir())
    assert dead_beats, "the killed sweep left its kernel's heartbeat"

    again = subprocess.run(cmd, capture_output=True, text=True, timeout=600)
    assert again.returncode == 0, again.stderr[-3000:]
    assert f"{crafted}: its status None is not one of ok, diverged, failed" in again.stderr
    assert f"ran {6 - len(kept)}, cached {len(kept)}" in again.stderr
    assert not list((out / "workers").iterdir()), f"heartbeats left: {dead_beats}"
    after = records(out)
    assert set(after) == set(rids)
    assert {r: after[r] for r in kept} == kept, "completed records are never rewritten"
    assert json.loads(after[missing[0]])["status"] == "ok"


def test_two_sweeps_on_one_store_at_once_train_each_run_once_and_agree(tmp_path):
    """Overlapping grids started together (two threads: each sweep has its own kernels, and flock
    locks are per open file, as between processes): every run is trained by exactly one kernel,
    both sweeps return the shared runs with identical numbers, and the store reads back whole."""
    out = tmp_path / "store"
    # the shared runs (batch 16) come first in both sweeps, so both kernels meet on them
    grids = [{**TINY, "epochs": 2, "batch_size": [16, b], "seed": [0, 1, 2]} for b in (32, 64)]
    with ThreadPoolExecutor(2) as pool:
        a, b = pool.map(lambda g: sweep(g, out, workers=1, progress=False), grids)
    df = load_results(out)
    assert len(df) == 9 and set(df["status"]) == {"ok"} and sorted(set(df["batch_size"])) == [16, 32, 64]
    trained = []  # every kernel prints "<status> <run_id> <config>" for each run it trained
    for nb in (out / "notebooks").glob("*.ipynb"):
        for cell in json.loads(nb.read_text())["cells"]:
            for output in cell.get("outputs", []):
                lines = "".join(output.get("text", "")).splitlines()
                trained += [line.split()[1] for line in lines if line.startswith("ok ")]
    assert sorted(trained) == sorted(df["run_id"]), "each run trained exactly once"
    shared = a.merge(b, on="run_id", suffixes=("_a", "_b"))
    assert len(shared) == 3 and (shared["test_elbo_a"] == shared["test_elbo_b"]).all()
    ran = a.attrs["summary"]["ran"] + b.attrs["summary"]["ran"]
    assert ran == 9, "each sweep's summary counts the runs it trained, not the runs it found pending"


def test_a_run_past_its_timeout_is_failed_and_the_rest_completes(tmp_path):
    """The supervisor kills the kernel of a run past ``timeout_s``, records a TimeoutError, and
    the sweep returns with the other run trained. The timeout is 90 s: an ordinary one-epoch run
    takes about a second, so no machine, however loaded, times it out; the long run (200,000 epochs
    at batch 8, half an hour here, minutes on a machine ten times faster) always passes it."""
    out = tmp_path / "store"
    grid = [{**TINY, "batch_size": 64}, {**TINY, "batch_size": 8, "epochs": 200_000}]
    df = sweep(grid, out, workers=1, timeout_s=90, progress=False)
    status = dict(zip(df["batch_size"], df["status"], strict=True))
    assert status == {64: "ok", 8: "failed"}
    error = df.set_index("batch_size").loc[8, "error"]
    assert error.startswith("TimeoutError") and "timeout_s=90" in error
    assert not store.is_locked(out, df.set_index("batch_size").loc[8, "run_id"])


def test_the_dask_path_sends_the_same_runs_to_a_real_local_cluster(tmp_path):
    """``scheduler=<address>``: the slices run as ``run_slice`` tasks on a loopback LocalCluster,
    and the store holds the same kind of records as a local sweep."""
    from distributed import Client, LocalCluster

    out = tmp_path / "store"
    with LocalCluster(
        n_workers=1, threads_per_worker=1, processes=True, host="127.0.0.1", dashboard_address=None
    ) as cluster:
        df = sweep({**TINY, "batch_size": [32, 64]}, out, scheduler=cluster.scheduler_address, progress=False)
        with Client(cluster.scheduler_address) as client:
            prefixes = client.run_on_scheduler(lambda dask_scheduler: sorted(dask_scheduler.task_prefixes))
    assert "run_slice" in prefixes
    assert list(df["status"]) == ["ok", "ok"] and df["test_elbo"].notna().all()
    assert df.attrs["summary"]["ran"] == 2
    manifest = json.loads(next((out / "sweeps").glob("*.json")).read_text())
    assert manifest["scheduler"] == cluster.scheduler_address
    assert all(store.read_record(out, r)["notebook"] for r in df["run_id"])
