"""The advisor's learning-rate rule as calibrated (``vae_utils.advisor.calibration``,
``benchmarks/advisor_ratio.py --pool``) and the generated calibration data (``benchmarks/calibration_data.py``).

The pooled fit is checked against a NumPy recomputation on points with a known answer; the generators
for their shapes, ranges and determinism; the committed calibration for agreeing with ``rules.LR_RATIO``.
"""

import importlib.util
import json
import math
import sys
from pathlib import Path

import numpy as np
import pytest
from scipy import stats

from vae_utils.advisor import calibration as C
from vae_utils.advisor import rules

BENCH = Path(__file__).resolve().parents[1] / "benchmarks"


@pytest.fixture(autouse=True, scope="module")
def _registry_restored():
    """The benchmark modules register their generated data sets when imported: undo that after this
    module, so that the tests after it see the core's registry (its datasets, messages and template)."""
    from vae_utils.core import data

    before = dict(data.REGISTRY)
    yield
    data.REGISTRY.clear()
    data.REGISTRY.update(before)


def _module(name):
    sys.path.insert(0, str(BENCH))
    spec = importlib.util.spec_from_file_location(name, BENCH / f"{name}.py")
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    return module


def _points(lines: dict, batch_sizes=(16, 64, 256), noise=0.0, seed=0):
    rng = np.random.default_rng(seed)
    return [
        {"dataset": d, "batch_size": b, "ratio": float(2 ** (a + e * math.log2(b / 64) + noise * rng.normal()))}
        for d, (a, e) in lines.items()
        for b in batch_sizes
    ]


def test_a_data_sets_line_is_the_least_squares_fit_of_log2_ratio_on_log2_batch():
    b = np.array([16, 32, 64, 128, 512])
    y = np.array([-3.1, -2.9, -2.2, -2.5, -1.4])
    x = np.log2(b / 64)
    design = np.column_stack([np.ones_like(x), x])
    (a, e), *_ = np.linalg.lstsq(design, y, rcond=None)
    got = C.fit_line(b, 2**y)
    assert got == pytest.approx((a, e), abs=1e-10)


def test_points_exactly_on_one_line_give_that_line_back_with_no_spread():
    rule = C.pool(_points({"a": (-3.0, 0.3), "b": (-3.0, 0.3), "c": (-3.0, 0.3)}))
    assert rule["at_64"] == pytest.approx(2**-3.0)
    assert rule["exponent"] == pytest.approx(0.3)
    assert rule["between_sd"] == pytest.approx(0.0, abs=1e-12)
    assert rule["ols"]["exponent"] == pytest.approx(0.3)


def test_the_pooled_rule_is_the_mean_of_the_data_sets_lines_with_a_t_interval_over_data_sets():
    lines = {"a": (-3.0, 0.2), "b": (-2.0, 0.5), "c": (-2.6, 0.1), "d": (-3.4, 0.4)}
    points = _points(lines, noise=0.2)
    rule = C.pool(points)
    fits = []  # NumPy recomputation: each data set's own least-squares line
    for d in lines:
        ps = [p for p in points if p["dataset"] == d]
        x = np.log2([p["batch_size"] / 64 for p in ps])
        y = np.log2([p["ratio"] for p in ps])
        fits.append(np.linalg.lstsq(np.column_stack([np.ones_like(x), x]), y, rcond=None)[0])
    fits = np.array(fits)
    a, e = fits.mean(0)
    sd_a, sd_e = fits.std(0, ddof=1)
    t = stats.t.ppf(0.975, len(lines) - 1)
    assert rule["at_64"] == pytest.approx(2**a)
    assert rule["exponent"] == pytest.approx(e)
    assert (rule["at_64_low"], rule["at_64_high"]) == pytest.approx((2 ** (a - t * sd_a / 2), 2 ** (a + t * sd_a / 2)))
    assert (rule["exponent_low"], rule["exponent_high"]) == pytest.approx((e - t * sd_e / 2, e + t * sd_e / 2))
    assert rule["between_sd"] == pytest.approx(sd_a)
    spread = t * sd_a * math.sqrt(1 + 1 / len(lines))
    assert (rule["predict_low"], rule["predict_high"]) == pytest.approx((2 ** (a - spread), 2 ** (a + spread)))


