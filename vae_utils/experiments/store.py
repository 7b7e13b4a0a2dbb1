"""The results store of a sweep: one directory per run, written atomically, locked while trained.

    from vae_utils.experiments import store
    store.run_id(config)                          # hash of the config + the training code
    with store.claim(out, config) as run:          # run.skip when complete or taken
        if not run.skip:
            run.record(train(config))              # or run.record_failure(error, traceback_text)

Layout of a store ``out``::

    out/runs/<run_id>/record.json        config, metrics, per-epoch history (and with eval_every the
                                         curve of validation ELBOs), status, error, timings,
                                         library versions; written last (temp file + os.replace), so
                                         its presence is the completion marker
    out/runs/<run_id>/step_loss.parquet  the training loss of every update
    out/runs/<run_id>/train_vae.ipynb    the executed notebook that trained it (a hard link)
    out/runs/<run_id>/lock               flock()ed while a process trains the run; holds its pid and host
    out/notebooks/<sweep>-w<k>-<n>.ipynb executed notebooks, one per kernel (a slice of runs)
    out/workers/<sweep>-w<k>.json        heartbeat of a kernel: its pid, host and the run it is training
                                         (removed when its sweep ends; a dead sweep's by the next one)
    out/sweeps/<sweep>.json              manifest of one ``sweep`` call: its runs, kernels, summary
    out/sweeps/<sweep>.stop              written when that sweep was interrupted: its workers stop

A run's identity (``run_id``) is a hash of its fully resolved config and of
``vae_utils.provenance.training_version()``: the code of the modules training imports and of this
template. A changed module gives new run ids; an unchanged one finds the old records. Records are
JSON (non-finite numbers as null), the step losses Parquet; never pickle.

Reading is defensive: a record counts only when it is well-formed (``record_problem``: complete,
its own run id, a known status, a config that ``TrainConfig`` accepts and that hashes to the run
id, metrics and history of the right shapes). Anything else counts as missing, with a warning
naming the file, so the next sweep trains that run again. Files of a run are found from its
directory (``run_dir``), never from paths written in the record.

Locks are ``fcntl.flock`` on ``runs/<run_id>/lock``: the kernel releases them when it dies
(even by SIGKILL), so a crash never leaves a run locked, and two sweeps on one store never
train the same run at once. Without NFS-safe flock, use one store per machine. ``fcntl`` is
POSIX: training into a store needs Linux or macOS (Windows through WSL); reading one works anywhere.

A store may come from someone else (a tarball), and run ids are predictable, so the store follows no
symbolic link it did not create: ``check_store`` refuses a store holding one where its own files go
(its subfolders, the entries in them, a run's files), and every writer checks its path
(``inside``) and opens lock and temporary files without following a link; each refusal is an
``OSError`` (``ELOOP``) naming the link. The store folder itself may be a link: the user named it.
"""

from __future__ import annotations

import contextlib
import errno
import hashlib
import json
import math
import os
import socket
import stat
import time
import warnings
from pathlib import Path

from ..core.config import TrainConfig
from ..fileio import atomic_path, jsonable, read_json, write_json
from ..provenance import training_version, versions

__all__ = [
    "SCHEMA",
    "DONE",
    "STATUSES",
    "run_id",
    "run_dir",
    "read_record",
    "record_problem",
    "jsonable",
    "lock_holder",
    "clean_heartbeats",
    "is_done",
    "claim",
    "Run",
    "write_json",
    "read_json",
    "write_heartbeat",
    "is_locked",
    "try_lock",
    "read_runs",
    "die_with_parent",
    "check_store",
    "inside",
]

SCHEMA = 1  # record format; part of the training version
DONE = ("ok", "diverged")  # statuses that are results; "failed" runs are retried by the next sweep
STATUSES = (*DONE, "failed")
STEP_LOSS = "step_loss.parquet"  # a run's step losses, always this name inside its run directory
STORE_DIRS = ("runs", "notebooks", "workers", "sweeps")  # the store's own subfolders


# -- identity -------------------------------------------------------------------------------


def die_with_parent() -> None:
    """Linux: have the kernel SIGKILLed the moment its parent (papermill) dies, so that a killed
    sweep leaves no orphaned kernel finishing a run; elsewhere a no-op."""
    try:
        import ctypes

        ctypes.CDLL(None).prctl(1, 9)  # PR_SET_PDEATHSIG, SIGKILL
    except (OSError, AttributeError):
        return
    if os.getppid() == 1:  # the parent died before prctl took effect
        os._exit(1)


