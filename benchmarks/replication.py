"""Do the book's verdicts replicate on other seeds? Compare two builds' verdicts, claim by claim.

    python -m bookdriver build                          # the book: evaluation seeds 0-9, tuning seeds 1000-1002
    python -m bookdriver build --profile replication    # the same chapters on seeds 100-109, tuning 2000-2002
    python benchmarks/replication.py                    # the agreement table (Markdown) and its summary

Each build writes every verdict to ``_static/verdicts.json``. Two outcomes *agree* when they are the
same; they *clash* when one build finds an effect in one direction and the other build the opposite
effect or equivalence (supported vs opposite or equivalent). Anything else, such as supported vs
inconclusive, is a *weaker* replication: one build could not decide what the other did. A claim judged
under several conditions (bs-gap: fixed epochs, fixed updates) is compared condition by condition and
takes the worst of them (clash, then weaker, then agree). Chapters without a file in
``profiles/replication/`` run on the same seeds in both builds: they are listed as "same seeds" and
left out of the count. The summary counts agreements among the verdicts both builds could test
(``--out`` writes the table).
"""

from __future__ import annotations

import argparse
import json
import sys
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))  # the book driver's reading of a verdict, as the pages write it
from bookdriver.findings import outcome_text  # noqa: E402

DECIDED = {"supported", "opposite", "equivalent"}


def load(build: Path) -> dict[str, dict]:
    """The verdicts of one build folder (``_build`` or ``_build/<profile>``), by id."""
    for path in (build / "_build" / "html" / "_static" / "verdicts.json", build / "html" / "_static" / "verdicts.json"):
        if path.is_file():
            return {v["id"]: v for v in json.loads(path.read_text(encoding="utf-8"))}
    raise SystemExit(f"{build}: no _static/verdicts.json in its HTML; build it first (python -m bookdriver build)")


def _relation(oa: str, ob: str) -> str:
    if "not testable" in (oa, ob):
        return "untestable"
    if oa == ob:
        return "agree"
    if oa in DECIDED and ob in DECIDED:
        return "clash"
    return "weaker"


def _head(v: dict) -> str:
    """What the box states: 'depends on X' when the interaction decided it, else the outcome."""
    label = v.get("label") or v["outcome"]
    return label if label.startswith("depends") else v["outcome"]


def relation(a: dict, b: dict) -> str:
    """'agree', 'clash', 'weaker' or 'untestable' for what the two boxes state."""
    return _relation(_head(a), _head(b))


def condition_relations(a: dict, b: dict) -> list[str]:
    """The relation of each condition's outcome, for a claim judged under the same conditions in both."""
    ca, cb = a.get("condition_outcomes") or {}, b.get("condition_outcomes") or {}
    return [_relation(ca[k], cb[k]) for k in ca] if ca and set(ca) == set(cb) else []


def words(v: dict | None) -> str:
    """The outcome as the box reads it, with each condition's outcome."""
    return "—" if v is None else outcome_text(v)


def table(first: dict, second: dict, same_seeds: set[str] = frozenset()) -> tuple[list[dict], dict]:
    rows = []
    for vid in sorted(set(first) | set(second), key=lambda v: (first.get(v, second.get(v))["chapter"], v)):
        a, b = first.get(vid), second.get(vid)
        chapter = (a or b)["chapter"]
        rel = "same seeds" if chapter in same_seeds else relation(a, b) if a and b else "missing"
        conds = condition_relations(a, b) if a and b and rel != "same seeds" else []
        rows.append(
            {"chapter": chapter, "id": vid, "claim": (a or b)["claim"], "first": words(a), "second": words(b),
             "relation": rel, "conditions": conds}
        )  # fmt: skip
    tested = [r for r in rows if r["relation"] in ("agree", "clash", "weaker")]
    summary = {
        "claims": len(rows),
        "tested in both": len(tested),
        "agree": sum(r["relation"] == "agree" for r in tested),
        "weaker": sum(r["relation"] == "weaker" for r in tested),
        "clash": sum(r["relation"] == "clash" for r in tested),
    }
    summary["agreement"] = summary["agree"] / summary["tested in both"] if tested else float("nan")
    conds = [c for r in rows for c in r["conditions"] if c in ("agree", "clash", "weaker")]
    summary |= {
        "conditions": len(conds),
        "conditions agree": conds.count("agree"),
        "conditions clash": conds.count("clash"),
    }
    return rows, summary


def same_seed_chapters(verdicts: dict) -> set[str]:
    """Chapters the replication profile leaves at their default seeds (no profiles/replication/<chapter>.yaml)."""
    chapters = {v["chapter"] for v in verdicts.values()}
    return {c for c in chapters if not (ROOT / "profiles" / "replication" / f"{c}.yaml").is_file()}


def _rel_text(row: dict) -> str:
    c = row["conditions"]
    if not c or all(x == "agree" for x in c):
        return row["relation"]
    return f"{row['relation']}; conditions: " + ", ".join(f"{c.count(x)} {x}" for x in dict.fromkeys(c))


def markdown(rows: list[dict], summary: dict, names: tuple[str, str]) -> str:
    lines = [
        f"| chapter | claim | {names[0]} | {names[1]} | replication |",
        "|---|---|---|---|---|",
        *(f"| {r['chapter']} | {r['claim']} | {r['first']} | {r['second']} | {_rel_text(r)} |" for r in rows),
        "",
        f"{summary['agree']} of {summary['tested in both']} claims tested in both builds agree "
        f"({summary['agreement']:.0%}); {summary['weaker']} replicate weaker (one build undecided), "
        f"{summary['clash']} clash (a decided outcome against its opposite). Condition by condition (claims judged "
        f"under several conditions): {summary['conditions agree']} of {summary['conditions']} outcomes agree, "
        f"{summary['conditions clash']} clash.",
    ]
    return "\n".join(lines)


def main(argv=None) -> int:
    p = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    p.add_argument("--first", default=str(ROOT / "_build"), help="the first build folder (default: the book, _build)")
    p.add_argument("--second", default=str(ROOT / "_build" / "replication"), help="the second build folder")
    p.add_argument("--out", help="also write the Markdown table to this file")
    args = p.parse_args(argv)
    first, second = load(Path(args.first)), load(Path(args.second))
    rows, summary = table(first, second, same_seed_chapters(first))
    text = markdown(rows, summary, ("seeds 0–9", "seeds 100–109"))
    print(text)
    if args.out:
        Path(args.out).write_text(text + "\n", encoding="utf-8")
    return 1 if summary["clash"] or summary["conditions clash"] else 0


if __name__ == "__main__":
    sys.exit(main())
