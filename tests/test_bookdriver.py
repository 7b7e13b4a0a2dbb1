"""The book driver's fast parts (``bookdriver``): parameters, staging, figure extraction.

Run: ``.venv/bin/pytest tests/test_bookdriver.py`` (seconds; no kernel, no Sphinx). The whole build
is exercised by ``test_book.py``.
"""

import base64
import json
import subprocess
import sys
from pathlib import Path

import matplotlib

matplotlib.use("Agg")
import matplotlib.pyplot as plt
import nbformat
import pytest

from bookdriver.figure_index import THUMB_PX, collect_figures, out_of_bounds, png_size
from bookdriver.params import load_parameters
from bookdriver.paths import book_paths
from bookdriver.stage import MARKER, stage
from vae_utils.experiments.template import notebook_parameters
from vae_utils.publish.figures import figure_bytes

REPO = Path(__file__).resolve().parents[1]
PARAMETERS = """epochs: int = 30  # passes
name: str = "digits"  # the data
rates: list = [0.001, 0.004]  # learning rates
batch_size: int = 64  # examples per update
store: str = "strategies"  # results store"""


def _tiny_book(root: Path) -> Path:
    """A three-page book: a Markdown root and two notebooks with a parameters cell each."""
    (root / "chapters").mkdir(parents=True)
    (root / "_config.yml").write_text("title: t\nexecute:\n  timeout: 60\n")
    (root / "references.bib").write_text("")
    (root / "_static").mkdir()
    (root / "_static" / "custom.css").write_text("")  # the book's styles: staged like _config.yml
    (root / "_toc.yml").write_text(
        "format: jb-book\nroot: chapters/intro\nparts:\n  - caption: P\n    chapters:\n"
        "      - file: chapters/nb\n      - file: chapters/other\n      - file: chapters/missing\n"
    )
    (root / "chapters" / "intro.md").write_text("# Intro\n")
    for stem in ("nb", "other"):
        nb = nbformat.v4.new_notebook(
            metadata={"kernelspec": {"name": "python3", "language": "python", "display_name": "P"}}
        )
        nb.cells = [
            nbformat.v4.new_code_cell(PARAMETERS, metadata={"tags": ["parameters"]}),
            nbformat.v4.new_code_cell("print(epochs)"),
        ]
        nbformat.write(nb, root / "chapters" / f"{stem}.ipynb")
    (root / "profiles" / "smoke").mkdir(parents=True)
    (root / "profiles" / "smoke" / "nb.yaml").write_text("epochs: 2\n")
    return root


def _staged(paths, stem="nb"):
    return nbformat.read(paths.src / "chapters" / f"{stem}.ipynb", as_version=4)


def test_staging_injects_profile_parameters_after_the_parameters_cell(tmp_path):
    """The staged notebook gets an injected-parameters cell with the profile's values; the source is untouched."""
    root = _tiny_book(tmp_path)
    paths = book_paths("smoke", root)
    effective = stage(paths, load_parameters("smoke", None, root), "profile smoke", verbose=False)
    assert effective["nb"] == {
        "epochs": 2,
        "name": "digits",
        "rates": [0.001, 0.004],
        "batch_size": 64,
        "store": "strategies",
    }
    staged = _staged(paths)
    assert staged.cells[1].metadata.tags == ["injected-parameters", "hide-input"]  # folded: it overrides values
    assert "epochs = 2" in staged.cells[1].source and "built_with_vae_utils" in staged.cells[1].source
    assert len(nbformat.read(root / "chapters" / "nb.ipynb", as_version=4).cells) == 2
    assert "chapters/missing" not in (paths.src / "_toc.yml").read_text()  # missing chapters are skipped
    assert (paths.src / "_extra" / "mathjax" / "tex-chtml.js").exists()  # MathJax bundled, no CDN


