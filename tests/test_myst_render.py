"""What chapters write for figures, tables and verdicts renders as promised: one small book (a
notebook chapter and a Markdown page) built by Jupyter Book with the repository's ``_config.yml``
and ``_static/custom.css``, executed by MyST-NB 1.4, warnings as errors; then the page opened in
headless Chromium to read the verdict boxes' computed styles.

Run: ``.venv/bin/pytest tests/test_myst_render.py`` (about 30 s: one kernel, one Sphinx build).
Screenshots: ``artifacts/screenshots/myst-render.png``.
"""

import os
import re
import shutil
import subprocess
import sys
from html.parser import HTMLParser
from pathlib import Path

import nbformat
import pytest
import yaml

pytestmark = pytest.mark.slow

REPO = Path(__file__).resolve().parents[1]
ARTIFACTS = REPO / "artifacts"

HOSTILE = "`<img src=x onerror=alert(1)>` {{ book_title }} $y$ x.com"
SETUP = (
    f"HOSTILE = {HOSTILE!r}\n"
    + r"""
import matplotlib
matplotlib.use("Agg")
import matplotlib.pyplot as plt
import pandas as pd
from vae_utils.claims import stats, verdicts
from vae_utils.publish.figures import publish_figure
from vae_utils.publish.tables import publish_table

fig, ax = plt.subplots()
ax.plot([0, 1], [1, 0])
publish_figure(fig, "demo-line", "A line falls from one to zero. It is a demo of e.g. captions.",
               {"params": {"batch_size": [32, 64]}, "seeds": [0, 1], "runs": 4},
               alt="A straight line from 1 at the left to 0 at the right.")
summary = pd.DataFrame({"batch_size": [32, 64], "mean": [-30.1234, -31.5678], "low": [-30.5, -32.4],
                        "high": [-29.7, -30.7], "n": [3, 3]})
publish_table(summary, "demo-small", "Test ELBO per batch size.", {"seeds": [0, 1, 2]},
              labels={"mean": "test ELBO (nats)"})
publish_table(pd.DataFrame({"learning_rate": [10.0 ** (-k / 4) for k in range(20)], "diverged": [False] * 20}),
              "demo-long", "A long table of twenty learning rates.")
effect = stats.one_sample([1.1, 0.9, 1.3, 1.0, 1.2], name="slope of test ELBO (nats)", unit="nats")
for v in (verdicts.judge("demo-supported", "Effects are positive", effect, direction=1, what_to_do="Use it."),
          verdicts.judge("demo-opposite", "Effects are negative", effect, direction=-1),
          verdicts.not_run("demo-not-run", "LARS rescues large batches", parameter="optimizers", value="lars")):
    verdicts.publish(v)
# a reader's value (a store name the name check lets through) in a table, a caption and a verdict box
publish_table(pd.DataFrame({"optimizer": [HOSTILE], "n": [1]}), "demo-hostile", "A value.", {"params": {"store": HOSTILE}})
verdicts.publish(verdicts.not_run("demo-hostile-run", HOSTILE, parameter="schedules", value=HOSTILE, scope=HOSTILE))
"""
)

SHOWN = r"""
fig, ax = plt.subplots()
ax.plot([0, 1], [0, 1])
publish_figure(fig, "demo-shown", "A line rises.", None)
"""

PAGE = """## Section

:::{glue:md} demo-line-figure
:format: myst
:::

See {numref}`fig-demo-line`, {numref}`tab-demo-small` and {numref}`tab-demo-long`.

:::{glue:md} demo-small-table
:format: myst
:::

:::{glue:md} demo-long-table
:format: myst
:::

```{glue:figure} demo-shown
:name: fig-demo-shown
:alt: A rising line.

{glue:md}`demo-shown-caption`
```

:::{glue:md} demo-supported
:format: myst
:::

:::{glue:md} demo-opposite
:format: myst
:::

:::{glue:md} demo-not-run
:format: myst
:::

:::{glue:md} demo-hostile-table
:format: myst
:::

:::{glue:md} demo-hostile-run
:format: myst
:::
"""


