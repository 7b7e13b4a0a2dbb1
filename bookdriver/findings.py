"""Findings: every verdict of the executed chapters, collected for the pages that summarise them.

Each chapter publishes its verdicts with ``vae_utils.claims.verdicts.publish``: the verdict's JSON is glued
under ``<id>-json`` with the mime type ``application/vnd.vae-verdict+json``. After the chapters have
executed, this module reads those outputs from the execution cache (before Sphinx runs) and gives

* ``verdicts.json``: the machine-readable list (served at ``<html>/_static/verdicts.json``);
* the Markdown of the Findings page: every verdict, grouped by chapter, with its outcome, what to
  do, the effect and its interval, and a link to the section that tests it;
* substitutions for hand-written pages (the landing page, the recipe, the conclusion) that state
  an outcome or a number: ``{{ v_bs_large_batch_gap }}`` reads "supported" (a link to the section),
  ``{{ v_bs_large_batch_gap_effect }}`` the effect with its interval, ``{{ ..._todo }}`` what to do;
  ``{{ q_lr_best }}`` a quantity a chapter published with ``vae_utils.claims.verdicts.publish_value``.
  A page names verdicts and quantities, never types them, so its text cannot drift from the data.
  A verdict whose chapter did not run (or that a reader's grid left out) reads "not run", a
  missing quantity "not measured in this build".
"""

from __future__ import annotations

import json
import re
from pathlib import Path

from vae_utils.claims.records import OUTCOME_WORDS, natural_order, record
from vae_utils.publish.markup import html_escape, md_escape
from vae_utils.publish.numbers import fmt, fmt_interval, quantity

__all__ = ["MIME_TYPE", "read_verdicts", "findings_markdown", "substitutions", "verdict_keys", "front_matter"]

MIME_TYPE = "application/vnd.vae-verdict+json"  # vae_utils.claims.verdicts.MIME_TYPE (the driver stays light)
VALUE_MIME_TYPE = "application/vnd.vae-value+json"
GLUE_PREFIX = "application/papermill.record/"  # how myst_nb.glue stores an output's mime types  # vae_utils.claims.verdicts.VALUE_MIME_TYPE: {{ q_<id> }}
_KEY = re.compile(r"\{\{\s*(v_[a-z0-9_]+?)(_outcome|_effect|_todo|_claim|_scope)?\s*\}\}")
_QUANTITY = re.compile(r"\{\{\s*(q_[a-z0-9_]+)\s*\}\}")


def verdicts_in(nb, mime: str = MIME_TYPE) -> list[dict]:
    """The records of type ``mime`` (verdicts by default, or values) glued in one executed notebook, in order."""
    found = []
    for cell in nb.cells:
        for out in cell.get("outputs", []) if cell.get("cell_type") == "code" else []:
            data = out.get("data", {})
            record = data.get(GLUE_PREFIX + mime, data.get(mime))  # glued outputs carry the prefix
            if record is not None:
                found.append(json.loads(record) if isinstance(record, str) else dict(record))
    return found


def read_verdicts(cache_path: Path, notebooks: dict[str, object], mime=MIME_TYPE):
    """Every verdict (or value, with ``mime``) of the ``notebooks`` (stem -> staged notebook) found
    executed in the cache; with a tuple of ``mime`` types, {mime: records} from one pass over the cache.
    A chapter that is not in the cache (it failed, or was skipped) contributes nothing."""
    from jupyter_cache import get_cache

    mimes = (mime,) if isinstance(mime, str) else tuple(mime)
    cache = get_cache(str(cache_path))
    records = {m: [] for m in mimes}
    for stem, nb in notebooks.items():
        try:
            record = cache.match_cache_notebook(nb)
        except KeyError:
            continue
        executed = cache.get_cache_bundle(record.pk).nb
        for m in mimes:
            found = verdicts_in(executed, m)
            records[m].extend({**v, "chapter": v.get("chapter") or stem, "page": stem} for v in found)
    return records[mime] if isinstance(mime, str) else records


