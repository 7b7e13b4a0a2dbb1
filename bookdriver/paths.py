"""Where one profile's build lives, and which profiles exist."""

from __future__ import annotations

import re
from pathlib import Path

__all__ = ["ROOT", "BookPaths", "book_paths", "check_profile", "results_dir", "PROFILE_NAME"]

ROOT = Path(__file__).resolve().parent.parent  # the repository: _config.yml, _toc.yml, chapters/
PROFILE_NAME = re.compile(r"^[A-Za-z0-9_-]+$")


def check_profile(profile: str, root: Path = ROOT) -> str:
    """``profile`` if it names a folder of ``profiles/`` (or is ``full``); else ValueError.

    A profile is a name, never a path: its output folder ``_build/<profile>`` must stay inside the
    repository's ``_build``."""
    known = sorted(p.name for p in (root / "profiles").iterdir() if p.is_dir()) if (root / "profiles").is_dir() else []
    if not isinstance(profile, str) or not PROFILE_NAME.match(profile) or (profile != "full" and profile not in known):
        raise ValueError(
            f"profile={profile!r} is not known; allowed: {', '.join(sorted({'full', *known}))} (a folder name of profiles/)"
        )
    return profile


class BookPaths:
    """Where one profile's build lives."""

    def __init__(self, root: Path, profile: str):
        self.root = Path(root)
        self.profile = check_profile(profile, self.root)
        self.out = self.root / "_build" if profile == "full" else self.root / "_build" / profile
        self.src = self.out / "src"  # staged sources
        self.build = self.out / "_build" if profile != "full" else self.out  # jupyter-book's _build
        self.html = self.build / "html"
        self.executed = self.build / "jupyter_execute"
        self.reports = self.html / "reports"
        self.figures = self.html / "_static" / "figures"
        self.cache = self.build / ".jupyter_cache"

    @property
    def path_output(self) -> Path:
        """What ``jupyter-book build --path-output`` gets (it appends ``_build``)."""
        return self.root if self.profile == "full" else self.out


def book_paths(profile: str = "full", root: Path = ROOT) -> BookPaths:
    return BookPaths(root, profile)


def results_dir(paths: BookPaths) -> Path:
    """The results folder the build's sweeps write to (``$VAE_RESULTS_DIR``, which the driver sets)."""
    import os

    return Path(os.environ.get("VAE_RESULTS_DIR") or paths.root / "results")
