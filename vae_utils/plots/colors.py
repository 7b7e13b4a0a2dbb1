"""Colours that mean one thing in a figure and across the book: each optimizer its own fixed colour,
numbers (batch size, learning rate, β) a light-to-dark ramp, every other category ink with line
styles and marker shapes, never an optimizer's colour.

    hue_looks("optimizer", ["adam", "SGD with momentum"])  # {level: Look(color, linestyle, marker)}
    hue_colors("batch_size", [16, 32, 64, 128, 256])       # five steps of cividis, ≥ 10 L* apart
    lightness("#0173b2"), delta_e(a, b)                     # CIELAB L* and ΔE (CIE76)

Why: a reader who learned "blue is Adam" in one figure reads blue as Adam in the next. So Adam,
AdamW, RMSprop, SGD and SGD with momentum keep ``OPTIMIZER_COLORS`` everywhere (by name or by
the words the book prints), a single series is drawn in ``INK``, and unordered categories that
are not optimizers (budget, split, scaling rule, default-vs-tuned) are told apart by ``NEUTRAL``
looks: black and grey, solid and dashed, circles and squares. Ordered numbers get ``SEQUENTIAL``
(cividis, colour-blind safe) sampled over ``SEQUENTIAL_RANGE``, so neighbouring levels differ in
lightness, not only in hue (seaborn's "flare" gave five batch sizes in near-identical reds).
"""

from __future__ import annotations

from collections.abc import Mapping
from typing import NamedTuple

import matplotlib as mpl
import numpy as np

from ..core.optimizers import OPTIMIZERS
from ..publish.labels import is_ordered

__all__ = [
    "PALETTE",
    "OPTIMIZER_COLORS",
    "INK",
    "NEUTRAL",
    "SEQUENTIAL",
    "SEQUENTIAL_RANGE",
    "Look",
    "hue_looks",
    "hue_colors",
    "optimizer_key",
    "lightness",
    "delta_e",
    "contrast_ratio",
    "text_color_on",
]


# seaborn's "colorblind" palette (Okabe-Ito based, 10 colours), spelled out so the style needs no
# seaborn import; tests check it against seaborn. For unordered categories with many levels only
# (digit classes); optimizers take theirs from OPTIMIZER_COLORS.
PALETTE = (
    "#0173b2",
    "#de8f05",
    "#029e73",
    "#d55e00",
    "#cc78bc",
    "#ca9161",
    "#fbafe4",
    "#949494",
    "#ece133",
    "#56b4e9",
)


OPTIMIZER_COLORS = {  # by registry name (vae_utils.core.optimizers); the words map to these
    "adam": "#0173b2",  # blue
    "adamw": "#56b4e9",  # sky blue: Adam's kin
    "rmsprop": "#029e73",  # bluish green
    "sgd": "#d55e00",  # vermillion
    "momentum": "#cc78bc",  # reddish purple
}


INK = "#262626"  # one series, nothing to tell apart: no colour that could mean an optimizer


class Look(NamedTuple):
    """How one level of a hue variable is drawn."""

    color: str
    linestyle: str = "-"
    marker: str = "o"


NEUTRAL = (  # unordered categories that are not optimizers: ink and grey, line style, marker shape
    Look("#1a1a1a", "-", "o"),
    Look("#737373", "--", "s"),
    Look("#1a1a1a", ":", "^"),
    Look("#737373", "-.", "D"),
)


SEQUENTIAL = "cividis"  # ordered levels: the smallest light (olive grey), the largest dark (navy)


SEQUENTIAL_RANGE = (0.0, 0.62)  # the part used: L* 14 to 61, so its lightest colour still contrasts 3:1 with white


def optimizer_key(level) -> str | None:
    """The registry name of an optimizer given by name or by words ("Adam", "plain SGD",
    "SGD with momentum"), or None when ``level`` names no optimizer."""
    text = str(level).strip().lower()
    text = text.removeprefix("plain ")
    for name, spec in OPTIMIZERS.items():
        if text in (name, spec.words.lower()):
            return name
    return None


