"""Build the HTML book with a parameter profile: ``python -m vae_utils.book build``.

    python -m vae_utils.book build                          # full profile -> _build/html
    python -m vae_utils.book build --params my.yaml         # a reader's parameters -> _build/html
    python -m vae_utils.book build --profile smoke          # tiny grids  -> _build/smoke/_build/html
    python -m vae_utils.book params --profile smoke         # print every chapter's parameters

``python vae_utils/book.py ...`` is the same without importing TensorFlow (what ``make book`` runs).

Why a driver: Jupyter Book's cache (jupyter-cache) keys on a notebook's code, so parameters
must change the notebook itself. The driver

1) stages the book sources (``_config.yml``, ``_toc.yml``, ``references.bib``, ``chapters/``)
   into ``<out>/src``, writing a file only when its content changed, so an unchanged book is
   neither re-read by Sphinx nor re-executed;
2) injects parameters with papermill's ``parameterize_notebook`` (a visible cell tagged
   ``injected-parameters`` after the chapter's ``parameters`` cell) from
   ``profiles/<profile>/<chapter_stem>.yaml`` and then from ``--params FILE`` (YAML keyed by
   chapter stem, e.g. ``04_batch_size: {epochs: 10}``); unknown chapters or parameter names
   are refused before anything runs. ``14_reproducing`` also receives every chapter's
   effective parameters, so its table is re-executed whenever any of them changes;
3) copies MathJax 3 (the ``django-static-mathjax`` wheel) into ``_extra/mathjax`` (served as
   ``<html>/mathjax``, see ``_config.yml``): no CDN;
4) executes the chapters that the execution cache does not hold, ``--jobs`` at a time (default 2),
   into that cache (jupyter-cache, as MyST-NB would, one kernel per chapter, in the chapter's
   folder): MyST-NB alone executes one chapter after the other;
5) runs ``jupyter-book build <out>/src --path-output <out> -W -n --keep-going``: warnings are
   errors, every failing chapter is reported (a chapter that failed in step 4 is executed again
   here, so its report lands in ``<html>/reports``);
6) extracts every glued figure of the executed pages into ``<html>/_static/figures/``
   as ``<name>.svg`` and ``<name>.png``, with ``index.json`` and ``index.html`` listing the
   captions (see ``vae_utils.figures``).

Output folders: ``full`` builds into ``_build`` (HTML in ``_build/html``, the execution cache
in ``_build/.jupyter_cache``); any other profile into ``_build/<profile>``, so a smoke build
never touches the full book.
"""

from __future__ import annotations

import argparse
import ast
import base64
import filecmp
import hashlib
import html
import json
import os
import shutil
import subprocess
import sys
import time
from pathlib import Path

if __name__ == "__main__" and not __package__:
    # Run as a file (`python vae_utils/book.py`, what `make book` does): the `vae_utils` package is
    # not imported, so TensorFlow does not start; and this folder must not shadow top-level modules
    # for the third-party imports below (all made inside functions).
    _here = os.path.dirname(os.path.abspath(__file__))
    sys.path = [p for p in sys.path if os.path.abspath(p or ".") != _here]

__all__ = [
    "ROOT",
    "BookPaths",
    "book_paths",
    "load_parameters",
    "notebook_parameters",
    "toc_files",
    "stage",
    "execute_missing",
    "collect_figures",
    "build",
    "main",
]

ROOT = Path(__file__).resolve().parent.parent  # the repository: _config.yml, _toc.yml, chapters/
SOURCES = ("_config.yml", "references.bib")  # copied as they are; _toc.yml is filtered
REPRODUCING = "14_reproducing"  # receives every chapter's parameters
MATHJAX_KEEP = ("tex-chtml.js", "a11y", "adaptors", "input", "output", "sre", "ui")


