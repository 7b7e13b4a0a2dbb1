"""Tests of the sweep machinery: grids, run identity, the store, and tiny sweeps through real papermill.

Run: ``.venv/bin/pytest tests/test_sweeps.py`` (the fault tests are in ``test_sweeps_faults.py``).
Grids are tiny (digits, 1 epoch, small ``eval_k``): a kernel start (~7-15 s) dominates each sweep.
"""

import json
import os
import subprocess
import sys
from pathlib import Path

import numpy as np
import pandas as pd
import pytest

from vae_utils import TrainConfig, fileio
from vae_utils.core.config import FIELDS
from vae_utils.experiments import (
    default_store,
    expand_grid,
    load_histories,
    load_results,
    load_step_losses,
    store,
    sweep,
    sweep_each,
)
from vae_utils.experiments.runner import default_workers, plan
from vae_utils.experiments.template import TEMPLATE, notebook_parameters, parameters_source, write_parameters
from vae_utils.provenance import imported_modules, module_fingerprint, training_version

TINY = {"dataset": "digits", "epochs": 1, "eval_k": 10}
REPO = Path(__file__).resolve().parents[1]


def snapshot(out):
    """Every file of a store with its size and modification time (to see that nothing changed)."""
    out = Path(out)
    if not out.exists():
        return {}
    return {str(p.relative_to(out)): (p.stat().st_size, p.stat().st_mtime_ns) for p in out.rglob("*") if p.is_file()}


# -- grids --------------------------------------------------------------------------------------


def test_a_grid_dict_expands_to_the_cartesian_product_of_its_lists():
    """Lists multiply, scalars are shared, and seeds give one run each, in grid order."""
    configs = expand_grid({"batch_size": [32, 64], "learning_rate": [1e-3, 3e-3], "seed": [0, 1, 2], "epochs": 2})
    assert len(configs) == 12
    assert {(c.batch_size, c.learning_rate, c.seed) for c in configs} == {
        (b, lr, s) for b in (32, 64) for lr in (1e-3, 3e-3) for s in (0, 1, 2)
    }
    assert all(c.epochs == 2 for c in configs)
    assert [c.seed for c in configs[:3]] == [0, 1, 2]


def test_a_list_of_grids_is_their_union_without_duplicates():
    """Dicts and TrainConfigs mix; the same run given twice (beta=1 and beta=1.0) is run once."""
    configs = expand_grid(
        [
            {"batch_size": [32, 64], "beta": 1},
            {"batch_size": 64, "beta": 1.0},
            TrainConfig(batch_size=128),
            {"batch_size": 32, "seeds": [0, 5]},
        ]
    )
    assert [(c.batch_size, c.seed) for c in configs] == [(32, 0), (64, 0), (128, 0), (32, 5)]
    assert all(isinstance(c.beta, float) for c in configs)


def test_hidden_units_lists_of_ints_are_one_architecture_and_lists_of_tuples_are_several():
    """``hidden_units: [256, 128]`` is one two-layer net; ``[(256,), "128,64"]`` is two nets."""
    assert [c.hidden_units for c in expand_grid({"hidden_units": [256, 128]})] == [(256, 128)]
    assert [c.hidden_units for c in expand_grid({"hidden_units": [(256,), "128,64"]})] == [(256,), (128, 64)]


@pytest.mark.parametrize(
    ("grid", "name"),
    [
        ({"batch_size": [32, 0]}, "batch_size"),
        ({"learning_rate": [1e-3, -1.0]}, "learning_rate"),
        ({"optimizer": ["adam", "adamx"]}, "optimizer"),
        ({"beta": [1.0, float("nan")]}, "beta"),
        ({"batchsize": [32]}, "batchsize"),
        ({"seed": []}, "seed"),
        ([{"epochs": 1}, {"kl_schedule": "sometimes"}], "kl_schedule"),
    ],
)
def test_an_invalid_grid_value_fails_before_any_run_naming_the_parameter(tmp_path, grid, name):
    """ValueError names the bad parameter; the store is left exactly as it was (here: not even created)."""
    out = tmp_path / "store"
    with pytest.raises(ValueError, match=name):
        sweep(grid, out, progress=False)
    assert not out.exists()


