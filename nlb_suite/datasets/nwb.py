"""Read one NLB NWB file straight from HDF5: units, trials and behaviour series, nothing more.

Reading with h5py (not pynwb) keeps loading fast and lazy: behaviour series are read only when a
tensor needs them, and no dense 1 ms table of the session is ever built.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from pathlib import Path
from typing import Optional

import h5py
import numpy as np

from ..errors import NLBInputError, input_error


@dataclass
class SeriesRef:
    """A behaviour TimeSeries: where it lives in the file, its column names and its 1 ms grid indices."""

    name: str
    path: str  # HDF5 path of the TimeSeries group
    columns: Optional[list[str]]
    n_rows: int
    n_cols: int
    dtype: np.dtype
    timestamps: Optional[np.ndarray] = None  # seconds, when stored explicitly
    starting_time: float = 0.0
    rate: Optional[float] = None

    def times(self) -> np.ndarray:
        """Sample times in seconds, as nlb_tools computes them."""
        if self.timestamps is not None:
            return self.timestamps
        return np.arange(self.n_rows) / self.rate + self.starting_time


@dataclass
class NWBContents:
    """What the benchmark needs from one NWB file, in plain numpy."""

    path: Path
    unit_ids: np.ndarray  # (n_units,) int
    heldout: np.ndarray  # (n_units,) bool
    spike_times: list[np.ndarray]  # per unit, seconds
    obs_intervals: Optional[list[np.ndarray]]  # per unit, (k, 2) seconds
    trial_ids: np.ndarray
    trials: dict[str, np.ndarray]  # column -> values (stop_time renamed end_time)
    descriptions: dict[str, str] = field(default_factory=dict)
    series: dict[str, SeriesRef] = field(default_factory=dict)

    def read_series(self, name: str) -> np.ndarray:
        """Load one behaviour series' data (rows x columns)."""
        ref = self.series[name]
        try:
            with h5py.File(self.path, "r") as f:
                data = f[ref.path]["data"][()]
        except (OSError, KeyError) as exc:
            raise input_error(str(self.path), f"{ref.path}/data: unreadable ({exc})") from None
        return data.reshape(len(data), -1)


def _ragged(group: h5py.Group, name: str, where: str) -> list[np.ndarray]:
    """Split a VectorData column by its VectorIndex into one array per row."""
    if name not in group:
        raise input_error(where, f"missing field '{name}'")
    data = group[name][()]
    index_name = f"{name}_index"
    if index_name not in group:
        return [data[i : i + 1] for i in range(len(data))]
    ends = group[index_name][()].astype(np.int64)
    starts = np.concatenate([[0], ends[:-1]])
    return [data[s:e] for s, e in zip(starts, ends)]


def _decode(values: np.ndarray) -> np.ndarray:
    if values.dtype.kind in ("S", "O"):
        return np.array([v.decode() if isinstance(v, bytes) else v for v in values], dtype=object)
    return values


def _read_trials(f: h5py.File, where: str) -> tuple[np.ndarray, dict[str, np.ndarray], dict[str, str]]:
    if "intervals/trials" not in f:
        raise input_error(where, "missing 'intervals/trials' table", "an NLB NWB file with a trials table")
    g = f["intervals/trials"]
    colnames = [c.decode() if isinstance(c, bytes) else str(c) for c in g.attrs.get("colnames", [])]
    for required in ("start_time", "stop_time"):
        if required not in g:
            raise input_error(where, f"trials: missing field '{required}'")
    trials: dict[str, np.ndarray] = {}
    descriptions: dict[str, str] = {}
    for name in colnames:
        if name not in g:
            continue
        if f"{name}_index" in g:
            trials[name] = np.array(_ragged(g, name, where) + [None], dtype=object)[:-1]
        else:
            trials[name] = _decode(g[name][()])
        desc = g[name].attrs.get("description", "")
        descriptions[name] = desc.decode() if isinstance(desc, bytes) else str(desc)
    trials["end_time"] = trials.pop("stop_time")
    ids = g["id"][()] if "id" in g else np.arange(len(trials["start_time"]))
    return ids.astype(np.int64), trials, descriptions


def _is_timeseries(obj: h5py.Group) -> bool:
    return isinstance(obj, h5py.Group) and "data" in obj and ("timestamps" in obj or "starting_time" in obj)


def _series_ref(name: str, g: h5py.Group) -> SeriesRef:
    data = g["data"]
    comments = g.attrs.get("comments", "")
    comments = comments.decode() if isinstance(comments, bytes) else str(comments)
    columns = comments.split("[")[-1].split("]")[0].split(",") if "columns=" in comments else None
    ref = SeriesRef(
        name=name, path=g.name, columns=columns, n_rows=data.shape[0],
        n_cols=int(np.prod(data.shape[1:])) if data.ndim > 1 else 1, dtype=data.dtype,
    )
    if "timestamps" in g:
        ref.timestamps = g["timestamps"][()].astype(np.float64)
    else:
        st = g["starting_time"]
        ref.starting_time = float(st[()])
        ref.rate = float(st.attrs["rate"])
    return ref


def _find_series(f: h5py.File) -> dict[str, SeriesRef]:
    """TimeSeries found where nlb_tools looks: top-level containers, processing modules, one level of
    multi-container interfaces (named `container_series`)."""
    found: dict[str, SeriesRef] = {}
    roots = [f[k] for k in ("acquisition", "stimulus/presentation") if k in f]
    if "processing" in f:
        roots += [m for m in f["processing"].values() if isinstance(m, h5py.Group)]
    for root in roots:
        for name, obj in root.items():
            if _is_timeseries(obj):
                found[name] = _series_ref(name, obj)
            elif isinstance(obj, h5py.Group):
                for sub_name, sub in obj.items():
                    if _is_timeseries(sub):
                        found[f"{name}_{sub_name}"] = _series_ref(f"{name}_{sub_name}", sub)
    return found


def read_nwb(path: str | Path) -> NWBContents:
    """Read units, trials and behaviour references from one NLB NWB file, with clear errors."""
    path = Path(path)
    where = str(path)
    if not path.exists():
        raise input_error(where, "file not found")
    if not h5py.is_hdf5(path):
        raise input_error(where, "not an HDF5/NWB file (truncated or wrong format?)")
    try:
        with h5py.File(path, "r") as f:
            if "units" not in f:
                raise input_error(where, "missing 'units' table", "an NLB NWB file with sorted units")
            u = f["units"]
            spike_times = _ragged(u, "spike_times", f"{where}: units")
            n_units = len(spike_times)
            heldout = u["heldout"][()].astype(bool) if "heldout" in u else np.zeros(n_units, bool)
            if heldout.shape != (n_units,):
                raise input_error(where, f"units/heldout has {heldout.size} values for {n_units} units")
            obs = _ragged(u, "obs_intervals", f"{where}: units") if "obs_intervals" in u else None
            unit_ids = u["id"][()].astype(np.int64) if "id" in u else np.arange(n_units)
            trial_ids, trials, descriptions = _read_trials(f, where)
            series = _find_series(f)
    except NLBInputError:
        raise
    except (OSError, KeyError, ValueError) as exc:
        raise input_error(where, f"unreadable NWB file ({exc})") from None
    if obs is not None:
        obs = [np.asarray(o, dtype=np.float64).reshape(-1, 2) for o in obs]
    return NWBContents(
        path=path, unit_ids=unit_ids, heldout=heldout,
        spike_times=[np.asarray(s, dtype=np.float64) for s in spike_times],
        obs_intervals=obs, trial_ids=trial_ids, trials=trials, descriptions=descriptions, series=series,
    )
