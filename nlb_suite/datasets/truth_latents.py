"""True latent states of synthetic datasets on the session's global bin grid (for state R2).

ground_truth.h5 holds, per NWB file, the latent state of the generator in every 5 ms bin of that file's time
axis (the attractor's coordinates, the chaotic RNN's units, the NLB stand-ins' drivers and RNN teacher).
Here they are placed on the joined session axis and averaged to the requested bin width.
"""

from __future__ import annotations

import h5py
import numpy as np

from ..errors import NLBInputError
from .session import Session
from .truth import TRUTH_BIN_MS, _file_kind, truth_file


def truth_latents(session: Session, bin_ms: int) -> np.ndarray:
    """(n_bins, latent dims) true latent state per bin of `bin_ms` (NaN where no file covers the bin)."""
    path = truth_file(session, bin_ms, "true latents exist")
    n5 = -(-session.total_ms // TRUTH_BIN_MS)
    out = None
    with h5py.File(path, "r") as f:
        for nwb, offset in zip(session.files, session.offsets_ms):
            kind = _file_kind(nwb.path)
            if kind not in f or "latents" not in f[kind]:
                raise NLBInputError(f"{path}: missing '{kind}/latents' for {nwb.path.name}")
            lat = f[kind]["latents"][()].astype(np.float64)
            if out is None:
                out = np.full((n5, lat.shape[1]), np.nan)
            start = offset // TRUTH_BIN_MS
            out[start : start + len(lat)] = lat[: n5 - start]
    assert out is not None
    factor = bin_ms // TRUTH_BIN_MS
    if factor > 1:
        n = -(-n5 // factor)
        padded = np.concatenate([out, np.full((n * factor - n5, out.shape[1]), np.nan)])
        out = padded.reshape(n, factor, -1).mean(axis=1)
    return out
