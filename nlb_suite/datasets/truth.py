"""Ground-truth rates of synthetic datasets on the session's global bin grid (the oracle's ceiling).

`ground_truth.h5` (written by `nlb-eval synth`) holds, per NWB file, the expected spike count of every
unit in every 5 ms bin of that file's own time axis; the test file's group also holds the rates of the
held-out units hidden from its NWB file. Here they are placed on the joined session axis and summed to
the requested bin width, in the column order of the benchmark tensors.
"""

from __future__ import annotations

from pathlib import Path
from typing import Optional

import h5py
import numpy as np

from ..errors import NLBInputError, input_error
from .session import Session

TRUTH_FILE = "ground_truth.h5"
TRUTH_BIN_MS = 5


def find_truth(folder: Path) -> Optional[Path]:
    """ground_truth.h5 in the folder of the NWB files (or a file's folder) or up to two folders above."""
    folder = Path(folder)
    folder = folder.parent if folder.is_file() else folder
    for candidate in (folder, folder.parent, folder.parent.parent):
        if (candidate / TRUTH_FILE).exists():
            return candidate / TRUTH_FILE
    return None


def _file_kind(path: Path) -> str:
    return "test" if "desc-test" in path.name else "train"


def truth_file(session: Session, bin_ms: int, what: str = "ground truth exists") -> Path:
    """The session's ground_truth.h5, with one-line errors when there is none or `bin_ms` is not 5 ms x k."""
    path = find_truth(session.files[0].path)
    if path is None:
        raise NLBInputError(f"{session.files[0].path.parent}: no {TRUTH_FILE} ({what} only for "
                            "synthetic datasets made by `nlb-eval synth`)")
    if bin_ms % TRUTH_BIN_MS:
        raise NLBInputError(f"{path}: ground truth is at {TRUTH_BIN_MS} ms; bin {bin_ms} ms is not a multiple")
    return path


def truth_rates(session: Session, bin_ms: int) -> dict[str, np.ndarray]:
    """{"spikes": (n_bins, n_heldin), "heldout_spikes": (n_bins, n_heldout)} expected counts per bin."""
    path = truth_file(session, bin_ms)
    n5 = -(-session.total_ms // TRUTH_BIN_MS)
    out = {name: np.full((n5, g.n_units), np.nan, dtype=np.float64) for name, g in session.groups.items()}
    heldout_ids = session.groups["heldout_spikes"].unit_ids if "heldout_spikes" in session.groups else None
    if not h5py.is_hdf5(path):
        raise input_error(str(path), "not an HDF5 file", f"the {TRUTH_FILE} written by `nlb-eval synth`")
    try:
        _place_truth(path, session, out, heldout_ids, n5)
    except (OSError, KeyError) as exc:  # a corrupt chunk, a missing field: name the file, not h5py's internals
        raise input_error(str(path), f"unreadable ground truth ({exc})",
                          f"the {TRUTH_FILE} written by `nlb-eval synth`") from None
    factor = bin_ms // TRUTH_BIN_MS
    if factor > 1:
        n = -(-n5 // factor)
        padded = {k: np.concatenate([v, np.zeros((n * factor - n5, v.shape[1]))]) for k, v in out.items()}
        out = {k: v.reshape(n, factor, -1).sum(axis=1) for k, v in padded.items()}
    return out


def _place_truth(path: Path, session: Session, out: dict[str, np.ndarray], heldout_ids: Optional[np.ndarray],
                 n5: int) -> None:
    """Copy each NWB file's 5 ms expected counts from `path` into `out` (`n5` bins of 5 ms) at the file's place on
    the session axis."""
    with h5py.File(path, "r") as f:
        for nwb, offset in zip(session.files, session.offsets_ms):
            kind = _file_kind(nwb.path)
            if kind not in f:
                raise NLBInputError(f"{path}: missing group '{kind}' for {nwb.path.name}")
            g = f[kind]
            start = offset // TRUTH_BIN_MS
            room = n5 - start  # bins left on the session axis from this file's start
            rates = _truth_array(path, g, kind, "rates", len(nwb.unit_ids), room, nwb.path.name)
            for name, group in session.groups.items():
                rows = np.flatnonzero(nwb.heldout == (name == "heldout_spikes"))
                if len(rows):
                    cols = np.searchsorted(group.unit_ids, nwb.unit_ids[rows])
                    out[name][start : start + len(rates), cols] = rates[:, rows]
            if "heldout_rates" in g and heldout_ids is not None and not nwb.heldout.any():
                hidden = _truth_array(path, g, kind, "heldout_rates", len(heldout_ids), room, nwb.path.name)
                out["heldout_spikes"][start : start + len(hidden)] = hidden[:, : len(heldout_ids)]


def _truth_array(path: Path, group: object, kind: str, name: str, n_units: int, room: int, nwb_name: str) -> np.ndarray:
    """`kind/name` of the ground-truth file as a (bins, units) array with at least `n_units` columns and at most
    `room` bins; one line naming the field otherwise (a wrong file would fail deep in the indexing)."""
    node = group.get(name) if isinstance(group, h5py.Group) else None
    arr = node[()] if isinstance(node, h5py.Dataset) else None
    if arr is None or arr.ndim != 2 or arr.shape[1] < n_units or len(arr) > room:
        found = "missing" if arr is None else f"shape {arr.shape}"
        raise input_error(str(path), f"{kind}/{name}: {found}",
                          f"5 ms bins x units: at most {room} bins and at least {n_units} units for {nwb_name}")
    return arr
