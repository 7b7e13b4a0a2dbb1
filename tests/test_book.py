"""The book, end to end: the smoke profile builds every chapter, and the pages work in a real browser.

Run: ``.venv/bin/pytest tests/test_book.py`` (a few minutes: every chapter is executed with tiny grids).

1) ``python -m bookdriver build --profile smoke`` (what ``make book-smoke`` runs) must succeed with
   warnings as errors; its console output is kept in ``artifacts/book-smoke.log`` and must be free of
   kernel chatter (the kernels' own output goes to ``_build/smoke/logs/``). Every figure's axis and
   legend text, read from the SVG files the build wrote, is in words: no underscore identifiers.
2) The built pages are opened in Debian's headless ``chromium`` (installed by ``.ci/install-chromium``
   when missing; the browser tests skip, saying why, only when it cannot be installed), driven by
   Playwright without downloading any browser. Every image must have loaded, math must be typeset by
   the bundled MathJax, no page may show an error, a "Traceback" or a "WARNING" other than the
   article's expected errors, and no request may leave the machine. On the pages a reader acts on
   (the landing page, the recipe, a strategy chapter) and on the chapters of issue 12: every link to an
   anchor in the book lands on an element with that id, every figure download link names a file that
   exists, and no visible code cell is longer than 20 lines (the article's verbatim code excepted).
   Screenshots go to ``artifacts/screenshots/``.
"""

import json
import os
import re
import shutil
import subprocess
import sys
import time
import xml.etree.ElementTree as ET
from pathlib import Path
from urllib.parse import unquote, urlsplit

import nbformat
import pytest
import yaml

from bookdriver.paths import book_paths
from bookdriver.stage import source_of, toc_files

pytestmark = pytest.mark.slow

REPO = Path(__file__).resolve().parents[1]
PATHS = book_paths("smoke", REPO)
ARTIFACTS = REPO / "artifacts"
BUILD = [sys.executable, "-m", "bookdriver", "build", "--profile", "smoke"]
CHROMIUM_FLAGS = [
    "--headless",
    "--no-sandbox",
    "--disable-gpu",
    "--disable-background-networking",
    "--disable-component-update",
    "--no-first-run",
    "--disable-sync",
]
# Pages a reader acts on (the landing page, the recipe, a strategy chapter) and the non-strategy chapters:
# links, downloads and cell lengths are checked there.
READER_PAGES = [
    "01_background",
    "10_recipe",
    "07_optimizers",
    "02_core_concepts",
    "03_objective",
    "12_code_example",
    "13_outlook",
    "14_faq",
]
# Pages opened in the browser: those, a second strategy chapter, the findings, the figure index and the appendix.
PAGES = [*READER_PAGES, "04_batch_size", "11_tuning", "16_findings", "18_figures", "19_reproducing"]
MATH_PAGES = {"02_core_concepts", "03_objective", "14_faq"}
MAX_CELL_LINES = 20  # of a visible code cell
VERBATIM_TAG = "article-code"  # the source article's code, shown as printed (09): exempt from the length limit
CHATTER = ("oneDNN", "absl", "Kernel is running over TCP")  # kernel start-up noise that belongs in the logs
# None: sphinx-thebe's config constant, declared twice under Sphinx 7.4, is loaded once (_ext/book_assets.py).
KNOWN_SCRIPT_ERRORS = ()


def _build(log_name: str) -> tuple[subprocess.CompletedProcess, float]:
    """The smoke build, waiting while another of this tree runs: under ``make test``'s two workers,
    test_built_verdicts may start the same build in the other worker (this one then uses its cache)."""
    t0 = time.perf_counter()
    while True:
        proc = subprocess.run(BUILD, cwd=REPO, capture_output=True, text=True, timeout=1800)
        if proc.returncode == 0 or "another build of this tree is running" not in proc.stderr:
            break
        if time.perf_counter() - t0 > 3600:  # a failure bound, never reached by a build that ends
            break
        time.sleep(2)
    seconds = time.perf_counter() - t0
    ARTIFACTS.mkdir(exist_ok=True)
    (ARTIFACTS / log_name).write_text(proc.stdout + proc.stderr)
    return proc, seconds


