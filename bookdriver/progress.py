"""One progress display for a whole book build: chapters, training runs, elapsed time and an ETA.

    progress = BuildProgress(total=11, cached=2, results=Path("results"))
    progress.chapter_done("04_batch_size.ipynb", "executed in 212 s")   # a line as each chapter ends
    progress.tick()                                                     # the status line, now and then
    print(progress.summary())

Training runs are counted across every sweep the build's chapters start: each sweep writes a
manifest (``<store>/sweeps/<id>.json``) listing the runs it will train (``pending``); a run is done
when its record exists. The ETA divides the runs still to train by the CPU slots, at the mean time
per run measured so far in this build, and adds the chapters not yet started at the time they took
last time (the execution cache remembers it); before either is known it says so. On a terminal the
status line rewrites itself; in a log (CI) it is printed every ``LOG_EVERY_S`` seconds.
"""

from __future__ import annotations

import json
import sys
import time
from pathlib import Path

__all__ = ["BuildProgress", "fmt_duration"]

LOG_EVERY_S = 30.0
SCAN_EVERY_S = 2.0


def fmt_duration(seconds: float) -> str:
    """'45 s', '3 min 20 s', '1 h 05 min'."""
    s = round(seconds)
    if s < 60:
        return f"{s} s"
    if s < 3600:
        return f"{s // 60} min {s % 60:02d} s"
    return f"{s // 3600} h {s % 3600 // 60:02d} min"


class BuildProgress:
    """Chapters done / total, training runs done / known, elapsed, ETA (see the module docstring)."""

    def __init__(
        self,
        total: int,
        cached: int,
        results: Path | None,
        slots: int = 1,
        last_seconds: dict | None = None,
        stream=None,
    ):
        self.total, self.cached, self.results, self.slots = total, cached, results, max(1, slots)
        self.last_seconds = dict(last_seconds or {})  # chapter -> seconds it took last time
        self.stream = stream or sys.stderr
        self.t0 = time.time()
        self.done: dict[str, str] = {}
        self.runs: dict[str, float | None] = {}  # run directory -> its wall time (None until done)
        self._scanned = self._printed = 0.0
        self._tty = hasattr(self.stream, "isatty") and self.stream.isatty()

    def _scan(self) -> None:
        """Read the sweep manifests written since the build began; note runs that finished."""
        if self.results is None or not self.results.is_dir():
            return
        for manifest in self.results.glob("sweeps/*/sweeps/*.json"):
            if manifest.stat().st_mtime < self.t0 - 1:
                continue
            try:
                m = json.loads(manifest.read_text())
            except (OSError, ValueError):
                continue  # being written
            if m.get("started", 0) < self.t0 - 1:
                continue
            for rid in m.get("pending", []):
                self.runs.setdefault(str(manifest.parent.parent / "runs" / rid), None)
        for run, seconds in list(self.runs.items()):
            if seconds is None and (Path(run) / "record.json").exists():
                try:
                    self.runs[run] = float(json.loads((Path(run) / "record.json").read_text()).get("run_wall_s") or 0.0)
                except (OSError, ValueError):
                    continue

    def eta(self) -> float | None:
        """Seconds left, or None when nothing is known yet."""
        finished = [s for s in self.runs.values() if s is not None]
        left_runs = sum(s is None for s in self.runs.values())
        per_run = sum(finished) / len(finished) if finished else None
        runs_s = left_runs * per_run / self.slots if per_run is not None else None
        unstarted = [c for c in self.last_seconds if c not in self.done]
        chapters_s = sum(self.last_seconds[c] for c in unstarted) / self.slots if unstarted else 0.0
        if runs_s is None and not unstarted:
            return None
        return (runs_s or 0.0) + chapters_s

    def line(self) -> str:
        runs_done = sum(s is not None for s in self.runs.values())
        eta = self.eta()
        parts = [
            f"chapters {len(self.done) + self.cached}/{self.total}",
            f"training runs {runs_done}/{len(self.runs)}"
            + ("" if len(self.done) + self.cached == self.total else " known so far"),
            f"{fmt_duration(time.time() - self.t0)} elapsed",
            f"ETA {fmt_duration(eta)}" if eta is not None else "ETA once the first runs finish",
        ]
        return "[book] " + " · ".join(parts)

    def tick(self) -> None:
        now = time.time()
        if now - self._scanned >= SCAN_EVERY_S:
            self._scan()
            self._scanned = now
        if self._tty:
            self.stream.write("\r" + self.line().ljust(110)[:150])
            self.stream.flush()
        elif now - self._printed >= LOG_EVERY_S:
            print(self.line(), file=self.stream, flush=True)
            self._printed = now

    def chapter_done(self, name: str, status: str) -> None:
        self.done[name] = status
        if self._tty:
            self.stream.write("\r" + " " * 150 + "\r")
        print(f"[book] {name}: {status} ({len(self.done) + self.cached}/{self.total})", file=self.stream, flush=True)

    def summary(self) -> str:
        self._scan()
        executed = sum(s.startswith("executed") for s in self.done.values())
        failed = sum(s.startswith("failed") for s in self.done.values())
        trained = sum(s is not None for s in self.runs.values())
        text = f"{executed} chapters executed, {self.cached} from the cache"
        text += f", {failed} failed" if failed else ""
        return text + f"; {trained} training runs in {fmt_duration(time.time() - self.t0)}"
