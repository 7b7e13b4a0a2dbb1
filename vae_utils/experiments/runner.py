"""Sweeps: grids of training runs through the papermill template, cached, resumable, parallel.

    from vae_utils.experiments import sweep, load_results, load_histories, default_store
    grid = {"batch_size": [32, 64], "learning_rate": [1e-3, 3e-3], "seed": [0, 1, 2], "epochs": 30}
    df = sweep(grid, out=default_store("batch-size"))     # one row per (config, seed)

or ``python -m vae_utils sweep --out DIR --batch-size 32 64 --learning-rate 1e-3 3e-3 --seeds 0 1 2``.

How it runs
-----------
1) The grid is expanded (cartesian product per dict; a list of dicts is a union) and every config
   validated before anything is written: a bad value raises ``ValueError`` naming the field. A Dask
   scheduler must answer before the store is touched.
2) Each run's id hashes its resolved config and the training code (``provenance.training_version``).
   Runs with an ``ok`` or ``diverged`` record are cached; the rest are pending (a ``failed``
   record is retried by the next call, and so is a malformed one, with a warning naming it).
3) Pending runs are sorted so runs sharing a compiled graph (batch size, optimizer, ...) sit
   together, and cut into one block per worker of about equal estimated cost. Each worker runs
   the template ``train_vae.ipynb`` (package data beside this module) under papermill, in one kernel,
   over its block, then over the others' blocks from their far ends (work stealing): a per-run
   ``flock`` makes each run trained once, however many kernels or concurrent sweeps share the
   store. One kernel start (~7 s: Python, the kernel, TensorFlow) is paid per worker, not per run.
4) A supervisor per worker watches the kernel's heartbeat: a run past ``timeout_s`` has its
   kernel killed and is recorded as failed; a kernel that dies mid-run fails that run only, and
   a fresh kernel goes on with the rest. A run that raises is recorded as failed by the kernel.
5) Workers are threads of this process supervising papermill subprocesses (``workers``, default:
   ``$VAE_SWEEP_WORKERS`` or one per core; TensorFlow threads = cores / workers), or tasks on a Dask
   cluster (``scheduler="tcp://host:8786"`` or a ``distributed.Client``), submitted with
   ``client.submit``; the store must then be on a filesystem the workers share.

Waiting, interrupting, killing
------------------------------
Runs that another process holds (another sweep on the same store) are waited for; after
``WAIT_REPORT_S`` the sweep says which runs and which pid on which host holds them, and so on
while it waits. A Dask cluster without workers is reported at once. ``wait_s`` bounds both waits:
past it, those runs are returned as ``not run`` (nothing is written for them).

Ctrl-C (SIGINT, to the process group or to this process alone) or SIGTERM (``kill PID``) stops the
sweep: no further run starts, the kernels it started are killed (on Dask workers too, through a stop file in the store),
nothing is recorded as failed that did not fail, and ``SweepInterrupted`` (a ``KeyboardInterrupt``)
is raised with "interrupted: k of n runs complete in STORE; run the same command to resume".
SIGKILL at any time loses nothing complete either: records are written atomically and the record
is the completion marker; papermill and its kernel die with the sweep (``processes.child_command``),
their locks vanish with them; the next call re-runs the rest.

A Dask cluster runs code it is sent: anyone who can reach an unauthenticated scheduler or worker
can execute code on it, and ``dask worker`` listens on all interfaces unless told otherwise. Keep
the scheduler and its workers on loopback for one machine (``dask scheduler --host 127.0.0.1``,
``dask worker tcp://127.0.0.1:8786 --host 127.0.0.1``), or on a private network with TLS
(``distributed.security.Security`` with certificates, given to ``distributed.Client``, and that
client given to ``sweep(..., scheduler=client)``); never expose the scheduler's port to the internet.

Where to extend: ``launch_kernel`` is the one place a kernel process starts (e.g. to wait for a
free CPU slot), and ``Progress`` the one place a sweep reports what it does.
"""

from __future__ import annotations

import contextlib
import math
import os
import secrets
import socket
import subprocess
import sys
import time
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path

import numpy as np
import pandas as pd

from ..core.config import TrainConfig
from ..cpuslots import HELD_ENV, MAX_PROCESSES, check_processes, cpu_slot, slot_count
from ..fileio import atomic_path, write_json
from ..provenance import training_version
from . import ledger, store
from .grid import default_store, estimated_seconds, expand_grid
from .processes import StopRequest, child_command, kill_tree
from .results import records_to_frame
from .template import TEMPLATE

__all__ = [
    "sweep",
    "sweep_each",
    "default_workers",
    "run_slice",
    "format_summary",
    "launch_kernel",
    "Progress",
    "SweepInterrupted",
]

