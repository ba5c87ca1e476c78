"""A recording session: one NWB file, or the files of a DANDI-style folder joined on one time axis.

Files are joined exactly as nlb_tools joins them (sorted by name, each next file starting on the next
100 ms boundary after the previous end plus 50 ms, trial ids continuing). Spikes stay as event
indices; the NaN structure (recording gaps, missing units, gaps between files) is kept as intervals.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from pathlib import Path

import numpy as np
from scipy import signal

from ..errors import NLBInputError, input_error
from .nwb import NWBContents, read_nwb
from .timebase import NS_PER_MS, seconds_to_ns, spike_ms_index

SPIKE_GROUPS = ("spikes", "heldout_spikes")


@dataclass
class Intervals:
    """Sorted, disjoint half-open [start, end) intervals of 1 ms bins (global indices)."""

    starts: np.ndarray
    ends: np.ndarray

    @classmethod
    def merge(cls, pairs: list[tuple[int, int]]) -> Intervals:
        pairs = sorted((s, e) for s, e in pairs if e > s)
        merged: list[list[int]] = []
        for s, e in pairs:
            if merged and s <= merged[-1][1]:
                merged[-1][1] = max(merged[-1][1], e)
            else:
                merged.append([s, e])
        arr = np.array(merged, dtype=np.int64).reshape(-1, 2)
        return cls(arr[:, 0], arr[:, 1])

    def contains(self, idx: np.ndarray) -> np.ndarray:
        """Boolean mask: which 1 ms indices fall inside an interval."""
        idx = np.asarray(idx, dtype=np.int64)
        pos = np.searchsorted(self.starts, idx, side="right") - 1
        ok = pos >= 0
        out = np.zeros(idx.shape, bool)
        out[ok] = idx[ok] < self.ends[pos[ok]]
        return out


@dataclass
class SpikeGroup:
    """Held-in ("spikes") or held-out ("heldout_spikes") units: spike events on the global 1 ms grid."""

    name: str
    unit_ids: np.ndarray  # column order (as nlb_tools orders them)
    ms: np.ndarray  # global 1 ms index of each spike that nlb_tools keeps, sorted
    unit: np.ndarray  # column of each spike
    valid: Intervals  # where this group is not NaN

    @property
    def n_units(self) -> int:
        return len(self.unit_ids)


@dataclass
class Session:
    """All files of a dataset on one global 1 ms grid, with the joined trial table."""

    files: list[NWBContents]
    offsets_ms: list[int]
    lengths_ms: list[int]
    trials: dict[str, np.ndarray]  # '_time' columns in float64 ns on the global axis
    groups: dict[str, SpikeGroup]
    series_names: list[str] = field(default_factory=list)

    @property
    def total_ms(self) -> int:
        return self.offsets_ms[-1] + self.lengths_ms[-1]

    @property
    def n_trials(self) -> int:
        return len(self.trials["trial_id"])

    def split_mask(self, *splits: str) -> np.ndarray:
        """Trials whose `split` is any of `splits`."""
        split = self.trials.get("split")
        if split is None:
            raise NLBInputError(f"{self.files[0].path}: trials: missing field 'split'")
        return np.isin(split.astype(str), list(splits))

    def n_bins(self, bin_ms: int) -> int:
        """Number of bins at `bin_ms` (a trailing partial bin counts, as in nlb_tools)."""
        return -(-self.total_ms // bin_ms)

    # ----- behaviour series -------------------------------------------------------------------
    def _series_rows(self, name: str):
        """Yield (file, global 1 ms index of each row) for every file holding series `name`."""
        for f, off in zip(self.files, self.offsets_ms):
            ref = f.series.get(name)
            if ref is None:
                continue
            t = np.round(ref.times(), 6)
            yield f, off + np.rint(t * 1000.0).astype(np.int64)

    def series_nan_bins(self, bin_ms: int) -> np.ndarray:
        """Bins (at `bin_ms`) where any column of any behaviour series is NaN after resampling."""
        n = self.n_bins(bin_ms)
        nan = np.zeros(n, bool)
        for name in self.series_names:
            bad = np.ones(n, bool)  # bins not covered by the series are NaN
            for f, k in self._series_rows(name):
                on_grid = k % bin_ms == 0
                rows = np.flatnonzero(on_grid)
                data = f.read_series(name)
                bad[k[rows] // bin_ms] = np.isnan(data[rows]).any(axis=1)
            nan |= bad
        return nan

    def resampled_series(self, name: str, bin_ms: int) -> np.ndarray:
        """Series `name` at `bin_ms` as nlb_tools resamples it: NaN-interpolate the whole joined series,
        FIR-decimate (n=500), then NaN where the subsampled source was NaN. `target_pos` is subsampled."""
        if name not in self.series_names:
            raise NLBInputError(
                f"{self.files[0].path}: behaviour series '{name}' not found "
                f"(found: {', '.join(self.series_names) or 'none'})"
            )
        dense = None
        for f, k in self._series_rows(name):
            data = f.read_series(name)
            if dense is None:
                dense = np.full((self.total_ms, data.shape[1]), np.nan, dtype=data.dtype)
            dense[k] = data
        assert dense is not None
        if bin_ms == 1:
            return dense
        nan_mask = np.isnan(dense[::bin_ms])
        if name == "target_pos":
            return dense[::bin_ms].copy()
        dtype = dense.dtype
        filled = dense.astype(np.float64)
        idx = np.arange(len(filled))
        for c in range(filled.shape[1]):
            col = filled[:, c]
            ok = ~np.isnan(col)
            if ok.any() and not ok.all():
                filled[:, c] = np.interp(idx, idx[ok], col[ok])
        del dense
        out = signal.decimate(filled.astype(dtype), bin_ms, axis=0, n=500, ftype="fir")
        out[nan_mask] = np.nan
        return out.astype(dtype)


# ----- building a session -----------------------------------------------------------------------

def find_nwb_files(path: str | Path) -> list[Path]:
    """The NWB files of a dataset: one file, a folder of them, or a DANDI folder (sub-*/...)."""
    path = Path(path).expanduser()
    if not path.exists():
        raise input_error(str(path), "no such file or folder", "an NWB file or a folder holding the dataset's NWB files")
    if path.is_file():
        return [path]
    files = sorted(path.glob("*.nwb"))
    if not files:
        files = sorted(path.glob("**/*.nwb"))
        parents = {f.parent for f in files}
        if len(parents) > 1:
            raise input_error(str(path), f"NWB files in several folders ({', '.join(sorted(map(str, parents)))})",
                              "one dataset per folder")
    if not files:
        raise input_error(str(path), "no .nwb files found", "a folder with the train (and test) NWB files; "
                          "get them with `nlb-eval download` or `nlb-eval synth`")
    return files


def _file_length_ms(f: NWBContents) -> int:
    """Length of a file's 1 ms grid, computed as nlb_tools does (from obs_intervals)."""
    if f.obs_intervals is not None and len(f.obs_intervals):
        end = np.round(max(o[-1][-1] for o in f.obs_intervals if len(o)) * 1000.0)
    else:  # no obs_intervals: cover the last spike and the last trial
        last_spike = max((s.max() for s in f.spike_times if len(s)), default=0.0)
        end = np.floor(max(last_spike, np.nanmax(f.trials["end_time"])) * 1000.0) + 1
    last_trial_end = f.trials["end_time"][-1]
    if end < last_trial_end:  # nlb_tools compares ms with s here; kept for parity
        end = np.round(last_trial_end * 1000.0)
    return int(np.ceil(end))