def effect_text(v: dict) -> str:
    """'−0.26 nats (95% CI −0.36 to −0.16)' from a verdict record, or ''; a statistic without a unit is
    named ('F statistic, one-way ANOVA: 56'); a claim judged under conditions gives each condition's
    effect ('tuned rates: 0.9 nats (…); default rates: …')."""
    if v.get("estimate") is None:
        conditions = v.get("conditions") or {}  # JSON sorts keys as text: put them back in their order
        parts = ((k, effect_text(conditions[k])) for k in _order(v, conditions))
        return "; ".join(f"{k}: {text}" for k, text in parts if text)
    unit = v.get("unit") or ""
    name = f"{v['name']}: " if not unit and v.get("name") else ""
    if v.get("low") is None or v.get("high") is None:  # no interval: said, unless a named statistic
        return f"{name}{fmt(v['estimate'])}" if name else f"{quantity(v['estimate'], unit)} (no interval)"
    return name + fmt_interval(v["estimate"], v["low"], v["high"], v.get("level") or 0.95, unit)


def _order(v: dict, conditions: dict) -> list[str]:
    """The conditions in the chapter's order (``condition_order``; else by the numbers in their names)."""
    order = [k for k in v.get("condition_order") or [] if k in conditions]
    return order + [k for k in natural_order(list(conditions)) if k not in order]


def outcome_parts(v: dict) -> tuple[str, str]:
    """(what the box states, each condition's outcome in parentheses or ''): "depends on the budget" when
    the conditions' outcomes differ and their difference is significant, "mixed" when it is not, else
    the outcome in the book's words (``records.OUTCOME_WORDS``)."""
    label = v.get("label") or v["outcome"]
    conditions = v.get("condition_outcomes") or {}
    conditions = {k: conditions[k] for k in _order(v, conditions)}
    differ = len({o for o in conditions.values() if o in ("supported", "opposite", "equivalent", "inconclusive")}) > 1
    head = (
        label if label.startswith("depends on") or label == "mixed" else OUTCOME_WORDS.get(v["outcome"], v["outcome"])
    )
    detail = " (" + "; ".join(f"{c}: {OUTCOME_WORDS.get(o, o)}" for c, o in conditions.items()) + ")"
    return head, detail if differ else ""


def outcome_text(v: dict) -> str:
    """The outcome in words with each condition's outcome (see ``outcome_parts``)."""
    return "".join(outcome_parts(v))


def outcome_link(v: dict) -> str:
    """The outcome in the book's words as a link to the verdict's section: raw HTML carrying the claim's
    id and label (``class="vae-outcome" data-claim=… data-outcome=…``), so a test reads every outcome
    on every built page and compares it with ``verdicts.json``."""
    head, detail = outcome_parts(v)
    page = v.get("page") or v.get("chapter") or ""
    href = f"{page}.html#{v['anchor']}" if v.get("anchor") and page else ""
    label = v.get("label") or v["outcome"]
    attrs = f'class="vae-outcome" data-claim="{html_escape(v["id"])}" data-outcome="{html_escape(label)}"'
    tag = f'<a {attrs} href="{html_escape(href)}">' if href else f"<span {attrs}>"
    return f"{tag}{html_escape(head)}{'</a>' if href else '</span>'}{md_escape(detail)}"


