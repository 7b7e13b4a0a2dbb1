"""The advisor (vae_utils.advisor.recommend) and its parts: the range test, the noise-scale step, a reader's data file.

Known answers: SGD on a quadratic with largest curvature lambda becomes unstable at lr = 2/lambda, and
the range test finds its breaking point there; linear regression with Gaussian inputs and noise has
B_simple = (d + 1) + sigma^2 d / |w - w*|^2 in closed form, and the noise-scale step's interval holds it.
Bad files give one-line errors naming the file and the problem. On digits, the advice lies inside the
range that the book's grids support (benchmarks/advisor_ratio.py; README "The advisor").
"""

import json
import math
import re

import keras
import numpy as np
import pandas as pd
import pytest
import tensorflow as tf

from vae_utils.advisor import recommend as adv
from vae_utils.advisor.confirm import FRESH_SEEDS, LEVEL, confirm_verdict, confirmation, fresh_verdict
from vae_utils.advisor.datafile import MIN_EXAMPLES, from_array, load_file
from vae_utils.advisor.rangetest import find_break, range_test
from vae_utils.cli import main
from vae_utils.core.noise import noise_scale_from_norms

# Learning rates within 0.5 nats of the best mean validation ELBO, per batch size: digits, Adam, 30 epochs,
# 3 seeds, rates 5e-4 .. 6.4e-2 each twice the last (benchmarks/advisor_ratio.py, 2026-11-27).
DIGITS_ADAM_SUPPORTED = {16: (5e-4, 8e-3), 32: (1e-3, 8e-3), 64: (1e-3, 1.6e-2), 128: (2e-3, 8e-3), 256: (4e-3, 8e-3)}


# --- the range test: known answers and the detection rule ------------------------------------------


def _quadratic_range_test(lam: float, sigma: float):
    """SGD on 0.5 (w - xi)^T H (w - xi), H with eigenvalues lam .. lam/100, xi ~ N(0, sigma^2 I) per update."""
    rng = np.random.default_rng(0)
    q, _ = np.linalg.qr(rng.normal(size=(10, 10)))
    h = tf.constant((q * lam * np.geomspace(1, 1e-2, 10)) @ q.T, tf.float32)
    w = tf.Variable(tf.ones([10]))

    def loss_fn(i):
        d = w - sigma * tf.random.stateless_normal([10], seed=tf.stack([0, i]))
        return 0.5 * tf.tensordot(d, tf.linalg.matvec(h, d), 1)

    lrs, losses, stopped = range_test(loss_fn, [w], keras.optimizers.SGD(1e-3), 1e-4 / lam, 100 / lam, 300)
    return find_break(lrs, losses), stopped


@pytest.mark.parametrize("lam", [0.5, 4.0, 100.0])
@pytest.mark.parametrize("sigma", [0.01, 0.1])
def test_range_test_with_sgd_on_a_noisy_quadratic_breaks_near_two_over_the_largest_curvature(lam, sigma):
    """Plain SGD on a quadratic diverges once lr > 2/lambda; with gradient noise (as from minibatches) the
    range test's breaking point lies within a factor 1.6 of 2/lambda, whatever the curvature's scale."""
    b, stopped = _quadratic_range_test(lam, sigma)
    assert b["found"] and stopped
    assert 1 / 1.6 < b["lr_break"] / (2 / lam) < 1.6, b


def test_range_test_on_a_noise_free_quadratic_never_breaks_before_the_instability():
    """Without noise the top eigen-direction has decayed far below the rest when lr crosses 2/lambda, so
    the rise shows later: the breaking point is at or above 2/lambda, and within 3x of it."""
    b, _ = _quadratic_range_test(4.0, 0.0)
    assert 1.0 <= b["lr_break"] / (2 / 4.0) < 3.0, b


def _curve(n=300, rise_at=200, seed=0):
    lrs = np.geomspace(1e-5, 10, n)
    i = np.arange(n)
    loss = 40 - 15 / (1 + np.exp(-(i - 100) / 15)) + 0.002 * np.maximum(i - rise_at, 0) ** 2.2
    return lrs, loss + np.random.default_rng(seed).normal(0, 0.3, n)


def test_find_break_places_the_break_where_a_noisy_loss_starts_to_rise():
    """A loss that falls, stays flat, then rises from update 200 on: the break lies within 25 updates of 200."""
    lrs, loss = _curve()
    b = find_break(lrs, loss)
    assert b["found"]
    assert abs(int(np.argmin(np.abs(lrs - b["lr_break"]))) - 200) <= 25


def test_find_break_ignores_a_single_spike_and_the_wiggles_of_the_flat_start():
    """One update 50 nats high at 150, and noise on the flat start, move the break by no more than 3 updates."""
    lrs, loss = _curve()
    spiked = loss.copy()
    spiked[150] += 50
    a, b = find_break(lrs, loss), find_break(lrs, spiked)
    ia, ib = (int(np.argmin(np.abs(lrs - x["lr_break"]))) for x in (a, b))
    assert abs(ia - ib) <= 3


def test_find_break_counts_a_non_finite_loss_as_the_rise():
    """A run that turns NaN at update 220 without a visible rise before breaks at or before 220."""
    lrs, loss = _curve(rise_at=400)
    loss[220:] = np.nan
    b = find_break(lrs, loss)
    assert b["found"] and b["lr_break"] <= lrs[220]


def test_find_break_without_a_rise_reports_not_found():
    """A loss that only falls: found is False and lr_break NaN (raise lr_max), lr_lowest is the last rate."""
    lrs = np.geomspace(1e-5, 1, 200)
    b = find_break(lrs, 50 / (1 + np.arange(200)))
    assert not b["found"] and math.isnan(b["lr_break"]) and b["lr_lowest"] == pytest.approx(lrs[-1])


def _smooth_start_bump(n=300):
    """A smooth loss falling slowly from 200 (0.05 nats an update) with a 1-nat bump near update 20: the
    shape on which the range test "broke" at about its 11th update (issue 21)."""
    i = np.arange(n)
    loss = 200 - 0.05 * i + np.exp(-(((i - 20) / 8.0) ** 2))
    return np.geomspace(1e-5, 10, n), loss + np.random.default_rng(0).normal(0, 0.01, n)


def test_a_rise_on_a_smooth_slowly_falling_curve_near_its_start_is_not_a_break():
    """Without the rule the bump gives a break within the first 15 updates; with it (a break counts only
    at or above 10x the lowest rate) none is found, and the left-out break is reported as early."""
    lrs, loss = _smooth_start_bump()
    loose = find_break(lrs, loss, min_ratio=1.0)
    assert loose["found"] and int(np.argmin(np.abs(lrs - loose["lr_break"]))) <= 15
    b = find_break(lrs, loss)
    assert not b["found"] and math.isnan(b["lr_break"]) and b["early"] == [loose["lr_break"]]


def test_a_real_rise_after_an_early_wiggle_is_still_the_break():
    """The early bump followed by the usual fall, flat bottom and rise from update 200: the break lies
    within 25 updates of 200, past the wiggle."""
    lrs, loss = _curve()
    b = find_break(lrs, loss + 3 * np.exp(-(((np.arange(300) - 20) / 8.0) ** 2)))
    assert b["found"] and abs(int(np.argmin(np.abs(lrs - b["lr_break"]))) - 200) <= 25


