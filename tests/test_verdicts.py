"""vae_utils.claims.verdicts: the six outcomes on hand-made effects, Holm across a chapter's family,
claims under several conditions ("depends on X" only with a significant interaction), the MyST
rendering (parsed with MyST's own Markdown parser), the JSON and the notebook glue."""

import json
import math
import subprocess
import sys

import numpy as np
import pandas as pd
import pytest
from scipy import stats

from vae_utils.claims import stats as S
from vae_utils.claims import verdicts as V
from vae_utils.claims.records import OUTCOME_WORDS, ClaimRecord
from vae_utils.publish.scope import scope_of


def est(estimate, se=0.5, df=18.0, null=0.0, sd=1.0, n=(10, 10), kind="two-sample", name="effect", unit="nats"):
    """A hand-made t-based Estimate: 95% interval estimate ± t(0.975, df) se, two-sided p against null."""
    half = stats.t.ppf(0.975, df) * se
    p = 2 * stats.t.sf(abs(estimate - null) / se, df)
    return S.Estimate(name, estimate, estimate - half, estimate + half, p, null, n, sd, 0.95, "t-test", unit, se, df,
                      kind=kind)  # fmt: skip


def record(id, claim="Claim", direction=1, delta=0.5, **kw):
    """A claim's record as a chapter's table would declare it (defaults for the fields a test leaves out)."""
    kw = {"unit": "nats", "anchor": id, "topic": "batch size", "what_to_do": {"supported": "Act on it."}} | kw
    return ClaimRecord(id=id, claim=claim, direction=direction, delta=delta, **kw)


def runs(seeds=10, batch_sizes=(16, 256)):
    """Sweep rows (run configs) of digits runs: what a chapter hands ``add`` as ``runs``."""
    return pd.DataFrame([dict(dataset="digits", batch_size=b, epochs=30, seed=s) for b in batch_sizes
                         for s in range(seeds)])  # fmt: skip


def p_only(estimate, p, name="Spearman rho"):
    """A result with a p-value and no interval (a permutation trend)."""
    return S.Estimate(name, estimate, math.nan, math.nan, p, 0.0, 30, method="Spearman rho, permutation test")


# ---------------------------------------------------------------------------------------------
# One effect


@pytest.mark.parametrize(
    ("effect", "direction", "delta", "outcome"),
    [
        (est(2.0), 1, 0.5, V.SUPPORTED),  # 95% CI about [0.95, 3.05]: above 0, the claimed side
        (est(2.0), -1, 0.5, V.OPPOSITE),  # the same interval against a claim of "lower"
        (est(-2.0), 0, 0.5, V.SUPPORTED),  # "differs": either side will do
        (est(0.05, se=0.1), 1, 0.5, V.EQUIVALENT),  # about [−0.16, 0.26], inside ±0.5
        (est(0.3, se=0.5), 1, 0.5, V.INCONCLUSIVE),  # about [−0.75, 1.35]: contains 0 and reaches past 0.5
        (est(0.05, se=0.1), 1, None, V.INCONCLUSIVE),  # no Δ: nothing can be equivalent
        (est(0.2, se=0.04), 1, 0.5, V.EQUIVALENT),  # [0.12, 0.28]: real, but inside ±Δ: no effect that matters
        (est(0.1, se=0.22), 1, 0.5, V.EQUIVALENT),  # 95% CI reaches 0.56, the 90% one (TOST at 5%) 0.48
    ],
)
def test_decide_gives_each_outcome_on_hand_made_intervals(effect, direction, delta, outcome):
    """The rule of the module docstring, case by case (intervals at 95%)."""
    assert V.decide(effect, direction, delta) == outcome


def test_decide_at_a_stricter_level_can_turn_supported_into_inconclusive():
    """An effect whose 95% interval just excludes 0 (p ≈ 0.03) contains 0 at 99.5%."""
    e = est(1.2)
    assert 0.01 < e.p < 0.05
    assert V.decide(e, 1, 2.0) == V.SUPPORTED
    assert V.decide(e, 1, 2.0, level=0.995) == V.INCONCLUSIVE


def test_decide_without_an_interval_uses_the_adjusted_p_and_the_sign_and_never_says_equivalent():
    """A permutation trend: p < alpha gives supported or opposite by the sign; otherwise inconclusive,
    even when the estimate is tiny and Δ is given."""
    assert V.decide(p_only(-0.6, 0.01), -1) == V.SUPPORTED
    assert V.decide(p_only(-0.6, 0.01), 1) == V.OPPOSITE
    assert V.decide(p_only(-0.6, 0.01), 1, p_adjusted=0.08) == V.INCONCLUSIVE
    assert V.decide(p_only(0.01, 0.9), 1, delta=0.3) == V.INCONCLUSIVE


