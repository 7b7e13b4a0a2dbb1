"""The learning-rate analyses of chapters 05 and 06 (``vae_utils.claims.rates``), each checked against an
independent recomputation: NumPy by hand, or a closed form (a straight line's gain, an alternating
series' spread, a rule's rate). No training: every frame is built here, shaped like ``sweep`` rows
(one per run) or ``load_histories`` rows (one per run and epoch).

Run: ``pytest tests/test_rate_analyses.py`` (a few seconds).
"""

from __future__ import annotations

import math

import matplotlib
import numpy as np
import pandas as pd
import pytest
from scipy import stats as sps

from vae_utils.claims import rates
from vae_utils.publish.numbers import fmt, fmt_interval

matplotlib.use("Agg")


def _runs(rows) -> pd.DataFrame:
    """Sweep-like rows from dicts (learning_rate, seed, test_elbo, ... ); status ok unless given."""
    df = pd.DataFrame(rows)
    defaults = {"status": "ok", "optimizer": "adam", "batch_size": 64, "epochs": 30, "dataset": "digits"}
    for k, v in defaults.items():
        if k not in df:
            df[k] = v
    if "val_elbo" not in df:
        df["val_elbo"] = df.test_elbo
    df["test_nll"] = -df.test_elbo
    df["run_id"] = [f"r{i}" for i in range(len(df))]
    return df


def _t_interval(x, level=0.95):
    x = np.asarray(x, float)
    half = sps.t.ppf(0.5 + level / 2, len(x) - 1) * x.std(ddof=1) / math.sqrt(len(x))
    return x.mean() - half, x.mean() + half


# -- the grid: best rate, breaking rate -----------------------------------------------------------------


def _grid(breaks_at: dict[int, float | None], lrs=(0.001, 0.002, 0.004, 0.008, 0.016)) -> pd.DataFrame:
    """Every seed trains every rate; seed s diverges at every rate >= breaks_at[s] (None: never). The
    validation ELBO peaks at 0.004."""
    rows = []
    for seed, brk in breaks_at.items():
        for lr in lrs:
            bad = brk is not None and lr >= brk
            value = -20 - abs(math.log2(lr / 0.004)) + 0.1 * seed
            rows.append({"learning_rate": lr, "seed": seed, "test_elbo": np.nan if bad else value,
                         "status": "diverged" if bad else "ok"})  # fmt: skip
    return _runs(rows)


def test_the_best_rate_is_the_peak_of_the_mean_validation_elbo_and_lies_inside_the_grid():
    best = rates.best_rate(_grid({0: None, 1: None, 2: None}))
    assert best.rate == 0.004
    assert best.where == "inside the grid"


def test_a_rate_that_breaks_one_seed_never_wins_and_an_edge_asks_to_widen_the_grid():
    grid = _grid({0: 0.004, 1: None, 2: None})  # the peak breaks seed 0: the best falls to 0.002
    assert rates.best_rate(grid).rate == 0.002
    low = _grid({0: None, 1: None}, lrs=(0.004, 0.008, 0.016))
    assert rates.best_rate(low).where == "at the low edge of the grid: widen it"


# -- the breaking rate: dithered ladders, censoring, a Kaplan–Meier median ---------------------------------


def _ladder_runs(truth: dict[int, float], best=0.004, doublings=7, per_doubling=2, floor_at=None) -> pd.DataFrame:
    """Each seed climbs its ``break_ladders`` ladder; a rung at or above its true breaking rate diverges
    (or, with ``floor_at``, ends at that test ELBO, below any floor)."""
    rows = []
    for lad in rates.break_ladders(best, list(truth), doublings, per_doubling):
        for lr in lad["learning_rate"]:
            bad = lr >= truth[lad["seed"]]
            elbo = (floor_at if floor_at is not None else np.nan) if bad else -25.0
            status = "diverged" if bad and floor_at is None else "ok"
            rows.append({"learning_rate": lr, "seed": lad["seed"], "test_elbo": elbo, "status": status})
    return _runs(rows)


