"""``build``: stage, execute and build the book; the steps are in the package docstring.

Ctrl-C (to the process group, or to the driver alone) stops the build between or inside steps: no
further chapter starts, every process the build started is killed (chapter kernels and their
sweeps' kernels included), and ``BookInterrupted`` says how many chapters the execution cache
holds; the same command resumes, executing only the rest.
"""

from __future__ import annotations

import os
import shutil
import subprocess
import sys
import time
from pathlib import Path

from vae_utils.experiments.processes import StopRequest, kill_tree

from .execute import cached_chapters, execute_missing
from .figures import collect_figures
from .params import load_parameters
from .paths import ROOT, BookPaths, book_paths
from .stage import stage

__all__ = ["build", "BookInterrupted"]

POLL_S = 0.25


class BookInterrupted(KeyboardInterrupt):
    """Ctrl-C stopped the build; the message says what the execution cache holds and how to resume."""


def _jupyter_book() -> list[str]:
    exe = Path(sys.executable).parent / "jupyter-book"
    return [str(exe)] if exe.exists() else [sys.executable, "-m", "jupyter_book.cli.main"]


def _kernel_environment(profile: str, root: Path) -> None:
    """What every kernel inherits (the pre-execution workers' and MyST-NB's)."""
    env = os.environ
    env["VAE_BOOK_FIGURES"] = ""  # the driver extracts figures from the executed notebooks
    env["VAE_BOOK_PROFILE"] = profile
    env.setdefault("TF_CPP_MIN_LOG_LEVEL", "3")
    env.setdefault("PYDEVD_DISABLE_FILE_VALIDATION", "1")
    env["PYTHONPATH"] = os.pathsep.join(filter(None, [str(root), env.get("PYTHONPATH", "")]))


def _run(cmd: list[str], cwd: Path, stop: StopRequest) -> int:
    """Run ``cmd`` to its end, or until ``stop`` is set (then it is killed with all it started)."""
    proc = subprocess.Popen(cmd, cwd=cwd)
    while proc.poll() is None:
        time.sleep(POLL_S)
        if stop.is_set():
            kill_tree(proc.pid)
            proc.wait()
    return proc.returncode


def _sphinx(paths: BookPaths, all_pages: bool, quiet: bool, stop: StopRequest) -> int:
    """``jupyter-book build`` of the staged sources; its exit code."""
    # Sphinx re-reads only changed pages, so a page that warned last time would not warn again:
    # after a failed build, every page is read again (executed pages come from the cache).
    fresh = all_pages or (paths.build / ".last-build-failed").exists()
    if paths.reports.exists():
        shutil.rmtree(paths.reports)  # reports of earlier builds must not look like this one's
    cmd = [*_jupyter_book(), "build", str(paths.src), "--path-output", str(paths.path_output)]
    cmd += ["-W", "-n", "--keep-going"] + (["--all"] if fresh else []) + (["-q"] if quiet else [])
    print(f"[book] {' '.join(cmd)}", file=sys.stderr)
    return _run(cmd, paths.root, stop)


def _figures(paths: BookPaths, rc: int) -> int:
    """Extract the figures; an error (rc 1) when one file name stands for figures of several pages."""
    figures = collect_figures(paths) if paths.html.exists() else []
    pages_of: dict[str, set] = {}
    for f in figures:
        pages_of.setdefault(f["name"], set()).add(f["page"])
    clashes = {name: sorted(pages) for name, pages in pages_of.items() if len(pages) > 1}
    if clashes:  # one file name, two figures: a download would show the wrong one
        print(f"[book] error: figure names used on several pages: {clashes}", file=sys.stderr)
        rc = rc or 1
    print(f"[book] {len(figures)} figures in {paths.figures}", file=sys.stderr)
    return rc


def _mark(paths: BookPaths, failed: bool) -> None:
    marker = paths.build / ".last-build-failed"
    if failed:
        marker.parent.mkdir(parents=True, exist_ok=True)
        marker.touch()
    else:
        marker.unlink(missing_ok=True)


def _interrupted(paths: BookPaths) -> BookInterrupted:
    _mark(paths, failed=True)  # the next build reads every page again
    done, total = cached_chapters(paths)
    return BookInterrupted(
        f"interrupted: {done} of {total} chapters executed in the cache {paths.cache}; run the same command to resume"
    )


def build(
    profile: str = "full",
    params_file: str | Path | None = None,
    root: Path = ROOT,
    all_pages: bool = False,
    quiet: bool = False,
    jobs: int = 2,
) -> int:
    """Stage, execute and build the book; return jupyter-book's exit code (0: success).

    Raises ``BookInterrupted`` (a ``KeyboardInterrupt``) on Ctrl-C, after killing what it started."""
    t0 = time.perf_counter()
    paths = book_paths(profile, root)
    params = load_parameters(profile, params_file, root)
    origin = f"profile {profile}" + (f", file {Path(params_file).name}" if params_file else "")
    with StopRequest() as stop:
        stage(paths, params, origin)
        _kernel_environment(profile, root)
        if jobs > 1 and not stop.is_set():
            for name, state in execute_missing(paths, jobs, stop=stop).items():
                if state.startswith("failed"):
                    print(f"[book] {name}: {state}; the build executes it again and reports", file=sys.stderr)
        rc = _sphinx(paths, all_pages, quiet, stop) if not stop.is_set() else None
        if stop.is_set():
            raise _interrupted(paths)
    rc = _figures(paths, rc)
    reports = sorted(paths.reports.glob("**/*.log")) if paths.reports.exists() else []
    if reports:
        print("[book] execution reports:\n  " + "\n  ".join(str(r) for r in reports), file=sys.stderr)
    _mark(paths, failed=bool(rc))
    status = "built" if rc == 0 else f"FAILED (exit {rc})"
    print(f"[book] {status} in {time.perf_counter() - t0:.1f} s: {paths.html / 'index.html'}", file=sys.stderr)
    return rc
