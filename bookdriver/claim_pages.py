"""The sentences the summary pages say about claims, rendered from the claim records and the verdicts.

Every claim is declared once (``vae_utils.claims.records``: one table per chapter) and judged once (its
verdict in ``verdicts.json``). The landing page's answer table, the Recipe's lines, the conclusion's
table and the vocabulary all come from here, so no page can state an outcome, a what-to-do or a scope
that another page contradicts. Each outcome is written as a link with ``class="vae-outcome"`` and
``data-claim="<id>"`` (and each box in a chapter carries the id ``verdict-<id>``), so a test can read
every outcome on every built page and compare it with ``verdicts.json``.

* ``outcomes_markdown()``: the vocabulary, defined once (included by the landing and Findings pages);
* ``answers_markdown(verdicts, values)``: the landing page's short answer, one row per choice a reader makes;
* ``recipe_markdown(verdicts, topic)``: the Recipe's lines of one topic, each with its re-test at scale;
* ``conclusion_markdown(verdicts)``: the conclusion's table, one row per sentence of the article.
"""

from __future__ import annotations

from vae_utils.claims.records import OUTCOME_DEFINITIONS, TOPICS, ClaimRecord, advice, all_records
from vae_utils.publish.markup import md_escape

from .findings import effect_text, outcome_link

__all__ = ["outcomes_markdown", "answers_markdown", "recipe_markdown", "conclusion_markdown", "topic_slug", "by_id"]


def topic_slug(topic: str) -> str:
    return topic.replace(" ", "-")


def by_id(verdicts: list[dict]) -> dict[str, dict]:
    """Every declared claim's verdict record: the build's, or a "not run" stand-in from its record."""
    found = {v["id"]: v for v in verdicts}
    return {r.id: found.get(r.id) or _not_run(r) for r in all_records()} | found


def _not_run(r: ClaimRecord) -> dict:
    return {"id": r.id, "chapter": r.chapter, "page": r.chapter, "claim": r.claim, "outcome": "not run",
            "label": "not run", "anchor": "", "what_to_do": advice(r.what_to_do, "not run"), "scope": "",
            "condition_outcomes": {}, "estimate": None}  # fmt: skip


def outcomes_markdown() -> str:
    """The vocabulary of outcomes, defined once."""
    lines = [f"- **{md_escape(word)}**: {md_escape(text)}." for word, text in OUTCOME_DEFINITIONS.items()]
    return "\n".join(lines) + "\n"


def _table(header: list[str], rows: list[list[str]]) -> str:
    out = ["| " + " | ".join(header) + " |", "|" + "---|" * len(header)]
    out += ["| " + " | ".join(c.replace("|", "\\|").replace("\n", " ") for c in row) + " |" for row in rows]
    return "\n".join(out) + "\n"


# The landing page's short answer: a reader's five choices, the claims whose what-to-do answers each, and
# the quantities measured for it ({id: words}); the at-scale column shows every claim that ``repeats`` one of them.
CHOICES = (
    ("batch size", ("bs-gap", "bs-compute"), {"bs-bcrit": "critical batch size"}),
    ("learning rate", ("lr-slow", "lr-precise"), {"lr-best": "best rate of the grid", "lr-break-ratio": "breaking rate ÷ best"}),
    ("optimizer", ("opt-adam-sgd", "opt-defaults"), {"opt-best": "best on validation", "opt-best-vs-adam": "its test ELBO − Adam's"}),
    ("schedule", ("lr-warmup-cosine",), {}),
    ("β", ("beta-collapse", "beta-free-bits"), {}),
)  # fmt: skip


def answers_markdown(verdicts: list[dict], values: list[dict] = ()) -> str:
    """The landing page's answer: for each of a reader's five choices, what to do (the claims' lines for
    their outcomes), what was measured here, how sure the book is (each claim's outcome, a link to its box)
    and whether it held at scale (the re-test's outcome)."""
    vs, found = by_id(verdicts), {q["id"]: q["text"] for q in values}
    rows = []
    for choice, ids, quantities in CHOICES:
        todo = " ".join(dict.fromkeys(md_escape(vs[i].get("what_to_do") or "") for i in ids))
        measured = "; ".join(
            f"{words}: {md_escape(found.get(q, 'not measured in this build'))}" for q, words in quantities.items()
        )
        sure = "<br>".join(f"{md_escape(vs[i]['claim'])}: {outcome_link(vs[i])}" for i in ids)
        retests = [r for r in all_records() if r.repeats in ids]  # the at-scale claims that re-test these
        scale = "<br>".join(f"{md_escape(r.claim)}: {outcome_link(vs[r.id])}" for r in retests) or "not re-tested"
        rows.append([f"**{md_escape(choice)}**", todo, measured or "—", sure, scale])
    return _table(["choice", "what to do", "measured here", "how sure: the claims tested", "at scale"], rows)


def recipe_markdown(verdicts: list[dict], topic: str) -> str:
    """The Recipe's lines of one ``topic``: each claim with a ``recipe`` lead, what to do about its outcome,
    the outcome (a link), the effect, and the outcome of each claim that re-tests it at scale (``repeats``)."""
    if topic not in TOPICS:
        raise ValueError(f"topic={topic!r} is not allowed; allowed: {', '.join(TOPICS)}")
    vs, lines = by_id(verdicts), []
    for r in (r for r in all_records() if r.recipe and r.topic == topic and not r.repeats):
        v = vs[r.id]
        effect = effect_text(v)
        evidence = f"{md_escape(r.claim)}: {outcome_link(v)}" + (f"; {md_escape(effect)}" if effect else "")
        evidence += _at_scale(vs, r.id)
        lines.append(f"- **{md_escape(r.recipe)}** {md_escape(v.get('what_to_do') or '')} <small>({evidence})</small>")
    return "\n".join(lines) + "\n" if lines else ""


def _at_scale(vs: dict[str, dict], id_: str) -> str:
    """'; at scale: <outcome>' for the claim(s) that re-test claim ``id_`` (``repeats``), each named by its
    own wording when there are several; '' when none does."""
    retests = [r for r in all_records() if r.repeats == id_]
    one = len(retests) == 1
    parts = [outcome_link(vs[r.id]) if one else f"{md_escape(r.claim)}: {outcome_link(vs[r.id])}" for r in retests]
    return f"; at scale: {'; '.join(parts)}" if parts else ""


def conclusion_markdown(verdicts: list[dict]) -> str:
    """The conclusion's table: each sentence of the article, what the experiments found, what to do."""
    vs, groups = by_id(verdicts), {}
    for r in all_records():
        if r.article and not r.repeats:
            groups.setdefault(r.article, []).append(r)
    rows = []
    for article, recs in groups.items():
        found = " ".join(f"{md_escape(r.claim)}: {outcome_link(vs[r.id])}." for r in recs)
        todo = " ".join(dict.fromkeys(vs[r.id].get("what_to_do") or "" for r in recs))
        rows.append([md_escape(article), found, md_escape(todo.strip())])
    return _table(["the article says", "what the experiments found", "what to do"], rows)