def test_the_break_of_repeated_range_tests_is_their_median_with_its_spread():
    """Three repeats breaking at 1e-2, 4e-2 and 2e-2 give 2e-2 with the range 1e-2 to 4e-2; a repeat
    without a break is counted out; an even count gives the geometric middle."""
    from vae_utils.advisor.rangetest import combine_breaks

    t = lambda lr, found=True: type("T", (), {"lr_break": lr, "found": found, "settings": {}})()
    c = combine_breaks([t(1e-2), t(4e-2), t(2e-2)])
    assert c["lr_break"] == pytest.approx(2e-2) and (c["low"], c["high"], c["n_found"]) == (1e-2, 4e-2, 3)
    c = combine_breaks([t(1e-2), t(math.nan, False), t(4e-2)])
    assert c["lr_break"] == pytest.approx(2e-2) and c["n_found"] == 2 and c["n"] == 3


def test_extending_the_range_downward_keeps_the_ramps_rise_per_update():
    """From 1e-5..10 in 300 updates (50 per decade) to 1e-7..10 in 400."""
    from vae_utils.advisor.rangetest import extended_down

    e = extended_down({})
    assert e["lr_min"] == pytest.approx(1e-7) and e["steps"] == 400


def test_a_checked_range_test_on_digits_breaks_in_its_usual_place(digits):
    """Three seeds at batch 64 with Adam: every repeat finds a break, the median lies between 5e-3 and
    0.2 (0.034 in the issue's measurements), and none was left out as early."""
    from vae_utils.advisor.rangetest import checked_range_test

    rt = checked_range_test(digits, 64, "adam", seeds=(0, 1, 2))
    rep = rt.repeats
    assert rt.found and rep["n_found"] == 3 and rep["extended"] is None
    assert 5e-3 < rt.lr_break < 0.2 and rep["low"] <= rt.lr_break <= rep["high"]


@pytest.mark.slow
def test_a_range_test_that_starts_above_the_break_is_extended_down_and_the_advice_is_at_least_10x_its_lowest_rate(
    digits,
):
    """Started at lr 0.01 (Adam on digits breaks near 0.03) every seed "breaks" within 93x its lowest rate, where
    the advice (0.107 x break) would lie below 10x that rate; the step reruns from 1e-4 and finds the usual break."""
    warnings = []
    rt = adv._range_test(
        digits, 64, "adam", fixed={}, seed=0, settings={"lr_min": 1e-2, "lr_max": 100.0, "steps": 150},
        clock=adv._Clock(3600, lambda m: None), warnings=warnings, ratios=adv.LR_RATIO, repeats=3,
    )  # fmt: skip
    assert rt.repeats["extended"] == pytest.approx(1e-4) and rt.settings["steps"] == 225
    assert rt.found and 5e-3 < rt.lr_break < 0.2
    assert adv.lr_ratio("adam", 64) * rt.lr_break >= 10 * 1e-4
    assert len(warnings) == 1 and "run again from lr 0.0001" in warnings[0]


def test_a_range_test_without_a_break_says_so_and_its_stand_in_rate_is_at_least_10x_the_lowest_rate(monkeypatch):
    """Three repeats whose loss only fell (lowest at 2e-5, the 16th update): a warning says no divergence rate was
    found and which rate stands in for it; the stand-in is raised to the floor, so the rate the advice sets
    from it, ratio(64) x stand-in, is at least 10x the test's lowest rate (1e-5)."""
    from vae_utils.advisor import rangetest

    def no_break(data, batch_size, optimizer, model_config, seeds, **settings):
        lrs = np.geomspace(1e-5, 10, 300)
        rt = rangetest.RangeTest(lrs, 50 / (1 + np.arange(300)), lrs * 0, math.nan, math.nan, 2e-5, False, "", 300,
                                 1.0, optimizer, batch_size, rangetest.DEFAULTS | settings | {"seed": 0})  # fmt: skip
        rt.repeats = {"n": 3, "n_found": 0, "low": math.nan, "high": math.nan, "extended": None, "breaks": []}
        return rt

    monkeypatch.setattr(rangetest, "checked_range_test", no_break)
    monkeypatch.setattr(adv, "_model_config", lambda data, fixed: None)
    warnings = []
    rt = adv._range_test(None, 64, "adam", fixed={}, seed=0, settings={}, clock=adv._Clock(60, lambda m: None),
                         warnings=warnings, ratios=adv.LR_RATIO, repeats=3)  # fmt: skip
    assert (
        not rt.found
        and len(warnings) == 1
        and warnings[0].startswith("No divergence rate was found: the range test did not break (adam, batch 64")
    )
    assert adv.lr_ratio("adam", 64) * rt.lr_break == pytest.approx(10 * 1e-5)


# --- the noise-scale step: a known answer ------------------------------------------------------------


def _regression_estimate(rep, d=10, sigma=1.0, delta2=0.5, n_batches=32):
    """An estimate(seed) of B_simple for 0.5 (x.w - y)^2 at w = w* + delta, x ~ N(0, I_d), y = x.w* + N(0, sigma^2),
    batches of 8 and 512 examples drawn from the population (the noise step's batch sizes)."""
    delta = np.zeros(d)
    delta[0] = math.sqrt(delta2)

    def estimate(seed):
        rng = np.random.default_rng([rep, seed])
        norms = {}
        for b in (8, 512):
            x = rng.normal(size=(n_batches, b, d))
            g = ((x @ delta - rng.normal(scale=sigma, size=(n_batches, b)))[..., None] * x).mean(axis=1)
            norms[b] = float(np.mean(np.sum(g**2, axis=1)))
        return noise_scale_from_norms(8, norms[8], 512, norms[512])

    return estimate, (d + 1) + sigma**2 * d / delta2


@pytest.mark.slow
def test_noise_scale_step_recovers_the_analytic_b_simple_of_linear_regression_within_its_interval():
    """B_simple = tr(Sigma)/|G|^2 = (d + 1) + sigma^2 d / |delta|^2 = 31 here; the step's 95% interval over 5
    estimates holds it, and over 200 independent repetitions it holds it 90-99% of the time."""
    estimate, exact = _regression_estimate(0)
    r = adv.noise_scale_interval(estimate, repeats=5)
    assert r["low"] < exact < r["high"] and r["n_positive"] == 5
    covered = []
    for rep in range(1, 201):
        e, _ = _regression_estimate(rep)
        r = adv.noise_scale_interval(e, repeats=5)
        covered.append(r["low"] <= exact <= r["high"])
    assert 0.90 <= np.mean(covered) <= 0.99


def test_noise_scale_step_counts_non_positive_estimates_and_leaves_them_out():
    """An estimate below 0 (a noisy |G|^2 < 0) is counted out of n_positive and not averaged in."""
    values = iter([100.0, -50.0, 120.0])
    r = adv.noise_scale_interval(lambda s: {"b_simple": next(values)}, repeats=3)
    assert r["n_positive"] == 2
    assert r["b_simple"] == pytest.approx(math.sqrt(100 * 120))


