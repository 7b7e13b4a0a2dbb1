"""Tests of citable figures (``vae_utils.publish.figures``): captions, alt text, what is glued and shown,
files. The rendering in a built page is tested in ``test_myst_render.py``; the book driver's
fast parts in ``test_bookdriver.py``.

Run: ``.venv/bin/pytest tests/test_figures.py`` (seconds; a real IPython shell, no kernel, no Sphinx).
"""

import json
import re

import matplotlib

matplotlib.use("Agg")
import matplotlib.pyplot as plt
import pytest
from IPython.core.interactiveshell import InteractiveShell
from IPython.utils.capture import capture_output

from vae_utils import __version__
from vae_utils.provenance import code_version
from vae_utils.publish.figures import MIME_TYPE, figure_bytes, format_provenance, md_escape, publish_figure, split_title

PREFIX = "application/papermill.record/"


def _figure():
    fig, ax = plt.subplots(figsize=(2, 2))
    ax.plot([0, 1, 2], [1, 0, 1])
    return fig


def _publish(*args, **kwargs):
    """Run publish_figure in a real IPython shell; return (caption, {glue key: data}, shown outputs)."""
    InteractiveShell.instance()
    with capture_output() as cap:
        caption = publish_figure(*args, **kwargs)
    glued, shown = {}, []
    for out in cap.outputs:
        meta = out.metadata or {}
        if "scrapbook" in meta:
            glued[meta["scrapbook"]["name"]] = {k.removeprefix(PREFIX): v for k, v in out.data.items()}
        else:
            shown.append(out.data)
    return caption, glued, shown


PROVENANCE = {
    "params": {"batch_size": [32, 64], "learning_rate": 0.001},
    "seeds": [0, 1, 2],
    "runs": 6,
    "budget": "30 epochs",
}


def test_code_version_is_the_package_version_plus_a_hash_of_the_package_code():
    """code_version() = '<__version__>+<8 hex digits>', the same when recomputed from the files."""
    assert re.fullmatch(re.escape(__version__) + r"\+[0-9a-f]{8}", code_version())
    assert code_version.__wrapped__() == code_version()


def test_the_caption_is_a_bold_title_then_provenance_then_download_links(tmp_path, monkeypatch):
    """The glued caption's Markdown: **first sentence**, the other sentences and the provenance in
    normal weight (Markdown characters escaped), then SVG/PNG/CSV links under ../_static/figures/."""
    monkeypatch.setenv("VAE_BOOK_FIGURES", str(tmp_path))
    _, glued, _ = _publish(_figure(), "demo-figure", "A demo figure. It shows a line.", PROVENANCE)
    md = glued["demo-figure-caption"]["text/markdown"]
    assert md.startswith(r"**A demo figure.** It shows a line. Budget held fixed\: 30 epochs\.")
    assert r"batch\_size=\[32, 64\]" in md and r"Seeds\: \[0, 1, 2\]\. 6 training runs\." in md
    assert md.endswith(
        "Download: [SVG](../_static/figures/demo-figure.svg), [PNG](../_static/figures/demo-figure.png), "
        "[CSV](../_static/figures/demo-figure.csv) (CSV: the plotted values)."
    )


def test_the_plain_caption_carries_every_provenance_item_and_the_file_names(tmp_path, monkeypatch):
    """publish_figure returns the plain caption (also glued as text/plain and written to the JSON)."""
    monkeypatch.setenv("VAE_BOOK_FIGURES", str(tmp_path))
    caption, glued, _ = _publish(_figure(), "demo-figure", "A demo", PROVENANCE)
    assert caption.startswith("A demo. Budget held fixed: 30 epochs.")
    for part in ("batch_size=[32, 64]", "learning_rate=0.001", "Seeds: [0, 1, 2].", "6 training runs.", code_version()):
        assert part in caption
    assert caption.endswith("Files: demo-figure.svg, demo-figure.png, demo-figure.csv.")
    assert glued["demo-figure-caption"]["text/plain"] == caption
    assert (tmp_path / "demo-figure.svg").read_bytes().lstrip().startswith(b"<?xml")
    assert (tmp_path / "demo-figure.png").read_bytes()[:8] == b"\x89PNG\r\n\x1a\n"
    assert json.loads((tmp_path / "demo-figure.json").read_text())["caption"] == caption


