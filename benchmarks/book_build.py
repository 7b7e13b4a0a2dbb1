"""Time a cold ``make book`` and a rebuild with no change (targets: <= 10 min and <= 30 s on 2 cores).

    .venv/bin/python benchmarks/book_build.py [--profile full] [--jobs 2] [--write-reference]
    .venv/bin/python benchmarks/book_build.py --reference-from _build/.jupyter_cache   # after a cold `make book`
    .venv/bin/python benchmarks/book_build.py --profile smoke --reference-from _build/smoke/_build/.jupyter_cache

"Cold" means what a fresh clone has: no execution cache, no staged sources, no HTML, and no sweep
results (``$VAE_RESULTS_DIR`` points at an empty temporary folder for both builds). The profile's
build folders are moved aside for the measurement and put back afterwards; the measured build is
kept beside them with the suffix ``.bench``. Other profiles' folders are not touched. Timings on a
shared machine are noisy: run it when the machine is otherwise idle, and say so when it was not.
"""

from __future__ import annotations

import argparse
import json
import os
import shutil
import subprocess
import sys
import tempfile
import time
from pathlib import Path

REPO = Path(__file__).resolve().parents[1]
REFERENCE = REPO / "bookdriver" / "reference_seconds.json"


def write_reference(cache: Path, profile: str = "full") -> dict:
    """``profile``'s entry of bookdriver/reference_seconds.json from a cold build's execution cache: the
    seconds each chapter took (the driver's ETA and its longest-first order read them); the other
    profiles' entries are kept."""
    from jupyter_cache import get_cache

    records = sorted(get_cache(str(cache)).list_cache_records(), key=lambda r: (r.created, r.pk))
    seconds = {
        Path(r.uri).stem: round(float(r.data["execution_seconds"]), 1)
        for r in records
        if (r.data or {}).get("execution_seconds")
    }
    cpu = next((line for line in Path("/proc/cpuinfo").read_text().splitlines() if line.startswith("model name")), "")
    about = (
        f"a cold {profile} build, {os.cpu_count()} cores ({cpu.split(':')[-1].strip()}), {time.strftime('%Y-%m-%d')}"
    )
    reference = json.loads(REFERENCE.read_text()) | {
        profile: {"about": about, "seconds": dict(sorted(seconds.items()))}
    }
    tmp = REFERENCE.with_suffix(".tmp")
    tmp.write_text(json.dumps(reference, indent=1) + "\n")
    tmp.replace(REFERENCE)
    return reference[profile]


def build_folders(profile: str) -> list[Path]:
    """What a build of ``profile`` creates (see bookdriver/paths.py)."""
    if profile != "full":
        return [REPO / "_build" / profile]
    return [REPO / "_build" / name for name in ("src", "html", ".doctrees", "jupyter_execute", ".jupyter_cache")]


def main(argv=None) -> int:
    p = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    p.add_argument("--profile", default="full")
    p.add_argument("--jobs", type=int, default=2)
    p.add_argument(
        "--write-reference", action="store_true", help="the cold build's chapter times into " + str(REFERENCE.name)
    )
    p.add_argument("--reference-from", type=Path, help="only write the reference from this build's execution cache")
    args = p.parse_args(argv)
    if args.reference_from:
        print(json.dumps(write_reference(args.reference_from, args.profile), indent=1))
        return 0
    folders = build_folders(args.profile)
    for f in folders:  # 1) move the existing build aside
        aside = f.with_name(f.name + ".before-bench")
        if aside.exists():
            shutil.rmtree(aside)
        if f.exists():
            f.rename(aside)
    cmd = [sys.executable, "-m", "bookdriver", "build", "--profile", args.profile]
    cmd += ["--jobs", str(args.jobs)]
    times, codes = [], []
    with tempfile.TemporaryDirectory(prefix="vae-results-") as results:
        env = dict(os.environ, VAE_RESULTS_DIR=results)
        try:
            for _ in ("cold", "rebuild"):  # 2) a cold build, then the same command again
                t0 = time.perf_counter()
                codes.append(subprocess.call(cmd, cwd=REPO, env=env))
                times.append(time.perf_counter() - t0)
        finally:
            for f in folders:  # 3) keep the measured build as .bench, put the old one back
                bench, aside = f.with_name(f.name + ".bench"), f.with_name(f.name + ".before-bench")
                if bench.exists():
                    shutil.rmtree(bench)
                if f.exists():
                    f.rename(bench)
                if aside.exists():
                    aside.rename(f)
    result = {
        "profile": args.profile,
        "jobs": args.jobs,
        "cpu_count": os.cpu_count(),
        "cold_s": round(times[0], 1),
        "cold_ok": codes[0] == 0,
        "rebuild_s": round(times[1], 1) if len(times) > 1 else None,
        "rebuild_ok": len(codes) > 1 and codes[1] == 0,
        "targets_s": {"cold": 600, "rebuild": 30},
    }
    print(json.dumps(result, indent=2))
    if args.write_reference and codes[0] == 0:  # the measured build is kept with the suffix .bench
        cache = (
            REPO
            / "_build"
            / (".jupyter_cache.bench" if args.profile == "full" else f"{args.profile}.bench/_build/.jupyter_cache")
        )
        write_reference(cache, args.profile)
    return 0 if all(c == 0 for c in codes) else 1


if __name__ == "__main__":
    sys.exit(main())
