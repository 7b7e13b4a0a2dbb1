"""What a user types, and what the system answers, at ``python -m vae_utils``: one line, an exit code,
nothing half-written.

Run: ``.venv/bin/pytest tests/test_cli_errors.py`` (most cases are seconds: they fail before any
kernel starts; the full disk and the diverging ``train`` are ``slow``). Exit codes: 2 for bad input
(naming the parameter, the value and what is allowed), 1 when the system refuses (naming the path or
address and what to do), 130 for Ctrl-C (``test_interrupts.py``).
"""

import json
import os
import shutil
import socket
import subprocess
import sys
from pathlib import Path

import pytest

from vae_utils import TrainConfig
from vae_utils.experiments import runner, store, sweep

TINY = {"dataset": "digits", "epochs": 1, "eval_k": 10}
CAN_MOUNT = shutil.which("unshare") is not None and (
    subprocess.run(["unshare", "-rm", "true"], capture_output=True).returncode == 0
)
needs_mount = pytest.mark.skipif(not CAN_MOUNT, reason="needs `unshare -rm` (user and mount namespaces) for a tmpfs")


def cli(*args, env=None, timeout=300):
    cmd = [sys.executable, "-m", "vae_utils", *map(str, args)]
    return subprocess.run(cmd, capture_output=True, text=True, env=env, timeout=timeout)


def one_error_line(proc, code: int) -> str:
    """The process exited ``code`` with exactly one ``error:`` line and no traceback; that line."""
    assert proc.returncode == code, proc.stderr[-3000:]
    assert "Traceback" not in proc.stderr, proc.stderr[-3000:]
    lines = [line for line in proc.stderr.splitlines() if line.startswith("error:")]
    assert len(lines) == 1, proc.stderr[-3000:]
    return lines[0]


# -- flags --------------------------------------------------------------------------------------------


@pytest.mark.slow
def test_a_repeated_sweep_flag_adds_its_values_and_a_repeated_train_flag_is_refused(tmp_path):
    """``--batch-size 5000 --batch-size 32`` is the grid [5000, 32] (5000 is then refused by name;
    the last flag used to win silently); ``train`` takes one value, so a second flag is an error."""
    out = tmp_path / "store"
    line = one_error_line(cli("sweep", "--out", out, "--batch-size", 5000, "--batch-size", 32), 2)
    assert "batch_size=5000 is not allowed" in line
    assert not out.exists()
    proc = cli("train", "--batch-size", 32, "--batch-size", 64)
    assert proc.returncode == 2 and "argument --batch-size: given twice; allowed: once" in proc.stderr
    proc = cli("sweep", "--out", out, "--out", tmp_path / "other", "--epochs", 1)
    assert proc.returncode == 2 and "argument --out: given twice" in proc.stderr


@pytest.mark.slow
def test_negative_numbers_are_values_and_the_config_refuses_them_by_name(tmp_path):
    """``--learning-rate -1e-3`` used to give argparse's "expected at least one argument"."""
    for command in (["train"], ["sweep", "--out", tmp_path / "store"]):
        line = one_error_line(cli(*command, "--learning-rate", "-1e-3"), 2)
        assert "learning_rate=-0.001 is not allowed; allowed: a finite number > 0" in line
    assert not (tmp_path / "store").exists()


@pytest.mark.slow
def test_a_seed_tensorflow_cannot_take_is_refused_naming_the_field_before_training():
    """2**31 and 1e20 used to fail inside TensorFlow without naming the field."""
    for seed in ("2147483648", "1e20"):
        line = one_error_line(cli("train", "--seed", seed, "--epochs", 1), 2)
        assert f"seed='{seed}' is not allowed" in line or f"seed={seed} is not allowed" in line
        assert "an integer from 0 to 2147483647" in line


# -- paths ----------------------------------------------------------------------------------------------


@pytest.mark.slow
def test_output_paths_are_checked_before_anything_trains_or_is_written(tmp_path):
    """``--out`` that is a file, ``--csv`` or ``--history`` in a missing folder or naming a folder:
    exit 2 naming the flag and the path; the file is unchanged and no store is created."""
    a_file = tmp_path / "thesis.tex"
    a_file.write_text("years of work")
    out = tmp_path / "store"
    cases = [
        (["sweep", "--out", a_file, "--epochs", 1], f"--out={a_file} is a file"),
        (["sweep", "--out", out, "--csv", tmp_path / "missing" / "r.csv"], "--csv="),
        (["sweep", "--out", out, "--csv", tmp_path], f"--csv={tmp_path} is a folder"),
        (["train", "--epochs", 1, "--history", tmp_path / "missing" / "h.csv"], "--history="),
    ]
    for args, message in cases:
        proc = cli(*args)
        assert message in one_error_line(proc, 2)
        assert proc.stdout == "", "nothing trained"
    assert a_file.read_text() == "years of work" and not out.exists()


