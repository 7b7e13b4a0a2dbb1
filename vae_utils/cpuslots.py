"""CPU slots: at most N training processes at once, across every sweep and chapter of a book build.

    from vae_utils.cpuslots import cpu_slot, create_slots
    create_slots("_build/.slots", 2)        # the book driver, once per build; sets nothing itself
    with cpu_slot():                         # a training process: blocks until a slot is free
        train(config)

The book driver executes several chapters at once, and a chapter's sweep starts several training
kernels: without a shared budget, two chapters with two workers each put four training processes
and two chapter kernels on two cores, and every timing the book shows is measured under that
contention. So the driver creates N slot files (N = the cores it is given) and names their folder
in ``$VAE_CPU_SLOTS``; a training process holds an exclusive ``flock`` on one of them while it
trains and waits when all are taken. A sweep takes the slot before it starts a kernel (the kernel's
TensorFlow import is work too) and marks the kernel with ``$VAE_CPU_SLOT_HELD``, so ``train()``
inside it does not wait for a second slot. The kernel releases the slot when it exits, even when
it is killed (the operating system drops the lock). ``train()`` and ``train_seeds()`` take a slot
themselves, so a chapter that trains without a sweep keeps to the budget too. Without
``$VAE_CPU_SLOTS`` nothing waits.
"""

from __future__ import annotations

import contextlib
import os
import time
from pathlib import Path

__all__ = [
    "SLOTS_ENV",
    "HELD_ENV",
    "MAX_PROCESSES",
    "check_processes",
    "create_slots",
    "slot_count",
    "cpu_slot",
    "acquire",
    "release",
]

SLOTS_ENV = "VAE_CPU_SLOTS"  # a folder of slot files: the build's budget of training processes
HELD_ENV = "VAE_CPU_SLOT_HELD"  # set in a process whose parent holds a slot for it
POLL_S = 0.2
MAX_PROCESSES = 256  # the most training processes (slots, sweep workers, build jobs) one machine is asked to run


def check_processes(name: str, n, lowest: int = 1) -> int:
    """``n`` if it is an integer from ``lowest`` to ``MAX_PROCESSES``; ValueError naming ``name`` otherwise
    (``--jobs 200000`` used to write 200,000 slot files before anything ran)."""
    if isinstance(n, bool) or not isinstance(n, int) or not lowest <= n <= MAX_PROCESSES:
        raise ValueError(f"{name}={n!r} is not allowed; allowed: an integer from {lowest} to {MAX_PROCESSES}")
    return n


def create_slots(directory: str | os.PathLike, n: int) -> Path:
    """Make ``directory`` hold exactly ``n`` slot files (slot-0 .. slot-<n-1>); return it."""
    check_processes("n", n)
    d = Path(directory)
    d.mkdir(parents=True, exist_ok=True)
    for old in d.glob("slot-*"):
        if int(old.name.split("-")[1]) >= n:
            old.unlink()
    for i in range(n):
        (d / f"slot-{i}").touch()
    return d


def slot_count() -> int | None:
    """How many slots the build allows, or None when ``$VAE_CPU_SLOTS`` is not set."""
    d = os.environ.get(SLOTS_ENV)
    if not d:
        return None
    return len(list(Path(d).glob("slot-*"))) or None


def acquire(poll_s: float = POLL_S, should_stop=None) -> int | None:
    """Block until a slot is free; return the open file holding it (None when slots are off, or
    when ``should_stop()`` turns true while waiting)."""
    import fcntl

    d = os.environ.get(SLOTS_ENV)
    if not d or os.environ.get(HELD_ENV):
        return None
    files = sorted(Path(d).glob("slot-*"))
    if not files:
        raise ValueError(f"{SLOTS_ENV}={d!r} holds no slot files; allowed: a folder made by create_slots")
    while True:
        for f in files:
            fd = os.open(f, os.O_RDWR)
            try:
                fcntl.flock(fd, fcntl.LOCK_EX | fcntl.LOCK_NB)
                return fd
            except BlockingIOError:
                os.close(fd)
        if should_stop is not None and should_stop():
            return None
        time.sleep(poll_s)


def release(fd: int | None) -> None:
    if fd is not None:
        os.close(fd)  # closing the file drops its flock


_held = 0  # cpu_slot blocks open in this process: a nested block (train inside train_seeds) takes no second slot


@contextlib.contextmanager
def cpu_slot(poll_s: float = POLL_S, should_stop=None):
    """Hold a slot for the ``with`` block (nothing when slots are off, a parent holds one, or an
    enclosing block of this process does; ``should_stop`` ends the wait early, and the block then
    runs without a slot: check it)."""
    global _held
    fd = acquire(poll_s, should_stop) if _held == 0 else None
    _held += 1
    try:
        yield fd
    finally:
        _held -= 1
        release(fd)
