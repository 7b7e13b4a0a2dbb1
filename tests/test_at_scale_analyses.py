"""The at-scale chapter's analyses (``vae_utils.claims.at_scale``) and the placeholders a page gets
when its data are missing (``vae_utils.publish.placeholders``), on runs faked from the chapter's grids:
no kernel, no training (a second).

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

from vae_utils.claims import at_scale, records, verdicts
from vae_utils.experiments.grid import expand_grid
from vae_utils.publish import placeholders

REPO = Path(__file__).resolve().parents[1]
CHAPTER = REPO / "chapters" / "09_at_scale.ipynb"
PARAMETERS = dict(
    dataset="fashion_mnist", train_size=1250, held_out_size=500, epochs=8, latent_dim=16, dense_units=16,
    learning_rates=[6.25e-5, 2.5e-4, 1e-3, 4e-3, 1.6e-2, 6.4e-2, 0.256], batch_sizes=[32, 128],
    batch_lrs=[2.5e-4, 1e-3, 4e-3, 1.6e-2], sgd_variant="momentum", adam_default_lr=1e-3, sgd_default_lr=0.01,
    betas=[0.25, 1.0, 4.0], beta_lrs=[2.5e-4, 1e-3, 4e-3, 1.6e-2, 6.4e-2], seeds=[0, 1, 2, 3, 4],
    tuning_seeds=[1000, 1001], target_val_elbo=-350.0, nll_k=100,
)  # fmt: skip


def _metrics(c) -> dict:
    """A made-up outcome of one run: best near rate 0.004 (Adam) or 0.016 (SGD), worse at larger
    batches and β, broken at the largest rate; every seed shifts it a little."""
    best = 0.004 if c.optimizer == "adam" else 0.016
    noise = np.random.default_rng([c.seed, int(c.batch_size)]).normal(0, 0.5)
    elbo = -300 - 8 * abs(math.log2(c.learning_rate / best)) - 2 * math.log2(c.batch_size) - 5 * c.beta + noise
    broke = c.learning_rate >= 0.256
    units = max(0.0, 12 - 3 * math.log2(c.beta * 4) + noise)
    return dict(
        status="diverged" if broke else "ok", val_elbo=np.nan if broke else elbo + 1, test_elbo=np.nan if broke else elbo,
        test_nll=np.nan if broke else -elbo - 3, active_units=units, test_kl_loss=10 / c.beta,
        test_reconstruction_loss=-elbo - 10 / c.beta,
    )  # fmt: skip


def _fake_sweep(grid) -> pd.DataFrame:
    """What ``sweep`` returns for ``grid``: the config columns, a run id, made-up metrics."""
    return pd.DataFrame(
        [
            {**c.to_dict(), "run_id": hashlib.sha1(repr(c).encode()).hexdigest()[:12], **_metrics(c)}
            for c in expand_grid(grid)
        ]
    )


def _history(runs: pd.DataFrame, design: at_scale.Design) -> pd.DataFrame:
    """What ``load_histories`` returns: the config columns and the validation ELBO after every epoch,
    rising from −600 to the run's final value."""
    rows = []
    for r in runs.to_dict("records"):
        per_epoch = design.n_train // r["batch_size"]
        for e in range(1, r["epochs"] + 1):
            elbo = -600 + (r["val_elbo"] + 600) * e / r["epochs"]  # NaN for a run that broke down
            rows.append({**r, "epoch": e, "steps": e * per_epoch, "val_elbo": elbo})
    return pd.DataFrame(rows)


@pytest.fixture(scope="module")
def chapter():
    """The chapter's analyses on faked runs of its two sweeps: {name: what the chapter holds}."""
    d = at_scale.Design.from_parameters(PARAMETERS)
    adam = d.reference
    runs = _fake_sweep(
        [
            {**adam, "learning_rate": d.learning_rates, "seed": d.seeds},
            {**adam, "optimizer": ["adam", d.sgd_variant], "learning_rate": d.learning_rates, "seed": d.tuning_seeds},
            *({**adam, "batch_size": b, "epochs": e, "learning_rate": d.batch_lrs, "seed": d.tuning_seeds} for b, e in d.cells),
            {**adam, "beta": d.betas, "learning_rate": d.beta_lrs, "seed": d.tuning_seeds},
        ]
    )  # fmt: skip
    tuned = at_scale.tune(runs, d)
    evaluation = _fake_sweep(
        [
            *({**adam, "optimizer": o, "learning_rate": [tuned.rates[o], r], "seed": d.seeds} for o, r in d.defaults.items()),
            *({**adam, "batch_size": b, "epochs": e, "learning_rate": tuned.cell_rates[b, e], "seed": d.seeds} for b, e in d.cells),
            *({**adam, "beta": b, "learning_rate": tuned.beta_rates[b], "seed": d.seeds} for b in d.betas),
            {**tuned.best, "eval_k": d.nll_k, "seed": d.seeds[0]},
        ]
    )  # fmt: skip
    judged, grid = at_scale.judged_runs(runs, evaluation, d)
    return dict(design=d, runs=runs, tuned=tuned, evaluation=evaluation, judged=judged, grid=grid,
                history=_history(pd.concat([runs, evaluation]), d))  # fmt: skip


