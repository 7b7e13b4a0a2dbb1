"""Verdicts on the source article's claims: six outcomes, decided per chapter under Holm's
multiplicity control, rendered as MyST admonitions and published as machine-readable JSON.

    from vae_utils.claims import stats as S, verdicts as V
    fam = V.Family("04_batch_size")   # the claims its table declares (claims/tables/04_batch_size.yaml)
    fam.add("bs-gap",                 # wording, direction, Δ, what to do: from the table, never typed here
            {"fixed epochs": S.per_seed_slope(ep, "batch_size", "test_elbo", logx=True, unit="nats"),
             "fixed updates": S.per_seed_slope(up, "batch_size", "test_elbo", logx=True, unit="nats")},
            runs=[ep, up],            # the sweep rows it rests on: its scope is computed from them
            interaction=S.paired(S.seed_slopes(ep, "batch_size", "test_elbo", logx=True),
                                 S.seed_slopes(up, "batch_size", "test_elbo", logx=True)))
    fam.not_run("bs-lars", "optimizers", "lars")   # a declared claim this build's parameters left out
    fam.publish()       # Holm across the chapter's tests, then glue <id>, <id>-json and <id>-short

In the chapter's Markdown, paste a verdict where it belongs (the publishing cell can be tagged
``remove-output``; glue still works):

    :::{glue:md} bs-gap
    :format: myst
    :::

``:format: myst`` is needed: ``{glue:md}`` parses as CommonMark by default, whatever the global
setting. The plain ``{glue}`` directive, and the displayed cell output, follow MyST-NB's
``nb_render_markdown_format`` (``sphinx: config: nb_render_markdown_format: myst`` in
``_config.yml``); with the default (commonmark) they show the directive as text.

Outcomes (exactly these strings):

- ``supported``: the Holm-adjusted interval excludes the null on the claimed side (direction
  +1: low > null; −1: high < null; 0, "X differs": either side).
- ``opposite``: it excludes the null on the other side (direction ±1 only).
- ``equivalent`` (no effect that matters), decided first: two one-sided tests (TOST; Schuirmann
  1987, Lakens 2017) at the adjusted level α' = 1 − level both reject an effect of Δ or more,
  i.e. the 1 − 2α' interval lies wholly within null ± Δ. Its size is α' per claim: a true effect
  of exactly Δ reads "equivalent" at most α' of the time. When the two-sided interval excludes the
  null as well, the text says that a small effect below Δ was detected, and its direction. A
  claim judged on a slope may carry a ``shape`` (``stats.bend``: the middle against the line
  through the ends): then "equivalent" also needs the shape's TOST interval within ±Δ, since a
  flat slope is not no effect (an inverted U has none). The shape only guards equivalence
  (an intersection–union test at the same level), so it takes no part in Holm.
- ``inconclusive``: none of these: the data allow both no effect and an effect beyond Δ.
  ``detectable`` is the smallest effect this n detects at 80% power; ``seeds_needed`` (in the
  numbers, not the advice) what a new design planned in advance would need to detect Δ at 80%
  power: adding seeds to this experiment and looking again would raise its error rates.
- ``not testable``: the claim cannot be measured here, or too few finite values remained for a
  test (``reason`` says why).
- ``not run``: the build's parameters left the experiment out (``reason`` names the parameter).

The adjusted level is Holm's (``stats.holm``) over every tested effect of the family (each
condition's effect and each interaction count as one test): rank i (by p) is judged at
1 − alpha/(m − i) while all earlier ones were rejected, the rest at the level of the first
non-rejected rank. Intervals and p-values are dual, so the adjusted interval excludes the null
exactly when the Holm-adjusted p is below alpha. A result with a p-value but no interval (a
permutation trend, an omnibus test) is supported/opposite by adjusted p < alpha and the sign of
estimate − null, else inconclusive: without an interval nothing can be shown equivalent.
``exceeds_delta`` (supported only) is True when the whole adjusted interval lies beyond Δ on the
claimed side, False when it does not; the text says "by more than Δ" or "possibly by less than Δ"
(an effect shown to lie within ±Δ is ``equivalent``, with the direction of the small effect).

Seeds where the question is open (``Family(chapter, looks=(5, 10, 20))``, ``claims.sequential``):
the chapter loops ``for seeds in fam.looks(evaluation_seeds)``, trains the runs of the claims still
open (``fam.is_open(id)``) with those seeds and adds every claim's estimate; after each look the
claims it decided (supported, opposite, no effect that matters) keep their verdict and the others
get more seeds, up to the last look, whose outcomes are final. Holm runs on the repeated p-values
and each level becomes Pocock's nominal level for the looks, so the error rates above hold over
all the looks together (Maurer & Bretz 2013). Each box says how many seeds its claim took.

Claims tested under several conditions (e.g. the budget: fixed epochs / fixed updates): each
condition gets its own outcome (``condition_outcomes``). The overall outcome combines the tested
conditions (not-run / not-testable ones are listed but left out; with none tested, the overall is
``not run`` when all were not run, else ``not testable``): identical outcomes give that outcome;
differing outcomes give ``inconclusive`` overall (the claim does not hold uniformly). The verdict
reads "depends on <X>" (``depends_on``, CSS class ``verdict-depends``) only when an interaction
between conditions (``stats.interaction``, or a Welch test of per-seed slopes) has an adjusted
interval excluding 0. With identical outcomes and a significant interaction, the outcome stands
and the text adds that the size of the effect depends on X; differing outcomes without a
significant interaction read "mixed": the conditions are not shown to differ.
"""

from __future__ import annotations

import dataclasses
import json
import math
import re
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field

from ..publish.markup import md_code, md_escape
from ..publish.numbers import fmt, fmt_level, fmt_p, quantity
from . import records as _records
from .records import OUTCOME_WORDS, ClaimRecord
from .sequential import check_looks, nominal_alpha, repeated_p
from .stats import Estimate, holm, seeds_for_power

__all__ = [
    "SUPPORTED",
    "OPPOSITE",
    "EQUIVALENT",
    "INCONCLUSIVE",
    "NOT_TESTABLE",
    "NOT_RUN",
    "OUTCOMES",
    "MIME_TYPE",
    "Verdict",
    "Family",
    "decide",
    "tost_interval",
    "within_delta",
    "judge",
    "not_testable",
    "not_run",
    "publish",
    "publish_value",
    "publish_values",
    "VALUE_MIME_TYPE",
]

