"""vae_utils.claims.optimizers, the analyses of chapter 07, on hand-made sweep rows: each result is
checked against a recomputation with NumPy/SciPy/pandas written here, not with the module's helpers."""

import math

import numpy as np
import pandas as pd
import pytest
from scipy import stats

from vae_utils.claims import optimizers as O
from vae_utils.claims import verdicts as V
from vae_utils.claims.optimizers import DEFAULT, TUNED
from vae_utils.claims.stats import Estimate

SEEDS = list(range(6))
DEFAULTS = {"sgd": 0.01, "adam": 0.001, "adamw": 0.001}
TUNED_RATES = {"sgd": 0.128, "adam": 0.004, "adamw": 0.004}
MEANS = {  # test ELBO by (optimizer, rate): the defaults far apart, the tuned rates close
    ("sgd", 0.01): -40.0, ("adam", 0.001): -31.0, ("adamw", 0.001): -31.2,
    ("sgd", 0.128): -30.6, ("adam", 0.004): -30.0, ("adamw", 0.004): -29.7,
}  # fmt: skip


def _runs(cells, seeds=SEEDS, broke=()) -> pd.DataFrame:
    """One row per (optimizer, rate, seed): test ELBO = the cell's mean + a seed effect + noise; the
    (optimizer, rate, seed) in ``broke`` diverged (status "diverged", NaN metrics)."""
    rng = np.random.default_rng(7)
    seed_effect = rng.normal(0, 0.5, len(seeds))
    rows = []
    for (o, lr), mean in cells.items():
        for i, s in enumerate(seeds):
            bad = (o, lr, s) in broke
            elbo = math.nan if bad else mean + seed_effect[i] + rng.normal(0, 0.2)
            rows.append(dict(run_id=f"{o}-{lr}-{s}", dataset="digits", optimizer=o, learning_rate=lr, seed=s,
                             batch_size=64, epochs=30, status="diverged" if bad else "ok", test_elbo=elbo,
                             val_elbo=elbo, test_nll=elbo))  # fmt: skip
    return pd.DataFrame(rows)


@pytest.fixture
def comparison():
    evaluation = _runs(MEANS)
    rates = {DEFAULT: dict(DEFAULTS), TUNED: dict(TUNED_RATES)}
    return evaluation, O.compare(evaluation, rates, floor=-45.0)


def test_the_tuning_grid_adds_each_optimizers_default_rate_to_the_shared_grid_once():
    grid = O.tuning_grid({"epochs": 30}, {"sgd": 0.01, "adam": 0.001}, [0.001, 0.016], [1000])
    assert [g["optimizer"] for g in grid] == ["sgd", "adam"]
    assert grid[0]["learning_rate"] == [0.001, 0.01, 0.016]
    assert grid[1]["learning_rate"] == [0.001, 0.016]
    assert all(g["epochs"] == 30 and g["seed"] == [1000] for g in grid)


def test_settings_leave_out_an_optimizer_whose_every_rate_broke():
    tuned = pd.DataFrame({"optimizer": ["sgd", "adam"], "learning_rate": [None, 0.004]})
    s = O.settings({"sgd": 0.01, "adam": 0.001}, tuned)
    assert s == {DEFAULT: {"sgd": 0.01, "adam": 0.001}, TUNED: {"adam": 0.004}}


def test_compare_splits_the_runs_by_setting_and_a_shared_rate_belongs_to_both():
    cells = {("sgd", 0.01): -40.0, ("adam", 0.001): -31.0}
    evaluation = _runs(cells, broke={("sgd", 0.01, 2)})
    c = O.compare(evaluation, {DEFAULT: {"sgd": 0.01, "adam": 0.001}, TUNED: {"sgd": 0.01, "adam": 0.001}}, -45.0)
    assert len(c.runs[DEFAULT]) == len(c.runs[TUNED]) == len(evaluation)
    assert len(c.of(None)) == len(evaluation), "each run once over both settings"
    assert c.test[TUNED].loc[2, "sgd"] == -45.0, "a run that broke down is drawn at the floor"
    assert math.isnan(c.outcome[TUNED].loc[2, "sgd"]), "and compared as a divergence"
    expected = evaluation.pivot_table(index="seed", columns="optimizer", values="test_elbo")
    pd.testing.assert_series_equal(c.test[DEFAULT]["adam"], expected["adam"], check_names=False)


