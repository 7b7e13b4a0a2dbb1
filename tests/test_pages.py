"""The book driver's generated pages and its progress display (``bookdriver.pages``, ``bookdriver.progress``).

Run: ``.venv/bin/pytest tests/test_pages.py`` (seconds; no kernel, no Sphinx).
"""

import json
import time
import tomllib
from pathlib import Path

import yaml

from bookdriver.pages import _citations, _config, _figure_pages, _parameters, citation
from bookdriver.paths import book_paths
from bookdriver.progress import BuildProgress, fmt_duration

REPO = Path(__file__).resolve().parents[1]
FIGURE = {
    "name": "bs-elbo",
    "label": "fig-bs-elbo",
    "title": "Larger batches lose.",
    "page": "04_batch_size",
    "alt": "Test ELBO falls with the batch size.",
    "files": ["bs-elbo.svg", "bs-elbo.png", "bs-elbo.csv"],
}


def test_the_books_address_and_repository_are_written_once_in_citation_cff():
    """CITATION.cff is the one source: pyproject's URLs match it, and the staged _config.yml takes
    its title, repository (for the theme's buttons) and base URL from it."""
    cite = citation(REPO)
    urls = tomllib.loads((REPO / "pyproject.toml").read_text())["project"]["urls"]
    assert cite["url"].startswith("https://") and cite["repository"].startswith("https://github.com/")
    assert urls == {"Homepage": cite["url"], "Repository": cite["repository"]}
    staged = yaml.safe_load(_config(book_paths("full", REPO), cite).decode())
    assert staged["repository"]["url"] == cite["repository"] and staged["html"]["baseurl"] == cite["url"] + "/"
    assert staged["title"] == cite["title"] and staged["html"]["use_repository_button"] is True


def test_the_figure_index_numbers_links_and_downloads_every_figure():
    md = _figure_pages([FIGURE], {"04_batch_size": "Batch size"})
    assert "{numref}`fig-bs-elbo`" in md and "Larger batches lose." in md and "{doc}`Batch size <04_batch_size>`" in md
    assert (
        '<a href="../_static/figures/bs-elbo.svg">SVG</a>' in md
        and '<a href="../_static/figures/bs-elbo.png">PNG</a>' in md
        and '<a href="../_static/figures/bs-elbo.csv">CSV</a>' in md
    )
    assert (
        '<img class="vae-thumb" src="../_static/figures/thumbs/bs-elbo.png" alt="Test ELBO falls with the batch size."'
        in md
    )
    assert "No chapter" in _figure_pages([], {})


def test_every_figure_gets_a_text_and_a_bibtex_citation_pointing_at_its_anchor():
    cite = {
        "title": "VAE Training Strategies",
        "authors": ["A", "B"],
        "year": "2026",
        "url": "https://x.org/book",
        "repository": "",
    }
    md = _citations([FIGURE], {"04_batch_size": "Batch size"}, cite, "0.1.0+abc")
    assert "https://x.org/book/chapters/04_batch_size.html#fig-bs-elbo" in md
    assert "@misc{vts-bs-elbo," in md and "author = {A and B}" in md and "vae\\_utils 0.1.0+abc" in md


def test_the_parameters_table_lists_every_chapters_effective_values():
    md = _parameters({"04_batch_size": {"epochs": 30, "seeds": [0, 1]}})
    assert "| `04_batch_size` | `epochs` | `30` |" in md and "| `04_batch_size` | `seeds` | `[0, 1]` |" in md


def test_progress_counts_the_runs_the_builds_sweeps_listed_and_estimates_what_is_left(tmp_path):
    """Two sweeps' manifests list 4 pending runs; 2 have records of 10 s each; 2 slots: 10 s left."""
    store = tmp_path / "sweeps" / "strategies"
    (store / "sweeps").mkdir(parents=True)
    now = time.time()
    for i, rids in enumerate((["a", "b"], ["c", "d"])):
        (store / "sweeps" / f"s{i}.json").write_text(json.dumps({"started": now + 1, "pending": rids}))
    for rid in ("a", "c"):
        (store / "runs" / rid).mkdir(parents=True)
        (store / "runs" / rid / "record.json").write_text(json.dumps({"run_wall_s": 10.0}))
    p = BuildProgress(total=3, cached=1, results=tmp_path, slots=2)
    p._scan()
    assert sum(v is not None for v in p.runs.values()) == 2 and len(p.runs) == 4
    assert p.eta() == 10.0
    assert "chapters 1/3 · training runs 2/4 known so far" in p.line() and "ETA at least 10 s" in p.line()
    p.chapter_done("x.ipynb", "executed in 5 s")
    assert p.summary().startswith("1 chapters executed, 1 from the cache; 2 training runs")


def test_durations_read_like_a_person_wrote_them():
    assert [fmt_duration(s) for s in (45, 200, 3900)] == ["45 s", "3 min 20 s", "1 h 05 min"]


def test_notebook_chapters_open_in_colab_and_binder_and_install_the_toolkit_from_the_repository():
    """The staged configuration has Colab and Binder launch buttons on the repository of CITATION.cff;
    every notebook chapter's first code cell (removed from the page) installs vae_utils from that
    repository when it is missing, before anything imports it."""
    import nbformat

    cite = citation(REPO)
    staged = yaml.safe_load(_config(book_paths("full", REPO), cite).decode())
    assert staged["launch_buttons"]["colab_url"] == "https://colab.research.google.com"
    assert staged["launch_buttons"]["binderhub_url"] == "https://mybinder.org"
    assert staged["repository"]["url"] == cite["repository"] and staged["repository"]["branch"] == "main"
    for path in sorted((REPO / "chapters").glob("*.ipynb")):
        first = next(c for c in nbformat.read(path, as_version=4).cells if c.cell_type == "code")
        assert first.metadata.get("tags") == ["remove-cell"], path.name
        assert f'%pip install --quiet "git+{cite["repository"]}"' in first.source, path.name
        assert 'find_spec("vae_utils") is None' in first.source, path.name
