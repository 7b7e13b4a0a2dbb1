"""Child processes of sweeps and book builds: Ctrl-C as a request to stop, and stopping a process tree.

    from vae_utils.experiments.processes import StopRequest, kill_tree
    with StopRequest() as stop:           # the first Ctrl-C sets stop; nothing is raised mid-step
        while work_left and not stop.is_set():
            ...
    kill_tree(proc.pid)                   # SIGKILL a process and everything it started

Why a request, not ``KeyboardInterrupt``: an exception can land anywhere (inside a ``with`` whose
exit waits for the very kernels it should stop, or half-way through a write), while a flag is read
where stopping is safe. The handler is installed only in the main thread, and not where SIGINT is
ignored (``nohup``, background jobs), and the previous handler is restored on exit.

``kill_tree`` freezes the tree (SIGSTOP) until no new process appears, then kills every member:
a kernel started in its own session (as Jupyter starts them) is still a descendant and goes too.
"""

from __future__ import annotations

import contextlib
import signal
import threading

__all__ = ["StopRequest", "kill_tree", "descendants"]


class StopRequest:
    """A flag set by the first SIGINT (Ctrl-C) while the ``with`` block runs, or by ``set()``.

    ``on_stop``: called once, in the main thread, when the flag is first set (e.g. to write a stop
    file that workers on other machines watch)."""

    def __init__(self, on_stop=None):
        self._event = threading.Event()
        self._on_stop = on_stop
        self._previous = None

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
            current = signal.getsignal(signal.SIGINT)
            if current is not signal.SIG_IGN:
                self._previous = signal.signal(signal.SIGINT, self._handler)
        return self

    def __exit__(self, *exc) -> None:
        if self._previous is not None:
            signal.signal(signal.SIGINT, self._previous)
            self._previous = None


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