def test_invalid_workers_and_timeouts_are_refused_before_any_run(tmp_path):
    """workers must be an integer >= 1 and timeout_s a positive number."""
    for kwargs, name in (({"workers": 0}, "workers"), ({"timeout_s": -1}, "timeout_s")):
        with pytest.raises(ValueError, match=name):
            sweep(TINY, tmp_path / "s", progress=False, **kwargs)
    assert not (tmp_path / "s").exists()


def test_the_default_worker_count_is_one_per_core_unless_vae_sweep_workers_says_otherwise(monkeypatch):
    """A driver running chapters side by side can share the cores out through the environment."""
    monkeypatch.delenv("VAE_SWEEP_WORKERS", raising=False)
    assert 1 <= default_workers() <= len(os.sched_getaffinity(0))
    monkeypatch.setenv("VAE_SWEEP_WORKERS", "3")
    assert default_workers() == 3
    monkeypatch.setenv("VAE_SWEEP_WORKERS", "0")
    with pytest.raises(ValueError, match="VAE_SWEEP_WORKERS"):
        default_workers()


def test_plan_cuts_runs_into_blocks_of_similar_cost_keeping_graphs_together():
    """Every run lands in exactly one block; a batch size is not split while blocks stay balanced."""
    configs = expand_grid({"batch_size": [16, 512], "learning_rate": [1e-3, 3e-3, 1e-2], "seed": [0, 1]})
    runs = [(store.run_id(c, "v"), c) for c in configs]
    blocks = plan(runs, 2)
    assert sorted(r for b in blocks for r, _ in b) == sorted(r for r, _ in runs)
    assert len(blocks) == 2
    assert plan(runs[:1], 4) == [runs[:1]]


# -- identity ------------------------------------------------------------------------------------


def test_the_code_fingerprint_ignores_docstrings_and_comments_but_not_code(tmp_path):
    """Editing prose (docstrings, comments, blank lines) keeps a module's fingerprint; editing code changes it."""
    src = '"""Module doc."""\n\ndef f(x):\n    """Doc."""\n    return x + 1  # a comment\n'
    variants = {
        "same": src,
        "prose": '"""Another doc."""\n\n\ndef f(x):\n    """Other."""\n    # new comment\n    return x + 1\n',
        "code": src.replace("x + 1", "x + 2"),
    }
    prints = {}
    for name, text in variants.items():
        path = tmp_path / f"{name}.py"
        path.write_text(text)
        prints[name] = module_fingerprint(path)
    assert prints["prose"] == prints["same"]
    assert prints["code"] != prints["same"]


def test_the_run_id_changes_with_every_config_field_and_with_the_code_version():
    """Same config, same id; one field changed, another id; another code version, another id."""
    base = TrainConfig()
    rid = store.run_id(base, "v1")
    assert store.run_id(TrainConfig(), "v1") == rid
    changed = dict(
        dataset="moons",
        batch_size=32,
        learning_rate=2e-3,
        optimizer="sgd",
        epochs=3,
        seed=1,
        latent_dim=2,
        hidden_units=(64,),
        beta=0.5,
        kl_schedule="linear",
        kl_warmup_epochs=3,
        kl_cycles=2,
        kl_ratio=0.25,
        free_bits=0.5,
        lr_schedule="cosine",
        lr_warmup_epochs=2,
        momentum=0.5,
        weight_decay=0.01,
        decoder_variance=None,
        eval_k=10,
        split_seed=1,
        architecture="conv",
        train_size=640,
        held_out_size=100,
        binarization="static",
        eval_every=10,
    )
    assert set(changed) == set(base.to_dict()), "a TrainConfig field is missing from this test"
    ids = {store.run_id(TrainConfig(**{**base.to_dict(), k: v}), "v1") for k, v in changed.items()}
    assert len(ids) == len(changed) and rid not in ids
    assert store.run_id(base, "v2") != rid
    assert store.run_id(TrainConfig(beta=1), "v1") == store.run_id(TrainConfig(beta=1.0), "v1")