def test_the_figure_directive_has_the_label_the_alt_text_and_the_caption_role(monkeypatch):
    """<name>-figure is a {glue:figure} directive: label fig-<name>, :alt: on one line, the caption
    pasted with {glue:md}; the image's text/plain is the alt text too."""
    monkeypatch.setenv("VAE_BOOK_FIGURES", "")
    _, glued, _ = _publish(_figure(), "bs-elbo", "ELBO against batch size.", None, alt="A line\nthat falls.")
    directive = glued["bs-elbo-figure"]["text/markdown"]
    assert directive == (
        "```{glue:figure} bs-elbo\n:name: fig-bs-elbo\n:alt: A line that falls.\n\n{glue:md}`bs-elbo-caption`\n```\n"
    )
    assert glued["bs-elbo"]["text/plain"] == "A line that falls."
    assert {"image/svg+xml", "image/png"} <= set(glued["bs-elbo"])


def test_the_alt_text_defaults_to_the_title_never_a_file_path(monkeypatch):
    monkeypatch.setenv("VAE_BOOK_FIGURES", "")
    _, glued, _ = _publish(_figure(), "quiet", "Training curves of the digits VAE. More words.", None)
    assert ":alt: Training curves of the digits VAE.\n" in glued["quiet-figure"]["text/markdown"]


def test_the_figure_and_its_caption_are_shown_in_the_notebook_as_well_as_glued(monkeypatch):
    """display=True (default): the image and the caption (bold title, no links) are the cell's
    outputs, so plain papermill shows them; display=False shows nothing."""
    monkeypatch.setenv("VAE_BOOK_FIGURES", "")
    _, _, shown = _publish(_figure(), "shown", "A shown figure.", None)
    assert "image/svg+xml" in shown[0] and "image/png" in shown[0]
    assert shown[1]["text/markdown"].startswith("**A shown figure.**") and "](" not in shown[1]["text/markdown"]
    _, glued, shown = _publish(_figure(), "hidden", "A hidden figure.", None, display=False)
    assert shown == [] and "hidden" in glued


def test_a_json_record_describes_the_figure_for_indexes_and_citations(monkeypatch):
    monkeypatch.setenv("VAE_BOOK_FIGURES", "")
    _, glued, _ = _publish(_figure(), "rec", "A record. More.", {"seeds": [1]})
    meta = glued["rec-meta"][MIME_TYPE]
    assert (
        meta["label"] == "fig-rec"
        and meta["title"] == "A record."
        and meta["files"] == ["rec.svg", "rec.png", "rec.csv"]
    )
    assert meta["provenance"] == {"seeds": [1]} and meta["code_version"] == code_version()


def test_an_empty_figures_folder_setting_writes_no_files(tmp_path, monkeypatch):
    """VAE_BOOK_FIGURES='' (what the book driver sets) writes nothing; the caption is still returned."""
    monkeypatch.setenv("VAE_BOOK_FIGURES", "")
    monkeypatch.chdir(tmp_path)
    assert _publish(_figure(), "quiet", "Nothing written", None)[0].startswith("Nothing written.")
    assert list(tmp_path.rglob("*")) == []


def test_svg_export_is_reproducible_and_keeps_text_as_text():
    """The same figure gives byte-identical SVG twice (fixed ids, no date); text stays <text>."""
    svg = figure_bytes(_figure())[0]
    assert svg == figure_bytes(_figure())[0]
    assert b"<text" in svg


@pytest.mark.parametrize(
    ("name", "caption", "provenance"),
    [("a:b", "x", None), ("", "x", None), ("ok", "", None), ("ok", "x", ["not", "a", "dict"])],
)
def test_bad_names_captions_and_provenance_are_refused(name, caption, provenance):
    """Names with ':' (glue:text reads key:format), empty names or captions, non-dict provenance: ValueError."""
    with pytest.raises(ValueError, match="allowed"):
        publish_figure(_figure(), name, caption, provenance)


def test_provenance_without_known_keys_still_names_the_code_version():
    assert format_provenance({}) == f"Code: vae_utils {code_version()}."
    assert format_provenance({"seeds": 3, "runs": 1}).startswith("Seeds: [3]. 1 training run.")


