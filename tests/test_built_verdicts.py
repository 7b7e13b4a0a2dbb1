"""Acceptance checks of issue 18 on a built book's ``verdicts.json``: no interval of zero width, and no effect
size made of floored runs.

An interval of zero width (low == high around a finite estimate) states certainty that no run-to-run spread
supports: zero spread calls for an exact test and no interval. An effect made of floored runs is an effect in
the metric's units (nats) computed with ``protocol.floored``'s floor standing in for runs that diverged: the
floor is a choice, not a measurement. The record that shows it is the verdict's scope: ``scope_record``
counts the runs it rests on that diverged (``publish.scope``). A verdict whose runs diverged may state an
effect in nats only if one of its effects says how the diverged runs entered (``stats.with_divergence``
names them in its method, "diverged runs ranked worst"; its effect is then a rank correlation, without
units). A floor, or a diverged run silently left out, says nothing, and is found.

The smoke build is the one of ``tests/test_book.py`` (its fixture, so a build already made is reused); the
checks themselves run, and are shown to fail, on fabricated verdicts without any build.
"""

from __future__ import annotations

import json
import math
from pathlib import Path

import numpy as np
import pandas as pd
import pytest
from test_book import PATHS, smoke_build  # noqa: F401 (the fixture: one smoke build, reused when cached)

from vae_utils.claims import protocol, stats, verdicts
from vae_utils.claims.records import ClaimRecord


def _effects(v: dict):
    """The verdict and each of its conditions (recursively): every record that can carry an effect."""
    yield v
    for c in (v.get("conditions") or {}).values():
        yield from _effects(c)


def zero_width(records: list[dict]) -> list[str]:
    """Every effect, or shape, of ``records`` whose interval has zero width around a finite estimate."""
    found = []
    for v in records:
        for e in _effects(v):
            for part, r in (("effect", e), ("shape", e.get("shape") or {})):
                est, low, high = r.get("estimate"), r.get("low"), r.get("high")
                if est is not None and math.isfinite(est) and low is not None and low == high:
                    found.append(f"{e['id']}: its {part} has an interval of zero width ({low} to {high})")
    return found


def made_of_floors(records: list[dict]) -> list[str]:
    """Every verdict whose runs diverged and which states an effect in nats, none of its effects saying how the
    diverged runs entered."""
    found = []
    for v in records:
        diverged = (v.get("scope_record") or {}).get("diverged") or 0
        effects = list(_effects(v))
        if not diverged or any("diverged" in (e.get("method") or "") for e in effects):
            continue
        in_nats = [e["id"] for e in effects if e.get("estimate") is not None and e.get("unit") == "nats"]
        if in_nats:
            found.append(f"{v['id']}: {diverged} of its runs diverged, and {', '.join(in_nats)} states an effect in "
                         "nats that does not say how they entered")  # fmt: skip
    return found


def _read(path: Path) -> list[dict]:
    return json.loads(path.read_text(encoding="utf-8"))


@pytest.mark.slow
def test_no_verdict_of_the_smoke_build_has_an_interval_of_zero_width(smoke_build):  # noqa: F811
    records = _read(PATHS.html / "_static" / "verdicts.json")
    assert records and zero_width(records) == []


@pytest.mark.slow
def test_no_verdict_of_the_smoke_build_states_an_effect_made_of_floored_runs(smoke_build):  # noqa: F811
    records = _read(PATHS.html / "_static" / "verdicts.json")
    assert all("diverged" in v["scope_record"] for v in records if v.get("scope_record"))  # the checks can see
    assert made_of_floors(records) == []


# --- the checks can fail -------------------------------------------------------------------------------------


def _record(id: str, condition: str = "") -> ClaimRecord:
    return ClaimRecord(id=id, claim=f"The claim {id}", direction=1, delta=0.5, unit="nats", condition=condition,
                       anchor=id, topic="", what_to_do={}, chapter="00_fabricated")  # fmt: skip


def _runs(diverged_seeds=()) -> pd.DataFrame:
    """Two arms of five seeds; the arm "b" of ``diverged_seeds`` diverged."""
    rows = [{"dataset": "digits", "optimizer": "adam", "batch_size": 64, "epochs": 30, "seed": s, "arm": arm,
             "status": "diverged" if arm == "b" and s in diverged_seeds else "ok",
             "test_elbo": np.nan if arm == "b" and s in diverged_seeds else -25.0 - 0.1 * s - (arm == "b"),
             "run_id": f"{arm}{s}"} for arm in "ab" for s in range(5)]  # fmt: skip
    return pd.DataFrame(rows)


def _fabricated(tmp_path: Path) -> Path:
    """A verdicts.json written by the verdicts code from fabricated runs: "floored" pairs an arm with the floor
    standing in for two diverged runs (a paired t-test in nats); "zero" has an interval of zero width; "ranked"
    compares the same runs with the diverged ones ranked worst; "clean" has no diverged run; "conditions" hides a
    floored effect under one of two conditions."""
    records = [_record(i) for i in ("floored", "zero", "ranked", "clean")] + [_record("conditions", "the arm")]
    fam = verdicts.Family("00_fabricated", records=records)
    runs, floor = _runs(diverged_seeds=(1, 3)), -45.0
    floored = protocol.floored(runs, "test_elbo", floor)
    arm = lambda d, a: d[d.arm == a].set_index("seed").test_elbo
    fam.add("floored", stats.paired(arm(floored, "a"), arm(floored, "b"), unit="nats"), runs=floored)
    fam.add("zero", stats.Estimate("a − b", 1.0, 1.0, 1.0, 0.01, n=5, unit="nats"), runs=_runs())
    fam.add("ranked", stats.with_divergence(protocol.outcome_values(runs[runs.arm == "a"]),
                                            protocol.outcome_values(runs[runs.arm == "b"]), unit="nats"), runs=runs)  # fmt: skip
    clean = _runs()
    fam.add("clean", stats.paired(arm(clean, "a"), arm(clean, "b"), unit="nats"), runs=clean)
    both = {"arm b": stats.paired(arm(floored, "a"), arm(floored, "b"), unit="nats"),
            "arm a": stats.paired(arm(clean, "a"), arm(clean, "b"), unit="nats")}  # fmt: skip
    fam.add("conditions", both, runs=[floored, clean.assign(run_id=lambda d: "c" + d.run_id)])
    path = tmp_path / "verdicts.json"
    path.write_text(json.dumps([v.to_dict() for v in fam.finalize()], ensure_ascii=False), encoding="utf-8")
    return path


def test_the_checks_find_a_zero_width_interval_and_effects_made_of_floored_runs_in_a_fabricated_book(tmp_path):
    records = _read(_fabricated(tmp_path))
    assert [p.split(":")[0] for p in zero_width(records)] == ["zero"]
    assert [p.split(":")[0] for p in made_of_floors(records)] == ["floored", "conditions"]
    assert "2 of its runs diverged" in made_of_floors(records)[0]
    by_id = {v["id"]: v for v in records}
    assert by_id["ranked"]["scope_record"]["diverged"] == 2 and by_id["clean"]["scope_record"]["diverged"] == 0
