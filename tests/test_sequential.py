"""Group-sequential seeds (claims/sequential.py and Family(looks=...)): Pocock's boundary against
the published table and a Monte Carlo estimate, the looks' bookkeeping, and simulations of whole
families that keep the error rates of the issue (no effect: "supported"/"opposite" at most 5 % of
builds; an effect of exactly Δ: "no effect that matters" at most 5 %)."""

from __future__ import annotations

import math

import numpy as np
import pytest
from scipy import stats as sps

from vae_utils.claims import sequential, stats, verdicts
from vae_utils.claims.records import ClaimRecord

LOOKS = (5, 10, 20)


def record(id="c1", direction=1, delta=0.5):
    return ClaimRecord(id=id, claim=f"Claim {id}", direction=direction, delta=delta, unit="nats", anchor="a",
                       topic="batch", what_to_do={"supported": "Do it."})  # fmt: skip


# --- the boundary ----------------------------------------------------------------------------


@pytest.mark.parametrize(("k", "c"), [(2, 2.178), (3, 2.289), (4, 2.361), (5, 2.413)])
def test_pocock_constants_match_jennison_and_turnbull_table_2_1(k, c):
    nominal = sequential.nominal_alpha(0.05, tuple(range(1, k + 1)))
    assert sps.norm.isf(nominal / 2) == pytest.approx(c, abs=6e-4)


def test_the_crossing_probability_of_unequal_looks_matches_a_monte_carlo_estimate():
    rng = np.random.default_rng(0)
    fracs, c, n = sequential.fractions(LOOKS), 2.3, 400_000
    steps = np.diff((0.0, *fracs))
    w = np.cumsum(rng.standard_normal((n, len(fracs))) * np.sqrt(steps), axis=1)
    mc = np.mean((np.abs(w / np.sqrt(fracs)) >= c).any(axis=1))
    se = math.sqrt(mc * (1 - mc) / n)
    assert sequential.crossing_probability(c, fracs) == pytest.approx(mc, abs=4 * se)


def test_one_look_is_the_plain_test_and_more_looks_test_each_at_a_lower_level():
    assert sequential.nominal_alpha(0.05, (10,)) == pytest.approx(0.05)
    three = sequential.nominal_alpha(0.05, LOOKS)
    assert 0.05 / 3 < three < 0.05


def test_the_repeated_p_value_is_the_inverse_of_the_nominal_level():
    for a in (0.05, 0.01, 0.05 / 7):
        assert sequential.repeated_p(sequential.nominal_alpha(a, LOOKS), LOOKS) == pytest.approx(a, rel=1e-4)
    assert math.isnan(sequential.repeated_p(math.nan, LOOKS))


@pytest.mark.parametrize("looks", [(), (10, 5), (5, 5), (0, 10), [5.0, 10.0], "5"])
def test_looks_that_are_not_increasing_positive_counts_are_refused_by_name(looks):
    with pytest.raises(ValueError, match="looks="):
        sequential.check_looks(looks)


# --- the family's looks ------------------------------------------------------------------------


def run_family(effects, sd=1.0, rng=None, records=None, looks=LOOKS):
    """One simulated chapter: claim i's per-seed effect is Normal(effects[i], sd); each look adds
    seeds to the open claims only. Returns the final verdicts and the seeds each claim took."""
    records = records or [record(f"c{i}") for i in range(len(effects))]
    fam = verdicts.Family("sim", records=records, looks=looks)
    draws = rng.normal(np.asarray(effects)[:, None], sd, (len(effects), looks[-1]))
    for seeds in fam.looks(range(looks[-1])):
        for i, r in enumerate(records):
            fam.add(r.id, stats.one_sample(draws[i, seeds], unit="nats"))
    return fam.verdicts


def test_a_clear_effect_is_decided_at_the_first_look_and_its_box_says_so():
    fam = verdicts.Family("sim", records=[record("big"), record("none")], looks=LOOKS)
    rng = np.random.default_rng(1)
    seen = []
    for seeds in fam.looks(range(20)):
        seen.append(len(seeds))
        fam.add("big", stats.one_sample(rng.normal(5.0, 1.0, len(seeds)), unit="nats"))
        fam.add("none", stats.one_sample(rng.normal(0.25, 1.0, len(seeds)), unit="nats"))
        if len(seeds) == 5:
            assert not fam.is_open("big") or fam.is_open("none")
    v = fam["big"]
    assert seen[0] == 5 and v.outcome == "supported" and v.seeds_used == 5
    assert "decided at the first of 3 looks, with 5 seeds" in v.markdown()
    assert fam["none"].seeds_used in (10, 20)


