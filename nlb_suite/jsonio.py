"""The one JSON writer: plain JSON (NaN and ±inf become null, numpy values become numbers), written atomically.

Every JSON file nlb_suite writes (run folders, `evaluate --json`, manifests) goes through `write_json`, so a
missing number reads the same everywhere and any strict JSON reader accepts the file; `nan_for_null` turns
the nulls of a numeric result back into NaN when it is read.
"""

from __future__ import annotations

import json
import math
import os
from pathlib import Path
from typing import Any

import numpy as np


def plain(obj: Any) -> Any:
    """A JSON-ready copy: numpy scalars/arrays to Python numbers/lists, non-finite floats to None, paths to str."""
    if isinstance(obj, dict):
        return {str(k): plain(v) for k, v in obj.items()}
    if isinstance(obj, (list, tuple)):
        return [plain(v) for v in obj]
    if isinstance(obj, (np.ndarray, np.generic)):
        return plain(obj.tolist())
    if isinstance(obj, float):
        return obj if math.isfinite(obj) else None
    if isinstance(obj, os.PathLike):
        return os.fspath(obj)
    if obj is None or isinstance(obj, (str, int, bool)):
        return obj
    raise TypeError(f"cannot write a {type(obj).__name__} as JSON")


def dumps_json(obj: Any, indent: int | None = 2) -> str:
    """`obj` as JSON text (the same encoding `write_json` uses), ending in a newline."""
    return json.dumps(plain(obj), indent=indent, allow_nan=False) + "\n"


def write_json(path: str | os.PathLike, obj: Any, indent: int | None = 2) -> None:
    """Write `obj` as JSON to `path` via a temporary file renamed into place: never a partial file."""
    from .h5io import atomic_path

    text = dumps_json(obj, indent)  # encode first: an unwritable object leaves no file at all
    with atomic_path(path) as tmp:
        Path(tmp).write_text(text, encoding="utf-8")


def nan_for_null(obj: Any) -> Any:
    """A numeric result read back: every null (a NaN or inf when written) becomes NaN."""
    if isinstance(obj, dict):
        return {k: nan_for_null(v) for k, v in obj.items()}
    if isinstance(obj, list):
        return [nan_for_null(v) for v in obj]
    return math.nan if obj is None else obj
