"""A Sphinx extension of this book: no JavaScript error on any page.

* Every script a page loads, once. sphinx-thebe (which Jupyter Book 1.x always loads) and
  sphinx-togglebutton register their inline scripts twice under Sphinx 7.4 (once as file ``None``,
  once as file ``""``, so Sphinx does not see the repeat), and a second ``const THEBE_JS_URL`` is a
  JavaScript error on every page ("Identifier 'THEBE_JS_URL' has already been declared"). A script
  whose source and body a page already loads is dropped.
* A first visit has a theme mode: the PyData theme reads the mode from the browser's storage, and
  with none stored and no ``default_mode`` in the HTML context it logs "Got invalid theme mode" on the
  console: the mode defaults to "auto" (the reader's system setting).

Enabled in ``_config.yml`` (``sphinx.local_extensions``); the book driver stages this file with the sources.
"""

from __future__ import annotations


def _script_key(js) -> tuple:
    attributes = getattr(js, "attributes", {}) or {}
    filename = getattr(js, "filename", js) or ""  # an inline script's file is None or ""
    return str(filename), tuple(sorted((k, str(v)) for k, v in attributes.items()))


def unique_scripts(scripts) -> list:
    """``scripts`` without repeats (same file or same inline body, same attributes), in order."""
    seen, kept = set(), []
    for js in scripts:
        key = _script_key(js)
        if key not in seen:
            seen.add(key)
            kept.append(js)
    return kept


def _dedupe(app, pagename, templatename, context, doctree) -> None:
    if "script_files" in context:
        context["script_files"] = unique_scripts(context["script_files"])


def _default_mode(app, config) -> None:
    """The PyData theme's template reads ``default_mode`` from the HTML context."""
    config.html_context = {"default_mode": "auto", **(config.html_context or {})}  # the reader's system setting


def setup(app):
    app.connect("config-inited", _default_mode)
    app.connect("html-page-context", _dedupe, priority=900)  # after every extension added its scripts
    return {"parallel_read_safe": True, "parallel_write_safe": True}