SUPPORTED = "supported"
OPPOSITE = "opposite"
EQUIVALENT = "equivalent"
INCONCLUSIVE = "inconclusive"
NOT_TESTABLE = "not testable"
NOT_RUN = "not run"
OUTCOMES = (SUPPORTED, OPPOSITE, EQUIVALENT, INCONCLUSIVE, NOT_TESTABLE, NOT_RUN)
TESTED = (SUPPORTED, OPPOSITE, EQUIVALENT, INCONCLUSIVE)
DEPENDS = "depends"  # a what_to_do key: the advice when the verdict reads "depends on X"
MIME_TYPE = "application/vnd.vae-verdict+json"
VALUE_MIME_TYPE = "application/vnd.vae-value+json"  # a number a chapter states, for other pages
POWER = 0.8  # for seeds_needed and detectable
NAN = math.nan
_SLUG = re.compile(r"^[a-z0-9]+(-[a-z0-9]+)*$")


# ---------------------------------------------------------------------------------------------
# Deciding one effect


def _check_direction(direction) -> None:
    if direction not in (-1, 0, 1):
        raise ValueError(f"direction={direction!r} is not allowed; allowed: -1, 0, 1")


def _check_delta(delta) -> None:
    if delta is not None and not (isinstance(delta, int | float) and math.isfinite(delta) and delta > 0):
        raise ValueError(f"delta={delta!r} is not allowed; allowed: None or a finite number > 0 in the effect's units")


def decide(
    effect: Estimate,
    direction: int = 1,
    delta: float | None = None,
    level: float | None = None,
    p_adjusted: float | None = None,
    alpha: float = 0.05,
    shape: Estimate | None = None,
) -> str:
    """The outcome of one tested ``effect`` for a claim predicting effect > null (``direction``
    +1), < null (−1) or != null (0), judged with its interval at ``level`` (default: the
    effect's own) or, without an interval, by ``p_adjusted`` (default: its p) < ``alpha``.
    ``delta`` (> 0) is the smallest effect of interest; without it nothing is equivalent. An
    effect without a p-value gives ``not testable``; with a ``shape`` (a slope's bend) it must
    lie within ±Δ as well for ``equivalent``. See the module docstring for the rule."""
    _check_direction(direction)
    _check_delta(delta)
    if not effect.tested:
        return NOT_TESTABLE
    null = effect.null
    lev = effect.level if level is None else level
    if within_delta(effect, delta, lev) and (shape is None or within_delta(shape, delta, lev)):
        return EQUIVALENT
    if not effect.has_interval:
        p = effect.p if p_adjusted is None else p_adjusted
        if not p < alpha:
            return INCONCLUSIVE
        side = 1 if effect.estimate > null else -1 if effect.estimate < null else 0
        return SUPPORTED if direction in (0, side) else OPPOSITE
    e = effect if level is None else effect.at_level(level)
    above, below = e.low > null, e.high < null
    if (direction >= 0 and above) or (direction <= 0 and below):
        return SUPPORTED
    if above or below:
        return OPPOSITE
    return INCONCLUSIVE


def tost_interval(effect: Estimate, level: float) -> Estimate | None:
    """The effect's 1 − 2α' interval for α' = 1 − ``level``: two one-sided tests at α' each reject
    an effect of Δ or more exactly when it lies within ±Δ. None when there is none (no interval,
    or ``level`` <= 0.5)."""
    if not (effect.has_interval and level > 0.5):
        return None
    return effect.at_level(1 - 2 * (1 - level))


def within_delta(effect: Estimate, delta: float | None, level: float) -> bool:
    """True when two one-sided tests at 1 − ``level`` each show the effect lies within null ± Δ."""
    e = tost_interval(effect, level) if delta is not None else None
    return e is not None and e.null - delta <= e.low and e.high <= e.null + delta


def _exceeds(e: Estimate, direction: int, delta: float | None) -> bool | None:
    """Whether the (adjusted) interval lies wholly beyond Δ on the claimed side; None without
    an interval or Δ."""
    if delta is None or not e.has_interval:
        return None
    up, down = e.low > e.null + delta, e.high < e.null - delta
    return bool(up if direction > 0 else down if direction < 0 else up or down)


def _delta_on_test_scale(e: Estimate, delta: float) -> float:
    """Δ on the scale the test works on: log(1 + Δ/null) for a log-mean, else Δ."""
    return math.log1p(delta / e.null) if e.scale == "log" else delta


def _seeds_needed(e: Estimate, delta: float | None, alpha: float) -> int | None:
    if delta is None or e.kind == "" or not (math.isfinite(e.sd) and e.sd > 0) or not 0 < alpha < 1:
        return None
    return seeds_for_power(_delta_on_test_scale(e, delta), e.sd, alpha=alpha, power=POWER, kind=e.kind)


# ---------------------------------------------------------------------------------------------
# The verdict


def _n_words(n) -> str:
    if isinstance(n, tuple):
        return " and ".join(str(k) for k in n) if len(set(n)) > 1 else f"{n[0] if n else 0} per group"
    return str(n)


def _finite_or_none(x):
    if isinstance(x, float) and not math.isfinite(x):
        return None
    return x


