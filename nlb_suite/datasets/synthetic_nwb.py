"""Writing synthetic sessions as NLB-style NWB files (pynwb) and the ground-truth HDF5 file."""

from __future__ import annotations

import datetime
import uuid
from collections.abc import Mapping
from pathlib import Path
from typing import Any

import h5py
import numpy as np
from hdmf.common import VectorData, VectorIndex
from pynwb import NWBHDF5IO, NWBFile, TimeSeries
from pynwb.epoch import TimeIntervals
from pynwb.misc import Units

from ..h5io import memory_h5
from .specs import DatasetSpec
from .synthetic_tasks import Plan

SESSION_START = datetime.datetime(2021, 1, 1, tzinfo=datetime.timezone.utc)

COLUMNS = {  # channel names written as `comments="columns=[...]"`
    "hand_vel": "x,y", "hand_pos": "x,y", "cursor_pos": "x,y", "eye_pos": "x,y", "finger_vel": "x,y",
    "finger_pos": "x,y,z", "target_pos": "x,y", "force": "x,y,z,xmo,ymo,zmo",
    "joint_ang": "sh_adduction,sh_flexion,sh_rotation,elb_flexion,rad_pronation,wrist_flexion,wrist_abduction",
}
UNITS = {"hand_vel": "mm/s", "finger_vel": "mm/s", "force": "N", "joint_ang": "degrees", "muscle_len": "cm"}
DESCRIPTIONS = {
    "split": "data split: train, val, test or none", "trial_type": "maze condition (target)",
    "trial_version": "maze version (0 straight, 1-2 barrier)", "maze_id": "maze identifier",
    "success": "trial completed", "rt": "reaction time (ms)", "delay": "delay period (ms)",
    "num_targets": "targets shown", "result": "R reward, A abort, F fail", "ctr_hold": "center hold (s)",
    "ctr_hold_bump": "bump during center hold (passive trial)", "cond_dir": "reach/bump direction (deg)",
    "bump_dir": "bump direction (deg)", "is_eye": "saccade (True) or joystick response",
    "theta": "target direction (deg)", "is_short": "short prior block", "ts": "sample interval (ms)",
    "tp": "produced interval (ms)", "is_outlier": "tp outlier",
}


def _columns(n_units: int) -> str:
    return ",".join(f"muscle_{i:02d}" for i in range(n_units))


def _trials_table(plan: Plan) -> TimeIntervals:
    """The trials table built column-wise from arrays (fast and exact)."""
    cols = []
    for name, values in plan.trials.items():
        if values.dtype == object:
            values = values.astype(str)
        desc = DESCRIPTIONS.get(name, f"{name} (s)" if name.endswith("_time") else name)
        cols.append(VectorData(name=name, description=desc, data=values))
    return TimeIntervals(name="trials", description="experimental trials", columns=cols,
                         id=np.arange(plan.n_trials))


def _units_table(spike_times: list[np.ndarray], heldout: np.ndarray, obs: np.ndarray, ids: np.ndarray) -> Units:
    """Units with ragged spike_times, identical obs_intervals and the boolean heldout column."""
    n = len(spike_times)
    st = VectorData(name="spike_times", description="spike times (s)",
                    data=np.concatenate(spike_times) if n else np.zeros(0))
    st_idx = VectorIndex(name="spike_times_index", data=np.cumsum([len(s) for s in spike_times]), target=st)
    ob = VectorData(name="obs_intervals", description="observation intervals (s)", data=np.tile(obs, (n, 1)))
    ob_idx = VectorIndex(name="obs_intervals_index", data=np.arange(1, n + 1) * len(obs), target=ob)
    ho = VectorData(name="heldout", description="held-out unit", data=np.asarray(heldout, bool))
    return Units(name="units", description="sorted units", id=ids, columns=[st, st_idx, ob, ob_idx, ho])


def write_nwb(path: Path, spec: DatasetSpec, plan: Plan, spike_times: list[np.ndarray], heldout: np.ndarray,
              unit_ids: np.ndarray, series: Mapping[str, np.ndarray], kind: str, seed: int) -> None:
    """One NLB file: units, trials and (train file) behaviour TimeSeries at 1 kHz in processing/behavior.

    The test file keeps the train file's ids for its held-in units: nlb_tools joins the files' spike
    columns by unit id when it loads a folder.
    """
    identifier = str(uuid.uuid5(uuid.NAMESPACE_URL, f"nlb_suite/synthetic/{spec.name}/{kind}/{seed}/{plan.n_trials}"))
    nwb = NWBFile(
        session_description=f"synthetic {spec.name} ({kind}), seed {seed}: {spec.description}",
        identifier=identifier, session_start_time=SESSION_START, file_create_date=SESSION_START,
        institution="nlb_suite synthetic generator", trials=_trials_table(plan),
    )
    nwb.units = _units_table(spike_times, heldout, plan.obs_intervals(), unit_ids)
    if series:
        module = nwb.create_processing_module("behavior", "behavioral data at 1 kHz")
        stamps: Any = np.arange(plan.n_ms) / 1000.0
        for name, data in series.items():
            cols = COLUMNS.get(name) or _columns(data.shape[1])
            ts = TimeSeries(name=name, data=data, unit=UNITS.get(name, "mm"), timestamps=stamps,
                            comments=f"columns=[{cols}]", description=f"synthetic {name}")
            module.add(ts)
            stamps = ts  # later series link to the first series' timestamps
    _pin_object_ids(nwb, identifier)
    with memory_h5(path) as f:
        io = NWBHDF5IO(mode="w", file=f)
        io.write(nwb)
    io.close()  # after memory_h5 has taken the image: closing earlier would close the file first


def _pin_object_ids(nwb: NWBFile, identifier: str) -> None:
    """Replace the random object ids hdmf draws (uuid4) with ids derived from the file and each object's path,
    so one generator, parameter set and seed give byte-identical files on one kind of CPU (run records'
    checksums stay valid; across OpenBLAS kernels, float series may differ in their last bits).
    hdmf offers only random ids (`generate_new_id`), hence its private field."""
    def path(obj: Any) -> str:
        return f"{path(obj.parent)}/{obj.name}" if obj.parent is not None else obj.name

    for obj in nwb.all_children():
        obj._AbstractContainer__object_id = str(uuid.uuid5(uuid.NAMESPACE_URL, f"{identifier}/{path(obj)}"))


def write_ground_truth(path: Path, groups: Mapping[str, Mapping[str, Any]], name: str, seed: int,
                       generator: str) -> None:
    """ground_truth.h5: per file group `rates`, `heldout`, `latents` (+ extras), attrs bin_ms/dataset/seed, and
    on the file the generator's identity (`synthetic_cache.generator_identity`)."""
    with memory_h5(path) as f:
        f.attrs["bin_ms"] = 5
        f.attrs["dataset"] = name
        f.attrs["seed"] = seed
        f.attrs["generator"] = generator
        for gname, content in groups.items():
            g = f.create_group(gname)
            g.attrs["bin_ms"] = 5
            g.attrs["dataset"] = name
            g.attrs["seed"] = seed
            for key, val in content.items():
                if key == "heldout_spike_times":
                    ds = g.create_dataset(key, (len(val),), dtype=h5py.vlen_dtype(np.float64))
                    for i, v in enumerate(val):
                        ds[i] = v
                else:
                    g.create_dataset(key, data=val, compression="gzip", compression_opts=1, shuffle=True)
