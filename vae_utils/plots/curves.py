"""Curves over training and metrics against a setting: per-epoch histories, a metric against batch size, learning rate or a category, with intervals over seeds."""

from __future__ import annotations

from collections.abc import Mapping, Sequence

import matplotlib as mpl
import matplotlib.pyplot as plt
import numpy as np
import pandas as pd
from matplotlib import ticker
from matplotlib.figure import Figure

from ..publish.labels import label as words
from .colors import INK, Look, hue_colors, hue_looks
from .edges import EdgeMarks, broke_down, informative_ylim, within_noise
from .style import (
    CROSS_AT,
    CROSS_ROOM,
    MAX_WIDTH_IN,
    declutter_xticks,
    finite_mean,
    hue_levels,
    label_line_ends,
    log_ticks,
    new_axes,
    require_columns,
    style,
    t_interval,
    value_text,
)

__all__ = ["plot_history", "plot_metric_vs"]


def _history_panel(data, x, hue, units, colors, **_):
    """One FacetGrid panel: every run thin, the mean over runs thick, per hue level."""
    import seaborn as sns

    ax = plt.gca()
    for level, color in colors.items():
        d = data if level is None else data[data[hue] == level]
        many = units is not None and d[units].nunique() > 1
        if many:
            sns.lineplot(d, x=x, y="value", units=units, estimator=None, color=color, lw=0.8, alpha=0.35, ax=ax)
        sns.lineplot(d, x=x, y="value", estimator=finite_mean, errorbar=None, color=color, lw=2.2, ax=ax)


def plot_history(
    history,
    metrics: Sequence[str] = ("loss", "reconstruction_loss", "kl_loss", "val_elbo"),
    x: str = "epoch",
    hue: str | None = None,
    units: str | None = "seed",
    ncols: int | None = None,
    logy: bool = False,
    *,
    labels: Mapping[str, str] | None = None,
    palette=None,
) -> Figure:
    """Learning curves, one panel per metric (a seaborn FacetGrid), each y axis in words with units.

    ``history`` is one run's ``TrainResult.history``, a long DataFrame of many runs (histories
    concatenated with config columns such as ``learning_rate`` and ``seed``), or a list of such
    frames. With several ``units`` (seeds) per hue level, each run is a thin line and their mean a
    thick one; ``hue`` colours groups (sequential colours for numbers), named in a legend.
    """
    import seaborn as sns

    if isinstance(history, (list, tuple)):
        history = pd.concat(list(history), ignore_index=True)
    require_columns(history, [x, *metrics, hue])
    units = units if units is not None and units in history.columns else None
    ncols = ncols or {1: 1, 2: 2, 3: 3, 4: 2}.get(len(metrics), 3)
    keep = [c for c in {x, hue, units} if c is not None]
    long = history.melt(id_vars=keep, value_vars=list(metrics), var_name="metric", value_name="value")
    colors = hue_colors(hue, hue_levels(history, hue), palette) if hue else {None: INK}
    width = min(MAX_WIDTH_IN - 1.6 * (hue is not None), 3.3 * ncols)
    with style(), mpl.rc_context({"figure.constrained_layout.use": False}):
        g = sns.FacetGrid(
            long,
            col="metric",
            col_order=list(metrics),
            col_wrap=ncols if len(metrics) > 1 else None,
            sharey=False,
            height=2.9,
            aspect=width / ncols / 2.9,
            despine=False,
        )
        g.map_dataframe(_history_panel, x=x, hue=hue, units=units, colors=colors)
        for ax, metric in zip(g.axes.flat, metrics, strict=True):
            ax.set_title("")
            ax.set_ylabel(words(metric, labels))
            ax.set_xlabel(words(x, labels))
            ax.tick_params(labelbottom=True)
            if pd.api.types.is_integer_dtype(history[x]):  # about one tick per inch of panel: 0, 30, 60, ...
                ax.xaxis.set_major_locator(ticker.MaxNLocator(nbins=max(3, int(width / ncols)), integer=True))
            if logy:
                ax.set_yscale("log")
                log_ticks(ax.yaxis)
        if hue is not None:
            handles = {value_text(lv): mpl.lines.Line2D([], [], color=c, lw=2.2) for lv, c in colors.items()}
            g.add_legend(legend_data=handles, title=words(hue, labels))
        g.tight_layout()
    return g.figure


def _clean(df: pd.DataFrame, y: str) -> pd.DataFrame:
    """A copy with ``y`` as NaN for the runs that broke down (``edges.broke_down``: non-finite, or
    flagged diverged): seaborn and the means skip them, and they are drawn as crosses."""
    v = pd.to_numeric(df[y], errors="coerce").to_numpy(np.float64)
    return df.assign(**{y: np.where(broke_down(df, y), np.nan, v)})


def _is_categorical(s: pd.Series) -> bool:
    return not pd.api.types.is_numeric_dtype(s) or pd.api.types.is_bool_dtype(s)