def test_staging_twice_rewrites_nothing(tmp_path):
    """An unchanged book stages to unchanged files (same mtimes), so Sphinx re-reads and re-executes nothing."""
    root = _tiny_book(tmp_path)
    paths = book_paths("smoke", root)
    stage(paths, load_parameters("smoke", None, root), verbose=False)
    before = {p: p.stat().st_mtime_ns for p in paths.src.rglob("*") if p.is_file()}
    stage(paths, load_parameters("smoke", None, root), verbose=False)
    assert {p: p.stat().st_mtime_ns for p in paths.src.rglob("*") if p.is_file()} == before


def test_a_parameter_file_for_one_chapter_changes_only_that_chapters_staged_notebook(tmp_path):
    """The injected cell names neither the profile nor the file: another chapter's code stays byte-identical,
    so the execution cache re-executes the one chapter whose parameters changed."""
    root = _tiny_book(tmp_path)
    paths = book_paths("full", root)
    stage(paths, load_parameters("full", None, root), "profile full", verbose=False)
    before = {p.name: p.read_bytes() for p in (paths.src / "chapters").glob("*.ipynb")}
    (tmp_path / "my.yaml").write_text("nb:\n  epochs: 10\n")
    stage(paths, load_parameters("full", tmp_path / "my.yaml", root), "profile full, file my.yaml", verbose=False)
    after = {p.name: p.read_bytes() for p in (paths.src / "chapters").glob("*.ipynb")}
    assert after["other.ipynb"] == before["other.ipynb"]
    assert after["nb.ipynb"] != before["nb.ipynb"]


def test_a_chapter_does_not_open_with_the_drivers_injected_cell(tmp_path):
    """Without overrides the injected cell (only the code version) is removed from the page; with
    overrides it is folded (hide-input), so the page opens with the chapter's own parameters."""
    root = _tiny_book(tmp_path)
    paths = book_paths("full", root)
    stage(paths, load_parameters("full", None, root), "profile full", verbose=False)
    assert _staged(paths).cells[1].metadata.tags == ["injected-parameters", "remove-cell"]
    stage(paths, load_parameters("smoke", None, root), "profile smoke", verbose=False)
    assert "hide-input" in _staged(paths).cells[1].metadata.tags


def test_a_reader_file_overrides_the_profile(tmp_path):
    root = _tiny_book(tmp_path)
    (tmp_path / "my.yaml").write_text("nb:\n  epochs: 7\n")
    assert load_parameters("smoke", tmp_path / "my.yaml", root) == {"nb": {"epochs": 7}}


@pytest.mark.parametrize(
    ("text", "message"),
    [
        ("nope:\n  epochs: 1\n", "chapter 'nope' is not known"),
        ("nb:\n  epoch: 1\n", "nb has no parameter epoch"),
        ('nb:\n  epochs: "abc"\n', "epochs='abc' is not allowed; allowed: a int"),
        ("nb:\n  epochs: -3\n", "epochs=-3 is not allowed; allowed: an integer >= 1"),
        ("nb:\n  rates: []\n", r"rates=\[\] is not allowed; allowed: a non-empty list"),
        ("nb:\n  rates: [fast]\n", r"rates\[0\]='fast' is not allowed; allowed: a float"),
        ("nb:\n  batch_size: 5000\n", "batch_size=5000 is not allowed"),
        ("nb:\n  store: ../..\n", "store: name='../..' is not allowed"),
        ("nb: [1, 2\n", "is not valid YAML at line"),
    ],
)
def test_bad_parameter_files_are_refused_before_anything_runs(tmp_path, text, message):
    """Typos, wrong types, values TrainConfig refuses and path-like stores fail naming chapter and
    value, and stage nothing."""
    root = _tiny_book(tmp_path)
    (tmp_path / "my.yaml").write_text(text)
    paths = book_paths("full", root)
    with pytest.raises(ValueError, match=message):
        stage(paths, load_parameters("full", tmp_path / "my.yaml", root), "my.yaml", verbose=False)
    assert not paths.src.exists()