def test_the_interval_widens_with_the_spread_between_data_sets_not_with_their_number_of_points():
    close = C.pool(_points({"a": (-3.0, 0.3), "b": (-2.9, 0.3), "c": (-3.1, 0.3)}, batch_sizes=(16, 32, 64, 128, 256)))
    apart = C.pool(_points({"a": (-4.0, 0.3), "b": (-2.0, 0.3), "c": (-3.0, 0.3)}, batch_sizes=(16, 64)))
    assert apart["at_64_high"] / apart["at_64_low"] > 5 * close["at_64_high"] / close["at_64_low"]


def test_the_advisors_rule_is_the_committed_calibrations_pooled_rule():
    cal = C.load()
    assert rules.LR_RATIO["adam"] == C.rule()
    assert rules.LR_RATIO["adam"]["at_64"] == pytest.approx(cal["rule"]["at_64"], rel=1e-3)
    assert cal["rule"]["n_datasets"] >= 4


def test_sgd_with_momentum_has_its_own_rule_pooled_over_data_sets_of_both_likelihoods():
    cal = C.load(C.path("momentum"))
    assert cal["optimizer"] == "momentum" and C.path("momentum").name == "calibration_momentum.json"
    assert rules.LR_RATIO["momentum"] == C.rule(C.path("momentum")) != rules.LR_RATIO["adam"]
    assert cal["rule"]["n_datasets"] >= 4
    assert {r["likelihood"] for r in cal["runs"]} == {"bernoulli", "gaussian"}
    assert "SGD with momentum" in C.scope(cal)["scope"] and "Adam" not in C.scope(cal)["scope"]


def test_the_per_dataset_table_has_one_row_per_data_set_and_batch_size():
    table = C.per_dataset()
    assert not table.duplicated(["data set", "batch size"]).any()
    assert {"digits", "Fashion-MNIST"} <= set(table["data set"])
    assert set(table.likelihood) == {"bernoulli", "gaussian"}


# --- the generated data ----------------------------------------------------------------------------


@pytest.fixture(scope="module")
def gen():
    return _module("calibration_data")


def test_shapes_are_intensities_in_the_unit_interval_and_the_same_scenes_at_both_resolutions(gen):
    small, large = gen.shapes(40, 8), gen.shapes(40, 16)
    assert small.shape == (40, 8, 8) and large.shape == (40, 16, 16)
    assert small.min() >= 0 and small.max() <= 1 and 0.05 < small.mean() < 0.5
    assert np.array_equal(gen.shapes(40, 8), small)  # deterministic
    pooled = large.reshape(40, 8, 2, 8, 2).mean(axis=(2, 4))
    assert np.corrcoef(pooled.ravel(), small.ravel())[0, 1] > 0.95


def test_the_manifold_data_are_standardized_and_lie_near_a_low_dimensional_surface(gen):
    x = gen.manifold(2000)
    assert x.shape == (2000, 24) and x.dtype == np.float32
    assert np.allclose(x.mean(0), 0, atol=1e-5) and np.allclose(x.std(0), 1, atol=1e-4)
    s = np.linalg.svd(x - x.mean(0), compute_uv=False) ** 2
    assert s[:8].sum() / s.sum() > 0.9  # a curved 4-d manifold: a few directions carry most variance


def test_generated_datasets_load_by_name_with_their_likelihood_and_image_shape(gen):
    from vae_utils import load_dataset

    for name, shape in (("shapes8", (8, 8)), ("shapes16", (16, 16))):
        ds = load_dataset(name)
        assert ds.likelihood == "bernoulli" and ds.image_shape == shape and ds.dim == shape[0] * shape[1]
        assert set(np.unique(ds.val)) <= {0.0, 1.0}
        assert len(ds.train) == gen.GENERATED[name].train_size
    assert load_dataset("manifold24").likelihood == "gaussian"


def test_the_kept_aside_sets_are_valid_advisor_inputs(gen, tmp_path):
    from vae_utils.advisor.datafile import load_file

    files = gen.write_holdout(tmp_path)
    for path, likelihood in files.items():
        ds = load_file(path, likelihood=likelihood)
        assert len(ds.train) > 300
    patches = np.load(tmp_path / "patches8.npy")
    assert patches.shape == (2000, 8, 8) and patches.min() >= 0 and patches.max() <= 1


# --- the pooling step's evaluation of the rule on each grid ------------------------------------------