def _numeric_lines(ax, d, x, y, hue, looks, ci, band):
    """Mean over seeds per x (a seaborn lineplot with the t-interval), one line per hue level in
    its look (colour, line style, marker), and every finite run as a dot; returns {level: (x, y)}
    of each line's right end."""
    import seaborn as sns

    ends = {}
    for level, look in looks.items():
        g = d if level is None else d[d[hue] == level]
        ok = g[np.isfinite(g[y])]
        ax.scatter(ok[x], ok[y], s=16, color=look.color, alpha=0.4, linewidths=0, zorder=2)
        err = t_interval(ci) if ci is not None else None
        style_kws = (
            {"err_style": "band", "err_kws": {"alpha": 0.2, "linewidth": 0}}
            if band
            else {"err_style": "bars", "err_kws": {"capsize": 4, "elinewidth": 1.5}}
        )
        sns.lineplot(
            ok,
            x=x,
            y=y,
            estimator=finite_mean,
            errorbar=err,
            color=look.color,
            linestyle=look.linestyle,
            marker=look.marker,
            markeredgewidth=0,
            ax=ax,
            zorder=4,
            **style_kws,
        )
        means = ok.groupby(x)[y].mean()
        if len(means):
            ends[level] = (float(means.index[-1]), float(means.iloc[-1]))
    return ends


def _categorical_points(ax, d, x, y, hue, looks, ci, order):
    """Points with intervals per category (a seaborn pointplot without lines), each hue level in
    its colour and marker, and every run as a dot (a stripplot), dodged per hue level; returns the
    x position of each (category, level)."""
    import seaborn as sns

    n = len(looks)
    colors = {lv: look.color for lv, look in looks.items()}
    hue_kw = {"hue": hue, "hue_order": list(looks), "palette": colors} if hue else {"color": colors[None]}
    ok = d[np.isfinite(d[y])]
    # seaborn jitters the dots with NumPy's legacy global generator (hence its API here): seeded, so the same
    # runs give the same figure in every execution, and the caller's state restored afterwards
    state = np.random.get_state()  # noqa: NPY002
    np.random.seed(0)  # noqa: NPY002
    try:
        sns.stripplot(
            ok,
            x=x,
            y=y,
            order=order,
            dodge=hue is not None,
            jitter=0.06,
            alpha=0.45,
            size=5,
            legend=False,
            ax=ax,
            zorder=2,
            **hue_kw,
        )
    finally:
        np.random.set_state(state)  # noqa: NPY002
    sns.pointplot(
        ok,
        x=x,
        y=y,
        order=order,
        estimator=finite_mean,
        errorbar=t_interval(ci) if ci else None,
        linestyle="none",
        markers=[look.marker for look in looks.values()] if hue else "o",
        capsize=0.12,
        err_kws={"linewidth": 2.0},
        dodge=(0.8 - 0.8 / n) if hue else False,
        legend=False,
        ax=ax,
        zorder=4,
        **hue_kw,
    )
    offsets = np.linspace(-0.4 + 0.4 / n, 0.4 - 0.4 / n, n) if hue else [0.0]
    return {(c, lv): i + off for i, c in enumerate(order) for lv, off in zip(looks, offsets, strict=True)}


def _diverged(ax, d, x, y, hue, looks, position) -> int:
    """Crosses at the bottom edge for runs whose ``y`` is not finite; returns how many."""
    bad = d[~np.isfinite(d[y])]
    for level, look in looks.items():
        g = bad if level is None else bad[bad[hue] == level]
        if len(g):
            xs = [position(v, level) for v in g[x]]
            ax.scatter(
                xs,
                np.full(len(xs), CROSS_AT),
                marker="x",
                s=50,
                linewidths=2,
                color=look.color,
                transform=ax.get_xaxis_transform(),
                clip_on=False,
                zorder=5,
            )
    return len(bad)


def _draw(ax, d, xyh, looks, ci, band, logx):
    """Lines over a numeric x, points over categories (ticks named); returns the lines' ends and
    a function from (x value, hue level) to the x position drawn."""
    x, y, hue = xyh
    if _is_categorical(d[x]):
        order = sorted(d[x].dropna().unique().tolist(), key=str)
        pos = _categorical_points(ax, d, x, y, hue, looks, ci, order)
        ax.set_xticks(range(len(order)), [value_text(c) for c in order])
        return {}, lambda v, lv: pos[(v, lv)]
    if logx:
        ax.set_xscale("log")
    ends = _numeric_lines(ax, d, x, y, hue, looks, ci, band)
    if logx:
        log_ticks(ax.xaxis, d[x].to_numpy(np.float64))
    return ends, lambda v, lv: v


def _y_axis(ax, d, xyh, logy, clip, n_bad) -> None:
    """A log y axis with labelled ticks, or a linear one clipped to the informative range
    (``_clip``) with room under the data for the crosses."""
    x, y, hue = xyh
    if logy:
        ax.set_yscale("log")
        log_ticks(ax.yaxis, d[y].to_numpy(np.float64), grid=False)
        return
    if clip:
        _clip(ax, d, x, y, hue)
    if n_bad:
        lo, hi = ax.get_ylim()
        ax.set_ylim(lo - CROSS_ROOM * (hi - lo), hi)