@dataclass(frozen=True)
class Verdict:
    """A claim of the article and its outcome. Built by ``judge``, ``Family.finalize``,
    ``not_testable`` or ``not_run``; rendered by ``markdown()``, ``text``, ``to_dict()``."""

    id: str  # a slug, e.g. "bs-large-batch-gap": the glue key
    claim: str
    outcome: str  # one of OUTCOMES
    effect: Estimate | None = None  # the raw result (interval at its own level)
    direction: int = 1
    delta: float | None = None  # smallest effect of interest, in the effect's units
    scope: str = ""
    what_to_do: str | Mapping[str, str] = ""  # a line, or {outcome (or "depends"): line}
    reason: str = ""  # why (not testable / not run)
    chapter: str = ""
    anchor: str = ""  # the section label the verdict belongs to
    p_adjusted: float = NAN
    level_adjusted: float = NAN
    n: int | tuple[int, ...] | None = None
    seeds_needed: int | None = None
    detectable: float = NAN
    exceeds_delta: bool | None = None
    family_size: int = 1  # m, the number of tests Holm adjusted for
    alpha: float = 0.05
    condition: str = ""  # what the conditions vary, e.g. "the budget"
    conditions: Mapping[str, Verdict] = field(default_factory=dict)
    interactions: tuple[tuple[Estimate, float, float], ...] = ()  # (effect, p_adjusted, level)
    depends_on: str = ""  # X when an interaction between conditions is significant
    shape: Estimate | None = None  # a slope's bend (stats.bend), needed within ±Δ for equivalent
    unit: str = ""  # the unit of the effect and of Δ (the claim's record)
    topic: str = ""  # where the Recipe and the landing page list it (records.TOPICS)
    recipe: str = ""  # the lead of its Recipe line ("" : not in the Recipe)
    article: str = ""  # the article's sentence it tests (a row of the conclusion)
    headline: bool = False  # listed on the landing page
    repeats: str = ""  # the id of the claim it re-tests (the at-scale chapter)
    scope_record: Mapping = field(default_factory=dict)  # claims.scope.scope_of of the runs it judged
    looks: tuple[int, ...] = ()  # a group-sequential design's seed counts (claims.sequential); () : fixed seeds
    seeds_used: int | None = None  # the seeds of the look that decided it (or the last look)

    @property
    def condition_outcomes(self) -> dict[str, str]:
        return {k: v.outcome for k, v in self.conditions.items()}

    @property
    def adjusted(self) -> Estimate | None:
        """The effect with its interval at the Holm-adjusted level."""
        if self.effect is None or not math.isfinite(self.level_adjusted):
            return self.effect
        return self.effect.at_level(self.level_adjusted)

    @property
    def differs_by_condition(self) -> bool:
        """True when the tested conditions' outcomes differ."""
        return len({o for o in self.condition_outcomes.values() if o in TESTED}) > 1

    @property
    def label(self) -> str:
        """'depends on X' when the conditions' outcomes differ and the interaction is significant,
        'mixed' when they differ without it, else the outcome."""
        if self.differs_by_condition:
            return f"depends on {self.depends_on}" if self.depends_on else "mixed"
        return self.outcome

    @property
    def words(self) -> str:
        """The label as every page prints it (``records.OUTCOME_WORDS``)."""
        return OUTCOME_WORDS.get(self.label, self.label)

    @property
    def css_class(self) -> str:
        cls = f"verdict verdict-{self.outcome.replace(' ', '-')}"
        return cls + (" verdict-depends" if self.label.startswith("depends on") else "")

    @property
    def advice(self) -> str:
        """The what-to-do line for this outcome; under conditions whose outcomes differ, each
        condition's line for its own outcome (``records.advice``)."""
        w = self.what_to_do
        if not isinstance(w, Mapping):
            return w or _records.advice({}, self.outcome)
        return _records.advice(w, self.outcome, self.condition_outcomes, depends=self.label.startswith("depends"))

    @property
    def summary(self) -> str:
        """The outcome in plain words, one or two sentences (Markdown-free)."""
        return _summary(self)

    @property
    def text(self) -> str:
        """One plain sentence for tables: the label, the words and the adjusted effect."""
        head = self.words[0].upper() + self.words[1:]
        e = self.adjusted
        tail = f" [{e.name}: {e.format()}]" if e is not None and e.tested and not self.conditions else ""
        return f"{head}. {self.summary}{tail}"

    def markdown(self) -> str:
        """A MyST admonition (colon fences, so it can sit inside other directives)."""
        return _markdown(self)

    def to_dict(self) -> dict:
        """A JSON-ready summary; non-finite numbers become None."""
        return _to_dict(self)

    def to_json(self) -> str:
        return json.dumps(self.to_dict(), ensure_ascii=False, allow_nan=False)

    def __str__(self) -> str:
        return f"{self.id}: {self.text}"


def _magnitude(v: Verdict) -> str:
    e, u = v.adjusted, f" {v.effect.unit}" if v.effect and v.effect.unit else ""
    if v.delta is None or e is None or not e.has_interval:
        return ""
    d = quantity(v.delta, u.strip())
    if v.exceeds_delta:
        return f", by more than the threshold of {d}"
    return f", though possibly by less than the threshold of {d}"


def _seeds_words(v: Verdict) -> str:
    two = v.effect is not None and v.effect.kind in ("two-sample", "interaction")
    return "seeds per group" if two else "seeds"


def _summary(v: Verdict) -> str:
    if v.conditions:
        return _conditions_summary(v)
    e = v.adjusted
    claim = v.claim.rstrip(".")
    if v.outcome in (NOT_TESTABLE, NOT_RUN):
        return v.reason
    if v.outcome == SUPPORTED:
        if not e.has_interval:
            return f"{claim} (a p-value without an interval: the size of the effect is not established)."
        return f"{claim}{_magnitude(v)}."
    side = "above" if e.estimate > e.null else "below"
    if v.outcome == OPPOSITE:
        beyond = " by more than the threshold" if _exceeds(e, -v.direction, v.delta) else ""
        return f"The reverse holds: {e.name} lies {side} {fmt(e.null)}{beyond}."
    u = f" {e.unit}" if e.unit else ""
    if v.outcome == EQUIVALENT:
        head = f"No effect that matters: {e.name} lies within {fmt(e.null)} ± {quantity(v.delta, u.strip())}"
        head += ", and so does its bend (the curve is not a U either)" if v.shape is not None else ""
        if e.low > e.null or e.high < e.null:
            return f"{head}; a small effect below that threshold was detected: it lies {side} {fmt(e.null)}."
        return f"{head}."
    if v.shape is not None and e.has_interval and within_delta(v.effect, v.delta, v.level_adjusted):
        return (
            f"The slope lies within ± {quantity(v.delta, u.strip())}, but the curve may bend by more than that: a flat slope "
            f"is not no effect ({_shape_words(v)})."
        )
    if not e.has_interval:
        return "The p-value is not small enough, and without an interval the data cannot show that there is no effect."
    rng = f"both no effect and effects beyond ± {quantity(v.delta, u.strip())}" if v.delta else "no effect"
    cap = f" Still open at the design's cap of {v.seeds_used} seeds." if v.looks and v.seeds_used else ""
    return f"The data neither support nor rule out the claim: they allow {rng}.{cap}"