def _file_offsets(lengths: list[int]) -> list[int]:
    """Start of each file on the joined axis (ms), reproducing nlb_tools' float arithmetic."""
    offsets = [0]
    for i in range(1, len(lengths)):
        last_ns = (offsets[-1] + lengths[i - 1] - 1) * NS_PER_MS
        past_end = last_ns / 1e9 + round(50 * 1 / 1000, 4)
        offsets.append(int(np.ceil(past_end * 10) * 100))
    return offsets


def _valid_ms(f: NWBContents, unit_rows: np.ndarray, length: int, offset: int) -> list[tuple[int, int]]:
    """Global 1 ms ranges where a group is observed: the first unit's obs_intervals, as nlb_tools masks."""
    if f.obs_intervals is None:
        return [(offset, offset + length)]
    pairs = []
    for start, end in f.obs_intervals[unit_rows[0]]:
        s = int(np.ceil(np.round(start * 1000.0, 6)))
        e = int(np.floor(np.round(end * 1000.0, 6)))
        s, e = max(s, 0), min(e, length)
        if e > s:
            pairs.append((offset + s, offset + e))
    return pairs


def _group(name: str, files: list[NWBContents], offsets: list[int], lengths: list[int]) -> SpikeGroup | None:
    want_heldout = name == "heldout_spikes"
    ids_ref: np.ndarray | None = None
    ms_parts, unit_parts, valid_pairs = [], [], []
    for f, off, length in zip(files, offsets, lengths):
        rows = np.flatnonzero(f.heldout == want_heldout)
        if len(rows) == 0:
            continue
        ids = np.sort(f.unit_ids[rows])
        if ids_ref is None:
            ids_ref = ids
        elif not np.array_equal(ids, ids_ref):
            raise input_error(str(f.path), f"units: {name} ids differ from {files[0].path.name}",
                              "the same held-in unit ids in every file of a dataset")
        col_of = {uid: c for c, uid in enumerate(ids_ref)}
        pairs = _valid_ms(f, rows, length, off)
        valid_pairs += pairs
        valid_local = Intervals.merge(pairs)
        for r in rows:
            k = spike_ms_index(f.spike_times[r])
            k = k[(k >= 0) & (k < length)] + off
            k = k[valid_local.contains(k)]
            ms_parts.append(k)
            unit_parts.append(np.full(len(k), col_of[f.unit_ids[r]], dtype=np.int32))
    if ids_ref is None:
        return None
    ms = np.concatenate(ms_parts) if ms_parts else np.zeros(0, np.int64)
    unit = np.concatenate(unit_parts) if unit_parts else np.zeros(0, np.int32)
    order = np.argsort(ms, kind="stable")
    return SpikeGroup(name=name, unit_ids=ids_ref, ms=ms[order], unit=unit[order],
                      valid=Intervals.merge(valid_pairs))


