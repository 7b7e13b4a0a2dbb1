"""Learning-rate range test (Smith 2017, arXiv:1506.01186): where training breaks, in one short run.

    from vae_utils.advisor.rangetest import vae_range_test
    rt = vae_range_test(ds, batch_size=64, optimizer="adam")
    rt.lr_break        # the rate where the smoothed training loss starts to rise
    rt.frame()         # one row per update: learning_rate, loss, smoothed_loss

One run from fresh weights; the learning rate of update i is lr_min * (lr_max / lr_min) ** (i / steps),
rising geometrically. The loop is one ``tf.function`` (every update inside a ``tf.while_loop``) and
stops early when the loss turns non-finite or, smoothed, climbs back above where it started.
``range_test`` runs any loss on any variables (a quadratic in the tests); ``vae_range_test`` runs
the toolkit's VAE, Keras optimizer and ``objective.negative_elbo`` on a ``Dataset``.

Detection (``find_break``), robust to single bad steps:

1. the losses up to the first non-finite one are smoothed with a centred running median over
   ``window`` (a fraction of the planned steps; median, so one spike moves nothing);
2. the noise of the smoothed curve is estimated locally from the residuals (their running MAD
   over three windows, times 1.25/sqrt(width) for a median of that many points), since a loss's
   noise shrinks as it falls;
3. the rise is *confirmed* at the first update where the smoothed loss exceeds its running minimum
   by more than tol = max(``rise`` x (first smoothed loss - running minimum), ``z`` x noise), once
   that minimum lies ``z`` raw per-update noise units below the start (a rise needs a fall before
   it: wiggles of the flat start at tiny rates do not count); or at the first non-finite loss, or
   where the loop stopped;
4. the breaking point ``lr_break`` is the rate of the last update before the confirmation whose
   smoothed loss still lay within ``z`` x noise of the minimum: where the loss *starts* to rise,
   at the far end of a flat bottom rather than at its noisiest point;
5. a break below ``min_ratio`` (10) x the test's lowest rate does not count (a wiggle of a smooth,
   slowly falling start, or a test that began above the break): the search goes on past it, and
   the rates left out are returned as ``early``.

``checked_range_test`` repeats the test over a few seeds and takes the median breaking point, with
its spread; when no repeat found a break and one broke too early, it extends the range 100x down.

No rise within the run gives ``found=False`` and ``lr_break`` NaN: raise ``lr_max``.
"""

from __future__ import annotations

import math
import time
from dataclasses import dataclass, field

import numpy as np
import pandas as pd
import tensorflow as tf
from scipy import ndimage

__all__ = [
    "RangeTest",
    "range_test",
    "find_break",
    "vae_range_test",
    "checked_range_test",
    "combine_breaks",
    "DEFAULTS",
]

# The test's settings. lr_break depends on how fast the rate rises (a faster ramp breaks later),
# so the advisor's learning-rate ratio (advisor.LR_RATIO) was measured with exactly these.
DEFAULTS = dict(lr_min=1e-5, lr_max=10.0, steps=300, window=0.05, rise=0.1, z=3.0, min_ratio=10.0)


@dataclass
class RangeTest:
    """The curve of one range test and where it broke."""

    learning_rates: np.ndarray = field(repr=False)  # the rate of every planned update
    losses: np.ndarray = field(repr=False)  # the training loss at each update (NaN after the stop)
    smoothed: np.ndarray = field(repr=False)  # the running median (NaN after the last finite loss)
    lr_break: float  # where the smoothed loss starts to rise; NaN when no rise was found
    lr_confirmed: float  # where the rise was confirmed
    lr_lowest: float  # where the smoothed loss is lowest
    found: bool
    stopped: str  # "non-finite loss", "loss back above its start", or "" (ran to lr_max)
    steps_run: int
    wall_time_s: float
    optimizer: str = ""
    batch_size: int = 0
    settings: dict = field(default_factory=dict)
    early: list = field(default_factory=list)  # breaks left out for lying below min_ratio x lr_min
    repeats: dict = field(default_factory=dict)  # checked_range_test's summary over its seeds

    def frame(self) -> pd.DataFrame:
        """One row per planned update: step, learning_rate, loss, smoothed_loss."""
        return pd.DataFrame(
            {
                "step": np.arange(1, len(self.losses) + 1),
                "learning_rate": self.learning_rates,
                "loss": self.losses,
                "smoothed_loss": self.smoothed,
            }
        )

    def summary(self) -> dict:
        """The scalars, JSON-ready (the curve is in ``frame``)."""
        keys = ("lr_break", "lr_confirmed", "lr_lowest", "found", "stopped", "steps_run", "wall_time_s", "early")
        return {k: getattr(self, k) for k in keys} | {
            "optimizer": self.optimizer,
            "batch_size": self.batch_size,
            "repeats": self.repeats,
            **self.settings,
        }