def _conditions_summary(v: Verdict) -> str:
    tested = {k: c.outcome for k, c in v.conditions.items()}
    parts = "; ".join(f"{k}: {OUTCOME_WORDS.get(c.outcome, c.outcome)}" for k, c in v.conditions.items())
    parts = _records.capitalized(parts)
    if not v.differs_by_condition:
        size = f" The size of the effect depends on {v.depends_on}." if v.depends_on else ""
        untested = [k for k, o in tested.items() if o not in TESTED]
        where = f" (not tested with {', '.join(untested)})" if untested and v.outcome in TESTED else ""
        return f"{parts}{where}.{size}"
    if v.depends_on:
        return f"{parts}; the difference between the conditions is significant."
    return f"{parts}; the conditions are not shown to differ, so overall {OUTCOME_WORDS[v.outcome]}."


def _unit(v: Verdict) -> str:
    """' nats' (with a leading space) from the verdict's effect or its first condition's; ''."""
    effects = [v.effect] if v.effect is not None else [c.effect for c in v.conditions.values()]
    return next((f" {e.unit}" for e in effects if e is not None and e.unit), f" {v.unit}" if v.unit else "")


def _numbers(v: Verdict) -> list[str]:
    """The dropdown's lines."""
    lines, e, u = [], v.adjusted, _unit(v)
    if v.conditions:
        lines += ["| Condition | Effect | Holm-adjusted p | Outcome |", "|---|---|---|---|"]
        for k, c in v.conditions.items():
            ce = c.adjusted
            eff = f"{ce.name} = {ce.format()}" if ce is not None and ce.tested else c.reason
            lines.append(f"| {k} | {eff} | {fmt_p(c.p_adjusted)} | {OUTCOME_WORDS.get(c.outcome, c.outcome)} |")
        lines.append("")
        for ie, ip, il in v.interactions:
            ia = ie.at_level(il) if math.isfinite(il) else ie
            p = f"Holm-adjusted p: {fmt_p(ip)}"
            lines.append(f"- **Interaction ({v.condition}):** {ia.name} = {ia.format()}, {p} ({ia.method})")
    elif e is not None and e.tested:
        lines.append(f"- **Effect:** {e.name} = {e.format()}")
        p_adj = f" (Holm-adjusted: {fmt_p(v.p_adjusted)})" if v.family_size > 1 else ""
        lines.append(f"- **p:** {fmt_p(e.p)}{p_adj}")
        lines += _tost_line(v)
    lines += _level_line(v)
    if v.delta is not None:
        lines.append(f"- **Smallest effect of interest (Δ):** {quantity(v.delta, u.strip())}")
    if v.n is not None:
        lines.append(f"- **n:** {_n_words(v.n)}")
    if math.isfinite(v.detectable):
        lines.append(f"- **Detectable at {POWER:.0%} power with this n:** {fmt(v.detectable, 2)}{u}")
    if v.looks and v.outcome in TESTED:
        lines.append(_look_line(v))
    elif v.seeds_needed and not v.looks:
        lines.append(
            f"- **A new experiment planned in advance** would need about {v.seeds_needed} {_seeds_words(v)} to detect "
            f"Δ {POWER:.0%} of the time (a normal-theory count; adding seeds to this one and looking again would "
            "raise its error rates)"
        )
    if e is not None and e.method:
        lines.append(f"- **Method:** {e.method}")
    if v.scope:
        lines.append(f"- **Scope:** {md_escape(v.scope)}")
    return lines


def _ordinal(k: int) -> str:
    return {1: "first", 2: "second", 3: "third", 4: "fourth", 5: "fifth"}.get(k, f"{k}th")


def _look_line(v: Verdict) -> str:
    """How many seeds the group-sequential design spent on the claim, and why it stopped there."""
    plan = " and ".join(
        [", ".join(map(str, v.looks[:-1])), str(v.looks[-1])] if len(v.looks) > 1 else [str(v.looks[0])]
    )
    k = v.looks.index(v.seeds_used) + 1 if v.seeds_used in v.looks else len(v.looks)
    if len(v.looks) == 1:
        return f"- **Seeds:** {v.seeds_used}, in one look"
    design = (
        f"the design looks at {plan} seeds and gives more seeds only to claims still open, each look testing at "
        f"Pocock's nominal level so that all the looks together keep the error rates"
    )
    if v.outcome == INCONCLUSIVE and k == len(v.looks):
        return f"- **Seeds:** still open at the design's cap of {v.seeds_used} seeds ({design})"
    if v.outcome == INCONCLUSIVE:  # closed undecided before the cap: ``add(final=True)``
        return (
            f"- **Seeds:** judged once, at the {_ordinal(k)} of {len(v.looks)} looks, with {v.seeds_used} seeds: more "
            f"seeds of this design would not narrow its interval ({design})"
        )
    return f"- **Seeds:** decided at the {_ordinal(k)} of {len(v.looks)} looks, with {v.seeds_used} seeds ({design})"


def _level_line(v: Verdict) -> list[str]:
    """Why an interval's level is not 95%: Holm's procedure over the chapter's tests."""
    levels = [c.level_adjusted for c in v.conditions.values()] or [v.level_adjusted]
    level = max((x for x in levels if math.isfinite(x)), default=NAN)
    if (v.family_size <= 1 and not v.looks) or not math.isfinite(level) or level == 1 - v.alpha:
        return []
    if v.looks:
        return [
            f"- **Why the interval is {fmt_level(level)}, not {fmt_level(1 - v.alpha)}:** the chapter makes "
            f"{v.family_size} tests and looks at the data up to {len(v.looks)} times; Holm's procedure and Pocock's "
            f"boundary widen each interval so that all of them together are wrong at most {fmt(v.alpha)} of the time"
        ]
    return [
        f"- **Why the interval is {fmt_level(level)}, not {fmt_level(1 - v.alpha)}:** the chapter makes "
        f"{v.family_size} tests; Holm's procedure widens each interval so that all of them together are wrong "
        f"at most {fmt(v.alpha)} of the time"
    ]


