"""Generated datasets for calibrating the advisor's learning-rate rule (issue 21 item 2), and the two
data files kept aside from that calibration for its acceptance check (``advisor_check.py``).

    import calibration_data                  # registers shapes8, shapes16 and manifold24
    from vae_utils import load_dataset
    ds = load_dataset("shapes16")            # the same scenes as shapes8, rendered at 16 x 16

* ``shapes8`` / ``shapes16`` (Bernoulli): 6,000 scenes of one to three filled ellipses and rectangles
  at random places, sizes and grey levels, rendered with 4 x 4 supersampling (anti-aliased edges) at
  8 x 8 and at 16 x 16: one kind of image at two resolutions.
* ``manifold24`` (Gaussian): 5,000 points of a curved 4-dimensional manifold in 24 dimensions
  (a random two-layer tanh map of standard normal codes, plus noise), each feature standardized.

They are registered in this process only (``register_dataset``): the core's data module, and so the
results store's run ids, do not change. Sweeps (papermill kernels) cannot load them by name, so
``advisor_ratio.py`` trains in process.

Kept aside (never calibrated on): ``holdout_patches`` (8 x 8 grey patches of sklearn's two bundled
photographs, intensities in [0, 1], Bernoulli) and ``holdout_tabular`` (sklearn's breast-cancer table,
569 x 30, standardized, Gaussian); ``write_holdout(folder)`` saves them as .npy files.
"""

from __future__ import annotations

from pathlib import Path

import numpy as np

from vae_utils.core.data import BINARIZE_SEED, Dataset, DatasetSpec, binarize, register_dataset, split_arrays

__all__ = ["shapes", "manifold", "holdout_patches", "holdout_tabular", "write_holdout", "GENERATED"]

N_SHAPES = 6000
N_MANIFOLD = 5000
SUPERSAMPLE = 4


def _scene(rng, grid):
    """One scene on a [0, 1]^2 canvas: the maximum of one to three filled shapes' grey levels."""
    img = np.zeros(grid[0].shape)
    for _ in range(rng.integers(1, 4)):
        cx, cy = rng.uniform(0.15, 0.85, 2)
        rx, ry = rng.uniform(0.08, 0.35, 2)
        grey = rng.uniform(0.5, 1.0)
        dx, dy = (grid[1] - cx) / rx, (grid[0] - cy) / ry
        inside = (dx**2 + dy**2 <= 1) if rng.random() < 0.5 else (np.abs(dx) <= 1) & (np.abs(dy) <= 1)
        img = np.maximum(img, grey * inside)
    return img


def shapes(n: int, size: int, seed: int = 0) -> np.ndarray:
    """``n`` scenes as (n, size, size) float32 intensities in [0, 1]; the same ``seed`` gives the same
    scenes at every ``size`` (each pixel is the mean of SUPERSAMPLE x SUPERSAMPLE samples)."""
    fine = size * SUPERSAMPLE
    centres = (np.arange(fine) + 0.5) / fine
    grid = np.meshgrid(centres, centres, indexing="ij")
    rng = np.random.default_rng(seed)
    out = np.empty((n, size, size), np.float32)
    for i in range(n):
        out[i] = _scene(rng, grid).reshape(size, SUPERSAMPLE, size, SUPERSAMPLE).mean(axis=(1, 3))
    return out


def manifold(n: int, dim: int = 24, latent: int = 4, noise: float = 0.1, seed: int = 0) -> np.ndarray:
    """``n`` points x = tanh(z W1) W2 + noise, z ~ N(0, I_latent), each feature standardized (float32)."""
    rng = np.random.default_rng(seed)
    w1 = rng.normal(size=(latent, 32)) * 1.5
    w2 = rng.normal(size=(32, dim)) / np.sqrt(32)
    x = np.tanh(rng.normal(size=(n, latent)) @ w1) @ w2
    x = x + noise * rng.normal(size=x.shape)
    return ((x - x.mean(0)) / x.std(0)).astype(np.float32)


def _bernoulli(name, x, seed, source) -> Dataset:
    (tr, va, te), _ = split_arrays(x.reshape(len(x), -1), None, seed)
    va, te = binarize(va, BINARIZE_SEED), binarize(te, BINARIZE_SEED + 1)
    return Dataset(name, tr, va, te, "bernoulli", x.shape[1:], meta={"source": source})


def _shapes(size):
    return lambda seed: _bernoulli(f"shapes{size}", shapes(N_SHAPES, size), seed, f"generated shapes at {size}x{size}")


def _manifold(seed) -> Dataset:
    (tr, va, te), _ = split_arrays(manifold(N_MANIFOLD), None, seed)
    return Dataset("manifold24", tr, va, te, "gaussian", meta={"source": "generated 4-d manifold in 24-d"})


def _sizes(n):
    return n - 2 * round(0.15 * n), round(0.15 * n)


GENERATED = {
    "shapes8": DatasetSpec("shapes8", _shapes(8), *_sizes(N_SHAPES), "bernoulli", 64, (8, 8), source="generated"),
    "shapes16": DatasetSpec("shapes16", _shapes(16), *_sizes(N_SHAPES), "bernoulli", 256, (16, 16), source="generated"),
    "manifold24": DatasetSpec("manifold24", _manifold, *_sizes(N_MANIFOLD), "gaussian", 24, source="generated"),
}
for _spec in GENERATED.values():
    register_dataset(_spec)


def holdout_patches(n: int = 2000, size: int = 8, seed: int = 0) -> np.ndarray:
    """``n`` random size x size grey patches of sklearn's two sample photographs, intensities in [0, 1]."""
    from sklearn.datasets import load_sample_images

    greys = [img.mean(axis=2) / 255.0 for img in load_sample_images().images]
    rng = np.random.default_rng(seed)
    out = np.empty((n, size, size), np.float32)
    for i in range(n):
        g = greys[i % len(greys)]
        r, c = rng.integers(0, g.shape[0] - size), rng.integers(0, g.shape[1] - size)
        out[i] = g[r : r + size, c : c + size]
    return out


def holdout_tabular() -> np.ndarray:
    """sklearn's breast-cancer table (569 x 30), each feature standardized (float32)."""
    from sklearn.datasets import load_breast_cancer

    x = load_breast_cancer().data
    return ((x - x.mean(0)) / x.std(0)).astype(np.float32)


def holdout_diabetes() -> np.ndarray:
    """sklearn's diabetes table (442 x 10), each feature standardized (float32)."""
    from sklearn.datasets import load_diabetes

    x = load_diabetes().data
    return ((x - x.mean(0)) / x.std(0)).astype(np.float32)


def write_holdout(folder) -> dict:
    """Save the kept-aside sets as .npy files in ``folder``; {file: likelihood}. The first two were kept aside
    from the start of issue 21; patches16 and diabetes were added after the rule's last calibration and
    never run before its check (a second, fresh test of the same rule)."""
    folder = Path(folder)
    folder.mkdir(parents=True, exist_ok=True)
    files = {
        folder / "patches8.npy": (holdout_patches(), "bernoulli"),
        folder / "tabular.npy": (holdout_tabular(), "gaussian"),
        folder / "patches16.npy": (holdout_patches(size=16, seed=1), "bernoulli"),
        folder / "diabetes.npy": (holdout_diabetes(), "gaussian"),
    }
    for path, (x, _) in files.items():
        np.save(path, x)
    return {str(p): lik for p, (_, lik) in files.items()}
