"""Tests of citable figures (``vae_utils.figures``) and of the book driver's fast parts (``vae_utils.book``).

Run: ``.venv/bin/pytest tests/test_figures.py`` (seconds; no kernel, no Sphinx).
"""

import json
import re
from pathlib import Path

import matplotlib

matplotlib.use("Agg")
import matplotlib.pyplot as plt  # noqa: E402
import nbformat  # noqa: E402
import pytest  # noqa: E402

from vae_utils import __version__, book  # noqa: E402
from vae_utils.figures import code_version, figure_bytes, format_provenance, publish_figure, source_hash  # noqa: E402

REPO = Path(__file__).resolve().parents[1]


def _figure():
    fig, ax = plt.subplots(figsize=(2, 2))
    ax.plot([0, 1, 2], [1, 0, 1])
    return fig


def test_code_version_is_the_package_version_plus_a_hash_of_the_sources():
    """code_version() = '<__version__>+<8 hex digits>', stable within a process."""
    assert re.fullmatch(re.escape(__version__) + r"\+[0-9a-f]{8}", code_version())
    assert source_hash() == code_version().split("+")[1]
    assert source_hash.__wrapped__() == source_hash()  # recomputing from the files gives the same hash


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
    "name, caption, provenance",
    [("a:b", "x", None), ("", "x", None), ("ok", "", None), ("ok", "x", ["not", "a", "dict"])],
)
def test_bad_names_captions_and_provenance_are_refused(name, caption, provenance):
    """Names with ':' (glue:text reads key:format), empty names or captions, non-dict provenance: ValueError."""
    with pytest.raises(ValueError, match="allowed"):
        publish_figure(_figure(), name, caption, provenance)


def test_provenance_without_known_keys_still_names_the_code_version():
    assert format_provenance({}) == f"Code: vae_utils {code_version()}."
    assert format_provenance({"seeds": 3, "runs": 1}).startswith("Seeds: [3]. 1 training run.")


# ---------------------------------------------------------------- the book driver


def _tiny_book(root: Path) -> Path:
    """A two-page book: a Markdown root and one notebook with a parameters cell."""
    (root / "chapters").mkdir(parents=True)
    (root / "_config.yml").write_text("title: t\nexecute:\n  timeout: 60\n")
    (root / "references.bib").write_text("")
    (root / "_toc.yml").write_text(
        "format: jb-book\nroot: chapters/intro\nparts:\n  - caption: P\n    chapters:\n"
        "      - file: chapters/nb\n      - file: chapters/missing\n"
    )
    (root / "chapters" / "intro.md").write_text("# Intro\n")
    nb = nbformat.v4.new_notebook(
        metadata={"kernelspec": {"name": "python3", "language": "python", "display_name": "P"}}
    )
    nb.cells = [
        nbformat.v4.new_code_cell("epochs = 30\nname = 'digits'", metadata={"tags": ["parameters"]}),
        nbformat.v4.new_code_cell("print(epochs)"),
    ]
    nbformat.write(nb, root / "chapters" / "nb.ipynb")
    (root / "profiles" / "smoke").mkdir(parents=True)
    (root / "profiles" / "smoke" / "nb.yaml").write_text("epochs: 2\n")
    return root


def test_staging_injects_profile_parameters_after_the_parameters_cell(tmp_path):
    """The staged notebook gets an injected-parameters cell with the profile's values; the source is untouched."""
    root = _tiny_book(tmp_path)
    paths = book.book_paths("smoke", root)
    effective = book.stage(paths, book.load_parameters("smoke", None, root), "profile smoke", verbose=False)
    assert effective == {"nb": {"epochs": 2, "name": "digits"}}
    staged = nbformat.read(paths.src / "chapters" / "nb.ipynb", as_version=4)
    assert staged.cells[1].metadata.tags == ["injected-parameters"]
    assert "epochs = 2" in staged.cells[1].source and "profile smoke" in staged.cells[1].source
    assert len(nbformat.read(root / "chapters" / "nb.ipynb", as_version=4).cells) == 2
    assert "chapters/missing" not in (paths.src / "_toc.yml").read_text()  # missing chapters are skipped
    assert (paths.src / "_extra" / "mathjax" / "tex-chtml.js").exists()  # MathJax bundled, no CDN


