"""The batch-size chapter's analyses (``vae_utils.claims.batch``) and the tuning chapter's helpers
(``vae_utils.advisor.confirm``, ``vae_utils.advisor.report``), each checked against an independent
recomputation on synthetic runs whose answer is known. No training: a second or two."""

import math
from types import SimpleNamespace

import numpy as np
import pandas as pd
import pytest

from vae_utils.claims import batch, protocol
from vae_utils.core.data import TRAIN_SIZES
from vae_utils.publish.numbers import fmt

N = TRAIN_SIZES["digits"]


def _evaluation(slopes=(("fixed epochs", -1.0), ("fixed updates", 0.2)), seeds=range(6), sizes=(16, 32, 64, 128)):
    rng = np.random.default_rng(0)
    rows = []
    for budget, k in slopes:
        for s in seeds:
            for b in sizes:
                test = -25 + 0.3 * s + k * np.log2(b) + rng.normal(0, 0.01)
                rows.append({"dataset": "digits", "optimizer": "adam", "batch_size": b, "seed": s, "epochs": 30,
                             "eval_every": 10 if budget == "fixed updates" else 0, "status": "ok",
                             "test_elbo": test, "test_nll": -test, "train_elbo": test + 0.5 + 0.2 * np.log2(b),
                             "val_elbo": test, "learning_rate": 0.004, "run_id": f"{budget}-{s}-{b}"})  # fmt: skip
    return pd.DataFrame(rows)


