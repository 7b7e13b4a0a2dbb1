"""Tests of tables for people (``vae_utils.publish.tables``): words for columns, no index, numbers rounded
to what their interval supports, the glued MyST table directive. Its rendering as "Table 1.1" in
a built page is tested in ``test_myst_render.py``.

Run: ``.venv/bin/pytest tests/test_tables.py`` (seconds; a real IPython shell, no kernel).
"""

import math
import re

import numpy as np
import pandas as pd
import pytest
from IPython.core.interactiveshell import InteractiveShell
from IPython.utils.capture import capture_output

from vae_utils.claims import analysis
from vae_utils.publish.tables import MIME_TYPE, format_table, publish_table, table_markdown

PREFIX = "application/papermill.record/"


def _summary():
    rng = np.random.default_rng(0)
    df = pd.DataFrame(
        {"batch_size": np.repeat([32, 64, 128], 3), "seed": [0, 1, 2] * 3, "test_elbo": rng.normal(-30, 0.5, 9)}
    )
    return analysis.summarize(df, "batch_size", "test_elbo").drop(columns=["values", "seeds"])


def test_columns_become_words_and_the_index_is_never_a_column_of_numbers():
    """A table indexed by batch size shows 'batch size' as its first column, then words; no 0, 1, 2 column."""
    df = pd.DataFrame({"test_elbo": [-30.0, -31.0], "kl_loss": [5.0, 6.0]}, index=pd.Index([32, 64], name="batch_size"))
    t = format_table(df)
    assert list(t.columns) == ["batch size", "test ELBO (nats)", "KL (nats)"]
    assert t.iloc[:, 0].tolist() == ["32", "64"]
    plain = format_table(pd.DataFrame({"best_tt": [1.0]}))
    assert list(plain.columns) == ["best tt"] and len(plain.columns) == 1


def test_values_with_an_interval_are_rounded_to_two_significant_digits_of_its_half_width():
    """summarize's mean/low/high are found by themselves; each row keeps the decimals that give its
    half-width two significant digits (hand computed), the interval's ends with it."""
    s = pd.DataFrame({"mean": [-30.12345, -1.23456], "low": [-30.5, -1.25], "high": [-29.7, -1.2]})
    t = format_table(s)
    # half-widths 0.4 -> 2 decimals; 0.025 -> 3 decimals
    assert t.values.tolist() == [["−30.12", "−30.50", "−29.70"], ["−1.235", "−1.250", "−1.200"]]
    t = format_table(s.assign(hw=[0.04, 4.0]), ci={"mean": "hw"})
    assert t["mean"].tolist() == ["−30.123", "−1.2"]


def test_grid_values_read_like_ticks_counts_have_no_decimals_and_other_numbers_share_decimals():
    """learning rates 3×10⁻⁴ / 0.001, ranks 5 (not 5.0), other numbers with 3 significant digits each
    (a small value is not rounded away beside a large one); NaN reads n/a; true minus."""
    df = pd.DataFrame(
        {
            "learning_rate": [3e-4, 1e-3],
            "default_rank": [5.0, 1.0],
            "samples_per_s": [147123.4, 22000.9],
            "gap": [-0.123456, float("nan")],
            "diverged": [True, False],
            "kl_schedule": ["free_bits", "constant"],
        }
    )
    t = format_table(df)
    assert t["learning rate"].tolist() == ["3×10⁻⁴", "0.001"]
    assert t["default rank"].tolist() == ["5", "1"]
    assert t["throughput (examples/s)"].tolist() == ["147,000", "22,000"]
    kl = format_table(pd.DataFrame({"kl_loss": [29.1234, 0.061734]}))["KL (nats)"].tolist()
    assert kl == ["29.1", "0.0617"]
    assert t["train − validation ELBO (nats)"].tolist() == ["−0.123", "n/a"]
    assert t["diverged"].tolist() == ["yes", "no"]
    assert t["KL schedule"].tolist() == ["free bits", "constant"]
    assert format_table(df[["gap"]], digits=2)["train − validation ELBO (nats)"].tolist() == ["−0.12", "n/a"]


