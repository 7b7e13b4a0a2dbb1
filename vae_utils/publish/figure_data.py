"""The data behind a figure, as a tidy table: what ``publish_figure`` writes as ``<name>.csv``.

    from vae_utils.publish.figure_data import figure_data, data_csv
    table = figure_data(fig)         # read from the drawn artists: exactly what is plotted
    text = data_csv(frame)           # a chapter's own frame, its column names in words with units

``figure_data`` reads every axes of a matplotlib Figure: lines and markers (``line``), scatter
points (``points``; a point drawn at the axes' edge rather than at a value, such as a diverged run,
has no y), error bars (``interval``: y low and high), shaded bands (``band``: y low and high per x),
bars (``bar``) and images or heat maps (``cell``: row, column, value). Columns: ``panel`` (the axes'
title, when the figure has several), ``series`` (the level a colour stands for, read from the legend
or the direct labels), ``kind``, then x and y named by the axes' labels (units included), or ``x`` and
``y`` with the label in ``x axis`` / ``y axis`` when the panels differ. On a categorical axis x is the
category's name, not its position.
"""

from __future__ import annotations

import re

import numpy as np
import pandas as pd

from .labels import label

__all__ = ["figure_data", "data_csv"]

ARROWS = " ↑↓"
NUMBER = re.compile(r"^[−-]?(\d[\d,]*\.?\d*|\.\d+)?(×?10[⁻⁰¹²³⁴⁵⁶⁷⁸⁹]+)?$")


def data_csv(data: pd.DataFrame, labels=None) -> str:
    """CSV text of ``data`` with its column names in words (``publish.labels``; a named index becomes columns)."""
    if not isinstance(data, pd.DataFrame):
        raise ValueError(f"data={type(data).__name__} is not allowed; allowed: a pandas DataFrame")
    frame = data.reset_index() if _has_named_index(data) else data.reset_index(drop=True)
    frame = frame.rename(columns={c: label(c, labels) for c in frame.columns})
    return frame.to_csv(index=False, float_format="%.6g", lineterminator="\n")


def _has_named_index(df: pd.DataFrame) -> bool:
    return any(n is not None for n in df.index.names)


def _hex(color) -> str:
    from matplotlib.colors import to_hex

    try:
        return to_hex(color, keep_alpha=False)
    except (ValueError, TypeError):
        return ""


def _series_names(ax) -> dict[str, str]:
    """{colour: level} from the legends' entries and the direct labels (text in a line's colour)."""
    names = {}
    for legend in [ax.get_legend(), *ax.figure.legends]:
        if legend is None:
            continue
        for handle, text in zip(legend.legend_handles, legend.get_texts(), strict=False):
            color = handle.get_color() if hasattr(handle, "get_color") else handle.get_facecolor()
            names.setdefault(_hex(color if np.ndim(color) < 2 else color[0]), text.get_text())
    for text in ax.texts:
        names.setdefault(_hex(text.get_color()), text.get_text().rstrip(ARROWS))
    names.pop(_hex("0.25"), None)  # a direct labels' title, not a level
    return names


def _category(axis):
    """A function from a position on a categorical ``axis`` (names as tick labels) to its tick
    label, or None when the axis is numeric (a log axis's "3×10⁻⁴" is a number, not a name)."""
    ticks = axis.get_majorticklocs()
    texts = [t.get_text() for t in axis.get_majorticklabels()]
    if not len(ticks) or len(texts) != len(ticks) or not any(t and not _numeric(t) for t in texts):
        return None
    ticks = np.asarray(ticks, np.float64)
    return lambda v: texts[int(np.argmin(np.abs(ticks - v)))] if np.isfinite(v) else ""


def _numeric(text: str) -> bool:
    """True for a tick label that writes a number: 0.001, −2, 16,384, 3×10⁻⁴, 10⁵."""
    return bool(NUMBER.match(text.strip()))


def _lines(ax, color_of) -> list[dict]:
    rows = []
    for line in ax.get_lines():
        x, y = np.asarray(line.get_xdata(), float), np.asarray(line.get_ydata(), float)
        if not len(x) or line.get_transform() != ax.transData:
            continue
        kind = "line" if line.get_linestyle() not in ("None", "none", "", " ") else "points"
        rows += [
            {"series": color_of(line.get_color()), "kind": kind, "x": a, "y": b} for a, b in zip(x, y, strict=True)
        ]
    return rows


def _collections(ax, color_of) -> list[dict]:
    from matplotlib.collections import LineCollection, PathCollection, PolyCollection, QuadMesh

    rows = []
    for coll in ax.collections:
        colors = coll.get_facecolor() if len(coll.get_facecolor()) else coll.get_edgecolor()
        series = color_of(colors[0]) if len(colors) else ""
        if isinstance(coll, QuadMesh):
            rows += _cells(ax, np.ma.filled(coll.get_array().astype(float), np.nan))
        elif isinstance(coll, PathCollection):
            xy = np.asarray(coll.get_offsets(), float).reshape(-1, 2)
            at_edge = coll.get_offset_transform() != ax.transData
            rows += [{"series": series, "kind": "points", "x": a, "y": np.nan if at_edge else b} for a, b in xy]
        elif isinstance(coll, LineCollection):
            for seg in coll.get_segments():
                seg = np.asarray(seg, float)
                if len(seg) and np.allclose(seg[:, 0], seg[0, 0]):
                    row = {"series": series, "kind": "interval", "x": seg[0, 0]}
                    rows.append(row | {"y low": seg[:, 1].min(), "y high": seg[:, 1].max()})
        elif isinstance(coll, PolyCollection):
            rows += _bands(coll, series)
    return rows


