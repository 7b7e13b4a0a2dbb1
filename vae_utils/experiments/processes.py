"""Child processes of sweeps and book builds: Ctrl-C or SIGTERM as a request to stop, stopping a
process tree, and children that die with their parent.

    from vae_utils.experiments.processes import StopRequest, child_command, kill_tree
    with StopRequest() as stop:           # the first Ctrl-C or SIGTERM sets stop; nothing is raised mid-step
        proc = subprocess.Popen(child_command("papermill", "in.ipynb", "out.ipynb"))
        while work_left and not stop.is_set():
            ...
    kill_tree(proc.pid)                   # SIGKILL a process and everything it started

Why a request, not ``KeyboardInterrupt``: an exception can land anywhere (inside a ``with`` whose
exit waits for the very kernels it should stop, or half-way through a write), while a flag is read
where stopping is safe. SIGTERM (``kill PID``, a process manager, a job scheduler) is the same
request as SIGINT: the command stops, kills what it started and exits 130 with the same message.
The handlers are installed only in the main thread, not for a signal that is ignored (``nohup``,
background jobs ignore SIGINT), and the previous handlers are restored on exit.

Whatever kills a command (SIGKILL included), its children must not run on: ``child_command`` starts
a Python module in a process that asks Linux to SIGKILL it when its parent dies
(``PR_SET_PDEATHSIG``; elsewhere a thread watches the parent pid), and ``die_with_parent`` does the
same from inside a process (e.g. a pool worker's initializer). Linux sends that signal when the
*thread* that started the child ends, so start such children from a thread that outlives them (the
main thread, or the thread that waits for the child). Jupyter kernels also exit when their parent
goes (ipykernel polls the parent pid every second).

``kill_tree`` freezes the tree (SIGSTOP) until no new process appears, then kills every member:
a kernel started in its own session (as Jupyter starts them) is still a descendant and goes too.
"""

from __future__ import annotations

import contextlib
import inspect
import signal
import sys
import threading

__all__ = ["StopRequest", "kill_tree", "descendants", "die_with_parent", "child_command", "STOP_SIGNALS"]

STOP_SIGNALS = (signal.SIGINT, signal.SIGTERM)  # both ask a sweep or a build to stop (exit 130)


def die_with_parent(parent: int) -> None:
    """SIGKILL this process when the process ``parent`` dies, whatever kills it; at once when it
    is already gone. Self-contained (``child_command`` runs its source before any import)."""
    import ctypes
    import os
    import threading
    import time

    try:
        if ctypes.CDLL(None).prctl(1, 9) != 0:  # PR_SET_PDEATHSIG, SIGKILL (Linux)
            raise OSError("prctl refused")
    except (AttributeError, OSError):  # not Linux: watch the parent pid instead

        def watch():
            while os.getppid() == parent:
                time.sleep(1.0)
            os.kill(os.getpid(), 9)

        threading.Thread(target=watch, name="die-with-parent", daemon=True).start()
    if os.getppid() != parent:  # the parent died before the request took effect
        os.kill(os.getpid(), 9)


_CHILD = (
    inspect.getsource(die_with_parent)
    + """
import os, runpy, sys
die_with_parent(int(sys.argv.pop(1)))
target = sys.argv.pop(1)
if os.sep in target:  # a script (e.g. a console script of the environment)
    runpy.run_path(target, run_name="__main__")
else:
    runpy.run_module(target, run_name="__main__", alter_sys=True)
"""
)


def child_command(target: str, *args, parent: int | None = None) -> list[str]:
    """``python -m target args`` (or ``python target args`` for a script's path) in a process that
    dies with ``parent`` (default: this process); see the module docstring."""
    import os

    return [sys.executable, "-c", _CHILD, str(parent or os.getpid()), str(target), *map(str, args)]


class StopRequest:
    """A flag set by the first SIGINT (Ctrl-C) or SIGTERM while the ``with`` block runs, or by ``set()``.

    ``on_stop``: called once, in the main thread, when the flag is first set (e.g. to write a stop
    file that workers on other machines watch)."""

    def __init__(self, on_stop=None):
        self._event = threading.Event()
        self._on_stop = on_stop
        self._previous: dict = {}

    def is_set(self) -> bool:
        return self._event.is_set()

    def set(self) -> None:
        if not self._event.is_set():
            self._event.set()
            if self._on_stop is not None:
                self._on_stop()

    def _handler(self, signum, frame) -> None:
        self.set()

    def __enter__(self) -> StopRequest:
        if threading.current_thread() is threading.main_thread():
            for signum in STOP_SIGNALS:
                if signal.getsignal(signum) is not signal.SIG_IGN:
                    self._previous[signum] = signal.signal(signum, self._handler)
        return self

    def __exit__(self, *exc) -> None:
        for signum, previous in self._previous.items():
            signal.signal(signum, previous)
        self._previous = {}


def descendants(pid: int) -> list:
    """The ``psutil.Process`` of every living descendant of ``pid`` (empty when it is gone)."""
    import psutil

    try:
        return psutil.Process(pid).children(recursive=True)
    except psutil.Error:
        return []


def kill_tree(pid: int, *extra: int) -> None:
    """SIGKILL ``pid``, every descendant of it, and the ``extra`` pids (e.g. a kernel whose parent
    already died). The tree is frozen first, so nothing in it can start a process unseen."""
    import psutil

    frozen: dict[int, psutil.Process] = {}
    roots = [p for p in (pid, *extra) if p]
    for _ in range(20):  # a fork in flight shows up in the next look
        found = []
        for root in roots:
            with contextlib.suppress(psutil.Error):
                proc = psutil.Process(root)
                found += [proc, *proc.children(recursive=True)]
        new = [p for p in found if p.pid not in frozen]
        if not new:
            break
        for p in new:
            with contextlib.suppress(psutil.Error):
                p.suspend()
            frozen[p.pid] = p
        roots = list(frozen)
    for p in frozen.values():
        with contextlib.suppress(psutil.Error):
            p.kill()
