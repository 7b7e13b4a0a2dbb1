"""Executing the staged chapters that the execution cache does not hold, in parallel, into that cache.

MyST-NB alone executes one chapter after the other; the driver runs several at once, each exactly
once, and stores each executed notebook in the execution cache (jupyter-cache) as MyST-NB's ``cache``
mode would. ``executed_notebooks`` then merges the outputs into the staged notebooks, and Sphinx
renders those with execution off: it never executes a chapter. No cell has a time limit.

A chapter runs in a fresh kernel over IPC sockets (no "running over TCP without encryption"
warning), with the kernel's own output (TensorFlow's start-up lines, ipykernel's messages) in
``<out>/logs/<chapter>.log``; the terminal shows one progress line for the whole build
(``progress``), a line as each chapter finishes, in the order they finish, and the end of the log
when a chapter fails.

Ctrl-C or SIGTERM: the driver's ``StopRequest`` is set; no further chapter starts, and every worker
process is killed with everything it started (chapter kernels, their sweeps' papermill processes and
kernels). A chapter that fails stops the others the same way. A chapter enters the cache only when it
completed, so the next build executes exactly the rest. Workers and kernels die with the driver
whatever kills it (``die_with_parent``, ``child_command``).
The cache is opened through ``cache``: a damaged one is set aside and what it held executes again.
"""

from __future__ import annotations

import os
import re
import signal
import tempfile
import time
from concurrent.futures import FIRST_COMPLETED, wait
from pathlib import Path

from vae_utils.experiments.processes import STOP_SIGNALS, StopRequest, child_command, die_with_parent, kill_tree

from .cache import match, open_cache
from .paths import BookPaths
from .progress import BuildProgress

__all__ = ["execute_missing", "cached_chapters", "execute_notebook", "last_seconds", "longest_first"]

POLL_S = 0.25  # how often the driver looks for finished chapters and for Ctrl-C
TAIL_LINES = 25  # of a failed chapter's error, printed
LOG_TAIL_LINES = 10  # of a failed chapter's kernel log, printed when its kernel died rather than a cell failing
STARTUP_TIMEOUT_S = 600  # a kernel that has not answered by then is broken, however loaded the machine
ANSI = re.compile(r"\x1b\[[0-9;]*m")


def _split_by_cache(paths: BookPaths, cache):
    """({chapter: "cached"}, [(path, notebook) missing from the cache, or damaged in it: set aside])."""
    import nbformat

    status, todo = {}, []
    for path in sorted(paths.src.glob("chapters/*.ipynb")):
        nb = nbformat.read(path, as_version=4)
        if match(cache, nb, path.name) is not None:
            status[path.name] = "cached"
        else:
            todo.append((path, nb))
    return status, todo


def cached_chapters(paths: BookPaths) -> tuple[int, int]:
    """(chapters the execution cache holds, staged chapters)."""
    status, todo = _split_by_cache(paths, open_cache(paths.cache))
    return len(status), len(status) + len(todo)


def executed_notebooks(paths: BookPaths, plan, skip=()) -> dict[str, bytes]:
    """{relative path: the staged notebook with its outputs from the execution cache} for every
    chapter of ``plan`` the cache holds (but those in ``skip``): what Sphinx renders, as MyST-NB's
    ``cache`` mode would merge it, so that Sphinx itself never executes a chapter."""
    import nbformat

    cache = open_cache(paths.cache)  # a damaged one is set aside (a warning line) and made anew
    rel_of = {Path(rel).stem: rel for rel in plan.wanted if rel.endswith(".ipynb")}
    out = {}
    for stem, nb in plan.notebooks.items():
        if rel_of[stem] in skip or match(cache, nb, Path(rel_of[stem]).name) is None:  # a garbled entry: set aside
            continue
        try:
            _, merged = cache.merge_match_into_notebook(nb)
        except KeyError:  # not executed (yet)
            continue
        out[rel_of[stem]] = nbformat.writes(merged).encode()
    return out


def last_seconds(paths: BookPaths, names) -> dict[str, float]:
    """How long each chapter (by file name) took when the cache last stored it, where known."""
    from jupyter_cache import get_cache

    seconds = {}
    try:
        records = get_cache(str(paths.cache)).list_cache_records()
    except Exception:  # an unreadable or new cache: no history
        return seconds
    for rec in sorted(records, key=lambda r: (r.created, r.pk)):  # the latest time of a chapter wins
        name = Path(rec.uri).name
        if name in names and (rec.data or {}).get("execution_seconds"):
            seconds[name] = float(rec.data["execution_seconds"])
    return seconds


