"""Ctrl-C, waits and an empty Dask cluster, for real: the CLI and the book driver as subprocesses, real
papermill kernels, a real ``dask scheduler`` and ``dask worker`` on 127.0.0.1.

Run: ``.venv/bin/pytest tests/test_interrupts.py`` (all ``slow``: each starts kernels, ~20-60 s).
Every interrupted command must exit 130 saying how many runs are complete, leave no process it
started running, record nothing as failed, and the same command must then finish the rest.
"""

import contextlib
import json
import os
import re
import signal
import subprocess
import sys
import time
from pathlib import Path

import nbformat
import psutil
import pytest
from conftest import dask_workers

from vae_utils.experiments import store

pytestmark = pytest.mark.slow

REPO = Path(__file__).resolve().parents[1]
# four configs, not four seeds of one: a kernel trains a config's seeds as one stack and records them together
GRID = ["--batch-size", "16", "--epochs", "20", "--eval-k", "10", "--learning-rate", "1e-3", "2e-3", "3e-3", "4e-3"]
GRID += ["--seeds", "0"]
# Interrupted as soon as training is under way: far more work than a prompt stop lets through, so a
# stop that waits for the work (or never reaches a remote worker) shows.
LONG = {"dataset": "digits", "batch_size": 16, "epochs": 20, "eval_k": 10, "seed": list(range(8))}
LONG_ARGS = ["--batch-size", "16", "--epochs", "20", "--eval-k", "10", "--seeds", *map(str, range(8))]
INTERRUPTED = re.compile(r"interrupted: (\d+) of (\d+) runs complete in (.+); run the same command to resume")


def sweep_cmd(out, *extra, grid=GRID):
    return [sys.executable, "-m", "vae_utils", "sweep", "--no-progress", "--out", str(out), *grid, *map(str, extra)]


def _kill_all(proc) -> None:
    if proc.poll() is None:
        for p in [*psutil.Process(proc.pid).children(recursive=True), psutil.Process(proc.pid)]:
            with contextlib.suppress(psutil.Error):
                p.kill()
    with contextlib.suppress(subprocess.TimeoutExpired):
        proc.communicate(timeout=30)


@pytest.fixture
def start():
    """Start a subprocess in its own session (its own process group, as a terminal would start it);
    what is left of it and its descendants is killed after the test, even one that failed.
    ``start.watch(procs)`` adds processes to kill afterwards (descendants that may outlive it)."""
    started, watched = [], []

    def _start(cmd, **kwargs):
        kwargs = {"start_new_session": True, "stdout": subprocess.PIPE, "stderr": subprocess.PIPE} | kwargs
        started.append(subprocess.Popen(cmd, text=True, **kwargs))
        return started[-1]

    _start.watch = watched.extend
    yield _start
    for proc in started:
        _kill_all(proc)
    for p in running(watched):
        with contextlib.suppress(psutil.Error):
            p.kill()


def training(out) -> bool:
    """Whether a kernel of the store trains a run now (its heartbeat names one)."""
    beats = (Path(out) / "workers").glob("*.json") if (Path(out) / "workers").exists() else []
    return any((store.read_json(b) or {}).get("run_id") for b in beats)


def wait_for(condition, what, timeout=300.0):
    t0 = time.time()
    while not condition():
        if time.time() - t0 > timeout:
            pytest.fail(f"timed out waiting for {what}")
        time.sleep(0.05)


def statuses(out) -> dict:
    """run_id -> status of every complete record (read raw: a failed record must not hide)."""
    runs = Path(out) / "runs"
    found = {}
    for d in sorted(runs.iterdir()) if runs.exists() else []:
        if (d / "record.json").is_file():
            found[d.name] = json.loads((d / "record.json").read_text())["status"]
    return found


def running(procs) -> list:
    """The processes of ``procs`` still running (a zombie waiting for its reaper counts as gone)."""
    alive = []
    for p in procs:
        try:
            if p.is_running() and p.status() != psutil.STATUS_ZOMBIE:
                alive.append(p)
        except psutil.NoSuchProcess:
            pass
    return alive


def assert_gone(procs, deadline=60.0):
    """Every process is gone within ``deadline`` seconds (SIGKILL is delivered at once, a process
    whose parent died notices within a second; the deadline only allows for a loaded machine)."""
    t0 = time.time()
    while running(procs) and time.time() - t0 < deadline:
        time.sleep(0.1)
    assert not running(procs), [" ".join(p.cmdline())[:80] for p in running(procs)]


def kernels_of(pid) -> list:
    """The kernels (``ipykernel_launcher`` processes) below ``pid``."""
    return [p for p in psutil.Process(pid).children(recursive=True) if "ipykernel" in " ".join(p.cmdline())]


