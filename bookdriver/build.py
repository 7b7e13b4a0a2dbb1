"""``build``: stage, execute and build the book; the steps are in the package docstring.

Ctrl-C (to the process group, or to the driver alone) or SIGTERM (``kill PID``) stops the build
between or inside steps: no further chapter starts, every process the build started is killed (chapter kernels and their
sweeps' kernels included), and ``BookInterrupted`` says how many chapters the execution cache
holds; the same command resumes, executing only the rest. Whatever kills the driver (SIGKILL
included), its processes die with it (``vae_utils.experiments.processes.child_command``).
"""

from __future__ import annotations

import contextlib
import json
import os
import re
import shlex
import shutil
import socket
import subprocess
import sys
import time
from pathlib import Path

from vae_utils.experiments.processes import StopRequest, child_command, kill_tree
from vae_utils.localpaths import STARTUP_FILE

from . import consistency
from .execute import cached_chapters, execute_missing, executed_notebooks
from .figure_index import FIGURE_SIZE_LIMITS, collect_figures, out_of_bounds
from .pages import generate, public_reports
from .params import check_cost, load_parameters
from .paths import ROOT, BookPaths, book_paths
from .stage import Plan, check_free_space, plan, sync_tree, write_notebooks

__all__ = ["build", "BookInterrupted", "BuildLocked", "one_build", "resume_command"]

POLL_S = 0.25
LOCK_NAME = ".build.lock"  # in the tree's _build: one build of a tree at a time (``one_build``)
ANSI = re.compile(r"\x1b\[[0-9;]*m")


class BookInterrupted(KeyboardInterrupt):
    """Ctrl-C stopped the build; the message says what the execution cache holds and how to resume."""


def _jupyter_book() -> list[str]:
    """The ``jupyter-book`` command, in a process that dies with the driver whatever kills it."""
    exe = Path(sys.executable).parent / "jupyter-book"
    if not exe.exists():
        raise FileNotFoundError(f"{exe} is missing: install the book's extra (pip install -e '.[book]')")
    return child_command(exe.absolute())


def _kernel_environment(paths: BookPaths, jobs: int) -> None:
    """What every kernel inherits (the pre-execution workers' and MyST-NB's): where results go, the
    build's budget of ``jobs`` training processes, one thread each (``vae_utils.cpuslots``), and the
    cache of XLA's compiled programs they share (``vae_utils.xlacache``)."""
    from vae_utils.cpuslots import HELD_ENV, SLOTS_ENV, create_slots
    from vae_utils.xlacache import CACHE_ENV

    env = os.environ
    env["VAE_BOOK_FIGURES"] = ""  # the driver extracts figures from the executed notebooks
    env["VAE_BOOK_PROFILE"] = paths.profile
    env.setdefault("VAE_RESULTS_DIR", str(paths.root / "results"))
    env.setdefault(CACHE_ENV, str(Path(env["VAE_RESULTS_DIR"]) / "xla-cache"))  # compiled programs, shared
    env[SLOTS_ENV] = str(create_slots(paths.out / ".slots", jobs))
    env.pop(HELD_ENV, None)
    for name in ("TF_NUM_INTRAOP_THREADS", "TF_NUM_INTEROP_THREADS", "OMP_NUM_THREADS"):
        env[name] = "1"  # one slot, one core
    env.setdefault("TF_CPP_MIN_LOG_LEVEL", "3")
    env.setdefault("PYDEVD_DISABLE_FILE_VALIDATION", "1")
    env["PYTHONSTARTUP"] = str(STARTUP_FILE)  # tracebacks on pages show no local paths (vae_utils.localpaths)
    env["PYTHONPATH"] = os.pathsep.join(filter(None, [str(paths.root), env.get("PYTHONPATH", "")]))


def _run(cmd: list[str], cwd: Path, stop: StopRequest, log: Path) -> int:
    """Run ``cmd`` to its end, or until ``stop`` is set (then it is killed with all it started); its
    output goes to ``log``."""
    log.parent.mkdir(parents=True, exist_ok=True)
    with open(log, "w") as out:
        proc = subprocess.Popen(cmd, cwd=cwd, stdout=out, stderr=subprocess.STDOUT)
        while proc.poll() is None:
            time.sleep(POLL_S)
            if stop.is_set():
                kill_tree(proc.pid)
                proc.wait()
    return proc.returncode


def _report_sphinx(log: Path, limit: int = 40) -> None:
    """Print Sphinx's warnings and errors from its log (not the chatter of kernels it started)."""
    text = ANSI.sub("", log.read_text(errors="replace")) if log.exists() else ""
    noise = ("IPKernelApp", "absl::", "oneDNN", "port.cc", "cpu_feature_guard")
    lines = [
        ln
        for ln in text.splitlines()
        if any(word in ln for word in ("WARNING:", "ERROR:", "CRITICAL:", "Sphinx error", "Extension error"))
        and not any(n in ln for n in noise)
    ]
    for ln in lines[:limit]:
        print(f"[sphinx] {ln}", file=sys.stderr)
    if len(lines) > limit:
        print(f"[sphinx] ... {len(lines) - limit} more in {log}", file=sys.stderr)


