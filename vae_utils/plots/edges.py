"""What a y axis does not show, said at its edge: runs that broke down as crosses (×) and runs
beyond the axis as triangles (▼ below, ▲ above), in their line's colour and counted in a key; and
y-limits that keep the differences between group means visible when a few groups lie far below.

    bad = broke_down(df, "test_elbo")               # non-finite, or flagged diverged/broke
    lim = informative_ylim(means, runs, noise)      # None: the data's own range shows the means
    EdgeMarks(ax, x, y, colors, key)                # triangles follow every later set_ylim
    edge_note(fig, caption)                         # the caption's sentence about them

Why: one setting that nearly diverged (−160 nats) stretches an axis until the 1–2 nat differences
between batch sizes are a flat line. ``informative_ylim`` cuts off the groups whose mean lies more
than ``GAP`` times the others' spread below them (at most a quarter of the groups, only below: the
best settings are never cut), then keeps the other means over at least ``SHARE`` of the axis. Whatever falls
outside is drawn at the edge and counted, so nothing disappears, and the caption says so.
"""

from __future__ import annotations

import re

import numpy as np
import pandas as pd

from ..publish.numbers import fmt

__all__ = ["broke_down", "core_means", "informative_ylim", "within_noise", "EdgeMarks", "edge_note"]


GAP = 10.0  # a gap below the other means this many times their spread (or the seeds' noise) cuts
SHARE = 0.4  # after a cut, the other group means span at least this share of the axis
CLIP_BELOW = 0.3  # cut only when those means would otherwise fill less than this share
PAD = 0.05  # of the axis, beyond the outermost value shown
KEY_GREY = "0.3"  # the key's words under the x label


def broke_down(df: pd.DataFrame, y: str) -> np.ndarray:
    """True for the runs that broke down: ``y`` not finite, ``status`` "diverged", or a true
    ``broke`` or ``diverged`` column (the store's and the claims' ways of saying it)."""
    bad = ~np.isfinite(pd.to_numeric(df[y], errors="coerce").to_numpy(np.float64))
    if "status" in df.columns:
        bad |= (df["status"] == "diverged").to_numpy()
    for col in ("broke", "diverged"):
        if col in df.columns and pd.api.types.is_bool_dtype(df[col].dropna()):
            bad |= df[col].fillna(False).to_numpy(bool)
    return bad


def within_noise(df: pd.DataFrame, groups: list[str], y: str) -> float:
    """The seeds' noise: the median over ``groups`` of the standard deviation of ``y`` within each
    (a median, so one far run does not make every gap look small); 0 without repeats."""
    sd = df.groupby(groups, dropna=False)[y].std().dropna()
    return float(sd.median()) if len(sd) else 0.0