def _toc_pages() -> list[str]:
    toc = yaml.safe_load((REPO / "_toc.yml").read_text())
    return [e for e in toc_files(toc) if source_of(REPO, e) is not None]


@pytest.fixture(scope="module")
def smoke_build():
    """One smoke build of the whole book (all chapters executed unless the cache already holds them)."""
    proc, seconds = _build("book-smoke.log")
    if proc.returncode != 0:
        logs = PATHS.out / "logs"
        reports = sorted(PATHS.reports.glob("**/*.log")) if PATHS.reports.exists() else []
        reports += sorted(logs.glob("*.log")) if logs.exists() else []
        detail = "\n".join(f"--- {r.name}\n{r.read_text()[-3000:]}" for r in reports)
        pytest.fail(f"smoke build failed (exit {proc.returncode}):\n{proc.stderr[-6000:]}\n{detail}")
    return {"seconds": seconds, "log": proc.stdout + proc.stderr}


def test_the_smoke_build_builds_every_page_of_the_toc(smoke_build):
    """Every toc entry has an HTML page, and no execution report was left."""
    for entry in _toc_pages():
        assert (PATHS.html / f"{entry}.html").exists(), entry
    reports = sorted(PATHS.reports.glob("**/*.log")) if PATHS.reports.exists() else []
    assert reports == [], f"execution reports were left: {[r.name for r in reports]}"


def test_every_notebook_chapter_was_executed(smoke_build):
    """Each notebook chapter left its glue record (written when its executed outputs were read)."""
    for entry in _toc_pages():
        if source_of(REPO, entry).suffix == ".ipynb":
            assert (PATHS.executed / f"{entry}.glue.json").exists(), f"{entry} was not executed"


def test_the_build_console_shows_no_kernel_chatter(smoke_build):
    """TensorFlow's and ipykernel's start-up lines go to the chapters' logs, not to the build's console."""
    found = [word for word in CHATTER if word in smoke_build["log"]]
    assert found == [], f"kernel chatter on the console: {found}"
    assert (PATHS.out / "logs").is_dir()


def _words_in_svg(path: Path) -> list[str]:
    """The text of a matplotlib SVG's axes (axis labels, tick labels) and legends."""
    ns = "{http://www.w3.org/2000/svg}"
    texts = []
    for g in ET.parse(path).getroot().iter(f"{ns}g"):
        if g.get("id", "").startswith(("matplotlib.axis", "legend")):
            texts += ["".join(t.itertext()) for t in g.iter(f"{ns}text")]
    return texts


def test_every_figure_labels_its_axes_in_words_not_identifiers(smoke_build):
    """No axis label, tick label or legend text of any built figure contains an underscore identifier
    (``test_elbo``, ``batch_size``, ``B_crit``): the SVGs keep their text as text, so it can be read."""
    svgs = sorted(PATHS.figures.glob("*.svg"))
    assert len(svgs) >= 10
    identifier = re.compile(r"[A-Za-z0-9]_[A-Za-z0-9]")
    bad = {p.name: sorted({t for t in _words_in_svg(p) if identifier.search(t)}) for p in svgs}
    assert {name: texts for name, texts in bad.items() if texts} == {}
    assert any(_words_in_svg(p) for p in svgs)  # the parser found text at all


def test_pages_show_the_injected_parameters(smoke_build):
    """A chapter built with profile values shows them in a cell below its parameters cell."""
    page = (PATHS.html / "chapters" / "02_core_concepts.html").read_text()
    assert "Parameters injected by the book driver" in page and "epochs" in page
    assert "tag_injected-parameters" in page