def test_a_missing_or_malformed_grid_file_is_one_line_naming_it(tmp_path):
    bad = tmp_path / "grid.yaml"
    bad.write_text("- {batch_size: [32, 64}\n")
    line = one_error_line(cli("sweep", "--out", tmp_path / "s", "--grid", bad), 2)
    assert f"--grid {bad}: is not valid YAML at line 1" in line
    line = one_error_line(cli("sweep", "--out", tmp_path / "s", "--grid", tmp_path / "nope.yaml"), 2)
    assert f"--grid {tmp_path / 'nope.yaml'}: cannot be read (No such file or directory)" in line
    assert not (tmp_path / "s").exists()


@pytest.mark.slow
def test_an_unreachable_scheduler_is_one_line_naming_the_address_and_nothing_is_created(tmp_path):
    """Nothing listens on the port: exit 1 naming the address and how to start a scheduler, and
    neither the store nor a manifest exists (they used to be created before the connection)."""
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        address = f"tcp://127.0.0.1:{s.getsockname()[1]}"
    env = {**os.environ, "DASK_DISTRIBUTED__COMM__TIMEOUTS__CONNECT": "2s"}  # Dask's own setting
    line = one_error_line(cli("sweep", "--out", tmp_path / "s", "--scheduler", address, env=env), 1)
    assert f"the Dask scheduler at {address} did not answer" in line and "dask scheduler --host 127.0.0.1" in line
    assert not (tmp_path / "s").exists()


def _in_tmpfs(tmp_path, options: str, commands: str) -> subprocess.CompletedProcess:
    """Run shell ``commands`` with a fresh tmpfs mounted at $FS (own user and mount namespace:
    no root needed; the mount vanishes with the namespace, so checks run inside too)."""
    fs = tmp_path / "fs"
    fs.mkdir()
    script = f"set -u\nmount -t tmpfs -o {options} none {fs}\nFS={fs}\nPY={sys.executable}\n{commands}"
    return subprocess.run(["unshare", "-rm", "sh", "-c", script], capture_output=True, text=True, timeout=600)


@needs_mount
def test_an_unwritable_csv_folder_is_refused_before_the_sweep_starts(tmp_path):
    """A read-only filesystem (what a folder without write permission is to a user): exit 1 naming
    the file and what to do, before the store is created."""
    proc = _in_tmpfs(
        tmp_path,
        "ro,size=64k",
        f"$PY -m vae_utils sweep --out {tmp_path / 'store'} --epochs 1 --csv $FS/results.csv",
    )
    line = one_error_line(proc, 1)
    assert "results.csv: Read-only file system (--csv, checked before training)" in line
    assert "choose a path on a writable filesystem" in line
    assert not (tmp_path / "store").exists()


CHECK_STORE = """
import json, sys
from pathlib import Path
from vae_utils.experiments import load_results, store
out = Path(sys.argv[1])
runs = [d.name for d in (out / "runs").iterdir()] if (out / "runs").exists() else []
records = [r for r in runs if (out / "runs" / r / "record.json").exists()]
well_formed = [r for r in records if store.read_record(out, r) is not None]
print(json.dumps({"tmp": [str(p) for p in out.rglob("*.tmp")], "records": records, "well_formed": well_formed}))
"""


@needs_mount
@pytest.mark.slow
def test_a_full_disk_ends_the_sweep_with_one_line_and_leaves_no_temporary_files(tmp_path):
    """A store on a 40 kB filesystem fills up mid-sweep: exit 1 with one line naming a file of the
    store, "No space left on device" and what to do; no temporary file is left and every record
    present is whole (the next call, with space, trains the rest)."""
    (tmp_path / "check.py").write_text(CHECK_STORE)
    proc = _in_tmpfs(
        tmp_path,
        "size=40k",
        "$PY -m vae_utils sweep --no-progress --out $FS/store --batch-size 16 --epochs 3 --eval-k 10 "
        "--seeds 0 1 2 3 --workers 1\necho rc=$?\n"
        f"$PY {tmp_path / 'check.py'} $FS/store",
    )
    assert "rc=1" in proc.stdout, proc.stderr[-3000:]
    assert "Traceback" not in proc.stderr, proc.stderr[-3000:]
    errors = [line for line in proc.stderr.splitlines() if line.startswith("error:")]
    assert len(errors) == 1 and "/store/" in errors[0], proc.stderr[-3000:]
    assert "No space left on device; free some space, then run the same command" in errors[0]
    found = json.loads(proc.stdout.splitlines()[-1])
    assert found["tmp"] == []
    assert found["records"] == found["well_formed"]


# -- output ---------------------------------------------------------------------------------------------


