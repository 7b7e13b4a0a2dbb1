"""The book's claims, declared once: one table per chapter, ``vae_utils/claims/tables/<chapter>.yaml``.

A claim's record holds everything that is said about it besides the data: its wording, the direction
and the smallest effect of interest Δ it is judged against, what to do for each outcome, where the
book tests it, and where the summary pages list it. A chapter computes an estimate and hands it to
``verdicts.Family(chapter).add(id, estimate, runs=...)``; the box, the landing page's line, the
Findings row, the Recipe's line and the conclusion's row are all rendered from the record and the
verdict, so no two pages can disagree. Adding a claim is one entry here plus the cell that computes
its estimate. Light (PyYAML only): the book driver reads the tables too.

Fields of an entry (``FIELDS``; the required ones first):

- ``id``: a slug, unique in the book (the at-scale chapter's ids are ``fm-`` + the id they repeat, or an
  id of their own where one claim is re-tested twice);
- ``claim``: worded so that *supported* is what a reader should act on (no double negatives);
- ``direction``: +1 the effect lies above its null, −1 below, 0 it differs;
- ``delta``: Δ, the smallest effect of interest, in ``unit`` (null: no equivalence can be shown);
- ``unit``: the unit of the effect and of Δ ("nats", "doublings", "units"), "" for a statistic;
- ``anchor``: the label of the section that tests it;
- ``topic``: where the Recipe and the landing page list it (one of ``TOPICS``);
- ``what_to_do``: {outcome (or ``depends``): one line}; a claim judged under several conditions gets
  each condition's line for that condition's outcome (``advice``);
- optional: ``article`` (the article's sentence it tests: a row of the conclusion), ``recipe`` (the
  lead of its line in the Recipe; without it the Recipe leaves it out), ``headline`` (listed on the
  landing page), ``condition`` (what its conditions vary, e.g. "the budget"), ``repeats`` (the id of
  the claim it re-tests elsewhere: its unset fields are taken from it, except where it is listed).
"""

from __future__ import annotations

import math
import re
from collections.abc import Mapping
from dataclasses import dataclass, fields
from functools import cache
from pathlib import Path

__all__ = [
    "TABLES",
    "TOPICS",
    "OUTCOME_WORDS",
    "OUTCOME_DEFINITIONS",
    "ClaimRecord",
    "load",
    "all_records",
    "record",
    "advice",
    "outcome_words",
    "capitalized",
    "natural_order",
]

TABLES = Path(__file__).with_name("tables")
TOPICS = ("batch size", "learning rate", "batch size and learning rate", "optimizer", "beta", "tuning")
OUTCOMES = ("supported", "opposite", "equivalent", "inconclusive", "not testable", "not run")
DEPENDS = "depends"
# One vocabulary, on every page: the words a reader sees for each outcome, and what they mean.
OUTCOME_WORDS = {
    "supported": "supported",
    "opposite": "the opposite holds",
    "equivalent": "no effect that matters",
    "inconclusive": "inconclusive",
    "not testable": "not testable here",
    "not run": "not run",
}
OUTCOME_DEFINITIONS = {
    "supported": "the whole interval (at the Holm-adjusted level) lies on the side the claim predicts",
    "the opposite holds": "the whole interval lies on the other side",
    "no effect that matters": "two one-sided tests place the effect within ±Δ, the smallest effect of interest; "
    "a small effect below Δ may still have been detected, and the box says in which direction",
    "inconclusive": "the data allow both no effect and an effect larger than Δ",
    "not testable here": "the experiment's own check (its positive control) failed, or there was nothing to measure",
    "not run": "this build's parameters left the experiment out",
    "depends on …": "a claim tested under several conditions whose outcomes differ, and the difference between "
    "the conditions is itself significant: each condition's outcome is given",
    "mixed": "the conditions' outcomes differ, but the difference between them is not significant: overall "
    "inconclusive, each condition's outcome given",
}
REQUIRED = ("id", "claim", "direction", "delta", "unit", "anchor", "topic", "what_to_do")
_SLUG = re.compile(r"^[a-z0-9]+(-[a-z0-9]+)*$")


