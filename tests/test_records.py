"""vae_utils.claims.records: the book's claims, declared once per chapter in a YAML table.

Every table loads and validates; a bad entry is refused with a message naming the field, the value and
what is allowed; ``advice`` gives each condition its own outcome's line; a ``Family`` judges exactly
the claims its table declares.

Run: ``.venv/bin/python -m pytest tests/test_records.py`` (a second).
"""

from pathlib import Path

import pytest
import yaml
from scipy import stats

from vae_utils.claims import records as R
from vae_utils.claims import stats as S
from vae_utils.claims import verdicts as V

REPO = Path(__file__).resolve().parents[1]
CHAPTERS = sorted(p.stem for p in R.TABLES.glob("*.yaml"))
GOOD = {
    "id": "x-claim",
    "claim": "A smaller batch reaches a better test ELBO",
    "direction": -1,
    "delta": 0.5,
    "unit": "nats",
    "anchor": "x-section",
    "topic": "batch size",
    "what_to_do": {"supported": "Keep batches small."},
}


@pytest.fixture
def table(tmp_path, monkeypatch):
    """Write a claims table of entries into a scratch tables folder and load it as chapter '99_test'."""
    monkeypatch.setattr(R, "TABLES", tmp_path)
    R.load.cache_clear()

    def load(*entries, text=None):
        R.load.cache_clear()
        (tmp_path / "99_test.yaml").write_text(text if text is not None else yaml.safe_dump(list(entries)))
        return R.load("99_test")

    yield load
    R.load.cache_clear()


def est(estimate, se=0.5, df=18.0):
    half = stats.t.ppf(0.975, df) * se
    p = 2 * stats.t.sf(abs(estimate) / se, df)
    return S.Estimate("effect", estimate, estimate - half, estimate + half, p, 0.0, (10, 10), 1.0, 0.95, "t-test",
                      "nats", se, df, kind="two-sample")  # fmt: skip


# ---------------------------------------------------------------------------------------------
# The book's tables


@pytest.mark.parametrize("chapter", CHAPTERS)
def test_every_chapters_table_loads_and_every_entry_sets_every_required_field(chapter):
    """Each table is a list of valid entries (load validates them); the required fields are there and
    not blank, and every record names its chapter."""
    records = R.load(chapter)
    assert records, chapter
    for r in records:
        assert r.chapter == chapter
        assert r.claim.strip() and r.anchor.strip() and isinstance(r.unit, str), r
        assert r.direction in (-1, 0, 1) and r.topic in R.TOPICS, r
        assert r.delta is None or r.delta > 0, r
        assert r.what_to_do and all(line.strip() for line in r.what_to_do.values()), r


def test_the_ids_are_unique_across_the_book_and_each_is_found_by_record():
    """One id, one claim: the findings, the recipe and the glue keys all use it."""
    ids = [r.id for r in R.all_records()]
    assert len(ids) == len(set(ids)), sorted(i for i in ids if ids.count(i) > 1)
    for r in R.all_records():
        assert R.record(r.id) == r


def test_every_repeat_points_to_a_declared_claim_of_another_chapter_and_takes_its_fields():
    """An at-scale claim re-tests a digits claim: its id is 'fm-' + that id (or, when one claim is re-tested
    twice, an id and a wording of its own), and its direction, Δ, unit, topic and advice are that claim's
    unless it sets them."""
    repeats = [r for r in R.all_records() if r.repeats]
    assert repeats
    for r in repeats:
        base = R.record(r.repeats)
        entry = next(e for e in yaml.safe_load((R.TABLES / f"{r.chapter}.yaml").read_text()) if e["id"] == r.id)
        assert base.chapter != r.chapter and not base.repeats and r.id.startswith("fm-")
        assert r.id == f"fm-{base.id}" or r.claim != base.claim, r.id  # an id of its own, a claim of its own
        for name in ("direction", "delta", "unit", "topic", "condition", "what_to_do"):
            if name not in entry:  # a field the entry does not set is the repeated claim's
                assert getattr(r, name) == getattr(base, name), (r.id, name)
    own = R.record("fm-opt-adam-momentum")
    assert own.claim != R.record("opt-adam-sgd").claim and own.repeats == "opt-adam-sgd"  # a field it sets is its own


def test_every_anchor_is_a_label_in_its_chapter():
    """A box links to the section that tests its claim: the label must exist in the chapter."""
    for r in R.all_records():
        text = (REPO / "chapters" / f"{r.chapter}.ipynb").read_text(encoding="utf-8")
        assert f"({r.anchor})=" in text, (r.id, r.anchor)


