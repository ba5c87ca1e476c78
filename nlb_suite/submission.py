"""EvalAI submission files: write (float32, gzip, atomic), read, validate against a target, combine."""

from __future__ import annotations

import difflib
import os
from collections.abc import Iterable, Mapping
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Optional

import numpy as np

from .datasets.specs import DATASETS, SUPPORTED_BINS
from .errors import input_error
from .h5io import atomic_path, memory_h5
from .rate_check import dtype_problem, rate_problems

REQUIRED = ("train_rates_heldin", "train_rates_heldout", "eval_rates_heldin", "eval_rates_heldout")
FORWARD = ("eval_rates_heldin_forward", "eval_rates_heldout_forward")
ARRAYS = REQUIRED + FORWARD
GROUPS = tuple(spec.result_key(b) for spec in DATASETS.values() for b in SUPPORTED_BINS)

Shape = tuple[Optional[int], ...]


def group_dataset(key: str) -> tuple[str, int]:
    """('mc_maze', 20) for group 'mc_maze_20'."""
    for spec in DATASETS.values():
        for b in SUPPORTED_BINS:
            if spec.result_key(b) == key:
                return spec.name, b
    raise KeyError(key)


def write_submission(data: Mapping[str, Mapping[str, Any]], path: str | os.PathLike) -> Path:
    """Write {group: {array: rates}} as float32, gzip-compressed, atomically (no partial file on error)."""
    path = Path(path)
    with atomic_path(path) as tmp, memory_h5(tmp) as f:
        for key, arrays in data.items():
            grp = f.create_group(key)
            for name, arr in arrays.items():
                grp.create_dataset(name, data=np.asarray(arr, dtype=np.float32), compression="gzip")
    return path


def read_submission(path: str | os.PathLike) -> dict[str, dict[str, np.ndarray]]:
    """Read a submission file into {group: {array: ndarray}}; one-line errors for missing or non-HDF5 files."""
    import h5py

    path = Path(path)
    if not path.exists():
        raise input_error(str(path), "file not found")
    if path.is_dir() or not h5py.is_hdf5(path):
        raise input_error(str(path), "not an HDF5 file")
    out: dict[str, dict[str, np.ndarray]] = {}
    try:
        with h5py.File(path, "r") as f:
            for key, node in f.items():
                _check_link(path, key, node)
                if not isinstance(node, h5py.Group):
                    out[key] = node[()]  # reported by validate_submission as "not a group"
                    continue
                for name, item in node.items():
                    _check_link(path, f"{key}/{name}", item)
                out[key] = {name: (item[()] if isinstance(item, h5py.Dataset) else {})
                            for name, item in node.items()}
    except OSError as exc:
        raise input_error(str(path), f"unreadable HDF5 file ({exc})") from None
    return out


def _check_link(path: Path, name: str, node: object) -> None:
    """One line naming `name` when h5py gave None for it: a soft or external link to nothing."""
    if node is None:
        raise input_error(str(path), f"{name}: broken link (it points to nothing)", "arrays stored in the file")


def combine_submissions(parts: Iterable[tuple[str, Mapping[str, Mapping[str, Any]]]]) -> dict[str, dict[str, Any]]:
    """Merge per-dataset submissions into one; a group present in two inputs is an error naming both."""
    merged: dict[str, dict[str, Any]] = {}
    origin: dict[str, str] = {}
    for where, data in parts:
        for key, arrays in data.items():
            if key in merged:
                raise input_error(where, f"{key}: group also present in {origin[key]}",
                                  "each dataset group in exactly one input")
            merged[key], origin[key] = dict(arrays), where
    return merged


@dataclass
class Validation:
    """Problems make a submission invalid; warnings are worth reading but do not."""

    problems: list[str] = field(default_factory=list)
    warnings: list[str] = field(default_factory=list)

    @property
    def ok(self) -> bool:
        return not self.problems


def _suggest(name: str, options: Iterable[str]) -> str:
    close = difflib.get_close_matches(name, list(options), n=1)
    return f"; did you mean {close[0]!r}?" if close else ""


def shape_text(shape: Shape) -> str:
    """A shape as text, `?` for a size that may be anything: (30, ?, 45)."""
    return "(" + ", ".join("?" if d is None else str(d) for d in shape) + ("," if len(shape) == 1 else "") + ")"