def _shape_words(v: Verdict) -> str:
    """'bend of …: 1.2 nats (90% CI 0.4 to 2.0)': the shape at its equivalence (1 − 2α') level."""
    t = tost_interval(v.shape, v.level_adjusted) if v.shape is not None else None
    return f"{v.shape.name}: {(t or v.shape).format()}" if v.shape is not None else ""


def _tost_line(v: Verdict) -> list[str]:
    """The equivalence test's line: the 1 − 2α' interval and whether it lies within ±Δ."""
    t = tost_interval(v.effect, v.level_adjusted) if v.delta is not None and v.effect is not None else None
    if t is None:
        return []
    inside = within_delta(v.effect, v.delta, v.level_adjusted)
    where = "lies within" if inside else "does not lie within"
    alpha = fmt(1 - v.level_adjusted, 2)
    lines = [f"- **Equivalence (two one-sided tests at {alpha} each):** {t.format()} {where} ±Δ"]
    if v.shape is not None:
        ok = "lies within" if within_delta(v.shape, v.delta, v.level_adjusted) else "is not shown to lie within"
        lines.append(f"- **Shape ({_shape_words(v)}):** {ok} ±Δ; a flat slope needs a flat curve too")
    return lines


def _markdown(v: Verdict) -> str:
    head = v.words[0].upper() + v.words[1:]
    body = [f"::::{{admonition}} {md_escape(v.claim)}", f":class: {v.css_class}", f":name: verdict-{v.id}", "",
            f"**{head}.** {v.summary}"]  # fmt: skip
    if v.advice:
        body += ["", f"**What to do:** {v.advice}"]
    numbers = _numbers(v)
    if numbers:
        body += ["", ":::{dropdown} The numbers behind this verdict", *numbers, ":::"]
    return "\n".join([*body, "::::", ""])


def _shape_dict(v: Verdict) -> dict | None:
    """The shape's record at its equivalence level (None without a shape)."""
    if v.shape is None:
        return None
    t = tost_interval(v.shape, v.level_adjusted) or v.shape
    d = {"name": t.name, "estimate": t.estimate, "low": t.low, "high": t.high, "level": t.level, "p": t.p}
    d = {k: _finite_or_none(float(x)) if isinstance(x, float) else x for k, x in d.items()}
    return d | {"within_delta": within_delta(v.shape, v.delta, v.level_adjusted)}


def _to_dict(v: Verdict) -> dict:
    e = v.adjusted
    get = lambda attr: getattr(e, attr) if e is not None else None
    d = {
        "id": v.id,
        "chapter": v.chapter,
        "claim": v.claim,
        "outcome": v.outcome,
        "label": v.label,
        "name": get("name"),
        "estimate": get("estimate"),
        "low": get("low"),
        "high": get("high"),
        "level": get("level"),
        "p": get("p"),
        "p_adjusted": v.p_adjusted,
        "null": get("null"),
        "direction": v.direction,
        "delta": v.delta,
        "n": list(v.n) if isinstance(v.n, tuple) else v.n,
        "detectable": v.detectable,
        "seeds_needed": v.seeds_needed,
        "exceeds_delta": v.exceeds_delta,
        "family_size": v.family_size,
        "scope": v.scope,
        "anchor": v.anchor,
        "what_to_do": v.advice,
        "reason": v.reason,
        "method": get("method"),
        "unit": get("unit"),
        "text": v.text,
        "condition": v.condition,
        "depends_on": v.depends_on,
        "condition_outcomes": v.condition_outcomes,
        "condition_order": list(v.conditions),  # a notebook's JSON sorts keys as text: the order is kept here
        "conditions": {k: c.to_dict() for k, c in v.conditions.items()},
        "shape": _shape_dict(v),
        "words": v.words,
        "topic": v.topic,
        "recipe": v.recipe,
        "article": v.article,
        "headline": v.headline,
        "repeats": v.repeats,
        "scope_record": dict(v.scope_record),
        "looks": list(v.looks),
        "seeds_used": v.seeds_used,
    }
    return {k: _finite_or_none(float(x) if hasattr(x, "dtype") else x) for k, x in d.items()}


# ---------------------------------------------------------------------------------------------
# Constructors


def judge(
    id: str,
    claim: str,
    effect: Estimate,
    direction: int = 1,
    delta: float | None = None,
    *,
    level: float | None = None,
    p_adjusted: float | None = None,
    family_size: int = 1,
    alpha: float = 0.05,
    shape: Estimate | None = None,
    **info,
) -> Verdict:
    """The verdict of one claim on one effect at ``level`` (default 1 − alpha) with its
    (adjusted) p; ``info`` sets scope, what_to_do, chapter, anchor. Use ``Family`` to judge a
    chapter's claims together under Holm."""
    _check_slug(id)
    _check_info(info)
    if effect is None or not effect.tested:
        why = (
            (effect.note or f"Too few finite values for a test (n = {_n_words(effect.n)}).")
            if effect is not None
            else "No measurement."
        )
        reason = info.pop("reason", "") or why
        n = effect.n if effect is not None else None
        return Verdict(
            id, claim, NOT_TESTABLE, effect, direction, delta, reason=reason, n=n, family_size=family_size, alpha=alpha,
            **info,
        )  # fmt: skip
    level = 1 - alpha if level is None else level
    p_adj = effect.p if p_adjusted is None else p_adjusted
    outcome = decide(effect, direction, delta, level, p_adj, alpha, shape)
    adj = effect.at_level(level)
    return Verdict(
        id, claim, outcome, effect, direction, delta, p_adjusted=p_adj, level_adjusted=level, n=effect.n,
        seeds_needed=_seeds_needed(effect, delta, 1 - level) if outcome == INCONCLUSIVE else None,
        detectable=adj.detectable(alpha=1 - level, power=POWER),
        exceeds_delta=_exceeds(adj, direction, delta) if outcome == SUPPORTED else None,
        family_size=family_size, alpha=alpha, shape=shape, **info,
    )  # fmt: skip


