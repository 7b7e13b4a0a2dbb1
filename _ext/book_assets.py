"""A Sphinx extension of this book: every script a page loads, once.

sphinx-thebe (which Jupyter Book 1.x always loads) registers its inline configuration script
(``const THEBE_JS_URL = ...``) again on every re-read under Sphinx 7.4, and a second ``const`` of
the same name is a JavaScript error on every page ("Identifier 'THEBE_JS_URL' has already been
declared"). This drops a script whose source and body a page already loads. Enabled in
``_config.yml`` (``sphinx.local_extensions``); the book driver stages this file with the sources.
"""

from __future__ import annotations


def _script_key(js) -> tuple:
    attributes = getattr(js, "attributes", {}) or {}
    return getattr(js, "filename", str(js)), tuple(sorted((k, str(v)) for k, v in attributes.items()))


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


def setup(app):
    app.connect("html-page-context", _dedupe, priority=900)  # after every extension added its scripts
    return {"parallel_read_safe": True, "parallel_write_safe": True}