def assert_interrupted(proc, stderr, out, total):
    """Exit 130, the message with k = the complete runs (fewer than all: it stopped), nothing
    failed, no traceback."""
    assert proc.returncode == 130, stderr[-3000:]
    m = INTERRUPTED.search(stderr)
    assert m, stderr[-3000:]
    done = statuses(out)
    assert int(m[1]) == len(done) < total and int(m[2]) == total and m[3] == str(Path(out).resolve())
    assert set(done.values()) <= {"ok"}, f"nothing may be recorded as failed: {done}"
    assert "Traceback" not in stderr
    return done


def _interrupt_sweep(tmp_path, start, send):
    out = tmp_path / "store"
    proc = start(sweep_cmd(out, "--workers", 1))
    wait_for(lambda: len(statuses(out)) >= 1, "the first run")
    procs = psutil.Process(proc.pid).children(recursive=True)
    assert kernels_of(proc.pid), "a kernel is running"
    send(proc)
    _, stderr = proc.communicate(timeout=120)
    done = assert_interrupted(proc, stderr, out, 4)
    assert_gone(procs)
    assert not list((out / "workers").iterdir()), "no heartbeat is left"
    return out, done


def test_ctrl_c_to_the_process_group_stops_the_sweep_kills_its_kernels_and_the_same_command_resumes(tmp_path, start):
    """What a terminal's Ctrl-C does: SIGINT to every process of the group (the CLI and papermill;
    the kernel has its own session). The same command then trains exactly the runs left."""
    out, done = _interrupt_sweep(tmp_path, start, lambda p: os.killpg(p.pid, signal.SIGINT))
    again = subprocess.run(sweep_cmd(out, "--workers", 1), capture_output=True, text=True, timeout=600)
    assert again.returncode == 0, again.stderr[-3000:]
    assert f"ran {4 - len(done)}, cached {len(done)}" in again.stderr
    assert set(statuses(out).values()) == {"ok"} and len(statuses(out)) == 4


def test_ctrl_c_to_the_sweep_process_alone_stops_it_at_once(tmp_path, start):
    """What an IDE's stop button or a Jupyter interrupt sends: SIGINT to the sweep process only.
    It used to be ignored until every remaining run had trained."""
    _, done = _interrupt_sweep(tmp_path, start, lambda p: p.send_signal(signal.SIGINT))
    assert 1 <= len(done) < 4, f"it stopped with runs left, not after them: {len(done)} of 4 complete"


def test_sigterm_to_the_sweep_stops_it_as_ctrl_c_does(tmp_path, start):
    """``kill PID`` (SIGTERM, what a process manager or a job scheduler sends): the same stop as
    Ctrl-C, the same message and exit code 130, its kernels killed, nothing recorded as failed."""
    _, done = _interrupt_sweep(tmp_path, start, lambda p: p.send_signal(signal.SIGTERM))
    assert 1 <= len(done) < 4, f"it stopped with runs left: {len(done)} of 4 complete"


def test_a_sweep_killed_with_sigkill_leaves_no_process_running(tmp_path, start):
    """SIGKILL cannot be handled: the sweep's papermill processes and kernels must die with it
    anyway, and the store keeps only complete runs."""
    out = tmp_path / "store"
    proc = start(sweep_cmd(out, "--workers", 1))
    wait_for(lambda: training(out) and kernels_of(proc.pid), "a kernel to train")
    procs = psutil.Process(proc.pid).children(recursive=True)
    start.watch(procs)
    proc.kill()
    assert proc.wait(timeout=120) == -signal.SIGKILL  # not communicate(): survivors hold its pipes
    assert_gone(procs)
    assert set(statuses(out).values()) <= {"ok"}


def _tiny_book(root: Path, out: Path) -> Path:
    """A book of one Markdown page and one chapter that runs a sweep into ``out``."""
    (root / "chapters").mkdir(parents=True)
    (root / "_config.yml").write_text("title: t\nexecute:\n  execute_notebooks: cache\n  timeout: 600\n")
    (root / "references.bib").write_text("")
    (root / "_toc.yml").write_text("format: jb-book\nroot: chapters/intro\nchapters:\n  - file: chapters/sweep\n")
    (root / "chapters" / "intro.md").write_text("# Intro\n")
    grid = LONG
    nb = nbformat.v4.new_notebook(
        metadata={"kernelspec": {"name": "python3", "language": "python", "display_name": "Python 3"}}
    )
    nb.cells = [
        nbformat.v4.new_markdown_cell("# A sweep"),
        nbformat.v4.new_code_cell(
            f"from vae_utils.experiments import sweep\nsweep({grid!r}, out={str(out)!r}, workers=1, progress=False)"
        ),
    ]
    nbformat.write(nb, root / "chapters" / "sweep.ipynb")
    return root