def test_decide_refuses_a_bad_direction_or_delta():
    """direction must be −1, 0 or 1; delta None or > 0: ValueError naming the value."""
    with pytest.raises(ValueError, match=r"direction=2 is not allowed; allowed: -1, 0, 1"):
        V.decide(est(1.0), 2)
    with pytest.raises(ValueError, match=r"delta=-0.5 is not allowed"):
        V.decide(est(1.0), 1, -0.5)


def test_judge_marks_whether_a_supported_effect_exceeds_delta():
    """exceeds_delta is True when the whole interval lies beyond Δ on the claimed side, False when
    not; the text says 'by more than' or 'possibly by less than'. An effect shown to lie within ±Δ
    is no effect that matters, and the text says a small effect was detected, and which way."""
    big, edge, small = est(-2.0, se=0.3), est(-1.0, se=0.4), est(-0.2, se=0.04)
    v_big, v_edge, v_small = (V.judge("x", "Larger batches are worse", e, -1, 0.5) for e in (big, edge, small))
    assert (v_big.exceeds_delta, v_edge.exceeds_delta) == (True, False)
    assert "by more than the threshold of 0.5 nats" in v_big.summary
    assert "possibly by less than" in v_edge.summary
    assert v_small.outcome == V.EQUIVALENT and v_small.summary.startswith("No effect that matters")
    assert "a small effect below that threshold was detected: it lies below 0" in v_small.summary
    plain = V.judge("x", "Larger batches are worse", est(0.02, se=0.04), -1, 0.5)
    assert plain.outcome == V.EQUIVALENT and "detected" not in plain.summary


def test_equivalence_is_two_one_sided_tests_at_the_holm_level():
    """At an adjusted level 1 − α' the equivalence interval is the 1 − 2α' one (two one-sided tests
    at α' each): at level 0.99 the 98% interval. The numbers say so."""
    e = est(0.1, se=0.15)
    t98 = e.at_level(0.98)
    assert V.tost_interval(e, 0.99).low == pytest.approx(t98.low)
    inside = t98.low >= -0.5 and t98.high <= 0.5
    assert inside and V.within_delta(e, 0.5, 0.99)
    assert not V.within_delta(e, 0.3, 0.99) and not V.within_delta(e, None, 0.99)
    v = V.judge("x", "A", e, 1, 0.5, level=0.99)
    assert v.outcome == V.EQUIVALENT and "two one-sided tests at 0.01 each" in v.markdown()


def test_an_inconclusive_claim_says_what_a_new_design_would_need_never_to_add_seeds_and_look_again():
    """seeds_needed = seeds_for_power(Δ, observed sd, alpha = 1 − level, 80%, kind); detectable is
    the smallest effect this se and df detect at 80%: for se = sd·sqrt(2/n), df = 2n − 2 it equals
    detectable_effect(n, sd)."""
    e = est(0.3, se=0.8 * math.sqrt(2 / 10), df=18.0, sd=0.8)
    v = V.judge("x", "Adam beats SGD", e, 1, 0.5)
    assert v.outcome == V.INCONCLUSIVE
    assert v.seeds_needed == S.seeds_for_power(0.5, 0.8, alpha=0.05, power=0.8, kind="two-sample")
    assert v.detectable == pytest.approx(S.detectable_effect(10, 0.8, alpha=0.05, power=0.8))
    assert "seeds" not in v.summary and v.advice == "Treat the claim as open."  # no invitation to look again
    assert f"would need about {v.seeds_needed} seeds per group" in v.markdown() and "planned in advance" in v.markdown()


def test_judge_of_an_effect_with_too_few_values_is_not_testable_and_says_why():
    """One finite value per group: no p, so not testable, with the group sizes in the reason."""
    v = V.judge("x", "Claim", S.welch([1.0], [2.0, np.nan]), 1, 0.5)
    assert v.outcome == V.NOT_TESTABLE and "Too few finite values" in v.reason and "1 per group" in v.reason


