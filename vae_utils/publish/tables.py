"""Tables for people: one call formats a DataFrame, shows it in the notebook and glues it into the
book as a numbered table ("Table 3.1"), referenced with ``{numref}``.

In a chapter's code cell (tag it ``remove-output``; glue works from ``remove-cell`` cells too)::

    from vae_utils.publish.tables import publish_table
    publish_table(summary, "bs-summary", "Test ELBO per batch size, mean over seeds.",
                  {"params": {"epochs": 30}, "seeds": [0, 1, 2]}, ci={"mean": ("low", "high")},
                  labels={"mean": "test ELBO (nats)"})

and where the table belongs in the chapter's Markdown (then ``{numref}`tab-bs-summary``` anywhere)::

    :::{glue:md} bs-summary-table
    :format: myst
    :::

What ``format_table`` does (``publish_table`` calls it):

* Column names become words (``vae_utils.publish.labels.label``; ``labels=`` overrides). The index is not
  shown: a named or non-default index becomes ordinary columns first.
* Numbers with a confidence interval (``ci={"mean": ("low", "high")}`` or ``{"mean": "half_width"}``;
  by default the columns ``mean``/``estimate`` with ``low`` and ``high``) are rounded, row by row,
  to two significant digits of the interval's half-width, the interval's columns with them. Grid
  and configuration values (batch size, learning rate, β: ``vae_utils.core.config.FIELDS``) read like
  tick labels (0.001, 3×10⁻⁴); whole numbers (counts, ranks) have no decimals; other numbers get
  ``digits`` significant digits each (a KL of 0.0617 beside one of 29.1 is not shown as 0.1).
  Minus signs are true minus signs, missing values read "n/a", names have spaces for underscores.
* Tables longer than ``max_rows`` are collapsed in a dropdown whose title names the table; wide
  tables scroll inside their box (the theme wraps every table in a scrolling container).

Why a glued ``{table}`` directive: a DataFrame pasted with ``{glue:figure}`` is numbered as a
figure ("Fig. 3.2"); MyST's ``{table}`` directive around a Markdown table is numbered as a table by
Sphinx (``numfig``), and ``{glue:md}`` with ``:format: myst`` parses the glued directive, its
``:name:`` label included, as if the chapter had written it.
"""

from __future__ import annotations

import json
import math
from collections.abc import Mapping

import numpy as np
import pandas as pd

from .figure_data import data_csv
from .figures import CSV_MIME_TYPE, Caption, MimeBundle, check_publishable, format_provenance, md_escape, split_title
from .labels import label as words
from .labels import tick_text
from .markup import md_cell
from .scope import provenance_of

__all__ = ["format_table", "table_markdown", "publish_table", "publish_data", "MIME_TYPE"]

MIME_TYPE = "application/vnd.vae-table+json"
LINK_BASE = "../_static/tables"  # where a table's CSV sits in the built book, seen from a page under chapters/
MAX_ROWS = 12  # longer tables are collapsed
_AUTO_CI = (("mean", "low", "high"), ("estimate", "low", "high"))


def _grid_columns() -> frozenset:
    from ..core.config import FIELDS

    return frozenset(FIELDS) | {"rank", "seed", "k"}


def _ci_spec(df: pd.DataFrame, ci) -> dict:
    """{value column: (low column, high column) or half-width column}; auto-detected when None."""
    if ci is None:
        return {v: (lo, hi) for v, lo, hi in _AUTO_CI if {v, lo, hi} <= set(df.columns)}
    if not isinstance(ci, Mapping):
        raise ValueError(
            f"ci={ci!r} is not allowed; allowed: None or a dict {{column: (low, high) or half-width column}}"
        )
    for value, source in ci.items():
        cols = [value, *(source if isinstance(source, (tuple, list)) else [source])]
        missing = [c for c in cols if c not in df.columns]
        if missing:
            raise ValueError(f"ci names columns {missing} that are not in the table; available: {list(df.columns)}")
    return dict(ci)


def _number(x: float, decimals: int) -> str:
    if not math.isfinite(x):
        return "n/a"
    s = f"{round(x, decimals) + 0.0:,.{max(decimals, 0)}f}"  # + 0.0: no "-0"
    return s.replace("-", "−")


