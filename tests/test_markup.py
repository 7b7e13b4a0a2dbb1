"""A reader's value never becomes markup: parameter values, store names and data file names reach the
book's pages and the advisor's report as the text they are (``vae_utils.publish.markup``).

Pages are rendered with MyST's own Markdown parser (the book's extensions, raw HTML passed through as
Sphinx passes it), so a value that broke out of its escaping would show up as a tag in the HTML.
"""

import html
import re
import shutil
import subprocess
import sys
from html.parser import HTMLParser
from pathlib import Path

import pytest
import yaml

from vae_utils.publish.markup import html_escape, md_cell, md_code, md_escape

REPO = Path(__file__).resolve().parents[1]
HOSTILE = [
    "<img src=x onerror=alert(1)>",
    "`<img src=x onerror=alert(1)>`",
    "``a` ```b<script>x</script>",
    "x\n\n<img src=x onerror=alert(1)>",
    "a|b\\|c",
    "{{ ''.__class__ }} $x$ {ref}`y` [l](javascript:alert(1)) *e* _u_ &lt;",
    "# heading",
    ":::{note}",
    "x.com http://evil.example a@b.org",
    "\\",
]


def _myst_html(markdown: str) -> str:
    """``markdown`` rendered to HTML by MyST's parser with the book's extensions (raw HTML kept)."""
    from markdown_it.renderer import RendererHTML
    from myst_parser.config.main import MdParserConfig
    from myst_parser.parsers.mdit import create_md_parser

    config = yaml.safe_load((REPO / "_config.yml").read_text(encoding="utf-8"))
    extensions = set(config["parse"]["myst_enable_extensions"])
    return create_md_parser(MdParserConfig(enable_extensions=extensions), RendererHTML).render(markdown)


class _Tags(HTMLParser):
    def __init__(self, text: str):
        super().__init__()
        self.tags, self.data = [], []
        self.feed(text)

    def handle_starttag(self, tag, attrs):
        self.tags.append((tag, dict(attrs)))

    def handle_data(self, data):
        self.data.append(data)


def _one_line(value: str) -> str:
    return re.sub(r"[\r\n]+", " ", value)


@pytest.mark.parametrize("value", HOSTILE)
def test_an_escaped_value_renders_as_its_own_text_and_nothing_else(value):
    """md_escape: a paragraph holding the value renders as one <p> of exactly that text (line breaks as
    spaces): no tag, link, role, substitution or math."""
    tags = _Tags(_myst_html(f"Value: {md_escape(value)}"))
    assert [t for t, _ in tags.tags] == ["p"]
    assert "".join(tags.data).strip() == "Value: " + _one_line(value).strip()


@pytest.mark.parametrize("value", HOSTILE)
def test_a_code_span_holds_the_whole_value_whatever_backticks_it_has(value):
    """md_code: the value renders inside one <code>, in a paragraph and in a table cell alike."""
    expected = _one_line(value)
    para = _Tags(_myst_html(f"Value: {md_code(value)}"))
    assert [t for t, _ in para.tags] == ["p", "code"] and para.data[1] == expected
    table = _Tags(_myst_html(f"| a | b |\n|---|---|\n| {md_cell(md_code(value))} | {md_cell(md_escape(value))} |\n"))
    assert [t for t, _ in table.tags] == ["table", "thead", "tr", "th", "th", "tbody", "tr", "td", "code", "td"]
    assert [d for d in table.data if d.strip()][2:] == [expected, expected.strip()]


def test_html_escape_leaves_no_markup_and_no_way_out_of_an_attribute():
    """html_escape: <, >, & and both quotes are entities."""
    assert (
        html_escape("<a href='x' title=\"y\">&</a>")
        == "&lt;a href=&#x27;x&#x27; title=&quot;y&quot;&gt;&amp;&lt;/a&gt;"
    )


def _book_root(tmp_path: Path) -> Path:
    """A copy of the book's sources (chapters and profiles linked): the driver writes only under it."""
    for name in ("_toc.yml", "_config.yml", "CITATION.cff", "references.bib"):
        shutil.copy(REPO / name, tmp_path / name)
    for name in ("chapters", "profiles", "_static"):
        (tmp_path / name).symlink_to(REPO / name)
    return tmp_path


def test_a_hostile_store_name_in_a_readers_parameter_file_is_text_on_the_reproducing_page(tmp_path):
    """A store name passes the name check (no '/'), yet its backticks and tag stay inside one code span
    of the generated parameters page; the page renders no <img>."""
    from bookdriver.pages import generate
    from bookdriver.params import load_parameters
    from bookdriver.paths import book_paths
    from bookdriver.stage import plan

    root = _book_root(tmp_path)
    store = "`<img src=x onerror=alert(1)>`"
    params_file = tmp_path / "params" / "mine.yaml"
    params_file.parent.mkdir()
    params_file.write_text(yaml.safe_dump({"04_batch_size": {"store": store}}))
    paths = book_paths("smoke", root)
    staged = plan(paths, load_parameters("smoke", params_file, root), "mine.yaml")
    page = generate(paths, staged)["_generated/parameters.md"].decode()
    tags = _Tags(_myst_html(page))
    assert not [t for t in tags.tags if t[0] not in ("table", "thead", "tbody", "tr", "th", "td", "code")]
    assert repr(store) in tags.data  # the value, whole, as the text of one code span


@pytest.mark.slow
def test_the_advice_report_for_a_data_file_named_like_a_tag_shows_the_name_as_text(tmp_path):
    """python -m vae_utils advise on '<img src=x onerror=alert(1)>.npy': advice.md escapes the name,
    advice.html has no element with an event handler and no <img> but the range-test figure."""
    import numpy as np
    from sklearn.datasets import load_digits

    name = "<img src=x onerror=alert(1)>.npy"
    np.save(tmp_path / name, load_digits().data[:400] / 16.0)
    cmd = [sys.executable, "-m", "vae_utils", "advise", "--data", name, "--out", "out", "--budget-minutes", "0.25"]
    proc = subprocess.run([*cmd, "--no-confirm"], cwd=tmp_path, capture_output=True, text=True, timeout=900)
    assert proc.returncode == 0, proc.stderr[-3000:]
    page = (tmp_path / "out" / "advice.html").read_text()
    tags = _Tags(page)
    assert [a for _, a in tags.tags if any(k.startswith("on") for k in a)] == []
    assert [a["src"] for t, a in tags.tags if t == "img"] == ["range_test.svg"]
    assert f"<h1>Training advice for {html.escape(name, quote=False)}</h1>" in page
    assert f"<title>Training advice for {html_escape(name)}</title>" in page
    md = (tmp_path / "out" / "advice.md").read_text()
    assert md.startswith(f"# Training advice for {md_escape(name)}\n")