def _hand_km(values, censored, z=1.959963984540054):
    """Kaplan–Meier by hand: at each distinct event time, S ← S (1 − d/n), Greenwood's sum Σ d/(n(n − d)),
    and the log–log band S^exp(±z √sum / |log S|). Returns [(time, S, lower, upper)]."""
    rows, s, g = [], 1.0, 0.0
    for t in sorted(set(values)):
        at_risk = sum(v >= t for v in values)
        d = sum(v == t and not c for v, c in zip(values, censored, strict=True))
        if not d:
            continue
        s *= 1 - d / at_risk
        g += d / (at_risk * (at_risk - d)) if at_risk > d else 0.0
        se = math.sqrt(g) / abs(math.log(s)) if 0 < s < 1 else 0.0
        rows.append((t, s, s ** math.exp(z * se), s ** math.exp(-z * se)))
    return rows


def test_the_kaplan_meier_median_matches_a_hand_computation_and_its_interval_the_sign_tests_order_statistics():
    values, censored = [1.0, 2.0, 3.0, 4.0, 5.0, 6.0, 7.0], [False, False, True, False, False, True, False]
    table = _hand_km(values, censored)
    first = lambda col: next(t for t, *probs in table if probs[col] <= 0.5)
    assert [round(s, 6) for _, s, *_ in table] == [round(x, 6) for x in (6 / 7, 5 / 7, 5 / 7 * 3 / 4, 5 / 14, 0.0)]
    median, low, high = rates.survival_median(values, censored)
    assert median == first(0) == 5.0  # S falls to 15/28 at 4 and to 5/14 at 5
    # seven values: P(Binomial(7, 1/2) <= 0) = 1/128 per tail, so x(1) and x(7) cover at 98.4 %; x(2), x(6)
    # would cover at 87.5 %: the first and the last value, the last unknown (inf) while any value is censored
    assert (low, high) == (1.0, math.inf)
    assert rates.survival_median(values, [False] * 7)[1:] == (1.0, 7.0)
    assert rates.survival_median([1.0, 2.0, 3.0, 4.0, 5.0, 6.0], [False] * 6)[0] == 3.5  # S = 1/2 exactly: midpoint
    ten = np.arange(1.0, 11.0)  # ten values: x(2) and x(9), 97.9 % (x(3), x(8) would be 89 %)
    assert rates.survival_median(ten, [False] * 10)[1:] == (2.0, 9.0)


def test_a_censored_seed_is_counted_not_dropped():
    truth = {0: 0.03, 1: 0.05, 2: 0.08, 3: 0.12, 4: 10.0}  # seed 4 never breaks on its ladder
    b = rates.breaking_rate(_ladder_runs(truth), best=0.004)
    assert b.seeds == 5 and b.never == 1 and b.per_seed.set_index("seed").censored[4]
    points = np.sort(b.per_seed[~b.per_seed.censored].breaking_point.to_numpy())
    assert b.median == pytest.approx(points[2])  # the third of five; dropping seed 4 gives the midpoint of 2nd and 3rd
    assert b.median != pytest.approx(math.sqrt(points[1] * points[2]))
    words = rates.breaking_values(b)
    assert "4 of 5 seeds broke down on their ladders and 1 never broke up to" in words["break-counts"]


def test_each_seeds_break_is_bracketed_between_its_last_stable_and_first_broken_rung():
    ladder = _ladder_runs({0: 0.05, 1: 0.07})
    b = rates.breaking_rate(ladder, best=0.004)
    for s in b.per_seed.itertuples():
        rungs = np.sort(ladder[ladder.seed == s.seed].learning_rate.to_numpy())
        first = rungs[rungs >= (0.05, 0.07)[s.seed]][0]
        assert s.breaking_rate == first and s.largest_stable == rungs[rungs < first][-1]
        assert s.breaking_point == pytest.approx(math.sqrt(first * s.largest_stable))
    table = rates.breakdowns(b, ladder).set_index("seed")
    assert table.loc[0, "first rung that broke"] == fmt(b.per_seed.breaking_rate[0])
    assert table.loc[0, "ladder"].endswith("(14 rungs)")


def test_a_run_that_ends_below_the_floor_breaks_down_though_it_finished():
    ladder = _ladder_runs({0: 0.05, 1: 0.07, 2: 0.09}, floor_at=-400.0)
    assert rates.breaking_rate(ladder, best=0.004).never == 3
    b = rates.breaking_rate(ladder, best=0.004, floor=-45.6)
    assert b.never == 0 and 0.05 < b.median < 0.1


