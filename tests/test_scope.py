"""vae_utils.publish.scope: a verdict's or a figure's scope, computed from the configs of the runs it rests on.

Synthetic frames of run configs (the columns ``sweep`` returns) against the line a reader should see.

Run: ``.venv/bin/python -m pytest tests/test_scope.py`` (a second).
"""

import pandas as pd
import pytest

from vae_utils.core.config import TrainConfig
from vae_utils.core.data import REGISTRY
from vae_utils.publish.scope import model_name, provenance_of, scope_of, scope_text, span

DIGITS = f"{REGISTRY['digits'].train_size:,} training images"  # the registry's count, never typed


def runs(seeds=range(10), start=0, **grid):
    """One row per run: every combination of ``grid``'s values (a scalar is one value) and each seed,
    with the other config columns at TrainConfig's defaults, and a run_id."""
    columns = ("dataset", "batch_size", "epochs", "optimizer", "hidden_units", "latent_dim", "architecture", "beta",
               "train_size", "binarization")  # fmt: skip
    rows = [{k: getattr(TrainConfig(), k) for k in columns}]
    for key, values in grid.items():
        values = values if isinstance(values, list) else [values]
        rows = [r | {key: v} for r in rows for v in values]
    rows = [r | {"seed": s} for r in rows for s in seeds]
    return pd.DataFrame(rows).assign(run_id=[f"r{start + i}" for i in range(len(rows))])


def text(frame, **kw):
    return scope_of(frame, **kw)["text"]


def test_one_value_of_everything_reads_as_one_line():
    assert text(runs()) == (
        f"digits ({DIGITS}, dynamic binarization), 64-256-8 MLP, Adam, batch 64, 30 epochs, 10 seeds (0–9)"
    )
    s = scope_of(runs())
    assert s["runs"] == 10 and s["seeds"] == list(range(10)) and s["batch_size"] == [64] and s["tuned_on"] is None


def test_several_batch_sizes_and_epochs_read_as_a_range_or_a_pair():
    assert "batches 16 to 512, 30 epochs" in text(runs(batch_size=[16, 64, 512]))
    assert "batches 16 and 1,024, 10 and 100 epochs" in text(runs(batch_size=[1024, 16], epochs=[100, 10]))
    assert scope_of(runs(batch_size=[16, 64, 512]))["runs"] == 30


@pytest.mark.parametrize(
    ("seeds", "words"),
    [
        ([3], "1 seed (3)"),
        (range(5, 8), "3 seeds (5–7)"),
        ([0, 2, 4], "3 seeds (0, 2, 4)"),
        ([9, 1, 5, 3, 7, 11, 13, 15], "8 seeds (1, 3, 5, 7, 9, 11…)"),
    ],
)
def test_seeds_are_counted_and_named_contiguous_as_a_range(seeds, words):
    assert text(runs(seeds=seeds)).endswith(words)


def test_the_training_images_are_the_registrys_count_or_the_runs_train_size():
    assert f"({DIGITS}," in text(runs(train_size=None))
    assert f"({DIGITS}," in text(runs(train_size=0))  # 0: the whole split
    assert "(500 training images," in text(runs(train_size=500))
    assert f"(500 and {DIGITS}," in text(runs(train_size=[None, 500]))  # NaN in the column: the whole split


def test_several_datasets_each_count_their_own_training_images():
    full = f"{REGISTRY['digits'].train_size:,} and {REGISTRY['mnist'].train_size:,} training images"
    assert text(runs(dataset=["mnist", "digits"])).startswith(f"digits and MNIST ({full}, dynamic binarization)")
    assert "64-256-8 MLP and 784-256-8 MLP" in text(runs(dataset=["mnist", "digits"]))