def _sphinx(paths: BookPaths, all_pages: bool, quiet: bool, stop: StopRequest) -> int:
    """``jupyter-book build`` of the staged sources; its exit code."""
    # Sphinx re-reads only changed pages, so a page that warned last time would not warn again:
    # after a failed build, every page is read again (executed pages come from the cache).
    fresh = all_pages or (paths.build / ".last-build-failed").exists()
    if paths.reports.exists():
        shutil.rmtree(paths.reports)  # reports of earlier builds must not look like this one's
    cmd = [*_jupyter_book(), "build", str(paths.src), "--path-output", str(paths.path_output)]
    cmd += ["-W", "-n", "--keep-going"] + (["--all"] if fresh else []) + (["-q"] if quiet else [])
    log = paths.out / "logs" / "sphinx.log"
    print(f"[book] Sphinx (jupyter-book build): its output goes to {log}", file=sys.stderr)
    rc = _run(cmd, paths.root, stop, log)
    _report_sphinx(log)
    return rc


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
    stretched = out_of_bounds(figures)
    if stretched:  # text far outside the axes stretches a figure (a page of white space)
        print(f"[book] error: figures outside {FIGURE_SIZE_LIMITS} (width, height px): {stretched}", file=sys.stderr)
        rc = rc or 1
    print(f"[book] {len(figures)} figures in {paths.figures}", file=sys.stderr)
    return rc


def _mark(paths: BookPaths, failed: bool) -> None:
    """How the last build ended: ``.last-build-failed`` (the next one reads every page again) or
    ``.last-build-ok`` (the next one may skip Sphinx when nothing changed)."""
    marker, ok = paths.build / ".last-build-failed", paths.build / ".last-build-ok"
    marker.parent.mkdir(parents=True, exist_ok=True)
    (marker if failed else ok).touch()
    (ok if failed else marker).unlink(missing_ok=True)


def _html_is_current(paths: BookPaths, changed: int, status: dict, all_pages: bool) -> bool:
    """Nothing to render: no staged file changed, no chapter executed, and the last build finished
    its Sphinx run and succeeded (its marker is removed before Sphinx starts, so a killed run counts)."""
    every_cached = all(state == "cached" for state in status.values())
    ok = (paths.build / ".last-build-ok").exists() and (paths.html / "index.html").exists()
    return changed == 0 and every_cached and ok and not all_pages


def _interrupted(paths: BookPaths) -> BookInterrupted:
    _mark(paths, failed=True)  # the next build reads every page again
    done, total = cached_chapters(paths)
    return BookInterrupted(
        f"interrupted: {done} of {total} chapters executed in the cache {paths.cache}; run the same command to resume"
    )


class BuildLocked(RuntimeError):
    """Another build of this tree runs; the message names its pid, host and start."""


def _holder(lock: Path) -> str:
    try:
        held = json.loads(lock.read_text())
        since = time.strftime("%Y-%m-%d %H:%M:%S", time.localtime(held["since"]))
        return f"pid {held['pid']} on host {held['host']} since {since}"
    except (OSError, ValueError, KeyError, TypeError):
        return "a process that has not yet said who it is"


@contextlib.contextmanager
def one_build(paths: BookPaths):
    """Hold the tree's build lock (``_build/.build.lock``, an flock released whenever the driver
    ends, however it ends) for a whole build; ``BuildLocked`` when another build holds it. One
    build per tree: two would execute the same chapters into one cache and write one ``_build``."""
    import fcntl

    lock = paths.root / "_build" / LOCK_NAME
    lock.parent.mkdir(parents=True, exist_ok=True)
    fd = os.open(lock, os.O_RDWR | os.O_CREAT | os.O_NOFOLLOW, 0o644)
    try:
        try:
            fcntl.flock(fd, fcntl.LOCK_EX | fcntl.LOCK_NB)
        except BlockingIOError:
            raise BuildLocked(
                f"another build of this tree is running: {_holder(lock)} (lock {lock.relative_to(paths.root)}); "
                "wait for it to end, or stop it with Ctrl-C or kill"
            ) from None
        os.ftruncate(fd, 0)
        os.write(fd, json.dumps({"pid": os.getpid(), "host": socket.gethostname(), "since": time.time()}).encode())
        yield
    finally:
        os.close(fd)


def resume_command(profile: str, params_file, root: Path) -> str:
    """The command that builds this book again (executing only what the cache lacks)."""
    cmd = ["python", "-m", "bookdriver", "build", "--profile", profile]
    cmd += ["--params", str(params_file)] if params_file else []
    cmd += ["--root", str(root)] if Path(root).resolve() != ROOT else []
    return shlex.join(cmd)


def _stopped_on(paths: BookPaths, failed: list[str], resume: str) -> int:
    """A chapter failed: the build stops before Sphinx (no page is built from missing outputs)."""
    _mark(paths, failed=True)
    done, total = cached_chapters(paths)
    print(
        f"[book] stopped: {', '.join(failed)} failed (its error is above; the kernel's output in "
        f"{(paths.out / 'logs').relative_to(paths.root)}); {done} of {total} chapters are executed in the cache. "
        f"Fix it, then resume: {resume}",
        file=sys.stderr,
    )
    return 1


