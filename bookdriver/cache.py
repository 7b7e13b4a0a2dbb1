"""The execution cache (jupyter-cache) as the driver opens it: checked first, set aside when damaged.

A disk error, a killed copy or a hand edit can leave the cache's database ``global.db`` unreadable,
or a notebook it holds (``executed/<hash>/base.ipynb``) garbled or gone. Either used to fail every
build from then on, with a traceback naming neither the file nor the fix. Now:

* ``open_cache(path)``: a database that does not read has the whole cache folder set aside, renamed
  beside itself (``.jupyter_cache.corrupt-<time>``); a new cache is made, and every chapter executes again.
* ``match(cache, nb, name)``: the cache record of a staged chapter, or None; a record whose notebook
  does not read as a notebook is dropped and its folder moved into such a folder: that chapter
  executes again, the others stay cached.

Nothing is deleted but the dropped record's row; each repair prints one warning line naming the
damaged file and where it went.

    cache = open_cache(paths.cache)
    record = match(cache, nbformat.read(path, as_version=4), path.name)  # None: execute it
"""

from __future__ import annotations

import json
import sys
import time
from pathlib import Path

__all__ = ["open_cache", "match"]

DB_NAME = "global.db"  # jupyter_cache.cache.db.DB_NAME


def _warn(text: str) -> None:
    print(f"[book] warning: {text}", file=sys.stderr)


def _aside(path: Path) -> Path:
    """A free name beside ``path`` for what is set aside: ``<name>.corrupt-<time>`` (``-2``, ... when taken)."""
    stamp = time.strftime("%Y%m%dT%H%M%S")
    aside, n = path.with_name(f"{path.name}.corrupt-{stamp}"), 1
    while aside.exists() or aside.is_symlink():
        n += 1
        aside = path.with_name(f"{path.name}.corrupt-{stamp}-{n}")
    return aside


def _database_problem(cache) -> str | None:
    """Why the cache's database does not read (None: it reads): SQLite's own check, then the two
    tables the build uses."""
    from sqlalchemy.exc import SQLAlchemyError

    try:
        with cache.db.connect() as conn:
            check = conn.exec_driver_sql("PRAGMA quick_check").scalar()
        cache.list_cache_records()
        cache.list_project_records()
    except (SQLAlchemyError, RuntimeError) as e:
        error = e.__cause__ if isinstance(e, RuntimeError) else e  # jupyter-cache wraps some in a RuntimeError
        if not isinstance(error, SQLAlchemyError):
            raise
        orig = getattr(error, "orig", None) or error
        return f"{type(orig).__name__}: {' '.join(str(orig).split())}"
    finally:
        engine = getattr(cache, "_db", None)  # (not ``cache.db``: that would open it again)
        if engine is not None:  # close the file before it may be renamed
            engine.dispose()
    return None if check == "ok" else f"SQLite's quick_check: {check}"


def open_cache(path: Path):
    """The jupyter-cache at ``path`` (created when missing); one whose database does not read is
    set aside beside itself first, with one warning line, and a new one takes its place."""
    from jupyter_cache import get_cache

    path = Path(path)
    if path.exists():
        problem = _database_problem(get_cache(str(path)))
        if problem:
            aside = _aside(path)
            path.rename(aside)
            _warn(
                f"the execution cache's database {path / DB_NAME} does not read ({problem}); the cache was "
                f"set aside as {aside} and a new one is made: every chapter executes again"
            )
    return get_cache(str(path))


def _notebook_problem(file: Path) -> str | None:
    """Why a cached notebook does not read as one (None: it does); other OS errors are raised."""
    try:
        nb = json.loads(file.read_text(encoding="utf-8"))  # as jupyter-cache reads it
    except FileNotFoundError:
        return "is missing"
    except ValueError:  # not UTF-8, or not JSON
        return "is not JSON"
    if not isinstance(nb, dict) or not isinstance(nb.get("cells"), list) or nb.get("nbformat") != 4:
        return "is not a notebook"
    return None


def _set_aside_record(cache, record, file: Path, why: str, name: str) -> None:
    """Drop a cache record whose notebook ``file`` is damaged; move the notebook's folder aside."""
    from jupyter_cache.cache.db import NbCacheRecord

    where = ""
    if file.parent.exists():
        aside = _aside(Path(cache.path)) / "executed" / file.parent.name
        aside.parent.mkdir(parents=True)
        file.parent.rename(aside)
        where = f"; it was set aside as {aside / file.name}"
    NbCacheRecord.remove_records([record.pk], cache.db)
    _warn(f"the cached notebook {file} of {name} {why}{where}; {name} executes again")


def match(cache, nb, name: str):
    """The cache record of the staged notebook ``nb`` (the chapter file ``name``), or None when the
    cache does not hold it, or held it damaged (then set aside, with one warning line)."""
    try:
        record = cache.match_cache_notebook(nb)
    except KeyError:
        return None
    file = Path(cache.path) / "executed" / record.hashkey / "base.ipynb"  # jupyter-cache's layout
    why = _notebook_problem(file)
    if why is None:
        return record
    _set_aside_record(cache, record, file, why, name)
    return None