def test_not_testable_and_not_run_constructors_carry_their_reason():
    """not_testable needs a reason; not_run names the parameter and the value left out."""
    a = V.not_testable("bs-flat-minima", "Large batches find sharp minima", "Sharpness is not measured here.")
    b = V.not_run("bs-lars", "LARS rescues large batches", parameter="optimizers", value="lars")
    assert (a.outcome, b.outcome) == (V.NOT_TESTABLE, V.NOT_RUN)
    assert "`lars` is not in the parameter `optimizers`" in b.reason
    with pytest.raises(ValueError, match=r"reason='' is not allowed"):
        V.not_testable("x", "Claim", "")
    with pytest.raises(ValueError, match=r"id='Bad Id' is not allowed; allowed: a slug"):
        V.not_run("Bad Id", "Claim", "optimizers", "lars")


# ---------------------------------------------------------------------------------------------
# A family


def test_family_judges_every_tested_effect_at_its_holm_level():
    """Three effects: the verdicts' p_adjusted and level_adjusted are stats.holm's; not-run and
    not-testable verdicts do not count in m. The scope is the runs' own; the verdicts come in the
    order of the chapter's table, whatever the order of the calls."""
    effects = [est(1.6), est(1.3), est(0.4)]
    recs = [record(f"c-{i}") for i in range(3)] + [record("c-lars"), record("c-sharp")]
    fam = V.Family("04_batch_size", records=recs)
    fam.not_testable("c-sharp", "Not measured.")
    for i, e in enumerate(effects):
        fam.add(f"c-{i}", e, runs=runs())
    fam.not_run("c-lars", "optimizers", "lars")
    out = {v.id: v for v in fam.finalize()}
    h = S.holm([e.p for e in effects])
    for i in range(3):
        v = out[f"c-{i}"]
        assert v.p_adjusted == pytest.approx(h.p_adjusted[i]) and v.level_adjusted == pytest.approx(h.level[i])
        assert v.family_size == 3 and v.chapter == "04_batch_size" and v.scope == scope_of(runs())["text"]
        assert v.outcome == V.decide(effects[i], 1, 0.5, level=h.level[i])
    assert out["c-lars"].outcome == V.NOT_RUN and out["c-lars"].chapter == "04_batch_size"
    assert out["c-sharp"].outcome == V.NOT_TESTABLE and out["c-sharp"].reason == "Not measured."
    assert [v.id for v in fam.verdicts] == ["c-0", "c-1", "c-2", "c-lars", "c-sharp"]


def test_a_verdict_takes_its_claim_direction_delta_and_advice_from_the_record():
    """What the table declares is what the box says: the chapter passes only the estimate."""
    r = record("bs-gap", "Larger batches are worse", -1, 0.25, anchor="bs-sec", what_to_do={"supported": "Go small."})
    fam = V.Family("04_batch_size", records=[r])
    fam.add("bs-gap", est(-2.0, se=0.3))
    v = fam["bs-gap"]
    assert (v.claim, v.direction, v.delta, v.anchor, v.unit) == ("Larger batches are worse", -1, 0.25, "bs-sec", "nats")
    assert v.outcome == V.SUPPORTED and v.advice == "Go small." and v.scope == ""


def test_family_multiplicity_turns_a_marginal_effect_inconclusive():
    """Alone at 95%, p ≈ 0.03 is supported; among five tests whose others are all tiny-p, Holm
    still judges it at 1 − 0.05/1 and it stays supported; among five null-ish ones it is judged at
    1 − 0.05/5 and becomes inconclusive."""
    marginal = est(1.15)
    assert 0.02 < marginal.p < 0.05
    strong = V.Family("ch", records=[record("m", delta=2.0)] + [record(f"s-{i}", delta=2.0) for i in range(4)])
    strong.add("m", marginal)
    for i in range(4):
        strong.add(f"s-{i}", est(5.0))
    assert strong["m"].outcome == V.SUPPORTED and strong["m"].level_adjusted == pytest.approx(0.95)
    weak = V.Family("ch", records=[record("m", delta=2.0)] + [record(f"w-{i}", delta=2.0) for i in range(4)])
    weak.add("m", marginal)
    for i in range(4):
        weak.add(f"w-{i}", est(0.1))
    assert weak["m"].outcome == V.INCONCLUSIVE and weak["m"].level_adjusted == pytest.approx(0.99)