def test_figures_are_downloadable_as_svg_and_png_with_provenance(smoke_build):
    """Every published figure is in _static/figures as SVG and PNG, its caption naming the code version."""
    index = json.loads((PATHS.figures / "index.json").read_text())
    names = {f["name"] for f in index}
    assert {"core-latent", "objective-iwae", "code-article-runs", "faq-grid"} <= names
    for f in index:
        for file in f["files"]:
            assert (PATHS.figures / file).stat().st_size > 0, file
        if f["caption"]:
            assert "Code: vae_utils" in f["caption"], f["name"]
    assert {"core-latent.svg", "core-latent.png"} <= {p.name for p in PATHS.figures.iterdir()}


def test_a_rebuild_without_changes_executes_nothing(smoke_build):
    """The second build finds every chapter in the execution cache; it runs no kernel, and with no
    staged file changed it does not run Sphinx either."""
    proc, seconds = _build("book-smoke-rebuild.log")
    assert proc.returncode == 0, proc.stderr[-4000:]
    log = proc.stdout + proc.stderr
    assert "[book] 0 chapters executed" in log, log[-2000:]
    assert "the HTML is current (Sphinx not run)" in log, log[-2000:]
    assert "Executing notebook" not in (PATHS.out / "logs" / "sphinx.log").read_text()
    print(f"no-change smoke rebuild: {seconds:.1f} s (first build {smoke_build['seconds']:.1f} s)")


# ---------------------------------------------------------------- a real browser


def test_every_outcome_on_every_built_page_matches_verdicts_json(smoke_build):
    """Boxes, landing answers, Findings, Recipe, conclusion, at-scale table: every outcome a page shows
    (``data-claim`` links and ``verdict-<id>`` boxes) is the one verdicts.json holds for that claim."""
    from bookdriver.consistency import outcome_problems

    problems, seen = outcome_problems(PATHS.html)
    assert problems == []
    boxes = sum(p.read_text().count('id="verdict-') for p in PATHS.html.glob("chapters/*.html"))
    assert boxes >= len(json.loads((PATHS.html / "_static" / "verdicts.json").read_text()))  # every box is read
    assert seen > 2 * len(json.loads((PATHS.html / "_static" / "verdicts.json").read_text()))  # boxes and lines


def test_every_verdicts_scope_matches_the_runs_its_chapter_used(smoke_build):
    """A scope's dataset, epochs, batch sizes and seeds are those of runs in the run tables."""
    from bookdriver.consistency import scope_problems

    assert scope_problems(PATHS.html) == []


def test_every_quantity_a_page_names_was_published_by_a_chapter(smoke_build):
    """With every chapter executed, no page reads "not measured in this build": each {{ q_<id> }} exists."""
    missing = [
        p.stem for p in sorted(PATHS.html.glob("chapters/*.html")) if "not measured in this build" in p.read_text()
    ]
    assert missing == []


def test_a_contradiction_between_a_page_and_verdicts_json_is_found(smoke_build, tmp_path):
    """The check can fail: a copy of the book whose landing page states another outcome is caught."""
    from bookdriver.consistency import outcome_problems

    shutil.copytree(PATHS.html, tmp_path / "html")
    landing = tmp_path / "html" / "chapters" / "01_background.html"
    text = landing.read_text(encoding="utf-8")
    m = re.search(r'data-outcome="([^"]+)"([^>]*)>([^<]*)<', text)
    assert m, "the landing page shows outcomes"
    forged = text.replace(m.group(0), f'data-outcome="{m.group(1)}"{m.group(2)}>a forged outcome<', 1)
    landing.write_text(forged, encoding="utf-8")
    box_page = next(
        p for p in sorted((tmp_path / "html" / "chapters").glob("*.html")) if 'id="verdict-' in p.read_text()
    )
    text = box_page.read_text(encoding="utf-8")
    b = re.search(r'id="verdict-([^"]+)">.*?<strong>([^<]*)</strong>', text, re.S)
    box_page.write_text(text[: b.start(2)] + "Forged." + text[b.end(2) :], encoding="utf-8")
    problems, _ = outcome_problems(tmp_path / "html")
    assert any("01_background" in p and "a forged outcome" in p for p in problems)
    assert any(f"the box of {b.group(1)} reads 'forged'" in p for p in problems)