@pytest.mark.slow
def test_b_simple_over_independent_runs_covers_the_analytic_value_of_linear_regression():
    """Each "run" is an independent linear-regression problem at the same |w - w*|^2 (B_simple = 31 exactly),
    estimated twice on its own draws; the interval over 3 runs (t on the log scale, 2 degrees of freedom)
    holds 31 in 90-99.5% of 300 repetitions, and its spread factor is reported."""
    covered, spreads = [], []
    for rep in range(300):
        runs = []
        for j in range(3):
            e, exact = _regression_estimate(10_000 + 3 * rep + j, n_batches=16)
            runs.append(adv.noise_scale_interval(e, repeats=2))
        r = adv.noise_over_runs(runs)
        covered.append(r["low"] <= exact <= r["high"])
        spreads.append(r["spread_factor"])
    assert 0.90 <= np.mean(covered) <= 0.995, np.mean(covered)
    assert all(f >= 1 for f in spreads)


def _pooled_regression_run(rep: int, checkpoints: int = 3, repeats: int = 2):
    """One "short run" on linear regression: ``checkpoints`` readings at the same |w - w*|^2 (B_simple = 31
    exactly), ``repeats`` estimates each on their own draws, pooled as the advisor pools a run."""
    from vae_utils.advisor.noisescale import pooled_b_simple

    ckpts = []
    for i in range(checkpoints):
        e, exact = _regression_estimate(50_000 + checkpoints * rep + i, n_batches=16)
        ckpts.append(adv.noise_scale_interval(e, repeats=repeats) | {"updates": 100 * (i + 1)})
    return pooled_b_simple(ckpts), exact


@pytest.mark.slow
def test_b_simple_pooled_over_checkpoints_and_runs_covers_the_analytic_value_of_linear_regression():
    """Each run pools three checkpoints (mean tr(Sigma) over mean |G|^2, as the advisor pools a short run's last
    half); the interval over 3 such runs holds the exact 31 in 90-99.5% of 300 repetitions."""
    covered = []
    for rep in range(300):
        runs = [_pooled_regression_run(3 * rep + j) for j in range(3)]
        exact = runs[0][1]
        r = adv.noise_over_runs([run for run, _ in runs])
        covered.append(r["low"] <= exact <= r["high"])
    assert 0.90 <= np.mean(covered) <= 0.995, np.mean(covered)


def test_pooling_a_run_divides_the_mean_trace_by_the_mean_squared_gradient_over_all_its_estimates():
    """Checkpoints with (|G|^2, tr(Sigma)) of (1, 10), (3, 50) and (2, 60): B_simple = 40 / 2 = 20, each
    checkpoint's own ratio 10, 16.7 and 30 on the curve; a pooled |G|^2 at or below 0 is too large to measure."""
    from vae_utils.advisor.noisescale import pooled_b_simple

    ckpts = [{"g2": [1.0], "trace_sigma": [10.0], "updates": 100}, {"g2": [2.0, 4.0], "trace_sigma": [40.0, 60.0],
             "updates": 200}, {"g2": [2.0], "trace_sigma": [60.0], "updates": 300}]  # fmt: skip
    r = pooled_b_simple(ckpts)
    assert r["b_simple"] == pytest.approx((10 + 40 + 60 + 60) / 4 / ((1 + 2 + 4 + 2) / 4))
    assert [u for u, _ in r["curve"]] == [100, 200, 300]
    assert [b for _, b in r["curve"]] == pytest.approx([10.0, 50 / 3, 30.0])
    assert pooled_b_simple([{"g2": [-1.0, 0.5], "trace_sigma": [5.0, 5.0], "updates": 1}])["b_simple"] == math.inf


def test_the_noise_curve_is_the_geometric_mean_per_checkpoint_and_its_change_a_paired_t_interval_in_doublings():
    """Three runs whose B_simple goes 10 -> 40, 20 -> 60 and 5 -> 30: per checkpoint the geometric means over
    the runs; the change, log2(last/first) = 2, log2 3 and log2 6 paired over runs, recomputed with scipy,
    lies above 0: B_simple grew (had not settled). Flat runs (x1, x2, x0.5) show no clear direction."""
    from scipy import stats

    from vae_utils.advisor.noisescale import curve_words, noise_curve, still_growing

    runs = [{"curve": [(150, a), (300, b)]} for a, b in ((10.0, 40.0), (20.0, 60.0), (5.0, 30.0))]
    out = noise_curve(runs)
    assert [c["b_simple"] for c in out["curve"]] == pytest.approx([1000 ** (1 / 3), 72_000 ** (1 / 3)])
    d = np.log2([4.0, 3.0, 6.0])
    half = stats.t.ppf(0.975, 2) * d.std(ddof=1) / math.sqrt(3)
    assert out["change"]["doublings"] == pytest.approx(d.mean())
    assert (out["change"]["low"], out["change"]["high"]) == pytest.approx((d.mean() - half, d.mean() + half))
    noise = out | {"n_used": 3}
    assert still_growing(noise) and "it grows: ×" in curve_words(noise)
    flat = noise_curve([{"curve": [(150, 10.0), (300, 10.0 * f)]} for f in (1.0, 2.0, 0.5)]) | {"n_used": 3}
    assert not still_growing(flat) and "shows no clear direction" in curve_words(flat)


def test_a_short_runs_checkpoints_are_its_half_three_quarters_and_end_in_whole_epochs_without_repeats():
    """300 updates of 19 per epoch: 8, 12 and 16 epochs (152, 228, 304 updates); within one epoch the updates
    themselves; a run of 2 epochs cannot have three distinct checkpoints."""
    from vae_utils.advisor.noisescale import checkpoint_updates

    assert checkpoint_updates(300, 19) == [152, 228, 304]
    assert checkpoint_updates(300, 1000) == [150, 225, 300]
    assert checkpoint_updates(40, 20) == [20, 40]


def test_a_collapsed_runs_b_simple_is_not_used():
    """Runs of 100 and 400 with a collapsed one of 5: the estimate is 200 from the two used."""
    runs = [{"b_simple": 100.0}, {"b_simple": 5.0}, {"b_simple": 400.0}]
    r = adv.noise_over_runs(runs, [True, False, True])
    assert r["b_simple"] == pytest.approx(200.0) and (r["n_used"], r["n_runs"]) == (2, 3)


@pytest.mark.parametrize(
    ("b_simple", "n_train", "says"),
    [
        (855.0, 2100, "256, the cap: B_simple/2 = 428 lies above it, and at most 1/8 of the 2100 training examples"),
        (100.0, 1257, "64, the power of two nearest B_simple/2 = 50"),
        (6.0, 1257, "8, the smallest batch advised: B_simple/2 = 3 lies below it"),
    ],
)
def test_the_reason_names_the_rule_that_set_the_batch_with_its_numbers(b_simple, n_train, says):
    """The issue's case: B_simple/2 = 427 and 256 the n/8 cap was reported as "256, nearest B_simple/2"."""
    b = adv.batch_range(b_simple, n_train)[2]
    assert adv._batch_rule(b_simple, n_train, b).startswith(says)