def test_too_many_censored_seeds_give_a_stated_lower_bound_and_not_a_median():
    b = rates.breaking_rate(_ladder_runs({0: 0.05, 1: 10.0, 2: 10.0, 3: 10.0}), best=0.004)
    assert math.isinf(b.median)
    words = rates.breaking_values(b)
    bound = fmt(b.per_seed.breaking_rate[b.per_seed.censored].min())
    assert words["break"] == f"at least {bound}: 3 of 4 seeds never broke up to {bound}"
    assert words["break-ratio"] == f"at least {fmt(b.bound / 0.004)}"
    assert words["break-summary"].startswith("Too many seeds never broke down for a median")


def test_the_ratio_to_the_best_rate_carries_the_medians_interval():
    b = rates.breaking_rate(_ladder_runs({s: 0.02 * 1.3**s for s in range(8)}), best=0.004)
    words = rates.breaking_values(b)
    assert words["break"] == fmt_interval(b.median, b.low, b.high)
    assert words["break-ratio"] == fmt_interval(b.median / 0.004, b.low / 0.004, b.high / 0.004)
    assert words["break-ratio"] in words["break-summary"]


def test_the_ladders_start_within_one_rung_above_the_best_rate_and_are_the_seeds_own():
    ladders = rates.break_ladders(0.004, [0, 1, 2], doublings=3, per_doubling=2)
    for lad in ladders:
        lr = np.asarray(lad["learning_rate"])
        assert len(lr) == 6 and 0.004 <= lr[0] < 0.004 * math.sqrt(2)
        assert np.allclose(lr[1:] / lr[:-1], math.sqrt(2))
    assert len({lad["learning_rate"][0] for lad in ladders}) == 3
    assert ladders == rates.break_ladders(0.004, [0, 1, 2], doublings=3, per_doubling=2)
    with pytest.raises(ValueError, match="not allowed"):
        rates.break_ladders(math.nan, [0], doublings=3)


@pytest.mark.slow
@pytest.mark.parametrize(
    ("median", "sd", "doublings"), [(0.1, 0.5, 7), (0.2, 0.8, 6)]
)  # top rungs 0.36–0.51 and 0.18–0.26
def test_the_medians_interval_covers_a_log_normal_truth_at_about_its_nominal_rate(median, sd, doublings):
    """Ten seeds, true breaking rates log-normal; the second censors nearly half of them. The sign test's
    interval holds 97.9 % at ten values, and neither end misses by more than its share (2.5 %, with a
    binomial allowance for 300 draws): the Kaplan–Meier band used before missed above 5.5 % of the time."""
    rng, above, below, never, draws = np.random.default_rng(18), 0, 0, 0, 300
    for _ in range(draws):
        truth = dict(enumerate(np.exp(rng.normal(math.log(median), sd, 10)), start=int(rng.integers(1e6))))
        b = rates.breaking_rate(_ladder_runs(truth, doublings=doublings), best=0.004)
        above += median > b.high
        below += median < b.low
        never += b.never
    assert above / draws <= 0.025 + 3 * math.sqrt(0.025 * 0.975 / draws)
    assert below / draws <= 0.025 + 3 * math.sqrt(0.025 * 0.975 / draws)
    assert (above + below) / draws >= 0.002, "not an interval that can never miss"
    assert (never / (10 * draws) > 0.15) == (doublings == 6)


# -- updates to a target ------------------------------------------------------------------------------


def _linear_histories(speeds: dict[float, float], seeds=(0, 1), start=-40.0, epochs=10, per_epoch=20):
    """Validation ELBO rising linearly in updates: start + speed * steps, evaluated after each epoch."""
    rows = []
    for i, (lr, speed) in enumerate(speeds.items()):
        for seed in seeds:
            for epoch in range(1, epochs + 1):
                steps = epoch * per_epoch
                rows.append({"run_id": f"r{i}-{seed}", "learning_rate": lr, "seed": seed, "epoch": epoch,
                             "steps": steps, "val_elbo": start + speed * steps})  # fmt: skip
    return pd.DataFrame(rows)


