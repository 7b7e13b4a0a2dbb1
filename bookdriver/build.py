"""``build``: stage, execute and build the book; the steps are in the package docstring."""

from __future__ import annotations

import os
import shutil
import subprocess
import sys
import time
from pathlib import Path

from .execute import execute_missing
from .figures import collect_figures
from .params import load_parameters
from .paths import ROOT, book_paths
from .stage import stage

__all__ = ["build"]


def _jupyter_book() -> list[str]:
    exe = Path(sys.executable).parent / "jupyter-book"
    return [str(exe)] if exe.exists() else [sys.executable, "-m", "jupyter_book.cli.main"]


def build(
    profile: str = "full",
    params_file: str | Path | None = None,
    root: Path = ROOT,
    all_pages: bool = False,
    quiet: bool = False,
    jobs: int = 2,
) -> int:
    """Stage, execute and build the book; return jupyter-book's exit code (0: success)."""
    t0 = time.perf_counter()
    paths = book_paths(profile, root)
    params = load_parameters(profile, params_file, root)
    origin = f"profile {profile}" + (f", file {Path(params_file).name}" if params_file else "")
    stage(paths, params, origin)
    # Inherited by every kernel (the pre-execution workers' and MyST-NB's).
    env = os.environ
    env["VAE_BOOK_FIGURES"] = ""  # the driver extracts figures from the executed notebooks
    env["VAE_BOOK_PROFILE"] = profile
    env.setdefault("TF_CPP_MIN_LOG_LEVEL", "3")
    env.setdefault("PYDEVD_DISABLE_FILE_VALIDATION", "1")
    env["PYTHONPATH"] = os.pathsep.join(filter(None, [str(root), env.get("PYTHONPATH", "")]))
    if jobs > 1:
        for name, state in execute_missing(paths, jobs).items():
            if state.startswith("failed"):
                print(f"[book] {name}: {state}; the build executes it again and reports", file=sys.stderr)
    # Sphinx re-reads only changed pages, so a page that warned last time would not warn again:
    # after a failed build, every page is read again (executed pages come from the cache).
    failed_marker = paths.build / ".last-build-failed"
    fresh = all_pages or failed_marker.exists()
    if paths.reports.exists():
        shutil.rmtree(paths.reports)  # reports of earlier builds must not look like this one's
    cmd = [*_jupyter_book(), "build", str(paths.src), "--path-output", str(paths.path_output)]
    cmd += ["-W", "-n", "--keep-going"] + (["--all"] if fresh else []) + (["-q"] if quiet else [])
    print(f"[book] {' '.join(cmd)}", file=sys.stderr)
    rc = subprocess.call(cmd, cwd=root)
    figures = collect_figures(paths) if paths.html.exists() else []
    pages_of: dict[str, set] = {}
    for f in figures:
        pages_of.setdefault(f["name"], set()).add(f["page"])
    clashes = {name: sorted(pages) for name, pages in pages_of.items() if len(pages) > 1}
    if clashes:  # one file name, two figures: a download would show the wrong one
        print(f"[book] error: figure names used on several pages: {clashes}", file=sys.stderr)
        rc = rc or 1
    dt = time.perf_counter() - t0
    reports = sorted(paths.reports.glob("**/*.log")) if paths.reports.exists() else []
    print(f"[book] {len(figures)} figures in {paths.figures}", file=sys.stderr)
    if reports:
        print("[book] execution reports:\n  " + "\n  ".join(str(r) for r in reports), file=sys.stderr)
    if rc:
        failed_marker.parent.mkdir(parents=True, exist_ok=True)
        failed_marker.touch()
    else:
        failed_marker.unlink(missing_ok=True)
    status = "built" if rc == 0 else f"FAILED (exit {rc})"
    print(f"[book] {status} in {dt:.1f} s: {paths.html / 'index.html'}", file=sys.stderr)
    return rc
