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


def test_the_breaking_rate_is_the_geometric_mean_of_each_seeds_first_diverging_rate():
    grid = _grid({0: 0.004, 1: 0.008, 2: 0.016, 3: 0.008, 4: None})
    e = rates.breaking_rate(grid)
    firsts = np.array([0.004, 0.008, 0.016, 0.008])  # seed 4 never diverged: left out, and counted
    logs = np.log(firsts)
    low, high = _t_interval(logs)
    assert e.estimate == pytest.approx(math.exp(logs.mean()))
    assert (e.low, e.high) == pytest.approx((math.exp(low), math.exp(high)))
    assert e.note == "1 of 5 seeds never diverged within the grid"
    words = rates.breaking_values(e, 0.004, grid.learning_rate)
    assert words["break-ratio"] == f"{math.exp(logs.mean()) / 0.004:.2g}"


def test_a_grid_that_breaks_no_seed_bounds_the_breaking_rate_from_below():
    grid = _grid({0: None, 1: None})
    e = rates.breaking_rate(grid)
    assert math.isnan(e.estimate)
    words = rates.breaking_values(e, 0.004, grid.learning_rate)
    assert words == {"break": "above 0.016 (no seed diverged within the grid)", "break-ratio": "more than 4"}


def test_the_breakdown_table_counts_runs_divergences_and_breaking_rates_per_rate():
    table = rates.breakdowns(_grid({0: 0.004, 1: 0.008, 2: 0.008}))
    by_rate = table.set_index("learning rate")
    assert by_rate.runs.tolist() == [3] * 5
    assert by_rate["runs that diverged"].tolist() == [0, 0, 1, 3, 3]
    assert by_rate["seeds whose breaking rate it is"].tolist() == [0, 0, 1, 2, 0]


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
        rates.breakdowns_table(_grid({0: 0.008}), rates.breaking_rate(_grid({0: 0.008}))),
    ]:
        title, rest = split_title(d.caption)
        assert title and rest.split()[:4] != title.split()[:4]
    for d in drawn:
        plt.close(d.shown)