def test_an_interval_wider_than_the_batch_range_says_the_batch_is_uncertain_and_the_range_it_allows():
    """B_simple 100 (range 32-128) with an interval of 20 to 900 allows 8 to 512 on 20,000 examples;
    an interval of 80 to 120 stays inside the advised range."""
    low, high, _ = adv.batch_range(100.0, 20_000)
    wide = adv._batch_uncertainty({"low": 20.0, "high": 900.0}, 20_000, low, high)
    assert wide == (8, 512)
    assert adv._batch_uncertainty({"low": 80.0, "high": 120.0}, 20_000, low, high) is None


# --- the recommendation's rules ----------------------------------------------------------------------


@pytest.mark.parametrize(
    ("b_simple", "n_train", "expected"),
    [
        (100.0, 1257, (32, 128, 64)),  # [25, 100] -> 32..128; 50 -> 64
        (10.0, 1257, (8, 8, 8)),  # below MIN_BATCH: all clipped to 8
        (5000.0, 1257, (128, 128, 128)),  # above n_train / 8 = 157: all clipped to 128
        (float("nan"), 1257, (8, 128, 32)),  # unknown: the whole allowed range, its geometric middle
    ],
)
def test_batch_range_is_b_simple_over_four_to_b_simple_in_powers_of_two_within_the_allowed_range(
    b_simple, n_train, expected
):
    """(low, high, recommended) = powers of two nearest B_simple/4, B_simple and B_simple/2, clipped to
    [8, n_train/8 rounded down to a power of two]."""
    assert adv.batch_range(b_simple, n_train) == expected


def test_lr_ratio_follows_its_power_law_in_the_batch_size():
    """ratio(B) = at_64 (B/64)^exponent; a plain number is a constant ratio."""
    r = adv.LR_RATIO["adam"]
    assert adv.lr_ratio("adam", 64) == pytest.approx(r["at_64"])
    assert adv.lr_ratio("adam", 256) == pytest.approx(r["at_64"] * 4 ** r["exponent"])
    assert adv.lr_ratio("adam", 512, {"adam": 0.2}) == 0.2


def test_confirm_verdict_compares_the_recommended_cell_with_the_grids_best_by_mean_validation_elbo():
    """Cells with known means: the recommended one 0.3 nats below the best is within delta = 0.5 (the paired
    interval over seeds lies below it), not within 0.2; a diverged run does not count."""
    from scipy import stats

    rows = []
    for seed, wobble in zip((0, 1, 2), (0.0, 0.05, -0.05), strict=True):  # the paired gaps: 0.3, 0.25, 0.35
        for b, lr, v in [(32, 1e-3, -24.0), (64, 1e-3, -24.3 + wobble), (64, 2e-3, -25.0)]:
            rows.append(dict(batch_size=b, learning_rate=lr, seed=seed, val_elbo=v + 0.1 * seed, status="ok"))
    rows.append(dict(batch_size=64, learning_rate=2e-3, seed=3, val_elbo=10.0, status="diverged"))
    rec = adv.Recommendation(64, (32, 128), 1e-3, "adam", 1e-2, 0.1, 100.0, (90.0, 110.0))
    out = confirm_verdict(pd.DataFrame(rows), rec, delta=0.5)
    assert out["within_delta"] and out["gap"] == pytest.approx(0.3)
    assert out["best"] == {"batch_size": 32, "learning_rate": 1e-3, "val_elbo": pytest.approx(-23.9)}
    half = stats.t.ppf(0.5 + LEVEL / 2, 2) * 0.05 / math.sqrt(3)  # the paired t-interval of 0.3, 0.25, 0.35
    assert out["gap_low"] == pytest.approx(0.3 - half) and out["gap_high"] == pytest.approx(0.3 + half)
    assert not confirm_verdict(pd.DataFrame(rows), rec, delta=0.2)["within_delta"]


def _grid(values: dict, seeds=(0, 1, 2), noise=0.1):
    rows = []
    for seed in seeds:
        for (b, lr), v in values.items():
            jitter = noise * ((seed * 7 + int(b) + int(lr * 1e4)) % 3 - 1)
            rows.append(dict(batch_size=b, learning_rate=lr, seed=seed, val_elbo=v + jitter, status="ok"))
    return pd.DataFrame(rows)


def _rec():
    return adv.Recommendation(64, (32, 128), 1e-3, "adam", 1e-2, 0.1, 100.0, (90.0, 110.0), ["measured"])


def test_a_grid_best_beyond_delta_and_the_seeds_noise_becomes_the_headline_only_after_fresh_seeds_agree():
    """The best cell (batch 64, lr 2e-3, on the grid's rate edge) lies 1.5 nats above the advice, well
    beyond delta = 0.5 and the seeds' spread. On the seeds that chose it, that decides nothing (its lead is
    biased upward): the advice stays. On fresh seeds it still leads: it replaces the advice, the measured
    one kept, the edge flagged, the reason citing the fresh seeds."""
    cells = {(32, 5e-4): -26.0, (64, 5e-4): -26.0, (64, 1e-3): -25.5, (64, 2e-3): -24.0, (128, 1e-3): -25.8}
    first = confirm_verdict(_grid(cells), _rec(), delta=0.5)
    assert first["decision"] == "undecided" and first["gap_low"] > 0 and first["gap"] == pytest.approx(1.5, abs=0.2)
    assert "chosen on these seeds" in first["verdict"]
    assert first["edge"] == ["the largest rate (0.002)"] and "edge" in first["verdict"]
    rec = _rec()
    assert adv._follow_confirmation(rec, first) and rec.headline == {}
    fresh = _grid({(64, 1e-3): -25.5, (64, 2e-3): -24.1}, seeds=(3, 4, 5, 6))
    out = fresh_verdict(first, fresh, rec)
    assert out["decision"] == "beaten" and out["fresh_seeds"] == [3, 4, 5, 6]
    assert out["first_look"]["seeds"] == [0, 1, 2]
    assert out["gap"] == pytest.approx(1.4, abs=0.2) and "Second look, on 4 fresh seeds (3–6)" in out["verdict"]
    adv._follow_confirmation(rec, out)
    assert (rec.batch_size, rec.learning_rate) == (64, 2e-3)
    assert rec.headline["measured"] == {"batch_size": 64, "learning_rate": 1e-3}
    assert rec.reasons[0].startswith("The confirmation grid's best cell (batch 64, lr 0.002) beat")
    assert "on 4 fresh seeds (97.5% CI" in rec.reasons[0]


