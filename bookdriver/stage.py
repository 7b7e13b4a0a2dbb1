"""Staging: the book's sources copied into ``<out>/src`` with each chapter's parameters injected.

A file is written only when its content changed, so an unchanged book is neither re-read by Sphinx
nor re-executed. A chapter's injected cell (papermill's ``injected-parameters``) holds that
chapter's overrides and the toolkit's code version, and nothing else: a parameter file for one
chapter changes that chapter's cell only, and a changed toolkit re-executes every chapter (the
execution cache keys on a notebook's code, so a stale page is never served). MathJax 3 is copied
from the ``django-static-mathjax`` wheel into ``_extra/mathjax``: the book needs no CDN.
"""

from __future__ import annotations

import errno
import filecmp
import shutil
import sys
from pathlib import Path

from vae_utils.fileio import atomic_path

from .paths import BookPaths

__all__ = [
    "toc_files",
    "source_of",
    "plan",
    "Plan",
    "write_notebooks",
    "stage",
    "sync_tree",
    "write_if_changed",
    "check_free_space",
    "MARKER",
]

SOURCES = (
    "_config.yml",
    "references.bib",
    "_static/custom.css",
    "_static/findings.js",  # the Findings table's sorting and filters (every page loads it; it acts on that table)
)  # copied as they are, when present; _toc.yml is filtered
EXTENSIONS = "_ext"  # the book's own Sphinx extensions (_config.yml: sphinx.local_extensions), copied when present
MATHJAX_KEEP = ("tex-chtml.js", "a11y", "adaptors", "input", "output", "sre", "ui")
MARKER = ".staged-by-bookdriver"  # in every folder the driver owns: it prunes no other
# What a build writes besides the staged sources, in bytes: the execution cache's notebooks, the HTML with
# its figures and Sphinx's doctrees (a smoke build of this book: 38 MB, beside 10 MB of staged sources)
BUILD_RESERVE = 100 * 2**20
WRITE_ERRORS = (errno.ENOSPC, errno.EDQUOT, errno.EFBIG, errno.EROFS)


def toc_files(toc: dict) -> list[str]:
    """Every ``file`` of a jb-book toc, root first, in order."""
    files = [toc["root"]]

    def walk(entries):
        for e in entries or []:
            if "file" in e:
                files.append(e["file"])
            walk(e.get("sections"))

    for part in toc.get("parts", []):
        walk(part.get("chapters"))
    walk(toc.get("chapters"))
    return files


def source_of(root: Path, entry: str) -> Path | None:
    for ext in (".ipynb", ".md"):
        p = root / f"{entry}{ext}"
        if p.exists():
            return p
    return None


def _pruned(entries, keep) -> list:
    out = []
    for e in entries or []:
        if "file" in e and not keep(e["file"]):
            continue
        e = dict(e)
        if "sections" in e:
            e["sections"] = _pruned(e["sections"], keep)
        out.append(e)
    return out


def _filtered_toc(toc: dict, keep) -> dict:
    """The toc without entries ``keep`` rejects; parts left empty are dropped."""
    toc = dict(toc)
    if "parts" in toc:
        parts = [dict(part, chapters=_pruned(part.get("chapters"), keep)) for part in toc["parts"]]
        toc["parts"] = [p for p in parts if p["chapters"]]
    if "chapters" in toc:
        toc["chapters"] = _pruned(toc["chapters"], keep)
    return toc


def write_if_changed(path: Path, data: bytes) -> bool:
    """Write ``data`` atomically unless ``path`` holds it already; True when written."""
    if path.exists() and path.read_bytes() == data:
        return False
    path.parent.mkdir(parents=True, exist_ok=True)
    with atomic_path(path) as tmp:  # removed again if the write fails (a full disk)
        tmp.write_bytes(data)
    return True


def _mathjax_files() -> list[tuple[Path, str]]:
    import mathjax  # the django-static-mathjax wheel: MathJax 3 under mathjax/static/mathjax/

    base = Path(mathjax.__file__).parent / "static" / "mathjax"
    es5 = base / "es5"
    files = [(base / "LICENSE", "LICENSE")]
    for keep in MATHJAX_KEEP:
        p = es5 / keep
        if p.is_file():
            files.append((p, keep))
        else:
            files += [(f, f.relative_to(es5).as_posix()) for f in sorted(p.rglob("*")) if f.is_file()]
    return files