class BookPaths:
    """Where one profile's build lives."""

    def __init__(self, root: Path, profile: str):
        self.root = Path(root)
        self.profile = profile
        self.out = self.root / "_build" if profile == "full" else self.root / "_build" / profile
        self.src = self.out / "src"  # staged sources
        self.build = self.out / "_build" if profile != "full" else self.out  # jupyter-book's _build
        self.html = self.build / "html"
        self.executed = self.build / "jupyter_execute"
        self.reports = self.html / "reports"
        self.figures = self.html / "_static" / "figures"

    @property
    def path_output(self) -> Path:
        """What ``jupyter-book build --path-output`` gets (it appends ``_build``)."""
        return self.root if self.profile == "full" else self.out


def book_paths(profile: str = "full", root: Path = ROOT) -> BookPaths:
    return BookPaths(root, profile)


# ---------------------------------------------------------------- table of contents


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


def _source_of(root: Path, entry: str) -> Path | None:
    for ext in (".ipynb", ".md"):
        p = root / f"{entry}{ext}"
        if p.exists():
            return p
    return None


def _filtered_toc(toc: dict, keep) -> dict:
    """The toc without entries ``keep`` rejects; parts left empty are dropped."""

    def prune(entries):
        out = []
        for e in entries or []:
            if "file" in e and not keep(e["file"]):
                continue
            e = dict(e)
            if "sections" in e:
                e["sections"] = prune(e["sections"])
            out.append(e)
        return out

    toc = dict(toc)
    if "parts" in toc:
        parts = []
        for part in toc["parts"]:
            part = dict(part, chapters=prune(part.get("chapters")))
            if part["chapters"]:
                parts.append(part)
        toc["parts"] = parts
    if "chapters" in toc:
        toc["chapters"] = prune(toc["chapters"])
    return toc


# ---------------------------------------------------------------- parameters


def notebook_parameters(nb) -> dict:
    """The defaults of a notebook's ``parameters`` cell, as Python values (flat primitives)."""
    cells = [c for c in nb.cells if "parameters" in c.get("metadata", {}).get("tags", [])]
    if not cells:
        return {}
    out = {}
    tree = ast.parse(cells[0].source)
    for node in tree.body:
        if isinstance(node, (ast.Assign, ast.AnnAssign)):
            targets = node.targets if isinstance(node, ast.Assign) else [node.target]
            for t in targets:
                if isinstance(t, ast.Name):
                    try:
                        out[t.id] = ast.literal_eval(node.value)
                    except ValueError:
                        out[t.id] = ast.unparse(node.value)
    return out


def _read_yaml(path: Path) -> dict:
    import yaml

    with open(path, encoding="utf-8") as f:
        data = yaml.safe_load(f) or {}
    if not isinstance(data, dict):
        raise ValueError(f"{path}: expected a mapping, got {type(data).__name__}")
    return data


def load_parameters(profile: str, params_file: str | Path | None = None, root: Path = ROOT) -> dict[str, dict]:
    """{chapter_stem: {name: value}}: ``profiles/<profile>/*.yaml``, then ``params_file`` on top."""
    prof_dir = root / "profiles" / profile
    if profile != "full" and not prof_dir.is_dir():
        known = sorted(p.name for p in (root / "profiles").iterdir() if p.is_dir())
        raise ValueError(f"profile={profile!r} is not known; allowed: {', '.join(known)}")
    out: dict[str, dict] = {}
    for path in sorted(prof_dir.glob("*.yaml")) if prof_dir.is_dir() else []:
        out.setdefault(path.stem, {}).update(_read_yaml(path))
    if params_file:
        for stem, values in _read_yaml(Path(params_file)).items():
            if not isinstance(values, dict):
                raise ValueError(f"{params_file}: {stem!r} must map parameter names to values")
            out.setdefault(str(stem), {}).update(values)
    return out