def run_id(config, version: str | None = None) -> str:
    """Identity of a run: hash of the resolved config (every field, defaults included) and the training code."""
    return _hash(config.to_dict(), version or training_version())


def _hash(config: dict, version: str) -> str:
    blob = json.dumps({"config": config, "code": version}, sort_keys=True, allow_nan=False)
    return hashlib.sha256(blob.encode()).hexdigest()[:16]


# -- files ----------------------------------------------------------------------------------


def run_dir(out, rid: str) -> Path:
    return Path(out) / "runs" / rid


# -- links: the store follows none it did not create -----------------------------------------


SHARED = "a hard link or not a plain file"  # a lock file written in place: it must be the store's own


def link_error(path, kind: str = "a symbolic link") -> OSError:
    """The refusal of a link where the store writes (errno ELOOP, as ``O_NOFOLLOW`` gives)."""
    why = f"is {kind}, and a results store writes through no link it did not create"
    return OSError(errno.ELOOP, why, str(path))


def _shared(st: os.stat_result) -> bool:
    """Whether a file the store writes in place (a lock) is not its own: a hard link, a FIFO, a device."""
    return not stat.S_ISREG(st.st_mode) or st.st_nlink > 1


def inside(out, path) -> Path:
    """``path`` (built from the store folder ``out``), checked to lead nowhere else: no part of it
    below ``out`` is a symbolic link. OSError (ELOOP) naming the first link otherwise."""
    here = Path(out)
    for part in Path(path).relative_to(here).parts:
        here = here / part
        if here.is_symlink():
            raise link_error(here)
    return Path(path)


def _refuse_links_in(folder: Path) -> None:
    """OSError naming ``folder`` or the first entry in it that is a symbolic link (a missing folder has none)."""
    if folder.is_symlink():
        raise link_error(folder)
    try:
        entries = sorted(os.scandir(folder), key=lambda e: e.name)
    except (FileNotFoundError, NotADirectoryError):
        return
    for entry in entries:
        if entry.is_symlink():
            raise link_error(folder / entry.name)


def check_store(out, rids=()) -> None:
    """Refuse a store holding a symbolic link where its own files go: its subfolders, the entries
    in them (run folders, notebooks, heartbeats, manifests), and the files of the runs ``rids``
    (whose lock must also be no hard link). OSError (ELOOP) naming the first link; reads only."""
    for sub in STORE_DIRS:
        _refuse_links_in(Path(out) / sub)
    for rid in rids:
        _refuse_links_in(run_dir(out, rid))
        lock = run_dir(out, rid) / "lock"
        with contextlib.suppress(FileNotFoundError, NotADirectoryError):
            if _shared(lock.lstat()):
                raise link_error(lock, SHARED)


def _shape_problem(rec: dict) -> str | None:
    """What is wrong with a record's metrics and history, for its status (None: nothing)."""
    metrics, history = rec.get("metrics"), rec.get("history")
    if not isinstance(metrics, dict) or not isinstance(history, dict):
        return "its 'metrics' or 'history' is not a mapping"
    if not all(isinstance(v, list) for v in history.values()):
        return "its 'history' holds a value that is not a list"
    curve = rec.get("curve", {})
    if not isinstance(curve, dict) or not all(isinstance(v, list) for v in curve.values()):
        return "its 'curve' is not a mapping of lists"
    if rec["status"] in DONE and not isinstance(metrics.get("kl_per_dim"), list):
        return "its metrics have no 'kl_per_dim' list"
    if not isinstance(rec.get("error"), (str, type(None))):
        return "its 'error' is not text"
    return None


def record_problem(rec, rid: str) -> str | None:
    """Why ``rec`` is not a well-formed complete record of run ``rid`` (None: it is one)."""
    if not isinstance(rec, dict):
        return "it is not a JSON object"
    if rec.get("complete") is not True:
        return "it has no 'complete': true"
    if rec.get("run_id") != rid:
        return f"its run_id {rec.get('run_id')!r} is not its folder's"
    if rec.get("status") not in STATUSES:
        return f"its status {rec.get('status')!r} is not one of {', '.join(STATUSES)}"
    if not isinstance(rec.get("code_version"), str):
        return "it has no 'code_version'"
    try:
        config = TrainConfig.from_dict(rec.get("config"))
    except (ValueError, TypeError) as e:
        return f"its config is not valid ({e})"
    if run_id(config, rec["code_version"]) != rid and _hash(rec["config"], rec["code_version"]) != rid:
        # (the second form: a record of older code whose config has fewer fields than TrainConfig now)
        return "its config and code version do not hash to its run id"
    return _shape_problem(rec)


