"""The papermill template that trains a sweep's runs, and the parameters of papermill notebooks.

    from vae_utils.experiments.template import TEMPLATE, notebook_parameters, check_injected
    notebook_parameters(TEMPLATE)      # {"dataset": ("str", "digits", "digits, moons, ..."), ...}

``train_vae.ipynb`` (package data beside this module) trains one config and its seeds, or the slice
of a grid that ``sweep`` hands it. ``check_injected`` is what makes it refuse a parameter it does
not define: papermill itself only warns and runs with the defaults.
"""

from __future__ import annotations

import ast
import json
from pathlib import Path

__all__ = ["TEMPLATE", "Parameter", "notebook_parameters", "check_injected"]

TEMPLATE = Path(__file__).resolve().parent / "train_vae.ipynb"


class Parameter(tuple):
    """(type name, default value, comment) of one notebook parameter."""

    __slots__ = ()

    def __new__(cls, type_name: str, default, comment: str):
        return super().__new__(cls, (type_name, default, comment))

    type_name = property(lambda self: self[0])
    default = property(lambda self: self[1])
    comment = property(lambda self: self[2])


def _cells(nb) -> list[dict]:
    if isinstance(nb, (str, Path)):
        nb = json.loads(Path(nb).read_text(encoding="utf-8"))
    return nb["cells"] if isinstance(nb, dict) else nb.cells


def notebook_parameters(nb) -> dict[str, Parameter]:
    """The parameters cell of a notebook (a path, a JSON dict or an nbformat node), by name, in order.

    Each assignment ``name: type = value  # comment`` gives (type, value, comment); a value that is
    not a literal is kept as its source text. A notebook without a ``parameters`` cell has none."""
    cells = [c for c in _cells(nb) if "parameters" in c.get("metadata", {}).get("tags", [])]
    if not cells:
        return {}
    source = cells[0]["source"]
    source = "".join(source) if isinstance(source, list) else source
    lines = source.splitlines()
    out = {}
    for node in ast.parse(source).body:
        if not isinstance(node, (ast.Assign, ast.AnnAssign)):
            continue
        targets = node.targets if isinstance(node, ast.Assign) else [node.target]
        type_name = ast.unparse(node.annotation) if isinstance(node, ast.AnnAssign) else ""
        line = lines[node.end_lineno - 1]
        comment = line.split("#", 1)[1].strip() if "#" in line[node.end_col_offset :] else ""
        try:
            value = ast.literal_eval(node.value)
        except ValueError:
            value = ast.unparse(node.value)
        for t in targets:
            if isinstance(t, ast.Name):
                out[t.id] = Parameter(type_name, value, comment)
    return out


def check_injected(before: set[str], namespace: dict, template=TEMPLATE) -> None:
    """Raise ValueError when papermill injected a name that ``template`` does not define.

    ``before``: the global names that existed before the parameters cell ran. Every later name that
    is not private (``_x``) and not a parameter of the template was injected by mistake: a typo
    such as ``-p batchsize 32`` would otherwise train with the default batch size."""
    known = notebook_parameters(template)
    unknown = sorted(n for n in set(namespace) - set(before) - set(known) if not n.startswith("_"))
    if unknown:
        raise ValueError(
            f"parameter(s) {', '.join(unknown)} are not parameters of {Path(template).name}; allowed: {', '.join(known)}"
        )