def test_the_advised_rates_elbo_is_read_off_the_grids_mean_curve_linearly_in_log_rate():
    ratio = _module("advisor_ratio")
    cells = [
        {"batch_size": 64, "learning_rate": lr, "val_elbos": [m - 1, m + 1]}
        for lr, m in ((1e-3, -30.0), (2e-3, -26.0), (4e-3, -25.0), (8e-3, -26.0))
    ]
    cells[-1]["val_elbos"] = [-27.0, None]  # one seed diverged: the cell counts as the worst
    elbo, inside = ratio.elbo_at(cells, 64, 2e-3 * 2**0.25)
    assert inside and elbo == pytest.approx(-26.0 + 0.25 * 1.0)
    assert ratio.elbo_at(cells, 64, 5e-4) == (-30.0, False)
    assert ratio.elbo_at(cells, 64, 8e-3)[0] < -100
    assert ratio.seed_sd(cells, 64, best=-25.0) == pytest.approx(math.sqrt(2))  # cells within 2 nats: two


def test_a_data_set_with_one_batch_size_adds_its_ratio_at_64_through_the_others_mean_exponent():
    points = [*_points({"a": (-3.0, 0.2), "b": (-2.0, 0.4)}), {"dataset": "c", "batch_size": 256, "ratio": 2 ** (-1.0)}]
    rule = C.pool(points)
    a_c = -1.0 - 0.3 * 2  # log2 ratio at 256, carried back two doublings by the mean exponent 0.3
    assert rule["datasets"]["c"]["at_64"] == pytest.approx(2**a_c)
    assert rule["at_64"] == pytest.approx(2 ** np.mean([-3.0, -2.0, a_c]))
    assert rule["exponent"] == pytest.approx(0.3) and rule["n_datasets"] == 3


# --- the check on the kept-aside sets (benchmarks/advisor_check.py --summary, chapter 11) ------------


def _check_out(data, over_best, gap_sds, rule=None):
    rows = [
        {
            "seed": s, "batch_size": 8, "learning_rate": 1e-3 * f, "lr_break": 0.01, "lr_min": 1e-5,
            "grid_best_lr_at_batch": 1e-3, "grid_best_interior": True, "advice_over_best": f, "rank": 1,
            "n_cells": 10, "gap_nats": 0.1 * g, "seed_sd": 0.1, "gap_sds": g, "above_10x_lowest": True,
            "rates_within_one_sd": [5e-4, 4e-3], "confirmation_ran": False,
        }
        for s, (f, g) in enumerate(zip(over_best, gap_sds, strict=True))
    ]  # fmt: skip
    cells = [{"batch_size": b, "learning_rate": lr, "val_elbos": [-1.0]} for b in (8, 16) for lr in (1e-3, 2e-3)]
    return {"data": f"/x/{data}.npy", "likelihood": "bernoulli", "n_train": 1400, "rule": rule or rules.LR_RATIO["adam"],
            "budget_minutes": 5.0,
            "epochs": 30, "seeds": [0, 1, 2], "rows": rows, "cells": cells}  # fmt: skip


def test_the_kept_aside_summary_counts_advices_within_a_factor_of_two_either_way(tmp_path):
    check = _module("advisor_check")
    path = tmp_path / "holdout.json"
    check.write_summary(_check_out("patches8", [0.45, 1.9, 2.6], [0.2, 1.4, 0.9]), path)
    values = C.holdout_values(path)
    assert values["held-n-advices"] == 3 and values["held-within-2x"] == 1  # 0.45 is 2.2x below the best, 2.6 above
    assert values["held-within-1sd"] == 2 and values["held-max-gap-sds"] == pytest.approx(1.4)
    assert values["held-worst-factor"] == pytest.approx(2.6) and values["held-grid-seeds"] == 3
    table = C.holdout(path)
    assert list(table["advised rate / best rate"]) == [0.45, 1.9, 2.6]
    assert set(table["data set"]) == {"photo patches, 8×8"}
    assert "batch sizes 8, 16 x rates 0.001 to 0.002" in C.holdout_scope(path)["scope"]


def test_a_new_check_replaces_its_data_sets_rows_and_keeps_the_others(tmp_path):
    check = _module("advisor_check")
    path = tmp_path / "holdout.json"
    check.write_summary(_check_out("patches8", [3.0], [0.1]), path)
    check.write_summary(_check_out("tabular", [1.0, 1.1], [0.1, 0.2]), path)
    check.write_summary(_check_out("patches8", [1.5], [0.3]), path)
    values = C.holdout_values(path)
    assert values["held-n-advices"] == 3 and values["held-worst-factor"] == pytest.approx(1.5)


