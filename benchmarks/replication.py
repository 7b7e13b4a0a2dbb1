"""Do the book's verdicts replicate on other seeds? Compare two builds' verdicts, claim by claim.

    python -m bookdriver build                          # the book: evaluation seeds 0-9, tuning seeds 1000-1002
    python -m bookdriver build --profile replication    # the same chapters on seeds 100-109, tuning 2000-2002
    python benchmarks/replication.py                    # the agreement table (Markdown) and its summary

Each build writes every verdict to ``_static/verdicts.json``. Two outcomes *agree* when they are the
same; they *clash* when one build finds an effect in one direction and the other build the opposite
effect or equivalence (supported vs opposite or equivalent; a "depends" counts as agreeing with a
supported or opposite outcome in any of its conditions). Anything else, such as supported vs
inconclusive, is a *weaker* replication: one build could not decide what the other did. The
summary counts agreements among the verdicts both builds could test (``--out`` writes the table).
"""

from __future__ import annotations

import argparse
import json
import sys
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
DECIDED = {"supported", "opposite", "equivalent"}


def load(build: Path) -> dict[str, dict]:
    """The verdicts of one build folder (``_build`` or ``_build/<profile>``), by id."""
    for path in (build / "_build" / "html" / "_static" / "verdicts.json", build / "html" / "_static" / "verdicts.json"):
        if path.is_file():
            return {v["id"]: v for v in json.loads(path.read_text(encoding="utf-8"))}
    raise SystemExit(f"{build}: no _static/verdicts.json in its HTML; build it first (python -m bookdriver build)")


def relation(a: dict, b: dict) -> str:
    """'agree', 'clash', 'weaker' or 'untestable' for one claim's two outcomes."""
    oa, ob = a["outcome"], b["outcome"]
    if "not testable" in (oa, ob):
        return "untestable"
    if oa == ob:
        return "agree"
    sides = {o: set(v.get("condition_outcomes", {}).values()) if o == "depends" else {o} for o, v in ((oa, a), (ob, b))}
    if "depends" in (oa, ob) and sides[oa] & sides[ob]:
        return "agree"
    if oa in DECIDED and ob in DECIDED:
        return "clash"
    return "weaker"


def table(first: dict, second: dict) -> tuple[list[dict], dict]:
    rows = []
    for vid in sorted(set(first) | set(second), key=lambda v: (first.get(v, second.get(v))["chapter"], v)):
        a, b = first.get(vid), second.get(vid)
        rel = relation(a, b) if a and b else "missing"
        rows.append(
            {
                "chapter": (a or b)["chapter"],
                "id": vid,
                "claim": (a or b)["claim"],
                "first": a["outcome"] if a else "—",
                "second": b["outcome"] if b else "—",
                "relation": rel,
            }
        )
    tested = [r for r in rows if r["relation"] in ("agree", "clash", "weaker")]
    summary = {
        "claims": len(rows),
        "tested in both": len(tested),
        "agree": sum(r["relation"] == "agree" for r in tested),
        "weaker": sum(r["relation"] == "weaker" for r in tested),
        "clash": sum(r["relation"] == "clash" for r in tested),
    }
    summary["agreement"] = summary["agree"] / summary["tested in both"] if tested else float("nan")
    return rows, summary


def markdown(rows: list[dict], summary: dict, names: tuple[str, str]) -> str:
    lines = [
        f"| chapter | claim | {names[0]} | {names[1]} | replication |",
        "|---|---|---|---|---|",
        *(f"| {r['chapter']} | {r['claim']} | {r['first']} | {r['second']} | {r['relation']} |" for r in rows),
        "",
        f"{summary['agree']} of {summary['tested in both']} claims tested in both builds agree "
        f"({summary['agreement']:.0%}); {summary['weaker']} replicate weaker (one build undecided), "
        f"{summary['clash']} clash (a decided outcome against its opposite).",
    ]
    return "\n".join(lines)


def main(argv=None) -> int:
    p = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    p.add_argument("--first", default=str(ROOT / "_build"), help="the first build folder (default: the book, _build)")
    p.add_argument("--second", default=str(ROOT / "_build" / "replication"), help="the second build folder")
    p.add_argument("--out", help="also write the Markdown table to this file")
    args = p.parse_args(argv)
    rows, summary = table(load(Path(args.first)), load(Path(args.second)))
    text = markdown(rows, summary, ("seeds 0–9", "seeds 100–109"))
    print(text)
    if args.out:
        Path(args.out).write_text(text + "\n", encoding="utf-8")
    return 1 if summary["clash"] else 0


if __name__ == "__main__":
    sys.exit(main())