def _join_trials(files: list[NWBContents], offsets: list[int]) -> dict[str, np.ndarray]:
    """Concatenate trial tables (outer join on columns), shift '_time' columns and trial ids."""
    names: list[str] = []
    for f in files:
        names += [c for c in f.trials if c not in names]
    sizes = [len(f.trial_ids) for f in files]
    out: dict[str, np.ndarray] = {}
    first = np.cumsum([0] + sizes[:-1])
    out["trial_id"] = np.concatenate([f.trial_ids + first[i] for i, f in enumerate(files)])
    for name in names:
        parts = []
        for f, off, n in zip(files, offsets, sizes):
            col = f.trials.get(name)
            if name.endswith("_time"):
                col = seconds_to_ns(col) + off * NS_PER_MS if col is not None else np.full(n, np.nan)
            elif col is None:
                col = np.full(n, np.nan)
            elif col.dtype == bool:
                col = col.astype(np.float64)
            parts.append(col)
        if any(p.dtype == object for p in parts):
            parts = [p.astype(object) for p in parts]
        out[name] = np.concatenate(parts)
    return out


def load_session(path: str | Path) -> Session:
    """Read every NWB file of a dataset and join them into one Session."""
    files = [read_nwb(p) for p in find_nwb_files(path)]
    lengths = [_file_length_ms(f) for f in files]
    offsets = _file_offsets(lengths)
    groups = {}
    for name in SPIKE_GROUPS:
        g = _group(name, files, offsets, lengths)
        if g is not None:
            groups[name] = g
    if "spikes" not in groups:
        raise input_error(str(files[0].path), "units: no held-in units (heldout == False)")
    series: list[str] = []
    for f, length in zip(files, lengths):
        for name, ref in list(f.series.items()):
            t = np.round(ref.times(), 6)
            k = np.rint(t * 1000.0)
            if not (np.all(np.abs(k / 1000.0 - t) < 1e-9) and k.min() >= 0 and k.max() < length):
                del f.series[name]  # nlb_tools drops series off the session grid ("timestamp mismatch")
            elif name not in series:
                series.append(name)
    return Session(files=files, offsets_ms=offsets, lengths_ms=lengths, trials=_join_trials(files, offsets),
                   groups=groups, series_names=series)