def test_updates_to_target_interpolate_the_crossing_at_the_rates_chosen_up_to_the_best():
    h = _linear_histories({0.001: 0.05, 0.002: 0.1, 0.004: 0.2, 0.008: 0.4})
    crossed = rates.crossings(h, target=-30.0)
    usable = rates.usable_rates(crossed, best=0.004)
    assert usable == [0.001, 0.002, 0.004]
    table = rates.updates_to_target(crossed, usable)
    # closed form: start + speed * steps = target  =>  steps = 10 / speed
    expected = {0.001: 200.0, 0.002: 100.0, 0.004: 50.0}
    assert sorted(table.learning_rate.unique()) == sorted(expected)
    for lr, steps in expected.items():
        assert table[table.learning_rate == lr].steps_to_target.tolist() == pytest.approx([steps, steps])


def test_a_rate_past_the_target_at_the_first_evaluation_or_never_reaching_it_gives_no_time():
    h = _linear_histories({0.001: 0.001, 0.002: 0.1, 0.004: 5.0})  # never / crosses / past it at epoch 1
    crossed = rates.crossings(h, target=-30.0)
    assert rates.usable_rates(crossed, best=0.004) == [0.002]
    table = rates.updates_to_target(crossed, [0.001, 0.002, 0.004])
    assert sorted(table.learning_rate.unique()) == [0.002]
    assert rates.span_of(table.learning_rate) == "0.002"
    assert rates.span_of([]) == "no rate"


def test_the_rates_are_chosen_on_the_seeds_handed_in_and_judged_on_the_others():
    """Tuning seeds 0 and 1 cross at 0.001 and 0.002; evaluation seed 2 crosses only at 0.002: the rates are the
    tuning seeds' choice, and at each the evaluation runs that crossed are the ones timed."""
    h = _linear_histories({0.001: 0.05, 0.002: 0.1}, seeds=(0, 1, 2))
    h.loc[(h.seed == 2) & (h.learning_rate == 0.001), "val_elbo"] = -35.0  # never reaches −30
    crossed = rates.crossings(h, target=-30.0)
    usable = rates.usable_rates(crossed[crossed.seed.isin([0, 1])], best=0.002)
    table = rates.updates_to_target(crossed[crossed.seed == 2], usable)
    assert usable == [0.001, 0.002] and table.learning_rate.tolist() == [0.002]
    assert rates.usable_rates(crossed, best=0.002, share=0.8) == [0.002]  # 2 of 3 seeds cross 0.001
    assert rates.usable_rates(crossed, best=math.nan) == [] and rates.updates_to_target(crossed, []).empty


# -- precision, given time to converge ----------------------------------------------------------------


def _long_history(series: dict[tuple[float, int], np.ndarray]) -> pd.DataFrame:
    rows = []
    for (lr, seed), y in series.items():
        n = len(y)
        rows += [{"run_id": f"{lr}-{seed}", "learning_rate": lr, "seed": seed, "epoch": e + 1, "epochs": n,
                  "val_elbo": v} for e, v in enumerate(y)]  # fmt: skip
    return pd.DataFrame(rows)


def test_the_end_of_run_gain_of_a_straight_line_is_its_slope_times_the_window():
    epochs = np.arange(1, 121)
    h = _long_history({(0.004, 0): -30 + 0.002 * epochs})
    ends = rates.end_of_run(h)
    assert ends.gain.iloc[0] == pytest.approx(0.002 * 30)  # the last quarter: epochs 91..120
    assert ends.movement.iloc[0] == pytest.approx(0.0, abs=1e-12)


def test_the_end_of_run_gain_is_the_least_squares_slope_and_the_movement_the_spread_of_changes():
    rng = np.random.default_rng(0)
    y = -30 + 0.001 * np.arange(1, 121) + rng.normal(0, 0.05, 120)
    alternating = -25 + 0.2 * (-1.0) ** np.arange(120)  # 29 changes of ±0.4 in the window, 15 of one sign
    ends = rates.end_of_run(_long_history({(0.004, 0): y, (0.032, 0): alternating})).set_index("learning_rate")
    x, w = np.arange(91, 121, dtype=float), y[90:]
    slope = np.sum((x - x.mean()) * (w - w.mean())) / np.sum((x - x.mean()) ** 2)
    assert ends.gain[0.004] == pytest.approx(slope * 30)
    assert ends.movement[0.004] == pytest.approx(np.diff(w).std() / math.sqrt(2))
    sd = math.sqrt(0.4**2 - (0.4 / 29) ** 2)  # the SD of 15 values +0.4 and 14 values −0.4
    assert ends.movement[0.032] == pytest.approx(sd / math.sqrt(2))