def _warn_malformed(path: Path, why: str) -> None:
    warnings.warn(
        f"{path}: {why}; the record counts as missing and the next sweep trains the run again",
        RuntimeWarning,
        stacklevel=3,
    )


def read_record(out, rid: str) -> dict | None:
    """A run's record if it is complete and well-formed, else None (the run counts as missing and
    is trained again). A record that exists but is malformed also gives a warning naming its file."""
    path = run_dir(out, rid) / "record.json"
    try:
        rec = json.loads(path.read_text())
    except (FileNotFoundError, NotADirectoryError):
        return None
    except OSError as e:  # a directory, no permission, ...
        _warn_malformed(path, f"cannot be read ({e.strerror or e})")
        return None
    except ValueError:
        _warn_malformed(path, "it is not valid JSON")
        return None
    problem = record_problem(rec, rid)
    if problem:
        _warn_malformed(path, problem)
        return None
    return rec


def is_done(rec: dict | None, sweep_id: str | None = None) -> bool:
    """True when a record ends the run: ok or diverged; failed only within the sweep that failed it."""
    if rec is None:
        return False
    return rec["status"] in DONE or (sweep_id is not None and rec.get("sweep_id") == sweep_id)


def try_lock(path: Path):
    """An open file holding an exclusive flock on ``path``, or None when another process holds it."""
    import fcntl  # POSIX only: imported here, so reading a store works on every platform

    path.parent.mkdir(parents=True, exist_ok=True)
    try:
        fd = os.open(path, os.O_RDWR | os.O_CREAT | getattr(os, "O_NOFOLLOW", 0), 0o644)
    except OSError as e:
        raise link_error(path) if e.errno == errno.ELOOP else e from None
    if _shared(os.fstat(fd)):  # it is emptied and written below: never another file's inode
        os.close(fd)
        raise link_error(path, SHARED)
    try:
        fcntl.flock(fd, fcntl.LOCK_EX | fcntl.LOCK_NB)
    except BlockingIOError:
        os.close(fd)
        return None
    return fd


def unlock(fd) -> None:
    import fcntl

    fcntl.flock(fd, fcntl.LOCK_UN)
    os.close(fd)


def is_locked(out, rid: str) -> bool:
    """Whether some process trains the run now."""
    fd = try_lock(inside(out, run_dir(out, rid) / "lock"))
    if fd is None:
        return True
    unlock(fd)
    return False


def lock_holder(out, rid: str) -> str:
    """Who holds (or last held) a run's lock, as text: "pid 123 on host h" ("an unknown process" if unsaid)."""
    info = read_json(run_dir(out, rid) / "lock")
    if not isinstance(info, dict) or "pid" not in info:
        return "an unknown process"
    return f"pid {info['pid']} on host {info.get('host', '?')}"


def write_heartbeat(out, sweep_id: str, worker: str, **info) -> None:
    """The kernel's heartbeat, read by its supervisor for the per-run timeout and crash reports."""
    if out and worker:
        d = inside(out, Path(out) / "workers")
        d.mkdir(parents=True, exist_ok=True)
        beat = {"pid": os.getpid(), "host": socket.gethostname(), "time": time.time(), **info}
        write_json(d / f"{sweep_id}-{worker}.json", beat, durable=False)


def _beating(beat: dict) -> bool:
    """Whether the process that wrote a heartbeat on this host still runs: it exists, is not a
    zombie (an orphan nobody reaps), and is not a newer process that reuses its pid."""
    import psutil

    pid = beat.get("pid")
    if not isinstance(pid, int) or pid <= 0:
        return False
    try:
        proc = psutil.Process(pid)
        return proc.status() != psutil.STATUS_ZOMBIE and proc.create_time() <= float(beat.get("time", math.inf)) + 1
    except psutil.AccessDenied:
        return True  # it exists, under another user
    except (psutil.Error, TypeError, ValueError):
        return False


def clean_heartbeats(out) -> list[Path]:
    """Remove the heartbeats of processes that died on this host without removing them (a killed
    sweep's kernels and supervisors); return what was removed. Other hosts' are left alone."""
    removed = []
    host = socket.gethostname()
    for path in sorted(inside(out, Path(out) / "workers").glob("*.json")):
        beat = read_json(path)
        if isinstance(beat, dict) and beat.get("host", host) == host and not _beating(beat):
            with contextlib.suppress(FileNotFoundError):
                path.unlink()
                removed.append(path)
    return removed