def _check_parameters(params: dict[str, dict], notebooks: dict[str, object], origin: str):
    for stem, values in params.items():
        if stem not in notebooks:
            raise ValueError(f"{origin}: chapter {stem!r} is not known; allowed: {', '.join(sorted(notebooks))}")
        allowed = notebook_parameters(notebooks[stem])
        unknown = sorted(set(values) - set(allowed))
        if unknown:
            raise ValueError(
                f"{origin}: {stem} has no parameter {', '.join(unknown)}; allowed: {', '.join(allowed) or '(none)'}"
            )


# ---------------------------------------------------------------- staging


def _write_if_changed(path: Path, data: bytes) -> bool:
    if path.exists() and path.read_bytes() == data:
        return False
    path.parent.mkdir(parents=True, exist_ok=True)
    tmp = path.with_name(path.name + ".tmp")
    tmp.write_bytes(data)
    os.replace(tmp, path)
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


def _sync_tree(dest: Path, wanted: dict[str, bytes | Path]) -> int:
    """Make ``dest`` hold exactly ``wanted`` (relative path -> bytes or a file to copy); return changes."""
    changed = 0
    for rel, data in wanted.items():
        target = dest / rel
        if isinstance(data, Path):
            if target.exists() and filecmp.cmp(target, data, shallow=False):
                continue
            target.parent.mkdir(parents=True, exist_ok=True)
            shutil.copyfile(data, target)
            changed += 1
        else:
            changed += _write_if_changed(target, data)
    if dest.exists():
        for f in sorted(dest.rglob("*"), reverse=True):
            rel = f.relative_to(dest).as_posix()
            if f.is_file() and rel not in wanted:
                f.unlink()
                changed += 1
            elif f.is_dir() and not any(f.iterdir()):
                f.rmdir()
    return changed


def stage(paths: BookPaths, params: dict[str, dict], origin: str = "parameters", verbose: bool = True) -> dict:
    """Write the staged sources of the book; return {chapter_stem: effective parameters}."""
    import nbformat
    import yaml
    from papermill.parameterize import parameterize_notebook

    root = paths.root
    toc = yaml.safe_load((root / "_toc.yml").read_text(encoding="utf-8"))
    entries = toc_files(toc)
    missing = [e for e in entries if _source_of(root, e) is None]
    if toc["root"] in missing:
        raise FileNotFoundError(f"the book's root page {toc['root']} is missing")
    for e in missing:
        print(f"[book] skipping {e}: no {e}.ipynb or {e}.md yet", file=sys.stderr)
    toc = _filtered_toc(toc, lambda e: e not in missing)
    sources = {e: _source_of(root, e) for e in entries if e not in missing}

    notebooks = {p.stem: nbformat.read(p, as_version=4) for p in sources.values() if p.suffix == ".ipynb"}
    _check_parameters(params, notebooks, origin)
    effective = {stem: {**notebook_parameters(nb), **params.get(stem, {})} for stem, nb in notebooks.items()}

    from vae_utils.figures import code_version  # light: no TensorFlow

    version = code_version()
    wanted: dict[str, bytes | Path] = {name: root / name for name in SOURCES}
    wanted["_toc.yml"] = (
        "# Staged by vae_utils.book from ../../_toc.yml (missing chapters dropped)\n"
        + yaml.safe_dump(toc, sort_keys=False, allow_unicode=True)
    ).encode()
    for path in sources.values():
        rel = path.relative_to(root).as_posix()
        if path.suffix != ".ipynb":
            wanted[rel] = path
            continue
        nb, inject = notebooks[path.stem], dict(params.get(path.stem, {}))
        # The execution cache keys on a notebook's code only: naming the toolkit's version in the
        # injected cell re-executes every chapter when vae_utils changes, never a stale page.
        inject["built_with_vae_utils"] = version
        if path.stem == REPRODUCING and "book_parameters_json" in notebook_parameters(nb):
            inject["book_parameters_json"] = json.dumps(effective, sort_keys=True, default=str)
            inject["book_profile"] = paths.profile
        if inject:
            for cell in nb.cells:  # papermill expects a tags list on every cell
                cell.metadata.setdefault("tags", [])
            nb.metadata.setdefault("papermill", {})  # and a papermill metadata section
            nb = parameterize_notebook(
                nb, inject, comment=f"Parameters injected by `python -m vae_utils.book` ({origin})"
            )
            nb.metadata.pop("papermill", None)  # keep the staged notebook stable between builds:
            for cell in nb.cells:  # papermill gives the injected cell a random id
                if "injected-parameters" in cell.metadata.get("tags", []):
                    cell["id"] = "injected-parameters"
        wanted[rel] = nbformat.writes(nb).encode()
    for src, rel in _mathjax_files():
        wanted[f"_extra/mathjax/{rel}"] = (
            src  # html_extra_path: not in _static, whose .js Jupyter Book loads on every page
        )
    changed = _sync_tree(paths.src, wanted)
    if verbose:
        print(f"[book] staged {len(sources)} pages into {paths.src} ({changed} files changed)", file=sys.stderr)
    return effective