def _bands(coll, series: str) -> list[dict]:
    """A shaded band (``fill_between``): its lowest and highest y at every x of its outline."""
    rows = []
    for path in coll.get_paths():
        v = np.asarray(path.vertices, float)
        v = v[np.isfinite(v).all(axis=1)]
        for x in np.unique(v[:, 0]):
            ys = v[v[:, 0] == x, 1]
            rows.append({"series": series, "kind": "band", "x": x, "y low": ys.min(), "y high": ys.max()})
    return rows


def _cells(ax, values: np.ndarray) -> list[dict]:
    """One row per cell of a heat map or image, named by the tick labels when they name every row/column."""
    values = values.reshape(values.shape[0], -1) if values.ndim > 1 else values.reshape(1, -1)
    cols = [t.get_text() for t in ax.get_xticklabels()]
    rows_ = [t.get_text() for t in ax.get_yticklabels()]
    cols = cols if len(cols) == values.shape[1] else list(range(values.shape[1]))
    rows_ = rows_ if len(rows_) == values.shape[0] else list(range(values.shape[0]))
    return [
        {"kind": "cell", "row": rows_[i], "column": cols[j], "value": values[i, j]}
        for i in range(values.shape[0])
        for j in range(values.shape[1])
    ]


def _images(ax) -> list[dict]:
    rows = []
    for image in ax.get_images():
        a = np.asarray(image.get_array(), float)
        rows += _cells(ax, a if a.ndim == 2 else a.mean(axis=-1))
    return rows


def _bars(ax, color_of) -> list[dict]:
    from matplotlib.container import BarContainer

    rows = []
    for container in ax.containers:
        if isinstance(container, BarContainer):
            for p in container.patches:
                x = p.get_x() + p.get_width() / 2
                rows.append({"series": color_of(p.get_facecolor()), "kind": "bar", "x": x, "y": p.get_height()})
    return rows


def _axes_rows(ax) -> list[dict]:
    names = _series_names(ax)

    def color_of(c):
        return names.get(_hex(c), "")

    rows = _lines(ax, color_of) + _collections(ax, color_of) + _bars(ax, color_of) + _images(ax)
    for axis, key in ((ax.xaxis, "x"), (ax.yaxis, "y")):
        name_of = _category(axis)
        if name_of is not None:
            for r in rows:
                if key in r:
                    r[key] = name_of(r[key])
    return rows


def figure_data(fig) -> pd.DataFrame:
    """Every value a Figure draws, one row per point, cell, bar, interval or band step (see the module)."""
    frames = []
    axes = [ax for ax in fig.axes if ax.get_label() != "<colorbar>"]
    for i, ax in enumerate(axes):
        rows = _axes_rows(ax)
        if not rows:
            continue
        panel = ax.get_title() or ax.get_title(loc="left") or f"panel {i + 1}"
        frames.append(pd.DataFrame(rows).assign(panel=panel, xlabel=ax.get_xlabel(), ylabel=ax.get_ylabel()))
    if not frames:
        return pd.DataFrame(columns=["kind"])
    table = pd.concat(frames, ignore_index=True)
    bars = {ax.get_ylabel() or ax.get_xlabel() for ax in fig.axes if ax.get_label() == "<colorbar>"}
    if len(bars) == 1 and "value" in table:
        table = table.rename(
            columns={"value": " ".join(bars.pop().split())}
        )  # a heat map's values, named by its colour bar
    return _named(table, several=len(frames) > 1)


def _named(table: pd.DataFrame, several: bool) -> pd.DataFrame:
    """Columns in reading order, x and y named by their axis labels when every panel shares them."""
    renames = {}
    for key, col, cell in (("x", "xlabel", "column"), ("y", "ylabel", "row")):
        axis_labels = table[col].dropna().unique()
        if len(axis_labels) == 1 and axis_labels[0]:
            renames[key] = renames[cell] = axis_labels[0]
            renames.update({f"{key} low": f"{axis_labels[0]}: low", f"{key} high": f"{axis_labels[0]}: high"})
            table = table.drop(columns=col)
        else:
            table = table.rename(columns={col: f"{key} axis"})
    if not several:
        table = table.drop(columns="panel")
    if "series" in table and not table.series.fillna("").astype(str).str.len().any():
        table = table.drop(columns="series")
    order = ["panel", "series", "kind", "x axis", "x", "y axis", "y", "y low", "y high", "row", "column", "value"]
    table = table[[c for c in order if c in table] + [c for c in table if c not in order]]
    return table.rename(columns=renames).dropna(axis=1, how="all")