# -- the design --------------------------------------------------------------------------------------


def test_the_design_holds_both_budgets_of_the_batch_size_experiment():
    d = at_scale.Design.from_parameters(PARAMETERS)
    assert d.updates == 8 * (1250 // 128) == 72
    assert d.budgets["fixed epochs"] == {32: 8, 128: 8}
    assert d.budgets["fixed updates"] == {32: 2, 128: 8}  # batch 32 takes 39 updates an epoch: 2 epochs ≈ 72
    assert d.cells == [(32, 2), (32, 8), (128, 8)]
    assert d.names == {"adam": "Adam", "momentum": "SGD with momentum"}
    assert d.reference["architecture"] == "conv" and d.reference["batch_size"] == 32 and d.reference["eval_k"] == 1


def test_a_size_of_0_means_every_image():
    d = at_scale.Design.from_parameters({**PARAMETERS, "train_size": 0, "held_out_size": 0})
    assert (d.n_train, d.n_held) == (50_000, 10_000)
    assert d.reference["train_size"] is None and d.reference["held_out_size"] is None


def test_the_design_values_take_delta_from_the_claims_tables():
    d = at_scale.Design.from_parameters(PARAMETERS)
    v = d.values({r.id: r for r in records.load("09_at_scale")})
    assert v["delta"] == records.record("fm-bs-gap").delta
    assert v["delta-digits"] == records.record("bs-gap").delta
    assert (
        v["delta-slow"] == records.record("lr-slow").delta and v["delta-units"] == records.record("beta-collapse").delta
    )
    assert v["subsample"].startswith("1,250 of 50,000 (2.5%) training images, 8 epochs (312 updates at batch 32)")


# -- tuning and the runs judged ------------------------------------------------------------------


def test_every_setting_is_tuned_on_the_tuning_seeds_and_never_at_a_rate_that_broke(chapter):
    tuned, d = chapter["tuned"], chapter["design"]
    assert set(tuned.runs.seed) == set(d.tuning_seeds)
    assert tuned.rates == {"adam": 0.004, "momentum": 0.016}
    assert all(r < 0.256 for r in [*tuned.cell_rates.values(), *tuned.beta_rates.values()])
    assert set(tuned.cell_rates) == set(d.cells) and set(tuned.beta_rates) == set(d.betas)
    assert len(tuned.table) == 2 + len(d.cells) + len(d.betas)
    assert "mean validation ELBO (nats)" in tuned.table.columns


def test_the_headline_setting_is_the_best_tuned_one_at_the_full_budget(chapter):
    tuned = chapter["tuned"]
    assert tuned.best["epochs"] == 8 and tuned.best["beta"] == 0.25 and tuned.best["batch_size"] == 32
    assert tuned.best_name == "Adam, batch 32, β = 0.25, learning rate 0.004"
    run = at_scale.headline(chapter["evaluation"], tuned, chapter["design"])
    assert run.eval_k == 100 and run.seed == 0


def test_the_judged_runs_mark_the_runs_that_broke_down(chapter):
    judged, grid = chapter["judged"], chapter["grid"]
    assert (judged.eval_k == 1).all() and set(grid.seed) == {0, 1, 2, 3, 4}
    assert grid.broke.sum() == 5 and (grid.learning_rate[grid.broke] == 0.256).all()


# -- the estimates the verdicts judge -------------------------------------------------------------------


def test_the_batch_slopes_leave_a_run_that_broke_down_out_of_the_trend(chapter):
    d, tuned = chapter["design"], chapter["tuned"]
    arms = at_scale.batch_arms(chapter["judged"], d, tuned)
    effects, interaction = at_scale.batch_slopes(arms)
    assert list(effects) == ["fixed epochs", "fixed updates"]
    assert effects["fixed epochs"].estimate == pytest.approx(-2.0, abs=0.7) and effects["fixed epochs"].n == 5
    broken = {k: v.assign(broke=v.broke | (v.seed == 0) & (v.batch_size == 128)) for k, v in arms.items()}
    without = at_scale.batch_slopes(broken)[0]["fixed epochs"]
    assert without.n == 4, "seed 0 has one batch size left: no slope, not a slope to a floor"
    assert interaction.kind == "paired"


def test_adam_against_sgd_ranks_a_run_that_broke_down_below_every_run_that_trained(chapter):
    d, tuned = chapter["design"], chapter["tuned"]
    arms = at_scale.optimizer_arms(chapter["judged"], d, tuned)
    assert list(arms) == ["default rate", "tuned rate"] and set(arms["tuned rate"]) == {"adam", "momentum"}
    effects, _ = at_scale.optimizer_effects(arms, d)
    assert effects["tuned rate"].kind == "paired"
    sgd = arms["tuned rate"]["momentum"]
    arms["tuned rate"]["momentum"] = sgd.assign(status=np.where(sgd.seed == 0, "diverged", "ok"), test_elbo=np.nan)
    ranked = at_scale.optimizer_effects(arms, d)[0]["tuned rate"]
    assert "rank-biserial" in ranked.name and ranked.estimate == 1.0


def test_the_rate_scan_finds_the_best_rate_inside_the_grid_and_where_every_seed_broke(chapter):
    scan = at_scale.rate_scan(chapter["grid"])
    assert scan.best == 0.004 and scan.where == "inside the grid" and scan.never_broke == 0
    values = scan.values()
    assert values["lr-break-ratio"] == pytest.approx(0.256 / 0.004)
    assert list(scan.counts.columns) == ["learning rate", "runs", "runs that broke down"]


def test_time_to_target_keeps_the_rates_up_to_the_best_that_cross_between_two_evaluations(chapter):
    d, grid = chapter["design"], chapter["grid"]
    slow, values = at_scale.time_to_target(chapter["history"], grid, d, 0.004)
    assert set(slow.learning_rate) <= {r for r in d.learning_rates if r <= 0.004}
    assert (slow.steps_to_target > 39).all(), "crossed after the first evaluation"
    assert values["lr-slow-range"].startswith("rates ") and "usable" in values["lr-slow-note"]
    none, values = at_scale.time_to_target(
        chapter["history"], grid, at_scale.Design.from_parameters({**PARAMETERS, "target_val_elbo": 0.0}), 0.004
    )
    assert none.empty and values["lr-slow-range"] == "no rate qualified"


def test_the_beta_runs_are_every_beta_at_its_tuned_rate(chapter):
    d, tuned = chapter["design"], chapter["tuned"]
    runs = at_scale.beta_runs(chapter["judged"], d, tuned)
    assert sorted(set(runs.beta)) == d.betas and len(runs) == len(d.betas) * len(d.seeds)
    values = at_scale.beta_values(runs, d)
    assert values["beta-kl-lo"] > values["beta-kl-hi"] and values["beta-best"] == "0.25"


# -- the page and its placeholders ------------------------------------------------------------------------


def _chapter_values(chapter) -> dict:
    """Every value the chapter publishes with the data, as it calls the analyses."""
    d, tuned, judged, grid, history = (chapter[k] for k in ("design", "tuned", "judged", "grid", "history"))
    fam = verdicts.Family("09_at_scale")
    scan = at_scale.rate_scan(grid)
    values = d.values(fam.records) | at_scale.quality_values(judged, grid, history, d, 1.0)
    values |= at_scale.batch_values(at_scale.batch_arms(judged, d, tuned), d) | scan.values()
    values |= at_scale.time_to_target(history, grid, d, scan.best)[1] | at_scale.optimizer_values(d, tuned)
    values |= at_scale.beta_values(at_scale.beta_runs(judged, d, tuned), d)
    values |= at_scale.headline_values(at_scale.headline(chapter["evaluation"], tuned, d), tuned)
    return {f"fm-{k}": v for k, v in values.items()}


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


def test_the_page_pastes_every_figure_and_table_the_chapter_publishes():
    page = placeholders.pasted(placeholders.chapter_markdown("09_at_scale"))
    assert set(page["figure"]) == _published_names("publish_figure")
    assert set(page["table"]) == _published_names("publish_table")
    assert page["markdown"] == ["fm-data-note", "fm-bs-gap", "fm-lr-slow", "fm-opt-adam-sgd", "fm-beta-collapse"]


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
    assert "read from `/usr/share/datasets/fashion-mnist`" in note and "first 1,250 of the 50,000" in note