def test_bad_interval_columns_and_non_frames_are_refused():
    with pytest.raises(ValueError, match=r"\['nope'\]"):
        format_table(pd.DataFrame({"mean": [1.0]}), ci={"mean": "nope"})
    with pytest.raises(ValueError, match="DataFrame"):
        format_table([1, 2])


def test_the_markdown_is_a_numbered_table_directive_with_numbers_right_aligned():
    """table_markdown: a MyST {table} with label tab-<name> and class vae-table, a pipe table whose
    numeric columns are right-aligned; '|' in a cell is escaped."""
    t = format_table(pd.DataFrame({"optimizer": ["a|b", "sgd"], "test_elbo": [-30.0, -31.5]}))
    md = table_markdown(t, "opt", "**Title.** Rest.")
    lines = md.splitlines()
    assert lines[:3] == [":::{table} **Title.** Rest.", ":name: tab-opt", ":class: vae-table"]
    assert lines[4].startswith("| optimizer") and lines[5] == "|:------------|-------------------:|"
    assert r"| a\\|b " in md and lines[-1] == ":::"  # the table reads '\|' as a bar, then '\|' as text


def test_a_long_table_is_collapsed_in_a_dropdown_titled_by_its_number():
    t = format_table(pd.DataFrame({"x": np.arange(20.0)}))
    md = table_markdown(t, "long", "Long.", max_rows=12)
    assert md.startswith("::::{dropdown} {numref}`tab-long` (20 rows): click to show\n")
    assert md.rstrip().endswith("::::") and ":name: tab-long" in md
    assert not table_markdown(t, "long", "Long.", max_rows=20).startswith("::::{dropdown}")


def test_publish_table_glues_the_directive_and_a_record_and_shows_the_table():
    """In a real IPython shell: <name>-table (text/markdown, the directive) and <name>-meta (JSON) are
    glued; the cell shows the bold caption and the pipe table."""
    InteractiveShell.instance()
    with capture_output() as cap:
        caption = publish_table(
            _summary(), "bs-summary", "Test ELBO per batch size. Over three seeds.", {"seeds": [0, 1, 2]}
        )
    glued = {
        o.metadata["scrapbook"]["name"]: {k.removeprefix(PREFIX): v for k, v in o.data.items()}
        for o in cap.outputs
        if "scrapbook" in (o.metadata or {})
    }
    shown = [o.data for o in cap.outputs if "scrapbook" not in (o.metadata or {})]
    md = glued["bs-summary-table"]["text/markdown"]
    assert md.startswith(r":::{table} **Test ELBO per batch size.** Over three seeds. Seeds\: \[0, 1, 2\]\. Code\:")
    assert ":name: tab-bs-summary" in md and re.search(r"^\|\s*batch size\s*\|", md, re.M)
    assert glued["bs-summary-meta"][MIME_TYPE]["rows"] == 3
    assert (
        shown[0]["text/markdown"].startswith("**Test ELBO per batch size.**")
        and "{table}" not in shown[0]["text/markdown"]
    )
    assert caption.startswith("Test ELBO per batch size. Over three seeds. Seeds: [0, 1, 2].")
    assert 'Download: <a href="../_static/tables/bs-summary.csv">CSV</a>.' in md.splitlines()[0]
    csv = glued["bs-summary-data"]["text/csv"].splitlines()
    assert csv[0].startswith("batch size,") and len(csv) == 4  # the unrounded frame, columns in words


def test_rounding_follows_the_interval_not_the_raw_digits():
    """A summary of three seeds: each mean has as many decimals as its half-width needs for two
    significant digits, never pandas' six."""
    s = _summary()
    t = format_table(s)
    for (_, row), text in zip(s.iterrows(), t["mean"], strict=True):
        half = (row.high - row.low) / 2
        decimals = 1 - math.floor(math.log10(half))
        assert text == f"{row['mean']:.{decimals}f}".replace("-", "−")