def _two_look_decisions(true_means: dict, rec_cell, sd: float, reps: int, seed: int) -> dict:
    """How often each decision comes out of the two looks on simulated grids: 3 seeds of every cell with
    independent normal noise of ``sd`` around ``true_means``, then (when undecided) 5 fresh seeds of the two
    cells; and how often the rule this design replaced would have called "beaten": the first look alone, its
    95% interval above 0 and the mean gap above delta."""
    from vae_utils.claims import stats as S

    rng = np.random.default_rng(seed)
    rec = adv.Recommendation(rec_cell[0], (8, 512), rec_cell[1], "adam", 1e-2, 0.1, 100.0, (90.0, 110.0))
    counts = dict.fromkeys(("best", "confirmed", "beaten", "undecided", "first look beaten"), 0)
    frame = lambda seeds, cells: pd.DataFrame(
        [dict(batch_size=b, learning_rate=lr, seed=s, status="ok", val_elbo=true_means[(b, lr)] + rng.normal(0, sd))
         for s in seeds for b, lr in cells]
    )  # fmt: skip
    for _ in range(reps):
        grid = frame((0, 1, 2), list(true_means))
        out = first = confirm_verdict(grid, rec, delta=0.5)
        if first["decision"] == "undecided":
            pick = lambda c, g=grid: g[(g.batch_size == c[0]) & (g.learning_rate == c[1])].set_index("seed").val_elbo
            old = S.paired(pick((first["best"]["batch_size"], first["best"]["learning_rate"])), pick(rec_cell))
            counts["first look beaten"] += old.estimate > 0.5 and old.low > 0
            best = (first["best"]["batch_size"], first["best"]["learning_rate"])
            out = fresh_verdict(first, frame(range(3, 8), [best, rec_cell]), rec)
        counts[out["decision"]] += 1
    return {k: v / reps for k, v in counts.items()}


_NINE = [(b, lr) for b in (32, 64, 128) for lr in (5e-4, 1e-3, 2e-3)]


@pytest.mark.slow
def test_two_looks_call_an_equally_good_cell_beaten_at_most_as_often_as_one_sided_alpha_allows():
    """Nine equally good cells (seed-to-seed SD 1 nat, twice delta): the best of them by its 3-seed mean leads
    the advice on those seeds by chance alone, and the rule this design replaced (the first look alone, 95%)
    called that "beaten" well above 2.5% of the time (the positive control). The two looks (fresh seeds
    decide "beaten") stay within 2.5% + 3 Monte-Carlo standard errors."""
    reps = 600
    got = _two_look_decisions(dict.fromkeys(_NINE, -25.0), (64, 1e-3), sd=1.0, reps=reps, seed=0)
    se = math.sqrt(0.025 * 0.975 / reps)
    assert got["first look beaten"] > 0.025 + 3 * se, got
    assert got["beaten"] <= 0.025 + 3 * se, got


@pytest.mark.slow
def test_two_looks_confirm_an_advice_a_full_delta_below_the_best_at_most_as_often_as_one_sided_alpha_allows():
    """One cell exactly delta = 0.5 nats above the advice, the other seven 3 nats below it (so the best is found):
    confirming the advice (a gap within delta) is wrong, and the two looks together do it at most
    2.5% + 3 Monte-Carlo standard errors of the time (each look at 1.25%). ("best", the advice's own cell
    ranking first by chance, is no claim about the gap.)"""
    reps = 600
    means = dict.fromkeys(_NINE, -28.0) | {(64, 1e-3): -25.0, (64, 2e-3): -24.5}
    got = _two_look_decisions(means, (64, 1e-3), sd=0.5, reps=reps, seed=1)
    se = math.sqrt(0.025 * 0.975 / reps)
    assert got["confirmed"] <= 0.025 + 3 * se, got
    assert got["beaten"] > 0.05, got  # and the second look can tell such a gap: it ran and decided


@pytest.mark.parametrize(
    ("best", "n_train", "beyond"),
    [
        ((64, 2e-3), 1257, [(64, 4e-3)]),  # on the largest rate: twice it
        ((32, 5e-4), 1257, [(32, 2.5e-4), (16, 5e-4)]),  # the smallest rate and batch: half of each
        ((128, 2e-3), 1257, [(128, 4e-3), (256, 2e-3)]),  # a corner: both axes
        ((128, 2e-3), 200, [(128, 4e-3)]),  # no batch beyond the training set
        ((64, 1e-3), 1257, []),  # inside: nothing to extend
    ],
)
def test_a_best_cell_on_the_grids_edge_is_followed_one_step_beyond_it(best, n_train, beyond):
    """The 3 x 3 grid of batch 32, 64, 128 x lr 5e-4, 1e-3, 2e-3: the cells one step past the edge the best lies on."""
    from vae_utils.advisor.confirm import beyond_edge

    cells = [(b, lr) for b in (32, 64, 128) for lr in (5e-4, 1e-3, 2e-3)]
    out = {"best": {"batch_size": best[0], "learning_rate": best[1]}}
    got = beyond_edge(out, cells, n_train)
    assert [b for b, _ in got] == [b for b, _ in beyond]
    assert [lr for _, lr in got] == pytest.approx([lr for _, lr in beyond])


def test_a_gap_the_fresh_seeds_cannot_resolve_keeps_the_advice_and_says_so():
    """A first look that leaves the gap open, then fresh seeds with a mean gap of 0.6 nats (> delta) and
    seed-to-seed differences of +-1.5: undecided, the advice stays, the verdict says why."""
    first = confirm_verdict(_grid({(64, 1e-3): -25.0, (64, 2e-3): -24.0}), _rec(), delta=0.5)
    assert first["decision"] == "undecided"
    rows = []
    for seed, d in zip((3, 4, 5), (2.1, -0.9, 0.6), strict=True):
        rows += [dict(batch_size=64, learning_rate=1e-3, seed=seed, val_elbo=-25.0, status="ok")]
        rows += [dict(batch_size=64, learning_rate=2e-3, seed=seed, val_elbo=-25.0 + d, status="ok")]
    out = fresh_verdict(first, pd.DataFrame(rows), _rec())
    assert out["decision"] == "undecided" and out["within_delta"] is None and "cannot tell" in out["verdict"]
    assert out["gap"] == pytest.approx(0.6) and out["first_look"]["gap"] == pytest.approx(1.0, abs=0.2)
    rec = _rec()
    adv._follow_confirmation(rec, out)
    assert (rec.batch_size, rec.learning_rate) == (64, 1e-3) and rec.headline == {}


def test_a_best_cell_that_trails_the_advice_on_fresh_seeds_confirms_the_advice_and_says_it_trails():
    first = confirm_verdict(_grid({(64, 1e-3): -25.0, (64, 2e-3): -24.0}), _rec(), delta=0.5)
    out = fresh_verdict(first, _grid({(64, 1e-3): -25.0, (64, 2e-3): -25.2}, seeds=(3, 4, 5)), _rec())
    assert out["decision"] == "confirmed" and out["gap"] < 0
    assert "it trails by 0.2" in out["verdict"] and "the advice stands" in out["verdict"]


def test_a_second_look_that_does_not_fit_the_budget_says_what_budget_would_include_it(digits):
    """With 1 s left after an undecided first look, no fresh seeds train; the verdict names the fewest
    (FRESH_SEEDS[0], two cells) with their cost and the --budget-minutes that would include them."""
    from vae_utils.advisor.confirm import _second_look

    class Clock:
        left_s, budget_s = 1.0, 300.0
        log = staticmethod(lambda m: None)

    first = confirm_verdict(_grid({(64, 1e-3): -25.0, (64, 2e-3): -24.0}), _rec(), delta=0.5)
    plan = {"seeds": [0, 1, 2], "epochs": 30, "workers": 1}
    short = dict(samples_per_s=50_000.0, batch_size=64)
    out, words, estimated_s = _second_look(first, plan, digits, {}, _rec(), short, None, Clock())
    assert words == "" and estimated_s == 0 and out["decision"] == "undecided" and "fresh_seeds" not in out
    k = FRESH_SEEDS[0]
    assert re.search(rf"A second look on {k} fresh seeds \({2 * k} runs, about \d+ s\) would decide; 1 s of the "
                     r"budget are left \(--budget-minutes \d+ would include it\)\.$", out["verdict"])  # fmt: skip


