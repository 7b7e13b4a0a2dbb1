"""The at-scale chapter (chapters/09_at_scale.ipynb) under the plain papermill CLI, with and without its data.

The book must build on a machine without Fashion-MNIST: the chapter then executes, says what it needs, and
publishes every verdict as "not testable". It must also paste exactly the same glue keys in both cases,
because the page's Markdown pastes them all and a missing key fails the book build. The data-missing case
is made with ``dataset=mnist`` and an empty Keras cache: the chapter's check (``vae_utils.core.data.available``)
is the same for both 28x28 datasets, and Debian's Fashion-MNIST directory cannot be hidden from a kernel.

The run with the data is the smoke build's (``tests/test_book.py``'s fixture, reused when built): executing the
chapter again here, on a Dask cluster, took about four minutes of a test worker. The sweeps' Dask path is tested
on a real cluster in ``tests/test_sweeps_faults.py``; that the chapter hands ``scheduler`` to each sweep is
checked below.
"""

import json
import os
import re
import subprocess
import sys
from pathlib import Path

import nbformat
import pytest
from test_book import PATHS, smoke_build  # noqa: F401 (the fixture: one smoke build, reused when cached)

from vae_utils.claims import records
from vae_utils.claims.verdicts import MIME_TYPE
from vae_utils.core import data

pytestmark = pytest.mark.slow  # the chapter under papermill

REPO = Path(__file__).resolve().parents[1]
CHAPTER = "chapters/09_at_scale.ipynb"
SMOKE = REPO / "profiles" / "smoke" / "09_at_scale.yaml"
GLUE = "application/papermill.record/"


def _glued(path: Path) -> dict:
    """An executed notebook's glued outputs by key."""
    nb = nbformat.read(path, as_version=4)
    return {
        o["metadata"]["scrapbook"]["name"]: o["data"]
        for c in nb.cells
        if c.cell_type == "code"
        for o in c.get("outputs", [])
        if "scrapbook" in o.get("metadata", {})
    }


def _execute(tmp_path: Path, name: str, *args: str, **env: str) -> dict:
    """Run the chapter with the smoke profile (and ``args``) in a fresh results store; its glued outputs by key."""
    out = tmp_path / f"{name}.ipynb"
    cmd = [str(Path(sys.executable).parent / "papermill"), CHAPTER, str(out), "-f", str(SMOKE), *args]
    cmd += ["--cwd", str(REPO / "chapters")]
    environ = dict(os.environ, VAE_RESULTS_DIR=str(tmp_path / "results"), VAE_BOOK_FIGURES="", **env)
    proc = subprocess.run(cmd, cwd=REPO, env=environ, capture_output=True, text=True, timeout=900)
    assert proc.returncode == 0, proc.stderr[-3000:]
    return _glued(out)


def _verdicts(glued: dict) -> dict:
    return {k[: -len("-json")]: d[GLUE + MIME_TYPE] for k, d in glued.items() if GLUE + MIME_TYPE in d}


@pytest.fixture(scope="module")
def missing(tmp_path_factory):
    tmp = tmp_path_factory.mktemp("missing")
    (tmp / "keras").mkdir()
    return _execute(tmp, "missing", "-p", "dataset", "mnist", KERAS_HOME=str(tmp / "keras"))


def test_without_its_data_the_chapter_executes_and_every_verdict_is_not_testable_with_the_reason(missing):
    """Every claim of the table, each "not testable", whose reason says the data are missing; the note says so too."""
    verdicts = _verdicts(missing)
    assert sorted(verdicts) == sorted(r.id for r in records.load("09_at_scale")) and len(verdicts) == 8
    for v in verdicts.values():
        v = json.loads(v) if isinstance(v, str) else v
        assert v["outcome"] == "not testable"
        assert "the data are missing" in v["reason"] and "mnist is not installed" in v["reason"]
    note = missing["fm-data-note"][GLUE + "text/markdown"]
    assert "{warning}" in note and "every verdict reads *not testable*" in note


def test_without_its_data_the_page_states_the_design_and_marks_every_measured_value_as_missing(missing):
    """What the parameters say is still stated (256 training images in the smoke profile); what only
    the runs could say reads "n/a (no data)", and each figure says why it is empty."""
    text = lambda key: missing[key][GLUE + "text/plain"].strip("'")
    assert text("fm-n-train") == "256" and text("fm-n-seeds-max") == "2"
    assert text("fm-nll") == text("fm-lr-interior") == text("fm-bs-gap-note") == "n/a (no data)"
    assert "the data are missing" in missing["fm-batch-caption"][GLUE + "text/plain"]


@pytest.mark.skipif(data.available("fashion_mnist") is None, reason="Fashion-MNIST is not installed")
def test_with_and_without_its_data_the_chapter_pastes_the_same_glue_keys(missing, smoke_build):  # noqa: F811
    """The smoke build's run on Fashion-MNIST glues exactly the keys of the data-missing run (so both pages build),
    and each of its verdicts' scopes is computed from the runs it judged."""
    with_data = _glued(PATHS.src / CHAPTER)
    assert set(with_data) == set(missing)
    assert "read from" in with_data["fm-data-note"][GLUE + "text/markdown"]
    for v in _verdicts(with_data).values():  # each scope computed from the runs the verdict judged
        v = json.loads(v) if isinstance(v, str) else v
        assert v["scope"].startswith("Fashion-MNIST (256 training images") and "2 seeds (0–1)" in v["scope"]


def test_every_sweep_of_the_chapter_gets_the_scheduler_parameter():
    """``-p scheduler tcp://…`` reaches every sweep: each ``sweep(…)`` call of the chapter passes ``**run``, the
    dict that holds ``scheduler``."""
    code = "\n".join(c.source for c in nbformat.read(REPO / CHAPTER, as_version=4).cells if c.cell_type == "code")
    assert "run = default_store(store), dict(workers=workers or None, scheduler=scheduler or None)" in code
    calls = re.findall(r"\bsweep\((.*)\)", code)
    assert calls and all(c.endswith("**run") for c in calls), calls