def test_yaml_numbers_without_a_dot_count_as_floats(tmp_path):
    """YAML 1.1 reads 1e-3 as text; where the default is a float it is the number a reader meant."""
    root = _tiny_book(tmp_path)
    (tmp_path / "my.yaml").write_text("nb:\n  rates: [1e-3, 2e-3]\n")
    effective = stage(book_paths("full", root), load_parameters("full", tmp_path / "my.yaml", root), verbose=False)
    assert effective["nb"]["rates"] == [0.001, 0.002]


@pytest.mark.parametrize("profile", ["huge", "/tmp/somewhere", "../x", "smoke/../.."])
def test_a_profile_is_a_folder_name_of_profiles_never_a_path(tmp_path, profile):
    with pytest.raises(ValueError, match="is not known; allowed: full, smoke"):
        load_parameters(profile, None, _tiny_book(tmp_path))


def test_staging_never_prunes_a_folder_the_driver_did_not_create(tmp_path):
    """A non-empty staging folder without the driver's marker is refused, and its files survive."""
    root = _tiny_book(tmp_path)
    paths = book_paths("smoke", root)
    paths.src.mkdir(parents=True)
    (paths.src / "thesis.tex").write_text("years of work")
    (paths.src / "notes").mkdir()
    (paths.src / "notes" / "a.md").write_text("notes")
    with pytest.raises(ValueError, match="did not stage"):
        stage(paths, load_parameters("smoke", None, root), verbose=False)
    assert (paths.src / "thesis.tex").read_text() == "years of work" and (paths.src / "notes" / "a.md").exists()
    (paths.src / "thesis.tex").unlink()
    (paths.src / "notes" / "a.md").unlink()
    (paths.src / "notes").rmdir()
    stage(paths, load_parameters("smoke", None, root), verbose=False)
    assert (paths.src / MARKER).exists()


@pytest.mark.parametrize("command", ["params", "build"])
def test_the_driver_with_a_path_as_profile_exits_2_and_touches_nothing(tmp_path, command):
    """``python -m bookdriver params|build --profile /some/dir`` names the profile and writes nothing there."""
    victim = tmp_path / "victim"
    (victim / "src").mkdir(parents=True)
    (victim / "src" / "thesis.tex").write_text("keep me")
    proc = subprocess.run(
        [sys.executable, "-m", "bookdriver", command, "--profile", str(victim)],
        cwd=REPO,
        capture_output=True,
        text=True,
    )
    assert proc.returncode == 2 and "is not known" in proc.stderr and "Traceback" not in proc.stderr
    assert sorted(p.name for p in victim.rglob("*")) == ["src", "thesis.tex"]


def test_the_build_command_refuses_a_bad_parameter_file_before_staging_anything(tmp_path):
    """``python -m bookdriver build --params my.yaml`` with ``epochs: "abc"``: exit 2 naming the
    chapter, the value and what is allowed; no staged source, no build folder."""
    root = _tiny_book(tmp_path / "book")
    (tmp_path / "my.yaml").write_text('nb:\n  epochs: "abc"\n')
    cmd = [sys.executable, "-m", "bookdriver", "build", "--root", str(root), "--params", str(tmp_path / "my.yaml")]
    proc = subprocess.run(cmd, cwd=REPO, capture_output=True, text=True, timeout=120)
    assert proc.returncode == 2 and "Traceback" not in proc.stderr
    assert "my.yaml: nb: epochs='abc' is not allowed; allowed: a int" in proc.stderr
    assert not (root / "_build").exists()