def _check(lr_min, lr_max, steps):
    if not (isinstance(lr_min, (int, float)) and isinstance(lr_max, (int, float)) and 0 < lr_min < lr_max):
        raise ValueError(f"lr_min={lr_min!r}, lr_max={lr_max!r} is not allowed; allowed: 0 < lr_min < lr_max")
    if isinstance(steps, bool) or not isinstance(steps, (int, np.integer)) or steps < 10:
        raise ValueError(f"steps={steps!r} is not allowed; allowed: an integer >= 10")


def range_test(loss_fn, variables, optimizer, lr_min=1e-5, lr_max=10.0, steps=300, seed=0) -> tuple:
    """Run the range test: ``loss_fn(i)`` (i: the update's index, an int32 tensor) returns the
    scalar loss of update i on its own batch; ``optimizer`` (Keras) updates ``variables``.
    Returns (learning_rates, losses, stopped): losses NaN after the loop stopped."""
    _check(lr_min, lr_max, steps)
    variables = list(variables)
    optimizer.build(variables)

    @tf.function(autograph=False)
    def run(lr_min, log_ratio, n):
        def body(i, losses, ema, start, go):
            lr = lr_min * tf.exp(log_ratio * tf.cast(i, tf.float32))
            optimizer.learning_rate.assign(lr)
            with tf.GradientTape() as tape:
                loss = loss_fn(i)
            optimizer.apply(tape.gradient(loss, variables), variables)
            ema = 0.9 * ema + 0.1 * loss  # for stopping only; find_break smooths properly
            debiased = ema / (1.0 - tf.pow(0.9, tf.cast(i + 1, tf.float32)))
            start = tf.where(i < 5, debiased, start)  # the smoothed loss after 5 updates
            back_above = tf.logical_and(i >= 20, debiased > start + tf.abs(start))
            go = tf.logical_and(tf.math.is_finite(loss), tf.logical_not(back_above))
            return i + 1, losses.write(i, loss), ema, start, go

        init = (tf.constant(0), tf.TensorArray(tf.float32, size=n), tf.constant(0.0), tf.constant(0.0), True)
        i, losses, _, _, go = tf.while_loop(lambda i, *rest: tf.logical_and(i < n, rest[-1]), body, init)
        return i, go, losses.gather(tf.range(i))

    log_ratio = math.log(lr_max / lr_min) / (steps - 1)
    lrs = lr_min * np.exp(log_ratio * np.arange(steps))
    i, go, done = run(tf.constant(lr_min, tf.float32), tf.constant(log_ratio, tf.float32), tf.constant(steps))
    losses = np.full(steps, np.nan)
    losses[: int(i)] = done.numpy()
    stopped = ""
    if not bool(go):
        stopped = "non-finite loss" if not np.isfinite(losses[int(i) - 1]) else "loss back above its start"
    return lrs, losses, stopped


def _odd(k: int) -> int:
    return k if k % 2 else k + 1