def test_the_training_version_follows_the_template_code_but_not_its_outputs(tmp_path):
    """Editing a code cell of the template changes the version; outputs and metadata do not."""
    nb = json.loads(TEMPLATE.read_text())
    v0 = training_version(TEMPLATE)
    nb["cells"][-1].setdefault("outputs", []).append({"output_type": "stream", "name": "stdout", "text": "hi"})
    nb["metadata"]["papermill"] = {"duration": 1.0}
    (tmp_path / "a.ipynb").write_text(json.dumps(nb))
    assert training_version(tmp_path / "a.ipynb") == v0
    nb["cells"][-1]["source"] = "pd.DataFrame(rows).T"
    (tmp_path / "b.ipynb").write_text(json.dumps(nb))
    assert training_version(tmp_path / "b.ipynb") != v0


def test_the_training_version_covers_the_modules_training_imports_and_not_presentation_ones():
    """training, its imports and the record writer are in; plots, the CLI and the sweep driver are not."""
    mods = {m.removeprefix("vae_utils.") for m in imported_modules()}
    core = {"core.training", "core.model", "core.data", "core.objective", "core.evaluation", "core.config"}
    assert core | {"core.optimizers", "core.schedules", "provenance", "experiments.store"} <= mods
    presentation = {"plots", "plots.style", "cli", "claims.analysis", "publish.figures", "publish.tables"}
    assert not (presentation | {"experiments.runner", "experiments.results"}) & mods


def test_the_template_has_every_trainconfig_field_as_a_typed_parameter_with_its_default():
    """A new TrainConfig field must reach the papermill CLI path too, with the same default."""
    nb = json.loads(TEMPLATE.read_text())
    assert all(c.get("outputs", []) == [] for c in nb["cells"] if c["cell_type"] == "code")
    params = notebook_parameters(TEMPLATE)
    assert set(FIELDS) <= set(params)
    assert {"runs_json", "out", "threads", "seeds"} <= set(params)
    defaults = TrainConfig()
    for name in FIELDS:
        assert TrainConfig.from_dict({name: params[name].default}) == defaults, name
    assert all(p.type_name and p.comment for p in params.values()), "every parameter has a type and a comment"


def test_the_templates_parameters_cell_is_the_one_generated_from_trainconfig(tmp_path):
    """The committed cell equals parameters_source(): a new TrainConfig field needs `make template`, and the
    generator writes a field it did not know before (checked on a copy with one field's line removed)."""
    nb = json.loads(TEMPLATE.read_text())
    cell = next(c for c in nb["cells"] if "parameters" in c["metadata"].get("tags", []))
    assert "".join(cell["source"]).rstrip("\n") == parameters_source().rstrip("\n")
    cell["source"] = [line for line in cell["source"] if not line.startswith("binarization:")]
    copy = tmp_path / "t.ipynb"
    copy.write_text(json.dumps(nb))
    assert "binarization" not in notebook_parameters(copy)
    assert write_parameters(copy) and notebook_parameters(copy)["binarization"].default == "dynamic"
    assert not write_parameters(copy)


# -- the store -------------------------------------------------------------------------------------


def test_default_store_is_under_the_repo_root_unless_vae_results_dir_says_otherwise(tmp_path, monkeypatch):
    """From any folder inside the repo: <root>/results/sweeps/<name>; $VAE_RESULTS_DIR replaces <root>/results."""
    monkeypatch.delenv("VAE_RESULTS_DIR", raising=False)
    monkeypatch.chdir(REPO / "vae_utils")
    assert default_store("batch-size") == REPO / "results" / "sweeps" / "batch-size"
    monkeypatch.chdir(tmp_path)
    assert default_store("x") == tmp_path / "results" / "sweeps" / "x"
    monkeypatch.setenv("VAE_RESULTS_DIR", str(tmp_path / "elsewhere"))
    assert default_store("x") == tmp_path / "elsewhere" / "sweeps" / "x"
    with pytest.raises(ValueError, match="name"):
        default_store("../up")