def test_differ_is_a_one_way_anova_per_setting_and_of_the_gains_from_tuning(comparison):
    evaluation, c = comparison
    f, gains = O.differ(c)
    for setting, rates in ((DEFAULT, DEFAULTS), (TUNED, TUNED_RATES)):
        groups = [
            evaluation[(evaluation.optimizer == o) & (evaluation.learning_rate == lr)].test_elbo
            for o, lr in rates.items()
        ]
        ref = stats.f_oneway(*groups)
        assert f[setting].estimate == pytest.approx(ref.statistic)
        assert f[setting].p == pytest.approx(ref.pvalue)
    by = {
        o: evaluation[(evaluation.optimizer == o) & (evaluation.learning_rate == TUNED_RATES[o])].test_elbo.to_numpy()
        - evaluation[(evaluation.optimizer == o) & (evaluation.learning_rate == DEFAULTS[o])].test_elbo.to_numpy()
        for o in DEFAULTS
    }
    assert gains.estimate == pytest.approx(stats.f_oneway(*by.values()).statistic)


def test_the_f_statistics_print_with_their_name():
    f = {
        DEFAULT: Estimate("F", 1000.0, math.nan, math.nan, 0.001),
        TUNED: Estimate("F", 56.0, math.nan, math.nan, 0.01),
    }
    assert O.f_words(f) == "F statistic, default rates: 1,000; tuned rates: 56"


def test_adams_lead_over_sgd_is_the_mean_seed_matched_difference(comparison):
    evaluation, c = comparison
    leads, change = O.lead(c, "adam", "sgd")

    def arm(o, lr):
        return evaluation[(evaluation.optimizer == o) & (evaluation.learning_rate == lr)].set_index("seed").test_elbo

    for setting, rates in ((DEFAULT, DEFAULTS), (TUNED, TUNED_RATES)):
        d = arm("adam", rates["adam"]) - arm("sgd", rates["sgd"])
        assert leads[setting].estimate == pytest.approx(d.mean())
        assert leads[setting].p == pytest.approx(stats.ttest_1samp(d, 0).pvalue)
        assert leads[setting].name == "test ELBO(Adam) − test ELBO(SGD)"
    tuned_lead = arm("adam", 0.004) - arm("sgd", 0.128)
    default_lead = arm("adam", 0.001) - arm("sgd", 0.01)
    assert change.estimate == pytest.approx((tuned_lead - default_lead).mean())


def test_a_run_that_broke_down_turns_the_lead_into_a_rank_test_without_an_interval():
    evaluation = _runs(MEANS, broke={("sgd", 0.128, 0)})
    c = O.compare(evaluation, {DEFAULT: dict(DEFAULTS), TUNED: dict(TUNED_RATES)}, -45.0)
    leads, _ = O.lead(c, "adam", "sgd")
    assert not leads[TUNED].has_interval and leads[TUNED].name.startswith("rank-biserial")
    assert leads[DEFAULT].has_interval


def test_the_winner_is_chosen_on_the_tuning_seeds_mean_validation_elbo():
    tuned = pd.DataFrame({"optimizer": ["sgd", "adam", "adamw"], "mean": [-30.5, -30.1, -29.9]})
    assert O.winner(tuned) == "adamw"


def test_the_pairs_table_holds_paired_differences_with_holm_adjusted_p_values(comparison):
    evaluation, c = comparison
    table = O.pairs_table(c, "adamw")
    tuned = evaluation[evaluation.learning_rate == evaluation.optimizer.map(TUNED_RATES)]
    wide = tuned.pivot_table(index="seed", columns="optimizer", values="test_elbo")
    p = np.array([stats.ttest_rel(wide["adamw"], wide[o]).pvalue for o in ("sgd", "adam")])
    order = np.argsort(p)
    holm = np.empty(2)
    holm[order] = np.maximum.accumulate(np.minimum(1, p[order] * (2 - np.arange(2))))
    assert list(table.comparison) == ["AdamW − SGD", "AdamW − Adam"]
    np.testing.assert_allclose(table["difference (nats)"], [(wide["adamw"] - wide[o]).mean() for o in ("sgd", "adam")])
    np.testing.assert_allclose(table["Holm-adjusted p"], holm)
    assert (table.low < table["difference (nats)"]).all() and (table["difference (nats)"] < table.high).all()


