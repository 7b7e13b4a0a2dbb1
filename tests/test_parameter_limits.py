"""Parameter files, grids and budgets are checked against ranges, sizes and a cost estimate before anything runs.

Run: ``.venv/bin/pytest tests/test_parameter_limits.py`` (seconds: every case is refused before a kernel
starts). Contract: bad input is one line naming the chapter (or flag), the parameter, the value and what
is allowed, exit 2; a build or sweep predicted above an hour says so and runs only with ``--allow-long``.
"""

import subprocess
import sys
import tracemalloc
from pathlib import Path

import nbformat
import pytest

from bookdriver.params import RULES, check_cost, check_parameters, load_parameters, rule_for
from vae_utils import TrainConfig
from vae_utils.experiments import expand_grid
from vae_utils.experiments.template import notebook_parameters

REPO = Path(__file__).resolve().parents[1]
CHAPTERS = {p.stem: nbformat.read(p, as_version=4) for p in sorted((REPO / "chapters").glob("*.ipynb"))}


def run(*args, cwd=REPO, timeout=120) -> subprocess.CompletedProcess:
    return subprocess.run([sys.executable, *map(str, args)], cwd=cwd, capture_output=True, text=True, timeout=timeout)


def one_line(proc, code: int) -> str:
    assert proc.returncode == code, proc.stderr[-3000:]
    lines = proc.stderr.strip().splitlines()
    assert len(lines) == 1 and lines[0].startswith("error: ") and "Traceback" not in proc.stderr, proc.stderr[-3000:]
    return lines[0]


def checked(text: str, tmp_path):
    """The driver's check of a reader's parameter file ``text`` against the book's chapters."""
    (tmp_path / "my.yaml").write_text(text)
    return check_parameters(load_parameters("full", tmp_path / "my.yaml", REPO), CHAPTERS, "my.yaml")


# -- the schema ---------------------------------------------------------------------------------------


def test_every_chapter_parameter_has_a_range_or_a_list_of_allowed_values():
    """The schema is the chapters' typed parameter cells plus one table: no parameter is left unchecked."""
    missing = [
        f"{stem}.{name}" for stem, nb in CHAPTERS.items() for name in notebook_parameters(nb) if not rule_for(name)
    ]
    assert not missing and RULES


def test_every_chapter_default_and_every_profile_is_inside_the_schema(tmp_path):
    for profile in ("smoke", "replication"):
        check_parameters(load_parameters(profile, None, REPO), CHAPTERS, profile)
    check_parameters(
        {stem: {k: p.default for k, p in notebook_parameters(nb).items()} for stem, nb in CHAPTERS.items()},
        CHAPTERS,
        "defaults",
    )


@pytest.mark.parametrize(
    ("text", "message"),
    [
        (
            "04_batch_size: {tuning_seeds: [-1]}",
            r"04_batch_size: tuning_seeds\[0\]=-1 is not allowed; allowed: an integer from 0 to 2147483647",
        ),
        (
            "05_learning_rate: {schedules: [bogus]}",
            r"05_learning_rate: schedules\[0\]='bogus' is not allowed; allowed: one of constant, warmup, cosine, warmup_cosine",
        ),
        ("06_batch_lr: {workers: -4}", "06_batch_lr: workers=-4 is not allowed; allowed: an integer from 0 to 256"),
        ("11_tuning: {budget_minutes: -1}", "11_tuning: budget_minutes=-1 is not allowed; allowed: a number > 0"),
        (
            "09_at_scale: {looks: [0, 5]}",
            r"09_at_scale: looks\[0\]=0 is not allowed; allowed: an integer >= 1 \(the seeds a claim has at each look\)",
        ),
        (
            "08_beta: {kl_schedules: [linear, warm]}",
            r"kl_schedules\[1\]='warm' is not allowed; allowed: one of constant, linear",
        ),
        ("07_optimizers: {optimizers: [adam, lion]}", r"optimizers\[1\]='lion' is not allowed"),
        (
            "09_at_scale: {scheduler: 'http://127.0.0.1:8786'}",
            "09_at_scale: scheduler='http://127.0.0.1:8786' is not allowed",
        ),
    ],
)
def test_values_outside_a_parameters_range_are_refused_naming_chapter_parameter_and_range(text, message, tmp_path):
    with pytest.raises(ValueError, match=message):
        checked(text, tmp_path)


def test_the_documented_train_size_0_means_all_and_is_accepted(tmp_path):
    assert checked("09_at_scale: {train_size: 0, held_out_size: 0}", tmp_path)["09_at_scale"]["train_size"] == 0
    assert TrainConfig(train_size=0) == TrainConfig(train_size=None)  # one config, one run id
    assert TrainConfig.from_dict({"held_out_size": 0}).held_out_size is None


# -- YAML ---------------------------------------------------------------------------------------------

BOMB = (
    "[&a [x, x, x, x, x, x, x, x, x], "
    + ", ".join(
        f"&{c} [*{p}, *{p}, *{p}, *{p}, *{p}, *{p}, *{p}, *{p}, *{p}]"
        for p, c in zip("abcdefgh", "bcdefghi", strict=True)
    )
    + "]"
)  # 9**9 values in about 400 bytes


