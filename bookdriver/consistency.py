"""A built book checked against itself: every outcome a page shows is its verdict's, every scope is its runs'.

After Sphinx, ``check(html)`` reads every chapter page of the built HTML and ``_static/verdicts.json``:

* each outcome link (``class="vae-outcome" data-claim=… data-outcome=…``: the landing page's answers,
  the Findings table, the Recipe, the conclusion, the at-scale table) must carry its verdict's label and
  the book's words for it;
* each box (``id="verdict-<id>"``) must carry its verdict's outcome as its class and begin with the
  same words;
* every declared claim must have a verdict, and every verdict's scope (dataset, epochs, batch sizes,
  seeds) must be that of runs in the book's run tables (``_static/tables/*-runs.csv``).

The build prints what it finds and exits non-zero on a contradiction (``python -m bookdriver check``
runs it on a built book); the tests run it on the smoke build.
"""

from __future__ import annotations

import html as html_lib
import json
import re
from pathlib import Path

from vae_utils.claims.records import OUTCOME_WORDS, all_records

from .findings import outcome_parts

__all__ = ["check", "outcome_problems", "scope_problems"]

_LINK = re.compile(r'data-claim="([^"]+)" data-outcome="([^"]+)"[^>]*>([^<]*)<')
_BOX = re.compile(r'<div class="([^"]*\bverdict\b[^"]*)" id="verdict-([^"]+)">.*?<strong>([^<]*)</strong>', re.S)
_OUTCOME_CLASSES = {f"verdict-{o.replace(' ', '-')}": o for o in OUTCOME_WORDS}
_SCOPE_COLUMNS = (("seeds", "seed"), ("epochs", "epochs"), ("batch_size", "batch_size"), ("dataset", "dataset"))


def _verdicts(html: Path) -> dict[str, dict]:
    path = html / "_static" / "verdicts.json"
    return {v["id"]: v for v in json.loads(path.read_text(encoding="utf-8"))} if path.is_file() else {}


def _words(v: dict) -> str:
    """The words a page must show for ``v``: the head ``findings.outcome_parts`` renders."""
    return outcome_parts(v)[0]


def outcome_problems(html: Path) -> tuple[list[str], int]:
    """(contradictions, outcomes read: links and boxes) over every chapter page of the built book under
    ``html``. A declared claim must have a verdict when its chapter's page was built."""
    verdicts, problems, seen = _verdicts(html), [], 0
    built = {p.stem for p in html.glob("chapters/*.html")}
    missing = sorted({r.id for r in all_records() if r.chapter in built} - set(verdicts))
    problems += [f"{cid}: declared, and its chapter was built, but the build has no verdict" for cid in missing]
    for page in sorted(html.glob("chapters/*.html")):
        text = page.read_text(encoding="utf-8")
        for cid, label, words in _LINK.findall(text):
            v, seen = verdicts.get(cid, {"label": "not run", "outcome": "not run"}), seen + 1
            shown = (html_lib.unescape(label), html_lib.unescape(words))
            if shown != (v.get("label") or v["outcome"], _words(v)):
                problems.append(f"{page.stem}: {cid} reads {shown[1]!r} ({shown[0]}); its verdict is {_words(v)!r}")
        for classes, cid, head in _BOX.findall(text):
            outcome = next((_OUTCOME_CLASSES[c] for c in classes.split() if c in _OUTCOME_CLASSES), "")
            v, seen = verdicts.get(cid), seen + 1
            if v is None:
                problems.append(f"{page.stem}: a box for {cid}, which verdicts.json does not hold")
                continue
            head = html_lib.unescape(head).rstrip(".").lower()
            if outcome != v["outcome"] or head != _words(v).lower():
                problems.append(
                    f"{page.stem}: the box of {cid} reads {head!r} ({outcome}); its verdict is {_words(v)!r}"
                )
    return problems, seen


def scope_problems(html: Path) -> list[str]:
    """Scopes whose dataset, epochs, batch sizes or seeds are not those of any run in the run tables."""
    import pandas as pd

    tables = sorted((html / "_static" / "tables").glob("*-runs.csv"))
    if not tables:
        return []
    runs = pd.concat([pd.read_csv(t) for t in tables], ignore_index=True)
    problems = []
    for v in _verdicts(html).values():
        scope = v.get("scope_record") or {}
        for field, column in _SCOPE_COLUMNS:
            if field in scope and column in runs and not set(scope[field]) <= set(runs[column].dropna().tolist()):
                problems.append(f"{v['id']}: its scope's {field} {scope[field]} are not all in the run tables")
    return problems


def check(html: Path) -> list[str]:
    """Every contradiction the built book under ``html`` holds (an empty list: none)."""
    problems, _ = outcome_problems(html)
    return problems + scope_problems(html)