def _sequential(n: int) -> list[str]:
    cmap = mpl.colormaps[SEQUENTIAL]
    at = np.linspace(*SEQUENTIAL_RANGE[::-1], n) if n > 1 else [SEQUENTIAL_RANGE[0]]  # light to dark
    return [mpl.colors.to_hex(cmap(float(t))) for t in at]


def hue_looks(name, levels, palette=None) -> dict:
    """{level: Look} for the levels of a hue variable: optimizers their fixed colours, ordered
    levels (numbers) the ``SEQUENTIAL`` ramp, other names the ``NEUTRAL`` looks (solid lines and
    circles for all but the line style and marker, which follow the level); ``palette`` (a name,
    a list, or a dict {level: colour}) overrides the colours."""
    levels = list(levels)
    if palette is not None:
        return {lv: Look(c) for lv, c in _palette_colors(levels, palette).items()}
    keys = [optimizer_key(lv) for lv in levels]
    if levels and all(keys) and len(set(keys)) == len(keys):
        return {lv: Look(OPTIMIZER_COLORS.get(k, PALETTE[7])) for lv, k in zip(levels, keys, strict=True)}
    if is_ordered(name, levels):
        return {lv: Look(c) for lv, c in zip(levels, _sequential(len(levels)), strict=True)}
    if len(levels) > len(NEUTRAL):  # many names (digit classes): colours are the only way
        return {lv: Look(PALETTE[i % len(PALETTE)]) for i, lv in enumerate(levels)}
    return {lv: NEUTRAL[i] for i, lv in enumerate(levels)}


def _palette_colors(levels, palette) -> dict:
    if isinstance(palette, Mapping):
        return {lv: mpl.colors.to_hex(palette[lv]) for lv in levels}
    if isinstance(palette, str):
        import seaborn as sns

        palette = sns.color_palette(palette, len(levels))
    palette = list(palette)
    return {lv: mpl.colors.to_hex(palette[i % len(palette)]) for i, lv in enumerate(levels)}


def hue_colors(name, levels, palette=None) -> dict:
    """{level: colour} of ``hue_looks``."""
    return {lv: look.color for lv, look in hue_looks(name, levels, palette).items()}


def _lab(color) -> np.ndarray:
    """CIELAB (D65) of a colour."""
    rgb = np.asarray(mpl.colors.to_rgb(color), np.float64)
    lin = np.where(rgb <= 0.04045, rgb / 12.92, ((rgb + 0.055) / 1.055) ** 2.4)
    m = np.array([[0.4124, 0.3576, 0.1805], [0.2126, 0.7152, 0.0722], [0.0193, 0.1192, 0.9505]])
    xyz = m @ lin / np.array([0.95047, 1.0, 1.08883])
    f = np.where(xyz > (6 / 29) ** 3, np.cbrt(xyz), xyz / (3 * (6 / 29) ** 2) + 4 / 29)
    return np.array([116 * f[1] - 16, 500 * (f[0] - f[1]), 200 * (f[1] - f[2])])


def lightness(color) -> float:
    """CIELAB L* of a colour: 0 black, 100 white."""
    return float(_lab(color)[0])


def delta_e(a, b) -> float:
    """CIE76 colour difference ΔE*ab of two colours (about 2.3: just noticeable; > 20: distinct)."""
    return float(np.linalg.norm(_lab(a) - _lab(b)))


def _luminance(color) -> float:
    """WCAG relative luminance of a colour."""
    c = np.asarray(mpl.colors.to_rgb(color), np.float64)
    c = np.where(c <= 0.04045, c / 12.92, ((c + 0.055) / 1.055) ** 2.4)
    return float(0.2126 * c[0] + 0.7152 * c[1] + 0.0722 * c[2])


def contrast_ratio(a, b) -> float:
    """WCAG 2 contrast ratio of two colours, 1 (same) to 21 (black on white)."""
    la, lb = sorted((_luminance(a), _luminance(b)), reverse=True)
    return (la + 0.05) / (lb + 0.05)


def text_color_on(background) -> str:
    """Black or white, whichever contrasts more with ``background`` (always >= 4.58:1)."""
    return "black" if contrast_ratio(background, "black") >= contrast_ratio(background, "white") else "white"