# ---------------------------------------------------------------- figures


def collect_figures(paths: BookPaths) -> list[dict]:
    """Write every glued figure as ``<name>.svg|png`` into ``<html>/_static/figures``.

    MyST-NB stores each page's glued outputs in ``jupyter_execute/<page>.glue.json`` whether the
    page was executed or taken from the cache, so the files always match the pages.
    """
    found = []
    for glue_path in sorted(paths.executed.rglob("*.glue.json")):
        glued = {k: v.get("data", {}) for k, v in json.loads(glue_path.read_text(encoding="utf-8")).items()}
        page = glue_path.relative_to(paths.executed).as_posix().removesuffix(".glue.json") + ".html"
        for name, data in glued.items():
            if "image/svg+xml" not in data and "image/png" not in data:
                continue
            caption = glued.get(f"{name}-caption", {}).get("text/plain", "")
            try:
                caption = str(ast.literal_eval(caption))
            except (ValueError, SyntaxError):
                pass
            files = []
            if "image/svg+xml" in data:
                svg = data["image/svg+xml"]
                svg = "".join(svg) if isinstance(svg, list) else svg
                _write_if_changed(paths.figures / f"{name}.svg", svg.encode())
                files.append(f"{name}.svg")
            if "image/png" in data:
                _write_if_changed(paths.figures / f"{name}.png", base64.b64decode(data["image/png"]))
                files.append(f"{name}.png")
            found.append({"name": name, "page": page, "caption": caption, "files": files})
    if found:
        _write_if_changed(paths.figures / "index.json", json.dumps(found, indent=2).encode())
        _write_if_changed(paths.figures / "index.html", _figure_index_html(found).encode())
    return found


def _figure_index_html(figures: list[dict]) -> str:
    rows = "\n".join(
        f'<tr><td><a href="../../{html.escape(f["page"])}">{html.escape(f["name"])}</a></td>'
        f"<td>{' '.join(f'<a href={chr(34)}{html.escape(x)}{chr(34)}>{html.escape(x)}</a>' for x in f['files'])}</td>"
        f"<td>{html.escape(f['caption'])}</td></tr>"
        for f in figures
    )
    return (
        '<!DOCTYPE html>\n<html lang="en"><head><meta charset="utf-8"><title>Figures</title>'
        "<style>body{font-family:sans-serif;margin:2em}td{vertical-align:top;padding:.3em .6em}"
        "tr:nth-child(even){background:#f4f4f4}</style></head><body>\n"
        "<h1>Figures of <em>VAE Training Strategies</em></h1>\n"
        "<p>Every figure of the book, as SVG and PNG, with its provenance caption.</p>\n"
        f"<table><tr><th>Figure</th><th>Files</th><th>Caption</th></tr>\n{rows}\n</table></body></html>\n"
    )


# ---------------------------------------------------------------- execution