def test_family_refuses_duplicate_ids_and_an_interaction_without_conditions():
    """Every id once per family; an interaction needs {condition: effect}; conditions need a
    `condition` (what they vary) in the claim's record."""
    fam = V.Family("ch", records=[record("a"), record("b"), record("c")])
    fam.add("a", est(1.0))
    with pytest.raises(ValueError, match=r"id='a' is already in this family"):
        fam.add("a", est(1.0))
    with pytest.raises(ValueError, match=r"interaction is not allowed with a single effect"):
        fam.add("b", est(1.0), interaction=est(0.1))
    with pytest.raises(ValueError, match=r"for 'c' is not allowed; allowed: at least one condition, and a `condition`"):
        fam.add("c", {"fixed epochs": est(1.0)})
    one = V.Family("ch", records=[record("a")])
    one.add("a", est(1.0))
    with pytest.raises(KeyError, match=r"id='zzz' is not in this family"):
        one["zzz"]


def test_unknown_keywords_and_what_to_do_keys_are_refused_by_name():
    """A misspelt keyword (scpoe) or an advice key that is no outcome: ValueError naming it. A
    Family takes no claim wording, direction or advice from the chapter: the table holds them."""
    with pytest.raises(ValueError, match=r"scpoe='x' is not allowed; allowed keywords: scope, what_to_do"):
        V.judge("a", "A", est(1.0), scpoe="x")
    with pytest.raises(ValueError, match=r"what_to_do key 'not supported' is not allowed; allowed: 'supported'"):
        V.judge("a", "A", est(1.0), what_to_do={"not supported": "?"})
    with pytest.raises(TypeError, match=r"what_to_do"):
        V.Family("ch", records=[record("a")]).add("a", est(1.0), what_to_do={"supported": "?"})


def _budget_family(epochs, updates, interaction=None):
    r = record(
        "bs-gap",
        "Larger batches reach a worse test ELBO",
        direction=-1,
        delta=0.5,
        condition="the budget",
        what_to_do={"supported": "Keep batches small.", "depends": "Fix the number of updates, not epochs."},
    )
    fam = V.Family("04_batch_size", records=[r])
    fam.add("bs-gap", {"fixed epochs": epochs, "fixed updates": updates}, interaction=interaction)
    return fam["bs-gap"], fam


def test_conditions_with_the_same_outcome_give_that_outcome():
    """Supported under both budgets, no interaction given: supported; each condition's own outcome kept."""
    v, _ = _budget_family(est(-2.0, se=0.3), est(-1.8, se=0.3))
    assert v.outcome == V.SUPPORTED and v.label == V.SUPPORTED and not v.depends_on
    assert v.condition_outcomes == {"fixed epochs": V.SUPPORTED, "fixed updates": V.SUPPORTED}
    assert v.advice == "Keep batches small."
    assert v.conditions["fixed epochs"].id == "bs-gap-fixed-epochs"


def test_conditions_are_ordered_by_the_number_in_their_names():
    """'batch 16' before 'batch 128' whatever the order given; names without numbers keep theirs."""
    r = record("bs-x", condition="the batch size")
    fam = V.Family("ch", records=[r, record("bs-y", condition="the budget")])
    fam.add("bs-x", {"batch 128": est(1.0), "batch 16": est(2.0), "batch 1.5×10³": est(3.0), "batch 32": est(1.5)})
    fam.add("bs-y", {"fixed updates": est(1.0), "fixed epochs": est(2.0)})
    assert list(fam["bs-x"].conditions) == ["batch 16", "batch 32", "batch 128", "batch 1.5×10³"]
    assert list(fam["bs-y"].conditions) == ["fixed updates", "fixed epochs"]
    fam = V.Family("ch", records=[record("k", condition="k"), record("b", condition="β")])
    fam.add("k", {"top-10": est(1.0), "top-5": est(1.0)})  # a hyphen after a word is no minus sign
    fam.add("b", {"β 1": est(1.0), "β −1": est(1.0), "β 0.5": est(1.0)})
    assert list(fam["k"].conditions) == ["top-5", "top-10"] and list(fam["b"].conditions) == ["β −1", "β 0.5", "β 1"]


