"""A persistent cache of XLA's compiled programs, shared by the processes of a build.

Every kernel compiles each graph it trains (a batch size, optimizer, schedule, stack size) the first
time: 1-3 CPU-s of XLA work, repeated in every kernel of a build. In a cold build on 2026-12-07 the
first epochs' excess over the later ones (mostly compilation) was 1,360 of the 3,080 training
seconds. TensorFlow can save a compiled program and load it in a later process
(``--tf_xla_persistent_cache_directory``). This module shares those files between processes so that
no process ever reads a file another is still writing:

    VAE_XLA_CACHE=results/xla-cache   # the book driver sets it for the processes it starts
    import vae_utils                  # enable(), before TensorFlow loads: this process's own folder,
                                      # holding hard links to every complete program of the shared one
    ...train...                       # TensorFlow loads those, and writes the new ones it compiles there
    publish()                         # after each training call: new programs join the shared folder,
                                      # each by an atomic rename

The shared folder is keyed by TensorFlow's version and the CPU's instruction sets (a program
compiled for AVX-512 must not load on a CPU without it). A loaded program is the compiled code
itself, so results are bit-identical with and without the cache (tests/test_xlacache.py). A
process's folder is removed when it exits; one killed leaves it, and the next process on the same
host removes the folders of processes that are gone. Each program takes 1-4 MB; past ``MAX_BYTES`` the
oldest programs are removed.

What it saves: every program compiled before by any process of the build. A program's key is a hash
of its HLO, which holds the names TensorFlow gives the traced functions; TensorFlow numbers those from
one per-process counter (``__inference_run_epoch_<n>``), so the same graph traced after other graphs
used to be a new program. ``stable_names`` numbers them from the graph's own key while it traces (the
fast path's epochs trace under it). Six digits graphs (batch 16, 64, 256; stacks of 3 and 5), one
thread: 42.9 CPU-s compiled and saved by one process, 12.7 loaded by a process that trains them in the
reverse order (28.9 before ``stable_names``). A rebuild that re-executes
a chapter (a changed training code, a reader's parameters) loads the programs of the build before.

Off for ``sweep`` on its own and in the tests: TensorFlow 2.21's loader logs a false "could lead to SIGILL"
error for every program it loads (the tuning flags ``+prefer-no-scatter``/``+prefer-no-gather`` are
not instruction sets) at log levels below 3; the book's kernels run at level 3 and drop stderr.
"""

from __future__ import annotations

import atexit
import contextlib
import hashlib
import itertools
import os
import platform
import shutil
import socket
import sys
import threading
from importlib import metadata
from pathlib import Path

__all__ = ["CACHE_ENV", "enable", "publish", "shared_folder", "stable_names"]

CACHE_ENV = "VAE_XLA_CACHE"  # a folder: the cache of every process that has it in its environment
FLAG = "--tf_xla_persistent_cache_directory"
MAX_BYTES = 2 * 2**30  # the shared folder's bound: past it, the oldest programs go (a full build's are ~330 MB)
OWN_ENV = "VAE_XLA_CACHE_OWN"  # the folder this process gave TensorFlow: its children inherit the flag, and replace it
_state: dict = {}  # "shared", "own": this process's folders once enabled
_traces: dict = {}  # graph key -> how many times this process traced it (stable_names)
_tracing = threading.RLock()  # stable_names patches TensorFlow's module globals: one trace at a time


def _tensorflow_version() -> str:
    for dist in ("tensorflow-cpu", "tensorflow"):
        try:
            return metadata.version(dist)
        except metadata.PackageNotFoundError:
            continue
    return "unknown"


def _cpu_key() -> str:
    """The CPU's instruction sets (the flags line of /proc/cpuinfo), else its platform name: 12 hex digits."""
    text = platform.machine() + platform.processor()
    try:
        flags = [line for line in Path("/proc/cpuinfo").read_text().splitlines() if line.startswith("flags")]
        text += flags[0] if flags else ""
    except OSError:
        pass
    return hashlib.sha256(text.encode()).hexdigest()[:12]


def shared_folder(root) -> Path:
    """The shared folder under ``root`` for this TensorFlow and this CPU."""
    return Path(root) / f"tf-{_tensorflow_version()}-{platform.machine()}-{_cpu_key()}"


def _alive(pid: int) -> bool:
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return False
    except PermissionError:
        return True
    return True


def _remove_stale(own_root: Path) -> None:
    """Remove the folders of this host's processes that are gone (a killed process leaves its own)."""
    host = socket.gethostname()
    for folder in own_root.glob(f"{host}-*"):
        pid = folder.name.rpartition("-")[2]
        if pid.isdigit() and int(pid) != os.getpid() and not _alive(int(pid)):
            shutil.rmtree(folder, ignore_errors=True)