def test_a_yaml_alias_bomb_is_refused_at_once_in_one_short_line(tmp_path):
    """A file of nested aliases (a few hundred bytes, 9**9 values) used to hang the driver while it
    described the value; now any alias is refused, naming the file and the line."""
    (tmp_path / "bomb.yaml").write_text(f"05_learning_rate:\n  schedules: {BOMB}\n")
    proc = run("-m", "bookdriver", "params", "--profile", "smoke", "--params", tmp_path / "bomb.yaml", timeout=300)
    line = one_line(proc, 2)  # a hang fails on the timeout; the message says the alias was refused, not expanded
    assert len(line) < 400 and "bomb.yaml: uses a YAML alias (*name), which is refused at line 2" in line
    (tmp_path / "grid.yaml").write_text(f"seed: {BOMB}\n")
    line = one_line(run("-m", "vae_utils", "sweep", "--out", tmp_path / "s", "--grid", tmp_path / "grid.yaml"), 2)
    assert "grid.yaml: uses a YAML alias" in line and len(line) < 400
    assert not (tmp_path / "s").exists()


@pytest.mark.slow
def test_an_error_about_a_huge_value_is_one_line_of_bounded_length(tmp_path):
    """A list where a number belongs used to be printed whole: a line of megabytes."""
    (tmp_path / "my.yaml").write_text("05_learning_rate:\n  epochs: [" + ", ".join(["1"] * 200_000) + "]\n")
    line = one_line(run("-m", "bookdriver", "params", "--profile", "smoke", "--params", tmp_path / "my.yaml"), 2)
    assert len(line) < 1000 and "05_learning_rate: epochs=[1, 1, 1" in line


# -- sizes and cost -----------------------------------------------------------------------------------


def test_a_grid_too_large_is_refused_before_it_is_expanded():
    """10^10 combinations used to hang silently while the product was built. Refused before: the memory
    allocated peaks at about 6 MB (the two lists), where building the largest grid allowed, 10^5 runs, takes
    about 43 MB (measured; no clock, so the check holds on any machine)."""
    values = {"seed": list(range(100_000)), "learning_rate": [1e-3] * 100_000}
    tracemalloc.start()
    try:
        with pytest.raises(ValueError, match="grid has 10000000000 runs; allowed: at most 100000"):
            expand_grid(values)
        peak = tracemalloc.get_traced_memory()[1]
    finally:
        tracemalloc.stop()
    assert peak < 20e6, f"{peak / 1e6:.0f} MB allocated: the grid was expanded before it was refused"


@pytest.mark.slow
def test_a_sweep_grid_of_ten_billion_runs_is_one_line_through_the_cli(tmp_path):
    seeds = [str(s) for s in range(100_000)]
    lrs = [f"{1e-3 + i * 1e-9:.9g}" for i in range(100_000)]
    (tmp_path / "grid.yaml").write_text(f"seed: [{', '.join(seeds)}]\nlearning_rate: [{', '.join(lrs)}]\n")
    line = one_line(run("-m", "vae_utils", "sweep", "--out", tmp_path / "s", "--grid", tmp_path / "grid.yaml"), 2)
    assert "grid has 10000000000 runs; allowed: at most 100000" in line


@pytest.mark.parametrize("jobs", ["200000", "0", "-1"])
def test_jobs_and_workers_outside_1_to_256_are_one_line(jobs, tmp_path):
    proc = run("-m", "bookdriver", "build", "--profile", "smoke", "--jobs", jobs)  # argparse: usage, then the line
    assert proc.returncode == 2 and "Traceback" not in proc.stderr
    assert f"--jobs: jobs={jobs!r} is not allowed; allowed: an integer from 1 to 256" in proc.stderr.splitlines()[-1]
    line = one_line(run("-m", "vae_utils", "sweep", "--out", tmp_path / "s", "--epochs", "1", "--workers", jobs), 2)
    assert "workers=" in line and "allowed: an integer from 1 to 256" in line
    assert not (tmp_path / "s").exists()


def test_a_sweep_predicted_above_an_hour_says_so_and_runs_only_with_allow_long(tmp_path):
    out = tmp_path / "s"
    args = ["-m", "vae_utils", "sweep", "--out", out, "--epochs", 10**12, "--workers", 1]
    line = one_line(run(*args), 2)
    assert "predicted to take" in line and "--allow-long" in line
    assert not out.exists()


def test_a_build_predicted_above_an_hour_says_so_and_names_the_chapter(tmp_path):
    (tmp_path / "my.yaml").write_text(
        "05_learning_rate: {epochs: 1000000000000}\n04_batch_size: {seeds: ["
        + ", ".join(map(str, range(5000)))
        + "]}\n"
    )
    params = checked((tmp_path / "my.yaml").read_text(), tmp_path)
    with pytest.raises(ValueError, match=r"predicted to take about .* h.*05_learning_rate.*--allow-long"):
        check_cost(params, CHAPTERS, jobs=2)
    check_cost(params, CHAPTERS, jobs=2, allow_long=True)  # the flag lets it run
    check_cost({}, CHAPTERS, jobs=1)  # the book at its defaults is well under an hour
    with pytest.raises(ValueError, match="04_batch_size"):
        check_cost({"04_batch_size": params["04_batch_size"]}, CHAPTERS, jobs=2)


def test_the_build_command_refuses_a_long_build_before_staging_anything(tmp_path):
    (tmp_path / "my.yaml").write_text("05_learning_rate: {epochs: 1000000000000}\n")
    line = one_line(run("-m", "bookdriver", "build", "--profile", "smoke", "--params", tmp_path / "my.yaml"), 2)
    assert "05_learning_rate" in line and "--allow-long" in line