def _clip(ax, d, x, y, hue) -> None:
    """Y-limits that show the differences between the group means (``edges.informative_ylim``)."""
    ok = d[np.isfinite(d[y])]
    groups = [c for c in (x, hue) if c is not None]
    if len(ok) < 3:
        return
    lim = informative_ylim(ok.groupby(groups)[y].mean().to_numpy(), ok[y].to_numpy(), within_noise(ok, groups, y))
    if lim is not None:
        ax.set_ylim(*lim)


def plot_metric_vs(
    df: pd.DataFrame,
    x: str,
    y: str,
    hue: str | None = None,
    logx: bool = False,
    ci: float | None = 0.95,
    units: str | None = "seed",
    logy: bool = False,
    band: bool = True,
    ax=None,
    *,
    labels: Mapping[str, str] | None = None,
    palette=None,
    direct_labels: bool | None = None,
    note: bool | None = None,
    clip: bool = True,
) -> Figure:
    """Mean of ``y`` over seeds against ``x``, one line per ``hue`` level, with its ``ci``
    t-interval (a band, or error bars with ``band=False``; ``ci=None``: means only); every run is a
    dot. Runs that broke down (non-finite ``y``, or flagged: ``edges.broke_down``) are crosses at
    the bottom edge; with ``clip`` (linear y), a few groups far below the rest are cut off the axis
    (``edges.informative_ylim``) and every run beyond the axis, then or after a later
    ``set_ylim``, is a triangle at its edge; a key beside the axes counts both.

    Hue levels are told apart by ``colors.hue_looks``: optimizers by their book-wide colours,
    numbers by a light-to-dark ramp, other names by ink, line style and marker. A numeric ``x``
    gets lines (seaborn ``lineplot``), labelled at their ends when ``direct_labels`` (default:
    numeric x with at most 8 hue levels); a categorical ``x`` (names) gets points with intervals
    and no lines (seaborn ``pointplot``). ``logx``/``logy`` label every grid value. ``note``
    (default: when the function makes its own axes) states what the bars are.
    """
    require_columns(df, [x, y, hue])
    d = _clean(df, y)
    looks = hue_looks(hue, hue_levels(d, hue), palette) if hue else {None: Look(INK)}
    own = ax is None
    with style():
        fig, ax = new_axes(ax)
        ends, position = _draw(ax, d, (x, y, hue), looks, ci, band, logx)
        n_bad = _diverged(ax, d, x, y, hue, looks, position)
        _y_axis(ax, d, (x, y, hue), logy, clip, n_bad)
        _finish_metric_axes(ax, d, (x, y, hue), looks, labels, n_bad, ends, direct_labels, position)
        if note if note is not None else (fig.axes == [ax] and ci is not None):
            what = f"mean ± {ci:.0%} CI over {'seeds' if units else 'runs'}" if ci else "mean"
            ax.set_title(f"{what}; dots: runs", color="0.3")
        if own and ax.get_legend() is not None:
            _widen_for_legend(fig, ax.get_legend())
        declutter_xticks(ax)
    return fig


def _widen_for_legend(fig, legend) -> None:
    """Widen a figure by its legend beside the axes (up to ``MAX_WIDTH_IN``), so the axes keep their width."""
    fig.draw_without_rendering()
    w, h = fig.get_size_inches()
    fig.set_size_inches(min(MAX_WIDTH_IN, w + legend.get_window_extent().width / fig.dpi), h)


def _finish_metric_axes(ax, d, xyh, looks, labels, n_bad, ends, direct_labels, position):
    """Words on the axes, the hue levels as direct labels or in the key, and the edge marks
    (``edges.EdgeMarks``: crosses counted, triangles for runs beyond the axis)."""
    x, y, hue = xyh
    categorical = _is_categorical(d[x])
    ax.set_xlabel(words(x, labels))
    ax.set_ylabel(words(y, labels))
    if categorical:
        ax.grid(False, axis="x")
    n_levels = len(looks)
    direct = direct_labels if direct_labels is not None else (hue is not None and not categorical and n_levels <= 8)
    direct = bool(direct and ends and hue is not None)
    handles, names = [], []
    if direct:
        ax.figure.canvas.draw()  # final limits before placing text in pixels
        label_line_ends(ax, ends, {lv: look.color for lv, look in looks.items()}, words(hue, labels))
    elif hue is not None:
        handles = [
            mpl.lines.Line2D([], [], color=k.color, marker=k.marker, ls="none" if categorical else k.linestyle)
            for k in looks.values()
        ]
        names = [value_text(lv) for lv in looks]
    ok = d[np.isfinite(d[y])]
    levels = [None] * len(ok) if hue is None else ok[hue].tolist()
    EdgeMarks(
        ax,
        [position(v, lv) for v, lv in zip(ok[x], levels, strict=True)],
        ok[y].to_numpy(np.float64),
        [looks[lv].color for lv in levels],
        n_bad=n_bad,
        handles=handles,
        names=names,
        title=words(hue, labels) if handles else None,
    )