def not_testable(id: str, claim: str, reason: str, **info) -> Verdict:
    """A claim this setup cannot measure; ``reason`` says why (one or two sentences)."""
    _check_slug(id)
    _check_info(info)
    if not reason:
        raise ValueError("reason='' is not allowed; allowed: a sentence saying why the claim cannot be tested")
    return Verdict(id, claim, NOT_TESTABLE, reason=reason, **info)


def not_run(id: str, claim: str, parameter: str, value, **info) -> Verdict:
    """A claim whose experiment this build's parameters left out (a reader's or the smoke grid)."""
    _check_slug(id)
    _check_info(info)
    reason = (
        f"{md_code(value)} is not in the parameter {md_code(parameter)} of this build; add it to run this experiment."
    )
    return Verdict(id, claim, NOT_RUN, reason=reason, **info)


_INFO = ("scope", "what_to_do", "reason", "chapter", "anchor")


def _check_info(info: dict) -> None:
    """The descriptive fields a caller may set, and what_to_do's keys."""
    bad = sorted(set(info) - set(_INFO))
    if bad:
        raise ValueError(f"{bad[0]}={info[bad[0]]!r} is not allowed; allowed keywords: {', '.join(_INFO)}")
    w = info.get("what_to_do", "")
    if isinstance(w, Mapping) and set(w) - {*OUTCOMES, DEPENDS}:
        keys = sorted(set(w) - {*OUTCOMES, DEPENDS})
        raise ValueError(
            f"what_to_do key {keys[0]!r} is not allowed; allowed: {', '.join(map(repr, (*OUTCOMES, DEPENDS)))}"
        )


def _check_slug(id) -> None:
    if not (isinstance(id, str) and _SLUG.match(id)):
        raise ValueError(f"id={id!r} is not allowed; allowed: a slug of lowercase letters, digits and single hyphens")


# ---------------------------------------------------------------------------------------------
# A chapter's family of claims


@dataclass
class _Claim:
    record: ClaimRecord
    effect: Estimate | Mapping[str, Estimate]
    scope: Mapping
    interactions: tuple[Estimate, ...] = ()
    shape: Estimate | Mapping[str, Estimate] | None = None

    @property
    def id(self) -> str:
        return self.record.id


def _record_fields(r: ClaimRecord, scope: Mapping) -> dict:
    """The Verdict fields a claim's record and its runs give."""
    return dict(
        claim=r.claim, direction=r.direction, delta=r.delta, what_to_do=dict(r.what_to_do), anchor=r.anchor,
        unit=r.unit, topic=r.topic, recipe=r.recipe, article=r.article, headline=r.headline, repeats=r.repeats,
        condition=r.condition, scope=scope.get("text", ""), scope_record=dict(scope),
    )  # fmt: skip


