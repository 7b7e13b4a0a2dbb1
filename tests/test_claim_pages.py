"""The summary pages say about each claim only what its record and its verdict say.

Static checks (no build): every declared claim has a box, an anchor and a place in its chapter; the
pages that summarise claims type no number about them; the rendered lines follow each condition's
outcome. The built book's pages are checked against verdicts.json in tests/test_book.py.
"""

from __future__ import annotations

import json
import re
from pathlib import Path

import pytest

from bookdriver import claim_pages
from bookdriver.findings import findings_markdown, outcome_link
from vae_utils.claims.records import OUTCOME_WORDS, TOPICS, all_records

REPO = Path(__file__).resolve().parents[1]
CHAPTERS = REPO / "chapters"
SUMMARY_PAGES = ["01_background.md", "10_recipe.md", "15_conclusion.md", "16_findings.md"]


def _notebook_text(chapter: str) -> str:
    nb = json.loads((CHAPTERS / f"{chapter}.ipynb").read_text(encoding="utf-8"))
    return "\n".join("".join(c["source"]) for c in nb["cells"])


def _verdict(id, outcome="supported", **kw):
    record = next(r for r in all_records() if r.id == id)
    return {"id": id, "chapter": record.chapter, "page": record.chapter, "claim": record.claim, "outcome": outcome,
            "label": kw.pop("label", outcome), "anchor": record.anchor, "what_to_do": kw.pop("what_to_do", "Do X."),
            "condition_outcomes": kw.pop("condition_outcomes", {}), "estimate": None, **kw}  # fmt: skip


@pytest.mark.parametrize("record", all_records(), ids=lambda r: r.id)
def test_every_declared_claim_has_a_box_and_an_anchor_in_its_chapter(record):
    text = _notebook_text(record.chapter)
    assert re.search(rf":::\{{glue:md\}} {re.escape(record.id)}\s*\n", text), f"no box for {record.id}"
    assert f"({record.anchor})=" in text, f"no section ({record.anchor})= for {record.id}"


def test_every_claim_of_a_chapter_is_handed_to_its_family_by_id():
    """A chapter names each of its claims' ids in its code (add, not_testable or not_run)."""
    for record in all_records():
        code = _notebook_text(record.chapter)
        assert record.id in code or "fm-" in record.id, record.id


def _sentences_with_numbers(text: str) -> list[str]:
    """Sentences that state a verdict or a measured quantity ({{ v_… }}, {{ q_… }}) beside a typed number."""
    text = re.sub(r"```.*?```", " ", text, flags=re.S)  # code and includes
    text = re.sub(r"^---\n.*?\n---\n", " ", text, flags=re.S)
    bad = []
    for sentence in re.split(r"(?<=[.!?])\s+", text):
        if "{{ v_" not in sentence and "{{ q_" not in sentence:
            continue
        bare = re.sub(r"\{\{.*?\}\}|\{[a-z:]+\}`[^`]*`|\(#[^)]*\)|\[[^\]]*\]\([^)]*\)", " ", sentence)
        bare = bare.replace("8×8", " ")
        if re.search(r"\d", bare):
            bad.append(sentence.strip())
    return bad


@pytest.mark.parametrize("page", SUMMARY_PAGES)
def test_no_summary_page_types_a_number_beside_a_verdict_or_a_quantity(page):
    assert _sentences_with_numbers((CHAPTERS / page).read_text(encoding="utf-8")) == []


def test_a_typed_number_beside_a_quantity_is_found():
    """The check can fail: a sentence with a quantity and a typed number is reported."""
    assert _sentences_with_numbers("The best rate was {{ q_lr_best }}, about 4 times the default.")


@pytest.mark.parametrize("page", SUMMARY_PAGES)
def test_summary_pages_state_no_outcome_by_hand(page):
    """Outcomes come from the records: a page never pastes a verdict's outcome word next to a claim."""
    text = (CHAPTERS / page).read_text(encoding="utf-8")
    assert not re.search(r"\{\{ v_[a-z0-9_]+ \}\}", text), "render claims from the records (claim_pages)"


def test_the_recipe_includes_every_topic_that_has_recipe_lines():
    text = (CHAPTERS / "10_recipe.md").read_text(encoding="utf-8")
    for topic in TOPICS:
        if any(r.recipe and r.topic == topic for r in all_records()):
            assert f"recipe-{claim_pages.topic_slug(topic)}.md" in text, topic


def test_a_recipe_line_follows_each_conditions_outcome():
    """Warm-up + cosine supported at one peak and no effect at the other: the line says both."""
    from vae_utils.claims.records import advice, record

    r = record("lr-warmup-cosine")
    line = advice(r.what_to_do, "inconclusive", {"peak 0.004": "equivalent", "peak 0.032": "supported"})
    assert line.startswith("Peak 0.004: " + r.what_to_do["equivalent"].rstrip("."))
    assert "Peak 0.032: " + r.what_to_do["supported"].rstrip(".") in line
    v = _verdict("lr-warmup-cosine", "inconclusive", label="mixed", what_to_do=line,
                 condition_outcomes={"peak 0.004": "equivalent", "peak 0.032": "supported"})  # fmt: skip
    md = claim_pages.recipe_markdown([v], "learning rate")
    assert line in md.replace("\\", "")
    plain = md.replace("\\", "")
    assert re.search(
        r'data-outcome="mixed"[^>]*>mixed</a> \(peak 0.004: no effect that matters; peak 0.032: supported\)', plain
    )


