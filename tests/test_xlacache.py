"""The shared cache of XLA's compiled programs (vae_utils/xlacache.py): the same results with and
without it, programs published whole, and nothing left behind by a killed process."""

import json
import os
import socket
import subprocess
import sys
from pathlib import Path

import pytest

from vae_utils import xlacache

REPO = Path(__file__).resolve().parents[1]

RUN = """
import hashlib, json, os, sys
import numpy as np
import vae_utils
from vae_utils import TrainConfig, xlacache
results = vae_utils.train_seeds([TrainConfig(dataset="digits", batch_size=64, epochs=2, seed=s) for s in (0, 1)])
digest = hashlib.sha256()
for r in results:
    digest.update(r.step_loss.tobytes())
    digest.update(r.history.drop(columns="wall_time_s").to_numpy().tobytes())
    for w in r.model.get_weights():
        digest.update(np.ascontiguousarray(w).tobytes())
print(json.dumps({"digest": digest.hexdigest(), "enabled": bool(xlacache._state),
                  "own": [p.name for p in xlacache._state["own"].glob("*.pb")] if xlacache._state else []}))
"""


def _run(env_extra: dict) -> dict:
    env = {k: v for k, v in os.environ.items() if k not in (xlacache.CACHE_ENV, "TF_XLA_FLAGS")}
    env.update(env_extra, PYTHONPATH=str(REPO))
    proc = subprocess.run([sys.executable, "-c", RUN], capture_output=True, text=True, env=env, timeout=600)
    assert proc.returncode == 0, proc.stderr[-3000:]
    return json.loads(proc.stdout.strip().splitlines()[-1])


@pytest.mark.slow
def test_runs_that_load_their_programs_from_the_cache_equal_runs_that_compiled_them_bit_for_bit(tmp_path):
    """Three fresh processes train the same two seeds: without the cache, with an empty cache (it
    compiles and publishes), and with the filled cache (it loads every program, compiles none). The
    step losses, histories and weights are equal bit for bit, and each process's folder is gone."""
    root = tmp_path / "xla-cache"
    plain = _run({})
    first = _run({xlacache.CACHE_ENV: str(root)})
    shared = next(root.glob("tf-*"))
    published = sorted(p.name for p in shared.glob("*.pb"))
    second = _run({xlacache.CACHE_ENV: str(root)})
    assert not plain["enabled"] and first["enabled"] and second["enabled"]
    assert published, "the first process published the programs it compiled"
    assert sorted(p.name for p in shared.glob("*.pb")) == published, "the second compiled nothing new"
    assert plain["digest"] == first["digest"] == second["digest"]
    assert list((shared / ".processes").iterdir()) == []


ORDERED = """
import json, sys
import vae_utils
from vae_utils import TrainConfig
for batch_size in json.loads(sys.argv[1]):
    vae_utils.train(TrainConfig(dataset="digits", batch_size=batch_size, epochs=1, train_size=256, held_out_size=64))
"""


@pytest.mark.slow
def test_a_process_that_traces_its_graphs_in_another_order_still_finds_their_programs(tmp_path):
    """The names TensorFlow gives a traced graph's functions are in its HLO, so in the program's cache
    key; ``stable_names`` numbers them from the graph alone. A process that trains batch 16 and 64
    publishes their programs; one that trains them in the reverse order compiles none."""
    root = tmp_path / "xla-cache"
    env = {k: v for k, v in os.environ.items() if k not in (xlacache.CACHE_ENV, "TF_XLA_FLAGS")}
    env.update({xlacache.CACHE_ENV: str(root)}, PYTHONPATH=str(REPO))
    programs = []
    for order in ([16, 64], [64, 16]):
        proc = subprocess.run(
            [sys.executable, "-c", ORDERED, json.dumps(order)], env=env, capture_output=True, text=True
        )
        assert proc.returncode == 0, proc.stderr[-3000:]
        programs.append(sorted(p.name for p in next(root.glob("tf-*")).glob("*.pb")))
    assert len(programs[0]) >= 2, programs[0]
    assert programs[1] == programs[0], "the reverse order compiled new programs"


def test_stable_names_number_a_graphs_functions_from_its_key_and_its_count_in_this_process():
    import tensorflow as tf

    def names(key):
        @tf.function(autograph=False)
        def loop(x):
            return tf.while_loop(lambda i, x: i < 3, lambda i, x: (i + 1, x * 2.0), (0, x))[1]

        with xlacache.stable_names(key):
            graph = loop.get_concrete_function(tf.TensorSpec([], tf.float32)).graph
        return sorted(graph.as_graph_def().library.function[k].signature.name for k in range(2))

    first, other, again = names("graph a"), names("graph b"), names("graph a")
    numbers = [int(n.rpartition("_")[2]) for n in first + other + again]
    assert all(n >= 2**40 for n in numbers), "far above TensorFlow's own counter"
    assert len(set(first + other + again)) == 6, "a second trace of one key in one process gets new names"
    assert [n.rpartition("_")[0] for n in first] == ["while_body", "while_cond"]