class Family:
    """One chapter's claims, judged together. The claims are declared in the chapter's table
    (``claims.records``: wording, direction, Δ, what to do, where); the chapter hands each claim its
    estimate with ``add(id, estimate, runs=...)`` (or one estimate per condition), marks the ones it
    could not test with ``not_testable`` / ``not_run``, and ``finalize`` applies Holm across every
    tested effect and decides each outcome. A declared claim left without a verdict is an error, so
    every claim of the table gets a box."""

    def __init__(
        self,
        chapter: str,
        alpha: float = 0.05,
        records: Sequence[ClaimRecord] | None = None,
        looks: Sequence[int] | None = None,
    ):
        self.chapter, self.alpha = chapter, alpha
        declared = _records.load(chapter) if records is None else records
        self.records = {r.id: dataclasses.replace(r, chapter=r.chapter or chapter) for r in declared}
        self._items: list[_Claim | Verdict] = []
        self._final: dict[str, Verdict] | None = None
        self.plan: tuple[int, ...] = check_looks(looks) if looks is not None else ()  # the looks' seed counts
        self._frozen: dict[str, Verdict] = {}  # claims decided at an earlier look: their verdicts, kept
        self._final_ids: set[str] = set()  # claims whose verdict at this look is final (``add(final=True)``)
        self._seeds_now: int | None = None  # the seeds of the look under way

    # -- group-sequential seeds (claims.sequential) ----------------------------------------------

    def looks(self, seeds: Sequence[int]):
        """Yield the seeds of each look (``seeds[:n]`` for n in the design's looks; the last look
        takes all of ``seeds`` when there are fewer than the cap) while a claim is open. Between
        two yields the chapter trains the open claims' runs and calls ``add`` for its claims; after
        each look the claims it decided are kept (a later ``add`` for them is ignored) and the rest
        stay open; after the last look every claim is final."""
        if not self.plan:
            raise ValueError("looks() is not allowed without a design; allowed: Family(..., looks=(5, 10, 20))")
        seeds = list(seeds)
        self.plan = check_looks([n for n in self.plan if n < len(seeds)] + [min(self.plan[-1], len(seeds))])
        for k, n in enumerate(self.plan):
            self._seeds_now = n
            self._items = [it for it in self._items if it.id in self._frozen]  # the open claims start afresh
            self._final = None
            yield seeds[:n]
            self._close_look(final=k == len(self.plan) - 1)
            if not self.open:
                return

    def _close_look(self, final: bool) -> None:
        """Keep the verdicts this look decided (all of them at the last look)."""
        for v in self.finalize():
            if v.id not in self._frozen and (final or v.id in self._final_ids or _decided(v, self._items)):
                self._frozen[v.id] = v

    @property
    def open(self) -> tuple[str, ...]:
        """The declared claims no look has decided yet (all of them before the first look)."""
        return tuple(i for i in self.records if i not in self._frozen)

    def is_open(self, id: str) -> bool:
        """Whether claim ``id`` still needs runs (it is declared and no look has decided it)."""
        return self.record(id).id not in self._frozen

    def record(self, id: str) -> ClaimRecord:
        if id not in self.records:
            raise ValueError(f"id={id!r} is not declared in the claims table of {self.chapter}; allowed: "
                             f"{', '.join(self.records) or 'none'} (declare it in {_records.TABLES.name}/{self.chapter}.yaml)")  # fmt: skip
        return self.records[id]

    def _append(self, item) -> None:
        if item.id in {it.id for it in self._items}:
            raise ValueError(f"id={item.id!r} is already in this family; allowed: a new id")
        self._items.append(item)
        self._final = None

    def add(
        self,
        id: str,
        effect: Estimate | Mapping[str, Estimate],
        *,
        runs=None,
        tuned_on=None,
        interaction: Estimate | Sequence[Estimate] | None = None,
        shape: Estimate | Mapping[str, Estimate] | None = None,
        final: bool = False,
    ) -> None:
        """Hand claim ``id`` its estimate: an Estimate, or {condition: Estimate} when the record names
        a ``condition`` (what they vary); ``interaction`` (optional) tests whether the effect differs
        between them. ``runs``: the runs it judged (a frame or frames of ``sweep`` rows), from which its
        scope is computed; ``tuned_on``: the seeds its settings were tuned on. ``shape``: a slope's
        ``stats.bend`` (or one per condition), which must lie within ±Δ for "no effect that matters".
        ``final``: more seeds of the design would not narrow this claim's interval (it rests on
        measurements the looks do not add), so its verdict at this look is final, whatever it is."""
        from ..publish.scope import scope_of

        r = self.record(id)
        if id in self._frozen:  # decided at an earlier look: its verdict stands
            return
        if isinstance(effect, Mapping):
            if not effect or not r.condition:
                raise ValueError(
                    f"effect={{...{len(effect)} conditions}} for {id!r} is not allowed; allowed: at least one "
                    f"condition, and a `condition` (what they vary) in its record (now {r.condition!r})"
                )
            effect = {k: effect[k] for k in _records.natural_order(list(effect))}
        elif interaction is not None:
            raise ValueError("interaction is not allowed with a single effect; allowed: with {condition: effect}")
        inter = (
            () if interaction is None else (interaction,) if isinstance(interaction, Estimate) else tuple(interaction)
        )
        scope = scope_of(runs, tuned_on=tuned_on) if runs is not None else {}
        self._append(_Claim(r, effect, scope, inter, shape))
        if final:
            self._final_ids.add(id)

    def not_testable(self, id: str, reason: str, runs=None) -> Verdict:
        """Claim ``id`` could not be tested here; ``reason`` says why (one or two sentences)."""
        from ..publish.scope import scope_of

        scope = scope_of(runs) if runs is not None else {}
        r = self.record(id)
        if id in self._frozen:
            return self._frozen[id]
        v = not_testable(id, r.claim, reason)
        return self._include(dataclasses.replace(v, **_record_fields(r, scope)))

    def not_run(self, id: str, parameter: str, value) -> Verdict:
        """This build's ``parameter`` left out the ``value`` claim ``id`` needs."""
        r = self.record(id)
        if id in self._frozen:
            return self._frozen[id]
        v = not_run(id, r.claim, parameter, value)
        return self._include(dataclasses.replace(v, **_record_fields(r, {})))

    def _include(self, verdict: Verdict) -> Verdict:
        verdict = dataclasses.replace(verdict, chapter=self.chapter, family_size=1)
        self._append(verdict)
        return verdict

    def _tests(self) -> list[tuple[int, str, Estimate]]:
        """(item index, key, effect) of every effect that enters Holm, in order."""
        out = []
        for i, it in enumerate(self._items):
            if isinstance(it, _Claim):
                effects = it.effect.items() if isinstance(it.effect, Mapping) else [("", it.effect)]
                out += [(i, k, e) for k, e in effects]
                out += [(i, f"interaction {j}", e) for j, e in enumerate(it.interactions)]
        return out

    def finalize(self, alpha: float | None = None) -> list[Verdict]:
        """Holm across the family's tested effects, then every outcome; returns the verdicts in the
        order of the chapter's table (also kept: ``family[id]``)."""
        missing = [i for i in self.records if i not in {it.id for it in self._items}]
        if missing:
            raise ValueError(f"claim {missing[0]!r} of {self.chapter} got no estimate; allowed: every declared "
                             "claim gets add(), not_testable() or not_run() before finalize()")  # fmt: skip
        alpha = self.alpha if alpha is None else alpha
        tests = self._tests()
        h = holm([repeated_p(e.p, self.plan or (1,)) for _, _, e in tests], alpha)  # Holm on the looks' scale
        m = int(sum(math.isfinite(e.p) for _, _, e in tests))
        adj = {(i, k): (float(p), self._nominal(lev)) for (i, k, _), p, lev in zip(tests, h.p_adjusted, h.level, strict=True)}  # fmt: skip
        final = {}
        for i, it in enumerate(self._items):
            if it.id in self._frozen or isinstance(it, Verdict):
                final[it.id] = self._frozen.get(it.id, it)
                continue
            info = _record_fields(it.record, it.scope)
            common = dict(family_size=max(m, 1), alpha=alpha, chapter=self.chapter)
            if not isinstance(it.effect, Mapping):
                p, lev = adj[(i, "")]
                v = judge(it.id, it.record.claim, it.effect, it.record.direction, it.record.delta, level=lev,
                          p_adjusted=p, shape=it.shape, **common)  # fmt: skip
                final[it.id] = dataclasses.replace(v, **info)
                continue
            final[it.id] = self._combine(i, it, adj, common, info)
        if self.plan:  # how many seeds each open claim has had so far
            final = {k: v if k in self._frozen else dataclasses.replace(v, looks=self.plan, seeds_used=self._seeds_now)
                     for k, v in final.items()}  # fmt: skip
        self._final = {k: final[k] for k in self.records if k in final}
        return list(self._final.values())

    def _nominal(self, level: float) -> float:
        """The confidence level a look tests at for Holm's ``level``: Pocock's nominal level of a
        design over this family's looks with α = 1 − level (``level`` itself with one look)."""
        if len(self.plan) <= 1 or not math.isfinite(level):
            return float(level)
        return 1 - nominal_alpha(1 - float(level), self.plan)

    def _combine(self, i: int, it: _Claim, adj: dict, common: dict, info: dict) -> Verdict:
        """The verdict of a claim under several conditions (rule: module docstring)."""
        r, conds = it.record, {}
        for k, e in it.effect.items():
            p, lev = adj[(i, k)]
            sub_id = f"{it.id}-{re.sub(r'[^a-z0-9]+', '-', k.lower()).strip('-') or 'condition'}"
            shape = it.shape.get(k) if isinstance(it.shape, Mapping) else it.shape
            conds[k] = judge(sub_id, f"{r.claim} ({k})", e, r.direction, r.delta, level=lev, p_adjusted=p,
                             shape=shape, **common)  # fmt: skip
        inters = []
        for j, e in enumerate(it.interactions):
            p, lev = adj[(i, f"interaction {j}")]
            inters.append((e, p, lev))
        significant = any(decide(e, 0, None, lev, p, common["alpha"]) == SUPPORTED for e, p, lev in inters if e.tested)
        tested = {c.outcome for c in conds.values() if c.outcome in TESTED}
        if not tested:
            overall = NOT_RUN if all(c.outcome == NOT_RUN for c in conds.values()) else NOT_TESTABLE
        else:
            overall = tested.pop() if len(tested) == 1 else INCONCLUSIVE
        reason = "; ".join(f"{k}: {c.reason}" for k, c in conds.items() if c.reason) if not tested else ""
        return Verdict(
            it.id, r.claim, overall, None, reason=reason, conditions=conds, interactions=tuple(inters),
            depends_on=r.condition if significant else "", **common, **{k: v for k, v in info.items() if k != "claim"},
        )  # fmt: skip

    @property
    def verdicts(self) -> list[Verdict]:
        if self._final is None:
            self.finalize()
        return list(self._final.values())

    def __getitem__(self, id: str) -> Verdict:
        for v in self.verdicts:
            if v.id == id:
                return v
        raise KeyError(f"id={id!r} is not in this family; allowed: one of {[v.id for v in self.verdicts]}")

    def publish(self, show: bool = True) -> list[Verdict]:
        """``publish`` every verdict (finalizing first if needed), and its one-line summary as the value
        ``<id>-short`` (for a chapter's "In short" box: ``{glue:text}`<id>-short```)."""
        out = [publish(v, show=show) for v in self.verdicts]
        for v in out:
            publish_value(f"{v.id}-short", f"{v.words[0].upper()}{v.words[1:]}. {v.summary}", chapter=self.chapter,
                          anchor=v.anchor)  # fmt: skip
        return out


