"""A results store follows no symbolic link it did not create (issue 23, item 1).

A store can come from someone else (a tarball), and run ids are predictable, so a planted link at
a run's folder, its lock or the store's own subfolders must not make ``sweep`` write, empty or
delete anything outside the store: the sweep refuses such a store with one line naming the link
and exit code 1, and the store's own writers refuse a link planted after that check.

Run: ``.venv/bin/pytest tests/test_store_links.py`` (through the CLI: ~10 s a case, no kernel starts).
"""

import json
import os
import socket
import subprocess
import sys
from pathlib import Path

import pytest

from vae_utils.experiments import expand_grid, store

TINY = {"dataset": "digits", "batch_size": 64, "epochs": 1, "eval_k": 10, "seed": 0}


def sweep_cli(out: Path) -> subprocess.CompletedProcess:
    cmd = [sys.executable, "-m", "vae_utils", "sweep", "--no-progress", "--out", str(out), "--workers", "1"]
    cmd += ["--dataset", "digits", "--batch-size", "64", "--epochs", "1", "--eval-k", "10", "--seeds", "0"]
    return subprocess.run(cmd, capture_output=True, text=True, timeout=900)


def snapshot(folder: Path) -> dict:
    """Every entry under ``folder`` (links not followed): its bytes, or a marker for a folder."""
    return {
        str(p.relative_to(folder)): "<dir>" if p.is_dir() and not p.is_symlink() else p.read_bytes()
        for p in sorted(folder.rglob("*"))
    }


def plant_lock_link(out: Path, outside: Path) -> Path:
    (outside / "precious.txt").write_text("keep me\n")
    link = store.run_dir(out, RID) / "lock"
    link.parent.mkdir(parents=True)
    link.symlink_to(outside / "precious.txt")
    return link


def plant_lock_hard_link(out: Path, outside: Path) -> Path:
    (outside / "precious.txt").write_text("keep me\n")
    link = store.run_dir(out, RID) / "lock"
    link.parent.mkdir(parents=True)
    os.link(outside / "precious.txt", link)  # the same inode: emptying the lock would empty it
    return link


def plant_run_folder_link(out: Path, outside: Path) -> Path:
    (outside / ".record.json.123.tmp").write_text("someone else's temporary file\n")
    link = store.run_dir(out, RID)
    link.parent.mkdir(parents=True)
    link.symlink_to(outside, target_is_directory=True)
    return link


def plant_runs_folder_link(out: Path, outside: Path) -> Path:
    (outside / RID).mkdir()
    (outside / RID / ".step_loss.parquet.9.tmp").write_text("someone else's temporary file\n")
    out.mkdir()
    (out / "runs").symlink_to(outside, target_is_directory=True)
    return out / "runs"


def plant_workers_folder_link(out: Path, outside: Path) -> Path:
    beat = {"pid": 2**22 + 1, "host": socket.gethostname(), "time": 0}  # a dead process's heartbeat
    (outside / "job-w0.json").write_text(json.dumps(beat))
    out.mkdir()
    (out / "workers").symlink_to(outside, target_is_directory=True)
    return out / "workers"


RID = store.run_id(expand_grid(TINY)[0])
PLANTS = [
    plant_lock_link,
    plant_lock_hard_link,
    plant_run_folder_link,
    plant_runs_folder_link,
    plant_workers_folder_link,
]


@pytest.mark.parametrize("plant", PLANTS, ids=lambda f: f.__name__.removeprefix("plant_"))
def test_a_sweep_refuses_a_store_holding_a_planted_link_and_changes_nothing_outside(tmp_path, plant):
    """Through ``python -m vae_utils sweep``: one line naming the link, exit 1, the link's target
    byte for byte as it was, and no run trained."""
    out, outside = tmp_path / "store", tmp_path / "outside"
    outside.mkdir()
    link = plant(out, outside)
    before = snapshot(outside)
    proc = sweep_cli(out)
    assert snapshot(outside) == before
    assert proc.returncode == 1, proc.stderr[-3000:]
    lines = proc.stderr.strip().splitlines()
    assert len(lines) == 1, proc.stderr[-3000:]
    assert lines[0].startswith(f"error: {link}: is a "), lines[0]
    assert "link" in lines[0] and lines[0].endswith("remove the link, or use another folder"), lines[0]
    assert not any((out / "notebooks").glob("*.ipynb")), "no kernel started"


@pytest.mark.parametrize("plant", PLANTS, ids=lambda f: f.__name__.removeprefix("plant_"))
def test_the_store_itself_refuses_a_link_planted_after_the_sweeps_check(tmp_path, plant):
    """The writers check too (a link planted while a sweep runs): claiming the run (its lock, its
    stale temporary files, its kernel's heartbeat) raises an OSError naming the link, and the
    link's target is unchanged."""
    out, outside = tmp_path / "store", tmp_path / "outside"
    outside.mkdir()
    link = plant(out, outside)
    before = snapshot(outside)
    with (
        pytest.raises(OSError, match=r"is a (symbolic|hard) link") as e,
        store.claim(out, expand_grid(TINY)[0], "job", "w0"),
    ):
        pass
    assert e.value.filename == str(link)
    assert snapshot(outside) == before
