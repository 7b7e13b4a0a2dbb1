"""A reader's own data as a ``Dataset``: a .npy, .npz or .csv file, validated, split with a seed.

    from vae_utils.advisor.datafile import load_file
    ds = load_file("faces.npz", likelihood="gaussian", key="x")   # ds.train, ds.val, ds.test
    ds.meta["array"], ds.meta["sha256"]                         # which array of the .npz; the data's hash

The file holds examples x features: a 2-D array (n, d), or images (n, rows, columns) or
(n, rows, columns, channels), which are flattened (their shape is kept in ``image_shape``). A .csv
has one example per row, numbers only, with or without one header row. A .npz names its arrays:
``key`` picks one; without it, the only array, else the first of ``PREFERRED_KEYS`` present.

Every problem raises ``ValueError`` with one line naming the file and the problem: an unknown
suffix, an unreadable file, a .npy header that claims more bytes than the file holds (checked before
loading), no numbers, non-finite values or values too large for float32 training (how many, and the
first one's place),
Bernoulli data outside [0, 1], fewer than ``MIN_EXAMPLES`` examples, and shapes the architecture
cannot take (``conv`` needs one-channel images whose rows and columns are each divisible by 4: a
3-D array, a 4-D one with one channel, or a 2-D one whose width is a square).

The split is ``data``'s: 70 % train, 15 % validation, 15 % test, shuffled once with ``split_seed``;
Bernoulli validation and test sets are binarized once with the fixed seeds the named datasets use,
so their held-out ELBOs compare across runs.
"""

from __future__ import annotations

import hashlib
import math
from pathlib import Path

import numpy as np

from ..core.data import BINARIZE_SEED, DATASETS, Dataset, binarize, split_arrays

__all__ = ["load_file", "from_array", "SUFFIXES", "MIN_EXAMPLES", "PREFERRED_KEYS", "ARCHITECTURES"]

SUFFIXES = (".npy", ".npz", ".csv")
MIN_EXAMPLES = 100  # 70 to train: enough for a batch of 64, a range test and a noise-scale estimate
PREFERRED_KEYS = ("x", "X", "data", "images", "x_train", "train")
ARCHITECTURES = ("mlp", "conv")
LIKELIHOODS = ("bernoulli", "gaussian")
MAX_ABS = 1e15  # larger values overflow float32 training (a squared error of 1e30 per feature is near its 3.4e38)


def _refuse_any(where, x, mask, what: str, allowed: str, show_value: bool = False) -> None:
    """Refuse the data when ``mask`` marks any value: how many, and the first one's example and feature."""
    if mask.any():
        r, c = np.argwhere(mask)[0]
        first = f"the first {x[r, c]:g} at" if show_value else "the first at"
        _fail(where, f"{int(mask.sum())} values {what}, {first} example {r + 1}, feature {c + 1}; allowed: {allowed}")


_NAMED = "or a named dataset (" + ", ".join(DATASETS) + ")"


def _fail(where: str, problem: str):
    raise ValueError(f"{where}: {problem}")


def _read_npz(path: Path, key: str | None):
    with np.load(path, allow_pickle=False) as z:
        names = list(z.files)
        if not names:
            _fail(str(path), "the .npz file holds no arrays")
        if key is None:
            key = names[0] if len(names) == 1 else next((k for k in PREFERRED_KEYS if k in names), None)
            if key is None:
                _fail(str(path), f"holds arrays {names}; give the one to use (key=..., --key NAME)")
        elif key not in names:
            _fail(str(path), f"has no array named {key!r}; allowed: {', '.join(map(repr, names))}")
        return z[key], key


def _read_csv(path: Path) -> np.ndarray:
    import pandas as pd

    try:
        df = pd.read_csv(path, header=None, dtype=str, keep_default_na=False, skipinitialspace=True)
    except (pd.errors.EmptyDataError, pd.errors.ParserError, UnicodeDecodeError) as e:
        _fail(str(path), f"cannot be read as CSV ({type(e).__name__}: {str(e).splitlines()[0]})")
    values = df.apply(lambda c: pd.to_numeric(c.str.strip().replace("", "nan"), errors="coerce"))
    text = values.isna() & ~df.apply(lambda c: c.str.strip().str.lower().isin(["", "nan", "inf", "-inf"]))
    header = int(bool(text.iloc[0].any()) and len(df) > 1)  # a header row: text in the first row
    df, values, text = df.iloc[header:], values.iloc[header:], text.iloc[header:]
    if text.to_numpy().any():
        r, c = np.argwhere(text.to_numpy())[0]
        _fail(str(path), f"row {r + 1 + header}, column {c + 1}: {df.iat[r, c]!r} is not a number")
    return values.to_numpy(np.float64)


def _read(path: Path, key: str | None):
    if path.suffix.lower() not in SUFFIXES:
        _fail(str(path), f"the suffix {path.suffix!r} is not supported; allowed: {', '.join(SUFFIXES)}, {_NAMED}")
    if not path.is_file():
        _fail(str(path), f"no such file; allowed: an existing {', '.join(SUFFIXES)} file, {_NAMED}")
    try:
        if path.suffix.lower() == ".npy":
            _check_npy_header(path)
            return np.load(path, allow_pickle=False), None
        if path.suffix.lower() == ".npz":
            return _read_npz(path, key)
        return _read_csv(path), None
    except ValueError as e:
        if str(e).startswith(f"{path}:"):
            raise
        _fail(str(path), f"cannot be read ({str(e).splitlines()[0]})")
    except OSError as e:
        _fail(str(path), f"cannot be read ({e.strerror or e})")