def shape_matches(found: tuple[int, ...], expected: Shape) -> bool:
    """`found` has `expected`'s rank and its size on every axis that `expected` fixes (None: any size)."""
    return len(found) == len(expected) and all(e is None or f == e for f, e in zip(found, expected))


CONSISTENT = (  # (what, axis, arrays that must agree on it)
    ("held-in neuron counts", 2, ("train_rates_heldin", "eval_rates_heldin", "eval_rates_heldin_forward")),
    ("held-out neuron counts", 2, ("train_rates_heldout", "eval_rates_heldout", "eval_rates_heldout_forward")),
    ("train trial counts", 0, ("train_rates_heldin", "train_rates_heldout")),
    ("train bin counts", 1, ("train_rates_heldin", "train_rates_heldout")),
    ("eval trial counts", 0, ("eval_rates_heldin", "eval_rates_heldout") + FORWARD),
    ("eval bin counts", 1, ("eval_rates_heldin", "eval_rates_heldout")),
    ("forward bin counts", 1, FORWARD),
)


def _consistency(arrays: Mapping[str, np.ndarray]) -> list[str]:
    """Disagreements between the arrays of one group on neuron, trial and bin counts."""
    out = []
    for what, axis, names in CONSISTENT:
        found = {n: arrays[n].shape[axis] for n in names if n in arrays}
        if len(set(found.values())) > 1:
            out.append(f"{what} differ: " + ", ".join(f"{n} {c}" for n, c in found.items())
                       + " (expected one count)")
    return out


def validate_submission(data: Mapping[str, Any], where: str,
                        expected: Optional[Mapping[str, Mapping[str, Shape]]] = None) -> Validation:
    """Every mistake in a submission: group and array names, dtype, NaN/inf/negative, shapes.

    `expected` maps group -> array -> shape (None for an unknown dimension), e.g. from a target.
    """
    v = Validation()
    if not data:
        v.problems.append(f"{where}: no dataset groups (expected one or more of {', '.join(GROUPS)})")
    for key, arrays in data.items():
        if key not in GROUPS:
            v.problems.append(f"{where}: {key}: unknown dataset group{_suggest(key, GROUPS)} "
                              f"(expected one of {', '.join(GROUPS)})")
            continue
        if not isinstance(arrays, Mapping):
            v.problems.append(f"{where}: {key}: not a group (expected a group of rate arrays)")
            continue
        if expected is not None and key not in expected:
            v.problems.append(f"{where}: {key}: not in the target (target groups: "
                              f"{', '.join(expected) or 'none'})")
        good: dict[str, np.ndarray] = {}
        for name in REQUIRED:
            if name not in arrays:
                v.problems.append(f"{where}: {key}/{name}: array missing")
        present = [n for n in FORWARD if n in arrays]
        if len(present) == 1:
            missing = FORWARD[1 - FORWARD.index(present[0])]
            v.problems.append(f"{where}: {key}/{missing}: array missing (needed with {present[0]} for fp-bps)")
        for name, arr in arrays.items():
            label = f"{where}: {key}/{name}"
            if name not in ARRAYS:
                v.problems.append(f"{label}: unknown array{_suggest(name, ARRAYS)} (expected {', '.join(ARRAYS)})")
                continue
            arr = np.asarray(arr)
            bad_dtype = dtype_problem(arr.dtype)
            if bad_dtype:
                v.problems.append(f"{label}: {bad_dtype}")
                continue
            if arr.dtype != np.float32:
                v.warnings.append(f"{label}: dtype {arr.dtype}; EvalAI files are float32 (package converts)")
            if arr.ndim != 3:
                v.problems.append(f"{label}: {arr.ndim}-d array of shape {arr.shape} "
                                  "(expected 3-d trials x bins x neurons)")
                continue
            v.problems += [f"{label}: {p}" for p in rate_problems(arr)]
            good[name] = arr
        v.problems += [f"{where}: {key}: {p}" for p in _consistency(good)]
        for name, shape in (expected or {}).get(key, {}).items():
            if name in good and not shape_matches(good[name].shape, shape):
                v.problems.append(f"{where}: {key}/{name}: shape {good[name].shape} (expected {shape_text(shape)})")
        if expected is None:
            v.warnings += _published_shape_notes(key, good, where)
    return v