def _decimals_of_half(half: float) -> int:
    """Decimals that give a CI half-width two significant digits (3 without an interval)."""
    return 1 - math.floor(math.log10(half)) if math.isfinite(half) and half > 0 else 3


def _significant(x: float, digits: int) -> str:
    """``x`` to ``digits`` significant digits, in fixed notation (147,000; 0.0617; −30.1)."""
    if not math.isfinite(x) or x == 0:
        return _number(x, 0)
    return _number(x, digits - 1 - math.floor(math.log10(abs(x))))


def _format_ci_columns(df: pd.DataFrame, out: pd.DataFrame, spec: dict) -> set:
    """Round each value column and its interval columns row by row; return the columns done."""
    done = set()
    for value, source in spec.items():
        if isinstance(source, (tuple, list)):
            half = (df[source[1]].astype(float) - df[source[0]].astype(float)) / 2
            cols = [value, *source]
        else:
            half = df[source].astype(float)
            cols = [value, source]
        decimals = [_decimals_of_half(h) for h in half]
        for c in cols:
            out[c] = [_number(float(v), d) for v, d in zip(df[c].astype(float), decimals, strict=True)]
        done.update(cols)
    return done


def _format_column(s: pd.Series, name: str, digits: int) -> list[str]:
    if pd.api.types.is_bool_dtype(s):
        return ["yes" if v else "no" for v in s]
    if not pd.api.types.is_numeric_dtype(s):
        return ["n/a" if v is None or (isinstance(v, float) and math.isnan(v)) else str(v).replace("_", " ") for v in s]
    v = s.to_numpy(np.float64)
    finite = v[np.isfinite(v)]
    if name in _grid_columns():
        return [tick_text(x) if math.isfinite(x) else "n/a" for x in v]
    if len(finite) and np.all(finite == np.round(finite)):
        return [_number(x, 0) for x in v]
    return [_significant(x, digits) for x in v]


def format_table(
    df: pd.DataFrame,
    digits: int | Mapping[str, int] = 3,
    ci: Mapping | None = None,
    labels: Mapping[str, str] | None = None,
) -> pd.DataFrame:
    """A copy of ``df`` as strings for people: words for column names, no index, numbers rounded to
    their CI (``ci``) or to ``digits`` significant digits (an int, or {column: int}); see the module
    docstring. The result's columns are the words; ``attrs["numeric"]`` lists which are numbers."""
    if not isinstance(df, pd.DataFrame):
        raise ValueError(f"df is a {type(df).__name__}; allowed: a pandas DataFrame")
    if not isinstance(df.index, pd.RangeIndex) or any(n is not None for n in df.index.names):
        df = df.reset_index()
    df = df.loc[:, ~df.columns.duplicated()]
    out = pd.DataFrame(index=df.index)
    done = _format_ci_columns(df, out, _ci_spec(df, ci))
    for c in df.columns:
        if c not in done:
            d = digits.get(c, 3) if isinstance(digits, Mapping) else digits
            out[c] = _format_column(df[c], str(c), d)
    out = out[list(df.columns)]
    numeric = [words(c, labels) for c in df.columns if pd.api.types.is_numeric_dtype(df[c])]
    out.columns = [words(c, labels) for c in df.columns]
    out = out.reset_index(drop=True)
    out.attrs["numeric"] = numeric
    return out


def _pipe_table(table: pd.DataFrame) -> str:
    """A Markdown pipe table (tabulate), numbers right-aligned, every cell literal text (``md_escape``)."""
    numeric = set(table.attrs.get("numeric", []))
    cells = table.map(lambda v: md_cell(md_escape(v)))
    header = [md_cell(md_escape(c)) for c in table.columns]
    align = ["right" if c in numeric else "left" for c in table.columns]
    return cells.to_markdown(index=False, tablefmt="pipe", headers=header, colalign=align, disable_numparse=True)