def _check_npy_header(path: Path) -> None:
    """Refuse a .npy file whose header claims more data than the file holds, before any of it is
    allocated (a 192-byte file claiming 10^18 values used to end in a memory-error traceback)."""
    from numpy.lib import format as npy

    with open(path, "rb") as f:
        version = npy.read_magic(f)
        read = npy.read_array_header_1_0 if version == (1, 0) else npy.read_array_header_2_0
        shape, _, dtype = read(f)
        have = path.stat().st_size - f.tell()
    need = math.prod(shape) * dtype.itemsize
    if not dtype.hasobject and need > have:  # object arrays: np.load refuses them (no pickles)
        _fail(
            str(path),
            f"its header claims shape {tuple(shape)} of {dtype}, {need} bytes, but the file holds {have}; "
            "allowed: a complete .npy file",
        )


def _image_shape(where: str, shape: tuple, architecture: str) -> tuple | None:
    """The per-example image shape, or None for flat features; refuses what the architecture cannot take."""
    image = _any_image_shape(where, shape, architecture)
    if architecture == "conv":
        image = image[:2] if len(image) == 3 and image[2] == 1 else image  # one channel: (rows, columns)
        if len(image) != 2 or any(s % 4 for s in image):
            _fail(
                where,
                f"conv cannot take images of shape {image}; allowed: one channel, rows and columns each "
                "divisible by 4 (its two stride-2 convolutions), e.g. 28 x 28 or 8 x 8 x 1",
            )
    return image


def _any_image_shape(where: str, shape: tuple, architecture: str) -> tuple | None:
    if len(shape) == 2:
        side = math.isqrt(shape[1])
        if architecture == "conv":
            if side * side != shape[1]:
                _fail(
                    where,
                    f"conv needs images; {shape[1]} features per example are not a square image "
                    "(allowed: an array of shape (n, rows, columns[, channels]))",
                )
            return (side, side)
        return (side, side) if side * side == shape[1] and side > 2 else None
    if len(shape) in (3, 4):
        return tuple(int(s) for s in shape[1:])
    _fail(
        where,
        f"an array of shape {shape} is not examples x features; allowed: (n, d), (n, rows, columns) or "
        "(n, rows, columns, channels)",
    )


def _check_values(where: str, x: np.ndarray, likelihood: str, min_examples: int):
    if x.shape[0] < min_examples:
        _fail(where, f"{x.shape[0]} examples are too few; allowed: at least {min_examples}")
    if x.shape[1] < 1:
        _fail(where, "the examples have no features")
    _refuse_any(where, x, ~np.isfinite(x), "are not finite (NaN or infinity)", "finite numbers")
    big = f"magnitudes up to {MAX_ABS:g} (standardize the data first)"
    _refuse_any(where, x, np.abs(x) > MAX_ABS, "are too large for float32 training", big, show_value=True)
    lo, hi = float(x.min()), float(x.max())
    if likelihood == "bernoulli" and (lo < 0 or hi > 1):
        hint = " (divide by 255?)" if hi <= 255 and lo >= 0 else ""
        _fail(
            where,
            f"values from {lo:g} to {hi:g} lie outside [0, 1]; allowed with likelihood bernoulli (the default): "
            f"intensities in [0, 1]{hint}, or --likelihood gaussian",
        )


def from_array(
    x,
    likelihood: str = "bernoulli",
    architecture: str = "mlp",
    name: str = "array",
    split_seed: int = 0,
    min_examples: int = MIN_EXAMPLES,
    meta: dict | None = None,
) -> Dataset:
    """A validated, split ``Dataset`` from an array of examples (errors name ``name``)."""
    if likelihood not in LIKELIHOODS:
        raise ValueError(f"likelihood={likelihood!r} is not allowed; allowed: {', '.join(LIKELIHOODS)}")
    if architecture not in ARCHITECTURES:
        raise ValueError(f"architecture={architecture!r} is not allowed; allowed: {', '.join(ARCHITECTURES)}")
    x = np.asarray(x)
    if x.dtype.kind not in "biuf":
        _fail(name, f"holds {x.dtype} values; allowed: numbers")
    if x.ndim < 2:
        _fail(
            name,
            f"an array of shape {x.shape} is not examples x features; allowed: (n, d), (n, rows, columns) "
            "or (n, rows, columns, channels)",
        )
    image_shape = _image_shape(name, x.shape, architecture)
    flat = x.reshape(x.shape[0], -1).astype(np.float64)
    _check_values(name, flat, likelihood, min_examples)
    flat = flat.astype(np.float32)
    (train, val, test), _ = split_arrays(flat, None, split_seed)
    if likelihood == "bernoulli":
        val, test = binarize(val, BINARIZE_SEED), binarize(test, BINARIZE_SEED + 1)
    digest = hashlib.sha256(np.ascontiguousarray(flat).tobytes() + str(flat.shape).encode()).hexdigest()
    info = {"source": name, "shape": list(x.shape), "sha256": digest, "split_seed": split_seed, **(meta or {})}
    return Dataset(name, train, val, test, likelihood, image_shape, meta=info)


def load_file(
    path,
    likelihood: str = "bernoulli",
    architecture: str = "mlp",
    key: str | None = None,
    split_seed: int = 0,
    min_examples: int = MIN_EXAMPLES,
) -> Dataset:
    """Read, validate and split the examples in ``path`` (see the module docstring)."""
    path = Path(path)
    x, used = _read(path, key)
    return from_array(x, likelihood, architecture, str(path), split_seed, min_examples, meta={"array": used})
