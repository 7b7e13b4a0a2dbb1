"""The papermill template that trains a sweep's runs, and the parameters of papermill notebooks.

    from vae_utils.experiments.template import TEMPLATE, notebook_parameters, check_injected
    notebook_parameters(TEMPLATE)      # {"dataset": ("str", "digits", "digits, moons, ..."), ...}

``train_vae.ipynb`` (package data beside this module) trains one config and its seeds, or the slice
of a grid that ``sweep`` hands it. ``check_injected`` is what makes it refuse a parameter it does
not define: papermill itself only warns and runs with the defaults.

Its parameters cell is generated: one parameter per ``TrainConfig`` field (type, default and comment
read from ``core/config.py``), then the template's own (``TEMPLATE_PARAMETERS``). After a change to
``TrainConfig``, ``make template`` (``write_parameters()``) writes the cell again (a test checks
that the committed cell is the generated one).
"""

from __future__ import annotations

import ast
import dataclasses
import json
from pathlib import Path

__all__ = ["TEMPLATE", "Parameter", "notebook_parameters", "check_injected", "parameters_source", "write_parameters"]

TEMPLATE = Path(__file__).resolve().parent / "train_vae.ipynb"
# The template's own parameters, after TrainConfig's fields: how a run is handed over and where it goes.
TEMPLATE_PARAMETERS = """\
seeds: list = []  # several seeds, one run each, e.g. [0, 1, 2]; [] trains `seed` only
runs_json: str = ""  # set by `sweep`: a slice of runs, a JSON list of config dicts (or a file of one)
out: str = ""  # set by `sweep`: the results store; "" trains and shows the runs without writing
sweep_id: str = ""  # set by `sweep`: which call these runs belong to
worker: str = ""  # set by `sweep`: the worker slot, for the heartbeat its supervisor reads
notebook: str = ""  # set by `sweep`: this executed notebook's path inside `out`
threads: int = 0  # TensorFlow threads (intra- and inter-op); 0: TensorFlow's default
"""


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


def _field_comments() -> dict[str, str]:
    """The comment after each ``TrainConfig`` field in core/config.py, by field name."""
    from ..core import config

    source = Path(config.__file__).read_text(encoding="utf-8")
    lines = source.splitlines()
    cls = next(n for n in ast.parse(source).body if isinstance(n, ast.ClassDef) and n.name == "TrainConfig")
    out = {}
    for node in cls.body:
        if isinstance(node, ast.AnnAssign) and isinstance(node.target, ast.Name):
            text = [lines[node.end_lineno - 1][node.end_col_offset :], *lines[node.lineno - 1 : node.end_lineno]]
            comments = [t.split("#", 1)[1].strip() for t in text if "#" in t]  # after the value, or inside ( )
            out[node.target.id] = comments[0] if comments else ""
    return out


def _notebook_value(name: str, default) -> tuple[str, object]:
    """(type name, default) of a TrainConfig field as a flat papermill parameter."""
    if isinstance(default, tuple):
        return "list", list(default)
    if default is None:  # train_size, held_out_size: the text "all" stands for None
        return "str", "all"
    return type(default).__name__, default


def parameters_source() -> str:
    """The template's parameters cell: every TrainConfig field, then ``TEMPLATE_PARAMETERS``."""
    from ..core.config import TrainConfig
    from ..core.data import DATASETS
    from ..core.optimizers import OPTIMIZERS

    comments = _field_comments()
    choices = {"one of DATASETS": ", ".join(DATASETS), "one of OPTIMIZERS": ", ".join(OPTIMIZERS)}
    rows = []
    for f in dataclasses.fields(TrainConfig):
        type_name, default = _notebook_value(f.name, f.default)
        comment = choices.get(comments[f.name], comments[f.name])
        value = json.dumps(default) if isinstance(default, (str, list)) else repr(default)
        rows.append(f"{f.name}: {type_name} = {value}  # {comment}")
    return "\n".join(rows) + "\n" + TEMPLATE_PARAMETERS


def write_parameters(path: Path = TEMPLATE) -> bool:
    """Write the generated parameters cell into the template; True when it changed."""
    nb = json.loads(Path(path).read_text(encoding="utf-8"))
    cell = next(c for c in nb["cells"] if "parameters" in c.get("metadata", {}).get("tags", []))
    new = parameters_source().splitlines(keepends=True)
    new[-1] = new[-1].rstrip("\n")
    if cell["source"] == new:
        return False
    cell["source"] = new
    Path(path).write_text(json.dumps(nb, indent=1, ensure_ascii=False) + "\n", encoding="utf-8")
    return True