def test_confirmation_is_skipped_with_its_estimated_cost_when_the_budget_left_is_too_small(digits):
    """With 1 s of budget left no grid runs, not even the cheapest (the cross through the advice with two
    seeds: 5 cells, 10 runs); the reason gives its minutes and the budget that would include it."""

    class Clock:
        left_s, budget_s = 1.0, 300.0
        log = staticmethod(lambda m: None)

    short = dict(samples_per_s=50_000.0, batch_size=64)
    rec = adv.Recommendation(64, (32, 128), 4e-3, "adam", 0.03, 0.1, 100.0, (90.0, 110.0))
    out = confirmation(digits, {}, rec, short, (0, 1, 2), 30, 0.5, None, 1, Clock())
    assert not out["ran"] and out["seeds"] == [0, 1] and out["shape"] == "cross through the advice"
    assert re.search(
        r"even a cross through the advice of 10 runs .* --budget-minutes \d+ would include it", out["reason"]
    )
    assert out["batch_sizes"] == [32, 64, 128] and out["learning_rates"] == pytest.approx([2e-3, 4e-3, 8e-3])


def test_the_confirmation_takes_the_fullest_plan_that_fits_the_budget_left():
    """The plans in order: the 3 x 3 grid with 3 then 2 seeds, then the cross (the three rates at B; B/2 and 2B
    at lr) with 3 then 2 seeds; the cross costs 5/9 of the grid's runs."""
    from vae_utils.advisor.confirm import _grid_dicts, _plans

    rec = adv.Recommendation(64, (32, 128), 4e-3, "adam", 0.03, 0.1, 100.0, (90.0, 110.0))
    plans = _plans(rec, 1257, [0, 1, 2])
    assert [(p["shape"], len(p["runs_at"]), len(p["seeds"])) for p in plans] == [
        ("3 x 3 grid", 9, 3), ("3 x 3 grid", 9, 2), ("cross through the advice", 5, 3), ("cross through the advice", 5, 2)
    ]  # fmt: skip
    cross = plans[2]["runs_at"]
    assert sorted(cross) == sorted([(64, 2e-3), (64, 4e-3), (64, 8e-3), (32, 4e-3), (128, 4e-3)])
    grids = _grid_dicts(cross, [0, 1, 2], 30, "adam")
    assert [(g["batch_size"], g["learning_rate"]) for g in grids] == [
        ([32], [4e-3]),
        ([64], [2e-3, 4e-3, 8e-3]),
        ([128], [4e-3]),
    ]


# --- a reader's data file ----------------------------------------------------------------------------


def _bern(n=MIN_EXAMPLES + 20, d=16, seed=0):
    return np.random.default_rng(seed).random((n, d)).astype(np.float32)


def _write(tmp_path, name, writer):
    path = tmp_path / name
    writer(path)
    return path


BAD_FILES = {
    "suffix": ("x.txt", lambda p: p.write_text("1,2\n"), r"suffix '\.txt' is not supported"),
    "missing": ("absent.npy", lambda p: None, "no such file"),
    "non-finite": (
        "nan.npy",
        lambda p: np.save(p, np.where(np.arange(_bern().size).reshape(_bern().shape) == 37, np.nan, _bern())),
        r"1 values are not finite .* example 3, feature 6",
    ),
    "outside [0, 1]": (
        "bytes.csv",
        lambda p: np.savetxt(p, (_bern() * 255).round(), delimiter=","),
        r"outside \[0, 1\].*divide by 255",
    ),
    "too few": ("few.npz", lambda p: np.savez(p, x=_bern(n=50)), "50 examples are too few; allowed: at least"),
    "1-D": ("flat.npy", lambda p: np.save(p, _bern().ravel()), "is not examples x features"),
    "5-D": ("deep.npy", lambda p: np.save(p, _bern().reshape(-1, 2, 2, 2, 2)), "is not examples x features"),
    "text in csv": (
        "text.csv",
        lambda p: p.write_text("a,b\n" + "0.1,0.2\n" * 150 + "0.3,oops\n"),
        r"row 152, column 2: 'oops' is not a number",
    ),
    "npz without a clear array": (
        "two.npz",
        lambda p: np.savez(p, pixels=_bern(), labels=np.arange(len(_bern()))),
        r"holds arrays \['pixels', 'labels'\]; give the one to use",
    ),
    "npz with a missing key": ("one.npz", lambda p: np.savez(p, pixels=_bern()), None),
    "objects": ("obj.npy", lambda p: np.save(p, np.array([{"a": 1}] * 200, dtype=object)), "cannot be read"),
}


@pytest.mark.parametrize("kind", list(BAD_FILES))
def test_a_bad_data_file_gives_a_one_line_error_naming_the_file_and_the_problem(tmp_path, kind):
    """Each kind of bad input raises ValueError: one line, starting with the file's path, saying what is wrong."""
    name, writer, pattern = BAD_FILES[kind]
    path = _write(tmp_path, name, writer)
    key = "x" if kind == "npz with a missing key" else None
    with pytest.raises(ValueError, match="^" + re.escape(f"{path}: ")) as err:
        load_file(path, key=key)
    message = str(err.value)
    assert message.startswith(f"{path}: ") and "\n" not in message
    if pattern is None:  # the key case: the names it has
        assert "has no array named 'x'; allowed: 'pixels'" in message
    else:
        assert re.search(pattern, message), message


def test_conv_needs_images_and_says_so_naming_the_data():
    """A flat array whose width is not a square cannot feed a conv architecture; an image array can."""
    with pytest.raises(ValueError, match=r"^mine: conv needs images; 15 features per example are not a square"):
        from_array(_bern(d=15), architecture="conv", name="mine")
    assert from_array(_bern(d=16).reshape(-1, 4, 4), architecture="conv").image_shape == (4, 4)


def test_the_command_line_reports_a_bad_file_in_one_line_and_exits_2(tmp_path, capsys):
    """``python -m vae_utils advise --data FILE`` with a bad FILE: exit code 2, 'error: FILE: problem' on stderr."""
    path = _write(tmp_path, "nan.npy", BAD_FILES["non-finite"][1])
    assert main(["advise", "--data", str(path), "--no-confirm"]) == 2
    err = capsys.readouterr().err.strip().splitlines()
    assert err[-1].startswith(f"error: {path}: ") and "not finite" in err[-1]


