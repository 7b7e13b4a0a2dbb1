"""Numbers as a page prints them: one formatter for the toolkit, the chapters and the book driver.

    fmt(0.00000415)  # '4.15×10⁻⁶'      fmt(190.4)  # '190'      fmt(-0.2)  # '−0.2' (a true minus sign)
    fmt_interval(-1.234, -1.9, -0.5, 0.95, "nats")  # '−1.2 nats (95% CI −1.9 to −0.5)'

No exponent notation (``1.9e+02``), no run of zeros, no hyphen-minus: numbers written for people.
Light: the standard library only, so the book driver formats with it too.
"""

from __future__ import annotations

import math

__all__ = ["MINUS", "fmt", "fmt_p", "fmt_level", "fmt_interval", "quantity"]

MINUS = "\u2212"
_SUPERSCRIPT = str.maketrans("-0123456789", "⁻⁰¹²³⁴⁵⁶⁷⁸⁹")


def fmt(x, digits: int = 3) -> str:
    """A number for prose: ``digits`` significant digits (every integer digit from 10^digits up to 10¹⁵),
    thousands separators, a true minus sign, ×10ⁿ for the very small and the very large, 'n/a' for NaN/None."""
    if x is None or not math.isfinite(float(x)):
        return "n/a"
    x = float(x)
    if x == 0:
        return "0"
    s = f"{x:,.{digits}g}"
    if 10**digits <= abs(float(f"{x:.{digits}g}")) and abs(x) < 1e15:  # rounded first: 999.6 is '1,000'
        s = f"{x:,.0f}"
    elif "e" in s:  # beyond 10¹⁵ a float's integer digits are noise
        mant, exp = s.split("e")
        s = f"{mant}×10{str(int(exp)).translate(_SUPERSCRIPT)}"
    return s.replace("-", MINUS)


def fmt_p(p) -> str:
    """A p-value for prose: two significant digits, '< 0.001' below that, 'n/a' for NaN."""
    if p is None or not math.isfinite(p):
        return "n/a"
    return "< 0.001" if p < 0.001 else f"{p:.2g}"


def fmt_level(level: float) -> str:
    """0.95 -> '95%', 0.98333 -> '98.33%'."""
    return f"{100 * level:.2f}".rstrip("0").rstrip(".") + "%"


def _decimals(half: float) -> int:
    """Decimals that give the interval's half-width two significant digits."""
    return 1 - math.floor(math.log10(half)) if half > 0 and math.isfinite(half) else 3


def _round(x: float, decimals: int) -> str:
    if not math.isfinite(x):
        return "n/a"
    s = f"{round(x, decimals) + 0.0:,.{max(decimals, 0)}f}"  # + 0.0: no "−0"
    return s.lstrip("-").replace("-", MINUS) if float(s.replace(",", "")) == 0 else s.replace("-", MINUS)


def fmt_interval(estimate, low, high, level=0.95, unit: str = "") -> str:
    """'−1.23 nats (95% CI −1.88 to −0.58)', every number rounded to two significant digits of
    the half-width (three significant digits without an interval)."""
    u = f" {unit}" if unit else ""
    if estimate is None or not math.isfinite(estimate):
        return "n/a"
    if not (math.isfinite(low) and math.isfinite(high)):
        return f"{fmt(estimate)}{u} (no interval)"
    half = (high - low) / 2
    if half == 0:  # never published as an interval: no spread is not certainty (module docstring)
        return f"{fmt(estimate)}{u} (no spread: no interval)"
    d = _decimals(half)
    # An endpoint that rounds to 0 but is not 0 keeps its sign and two significant digits: which
    # side of 0 it lies on is what a verdict turns on.
    end = lambda x: fmt(float(f"{x:.2g}"), 2) if x != 0 and round(x, d) == 0 else _round(x, d)
    return f"{_round(estimate, d)}{u} ({fmt_level(level)} CI {end(low)} to {end(high)})"


def quantity(x, unit: str = "") -> str:
    """'1 nat', '0.1 nats', '30 epochs', '1 epoch': ``fmt(x)`` and its unit, singular for exactly 1."""
    text = fmt(x)
    if not unit:
        return text
    return f"{text} {unit[:-1] if text == '1' and unit.endswith('s') else unit}"