def enable() -> bool:
    """Give TensorFlow this process's cache folder (see the module docstring); True when it is on.

    Off when ``$VAE_XLA_CACHE`` is unset, when TensorFlow is already imported (its flags may be read),
    or when ``TF_XLA_FLAGS`` names a cache folder of its own. A child process inherits its parent's
    flag (the environment): it replaces it with a folder of its own, never writes into its parent's."""
    root = os.environ.get(CACHE_ENV, "").strip()
    flags = os.environ.get("TF_XLA_FLAGS", "")
    if os.environ.get(OWN_ENV):  # a child of a process with the cache: not its parent's folder, its own
        flags = flags.replace(f"{FLAG}={os.environ[OWN_ENV]}", "").strip()
    if _state or not root or "tensorflow" in sys.modules or FLAG in flags:
        return bool(_state)
    shared = shared_folder(root)
    own = shared / ".processes" / f"{socket.gethostname()}-{os.getpid()}"
    try:
        shared.mkdir(parents=True, exist_ok=True)
        _remove_stale(own.parent)
        shutil.rmtree(own, ignore_errors=True)
        own.mkdir(parents=True)
        for program in shared.glob("*.pb"):
            os.link(program, own / program.name)
    except OSError as e:  # a read-only or link-less file system: compile as without the cache
        print(f"warning: the XLA cache in {root} is off ({e})", file=sys.stderr)
        shutil.rmtree(own, ignore_errors=True)
        return False
    os.environ["TF_XLA_FLAGS"] = f"{flags} {FLAG}={own}".strip()
    os.environ[OWN_ENV] = str(own)
    _state.update(shared=shared, own=own)
    atexit.register(_leave)
    return True


def publish() -> int:
    """Move the programs this process compiled into the shared folder (each complete, by an atomic
    rename of a hard link), and link the ones other processes published since into this process's
    folder; the number moved. Nothing when the cache is off."""
    if not _state:
        return 0
    shared, own, moved = _state["shared"], _state["own"], 0
    for program in shared.glob("*.pb"):  # and take the ones other processes have published since
        if not (own / program.name).exists():
            with contextlib.suppress(OSError):
                os.link(program, own / program.name)
    for program in own.glob("*.pb"):
        target = shared / program.name
        if target.exists():
            continue
        temporary = shared / f".{program.name}.{os.getpid()}.tmp"
        try:
            os.link(program, temporary)
            os.replace(temporary, target)
            moved += 1
        except OSError:
            temporary.unlink(missing_ok=True)
    if moved:
        _bound(shared)
    return moved


def _bound(shared: Path, limit: int = MAX_BYTES) -> None:
    """Remove the oldest programs of the shared folder until it holds at most ``limit`` bytes (the
    programs of graphs no build trains any more accumulate; a removed one is compiled again if needed)."""
    programs = []
    for program in shared.glob("*.pb"):
        with contextlib.suppress(OSError):  # another process may remove one meanwhile
            stat = program.stat()
            programs.append((stat.st_mtime, stat.st_size, program))
    programs.sort(key=lambda t: t[:2])
    total = sum(size for _, size, _ in programs)
    for _, size, program in programs:
        if total <= limit:
            break
        program.unlink(missing_ok=True)
        total -= size


def _leave() -> None:
    publish()
    shutil.rmtree(_state["own"], ignore_errors=True)


@contextlib.contextmanager
def stable_names(key):
    """While a graph traces: number TensorFlow's generated function names from ``key`` alone.

    TensorFlow names each traced function, loop body and branch with one per-process counter
    (``__inference_run_epoch_<n>``, ``while_body_<n>``); the names are in the HLO and so in the
    program's cache key, and the same graph traced after other graphs would be a new program. Inside
    this block those names count from a base set by ``key`` (any value whose ``repr`` names the graph
    the same way in every process) and by how many times this process has traced it before, far above
    the counter's own values: the same graph gives the same HLO in every process, whatever it traced
    before. ``key`` must name everything that changes the graph: two different graphs under one key
    in one process stop with TensorFlow's "duplicate function" error, never a wrong program (the cache
    key hashes the whole HLO, not the names). Tensors keep the counter's ids; only names change."""
    try:  # TensorFlow's internal modules: another layout traces as usual (the cache then finds fewer programs)
        from tensorflow.python.eager.polymorphic_function import concrete_function
        from tensorflow.python.framework import ops
        from tensorflow.python.ops import control_flow_util_v2
    except ImportError:  # pragma: no cover
        yield
        return

    with _tracing:
        seen = _traces[repr(key)] = _traces.get(repr(key), 0) + 1
    digest = int(hashlib.sha256(f"{key!r}#{seen}".encode()).hexdigest()[:10], 16)  # < 2^40
    numbers = itertools.count(2**40 + digest * 2**20)  # 2^20 names per trace, below 2^61

    def numbered(name_fn):
        def name(*args):
            counter, ops.uid = ops.uid, lambda: next(numbers)
            try:
                return name_fn(*args)
            finally:
                ops.uid = counter

        return name

    names = [(control_flow_util_v2, "unique_fn_name"), (control_flow_util_v2, "unique_grad_fn_name")]
    names += [(concrete_function, f) for f in ("_inference_name", "_forward_name", "_backward_name")]
    with _tracing:
        saved = [
            (module, attribute, getattr(module, attribute)) for module, attribute in names if hasattr(module, attribute)
        ]
        for module, attribute, name_fn in saved:
            setattr(module, attribute, numbered(name_fn))
        try:
            yield
        finally:
            for module, attribute, name_fn in saved:
                setattr(module, attribute, name_fn)