def findings_markdown(verdicts: list[dict], chapter_titles: dict[str, str] | None = None) -> str:
    """The Findings page body: one table of every verdict (an HTML table that ``_static/findings.js``
    makes sortable by each column and filterable by outcome and by words), one row per claim: the claim
    with its chapter and scope, its outcome (a link to its box), the effect with Δ, and what to do."""
    if not verdicts:
        return "No chapter of this build published a verdict.\n"
    titles, rows = chapter_titles or {}, []
    for i, v in enumerate(verdicts):
        page = v["page"]
        delta = f"; Δ = {fmt(v['delta'])}" if v.get("delta") else ""
        label = v.get("label") or v["outcome"]
        chapter = f'<a href="{html_escape(page)}.html">{html_escape(titles.get(page, page))}</a>'
        scope = f" · {html_escape(v['scope'])}" if v.get("scope") else ""
        cells = [
            f"{html_escape(v['claim'])}<br><small>{chapter}{scope}</small>",
            outcome_link(v).replace("\\", ""),
            html_escape(effect_text(v) + delta) or "no estimate",
            html_escape(v.get("what_to_do") or ""),
        ]
        attrs = f'data-order="{i}" data-outcome="{html_escape(label if label == "mixed" or label.startswith("depends") else v["outcome"])}"'
        rows.append(f"<tr {attrs}>" + "".join(f"<td>{c}</td>" for c in cells) + "</tr>")
    head = "".join(f"<th>{h}</th>" for h in ("claim (chapter · scope)", "outcome", "effect", "what to do"))
    return (
        '<div class="vae-findings">\n<table class="vae-findings-table">\n'
        f"<thead><tr>{head}</tr></thead>\n<tbody>\n" + "\n".join(rows) + "\n</tbody>\n</table>\n</div>\n"
    )


SCALE_PREFIX = "fm-"  # the at-scale chapter's ids: "fm-" + the id of the digits verdict or quantity it repeats
SCALE_QUANTITIES = {
    "lr-best": "The best learning rate",
    "lr-interior": "Where the best learning rate lies",
    "lr-break-ratio": "Breaking rate over the best rate",
    "bs-bcrit": "The critical batch size",
    "bs-bsimple": "B_simple, the gradient noise scale",
    "beta-best": "The best β (validation ELBO)",
}  # the quantities both measure: "fm-" + the digits id ("bs-bcrit" is the at-scale chapter's "fm-bcrit")
SCALE_QUANTITY_IDS = {"bs-bcrit": "fm-bcrit", "bs-bsimple": "fm-bsimple"}


def _label(v: dict) -> str:
    """The outcome as a reader compares it: 'depends on <X>' when a condition decides it."""
    return v.get("label") or v["outcome"]


def _holds(digits: str, here: str) -> str:
    """Whether a Recipe line's digits outcome holds at scale: the same outcome holds, another does not;
    an undecided side decides nothing."""
    undecided = ("inconclusive", "inconclusive")
    if (digits, here) == undecided:
        return "undecided on both"
    if "inconclusive" in (digits, here):
        return "undecided at scale" if here == "inconclusive" else "undecided on digits"
    return "holds" if digits == here else "does not hold"


def _twin_id(v: dict) -> str:
    """The id of the digits claim an at-scale verdict re-tests: its ``repeats``, else its id without ``fm-``."""
    return v.get("repeats") or v["id"].removeprefix(SCALE_PREFIX)


def _recipe_line(id_: str) -> str:
    """The Recipe lead of declared claim ``id_`` (its record), "" when it has none or is not declared."""
    try:
        return record(id_).recipe
    except KeyError:
        return ""


