"""Sweeps: grids of training runs through the papermill template, cached, resumable, parallel.

    from vae_utils.experiments import sweep, load_results, load_histories, default_store
    grid = {"batch_size": [32, 64], "learning_rate": [1e-3, 3e-3], "seed": [0, 1, 2], "epochs": 30}
    df = sweep(grid, out=default_store("batch-size"))     # one row per (config, seed)

or ``python -m vae_utils sweep --out DIR --batch-size 32 64 --learning-rate 1e-3 3e-3 --seeds 0 1 2``.

How it runs
-----------
1) The grid is expanded (cartesian product per dict; a list of dicts is a union) and every config
   validated before anything is written: a bad value raises ``ValueError`` naming the field.
2) Each run's id hashes its resolved config and the training code (``provenance.training_version``).
   Runs with an ``ok`` or ``diverged`` record are cached; the rest are pending (a ``failed``
   record is retried by the next call).
3) Pending runs are sorted so runs sharing a compiled graph (batch size, optimizer, ...) sit
   together, and cut into one block per worker of about equal estimated cost. Each worker runs
   the template ``train_vae.ipynb`` (package data beside this module) under papermill, in one kernel, over its block, then over the
   others' blocks from their far ends (work stealing): a per-run ``flock`` makes each run trained
   once, however many kernels or concurrent sweeps share the store. One kernel start (~7 s:
   Python, the kernel, TensorFlow) is paid per worker, not per run.
4) A supervisor per worker watches the kernel's heartbeat: a run past ``timeout_s`` has its
   kernel killed and is recorded as failed; a kernel that dies mid-run fails that run only, and
   a fresh kernel goes on with the rest. A run that raises is recorded as failed by the kernel.
5) Workers are threads of this process supervising papermill subprocesses (``workers``, default:
   ``$VAE_SWEEP_WORKERS`` or one per core; TensorFlow threads = cores / workers), or tasks on a Dask cluster
   (``scheduler="tcp://host:8786"`` or a ``distributed.Client``), submitted with ``client.submit``;
   the store must then be on a filesystem the workers share.

SIGKILL at any time loses nothing complete: records are written atomically and the record is the
completion marker; the killed kernels' locks vanish with them; the next call re-runs the rest.
"""

from __future__ import annotations

import contextlib
import itertools
import math
import os
import secrets
import signal
import subprocess
import sys
import time
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path

import numpy as np
import pandas as pd

from ..config import TrainConfig
from ..data import TRAIN_SIZES
from ..provenance import training_version
from . import store
from .grid import default_store, expand_grid
from .results import records_to_frame
from .template import TEMPLATE

__all__ = ["sweep", "default_workers", "run_slice", "format_summary"]

WORKERS_ENV = "VAE_SWEEP_WORKERS"  # overrides the default worker count (one per core)
POLL_S = 0.25  # how often supervisors and the progress bar look at the store
STARTUP_TIMEOUT_S = 300.0  # a kernel that has not said hello by then is killed
KILL_GRACE_S = 30.0  # how long papermill may take to notice its kernel died
MAX_IDLE_ROUNDS = 3  # rounds of kernels that finish none of the remaining runs before those are failed
THREAD_ENV = (
    "TF_NUM_INTRAOP_THREADS",
    "TF_NUM_INTEROP_THREADS",
    "OMP_NUM_THREADS",
    "OPENBLAS_NUM_THREADS",
    "MKL_NUM_THREADS",
)
GRAPH_FIELDS = ("dataset", "batch_size", "optimizer", "hidden_units", "latent_dim", "kl_schedule", "lr_schedule")
INPUT_DIMS = {"digits": 64, "mnist": 784, "fashion_mnist": 784}  # for the cost estimate; others are 2-D


# -- planning -------------------------------------------------------------------------------