def core_means(means, noise: float = 0.0) -> np.ndarray:
    """The group means left after cutting off a few far below the rest: the largest ``k`` up to a
    quarter of the n means for which the gap below the top ``n - k`` exceeds ``GAP`` times their
    spread (or the seeds' ``noise``); all means when there is none (so with fewer than 4)."""
    m = np.sort(np.asarray(means, np.float64)[np.isfinite(np.asarray(means, np.float64))])
    cut = 0
    for k in range(1, len(m) // 4 + 1):
        rest = m[k:]
        if m[k] - m[k - 1] > GAP * max(float(np.ptp(rest)), noise):
            cut = k
    return m[cut:]


def informative_ylim(means, values, noise: float = 0.0) -> tuple[float, float] | None:
    """Y-limits that show the differences between the group ``means``, or None when the full range
    of ``values`` (the runs) and means already does: the means left by ``core_means`` then fill
    less than ``CLIP_BELOW`` of it. The limits span those means and, around them, runs up to
    ``(1 / SHARE - 1) / 2`` of their spread on either side, plus ``PAD``."""
    core = core_means(means, noise)
    v = np.concatenate([np.asarray(values, np.float64).ravel(), np.asarray(means, np.float64).ravel()])
    v = v[np.isfinite(v)]
    if not len(core) or len(v) < 2:
        return None
    width = max(float(np.ptp(core)), noise)
    if width <= 0 or width >= CLIP_BELOW * float(np.ptp(v)):
        return None
    margin = width * (1 / SHARE - 1) / 2
    lo, hi = max(float(v.min()), core.min() - margin), min(float(v.max()), core.max() + margin)
    pad = PAD * (hi - lo)
    return lo - pad, hi + pad


class EdgeMarks:
    """The triangles of one axes and its key: runs whose y lies beyond the y-limits, drawn at the
    edge in their colour whenever the limits change; under the x label, words that count them
    and the crosses (``n_bad``); without direct labels, a legend beside the axes (never over the
    data) names the hue levels (``handles``)."""

    def __init__(self, ax, x, y, colors, *, n_bad=0, handles=(), names=(), title=None):
        self.ax, self.n_bad = ax, int(n_bad)
        self.x, self.y = np.asarray(x, np.float64), np.asarray(y, np.float64)
        self.colors = np.asarray(colors, dtype=object)
        self.base = (list(handles), list(names), title)
        self.counts, self.note = None, None
        trans = ax.get_xaxis_transform()
        kw = dict(ls="none", ms=9, mec="white", mew=0.8, transform=trans, clip_on=False, zorder=6)
        self.lines = {
            (c, side): ax.plot([], [], marker="v" if side < 0 else "^", color=c, **kw)[0]
            for c in dict.fromkeys(self.colors)
            for side in (-1, 1)
        }
        ax._vae_edges = self
        ax.callbacks.connect("ylim_changed", lambda _ax: self.refresh())
        self.refresh()

    @property
    def below(self) -> np.ndarray:
        return self.y < min(self.ax.get_ylim())

    @property
    def above(self) -> np.ndarray:
        return self.y > max(self.ax.get_ylim())

    def refresh(self) -> None:
        """Put the triangles at the edges for the current limits; redo the key when a count changed."""
        for (c, side), line in self.lines.items():
            m = (self.below if side < 0 else self.above) & (self.colors == c)
            line.set_data(self.x[m], np.full(int(m.sum()), 0.0 if side < 0 else 1.0))
            line.set_visible(bool(m.any()))  # an empty line's infinite extent would collapse the layout
        counts = (int(self.below.sum()), int(self.above.sum()))
        if counts != self.counts:
            self.counts = counts
            self._key()

    def _key(self) -> None:
        """The hue levels in a legend beside the axes (never over the data), and a line of words
        under the x label for each kind of mark: "▼ 10 runs below the axis"."""
        handles, names, title = self.base
        if handles and self.ax.get_legend() is None:
            self.ax.legend(handles, names, title=title, loc="upper left", bbox_to_anchor=(1.02, 1.0), borderaxespad=0.2)
        kinds = (
            ("×", self.n_bad, "diverged"),
            ("▼", self.counts[0], "below the axis"),
            ("▲", self.counts[1], "above the axis"),
        )
        text = "\n".join(f"{mark} {_runs(n)} {what}" for mark, n, what in kinds if n)
        if self.note is None:
            self.note = self.ax.annotate(text, xy=(0.5, 0.0), xycoords=self.ax.xaxis.label, xytext=(0, -4),
                                         textcoords="offset points", ha="center", va="top", color=KEY_GREY)  # fmt: skip
        self.note.set_text(text)


def _unit(ax) -> str:
    """The unit in a y label's parentheses ("test ELBO (nats)" -> " nats"), or ""."""
    m = re.search(r"\(([^()]*)\)\s*$", ax.get_ylabel())
    return f" {m.group(1)}" if m else ""


def edge_note(fig, caption: str = "") -> str:
    """A caption's sentence about the runs drawn at an edge of ``fig``'s axes: triangles for runs
    beyond the axis (how many, and the farthest value), crosses for runs that broke down (unless
    ``caption`` already speaks of crosses); "" when there are none."""
    below, above, bad, lowest, highest = 0, 0, 0, (np.inf, ""), (-np.inf, "")
    for ax in fig.axes:
        marks = getattr(ax, "_vae_edges", None)
        if marks is None:
            continue
        marks.refresh()
        b, a = marks.below, marks.above
        below, above, bad = below + int(b.sum()), above + int(a.sum()), bad + marks.n_bad
        if b.any() and marks.y[b].min() < lowest[0]:
            lowest = (float(marks.y[b].min()), _unit(ax))
        if a.any() and marks.y[a].max() > highest[0]:
            highest = (float(marks.y[a].max()), _unit(ax))
    parts = []
    if below:
        parts.append(
            f"Triangles (▼) on the bottom edge: {_runs(below)} below the axis, the lowest at {fmt(lowest[0])}{lowest[1]}."
        )
    if above:
        parts.append(
            f"Triangles (▲) on the top edge: {_runs(above)} above the axis, the highest at {fmt(highest[0])}{highest[1]}."
        )
    if bad and "cross" not in caption.lower():
        parts.append(f"Crosses (×) on the bottom edge: {_runs(bad)} that diverged.")
    return " ".join(parts)


def _runs(n: int) -> str:
    return f"{n:,} run{'s' if n != 1 else ''}"