@pytest.mark.parametrize(
    ("gains", "outcome"),
    [
        ([0.02, 0.03, 0.01, 0.04, 0.02], "converged"),
        ([0.50, 0.52, 0.48, 0.51, 0.49], "still improving"),
        ([-0.3, 0.4, 0.0, 0.3, -0.15], "undecided"),  # mean 0.05, below Δ; the interval is not
        ([0.02], "undecided"),
    ],
)
def test_the_convergence_check_has_three_results_decided_by_the_interval_against_its_delta(gains, outcome):
    check = rates.convergence_check(pd.Series(gains), delta=0.1, rate=0.004, epochs=360)
    assert check.outcome == outcome
    if len(gains) > 1:
        assert (check.gain.low, check.gain.high) == pytest.approx(_t_interval(gains))
    assert "Δ = 0.1 nats" in check.words
    if outcome != "converged":
        assert "360 epochs" in check.reason and "precise_epochs" in check.reason


def test_the_convergence_check_refuses_a_delta_that_is_not_a_positive_number():
    with pytest.raises(ValueError, match="delta=0"):
        rates.convergence_check(pd.Series([0.1, 0.2]), delta=0, rate=0.004, epochs=10)


def _precision_case(lo_trend: float, diverge: bool = False):
    """Two rates, four seeds, 40 epochs: the small rate rises by ``lo_trend`` nats per epoch with noise,
    the large one alternates around a lower level."""
    rng = np.random.default_rng(1)
    series, rows = {}, []
    for seed in range(4):
        e = np.arange(1, 41)
        series[(0.004, seed)] = -23 + lo_trend * e + rng.normal(0, 0.01, 40)
        series[(0.032, seed)] = -25 + (0.05 + 0.01 * seed) * (-1.0) ** e
        rows += [{"learning_rate": 0.004, "seed": seed, "test_elbo": -23.0 + 0.1 * seed},
                 {"learning_rate": 0.032, "seed": seed, "test_elbo": -25.0 - 0.2 * seed}]  # fmt: skip
    long = _runs(rows).assign(epochs=40)
    if diverge:
        long.loc[long.index[-1], "status"] = "diverged"
    h = _long_history(series)
    long["run_id"] = [f"{lr}-{s}" for lr, s in zip(long.learning_rate, long.seed, strict=True)]
    return long, h


def test_precision_compares_the_final_test_elbo_and_the_movement_seed_by_seed_once_converged():
    long, h = _precision_case(lo_trend=0.0)
    p = rates.precision(long, h, delta=0.1)
    assert p.check.outcome == "converged" and p.testable
    diffs = 2.0 + 0.3 * np.arange(4)  # (−23 + 0.1 s) − (−25 − 0.2 s)
    assert p.final_elbo.estimate == pytest.approx(diffs.mean())
    ends = rates.end_of_run(h).set_index(["learning_rate", "seed"]).movement
    by_hand = np.log2(ends.loc[0.004].to_numpy()) - np.log2(ends.loc[0.032].to_numpy())
    assert p.movement.estimate == pytest.approx(by_hand.mean())
    assert p.values()["check"].startswith("the rate 0.004 has converged")


def test_precision_is_not_testable_while_the_small_rate_still_improves_or_a_long_run_diverged():
    still = rates.precision(*_precision_case(lo_trend=0.05), delta=0.1)
    assert still.check.outcome == "still improving" and not still.testable
    assert still.reason.startswith("The convergence check found the rate 0.004 still improving")
    broke = rates.precision(*_precision_case(lo_trend=0.0, diverge=True), delta=0.1)
    assert not broke.testable and broke.reason == "1 of the 8 long runs diverged."


# -- schedules ----------------------------------------------------------------------------------------


def _schedules(diverge: bool = False):
    rows = []
    for lr, gain in ((0.004, 0.2), (0.032, 1.0)):
        for seed in range(5):
            base = -24 - seed * 0.3
            rows.append({"learning_rate": lr, "seed": seed, "test_elbo": base, "lr_schedule": "constant"})
            rows.append({"learning_rate": lr, "seed": seed, "test_elbo": base + gain + 0.05 * seed,
                         "lr_schedule": "warmup"})  # fmt: skip
    runs = _runs(rows)
    if diverge:
        runs.loc[(runs.learning_rate == 0.032) & (runs.seed == 0) & (runs.lr_schedule == "constant"), "status"] = (
            "diverged"
        )
    return runs


