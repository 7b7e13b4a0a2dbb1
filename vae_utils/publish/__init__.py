"""Publishing results into the book: numbered, cited figures with provenance (``figures``), tables for
people (``tables``), numbers written for people (``numbers``), a verdict's or a figure's scope computed
from its runs (``scope``), and the words with units that name every column (``labels``).

A chapter imports what it publishes with in one line::

    from vae_utils.publish import publish_data, publish_figure, publish_table, fmt

Names are imported on first use (matplotlib and pandas only when a figure or a table is published).
"""

import importlib

_EXPORTS = {
    "figures": ("publish_figure",),
    "tables": ("publish_table", "publish_data"),
    "numbers": ("fmt", "fmt_interval", "quantity"),
    "scope": ("scope_of",),
}
_WHERE = {name: module for module, names in _EXPORTS.items() for name in names}
__all__ = list(_WHERE)


def __getattr__(name):
    if name in _WHERE:
        return getattr(importlib.import_module(f"{__name__}.{_WHERE[name]}"), name)
    raise AttributeError(f"module {__name__!r} has no attribute {name!r}")
