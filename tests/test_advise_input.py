"""``python -m vae_utils advise`` refuses bad data and options in one line, before it measures anything.

Run: ``.venv/bin/pytest tests/test_advise_input.py`` (the refusals take a second each: no TensorFlow is
imported for them; the short-run case trains ~300 updates). Contract: bad input is one line naming the
file or the flag, the value and what is allowed, exit 2; the short run stays within its updates however
large the file.
"""

import json
import subprocess
import sys

import numpy as np
import pytest

# ``python -m vae_utils advise ...`` that says on its last line of stdout whether TensorFlow was imported by the end
RUN = (
    "import sys; from vae_utils.cli import main; rc = main(['advise', *sys.argv[1:]]); "
    "print('tensorflow imported' if 'tensorflow' in sys.modules else 'tensorflow not imported'); sys.exit(rc)"
)


def advise(*args, timeout=600) -> subprocess.CompletedProcess:
    cmd = [sys.executable, "-c", RUN, *map(str, args)]
    return subprocess.run(cmd, capture_output=True, text=True, timeout=timeout)


def one_line(proc, code: int) -> str:
    assert proc.returncode == code, proc.stderr[-3000:]
    lines = proc.stderr.strip().splitlines()
    assert len(lines) == 1 and lines[0].startswith("error: ") and "Traceback" not in proc.stderr, proc.stderr[-3000:]
    return lines[0]


@pytest.fixture
def data(tmp_path):
    path = tmp_path / "x.npy"
    np.save(path, np.random.default_rng(0).normal(size=(300, 16)).astype(np.float32))
    return path


def no_tensorflow(proc) -> None:
    """The refusal came before TensorFlow was imported (``sys.modules`` at the refusal: a check that does not
    depend on the machine's speed; the import takes 10-30 s) and before the measurements' progress lines."""
    assert proc.stdout.strip().splitlines()[-1] == "tensorflow not imported", proc.stdout[-500:]
    assert "advise:" not in proc.stderr


@pytest.mark.parametrize("value", [1e20, 1e39])
def test_values_too_large_for_float32_training_are_refused_naming_the_file(value, tmp_path):
    """They used to end in ``error: learning_rate=nan is not allowed``, a parameter the user never gave."""
    x = np.random.default_rng(0).normal(size=(300, 16)) * value
    np.save(tmp_path / "big.npy", x)
    proc = advise("--data", tmp_path / "big.npy", "--likelihood", "gaussian", "--no-confirm")
    line = one_line(proc, 2)
    assert f"{tmp_path / 'big.npy'}: " in line and "example 1, feature 1" in line and "learning_rate" not in line
    no_tensorflow(proc)


def test_an_npy_header_claiming_more_than_the_file_holds_is_refused_before_loading(tmp_path):
    """A 192-byte file whose header claims a huge shape gave a raw memory-error traceback."""
    path = tmp_path / "huge.npy"
    header = {"descr": "<f8", "fortran_order": False, "shape": (10**12, 10**6)}
    with open(path, "wb") as f:
        np.lib.format.write_array_header_1_0(f, header)
        f.write(b"\0" * 64)
    line = one_line(advise("--data", path, "--likelihood", "gaussian"), 2)
    assert f"{path}: its header claims shape (1000000000000, 1000000) of float64" in line and "holds 64" in line


def test_an_existing_file_as_out_and_bad_workers_are_refused_before_measuring(data, tmp_path):
    """Both used to fail after the measurements, losing the advice."""
    (tmp_path / "report").write_text("keep me")
    proc = advise("--data", data, "--likelihood", "gaussian", "--out", tmp_path / "report")
    assert "--out" in one_line(proc, 2) and (tmp_path / "report").read_text() == "keep me"
    no_tensorflow(proc)
    proc = advise("--data", data, "--likelihood", "gaussian", "--workers", -1)
    assert "--workers=-1 is not allowed; allowed: an integer from 1 to 256" in one_line(proc, 2)
    no_tensorflow(proc)


@pytest.mark.parametrize("flag", ["--split-seed", "--seed"])
def test_a_negative_seed_is_reported_under_the_flag_the_user_typed(flag, data):
    proc = advise("--data", data, "--likelihood", "gaussian", flag, -1)
    assert f"{flag}=-1 is not allowed; allowed: an integer from 0 to 2147483647" in one_line(proc, 2)
    no_tensorflow(proc)


@pytest.mark.slow
def test_the_short_run_of_a_large_file_is_its_updates_not_a_full_epoch(tmp_path):
    """10^7 rows with a 1-minute budget were still in the short run at 185 s: at least one whole epoch
    was trained. 200,000 rows (2,187 updates an epoch at batch 64) must stay within the 300 asked for."""
    from vae_utils.advisor import recommend

    x = np.random.default_rng(0).normal(size=(200_000, 8)).astype(np.float32)
    np.save(tmp_path / "rows.npy", x)
    # in this process, with one short range test and one short run: the short run's length is what is tested
    recommend.advise(tmp_path / "rows.npy", "gaussian", out=tmp_path / "a", confirm=False, progress=False,
                     range_repeats=1, range_test=dict(steps=100), short_seeds=1, noise_repeats=2)  # fmt: skip
    advice = json.loads((tmp_path / "a" / "advice.json").read_text())
    assert advice["short_run"]["updates"] <= 300
    # Pure noise has a large B_simple (~2,000 here): a batch beyond the rule's calibrated 8-256, and the advice says so.
    assert advice["recommendation"]["batch_size"] > 256
    assert any("it is extrapolated" in r for r in advice["recommendation"]["reasons"])


@pytest.mark.parametrize(
    ("shape", "likelihood", "expected"),
    [
        (None, "bernoulli", "no such file"),
        ((300, 16), "bernoulli", "lie outside [0, 1]"),
        ((300, 15), "bernoulli", "not a square image"),
        ((300, 25), "bernoulli", "conv cannot take images of shape (5, 5)"),
        ((300, 6, 6), "bernoulli", "conv cannot take images of shape (6, 6)"),
        ((300, 8, 8, 3), "bernoulli", "conv cannot take images of shape (8, 8, 3)"),
    ],
)
def test_a_missing_file_bad_values_and_shapes_conv_cannot_take_are_refused_within_two_seconds(
    shape, likelihood, expected, tmp_path
):
    """Shapes conv cannot take (sides not divisible by 4, several channels) used to be refused by the model
    after ~25 s of TensorFlow import; now all of these are refused before it is imported (about 1 s here), each
    naming the file, the value and what is allowed."""
    path = tmp_path / "x.npy"
    if shape is not None:
        x = np.random.default_rng(0).normal(size=shape) if len(shape) == 2 and shape[1] == 16 else None
        np.save(path, x if x is not None else np.random.default_rng(0).uniform(size=shape).astype(np.float32))
    proc = advise("--data", path, "--likelihood", likelihood, "--architecture", "conv", "--no-confirm")
    line = one_line(proc, 2)
    assert expected in line and str(path) in line and "allowed" in line
    no_tensorflow(proc)
