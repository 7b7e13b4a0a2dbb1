"""Reading a results store defensively: crafted, partial and foreign records, missing files, older code.

Run: ``.venv/bin/pytest tests/test_store_reading.py`` (seconds: one tiny run is trained in-process and
its record copied and tampered with; the sweep that re-trains a malformed record is in
``test_sweeps_faults.py``).
"""

import json
import shutil
import warnings
from pathlib import Path

import pandas as pd
import pytest

from vae_utils import TrainConfig, fileio
from vae_utils.experiments import load_histories, load_results, load_step_losses, store

TINY = {"dataset": "digits", "epochs": 1, "eval_k": 10}


@pytest.fixture(scope="module")
def trained_store(tmp_path_factory):
    """A store with one real record (a one-epoch digits run, trained here) and its step losses."""
    from vae_utils import train

    out = tmp_path_factory.mktemp("trained") / "store"
    config = TrainConfig(**TINY)
    with store.claim(out, config, "s1", "w0") as run:
        run.record(train(config))
    return out, run.run_id


@pytest.fixture
def copy(trained_store, tmp_path):
    """A fresh copy of the trained store, and its run id: tamper freely."""
    src, rid = trained_store
    shutil.copytree(src, tmp_path / "store")
    return tmp_path / "store", rid


def _edit(out, rid, change):
    path = store.run_dir(out, rid) / "record.json"
    rec = json.loads(path.read_text())
    change(rec)
    path.write_text(json.dumps(rec))


def _other_config(rec):
    rec["config"]["batch_size"] = 32


CRAFTED = {
    "truncated JSON": lambda p: p.write_text(p.read_text()[:50]),
    "a folder named record.json": lambda p: (p.unlink(), p.mkdir()),
    "not a JSON object": lambda p: p.write_text("[1, 2]"),
}
EDITS = {
    "no complete marker": (lambda r: r.pop("complete"), "no 'complete': true"),
    "another run's id": (lambda r: r.update(run_id="0123456789abcdef"), "is not its folder's"),
    "no status": (lambda r: r.pop("status"), "status None"),
    "an unknown status": (lambda r: r.update(status="great"), "status 'great'"),
    "no config": (lambda r: r.pop("config"), "config is not valid"),
    "an invalid config": (lambda r: r["config"].update(batch_size="abc"), "batch_size='abc'"),
    "a config of another run": (_other_config, "do not hash to its run id"),
    "no code version": (lambda r: r.pop("code_version"), "no 'code_version'"),
    "metrics that are not a mapping": (lambda r: r.update(metrics=[1, 2]), "'metrics' or 'history'"),
    "history values that are not lists": (lambda r: r["history"].update(loss=3), "'history' holds a value"),
}


@pytest.mark.slow
def test_a_well_formed_record_reads_back_whole(copy):
    """The untouched record of a real run is read, and each table has its row(s)."""
    out, rid = copy
    rec = store.read_record(out, rid)
    assert rec is not None and rec["status"] == "ok" and rec["run_id"] == rid
    with warnings.catch_warnings():
        warnings.simplefilter("error")  # nothing to warn about
        assert list(load_results(out)["run_id"]) == [rid]
        assert len(load_histories(out)) == 1
        assert len(load_step_losses(out)) == rec["metrics"]["steps"]


@pytest.mark.parametrize("case", sorted(CRAFTED) + sorted(EDITS))
def test_a_malformed_record_counts_as_missing_with_a_warning_naming_its_file(copy, case):
    """Truncated, foreign, partial or inconsistent records: ``read_record`` gives None (a sweep
    re-trains the run), warning with the record's path and what is wrong; the tables skip it
    instead of raising (``KeyError: 'status'``/``'config'`` before)."""
    out, rid = copy
    path = store.run_dir(out, rid) / "record.json"
    if case in CRAFTED:
        CRAFTED[case](path)
        why = ""
    else:
        change, why = EDITS[case]
        _edit(out, rid, change)
    with pytest.warns(RuntimeWarning, match=str(path)) as caught:
        assert store.read_record(out, rid) is None
    assert why in str(caught[0].message) and "trains the run again" in str(caught[0].message)
    with pytest.warns(RuntimeWarning, match=str(path)):
        assert load_results(out).empty and load_histories(out).empty and load_step_losses(out).empty


def test_step_losses_come_from_the_run_directory_never_from_a_path_in_the_record(copy, tmp_path):
    """A record pointing its ``step_loss`` outside the store is not followed: the table holds the
    run's own step losses, and the outside file is never read."""
    out, rid = copy
    outside = tmp_path / "outside.parquet"
    pd.DataFrame({"step": [1], "loss": [123456.0]}).to_parquet(outside)
    own = load_step_losses(out)
    _edit(out, rid, lambda r: r.update(step_loss="../../../outside.parquet"))
    assert (store.run_dir(out, rid) / "../../../outside.parquet").resolve() == outside
    again = load_step_losses(out)
    pd.testing.assert_frame_equal(again, own)
    assert 123456.0 not in set(again["loss"])