@pytest.mark.slow
def test_train_prints_standard_json_with_null_for_non_finite_metrics(tmp_path):
    """A diverging run (SGD at learning rate 100) has non-finite metrics: stdout is strict JSON
    (``null``, never ``NaN``), and ``--history`` is written whole, with no temporary file."""
    history = tmp_path / "h.csv"
    proc = cli(
        "train", "--optimizer", "sgd", "--learning-rate", 100, "--epochs", 1, "--eval-k", 10, "--history", history
    )
    assert proc.returncode == 0, proc.stderr[-3000:]
    result = json.loads(proc.stdout, parse_constant=lambda c: pytest.fail(f"non-standard JSON: {c}"))
    assert result["metrics"]["diverged"] is True
    assert None in result["metrics"].values(), "a non-finite metric is null"
    assert history.read_text().startswith("epoch,") and [p.name for p in tmp_path.iterdir()] == ["h.csv"]


# -- waits ------------------------------------------------------------------------------------------------

HOLDER = """
import json, sys, time
from vae_utils import TrainConfig
from vae_utils.experiments import store
with store.claim(sys.argv[1], TrainConfig.from_dict(json.loads(sys.argv[2]))) as run:
    assert not run.skip
    print(run.run_id, flush=True)
    time.sleep(600)
"""


@pytest.fixture
def held_run(tmp_path):
    """A store whose one run (TINY) is locked by another live process; (store, run id, pid)."""
    out = tmp_path / "store"
    holder = subprocess.Popen(
        [sys.executable, "-c", HOLDER, str(out), json.dumps(TINY)], stdout=subprocess.PIPE, text=True
    )
    rid = holder.stdout.readline().strip()
    assert rid == store.run_id(TrainConfig(**TINY))
    yield out, rid, holder.pid
    holder.kill()
    holder.wait()


@pytest.mark.slow
def test_a_run_held_by_a_live_process_is_given_up_after_max_wait_naming_its_pid_and_host(held_run):
    """``--max-wait 2``: the run is reported as not run, with the holder's pid and host; exit 1;
    the summary counts nothing as ran (it used to count pending runs); nothing is written for it."""
    out, rid, pid = held_run
    proc = cli("sweep", "--no-progress", "--out", out, "--epochs", 1, "--eval-k", 10, "--max-wait", 2)
    assert proc.returncode == 1, proc.stderr[-3000:]
    assert f"NOT RUN {rid}: NotRun: held by pid {pid} on host {socket.gethostname()} for over 2 s" in proc.stderr
    assert "runs: ran 0, cached 0, diverged 0, failed 0, not run 1" in proc.stderr
    assert store.read_record(out, rid) is None and not (store.run_dir(out, rid) / "record.json").exists()


@pytest.mark.slow
def test_a_long_wait_is_reported_naming_the_run_and_its_holder(held_run, monkeypatch, capsys):
    """After ``WAIT_REPORT_S`` (30 s; shortened here) the sweep says what it waits for, and keeps
    saying it; the returned table has the run as "not run"."""
    out, rid, pid = held_run
    monkeypatch.setattr(runner, "WAIT_REPORT_S", 0.5)
    df = sweep(TINY, out, workers=1, progress=False, wait_s=6)  # reports at 0.5, 1.5 and 4.5 s
    err = capsys.readouterr().err
    assert f"for 1 run(s) another process trains: {rid} (digits, batch_size=64" in err
    assert f"held by pid {pid} on host {socket.gethostname()}" in err
    assert err.count("waiting") >= 2, "reported again while it waits"
    assert list(df["status"]) == ["not run"] and f"pid {pid}" in df["error"].iloc[0]
    assert df.attrs["summary"]["not_run"] == 1 and df.attrs["summary"]["ran"] == 0


# -- the book driver's command line ---------------------------------------------------------------------


@pytest.mark.slow
def test_the_book_driver_turns_os_errors_into_one_line_naming_the_path(tmp_path):
    """A ``_build`` that is a file: staging cannot create its folder; exit 1 naming the path."""
    root = tmp_path / "book"
    (root / "chapters").mkdir(parents=True)
    (root / "_config.yml").write_text("title: t\n")
    (root / "references.bib").write_text("")
    (root / "_toc.yml").write_text("format: jb-book\nroot: chapters/intro\n")
    (root / "chapters" / "intro.md").write_text("# Intro\n")
    (root / "_build").write_text("not a folder")
    repo = Path(__file__).resolve().parents[1]
    cmd = [sys.executable, "-m", "bookdriver", "params", "--root", str(root)]
    proc = subprocess.run(cmd, capture_output=True, text=True, cwd=repo, timeout=120)
    line = one_error_line(proc, 1)
    assert str(root / "_build") in line and "choose another path" in line
    assert (root / "_build").read_text() == "not a folder"
    proc = subprocess.run(
        [*cmd[:-2], "--params", str(tmp_path / "nope.yaml"), "--root", str(root)],
        capture_output=True,
        text=True,
        cwd=repo,
        timeout=120,
    )
    assert f"{tmp_path / 'nope.yaml'}: cannot be read" in one_error_line(proc, 2)