def _claim(dest: Path) -> None:
    """Make ``dest`` the driver's (marker written), or raise ValueError when it holds foreign files."""
    marker = dest / MARKER
    if dest.exists() and not marker.exists() and any(dest.iterdir()):
        raise ValueError(
            f"{dest}: holds files the book driver did not stage; allowed: an empty or driver-owned folder "
            "(move those files away, or delete the folder if it is an old build)"
        )
    dest.mkdir(parents=True, exist_ok=True)
    if not marker.exists():
        marker.write_text("This folder is staged by the book driver (bookdriver), which may delete any file in it.\n")


def _copy(source: Path, target: Path) -> None:
    """Copy ``source`` to ``target`` atomically; a full disk names ``target`` (in ``_build``), not the source."""
    try:
        with atomic_path(target) as tmp:
            shutil.copyfile(source, tmp)
    except OSError as e:
        if e.errno in WRITE_ERRORS:  # shutil names the file it read from
            raise OSError(e.errno, e.strerror, str(target)) from None
        raise


def _free_bytes(path: Path) -> int:
    """Free bytes on the file system that holds (or will hold) ``path``."""
    while not path.exists() and path != path.parent:
        path = path.parent
    return shutil.disk_usage(path).free


def check_free_space(paths: BookPaths, p: Plan, reserve: int = BUILD_RESERVE) -> None:
    """Refuse a build whose ``_build`` file system cannot hold what staging writes plus ``reserve``
    (OSError ENOSPC naming the folder and the space needed): checked before any chapter executes."""
    new = [data for rel, data in p.wanted.items() if not (paths.src / rel).exists()]
    need = reserve + sum(d.stat().st_size if isinstance(d, Path) else len(d) for d in new)
    free = _free_bytes(paths.out)
    if free < need:
        mb = 2**20
        what = f"{free / mb:.0f} MB free; the build needs about {need / mb:.0f} MB"
        raise OSError(errno.ENOSPC, what, str(paths.out))


def sync_tree(dest: Path, wanted: dict[str, bytes | Path]) -> int:
    """Make ``dest`` hold exactly ``wanted`` (relative path -> bytes or a file to copy); return changes.

    Files are pruned only in a folder the driver created (it carries ``MARKER``): a ``dest`` that
    exists without the marker and is not empty raises ValueError and nothing in it is touched."""
    _claim(dest)
    changed = 0
    for rel, data in wanted.items():
        target = dest / rel
        if isinstance(data, Path):
            if target.exists() and filecmp.cmp(target, data, shallow=False):
                continue
            target.parent.mkdir(parents=True, exist_ok=True)
            _copy(data, target)
            changed += 1
        else:
            changed += write_if_changed(target, data)
    for f in sorted(dest.rglob("*"), reverse=True):
        rel = f.relative_to(dest).as_posix()
        if f.is_file() and rel not in wanted and rel != MARKER:
            f.unlink()
            changed += 1
        elif f.is_dir() and not any(f.iterdir()):
            f.rmdir()
    return changed


def _inject(nb, values: dict):
    """The notebook with ``values`` in an ``injected-parameters`` cell after its parameters cell."""
    from papermill.parameterize import parameterize_notebook

    for cell in nb.cells:  # papermill expects a tags list on every cell
        cell.metadata.setdefault("tags", [])
    nb.metadata.setdefault("papermill", {})  # and a papermill metadata section
    nb = parameterize_notebook(nb, values, comment="Parameters injected by the book driver (bookdriver)")
    nb.metadata.pop("papermill", None)  # keep the staged notebook stable between builds:
    for cell in nb.cells:  # papermill gives the injected cell a random id
        if "injected-parameters" in cell.metadata.get("tags", []):
            cell["id"] = "injected-parameters"
            # The page opens with the chapter's own parameters: the driver's cell is removed when it
            # only stamps the code version, and folded (hide-input) when it overrides values.
            overrides = set(values) - {"built_with_vae_utils"}
            cell.metadata["tags"].append("hide-input" if overrides else "remove-cell")
    return nb