def test_figures_are_extracted_from_the_glue_records(tmp_path):
    """collect_figures writes <name>.svg/.png and an index with the glued caption."""
    paths = book_paths("full", tmp_path)
    record = paths.executed / "chapters" / "x.glue.json"
    record.parent.mkdir(parents=True)
    fig, ax = plt.subplots(figsize=(2, 2))
    ax.plot([0, 1, 2], [1, 0, 1])
    svg, png = figure_bytes(fig)
    record.write_text(
        json.dumps(
            {
                "fig-a": {"data": {"image/svg+xml": svg.decode(), "image/png": base64.b64encode(png).decode()}},
                "fig-a-caption": {"data": {"text/plain": "'A caption. Files: fig-a.svg, fig-a.png.'"}},
                "fig-a-data": {"data": {"text/csv": "kind,x,y\nline,0,1\n", "text/plain": "'fig-a.csv'"}},
                "rates-data": {"data": {"text/csv": "batch size,learning rate\n32,0.001\n"}},
                "a-number": {"data": {"text/plain": "'3.14'"}},
            }
        )
    )
    found = collect_figures(paths)
    assert [f["name"] for f in found] == ["fig-a"]
    assert found[0]["caption"] == "A caption. Files: fig-a.svg, fig-a.png."
    assert found[0]["page"] == "chapters/x.html"
    assert found[0]["files"] == ["fig-a.svg", "fig-a.png", "fig-a.csv"] and found[0]["size"] == list(png_size(png))
    assert (paths.figures / "fig-a.svg").read_bytes() == svg
    assert (paths.figures / "fig-a.png").read_bytes() == png
    assert (paths.figures / "fig-a.csv").read_text() == "kind,x,y\nline,0,1\n"
    assert (paths.figures.parent / "tables" / "rates.csv").read_text().startswith("batch size,")
    assert png_size((paths.figures / "thumbs" / "fig-a.png").read_bytes())[0] <= THUMB_PX
    assert "fig-a.svg" in (paths.figures / "index.html").read_text()


def test_a_figure_outside_the_size_limits_is_named():
    """The optimizer chapter's tuning figure (954 x 14,658 px) and a thin strip are out of bounds."""
    figures = [
        {"name": "ok", "size": [977, 617]},
        {"name": "tall", "size": [954, 14658]},
        {"name": "strip", "size": [2000, 200]},
    ]
    assert out_of_bounds(figures) == {"tall": (954, 14658), "strip": (2000, 200)}


def test_a_figure_no_page_glues_any_more_is_dropped_from_the_figure_files(tmp_path):
    """A chapter that renames a figure leaves no stale file of the old name behind; other files stay."""
    paths = book_paths("full", tmp_path)
    record = paths.executed / "chapters" / "x.glue.json"
    record.parent.mkdir(parents=True)
    record.write_text(json.dumps({"fig-new": {"data": {"image/svg+xml": "<svg/>"}}}))
    paths.figures.mkdir(parents=True)
    for name in ("fig-old.svg", "fig-old.png", "notes.txt"):
        (paths.figures / name).write_text("x")
    collect_figures(paths)
    assert sorted(f.name for f in paths.figures.iterdir()) == ["fig-new.svg", "index.html", "index.json", "notes.txt"]


def test_every_book_notebook_has_typed_commented_parameters_of_flat_literals_and_no_outputs():
    """Chapters expose literal parameters (primitives, or lists of them), each with a type and a
    comment (so ``papermill --help-notebook`` explains it); notebooks are committed stripped."""
    flat = (int, float, str, bool)
    for path in sorted((REPO / "chapters").glob("*.ipynb")):
        nb = nbformat.read(path, as_version=4)
        params = notebook_parameters(nb)
        assert params, f"{path.name} has no parameters cell"
        for name, p in params.items():
            v = p.default
            ok = isinstance(v, flat) or (isinstance(v, list) and all(isinstance(x, flat) for x in v))
            assert ok, f"{path.name}: parameter {name}={v!r} is not a literal primitive or list of them"
            assert p.type_name in ("int", "float", "str", "bool", "list"), f"{path.name}: {name} has no type"
            assert p.comment, f"{path.name}: {name} has no comment"
        assert not any(c.get("outputs") or c.get("execution_count") for c in nb.cells if c.cell_type == "code"), (
            path.name
        )


