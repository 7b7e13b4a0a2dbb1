"""Experiments: grids of training runs through a papermill template, cached in a results store.

    from vae_utils.experiments import sweep, default_store, load_results, load_histories
    df = sweep({"batch_size": [32, 64], "seeds": [0, 1, 2]}, out=default_store("demo"))
    runs = load_results(default_store("demo"))          # one row per run in the store

Modules: ``grid`` (a grid's configs, where results go), ``store`` (one directory per run, written
atomically, locked while trained), ``runner`` (``sweep``: papermill kernels over slices of the
grid, local or on Dask; Ctrl-C stops it cleanly), ``results`` (a store as pandas tables),
``processes`` (Ctrl-C as a stop request, stopping a process tree) and the template ``train_vae.ipynb``
(package data). The science toolkit does not import this subpackage; it imports the toolkit.
"""

from .grid import default_store, expand_grid
from .ledger import publish_runs
from .results import load_curves, load_histories, load_results, load_step_losses
from .runner import sweep, sweep_each

__all__ = ["sweep", "sweep_each", "expand_grid", "default_store", "load_results", "load_histories",
           "load_step_losses", "load_curves", "publish_runs"]  # fmt: skip