@pytest.fixture
def cache(tmp_path, monkeypatch):
    """The module's state as enable() leaves it, on folders of tmp_path (no TensorFlow involved)."""
    shared, own = tmp_path / "shared", tmp_path / "shared" / ".processes" / f"{socket.gethostname()}-{os.getpid()}"
    own.mkdir(parents=True)
    monkeypatch.setattr(xlacache, "_state", {"shared": shared, "own": own})
    return shared, own


def test_a_program_compiled_here_joins_the_shared_folder_whole_and_one_published_elsewhere_is_linked_here(cache):
    shared, own = cache
    (own / "mine.pb").write_bytes(b"compiled here")
    (shared / "theirs.pb").write_bytes(b"compiled elsewhere")
    assert xlacache.publish() == 1
    assert (shared / "mine.pb").read_bytes() == b"compiled here"
    assert (own / "theirs.pb").read_bytes() == b"compiled elsewhere"
    assert sorted(p.name for p in shared.iterdir() if p.is_file()) == ["mine.pb", "theirs.pb"], "no temporary left"
    assert xlacache.publish() == 0, "a program is published once"


def test_the_folder_of_a_process_that_is_gone_is_removed_and_a_live_ones_is_kept(tmp_path):
    gone = subprocess.Popen([sys.executable, "-c", "pass"])
    gone.wait()
    host = socket.gethostname()
    dead, alive, other = (
        tmp_path / f"{host}-{gone.pid}",
        tmp_path / f"{host}-{os.getpid()}",
        tmp_path / f"elsewhere-{gone.pid}",
    )
    for folder in (dead, alive, other):
        (folder / "half-written.pb").parent.mkdir(parents=True)
        (folder / "half-written.pb").write_bytes(b"\x00")
    xlacache._remove_stale(tmp_path)
    assert not dead.exists() and alive.exists() and other.exists(), "another host's processes are not judged here"


def test_the_shared_folder_is_keyed_by_the_tensorflow_version_and_the_cpu(tmp_path):
    name = xlacache.shared_folder(tmp_path).name
    assert name.startswith(f"tf-{xlacache._tensorflow_version()}-") and name.endswith(xlacache._cpu_key())
    assert xlacache._tensorflow_version() != "unknown"


def test_without_the_variable_or_after_tensorflow_loaded_the_cache_stays_off(monkeypatch, tmp_path):
    monkeypatch.setattr(xlacache, "_state", {})
    monkeypatch.delenv(xlacache.CACHE_ENV, raising=False)
    assert xlacache.enable() is False and xlacache.publish() == 0
    monkeypatch.setenv(xlacache.CACHE_ENV, str(tmp_path))
    monkeypatch.setitem(sys.modules, "tensorflow", sys.modules.get("tensorflow", object()))
    assert xlacache.enable() is False and not any(tmp_path.iterdir())


def test_a_child_of_a_process_with_the_cache_gets_a_folder_of_its_own_not_its_parents(tmp_path):
    """A sweep's kernel inherits its chapter kernel's environment, TF_XLA_FLAGS included: it must not
    write its programs into its parent's folder (another process's, read while being written)."""
    show = "import os, vae_utils; print(os.environ['TF_XLA_FLAGS'])"
    parent = f"import os, subprocess, sys, vae_utils; print(os.environ['TF_XLA_FLAGS'], flush=True); subprocess.run([sys.executable, '-c', {show!r}])"
    env = {k: v for k, v in os.environ.items() if k not in ("TF_XLA_FLAGS", xlacache.OWN_ENV)}
    env.update({xlacache.CACHE_ENV: str(tmp_path), "PYTHONPATH": str(REPO)})
    proc = subprocess.run([sys.executable, "-c", parent], capture_output=True, text=True, env=env, timeout=120)
    assert proc.returncode == 0, proc.stderr
    first, second = proc.stdout.split()
    assert first.startswith(xlacache.FLAG) and second.startswith(xlacache.FLAG) and first != second
    assert first.count(xlacache.FLAG) == second.count(xlacache.FLAG) == 1


def test_past_its_bound_the_shared_folder_drops_its_oldest_programs(tmp_path):
    for age, name in enumerate(["newest", "middle", "oldest"]):
        (tmp_path / f"{name}.pb").write_bytes(b"x" * 100)
        os.utime(tmp_path / f"{name}.pb", (1_000_000 - age, 1_000_000 - age))
    xlacache._bound(tmp_path, limit=250)
    assert sorted(p.stem for p in tmp_path.glob("*.pb")) == ["middle", "newest"]
    xlacache._bound(tmp_path, limit=250)
    assert len(list(tmp_path.glob("*.pb"))) == 2, "within the bound nothing goes"