def _book(root: Path) -> None:
    from bookdriver import pages
    from bookdriver.paths import book_paths

    # the config as the driver stages it: the repository's, with the address from CITATION.cff
    config = yaml.safe_load(pages._config(book_paths(), pages.citation(REPO)))
    config["execute"].update(execute_notebooks="force", timeout=300)
    for key in ("html_extra_path", "mathjax_path"):  # the driver's MathJax bundle is not staged here
        config["sphinx"]["config"].pop(key, None)
    (root / "_config.yml").write_text(yaml.safe_dump(config))
    shutil.copy(REPO / "references.bib", root / "references.bib")
    (root / "_static").mkdir()
    shutil.copy(REPO / "_static" / "custom.css", root / "_static" / "custom.css")
    shutil.copytree(REPO / "_ext", root / "_ext")  # the book's Sphinx extension (_config.yml: local_extensions)
    toc = {
        "format": "jb-book",
        "root": "intro",
        "parts": [
            {
                "caption": "P",
                "numbered": True,
                "chapters": [{"file": "chapters/demo"}, {"file": "chapters/other"}, {"file": "chapters/params"}],
            }
        ],
    }
    (root / "_toc.yml").write_text(yaml.safe_dump(toc))
    (root / "intro.md").write_text("# Intro\n\nA book of one chapter.\n")
    (root / "chapters").mkdir()
    (root / "chapters" / "other.md").write_text(
        "# Other\n\nElsewhere: {numref}`tab-demo-small`, {numref}`fig-demo-line`.\n"
    )
    # the Reproducing page's table, as the driver writes it, of a reader's parameter file
    (root / "chapters" / "params.md").write_text(
        "# Parameters\n\n" + pages._parameters({"04_batch_size": {"store": HOSTILE}})
    )
    nb = nbformat.v4.new_notebook(
        metadata={"kernelspec": {"name": "python3", "language": "python", "display_name": "P"}}
    )
    nb.cells = [
        nbformat.v4.new_markdown_cell("# Demo\n\nA chapter."),
        nbformat.v4.new_code_cell(SETUP, metadata={"tags": ["remove-cell"]}),
        nbformat.v4.new_code_cell(SHOWN, metadata={"tags": ["remove-output"]}),
        nbformat.v4.new_markdown_cell(PAGE),
    ]
    nbformat.write(nb, root / "chapters" / "demo.ipynb")


@pytest.fixture(scope="module")
def built(tmp_path_factory):
    """The small book, built with warnings as errors; {page: html}."""
    root = tmp_path_factory.mktemp("myst-book")
    _book(root)
    env = dict(os.environ, VAE_BOOK_FIGURES="", PYTHONPATH=str(REPO), TF_CPP_MIN_LOG_LEVEL="3")
    exe = Path(sys.executable).parent / "jupyter-book"
    proc = subprocess.run(
        [str(exe), "build", str(root), "-W", "-n", "--keep-going"], env=env, capture_output=True, text=True, timeout=900
    )
    assert proc.returncode == 0, proc.stdout[-4000:] + proc.stderr[-4000:]
    html = root / "_build" / "html"
    return {
        "root": html,
        "demo": (html / "chapters" / "demo.html").read_text(),
        "other": (html / "chapters" / "other.html").read_text(),
        "params": (html / "chapters" / "params.html").read_text(),
    }


def _between(page: str, start: str, end: str) -> str:
    i = page.index(start)
    return page[i : page.index(end, i)]


def test_a_glued_figure_has_its_alt_text_label_bold_title_and_download_links(built):
    """{glue:md} <name>-figure: <figure id=fig-name>, <img alt=the alt text>, caption: bold title,
    provenance in normal weight, SVG/PNG links to ../_static/figures/."""
    fig = _between(built["demo"], '<figure class="align-default" id="fig-demo-line">', "</figure>")
    assert 'alt="A straight line from 1 at the left to 0 at the right."' in fig
    assert "<strong>A line falls from one to zero.</strong> It is a demo of e.g. captions." in fig
    assert "Parameters: batch_size=[32, 64]. Seeds: [0, 1]. 4 training runs. Code: vae_utils" in fig
    assert '<a class="reference external" href="../_static/figures/demo-line.svg">SVG</a>' in fig
    assert '<a class="reference external" href="../_static/figures/demo-line.png">PNG</a>' in fig


def test_glue_works_from_a_removed_cell_and_removed_outputs_are_not_shown(built):
    """The remove-cell cell's code is not on the page but its glued figure, tables and verdicts are;
    the remove-output cell's displayed figure is not shown twice."""
    page = built["demo"]
    assert "publish_table(summary" not in page and 'id="fig-demo-line"' in page
    assert '<span class="s2">"demo-shown"</span>' in page  # the remove-output cell's code stays visible
    article = _between(page, "<article", "</article>")  # the header's launch buttons have logos
    assert article.count("<img ") == 2  # one per figure: the displayed copies were removed


def test_tables_are_numbered_as_tables_and_referenced_across_pages(built):
    """{numref} reads 'Table 1.1' for a glued table and 'Fig. 1.1' for a figure, on the page and elsewhere."""
    page, other = built["demo"], built["other"]
    assert re.search(r'href="#fig-demo-line"><span class="std std-numref">Fig\. 1\.1</span>', page)
    assert re.search(r'href="#tab-demo-small"><span class="std std-numref">Table 1\.1</span>', page)
    assert re.search(r'href="#tab-demo-long"><span class="std std-numref">Table 1\.2</span>', page)
    assert re.search(r'href="demo.html#tab-demo-small"><span class="std std-numref">Table 1\.1</span>', other)