def _published_shape_notes(key: str, arrays: Mapping[str, np.ndarray], where: str) -> list[str]:
    """One warning per group whose neuron or bin counts differ from the published dataset (fine if synthetic)."""
    name, bin_ms = group_dataset(key)
    spec = DATASETS[name]
    want = {"train_rates_heldin": (None, spec.n_bins(bin_ms), spec.n_heldin),
            "train_rates_heldout": (None, spec.n_bins(bin_ms), spec.n_heldout),
            "eval_rates_heldin": (None, None, spec.n_heldin), "eval_rates_heldout": (None, None, spec.n_heldout),
            "eval_rates_heldin_forward": (None, spec.fp_bins(bin_ms), spec.n_heldin),
            "eval_rates_heldout_forward": (None, spec.fp_bins(bin_ms), spec.n_heldout)}
    off = [n for n, a in arrays.items() if n in want and not shape_matches(a.shape, want[n])]
    if not off:
        return []
    return [f"{where}: {key}: {len(off)} array(s) differ from the published {name} shapes "
            f"({spec.n_heldin} held-in + {spec.n_heldout} held-out units, {spec.n_bins(bin_ms)} train bins, "
            f"{spec.fp_bins(bin_ms)} forward bins); fine for synthetic data, not for EvalAI"]


def _target_shape(grp: Any, key: str, name: str, ndim: tuple[int, ...], where: str) -> Optional[tuple[int, ...]]:
    """Shape of target array `key/name` (None if absent); a one-line error if it is not an array of `ndim` dims."""
    if name not in grp.keys():
        return None
    shape = getattr(grp[name], "shape", None)
    if not isinstance(shape, tuple) or len(shape) not in ndim:
        found = "not an array" if shape is None else f"{len(shape)}-d array of shape {shape}"
        raise input_error(where, f"{key}/{name}: {found}", f"{' or '.join(map(str, ndim))}-d array")
    return tuple(int(d) for d in shape)


def expected_from_target(target: Mapping[str, Any], where: str = "target") -> dict[str, dict[str, Shape]]:
    """Submission shapes implied by an eval target in the nlb_tools layout (None where it cannot tell)."""
    out: dict[str, dict[str, Shape]] = {}
    for key in target.keys():
        grp = target[key]
        if key not in GROUPS or not hasattr(grp, "keys") or "eval_spikes_heldout" not in grp.keys():
            continue
        ho = _target_shape(grp, key, "eval_spikes_heldout", (3,), where)
        fin = _target_shape(grp, key, "eval_spikes_heldin_forward", (3,), where)
        fout = _target_shape(grp, key, "eval_spikes_heldout_forward", (3,), where)
        n_in = fin[2] if fin else None
        beh = _target_shape(grp, key, "train_behavior", (2, 3), where) or (None,)
        train_bins = beh[1] if len(beh) == 3 else None  # dmfc_rsg's behaviour is per trial
        shapes: dict[str, Shape] = {
            "eval_rates_heldout": ho, "eval_rates_heldin": (ho[0], ho[1], n_in),
            "train_rates_heldin": (beh[0], train_bins, n_in), "train_rates_heldout": (beh[0], train_bins, ho[2]),
        }
        if fin:
            shapes["eval_rates_heldin_forward"] = fin
        if fout:
            shapes["eval_rates_heldout_forward"] = fout
        out[key] = shapes
    return out


def expected_from_tensors(train_heldin: tuple, train_heldout: tuple, eval_heldin: tuple,
                          fp_bins: int) -> dict[str, Shape]:
    """Submission shapes of one group from the dataset's input tensors' shapes."""
    n_eval, eval_bins, n_in = eval_heldin
    n_out = train_heldout[2]
    return {"train_rates_heldin": tuple(train_heldin), "train_rates_heldout": tuple(train_heldout),
            "eval_rates_heldin": tuple(eval_heldin), "eval_rates_heldout": (n_eval, eval_bins, n_out),
            "eval_rates_heldin_forward": (n_eval, fp_bins, n_in),
            "eval_rates_heldout_forward": (n_eval, fp_bins, n_out)}