def _book_under_way(tmp_path, start):
    """A tiny book's build, started and waited for until its chapter's sweep trains: (the driver's
    process, the store, every descendant of the driver then)."""
    out = tmp_path / "store"
    root = _tiny_book(tmp_path / "book", out)
    proc = start([sys.executable, "-m", "bookdriver", "build", "--root", str(root), "-j", "2"], cwd=REPO)
    wait_for(lambda: training(out) and len(kernels_of(proc.pid)) >= 2, "the sweep's kernel to train")
    procs = psutil.Process(proc.pid).children(recursive=True)
    start.watch(procs)
    return proc, out, procs


def test_ctrl_c_to_the_book_driver_alone_stops_the_build_and_every_kernel_it_started(tmp_path, start):
    """``python -m bookdriver build``: a chapter's kernel runs a sweep, whose kernel trains; SIGINT
    to the driver alone (nothing else receives it) kills the chapter kernel, the sweep's papermill
    and kernel; the build exits 130 saying no chapter is cached yet; no run is recorded as failed."""
    proc, out, procs = _book_under_way(tmp_path, start)
    proc.send_signal(signal.SIGINT)
    _, stderr = proc.communicate(timeout=120)
    assert proc.returncode == 130, stderr[-3000:]
    assert re.search(r"interrupted: 0 of 1 chapters executed in the cache .+; run the same command to resume", stderr)
    assert "Traceback" not in stderr
    assert_gone(procs)
    assert set(statuses(out).values()) <= {"ok"} and len(statuses(out)) < len(LONG["seed"])


def test_sigterm_to_the_book_driver_stops_the_build_as_ctrl_c_does(tmp_path, start):
    """``kill PID`` of ``python -m bookdriver build``: the message of Ctrl-C, exit 130, and every
    process the build started (pool worker, chapter kernel, the sweep's papermill and kernel) gone."""
    proc, out, procs = _book_under_way(tmp_path, start)
    proc.send_signal(signal.SIGTERM)
    proc.wait(timeout=120)  # not communicate(): a surviving child would hold its pipes open
    assert_gone(procs)
    stderr = proc.stderr.read()
    assert proc.returncode == 130, stderr[-3000:]
    assert re.search(r"interrupted: 0 of 1 chapters executed in the cache .+; run the same command to resume", stderr)
    assert "Traceback" not in stderr
    assert set(statuses(out).values()) <= {"ok"}


def test_a_book_driver_killed_with_sigkill_leaves_no_process_running(tmp_path, start):
    """SIGKILL of the driver alone: its pool worker, the chapter's kernel, the sweep's papermill and
    kernel all die with it (they used to run on for minutes, training into the store)."""
    proc, out, procs = _book_under_way(tmp_path, start)
    proc.kill()
    assert proc.wait(timeout=120) == -signal.SIGKILL  # not communicate(): survivors hold its pipes
    assert_gone(procs)
    assert set(statuses(out).values()) <= {"ok"}


# -- Dask: a real scheduler and worker on loopback -------------------------------------------------


@pytest.fixture
def worker(dask_scheduler):
    """A ``dask worker`` (with its nanny) on 127.0.0.1, one task slot; its process."""
    with dask_workers(dask_scheduler, 1) as procs:
        yield procs[0]


def test_a_dask_sweep_without_workers_says_so_and_gives_up_after_max_wait(tmp_path, dask_scheduler):
    """The scheduler answers but has no worker: the sweep says so at once, naming the address and
    how to start one; past ``--max-wait`` it reports every run as not run (exit 1), writing none."""
    out = tmp_path / "store"
    proc = subprocess.run(
        sweep_cmd(out, "--scheduler", dask_scheduler, "--max-wait", 2), capture_output=True, text=True, timeout=120
    )
    assert proc.returncode == 1, proc.stderr[-3000:]
    assert f"the Dask scheduler at {dask_scheduler} has no workers" in proc.stderr
    assert f"dask worker {dask_scheduler} --host 127.0.0.1" in proc.stderr
    assert "not run 4" in proc.stderr and proc.stderr.count("NOT RUN") == 4
    assert statuses(out) == {}


def test_ctrl_c_stops_a_dask_sweep_and_its_kernel_on_the_worker(tmp_path, start, dask_scheduler, worker):
    """The slice runs on a Dask worker: Ctrl-C to the CLI's group (the worker is in another) reaches
    the worker through the store's stop file; its kernel is killed and the worker lives on."""
    out = tmp_path / "store"
    proc = start(sweep_cmd(out, "--scheduler", dask_scheduler, grid=LONG_ARGS))
    wait_for(lambda: training(out), "the worker's kernel to train")
    procs = kernels_of(worker.pid)
    assert procs, "the worker runs a kernel"
    os.killpg(proc.pid, signal.SIGINT)
    _, stderr = proc.communicate(timeout=120)
    assert_interrupted(proc, stderr, out, len(LONG["seed"]))
    assert_gone(procs)
    assert worker.poll() is None, "the worker itself lives on"
    assert not kernels_of(worker.pid), "and runs nothing more for this sweep"
