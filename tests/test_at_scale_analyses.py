"""The at-scale chapter's analyses (``vae_utils.claims.at_scale``) and the placeholders a page gets
when its data are missing (``vae_utils.publish.placeholders``), on runs faked from the chapter's grids:
no kernel, no training (a few seconds). Each estimate is checked against a recomputation by hand
(NumPy on the faked numbers), not against the module's own helpers.

The last tests tie the package to the page: every value the analyses publish is one the chapter's
Markdown pastes, and every key the page pastes is published, with the data and without them.
"""

from __future__ import annotations

import ast
import hashlib
import json
import math
from pathlib import Path

import numpy as np
import pandas as pd
import pytest

from vae_utils.claims import at_scale, protocol, records, stats, verdicts
from vae_utils.experiments.grid import expand_grid
from vae_utils.publish import fmt, placeholders

REPO = Path(__file__).resolve().parents[1]
CHAPTER = REPO / "chapters" / "09_at_scale.ipynb"
PARAMETERS = dict(
    dataset="fashion_mnist", train_size=5000, held_out_size=2000, epochs=10, latent_dim=16, hidden_units=[256],
    batch_size=128, batch_sizes=[32, 128, 512], eval_every=13, targets=[-340.0, -320.0, -300.0],
    learning_rates=[5e-4, 1e-3, 2e-3, 4e-3, 8e-3, 1.6e-2], batch_lrs=[1e-3, 2e-3, 4e-3, 8e-3], sgd_lrs=[3.2e-3, 6.4e-3, 1.28e-2],
    momentum_lrs=[8e-4, 1.6e-3, 3.2e-3], adam_default_lr=1e-3, sgd_default_lr=0.01,
    ladder_lrs=[5e-4, 1e-3, 2e-3, 4e-3, 8e-3, 1.6e-2, 3.2e-2, 6.4e-2], target_val_elbo=-310.0, schedule_lr=1.6e-2,
    lr_warmup_epochs=2, betas=[0.25, 1.0, 4.0], beta_lrs=[2e-3, 4e-3, 8e-3], collapse_betas=[0.25, 1.0, 4.0], conv_betas=[0.25, 1.0, 4.0],
    conv_train_size=2500, conv_epochs=2,
    conv_lr=1e-3, dense_units=16, evaluation_seeds=list(range(20)), looks=[5, 10, 20], tuning_seeds=[1000, 1001, 1002],
    noise_epochs=[2, 10], nll_k=100,
)  # fmt: skip
BEST = {"adam": 0.004, "sgd": 0.0064, "momentum": 0.0016}
BREAKS = {"adam": 0.03, "sgd": 0.02, "momentum": 0.005}


def _noise(c, salt: int = 0) -> float:
    return float(np.random.default_rng([c.seed, int(c.batch_size), salt]).normal(0, 0.5))