def scale_comparison_markdown(verdicts: list[dict], values: list[dict]) -> str:
    """The at-scale chapter's side-by-side table, line by line of the Recipe: for each at-scale verdict, the
    Recipe line of the digits claim it re-tests (``repeats``), the claim as re-tested, the digits outcome,
    the outcome at scale, whether the line holds at scale, and the chapter's measured note ``<id>-note``;
    then the quantities both measure. Empty when the build has no at-scale verdicts."""
    by_id = {v["id"]: v for v in verdicts}
    vals = {q["id"]: q for q in values}
    rows = []
    for fm in (v for v in verdicts if v.get("repeats") or v["id"].startswith(SCALE_PREFIX)):
        twin = by_id.get(_twin_id(fm))
        untested = ("not run", "not testable")
        if twin is None or fm["outcome"] in untested or twin["outcome"] in untested:
            holds = "not compared"
        else:
            holds = _holds(_label(twin), _label(fm))
        line = (twin or {}).get("recipe") or _recipe_line(_twin_id(fm))
        note = vals.get(f"{fm['id']}-note", {}).get("text", "")
        digits = outcome_link(twin) if twin else "not in this build"
        rows.append([md_escape(line), md_escape(fm["claim"]), digits, outcome_link(fm), holds, note])
    for q, name in SCALE_QUANTITIES.items():
        here, there = vals.get(SCALE_QUANTITY_IDS.get(q, SCALE_PREFIX + q)), vals.get(q)
        if here:
            rows.append(
                ["", f"{name} (a quantity)", there["text"] if there else "not measured on digits", here["text"], "", ""]
            )
    if not rows:
        return "This build has no at-scale verdicts to compare.\n"
    header = ["Recipe line", "claim (as re-tested)", "digits: 64-256-8 MLP on 8×8 images",
              "at scale: Fashion-MNIST, 28×28 images", "holds at scale?", "what differs here"]  # fmt: skip
    caption = (
        "The Recipe at scale, line by line: each outcome links to its verdict; the last column is measured on "
        "Fashion-MNIST."
    )
    lines = [f":::{{table}} {caption}", ":name: tab-fm-compare", "", "| " + " | ".join(header) + " |"]
    lines.append("|" + "---|" * len(header))
    lines += ["| " + " | ".join(c.replace("|", "\\|") for c in row) + " |" for row in rows]
    return "\n".join([*lines, ":::", ""])


def verdict_keys(text: str) -> set[str]:
    """The verdict and quantity substitution keys a page uses (``v_<id>``, ``q_<id>``, '-' as '_')."""
    return {m.group(1) for m in _KEY.finditer(text)} | {m.group(1) for m in _QUANTITY.finditer(text)}


def substitutions(verdicts: list[dict], wanted: set[str] = frozenset(), values: list[dict] = ()) -> dict[str, str]:
    """``{v_<id>: outcome with a link, v_<id>_outcome, _effect, _todo, _claim, _scope}`` for every
    verdict, ``{q_<id>: text}`` for every value, and "not run" entries for ``wanted`` keys that
    nothing provides."""
    subs = {"q_" + q["id"].replace("-", "_"): q["text"] for q in values}
    for key in {k for k in wanted if k.startswith("q_")} - set(subs):
        subs[key] = "not measured in this build"
    wanted = {k for k in wanted if k.startswith("v_")}
    for v in verdicts:
        key = "v_" + v["id"].replace("-", "_")
        subs |= {
            key: outcome_link(v),
            f"{key}_outcome": OUTCOME_WORDS.get(v["outcome"], v["outcome"]),
            f"{key}_effect": effect_text(v) or "no estimate",
            f"{key}_todo": v.get("what_to_do") or "",
            f"{key}_claim": md_escape(v["claim"]),
            f"{key}_scope": md_escape(v.get("scope") or ""),
        }
    for key in wanted - {k for k in subs if not k.endswith(("_outcome", "_effect", "_todo", "_claim", "_scope"))}:
        subs |= {key: "not run", f"{key}_outcome": "not run", f"{key}_effect": "not run in this build"}
        subs |= {f"{key}_todo": "", f"{key}_claim": "", f"{key}_scope": ""}
    return subs


def front_matter(text: str, subs: dict[str, str]) -> str:
    """``text`` (a MyST Markdown page) with ``subs`` added to its front matter's substitutions."""
    import yaml

    meta, body = {}, text
    if text.startswith("---\n"):
        end = text.index("\n---\n", 4)
        meta, body = yaml.safe_load(text[4:end]) or {}, text[end + 5 :]
    myst = meta.setdefault("myst", {})
    myst["substitutions"] = {**myst.get("substitutions", {}), **subs}
    return "---\n" + yaml.safe_dump(meta, sort_keys=True, allow_unicode=True) + "---\n" + body