@pytest.mark.slow
def test_papermill_help_notebook_lists_a_type_for_every_chapter_parameter():
    """``papermill --help-notebook`` reads the annotations: no parameter shows 'Unknown type'."""
    for path in sorted((REPO / "chapters").glob("*.ipynb")):
        proc = subprocess.run(
            [sys.executable, "-m", "papermill", "--help-notebook", str(path)],
            capture_output=True,
            text=True,
            timeout=120,
        )
        assert proc.returncode == 0, proc.stderr
        assert "Unknown type" not in proc.stdout, f"{path.name}:\n{proc.stdout}"


# -- the progress line's ETA ------------------------------------------------------------------------


def test_the_eta_covers_every_chapter_from_the_first_line_when_each_has_a_previous_time():
    """Three chapters that took 100, 50 and 30 s last time, on two workers, first in first out: the
    third starts when the 50-s one ends, so the build ends when the 100-s one does (100 s)."""
    from bookdriver.progress import BuildProgress

    progress = BuildProgress(3, 0, None, slots=2, last_seconds={"a": 100.0, "b": 50.0, "c": 30.0})
    progress.plan(["a", "b", "c"], jobs=2)
    assert progress.eta() == pytest.approx(100, abs=2)
    assert "ETA 1 min 40 s" in progress.line() or "ETA 1 min 39 s" in progress.line()
    progress.chapter_done("b", "executed in 50 s")  # c starts now: 30 s of it are left
    progress.started["a"] -= 90  # a has run for 90 s: 10 s of it are left
    assert progress.eta() == pytest.approx(30, abs=2)


def test_the_eta_never_falls_below_the_training_runs_known_to_be_left(tmp_path):
    """A sweep under way lists 10 runs, 2 done at 30 s each: 8 x 30 s on 2 slots is 120 s, more
    than the chapters' previous times say (100 s): the ETA is 120 s."""
    from bookdriver.progress import BuildProgress

    store = tmp_path / "results" / "sweeps" / "s"
    progress = BuildProgress(1, 0, tmp_path / "results", slots=2, last_seconds={"a": 100.0})
    progress.plan(["a"], jobs=2)
    (store / "sweeps").mkdir(parents=True)
    rids = [f"r{i}" for i in range(10)]
    for rid in rids[:2]:
        (store / "runs" / rid).mkdir(parents=True)
        (store / "runs" / rid / "record.json").write_text(json.dumps({"run_wall_s": 30.0}))
    manifest = {"started": progress.t0, "pending": rids}
    (store / "sweeps" / "x.json").write_text(json.dumps(manifest))
    progress.tick()
    assert progress.eta() == pytest.approx(120, abs=2)


def test_without_any_history_the_eta_says_it_waits_for_the_first_runs():
    from bookdriver.progress import BuildProgress

    progress = BuildProgress(2, 0, None, slots=2)
    progress.plan(["a", "b"], jobs=2)
    assert progress.eta() is None and "ETA once the first runs finish" in progress.line()


# -- the whole driver on small books (real kernels, real Sphinx) -------------------------------------


