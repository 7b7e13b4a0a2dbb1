"""vae_utils.publish.numbers: numbers written for people, checked against Python's own arithmetic.

Each printed number is parsed back to a float and must lie within half a unit of its last digit of
the value; the text never holds exponent notation ('e+', 'e-') or a hyphen-minus.

Run: ``.venv/bin/python -m pytest tests/test_numbers.py`` (a second).
"""

import math
import re

import numpy as np
import pytest

from vae_utils.publish.numbers import MINUS, fmt, fmt_interval, fmt_level, fmt_p

_FROM_SUPERSCRIPT = str.maketrans("⁻⁰¹²³⁴⁵⁶⁷⁸⁹", "-0123456789")
# '−1,234.5', '0.00012', '4.15×10⁻⁶': optional minus, digits grouped by three, decimals, a power of ten
_NUMBER = re.compile(r"^−?(\d{1,3}(,\d{3})*|\d{1,3})(\.\d+)?(×10⁻?[⁰¹²³⁴⁵⁶⁷⁸⁹]+)?$")


def parse(text: str) -> float:
    """The value a reader reads: separators dropped, the true minus and ×10ⁿ understood."""
    assert _NUMBER.match(text), text
    text = text.replace(",", "").replace(MINUS, "-")
    if "×10" in text:
        mant, exp = text.split("×10")
        return float(mant) * 10 ** int(exp.translate(_FROM_SUPERSCRIPT))
    return float(text)


def last_unit(text: str) -> float:
    """The value of one unit of the last digit printed: 0.01 for '1.23', 1 for '12,346', 10⁻⁷ for '2.5×10⁻⁶'."""
    mant, _, exp = text.replace(MINUS, "-").partition("×10")
    decimals = len(mant.split(".")[1]) if "." in mant else 0
    return 10.0 ** (-decimals + (int(exp.translate(_FROM_SUPERSCRIPT)) if exp else 0))


def significant(text: str) -> int:
    """How many significant digits the printed number holds (trailing zeros of an integer not counted)."""
    mant = text.replace(MINUS, "").replace(",", "").split("×10")[0]
    digits = mant.replace(".", "").lstrip("0")
    return len(digits if "." in mant else digits.rstrip("0")) or 1


def _values(seed=0, n=4000):
    """Numbers over thirty orders of magnitude, both signs, plus the awkward ones: halves, rollovers
    (9.995, 999.6), powers of ten and the edges of the formats (10⁻³, 10⁻⁴, 10¹⁵)."""
    rng = np.random.default_rng(seed)
    mags = rng.uniform(-14, 16, n)
    random = (rng.choice([-1, 1], n) * 10**mags).tolist()
    edges = [
        base * 10.0**k * sign
        for base in (1.0, 0.5, 0.9995, 0.99951, 9.995, 9.9951, 1.005, 1.2345, 2.5, 9.9999999)
        for k in range(-13, 16)
        for sign in (1, -1)
    ]
    return random + edges


@pytest.mark.parametrize("digits", [1, 2, 3, 4, 5])
def test_fmt_lies_within_half_a_unit_of_its_last_digit_and_never_prints_more_digits_than_asked(digits):
    """Parsed back, every number is the value to within half a unit of the last digit it prints (plus
    float noise), and below 10^digits it holds at most ``digits`` significant digits; from 10^digits
    up to 10¹⁵ it prints every integer digit."""
    for x in _values():
        text = fmt(x, digits)
        error = abs(parse(text) - x)
        assert error <= 0.5 * last_unit(text) * (1 + 1e-9) + 1e-12 * abs(x), (x, digits, text)
        if abs(x) < 10**digits - 0.5 or abs(x) >= 1e15:
            assert significant(text) <= digits, (x, digits, text)
        else:
            assert last_unit(text) == 1, (x, digits, text)


def test_fmt_never_writes_exponent_notation_or_a_hyphen_minus():
    for x in _values(seed=1):
        for digits in (1, 2, 3, 4):
            text = fmt(x, digits)
            assert "e" not in text and "E" not in text and "-" not in text, (x, text)
            assert text.startswith(MINUS) == (x < 0) or text == "0", (x, text)


@pytest.mark.parametrize(
    ("x", "text"),
    [
        (0.00000415, "4.15×10⁻⁶"),
        (1.5e-12, "1.5×10⁻¹²"),
        (-2.5e-7, "−2.5×10⁻⁷"),
        (0.0001234, "0.000123"),
        (0.00415, "0.00415"),
        (-0.31234, "−0.312"),
        (-0.2, "−0.2"),
        (190.4, "190"),
        (999.6, "1,000"),  # rounds up to 10^digits: the integer, not '1×10³'
        (99.97, "100"),
        (1234.5, "1,234"),
        (12345.6, "12,346"),
        (-1234567.8, "−1,234,568"),
        (2.0e21, "2×10²¹"),  # beyond 10¹⁵ a float's integer digits are noise
        (0, "0"),
        (-0.0, "0"),
        (np.float16(0.1), "0.1"),
        (np.int64(4096), "4,096"),
    ],
)
def test_fmt_writes_each_example_as_a_person_would(x, text):
    assert fmt(x) == text


