"""Executing the staged chapters that the execution cache does not hold, in parallel, into that cache.

MyST-NB alone executes one chapter after the other; the driver runs several at once with
jupyter-cache exactly as MyST-NB's ``cache`` mode would, so the Sphinx build then finds every
successful chapter in the cache and executes nothing itself.
"""

from __future__ import annotations

import sys

from .paths import BookPaths

__all__ = ["execute_missing"]


def execute_missing(paths: BookPaths, jobs: int = 2, timeout: int | None = None) -> dict[str, str]:
    """Execute the staged notebooks missing from the execution cache, ``jobs`` at a time; cache them.

    Returns {notebook: "cached" | "executed" | "failed: <error>"}. Uses jupyter-cache exactly as
    MyST-NB's ``cache`` mode does, so the build then finds every successful chapter in the cache.
    """
    import multiprocessing
    from concurrent.futures import ProcessPoolExecutor

    import nbformat
    import yaml
    from jupyter_cache import get_cache
    from jupyter_cache.base import CacheBundleIn
    from jupyter_cache.executors.utils import single_nb_execution

    if timeout is None:
        cfg = yaml.safe_load((paths.src / "_config.yml").read_text(encoding="utf-8")) or {}
        timeout = int(cfg.get("execute", {}).get("timeout", 1200))
    cache = get_cache(str(paths.cache))
    status, todo = {}, []
    for path in sorted(paths.src.glob("chapters/*.ipynb")):
        nb = nbformat.read(path, as_version=4)
        try:
            cache.match_cache_notebook(nb)
            status[path.name] = "cached"
        except KeyError:
            todo.append((path, nb))
    if not todo:
        return status
    print(f"[book] executing {len(todo)} chapters, {jobs} at a time", file=sys.stderr)
    # "spawn": a fresh interpreter per worker (never a fork of a process that may hold TensorFlow);
    # the workers import only jupyter-cache and nbclient.
    with ProcessPoolExecutor(max_workers=max(1, jobs), mp_context=multiprocessing.get_context("spawn")) as pool:
        futures = {
            path: pool.submit(single_nb_execution, nb, cwd=str(path.parent), timeout=timeout, allow_errors=False)
            for path, nb in todo
        }
        for path, future in futures.items():
            try:
                result = future.result()
            except Exception as e:  # the worker itself failed
                status[path.name] = f"failed: {type(e).__name__}: {e}"
                continue
            if result.err is not None:
                status[path.name] = f"failed: {type(result.err).__name__}"
                continue
            stage_record = cache.add_nb_to_project(str(path))
            cache.cache_notebook_bundle(
                CacheBundleIn(result.nb, stage_record.uri, data={"execution_seconds": result.time}),
                check_validity=False,
                overwrite=True,
            )
            status[path.name] = f"executed in {result.time:.1f} s"
            print(f"[book] {path.name}: {status[path.name]}", file=sys.stderr)
    return status