def _counting_book(root: Path, cells: dict[str, str]) -> Path:
    """A book whose chapters (stem -> code of their one cell) each first append a line to
    ``<root>/count-<stem>``: how many times each was executed. Its _config.yml asks for what the
    driver must override: execution by Sphinx, with a 1-s cell timeout."""
    (root / "chapters").mkdir(parents=True)
    config = "title: t\nonly_build_toc_files: true\nexecute:\n  execute_notebooks: cache\n  timeout: 1\n"
    (root / "_config.yml").write_text(config)
    (root / "references.bib").write_text("")
    (root / "CITATION.cff").write_text(
        'title: "t"\nurl: "https://example.org/t"\nrepository-code: "https://github.com/example/t"\n'
    )
    (root / "_static").mkdir()
    (root / "_static" / "custom.css").write_text("")
    entries = "".join(f"  - file: chapters/{stem}\n" for stem in cells)
    (root / "_toc.yml").write_text(f"format: jb-book\nroot: chapters/intro\nchapters:\n{entries}")
    (root / "chapters" / "intro.md").write_text("# Intro\n")
    for stem, code in cells.items():
        nb = nbformat.v4.new_notebook(
            metadata={"kernelspec": {"name": "python3", "language": "python", "display_name": "P"}}
        )
        count = f"with open({str(root / f'count-{stem}')!r}, 'a') as f:\n    f.write('x\\n')\n"
        nb.cells = [
            nbformat.v4.new_markdown_cell(f"# {stem}"),
            nbformat.v4.new_code_cell("n: int = 1  # a parameter", metadata={"tags": ["parameters"]}),
            nbformat.v4.new_code_cell(count + code),
        ]
        nbformat.write(nb, root / "chapters" / f"{stem}.ipynb")
    return root


def _count(root: Path, stem: str) -> int:
    path = root / f"count-{stem}"
    return len(path.read_text().splitlines()) if path.exists() else 0


def _build_cmd(root: Path, jobs: int = 2) -> list[str]:
    return [sys.executable, "-m", "bookdriver", "build", "--root", str(root), "-j", str(jobs)]


@pytest.mark.slow
def test_a_failing_chapter_stops_the_build_with_its_name_error_and_resume_command_and_each_chapter_runs_once(tmp_path):
    """The failing chapter stops the build before Sphinx (exit 1): its name, the end of its error, and
    the command to resume. Fixed, the same command executes only what the cache lacks, Sphinx
    executes nothing (execution is off in the staged config) and renders the driver's outputs, and
    no cell timeout applies (the config's 1 s does not stop a 3-s cell)."""
    slow = "import time\ntime.sleep(3)\nprint('hello-from-good')"
    root = _counting_book(tmp_path / "book", {"good": slow, "bad": "1 / 0"})
    # one at a time: bad (first in name order) fails, and good never starts
    first = subprocess.run(_build_cmd(root, jobs=1), cwd=REPO, capture_output=True, text=True, timeout=900)
    assert first.returncode == 1, first.stderr[-3000:]
    assert "[book] bad.ipynb: failed" in first.stderr and "ZeroDivisionError" in first.stderr
    resume = f"resume: python -m bookdriver build --profile full --root {root}"
    assert "[book] stopped: bad.ipynb failed" in first.stderr and resume in first.stderr
    assert "Traceback" not in first.stderr.split("[book] stopped")[1]
    assert not (root / "_build" / "html").exists(), "no page is built from missing outputs"
    assert (_count(root, "good"), _count(root, "bad")) == (0, 1), "bad executed once: Sphinx did not execute it"

    nb = nbformat.read(root / "chapters" / "bad.ipynb", as_version=4)
    nb.cells[2].source = nb.cells[2].source.replace("1 / 0", "print('fixed')")
    nbformat.write(nb, root / "chapters" / "bad.ipynb")
    again = subprocess.run(_build_cmd(root), cwd=REPO, capture_output=True, text=True, timeout=900)
    assert again.returncode == 0, again.stderr[-3000:]
    assert (_count(root, "good"), _count(root, "bad")) == (1, 2), "each executed once more, Sphinx nothing"
    assert "hello-from-good" in (root / "_build" / "html" / "chapters" / "good.html").read_text()
    assert "execute_notebooks: 'off'" in (root / "_build" / "src" / "_config.yml").read_text()