def test_static_binarization_beta_other_than_one_and_the_model_are_said():
    assert "(" + DIGITS + ", static binarization)" in text(runs(binarization="static"))
    assert "β" not in text(runs())
    assert ", β 4, " in text(runs(beta=4.0)) and ", β 0.5 and 1, " in text(runs(beta=[1.0, 0.5]))
    assert ", 64-128-64-16 MLP, " in text(runs(hidden_units=(128, 64), latent_dim=16))
    assert ", conv VAE (16 latent dimensions), " in text(runs(dataset="mnist", architecture="conv", latent_dim=16))
    assert model_name("digits", "mlp", (256,), 8) == "64-256-8 MLP"


def test_optimizers_are_named_as_people_write_them():
    assert ", Adam and SGD, " in text(runs(optimizer=["sgd", "adam"]))
    assert ", Adam, SGD with momentum and SGD, " in text(runs(optimizer=["sgd", "adam", "momentum"]))


def test_settings_tuned_on_other_seeds_are_said_after_the_seeds():
    assert text(runs(), tuned_on=[12, 10, 11]).endswith("10 seeds (0–9); rates tuned on 3 other seeds (10–12)")
    assert text(runs(), tuned_on=[20]).endswith("; rates tuned on 1 other seed (20)")
    assert text(runs(), tuned_on=[20, 22], tuned="the batch size").endswith(
        "; the batch size tuned on 2 other seeds (20, 22)"
    )
    assert scope_of(runs(), tuned_on=[12, 10])["tuned_on"] == [10, 12]


def test_columns_a_frame_lacks_take_the_config_defaults():
    frame = pd.DataFrame({"seed": [0, 1], "batch_size": [32, 32]})
    d = TrainConfig()
    assert text(frame) == (
        f"{d.dataset} ({DIGITS}, {d.binarization} binarization), 64-256-8 MLP, Adam, batch 32, {d.epochs} epochs, "
        "2 seeds (0–1)"
    )


def test_several_frames_are_one_scope_and_a_run_they_share_counts_once():
    a, b = runs(batch_size=16), runs(batch_size=256, start=10)
    s = scope_of([a, b])
    assert s["runs"] == 20 and s["batch_size"] == [16, 256]
    assert scope_of([a, a.iloc[:3]])["runs"] == 10  # the same run_id twice is one run
    assert scope_of([]) == {"runs": 0, "diverged": 0, "text": "no runs"} and scope_of(runs().iloc[:0])["runs"] == 0


def test_provenance_of_a_frame_or_frames_is_their_scope_and_run_count():
    assert provenance_of(runs()) == {"scope": text(runs()), "runs": 10}
    two = [runs(batch_size=16), runs(batch_size=256, start=10)]
    assert provenance_of(two) == {"scope": text(two), "runs": 20}
    assert provenance_of(tuple(two)) == provenance_of(two) == provenance_of(f for f in two)


def test_provenance_of_a_dict_or_none_is_kept_and_anything_else_is_refused():
    d = {"params": {"lr": 0.001}, "seeds": [0, 1], "runs": 2}
    assert provenance_of(d) is d and provenance_of(None) is None
    allowed = r"is not allowed; allowed: a dict, None, or the runs \(data frames\)"
    for bad, shown in (
        ("runs.csv", "'runs.csv'"),
        (5, "5"),
        ([runs(), "x"], r"\[DataFrame, str\]"),
        ({"r0"}, "{'r0'}"),
    ):
        with pytest.raises(ValueError, match=rf"^provenance={shown} {allowed}$"):
            provenance_of(bad)


def test_span_says_one_two_or_a_range():
    assert span([64]) == "64" and span([16, 32], "epochs") == "16 and 32 epochs"
    assert span([16, 64, 512], many="from ") == "from 16 to 512" and span([0.5, 1.0]) == "0.5 and 1"


def test_a_scope_line_names_a_dataset_by_its_title_not_its_identifier():
    line = scope_text(scope_of(pd.DataFrame([{"dataset": "fashion_mnist", "train_size": 5000, "seed": 0}])))
    assert line.startswith("Fashion-MNIST (5,000 training images") and "fashion_mnist" not in line