def test_a_table_has_words_for_columns_no_index_rounded_numbers_and_scrolls(built):
    """The small table: header words, values rounded to the CI (two significant digits of the
    half-width), inside the theme's scrolling container, with its bold title in the caption."""
    table = _between(
        built["demo"],
        '<div class="pst-scrollable-table-container"><table class="vae-table table" id="tab-demo-small">',
        "</table>",
    )
    assert (
        '<span class="caption-number">Table 1.1 </span><span class="caption-text"><strong>Test ELBO per batch size.</strong>'
        in table
    )
    headers = re.findall(r'<th class="head[^"]*"><p>([^<]*)</p>', table)
    assert headers == ["batch size", "test ELBO (nats)", "CI low", "CI high", "n"]
    # half-widths 0.4 and 0.85: two decimals; the interval's ends with them; counts without decimals
    cells = re.findall(r'<td class="text-right"><p>([^<]*)</p>', table)
    assert cells == ["32", "−30.12", "−30.50", "−29.70", "3", "64", "−31.57", "−32.40", "−30.70", "3"]


def test_a_long_table_is_collapsed_in_a_dropdown_named_after_it(built):
    """20 rows > 12: the table sits in a closed <details> whose title names 'Table 1.2'."""
    details = _between(
        built["demo"],
        '<details class="sd-sphinx-override sd-dropdown sd-card sd-mb-3 vae-table-dropdown"',
        "</details>",
    )
    assert "open" not in details.split(">", 1)[0]
    assert "Table 1.2" in details and 'id="tab-demo-long"' in details and "(20 rows)" in details


def test_verdicts_render_as_boxes_with_outcome_classes_and_the_numbers_in_a_dropdown(built):
    """Each verdict: an admonition with class verdict-<outcome>, the outcome in bold, 'What to do',
    and (when tested) a dropdown 'The numbers behind this verdict'."""
    page = built["demo"]
    box = _between(page, '<div class="verdict verdict-supported admonition"', "</details></div>")
    assert "<strong>Supported.</strong>" in box and "<strong>What to do:</strong> Use it." in box
    assert "The numbers behind this verdict" in box
    assert '<div class="verdict verdict-opposite admonition"' in page
    assert '<div class="verdict verdict-not-run admonition"' in page
    assert "_static/custom.css" in page


class _Elements(HTMLParser):
    """Every start tag with its attributes, and the text, of an HTML page."""

    def __init__(self, page: str):
        super().__init__()
        self.tags, self.text = [], []
        self.feed(page)

    def handle_starttag(self, tag, attrs):
        self.tags.append((tag, dict(attrs)))

    def handle_data(self, data):
        self.text.append(data)


def test_a_readers_value_renders_as_text_in_tables_captions_verdicts_and_the_parameters_page(built):
    """A value with backticks, a tag, a substitution, math and a domain name stays text through Sphinx: no
    element carries the value's event handler or points at 'x', and the pages show the value as written."""
    for name in ("demo", "params"):
        page = _Elements(built[name])
        handlers = [v for _, a in page.tags for k, v in a.items() if k.startswith("on")]
        assert "alert(1)" not in " ".join(v or "" for v in handlers), name  # the theme's own onclick stays
        assert [a for t, a in page.tags if t == "img" and a.get("src") == "x"] == [], name
        assert [a for t, a in page.tags if t == "a" and "x.com" in a.get("href", "")] == [], name
    demo = "".join(_Elements(built["demo"]).text)
    assert demo.count(HOSTILE) >= 4  # table cell, caption, claim, scope, the not-run reason's code span
    assert repr(HOSTILE) in "".join(_Elements(built["params"]).text)


@pytest.fixture(scope="module")
def styles(built):
    """Computed border colours of the verdict boxes in headless Chromium; a screenshot is kept."""
    exe = shutil.which("chromium")
    if exe is None:
        pytest.skip("chromium is not installed (see .ci/install-chromium)")
    from playwright.sync_api import sync_playwright

    from tests.test_book import CHROMIUM_FLAGS

    with sync_playwright() as pw:
        browser = pw.chromium.launch(executable_path=exe, headless=True, args=CHROMIUM_FLAGS)
        page = browser.new_page(viewport={"width": 1280, "height": 900})
        page.route(lambda url: not url.startswith("file://"), lambda route: route.abort())
        page.goto((built["root"] / "chapters" / "demo.html").as_uri(), wait_until="load")
        found = page.evaluate("""() => Object.fromEntries([...document.querySelectorAll('div.verdict')].map(
            el => [el.className, getComputedStyle(el).borderLeftColor]))""")
        ARTIFACTS.joinpath("screenshots").mkdir(parents=True, exist_ok=True)
        page.screenshot(path=str(ARTIFACTS / "screenshots" / "myst-render.png"), full_page=True)
        browser.close()
    return found


def test_each_verdict_outcome_has_its_own_colour(styles):
    """supported, opposite and not run boxes have three different border colours (custom.css loaded)."""
    colours = {cls.split()[1]: c for cls, c in styles.items()}
    assert colours["verdict-supported"] == "rgb(0, 158, 115)"
    assert colours["verdict-opposite"] == "rgb(213, 94, 0)"
    assert len(set(colours.values())) == 3