def test_every_claim_the_book_tests_says_what_to_do_for_each_outcome_its_test_can_reach():
    """'supported' always; 'the opposite holds' when the claim has a direction; 'no effect that matters'
    when it has a Δ. A claim that only carries a 'not testable' line is one this book cannot test."""
    for r in R.all_records():
        if set(r.what_to_do) == {"not testable"}:
            continue
        needed = {"supported"} | ({"opposite"} if r.direction else set()) | ({"equivalent"} if r.delta else set())
        assert needed <= set(r.what_to_do), (r.id, needed - set(r.what_to_do))


def test_the_words_for_each_outcome_are_defined_once():
    """Every outcome has a reader's words, and every word a definition (the Findings page's legend)."""
    assert set(R.OUTCOME_WORDS) == set(V.OUTCOMES)
    assert set(R.OUTCOME_WORDS.values()) <= set(R.OUTCOME_DEFINITIONS)
    assert R.outcome_words("equivalent") == "no effect that matters" and R.outcome_words("opposite") == (
        "the opposite holds"
    )


# ---------------------------------------------------------------------------------------------
# Bad entries are refused by name


@pytest.mark.parametrize(
    ("change", "message"),
    [
        ({"wording": "x"}, r"wording='x' is not allowed; allowed: the fields id, claim, direction"),
        ({"direction": 2}, r"direction=2 is not allowed; allowed: -1, 0, 1"),
        ({"direction": True}, r"direction=True is not allowed; allowed: -1, 0, 1"),
        ({"delta": 0}, r"delta=0 is not allowed; allowed: null or a finite number > 0"),
        ({"delta": -0.5}, r"delta=-0.5 is not allowed; allowed: null or a finite number > 0"),
        ({"delta": "0.5"}, r"delta='0.5' is not allowed; allowed: null or a finite number > 0"),
        ({"topic": "batches"}, r"topic='batches' is not allowed; allowed: batch size, learning rate"),
        ({"what_to_do": {"maybe": "x"}}, r"what_to_do='maybe' is not allowed; allowed: \{outcome: line\} with outc"),
        ({"what_to_do": {"supported": ""}}, r"what_to_do=\{'supported': ''\} is not allowed; allowed: non-empty lines"),
        ({"what_to_do": "Keep them small."}, r"what_to_do='Keep them small.' is not allowed; allowed: \{outcome"),
        ({"claim": "  "}, r"claim='  ' is not allowed; allowed: a non-empty string"),
        ({"anchor": ""}, r"anchor='' is not allowed; allowed: a non-empty string"),
        ({"id": "Bad Id"}, r"id='Bad Id' is not allowed; allowed: a slug"),
        ({"unit": 3}, r"unit=3 is not allowed; allowed: a string"),
        ({"headline": "yes"}, r"headline='yes' is not allowed; allowed: true or false"),
        ({"repeats": "no-such-claim"}, r"repeats='no-such-claim' is not allowed; allowed: the id of a declared"),
        ({"repeats": "x-first"}, r"repeats='x-first' is not allowed; allowed: the id of a declared claim of another"),
    ],
)
def test_a_bad_entry_is_refused_with_the_field_the_value_and_what_is_allowed(table, change, message):
    with pytest.raises(ValueError, match=r"claims table 99_test, entry 2: " + message):
        table(GOOD | {"id": "x-first"}, GOOD | change)


def test_a_missing_field_a_repeated_id_and_a_table_that_is_no_list_are_refused(table):
    entry = {k: v for k, v in GOOD.items() if k != "unit"}
    with pytest.raises(ValueError, match=r"entry 1: unit=None is not allowed; allowed: every entry sets id, claim"):
        table(entry)
    with pytest.raises(ValueError, match=r"claims table 99_test: id='x-claim' is not allowed; allowed: each id once"):
        table(GOOD, GOOD)
    with pytest.raises(ValueError, match=r"table='dict' is not allowed; allowed: a YAML list of claims"):
        table(text="id: x\n")
    with pytest.raises(ValueError, match=r"chapter='98_none' is not allowed; allowed: a chapter with a claims table"):
        R.load("98_none")


def test_a_good_entry_loads_with_its_optional_fields_defaulted(table):
    [r] = table(GOOD)
    assert r.id == "x-claim" and r.chapter == "99_test" and r.delta == 0.5
    assert (r.article, r.recipe, r.headline, r.condition, r.repeats) == ("", "", False, "", "")
    [none] = table(GOOD | {"delta": None})
    assert none.delta is None