def test_a_claimed_run_is_skipped_by_every_other_claim_until_released(tmp_path):
    """flock: a second claim (another open file, as another process would have) skips; after release it gets it."""
    c = TrainConfig(**TINY)
    with store.claim(tmp_path, c, "s1", version="v") as first:
        assert not first.skip
        assert store.is_locked(tmp_path, first.run_id)
        with store.claim(tmp_path, c, "s2", version="v") as second:
            assert second.skip
    assert not store.is_locked(tmp_path, first.run_id)
    with store.claim(tmp_path, c, "s3", version="v") as third:
        assert not third.skip
        third.record_failure("RuntimeError: boom", "Traceback ...")
    with store.claim(tmp_path, c, "s3", version="v") as same_sweep:
        assert same_sweep.skip, "a run failed by this sweep is done for this sweep"
    with store.claim(tmp_path, c, "s4", version="v") as next_sweep:
        assert not next_sweep.skip, "a failed run is retried by the next sweep"


def test_records_are_strict_json_with_non_finite_numbers_as_null(tmp_path):
    """NaN and inf become null, so any JSON reader can load a store."""
    fileio.write_json(tmp_path / "r.json", {"a": float("nan"), "b": [1.0, float("inf")]})
    text = (tmp_path / "r.json").read_text()
    assert "NaN" not in text and "Infinity" not in text
    assert json.loads(text) == {"a": None, "b": [1.0, None]}


# -- tiny sweeps through papermill ------------------------------------------------------------------


@pytest.mark.slow
def test_a_tiny_sweep_leaves_records_and_notebooks_and_a_second_call_is_all_cache_hits(tmp_path):
    """Records, step losses and executed notebooks exist; the same call again trains nothing and
    takes seconds; a grid with one more value trains only the new runs."""
    out = tmp_path / "store"
    grid = {**TINY, "batch_size": [32, 64]}
    df = sweep(grid, out, workers=1, progress=False)
    assert list(df["status"]) == ["ok", "ok"] and list(df["batch_size"]) == [32, 64]
    assert df.attrs["summary"]["ran"] == 2 and df.attrs["summary"]["cached"] == 0
    for rid in df["run_id"]:
        d = store.run_dir(out, rid)
        assert {"record.json", "step_loss.parquet", "train_vae.ipynb"} <= {p.name for p in d.iterdir()}
        nb = json.loads((d / "train_vae.ipynb").read_text())
        assert rid in json.dumps(nb["cells"]), "the executed notebook shows the run it trained"
    cols = set(FIELDS) | {"run_id", "status", "error", "test_elbo", "test_nll", "kl_per_dim"}
    assert cols <= set(df.columns)
    assert df["hidden_units"].iloc[0] == (256,) and len(df["kl_per_dim"].iloc[0]) == 8
    assert df["test_elbo"].notna().all() and (df["test_nll"] > 0).all()

    before = snapshot(out / "runs")
    again = sweep(grid, out, workers=1, progress=False)
    assert again.attrs["summary"]["kernels"] == 0, "all cache hits: no kernel is started"
    assert again.attrs["summary"]["ran"] == 0 and again.attrs["summary"]["cached"] == 2
    pd.testing.assert_frame_equal(again, df)
    assert snapshot(out / "runs") == before

    wider = sweep({**grid, "learning_rate": [1e-3, 3e-3]}, out, workers=1, progress=False)
    s = wider.attrs["summary"]
    assert (s["ran"], s["cached"], s["ok"]) == (2, 2, 4)
    assert {k: v for k, v in snapshot(out / "runs").items() if k in before} == before

    runs, hist, steps = load_results(out), load_histories(out), load_step_losses(out)
    assert sorted(runs["run_id"]) == sorted(wider["run_id"])
    assert len(hist) == 4 and set(hist["epoch"]) == {1}
    assert {"run_id", "batch_size", "learning_rate", "loss", "val_elbo", "lr"} <= set(hist.columns)
    assert np.allclose(hist["lr"], hist["learning_rate"], rtol=1e-6), (
        "constant schedule: the epoch's rate is the config's"
    )
    per_run = steps.groupby("run_id").size()
    assert dict(per_run) == dict(zip(runs["run_id"], runs["steps"].astype(int), strict=True))


