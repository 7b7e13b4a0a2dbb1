"""Published pages and reports name no local folder, and a full ``_build`` disk is refused before any
chapter runs (``vae_utils.localpaths``, ``bookdriver.stage.check_free_space``).

The disk tests mount a small tmpfs in a private mount namespace (``unshare --mount --map-root-user``):
nothing outside the test's folder sees it. They are skipped where unshare is not allowed.
"""

import os
import shutil
import subprocess
import sys
from pathlib import Path

import nbformat
import pytest

from vae_utils.localpaths import STARTUP_FILE, public_paths

REPO = Path(__file__).resolve().parents[1]
KERNELSPEC = {"kernelspec": {"name": "python3", "language": "python", "display_name": "Python 3"}}
# an error raised in site-packages (yaml), handled, then one raised in the repository (vae_utils)
RAISES = """import yaml
from vae_utils.core.config import TrainConfig
try:
    yaml.safe_load("[")
except yaml.YAMLError:
    TrainConfig(batch_size=-1)"""


def _local_folders(*more) -> list[str]:
    """Absolute folders no published text may name: the environment, the Python, the repository, home."""
    found = {sys.prefix, os.path.realpath(sys.prefix), sys.base_prefix, str(REPO), os.path.expanduser("~"), *more}
    return sorted(str(f) for f in found)


def _leaks(text: str, *more) -> list[str]:
    return [f for f in _local_folders(*more) if f in text]


def test_local_prefixes_become_short_names_and_other_paths_stay():
    """site-packages, the environment, the repository and home are replaced by their short names, in
    the '~/...' form IPython prints too; a folder that merely starts with the same letters is kept."""
    site = Path(sys.prefix, "lib", f"python{sys.version_info[0]}.{sys.version_info[1]}", "site-packages")
    assert public_paths(f"File {site}/keras/layer.py:12, in call") == "File site-packages/keras/layer.py:12, in call"
    assert public_paths(f"{sys.prefix}/bin/python") == "<venv>/bin/python"
    assert public_paths(f"{REPO}/vae_utils/config.py") == "./vae_utils/config.py"
    assert public_paths(f"{REPO}x/a.py") == f"{REPO}x/a.py"
    home = os.path.expanduser("~")
    assert public_paths(f"{home}/notes.txt and ~/notes.txt") == "~/notes.txt and ~/notes.txt"
    assert public_paths("see /tmp/a.log", root="/tmp") == "see ./a.log"


def _run(nb, env: dict) -> list[dict]:
    """Execute ``nb`` in a real kernel (errors allowed); its error outputs."""
    from nbclient import NotebookClient

    NotebookClient(nb, timeout=300, allow_errors=True, kernel_name="python3").execute(env=env)
    return [o for c in nb.cells for o in c.get("outputs", []) if o["output_type"] == "error"]


@pytest.mark.parametrize("how", ["the driver's startup file", "the chapter's call"])
def test_a_kernels_traceback_names_site_packages_and_the_repository_not_local_folders(how, tmp_path):
    """A traceback through yaml and vae_utils, in a kernel started as the driver starts them
    ($PYTHONSTARTUP) or set up as chapter 09 does (public_tracebacks()), names site-packages/yaml/...
    and ./vae_utils/core/config.py, and no absolute folder; the cell still counts as an error."""
    env = dict(os.environ, PYTHONPATH=str(REPO))
    cells = [RAISES]
    if how == "the driver's startup file":
        env["PYTHONSTARTUP"] = str(STARTUP_FILE)
    else:
        env.pop("PYTHONSTARTUP", None)
        cells.insert(0, "from vae_utils.localpaths import public_tracebacks\npublic_tracebacks()")
    nb = nbformat.v4.new_notebook(metadata=KERNELSPEC, cells=[nbformat.v4.new_code_cell(c) for c in cells])
    nb.metadata["kernelspec"] = KERNELSPEC["kernelspec"]
    errors = _run(nb, env)
    assert [e["ename"] for e in errors] == ["ValueError"]
    text = "\n".join(errors[0]["traceback"]) + errors[0]["evalue"]
    assert "site-packages/yaml/" in text and "./vae_utils/core/config.py" in text
    assert _leaks(text) == []


def _tiny_book(root: Path, code: str) -> Path:
    """A book of one Markdown page and one chapter running ``code``."""
    (root / "chapters").mkdir(parents=True)
    (root / "_config.yml").write_text("title: t\nexecute:\n  execute_notebooks: cache\n  timeout: 300\n")
    (root / "references.bib").write_text("")
    shutil.copy(REPO / "CITATION.cff", root / "CITATION.cff")  # the driver's pages read the book's address
    (root / "_static").mkdir()
    (root / "_static" / "custom.css").write_text("")
    (root / "_toc.yml").write_text("format: jb-book\nroot: chapters/intro\nchapters:\n  - file: chapters/fails\n")
    (root / "chapters" / "intro.md").write_text("# Intro\n")
    nb = nbformat.v4.new_notebook(metadata=KERNELSPEC)
    nb.cells = [
        nbformat.v4.new_markdown_cell("# Fails"),
        nbformat.v4.new_code_cell("seed: int = 0  # unused", metadata={"tags": ["parameters"]}),
        nbformat.v4.new_code_cell(code),
    ]
    nbformat.write(nb, root / "chapters" / "fails.ipynb")
    return root


