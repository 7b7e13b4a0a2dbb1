"""B_simple of a short run over its last half, and how it moves there (the advisor's noise-scale step).

    from vae_utils.advisor.noisescale import pooled_b_simple, noise_curve
    run = pooled_b_simple([ckpt_a, ckpt_b, ckpt_c])   # checkpoints of one seed, each with "g2", "trace_sigma"
    noise_curve([run_0, run_1, run_2])                  # per checkpoint over the runs, and the change

A single checkpoint's B_simple is a noisy reading of a quantity that itself swings as the optimizer moves: on
8x8 image patches, one seed read 240, 1,930 and 13 at 324 updates and 95, 41 and 48 at 594 (issue 21). So a
run's B_simple is read at several checkpoints of its last half (each a run of that many updates from the same
seed) and pooled as McCandlish et al. (2018, appendix A.1) do over training: the mean of the unbiased
tr(Sigma) estimates over the mean of the unbiased |G|^2 estimates, then their ratio. The curve (B_simple per
checkpoint, the geometric mean over runs) and its change from the first checkpoint to the last (doublings,
paired by seed) say whether it had settled.
"""

from __future__ import annotations

import math

import numpy as np

__all__ = ["CHECKPOINTS", "checkpoint_updates", "pooled_b_simple", "noise_curve", "curve_words", "still_growing"]

CHECKPOINTS = (0.5, 0.75, 1.0)  # fractions of the short run's updates at which B_simple is read


def pooled_b_simple(checkpoints: list[dict]) -> dict:
    """One run's B_simple from its checkpoints: mean tr(Sigma) / mean |G|^2 over every estimate of every
    checkpoint (each checkpoint: ``g2`` and ``trace_sigma`` lists, ``updates``). Also each checkpoint's
    own ratio (``curve``: [(updates, B_simple)]) and every estimate's ``b_simple`` (``estimates``).
    A non-positive pooled |G|^2 (the gradient lost in the noise) gives B_simple inf: too large to measure."""
    g2 = np.concatenate([np.asarray(c["g2"], np.float64) for c in checkpoints])
    tr = np.concatenate([np.asarray(c["trace_sigma"], np.float64) for c in checkpoints])
    ok = np.isfinite(g2) & np.isfinite(tr)
    mean_g2, mean_tr = float(g2[ok].mean()) if ok.any() else math.nan, float(tr[ok].mean()) if ok.any() else math.nan
    ratio = lambda t, g: t / g if g > 0 else (math.inf if t > 0 else math.nan)
    curve = [
        (int(c["updates"]), ratio(float(np.nanmean(c["trace_sigma"])), float(np.nanmean(c["g2"])))) for c in checkpoints
    ]
    return {
        "b_simple": ratio(mean_tr, mean_g2),
        "g2": mean_g2,
        "trace_sigma": mean_tr,
        "curve": curve,
        "estimates": [float(v) for c in checkpoints for v in c.get("estimates", [])],
        "n_estimates": int(ok.sum()),
    }


def noise_curve(runs: list[dict], usable=None) -> dict:
    """Over the usable runs (``pooled_b_simple``'s, same checkpoints): B_simple per checkpoint as the
    geometric mean over runs (``curve``: [{"updates", "b_simple"}], updates the runs' mean) and its change from
    the first checkpoint to the last in doublings, paired by seed (``stats.paired`` on log2 values; ``change``,
    {"doublings", "low", "high", "n"}: NaN with fewer than two runs or checkpoints, or no spread)."""
    from ..claims import stats as S

    usable = [True] * len(runs) if usable is None else list(usable)
    used = [r["curve"] for r, ok in zip(runs, usable, strict=True) if ok]
    k = min((len(c) for c in used), default=0)
    log2 = np.array([[math.log2(b) if b > 0 and math.isfinite(b) else math.nan for _, b in c[:k]] for c in used])
    curve = []
    for i in range(k):
        col = log2[:, i][np.isfinite(log2[:, i])]
        b = float(2 ** col.mean()) if len(col) else math.nan
        curve.append({"updates": round(float(np.mean([c[i][0] for c in used]))), "b_simple": b})
    change = dict(doublings=math.nan, low=math.nan, high=math.nan, n=len(used))
    if k >= 2 and len(used) >= 2:
        e = S.paired(log2[:, -1], log2[:, 0], name="doublings of B_simple, first checkpoint to last", unit="doublings")
        change.update(doublings=e.estimate, low=e.low, high=e.high)
    return {"curve": curve, "change": change}


def curve_words(noise: dict) -> str:
    """The curve in words: 'B_simple per checkpoint (updates 150, 225, 300): 40, 55, 61 (geometric means over
    3 runs); from the first to the last it grows: ×1.5 (95% CI 1.1 to 2.1)'."""
    from ..publish.numbers import fmt

    curve, e = noise.get("curve") or [], noise.get("change")
    if not curve:
        return "no B_simple curve (no usable short run)"
    text = (
        f"B_simple per checkpoint (updates {', '.join(str(c['updates']) for c in curve)}): "
        f"{', '.join(fmt(c['b_simple']) for c in curve)} (geometric means over {noise.get('n_used', 1)} runs)"
    )
    if not e or not (math.isfinite(e["low"]) and math.isfinite(e["high"])):
        return text + "; its change cannot be told (fewer than two runs or checkpoints)"
    ratio = (
        f"×{fmt(2 ** e['doublings'], 2)} (95% CI {fmt(2 ** e['low'], 2)} to {fmt(2 ** e['high'], 2)}, paired over runs)"
    )
    verb = "grows" if e["low"] > 0 else "falls" if e["high"] < 0 else "shows no clear direction"
    return f"{text}; from the first to the last it {verb}: {ratio}"


def checkpoint_updates(updates: int, per_epoch: int) -> list[int]:
    """The updates at which a short run of ``updates`` is read (``CHECKPOINTS`` of it), distinct once a run of
    more than an epoch is rounded to whole epochs of ``per_epoch`` updates (as ``recommend._short_run`` does)."""
    whole = lambda n: n if n < per_epoch else max(1, round(n / per_epoch)) * per_epoch
    return sorted({whole(max(1, round(f * updates))) for f in CHECKPOINTS})


def still_growing(noise: dict) -> bool:
    """Whether B_simple grew from the first checkpoint to the last beyond the runs' noise (the paired interval
    of its doublings lies above 0): then it had not settled, and a longer run's is likely larger."""
    e = noise.get("change") or {}
    return bool(math.isfinite(e.get("low", math.nan)) and e["low"] > 0)