def test_the_winner_against_adam_is_a_difference_with_its_interval_or_a_sentence(comparison):
    evaluation, c = comparison
    e = O.best_against(c, "adamw", "adam")
    tuned = evaluation[evaluation.learning_rate == 0.004].pivot_table(
        index="seed", columns="optimizer", values="test_elbo"
    )
    assert e.estimate == pytest.approx((tuned["adamw"] - tuned["adam"]).mean())
    assert e.has_interval and e.unit == "nats"
    assert O.best_against(c, "adam", "adam") == "0 nats (Adam itself was best)"
    assert O.best_against(c, "adamw", "rmsprop").startswith("not measured")


def test_the_best_default_is_chosen_on_the_tuning_seeds_at_each_optimizers_own_default():
    tuning = _runs({("sgd", 0.01): -33.0, ("sgd", 0.001): -20.0, ("adam", 0.001): -31.0, ("adam", 0.01): -25.0})
    assert O.default_best(tuning, {"sgd": 0.01, "adam": 0.001}) == "adam", "other rates than the defaults do not count"
    assert O.default_best(tuning.iloc[:0], {"sgd": 0.01}) is None


def test_the_gain_from_tuning_is_the_tuned_winner_minus_the_best_default(comparison):
    evaluation, c = comparison
    e = O.defaults_gain(c, "adamw", "adam")
    a = evaluation[(evaluation.optimizer == "adamw") & (evaluation.learning_rate == 0.004)].test_elbo.to_numpy()
    b = evaluation[(evaluation.optimizer == "adam") & (evaluation.learning_rate == 0.001)].test_elbo.to_numpy()
    assert e.estimate == pytest.approx((a - b).mean())
    assert not O.defaults_gain(c, "adamw", None).tested


def test_the_numbers_the_prose_states_come_from_the_runs(comparison):
    evaluation, c = comparison
    tuned = pd.DataFrame({"optimizer": list(TUNED_RATES), "interior": [True, False, True]})
    f, _ = O.differ(c)
    n = O.numbers(c, tuned, f, "adamw", "x")
    sds = evaluation.groupby(["optimizer", "learning_rate"]).test_elbo.std(ddof=1)
    assert n["spread"] == pytest.approx(sds.median())
    assert (n["n-opt"], n["n-edge"], n["n-floored"], n["floor"]) == (3, 1, 0, -45.0)
    assert (n["best"], n["best-rate"]) == ("AdamW", 0.004)
    assert n["tuned-span"] == "from 0.004 (Adam) to 0.128 (SGD)"
    assert O.rate_span({"sgd": 0.016, "adam": 0.016}) == "at 0.016 for every optimizer"


def test_a_verdict_on_the_comparison_states_the_runs_and_the_tuning_seeds_in_its_scope(comparison):
    _, c = comparison
    fam = V.Family("07_optimizers")
    leads, change = O.lead(c, "adam", "sgd")
    fam.add("opt-adam-sgd", leads, runs=c.of(None, "adam", "sgd"), tuned_on=[1000, 1001, 1002], interaction=change)
    fam.not_run("opt-differ", "optimizers", "all")
    fam.not_run("opt-defaults", "optimizers", "all")
    scope = fam["opt-adam-sgd"].scope
    assert "Adam and SGD" in scope and "30 epochs" in scope and "6 seeds (0–5)" in scope
    assert scope.endswith("rates tuned on 3 other seeds (1000–1002)")


# -- group-sequential seeds: looks train only the arms of the claims still open ------------------

CLOSE = {**MEANS, ("sgd", 0.128): -33.0, ("adamw", 0.004): -30.95}  # the tuned winner barely above the best default
RATES = {DEFAULT: dict(DEFAULTS), TUNED: dict(TUNED_RATES)}