@pytest.mark.slow
def test_sweep_each_trains_the_runs_of_all_its_grids_in_one_kernel_and_returns_each_grids_rows(tmp_path):
    """Two grids sharing a run (batch 64): one sweep starts one kernel for the three runs, and each grid's
    rows are what a sweep of that grid alone returns."""
    out = tmp_path / "store"
    grids = {
        "small": {**TINY, "batch_size": [32, 64]},
        "large": [{**TINY, "batch_size": 64}, {**TINY, "batch_size": 128}],
    }
    each = sweep_each(grids, out, workers=1, progress=False)
    manifests = [json.loads(m.read_text()) for m in (out / "sweeps").glob("*.json")]
    assert [len(m["pending"]) for m in manifests if m["kernels"]] == [3], "one kernel trained batch 32, 64 and 128"
    assert list(each) == ["small", "large"]
    for name, grid in grids.items():
        pd.testing.assert_frame_equal(each[name], sweep(grid, out, workers=1, progress=False))
    assert list(each["large"].batch_size) == [64, 128] and (each["small"].status == "ok").all()


@pytest.mark.slow
def test_the_ledger_holds_each_run_the_sweeps_returned_once_as_a_csv_ready_table(tmp_path):
    """A chapter's run table: every run its sweeps returned (a run returned twice counts once), one
    row each with config, seed, status and metrics; tuples as text; other stores' runs are not in it."""
    from vae_utils.experiments import ledger

    ledger.forget()
    out = tmp_path / "store"
    first = sweep({**TINY, "batch_size": [32, 64]}, out, workers=1, progress=False)
    second = sweep({**TINY, "batch_size": [64]}, out, workers=1, progress=False)
    runs = ledger.runs_used()
    assert list(runs.run_id) == list(first.run_id) and second.run_id.iloc[0] in set(runs.run_id)
    assert list(runs.columns[:2]) == ["run_id", "status"] and {"seed", "test_elbo"} <= set(runs.columns)
    assert runs.hidden_units.iloc[0] == "256" and isinstance(runs.kl_per_dim.iloc[0], str)
    ledger.forget()
    assert ledger.runs_used().empty


@pytest.mark.slow
def test_the_template_runs_under_the_plain_papermill_cli_with_p_overrides(tmp_path):
    """``papermill train_vae.ipynb out.ipynb -p batch_size 128 ...`` trains those runs and, with
    ``-p out``, writes their records where ``load_results`` finds them."""
    out_nb, out = tmp_path / "run.ipynb", tmp_path / "store"
    cmd = [sys.executable, "-m", "papermill", str(TEMPLATE), str(out_nb), "--no-progress-bar"]
    cmd += ["-p", "batch_size", "128", "-p", "learning_rate", "0.003", "-p", "epochs", "1", "-p", "eval_k", "10"]
    cmd += ["-y", "seeds: [0, 1]", "-p", "out", str(out)]
    proc = subprocess.run(cmd, capture_output=True, text=True, cwd=tmp_path, timeout=300)
    assert proc.returncode == 0, proc.stderr[-3000:]
    nb = json.loads(out_nb.read_text())
    text = json.dumps([c.get("outputs", []) for c in nb["cells"]])
    assert "2 run(s)" in text
    df = load_results(out)
    assert sorted(df["seed"]) == [0, 1]
    assert set(df["batch_size"]) == {128} and set(df["learning_rate"]) == {0.003} and set(df["status"]) == {"ok"}
    assert set(df["run_id"]) == {
        store.run_id(TrainConfig(batch_size=128, learning_rate=0.003, epochs=1, eval_k=10, seed=s)) for s in (0, 1)
    }


@pytest.mark.slow
def test_the_template_refuses_a_parameter_it_does_not_define_naming_it_and_the_known_ones(tmp_path):
    """``-p batchsize 32`` (a typo) stops the notebook before training instead of training batch 64."""
    out_nb = tmp_path / "run.ipynb"
    cmd = [sys.executable, "-m", "papermill", str(TEMPLATE), str(out_nb), "--no-progress-bar", "-p", "batchsize", "32"]
    proc = subprocess.run(cmd, capture_output=True, text=True, cwd=tmp_path, timeout=300)
    assert proc.returncode != 0
    outputs = json.dumps([c.get("outputs", []) for c in json.loads(out_nb.read_text())["cells"]])
    assert "batchsize are not parameters of train_vae.ipynb" in outputs and "batch_size" in outputs
    assert "run(s), training code version" not in outputs, "nothing was trained"