@dataclass(frozen=True)
class ClaimRecord:
    """One claim as a chapter's table declares it (see the module docstring)."""

    id: str
    claim: str
    direction: int
    delta: float | None
    unit: str
    anchor: str
    topic: str
    what_to_do: Mapping[str, str]
    chapter: str = ""
    article: str = ""
    recipe: str = ""
    headline: bool = False
    condition: str = ""
    repeats: str = ""

    def to_dict(self) -> dict:
        return {f.name: getattr(self, f.name) for f in fields(self)}


FIELDS = tuple(f.name for f in fields(ClaimRecord) if f.name != "chapter")


def _fail(where: str, name: str, value, allowed: str):
    raise ValueError(f"{where}: {name}={value!r} is not allowed; allowed: {allowed}")


def _check(entry: Mapping, where: str) -> None:
    """Every field present and of the right kind (the message names the field, the value, what is allowed)."""
    unknown = sorted(set(entry) - set(FIELDS))
    if unknown:
        _fail(where, unknown[0], entry[unknown[0]], "the fields " + ", ".join(FIELDS))
    missing = [k for k in REQUIRED if k not in entry]
    if missing:
        _fail(where, missing[0], None, "every entry sets " + ", ".join(REQUIRED) + " (or takes them from `repeats`)")
    if not (isinstance(entry["id"], str) and _SLUG.match(entry["id"])):
        _fail(where, "id", entry["id"], "a slug of lowercase letters, digits and single hyphens")
    if isinstance(entry["direction"], bool) or entry["direction"] not in (-1, 0, 1):
        _fail(where, "direction", entry["direction"], "-1, 0, 1")
    d = entry["delta"]
    if d is not None and not (isinstance(d, int | float) and not isinstance(d, bool) and math.isfinite(d) and d > 0):
        _fail(where, "delta", d, "null or a finite number > 0 in the claim's unit")
    for key in ("claim", "anchor"):
        if not (isinstance(entry[key], str) and entry[key].strip()):
            _fail(where, key, entry[key], "a non-empty string")
    for key in ("unit", "article", "recipe", "condition", "repeats"):
        if not isinstance(entry.get(key, ""), str):
            _fail(where, key, entry[key], "a string")
    if not isinstance(entry.get("headline", False), bool):
        _fail(where, "headline", entry["headline"], "true or false")
    if entry["topic"] not in TOPICS:
        _fail(where, "topic", entry["topic"], ", ".join(TOPICS))
    todo = entry["what_to_do"]
    if not isinstance(todo, Mapping) or not todo or set(todo) - {*OUTCOMES, DEPENDS}:
        bad = sorted(set(todo) - {*OUTCOMES, DEPENDS}) if isinstance(todo, Mapping) else [todo]
        _fail(where, "what_to_do", bad[0] if bad else todo, "{outcome: line} with outcomes " + ", ".join(OUTCOMES))
    if not all(isinstance(v, str) and v.strip() for v in todo.values()):
        _fail(where, "what_to_do", todo, "non-empty lines")


def _parse(text: str, chapter: str) -> list[ClaimRecord]:
    import yaml

    entries = yaml.safe_load(text) or []
    if not isinstance(entries, list):
        _fail(chapter, "table", type(entries).__name__, "a YAML list of claims")
    out = []
    for i, e in enumerate(entries):
        where = f"claims table {chapter}, entry {i + 1}"
        if not isinstance(e, Mapping):
            _fail(where, "entry", e, "a mapping of fields")
        base = _repeated(e, where, [x.get("id") for x in entries if isinstance(x, Mapping)])
        _check({**base, **e}, where)
        out.append(ClaimRecord(**{**base, **e, "chapter": chapter}))
    ids = [r.id for r in out]
    dupes = sorted({i for i in ids if ids.count(i) > 1})
    if dupes:
        _fail(f"claims table {chapter}", "id", dupes[0], "each id once")
    return out


