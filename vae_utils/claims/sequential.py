"""Group-sequential seeds: look at a claim after 5, 10 and 20 seeds, stop once it is decided.

A fixed design spends ten seeds on a claim settled at five and leaves one open at ten. A
group-sequential design (Jennison & Turnbull 2000) plans K looks at n_1 < ... < n_K seeds; at each
look every claim still open is tested at a *nominal* level chosen so that, over all the looks
together, the chance of a false decision stays at the planned α; a decided claim stops, and only
the open ones get more seeds.

    nominal_alpha(0.05, (5, 10, 20))       # 0.0203: Pocock's per-look level for three looks
    repeated_p(0.01, (5, 10, 20))          # 0.0254: the overall α at which p = 0.01 would just reject

The boundary is Pocock's (one critical value c at every look, Pocock 1977): for the standardized
statistics Z_k of the looks, which under the null behave as a Brownian motion observed at the
information fractions t_k = n_k / n_K (corr(Z_i, Z_j) = sqrt(t_i / t_j)), c solves
P(max_k |Z_k| >= c) = α, computed exactly here by integrating the motion's density look by look
(Armitage, McPherson & Rowe 1969). The nominal level is 2 (1 − Φ(c)). Each look's test is the
chapter's own (t-test, rank or permutation test); its p-value is compared with the nominal level,
the usual "nominal p-value" form of a group-sequential test.

With several claims (``verdicts.Family(..., looks=...)``), Holm's procedure runs on the *repeated
p-values* (the overall α at which each claim's p would reject at its look): a claim judged at Holm's
α/(m − i) gets the nominal level of a Pocock design for that α. This is the graphical approach of
Maurer & Bretz (2013) for Holm's procedure in group-sequential trials; it keeps the family-wise
error rate at α over all the looks (tests/test_sequential.py shows it by simulation, for
"supported"/"opposite" under no effect and for "no effect that matters" at an effect of Δ).
"""

from __future__ import annotations

import functools
import itertools
import math
from collections.abc import Sequence

import numpy as np
from scipy import interpolate, optimize, stats

__all__ = ["LOOKS", "check_looks", "fractions", "crossing_probability", "nominal_alpha", "repeated_p"]

LOOKS = (5, 10, 20)  # the seeds at each look of the at-scale chapter's design
_GRID = 601  # points across each look's continuation region (nominal levels to ~1e-4 of themselves)


def check_looks(looks) -> tuple[int, ...]:
    """``looks`` as a tuple of increasing positive ints, or a ValueError naming the value."""
    ok = isinstance(looks, Sequence) and len(looks) > 0 and all(isinstance(n, int) and n > 0 for n in looks)
    if not ok or list(looks) != sorted(set(looks)):
        raise ValueError(f"looks={looks!r} is not allowed; allowed: increasing positive seed counts, e.g. (5, 10, 20)")
    return tuple(looks)


def fractions(looks: Sequence[int]) -> tuple[float, ...]:
    """The information fractions n_k / n_K of the looks (information grows with the seeds)."""
    looks = check_looks(looks)
    return tuple(n / looks[-1] for n in looks)


@functools.lru_cache(maxsize=256)
def crossing_probability(c: float, fracs: tuple[float, ...]) -> float:
    """P(|Z_k| >= c at some look k) for a Brownian motion W observed at times ``fracs``, Z_k =
    W(t_k) / sqrt(t_k): the density of W inside the continuation region is carried from look to
    look (a Gaussian kernel over each increment), and what leaves it has crossed."""
    x = np.linspace(-c * math.sqrt(fracs[0]), c * math.sqrt(fracs[0]), _GRID)
    density = stats.norm.pdf(x, scale=math.sqrt(fracs[0]))
    stay = float(np.trapezoid(density, x))
    for t0, t1 in itertools.pairwise(fracs):
        y = np.linspace(-c * math.sqrt(t1), c * math.sqrt(t1), _GRID)
        kernel = np.exp(-0.5 * (y[:, None] - x[None, :]) ** 2 / (t1 - t0)) / math.sqrt(2 * math.pi * (t1 - t0))
        density, x = np.trapezoid(kernel * density[None, :], x, axis=1), y
        stay = float(np.trapezoid(density, x))
    return 1.0 - stay


@functools.lru_cache(maxsize=256)
def _critical(alpha: float, fracs: tuple[float, ...]) -> float:
    if len(fracs) == 1:
        return float(stats.norm.isf(alpha / 2))
    lo, hi = float(stats.norm.isf(alpha / 2)), float(stats.norm.isf(alpha / (2 * len(fracs))))
    return optimize.brentq(lambda c: crossing_probability(c, fracs) - alpha, lo, hi + 1e-9, xtol=1e-10)


def nominal_alpha(alpha: float, looks: Sequence[int]) -> float:
    """The two-sided level each look tests at, so that a Pocock design over ``looks`` has overall
    level ``alpha``; ``alpha`` itself for one look. Between α / K (Bonferroni) and α."""
    if not (isinstance(alpha, int | float) and 0 < alpha < 1):
        raise ValueError(f"alpha={alpha!r} is not allowed; allowed: a number in (0, 1)")
    c = _critical(float(alpha), fractions(looks))
    return float(2 * stats.norm.sf(c))


_C_MAX = 7.0  # beyond it (p < 3e-12) the repeated p is bounded by K p (Bonferroni), which it then equals to ~1e-6


@functools.lru_cache(maxsize=64)
def _log_crossing(fracs: tuple[float, ...]) -> interpolate.CubicSpline:
    """log P(crossing) as a smooth function of the critical value c, from exact values every 0.1."""
    cs = np.linspace(0.0, _C_MAX, 71)
    return interpolate.CubicSpline(cs, [math.log(crossing_probability(float(c), fracs)) for c in cs])


def repeated_p(p: float, looks: Sequence[int]) -> float:
    """The overall α at which a look's nominal p-value ``p`` lies exactly on the Pocock boundary:
    ``repeated_p(p) <= a`` exactly when ``p <= nominal_alpha(a)`` (to ~1e-5 of itself: the crossing
    probability is interpolated). NaN stays NaN; 0 and 1 stay."""
    if not math.isfinite(p):
        return math.nan
    fracs = fractions(looks)
    if len(fracs) == 1 or p <= 0 or p >= 1:
        return float(min(max(p, 0.0), 1.0))
    c = float(stats.norm.isf(p / 2))
    if c >= _C_MAX:
        return float(min(1.0, len(fracs) * p))
    return float(min(1.0, math.exp(_log_crossing(fracs)(c))))