def _decided(v: Verdict, items) -> bool:
    """A look decides a claim when each of its conditions is supported, opposite or no effect
    that matters (and conditions that differ do so significantly), or when the chapter said it
    cannot be tested or was not run; an effect too thin to test stays open."""
    if any(isinstance(it, Verdict) and it.id == v.id for it in items):
        return True
    outcomes = [c.outcome for c in v.conditions.values()] or [v.outcome]
    done = all(o in (SUPPORTED, OPPOSITE, EQUIVALENT) for o in outcomes)
    return done and (not v.differs_by_condition or bool(v.depends_on))


# ---------------------------------------------------------------------------------------------
# Publishing from a notebook


class _VerdictJSON:
    """A display object whose only rich representation is the verdict's JSON under MIME_TYPE."""

    def __init__(self, data: dict, text: str):
        self.data, self.text = data, text

    def _repr_mimebundle_(self, include=None, exclude=None):
        return {MIME_TYPE: self.data, "text/plain": self.text}


def publish(verdict: Verdict, show: bool = True) -> Verdict:
    """In a notebook: glue the verdict's MyST Markdown under its id and its JSON under
    '<id>-json' (mime type application/vnd.vae-verdict+json, for the book driver), and display
    the Markdown when ``show`` (so a notebook run by plain papermill shows the verdict)."""
    from IPython.display import Markdown, display
    from myst_nb import glue

    md = verdict.markdown()
    glue(verdict.id, Markdown(md), display=False)
    glue(f"{verdict.id}-json", _VerdictJSON(verdict.to_dict(), verdict.text), display=False)
    if show:
        display(Markdown(md))
    return verdict


def publish_value(
    id: str, text: str, value: float | None = None, *, chapter: str = "", anchor: str | None = None
) -> str:
    """In a notebook: glue a measured quantity a page states (the chapter pastes it with
    ``{glue:text}`<id>```) and its record (mime type application/vnd.vae-value+json), which the book
    driver offers to hand-written pages (the recipe, the landing page) as ``{{ q_<id> }}``, so those
    pages never type a number the data might change. Returns ``text``."""
    from myst_nb import glue

    if not isinstance(id, str) or not _SLUG.match(id):
        raise ValueError(f"id={id!r} is not allowed; allowed: lower-case words joined by '-' (e.g. 'lr-best')")
    if not isinstance(text, str) or not text.strip():
        raise ValueError(f"text={text!r} is not allowed; allowed: the quantity as the page should print it")
    record = {"id": id, "text": text, "value": _finite_or_none(value), "chapter": chapter, "anchor": anchor}
    glue(id, text, display=False)
    glue(f"{id}-value", _ValueJSON(record, text), display=False)
    return text


class _ValueJSON(_VerdictJSON):
    def _repr_mimebundle_(self, include=None, exclude=None):
        return {VALUE_MIME_TYPE: self.data, "text/plain": self.text}


def _words(value) -> str:
    """A value as a page prints it: numbers by ``fmt`` (integers with thousands separators), an
    Estimate with its interval, a list as '64 and 128' / '16 to 512', text as it is."""
    from ..publish.scope import span

    if isinstance(value, str):
        return value
    if isinstance(value, Estimate):
        return value.format()
    if isinstance(value, bool) or value is None:
        raise ValueError(f"value={value!r} is not allowed; allowed: text, a number, an estimate or a list")
    if isinstance(value, int) or (hasattr(value, "dtype") and "int" in str(value.dtype)):
        return f"{int(value):,}"
    if isinstance(value, Sequence):
        return span(list(value))
    return fmt(float(value))


def publish_values(prefix: str, values: Mapping[str, object], chapter: str = "") -> None:
    """In a notebook: ``publish_value`` each of ``values`` as ``<prefix>-<key>``, written for people
    (``_words``), with the number kept in its record when there is one."""
    for key, value in values.items():
        number = float(value) if isinstance(value, int | float) and not isinstance(value, bool) else None
        publish_value(f"{prefix}-{key}", _words(value), number, chapter=chapter)