def read_runs(runs_json: str) -> list[dict]:
    """The slice of runs a kernel trains: a JSON list of config dicts, or a path to a file holding one."""
    text = runs_json.strip()
    if not text.startswith("["):
        text = Path(text).read_text()
    runs = json.loads(text)
    if not isinstance(runs, list) or not all(isinstance(r, dict) for r in runs):
        raise ValueError(f"runs_json={runs_json[:80]!r} is not allowed; allowed: a JSON list of config dicts")
    return runs


# -- a run, claimed ---------------------------------------------------------------------------


class Run:
    """One claimed run: its lock is held until the ``claim`` block ends. ``skip``: nothing to do."""

    def __init__(self, out, config, sweep_id="", worker="", notebook="", version=None):
        self.out, self.config, self.sweep_id, self.worker, self.notebook = out, config, sweep_id, worker, notebook
        self.version = version or training_version()
        self.run_id = run_id(config, self.version)
        self.dir = run_dir(out, self.run_id) if out else None
        self.skip = False
        self.result = None
        self.started = time.time()
        self._fd = None

    def _acquire(self) -> None:
        if self.dir is None:
            return
        if is_done(read_record(self.out, self.run_id), self.sweep_id):
            self.skip = True
            return
        self._fd = try_lock(inside(self.out, self.dir / "lock"))  # checks the run folder too
        # look again under the lock: another process may have finished it in between
        if self._fd is None or is_done(read_record(self.out, self.run_id), self.sweep_id):
            self.skip = True
            return
        self.started = time.time()
        for stale in self.dir.glob(".*.tmp"):  # left by a writer killed mid-write; we hold the lock
            with contextlib.suppress(OSError):
                stale.unlink()
        os.ftruncate(self._fd, 0)
        os.pwrite(self._fd, json.dumps({"pid": os.getpid(), "host": socket.gethostname()}).encode(), 0)
        write_heartbeat(self.out, self.sweep_id, self.worker, run_id=self.run_id, started=self.started)

    def _release(self) -> None:
        if self._fd is not None:
            unlock(self._fd)
            self._fd = None
        if not self.skip:
            write_heartbeat(self.out, self.sweep_id, self.worker, run_id=None)

    def _base(self, status: str) -> dict:
        return {
            "schema": SCHEMA,
            "run_id": self.run_id,
            "code_version": self.version,
            "sweep_id": self.sweep_id,
            "status": status,
            "config": self.config.to_dict(),
            "started": self.started,
            "finished": time.time(),
            "run_wall_s": time.time() - self.started,
            "host": socket.gethostname(),
            "pid": os.getpid(),
            "worker": self.worker,
            "notebook": self.notebook,
            "versions": versions(),
        }

    def record(self, result) -> dict:
        """Write the record of a finished ``TrainResult`` (ok or diverged); the record goes last."""
        self.result = result
        m = result.metrics
        rec = self._base("diverged" if m["diverged"] else "ok")
        rec.update(
            error=f"diverged at epoch {m['diverged_epoch']}, step {m['diverged_step']} ({m.get('divergence')} not finite)"
            if m["diverged"]
            else None,
            traceback=None,
            metrics=m,
            history={c: result.history[c].tolist() for c in result.history.columns},
            curve={c: result.curve[c].tolist() for c in result.curve.columns} if _has_curve(result) else {},
            step_loss=STEP_LOSS,
            complete=True,
        )
        if self.dir is not None:
            import pyarrow as pa
            import pyarrow.parquet as pq

            losses = [float(v) for v in (result.step_loss if result.step_loss is not None else [])]
            with atomic_path(inside(self.out, self.dir / STEP_LOSS)) as tmp:
                pq.write_table(pa.table({"step": list(range(1, len(losses) + 1)), "loss": losses}), tmp)
            write_json(inside(self.out, self.dir / "record.json"), rec)
        return rec

    def record_failure(self, error: str, traceback: str = "") -> dict:
        """Write a failed record: the error's last line and its traceback."""
        rec = self._base("failed")
        rec.update(error=error, traceback=traceback, metrics={}, history={}, step_loss=None, complete=True)
        if self.dir is not None:
            write_json(inside(self.out, self.dir / "record.json"), rec)
        return rec


def _has_curve(result) -> bool:
    curve = getattr(result, "curve", None)
    return curve is not None and len(curve) > 0


@contextlib.contextmanager
def claim(out, config, sweep_id: str = "", worker: str = "", notebook: str = "", version: str | None = None):
    """Lock a run for training; ``run.skip`` is True when it is complete already or another process has it.

    With ``out=""`` nothing is locked or written: the run is trained for display only.
    """
    run = Run(out, config, sweep_id, worker, notebook, version)
    try:
        run._acquire()
        yield run
    finally:
        run._release()