@pytest.fixture(scope="module")
def chromium():
    """Path of Debian's chromium, installed by .ci/install-chromium when missing."""
    exe = shutil.which("chromium")
    if exe is None:
        proc = subprocess.run(["bash", str(REPO / ".ci" / "install-chromium")], capture_output=True, text=True)
        exe = shutil.which("chromium")
        if exe is None:
            pytest.skip(f"chromium is not installed and could not be installed: {proc.stderr.strip()[-300:]}")
    return exe


@pytest.fixture(scope="module")
def browser_pages(smoke_build, chromium, tmp_path_factory):
    """Open each page in headless Chromium; return what the page showed, with screenshots kept."""
    from playwright.sync_api import sync_playwright

    shots = ARTIFACTS / "screenshots"
    shots.mkdir(parents=True, exist_ok=True)
    results = {}
    with sync_playwright() as pw:
        context = pw.chromium.launch_persistent_context(
            str(tmp_path_factory.mktemp("chromium-profile")),  # a fresh --user-data-dir
            executable_path=chromium,
            headless=True,
            args=CHROMIUM_FLAGS,
            viewport={"width": 1280, "height": 900},
        )
        external = []  # any request that is not a local file is recorded and refused
        context.route(
            lambda url: not url.startswith("file://"), lambda route: (external.append(route.request.url), route.abort())
        )
        page = context.new_page()
        errors = []
        page.on("pageerror", lambda e: errors.append(str(e)) if str(e) not in KNOWN_SCRIPT_ERRORS else None)
        page.on("console", lambda m: errors.append(m.text) if m.type == "error" and "net::" not in m.text else None)
        for stem in PAGES:
            path = PATHS.html / "chapters" / f"{stem}.html"
            if not path.exists():
                continue
            errors.clear()
            page.goto(path.as_uri(), wait_until="load")
            # MathJax typesets after load; its startup promise resolves when the page is done.
            page.evaluate("() => (window.MathJax && window.MathJax.startup) ? window.MathJax.startup.promise : null")
            results[stem] = page.evaluate(
                """() => {
                  const imgs = [...document.querySelectorAll('article img')];
                  const errorOutputs = [...document.querySelectorAll('.output.traceback, .output.error')]
                      .filter(el => !el.closest('.tag_raises-exception'));
                  return {
                    images: imgs.length,
                    broken: imgs.filter(i => !(i.complete && i.naturalWidth > 0)).map(i => i.getAttribute('src')),
                    math: document.querySelectorAll('mjx-container').length,
                    mathErrors: document.querySelectorAll('mjx-merror, [data-mjx-error]').length,
                    rawDollars: document.querySelector('article').innerText.includes('$$'),
                    unexpectedErrors: errorOutputs.length,
                    expectedErrors: document.querySelectorAll('.tag_raises-exception .output.traceback').length,
                    problems: document.querySelectorAll('.problematic, .system-message').length,
                  };
                }"""
            )
            results[stem].update(page.evaluate(READER_JS, VERBATIM_TAG))
            results[stem]["script_errors"] = list(errors)
            if stem == "16_findings":
                results[stem]["filter"] = page.evaluate(FINDINGS_FILTER_JS)
            page.screenshot(path=str(shots / f"{stem}.png"), full_page=True)
        results["_external_requests"] = list(external)
        context.close()
    return results