@pytest.mark.parametrize(
    ("caption", "title", "rest"),
    [
        ("One. Two.", "One.", "Two."),
        ("No full stop", "No full stop.", ""),
        (
            "Draws from N(0, I), e.g. Twelve of them. Then more.",
            "Draws from N(0, I), e.g. Twelve of them.",
            "Then more.",
        ),
        ("Loss against k = 1.5 steps. Next", "Loss against k = 1.5 steps.", "Next"),
    ],
)
def test_split_title_takes_the_first_sentence(caption, title, rest):
    assert split_title(caption) == (title, rest)


def test_md_escape_makes_markdown_characters_literal():
    assert md_escape("a_b [1, 2] *x* <y> `z`") == r"a\_b \[1, 2\] \*x\* \<y\> \`z\`"


def test_the_data_behind_a_figure_is_glued_and_written_as_csv_read_from_what_is_plotted(tmp_path, monkeypatch):
    """Without ``data=``, ``<name>.csv`` holds exactly the plotted values, x and y named by the axes' labels."""
    monkeypatch.setenv("VAE_BOOK_FIGURES", str(tmp_path))
    fig, ax = plt.subplots(figsize=(3, 2))
    ax.plot([1, 2, 4], [-30.5, -29.0, -28.25], color="C0")
    ax.set_xlabel("batch size")
    ax.set_ylabel("test ELBO (nats)")
    _, glued, _ = _publish(fig, "demo-data", "A demo.", None)
    csv = glued["demo-data-data"]["text/csv"]
    assert csv.splitlines() == ["kind,batch size,test ELBO (nats)", "line,1,-30.5", "line,2,-29", "line,4,-28.25"]
    assert (tmp_path / "demo-data.csv").read_text() == csv


def test_a_chapters_own_frame_becomes_the_csv_with_its_columns_in_words(tmp_path, monkeypatch):
    """``data=`` (the frame the chapter plotted) is written instead, column names through publish.labels."""
    import pandas as pd

    monkeypatch.setenv("VAE_BOOK_FIGURES", str(tmp_path))
    frame = pd.DataFrame({"batch_size": [32, 64], "seed": [0, 0], "test_elbo": [-30.0, -31.5]})
    _publish(_figure(), "own-data", "A demo.", None, data=frame)
    lines = (tmp_path / "own-data.csv").read_text().splitlines()
    assert lines == ["batch size,seed,test ELBO (nats)", "32,0,-30", "64,0,-31.5"]
    with pytest.raises(ValueError, match="data=list is not allowed"):
        _publish(_figure(), "bad-data", "A demo.", None, data=[1, 2])


def test_the_caption_says_what_the_marks_at_an_axis_edge_are(monkeypatch):
    """A figure with a run far below its axis and a run that diverged: the caption gains the
    sentence of plots.edge_note (how many, the lowest value in the axis' unit), once."""
    import numpy as np
    import pandas as pd

    from vae_utils import plots

    monkeypatch.setenv("VAE_BOOK_FIGURES", "")
    rng = np.random.default_rng(0)
    df = pd.DataFrame({"batch_size": np.repeat([16, 32, 64, 128, 256], 3), "seed": np.tile([0, 1, 2], 5)})
    df["test_elbo"] = -30 - 0.004 * df.batch_size + rng.normal(0, 0.2, len(df))
    df.loc[4, "test_elbo"], df.loc[10, "test_elbo"] = -160.0, np.nan
    fig = plots.plot_metric_vs(df, "batch_size", "test_elbo", logx=True)
    caption, glued, _ = _publish(fig, "edges", "Test ELBO against the batch size.", None)
    assert "Triangles (▼) on the bottom edge: 1 run below the axis, the lowest at −160 nats." in caption
    assert "Crosses (×) on the bottom edge: 1 run that diverged." in caption
    assert caption.count("Triangles") == 1 and "Triangles" in glued["edges-caption"]["text/markdown"]


def test_a_figure_whose_text_a_phone_would_shrink_below_6_px_is_published_with_a_warning(monkeypatch):
    """plots.check_legible runs on every published figure: 9-pt text on a 13-in figure warns."""
    monkeypatch.setenv("VAE_BOOK_FIGURES", "")
    fig, ax = plt.subplots(figsize=(13, 3))
    ax.plot([0, 1], [0, 1])
    ax.tick_params(labelsize=9)
    with pytest.warns(UserWarning, match="below 6 px at 390 px"):
        _publish(fig, "wide", "A wide figure.", None)