def test_a_missing_step_loss_file_leaves_that_run_out_of_the_step_table_only(copy):
    """The results and histories keep the run; the step table warns naming the file and is empty."""
    out, rid = copy
    (store.run_dir(out, rid) / "step_loss.parquet").unlink()
    assert list(load_results(out)["run_id"]) == [rid]
    with pytest.warns(RuntimeWarning, match="step_loss.parquet: cannot be read"):
        assert load_step_losses(out).empty


def test_loading_a_path_that_is_no_store_raises_naming_it(tmp_path):
    """A typo in the path is an error, not an empty table (which read as "no runs yet")."""
    for loader in (load_results, load_histories, load_step_losses):
        with pytest.raises(FileNotFoundError, match="no results store here") as e:
            loader(tmp_path / "no-such-store")
        assert e.value.filename == str(tmp_path / "no-such-store")
    (tmp_path / "empty").mkdir()
    assert load_results(tmp_path / "empty").empty, "an empty folder is an empty store"


def test_records_of_older_training_code_are_left_out_saying_how_many_unless_all_versions(copy):
    """The same config under an older code version is a second record of the store: by default the
    table keeps the current version's row and warns that one older record was left out;
    ``all_versions=True`` gives both rows, told apart by ``code_version``."""
    out, rid = copy
    rec = json.loads((store.run_dir(out, rid) / "record.json").read_text())
    old_id = store.run_id(TrainConfig.from_dict(rec["config"]), "0ldc0de")
    store.run_dir(out, old_id).mkdir()
    fileio.write_json(store.run_dir(out, old_id) / "record.json", rec | {"run_id": old_id, "code_version": "0ldc0de"})
    assert store.read_record(out, old_id) is not None, "a well-formed record of older code"
    with pytest.warns(UserWarning, match=r"left out 1 record\(s\) of older training code; kept 1"):
        df = load_results(out)
    assert list(df["run_id"]) == [rid]
    both = load_results(out, all_versions=True)
    assert sorted(both["code_version"]) == sorted([rec["code_version"], "0ldc0de"])
    assert len(set(both["batch_size"])) == 1, "one config, two code versions"


def test_a_record_of_older_code_with_fewer_config_fields_is_still_well_formed(copy):
    """Code that predates a TrainConfig field wrote configs without it and hashed them so: such a record
    reads back (filled with the field's default) instead of counting as crafted; a tampered one still does not."""
    out, rid = copy
    rec = json.loads((store.run_dir(out, rid) / "record.json").read_text())
    config = {k: v for k, v in rec["config"].items() if k != "eval_every"}
    old_id = store._hash(config, "0ldc0de")
    store.run_dir(out, old_id).mkdir()
    old = rec | {"run_id": old_id, "code_version": "0ldc0de", "config": config}
    fileio.write_json(store.run_dir(out, old_id) / "record.json", old)
    with warnings.catch_warnings():
        warnings.simplefilter("error")
        assert store.read_record(out, old_id) is not None
    fileio.write_json(store.run_dir(out, old_id) / "record.json", old | {"config": config | {"batch_size": 32}})
    with pytest.warns(RuntimeWarning, match="do not hash to its run id"):
        assert store.read_record(out, old_id) is None


def test_run_ids_read_only_the_runs_named_and_refuse_anything_but_a_run_id(copy):
    out, rid = copy
    assert list(load_results(out, run_ids=[rid]).run_id) == [rid]
    assert load_results(out, run_ids=["0123456789abcdef"]).empty  # no such run: no row
    with pytest.raises(ValueError, match=r"run_ids holds '\.\./x'; allowed: run ids"):
        load_results(out, run_ids=["../x"])


def test_write_json_leaves_no_temporary_file_when_the_write_fails(tmp_path):
    """A value JSON cannot hold fails before anything is written; a write whose final rename fails
    (here the target is a folder; a full disk fails the same way, see test_cli_errors) removes its
    temporary file and names the target, not the temporary file."""
    with pytest.raises(TypeError):
        fileio.write_json(tmp_path / "a.json", {"x": object()})
    assert list(tmp_path.iterdir()) == []
    (tmp_path / "a.json").mkdir()
    (tmp_path / "a.json" / "keep").write_text("x")
    with pytest.raises(IsADirectoryError) as e:
        fileio.write_json(tmp_path / "a.json", {"x": 1})
    assert e.value.filename == str(tmp_path / "a.json")
    assert [p.name for p in tmp_path.iterdir()] == ["a.json"], "no temporary file is left"


def test_records_written_by_a_run_are_strict_json(copy):
    """No NaN or Infinity tokens: any JSON reader can load a store."""
    out, rid = copy
    text = (store.run_dir(out, rid) / "record.json").read_text()
    json.loads(text, parse_constant=lambda c: pytest.fail(f"non-standard JSON constant {c}"))
    assert Path(store.run_dir(out, rid) / "step_loss.parquet").is_file()