def _repeated(entry: Mapping, where: str, own_table: list) -> dict:
    """The fields a ``repeats`` entry takes from the claim it re-tests (declared in another table)."""
    if not entry.get("repeats"):
        return {}
    try:
        if entry["repeats"] in own_table:
            raise KeyError(entry["repeats"])
        base = record(entry["repeats"])
    except (KeyError, TypeError):
        _fail(where, "repeats", entry["repeats"], "the id of a declared claim of another chapter")
    own = ("id", "chapter", "anchor", "headline", "repeats", "article", "recipe")  # never inherited
    return {k: v for k, v in base.to_dict().items() if k not in own}


@cache
def load(chapter: str) -> tuple[ClaimRecord, ...]:
    """The claims chapter ``chapter`` declares (its file stem, e.g. "05_learning_rate"), in order."""
    path = TABLES / f"{chapter}.yaml"
    if not path.is_file():
        known = sorted(p.stem for p in TABLES.glob("*.yaml"))
        _fail("claims", "chapter", chapter, "a chapter with a claims table: " + ", ".join(known))
    return tuple(_parse(path.read_text(encoding="utf-8"), chapter))


def all_records() -> list[ClaimRecord]:
    """Every declared claim of the book, chapter by chapter."""
    return [r for p in sorted(TABLES.glob("*.yaml")) for r in load(p.stem)]


def record(id: str) -> ClaimRecord:
    """The record of claim ``id``, from whichever chapter declares it."""
    for p in sorted(TABLES.glob("*.yaml")):
        text = p.read_text(encoding="utf-8")
        if re.search(rf"^\s*-?\s*id:\s*{re.escape(id)}\s*$", text, re.M):
            return next(r for r in load(p.stem) if r.id == id)
    raise KeyError(f"id={id!r} is not declared in any claims table ({TABLES})")


def _line(what_to_do: Mapping[str, str], outcome: str) -> str:
    line = what_to_do.get(outcome, "")
    if line:
        return line
    if outcome == "inconclusive":
        return "Treat the claim as open."
    if outcome == "not run":
        return "Add the value to the chapter's parameters and rebuild to test the claim."
    if outcome == "not testable":
        return "Nothing to act on from this build: the box says why the claim could not be tested."
    return ""


def advice(what_to_do: Mapping[str, str], outcome: str, condition_outcomes: Mapping[str, str] | None = None,
           depends: bool = False) -> str:  # fmt: skip
    """The what-to-do line for an ``outcome``. Under conditions whose outcomes differ, each condition
    gets the line of its own outcome ("peak 0.032: Warm up, …; peak 0.004: …"), after the ``depends``
    line when the difference is significant (``depends``) and the table gives one."""
    conds = dict(condition_outcomes or {})
    tested = {o for o in conds.values() if o in OUTCOMES[:4]}
    if len(tested) <= 1:
        return _line(what_to_do, outcome)
    head = what_to_do.get(DEPENDS, "") if depends else ""
    parts = [f"{capitalized(k)}: {(_line(what_to_do, o) or outcome_words(o)).rstrip('.')}." for k, o in conds.items()]
    return " ".join([head, *parts]) if head else " ".join(parts)


def natural_order(keys) -> list[str]:
    """Condition names in their order: by the number in each when every name has one ("batch 16" before
    "batch 128"), else as given."""
    nums = [re.search(r"(?:(?<!\w)[-−])?\d+(?:\.\d+)?(?:×10[⁻⁰¹²³⁴⁵⁶⁷⁸⁹]+)?", k) for k in keys]  # "top-5": 5
    if not all(nums):
        return list(keys)

    def value(m):
        t = m.group(0).replace("−", "-")
        if "×10" in t:
            mant, exp = t.split("×10")
            return float(mant) * 10 ** int(exp.translate(str.maketrans("⁻⁰¹²³⁴⁵⁶⁷⁸⁹", "-0123456789")))
        return float(t)

    return [k for _, k in sorted(zip((value(m) for m in nums), keys, strict=True), key=lambda t: t[0])]


def capitalized(text: str) -> str:
    """``text`` with a capital first letter when it is a Latin one ("β = 4" stays as it is)."""
    return text[0].upper() + text[1:] if text[:1].isascii() else text


def outcome_words(outcome: str) -> str:
    """The words a reader sees for ``outcome`` (``OUTCOME_WORDS``)."""
    return OUTCOME_WORDS.get(outcome, outcome)