def test_the_budgets_hold_epochs_fixed_or_round_the_updates_to_whole_epochs():
    cells = batch.budget_cells("digits", "adam", [16, 512], epochs=30, updates=600, eval_every=10)
    assert cells["fixed epochs", 16]["epochs"] == 30 and "eval_every" not in cells["fixed epochs", 16]
    for b in (16, 512):
        expected = max(1, round(600 / (N // b)))
        assert cells["fixed updates", b] == {"dataset": "digits", "optimizer": "adam", "batch_size": b,
                                             "epochs": expected, "eval_every": 10}  # fmt: skip


def test_the_evaluation_grid_trains_each_cell_at_the_rate_its_tuning_runs_chose():
    cells = batch.budget_cells("digits", "adam", [32, 64], epochs=2, updates=40, eval_every=10)
    rows = []
    for (_, b), c in cells.items():
        best = 0.004 if b == 32 else 0.008
        for lr in (0.002, 0.004, 0.008, 0.016):
            for s in (1000, 1001):
                val = -25 - abs(np.log2(lr / best)) + 0.01 * s
                rows.append({**c, "eval_every": c.get("eval_every", 0), "learning_rate": lr, "seed": s,
                             "status": "ok", "val_elbo": val})  # fmt: skip
    tuned = batch.tune_rates(pd.DataFrame(rows))
    grid = batch.evaluation_grid(cells, tuned, [0, 1])
    assert {(g["batch_size"], g["learning_rate"]) for g in grid} == {(32, 0.004), (64, 0.008)}
    assert len(grid) == 4 and all(g["seed"] == [0, 1] for g in grid)
    assert batch.tuned_rate(tuned, 64) == 0.008 and batch.tuned_rate(tuned, 40) == 0.004  # the nearest on log2
    assert list(batch.rates_table(tuned).columns) == ["batch_size", "fixed epochs", "fixed updates"]


def test_the_budget_slopes_are_the_mean_per_seed_slope_and_leave_out_runs_that_broke_down():
    ev = batch.judged(_evaluation(), floor=-60.0)
    broken = ev.index[(ev.batch_size == 128) & (ev.seed == 0) & (ev.budget == "fixed epochs")]
    ev.loc[broken, ["status", "test_elbo"]] = ["diverged", np.nan]
    ev = batch.judged(ev.drop(columns=["floored", "budget"]), floor=-60.0)
    effects, inter = batch.budget_slopes(ev)
    ok = ev[~ev.floored]
    for budget, k in {"fixed epochs": -1.0, "fixed updates": 0.2}.items():
        d = ok[ok.budget == budget]
        per_seed = [np.polyfit(np.log2(g.batch_size), g.test_elbo, 1)[0] for _, g in d.groupby("seed")]
        assert effects[budget].estimate == pytest.approx(np.mean(per_seed)) and effects[
            budget
        ].estimate == pytest.approx(k, abs=0.02)
    assert inter.estimate == pytest.approx(-1.2, abs=0.03)
    assert int(ev.floored.sum()) == 1 and ev.loc[broken, "test_elbo"].iloc[0] == -60.0


def test_the_generalization_gap_slope_is_the_per_seed_slope_of_training_minus_test_elbo():
    ev = batch.judged(_evaluation(), floor=-60.0)
    effect, long = batch.generalization_gap(ev[ev.budget == "fixed epochs"])
    assert effect.estimate == pytest.approx(0.2, abs=1e-6)
    assert set(long.split) == {"training ELBO", "test ELBO"} and len(long) == 2 * (ev.budget == "fixed epochs").sum()


def test_the_scan_puts_every_seed_and_batch_size_on_its_own_copy_of_the_ladder():
    grid = batch.scan_grid("digits", {"adam": [0.1, 0.2, 0.4], "sgd": [1.0, 2.0]}, [16, 256], [0, 1, 2], updates=300)
    assert len(grid) == 2 * 2 * 3
    for g in grid:
        ladder = [0.1, 0.2, 0.4] if g["optimizer"] == "adam" else [1.0, 2.0]
        assert g["learning_rate"] == protocol.dithered_ladder(ladder, g["seed"], salt=g["batch_size"])
        assert g["epochs"] == max(1, round(300 / (N // g["batch_size"])))
    scan = pd.DataFrame([{**g, "learning_rate": g["learning_rate"][0]} for g in grid])
    values = batch.scan_values(scan, pd.DataFrame({"censored": [True, False]}))
    assert values["n-scan-b"] == 2 and values["n-censored"] == 1


def test_stability_is_doublings_of_the_breaking_rate_per_doubling_of_the_batch():
    rows = [{"optimizer": o, "batch_size": b, "seed": s, "breaking_point": 0.01 * b**k * (1 + 0.05 * s)}
            for o, k in (("sgd", 0.5), ("adam", 0.0)) for b in (16, 64, 256) for s in range(5)]  # fmt: skip
    effects, inter = batch.stability(pd.DataFrame(rows))
    assert effects["plain SGD"].estimate == pytest.approx(0.5) and effects["Adam"].estimate == pytest.approx(
        0.0, abs=1e-9
    )
    assert inter.estimate == pytest.approx(0.5) and effects["Adam"].unit == "doublings"


def _curves(b_crit=64.0, s_min=100.0, sizes=(16, 32, 64, 128, 256), seeds=range(5)):
    """Validation ELBO rising linearly from −30 to −25 at S(B) = S_min (1 + B_crit / B) updates, then on to
    −24, and stopping at 1.2 S(B): −20 is never reached."""
    rows = []
    for b in sizes:
        for s in seeds:
            s_b = s_min * (1 + b_crit / b) * (1 + 0.02 * (s - 2) * (1 if b % 32 else -1))
            rows += [{"run_id": f"{b}-{s}", "batch_size": b, "seed": s, "steps": t, "val_elbo": -30 + 5 * t / s_b}
                     for t in np.arange(0, 1.2 * s_b, 5.0)]  # fmt: skip
    return pd.DataFrame(rows)


def test_the_critical_batch_size_is_fitted_at_the_hardest_target_the_tuning_seeds_reach_on_every_batch_size():
    tuning = _curves(seeds=range(100, 103))
    usable = batch.usable_targets(tuning, [-27.0, -25.0, -20.0])
    assert usable == [-27.0, -25.0]  # −20 is never reached
    crit = batch.critical_batch(_curves(), [-27.0, -25.0, -20.0], usable)
    assert crit.target == -25.0 and crit.found
    assert crit.row.b_crit == pytest.approx(64.0, rel=0.05)
    r = crit.runs
    assert (r.examples == r.steps_to_target * r.batch_size).all() and len(r) == 25
    assert set(r.seed) == set(range(5)), "judged on the evaluation seeds' curves"
    assert "at a target of −25 nats" in crit.text
    assert list(crit.table().columns)[:3] == ["target", "smallest share of seeds reaching it", "critical batch size"]
    steps, examples = batch.target_slopes(r)
    assert steps.estimate < 0 < examples.estimate


def test_the_target_is_the_one_the_tuning_seeds_chose_even_where_the_evaluation_seeds_reach_a_harder_one():
    """The evaluation seeds reach −25 on every batch size, the tuning seeds only −27: the verdicts use −27,
    and B_crit is fitted there on the evaluation seeds' runs."""
    crit = batch.critical_batch(_curves(), [-27.0, -25.0], usable=[-27.0])
    assert crit.target == -27.0 and crit.found and set(crit.runs.seed) == set(range(5))
    assert list(crit.curve.usable) == [True, False]
    assert batch.critical_batch(_curves(), [-27.0, -25.0], usable=[]).text == "not determined in this build"


def test_the_share_reaching_a_target_agrees_with_the_updates_to_it():
    """``reach_shares`` reads a run's best validation ELBO; ``critical_batch_curve`` its updates to the target:
    the two agree on which runs reached it."""
    curves = _curves()
    curves = curves[~((curves.batch_size == 16) & (curves.seed < 2) & (curves.val_elbo > -25.5))]  # 2 of 5 stop short
    shares = batch.reach_shares(curves, [-27.0, -25.0])
    curve = protocol.critical_batch_curve(curves, [-27.0, -25.0])
    assert list(shares.groupby("target").share.min()) == pytest.approx(list(curve.min_share_reached))
    assert batch.usable_targets(curves, [-27.0, -25.0]) == [-27.0]
    assert batch.usable_targets(curves, [-27.0, -25.0], min_reached=0.6) == [-27.0, -25.0]
    assert batch.usable_targets(curves.iloc[:0], [-27.0]) == []


def test_the_tuning_runs_that_choose_the_target_are_the_fixed_updates_runs_at_the_tuned_rates():
    cells = batch.budget_cells("digits", "adam", [32, 64], epochs=2, updates=40, eval_every=10)
    rows = [{**c, "eval_every": c.get("eval_every", 0), "learning_rate": lr, "seed": 1000, "status": "ok",
             "val_elbo": -25 - abs(np.log2(lr / 0.004)), "run_id": f"{key[0]}-{key[1]}-{lr}"}
            for key, c in cells.items() for lr in (0.002, 0.004, 0.008)]  # fmt: skip
    tuning = pd.DataFrame(rows)
    chosen = batch.tuned_runs(tuning, batch.tune_rates(tuning))
    assert sorted(chosen.run_id) == ["fixed updates-32-0.004", "fixed updates-64-0.004"]


def test_the_trend_of_the_critical_batch_size_across_targets_says_what_the_fits_say():
    curve = pd.DataFrame({"target": [-28.0, -26.0, -24.0], "usable": [True, True, False],
                          "b_crit": [40.0, 90.0, np.nan], "b_crit_low": [30.0, 70.0, np.nan],
                          "b_crit_high": [50.0, 120.0, np.nan]})  # fmt: skip
    words = batch.bcrit_trend(curve)
    assert words.startswith("rises from 40") and "at −26 nats" in words and "do not overlap" in words
    assert batch.bcrit_trend(curve.assign(b_crit=[90.0, 40.0, np.nan])).startswith("falls")
    assert "cannot be followed" in batch.bcrit_trend(curve.assign(usable=[True, False, False]))


def _noise(factor=2.0, seeds=range(8)):
    rng = np.random.default_rng(1)
    rows = []
    for s in seeds:
        first = 100 * math.exp(rng.normal(0, 0.5))
        for e, f in ((1, 1.0), (30, factor * math.exp(rng.normal(0, 0.05)))):
            rows.append({"dataset": "digits", "optimizer": "adam", "batch_size": 64, "epochs": e, "seed": s,
                         "steps": e * (N // 64), "val_elbo": -28.0 if e == 1 else -24.0, "b_simple": first * f})  # fmt: skip
    return pd.DataFrame(rows)


def test_the_noise_summary_is_a_geometric_mean_over_seeds_per_checkpoint():
    noise = _noise()
    summary = batch.noise_summary(noise)
    for row in summary.itertuples():
        values = noise.b_simple[noise.epochs == row.epochs]
        assert row.B_simple == pytest.approx(math.exp(np.log(values).mean()))
        assert row.low < row.B_simple < row.high and row.seeds == len(values)
    assert list(summary.updates) == [N // 64, 30 * (N // 64)]


def test_the_change_of_b_simple_over_training_is_computed_from_the_seeds_and_worded_by_its_interval():
    noise = _noise(factor=2.0)
    change = batch.noise_change(noise)
    wide = noise.pivot(index="seed", columns="epochs", values="b_simple")
    assert change.estimate == pytest.approx(np.log2(wide[30] / wide[1]).mean())
    assert batch.change_words(change).startswith("grows: the last value is 2")
    assert batch.change_words(batch.noise_change(_noise(factor=0.5))).startswith("falls")
    last = noise.epochs == 30
    flat = noise.assign(
        b_simple=noise.b_simple.where(~last, noise.b_simple.shift(1) * np.repeat(np.tile([1.5, 1 / 1.5], 4), 2))
    )
    assert batch.change_words(batch.noise_change(flat)).startswith("shows no clear direction")
    assert "cannot be followed" in batch.change_words(batch.noise_change(noise[noise.epochs == 1]))


def test_b_simple_is_compared_with_b_crit_at_the_checkpoint_nearest_the_target():
    noise = _noise()
    crit = batch.critical_batch(_curves(), [-27.0, -25.0], usable=[-27.0, -25.0])
    values = batch.noise_values(batch.noise_summary(noise), noise, crit)
    summary = batch.noise_summary(noise)
    assert values["matched-epochs"] == 30  # −24 nats lies nearer −25 than −28 does
    assert values["ratio"] == pytest.approx(summary.B_simple.iloc[-1] / crit.row.b_crit)
    assert values["noise-epochs"] == "1 and 30" and values["noise-last"] == 30
    spread = math.exp(np.log(noise.b_simple[noise.epochs == 30]).std(ddof=1))
    assert values["bsimple-spread"] == fmt(spread, 2)


def test_the_protocol_values_are_read_off_the_runs_and_the_claims_table():
    ev = batch.judged(_evaluation(), floor=-60.0)
    tuning = ev.assign(seed=ev.seed + 1000)
    tuned = batch.tune_rates(tuning)
    v = batch.protocol_values(tuning, tuned, ev)
    assert (v["b-min"], v["b-max"], v["n-b"], v["epochs"]) == (16, 128, 4, 30)
    assert v["steps-small"] == 30 * (N // 16) and v["steps-large"] == 30 * (N // 128)
    assert v["delta"] == 0.1 and v["delta-doublings"] == 0.25 and v["n-seeds"] == 6
    assert v["optimizer"] == "Adam" and v["n-edge"] == f"{len(tuned)} of {len(tuned)}"  # one rate: always an edge


def test_the_memory_claim_says_why_it_is_not_tested_with_the_runs_numbers():
    ev = _evaluation().assign(activation_memory_mb=lambda d: d.batch_size / 100, peak_memory_mb=1500.0)
    v = batch.memory_values(ev)
    assert v["act-mb"] == "1.3" and v["peak-mb"] == "1,500" and "1.3 MB at batch 128" in v["reason"]


def test_the_tuning_check_reports_an_untestable_rate_comparison_and_a_missing_fit_with_their_reasons():
    from vae_utils.advisor.confirm import bcrit_values, bsimple_vs_bcrit, rate_check
    from vae_utils.claims.analysis import HyperbolaFit

    df = pd.DataFrame({"batch_size": [32, 32], "learning_rate": [1e-3, 2e-3], "seed": [10, 10], "status": "ok",
                       "val_elbo": [-25.0, -26.0], "test_elbo": [-25.0, -26.0]})  # fmt: skip
    here, others = rate_check(df, {32: 2e-3, 64: 1e-3}, 64)
    assert not here.tested and "advised batch size (64)" in here.note and list(others) == ["batch 32"]
    no_fit = HyperbolaFit(math.nan, math.nan, math.nan, 1, 1, math.nan)
    e = bsimple_vs_bcrit([80.0, 100.0], no_fit)
    assert not e.tested and "no critical batch size" in e.note
    v = bcrit_values(pd.DataFrame({"batch_size": [32]}), no_fit, -24.1, {32: 1, 64: 1})
    assert v["n-reached"] == "1 of 2" and v["bcrit"].startswith("not fitted")


def test_the_advice_values_name_the_range_tests_divergence_rate_and_b_simples_spread():
    from vae_utils.advisor.report import advice_values
    from vae_utils.advisor.rules import Recommendation

    rec = Recommendation(64, (32, 128), 0.00317, "adam", 0.0296, 0.107, 108.0, (38.0, 310.0))
    noise = {"b_simple": 108.2, "low": 37.8, "high": 310.0, "spread_factor": 1.527, "n_used": 3}
    short = {"updates": 304, "batch_size": 64, "epochs": 16, "learning_rate": 0.00317, "val_elbo": -24.11,
             "runs": [{"seed": 0}, {"seed": 1}, {"seed": 2}]}  # fmt: skip
    advice = SimpleNamespace(recommendation=rec, noise=noise, short_run=short, data={"name": "digits"}, total_s=23.2)
    v = advice_values(advice)
    assert v["divergence-rate"] == "0.0296" and "lr-break" not in v
    assert v["bsimple"].startswith("110 (95% CI") and v["bsimple-spread"] == "1.5" and v["noise-seeds"] == "0, 1, 2"


class _World:
    """A sweep without training, for the looks: every grid row becomes a run whose metrics follow from
    its config and seed (larger batches end worse under fixed epochs and better under fixed updates, the
    gap between training and test ELBO does not move, and the validation curves follow a hyperbola with
    B_crit = 64). The scan's breaking rate is pure seed-to-seed noise when ``noisy_scan``, so the
    stability claim stays open; else it doubles with the batch for SGD and stays put for Adam. ``grids``:
    every call's (arm, sorted seeds)."""

    def __init__(self, noisy_scan: bool = False):
        self.noisy_scan, self.grids = noisy_scan, []

    def run(self, grid: list[dict]) -> pd.DataFrame:
        rows = []
        for g in grid:
            seeds = g["seed"] if isinstance(g["seed"], list) else [g["seed"]]
            rates = g["learning_rate"] if isinstance(g["learning_rate"], list) else [g["learning_rate"]]
            rows += [self._row(g, s, lr) for s in seeds for lr in rates]
        frame = pd.DataFrame(rows)
        arms = {"scan" if "eval_k" in g else "fixed updates" if g.get("eval_every") else "fixed epochs" for g in grid}
        self.grids.append(
            (arms.pop() if len(arms) == 1 else "look", sorted(frame.seed.unique()))
        )  # look: arms together
        return frame

    def _row(self, g: dict, s: int, lr: float) -> dict:
        b, rng = g["batch_size"], np.random.default_rng([s, g["batch_size"], int(1e6 * lr), g.get("eval_every", 0)])
        row = {"architecture": "mlp", "hidden_units": (256,), "latent_dim": 8, "binarization": "dynamic", "beta": 1.0,
               "eval_every": 0, **g, "seed": s, "learning_rate": lr, "status": "ok", "activation_memory_mb": b / 100,
               "peak_memory_mb": 1500.0}  # fmt: skip
        if "eval_k" in g:  # the scan: breaks above its breaking rate
            k = 0.0 if g["optimizer"] == "adam" or self.noisy_scan else 1.0
            breaks = 0.01 * b**k * 2 ** (rng.normal(0, 2.0) if self.noisy_scan else 0.1 * rng.normal())
            return row | {
                "test_elbo": -25.0 if lr < breaks else -300.0,
                "run_id": f"scan-{g['optimizer']}-{b}-{s}-{lr}",
            }
        sign = 1 if row["eval_every"] else -1
        test = -25 + 0.3 * s % 1 + sign * 0.3 * np.log2(b) + 0.01 * rng.normal()
        budget = "fu" if row["eval_every"] else "fe"
        return row | {
            "test_elbo": test,
            "train_elbo": test + 0.5 + 0.01 * rng.normal(),
            "val_elbo": test,
            "run_id": f"{budget}-{b}-{s}",
        }

    @staticmethod
    def curves(run_ids) -> pd.DataFrame:
        parsed = [r.split("-") for r in run_ids]
        sizes, seeds = sorted({int(p[1]) for p in parsed}), sorted({int(p[2]) for p in parsed})
        c = _curves(sizes=sizes, seeds=seeds)
        return c.assign(run_id="fu-" + c.run_id)


def _looks(world: _World, seeds=range(20)):
    from vae_utils.claims import verdicts

    cells = batch.budget_cells("digits", "adam", [16, 32, 64, 128, 256], epochs=30, updates=600, eval_every=10)
    tuned = pd.DataFrame([{"budget": k[0], "batch_size": k[1], "learning_rate": 0.004} for k in cells])
    scan = batch.scan_grid("digits", {"adam": [0.0025, 0.005, 0.01, 0.02, 0.04], "sgd": [0.04 * 2**i for i in range(8)]},
                           [16, 64, 256], list(seeds), updates=300)  # fmt: skip
    design = batch.Design(cells, tuned, scan, -200.0, [-27.0, -25.0], [-27.0, -25.0], [1000, 1001, 1002])
    fam, runs = verdicts.Family("04_batch_size", looks=(5, 10, 20)), {}
    for look in fam.looks(list(seeds)):
        runs = batch.judge_look(fam, design, look, world.run, world.curves, runs)
    return fam, runs


def test_claims_a_look_decides_keep_their_verdict_and_their_arms_train_no_more_seeds():
    world = _World()
    fam, runs = _looks(world)
    v = {x.id: x for x in fam.finalize()}
    assert v["bs-gap"].condition_outcomes == {"fixed epochs": "supported", "fixed updates": "opposite"}
    assert v["bs-gap"].depends_on == "the budget" and v["bs-underfit"].outcome == "equivalent"
    assert v["bs-steps"].outcome == v["bs-compute"].outcome == "supported" and v["bs-memory"].outcome == "not testable"
    budget_claims = ("bs-gap", "bs-underfit", "bs-steps", "bs-compute", "bs-memory")
    assert all(v[i].seeds_used == 5 for i in budget_claims), "decided at the first look"
    assert [a for a, _ in world.grids if a != "scan"] == ["look", "fixed epochs", "fixed updates"], "trained once"
    assert world.grids[0] == ("look", list(range(5))), "the first look's arms in one sweep, then each arm's rows read"
    assert v["bs-gap"].scope_record["seeds"] == list(range(5)) and v["bs-gap"].scope_record["tuned_on"] == [
        1000,
        1001,
        1002,
    ]
    assert v["bs-steps"].scope_record["seeds"] == list(range(5)) and "2.6 MB at batch 256" in v["bs-memory"].reason
    assert runs["scan"].seed.nunique() == v["bs-stable"].seeds_used == v["bs-stable"].scope_record["seeds"][-1] + 1


def test_only_the_arm_of_a_claim_still_open_gets_more_seeds_and_its_verdict_rests_on_them():
    world = _World(noisy_scan=True)
    fam, runs = _looks(world)
    arms = [arm for arm, _ in world.grids]
    assert arms.count("scan") == 3 and arms.count("fixed epochs") == 1 and arms.count("fixed updates") == 1
    v = {x.id: x for x in fam.finalize()}
    assert v["bs-stable"].outcome == "inconclusive" and v["bs-stable"].seeds_used == 20
    assert v["bs-stable"].scope_record["seeds"] == list(range(20)) and v["bs-gap"].seeds_used == 5
    assert runs["scan"].seed.nunique() == 20 and runs["fixed epochs"].seed.nunique() == 5
    assert set(runs["memory"].seed) == set(range(5)), "the memory claim was judged at the first look"
    assert batch.seed_values(runs, fam.plan) == {
        "looks": "5, 10 and 20", "seeds-by-arm": "5 seeds under fixed epochs, 5 under fixed updates and 20 in the stability scan"
    }  # fmt: skip


def test_with_fewer_seeds_than_the_first_look_there_is_one_look_with_all_of_them():
    world = _World()
    fam, _ = _looks(world, seeds=range(3))
    assert fam.plan == (3,) and all(seeds == [0, 1, 2] for _, seeds in world.grids)
    assert all(x.seeds_used == 3 for x in fam.finalize())