def test_a_check_with_the_confirmation_on_sits_beside_the_plain_one_and_is_counted_by_how_it_decided(tmp_path):
    check = _module("advisor_check")
    path = tmp_path / "holdout.json"
    confirmed = _check_out("patches16", [0.6, 0.37, 0.28], [0.2, 0.9, 0.8])
    for row, decision in zip(confirmed["rows"], ("beaten", "confirmed", "undecided"), strict=True):
        row["confirmation"] = decision
    with pytest.raises(SystemExit, match="no check of patches16 without its confirmation"):
        check.write_summary(confirmed, path, confirm=True)  # the plain check comes first
    check.write_summary(_check_out("patches16", [0.34, 0.37, 0.28], [1.7, 0.9, 0.8]), path)
    check.write_summary(confirmed, path, confirm=True)
    C.load.cache_clear()  # load() caches per path; this test rewrites one
    values = C.holdout_values(path)
    assert values["held-n-advices"] == 3 and values["held-within-1sd"] == 2  # the plain check's counts unchanged
    assert values["held-confirm-sets"] == "the photo patches, 16×16" and values["held-confirm-n-advices"] == 3
    assert [values[f"held-confirm-{k}"] for k in ("beaten", "confirmed", "undecided")] == [1, 1, 1]
    assert values["held-confirm-within-2x"] == 1 and values["held-confirm-within-1sd"] == 3
    assert values["held-confirm-delta"] == rules.DELTA and values["held-confirm-budget-minutes"] == 5.0
    table = C.holdout(path)
    decided = ["grid's best adopted", "confirmed", "undecided"]
    assert list(table["confirmation"]) == ["off"] * 3 + decided
    check.write_summary(_check_out("patches16", [0.34, 0.37, 0.28], [1.7, 0.9, 0.8]), path)  # the same check again
    C.load.cache_clear()
    assert C.holdout_values(path)["held-confirm-n-advices"] == 3
    check.write_summary(_check_out("patches16", [0.34], [1.7], rule={"at_64": 0.2, "exponent": 0.3}), path)
    C.load.cache_clear()
    assert C.holdout_values(path)["held-confirm-n-advices"] == 0  # a new rule: the confirmed rows no longer hold


def test_the_books_kept_aside_check_was_run_with_the_rule_the_advisor_uses_now():
    """Chapter 11 renders holdout.json: after a new calibration, run advisor_check.py --summary again."""
    sets = json.loads(C.HOLDOUT.read_text())["sets"]
    assert {s["name"] for s in sets} == {"patches8", "tabular", "patches16", "diabetes"}
    assert all(s["rule"] == rules.LR_RATIO["adam"] for s in sets)
    assert all(len(s["rows"]) == 3 for s in sets)
    confirmed = {s["name"]: len(s["with_confirmation"]["rows"]) for s in sets if "with_confirmation" in s}
    assert confirmed == {"patches16": 3}  # the set the rule missed, checked again with the confirmation on


def test_the_advice_says_when_its_batch_lies_beyond_the_batch_sizes_the_rule_was_measured_at():
    low, high = rules.RATIO_BATCHES["adam"]
    points = [p["batch_size"] for p in C.load()["points"]]
    assert (low, high) == (min(points), max(points)) == (8, 256)
    assert rules.extrapolation("adam", low) is None and rules.extrapolation("adam", high) is None
    text = rules.extrapolation("adam", 4 * high)
    assert f"batch sizes {low} to {high}" in text and f"at batch {4 * high} it is extrapolated" in text
    assert rules.extrapolation("momentum", 1024).startswith("The rate's rule was measured at batch sizes 8 to 256")


def test_a_loss_read_towards_a_diverged_rate_is_flagged_and_left_out_of_the_largest_loss(tmp_path):
    ratio = _module("advisor_ratio")
    cells = [{"batch_size": 64, "learning_rate": lr, "val_elbos": [-26.0, -25.0]} for lr in (1e-3, 2e-3, 4e-3)]
    cells[-1]["val_elbos"] = [-25.0, None]  # a seed diverged at 4e-3
    assert not ratio.beside_divergence(cells, 64, 1.5e-3) and not ratio.beside_divergence(cells, 64, 2e-3)
    assert ratio.beside_divergence(cells, 64, 3e-3) and ratio.beside_divergence(cells, 64, 4e-3)
    cal = {"rule": C.load()["rule"], "points": [
        {"batch_size": 128, "pooled_over_best": 1.1, "pooled_gap_sds": 9.0, "pooled_beside_divergence": True},
        {"batch_size": 8, "pooled_over_best": 0.6, "pooled_gap_sds": 1.5, "pooled_beside_divergence": False},
    ]}  # fmt: skip
    assert C.values(cal)["max-gap-sds"] == 1.5 and C.values(cal)["n-beside-divergence"] == 1