@pytest.mark.slow
def test_a_second_build_of_one_tree_exits_1_naming_the_build_that_holds_it_and_executes_nothing(tmp_path):
    """Two builds of one tree at once used to execute the same chapter twice. The second now
    refuses in one line naming the first (pid, host, since when); the first completes."""
    import socket
    import time

    go, started = tmp_path / "go", tmp_path / "started"
    wait = f"import pathlib, time\npathlib.Path({str(started)!r}).touch()\n"
    wait += f"while not pathlib.Path({str(go)!r}).exists():\n    time.sleep(0.1)"
    root = _counting_book(tmp_path / "book", {"waits": wait})
    first = subprocess.Popen(_build_cmd(root), cwd=REPO, stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True)
    try:
        deadline = time.time() + 600  # the kernel's start, however loaded the machine
        while not started.exists() and first.poll() is None and time.time() < deadline:
            time.sleep(0.1)
        assert started.exists(), "the first build's chapter started"
        second = subprocess.run(_build_cmd(root), cwd=REPO, capture_output=True, text=True, timeout=300)
        assert second.returncode == 1
        lines = second.stderr.strip().splitlines()
        assert len(lines) == 1 and lines[0].startswith("error: another build of this tree is running: "), lines
        assert f"pid {first.pid} on host {socket.gethostname()} since " in lines[0]
        go.touch()
        _, err = first.communicate(timeout=900)
        assert first.returncode == 0, err[-3000:]
    finally:
        if first.poll() is None:
            first.kill()
    assert _count(root, "waits") == 1


def test_on_a_cold_build_a_chapter_without_history_counts_the_mean_of_the_chapters_done():
    """No previous times: before any chapter ends the ETA waits for the first runs; once one ends
    (a, 40 s), every other counts 40 s: b ran 40 s already, c just started and d follows b on two
    workers, so 40 s are left."""
    from bookdriver.progress import BuildProgress

    progress = BuildProgress(4, 0, None, slots=2)
    progress.plan(["a", "b", "c", "d"], jobs=2)
    assert progress.eta() is None
    progress.started["a"] -= 40
    progress.chapter_done("a", "executed in 40 s")  # c starts now
    progress.started["b"] -= 40
    assert progress.eta() == pytest.approx(40, abs=2)


def test_on_a_cold_build_the_eta_is_the_reference_builds_times_scaled_by_this_builds_speed():
    """No previous times; the reference build took 100, 50 and 30 s: on two workers the ETA is 100 s
    from the first line. When b ends after 100 s (twice its reference), every other chapter counts
    twice its reference: a, 100 s in, has 100 s left; c, just started, 60 s: the ETA is 100 s."""
    from bookdriver.progress import BuildProgress

    progress = BuildProgress(3, 0, None, slots=2, reference={"a": 100.0, "b": 50.0, "c": 30.0})
    progress.plan(["a", "b", "c"], jobs=2)
    assert progress.eta() == pytest.approx(100, abs=2) and "ETA 1 min 4" in progress.line()
    progress.started["a"] -= 100
    progress.started["b"] -= 100
    progress.chapter_done("b", "executed in 100 s")
    assert progress.eta() == pytest.approx(100, abs=2)


def test_a_cold_builds_eta_never_scales_the_reference_down_when_the_first_chapters_ran_fast():
    """b ends in 25 s, half its reference: a, 25 s in, still counts 75 s of its reference 100, not 25.
    Chapters speed up unequally (a change to the digits chapters' training leaves the at-scale one
    as it was), so a fast first chapter says little about the rest; slow ones scale it up (above)."""
    from bookdriver.progress import BuildProgress

    progress = BuildProgress(3, 0, None, slots=2, reference={"a": 100.0, "b": 50.0, "c": 30.0})
    progress.plan(["a", "b", "c"], jobs=2)
    progress.started["a"] -= 25
    progress.started["b"] -= 25
    progress.chapter_done("b", "executed in 25 s")
    assert progress.eta() == pytest.approx(75, abs=2)


