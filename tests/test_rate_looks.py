"""The looks of chapters 05, 06 and 11 (claims.learning_rate, claims.scaling, claims.tuning): each look
trains only the arms of the claims still open, and the described runs keep the seeds of the first look.
A fake sweep stands in for training: every grid row becomes a run whose metrics follow from its config."""

import numpy as np
import pandas as pd

from vae_utils.claims import learning_rate, rates, scaling, tuning, verdicts

SCOPE = {"dataset": "digits", "architecture": "mlp", "hidden_units": (256,), "latent_dim": 8,
         "binarization": "dynamic", "beta": 1.0, "eval_every": 0, "epochs": 30, "optimizer": "adam",
         "batch_size": 64, "lr_schedule": "constant", "status": "ok"}  # fmt: skip


class _Sweep:
    """A sweep without training: ``metric(config, seed)`` gives each run's test ELBO; ``calls`` holds
    every call's configs, so a test can count what each look trained."""

    def __init__(self, metric):
        self.metric, self.calls = metric, []

    def __call__(self, grid: list[dict]) -> pd.DataFrame:
        rows = []
        for g in grid:
            keys = [k for k, v in g.items() if isinstance(v, list)]
            combos = [dict(zip(keys, vals, strict=True)) for vals in _product([g[k] for k in keys])]
            rows += [self._row({**g, **c}) for c in combos]
        self.calls.append(rows)
        return pd.DataFrame(rows)

    def _row(self, c: dict) -> dict:
        run_id = "-".join(f"{c[k]}" for k in sorted(c) if k not in SCOPE or c[k] != SCOPE[k])
        test = self.metric(c)
        return {**SCOPE, **c, "run_id": run_id, "test_elbo": test, "val_elbo": test}

    def seeds_of(self, call: int, **where) -> set:
        return {r["seed"] for r in self.calls[call] if all(np.isclose(r[k], v) if isinstance(v, float) else r[k] == v
                                                           for k, v in where.items())}  # fmt: skip


def _product(lists):
    out = [[]]
    for values in lists:
        out = [[*o, v] for o in out for v in values]
    return out


def _noise(c: dict) -> float:
    return float(np.random.default_rng([c["seed"], int(1e6 * c["learning_rate"]), c["batch_size"]]).normal())


# -- chapter 06: the scaling rules ----------------------------------------------------------------


def _scaling_metric(c: dict) -> float:
    """Adam's square-root rule keeps the result (no effect, seed noise); every other rule loses 3 nats."""
    b0_rate = {"adam": 0.004, "sgd": 0.1}[c["optimizer"]]
    if c["batch_size"] == 32:
        return -25.0 + 0.1 * _noise(c)
    sqrt = np.isclose(c["learning_rate"], b0_rate * (c["batch_size"] / 32) ** 0.5)
    return -25.0 + (1.0 * _noise(c) if sqrt and c["optimizer"] == "adam" else -3.0 + 0.1 * _noise(c))


