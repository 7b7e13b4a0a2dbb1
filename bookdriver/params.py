"""Chapter parameters: a profile's files and a reader's file, checked before anything runs.

    from bookdriver.params import load_parameters, check_parameters
    params = load_parameters("smoke", "my.yaml")         # {chapter_stem: {name: value}}
    check_parameters(params, notebooks, origin="my.yaml")  # ValueError naming chapter, name, value

A parameter file is YAML keyed by chapter stem, one mapping per chapter (``04_batch_size: {epochs:
10}``). Every value is checked against the chapter's ``parameters`` cell before any chapter runs:
the name must exist, the value must have the default's type (a list stays a non-empty list of the
default's element type), values that become a ``TrainConfig`` field must be valid for it, and a
results ``store`` must be a folder name, never a path.
"""

from __future__ import annotations

from pathlib import Path

from .paths import ROOT, check_profile

__all__ = ["load_parameters", "check_parameters", "read_yaml"]


def read_yaml(path: Path) -> dict:
    """A YAML mapping from ``path``; ValueError naming the file when it is missing, not YAML, or not a mapping."""
    import yaml

    try:
        with open(path, encoding="utf-8") as f:
            data = yaml.safe_load(f) or {}
    except OSError as e:
        raise ValueError(f"{path}: cannot be read ({e.strerror or e}); allowed: a readable YAML file") from None
    except yaml.YAMLError as e:
        where = getattr(e, "problem_mark", None)
        at = f" at line {where.line + 1}, column {where.column + 1}" if where else ""
        raise ValueError(f"{path}: is not valid YAML{at}; allowed: a YAML mapping") from None
    if not isinstance(data, dict):
        raise ValueError(
            f"{path}: holds a {type(data).__name__}; allowed: a YAML mapping of chapter stems to parameters"
        )
    return data


def load_parameters(profile: str, params_file: str | Path | None = None, root: Path = ROOT) -> dict[str, dict]:
    """{chapter_stem: {name: value}}: ``profiles/<profile>/*.yaml``, then ``params_file`` on top."""
    check_profile(profile, root)
    prof_dir = root / "profiles" / profile
    out: dict[str, dict] = {}
    for path in sorted(prof_dir.glob("*.yaml")) if prof_dir.is_dir() else []:
        out.setdefault(path.stem, {}).update(read_yaml(path))
    if params_file:
        for stem, values in read_yaml(Path(params_file)).items():
            if not isinstance(values, dict):
                raise ValueError(f"{params_file}: {stem!r} must map parameter names to values")
            out.setdefault(str(stem), {}).update(values)
    return out


def _yaml_number(value, default):
    """YAML 1.1 reads ``1e-3`` (no dot) as text: such text counts as a number where the default is a float."""
    if isinstance(default, list) and isinstance(value, list) and default:
        return [_yaml_number(v, default[0]) for v in value]
    if isinstance(default, float) and isinstance(value, str):
        try:
            return float(value)
        except ValueError:
            return value
    return value


def _type_error(where: str, name: str, value, default) -> str | None:
    """Why ``value`` cannot stand for a parameter whose default is ``default`` (None: it can)."""
    if isinstance(default, list):
        if not isinstance(value, list) or not value:
            return f"{where}: {name}={value!r} is not allowed; allowed: a non-empty list, like the default {default!r}"
        errors = [_type_error(where, f"{name}[{i}]", v, default[0]) for i, v in enumerate(value)] if default else []
        return next((e for e in errors if e), None)
    if isinstance(default, bool):
        ok = isinstance(value, bool)
    elif isinstance(default, int):
        ok = isinstance(value, int) and not isinstance(value, bool)
    elif isinstance(default, float):
        ok = isinstance(value, (int, float)) and not isinstance(value, bool)
    else:
        ok = default is None or isinstance(value, type(default))
    if ok:
        return None
    return (
        f"{where}: {name}={value!r} is not allowed; allowed: a {type(default).__name__}, like the default {default!r}"
    )


def _check_config_values(where: str, values: dict) -> None:
    """Validate the values that become ``TrainConfig`` fields (a name, or its plural for a list)."""
    from vae_utils.core.config import FIELDS, TrainConfig
    from vae_utils.experiments.grid import default_store

    if "store" in values:
        try:
            default_store(values["store"])
        except ValueError as e:
            raise ValueError(f"{where}: store: {e}") from None
    scalars = {k: v for k, v in values.items() if k in FIELDS}
    trials = [scalars] + [
        {**scalars, k[:-1]: v}
        for k, vs in values.items()
        if k.endswith("s") and k[:-1] in FIELDS and isinstance(vs, list)
        for v in vs
    ]
    for trial in trials:
        try:
            TrainConfig.from_dict(trial)
        except ValueError as e:
            raise ValueError(f"{where}: {e}") from None


def check_parameters(params: dict[str, dict], notebooks: dict[str, object], origin: str) -> dict[str, dict]:
    """``params`` with numbers read from YAML text; ValueError on the first unknown chapter, unknown
    name, or value its chapter cannot take."""
    from vae_utils.experiments.template import notebook_parameters

    checked = {}
    for stem, values in params.items():
        if stem not in notebooks:
            raise ValueError(f"{origin}: chapter {stem!r} is not known; allowed: {', '.join(sorted(notebooks))}")
        declared = notebook_parameters(notebooks[stem])
        unknown = sorted(set(values) - set(declared))
        if unknown:
            raise ValueError(
                f"{origin}: {stem} has no parameter {', '.join(unknown)}; allowed: {', '.join(declared) or '(none)'}"
            )
        values = {name: _yaml_number(value, declared[name].default) for name, value in values.items()}
        for name, value in values.items():
            error = _type_error(f"{origin}: {stem}", name, value, declared[name].default)
            if error:
                raise ValueError(error)
        _check_config_values(f"{origin}: {stem}", {name: p.default for name, p in declared.items()} | values)
        checked[stem] = values
    return checked