def _sources(paths: BookPaths) -> tuple[dict, dict[str, Path]]:
    """The toc without missing chapters, and the source file of every entry."""
    import yaml

    root = paths.root
    toc = yaml.safe_load((root / "_toc.yml").read_text(encoding="utf-8"))
    entries = toc_files(toc)
    missing = [e for e in entries if source_of(root, e) is None]
    if toc["root"] in missing:
        raise FileNotFoundError(f"the book's root page {toc['root']} is missing")
    for e in missing:
        print(f"[book] skipping {e}: no {e}.ipynb or {e}.md yet", file=sys.stderr)
    toc = _filtered_toc(toc, lambda e: e not in missing)
    return toc, {e: source_of(root, e) for e in entries if e not in missing}


class Plan:
    """What staging writes: every staged file (relative path -> bytes, or a file to copy), the
    chapters' effective parameters, and the staged notebooks (stem -> notebook)."""

    def __init__(self, wanted: dict, effective: dict, notebooks: dict, pages: int):
        self.wanted, self.effective, self.notebooks, self.pages = wanted, effective, notebooks, pages


def plan(paths: BookPaths, params: dict[str, dict], origin: str = "parameters") -> Plan:
    """The staged sources of the book, not yet written; parameters are checked first."""
    import nbformat
    import yaml

    from vae_utils.experiments.template import notebook_parameters
    from vae_utils.provenance import code_version

    from .params import check_parameters

    toc, sources = _sources(paths)
    notebooks = {p.stem: nbformat.read(p, as_version=4) for p in sources.values() if p.suffix == ".ipynb"}
    params = check_parameters(params, notebooks, origin)
    defaults = {stem: {k: p.default for k, p in notebook_parameters(nb).items()} for stem, nb in notebooks.items()}
    effective = {stem: {**defaults[stem], **params.get(stem, {})} for stem in notebooks}
    wanted: dict[str, bytes | Path] = {name: paths.root / name for name in SOURCES if (paths.root / name).exists()}
    wanted.update({f"{EXTENSIONS}/{p.name}": p for p in sorted((paths.root / EXTENSIONS).glob("*.py"))})
    wanted["_toc.yml"] = (
        "# Staged by bookdriver from _toc.yml (missing chapters dropped)\n"
        + yaml.safe_dump(toc, sort_keys=False, allow_unicode=True)
    ).encode()
    staged = {}
    for path in sources.values():
        rel = path.relative_to(paths.root).as_posix()
        if path.suffix != ".ipynb":
            wanted[rel] = path
            continue
        inject = {**params.get(path.stem, {}), "built_with_vae_utils": code_version()}
        staged[path.stem] = _inject(notebooks[path.stem], inject)
        wanted[rel] = nbformat.writes(staged[path.stem]).encode()
    for src, rel in _mathjax_files():
        wanted[f"_extra/mathjax/{rel}"] = src  # html_extra_path: not _static, whose .js every page loads
    return Plan(wanted, effective, staged, len(sources))


def write_notebooks(paths: BookPaths, p: Plan) -> list[Path]:
    """Write only the staged notebooks (before execution: the pages made from them come later), remove
    staged notebooks the plan no longer has; return the staged notebooks' paths."""
    _claim(paths.src)
    wanted = {rel: data for rel, data in p.wanted.items() if rel.endswith(".ipynb")}
    for rel, data in wanted.items():
        write_if_changed(paths.src / rel, data)
    for old in paths.src.rglob("*.ipynb"):
        if old.relative_to(paths.src).as_posix() not in wanted:
            old.unlink()
    return sorted(paths.src / rel for rel in wanted)


def stage(
    paths: BookPaths, params: dict[str, dict], origin: str = "parameters", verbose: bool = True, generated=None
) -> dict:
    """Write the staged sources of the book (with ``generated``, a callable that turns the plan into
    the pages made from the executed chapters: {relative path: bytes}); return {chapter_stem:
    effective parameters}."""
    p = plan(paths, params, origin)
    wanted = {**p.wanted, **(generated(p) if generated else {})}
    changed = sync_tree(paths.src, wanted)
    if verbose:
        print(f"[book] staged {p.pages} pages into {paths.src} ({changed} files changed)", file=sys.stderr)
    return p.effective
