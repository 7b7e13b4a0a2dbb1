"""Files written so that nothing is lost: a temporary name beside the target, renamed onto it when
the write succeeded (readers never see half a file; a failed or interrupted write leaves nothing
behind), JSON with standard values only. The results store, the book driver and the advisor's
report all write through here.

    from vae_utils.fileio import atomic_path, write_bytes, write_json, read_json
    write_json("out/advice.json", {"lr": float("nan")})     # NaN written as null
    with atomic_path("out/table.csv") as tmp:
        df.to_csv(tmp)
"""

from __future__ import annotations

import contextlib
import json
import math
import os
import time
from pathlib import Path

__all__ = ["jsonable", "atomic_path", "write_json", "write_bytes", "read_json"]


def jsonable(x):
    """Standard JSON values: NaN/inf to None (null), numpy scalars and arrays to Python values, tuples to lists."""
    if isinstance(x, dict):
        return {str(k): jsonable(v) for k, v in x.items()}
    if isinstance(x, (list, tuple)):
        return [jsonable(v) for v in x]
    if hasattr(x, "tolist") and not isinstance(x, (str, bytes)):  # numpy scalar or array
        return jsonable(x.tolist())
    if isinstance(x, float) and not math.isfinite(x):
        return None
    return x


@contextlib.contextmanager
def atomic_path(path: str | os.PathLike):
    """A temporary name beside ``path`` to write to; renamed onto ``path`` when the block succeeds,
    removed when it fails (a full disk, an interrupt), so no temporary file is left behind."""
    path = Path(path)
    tmp = path.with_name(f".{path.name}.{os.getpid()}.{time.monotonic_ns()}.tmp")
    try:
        yield tmp
        os.replace(tmp, path)
    except BaseException as e:
        with contextlib.suppress(OSError):
            tmp.unlink()
        if isinstance(e, OSError) and e.filename in (None, str(tmp)):  # a failed write names no file
            e.filename = str(path)  # name the file the user knows, not our temporary one
        raise


def write_json(path: str | os.PathLike, obj, durable: bool = True) -> None:
    """Write JSON atomically: a temporary file in the same directory, then os.replace.

    ``durable``: fsync before the rename, so a power cut cannot leave an empty file under the
    final name (a killed process cannot either way: the rename is atomic)."""
    text = json.dumps(jsonable(obj), indent=1, allow_nan=False)
    with atomic_path(path) as tmp, open(tmp, "x") as f:  # "x": a new file, never through a planted link
        f.write(text)
        if durable:
            f.flush()
            os.fsync(f.fileno())


def read_json(path: str | os.PathLike):
    """The parsed file, or None when it is missing, unreadable or not valid JSON."""
    try:
        with open(path) as f:
            return json.load(f)
    except (OSError, ValueError):  # ValueError: invalid JSON or text
        return None


def write_bytes(path: str | os.PathLike, data: bytes) -> None:
    """Write ``data`` atomically (a new temporary file beside ``path``, then a rename)."""
    with atomic_path(path) as tmp, open(tmp, "xb") as f:  # "x": a new file, never through a planted link
        f.write(data)