def _no_execution(generated: dict[str, bytes]) -> dict[str, bytes]:
    """The staged ``_config.yml`` with MyST-NB's execution off: Sphinx renders the notebooks the
    driver executed and staged with their outputs, and never executes a chapter itself."""
    import yaml

    text = generated["_config.yml"].decode()
    head = "".join(line + "\n" for line in text.splitlines() if line.startswith("#"))
    cfg = yaml.safe_load(text)
    cfg.setdefault("execute", {})["execute_notebooks"] = "off"
    cfg["execute"].pop("timeout", None)
    return generated | {"_config.yml": (head + yaml.safe_dump(cfg, sort_keys=False, allow_unicode=True)).encode()}


def _execute(paths, staged: Plan, jobs, stop):
    """Step 2): stage and execute the chapters; (statuses, progress, the staged notebooks with
    their outputs: {relative path: bytes})."""
    executed = executed_notebooks(paths, staged)  # those the cache holds, staged with their outputs:
    write_notebooks(paths, Plan({**staged.wanted, **executed}, {}, {}, 0))  # an unchanged file stays unchanged
    _kernel_environment(paths, jobs)
    status, progress = execute_missing(paths, jobs, stop=stop, slots=jobs)  # 2) the chapters
    if stop.is_set():
        raise _interrupted(paths)
    return status, progress, executed | executed_notebooks(paths, staged, skip=executed)


def build(
    profile: str = "full",
    params_file: str | Path | None = None,
    root: Path = ROOT,
    all_pages: bool = False,
    quiet: bool = True,
    jobs: int | None = None,
    allow_long: bool = False,
) -> int:
    """Stage, execute and build the book; return 0 on success, 1 when a chapter or Sphinx failed.

    ``jobs``: the CPU budget (default: the cores this process may use): at most that many chapters
    execute at once, and at most that many training processes run at once across all of them.
    ``allow_long``: run a build predicted to take over an hour (``params.check_cost``).
    Raises ``BookInterrupted`` (a ``KeyboardInterrupt``) on Ctrl-C or SIGTERM, after killing what
    it started, and ``BuildLocked`` when another build of this tree runs."""
    t0 = time.perf_counter()
    jobs = jobs or (len(os.sched_getaffinity(0)) if hasattr(os, "sched_getaffinity") else os.cpu_count() or 1)
    paths = book_paths(profile, root)
    params = load_parameters(profile, params_file, root)
    origin = f"profile {profile}" + (f", file {Path(params_file).name}" if params_file else "")
    staged = plan(paths, params, origin)  # 1) parameters checked, sources planned (nothing written)
    check_free_space(paths, staged)  # a full disk is refused now, not after the chapters ran
    check_cost(staged.effective, staged.notebooks, jobs, allow_long)  # ... and a build over an hour, unless allowed
    with one_build(paths), StopRequest() as stop:
        status, progress, executed = _execute(paths, staged, jobs, stop)
        print(f"[book] {progress.summary()}", file=sys.stderr)
        failed = [name for name, state in status.items() if state.startswith("failed")]
        if failed:
            return _stopped_on(paths, failed, resume_command(profile, params_file, root))
        wanted = {**staged.wanted, **executed, **_no_execution(generate(paths, staged))}
        changed = sync_tree(paths.src, wanted)  # 3) pages made from the executed chapters
        print(f"[book] staged {staged.pages} pages ({changed} files changed)", file=sys.stderr)
        if _html_is_current(paths, changed, status, all_pages):
            print("[book] nothing changed since the last build: the HTML is current (Sphinx not run)", file=sys.stderr)
            rc = 0
        else:
            (paths.build / ".last-build-ok").unlink(missing_ok=True)
            rc = _sphinx(paths, all_pages, quiet, stop)  # 4) Sphinx renders; it executes nothing
            public_reports(paths)
        if stop.is_set():
            raise _interrupted(paths)
    return _finish(paths, rc, t0)


def _consistent(paths: BookPaths, rc: int) -> int:
    """Every outcome and scope the built pages state checked against verdicts.json (``consistency``)."""
    if rc != 0 or not paths.html.is_dir():
        return rc
    problems = consistency.check(paths.html)
    for problem in problems:
        print(f"[book] contradiction: {problem}", file=sys.stderr)
    return 1 if problems else rc


def _finish(paths: BookPaths, rc: int, t0: float) -> int:
    """Step 5): the figures; the pages checked against the verdicts; the build's last line."""
    rc = _figures(paths, rc)
    rc = _consistent(paths, rc)
    _mark(paths, failed=bool(rc))
    status = "built" if rc == 0 else f"FAILED (exit {rc})"
    print(f"[book] {status} in {time.perf_counter() - t0:.1f} s: {paths.html / 'index.html'}", file=sys.stderr)
    return rc
