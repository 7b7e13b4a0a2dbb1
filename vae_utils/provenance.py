"""What produced a result: fingerprints of the toolkit's code, and the versions of its libraries.

    from vae_utils.provenance import code_version, training_version
    code_version()       # "0.2.0+3f2a9c1e": every vae_utils module; stamped on figures and pages
    training_version()   # "9b1c0e44d2aa": the code a training run's result depends on; the run cache key

One mechanism, two scopes. A module's fingerprint is its abstract syntax tree without docstrings
(comments and layout are not in it), so editing prose changes neither version, and changing
anything that runs changes the one it belongs to:

* ``code_version`` covers every module of the package: a book page or figure made with other code
  gets another stamp, and the book driver re-executes the chapter.
* ``training_version`` covers the modules that ``vae_utils.core.training`` and the results store import,
  followed transitively, plus the code cells of the papermill template: a stored run made with
  other code is not reused. Plotting or statistics edits leave the stored runs valid. The record
  format (``experiments.store.SCHEMA``) is the store's own; it is in the store module's code, so
  changing it changes this version too.
"""

from __future__ import annotations

import ast
import contextlib
import functools
import hashlib
import json
import platform
import threading
from pathlib import Path

__all__ = ["PACKAGE", "code_version", "training_version", "module_fingerprint", "imported_modules", "versions"]

PACKAGE = Path(__file__).resolve().parent
TRAINING_ROOTS = ("vae_utils.core.training", "vae_utils.experiments.store")
_AST_LOCK = threading.Lock()  # CPython 3.11's ast.parse is not safe in concurrent threads (SystemError)


def _parse(path: Path) -> ast.Module:
    with _AST_LOCK:
        return ast.parse(path.read_text(encoding="utf-8"))


def _module_path(name: str) -> Path | None:
    """The file of a ``vae_utils`` module (``a.b`` -> a/b.py or a/b/__init__.py), or None."""
    parts = name.split(".")[1:]
    base = PACKAGE.joinpath(*parts)
    for p in (base.with_suffix(".py"), base / "__init__.py"):
        if p.is_file():
            return p
    return None


def _imports_of(name: str) -> set[str]:
    """The ``vae_utils`` modules that module ``name`` imports (relative or absolute)."""
    path = _module_path(name)
    package = name if path is not None and path.name == "__init__.py" else name.rsplit(".", 1)[0]
    found = set()
    for node in ast.walk(_parse(path)):
        if isinstance(node, ast.ImportFrom):
            base = node.module or ""
            if node.level:
                anchor = package.rsplit(".", node.level - 1)[0] if node.level > 1 else package
                base = f"{anchor}.{base}" if base else anchor
            if base == "vae_utils" or base.startswith("vae_utils."):
                found.add(base)
                found.update(f"{base}.{a.name}" for a in node.names)  # `from . import store`
        elif isinstance(node, ast.Import):
            found.update(a.name for a in node.names if a.name.startswith("vae_utils."))
    return {m for m in found if _module_path(m) is not None and m != "vae_utils"}


def imported_modules(roots=TRAINING_ROOTS) -> list[str]:
    """``roots`` and every ``vae_utils`` module they import, transitively, sorted."""
    todo, seen = list(roots), set()
    while todo:
        name = todo.pop()
        if name not in seen:
            seen.add(name)
            todo.extend(_imports_of(name))
    return sorted(seen)


def module_fingerprint(path: Path) -> bytes:
    """A module's code without docstrings, comments or layout (its AST dump)."""
    tree = _parse(Path(path))
    for node in ast.walk(tree):
        body = getattr(node, "body", None)
        if isinstance(node, (ast.Module, ast.ClassDef, ast.FunctionDef, ast.AsyncFunctionDef)) and body:
            first = body[0]
            if (
                isinstance(first, ast.Expr)
                and isinstance(first.value, ast.Constant)
                and isinstance(first.value.value, str)
            ):
                node.body = body[1:] or [ast.Pass()]
    return ast.dump(tree).encode()


def _template_code(path: Path) -> str:
    """The template's code cells only: outputs, metadata and prose do not change what it computes."""
    nb = json.loads(path.read_text(encoding="utf-8"))
    return "\n".join("".join(c["source"]) for c in nb["cells"] if c["cell_type"] == "code")


def _digest(modules: list[str], extra: bytes = b"") -> str:
    h = hashlib.sha256()
    for name in modules:
        h.update(f"--- {name}\n".encode())
        h.update(module_fingerprint(_module_path(name)))
    h.update(extra)
    return h.hexdigest()


@functools.cache
def code_version() -> str:
    """``<version>+<hash>`` of every module of the package: what produced a figure or a page."""
    from . import __version__

    modules = sorted(
        "vae_utils." + ".".join(p.relative_to(PACKAGE).with_suffix("").parts).removesuffix(".__init__")
        for p in PACKAGE.rglob("*.py")
    )
    return f"{__version__}+{_digest(modules)[:8]}"


def training_version(template: Path | None = None) -> str:
    """A short hash of the code a training run depends on (see the module docstring)."""
    from .experiments.template import TEMPLATE

    template = TEMPLATE if template is None else template
    extra = f"--- template\n{_template_code(Path(template))}".encode()
    return _digest(imported_modules(), extra)[:12]


@functools.cache
def versions() -> dict:
    """Python and the versions of the libraries a result depends on."""
    import importlib.metadata as md

    out = {"python": platform.python_version()}
    for name in ("tensorflow", "tensorflow-cpu", "keras", "numpy", "pandas", "papermill", "vae-utils"):
        with contextlib.suppress(md.PackageNotFoundError):
            out[name] = md.version(name)
    return out