def table_markdown(table: pd.DataFrame, name: str, caption_md: str, max_rows: int = MAX_ROWS) -> str:
    """The MyST ``{table}`` directive (label ``tab-<name>``) around a formatted table, inside a
    dropdown when it has more than ``max_rows`` rows."""
    body = f":::{{table}} {caption_md}\n:name: tab-{name}\n:class: vae-table\n\n{_pipe_table(table)}\n:::\n"
    if len(table) <= max_rows:
        return body
    title = f"{{numref}}`tab-{name}` ({len(table)} rows): click to show"
    return f"::::{{dropdown}} {title}\n:class-container: vae-table-dropdown\n\n{body}::::\n"


def publish_table(
    df: pd.DataFrame,
    name: str,
    caption: str,
    provenance: dict | None = None,
    *,
    digits: int | Mapping[str, int] = 3,
    ci: Mapping | None = None,
    labels: Mapping[str, str] | None = None,
    max_rows: int = MAX_ROWS,
    display: bool = True,
    link_base: str = LINK_BASE,
) -> Caption:
    """Format ``df`` (``format_table``), show it with its caption, and glue it for the book:
    ``<name>-table`` (the ``{table}`` directive, label ``tab-<name>``, pasted with ``{glue:md}`` and
    ``:format: myst``) and ``<name>-meta`` (JSON: title, label, caption, provenance, columns, rows).

    ``caption``: its first sentence is the bold title; ``provenance`` as for ``publish_figure``
    (``None``: the code version only). ``df`` unrounded, its columns in words, is glued as
    ``<name>-data`` (``text/csv``): the book driver writes it to ``_static/tables/<name>.csv`` and the
    caption links it. Returns the plain caption (displays nothing).
    """
    from IPython.display import Markdown
    from IPython.display import display as show
    from myst_nb import glue

    check_publishable(name, caption, provenance)
    provenance = provenance_of(provenance)  # the runs shown, as their scope
    if not isinstance(max_rows, int) or max_rows < 1:
        raise ValueError(f"max_rows={max_rows!r} is not allowed; allowed: an int >= 1")
    table = format_table(df, digits=digits, ci=ci, labels=labels)
    title, rest = split_title(caption)
    prov = format_provenance(provenance or {})
    csv_link = f'Download: <a href="{link_base.rstrip("/")}/{name}.csv">CSV</a>.'  # raw HTML: MyST would resolve a link
    caption_md = f"**{title}**{f' {rest}' if rest else ''} {md_escape(prov)} {csv_link}"
    plain = f"{title}{f' {rest}' if rest else ''} {prov}"
    meta = {
        "name": name,
        "label": f"tab-{name}",
        "title": title,
        "caption": plain,
        "provenance": provenance or {},
        "columns": list(table.columns),
        "rows": len(table),
    }
    glue(
        f"{name}-table",
        MimeBundle({"text/markdown": table_markdown(table, name, caption_md, max_rows), "text/plain": plain}),
        display=False,
    )
    glue(
        f"{name}-meta",
        MimeBundle({MIME_TYPE: json.loads(json.dumps(meta, default=str)), "text/plain": name}),
        display=False,
    )
    glue(f"{name}-data", MimeBundle({CSV_MIME_TYPE: data_csv(df, labels), "text/plain": f"{name}.csv"}), display=False)
    if display:
        shown = f"**{title}**{f' {rest}' if rest else ''} {md_escape(prov)} File: {md_escape(name)}.csv."
        show(Markdown(f"{shown}\n\n{_pipe_table(table)}\n"))
    return Caption(plain)


def publish_data(df: pd.DataFrame, name: str, labels: Mapping[str, str] | None = None) -> str:
    """Glue ``df`` as ``<name>-data`` (``text/csv``, columns in words) without showing it: the book
    driver writes it to ``_static/tables/<name>.csv``, for a link such as a chapter's run table
    (``publish_data(runs_used(), "bs-runs")``). Returns the file name."""
    from myst_nb import glue

    check_publishable(name, "data", None)
    glue(f"{name}-data", MimeBundle({CSV_MIME_TYPE: data_csv(df, labels), "text/plain": f"{name}.csv"}), display=False)
    return f"{name}.csv"