def test_staging_twice_rewrites_nothing(tmp_path):
    """An unchanged book stages to unchanged files (same mtimes), so Sphinx re-reads and re-executes nothing."""
    root = _tiny_book(tmp_path)
    paths = book.book_paths("smoke", root)
    book.stage(paths, book.load_parameters("smoke", None, root), verbose=False)
    before = {p: p.stat().st_mtime_ns for p in paths.src.rglob("*") if p.is_file()}
    book.stage(paths, book.load_parameters("smoke", None, root), verbose=False)
    assert {p: p.stat().st_mtime_ns for p in paths.src.rglob("*") if p.is_file()} == before


def test_a_reader_file_overrides_the_profile(tmp_path):
    root = _tiny_book(tmp_path)
    (tmp_path / "my.yaml").write_text("nb:\n  epochs: 7\n")
    assert book.load_parameters("smoke", tmp_path / "my.yaml", root) == {"nb": {"epochs": 7}}


@pytest.mark.parametrize(
    "text, message",
    [("nope:\n  epochs: 1\n", "chapter 'nope' is not known"), ("nb:\n  epoch: 1\n", "nb has no parameter epoch")],
)
def test_unknown_chapters_and_parameters_are_refused_before_anything_runs(tmp_path, text, message):
    """A typo in a parameter file fails with the allowed names, and stages nothing."""
    root = _tiny_book(tmp_path)
    (tmp_path / "my.yaml").write_text(text)
    paths = book.book_paths("full", root)
    with pytest.raises(ValueError, match=message):
        book.stage(paths, book.load_parameters("full", tmp_path / "my.yaml", root), verbose=False)
    assert not paths.src.exists()


def test_an_unknown_profile_is_refused(tmp_path):
    with pytest.raises(ValueError, match="profile='huge' is not known"):
        book.load_parameters("huge", None, _tiny_book(tmp_path))


def test_figures_are_extracted_from_the_glue_records(tmp_path):
    """collect_figures writes <name>.svg/.png and an index with the glued caption."""
    paths = book.book_paths("smoke", tmp_path)
    record = paths.executed / "chapters" / "x.glue.json"
    record.parent.mkdir(parents=True)
    svg, png = figure_bytes(_figure())
    import base64

    record.write_text(
        json.dumps(
            {
                "fig-a": {"data": {"image/svg+xml": svg.decode(), "image/png": base64.b64encode(png).decode()}},
                "fig-a-caption": {"data": {"text/plain": "'A caption. Files: fig-a.svg, fig-a.png.'"}},
                "a-number": {"data": {"text/plain": "'3.14'"}},
            }
        )
    )
    found = book.collect_figures(paths)
    assert [f["name"] for f in found] == ["fig-a"]
    assert found[0]["caption"] == "A caption. Files: fig-a.svg, fig-a.png."
    assert found[0]["page"] == "chapters/x.html"
    assert (paths.figures / "fig-a.svg").read_bytes() == svg
    assert (paths.figures / "fig-a.png").read_bytes() == png
    assert "fig-a.svg" in (paths.figures / "index.html").read_text()


def test_every_book_notebook_has_a_parameters_cell_of_flat_literals_and_no_outputs():
    """Chapters that compute something expose literal parameters (primitives, or lists of them);
    notebooks are committed stripped."""
    flat = (int, float, str, bool)
    for path in sorted((REPO / "chapters").glob("*.ipynb")):
        nb = nbformat.read(path, as_version=4)
        params = book.notebook_parameters(nb)
        assert params, f"{path.name} has no parameters cell"
        for name, v in params.items():
            ok = isinstance(v, flat) or (isinstance(v, list) and all(isinstance(x, flat) for x in v))
            assert ok, f"{path.name}: parameter {name}={v!r} is not a literal primitive or list of them"
        assert not any(c.get("outputs") or c.get("execution_count") for c in nb.cells if c.cell_type == "code"), (
            path.name
        )