def longest_first(todo, last: dict[str, float], profile: str = "full"):
    """The chapters to execute, the longest expected first, so that the longest does not start late
    and end alone: expected is its time when the cache last stored it, else its cold cost in the
    profile's reference build (else the full one's, ``params.reference_seconds``), else the typical
    chapter's. Ties keep the book's order."""
    from .params import CHAPTER_CPU_S, OTHER_CHAPTER_CPU_S, reference_seconds

    reference = reference_seconds(profile) or CHAPTER_CPU_S

    def expected(item) -> float:
        path = item[0]
        return last.get(path.name) or reference.get(path.stem, OTHER_CHAPTER_CPU_S)

    return sorted(todo, key=lambda item: -expected(item))


def _kernel_specs():
    """Jupyter's kernel specs, with a Python kernel started by ``child_command``: it dies with the
    worker that started it, whatever kills that worker (ipykernel's own check of its parent starts
    only once the kernel is up, and polls once a second)."""
    from jupyter_client.kernelspec import KernelSpecManager

    class DyingWithWorker(KernelSpecManager):
        def get_kernel_spec(self, kernel_name):
            spec = super().get_kernel_spec(kernel_name)
            if spec.argv[1:3] == ["-m", "ipykernel_launcher"]:
                spec.argv = [spec.argv[0], *child_command(*spec.argv[2:])[1:]]
            return spec

    return DyingWithWorker()


def execute_notebook(nb, cwd: str, timeout: int | None, log_path: str):
    """Run ``nb`` in a fresh kernel in ``cwd``; the kernel's stdout and stderr go to ``log_path``.
    ``timeout``: seconds a cell may run, or None (the build's default: no limit; the progress line
    and Ctrl-C are the control, and a limit a slow machine trips would fail a normal build).

    Returns (executed notebook, seconds, error text or None). Runs in a worker process."""
    from jupyter_client.manager import AsyncKernelManager
    from nbclient import NotebookClient
    from nbclient.exceptions import CellExecutionError

    t0 = time.perf_counter()
    with tempfile.TemporaryDirectory(prefix="vae-kernel-") as sockets, open(log_path, "w") as log:
        name = nb.metadata.get("kernelspec", {}).get("name", "python3")
        km = AsyncKernelManager(kernel_name=name, transport="ipc", kernel_spec_manager=_kernel_specs())
        km.ip = str(Path(sockets) / "kernel")  # the IPC sockets' path prefix, outside the book's sources
        # record_timing=False: timing metadata in the cells would change the notebook's hash in the
        # cache, and the next build would not find the chapter there and execute it again
        client = NotebookClient(
            nb,
            km=km,
            timeout=timeout,
            startup_timeout=STARTUP_TIMEOUT_S,
            allow_errors=False,
            record_timing=False,
            resources={"metadata": {"path": cwd}},
        )
        error = None
        try:
            client.execute(stdout=log, stderr=log)
        except CellExecutionError as e:
            error = str(e)
        except Exception as e:  # the kernel died, a timeout, ...
            error = f"{type(e).__name__}: {e}"
    return nb, time.perf_counter() - t0, error


def _cache_result(cache, path, future, log: Path) -> str:
    """Put a finished chapter into the cache; its status (with the error's end when it failed)."""
    import nbformat
    from jupyter_cache.base import CacheBundleIn

    try:
        nb, seconds, error = future.result()
    except Exception as e:  # the worker itself failed
        return f"failed: {type(e).__name__}: {e}"
    if error is not None:
        lines = ANSI.sub("", error).strip().splitlines()[-TAIL_LINES:]
        if not error.startswith("An error occurred while executing"):  # no cell failed: the kernel's log says why
            logged = log.read_text(errors="replace").strip().splitlines() if log.exists() else []
            lines += ["the end of the kernel's log:", *logged[-LOG_TAIL_LINES:]]
        return f"failed after {seconds:.0f} s (the kernel's output: {log}):\n  " + "\n  ".join(lines)
    stage_record = cache.add_nb_to_project(str(path))
    cache.cache_notebook_bundle(
        CacheBundleIn(nb, stage_record.uri, data={"execution_seconds": seconds}), check_validity=False, overwrite=True
    )
    try:  # what MyST-NB will look for: the staged notebook must find what was just cached
        cache.match_cache_notebook(nbformat.read(path, as_version=4))
    except KeyError:
        return f"failed: executed in {seconds:.0f} s, but the cache does not match the staged notebook"
    return f"executed in {seconds:.0f} s"