def test_fmt_keeps_the_significant_digits_asked_for():
    assert fmt(0.31234, 2) == "0.31" and fmt(0.31234, 4) == "0.3123" and fmt(1234.5, 4) == "1,234"
    assert fmt(99.7, 2) == "100" and fmt(-0.0009996, 2) == "−0.001"


@pytest.mark.parametrize("missing", [None, math.nan, math.inf, -math.inf, np.nan, np.float32("nan"), np.float16("inf")])
def test_fmt_says_n_a_for_what_is_not_a_number(missing):
    assert fmt(missing) == "n/a" and fmt_p(missing) == "n/a" and fmt_interval(missing, 0.0, 1.0) == "n/a"


def test_p_values_and_levels_are_written_short():
    assert [fmt_p(p) for p in (0.0449, 0.05, 0.5, 1.0, 0.001, 0.00099, 1e-12)] == [
        "0.045", "0.05", "0.5", "1", "0.001", "< 0.001", "< 0.001",
    ]  # fmt: skip
    assert [fmt_level(lev) for lev in (0.95, 0.975, 0.99, 0.98333, 0.995, 0.9)] == [
        "95%", "97.5%", "99%", "98.33%", "99.5%", "90%",
    ]  # fmt: skip


# ---------------------------------------------------------------------------------------------
# Intervals: every number to two significant digits of the half-width

_INTERVAL = re.compile(r"^(?P<est>\S+)(?P<unit> \w+)? \((?P<level>[\d.]+%) CI (?P<low>\S+) to (?P<high>\S+)\)$")


@pytest.mark.parametrize(
    ("args", "text"),
    [
        ((-1.2345, -1.8845, -0.5845, 0.95, "nats"), "−1.23 nats (95% CI −1.88 to −0.58)"),
        ((10.04, 6.84, 13.24, 0.9875), "10.0 (98.75% CI 6.8 to 13.2)"),
        ((41234.0, 39934.0, 42534.0), "41,200 (95% CI 39,900 to 42,500)"),
        ((0.5, 0.0004, 1.0), "0.50 (95% CI 0.0004 to 1.00)"),  # an end rounding to 0 keeps its side of 0
        ((-0.5, -1.0, -0.0004), "−0.50 (95% CI −1.00 to −0.0004)"),
        ((0.0, -0.001, 0.001), "0.0000 (95% CI −0.0010 to 0.0010)"),
        ((-108814.2, -195598.3, 4705.2), "−110,000 (95% CI −200,000 to 4,700)"),  # two digits, not '4,705'
        ((0.5, math.nan, math.nan), "0.5 (no interval)"),
        ((0.0, 0.0, 0.0, 0.99, "nats"), "0 nats (no spread: no interval)"),
        ((4.15e-6, 3e-6, 5.3e-6, 0.95, "units"), "0.0000042 units (95% CI 0.0000030 to 0.0000053)"),
    ],
)
def test_fmt_interval_gives_every_number_the_decimals_of_the_half_width(args, text):
    assert fmt_interval(*args) == text


def test_fmt_interval_rounds_every_number_to_two_significant_digits_of_the_half_width():
    """Random intervals over twelve orders of magnitude: the estimate and both ends each lie within half
    a unit of the decimal where the half-width's second significant digit sits (an end that would round
    to 0 is printed to two significant digits of its own instead)."""
    rng = np.random.default_rng(2)
    for _ in range(3000):
        half = 10 ** rng.uniform(-6, 5)
        est = rng.normal() * half * 3
        low, high = est - half * rng.uniform(0.5, 1.5), est + half * rng.uniform(0.5, 1.5)
        m = _INTERVAL.match(fmt_interval(est, low, high, 0.95, "nats"))
        assert m and m["unit"] == " nats" and m["level"] == "95%", fmt_interval(est, low, high)
        step = 10.0 ** (math.floor(math.log10((high - low) / 2)) - 1)
        for key, value in (("est", est), ("low", low), ("high", high)):
            text = m[key]
            if parse(text) != 0 and abs(value) < step / 2:  # the side of 0, to two significant digits
                own = 10.0 ** (math.floor(math.log10(abs(value))) - 1)
                assert significant(text) <= 2 and abs(parse(text) - value) <= own / 2 * (1 + 1e-9), (value, text)
            else:
                assert abs(parse(text) - value) <= step / 2 * (1 + 1e-9), (key, value, text, step)
            assert "-" not in text and "e" not in text
