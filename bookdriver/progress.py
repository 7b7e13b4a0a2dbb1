"""One progress display for a whole book build: chapters, training runs, elapsed time and an ETA.

    progress = BuildProgress(total=11, cached=2, results=Path("results"))
    progress.chapter_done("04_batch_size.ipynb", "executed in 212 s")   # a line as each chapter ends
    progress.tick()                                                     # the status line, now and then
    print(progress.summary())

Training runs are counted across every sweep the build's chapters start: each sweep writes a
manifest (``<store>/sweeps/<id>.json``) listing the runs it will train (``pending``); a run is done
when its record exists.

The ETA is the larger of two estimates, so it never drops below the work known to be left:

* the whole build, from the time each chapter took when the execution cache last stored it: the
  chapters not done, in the order the pool runs them (``plan``), on its ``jobs`` workers, a running
  chapter counting what is left of its last time (at least nothing). A chapter without a previous
  time (a cold build) counts its time in the profile's reference build (``reference``: the committed
  ``bookdriver/reference_seconds.json``, for the full and the smoke profiles), scaled by how much slower
  this build's finished chapters ran than there (the median ratio), never down: chapters differ in how a
  change speeds them up (in the cold build of 2026-12-07 the first to finish ran at 0.72x its reference,
  the at-scale chapter at 1.38x; scaled down, the ETA was 8 min at minute 12 with 13 min left); a
  chapter that has neither counts the mean time of the chapters this build has finished. So a cold build
  shows its ETA from the first line;
* the training runs known so far: those still to train, at the mean time per run measured in this
  build, divided by the CPU slots (a cold build without history: from its first finished runs).

Before either is known it says so. While only the runs say something (a profile without a reference
build, before its first chapter ends) the line reads "ETA at least …": chapters still to start will
list more runs (a cold smoke build printed "ETA 7 s" at 30 s of 6 minutes before it said so). On a
terminal the status line rewrites itself; in a log (CI) it is printed every ``LOG_EVERY_S`` seconds,
the first time at once.
"""

from __future__ import annotations

import json
import statistics
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
        reference: dict | None = None,
    ):
        self.total, self.cached, self.results, self.slots = total, cached, results, max(1, slots)
        self.last_seconds = dict(last_seconds or {})  # chapter -> seconds it took last time
        self.reference = dict(reference or {})  # chapter -> seconds in the reference cold build
        self.stream = stream or sys.stderr
        self.t0 = time.time()
        self.done: dict[str, str] = {}
        self.runs: dict[str, float | None] = {}  # run directory -> its wall time (None until done)
        self._scanned = self._printed = 0.0
        self._tty = hasattr(self.stream, "isatty") and self.stream.isatty()
        self.order: list[str] = []  # chapters to execute, in the order the pool starts them
        self.jobs = self.slots
        self.started: dict[str, float] = {}  # chapter -> when it started (as the pool runs them)
        self.took: dict[str, float] = {}  # chapter -> how long it took in this build

    def plan(self, order: list[str], jobs: int) -> None:
        """The chapters to execute, in the order ``jobs`` workers take them (first in, first out)."""
        self.order, self.jobs = list(order), max(1, jobs)
        self.started = dict.fromkeys(self.order[: self.jobs], self.t0)

    def _expected(self) -> dict[str, float]:
        """Each chapter's expected time: its previous one, else its reference time times this build's
        speed against the reference, else the mean of the chapters this build has finished, else unknown."""
        took = {c: s for c, s in self.took.items() if c not in self.last_seconds}
        mean = sum(took.values()) / len(took) if took else None
        ratios = [s / self.reference[c] for c, s in took.items() if self.reference.get(c)]
        speed = max(1.0, statistics.median(ratios)) if ratios else 1.0  # slower than there, never faster

        def expected(c):
            if c in self.last_seconds:
                return self.last_seconds[c]
            return self.reference[c] * speed if c in self.reference else mean

        return {c: expected(c) for c in self.order}

    def _chapters_left(self, now: float) -> float | None:
        """Seconds until the last chapter ends (see the module docstring); None when a chapter still
        to execute has no expected time yet."""
        queue = [c for c in self.order if c not in self.done]
        expected = self._expected()
        if not queue or any(expected[c] is None for c in queue):
            return None
        running = [c for c in queue if c in self.started]
        free = sorted(max(expected[c] - (now - self.started[c]), 0.0) for c in running)
        free += [0.0] * (self.jobs - len(free))
        for c in queue[len(running) :]:  # list scheduling: the next chapter takes the first free worker
            free.sort()
            free[0] += expected[c]
        return max(free)

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

    def _runs_left(self) -> float | None:
        """Seconds the training runs known so far still need (None before the first one finishes)."""
        finished = [s for s in self.runs.values() if s is not None]
        left_runs = sum(s is None for s in self.runs.values())
        return left_runs * (sum(finished) / len(finished)) / self.slots if finished else None

    def eta(self) -> float | None:
        """Seconds left (the larger of the two estimates of the module docstring), or None when
        nothing is known yet."""
        known = [s for s in (self._runs_left(), self._chapters_left(time.time())) if s is not None]
        return max(known) if known else None

    def _eta_words(self) -> str:
        """The line's ETA: "ETA 3 min 20 s", or "ETA at least 40 s" while only the runs known so far say
        anything (the chapters still to start will list more)."""
        eta = self.eta()
        if eta is None:
            return "ETA once the first runs finish"
        if self._chapters_left(time.time()) is None:
            return f"ETA at least {fmt_duration(eta)} (the runs listed so far)"
        return f"ETA {fmt_duration(eta)}"

    def line(self) -> str:
        runs_done = sum(s is not None for s in self.runs.values())
        parts = [
            f"chapters {len(self.done) + self.cached}/{self.total}",
            f"training runs {runs_done}/{len(self.runs)}"
            + ("" if len(self.done) + self.cached == self.total else " known so far"),
            f"{fmt_duration(time.time() - self.t0)} elapsed",
            self._eta_words(),
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
        if status.startswith("executed"):
            self.took[name] = time.time() - self.started.get(name, self.t0)
        waiting = [c for c in self.order if c not in self.started]
        if waiting:  # the worker it freed takes the next chapter
            self.started[waiting[0]] = time.time()
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