def test_a_rule_decided_at_the_first_look_stops_and_only_the_open_rule_and_its_start_get_more_seeds():
    tuned = pd.DataFrame([{"optimizer": o, "batch_size": b, "learning_rate": lr * b / 32 * 1.1}
                          for o, lr in (("adam", 0.004), ("sgd", 0.1)) for b in (32, 128, 512)])  # fmt: skip
    tuned.loc[tuned.batch_size == 32, "learning_rate"] = [0.004, 0.1]
    arms = rates.scaling_arms(tuned, [32, 128, 512])
    design = scaling.Design({"dataset": "digits", "epochs": 30}, arms, ["adam", "sgd"], [1000, 1001, 1002])
    run, fam, evaluation = _Sweep(_scaling_metric), verdicts.Family("06_batch_lr", looks=(5, 10, 20)), None
    for look in fam.looks(list(range(20))):
        evaluation = scaling.judge_look(fam, design, look, run, evaluation)
    v = {x.id: x for x in fam.finalize()}
    assert v["bl-sgd-linear"].outcome == v["bl-adam-linear"].outcome == "supported"
    assert v["bl-sgd-linear"].seeds_used == 5 and v["bl-adam-sqrt"].seeds_used == 20
    assert len(run.calls) == 3 and run.seeds_of(2, optimizer="sgd") == set()
    assert run.seeds_of(2, optimizer="adam", batch_size=32) == set(range(20)), "the open rule's start got the seeds"
    retuned = arms[(arms.rule == "retuned") & (arms.optimizer == "adam")].iloc[-1]
    assert run.seeds_of(0, batch_size=512, learning_rate=retuned.learning_rate) == set(range(5))
    assert run.seeds_of(2, batch_size=512, learning_rate=retuned.learning_rate) == set(), "described: first look only"
    words = scaling.seed_values(evaluation, design, fam.plan)
    assert words["looks"] == "5, 10 and 20" and words["seeds-by-arm"].startswith("Adam: 20 at the smallest batch")


# -- chapter 11: the check grid --------------------------------------------------------------------


def test_the_critical_batch_size_is_judged_once_at_the_first_look_and_the_rate_claims_get_more_seeds():
    centres = {32: 0.002, 64: 0.003, 128: 0.004}
    grid = [{"dataset": "digits", "optimizer": "adam", "batch_size": b, "epochs": 30, "seed": [0],
             "learning_rate": [c / 2, c, 2 * c]} for b, c in centres.items()]  # fmt: skip
    design = tuning.Design(grid, centres, 64, -25.0, [100.0, 110.0, 120.0], [0, 1, 2])
    run = _Sweep(lambda c: -25.0 + 0.3 * _noise(c))  # every rate as good as the advised one
    fits = []

    def histories(run_ids):  # curves that never reach the target: no critical batch size is fitted
        fits.append(len(run_ids))
        rows = [r for call in run.calls for r in call if r["run_id"] in set(run_ids)]
        return pd.DataFrame([{**r, "epoch": e, "steps": 10 * e, "val_elbo": -30.0} for r in rows for e in (1, 2, 3)])

    fam, runs = verdicts.Family("11_tuning", looks=(5, 10, 20)), {}
    for look in fam.looks(list(range(10, 30))):
        runs = tuning.judge_look(fam, design, look, run, histories, runs)
    v = {x.id: x for x in fam.finalize()}
    # B_simple's few runs, not the grid's seeds, bound that claim's interval: more seeds would not decide it
    assert v["tune-batch"].outcome == "not testable" and v["tune-batch"].seeds_used == 5
    assert fits == [45], "the fit at the first look only, on every batch size with its seeds"
    open_at_last = [x for x in ("tune-rate", "tune-rate-rule") if v[x].seeds_used == 20]
    trained = run.calls[::3]  # each look: one sweep trains both arms, then each arm's rows are read back
    assert [{r["seed"] for r in call} for call in trained] == [set(range(10, 10 + n)) for n in (5, 10, 20)]
    assert set(runs) >= {"advised", "others", "pairs", "fit"} and len(tuning.grid_runs(runs)) == len(
        {r["run_id"] for c in run.calls for r in c}
    )
    assert all(v[x].outcome in ("equivalent", "inconclusive", "not testable") for x in open_at_last)


# -- chapter 05: the learning rate ------------------------------------------------------------------


def _rate_metric(c: dict) -> float:
    """Warm-up helps by 2 nats at either peak; cosine decay changes nothing (seed noise)."""
    schedule = c.get("lr_schedule", "constant")
    gain = {"warmup": 2.0, "cosine": 0.0, "warmup_cosine": 2.0}.get(schedule, 0.0)
    noise = np.random.default_rng([c["seed"], int(1e6 * c["learning_rate"]), len(schedule)]).normal()
    return -25.0 + gain + (1.0 if schedule == "cosine" else 0.05) * noise


