"""Local paths taken out of published text: the Python environment, the repository and the home folder
are replaced by short names, so a page, a report or a log does not show where (or as whom) it was built.

    from vae_utils.localpaths import public_paths, public_tracebacks
    public_paths("/home/ann/book/.venv/lib/python3.11/site-packages/keras/layer.py")  # 'site-packages/keras/layer.py'
    public_paths("/home/ann/book/vae_utils/article.py")                               # './vae_utils/article.py'
    public_tracebacks()  # in a notebook: this kernel's tracebacks show such paths from now on

Replaced, longest first: each site-packages folder by ``site-packages``, the environment
(``sys.prefix``) by ``<venv>``, the Python installation (``sys.base_prefix``) by ``<python>``, the
repository (``root``, or the one above the working directory or this package) by ``.``, the home
folder by ``~``; each also in the ``~/...`` form IPython prints. The book driver starts every chapter's
kernel with ``public_tracebacks`` (``$PYTHONSTARTUP``) and passes its reports through ``public_paths``.
"""

from __future__ import annotations

import os
import re
import site
import sys
import sysconfig
from functools import lru_cache
from pathlib import Path

__all__ = ["public_paths", "public_tracebacks", "STARTUP_FILE"]

STARTUP_FILE = Path(__file__).with_name("_public_tracebacks_startup.py")  # a $PYTHONSTARTUP for kernels
_PATH_CHAR = r"[\w.+-]"  # a prefix matches a whole path component: /a/b is not a prefix of /a/bc


def _site_folders() -> set[str]:
    paths = sysconfig.get_paths()
    folders = {paths["purelib"], paths["platlib"], *site.getsitepackages()}
    user = site.getusersitepackages()
    return folders | ({user} if isinstance(user, str) else set())


def _repositories(root) -> set[str]:
    from .experiments.grid import repo_root

    found = {root, repo_root(), repo_root(Path(__file__).parent)}
    return {str(r) for r in found if r}


def _forms(path: str, home: str) -> set[str]:
    """A folder as it may be written: as given, resolved (symlinks), and under ``~`` when in the home folder."""
    forms = {os.path.abspath(path), os.path.realpath(path)}
    return forms | {"~" + f[len(home) :] for f in forms if home and f.startswith(home + os.sep)}


@lru_cache(maxsize=8)
def _replacements(root: str | None) -> tuple[tuple[re.Pattern, str], ...]:
    home = os.path.expanduser("~")
    home = home if home not in ("~", os.sep) else ""
    names = dict.fromkeys(_site_folders(), "site-packages")
    names |= {sys.base_prefix: "<python>", sys.prefix: "<venv>" if sys.prefix != sys.base_prefix else "<python>"}
    names |= dict.fromkeys(_repositories(root), ".")
    if home:
        names[home] = "~"
    pairs = {form: name for path, name in names.items() for form in _forms(path, home) if form != os.sep}
    ordered = sorted(pairs.items(), key=lambda kv: -len(kv[0]))
    return tuple((re.compile(re.escape(form) + f"(?!{_PATH_CHAR})"), name) for form, name in ordered)


def public_paths(text: str, root: str | os.PathLike | None = None) -> str:
    """``text`` with every local path prefix replaced by its short name (see the module docstring)."""
    for pattern, name in _replacements(str(root) if root else None):
        text = pattern.sub(name, text)
    return text


def _handler(shell, etype, value, tb, tb_offset=None):
    """IPython's custom exception handler: the usual traceback, with public paths."""
    try:
        stb = value._render_traceback_()
    except Exception:
        stb = shell.InteractiveTB.structured_traceback(etype, value, tb, tb_offset=tb_offset)
    stb = [public_paths(line) for line in stb]
    shell._showtraceback(etype, public_paths(str(value)), stb)
    return stb


def public_tracebacks(shell=None) -> bool:
    """Make the running IPython shell (a notebook's kernel) show tracebacks with ``public_paths``;
    False (nothing changed) outside IPython."""
    if shell is None:
        try:
            from IPython import get_ipython
        except ImportError:
            return False
        shell = get_ipython()
    if shell is None:
        return False
    shell.set_custom_exc((Exception,), _handler)
    return True