def find_break(learning_rates, losses, window=0.05, rise=0.1, z=3.0, min_ratio=10.0) -> dict:
    """Where the loss of a range test starts to rise (the rule: module docstring).

    ``window``: the running median's width as a fraction of the planned steps; ``rise``: the
    confirming rise as a fraction of the fall so far; ``z``: noise units; ``min_ratio``: a break
    counts only at or above ``min_ratio`` x the test's lowest rate (an earlier one is a wiggle of the
    start, or a test that began too high: the search goes on past it). Returns lr_break,
    lr_confirmed, lr_lowest (NaN when not found), found, ``early`` (the rates of the breaks left out
    for lying too close to the start) and the smoothed curve."""
    lrs, x = np.asarray(learning_rates, np.float64), np.asarray(losses, np.float64)
    if lrs.shape != x.shape or lrs.ndim != 1:
        raise ValueError(f"learning_rates and losses have shapes {lrs.shape} and {x.shape}; allowed: two equal 1-D")
    bad = np.flatnonzero(~np.isfinite(x))
    n = int(bad[0]) if len(bad) else len(x)  # finite prefix
    smooth = np.full(len(x), np.nan)
    nan = dict(lr_break=math.nan, lr_confirmed=math.nan, lr_lowest=math.nan, found=False, early=[], smoothed=smooth)
    if n < 3:
        return nan | dict(early=[float(lrs[0])])
    width = min(_odd(max(3, round(window * len(x)))), _odd(n) - 2 if n > 3 else 3)
    s = ndimage.median_filter(x[:n], size=width, mode="nearest")
    smooth[:n] = s
    # local noise per update: MAD of the residuals over 3 windows (the loss's noise shrinks as it falls)
    raw_noise = 1.4826 * ndimage.median_filter(np.abs(x[:n] - s), size=3 * width, mode="nearest")
    noise = raw_noise * 1.2533 / math.sqrt(width)  # of a median of `width` updates
    running_min = np.minimum.accumulate(s)
    fallen = s[0] - running_min
    tol = np.maximum(rise * fallen, z * noise)
    up = np.flatnonzero((s > running_min + tol) & (fallen > z * raw_noise))
    candidates = [int(c) for c in up] + ([n] if n < len(x) else [])
    early = []
    for confirm in candidates:
        last_low, lowest = _last_low(s[:confirm], noise, z)
        if last_low is None or lrs[last_low] >= min_ratio * lrs[0]:
            break
        if not early or early[-1] != float(lrs[last_low]):
            early.append(float(lrs[last_low]))
    else:
        return nan | dict(lr_lowest=float(lrs[int(np.argmin(s))]), early=early)
    if last_low is None:
        return nan | dict(early=early)
    return dict(
        lr_break=float(lrs[last_low]),
        lr_confirmed=float(lrs[min(confirm, len(lrs) - 1)]),
        lr_lowest=float(lrs[lowest]),
        found=True,
        early=early,
        smoothed=smooth,
    )


def _last_low(head, noise, z):
    """(the last update whose smoothed loss lies within z noise units of the head's minimum, that minimum),
    or (None, None) for an empty head."""
    if len(head) == 0:
        return None, None
    lowest = int(np.argmin(head))
    return int(np.flatnonzero(head <= head[lowest] + z * noise[lowest])[-1]), lowest


