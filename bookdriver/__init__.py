"""The build driver of the book *VAE Training Strategies*: ``python -m bookdriver build``.

    python -m bookdriver build                      # full profile -> _build/html
    python -m bookdriver build --params my.yaml     # a reader's parameters -> _build/html
    python -m bookdriver build --profile smoke      # tiny grids  -> _build/smoke/_build/html
    python -m bookdriver params --profile smoke     # print every chapter's parameters

It sits beside the ``vae_utils`` toolkit, not inside it (as d2l keeps d2lbook apart from d2l): the
toolkit installs and works without it; the driver needs Jupyter Book and the repository's sources.

Why a driver: Jupyter Book's execution cache (jupyter-cache) keys on a notebook's code, so
parameters must change the notebook itself. The driver

1) reads the parameters: ``profiles/<profile>/<chapter_stem>.yaml``, then ``--params FILE`` (YAML
   keyed by chapter stem, e.g. ``04_batch_size: {epochs: 10}``); unknown chapters, unknown names
   and values the chapter cannot take are refused before anything runs (``params``);
2) stages the book sources into ``<out>/src``, writing a file only when its content changed, and
   injects each chapter's parameters with papermill (a cell tagged ``injected-parameters`` after the
   chapter's ``parameters`` cell), plus the local MathJax bundle: no CDN (``stage``);
3) executes the chapters the execution cache does not hold, in parallel, into that cache
   (``execute``); a damaged cache (its database unreadable, a cached notebook garbled or gone) is
   set aside beside itself with one warning line, and what it held executes again (``cache``);
4) runs ``jupyter-book build <out>/src -W -n --keep-going``: warnings are errors, every failing
   chapter is reported;
5) extracts every glued figure into ``<html>/_static/figures/`` as SVG and PNG (``figures``).

Output folders (``paths``): ``full`` builds into ``_build`` (HTML in ``_build/html``, the execution
cache in ``_build/.jupyter_cache``); any other profile into ``_build/<profile>``.
"""
