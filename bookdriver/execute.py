"""Executing the staged chapters that the execution cache does not hold, in parallel, into that cache.

MyST-NB alone executes one chapter after the other; the driver runs several at once with
jupyter-cache exactly as MyST-NB's ``cache`` mode would, so the Sphinx build then finds every
successful chapter in the cache and executes nothing itself.

Ctrl-C: the driver's ``StopRequest`` is set; no further chapter starts, and every worker process is
killed with everything it started (chapter kernels, their sweeps' papermill processes and kernels).
A chapter enters the cache only when it completed, so the next build executes exactly the rest.
"""

from __future__ import annotations

import signal
import sys
from concurrent.futures import FIRST_COMPLETED, wait

from vae_utils.experiments.processes import StopRequest, kill_tree

from .paths import BookPaths

__all__ = ["execute_missing", "cached_chapters"]

POLL_S = 0.25  # how often the driver looks for finished chapters and for Ctrl-C


def _config_timeout(paths: BookPaths) -> int:
    import yaml

    cfg = yaml.safe_load((paths.src / "_config.yml").read_text(encoding="utf-8")) or {}
    return int(cfg.get("execute", {}).get("timeout", 1200))


def _split_by_cache(paths: BookPaths, cache):
    """({chapter: "cached"}, [(path, notebook) missing from the cache])."""
    import nbformat

    status, todo = {}, []
    for path in sorted(paths.src.glob("chapters/*.ipynb")):
        nb = nbformat.read(path, as_version=4)
        try:
            cache.match_cache_notebook(nb)
            status[path.name] = "cached"
        except KeyError:
            todo.append((path, nb))
    return status, todo


def cached_chapters(paths: BookPaths) -> tuple[int, int]:
    """(chapters the execution cache holds, staged chapters)."""
    from jupyter_cache import get_cache

    status, todo = _split_by_cache(paths, get_cache(str(paths.cache)))
    return len(status), len(status) + len(todo)


def _cache_result(cache, path, future) -> str:
    """Put a finished chapter into the cache; its status."""
    from jupyter_cache.base import CacheBundleIn

    try:
        result = future.result()
    except Exception as e:  # the worker itself failed
        return f"failed: {type(e).__name__}: {e}"
    if result.err is not None:
        return f"failed: {type(result.err).__name__}"
    stage_record = cache.add_nb_to_project(str(path))
    cache.cache_notebook_bundle(
        CacheBundleIn(result.nb, stage_record.uri, data={"execution_seconds": result.time}),
        check_validity=False,
        overwrite=True,
    )
    return f"executed in {result.time:.1f} s"


def _ignore_sigint() -> None:
    """In each worker process: Ctrl-C is the driver's to handle (it kills the workers)."""
    signal.signal(signal.SIGINT, signal.SIG_IGN)


def execute_missing(
    paths: BookPaths, jobs: int = 2, timeout: int | None = None, stop: StopRequest | None = None
) -> dict[str, str]:
    """Execute the staged notebooks missing from the execution cache, ``jobs`` at a time; cache them.

    Returns {notebook: "cached" | "executed ..." | "failed: <error>" | "interrupted"}. Uses
    jupyter-cache exactly as MyST-NB's ``cache`` mode does, so the build then finds every successful
    chapter in the cache. When ``stop`` is set (Ctrl-C), the workers and all they started are killed.
    """
    import multiprocessing
    from concurrent.futures import ProcessPoolExecutor

    from jupyter_cache import get_cache
    from jupyter_cache.executors.utils import single_nb_execution

    stop = stop or StopRequest()
    timeout = _config_timeout(paths) if timeout is None else timeout
    cache = get_cache(str(paths.cache))
    status, todo = _split_by_cache(paths, cache)
    if not todo:
        return status
    print(f"[book] executing {len(todo)} chapters, {jobs} at a time", file=sys.stderr)
    # "spawn": a fresh interpreter per worker (never a fork of a process that may hold TensorFlow);
    # the workers import only jupyter-cache and nbclient.
    context = multiprocessing.get_context("spawn")
    pool = ProcessPoolExecutor(max_workers=max(1, jobs), mp_context=context, initializer=_ignore_sigint)
    futures = {
        pool.submit(single_nb_execution, nb, cwd=str(path.parent), timeout=timeout, allow_errors=False): path
        for path, nb in todo
    }
    try:
        pending = set(futures)
        while pending and not stop.is_set():
            done, pending = wait(pending, timeout=POLL_S, return_when=FIRST_COMPLETED)
            for future in done:
                path = futures[future]
                status[path.name] = _cache_result(cache, path, future)
                print(f"[book] {path.name}: {status[path.name]}", file=sys.stderr)
    finally:
        if stop.is_set():
            for pid in list(getattr(pool, "_processes", None) or {}):
                kill_tree(pid)
            status |= {futures[f].name: "interrupted" for f in futures if futures[f].name not in status}
        pool.shutdown(wait=not stop.is_set(), cancel_futures=True)
    return status