WORKERS_ENV = "VAE_SWEEP_WORKERS"  # overrides the default worker count (one per core)
POLL_S = 0.25  # how often supervisors and the progress bar look at the store
STARTUP_TIMEOUT_S = 300.0  # a kernel that has not said hello by then is killed
KILL_GRACE_S = 30.0  # how long papermill may take to notice its kernel died
MAX_IDLE_ROUNDS = 3  # rounds of kernels that finish none of the remaining runs before those are failed
WAIT_REPORT_S = 30.0  # a wait on runs held by another process is reported after this long, then again
CONNECT_TIMEOUT_S = 10.0  # a Dask scheduler that does not answer by then (or by Dask's connect timeout) is unreachable
ANSWER_TIMEOUT_S = 60.0  # a connected scheduler that does not answer a request by then has stopped answering
WORKER_CHECK_S = 2.0  # how often a Dask sweep asks the scheduler how many workers it has
THREAD_ENV = (
    "TF_NUM_INTRAOP_THREADS",
    "TF_NUM_INTEROP_THREADS",
    "OMP_NUM_THREADS",
    "OPENBLAS_NUM_THREADS",
    "MKL_NUM_THREADS",
)
GRAPH_FIELDS = (
    "dataset", "architecture", "train_size", "batch_size", "optimizer", "hidden_units", "latent_dim", "kl_schedule", "lr_schedule",
    "eval_every",
)  # fmt: skip


class SweepInterrupted(KeyboardInterrupt):
    """Ctrl-C stopped a sweep; its message says how many runs are complete and how to resume."""


# -- planning -------------------------------------------------------------------------------