FINDINGS_FILTER_JS = """() => {
  const table = document.querySelector('table.vae-findings-table');
  const select = document.querySelector('.vae-findings-filter select');
  if (!table || !select || select.options.length < 2) return null;
  const rows = [...table.tBodies[0].rows];
  const want = select.options[1].value;
  select.value = want;
  select.dispatchEvent(new Event('change'));
  const shown = rows.filter(r => !r.hidden);
  return {rows: rows.length, shown: shown.length, want, onlyThat: shown.every(r => r.dataset.outcome === want),
          expected: rows.filter(r => r.dataset.outcome === want).length};
}"""

READER_JS = """(verbatim) => {
  const article = document.querySelector('article') || document.body;
  const cells = [...article.querySelectorAll('div.cell')]
      .filter(c => !c.classList.contains('tag_' + verbatim))
      .map(c => c.querySelector('.cell_input pre'))
      .filter(pre => pre && pre.checkVisibility())  // a hide-input cell is folded away
      .map(pre => ({lines: pre.innerText.replace(/\\n+$/, '').split('\\n').length, start: pre.innerText.slice(0, 60)}));
  const outside = article.cloneNode(true);  // the page's text outside the deliberate errors
  outside.querySelectorAll('.tag_raises-exception').forEach(e => e.remove());
  const text = outside.textContent;
  return {
    anchors: [...document.querySelectorAll('a[href*="#"]')].map(a => a.href),
    downloads: [...article.querySelectorAll('a[href*="_static/figures/"], a[href*="_static/tables/"]')].map(a => a.href),
    cells: cells,
    shouting: ['Traceback', 'WARNING'].filter(w => text.includes(w)),
  };
}"""


def _book_file(href: str) -> Path | None:
    """The file of the built book that a file:// link points to, or None for a link out of the book."""
    parts = urlsplit(href)
    path = Path(unquote(parts.path))
    return path if parts.scheme == "file" and path.is_relative_to(PATHS.html) else None


def _ids(path: Path, cache: dict) -> set:
    if path not in cache:
        cache[path] = set(re.findall(r'\bid="([^"]+)"', path.read_text(errors="replace"))) if path.is_file() else set()
    return cache[path]


def test_every_anchor_link_lands_on_an_element_with_that_id(browser_pages):
    """On the reader's pages (the findings list of the landing page included), every ``a[href*="#"]``
    into the book names a page that exists and an id on it."""
    cache, broken = {}, {}
    for stem in READER_PAGES:
        for href in browser_pages[stem]["anchors"]:
            path, fragment = _book_file(href), unquote(urlsplit(href).fragment)
            if path is not None and fragment and fragment not in _ids(path, cache):
                broken.setdefault(stem, []).append(href.split("/html/", 1)[-1])
    assert broken == {}
    assert len(browser_pages["01_background"]["anchors"]) > 5  # the findings list links its sections


def test_the_findings_table_filters_by_outcome_in_chromium(browser_pages):
    f = browser_pages["16_findings"]["filter"]
    assert f is not None and f["rows"] > 5
    assert f["onlyThat"] and f["shown"] == f["expected"] > 0


def test_every_figure_download_link_returns_a_file(browser_pages):
    """The SVG, PNG and CSV links under each figure's and table's caption (and the run tables) point at
    files the build wrote; every figure on these pages links all three."""
    missing = {
        stem: [
            h
            for h in browser_pages[stem]["downloads"]
            if not ((p := _book_file(h)) and p.is_file() and p.stat().st_size)
        ]
        for stem in READER_PAGES
    }
    assert {stem: hrefs for stem, hrefs in missing.items() if hrefs} == {}
    assert all(h.endswith((".svg", ".png", ".csv")) for stem in READER_PAGES for h in browser_pages[stem]["downloads"])
    for stem in READER_PAGES:
        figures = {h.rsplit("/", 1)[1].rsplit(".", 1)[0] for h in browser_pages[stem]["downloads"] if "/figures/" in h}
        links = set(browser_pages[stem]["downloads"])
        lacking = [
            n for n in figures if not all(any(h.endswith(f"/{n}.{k}") for h in links) for k in ("svg", "png", "csv"))
        ]
        assert lacking == [], (stem, lacking)
    assert any("/tables/opt-runs.csv" in h for h in browser_pages["07_optimizers"]["downloads"])
    assert (
        len(browser_pages["07_optimizers"]["downloads"]) >= 4
        and len(browser_pages["02_core_concepts"]["downloads"]) >= 8
    )