def test_differing_outcomes_with_a_significant_interaction_depend_on_the_condition():
    """Supported with fixed epochs, equivalent with fixed updates, and the gaps differ (interaction
    interval excludes 0 after Holm over the three tests): 'depends on the budget'. The advice is the
    table's 'depends' line, then each condition's line for its own outcome."""
    v, _fam = _budget_family(est(-2.0, se=0.3), est(0.0, se=0.1), interaction=est(-2.0, se=0.3))
    assert v.condition_outcomes == {"fixed epochs": V.SUPPORTED, "fixed updates": V.EQUIVALENT}
    assert v.depends_on == "the budget" and v.label == "depends on the budget" and v.words == v.label
    assert v.outcome == V.INCONCLUSIVE and v.family_size == 3
    assert "verdict-depends" in v.css_class
    assert v.advice == (
        "Fix the number of updates, not epochs. Fixed epochs: Keep batches small. Fixed updates: no effect that matters."
    )
    assert "the difference between the conditions is significant" in v.summary
    assert "**Depends on the budget.** Fixed epochs: supported; fixed updates: no effect that matters;" in v.markdown()


def test_differing_outcomes_without_a_significant_interaction_are_mixed_not_depends():
    """Supported with fixed epochs, inconclusive with fixed updates, the interaction interval
    contains 0: overall inconclusive, labelled 'mixed', and the text says the conditions are not
    shown to differ; the box is not styled as 'depends'."""
    v, _ = _budget_family(est(-1.5, se=0.4), est(-0.9, se=0.6), interaction=est(-0.6, se=0.7))
    assert v.condition_outcomes == {"fixed epochs": V.SUPPORTED, "fixed updates": V.INCONCLUSIVE}
    assert v.outcome == V.INCONCLUSIVE and v.label == "mixed" and v.words == "mixed" and not v.depends_on
    assert v.summary == (
        "Fixed epochs: supported; fixed updates: inconclusive; the conditions are not shown to differ, "
        "so overall inconclusive."
    )
    assert v.markdown().count("**Mixed.** Fixed epochs: supported") == 1 and v.text.startswith("Mixed. ")
    assert "verdict-depends" not in v.css_class and "verdict-inconclusive" in v.css_class
    assert v.advice == "Fixed epochs: Keep batches small. Fixed updates: Treat the claim as open."


def test_same_outcome_with_a_significant_interaction_keeps_it_and_notes_the_size():
    """Supported under both, with a much larger gap under one: supported; the size depends on X."""
    v, _ = _budget_family(est(-4.0, se=0.3), est(-1.0, se=0.2), interaction=est(-3.0, se=0.35))
    assert v.outcome == V.SUPPORTED and v.label == V.SUPPORTED and v.depends_on == "the budget"
    assert "The size of the effect depends on the budget" in v.summary
    assert v.advice == "Keep batches small." and "verdict-depends" not in v.css_class


def test_untested_conditions_are_listed_but_left_out_of_the_overall_outcome():
    """One budget without finite values (not testable): the other's outcome stands, noted; none
    tested gives not testable."""
    v, _ = _budget_family(est(-2.0, se=0.3), S.welch([], []))
    assert v.outcome == V.SUPPORTED and "not tested with fixed updates" in v.summary
    v2, _ = _budget_family(S.welch([], []), S.welch([1.0], [2.0]))
    assert v2.outcome == V.NOT_TESTABLE and "fixed epochs:" in v2.reason


# ---------------------------------------------------------------------------------------------
# Rendering


def _colon_fences(md: str):
    """The colon-fence tokens of MyST's own parser (colon_fence on, as in _config.yml)."""
    from markdown_it.renderer import RendererHTML
    from myst_parser.config.main import MdParserConfig
    from myst_parser.parsers.mdit import create_md_parser

    parser = create_md_parser(MdParserConfig(enable_extensions={"colon_fence"}), RendererHTML)
    return [t for t in parser.parse(md) if t.type == "colon_fence"]


def _supported():
    recs = [
        record(
            "bs-gap", "Larger batches reach a worse test ELBO", -1, 0.5, what_to_do={"supported": "Keep batches small."}
        ),
        record("bs-other", "Other"),
    ]
    fam = V.Family("04_batch_size", records=recs)
    e = est(-1.6612, se=0.13, name="test ELBO(256) − test ELBO(16)")
    fam.add("bs-gap", e, runs=runs())
    fam.add("bs-other", est(3.0))
    return fam["bs-gap"]


