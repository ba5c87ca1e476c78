"""Condition sums of Gaussian-smoothed spike counts, equal to nlb_tools' whole-session smoothing.

nlb_tools smooths every unit over the whole session at 1 ms (each NaN-free stretch on its own), sums
bins, cuts trial windows and averages them per aligned bin. Smoothing is linear, so trials whose kernel
reach stays inside one observed stretch are summed first (aligned on the bin grid) and convolved once
per group of equal windows; windows whose reach crosses a recording gap take an exact per-stretch path.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np
from scipy import signal

from .session import SpikeGroup
from .windows import TrialRows


def gaussian_window(kern_sd_ms: float) -> np.ndarray:
    """The normalised kernel nlb_tools uses at 1 ms: int(6·sd) samples, symmetric."""
    win = signal.windows.gaussian(int(6 * kern_sd_ms), kern_sd_ms, sym=True)
    return win / np.sum(win)


@dataclass
class AlignedSums:
    """Per aligned bin (first = `start`): sum of smoothed counts over trials, non-NaN counts, row presence."""

    start: int
    sums: np.ndarray  # (n_bins, units)
    counts: np.ndarray  # (n_bins, units)
    present: np.ndarray  # (n_bins,) some trial has a row here

    def mean(self) -> np.ndarray:
        """NaN-skipping mean over trials (NaN where no value), rows without any trial dropped."""
        with np.errstate(invalid="ignore", divide="ignore"):
            out = np.where(self.counts > 0, self.sums / np.maximum(self.counts, 1), np.nan)
        return out[self.present]


def _summed_dense(group: SpikeGroup, starts: np.ndarray, length: int) -> np.ndarray:
    """Spike counts (units, length) summed over the 1 ms stretches [starts[i], starts[i] + length)."""
    lo = np.searchsorted(group.ms, starts)
    hi = np.searchsorted(group.ms, starts + length)
    counts = hi - lo
    idx = np.repeat(lo - np.concatenate([[0], np.cumsum(counts)[:-1]]), counts) + np.arange(counts.sum())
    pos = group.ms[idx] - np.repeat(starts, counts)
    flat = group.unit[idx].astype(np.int64) * length + pos
    return np.bincount(flat, minlength=group.n_units * length).reshape(group.n_units, length).astype(np.float64)


def _binned(fine: np.ndarray, n_bins: int, bin_ms: int) -> np.ndarray:
    """Sum 1 ms values into bins (units, n_bins); NaN where the bin's first millisecond is NaN."""
    first_nan = np.isnan(fine[:, : n_bins * bin_ms : bin_ms])
    out = np.nan_to_num(fine[:, : n_bins * bin_ms]).reshape(fine.shape[0], n_bins, bin_ms).sum(axis=2)
    out[first_nan] = np.nan
    return out


def condition_sums(group: SpikeGroup, rows: TrialRows, good: np.ndarray, bin_ms: int,
                   kern_sd_ms: float) -> AlignedSums:
    """Sum over the `good` trials of smoothed binned counts, by bin relative to each trial's alignment."""
    win = gaussian_window(kern_sd_ms)
    m = len(win)
    left, right = m - 1 - (m - 1) // 2, (m - 1) // 2
    lengths = rows.lengths
    first = rows.bins[rows.offsets[:-1]]
    rel = first - rows.align_bin  # aligned index of each trial's first bin
    lo_rel, hi_rel = int(rel[good].min()), int((rel + lengths)[good].max())
    n_rel = hi_rel - lo_rel
    out = AlignedSums(lo_rel, np.zeros((n_rel, group.n_units)), np.zeros((n_rel, group.n_units)),
                      np.zeros(n_rel, bool))
    ext_start = first * bin_ms - left
    ext_end = (first + lengths) * bin_ms + right
    pos = np.searchsorted(group.valid.starts, ext_start, side="right") - 1
    inside = (pos >= 0) & (group.valid.ends[np.maximum(pos, 0)] >= ext_end)

    fast = np.flatnonzero(good & inside)
    keys = np.stack([rel[fast], lengths[fast]], axis=1) if len(fast) else np.zeros((0, 2), int)
    for (r0, n_b), members in _groups(keys, fast):
        dense = _summed_dense(group, ext_start[members], n_b * bin_ms + m - 1)
        sm = signal.fftconvolve(dense, win[None, :], mode="valid", axes=-1)
        np.maximum(sm, 0.0, out=sm)
        sl = slice(r0 - lo_rel, r0 - lo_rel + n_b)
        out.sums[sl] += _binned(sm, n_b, bin_ms).T
        out.counts[sl] += len(members)
        out.present[sl] = True
    for t in np.flatnonzero(good & ~inside):
        vals = _exact_window(group, int(first[t]) * bin_ms, int(lengths[t]), bin_ms, win).T
        sl = slice(int(rel[t]) - lo_rel, int(rel[t]) - lo_rel + int(lengths[t]))
        ok = ~np.isnan(vals)
        out.sums[sl] += np.where(ok, vals, 0.0)
        out.counts[sl] += ok
        out.present[sl] = True
    return out


def _groups(keys: np.ndarray, members: np.ndarray):
    """Yield ((aligned start, n_bins), trial indices) for trials sharing both."""
    if not len(keys):
        return
    uniq, inv = np.unique(keys, axis=0, return_inverse=True)
    for k, (r0, n_b) in enumerate(uniq):
        yield (int(r0), int(n_b)), members[inv.ravel() == k]


def _exact_window(group: SpikeGroup, fine0: int, n_bins: int, bin_ms: int, win: np.ndarray) -> np.ndarray:
    """One window whose kernel reach crosses a NaN stretch: smooth each observed stretch separately."""
    m = len(win)
    left = m - 1 - (m - 1) // 2
    length = n_bins * bin_ms
    ext0 = fine0 - left
    ext_len = length + m - 1
    idx = np.arange(ext0, ext0 + ext_len)
    seg = np.searchsorted(group.valid.starts, idx, side="right") - 1
    valid = (seg >= 0) & (idx < group.valid.ends[np.maximum(seg, 0)])
    seg[~valid] = -1
    dense = _summed_dense(group, np.array([ext0]), ext_len)
    fine = np.full((group.n_units, length), np.nan)
    out_seg = seg[left : left + length]
    for s in np.unique(out_seg[out_seg >= 0]):
        x = np.where(seg == s, dense, 0.0)
        sm = signal.fftconvolve(x, win[None, :], mode="valid", axes=-1)
        np.maximum(sm, 0.0, out=sm)
        here = out_seg == s
        fine[:, here] = sm[:, here]
    return _binned(fine, n_bins, bin_ms)