def test_a_repeat_takes_the_fields_it_does_not_set_from_the_claim_of_another_table(table, tmp_path):
    (tmp_path / "98_base.yaml").write_text(yaml.safe_dump([GOOD | {"recipe": "Small.", "headline": True}]))
    [r] = table({"id": "fm-x-claim", "repeats": "x-claim", "anchor": "fm-x", "delta": 0.25})
    assert (r.claim, r.direction, r.unit, r.topic, dict(r.what_to_do)) == (
        GOOD["claim"], -1, "nats", "batch size", GOOD["what_to_do"],
    )  # fmt: skip
    assert (r.delta, r.anchor, r.chapter) == (0.25, "fm-x", "99_test")  # its own
    assert (r.recipe, r.headline) == ("", False)  # never inherited: the summary pages list the original


# ---------------------------------------------------------------------------------------------
# What to do

TODO = {"supported": "Warm the rate up.", "equivalent": "Skip the warm-up.", "depends": "It depends on the peak."}


def test_advice_is_the_single_line_of_the_outcome_when_the_conditions_agree():
    assert R.advice(TODO, "supported") == "Warm the rate up."
    same = {"peak 0.004": "supported", "peak 0.032": "supported"}
    assert R.advice(TODO, "supported", same, depends=True) == "Warm the rate up."
    # a condition that was not run is no disagreement
    assert R.advice(TODO, "equivalent", {"peak 0.004": "equivalent", "peak 0.1": "not run"}) == "Skip the warm-up."


def test_advice_gives_each_condition_its_own_outcomes_line_when_the_outcomes_differ():
    differ = {"peak 0.004": "equivalent", "peak 0.032": "supported"}
    assert R.advice(TODO, "inconclusive", differ) == "Peak 0.004: Skip the warm-up. Peak 0.032: Warm the rate up."
    assert R.advice(TODO, "inconclusive", differ, depends=True) == (
        "It depends on the peak. Peak 0.004: Skip the warm-up. Peak 0.032: Warm the rate up."
    )


def test_advice_falls_back_to_the_default_line_or_the_outcomes_words():
    """Inconclusive and not run have default lines; a condition whose outcome has no line gets its words."""
    assert R.advice({}, "inconclusive") == "Treat the claim as open."
    assert R.advice({}, "not run").startswith("Add the value to the chapter's parameters")
    assert R.advice(TODO, "opposite") == ""
    differ = {"batch 16": "opposite", "batch 512": "inconclusive"}
    assert R.advice(TODO, "inconclusive", differ) == (
        "Batch 16: the opposite holds. Batch 512: Treat the claim as open."
    )


# ---------------------------------------------------------------------------------------------
# A family judges exactly the claims its table declares


def _rec(id, **kw):
    return R.ClaimRecord(**(GOOD | {"id": id, "direction": 1} | kw))


def test_a_family_loads_its_chapters_table():
    fam = V.Family("05_learning_rate")
    assert list(fam.records) == [r.id for r in R.load("05_learning_rate")]
    with pytest.raises(ValueError, match=r"chapter='nope' is not allowed; allowed: a chapter with a claims table"):
        V.Family("nope")


def test_a_family_refuses_an_id_its_table_does_not_declare():
    fam = V.Family("ch", records=[_rec("a"), _rec("b")])
    pattern = r"id='zz' is not declared in the claims table of ch; allowed: a, b \(declare it in tables/ch.yaml\)"
    with pytest.raises(ValueError, match=pattern):
        fam.add("zz", est(1.0))
    with pytest.raises(ValueError, match=pattern):
        fam.not_testable("zz", "Not measured.")
    with pytest.raises(ValueError, match=pattern):
        fam.not_run("zz", "optimizers", "lars")


def test_a_family_refuses_to_finalize_with_a_declared_claim_left_without_a_verdict():
    """Every declared claim gets a box: add, not_testable or not_run, or finalize (and publish) refuse."""
    fam = V.Family("ch", records=[_rec("a"), _rec("b"), _rec("c")])
    fam.add("a", est(2.0))
    fam.not_run("c", "optimizers", "lars")
    message = r"claim 'b' of ch got no estimate; allowed: every declared claim gets add\(\), not_testable\(\)"
    with pytest.raises(ValueError, match=message):
        fam.finalize()
    with pytest.raises(ValueError, match=message):
        fam.publish(show=False)
    fam.not_testable("b", "Not measured.")
    assert [v.outcome for v in fam.finalize()] == ["supported", "not testable", "not run"]