def test_markdown_is_an_admonition_with_the_outcome_class_and_a_nested_numbers_dropdown():
    """MyST's parser sees one admonition titled by the claim, with the outcome's CSS class, whose body
    holds the outcome in words, the what-to-do line and a dropdown with the numbers (with a line saying
    why the interval is not 95%, and the scope of the runs). The effect
    (se 0.13, df 18) has the smaller p of two, so Holm judges it at 97.5%: half-width
    t(0.9875, 18) · 0.13 = 2.4450 · 0.13 = 0.318, rounded to two significant digits."""
    md = _supported().markdown()
    fences = _colon_fences(md)
    assert len(fences) == 1 and fences[0].info == "{admonition} Larger batches reach a worse test ELBO"
    body = fences[0].content
    assert body.startswith(":class: verdict verdict-supported\n")
    assert "**Supported.** Larger batches reach a worse test ELBO, by more than the threshold of 0.5 nats." in body
    assert "**What to do:** Keep batches small." in body
    inner = _colon_fences(body.split("\n", 1)[1])
    assert len(inner) == 1 and inner[0].info.startswith("{dropdown}")
    assert "- **Effect:** test ELBO(256) − test ELBO(16) = −1.66 nats (97.5% CI −1.98 to −1.34)" in inner[0].content
    why = "- **Why the interval is 97.5%, not 95%:** the chapter makes 2 tests; Holm's procedure widens each interval"
    assert why in inner[0].content and "- **Scope:** digits (1,257 training images" in inner[0].content


@pytest.mark.parametrize(
    ("verdict", "css"),
    [
        (V.judge("a", "A", est(2.0), 1, 0.5), "verdict-supported"),
        (V.judge("a", "A", est(2.0), -1, 0.5), "verdict-opposite"),
        (V.judge("a", "A", est(0.0, se=0.1), 1, 0.5), "verdict-equivalent"),
        (V.judge("a", "A", est(0.3), 1, 0.5), "verdict-inconclusive"),
        (V.not_testable("a", "A", "Not measured."), "verdict-not-testable"),
        (V.not_run("a", "A", "optimizers", "lars"), "verdict-not-run"),
    ],
)
def test_every_outcome_renders_with_its_css_class_and_plain_text(verdict, css):
    """Six outcomes, six classes; the text is one Markdown-free line starting with the outcome's words
    for a reader (records.OUTCOME_WORDS), and so does the box."""
    words = OUTCOME_WORDS[verdict.outcome]
    assert f":class: verdict {css}\n" in verdict.markdown()
    assert len(_colon_fences(verdict.markdown())) == 1
    assert "\n" not in verdict.text and "**" not in verdict.text
    assert verdict.text.lower().startswith(words) and verdict.words == words
    assert f"**{words[0].upper()}{words[1:]}.** " in verdict.markdown()


def test_what_to_do_can_be_chosen_per_outcome():
    """A dict {outcome: line}: the line for the decided outcome (none for others)."""
    advice = {"supported": "Use Adam.", "opposite": "Use SGD."}
    assert V.judge("a", "A", est(2.0), 1, 0.5, what_to_do=advice).advice == "Use Adam."
    assert V.judge("a", "A", est(2.0), -1, 0.5, what_to_do=advice).advice == "Use SGD."
    v = V.judge("a", "A", est(0.0, se=0.1), 1, 0.5, what_to_do=advice)
    assert v.advice == "" and "What to do" not in v.markdown()


def test_to_dict_is_json_with_null_for_non_finite_numbers():
    """The machine-readable verdict: the required keys, the adjusted interval, NaN as null."""
    d = json.loads(_supported().to_json())
    required = {"id", "chapter", "claim", "outcome", "estimate", "low", "high", "level", "p", "p_adjusted", "delta",
                "n", "scope", "anchor", "what_to_do", "method", "unit"}  # fmt: skip
    assert required <= set(d)
    assert d["outcome"] == "supported" and d["n"] == [10, 10] and d["level"] == pytest.approx(0.975)
    assert d["low"] == pytest.approx(-1.6612 - stats.t.ppf(1 - 0.025 / 2, 18) * 0.13)
    nr = json.loads(V.not_run("bs-lars", "LARS helps", "optimizers", "lars").to_json())
    assert nr["estimate"] is None and nr["p_adjusted"] is None and nr["outcome"] == "not run"
    v, _ = _budget_family(est(-2.0, se=0.3), est(0.0, se=0.1), interaction=est(-2.0, se=0.3))
    d = json.loads(v.to_json())
    assert d["label"] == "depends on the budget" and d["conditions"]["fixed updates"]["outcome"] == "equivalent"