def _final(c) -> float:
    """A made-up final ELBO: best at the optimizer's best rate, worse at larger batches under few updates,
    and with β; every seed shifts it a little."""
    updates = c.epochs * (c.train_size // c.batch_size)
    base = -250 - (0 if c.optimizer == "adam" else 20) - 3 * abs(math.log2(c.learning_rate / BEST[c.optimizer]))
    return base - 600 / math.sqrt(updates) - 5 * c.beta - (3 if c.lr_schedule == "constant" else 0) + _noise(c)


def _metrics(c) -> dict:
    """A run's outcome: broken above the optimizer's breaking rate, active units falling with β."""
    broke = c.learning_rate > BREAKS[c.optimizer] * (1 + 0.3 * math.sin(c.seed))
    elbo = _final(c)
    units = max(0.0, 12 - 3 * math.log2(c.beta * 4) + _noise(c, 1)) if c.architecture == "mlp" else 4.0 / c.beta
    nan = math.nan
    return dict(
        status="diverged" if broke else "ok", val_elbo=nan if broke else elbo + 1, test_elbo=nan if broke else elbo,
        test_nll=nan if broke else -elbo - 3, active_units=units, test_kl_loss=10 / c.beta,
        test_reconstruction_loss=-elbo - 10 / c.beta, wall_time_s=0.01 * c.epochs, samples_per_s=1e4,
    )  # fmt: skip


def _fake_sweep(grid) -> pd.DataFrame:
    """What ``sweep`` returns for ``grid``: the config columns, a run id, made-up metrics."""
    return pd.DataFrame(
        [
            {**c.to_dict(), "run_id": hashlib.sha1(repr(c).encode()).hexdigest()[:12], **_metrics(c)}
            for c in expand_grid(grid)
        ]
    )


def _history(runs: pd.DataFrame, every: str = "epoch") -> pd.DataFrame:
    """What ``load_histories`` (one row per epoch) or ``load_curves`` (every ``eval_every`` updates) returns:
    the validation ELBO rising as −600 + (final + 600)·(1 − exp(−updates / τ)), τ falling with the rate and the batch."""
    rows = []
    for r in runs.to_dict("records"):
        per_epoch = r["train_size"] // r["batch_size"]
        total = r["epochs"] * per_epoch
        step = per_epoch if every == "epoch" else r["eval_every"]
        if not step:
            continue
        tau = 20 * (0.004 / r["learning_rate"]) ** 0.8 * (128 / r["batch_size"]) ** 0.3  # updates to settle
        for s in range(step, total + 1, step):
            elbo = -600 + (r["val_elbo"] + 600) * (1 - math.exp(-s / tau))  # NaN for a run that broke down
            rows.append({**r, "epoch": s // per_epoch, "steps": s, "val_elbo": elbo})
    return pd.DataFrame(rows)


@pytest.fixture(scope="module")
def chapter():
    """The chapter's analyses on faked runs: its tuning sweep, one look at 5 seeds; {name: what it holds}."""
    d = at_scale.Design.from_parameters(PARAMETERS)
    tuning = _fake_sweep(at_scale.tuning_grid(d))
    tuned = at_scale.tune(tuning, _history(tuning), d)
    plan = at_scale.Plan(d, tuned)
    runs = _fake_sweep(plan.grid(d.evaluation_seeds[:5], lambda claim: True))
    ev = plan.evaluation(runs, _history(runs), _history(runs, "curve"))
    return dict(design=d, tuning=tuning, tuned=tuned, plan=plan, runs=runs, ev=ev)


def _slope(x, y) -> float:
    """The OLS slope of y on x, by hand."""
    x, y = np.asarray(x, float), np.asarray(y, float)
    return float(((x - x.mean()) * (y - y.mean())).sum() / ((x - x.mean()) ** 2).sum())


# -- the design --------------------------------------------------------------------------------------


def test_the_fixed_number_of_updates_is_the_reference_batchs_and_every_batch_reaches_it_in_whole_epochs():
    d = at_scale.Design.from_parameters(PARAMETERS)
    assert d.updates == 10 * (5000 // 128) == 390
    assert d.budgets["fixed epochs"] == {32: 10, 128: 10, 512: 10}
    assert d.budgets["fixed updates"] == {32: 3, 128: 10, 512: 44}  # 156 and 9 updates an epoch: 468 and 396 ≥ 390
    assert all(e * (5000 // b) >= 390 > (e - 1) * (5000 // b) for b, e in d.budgets["fixed updates"].items())
    assert d.cells == [(32, 3), (32, 10), (128, 10), (512, 10), (512, 44)]
    assert d.mlp["architecture"] == "mlp" and d.mlp["hidden_units"] == [256] and d.mlp["eval_k"] == 1
    assert d.conv["architecture"] == "conv" and d.conv["hidden_units"] == [16] and d.conv["epochs"] == 2
    assert d.conv["train_size"] == 2500 and d.conv["learning_rate"] == 1e-3  # the Keras example's rate
    assert d.model == "784-256-16 MLP VAE"


def test_a_size_of_0_means_every_image():
    d = at_scale.Design.from_parameters({**PARAMETERS, "train_size": 0, "held_out_size": 0})
    assert (d.n_train, d.n_held) == (50_000, 10_000)
    assert d.mlp["train_size"] is None and d.mlp["held_out_size"] is None


def test_the_design_values_take_every_delta_from_the_claims_tables():
    d = at_scale.Design.from_parameters(PARAMETERS)
    v = d.values({r.id: r for r in records.load("09_at_scale")})
    assert (
        v["delta"] == records.record("fm-bs-gap").delta == 1.0 and v["delta-digits"] == records.record("bs-gap").delta
    )
    assert v["delta-steps"] == records.record("bs-steps").delta and v["delta-slow"] == records.record("lr-slow").delta
    assert v["delta-units"] == records.record("beta-collapse").delta
    assert v["examples"] == 50_000 and v["fu-epochs"] == "3 at batch 32, 10 at batch 128, 44 at batch 512"
    assert v["subsample"].startswith("5,000 of 50,000 (10%) training images, 10 epochs (50,000 examples per run)")


def test_the_claims_table_repeats_the_recipes_claims_with_nats_scaled_to_this_elbo():
    table = {r.id: r for r in records.load("09_at_scale")}
    assert {r.repeats for r in table.values()} == {
        "bs-gap", "bs-steps", "lr-slow", "opt-adam-sgd", "lr-warmup-cosine", "beta-collapse"
    }  # fmt: skip
    for r in table.values():
        digits = records.record(r.repeats)
        if r.unit == "nats":
            assert r.delta == pytest.approx(10 * digits.delta), r.id
        else:
            assert r.delta == digits.delta, r.id
    assert "momentum" in table["fm-opt-adam-momentum"].claim and "conv" in table["fm-conv-beta-collapse"].claim
    assert table["fm-bs-gap"].condition == "the budget" and table["fm-lr-warmup-cosine"].condition == "the peak rate"


# -- tuning ------------------------------------------------------------------------------------------


def test_the_tuning_runs_cover_each_setting_on_the_tuning_seeds_only():
    d = at_scale.Design.from_parameters(PARAMETERS)
    configs = expand_grid(at_scale.tuning_grid(d))
    assert {c.seed for c in configs} == {1000, 1001, 1002}
    by_opt = {o: sorted({c.learning_rate for c in configs if c.optimizer == o and c.batch_size == 128 and c.beta == 1})
              for o in ("adam", "sgd", "momentum")}  # fmt: skip
    assert by_opt == {"adam": d.learning_rates, "sgd": d.sgd_lrs, "momentum": d.momentum_lrs}
    cells = {(c.batch_size, c.epochs) for c in configs if c.optimizer == "adam" and c.beta == 1}
    assert cells == set(d.cells)
    assert {c.beta for c in configs} == {0.25, 1.0, 4.0}


def test_every_setting_is_tuned_on_validation_elbo_and_never_at_a_rate_that_broke(chapter):
    tuned, tuning = chapter["tuned"], chapter["tuning"]
    assert tuned.rates == {"adam": 0.004, "sgd": 0.0064, "momentum": 0.0016}
    for (b, e), rate in tuned.cell_rates.items():  # by hand: the best mean validation ELBO, no broken run
        cell = tuning[
            (tuning.batch_size == b) & (tuning.epochs == e) & (tuning.optimizer == "adam") & (tuning.beta == 1)
        ]
        means = cell.groupby("learning_rate").val_elbo.agg(lambda v: v.mean() if v.notna().all() else -np.inf)
        assert rate == means.idxmax()
    assert set(tuned.cell_rates) == set(chapter["design"].cells) and set(tuned.beta_rates) == {0.25, 1.0, 4.0}
    assert tuned.beta_rates[1.0] == tuned.rates["adam"] and tuned.where == "inside the grid"


def test_the_best_beta_is_chosen_on_the_tuning_seeds_validation_elbo(chapter):
    tuned, tuning = chapter["tuned"], chapter["tuning"]
    at = lambda b: tuning[(tuning.beta == b) & np.isclose(tuning.learning_rate, tuned.beta_rates[b]) &
                          (tuning.batch_size == 128) & (tuning.epochs == 10)].val_elbo.mean()  # fmt: skip
    assert tuned.best_beta == max([0.25, 1.0, 4.0], key=at) == 0.25
    assert tuned.best["epochs"] == 10 and tuned.best_name.startswith("Adam, batch ")


# -- the looks ---------------------------------------------------------------------------------------------


def test_a_claim_decided_at_a_look_keeps_its_seeds_while_the_open_ones_take_more(chapter):
    d, tuned = chapter["design"], chapter["tuned"]
    plan = at_scale.Plan(d, tuned)
    first = expand_grid(plan.grid(d.evaluation_seeds[:5], lambda claim: True))
    second = expand_grid(plan.grid(d.evaluation_seeds[:10], lambda claim: claim == "fm-bs-gap"))
    assert plan.taken["fm-bs-gap"] == list(range(10)) and plan.taken["fm-opt-adam-sgd"] == list(range(5))
    new = set(second) - set(first)
    assert new and all(c.seed in range(5, 10) and c.optimizer == "adam" and c.lr_schedule == "constant" for c in new)
    assert {(c.batch_size, c.epochs) for c in new} == set(d.cells)
    assert any(c.eval_k == 100 and c.seed == 0 for c in first), "the headline NLL run"
    ladders = {c.seed: c.learning_rate for c in first if c.learning_rate not in d.learning_rates and c.batch_size == 128
               and c.optimizer == "adam" and c.beta == 1 and c.lr_schedule == "constant"}  # fmt: skip
    assert len(ladders) == 5, "each seed on its own shifted ladder"
    taken = plan.seeds_values()["seeds-taken"]
    assert taken.startswith("5 for ") and taken.endswith("; 10 for the batch gap") and "fm-" not in taken, taken
    assert plan.seeds_values()["n-seeds"] == 10


# -- the estimates the verdicts judge -----------------------------------------------------------------


def test_the_batch_slopes_are_each_seeds_ols_slope_and_leave_a_broken_run_out(chapter):
    ev = chapter["ev"]
    arms = ev.batch_arms()
    assert list(arms) == ["fixed epochs", "fixed updates"]
    assert set(arms["fixed updates"].epochs) == {3, 10, 44} and (arms["fixed updates"].eval_every == 13).all()
    effects, interaction = at_scale.batch_slopes(arms)
    fe = arms["fixed epochs"]
    by_hand = [_slope(np.log2(g.batch_size), g.test_elbo) for _, g in fe.groupby("seed")]
    assert effects["fixed epochs"].estimate == pytest.approx(np.mean(by_hand)) and effects["fixed epochs"].n == 5
    broken = {
        k: v.assign(status=np.where((v.seed == 0) & (v.batch_size == 128), "diverged", v.status))
        for k, v in arms.items()
    }
    without = at_scale.batch_slopes(broken)[0]["fixed epochs"]
    g = fe[(fe.seed == 0) & (fe.batch_size != 128)]
    assert without.n == 5 and without.estimate == pytest.approx(
        np.mean([_slope(np.log2(g.batch_size), g.test_elbo), *by_hand[1:]])
    )
    assert interaction.kind == "paired"


def test_the_updates_to_a_target_fall_with_the_batch_and_the_critical_batch_is_fitted_at_every_target(chapter):
    ev, tuned, tuning, d = chapter["ev"], chapter["tuned"], chapter["tuning"], chapter["design"]
    usable = []  # by hand: on the tuning seeds' fixed-updates runs at their tuned rates, 4 runs in 5 reach it
    for target in d.targets:
        shares = [
            (tuning[(tuning.batch_size == b) & (tuning.epochs == e) & np.isclose(tuning.learning_rate, tuned.cell_rates[b, e])
                    & (tuning.beta == 1)].val_elbo >= target).mean()
            for b, e in d.budgets["fixed updates"].items()
        ]  # fmt: skip
        usable += [target] if min(shares) >= 0.8 else []
    assert tuned.targets == usable and usable
    crit = ev.critical_batch()
    assert list(crit.curve.target) == PARAMETERS["targets"] and list(crit.curve.target[crit.curve.usable]) == usable
    assert crit.target == max(usable)
    kwargs = ev.bs_steps()
    by_hand = [_slope(np.log2(g.batch_size), np.log2(g.steps_to_target)) for _, g in crit.runs.groupby("seed")]
    assert kwargs["effect"].estimate == pytest.approx(np.mean(by_hand)) and kwargs["effect"].estimate < 0
    assert set(kwargs["runs"].run_id) == set(crit.runs.run_id) and kwargs["tuned_on"] == [1000, 1001, 1002]


def test_without_curves_the_critical_batch_is_not_determined_and_the_claim_is_not_testable(chapter):
    plan = chapter["plan"]
    ev = plan.evaluation(chapter["runs"], _history(chapter["runs"]), pd.DataFrame())
    assert not ev.critical_batch().found and not ev.bs_steps()["effect"].tested
    assert ev.bcrit_values()["bcrit"] == "not determined in this build"


def test_the_slow_rate_slope_uses_the_rungs_chosen_on_the_tuning_seeds_and_judges_the_evaluation_seeds(chapter):
    ev, d, tuned, tuning = chapter["ev"], chapter["design"], chapter["tuned"], chapter["tuning"]
    ladder = ev.ladder()
    assert len(ladder) == 5 * len(d.ladder_lrs)
    for _, g in ladder.groupby("seed"):  # each seed's rates: the ladder shifted up by less than one rung
        shift = np.log2(np.sort(g.learning_rate.to_numpy()) / d.ladder_lrs)
        assert np.allclose(shift, shift[0]) and 0 <= shift[0] < 1
    ok = []  # by hand: the grid rates at or below the best at which 4 tuning runs in 5 cross between two evaluations
    grid = tuning[
        (tuning.optimizer == "adam") & (tuning.batch_size == 128) & (tuning.epochs == 10) & (tuning.beta == 1)
    ]
    for rate, g in _history(grid).groupby("learning_rate"):
        crossed = [(h.val_elbo >= -310).any() and not h.val_elbo.iloc[0] >= -310 for _, h in g.groupby("seed")]
        if np.mean(crossed) >= 0.8 and rate <= tuned.rates["adam"]:
            ok.append(rate)
    has = lambda r: any(np.isclose(r, x) for x in ok)
    assert tuned.rungs == [k for k, low in enumerate(d.ladder_lrs) if has(low) and has(2 * low)] and tuned.rungs
    slow, values = ev.slow()
    assert set(slow.learning_rate) <= set(ladder.learning_rate) and len(slow)
    assert (
        values["lr-slow-range"]
        == f"rates {fmt(d.ladder_lrs[min(tuned.rungs)])} to {fmt(2 * d.ladder_lrs[max(tuned.rungs)])}"
    )
    by_hand = [
        _slope(np.log2(g.learning_rate), np.log2(g.steps_to_target)) for _, g in slow.groupby("seed") if len(g) > 1
    ]
    assert ev.lr_slow()["effect"].estimate == pytest.approx(np.mean(by_hand)) and np.mean(by_hand) < 0


def test_the_breaking_rate_is_the_mean_midpoint_of_the_seeds_that_broke_and_the_others_are_counted(chapter):
    ev, d = chapter["ev"], chapter["design"]
    ladder = ev.ladder()
    values, table = at_scale.breaking(ladder, d, 0.004)
    points = []
    for _, g in ladder.groupby("seed"):  # by hand: midpoint of the largest stable and the first broken rate
        g = g.sort_values("learning_rate")
        bad = g[g.status != "ok"]
        if len(bad):
            first = bad.learning_rate.iloc[0]
            points.append(math.sqrt(first * g[g.learning_rate < first].learning_rate.max()))
    gm = math.exp(np.mean(np.log(points)))
    e = stats.log_mean(points)
    assert e.estimate == pytest.approx(gm) and values["lr-break"] == e.format()
    assert values["lr-break-ratio"].startswith(fmt(gm / 0.004, 2) + " (95% CI ")
    assert values["lr-never-broke"] == f"{5 - len(points)} of 5"
    assert table["runs"].sum() == len(ladder) and table["runs that broke down"].sum() == (ladder.status != "ok").sum()


def test_adam_against_each_sgd_is_the_seed_matched_difference_and_a_broken_run_ranks_worst(chapter):
    ev = chapter["ev"]
    for sgd in ("sgd", "momentum"):
        arms = ev.optimizer_arms(sgd)
        assert list(arms) == ["default rate", "tuned rate"] and set(arms["tuned rate"]) == {"adam", sgd}
        effects, _ = at_scale.optimizer_effects(arms, sgd)
        a, b = (arms["tuned rate"][o].set_index("seed").test_elbo for o in ("adam", sgd))
        assert (
            effects["tuned rate"].estimate == pytest.approx((a - b).mean()) and effects["tuned rate"].kind == "paired"
        )
    arms = ev.optimizer_arms("momentum")
    m = arms["tuned rate"]["momentum"]
    arms["tuned rate"]["momentum"] = m.assign(
        status=np.where(m.seed == 0, "diverged", "ok"), test_elbo=m.test_elbo.where(m.seed != 0)
    )
    ranked = at_scale.optimizer_effects(arms, "momentum")[0]["tuned rate"]
    assert "rank-biserial" in ranked.name and ranked.estimate == 1.0


def test_the_schedule_and_beta_estimates_are_recomputed_by_hand(chapter):
    ev = chapter["ev"]
    runs = ev.schedule_runs()
    warm = runs[runs.lr_schedule == "warmup_cosine"].set_index("seed").test_elbo
    const = runs[runs.lr_schedule == "constant"].set_index("seed").test_elbo
    effect = ev.schedule()["effect"]
    assert list(effect) == ["peak 0.016"] and effect["peak 0.016"].estimate == pytest.approx((warm - const).mean())
    for conv, runs in ((False, ev.beta_runs()), (True, ev.conv_runs())):
        by_hand = [_slope(np.log2(g.beta), g.active_units) for _, g in runs.groupby("seed")]
        assert ev.beta(conv=conv)["effect"].estimate == pytest.approx(np.mean(by_hand)) and np.mean(by_hand) < 0
    assert "tuned_on" not in ev.beta(conv=True) and set(ev.conv_runs().architecture) == {"conv"}


# -- collapse ------------------------------------------------------------------------------------------


def test_collapse_is_counted_per_setting_and_the_confounded_claims_are_estimated_without_it(chapter):
    ev = chapter["ev"]
    dead_seed = ev.runs.seed.eq(1) & ev.runs.batch_size.eq(512) & ev.runs.epochs.eq(10) & ev.runs.architecture.eq("mlp")
    runs = ev.runs.assign(active_units=ev.runs.active_units.where(~dead_seed, 0.0))
    ev2 = at_scale.Evaluation(runs, ev.history, ev.curves, ev.d, ev.tuned, ev.taken)
    judged = ev2.judged_runs()
    table = at_scale.collapse_table(judged).set_index("setting")
    assert table["runs with no active unit"].sum() == int(((judged.active_units == 0) & ~judged.broke).sum())
    big = table.loc[[k for k in table.index if k.startswith("MLP, Adam, batch 512, 10 epochs") and "curves" not in k]]
    assert big["runs with no active unit"].tolist() == [1] and big["runs"].tolist() == [5]
    values = ev2.code_users()
    assert values["bs-gap-dead"] == "1 of 30 runs"
    fe = ev2.batch_arms()["fixed epochs"]
    kept = fe[~((fe.seed == 1) & (fe.batch_size == 512))]
    by_hand = np.mean([_slope(np.log2(g.batch_size), g.test_elbo) for _, g in kept.groupby("seed")])
    effects = ev2.code_user_effects()
    assert effects["fm-bs-gap"]["fixed epochs"].estimate == pytest.approx(by_hand)
    assert at_scale.batch_slopes(ev2.batch_arms())[0]["fixed epochs"].estimate != pytest.approx(by_hand)  # all runs
    assert values["bs-gap-active"].startswith("fixed epochs: ") and "; fixed updates: " in values["bs-gap-active"]
    assert values["opt-adam-sgd-dead"] == "0 of 20 runs"  # Adam and plain SGD, at default and tuned rates


def test_the_quality_values_count_the_runs_and_state_delta_as_a_share_of_the_elbo(chapter):
    ev = chapter["ev"]
    q = at_scale.quality_values(ev, 1.0)
    judged = ev.judged_runs()
    mlp = judged[(judged.architecture == "mlp") & ~protocol.unstable(judged)]
    assert q["mean-elbo"] == pytest.approx(mlp.test_elbo.mean())
    assert q["delta-share"] == f"{100 / abs(mlp.test_elbo.mean()):.2g}%"
    assert q["n-broke"] == f"{int(protocol.unstable(judged).sum())} of {len(judged)}"


def test_the_full_scale_cost_is_every_runs_examples_at_its_measured_throughput(chapter):
    d, runs = chapter["design"], pd.concat([chapter["tuning"], chapter["runs"]]).drop_duplicates("run_id")
    v = at_scale.rerun_values(runs, d)
    ok = runs[runs.status == "ok"]
    per_run = [50_000 * 30 * (r.epochs / (2 if r.architecture == "conv" else 10)) / 1e4 for r in ok.itertuples()]
    assert v["full-core-hours"] == fmt(sum(per_run) / 3600, 2)
    assert v["n-runs"] == len(ok) and v["conv-runs"] == (ok.architecture == "conv").sum()


# -- the page and its placeholders ------------------------------------------------------------------------


def _chapter_values(chapter) -> dict:
    """Every value the chapter publishes with the data, as it calls the analyses."""
    ev, d, plan = chapter["ev"], chapter["design"], chapter["plan"]
    fam = verdicts.Family("09_at_scale")
    values = d.values(fam.records) | at_scale.quality_values(ev, 1.0) | plan.seeds_values() | ev.code_users()
    values |= ev.batch_values() | ev.bcrit_values() | ev.lr_values()[0] | ev.optimizer_values() | ev.schedule_values()
    values |= ev.beta_values() | ev.headline_values() | at_scale.rerun_values(chapter["runs"], d)
    noise = [
        "noise-epochs",
        "noise-last",
        "bsimple",
        "bsimple-change",
        "bsimple-spread",
        "matched-epochs",
        "matched-elbo",
        "matched",
        "ratio",
    ]  # batch.noise_values: measured in the notebook (TensorFlow)
    return {f"fm-{k}": v for k, v in values.items()} | {f"fm-{k}": "" for k in noise}


def _published_names(call: str) -> set[str]:
    """The names the chapter's code passes to ``call`` (publish_figure, publish_table) as its second argument."""
    cells = json.loads(CHAPTER.read_text(encoding="utf-8"))["cells"]
    source = "\n".join(
        "".join(c["source"]) for c in cells if c["cell_type"] == "code" and "%pip" not in "".join(c["source"])
    )
    calls = [n for n in ast.walk(ast.parse(source)) if isinstance(n, ast.Call) and getattr(n.func, "id", "") == call]
    return {n.args[1].value for n in calls}


def test_the_page_pastes_every_value_the_chapter_publishes_with_its_data_and_nothing_else(chapter):
    page = placeholders.pasted(placeholders.chapter_markdown("09_at_scale"))
    shorts = {f"{r.id}-short" for r in records.load("09_at_scale")}
    notes = {f"{r.id}-note" for r in records.load("09_at_scale")}
    published = set(_chapter_values(chapter))
    assert set(page["value"]) - shorts == published - notes
    assert notes <= published, "the driver's side-by-side table reads each claim's note"


def test_the_page_pastes_every_figure_and_table_and_verdict_the_chapter_publishes():
    page = placeholders.pasted(placeholders.chapter_markdown("09_at_scale"))
    assert set(page["figure"]) == _published_names("publish_figure")
    assert set(page["table"]) == _published_names("publish_table")
    assert page["markdown"] == ["fm-data-note", *(r.id for r in records.load("09_at_scale"))]


def test_pasted_reads_roles_and_directives_once_each_in_page_order():
    text = (
        "A {glue:text}`a-b` and {glue}`c:.2f`, again {glue:text}`a-b`.\n\n:::{glue:md} f-figure\n:format: myst\n:::\n"
        "```{glue:md} t-table\n```\n:::{glue:md} box\n:::\n```{glue:figure} g\n```\n"
    )
    assert placeholders.pasted(text) == {
        "value": ["a-b", "c"],
        "figure": ["f", "g"],
        "table": ["t"],
        "markdown": ["box"],
    }


def test_a_chapter_whose_notebook_is_not_there_pastes_nothing(tmp_path):
    assert placeholders.chapter_markdown("09_at_scale", chapters=tmp_path) == ""


@pytest.fixture
def recorded(monkeypatch):
    """What the placeholders publish, by kind, instead of gluing it."""
    out = {"figure": [], "table": [], "value": [], "markdown": []}
    monkeypatch.setattr(placeholders, "_figure", lambda name, reason: out["figure"].append(name))
    monkeypatch.setattr("vae_utils.publish.tables.publish_table", lambda df, name, *a, **k: out["table"].append(name))
    monkeypatch.setattr(
        "vae_utils.claims.verdicts.publish_value", lambda key, text, *a, **k: out["value"].append((key, text))
    )
    monkeypatch.setattr("myst_nb.glue", lambda key, *a, **k: out["markdown"].append(key))
    return out


def test_without_the_data_every_pasted_key_the_chapter_did_not_give_gets_a_placeholder(recorded):
    """A page without a claims table: its boxes are plain Markdown keys, placeholders too."""
    text = "{glue:text}`n` {glue:text}`given`\n:::{glue:md} p-figure\n:::\n:::{glue:md} box\n:::\n"
    placeholders.publish_placeholders(
        "nochapter", "Not measured.", published=["given"], extra=["x-note"], markdown=text
    )
    assert recorded["value"] == [("n", placeholders.NO_DATA), ("x-note", placeholders.NO_DATA)]
    assert recorded["figure"] == ["p"] and recorded["markdown"] == ["box"] and recorded["table"] == []


def test_without_the_data_the_at_scale_page_gets_a_placeholder_for_each_measured_key(recorded, chapter):
    fam = verdicts.Family("09_at_scale")
    at_scale.publish_missing(fam, chapter["design"])
    assert {v.outcome for v in fam.verdicts} == {"not testable"}
    assert all("the data are missing" in v.reason for v in fam.verdicts)
    measured = {
        k for k in _chapter_values(chapter) if k.removeprefix("fm-") not in chapter["design"].values(fam.records)
    }
    assert {k for k, _ in recorded["value"]} == measured
    assert set(recorded["figure"]) == _published_names("publish_figure")
    assert set(recorded["table"]) == _published_names("publish_table")
    assert recorded["markdown"] == []  # the data note is the chapter's own, the boxes are the verdicts'


def test_the_data_note_says_what_is_missing_and_how_to_install_it(monkeypatch):
    d = at_scale.Design.from_parameters(PARAMETERS)
    monkeypatch.setattr(at_scale, "available", lambda name: None)
    note = at_scale.data_note(d)
    assert note.startswith(":::{warning}") and "apt-get install dataset-fashion-mnist" in note
    assert "every verdict reads *not testable*" in note
    monkeypatch.setattr(at_scale, "available", lambda name: "/usr/share/datasets/fashion-mnist")
    note = at_scale.data_note(d)
    assert "read from `/usr/share/datasets/fashion-mnist`" in note and "first 5,000 of the 50,000" in note
    assert note.startswith("Data: Fashion-MNIST (`dataset = fashion_mnist`)")


def test_the_page_names_the_rate_each_beta_of_the_mlp_trained_at_since_the_units_it_switches_off_depend_on_it(chapter):
    ev, d = chapter["ev"], chapter["design"]
    said = ev.beta_values()["beta-rates"]
    tuned = {b: r for b, r in ev.tuned.beta_rates.items() if b in d.collapse_betas}
    assert tuned and all(f"{fmt(r)} at β = {fmt(b)}" in said for b, r in tuned.items())
    runs = ev.beta_runs()
    assert all(set(runs[runs.beta == b].learning_rate) == {r} for b, r in tuned.items())  # the rates the runs used