def test_add_of_a_claim_decided_earlier_keeps_its_verdict():
    fam = verdicts.Family("sim", records=[record("a"), record("b")], looks=LOOKS)
    for seeds in fam.looks(range(20)):
        a = stats.one_sample(np.linspace(9, 11, len(seeds)) if len(seeds) == 5 else -np.ones(len(seeds)))
        fam.add("a", a)
        fam.add("b", stats.one_sample(np.sin(np.arange(len(seeds))) * 3))
    assert fam["a"].outcome == "supported" and fam["a"].seeds_used == 5


def test_a_claim_open_at_the_cap_says_it_is_still_open_after_its_seeds():
    fam = verdicts.Family("sim", records=[record("a", delta=0.01)], looks=LOOKS)
    for seeds in fam.looks(range(20)):
        fam.add("a", stats.one_sample(np.sin(np.arange(len(seeds)) + 0.3) * 3))
    v = fam["a"]
    assert v.outcome == "inconclusive" and v.seeds_used == 20
    assert "still open at the design's cap of 20 seeds" in v.markdown()
    assert v.to_dict()["looks"] == [5, 10, 20] and v.to_dict()["seeds_used"] == 20


def test_a_claim_more_seeds_cannot_decide_is_judged_once_and_gets_no_more_seeds():
    fam = verdicts.Family("sim", records=[record("fixed", delta=0.01), record("open", delta=0.01)], looks=LOOKS)
    for seeds in fam.looks(range(20)):
        wobble = stats.one_sample(np.sin(np.arange(len(seeds)) + 0.3) * 3)
        fam.add("fixed", wobble, final=True)
        fam.add("open", wobble)
    assert fam["fixed"].outcome == "inconclusive" and fam["fixed"].seeds_used == 5
    assert "judged once, at the first of 3 looks, with 5 seeds: more seeds of this design" in fam["fixed"].markdown()
    assert fam["open"].seeds_used == 20


def test_fewer_seeds_than_the_cap_make_the_last_look_all_of_them():
    fam = verdicts.Family("sim", records=[record("a", delta=0.01)], looks=LOOKS)
    sizes = [len(s) for s in fam.looks(range(12)) if fam.add("a", stats.one_sample(np.sin(np.arange(len(s))))) is None]
    assert sizes == [5, 10, 12] and fam.plan == (5, 10, 12)


def test_looks_without_a_design_are_refused():
    with pytest.raises(ValueError, match="looks"):
        next(verdicts.Family("sim", records=[record("a")]).looks(range(10)))


# --- error rates, by simulation (the acceptance) --------------------------------------


REPS = 1000  # builds per simulation: 3 standard errors of a 5 % rate are 2.1 points


def _rate(hits: int) -> tuple[float, float]:
    return hits / REPS, 3 * math.sqrt(0.05 * 0.95 / REPS)


@pytest.mark.slow
def test_no_effect_reads_supported_or_opposite_in_at_most_5_percent_of_builds_over_all_looks():
    rng = np.random.default_rng(2)
    hits = 0
    for _ in range(REPS):
        out = run_family([0.0, 0.0, 0.0], rng=rng)
        hits += any(v.outcome in ("supported", "opposite") for v in out)
    rate, tol = _rate(hits)
    assert rate <= 0.05 + tol


@pytest.mark.slow
def test_an_effect_of_exactly_delta_reads_no_effect_that_matters_in_at_most_5_percent_of_builds():
    rng = np.random.default_rng(3)
    hits = 0
    for _ in range(REPS):
        out = run_family([0.5, -0.5, 2.0], rng=rng)  # two claims at ±Δ, one clearly decided (frees Holm's α)
        hits += any(v.outcome == "equivalent" for v in out[:2])
    rate, tol = _rate(hits)
    assert rate <= 0.05 + tol


def test_looking_three_times_without_the_boundary_would_break_the_error_rate():
    """The positive control: the same looks, each at the plain 5 % level, exceed 5 % by far."""
    rng = np.random.default_rng(4)
    hits = 0
    for _ in range(REPS):
        x = rng.normal(0, 1, 20)
        hits += any(sps.ttest_1samp(x[:n], 0).pvalue < 0.05 for n in LOOKS)
    assert hits / REPS > 0.08


def test_the_design_spends_fewer_seeds_than_a_fixed_twenty_when_effects_are_clear_or_absent():
    rng = np.random.default_rng(5)
    used = [v.seeds_used for _ in range(200) for v in run_family([2.0, 0.0], sd=1.0, rng=rng)]
    assert np.mean(used) < 15


def test_one_look_and_an_untested_claim_get_no_words_about_stopping():
    one = verdicts.Family("sim", records=[record("a"), record("b")], looks=(2,))
    for seeds in one.looks(range(2)):
        one.add("a", stats.one_sample(np.array([1.0, 1.2])[: len(seeds)]))
        one.add("b", stats.one_sample(np.array([1.0])))  # one value: not testable
    assert "**Seeds:** 2, in one look" in one["a"].markdown()
    assert "Seeds:" not in one["b"].markdown() and one["b"].outcome == "not testable"