class _Open:
    """A stand-in for a Family in which only ``ids`` are still open."""

    def __init__(self, *ids):
        self.ids = set(ids)

    def is_open(self, id):
        return id in self.ids


def test_a_look_trains_every_arm_while_the_optimizers_are_compared_and_only_the_open_claims_arms_after():
    every = O.arms(_Open("opt-differ", "opt-adam-sgd", "opt-defaults"), RATES, "adamw", "adam")
    assert every == [
        ("sgd", 0.01),
        ("adam", 0.001),
        ("adamw", 0.001),
        ("sgd", 0.128),
        ("adam", 0.004),
        ("adamw", 0.004),
    ]
    assert O.arms(_Open("opt-adam-sgd"), RATES, "adamw", "adam") == [
        ("sgd", 0.01),
        ("adam", 0.001),
        ("sgd", 0.128),
        ("adam", 0.004),
    ]
    assert O.arms(_Open("opt-defaults"), RATES, "adamw", "adam") == [("adam", 0.001), ("adamw", 0.004)]
    assert O.arms(_Open(), RATES, "adamw", "adam") == []
    grid = O.look_grid(_Open("opt-defaults"), {"epochs": 30}, RATES, "adamw", "adam", [0, 1, 2])
    assert grid == [{"epochs": 30, "optimizer": o, "learning_rate": lr, "seed": [0, 1, 2]} for o, lr in (("adam", 0.001), ("adamw", 0.004))]  # fmt: skip


def _run_looks(cells, seeds, looks):
    """The chapter's loop on hand-made runs: each look 'trains' the rows of its grid."""
    every = _runs(cells, seeds)
    fam, ran = V.Family("07_optimizers", looks=looks), []
    for look in fam.looks(seeds):
        arms = O.arms(fam, RATES, "adamw", "adam")
        rows = every[[(o, lr) in arms for o, lr in zip(every.optimizer, every.learning_rate, strict=True)]]
        ran.append(rows[rows.seed.isin(look)])
        O.judge_look(fam, ran[-1], RATES, -45.0, "adamw", "adam", [1000, 1001, 1002])
    fam.finalize()
    return fam, ran


def test_claims_decided_at_the_first_look_stop_and_the_open_one_alone_gets_more_seeds():
    fam, ran = _run_looks(CLOSE, list(range(12)), (4, 8, 12))
    assert [len(r) for r in ran] == [6 * 4, 2 * 8, 2 * 12], "the last two looks train only opt-defaults' two arms"
    assert fam["opt-differ"].seeds_used == 4 and fam["opt-adam-sgd"].seeds_used == 4
    assert fam["opt-defaults"].seeds_used == 12 and fam["opt-defaults"].n == 12
    assert "12 seeds (0–11)" in fam["opt-defaults"].scope and "4 seeds (0–3)" in fam["opt-adam-sgd"].scope


def test_pooled_runs_keep_each_arm_with_its_seeds_and_pairs_use_the_seeds_both_arms_ran():
    _, ran = _run_looks(CLOSE, list(range(12)), (4, 8, 12))
    runs = O.pooled(ran)
    assert runs.run_id.is_unique and len(runs) == 6 * 4 + 2 * 8
    c = O.compare(runs, RATES, -45.0)
    e = O.best_against(c, "adamw", "adam")  # tuned Adam ran 4 seeds, tuned AdamW 12: paired on 4, no divergence
    assert e.n == 4 and e.has_interval
    assert O.seeds_words(c) == "4 to 12" and O.looks_words((5, 10, 20)) == "5, 10 and 20" and O.looks_words((2,)) == "2"


def test_the_f_statistics_of_the_prose_are_those_of_the_look_that_decided_the_claim():
    fam, ran = _run_looks(CLOSE, list(range(12)), (4, 8, 12))
    f, _ = O.differ(O.compare(ran[0], RATES, -45.0))
    assert O.f_words(fam["opt-differ"].conditions) == O.f_words(f)
    assert O.f_words({}) == "F statistic not computed (the claim was not tested)"