def test_publish_glues_markdown_and_json_and_displays_the_verdict(monkeypatch):
    """publish: glue <id> as text/markdown and <id>-json as application/vnd.vae-verdict+json (both
    hidden, with myst_nb's papermill prefix), then display the Markdown unless show=False."""
    import IPython.display
    import myst_nb.ext.glue as glue_mod

    glued, shown = [], []
    monkeypatch.setattr(glue_mod, "ipy_display", lambda data, raw, metadata: glued.append((data, metadata)))
    monkeypatch.setattr(IPython.display, "display", lambda obj: shown.append(obj))
    v = _supported()
    assert V.publish(v) is v
    prefix = "application/papermill.record/"
    (md_data, md_meta), (js_data, js_meta) = glued
    assert md_meta["scrapbook"]["name"] == "bs-gap" and md_data[prefix + "text/markdown"] == v.markdown()
    assert js_meta["scrapbook"]["name"] == "bs-gap-json"
    assert js_data[prefix + V.MIME_TYPE]["outcome"] == "supported"
    assert len(shown) == 1 and shown[0].data == v.markdown()
    V.publish(v, show=False)
    assert len(shown) == 1 and len(glued) == 4


@pytest.mark.slow
def test_the_verdict_modules_do_not_import_tensorflow():
    """stats and verdicts work in the book driver and in tests without TensorFlow's start-up."""
    code = "import sys, vae_utils.claims.stats, vae_utils.claims.verdicts; sys.exit('tensorflow' in sys.modules)"
    assert subprocess.run([sys.executable, "-c", code], check=False).returncode == 0


def test_an_inconclusive_claim_already_powered_for_delta_does_not_ask_for_more_seeds():
    """sd 0.35, 10 per group: se = 0.157, 95% CI 0.28 ± 0.33 contains 0, the 90% one 0.28 ± 0.27
    passes Δ = 0.5, yet d = 0.5/0.35 = 1.4 needs fewer than 10 per group: the box neither promises that
    more seeds settle it nor asks for them (re-running with more seeds is a second look)."""
    e = est(0.28, se=0.35 * math.sqrt(0.2), df=18.0, sd=0.35, n=(10, 10))
    v = V.judge("x", "A", e, 1, 0.5)
    assert v.outcome == V.INCONCLUSIVE and v.seeds_needed == S.seeds_for_power(0.5, 0.35) <= 10
    assert "settle" not in v.markdown() and "more seeds" not in v.markdown()


def _verdict_notebook(path):
    """A one-cell notebook whose outputs are what Family.publish() leaves in a executed notebook
    (myst_nb's glue and IPython's display recorded instead of sent to a kernel)."""
    import IPython.display
    import myst_nb.ext.glue as glue_mod
    import nbformat

    outs = []
    keep = lambda data, metadata=None: outs.append(
        nbformat.v4.new_output("display_data", data=data, metadata=metadata or {})
    )
    mp = pytest.MonkeyPatch()
    mp.setattr(glue_mod, "ipy_display", lambda data, raw, metadata: keep(data, metadata))
    mp.setattr(IPython.display, "display", lambda obj: keep({"text/markdown": obj.data, "text/plain": "<Markdown>"}))
    try:
        recs = [
            record(
                "bs-gap",
                "Larger batches reach a worse test ELBO",
                -1,
                0.5,
                what_to_do={"supported": "Keep them small."},
            ),
            record("bs-budget", "Larger batches are worse", -1, 0.5, condition="the budget"),
        ]
        fam = V.Family("t", records=recs)
        fam.add("bs-gap", est(-1.6, se=0.13), runs=runs())
        fam.add("bs-budget", {"fixed epochs": est(-2.0, se=0.3), "fixed updates": est(0.0, se=0.1)},
                interaction=est(-2.0, se=0.3))  # fmt: skip
        fam.publish()
    finally:
        mp.undo()
    cell = nbformat.v4.new_code_cell("fam.publish()", metadata={"tags": ["remove-output"]})
    cell.outputs = outs
    text = "# Verdicts\n\n:::{glue:md} bs-gap\n:format: myst\n:::\n\n```{glue} bs-budget\n```\n"
    nb = nbformat.v4.new_notebook(cells=[nbformat.v4.new_markdown_cell(text), cell])
    nb.metadata["kernelspec"] = {"name": "python3", "display_name": "Python 3", "language": "python"}
    nbformat.write(nb, path / "index.ipynb")


