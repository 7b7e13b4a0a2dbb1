"""Checks that a finished figure reads on a phone and keeps its data clear: the size every text
renders at in a 390-px column, and legends that sit over plotted points.

    problems = check_legible(fig)        # [] when every text is at least 6 px tall at 390 px
    covered = legends_over_data(fig)     # [] when no legend box holds a plotted point

``publish_figure`` runs ``check_legible`` on every figure it publishes and warns with the texts
that would be too small. A figure as saved (its tight bounding box) ``w`` inches wide is shown at
``min(1, column_px / (96 w))`` of its natural size, so a ``p``-point text is
``p × 96/72 × that`` CSS pixels tall: with the book's 12-pt text, up to 10.8 inches keep 6 px.
"""

from __future__ import annotations

import itertools

import matplotlib as mpl
import numpy as np

from .style import MIN_PHONE_TEXT_PX, PHONE_PX, text_px

__all__ = ["saved_width_in", "check_legible", "legends_over_data"]


def saved_width_in(fig) -> float:
    """The width in inches of ``fig`` saved with ``bbox_inches="tight"`` (its text included)."""
    box = fig.get_tightbbox()
    return float(box.width + 2 * mpl.rcParams["savefig.pad_inches"])


def _texts(fig):
    found = fig.findobj(mpl.text.Text)
    return [t for t in found if t.get_visible() and t.get_text().strip() and t.get_figure(root=True) is fig]


def check_legible(fig, column_px: float = PHONE_PX, min_px: float = MIN_PHONE_TEXT_PX) -> list[str]:
    """The texts of ``fig`` smaller than ``min_px`` CSS pixels when the figure is shown in a
    ``column_px``-wide column, each as "'text' (9 pt: 5.1 px)"; [] when all are legible."""
    fig.draw_without_rendering()
    width = saved_width_in(fig)
    small = []
    for t in _texts(fig):
        px = text_px(t.get_fontsize(), width, column_px)
        if px < min_px:
            small.append(f"{t.get_text().strip()[:40]!r} ({t.get_fontsize():g} pt: {px:.1f} px)")
    return small


def _along(p: np.ndarray, step: float = 4.0) -> np.ndarray:
    """Points every ``step`` display pixels along the polyline ``p`` (its vertices included)."""
    p = p[np.isfinite(p).all(axis=1)]
    out = [p]
    for a, b in itertools.pairwise(p):
        n = int(min(np.hypot(*(b - a)) / step, 2000))
        if n > 1:
            out.append(a + np.linspace(0, 1, n)[:, None] * (b - a))
    return np.vstack(out)


def _data_points(ax) -> np.ndarray:
    """Display coordinates of every plotted point of ``ax``: points along its lines (reference
    lines too) and scatter offsets."""
    pts = [
        _along(ln.get_transform().transform(np.asarray(ln.get_xydata(), np.float64)))
        for ln in ax.get_lines()
        if ln.get_visible() and len(ln.get_xdata())
    ]
    pts += [
        c.get_offset_transform().transform(np.asarray(c.get_offsets(), np.float64))
        for c in ax.collections
        if isinstance(c, mpl.collections.PathCollection) and c.get_visible() and len(c.get_offsets())
    ]
    pts = [p[np.isfinite(p).all(axis=1)] for p in pts if len(p)]
    return np.vstack(pts) if pts else np.empty((0, 2))


def legends_over_data(fig) -> list[str]:
    """The legends of ``fig`` whose box holds a plotted point of their axes (inside the axes), as
    "legend 'title' over 3 points"; [] when every legend leaves the data clear."""
    fig.draw_without_rendering()
    found = []
    for ax in fig.axes:
        legend = ax.get_legend()
        if legend is None or not legend.get_visible():
            continue
        box, frame = legend.get_window_extent(), ax.get_window_extent()
        pts = _data_points(ax)
        inside = (pts[:, 0] >= frame.x0) & (pts[:, 0] <= frame.x1) & (pts[:, 1] >= frame.y0) & (pts[:, 1] <= frame.y1)
        pts = pts[inside]
        hit = (pts[:, 0] >= box.x0) & (pts[:, 0] <= box.x1) & (pts[:, 1] >= box.y0) & (pts[:, 1] <= box.y1)
        if hit.any():
            found.append(f"legend {legend.get_title().get_text()!r} over {int(hit.sum())} points")
    return found