def default_workers() -> int:
    """``$VAE_SWEEP_WORKERS`` if set (e.g. by a driver running several chapters at once), else one
    worker per core this process may use, at most one per 1.5 GB of memory."""
    env = os.environ.get(WORKERS_ENV, "").strip()
    if env:
        if not env.isdigit() or not 1 <= int(env) <= MAX_PROCESSES:
            raise ValueError(f"{WORKERS_ENV}={env!r} is not allowed; allowed: an integer from 1 to {MAX_PROCESSES}")
        return int(env)
    try:
        mem_gb = os.sysconf("SC_PAGE_SIZE") * os.sysconf("SC_PHYS_PAGES") / 1e9
    except (ValueError, OSError, AttributeError):
        mem_gb = 1e9
    return max(1, min(_cores(), int(mem_gb // 1.5)))


def _cores() -> int:
    return len(os.sched_getaffinity(0)) if hasattr(os, "sched_getaffinity") else (os.cpu_count() or 1)


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
    costs = np.array([estimated_seconds(c) for _, c in runs])
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


# papermill is started by ``child_command``: Linux SIGKILLs it when its supervisor dies
# (PR_SET_PDEATHSIG), so a killed sweep leaves no orphans (the kernel follows papermill: ipykernel
# exits when its parent goes). The supervising thread waits for papermill, so it outlives it. Done in
# the child itself, not in a preexec_fn, which is unsafe in a process with threads.

_LOCAL_STOPS: dict[str, StopRequest] = {}  # sweep id -> its stop request, for workers in this process


def _stop_path(out, sweep_id: str) -> Path:
    return Path(out) / "sweeps" / f"{sweep_id}.stop"


def _stop_requested(spec) -> bool:
    """Whether the sweep asked its workers to stop: in this process, or by its stop file (Dask)."""
    local = _LOCAL_STOPS.get(spec["sweep_id"])
    return (local is not None and local.is_set()) or _stop_path(spec["out"], spec["sweep_id"]).exists()


def launch_kernel(cmd: list[str], log, env: dict) -> subprocess.Popen:
    """Start one papermill process (which starts its kernel), output to the open file ``log``.

    The one place a sweep starts a process; ``kill_tree(proc.pid)`` stops it and its kernel."""
    return subprocess.Popen(cmd, stdout=log, stderr=subprocess.STDOUT, env=env)


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


def _fail_own(spec, runs, error, traceback="", notebook="") -> None:
    """Fail the runs of ``runs`` in this worker's own block that no process holds (the others'
    blocks are theirs to fail)."""
    out = Path(spec["out"])
    for rid, config in runs:
        if rid in spec["own"] and not store.is_locked(out, rid):
            _fail(out, rid, config, spec, error, traceback, notebook)


def _link_notebook(out: Path, nb_rel: str, rids) -> None:
    """Put the executed notebook beside each record it wrote (a hard link; a copy where links fail)."""
    nb = out / nb_rel
    if not nb.exists():
        return
    for rid in rids:
        rec = store.read_record(out, rid)
        if rec is None or rec.get("notebook") != nb_rel:
            continue
        with atomic_path(store.inside(out, store.run_dir(out, rid) / "train_vae.ipynb")) as tmp:
            try:
                os.link(nb, tmp)
            except OSError:
                import shutil

                shutil.copyfile(nb, tmp)


def _worker_threads(spec) -> int:
    if slot_count():  # a book build's budget: one core per training process
        return 1
    if spec.get("threads"):
        return int(spec["threads"])
    try:  # on a Dask worker: share this machine's cores among the worker's task slots
        from distributed import get_worker

        return max(1, _cores() // max(1, get_worker().state.nthreads))
    except (ImportError, ValueError, AttributeError):
        return max(1, _cores())


def _kernel_env(threads: int) -> dict:
    env = dict(os.environ)
    env.update({k: str(threads) for k in THREAD_ENV})
    env[HELD_ENV] = "1"  # the kernel trains inside the slot its supervisor holds (vae_utils.cpuslots)
    env.setdefault("TF_CPP_MIN_LOG_LEVEL", "2")
    env.setdefault("PYTHONUNBUFFERED", "1")
    return env


def _kernel_command(spec, stem: str, runs_file: Path, threads: int) -> list[str]:
    out, nb_rel = Path(spec["out"]), f"notebooks/{stem}.ipynb"
    cmd = child_command("papermill", spec["template"], out / nb_rel)
    cmd += ["--no-progress-bar", "-r", "runs_json", str(runs_file), "-r", "out", str(out)]
    cmd += ["-r", "sweep_id", spec["sweep_id"], "-r", "worker", spec["worker"], "-r", "notebook", nb_rel]
    return [*cmd, "-p", "threads", str(threads)]


def _heartbeat(spec) -> Path:
    return Path(spec["out"]) / "workers" / f"{spec['sweep_id']}-{spec['worker']}.json"


def _supervise(proc: subprocess.Popen, spec, launched: float) -> tuple[str, str | None]:
    """Watch a kernel until it ends: ("ended" or "interrupted", the run killed for its timeout or None).

    Kills the kernel of a run past ``timeout_s`` (papermill then ends, noting the error), papermill
    itself when its kernel never says hello, and the whole tree when the sweep is asked to stop."""
    timeout_s, killed_at, timed_out = spec.get("timeout_s"), None, None
    while proc.poll() is None:
        time.sleep(POLL_S)
        hb = store.read_json(_heartbeat(spec)) or {}
        fresh = hb.get("time", 0) >= launched
        if _stop_requested(spec):
            kill_tree(proc.pid, hb.get("pid") if fresh else 0)
            proc.wait()
            return "interrupted", None
        if killed_at is not None:
            if time.time() - killed_at > KILL_GRACE_S:
                kill_tree(proc.pid)
            continue
        if fresh and hb.get("run_id") and timeout_s and time.time() - hb["started"] > timeout_s:
            timed_out = hb["run_id"]
            with contextlib.suppress(ProcessLookupError, PermissionError):
                os.kill(hb["pid"], 9)
            killed_at = time.time()
        elif not fresh and time.time() - launched > STARTUP_TIMEOUT_S:
            kill_tree(proc.pid)
            killed_at = time.time()
    if proc.returncode != 0:  # a Ctrl-C to the process group reaches papermill and this sweep at once:
        time.sleep(POLL_S)  # give the sweep's handler the moment it needs to say so
        if _stop_requested(spec):
            return "interrupted", timed_out
    return "ended", timed_out


def _settle(spec, pending, rc, launched, timed_out, nb_rel, log) -> str:
    """After a kernel ended badly: fail the run it was training, or (outside any run) the block.

    Returns "retry" (a fresh kernel goes on with the rest) or "stop" (the template itself fails)."""
    out, configs = Path(spec["out"]), dict(pending)
    hb = store.read_json(_heartbeat(spec)) or {}
    current = hb.get("run_id") if hb.get("time", 0) >= launched else None
    if current and current in configs and not store.is_done(store.read_record(out, current), spec["sweep_id"]):
        if timed_out == current:
            error = f"TimeoutError: run exceeded timeout_s={spec['timeout_s']:g} s; its kernel was killed"
        else:
            error = f"KernelDied: the kernel died while training this run (papermill exit code {rc})"
        _fail(out, current, configs[current], spec, error, _tail(log), nb_rel)
        return "retry"
    if current:
        return "retry"
    error = f"TemplateError: the notebook failed outside a run (papermill exit code {rc})"
    _fail_own(spec, pending, error, _tail(log), nb_rel)
    return "stop"


def _run_kernel(spec, pending, attempt: int, threads: int, env: dict) -> dict:
    """One papermill kernel over ``pending`` runs, supervised; returns its log entry."""
    out, stem = Path(spec["out"]), f"{spec['sweep_id']}-{spec['worker']}-{attempt}"
    nb_rel, runs_file, log = (
        f"notebooks/{stem}.ipynb",
        out / "notebooks" / f"{stem}.runs.json",
        out / "notebooks" / f"{stem}.log",
    )
    write_json(runs_file, [c.to_dict() for _, c in pending])
    launched = time.time()
    with open(log, "w") as logf:
        proc = launch_kernel(_kernel_command(spec, stem, runs_file, threads), logf, env)
        ending, timed_out = _supervise(proc, spec, launched)
    rc, ended = proc.returncode, time.time()
    if ending == "ended":
        ending = "ok" if rc == 0 else _settle(spec, pending, rc, launched, timed_out, nb_rel, log)
    _link_notebook(out, nb_rel, [rid for rid, _ in pending])
    trained = [rid for rid, _ in pending if (r := store.read_record(out, rid)) is not None and r["notebook"] == nb_rel]
    entry = {
        "worker": spec["worker"],
        "attempt": attempt,
        "launched": launched,
        "ended": ended,
        "wall_s": ended - launched,
    }
    return entry | {"rc": rc, "notebook": nb_rel, "trained": trained, "threads": threads, "ending": ending}


def run_slice(spec: dict) -> dict:
    """Train a slice of runs in papermill kernels, supervised; returns a log of the kernels.

    ``spec``: out, sweep_id, worker, version, template, timeout_s, threads (or None), runs (a list
    of [run_id, config dict] in the order to try), own (the run ids of this worker's block).
    Runs on this process's thread or on a Dask worker: a plain function of JSON-able data.
    """
    spec = dict(spec)
    out = Path(spec["out"])
    runs = [(rid, TrainConfig.from_dict(cfg)) for rid, cfg in spec["runs"]]
    threads = _worker_threads(spec)
    env = _kernel_env(threads)
    (out / "notebooks").mkdir(parents=True, exist_ok=True)
    kernels: list[dict] = []
    try:
        for attempt in range(1, len(runs) + 2):
            with cpu_slot(should_stop=lambda: _stop_requested(spec)):  # a book build's budget; else free
                pending = [
                    (rid, c) for rid, c in runs if not store.is_done(store.read_record(out, rid), spec["sweep_id"])
                ]
                if not pending or _stop_requested(spec):
                    break
                kernels.append(_run_kernel(spec, pending, attempt, threads, env))
            if kernels[-1]["ending"] != "retry":
                break
    finally:
        for name in (f"{spec['worker']}", f"{spec['worker']}-supervisor"):
            (out / "workers" / f"{spec['sweep_id']}-{name}.json").unlink(missing_ok=True)
    return {"worker": spec["worker"], "kernels": kernels}


# -- where the workers run: threads here, or a Dask cluster ---------------------------------------


class _Local:
    """Workers as threads of this process, each supervising papermill kernels."""

    def __init__(self, workers: int | None):
        self.slots = workers or default_workers()
        self.address = None
        self._pool: ThreadPoolExecutor | None = None

    def threads(self, n_runs: int) -> int:
        return max(1, _cores() // min(self.slots, n_runs))

    def submit(self, specs: list[dict]) -> list:
        self._pool = ThreadPoolExecutor(max_workers=len(specs))
        return [self._pool.submit(run_slice, s) for s in specs]

    @staticmethod
    def outcome(future):
        return future.exception() or future.result()

    def missing_workers(self) -> bool:
        return False

    def end_round(self, futures, stopping: bool) -> None:
        """Wait for the round's threads (after a stop request they end within a poll or two)."""
        if self._pool is not None:
            self._pool.shutdown(wait=True)
            self._pool = None

    def close(self) -> None:
        pass


def _check_address(scheduler) -> str:
    """``scheduler`` as a Dask address (``tcp://HOST:PORT`` or ``tls://HOST:PORT``; ``HOST:PORT`` means
    tcp); ValueError naming it otherwise, before any connection (a malformed address used to leave a
    half-made Client whose clean-up hung 20 s)."""
    from distributed.comm.addressing import parse_address, parse_host_port

    allowed = "a Dask scheduler address tcp://HOST:PORT (or tls://HOST:PORT), PORT 1-65535"
    try:
        scheme, loc = parse_address(str(scheduler))
        host, port = parse_host_port(loc)
    except (TypeError, ValueError):
        scheme, host, port = "", "", 0
    if not isinstance(scheduler, str) or scheme not in ("tcp", "tls") or not host or not 0 < port < 65536:
        raise ValueError(f"scheduler={scheduler!r} is not allowed; allowed: {allowed}")
    return f"{scheme}://{loc}"


async def _identify(address: str, timeout: float) -> dict:
    """The identity a Dask server reports on ``address`` (the handshake and one ``identity`` call)."""
    from distributed.comm import connect
    from distributed.security import Security

    args = Security().get_connection_args("client")  # tls:// certificates from Dask's config
    comm = await connect(address, timeout=timeout, **args)
    try:
        await comm.write({"op": "identity", "reply": True})
        return await comm.read()
    finally:
        comm.abort()


def _probe(address: str, timeout: float) -> None:
    """Check that a Dask scheduler answers on ``address`` within ``timeout`` seconds in all, in a
    thread of its own (a notebook's event loop may be running here): Dask's own connect bounds the
    TCP connection only, not the handshake, so a port that accepts and never answers waited forever,
    and other bytes were read as a frame length ("Unable to allocate 3.07 EiB"). ConnectionError
    naming the address otherwise."""
    import asyncio

    def ask():
        return asyncio.run(asyncio.wait_for(_identify(address, timeout), timeout))

    with ThreadPoolExecutor(max_workers=1) as pool:
        try:
            identity = pool.submit(ask).result()
        except (OSError, TimeoutError) as e:
            raise ConnectionError(
                f"the Dask scheduler at {address} did not answer within {timeout:g} s ({type(e).__name__}); "
                f"start one (dask scheduler --host 127.0.0.1) or check the address"
            ) from None
        except Exception:  # any other failure: bytes that are not Dask's (read as a huge frame, ...)
            identity = {}
    kind = identity.get("type") if isinstance(identity, dict) else type(identity).__name__
    if kind != "Scheduler":
        what = "a Dask worker" if kind in ("Worker", "Nanny") else "something else"
        raise ConnectionError(
            f"{address} did not answer as a Dask scheduler (it is {what}); give a scheduler's address "
            f"(dask scheduler --host 127.0.0.1 prints it)"
        )


def _connect(scheduler):
    """A ``distributed.Client`` for ``scheduler`` (an address, or a Client used as it is) and
    whether this sweep owns it; ValueError for a malformed address, ConnectionError naming the
    address when no Dask scheduler answers there within ``CONNECT_TIMEOUT_S``."""
    from distributed import Client

    if isinstance(scheduler, Client):
        return scheduler, False
    import dask.config
    from dask.utils import parse_timedelta

    address = _check_address(scheduler)
    timeout = min(CONNECT_TIMEOUT_S, parse_timedelta(dask.config.get("distributed.comm.timeouts.connect")))
    _probe(address, timeout)  # 1) a scheduler answers, within the deadline: only then a Client
    try:
        return Client(address, timeout=timeout, set_as_default=False), True
    except (OSError, TimeoutError) as e:
        raise ConnectionError(
            f"the Dask scheduler at {address} did not answer within {timeout:g} s ({type(e).__name__}); "
            f"start one (dask scheduler --host 127.0.0.1) or check the address"
        ) from None


class _Dask:
    """Workers as ``run_slice`` tasks on a Dask cluster (the store on a filesystem they share)."""

    def __init__(self, scheduler, workers: int | None):
        self.client, self._own = _connect(scheduler)
        self.address = getattr(self.client.scheduler, "address", None) or str(scheduler)
        self._checked, self._missing = 0.0, False
        self.slots = workers or max(1, sum(self._ask(self.client.nthreads).values()))

    def _ask(self, call, *args, **kwargs):
        """One request to the scheduler, answered within ``ANSWER_TIMEOUT_S``: ConnectionError naming
        the address otherwise (a scheduler that stopped answering mid-sweep used to wait forever)."""
        try:
            return call(*args, callback_timeout=ANSWER_TIMEOUT_S, **kwargs)
        except (OSError, TimeoutError) as e:
            raise ConnectionError(
                f"the Dask scheduler at {self.address} stopped answering ({type(e).__name__} after up to "
                f"{ANSWER_TIMEOUT_S:g} s); check it, then run the same command (complete runs are kept)"
            ) from None

    def threads(self, n_runs: int) -> int:
        """TensorFlow threads per task slot on the cluster: the tightest host's cores / its slots."""
        cores = self._ask(self.client.run, _cores)
        per_host: dict = {}
        for addr, info in self._ask(self.client.scheduler_info)["workers"].items():
            host = info.get("host", addr)
            n_cores, slots = per_host.get(host, (cores.get(addr, 1), 0))
            per_host[host] = (n_cores, slots + info.get("nthreads", 1))
        return max(1, min(c // max(1, s) for c, s in per_host.values())) if per_host else 1

    def submit(self, specs: list[dict]) -> list:
        return [self.client.submit(run_slice, s, pure=False) for s in specs]

    @staticmethod
    def outcome(future):
        if future.status == "finished":
            return future.result()
        if future.status == "cancelled":
            return None
        return future.exception()

    def missing_workers(self) -> bool:
        """Whether the cluster has no worker now (asked every ``WORKER_CHECK_S``)."""
        if time.monotonic() - self._checked >= WORKER_CHECK_S:
            self._checked = time.monotonic()
            self._missing = not self._ask(self.client.nthreads)
        return self._missing

    def end_round(self, futures, stopping: bool) -> None:
        """After a stop (the stop file is written): slices, running or not, end at once when a worker
        runs them; wait for that a while, then cancel what is left (nothing runs it without workers)."""
        if stopping:
            deadline = time.monotonic() + KILL_GRACE_S
            while not all(f.done() for f in futures) and not self.missing_workers() and time.monotonic() < deadline:
                time.sleep(POLL_S)
            self.client.cancel([f for f in futures if not f.done()])

    def close(self) -> None:
        if self._own:
            with contextlib.suppress(OSError, TimeoutError):  # a scheduler gone already: nothing to close
                self.client.close(timeout=CONNECT_TIMEOUT_S)


# -- the sweep --------------------------------------------------------------------------------


class Progress:
    """What a sweep tells its user: a tqdm bar over its pending runs (advanced by watching the store),
    and notes (waits, missing workers) written above the bar; notes show even without the bar."""

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

    def note(self, text: str) -> None:
        self.bar.write(f"sweep: {text}", file=sys.stderr)

    def close(self) -> None:
        self.poll()
        self.bar.close()


def _describe(rid: str, c: TrainConfig) -> str:
    return f"{rid} ({c.dataset}, batch_size={c.batch_size}, learning_rate={c.learning_rate:g}, seed={c.seed})"


class _Sweep:
    """One ``sweep`` call's execution: rounds of workers over the pending runs, until none is left
    that nobody holds, the user stops it, or a wait passes ``wait_s``."""

    def __init__(self, out, sweep_id, version, backend, timeout_s, wait_s, progress):
        self.out, self.sweep_id, self.version, self.backend = out, sweep_id, version, backend
        self.timeout_s, self.wait_s, self.progress = timeout_s, wait_s, progress
        self.stop = StopRequest(on_stop=self._write_stop_file)
        self.not_run: dict[str, str] = {}  # run id -> why it was not run
        self.kernels: list[dict] = []
        self._waiting_since = self._next_report = None

    def _write_stop_file(self) -> None:
        with contextlib.suppress(OSError):  # local workers also see the flag itself
            _stop_path(self.out, self.sweep_id).write_text(f"interrupted at {time.time()}\n")

    def _left(self, todo):
        read = store.read_record
        return [
            (r, c) for r, c in todo if r not in self.not_run and not store.is_done(read(self.out, r), self.sweep_id)
        ]

    def execute(self, pending) -> None:
        """Run the pending runs; loops while runs remain that nobody holds."""
        _LOCAL_STOPS[self.sweep_id] = self.stop
        try:
            with self.stop:
                self._rounds(pending)
        finally:
            _LOCAL_STOPS.pop(self.sweep_id, None)
            self.progress.close()

    def _rounds(self, pending) -> None:
        todo, idle_rounds, round_ = pending, 0, 0
        while todo and not self.stop.is_set():
            free = [(rid, c) for rid, c in todo if not store.is_locked(self.out, rid)]
            if not free:  # another sweep trains them: wait for it (or for its death)
                self._wait_for_holders(todo)
                left = self._left(todo)
                if len(left) < len(todo):  # the other sweep moves on: the wait starts again
                    self._waiting_since = None
                todo = left
                continue
            self._waiting_since = None
            round_ += 1
            if self._round(free, round_):  # a Dask cluster without workers past wait_s
                for rid, _ in self._left(todo):
                    self.not_run[rid] = (
                        f"NotRun: the Dask scheduler at {self.backend.address} had no workers for {self.wait_s:g} s"
                    )
                break
            left = self._left(todo)
            # A round that finished nothing happens when another sweep held these runs as we passed
            # them; try again, but not forever.
            idle_rounds = idle_rounds + 1 if len(left) == len(todo) else 0
            if idle_rounds >= MAX_IDLE_ROUNDS and not self.stop.is_set():
                spec = {"out": str(self.out), "sweep_id": self.sweep_id, "worker": "sweep", "version": self.version}
                _fail_own(
                    spec | {"own": [rid for rid, _ in left]},
                    left,
                    "NotRun: no worker could run it (see the sweep's notebooks)",
                )
                idle_rounds = 0
                left = self._left(left)
            todo = left

    def _wait_for_holders(self, todo) -> None:
        """One poll of waiting for runs another process holds: report after WAIT_REPORT_S (and again
        at doubling intervals), give them up as not run past ``wait_s``."""
        now = time.monotonic()
        if self._waiting_since is None:
            self._waiting_since, self._next_report = now, now + WAIT_REPORT_S
        time.sleep(POLL_S * 2)
        self.progress.poll()
        held = [(rid, c) for rid, c in todo if store.is_locked(self.out, rid)]
        waited = time.monotonic() - self._waiting_since
        if held and time.monotonic() >= self._next_report:
            shown = "; ".join(f"{_describe(r, c)} held by {store.lock_holder(self.out, r)}" for r, c in held[:3])
            more = f"; and {len(held) - 3} more" if len(held) > 3 else ""
            limit = f" (giving up after {self.wait_s:g} s)" if self.wait_s else " (wait_s / --max-wait limits this)"
            self.progress.note(
                f"waiting {waited:.0f} s for {len(held)} run(s) another process trains: {shown}{more}{limit}"
            )
            self._next_report = time.monotonic() + 2 * (time.monotonic() - self._waiting_since)
        if self.wait_s and waited > self.wait_s:
            for rid, _ in held:
                self.not_run[rid] = f"NotRun: held by {store.lock_holder(self.out, rid)} for over {self.wait_s:g} s"

    def _specs(self, free, round_) -> list[dict]:
        blocks = plan(free, self.backend.slots)
        threads = self.backend.threads(len(free))
        base = {"out": str(self.out), "sweep_id": self.sweep_id, "version": self.version, "template": str(TEMPLATE)}
        return [
            base
            | {
                "worker": f"w{k}" if round_ == 1 else f"w{k}r{round_}",  # names files: unique per sweep
                "timeout_s": self.timeout_s,
                "threads": threads,
                "runs": [(rid, c.to_dict()) for rid, c in _steal_order(blocks, k)],
                "own": [rid for rid, _ in blocks[k]],
            }
            for k in range(len(blocks))
        ]

    def _round(self, free, round_) -> bool:
        """One worker per block over the free runs, then collect their kernel logs; True when it
        gave up waiting for a Dask worker."""
        specs = self._specs(free, round_)
        futures = self.backend.submit(specs)
        gave_up = False
        try:
            gave_up = self._await(futures)
        finally:
            if self.stop.is_set() or gave_up:
                self._write_stop_file()  # workers anywhere: stop now, start nothing later
            self.backend.end_round(futures, self.stop.is_set() or gave_up)
        for spec, future in zip(specs, futures, strict=True):
            outcome = self.backend.outcome(future)
            if isinstance(outcome, dict):
                self.kernels.extend(outcome["kernels"])
            elif isinstance(outcome, BaseException) and not self.stop.is_set():  # the supervisor itself failed
                runs = [(rid, TrainConfig.from_dict(c)) for rid, c in spec["runs"]]
                _fail_own(spec, runs, f"WorkerError: {type(outcome).__name__}: {outcome}")
        return gave_up

    def _await(self, futures) -> bool:
        """Wait for the round's workers; True when it gave up on a cluster without workers."""
        missing_since = last_note = None
        while not all(f.done() for f in futures) and not self.stop.is_set():
            time.sleep(POLL_S)
            self.progress.poll()
            if not self.backend.missing_workers():
                missing_since = None
                continue
            now = time.monotonic()
            missing_since = missing_since or now
            if last_note is None or now - last_note >= WAIT_REPORT_S:
                last_note = now
                self.progress.note(
                    f"the Dask scheduler at {self.backend.address} has no workers; waiting for one "
                    f"(start one: dask worker {self.backend.address} --host 127.0.0.1)"
                    + (f"; giving up after {self.wait_s:g} s" if self.wait_s else "")
                )
            if self.wait_s and now - missing_since > self.wait_s:
                return True
        return False


def _check_args(workers, timeout_s, wait_s):
    if workers is not None:
        check_processes("workers", workers)
    for name, v in (("timeout_s", timeout_s), ("wait_s", wait_s)):
        if v is not None and (isinstance(v, bool) or not isinstance(v, (int, float)) or not v > 0):
            raise ValueError(f"{name}={v!r} is not allowed; allowed: a number of seconds > 0, or None")


def _open_store(out) -> Path:
    """The store folder, created with its subfolders: ValueError when ``out`` is a file, OSError
    (naming the path) when the system refuses the folders or a subfolder is a symbolic link."""
    out = Path(out if out is not None else default_store("default")).resolve()
    if out.exists() and not out.is_dir():
        raise ValueError(f"out={str(out)!r} is a file; allowed: a folder (created when missing)")
    for sub in store.STORE_DIRS:
        store.inside(out, out / sub).mkdir(parents=True, exist_ok=True)
    return out


def sweep(grid, out=None, workers=None, scheduler=None, timeout_s=None, progress=True, wait_s=None) -> pd.DataFrame:
    """Train every run of ``grid`` that the store ``out`` does not hold yet; return the grid's results.

    Returns one row per run (config, seed) in grid order, with the ``TrainConfig`` columns,
    ``run_id``, ``status`` (ok, diverged, failed, or "not run" when ``wait_s`` ran out), ``error``,
    the scalar metrics and ``kl_per_dim``. ``df.attrs["summary"]`` holds the counts (``ran``: runs
    this call trained or failed; ``cached``: runs complete without it), the failures, and the cost:
    ``kernel_s`` (kernel process time, summed over workers), ``run_s`` (time inside runs: ``train``
    with its evaluation, and the record), ``train_loop_s`` (the epoch loops alone) and ``overhead =
    1 - run_s / kernel_s`` (kernel starts, imports, idle tails). ``wait_s``: the longest this call
    waits for runs another process holds, or for a Dask cluster to have a worker. Ctrl-C raises
    ``SweepInterrupted``. See the module docstring.
    """
    configs = expand_grid(grid)  # 1) validate everything before touching the store
    _check_args(workers, timeout_s, wait_s)
    backend = _Local(workers) if scheduler is None else _Dask(scheduler, workers)  # the scheduler answers first
    try:
        results = _sweep(configs, _open_store(out), backend, scheduler, timeout_s, wait_s, progress)
    finally:
        backend.close()
    ledger.record(results)  # the chapter's run table (experiments.ledger.runs_used)
    return results


def sweep_each(grids: dict, out=None, **options) -> dict[str, pd.DataFrame]:
    """``{name: sweep(grid, out, **options)}`` for a dict of grids, their pending runs trained in one
    sweep of them all: one kernel start per worker instead of one per grid, the workers share the runs,
    and a kernel traces a graph two grids share once. A run in two grids trains once and is in both."""
    if len(grids) > 1:
        union = [g for grid in grids.values() for g in (grid if isinstance(grid, (list, tuple)) else [grid])]
        sweep(union, out, **options)
    return {name: sweep(grid, out, **options) for name, grid in grids.items()}  # each grid's rows (stored now)


def _sweep(configs, out, backend, scheduler, timeout_s, wait_s, progress) -> pd.DataFrame:
    t0 = time.time()
    version = training_version()
    rids = [store.run_id(c, version) for c in configs]
    store.check_store(out, rids)  # a shared store may hold planted links: refused before any write
    store.clean_heartbeats(out)  # a killed sweep's, on this host
    sweep_id = f"{time.strftime('%Y%m%dT%H%M%S')}-{os.getpid()}-{secrets.token_hex(2)}"
    manifest_path = out / "sweeps" / f"{sweep_id}.json"
    pending = [(rid, c) for rid, c in zip(rids, configs, strict=True) if not store.is_done(store.read_record(out, rid))]
    manifest = {
        "sweep_id": sweep_id,
        "code_version": version,
        "started": t0,
        "runs": rids,
        "pending": [rid for rid, _ in pending],  # what this call will train: a build's progress counts them
        "host": socket.gethostname(),
    }
    manifest |= {"workers": backend.slots, "scheduler": None if scheduler is None else str(scheduler)}
    write_json(manifest_path, manifest)
    bar = Progress(out, [rid for rid, _ in pending], sweep_id, progress, out.name)
    run = _Sweep(out, sweep_id, version, backend, timeout_s, wait_s, bar)
    try:
        if pending:
            run.execute(pending)
        else:
            bar.close()
    finally:
        for beat in (out / "workers").glob(f"{sweep_id}-*.json"):
            beat.unlink(missing_ok=True)
    recs = {rid: store.read_record(out, rid) for rid in rids}
    if run.stop.is_set():
        done = sum(store.is_done(r) for r in recs.values())
        write_json(manifest_path, manifest | {"finished": time.time(), "kernels": run.kernels, "interrupted": True})
        raise SweepInterrupted(
            f"interrupted: {done} of {len(rids)} runs complete in {out}; run the same command to resume"
        )
    rows = [
        recs[r] if store.is_done(recs[r]) or r not in run.not_run else _not_run_row(r, c, version, run.not_run[r])
        for r, c in zip(rids, configs, strict=True)
    ]
    df = records_to_frame([r for r in rows if r is not None])
    summary = _summary(df, sweep_id, recs, run.kernels, time.time() - t0)
    df.attrs["summary"] = summary
    write_json(manifest_path, manifest | {"finished": time.time(), "kernels": run.kernels, "summary": summary})
    if progress:
        print(format_summary(summary, out), file=sys.stderr)
    return df


def _not_run_row(rid, config, version, why) -> dict:
    """A table row (never written to the store) for a run this call gave up waiting for."""
    return {"run_id": rid, "status": "not run", "error": why, "config": config.to_dict(), "code_version": version}


def _summary(df, sweep_id, recs, kernels, wall_s) -> dict:
    ours = [r for r in recs.values() if r is not None and r.get("sweep_id") == sweep_id]
    trained = [r for r in ours if r["status"] in store.DONE]
    run_s = sum(r.get("run_wall_s") or 0.0 for r in trained)  # train(): loop, evaluation; + the record
    loop_s = sum(r["metrics"].get("wall_time_s") or 0.0 for r in trained)  # the epoch loop alone
    kernel_s = sum(k["wall_s"] for k in kernels)
    failed = df.loc[df["status"].isin(["failed", "not run"]), ["run_id", "status", "error"]]
    not_run = int((df["status"] == "not run").sum())
    return {
        "runs": len(df),
        "ran": len(ours),
        "cached": len(df) - len(ours) - not_run,
        "ok": int((df["status"] == "ok").sum()),
        "diverged": int((df["status"] == "diverged").sum()),
        "failed": int((df["status"] == "failed").sum()),
        "not_run": not_run,
        "failures": [{"run_id": r, "status": s, "error": e} for r, s, e in failed.itertuples(index=False)],
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
    line += f", not run {s['not_run']}" if s.get("not_run") else ""
    line += f" in {s['wall_s']:.1f} s"
    if s["kernels"]:
        line += f"; {s['kernels']} kernel(s), {s['overhead']:.0%} of kernel time outside train()"
    if out is not None:
        line += f"\nstore: {out}"
    for f in s["failures"]:
        line += f"\n{'FAILED' if f['status'] == 'failed' else 'NOT RUN'} {f['run_id']}: {f['error']}"
    return line