def test_a_recipe_line_says_how_its_claim_fared_at_scale_and_names_each_of_several_retests():
    verdicts = [_verdict(r.id, "supported", what_to_do=f"Do {r.id}.") for r in all_records()]
    lr = claim_pages.recipe_markdown(verdicts, "learning rate")
    slow = next(line for line in lr.splitlines() if 'data-claim="lr-slow"' in line)
    assert re.search(r'; at scale: <a [^>]*data-claim="fm-lr-slow"', slow)
    precise = next(line for line in lr.splitlines() if 'data-claim="lr-precise"' in line)
    assert "at scale" not in precise  # not re-tested
    opt = claim_pages.recipe_markdown(verdicts, "optimizer").replace("\\", "")
    line = next(line for line in opt.splitlines() if 'data-claim="opt-adam-sgd"' in line)
    assert "at scale: Adam reaches a better test ELBO than plain SGD: " in line
    assert (
        "; Adam reaches a better test ELBO than SGD with momentum: " in line
        and 'data-claim="fm-opt-adam-momentum"' in line
    )


def test_every_outcome_link_carries_the_claim_and_the_books_words():
    for outcome, words in OUTCOME_WORDS.items():
        link = outcome_link(_verdict("bs-gap", outcome))
        assert f'data-claim="bs-gap" data-outcome="{outcome}"' in link and f">{words}</a>" in link


def test_a_claim_whose_chapter_did_not_run_reads_not_run_on_every_summary():
    answers = claim_pages.answers_markdown([])
    answered = {i for _, ids, _ in claim_pages.CHOICES for i in ids}
    retests = [r.id for r in all_records() if r.repeats in answered]  # the at-scale column's claims
    assert answers.count(">not run<") == len(answered) + len(retests) and len(retests) >= 7
    assert "not measured in this build" in answers
    assert ">supported<" not in claim_pages.conclusion_markdown([])


def test_the_landing_page_and_the_conclusion_agree_with_the_findings():
    verdicts = [_verdict(r.id, "equivalent" if i % 2 else "supported") for i, r in enumerate(all_records())]
    findings = findings_markdown(verdicts)
    for md in (claim_pages.answers_markdown(verdicts), claim_pages.conclusion_markdown(verdicts), findings):
        for m in re.finditer(r'data-claim="([^"]+)" data-outcome="([^"]+)"[^>]*>([^<]+)<', md):
            v = next(v for v in verdicts if v["id"] == m.group(1))
            assert (m.group(2), m.group(3)) == (v["outcome"], OUTCOME_WORDS[v["outcome"]])


def test_the_vocabulary_defines_every_word_a_page_uses():
    text = claim_pages.outcomes_markdown()
    for words in [*OUTCOME_WORDS.values(), "mixed", "depends on"]:
        assert f"**{words}" in text.replace("\\", ""), words


def test_conditions_read_in_the_chapters_order_though_the_json_sorts_them_as_text():
    """A notebook stores a record's keys sorted as text (batch 128 before batch 16): the pages restore the order."""
    from bookdriver.findings import effect_text, outcome_text

    conditions = {
        f"batch {b}": {"estimate": 0.1 * b, "low": None, "high": None, "unit": "nats"} for b in (128, 16, 256)
    }
    v = _verdict("tune-rate-rule", "inconclusive", label="mixed", condition_outcomes={
        "batch 128": "inconclusive", "batch 16": "equivalent", "batch 256": "inconclusive"})  # fmt: skip
    v |= {"conditions": conditions, "condition_order": ["batch 16", "batch 128", "batch 256"]}
    assert outcome_text(v).index("batch 16") < outcome_text(v).index("batch 128") < outcome_text(v).index("batch 256")
    assert effect_text(v).startswith("batch 16: 1.6 nats (no interval); batch 128: 12.8 nats (no interval)")
    del v["condition_order"]  # an older record: by the numbers in the names
    assert effect_text(v).startswith("batch 16:")


def test_the_short_answer_names_each_choice_with_what_to_do_what_was_measured_and_the_at_scale_retest():
    verdicts = [_verdict(r.id, "supported", what_to_do=f"Do {r.id}.") for r in all_records()]
    values = [{"id": "lr-best", "text": "0.004"}, {"id": "bs-bcrit", "text": "70 (95% CI 60 to 81)"}]
    md = claim_pages.answers_markdown(verdicts, values).replace("\\", "")
    rows = md.splitlines()[2:]
    assert [r.split(" | ")[0] for r in rows] == [f"| **{c}**" for c, _, _ in claim_pages.CHOICES]
    lr = next(r for r in rows if r.startswith("| **learning rate**"))
    assert "Do lr-slow. Do lr-precise." in lr and "best rate of the grid: 0.004" in lr
    assert 'data-claim="fm-lr-slow"' in lr  # the at-scale re-test of lr-slow
    row = lambda choice: next(r for r in rows if r.startswith(f"| **{choice}**"))
    assert 'data-claim="fm-lr-warmup-cosine"' in row("schedule")
    opt = row("optimizer")  # two re-tests of one claim (repeats: opt-adam-sgd), each with its own wording
    assert 'data-claim="fm-opt-adam-sgd"' in opt and 'data-claim="fm-opt-adam-momentum"' in opt
    assert "than SGD with momentum: " in opt and "than plain SGD: " in opt
    assert 'data-claim="fm-conv-beta-collapse"' in row("β") and 'data-claim="fm-beta-collapse"' in row("β")
    assert "not re-tested" not in md