def _histories(run):
    def histories(run_ids):
        rows = [r for call in run.calls for r in call if r["run_id"] in set(run_ids)]
        speed = {r["run_id"]: r["learning_rate"] * 40.0 * (1 + 0.05 * _noise(r)) for r in rows}  # per seed
        return pd.DataFrame(  # curves that cross −26 nats after about 0.04 / rate epochs
            [{**r, "epoch": e, "steps": 20 * e, "val_elbo": -24.0 - 10.0 * np.exp(-e * speed[r["run_id"]])}
             for r in rows for e in range(1, r["epochs"] + 1)]
        )  # fmt: skip

    return histories


def test_the_described_grid_trains_at_the_first_look_and_a_decided_schedule_stops_while_cosine_goes_on():
    design = learning_rate.Design({"dataset": "digits", "optimizer": "adam", "batch_size": 64},
                                  [0.001, 0.002, 0.004, 0.008], 30, [0.002, 0.004], [0.004, 0.008],
                                  ["warmup", "cosine", "warmup_cosine"], 5, [0.004, 0.032], 40, 0.1, -26.0,
                                  [1000, 1001, 1002])  # fmt: skip
    run = _Sweep(_rate_metric)
    fam, runs = verdicts.Family("05_learning_rate", looks=(5, 10, 20)), {}
    for look in fam.looks(list(range(20))):
        runs = learning_rate.judge_look(fam, design, look, run, _histories(run), runs)
    v = {x.id: x for x in fam.finalize()}
    assert v["lr-warmup"].outcome == "supported" and v["lr-warmup"].seeds_used == 5
    assert v["lr-cosine"].seeds_used == 20 and runs["cosine"].seed.nunique() == 20
    assert runs["warmup"].seed.nunique() == 5 and runs["constant"].seed.nunique() == 20
    assert runs["grid"].seed.nunique() == 5, "the described grid: the first look's seeds"
    assert v["lr-slow"].outcome == "supported" and runs["slow"].seed.nunique() == 5
    grid = learning_rate.grid_runs(runs)
    assert grid.groupby("learning_rate").seed.nunique().to_dict() == {0.001: 5, 0.002: 5, 0.004: 20, 0.008: 20}
    words = learning_rate.seed_values(runs, fam.plan)["seeds-by-arm"]
    assert words.startswith("5 seeds in the grid of rates") and "20 with cosine decay" in words


def test_the_precision_claims_stay_open_while_the_convergence_check_is_undecided_and_not_testable_at_the_end():
    design = learning_rate.Design({"dataset": "digits", "optimizer": "adam", "batch_size": 64}, [0.004], 30, [],
                                  [0.004], [], 5, [0.004, 0.032], 8, 0.1, -26.0, [1000])  # fmt: skip
    run = _Sweep(lambda c: -25.0 + 0.1 * _noise(c))

    def histories(run_ids):  # the small rate still gains about Δ over the last quarter: the check is undecided
        rows = [r for call in run.calls for r in call if r["run_id"] in set(run_ids)]
        return pd.DataFrame([{**r, "epoch": e, "val_elbo": -25.0 + 0.05 * e + 0.05 * _noise({**r, "seed": 100 * r["seed"] + e})}
                             for r in rows for e in range(1, r["epochs"] + 1)])  # fmt: skip

    fam, runs = verdicts.Family("05_learning_rate", looks=(5, 10, 20)), {}
    for look in fam.looks(list(range(20))):
        runs = learning_rate.judge_look(fam, design, look, run, histories, runs)
        if len(look) < 20:
            assert runs["precision"].check.outcome == "undecided"
    v = {x.id: x for x in fam.finalize()}
    assert v["lr-precise"].outcome == v["lr-jitter"].outcome == "not testable"
    assert v["lr-precise"].seeds_used == 20 and runs["long"].seed.nunique() == 20
    assert "convergence check" in v["lr-precise"].reason
    assert runs["precision"].check.gain.level > 0.95, "the check is made at the looks' nominal level"
