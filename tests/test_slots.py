"""CPU slots (``vae_utils.cpuslots``): never more training processes than slots, across processes.

Run: ``.venv/bin/pytest tests/test_slots.py`` (a few seconds; real processes, real flock).
"""

import os
import subprocess
import sys

import pytest

from vae_utils.cpuslots import HELD_ENV, SLOTS_ENV, cpu_slot, create_slots, slot_count

HOLD = """
import sys, time
from vae_utils.cpuslots import cpu_slot
with cpu_slot(poll_s=0.02):
    print(f"start {time.time()}", flush=True)
    time.sleep(float(sys.argv[1]))
    print(f"end {time.time()}", flush=True)
"""


def _intervals(procs):
    spans = []
    for p in procs:
        out, _ = p.communicate(timeout=60)
        stamps = dict(line.split() for line in out.strip().splitlines())
        spans.append((float(stamps["start"]), float(stamps["end"])))
    return sorted(spans)


def _run(n_procs, slots_dir, hold_s=0.6, extra_env=None):
    env = {k: v for k, v in os.environ.items() if k != HELD_ENV} | {SLOTS_ENV: str(slots_dir)} | (extra_env or {})
    procs = [
        subprocess.Popen([sys.executable, "-c", HOLD, str(hold_s)], env=env, stdout=subprocess.PIPE, text=True)
        for _ in range(n_procs)
    ]
    return _intervals(procs)


def _max_overlap(spans):
    events = sorted([(s, 1) for s, _ in spans] + [(e, -1) for _, e in spans])
    level = peak = 0
    for _, step in events:
        level += step
        peak = max(peak, level)
    return peak


def test_four_processes_on_two_slots_never_train_more_than_two_at_once_and_all_finish(tmp_path):
    spans = _run(4, create_slots(tmp_path / "slots", 2))
    assert len(spans) == 4 and _max_overlap(spans) == 2


def test_a_process_marked_as_holding_its_parents_slot_does_not_wait(tmp_path):
    """A sweep's kernel runs inside its supervisor's slot: its train() must not ask for another."""
    spans = _run(3, create_slots(tmp_path / "slots", 1), extra_env={HELD_ENV: "1"})
    assert _max_overlap(spans) == 3


def test_without_the_variable_nothing_waits(monkeypatch):
    monkeypatch.delenv(SLOTS_ENV, raising=False)
    with cpu_slot() as fd, cpu_slot() as fd2:
        assert fd is None and fd2 is None
    assert slot_count() is None


def test_create_slots_resizes_and_refuses_a_bad_count(tmp_path, monkeypatch):
    d = create_slots(tmp_path / "s", 3)
    create_slots(d, 2)
    monkeypatch.setenv(SLOTS_ENV, str(d))
    assert slot_count() == 2
    with pytest.raises(ValueError, match="n=0 is not allowed"):
        create_slots(d, 0)


def test_a_nested_block_takes_no_second_slot_so_one_slot_cannot_deadlock(tmp_path, monkeypatch):
    """train_seeds holds a slot and may call train, which asks again: the inner block must not wait."""
    monkeypatch.delenv(HELD_ENV, raising=False)
    monkeypatch.setenv(SLOTS_ENV, str(create_slots(tmp_path / "slots", 1)))
    with cpu_slot() as outer, cpu_slot(should_stop=lambda: True) as inner:
        assert outer is not None and inner is None
    with cpu_slot() as again:  # the outer block released the only slot
        assert again is not None


TRAIN_WHEN_FREE = """
import time
from vae_utils import TrainConfig, train
print("ready", flush=True)
train(TrainConfig(epochs=1, eval_k=2, hidden_units=(8,)))
print(time.time(), flush=True)
"""


@pytest.mark.slow
def test_train_waits_for_a_slot_so_a_chapter_that_trains_directly_keeps_to_the_budget(tmp_path):
    """This process holds the only slot until 3 s after the child has imported everything: the child's
    train() (about a second without a wait) finishes only after the slot is released."""
    import fcntl
    import time

    d = create_slots(tmp_path / "slots", 1)
    env = {k: v for k, v in os.environ.items() if k != HELD_ENV} | {SLOTS_ENV: str(d)}
    fd = os.open(d / "slot-0", os.O_RDWR)
    fcntl.flock(fd, fcntl.LOCK_EX)
    child = subprocess.Popen([sys.executable, "-c", TRAIN_WHEN_FREE], env=env, stdout=subprocess.PIPE, text=True)
    assert child.stdout.readline().strip() == "ready"
    time.sleep(3)
    released = time.time()
    os.close(fd)
    out, _ = child.communicate(timeout=120)
    assert child.returncode == 0 and float(out.split()[-1]) > released