def test_a_schedule_is_compared_with_the_constant_rate_seed_by_seed_at_each_peak():
    effects, inter = rates.schedule_effects(_schedules(), "warmup")
    assert list(effects) == ["peak 0.004", "peak 0.032"]
    d_lo, d_hi = 0.2 + 0.05 * np.arange(5), 1.0 + 0.05 * np.arange(5)
    assert effects["peak 0.004"].estimate == pytest.approx(d_lo.mean())
    assert effects["peak 0.032"].estimate == pytest.approx(d_hi.mean())
    assert inter.estimate == pytest.approx((d_lo - d_hi).mean())


def test_a_diverged_run_makes_the_schedule_comparison_a_rank_test_without_an_interval():
    effects, _ = rates.schedule_effects(_schedules(diverge=True), "warmup")
    e = effects["peak 0.032"]
    assert "ranked worst" in e.method and math.isnan(e.low)


def test_schedule_runs_add_the_grids_constant_runs_at_the_schedules_peaks():
    grid = _runs([{"learning_rate": lr, "seed": 0, "test_elbo": -24.0} for lr in (0.001, 0.004, 0.032)])
    scheduled = _runs([{"learning_rate": 0.004, "seed": 0, "test_elbo": -23.0, "lr_schedule": "warmup"}])
    runs = rates.schedule_runs(grid, scheduled)
    assert sorted(zip(runs.lr_schedule, runs.learning_rate, strict=True)) == [("constant", 0.004), ("warmup", 0.004)]


# -- 06: the scaling rules ----------------------------------------------------------------------------


def test_the_rules_scale_the_rate_by_the_batch_growth_or_its_square_root():
    assert rates.rule_rate(0.01, 128, 32, "linear") == pytest.approx(0.04)
    assert rates.rule_rate(0.01, 512, 32, "square root") == pytest.approx(0.04)
    with pytest.raises(ValueError, match="rule='cubic'"):
        rates.rule_rate(0.01, 128, 32, "cubic")


def _tuned():
    return pd.DataFrame(
        {"optimizer": ["adam"] * 3, "batch_size": [32, 128, 512], "learning_rate": [0.002, 0.004, 0.004]}
    )


def test_the_arms_start_from_the_tuned_rate_and_add_each_rule_and_the_retuned_rate_per_larger_batch():
    arms = rates.scaling_arms(_tuned(), [32, 128, 512])
    got = {(b, r): lr for b, r, lr in zip(arms.batch_size, arms.rule, arms.learning_rate, strict=True)}
    assert got == pytest.approx({(32, "tuned"): 0.002, (128, "linear"): 0.008, (128, "square root"): 0.004,
                                 (128, "retuned"): 0.004, (512, "linear"): 0.032, (512, "square root"): 0.008,
                                 (512, "retuned"): 0.004})  # fmt: skip
    table, caption, _ = rates.rates_table(arms)
    assert list(table.columns) == ["optimizer", "batch size", "rate", "learning rate"]
    assert set(table.optimizer) == {"Adam"} and caption.startswith("The learning rates of the evaluation runs.")


def test_a_rules_effect_is_the_seed_matched_difference_from_the_smallest_batch():
    arms = rates.scaling_arms(_tuned(), [32, 128, 512])
    rows = []
    for b, r, lr in zip(arms.batch_size, arms.rule, arms.learning_rate, strict=True):
        for seed in range(4):
            loss = {"tuned": 0.0, "linear": 1.0, "square root": 0.5, "retuned": 0.2}[r] * (b / 32) ** 0.5
            rows.append({"batch_size": b, "learning_rate": lr, "seed": seed, "test_elbo": -24 - loss + 0.1 * seed})
    evaluation = _runs(rows).drop_duplicates(["batch_size", "learning_rate", "seed"])  # a sweep runs each once
    runs = rates.rule_runs(evaluation, arms, "adam", "square root")
    assert sorted(set(zip(runs.batch_size, runs.learning_rate, strict=True))) == [(32, 0.002), (128, 0.004),
                                                                                   (512, 0.008)]  # fmt: skip
    effects = rates.rule_effects(runs)
    assert list(effects) == ["4× larger batch", "16× larger batch"]
    assert effects["16× larger batch"].estimate == pytest.approx(-0.5 * 4)
    assert "no spread" in effects["16× larger batch"].method or math.isnan(effects["16× larger batch"].low)


