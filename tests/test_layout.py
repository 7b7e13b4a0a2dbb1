"""The layout holds: no import cycle, functions that fit a screen, one place per dataset and optimizer,
and a README whose layout matches the tree."""

from __future__ import annotations

import ast
import re
from pathlib import Path

import numpy as np
import pytest

REPO = Path(__file__).resolve().parents[1]
PACKAGES = ("vae_utils", "bookdriver")


def _modules() -> dict[str, Path]:
    """{dotted module name: file} of every module of the toolkit and the driver."""
    out = {}
    for package in PACKAGES:
        for path in sorted((REPO / package).rglob("*.py")):
            parts = path.relative_to(REPO).with_suffix("").parts
            out[".".join(parts[:-1] if parts[-1] == "__init__" else parts)] = path
    return out


def _imports(name: str, path: Path, modules: dict) -> set[str]:
    """The project modules that module ``name`` imports anywhere in its code (lazy imports included)."""
    package = name if path.name == "__init__.py" else name.rsplit(".", 1)[0]
    found = set()
    for node in ast.walk(ast.parse(path.read_text())):
        if isinstance(node, ast.ImportFrom):
            base = node.module or ""
            if node.level:
                anchor = package.split(".")[: len(package.split(".")) - (node.level - 1)]
                base = ".".join(anchor + ([base] if base else []))
            for alias in node.names:
                target = f"{base}.{alias.name}"
                found.add(target if target in modules else base)
        elif isinstance(node, ast.Import):
            found.update(alias.name for alias in node.names)
    return {m for m in found if m in modules and m != name}


def _cycles(graph: dict[str, set[str]]) -> list[list[str]]:
    """The strongly connected components of more than one module (Tarjan)."""
    index, low, stack, on_stack, out, counter = {}, {}, [], set(), [], [0]

    def visit(v):
        index[v] = low[v] = counter[0]
        counter[0] += 1
        stack.append(v)
        on_stack.add(v)
        for w in graph[v]:
            if w not in index:
                visit(w)
                low[v] = min(low[v], low[w])
            elif w in on_stack:
                low[v] = min(low[v], index[w])
        if low[v] == index[v]:
            component = []
            while True:
                w = stack.pop()
                on_stack.discard(w)
                component.append(w)
                if w == v:
                    break
            if len(component) > 1:
                out.append(sorted(component))

    for v in graph:
        if v not in index:
            visit(v)
    return out


def test_the_import_graph_of_the_toolkit_and_the_driver_has_no_cycle():
    """Every import counts, lazy ones inside functions too; a package's ``__init__`` importing its own
    modules is not a cycle unless one of them imports the package back."""
    modules = _modules()
    graph = {name: _imports(name, path, modules) for name, path in modules.items()}
    assert _cycles(graph) == []
    assert _cycles({"a": {"b"}, "b": {"c"}, "c": {"a"}, "d": {"a"}}) == [["a", "b", "c"]], "the check finds one"


def test_the_toolkit_never_imports_the_book_driver():
    modules = _modules()
    toolkit = {n: p for n, p in modules.items() if n.startswith("vae_utils")}
    assert not {m for n, p in toolkit.items() for m in _imports(n, p, modules) if m.startswith("bookdriver")}


def test_no_function_of_the_toolkit_or_the_driver_is_over_60_lines():
    """The style rule: a function fits a screen (docstring included)."""
    long = {}
    for name, path in _modules().items():
        for node in ast.walk(ast.parse(path.read_text())):
            if isinstance(node, (ast.FunctionDef, ast.AsyncFunctionDef)) and node.end_lineno - node.lineno >= 60:
                long[f"{name}.{node.name}"] = node.end_lineno - node.lineno + 1
    assert long == {}


# -- one place per dataset and per optimizer ---------------------------------------------------------


@pytest.fixture
def toy_registries():
    """A toy dataset and a toy optimizer, each registered in its one place, removed afterwards."""
    import keras

    from vae_utils.core import data, optimizers

    class SignSGD(keras.optimizers.Optimizer):
        """theta <- theta - lr * sign(gradient): not one of Keras's optimizers."""

        def update_step(self, gradient, variable, learning_rate):
            lr = keras.ops.cast(learning_rate, variable.dtype)
            self.assign_sub(variable, keras.ops.multiply(keras.ops.sign(gradient), lr))

    def sign_update(theta, grad, slots, lr, alpha, h):
        import tensorflow as tf

        return theta - tf.sign(grad) * lr, slots

    def blobs(seed):
        rng = np.random.default_rng(7)
        x = np.concatenate([rng.normal(-2, 0.5, (300, 3)), rng.normal(2, 0.5, (300, 3))]).astype(np.float32)
        (tr, va, te), _ = data.split_arrays(x, None, seed)
        return data.Dataset("toy_blobs", tr, va, te, "gaussian", meta={"source": "two Gaussian blobs"})

    data.register_dataset(data.DatasetSpec("toy_blobs", blobs, 420, 90, "gaussian", 3, source="generated"))
    optimizers.register_optimizer(
        optimizers.OptimizerSpec("signsgd", "sign SGD", 0, lambda c: SignSGD(c.learning_rate), sign_update)
    )
    yield
    del data.REGISTRY["toy_blobs"], optimizers.OPTIMIZERS["signsgd"]


def test_a_dataset_and_an_optimizer_defined_in_one_place_each_validate_and_train_on_both_engines(toy_registries):
    from vae_utils import TrainConfig, train
    from vae_utils.core.data import DATASETS, TRAIN_SIZES

    assert "toy_blobs" in DATASETS and TRAIN_SIZES["toy_blobs"] == 420
    config = TrainConfig(dataset="toy_blobs", optimizer="signsgd", learning_rate=1e-3, batch_size=60, epochs=3,
                         latent_dim=2, hidden_units=(16,), eval_k=5)  # fmt: skip
    with pytest.raises(ValueError, match="batch_size=421"):
        TrainConfig(dataset="toy_blobs", batch_size=421)
    fast, keras_path = train(config, engine="fast"), train(config, engine="keras")
    assert fast.history.loss.iloc[-1] < fast.history.loss.iloc[0], "sign SGD trains"
    np.testing.assert_allclose(fast.step_loss, keras_path.step_loss, rtol=1e-4, atol=1e-4)
    assert fast.metrics["test_elbo"] == pytest.approx(keras_path.metrics["test_elbo"], rel=1e-4)


def test_an_unknown_dataset_or_optimizer_is_refused_naming_the_registered_ones():
    from vae_utils import TrainConfig

    with pytest.raises(ValueError, match=r"optimizer='lion'.*adam"):
        TrainConfig(optimizer="lion")
    with pytest.raises(ValueError, match=r"dataset='imagenet'.*digits"):
        TrainConfig(dataset="imagenet")


# -- the README's layout is the tree's -------------------------------------------------------------


def test_every_module_the_readme_names_exists_and_every_subpackage_is_named():
    readme = (REPO / "README.md").read_text()
    named = set(re.findall(r"`(vae_utils(?:\.\w+)+|bookdriver(?:\.\w+)*)`", readme))
    modules = _modules()
    assert named, "the README names modules as `vae_utils.x.y`"
    assert {n for n in named if n not in modules} == set()
    subpackages = {n for n, p in modules.items() if p.name == "__init__.py" and n.count(".") == 1}
    assert {s for s in subpackages if f"`{s}`" not in readme} == set()