@pytest.mark.slow
def test_glued_verdicts_render_as_admonitions_with_a_dropdown_in_a_myst_nb_page(tmp_path):
    """A one-page Sphinx build with the book's settings (myst_nb, sphinx_design, colon_fence,
    nb_render_markdown_format = myst; no execution): both `{glue:md}` with `:format: myst` and the
    plain `{glue}` directive paste an admonition with the outcome's classes and a dropdown, from a
    cell tagged remove-output."""
    _verdict_notebook(tmp_path)
    (tmp_path / "conf.py").write_text(
        'extensions = ["myst_nb", "sphinx_design"]\nmyst_enable_extensions = ["colon_fence"]\n'
        'nb_execution_mode = "off"\nnb_render_markdown_format = "myst"\nhtml_theme = "alabaster"\n'
    )
    out = tmp_path / "_build"
    run = subprocess.run([sys.executable, "-m", "sphinx", "-q", "-b", "html", str(tmp_path), str(out)],
                         capture_output=True, text=True, check=False)  # fmt: skip
    assert run.returncode == 0, run.stderr
    assert "WARNING" not in run.stderr.replace("document isn't included in any toctree", ""), run.stderr
    html = (out / "index.html").read_text()
    assert '<div class="verdict verdict-supported admonition"' in html
    assert '<div class="verdict verdict-inconclusive verdict-depends admonition"' in html
    assert html.count("sd-dropdown") >= 2 and "{admonition}" not in html and "{dropdown}" not in html


# ---------------------------------------------------------------------------------------------
# A flat slope is not no effect


def _inverted_u(seeds=10, swing=1.25, sd=0.3, seed=0):
    """Test ELBO over batch 16…512 (6 doublings' worth of levels): an inverted U peaking 'swing' nats
    above its ends in the middle, flat slope, per-seed noise sd."""
    import pandas as pd

    rng = np.random.default_rng(seed)
    u = np.arange(6)  # log2(batch / 16)
    curve = swing * (1 - ((u - 2.5) / 2.5) ** 2)
    rows = [
        dict(seed=s, batch_size=16 * 2**k, test_elbo=-25 + curve[k] + sd * rng.standard_normal())
        for s in range(seeds)
        for k in u
    ]
    return pd.DataFrame(rows)


def test_an_inverted_u_with_a_flat_slope_is_not_no_effect():
    """The per-doubling slope of an inverted U of 1.25 nats lies within ±0.5 (equivalent on its own), but
    the bend (middle minus the line through the ends) is about 1.2 nats: with the shape the claim is
    not 'no effect that matters', and the text says why."""
    df = _inverted_u()
    slope = S.per_seed_slope(df, "batch_size", "test_elbo", logx=True, unit="nats")
    shape = S.bend(df, "batch_size", "test_elbo", logx=True, unit="nats")
    assert V.decide(slope, -1, 0.5) == V.EQUIVALENT  # what the slope alone would say
    assert 0.9 < shape.estimate < 1.5 and shape.low > 0.5
    fam = V.Family("04_batch_size", records=[record("bs-gap", "Larger batches are worse", -1, 0.5)])
    fam.add("bs-gap", slope, shape=shape)
    v = fam.finalize()[0]
    assert v.outcome == V.INCONCLUSIVE and "a flat slope is not no effect" in v.summary
    assert "is not shown to lie within ±Δ" in v.markdown() and v.to_dict()["shape"]["within_delta"] is False
    json.dumps(v.to_dict(), allow_nan=False)


def test_a_flat_curve_with_a_flat_slope_is_no_effect_that_matters():
    """No swing: slope and bend both within ±0.5 nats, so equivalent, and the text says the curve is flat too."""
    df = _inverted_u(swing=0.0, sd=0.1)
    slope = S.per_seed_slope(df, "batch_size", "test_elbo", logx=True, unit="nats")
    shape = S.bend(df, "batch_size", "test_elbo", logx=True, unit="nats")
    v = V.judge("bs-gap", "Larger batches are worse", slope, -1, 0.5, shape=shape)
    assert v.outcome == V.EQUIVALENT and "its bend" in v.summary and v.to_dict()["shape"]["within_delta"]


def test_the_bend_of_a_straight_line_is_zero_whatever_its_slope():
    """y = 2 log2(x) + seed noise-free offsets: every seed's bend is 0 (no spread: no interval, p = 1)."""
    import pandas as pd

    df = pd.DataFrame([dict(seed=s, b=b, y=2 * math.log2(b) + s) for s in range(5) for b in (16, 32, 64, 128)])
    e = S.bend(df, "b", "y", logx=True)
    assert e.estimate == pytest.approx(0.0, abs=1e-12) and e.p == pytest.approx(1.0) and not e.has_interval
