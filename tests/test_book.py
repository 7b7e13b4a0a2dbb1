"""The book, end to end: the smoke profile builds every chapter, and the pages work in a real browser.

Run: ``.venv/bin/pytest tests/test_book.py`` (a few minutes: every chapter is executed with tiny grids).

1) ``python -m bookdriver build --profile smoke`` (what ``make book-smoke`` runs) must succeed with
   warnings as errors; its log is kept in ``artifacts/book-smoke.log``.
2) The built pages are opened in Debian's headless ``chromium`` (installed by ``.ci/install-chromium``
   when missing; the browser tests skip, saying why, only when it cannot be installed), driven by
   Playwright without downloading any browser. Every image must have loaded, math must be typeset by
   the bundled MathJax, no page may show an error other than the article's expected ones, and no
   request may leave the machine. Screenshots go to ``artifacts/screenshots/``.
"""

import json
import os
import shutil
import subprocess
import sys
import time
from pathlib import Path

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
# Pages opened in the browser: the landing page, a chapter with figures, the math-heavy chapter, the
# chapter that shows the article's errors on purpose, one strategy chapter, and the appendix.
PAGES = ["01_background", "02_core_concepts", "03_objective", "09_code_example", "04_batch_size", "14_reproducing"]
MATH_PAGES = {"02_core_concepts", "03_objective", "11_faq"}
# sphinx-thebe (loaded by Jupyter Book, thebe itself disabled) declares its config constant twice
# under Sphinx 7.4; harmless: thebe only loads on a launch button, which this book does not show.
KNOWN_SCRIPT_ERRORS = ("Identifier 'THEBE_JS_URL' has already been declared",)


def _build(log_name: str) -> tuple[subprocess.CompletedProcess, float]:
    t0 = time.perf_counter()
    proc = subprocess.run(BUILD, cwd=REPO, capture_output=True, text=True, timeout=1800)
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
        reports = sorted(PATHS.reports.glob("**/*.log")) if PATHS.reports.exists() else []
        detail = "\n".join(f"--- {r.name}\n{r.read_text()[-3000:]}" for r in reports)
        pytest.fail(f"smoke build failed (exit {proc.returncode}):\n{proc.stderr[-6000:]}\n{detail}")
    return {"seconds": seconds, "log": proc.stdout + proc.stderr}


def test_the_smoke_build_builds_every_page_of_the_toc(smoke_build):
    """Every toc entry has an HTML page, and no execution report was left."""
    for entry in _toc_pages():
        assert (PATHS.html / f"{entry}.html").exists(), entry
    assert not list(PATHS.reports.glob("**/*.log")) if PATHS.reports.exists() else True


def test_every_notebook_chapter_was_executed(smoke_build):
    """Each notebook chapter left its glue record (written when its executed outputs were read)."""
    for entry in _toc_pages():
        if source_of(REPO, entry).suffix == ".ipynb":
            assert (PATHS.executed / f"{entry}.glue.json").exists(), f"{entry} was not executed"


def test_pages_show_the_injected_parameters(smoke_build):
    """A chapter built with profile values shows them in a cell below its parameters cell."""
    page = (PATHS.html / "chapters" / "02_core_concepts.html").read_text()
    assert "Parameters injected by the book driver" in page and "epochs" in page
    assert "tag_injected-parameters" in page


def test_figures_are_downloadable_as_svg_and_png_with_provenance(smoke_build):
    """Every published figure is in _static/figures as SVG and PNG, its caption naming the code version."""
    index = json.loads((PATHS.figures / "index.json").read_text())
    names = {f["name"] for f in index}
    assert {"core-latent", "objective-iwae", "code-gaussian-history", "faq-grid"} <= names
    for f in index:
        for file in f["files"]:
            assert (PATHS.figures / file).stat().st_size > 0, file
        if f["caption"]:
            assert "Code: vae_utils" in f["caption"], f["name"]
    assert {"core-latent.svg", "core-latent.png"} <= {p.name for p in PATHS.figures.iterdir()}


def test_a_rebuild_without_changes_executes_nothing(smoke_build):
    """The second build finds every chapter in the execution cache; it runs no kernel."""
    proc, seconds = _build("book-smoke-rebuild.log")
    assert proc.returncode == 0, proc.stderr[-4000:]
    log = proc.stdout + proc.stderr
    assert "Executing notebook" not in log and "[book] executing" not in log
    print(f"no-change smoke rebuild: {seconds:.1f} s (first build {smoke_build['seconds']:.1f} s)")


# ---------------------------------------------------------------- a real browser


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
            results[stem]["script_errors"] = list(errors)
            page.screenshot(path=str(shots / f"{stem}.png"), full_page=True)
        results["_external_requests"] = list(external)
        context.close()
    return results


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
    assert browser_pages["09_code_example"]["expectedErrors"] == 2  # AttributeError, then TypeError


def test_the_pages_make_no_network_request(browser_pages):
    """Offline-capable: MathJax, fonts and scripts all come from the built folder."""
    assert browser_pages["_external_requests"] == []


def test_a_chapter_runs_under_the_plain_papermill_cli_with_overrides(tmp_path):
    """From the repository root, `papermill chapter out -p name value` runs a chapter with the new values."""
    out = tmp_path / "outlook.ipynb"
    cmd = [str(Path(sys.executable).parent / "papermill"), "chapters/10_outlook.ipynb", str(out)]
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
    assert glued["n-sizes"]["application/papermill.record/text/plain"] == "'2'"