def execute_missing(paths: BookPaths, jobs: int = 2, timeout: int | None = None) -> dict[str, str]:
    """Execute the staged notebooks missing from the execution cache, ``jobs`` at a time; cache them.

    Returns {notebook: "cached" | "executed" | "failed: <error>"}. Uses jupyter-cache exactly as
    MyST-NB's ``cache`` mode does, so the build then finds every successful chapter in the cache.
    """
    import multiprocessing
    from concurrent.futures import ProcessPoolExecutor

    import nbformat
    import yaml
    from jupyter_cache import get_cache
    from jupyter_cache.base import CacheBundleIn
    from jupyter_cache.executors.utils import single_nb_execution

    if timeout is None:
        cfg = yaml.safe_load((paths.src / "_config.yml").read_text(encoding="utf-8")) or {}
        timeout = int(cfg.get("execute", {}).get("timeout", 1200))
    cache = get_cache(str(paths.build / ".jupyter_cache"))
    status, todo = {}, []
    for path in sorted(paths.src.glob("chapters/*.ipynb")):
        nb = nbformat.read(path, as_version=4)
        try:
            cache.match_cache_notebook(nb)
            status[path.name] = "cached"
        except KeyError:
            todo.append((path, nb))
    if not todo:
        return status
    print(f"[book] executing {len(todo)} chapters, {jobs} at a time", file=sys.stderr)
    # "spawn": a fresh interpreter per worker (never a fork of a process that may hold TensorFlow);
    # the workers import only jupyter-cache and nbclient.
    with ProcessPoolExecutor(max_workers=max(1, jobs), mp_context=multiprocessing.get_context("spawn")) as pool:
        futures = {
            path: pool.submit(single_nb_execution, nb, cwd=str(path.parent), timeout=timeout, allow_errors=False)
            for path, nb in todo
        }
        for path, future in futures.items():
            try:
                result = future.result()
            except Exception as e:  # the worker itself failed
                status[path.name] = f"failed: {type(e).__name__}: {e}"
                continue
            if result.err is not None:
                status[path.name] = f"failed: {type(result.err).__name__}"
                continue
            stage_record = cache.add_nb_to_project(str(path))
            cache.cache_notebook_bundle(
                CacheBundleIn(result.nb, stage_record.uri, data={"execution_seconds": result.time}),
                check_validity=False,
                overwrite=True,
            )
            status[path.name] = f"executed in {result.time:.1f} s"
            print(f"[book] {path.name}: {status[path.name]}", file=sys.stderr)
    return status


# ---------------------------------------------------------------- build


def _jupyter_book() -> list[str]:
    exe = Path(sys.executable).parent / "jupyter-book"
    return [str(exe)] if exe.exists() else [sys.executable, "-m", "jupyter_book.cli.main"]


