"""Tests of citable figures (``vae_utils.figures``); the book driver's fast parts are in ``test_bookdriver.py``.

Run: ``.venv/bin/pytest tests/test_figures.py`` (seconds; no kernel, no Sphinx).
"""

import json
import re

import matplotlib

matplotlib.use("Agg")
import matplotlib.pyplot as plt
import pytest

from vae_utils import __version__
from vae_utils.figures import figure_bytes, format_provenance, publish_figure
from vae_utils.provenance import code_version


def _figure():
    fig, ax = plt.subplots(figsize=(2, 2))
    ax.plot([0, 1, 2], [1, 0, 1])
    return fig


def test_code_version_is_the_package_version_plus_a_hash_of_the_package_code():
    """code_version() = '<__version__>+<8 hex digits>', the same when recomputed from the files."""
    assert re.fullmatch(re.escape(__version__) + r"\+[0-9a-f]{8}", code_version())
    assert code_version.__wrapped__() == code_version()


def test_the_caption_carries_parameters_seeds_runs_budget_code_version_and_file_names(tmp_path, monkeypatch):
    """publish_figure returns the caption with every provenance item, and writes SVG, PNG and JSON."""
    monkeypatch.setenv("VAE_BOOK_FIGURES", str(tmp_path))
    caption = publish_figure(
        _figure(),
        "demo-figure",
        "A demo",
        {
            "params": {"batch_size": [32, 64], "learning_rate": 0.001},
            "seeds": [0, 1, 2],
            "runs": 6,
            "budget": "30 epochs",
        },
    )
    assert caption.startswith("A demo. Budget held fixed: 30 epochs.")
    for part in ("batch_size=[32, 64]", "learning_rate=0.001", "Seeds: [0, 1, 2].", "6 training runs.", code_version()):
        assert part in caption
    assert caption.endswith("Files: demo-figure.svg, demo-figure.png.")
    assert (tmp_path / "demo-figure.svg").read_bytes().lstrip().startswith(b"<?xml")
    assert (tmp_path / "demo-figure.png").read_bytes()[:8] == b"\x89PNG\r\n\x1a\n"
    assert json.loads((tmp_path / "demo-figure.json").read_text())["caption"] == caption


def test_an_empty_figures_folder_setting_writes_no_files(tmp_path, monkeypatch):
    """VAE_BOOK_FIGURES='' (what the book driver sets) writes nothing; the caption is still returned."""
    monkeypatch.setenv("VAE_BOOK_FIGURES", "")
    monkeypatch.chdir(tmp_path)
    assert publish_figure(_figure(), "quiet", "Nothing written", None).startswith("Nothing written.")
    assert list(tmp_path.rglob("*")) == []


def test_svg_export_is_reproducible():
    """The same figure gives byte-identical SVG twice (fixed ids, no date), so files diff cleanly."""
    assert figure_bytes(_figure())[0] == figure_bytes(_figure())[0]


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