def test_the_scaling_exponent_is_the_mean_of_the_seeds_log_log_slopes_of_the_tuned_rate():
    lrs = [0.001 * 2**k for k in range(8)]
    rows = []
    for seed, p in ((0, 0.5), (1, 1.0), (2, 0.5)):  # seed s's best rate grows as batch^p
        for b in (32, 128, 512):
            peak = 0.002 * (b / 32) ** p
            rows += [{"batch_size": b, "learning_rate": lr, "seed": seed, "test_elbo": -abs(math.log2(lr / peak))}
                     for lr in lrs]  # fmt: skip
    e = rates.scaling_exponent(_runs(rows))
    slopes = np.array([0.5, 1.0, 0.5])
    assert e.estimate == pytest.approx(slopes.mean())
    assert (e.low, e.high) == pytest.approx(_t_interval(slopes))


# -- figures say what they show -----------------------------------------------------------------------


def test_each_figure_comes_with_a_caption_whose_title_describes_it():
    import matplotlib.pyplot as plt

    from vae_utils.publish.figures import split_title

    grid = _grid({0: 0.008, 1: None, 2: None})
    _, h = _precision_case(lo_trend=0.0)
    drawn = [
        rates.final_figure(grid, 0.004),
        rates.updates_figure(pd.DataFrame(columns=["learning_rate", "steps_to_target", "seed"]), -30.0),
        rates.long_run_figure(h),
        rates.schedules_figure(_schedules()),
    ]
    titles = [split_title(d.caption)[0] for d in drawn]
    assert titles[0].startswith("Test ELBO against the learning rate")
    assert titles[2].startswith("Validation ELBO over a long run at a small and a large rate")
    for d in drawn:
        assert isinstance(d.shown, plt.Figure) and d.alt
        plt.close(d.shown)
    top = grid[grid.status == "ok"].groupby("learning_rate").test_elbo.mean().max()
    fig = rates.final_figure(grid, 0.004, window=1.0).shown
    assert fig.axes[0].get_ylim()[0] >= top - 1.0 - 0.3 - 1e-9
    plt.close(fig)


def test_the_batch_figures_and_tables_draw_one_panel_per_optimizer_and_never_restate_their_title():
    import matplotlib.pyplot as plt

    from vae_utils.publish.figures import split_title

    tuned = pd.concat([_tuned(), _tuned().assign(optimizer="sgd", learning_rate=[0.1, 0.4, 0.8])])
    arms = rates.scaling_arms(tuned, [32, 128, 512])
    rows = [{"optimizer": o, "batch_size": b, "learning_rate": lr, "seed": s, "test_elbo": -24.0 - b / 512 + 0.1 * s}
            for o, b, lr in zip(arms.optimizer, arms.batch_size, arms.learning_rate, strict=True) for s in range(3)]  # fmt: skip
    evaluation = _runs(rows).drop_duplicates(["optimizer", "batch_size", "learning_rate", "seed"])
    tuning = _runs([{**r, "seed": r["seed"] + 1000} for r in rows]).drop_duplicates(
        ["optimizer", "batch_size", "learning_rate", "seed"]
    )
    drawn = [rates.tuning_heatmaps(tuning), rates.rules_figure(evaluation, arms)]
    assert [[ax.get_title(loc="left") for ax in d.shown.axes if ax.get_title(loc="left")] for d in drawn] == [
        ["Adam", "SGD"],
        ["Adam", "SGD"],
    ]
    for d in [
        *drawn,
        rates.rates_table(arms),
        rates.breakdowns_table(rates.breaking_rate(_ladder_runs({0: 0.05}), 0.004), _ladder_runs({0: 0.05})),
    ]:
        title, rest = split_title(d.caption)
        assert title and rest.split()[:4] != title.split()[:4]
    for d in drawn:
        plt.close(d.shown)