def test_the_reference_builds_time_every_chapter_of_the_book_in_the_full_and_the_smoke_profile():
    """bookdriver/reference_seconds.json has a time for every notebook chapter in both profiles a plain
    ``make`` builds, so that a cold build's ETA and its order (longest first) cover the whole book."""
    from bookdriver.params import CHAPTER_CPU_S, reference_seconds

    stems = {p.stem for p in (REPO / "chapters").glob("*.ipynb")}
    for profile in ("full", "smoke"):
        seconds = reference_seconds(profile)
        assert set(seconds) == stems and all(s > 0 for s in seconds.values()), profile
    assert reference_seconds("full") == CHAPTER_CPU_S and reference_seconds("replication") == {}


def test_while_only_the_runs_listed_so_far_give_an_eta_it_reads_at_least():
    """A profile without a reference build, before any chapter ends: 3 of 4 listed runs left at 10 s
    each on one slot is 30 s, but the chapters still to start will list more, so "at least 30 s"
    (a cold smoke build printed "ETA 7 s" at 30 s of 6 minutes). Once a chapter ends, a plain ETA."""
    from bookdriver.progress import BuildProgress

    progress = BuildProgress(2, 0, None, slots=1)
    progress.plan(["a", "b"], jobs=1)
    progress.runs = {"r0": 10.0, "r1": None, "r2": None, "r3": None}
    assert progress.eta() == pytest.approx(30) and "ETA at least 30 s (the runs listed so far)" in progress.line()
    progress.started["a"] -= 50
    progress.chapter_done("a", "executed in 50 s")  # b counts 50 s: more than the runs' 30 s
    assert progress.eta() == pytest.approx(50, abs=2)
    line = progress.line()
    assert "ETA 5" in line and "at least" not in line


def test_each_script_is_loaded_once_per_page():
    """The book's extension drops a repeated inline script (sphinx-thebe's ``const THEBE_JS_URL``,
    registered twice under Sphinx 7.4, once with file None and once with file "": a JavaScript error
    on every page) and keeps the order."""
    import sys

    from sphinx.builders.html._assets import _JavaScript

    sys.path.insert(0, str(REPO / "_ext"))
    try:
        from book_assets import unique_scripts
    finally:
        sys.path.remove(str(REPO / "_ext"))
    thebe = 'const THEBE_JS_URL = "x"'
    scripts = [_JavaScript(None, body=thebe), _JavaScript("a.js"), _JavaScript("", body=thebe), _JavaScript("a.js")]
    assert unique_scripts(scripts) == scripts[:2]
    import yaml

    staged = yaml.safe_load((REPO / "_config.yml").read_text())["sphinx"]["local_extensions"]
    assert staged == {"book_assets": "_ext/"}


def test_the_longest_chapter_executes_first_by_its_last_time_else_its_measured_cold_cost():
    from bookdriver.execute import longest_first
    from bookdriver.params import CHAPTER_CPU_S, reference_seconds

    todo = [(Path(f"chapters/{stem}.ipynb"), None) for stem in ("04_batch_size", "05_learning_rate", "09_at_scale")]
    cold = [p.stem for p, _ in longest_first(todo, {})]
    assert cold[0] == max(CHAPTER_CPU_S, key=CHAPTER_CPU_S.get) == "09_at_scale"
    assert cold[1:] == sorted(cold[1:], key=lambda stem: -CHAPTER_CPU_S[stem])  # no history: the reference build's
    warm = longest_first(
        todo, {"04_batch_size.ipynb": 900.0, "09_at_scale.ipynb": 600.0, "05_learning_rate.ipynb": 1.0}
    )
    assert [p.stem for p, _ in warm] == ["04_batch_size", "09_at_scale", "05_learning_rate"]
    smoke = reference_seconds("smoke")  # a cold smoke build: the smoke reference's order, not the full one's
    assert [p.stem for p, _ in longest_first(todo, {}, "smoke")] == sorted(smoke.keys() & {"04_batch_size",
        "05_learning_rate", "09_at_scale"}, key=lambda stem: -smoke[stem])  # fmt: skip
