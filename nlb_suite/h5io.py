"""HDF5 dicts in the nlb_tools layout (`save_to_h5` / `h5_to_dict`), written atomically."""

from __future__ import annotations

import contextlib
import hashlib
import os
import tempfile
from collections.abc import Iterator, Mapping
from pathlib import Path
from typing import Any

import h5py
import numpy as np

from .errors import input_error
from .outputs import file_mode


@contextlib.contextmanager
def atomic_path(path: str | os.PathLike) -> Iterator[Path]:
    """Yield a temporary path next to `path`; rename it onto `path` (with the umask's mode) only if the block
    succeeds."""
    path = Path(path)
    try:
        path.parent.mkdir(parents=True, exist_ok=True)
        fd, tmp = tempfile.mkstemp(prefix=f".{path.name}.", suffix=".tmp", dir=path.parent)
    except OSError as exc:
        raise input_error(str(path), f"cannot write here ({exc.strerror or exc})") from None
    os.close(fd)
    tmp_path = Path(tmp)
    try:
        yield tmp_path
        os.chmod(tmp_path, file_mode())  # mkstemp made it 0600: colleagues and CI artifacts could not read it
        os.replace(tmp_path, path)
    except OSError as exc:
        if exc.filename not in (None, str(tmp_path)):
            raise
        raise OSError(exc.errno, exc.strerror, str(path)) from None  # the file the user asked for, not our temp
    finally:
        if tmp_path.exists():
            tmp_path.unlink()


@contextlib.contextmanager
def memory_h5(path: str | os.PathLike) -> Iterator[h5py.File]:
    """An HDF5 file built in memory and written to `path` in one plain write when the block succeeds.

    HDF5 writing straight to disk turns a full disk into a half-closed file that raises again at exit and can
    segfault the interpreter; a plain write fails with one OSError, and nothing is written on error.
    """
    path = Path(path)
    with h5py.File(f"{path}.in-memory", "w", driver="core", backing_store=False) as f:  # the name is a label
        yield f
        f.flush()
        image = f.id.get_file_image()
    try:
        with open(path, "wb") as out:
            out.write(image)
    except OSError as exc:  # a failed write names no file; say which one
        raise OSError(exc.errno, exc.strerror, str(exc.filename or path)) from None


def sha256_file(path: str | os.PathLike) -> str:
    """Hex SHA-256 of a file, read in 1 MiB chunks (checksums of data and submissions)."""
    h = hashlib.sha256()
    with open(path, "rb") as f:
        for chunk in iter(lambda: f.read(1 << 20), b""):
            h.update(chunk)
    return h.hexdigest()


def storage_dtype(arr: np.ndarray) -> Any:
    """nlb_tools stores every float as float32 and every integer as int32; other dtypes are kept."""
    if arr.dtype == object:
        sub = np.asarray(arr.flat[0]).dtype
        if np.issubdtype(sub, np.floating):
            sub = np.float32
        elif np.issubdtype(sub, np.integer):
            sub = np.int32
        return h5py.vlen_dtype(sub)
    if np.issubdtype(arr.dtype, np.floating):
        return np.float32
    if np.issubdtype(arr.dtype, np.integer):
        return np.int32
    return arr.dtype


def _write_group(group: h5py.Group, data: Mapping[str, Any], compression: str | None) -> None:
    for key, val in data.items():
        if isinstance(val, Mapping):
            _write_group(group.require_group(key), val, compression)
            continue
        arr = np.asarray(val) if not (isinstance(val, np.ndarray) and val.dtype == object) else val
        group.create_dataset(key, data=arr, dtype=storage_dtype(arr), compression=compression)


def save_h5(data: Mapping[str, Any], path: str | os.PathLike, compression: str | None = "gzip") -> Path:
    """Write a (nested) dict of arrays to `path` exactly as nlb_tools' save_to_h5 lays it out, atomically."""
    path = Path(path)
    with atomic_path(path) as tmp, memory_h5(tmp) as f:
        _write_group(f, data, compression)
    return path


def _read_group(group: h5py.Group) -> dict[str, Any]:
    out: dict[str, Any] = {}
    for key, item in group.items():
        out[key] = _read_group(item) if isinstance(item, h5py.Group) else item[()]
    return out


def load_h5(path: str | os.PathLike) -> dict[str, Any]:
    """Read an HDF5 file into a nested dict of numpy arrays; a clear error if it is missing or not HDF5."""
    path = Path(path)
    if not path.exists():
        raise input_error(str(path), "file not found")
    if not h5py.is_hdf5(path):
        raise input_error(str(path), "not an HDF5 file")
    try:
        with h5py.File(path, "r") as f:
            return _read_group(f)
    except OSError as exc:
        raise input_error(str(path), f"unreadable HDF5 file ({exc})") from None