def _vae_loss_fn(model, x_train, batch_size, steps, seed):
    """The loss of update i: a batch of the seeded shuffles, binarized afresh for Bernoulli data,
    with fresh reparameterization noise; ``objective.negative_elbo`` with beta = 1."""
    from ..core.data import binarize_tensor
    from ..core.model import reparameterize
    from ..core.objective import negative_elbo

    n = len(x_train)
    rng = np.random.default_rng(seed)
    per_epoch = n // batch_size
    epochs = -(-steps // per_epoch)
    order = np.concatenate([rng.permutation(n)[: per_epoch * batch_size] for _ in range(epochs)])
    index = tf.constant(order[: steps * batch_size].reshape(steps, batch_size), tf.int32)
    x = tf.constant(x_train, tf.float32)
    bernoulli, latent_dim = model.likelihood == "bernoulli", model.config.latent_dim

    def loss_fn(i):
        xb = tf.gather(x, index[i])
        if bernoulli:
            xb = binarize_tensor(xb, tf.stack([seed + 7919, i]))
        z_mean, z_log_var = model.posterior(xb, training=True)
        eps = tf.random.stateless_normal([batch_size, latent_dim], seed=tf.stack([seed + 104729, i]))
        decoded = model.decoder(reparameterize(z_mean, z_log_var, eps), training=True)
        loss, _, _ = negative_elbo(xb, decoded, z_mean, z_log_var, model.likelihood, 1.0, model.decoder_log_var)
        return loss

    return loss_fn


def vae_range_test(data, batch_size: int, optimizer: str = "adam", model_config=None, seed: int = 0, **settings):
    """The range test of a fresh VAE (``model_config``, default: TrainConfig's defaults for these
    data) on ``data.train`` (a ``Dataset``) with the toolkit's Keras optimizer ``optimizer``.
    ``settings`` override ``DEFAULTS`` (lr_min, lr_max, steps, window, rise, z)."""
    from ..core.config import OPTIMIZERS, TrainConfig
    from ..core.model import build_vae
    from ..core.training import _determinism_enabled, make_optimizer

    unknown = sorted(set(settings) - set(DEFAULTS))
    if unknown:
        raise ValueError(f"{unknown[0]}={settings[unknown[0]]!r} is not allowed; allowed: {', '.join(DEFAULTS)}")
    s = DEFAULTS | settings
    if optimizer not in OPTIMIZERS:
        raise ValueError(f"optimizer={optimizer!r} is not allowed; allowed: {', '.join(OPTIMIZERS)}")
    n = len(data.train)
    if isinstance(batch_size, bool) or not isinstance(batch_size, (int, np.integer)) or not 1 <= batch_size <= n:
        raise ValueError(f"batch_size={batch_size!r} is not allowed; allowed: 1 .. {n} (the training set)")
    model_config = model_config or TrainConfig().model_config(data.dim, data.likelihood, data.image_shape)
    if not _determinism_enabled():
        tf.config.experimental.enable_op_determinism()  # as train(): one seed, one curve
    t0 = time.perf_counter()
    model = build_vae(model_config, seed=seed)
    opt = make_optimizer(TrainConfig(optimizer=optimizer, learning_rate=s["lr_min"]))
    loss_fn = _vae_loss_fn(model, data.train, int(batch_size), s["steps"], seed)
    lrs, losses, stopped = range_test(loss_fn, model.trainable_variables, opt, s["lr_min"], s["lr_max"], s["steps"])
    b = find_break(lrs, losses, s["window"], s["rise"], s["z"], s["min_ratio"])
    return RangeTest(
        lrs,
        losses,
        b["smoothed"],
        b["lr_break"],
        b["lr_confirmed"],
        b["lr_lowest"],
        b["found"],
        stopped,
        int(np.isfinite(losses).sum()),
        time.perf_counter() - t0,
        optimizer,
        int(batch_size),
        dict(s, seed=seed),
        b["early"],
    )


def combine_breaks(tests) -> dict:
    """The breaking point over repeated range tests: the median of those that found one (the geometric
    middle of the two central ones for an even count), its spread (lowest, highest) and the count."""
    found = sorted(t.lr_break for t in tests if t.found)
    nan = math.nan
    middle = float(np.exp(np.median(np.log(found)))) if found else nan
    return {
        "lr_break": middle,
        "low": found[0] if found else nan,
        "high": found[-1] if found else nan,
        "n_found": len(found),
        "n": len(tests),
        "breaks": [float(t.lr_break) for t in tests],
        "seeds": [t.settings.get("seed") for t in tests],
    }


def extended_down(settings: dict, factor: float = 100.0) -> dict:
    """The settings with the range starting ``factor`` x lower and as many more updates as keep the
    ramp's rise per update (the breaking point depends on it: module DEFAULTS)."""
    s = DEFAULTS | settings
    per_decade = (s["steps"] - 1) / math.log10(s["lr_max"] / s["lr_min"])
    lr_min = s["lr_min"] / factor
    return dict(settings, lr_min=lr_min, steps=round(per_decade * math.log10(s["lr_max"] / lr_min)) + 1)


def checked_range_test(data, batch_size, optimizer="adam", model_config=None, seeds=(0, 1, 2), **settings):
    """Range tests repeated over ``seeds``; the breaking point is their median (``combine_breaks``).
    When none of them found a break and one broke too close to its start (below min_ratio x lr_min,
    see ``find_break``), they are run once more with the range extended 100x downward
    (``extended_down``); when fewer than half found one, as many more seeds are run (once), so that the
    median does not rest on a lone repeat. Returns the test whose break is nearest the median, its ``lr_break`` set to
    the median and its ``repeats`` to the summary (with ``extended``: the lr_min used, or None);
    ``found`` is False when no repeat found a break."""
    run = lambda st, ss: [vae_range_test(data, batch_size, optimizer, model_config, seed=s, **st) for s in ss]
    tests, extended = run(settings, seeds), None
    if not any(t.found for t in tests) and any(t.early for t in tests):
        settings = extended_down(settings)
        tests, extended = run(settings, seeds), settings["lr_min"]
    if 0 < sum(t.found for t in tests) < len(tests) / 2:  # a minority broke: as many more seeds, once
        tests += run(settings, [max(seeds) + 1 + k for k in range(len(seeds))])
    summary = combine_breaks(tests) | {"extended": extended, "wall_time_s": sum(t.wall_time_s for t in tests)}
    found = [t for t in tests if t.found]
    if not found:
        rt = tests[0]
    else:
        rt = min(found, key=lambda t: abs(math.log(t.lr_break / summary["lr_break"])))
        rt.lr_break = summary["lr_break"]
    rt.repeats = summary
    return rt