def build(
    profile: str = "full",
    params_file: str | Path | None = None,
    root: Path = ROOT,
    all_pages: bool = False,
    quiet: bool = False,
    jobs: int = 2,
) -> int:
    """Stage, execute and build the book; return jupyter-book's exit code (0: success)."""
    t0 = time.perf_counter()
    paths = book_paths(profile, root)
    params = load_parameters(profile, params_file, root)
    origin = f"profile {profile}" + (f", file {Path(params_file).name}" if params_file else "")
    stage(paths, params, origin)
    # Inherited by every kernel (the pre-execution workers' and MyST-NB's).
    env = os.environ
    env["VAE_BOOK_FIGURES"] = ""  # the driver extracts figures from the executed notebooks
    env["VAE_BOOK_PROFILE"] = profile
    env.setdefault("TF_CPP_MIN_LOG_LEVEL", "3")
    env.setdefault("PYDEVD_DISABLE_FILE_VALIDATION", "1")
    env["PYTHONPATH"] = os.pathsep.join(filter(None, [str(root), env.get("PYTHONPATH", "")]))
    if jobs > 1:
        for name, state in execute_missing(paths, jobs).items():
            if state.startswith("failed"):
                print(f"[book] {name}: {state}; the build executes it again and reports", file=sys.stderr)
    # Sphinx re-reads only changed pages, so a page that warned last time would not warn again:
    # after a failed build, every page is read again (executed pages come from the cache).
    failed_marker = paths.build / ".last-build-failed"
    fresh = all_pages or failed_marker.exists()
    if paths.reports.exists():
        shutil.rmtree(paths.reports)  # reports of earlier builds must not look like this one's
    cmd = [*_jupyter_book(), "build", str(paths.src), "--path-output", str(paths.path_output)]
    cmd += ["-W", "-n", "--keep-going"] + (["--all"] if fresh else []) + (["-q"] if quiet else [])
    print(f"[book] {' '.join(cmd)}", file=sys.stderr)
    rc = subprocess.call(cmd, cwd=root)
    figures = collect_figures(paths) if paths.html.exists() else []
    pages_of: dict[str, set] = {}
    for f in figures:
        pages_of.setdefault(f["name"], set()).add(f["page"])
    clashes = {name: sorted(pages) for name, pages in pages_of.items() if len(pages) > 1}
    if clashes:  # one file name, two figures: a download would show the wrong one
        print(f"[book] error: figure names used on several pages: {clashes}", file=sys.stderr)
        rc = rc or 1
    dt = time.perf_counter() - t0
    reports = sorted(paths.reports.glob("**/*.log")) if paths.reports.exists() else []
    print(f"[book] {len(figures)} figures in {paths.figures}", file=sys.stderr)
    if reports:
        print("[book] execution reports:\n  " + "\n  ".join(str(r) for r in reports), file=sys.stderr)
    if rc:
        failed_marker.parent.mkdir(parents=True, exist_ok=True)
        failed_marker.touch()
    else:
        failed_marker.unlink(missing_ok=True)
    status = "built" if rc == 0 else f"FAILED (exit {rc})"
    print(f"[book] {status} in {dt:.1f} s: {paths.html / 'index.html'}", file=sys.stderr)
    return rc


def _digest(obj) -> str:
    return hashlib.sha256(json.dumps(obj, sort_keys=True, default=str).encode()).hexdigest()[:12]


def main(argv=None) -> int:
    parser = argparse.ArgumentParser(prog="python -m vae_utils.book", description=__doc__.splitlines()[0])
    sub = parser.add_subparsers(dest="command", required=True)
    for name, help_ in (("build", "stage, execute and build the HTML book"), ("params", "print the parameters")):
        p = sub.add_parser(name, help=help_)
        p.add_argument("--profile", default="full", help="full (default) or a folder of profiles/, e.g. smoke")
        p.add_argument("--params", metavar="FILE", help="YAML keyed by chapter stem: {04_batch_size: {epochs: 10}}")
        p.add_argument("--root", type=Path, default=ROOT, help=argparse.SUPPRESS)
        if name == "build":
            p.add_argument("--all", action="store_true", help="re-read every page (the execution cache still holds)")
            p.add_argument("-q", "--quiet", action="store_true")
            p.add_argument(
                "-j", "--jobs", type=int, default=2, help="chapters executed at once (default 2; 1: MyST-NB alone)"
            )
    args = parser.parse_args(argv)
    try:
        if args.command == "build":
            return build(args.profile, args.params, args.root, args.all, args.quiet, args.jobs)
        paths = book_paths(args.profile, args.root)
        effective = stage(paths, load_parameters(args.profile, args.params, args.root), verbose=False)
        print(json.dumps({"profile": args.profile, "digest": _digest(effective), "chapters": effective}, indent=2))
        return 0
    except (ValueError, FileNotFoundError) as e:
        print(f"error: {e}", file=sys.stderr)
        return 2


if __name__ == "__main__":
    sys.exit(main())