@pytest.mark.slow
def test_advice_for_the_conv_architecture_trains_the_conv_vae_on_images():
    """``architecture="conv"`` on 8x8 images: the range tests, the short run and the noise scale build the
    conv VAE for the data's own image shape (they used the placeholder dataset's 28x28 and failed)."""
    from sklearn.datasets import load_digits

    images = (load_digits().data / 16.0).reshape(-1, 8, 8)
    advice = adv.advise(images, architecture="conv", budget_minutes=2, short_updates=20, noise_repeats=2,
                        noise_batches=8, range_repeats=1, range_test=dict(steps=100), short_seeds=2,
                        confirm=False, progress=False, probe_batch=32)  # fmt: skip
    assert advice.architecture == "conv" and advice.short_run["updates"] > 0
    assert np.isfinite(advice.short_run["test_elbo"]) and all(np.isfinite(advice.noise["runs"][0]["estimates"]))
    assert np.isfinite(advice.recommendation.learning_rate) and advice.recommendation.learning_rate > 0
    # 20 updates of the conv VAE end with 0-1 of 8 active units (issue 21): collapsed runs' B_simple is not
    # used, the batch range is the whole allowed one, and the collapse is the first warning.
    collapsed = [r["collapsed"] for r in advice.short_run["runs"]]
    assert advice.noise["n_used"] == collapsed.count(False)
    if all(collapsed):
        assert np.isnan(advice.recommendation.b_simple) and advice.recommendation.batch_range == (8, 128)
        assert advice.warnings[0].startswith("Posterior collapse: 2 of 2 short runs")


def test_a_csv_with_a_header_an_npz_array_and_images_all_load_as_split_datasets(tmp_path):
    """CSV header rows are skipped; the .npz array used is recorded; (n, 8, 8) images are flattened with their
    shape kept; the 70/15/15 split follows split_seed; Bernoulli held-out sets are binarized once."""
    x = _bern(n=200, d=64)
    csv = tmp_path / "x.csv"
    pd.DataFrame(x, columns=[f"p{i}" for i in range(64)]).to_csv(csv, index=False)
    npz = tmp_path / "x.npz"
    np.savez(npz, labels=np.arange(200), images=x.reshape(200, 8, 8))
    a, b = load_file(csv), load_file(npz)
    assert (len(a.train), len(a.val), len(a.test)) == (140, 30, 30)
    assert b.meta["array"] == "images" and b.image_shape == (8, 8) and b.dim == 64
    np.testing.assert_allclose(np.sort(a.train, axis=0), np.sort(b.train, axis=0), rtol=1e-6)
    assert set(np.unique(a.val)) <= {0.0, 1.0}
    assert not np.array_equal(load_file(csv, split_seed=1).train, a.train)
    assert a.meta["sha256"] == load_file(csv).meta["sha256"]


# --- the advisor end to end --------------------------------------------------------------------------


@pytest.fixture(scope="module")
def digits_advice(tmp_path_factory):
    """The advice on digits without the confirmation grid, with a report, under a one-minute budget."""
    out = tmp_path_factory.mktemp("advice")
    return adv.advise("digits", budget_minutes=1, out=out, confirm=False, progress=False), out


@pytest.mark.slow
def test_advice_on_digits_lies_within_the_range_the_books_grids_support(digits_advice):
    """The recommended batch size lies around the fitted critical batch size (91, 95% CI 59 to 141, at the
    -24.5-nat target: 32 to 128), the batch range contains it, and the rate lies among the rates within
    0.5 nats of the best validation ELBO at that batch size (Adam, 30 epochs)."""
    r = digits_advice[0].recommendation
    assert r.batch_size in (32, 64, 128) and r.batch_range[0] <= r.batch_size <= r.batch_range[1]
    low, high = DIGITS_ADAM_SUPPORTED[r.batch_size]
    assert low <= r.learning_rate <= high, r
    assert r.optimizer == "adam" and r.learning_rate == pytest.approx(r.lr_ratio * r.lr_break)


@pytest.mark.slow
def test_advice_reports_every_steps_numbers_and_timings_in_json_markdown_html_and_a_figure(digits_advice):
    """advice.json holds the data, range test (with its curve), noise scale, short run, recommendation and
    per-step timings; Markdown, HTML, SVG and PNG exist; no temporary file is left behind."""
    advice, out = digits_advice
    d = json.loads((out / "advice.json").read_text())
    assert set(d["timings_s"]) == {"imports", "split", "range_test", "short_run", "noise_scale", "recommendation"}
    assert d["recommendation"]["batch_size"] == advice.recommendation.batch_size
    assert d["data"]["n_train"] == 1257 and d["noise"]["n_positive"] >= 2
    assert len(d["range_tests"][0]["curve"]["loss"]) == d["range_tests"][0]["steps"]
    assert d["total_s"] >= sum(d["timings_s"].values()) - d["timings_s"].get("report", 0)
    md = (out / "advice.md").read_text()
    assert f"**Batch size {advice.recommendation.batch_size}**" in md and "range_test.svg" in md
    assert (out / "advice.html").read_text().startswith("<!DOCTYPE html>")
    assert (out / "range_test.png").read_bytes()[:4] == b"\x89PNG"
    assert not [p for p in out.iterdir() if p.name.startswith(".")]


@pytest.mark.slow
def test_advice_on_a_data_file_runs_its_confirmation_grid_in_process_and_prints_progress(tmp_path, capfd):
    """A .npy of digits' images: every step prints a progress line with its time; the confirmation grid (one
    seed, one epoch here; 9 runs, or 5 for the cross on a busy machine, and the cells one step past its edge
    when its best lies there; then, one seed deciding nothing, a second look on fresh seeds when it fits) trains
    in this process and says where the recommended cell lands."""
    from sklearn.datasets import load_digits

    path = tmp_path / "digits.npy"
    np.save(path, (load_digits().data / 16.0).reshape(-1, 8, 8))
    advice = adv.advise(path, budget_minutes=5, short_updates=100, noise_repeats=3, grid_seeds=(0,), grid_epochs=1,
                        probe_batch=32, range_repeats=1, range_test=dict(steps=100), short_seeds=2)  # fmt: skip
    c = advice.confirmation
    assert c["ran"] and len(c["cells"]) == len(c["runs_at"]) + len(c.get("extended", [])) and c["store"] is None
    assert "edge" in c and (c["decision"] == "best" or "first_look" in c or "would decide" in c["verdict"])
    if "first_look" in c:  # one seed decides nothing; the second look's fresh seeds follow the grid's
        assert c["first_look"]["decision"] == "undecided" and min(c["fresh_seeds"]) == 1
    err = capfd.readouterr().err
    for step in (
        "data ",
        "range test, adam",
        "short run:",
        "noise scale of run 0 after",
        "advice:",
        "Confirmation:",
        "total",
    ):
        assert f"advise: {step}" in err, step
    assert advice.data["name"] == str(path) and advice.data["image_shape"] == [8, 8]


# --- the chapter's checks ------------------------------------------------------------------------------


def test_rate_effects_compare_the_grids_best_rate_by_validation_with_the_advised_rate_on_test_elbo():
    """At batch 32 the best rate by the other seeds' validation is 2e-3 and its test ELBO lies 0.4 nats above the advised 1e-3's
    for every seed; at batch 64 the advised rate is the best on every seed: a difference of 0 by construction,
    an identity, so no test (the verdict says the grid chose the advised rate on every seed)."""
    rows = []
    for seed in range(5):
        for b, lr, val, test in [
            (32, 1e-3, -25, -25.0),
            (32, 2e-3, -24, -24.6),
            (64, 1e-3, -24, -24.0),
            (64, 2e-3, -26, -26),
        ]:
            rows.append(
                dict(batch_size=b, learning_rate=lr, seed=seed, val_elbo=val, test_elbo=test + 0.01 * seed, status="ok")
            )
    from vae_utils.advisor.confirm import rate_effects

    e = rate_effects(pd.DataFrame(rows), {32: 1e-3, 64: 1e-3})
    assert e["batch 32"].estimate == pytest.approx(0.4) and e["batch 32"].n == 5
    assert not e["batch 64"].tested and e["batch 64"].n == 5
    assert e["batch 64"].note.startswith("The grid chose the advised rate on every seed (5 of 5")