@pytest.mark.slow
def test_a_failed_chapter_stops_the_build_with_a_traceback_that_names_no_local_folder(tmp_path):
    """python -m bookdriver build, a chapter raising through vae_utils: the build stops before Sphinx
    (exit 1, no page made from a failed chapter), and the error it prints names ./vae_utils/..., never
    the environment, the repository, the book's folder or home (the kernel's startup file)."""
    root = _tiny_book(tmp_path / "book", RAISES)
    cmd = [sys.executable, "-m", "bookdriver", "build", "--root", str(root), "-j", "1"]
    proc = subprocess.run(cmd, cwd=REPO, capture_output=True, text=True, timeout=1200)
    assert proc.returncode == 1, proc.stderr[-3000:]
    assert not (root / "_build" / "html" / "chapters" / "fails.html").exists()
    error = proc.stderr.split("failed after")[1].split("[book] stopped")[0]
    error = error.split("\n", 1)[1]  # after the line naming the kernel's log file (the terminal's own path)
    assert "./vae_utils/core/config.py" in error and "ValueError: batch_size=-1" in error
    assert _leaks(error, root) == []


def _in_small_disk(mount: Path, size: str, cmd: list[str], **kwargs) -> subprocess.CompletedProcess:
    """Run ``cmd`` with a tmpfs of ``size`` mounted on ``mount``, in a private mount namespace."""
    if not shutil.which("unshare"):
        pytest.skip("needs unshare (util-linux) for a private tmpfs")
    mount.mkdir(parents=True, exist_ok=True)
    script = 'mount -t tmpfs -o size="$1" tmpfs "$2" || exit 99; shift 2; "$@"; rc=$?; ls -A "$MNT"; exit $rc'
    shell = ["unshare", "--mount", "--map-root-user", "sh", "-c", script, "sh", size, str(mount), *cmd]
    proc = subprocess.run(shell, capture_output=True, text=True, env=dict(os.environ, MNT=str(mount)), **kwargs)
    if proc.returncode == 99:
        pytest.skip(f"a private tmpfs is not allowed here: {proc.stderr.strip()}")
    return proc


def test_a_build_on_a_nearly_full_disk_is_refused_before_any_chapter_runs(tmp_path):
    """_build on a 4 MB file system: python -m bookdriver build exits 1 with one line naming _build and the
    space the build needs; nothing was written there (no staged notebook, no kernel log)."""
    root = _tiny_book(tmp_path / "book", "print('ran')")
    cmd = [sys.executable, "-m", "bookdriver", "build", "--root", str(root)]
    proc = _in_small_disk(root / "_build", "4m", cmd, cwd=REPO, timeout=300)
    assert proc.returncode == 1, proc.stderr[-3000:]
    lines = proc.stderr.strip().splitlines()
    assert len(lines) == 1 and "Traceback" not in proc.stderr
    assert lines[0].startswith(f"error: {root / '_build'}: 4 MB free; the build needs about ")
    assert lines[0].endswith("MB; free some space, then run the same command (complete runs are kept)")
    assert proc.stdout.strip() == ""  # the tmpfs was left empty


def test_a_staging_copy_that_fills_the_disk_names_the_file_in_build_not_its_source(tmp_path):
    """sync_tree copying a 3 MB file onto a 1 MB file system: the OSError names the staged file (in
    _build), not the file it was copied from (MathJax in the environment, in the book)."""
    source = tmp_path / "tex-chtml.js"
    source.write_bytes(os.urandom(3 * 2**20))
    dest = tmp_path / "_build" / "src"
    code = (
        "import sys; from pathlib import Path; from bookdriver.stage import sync_tree; from vae_utils.cli import os_error_line\n"
        "try:\n    sync_tree(Path(sys.argv[1]) / 'src', {'_extra/mathjax/tex-chtml.js': Path(sys.argv[2])})\n"
        "except OSError as e:\n    print(os_error_line(e), file=sys.stderr)"
    )
    cmd = [sys.executable, "-c", code, str(dest.parent), str(source)]
    proc = _in_small_disk(dest.parent, "1m", cmd, cwd=REPO, timeout=300)
    target = dest / "_extra" / "mathjax" / "tex-chtml.js"
    assert (
        proc.stderr.strip()
        == f"error: {target}: No space left on device; free some space, then run the same command (complete runs are kept)"
    )


@pytest.mark.slow
def test_the_code_examples_deliberate_errors_name_no_local_folder():
    """Chapter 09 up to its two deliberate errors (the article's program and its one-fix variant), run
    in a plain kernel: both Keras tracebacks name site-packages/..., never a local folder."""
    nb = nbformat.read(REPO / "chapters" / "12_code_example.ipynb", as_version=4)
    last = max(i for i, c in enumerate(nb.cells) if "raises-exception" in c.metadata.get("tags", []))
    nb.cells = nb.cells[: last + 1]
    env = {k: v for k, v in os.environ.items() if k != "PYTHONSTARTUP"} | {"PYTHONPATH": str(REPO)}
    errors = _run(nb, env)
    assert len(errors) == 2
    text = "\n".join(line for e in errors for line in [*e["traceback"], e["evalue"]])
    assert "site-packages/keras/" in text and _leaks(text) == []