def _start_worker(driver: int) -> None:
    """In each worker process: Ctrl-C and SIGTERM are the driver's to handle (it kills the workers),
    and the worker dies with the driver, whatever kills it. The handlers do nothing rather than
    ignore the signal: an ignored signal would stay ignored in the kernels the worker starts."""
    for signum in STOP_SIGNALS:
        signal.signal(signum, lambda *_: None)
    die_with_parent(driver)


def _submit(paths: BookPaths, todo, jobs: int, timeout: int | None):
    """The worker pool and {future: staged notebook path}, in the order the pool runs them."""
    import multiprocessing
    from concurrent.futures import ProcessPoolExecutor

    logs = paths.out / "logs"
    logs.mkdir(parents=True, exist_ok=True)
    # "spawn": a fresh interpreter per worker (never a fork of a process that may hold TensorFlow)
    context = multiprocessing.get_context("spawn")
    pool = ProcessPoolExecutor(
        max_workers=max(1, jobs), mp_context=context, initializer=_start_worker, initargs=(os.getpid(),)
    )
    futures = {
        pool.submit(execute_notebook, nb, str(path.parent), timeout, str(logs / f"{path.stem}.log")): path
        for path, nb in todo
    }
    return pool, futures


def execute_missing(
    paths: BookPaths, jobs: int = 2, timeout: int | None = None, stop: StopRequest | None = None, slots: int = 1
) -> tuple[dict[str, str], BuildProgress]:
    """Execute the staged notebooks missing from the execution cache, ``jobs`` at a time; cache them.

    Returns ({notebook: "cached" | "executed ..." | "failed: ..." | "interrupted"}, the progress
    display, for its summary). The first chapter that fails stops the others (their status is
    "interrupted"): the build stops on it. When ``stop`` is set (Ctrl-C, SIGTERM), the workers and
    all they started are killed. ``timeout``: seconds per cell, None (the default) for no limit.
    """

    from .params import reference_seconds
    from .paths import results_dir

    stop = stop or StopRequest()
    cache = open_cache(paths.cache)  # a damaged one is set aside (a warning line) and made anew
    status, todo = _split_by_cache(paths, cache)
    last = last_seconds(paths, [path.name for path, _ in todo])
    todo = longest_first(todo, last, paths.profile)
    names = [path.name for path, _ in todo]
    # the profile's reference cold build (a reader's parameters are scaled by this build's speed)
    reference = {f"{stem}.ipynb": s for stem, s in reference_seconds(paths.profile).items()}
    progress = BuildProgress(len(status) + len(todo), len(status), results_dir(paths), slots, last, reference=reference)
    progress.plan(names, jobs)
    if not todo:
        return status, progress
    pool, futures = _submit(paths, todo, jobs, timeout)
    failed = False
    try:
        pending = set(futures)
        while pending and not stop.is_set() and not failed:
            done, pending = wait(pending, timeout=POLL_S, return_when=FIRST_COMPLETED)
            for future in done:
                path = futures[future]
                status[path.name] = _cache_result(cache, path, future, paths.out / "logs" / f"{path.stem}.log")
                progress.chapter_done(path.name, status[path.name])
                failed = failed or status[path.name].startswith("failed")
            progress.tick()
    finally:
        stopping = stop.is_set() or failed
        if stopping:
            for pid in list(getattr(pool, "_processes", None) or {}):
                kill_tree(pid)
            status |= {futures[f].name: "interrupted" for f in futures if futures[f].name not in status}
        # wait for the pool's manager thread even when stopping (its workers are dead by now): Python 3.11's
        # exit handler for process pools otherwise races that thread's closing of its wake-up pipe and
        # can print "OSError: [Errno 9] Bad file descriptor" after the build's own last line
        pool.shutdown(wait=True, cancel_futures=True)
    return status, progress