def test_a_grid_that_chose_the_advised_rate_on_some_seeds_only_is_measured_as_usual():
    """Seed 0's validation ELBO favours 2e-3 so strongly that, left out, the others choose 1e-3 (the advised
    rate) for it, while every other seed gets 2e-3: a real comparison, tested as one."""
    from vae_utils.advisor.confirm import rate_effects

    rows = []
    for seed in range(4):
        for lr, val in ((1e-3, -25.0), (2e-3, -20.0 if seed == 0 else -25.5)):
            rows.append(dict(batch_size=64, learning_rate=lr, seed=seed, status="ok", val_elbo=val,
                             test_elbo=-25.0 - (lr == 2e-3) * 0.1 * (1 + seed)))  # fmt: skip
    e = rate_effects(pd.DataFrame(rows), {64: 1e-3})["batch 64"]
    assert e.tested and e.n == 4 and e.estimate == pytest.approx(-(0.2 + 0.3 + 0.4) / 4)


def test_critical_batch_fit_recovers_the_critical_batch_size_of_exact_hyperbolic_histories():
    """Histories whose validation ELBO reaches the target after exactly S = 100 (1 + 50 / B) updates give
    B_crit = 50 (the best rate per batch size is the one reaching it first)."""
    from vae_utils.advisor.confirm import critical_batch_fit

    runs, hist = [], []
    for b in (16, 32, 64, 128, 256):
        for lr, slow in ((1e-3, 2.0), (2e-3, 1.0)):
            for seed in range(3):
                rid = f"{b}-{lr}-{seed}"
                s = 100 * (1 + 50 / b) * slow
                runs.append(dict(run_id=rid, batch_size=b, learning_rate=lr, seed=seed, status="ok"))
                steps = np.linspace(0, 3 * s, 61)
                hist += [
                    dict(run_id=rid, steps=t, val_elbo=-30 + 6 * t / s, batch_size=b, learning_rate=lr, seed=seed)
                    for t in steps
                ]
    pairs, fit = critical_batch_fit(pd.DataFrame(runs), pd.DataFrame(hist), target=-24.0)
    assert set(pairs.learning_rate) == {2e-3} and len(pairs) == 15
    assert fit.b_crit == pytest.approx(50, rel=1e-3) and fit.s_min == pytest.approx(100, rel=1e-3)


def test_bsimple_vs_bcrit_is_the_log2_ratio_with_both_uncertainties_combined():
    """Estimates 80, 100, 125 (geometric mean 100) against B_crit = 50 (95% CI 25 to 100 on 8 runs): log2 ratio 1,
    the two log-scale standard errors combined with Welch-Satterthwaite degrees of freedom (recomputed here);
    estimates without spread (all 100) have no interval (zero spread is not certainty), nor has a B_crit
    without one."""
    from scipy import stats

    from vae_utils.advisor.confirm import bsimple_vs_bcrit
    from vae_utils.claims.analysis import HyperbolaFit

    fit = HyperbolaFit(100.0, 50.0, 5000.0, 8, 4, 0.1, 25.0, 100.0)
    logs = np.log([80.0, 100.0, 125.0])
    se_a = logs.std(ddof=1) / math.sqrt(3)
    se_b = math.log(4) / (2 * stats.t.ppf(0.975, 6))
    se = math.hypot(se_a, se_b)
    dof = se**4 / (se_a**4 / 2 + se_b**4 / 6)
    e = bsimple_vs_bcrit([80.0, 100.0, 125.0], fit)
    assert e.estimate == pytest.approx(1.0)
    assert e.low == pytest.approx(1 - stats.t.ppf(0.975, dof) * se / math.log(2), rel=1e-6)
    assert math.isnan(bsimple_vs_bcrit([100.0] * 5, fit).low)
    no_interval = HyperbolaFit(100.0, 50.0, 5000.0, 2, 2, 0.0)
    assert math.isnan(bsimple_vs_bcrit([90.0, 110.0, 100.0], no_interval).low)


def test_a_named_dataset_keeps_the_split_seed_it_was_loaded_with(digits):
    """resolve_data("digits", split_seed=3) splits with seed 3 and records it, so the confirmation sweep's
    TrainConfig (split_seed) trains on the same split the advisor measured."""
    ds = adv.resolve_data("digits", split_seed=3)
    assert ds.meta["split_seed"] == 3 and not np.array_equal(ds.train, digits.train)
    assert adv._config(ds, {}).split_seed == 3


def _null_grid(rng, seeds=5, rates=(1e-3, 2e-3, 4e-3, 8e-3)):
    """Every rate equally good: per seed and rate one run, its validation and test ELBO sharing the run's
    own noise (a run that is lucky on validation is lucky on test), plus independent noise each."""
    rows = []
    for seed in range(seeds):
        for lr in rates:
            run = rng.normal(0, 0.3)
            rows.append(dict(batch_size=64, learning_rate=lr, seed=seed, status="ok",
                             val_elbo=-25 + run + rng.normal(0, 0.1), test_elbo=-25 + run + rng.normal(0, 0.1)))  # fmt: skip
    return pd.DataFrame(rows)


@pytest.mark.slow
def test_the_grids_best_rate_chosen_on_other_seeds_beats_the_advice_no_more_often_than_alpha_when_no_rate_is_better():
    """Issue 18: choosing the best rate on the seeds that judge it makes the grid's choice look better
    than the advice under no effect (a run lucky on validation is lucky on test). Chosen on the other
    seeds, the gain is unbiased and a one-sided false "beats" stays near its nominal 2.5 % (600 simulated
    grids; the bounds allow for Monte-Carlo error)."""
    from vae_utils.advisor.confirm import rate_effects

    rng = np.random.default_rng(1)
    fair, gains, in_sample = 0, [], []
    for _ in range(600):
        df = _null_grid(rng)
        e = rate_effects(df, {64: 1e-3})["batch 64"]
        fair += bool(e.has_interval and e.low > 0)
        gains.append(e.estimate if e.tested else 0.0)  # untested: every seed chose the advised rate, a gain of 0
        best = df.groupby("learning_rate").val_elbo.mean().idxmax()  # the same seeds choose and judge
        t = df.pivot(index="seed", columns="learning_rate", values="test_elbo")
        in_sample.append(float((t[best] - t[1e-3]).mean()))
    assert fair / 600 <= 0.05  # nominal 0.025; 0.05 is about four standard errors above it
    se = np.std(gains) / np.sqrt(len(gains))
    assert abs(np.mean(gains)) < 4 * se  # unbiased
    assert np.mean(in_sample) > np.mean(gains) + 5 * se  # the check can fail: the in-sample choice is biased up
