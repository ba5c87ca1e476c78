"""Gaussian-smoothed spike counts inside trial windows, equal to nlb_tools' whole-session smoothing.

nlb_tools smooths every unit over the whole session at 1 ms (convolving each NaN-free stretch on its
own), then sums bins. Only the window bins are ever used, so we convolve just each window plus the
kernel's reach, in batches; windows whose reach crosses a recording gap take an exact per-stretch path.
"""

from __future__ import annotations

import numpy as np
from scipy import signal

from .session import SpikeGroup
from .windows import TrialRows

_BATCH_VALUES = 5_000_000  # float64 values per convolution batch (~40 MB)


def gaussian_window(kern_sd_ms: float) -> np.ndarray:
    """The normalised kernel nlb_tools uses at 1 ms: int(6·sd) samples, symmetric."""
    win = signal.windows.gaussian(int(6 * kern_sd_ms), kern_sd_ms, sym=True)
    return win / np.sum(win)


def _dense(group: SpikeGroup, sorted_ms: np.ndarray, sorted_unit: np.ndarray,
           starts: np.ndarray, length: int) -> np.ndarray:
    """Spike counts (n, units, length) of the 1 ms stretches [starts[i], starts[i] + length)."""
    n, u = len(starts), group.n_units
    lo = np.searchsorted(sorted_ms, starts)
    hi = np.searchsorted(sorted_ms, starts + length)
    counts = hi - lo
    idx = np.repeat(lo - np.concatenate([[0], np.cumsum(counts)[:-1]]), counts) + np.arange(counts.sum())
    trial = np.repeat(np.arange(n), counts)
    pos = sorted_ms[idx] - starts[trial]
    flat = (trial * u + sorted_unit[idx]) * length + pos
    return np.bincount(flat, minlength=n * u * length).reshape(n, u, length).astype(np.float64)


def smoothed_window_bins(group: SpikeGroup, rows: TrialRows, bin_ms: int, kern_sd_ms: float) -> np.ndarray:
    """Smoothed counts (rows x units) for contiguous trial windows; NaN where the group is NaN."""
    win = gaussian_window(kern_sd_ms)
    m = len(win)
    c = (m - 1) // 2
    left = m - 1 - c
    order = np.argsort(group.ms, kind="stable")
    sorted_ms, sorted_unit = group.ms[order], group.unit[order]

    n_trials = len(rows.trials)
    lo_bins = rows.bins[rows.offsets[:-1]] if n_trials else np.zeros(0, np.int64)
    lengths = rows.lengths
    fine0 = lo_bins * bin_ms
    fine_len = lengths * bin_ms
    ext_start = fine0 - left
    ext_end = fine0 + fine_len + c
    pos = np.searchsorted(group.valid.starts, ext_start, side="right") - 1
    inside = (pos >= 0) & (group.valid.ends[np.maximum(pos, 0)] >= ext_end)

    out = np.full((len(rows.bins), group.n_units), np.nan)
    fast = np.flatnonzero(inside & (lengths > 0))
    max_len = int(fine_len.max()) if n_trials else 0
    batch = max(1, _BATCH_VALUES // max(1, group.n_units * (max_len + m)))
    for s in range(0, len(fast), batch):
        tr = fast[s : s + batch]
        dense = _dense(group, sorted_ms, sorted_unit, ext_start[tr], max_len + m - 1)
        sm = signal.fftconvolve(dense, win[None, None, :], mode="valid", axes=-1)
        np.maximum(sm, 0.0, out=sm)
        for k, t in enumerate(tr):
            n_b = lengths[t]
            binned = sm[k, :, : n_b * bin_ms].reshape(group.n_units, n_b, bin_ms).sum(axis=2)
            out[rows.offsets[t] : rows.offsets[t + 1]] = binned.T
    for t in np.flatnonzero(~inside & (lengths > 0)):
        out[rows.offsets[t] : rows.offsets[t + 1]] = _exact_window(
            group, sorted_ms, sorted_unit, int(fine0[t]), int(lengths[t]), bin_ms, win)
    return out


def _exact_window(group: SpikeGroup, sorted_ms: np.ndarray, sorted_unit: np.ndarray, fine0: int,
                  n_bins: int, bin_ms: int, win: np.ndarray) -> np.ndarray:
    """One window whose kernel reach crosses a NaN stretch: smooth each observed stretch separately."""
    m = len(win)
    c = (m - 1) // 2
    left = m - 1 - c
    length = n_bins * bin_ms
    ext0 = fine0 - left
    ext_len = length + m - 1
    idx = np.arange(ext0, ext0 + ext_len)
    seg = np.searchsorted(group.valid.starts, idx, side="right") - 1
    valid = (seg >= 0) & (idx < group.valid.ends[np.maximum(seg, 0)])
    seg[~valid] = -1
    dense = _dense(group, sorted_ms, sorted_unit, np.array([ext0]), ext_len)[0]
    fine = np.full((group.n_units, length), np.nan)
    out_seg = seg[left : left + length]
    for s in np.unique(out_seg[out_seg >= 0]):
        x = np.where(seg == s, dense, 0.0)
        sm = signal.fftconvolve(x, win[None, :], mode="valid", axes=-1)
        np.maximum(sm, 0.0, out=sm)
        here = out_seg == s
        fine[:, here] = sm[:, here]
    first_nan = np.isnan(fine[:, ::bin_ms])
    binned = np.nan_to_num(fine).reshape(group.n_units, n_bins, bin_ms).sum(axis=2)
    binned[first_nan] = np.nan
    return binned.T
