"""The replication comparison of two builds' verdicts (``benchmarks/replication.py``).

Run: ``.venv/bin/python -m pytest tests/test_replication.py`` (a second).
"""

import importlib.util
from pathlib import Path

REPO = Path(__file__).resolve().parents[1]
_spec = importlib.util.spec_from_file_location("replication", REPO / "benchmarks" / "replication.py")
replication = importlib.util.module_from_spec(_spec)
_spec.loader.exec_module(replication)


def _v(id_, outcome, chapter="04_batch_size", label=None, conditions=None):
    return {"id": id_, "chapter": chapter, "claim": id_, "outcome": outcome, "label": label or outcome,
            "condition_outcomes": conditions or {}}  # fmt: skip


def test_outcomes_agree_when_equal_weaken_when_one_build_is_undecided_and_clash_when_opposed():
    rel = replication.relation
    assert rel(_v("a", "supported"), _v("a", "supported")) == "agree"
    assert rel(_v("a", "supported"), _v("a", "inconclusive")) == "weaker"
    assert rel(_v("a", "supported"), _v("a", "opposite")) == "clash"
    assert rel(_v("a", "supported"), _v("a", "equivalent")) == "clash"
    assert rel(_v("a", "not testable"), _v("a", "supported")) == "untestable"


def test_a_claim_under_conditions_is_compared_by_what_its_box_states_and_condition_by_condition():
    """Both 'depends on the budget' agree as claims; a condition that flips from supported to opposite is a
    clash the summary counts (and the script exits 1 for)."""
    cond = {"fixed epochs": "supported", "fixed updates": "opposite"}
    flipped = {"fixed epochs": "opposite", "fixed updates": "supported"}
    a = _v("bs-gap", "inconclusive", label="depends on the budget", conditions=cond)
    b = _v("bs-gap", "inconclusive", label="depends on the budget", conditions=flipped)
    assert replication.relation(a, b) == "agree"
    assert replication.condition_relations(a, b) == ["clash", "clash"]
    _, summary = replication.table({"bs-gap": a}, {"bs-gap": b})
    assert summary["conditions clash"] == 2 and summary["agree"] == 1
    assert replication.words(a) == "depends on the budget (fixed epochs: supported; fixed updates: the opposite holds)"


def test_chapters_run_on_the_same_seeds_in_both_builds_are_left_out_of_the_count():
    first = {"x": _v("x", "supported", chapter="11_tuning"), "y": _v("y", "supported")}
    second = {"x": _v("x", "opposite", chapter="11_tuning"), "y": _v("y", "supported")}
    rows, summary = replication.table(first, second, same_seeds={"11_tuning"})
    assert [r["relation"] for r in rows] == ["agree", "same seeds"]
    assert summary["tested in both"] == 1 and summary["clash"] == 0


def test_every_chapter_with_verdicts_has_a_replication_profile():
    """Otherwise its verdicts would 'replicate' on the very same seeds."""
    verdict_chapters = {
        p.stem for p in (REPO / "chapters").glob("*.ipynb") if "fam.add(" in p.read_text() or "Family(" in p.read_text()
    }
    missing = {c for c in verdict_chapters if not (REPO / "profiles" / "replication" / f"{c}.yaml").is_file()}
    assert missing == set()
