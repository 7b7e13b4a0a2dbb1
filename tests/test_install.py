"""The toolkit stands alone: ``pip install .`` into a fresh virtual environment trains and sweeps.

Run: ``.venv/bin/pytest tests/test_install.py`` (about a minute). Offline: the fresh environment sees
the project's already installed dependencies through a ``.pth`` file, so pip installs vae-utils
alone (``--no-index``), and then runs it from a folder outside the repository.
"""

import json
import shutil
import subprocess
import sys
import sysconfig
from pathlib import Path

import pytest

pytestmark = pytest.mark.slow

REPO = Path(__file__).resolve().parents[1]
SCRIPT = """
import json, sys
from importlib import metadata
import vae_utils
from vae_utils import TrainConfig, train
from vae_utils.experiments import default_store, sweep
from vae_utils.claims.records import all_records
from vae_utils.advisor import LR_RATIO  # the calibration files are package data
r = train(TrainConfig(epochs=1, eval_k=5, hidden_units=(16,)))
df = sweep({"epochs": 1, "eval_k": 5, "hidden_units": [[16]]}, out=default_store("installed"), workers=1, progress=False)
print(json.dumps({
    "file": vae_utils.__file__,
    "version": vae_utils.__version__,
    "requires": metadata.requires("vae-utils"),
    "elbo": r.metrics["test_elbo"],
    "status": list(df["status"]),
    "store": str(default_store("installed")),
    "claims": len(all_records()),
    "rate rules": sorted(LR_RATIO),
}))
"""


def test_pip_install_gives_a_toolkit_that_trains_and_runs_a_sweep_from_the_packaged_template(tmp_path):
    """The wheel carries the template and the claim tables as package data and declares its dependencies;
    nothing needs the repo."""
    venv = tmp_path / "venv"
    # --without-pip: pip and setuptools come from the project's environment through the .pth below (a
    # fresh venv's own setuptools may predate the SPDX license string of pyproject.toml)
    subprocess.run([sys._base_executable, "-m", "venv", "--without-pip", str(venv)], check=True)
    py = venv / "bin" / "python"
    site = subprocess.run(
        [py, "-c", "import sysconfig; print(sysconfig.get_paths()['purelib'])"],
        capture_output=True,
        text=True,
        check=True,
    )
    (Path(site.stdout.strip()) / "project-deps.pth").write_text(sysconfig.get_paths()["purelib"] + "\n")
    source = tmp_path / "source"  # a copy: an in-tree build would leave build/ in the repository
    shutil.copytree(
        REPO, source, ignore=shutil.ignore_patterns(".*", "_build", "results", "artifacts", "build", "*.egg-info")
    )
    install = subprocess.run(
        [py, "-m", "pip", "install", "--quiet", "--no-index", "--no-build-isolation", str(source)],
        capture_output=True,
        text=True,
        cwd=tmp_path,
        timeout=300,
    )
    assert install.returncode == 0, install.stderr[-3000:]
    work = tmp_path / "elsewhere"
    work.mkdir()
    proc = subprocess.run([py, "-c", SCRIPT], capture_output=True, text=True, cwd=work, timeout=600)
    assert proc.returncode == 0, proc.stderr[-4000:]
    out = json.loads(proc.stdout.strip().splitlines()[-1])
    assert out["file"].startswith(str(venv)), "the installed copy, not the repository's, was imported"
    assert out["status"] == ["ok"] and out["elbo"] < 0
    assert out["store"] == str(work / "results" / "sweeps" / "installed")
    from vae_utils.claims.records import all_records

    assert out["claims"] == len(all_records()) > 0, "the claim tables are package data"
    assert out["rate rules"] == ["adam", "momentum"], "the advisor's calibration files are package data"
    required = {r.split(";")[0].split(">")[0].split("=")[0].strip().lower() for r in out["requires"]}
    assert {"keras", "numpy", "pandas", "scipy", "papermill", "ipykernel", "pyarrow", "pyyaml"} <= required
    assert {"tensorflow-cpu", "tensorflow"} <= required, "tensorflow-cpu on Linux/Windows, tensorflow on macOS"