def default_workers() -> int:
    """``$VAE_SWEEP_WORKERS`` if set (e.g. by a driver running several chapters at once), else one
    worker per core this process may use, at most one per 1.5 GB of memory."""
    env = os.environ.get(WORKERS_ENV, "").strip()
    if env:
        if not env.isdigit() or int(env) < 1:
            raise ValueError(f"{WORKERS_ENV}={env!r} is not allowed; allowed: an integer >= 1")
        return int(env)
    cores = len(os.sched_getaffinity(0)) if hasattr(os, "sched_getaffinity") else (os.cpu_count() or 1)
    try:
        mem_gb = os.sysconf("SC_PAGE_SIZE") * os.sysconf("SC_PHYS_PAGES") / 1e9
    except (ValueError, OSError, AttributeError):
        mem_gb = 1e9
    return max(1, min(cores, int(mem_gb // 1.5)))


def _cores() -> int:
    return len(os.sched_getaffinity(0)) if hasattr(os, "sched_getaffinity") else (os.cpu_count() or 1)


def estimated_cost(c: TrainConfig) -> float:
    """Relative training cost: updates weighted by batch width, plus per-epoch and evaluation work."""
    steps = max(1, TRAIN_SIZES[c.dataset] // c.batch_size)
    dim = INPUT_DIMS.get(c.dataset, 2)
    return c.epochs * (steps * (1 + c.batch_size * dim / 32768) + 5) + 50


def _graph_key(c: TrainConfig):
    """Runs of one compiled graph; within it, the seeds of one config next to each other (one stack)."""
    rest = sorted((k, str(v)) for k, v in c.to_dict().items() if k not in GRAPH_FIELDS and k != "seed")
    return (*(str(getattr(c, f)) for f in GRAPH_FIELDS), *rest)


def plan(runs: list[tuple[str, TrainConfig]], n: int) -> list[list[tuple[str, TrainConfig]]]:
    """Cut runs into ``n`` contiguous blocks of about equal estimated cost, runs of one graph together;
    the seeds of one config stay in one block (the template trains them as one stack) unless that
    leaves a worker without a block."""
    runs = sorted(runs, key=lambda r: _graph_key(r[1]))  # stable: a config's seeds in grid order
    n = max(1, min(n, len(runs)))
    costs = np.array([estimated_cost(c) for _, c in runs])
    bounds = np.cumsum(costs) / costs.sum() * n  # block index by cumulative cost (cost midpoints)
    mid = bounds - costs / costs.sum() * n / 2
    idx = np.minimum(mid.astype(int), n - 1)
    keys = [_graph_key(c) for _, c in runs]
    if len(set(keys)) >= n:  # a config's seeds go to the block of the first of them
        first = {}
        idx = [first.setdefault(key, i) for key, i in zip(keys, idx, strict=True)]
    blocks = [[r for r, i in zip(runs, idx, strict=True) if i == k] for k in range(n)]
    return [b for b in blocks if b]


def _steal_order(blocks, k) -> list:
    """Block k first, then the other blocks from their far ends, nearest neighbour first."""
    order = list(blocks[k])
    for j in range(1, len(blocks)):
        order.extend(reversed(blocks[(k + j) % len(blocks)]))
    return order


# -- one worker: a supervised papermill kernel over a slice -------------------------------------


# papermill is started through this stub: it asks Linux to SIGKILL it when its supervisor dies
# (PR_SET_PDEATHSIG), so a killed sweep leaves no orphans (the kernel follows papermill: ipykernel
# exits when its parent goes). Done in the child itself, not in a preexec_fn, which is unsafe in
# a process with threads.
_LAUNCH = """
import ctypes, os, runpy, sys
try:
    ctypes.CDLL(None).prctl(1, 9)  # PR_SET_PDEATHSIG, SIGKILL
except (AttributeError, OSError):
    pass
if os.getppid() != int(sys.argv.pop(1)):  # the supervisor died before prctl took effect
    os._exit(1)
sys.argv[0] = "papermill"
runpy.run_module("papermill", run_name="__main__", alter_sys=True)
"""


def _kill(pid: int) -> None:
    with contextlib.suppress(ProcessLookupError, PermissionError):
        os.kill(pid, signal.SIGKILL)


def _tail(path: Path, n: int = 4000) -> str:
    try:
        return path.read_text(errors="replace")[-n:]
    except OSError:
        return ""


def _fail(out, rid, config, spec, error, traceback, notebook) -> None:
    """Record a run as failed on behalf of a kernel that could not (it died or timed out)."""
    worker = f"{spec['worker']}-supervisor"  # its own heartbeat file: the kernel's stays the kernel's
    with store.claim(out, config, spec["sweep_id"], worker, notebook, spec["version"]) as run:
        if not run.skip:
            run.record_failure(error, traceback)


def _link_notebook(out: Path, nb_rel: str, rids) -> None:
    """Put the executed notebook beside each record it wrote (a hard link; a copy where links fail)."""
    nb = out / nb_rel
    if not nb.exists():
        return
    for rid in rids:
        rec = store.read_record(out, rid)
        if rec is None or rec.get("notebook") != nb_rel:
            continue
        dest = store.run_dir(out, rid) / "train_vae.ipynb"
        tmp = dest.with_name(f".train_vae.{os.getpid()}.tmp")
        try:
            os.link(nb, tmp)
        except OSError:
            import shutil

            shutil.copyfile(nb, tmp)
        os.replace(tmp, dest)


def _worker_threads(spec) -> int:
    if spec.get("threads"):
        return int(spec["threads"])
    try:  # on a Dask worker: share this machine's cores among the worker's task slots
        from distributed import get_worker

        return max(1, _cores() // max(1, get_worker().state.nthreads))
    except (ImportError, ValueError, AttributeError):
        return max(1, _cores())


def run_slice(spec: dict) -> dict:
    """Train a slice of runs in papermill kernels, supervised; returns a log of the kernels.

    ``spec``: out, sweep_id, worker, version, template, timeout_s, threads (or None), runs (a list
    of [run_id, config dict] in the order to try), own (the run ids of this worker's block).
    Runs on this process's thread or on a Dask worker: a plain function of JSON-able data.
    """
    out, sweep_id, worker = Path(spec["out"]), spec["sweep_id"], spec["worker"]
    runs = [(rid, TrainConfig.from_dict(cfg)) for rid, cfg in spec["runs"]]
    own = set(spec["own"])
    timeout_s = spec.get("timeout_s")
    threads = _worker_threads(spec)
    env = dict(os.environ)
    env.update({k: str(threads) for k in THREAD_ENV})
    env.setdefault("TF_CPP_MIN_LOG_LEVEL", "2")
    env.setdefault("PYTHONUNBUFFERED", "1")
    (out / "notebooks").mkdir(parents=True, exist_ok=True)
    heartbeat = out / "workers" / f"{sweep_id}-{worker}.json"
    kernels = []
    for attempt in itertools.count(1):
        pending = [(rid, c) for rid, c in runs if not store.is_done(store.read_record(out, rid), sweep_id)]
        if not pending or attempt > len(runs) + 1:
            break
        stem = f"{sweep_id}-{worker}-{attempt}"
        nb_rel = f"notebooks/{stem}.ipynb"
        runs_file = out / "notebooks" / f"{stem}.runs.json"
        store.write_json(runs_file, [c.to_dict() for _, c in pending])
        log = out / "notebooks" / f"{stem}.log"
        cmd = [sys.executable, "-c", _LAUNCH, str(os.getpid()), str(spec["template"]), str(out / nb_rel)]
        cmd += ["--no-progress-bar"]
        cmd += ["-r", "runs_json", str(runs_file), "-r", "out", str(out), "-r", "sweep_id", sweep_id]
        cmd += ["-r", "worker", worker, "-r", "notebook", nb_rel, "-p", "threads", str(threads)]
        launched = time.time()
        timed_out = None
        with open(log, "w") as logf:
            proc = subprocess.Popen(cmd, stdout=logf, stderr=subprocess.STDOUT, env=env)
            killed_at = None
            while proc.poll() is None:
                time.sleep(POLL_S)
                hb = store.read_json(heartbeat) or {}
                fresh = hb.get("time", 0) >= launched
                if killed_at is not None:
                    if time.time() - killed_at > KILL_GRACE_S:
                        proc.kill()
                    continue
                if fresh and hb.get("run_id") and timeout_s and time.time() - hb["started"] > timeout_s:
                    timed_out = hb["run_id"]
                    _kill(hb["pid"])
                    killed_at = time.time()
                elif not fresh and time.time() - launched > STARTUP_TIMEOUT_S:
                    proc.kill()
                    killed_at = time.time()
            rc = proc.wait()
        ended = time.time()
        hb = store.read_json(heartbeat) or {}
        current = hb.get("run_id") if hb.get("time", 0) >= launched else None
        trained = [
            rid
            for rid, _ in pending
            if (r := store.read_record(out, rid)) is not None
            and r.get("notebook") == nb_rel
            and r["status"] in store.DONE
        ]
        kernels.append(
            {"worker": worker, "attempt": attempt, "launched": launched, "ended": ended, "wall_s": ended - launched}
            | {"rc": rc, "notebook": nb_rel, "trained": trained, "threads": threads}
        )
        if rc == 0:
            _link_notebook(out, nb_rel, [rid for rid, _ in pending])
            break
        configs = dict(pending)
        if current and current in configs and not store.is_done(store.read_record(out, current), sweep_id):
            if timed_out == current:
                error = f"TimeoutError: run exceeded timeout_s={timeout_s:g} s; its kernel was killed"
            else:
                error = f"KernelDied: the kernel died while training this run (papermill exit code {rc})"
            _fail(out, current, configs[current], spec, error, _tail(log), nb_rel)
        elif not current:  # the template failed outside any run: fail this block's runs, try no more
            error = f"TemplateError: the notebook failed outside a run (papermill exit code {rc})"
            for rid, c in pending:
                if rid in own and not store.is_locked(out, rid):
                    _fail(out, rid, c, spec, error, _tail(log), nb_rel)
            _link_notebook(out, nb_rel, [rid for rid, _ in pending])
            break
        _link_notebook(out, nb_rel, [rid for rid, _ in pending])
    heartbeat.unlink(missing_ok=True)
    return {"worker": worker, "kernels": kernels}


# -- the sweep --------------------------------------------------------------------------------


def _dask_client(scheduler):
    from distributed import Client

    if isinstance(scheduler, Client):
        return scheduler, False
    return Client(scheduler), True


def _dask_threads(client) -> int:
    """TensorFlow threads per task slot on the cluster: the tightest host's cores / its slots."""
    cores = client.run(_cores)
    per_host: dict = {}
    for addr, info in client.scheduler_info()["workers"].items():
        host = info.get("host", addr)
        n_cores, slots = per_host.get(host, (cores.get(addr, 1), 0))
        per_host[host] = (n_cores, slots + info.get("nthreads", 1))
    return max(1, min(c // max(1, s) for c, s in per_host.values())) if per_host else 1


class _Progress:
    """A tqdm bar over this sweep's pending runs, advanced by watching the store."""

    def __init__(self, out, rids, sweep_id, enabled, name):
        from tqdm import tqdm  # plain text: no widget dependency in notebooks

        self.out, self.rids, self.sweep_id = out, list(rids), sweep_id
        self.bar = tqdm(
            total=len(self.rids),
            desc=f"sweep {name}",
            unit="run",
            disable=not enabled,
            file=sys.stderr,
            mininterval=1.0,
        )
        self.done: set = set()

    def poll(self) -> None:
        for rid in self.rids:
            if rid not in self.done and store.is_done(store.read_record(self.out, rid), self.sweep_id):
                self.done.add(rid)
                self.bar.update(1)

    def close(self) -> None:
        self.poll()
        self.bar.close()


def _execute(out, pending, workers, scheduler, timeout_s, progress, sweep_id, version) -> list[dict]:
    """Run the pending runs; returns the kernel logs. Loops while runs remain that nobody holds."""
    client, own_client = (None, False) if scheduler is None else _dask_client(scheduler)
    try:
        if client is not None:
            slots = workers or max(1, sum(client.nthreads().values()))
            threads = _dask_threads(client)
        else:
            slots = workers or default_workers()
            threads = max(1, _cores() // min(slots, len(pending)))
        bar = _Progress(out, [rid for rid, _ in pending], sweep_id, progress, out.name)
        kernels: list[dict] = []
        todo, idle_rounds = pending, 0
        for round_ in itertools.count(1):
            if not todo:
                break
            free = [(rid, c) for rid, c in todo if not store.is_locked(out, rid)]
            if not free:  # another sweep trains them: wait for it (or for its death)
                time.sleep(POLL_S * 2)
                bar.poll()
                todo = [(rid, c) for rid, c in todo if not store.is_done(store.read_record(out, rid), sweep_id)]
                continue
            blocks = plan(free, slots)
            specs = [
                {
                    "out": str(out),
                    "sweep_id": sweep_id,
                    "worker": f"w{k}" if round_ == 1 else f"w{k}r{round_}",  # names files: unique per sweep
                    "version": version,
                    "template": str(TEMPLATE),
                    "timeout_s": timeout_s,
                    "threads": threads,
                    "runs": [(rid, c.to_dict()) for rid, c in _steal_order(blocks, k)],
                    "own": [rid for rid, _ in blocks[k]],
                }
                for k in range(len(blocks))
            ]
            if client is not None:
                futures = [client.submit(run_slice, s, pure=False) for s in specs]
                while not all(f.done() for f in futures):
                    time.sleep(POLL_S)
                    bar.poll()
                outcomes = [(f.result() if f.status == "finished" else f.exception()) for f in futures]
            else:
                with ThreadPoolExecutor(max_workers=len(specs)) as pool:
                    futures = [pool.submit(run_slice, s) for s in specs]
                    while not all(f.done() for f in futures):
                        time.sleep(POLL_S)
                        bar.poll()
                    outcomes = [(f.exception() or f.result()) for f in futures]
            for spec, o in zip(specs, outcomes, strict=True):
                if isinstance(o, BaseException):  # the supervisor itself failed: fail its block, say why
                    error = f"WorkerError: {type(o).__name__}: {o}"
                    for rid, c in spec["runs"]:
                        if rid in spec["own"] and not store.is_locked(out, rid):
                            _fail(out, rid, TrainConfig.from_dict(c), spec, error, "", "")
                else:
                    kernels.extend(o["kernels"])
            left = [(rid, c) for rid, c in todo if not store.is_done(store.read_record(out, rid), sweep_id)]
            # A round that finished nothing happens when another sweep held these runs as we passed
            # them; try again, but not forever.
            idle_rounds = idle_rounds + 1 if len(left) == len(todo) else 0
            if idle_rounds >= MAX_IDLE_ROUNDS:
                for rid, c in left:
                    if not store.is_locked(out, rid):
                        spec = {"sweep_id": sweep_id, "worker": "sweep", "version": version}
                        _fail(out, rid, c, spec, "NotRun: no worker could run it (see the sweep's notebooks)", "", "")
                idle_rounds = 0
                left = [(rid, c) for rid, c in left if not store.is_done(store.read_record(out, rid), sweep_id)]
            todo = left
        bar.close()
        return kernels
    finally:
        if own_client:
            client.close()


def _check_args(workers, timeout_s):
    if workers is not None and (isinstance(workers, bool) or not isinstance(workers, int) or workers < 1):
        raise ValueError(f"workers={workers!r} is not allowed; allowed: an integer >= 1, or None (one per core)")
    if timeout_s is not None and (
        isinstance(timeout_s, bool) or not isinstance(timeout_s, (int, float)) or not timeout_s > 0
    ):
        raise ValueError(f"timeout_s={timeout_s!r} is not allowed; allowed: a number of seconds > 0, or None")


def sweep(grid, out=None, workers=None, scheduler=None, timeout_s=None, progress=True) -> pd.DataFrame:
    """Train every run of ``grid`` that the store ``out`` does not hold yet; return the grid's results.

    Returns one row per run (config, seed) in grid order, with the ``TrainConfig`` columns,
    ``run_id``, ``status`` (ok, diverged, failed), ``error``, the scalar metrics and
    ``kl_per_dim``. ``df.attrs["summary"]`` holds ran / cached / diverged / failed counts, the
    failures, and the cost: ``kernel_s`` (kernel process time, summed over workers), ``run_s``
    (time inside runs: ``train`` with its evaluation, and the record), ``train_loop_s`` (the
    epoch loops alone) and ``overhead = 1 - run_s / kernel_s`` (kernel starts, imports, idle
    tails). See the module docstring.
    """
    configs = expand_grid(grid)  # 1) validate everything before touching the store
    _check_args(workers, timeout_s)
    out = Path(out) if out is not None else default_store("default")
    out = out.resolve()
    t0 = time.time()
    version = training_version()
    rids = [store.run_id(c, version) for c in configs]
    sweep_id = f"{time.strftime('%Y%m%dT%H%M%S')}-{os.getpid()}-{secrets.token_hex(2)}"
    for sub in ("runs", "notebooks", "workers", "sweeps"):
        (out / sub).mkdir(parents=True, exist_ok=True)

    # 2) cached runs
    before = {rid: store.read_record(out, rid) for rid in rids}
    pending = [(rid, c) for rid, c in zip(rids, configs, strict=True) if not store.is_done(before[rid])]
    manifest = {"sweep_id": sweep_id, "code_version": version, "started": t0, "runs": rids, "workers": workers}
    manifest["scheduler"] = None if scheduler is None else str(scheduler)
    store.write_json(out / "sweeps" / f"{sweep_id}.json", manifest)

    # 3) run what is missing
    kernels = _execute(out, pending, workers, scheduler, timeout_s, progress, sweep_id, version) if pending else []

    # 4) the grid's rows
    recs = {rid: store.read_record(out, rid) for rid in rids}
    df = records_to_frame([recs[rid] for rid in rids if recs[rid] is not None])
    summary = _summary(df, pending, kernels, recs, time.time() - t0)
    df.attrs["summary"] = summary
    manifest.update(finished=time.time(), kernels=kernels, summary=summary)
    store.write_json(out / "sweeps" / f"{sweep_id}.json", manifest)
    if progress:
        print(format_summary(summary, out), file=sys.stderr)
    return df


def _summary(df, pending, kernels, recs, wall_s) -> dict:
    trained = [recs.get(rid) or {} for rid in {rid for k in kernels for rid in k["trained"]}]
    run_s = sum(r.get("run_wall_s") or 0.0 for r in trained)  # train(): loop, evaluation; + the record
    loop_s = sum(r.get("metrics", {}).get("wall_time_s") or 0.0 for r in trained)  # the epoch loop alone
    kernel_s = sum(k["wall_s"] for k in kernels)
    failed = df.loc[df["status"] == "failed", ["run_id", "error"]]
    return {
        "runs": len(df),
        "ran": len(pending),
        "cached": len(df) - len(pending),
        "ok": int((df["status"] == "ok").sum()),
        "diverged": int((df["status"] == "diverged").sum()),
        "failed": len(failed),
        "failures": [{"run_id": r, "error": e} for r, e in zip(failed["run_id"], failed["error"], strict=True)],
        "wall_s": wall_s,
        "kernels": len(kernels),
        "kernel_s": kernel_s,
        "run_s": run_s,
        "train_loop_s": loop_s,
        "overhead": (1 - run_s / kernel_s) if kernel_s > 0 else math.nan,
    }


def format_summary(s: dict, out=None) -> str:
    line = (
        f"sweep: {s['runs']} runs: ran {s['ran']}, cached {s['cached']}, diverged {s['diverged']}, failed {s['failed']}"
    )
    line += f" in {s['wall_s']:.1f} s"
    if s["kernels"]:
        line += f"; {s['kernels']} kernel(s), {s['overhead']:.0%} of kernel time outside train()"
    if out is not None:
        line += f"\nstore: {out}"
    for f in s["failures"]:
        line += f"\nFAILED {f['run_id']}: {f['error']}"
    return line
