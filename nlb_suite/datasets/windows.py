"""Which bins each trial's window takes: nlb_tools' `make_trial_data` semantics on integer bin indices.

A window [align + a, align + b) takes the bins whose *start* lies in it; without `allow_overlap` it is
cut where the next selected trial's window (or the trial after it) starts; without `allow_nans`
bins holding a NaN anywhere in the session table are dropped (a trial left with no bin vanishes).
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Optional

import numpy as np

from .session import Session
from .specs import Window
from .timebase import NS_PER_MS, ceil_div


@dataclass
class TrialRows:
    """The bins taken by each selected trial, flattened: `bins[offsets[i]:offsets[i+1]]` is trial i."""

    trials: np.ndarray  # positions in the session trial table, in trial order
    bins: np.ndarray  # bin indices at bin_ms
    offsets: np.ndarray  # (n_trials + 1,)
    align_bin: np.ndarray  # per trial: ceil(align time) in bins, for aligned time labels
    nan_dropped: Optional[np.ndarray] = None  # per trial: bins dropped for holding a NaN (allow_nans False)
    emptied: Optional[np.ndarray] = None  # positions of trials whose every bin held a NaN (so they vanished)

    @property
    def lengths(self) -> np.ndarray:
        return np.diff(self.offsets)

    def stacked(self, what: str) -> tuple[int, int]:
        """(n_trials, n_bins) when every trial has the same length, else a clear error."""
        lengths = self.lengths
        if len(lengths) and not np.all(lengths == lengths[0]):
            raise ValueError(
                f"{what}: trials have different lengths ({lengths.min()}..{lengths.max()} bins), "
                "so they cannot be stacked (nlb_tools fails here too); check the NWB trial times"
            )
        return len(lengths), int(lengths[0]) if len(lengths) else 0


def trial_rows(
    session: Session,
    window: Window,
    include: np.ndarray,
    bin_ms: int,
    align_field: Optional[str] = None,
    offsets: Optional[tuple[float, float]] = None,
    allow_nans: bool = False,
    nan_bins: Optional[np.ndarray] = None,
    align_values: Optional[np.ndarray] = None,
) -> TrialRows:
    """Select trials and their bins like `NWBDataset.make_trial_data(ignored_trials=~include, ...)`.

    `align_field`/`offsets` override the window's (used for jittered and lagged windows); `nan_bins`
    marks bins with a NaN anywhere (needed when `allow_nans` is False); `align_values` (ns, one per
    trial of the table) replaces the alignment column, e.g. jittered go times.
    """
    t = session.trials
    align_field = align_field if align_field is not None else window.align_field
    offsets = offsets if offsets is not None else window.offsets
    start = t[window.start_field]
    end = t[window.end_field]
    trial_start = t["start_time"]
    next_start = np.concatenate([trial_start[1:], [np.nan]])
    if align_values is not None:
        align_left = align_right = align_values
    elif align_field is not None:
        align_left = align_right = t[align_field]
    else:
        align_left, align_right = start, end
    if offsets is not None:
        align_start = align_left + offsets[0] * NS_PER_MS
        align_end = align_right + offsets[1] * NS_PER_MS - 1000
    else:
        align_start = start.astype(np.float64)
        align_end = end - 1000

    sel = np.flatnonzero(include)
    # end bound of each trial: min(next trial start, window start) of the next selected trial, taken
    # before trials with missing times are dropped (NaN-skipping), as pandas computes it
    bound = np.fmin(next_start[sel], align_start[sel])
    end_bound = np.concatenate([bound[1:], [np.nan]])
    keep = ~(np.isnan(align_start[sel]) | np.isnan(align_end[sel]) | np.isnan(start[sel])
             | np.isnan(align_left[sel]))
    sel, end_bound = sel[keep], end_bound[keep]
    a_start, a_end = align_start[sel], align_end[sel]
    endpoint = a_end.copy()
    cut = ~np.isnan(end_bound) & (a_end > end_bound)
    if not window.allow_overlap:
        endpoint[cut] = end_bound[cut] - 1000

    bin_ns = bin_ms * NS_PER_MS
    n_bins = session.n_bins(bin_ms)
    lo = np.clip(ceil_div(a_start.astype(np.int64), bin_ns), 0, n_bins)
    hi = np.clip(endpoint.astype(np.int64) // bin_ns + 1, 0, n_bins)
    hi = np.maximum(hi, lo)
    lengths = hi - lo
    total = int(lengths.sum())
    starts = np.repeat(lo - np.concatenate([[0], np.cumsum(lengths)[:-1]]), lengths)
    bins = starts + np.arange(total)
    row_trial = np.repeat(np.arange(len(sel)), lengths)
    if not allow_nans and nan_bins is not None:
        ok = ~nan_bins[bins]
        bins, row_trial = bins[ok], row_trial[ok]
    counts = np.bincount(row_trial, minlength=len(sel))
    present = counts > 0  # trials without any bin vanish, as in a pandas groupby
    align_bin = ceil_div(align_left[sel].astype(np.int64), bin_ns)
    return TrialRows(
        trials=sel[present], bins=bins,
        offsets=np.concatenate([[0], np.cumsum(counts[present])]),
        align_bin=align_bin[present],
        nan_dropped=(lengths - counts)[present],
        emptied=sel[(lengths > 0) & ~present],
    )