def test_no_visible_code_cell_is_longer_than_twenty_lines(browser_pages):
    """Bookkeeping is removed from the page; what a reader sees of the code is short (the article's
    verbatim code, tagged ``article-code``, excepted)."""
    long_cells = {
        stem: [c for c in browser_pages[stem]["cells"] if c["lines"] > MAX_CELL_LINES] for stem in READER_PAGES
    }
    assert {stem: cells for stem, cells in long_cells.items() if cells} == {}
    assert browser_pages["02_core_concepts"]["cells"]  # the parameters and demonstration cells stay visible


def test_no_page_shows_a_traceback_or_a_warning_outside_the_deliberate_errors(browser_pages):
    """No "Traceback" or "WARNING" text on any page opened, except inside the cells tagged raises-exception."""
    shouting = {stem: r["shouting"] for stem, r in browser_pages.items() if stem in PAGES and r["shouting"]}
    assert shouting == {}


def test_every_image_loads_in_chromium(browser_pages):
    for stem in PAGES:
        if stem in browser_pages:
            assert browser_pages[stem]["broken"] == [], (stem, browser_pages[stem]["broken"])
    assert browser_pages["02_core_concepts"]["images"] >= 4


def test_math_is_typeset_by_the_bundled_mathjax(browser_pages):
    for stem in MATH_PAGES & set(browser_pages):
        r = browser_pages[stem]
        assert r["math"] > 0, f"{stem}: no mjx-container"
        assert r["mathErrors"] == 0, stem
        assert not r["rawDollars"], f"{stem}: raw $$ left in the text"


def test_no_page_shows_an_error_except_the_articles_expected_ones(browser_pages):
    for stem in PAGES:
        if stem in browser_pages:
            r = browser_pages[stem]
            assert r["unexpectedErrors"] == 0 and r["problems"] == 0, (stem, r)
            assert r["script_errors"] == [], (stem, r["script_errors"])
    assert browser_pages["12_code_example"]["expectedErrors"] == 2  # AttributeError, then TypeError


def test_the_pages_make_no_network_request(browser_pages):
    """Offline-capable: MathJax, fonts and scripts all come from the built folder."""
    assert browser_pages["_external_requests"] == []


def test_a_chapter_runs_under_the_plain_papermill_cli_with_overrides(tmp_path):
    """From the repository root, `papermill chapter out -p name value` runs a chapter with the new values."""
    out = tmp_path / "outlook.ipynb"
    cmd = [str(Path(sys.executable).parent / "papermill"), "chapters/13_outlook.ipynb", str(out)]
    cmd += ["-y", "batch_sizes: [32, 128]", "-p", "epochs", "2", "--cwd", str(REPO)]
    env = dict(os.environ, VAE_BOOK_FIGURES=str(tmp_path / "figures"))
    proc = subprocess.run(cmd, cwd=REPO, env=env, capture_output=True, text=True, timeout=600)
    assert proc.returncode == 0, proc.stderr[-3000:]

    nb = nbformat.read(out, as_version=4)
    injected = [c for c in nb.cells if "injected-parameters" in c.metadata.get("tags", [])]
    assert injected and "batch_sizes = [32, 128]" in injected[0].source
    glued = {
        o["metadata"]["scrapbook"]["name"]: o["data"]
        for c in nb.cells
        if c.cell_type == "code"
        for o in c.get("outputs", [])
        if "scrapbook" in o.get("metadata", {})
    }
    assert glued["outlook-n-sizes"]["application/papermill.record/text/plain"] == "'2'"
