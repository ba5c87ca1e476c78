"""Parity with nlb_tools: every tensor of every dataset shape, at both bins and both phases."""

from __future__ import annotations

import h5py
import numpy as np
import pytest

from nlb_suite.datasets import load
from nlb_suite.h5io import load_h5
from support.nlb_reference import assert_same, nlb_tools_tensors

SHAPES = ["mc_maze_small", "mc_rtt", "area2_bump", "dmfc_rsg"]


def _ours(folder, name, bin_ms, phase):
    t = load(name, folder, bin_ms=bin_ms, phase=phase)
    out = {"train_input": t.train_input, "eval_input": t.eval_input}
    if t.target is not None:
        out["target"] = t.target_dict()
    return out


@pytest.mark.parametrize("phase", ["val", "test"])
@pytest.mark.parametrize("bin_ms", [5, 20])
@pytest.mark.parametrize("name", SHAPES)
def test_tensors_identical_to_nlb_tools(synthetic, name, bin_ms, phase):
    folder = synthetic(name)
    assert_same(_ours(folder, name, bin_ms, phase), nlb_tools_tensors(folder, name, bin_ms, phase))


def test_full_maze_registry_entry(synthetic):
    folder = synthetic("mc_maze")
    assert_same(_ours(folder, "mc_maze", 5, "val"), nlb_tools_tensors(folder, "mc_maze", 5, "val"))


def test_tensors_are_not_trivial(synthetic):
    """Guard against a vacuous parity: real counts, behaviour, PSTHs, NaN only where expected."""
    t = load("mc_maze_small", synthetic("mc_maze_small"), 5, "val")
    assert t.train_spikes_heldin.shape[1:] == (140, 107)
    assert t.train_spikes_heldout.shape[1:] == (140, 35)
    assert t.train_spikes_heldin.sum() > 1000 and not np.isnan(t.train_spikes_heldin).any()
    assert t.train_input["train_spikes_heldin_forward"].shape[1] == 40
    assert np.nanstd(t.train_input["train_behavior"]) > 0
    assert t.target["psth"].ndim == 3 and np.isfinite(t.target["psth"]).mean() > 0.9
    assert len(t.target["eval_cond_idx"]) == t.target["psth"].shape[0]


def test_h5_layout_matches_save_to_h5(synthetic, tmp_path):
    """Our files have the same keys, nesting, dtypes and values as nlb_tools' save_to_h5 output."""
    from nlb_tools.make_tensors import save_to_h5

    from nlb_suite.cli import main

    folder = synthetic("area2_bump")
    ours_dir = tmp_path / "ours"
    assert main(["tensors", "area2_bump", "--data", str(folder), "--bin", "20", "--phase", "val",
                 "--out", str(ours_dir)]) == 0
    theirs = nlb_tools_tensors(folder, "area2_bump", 20, "val")
    for fname, key in [("train_input.h5", "train_input"), ("eval_input.h5", "eval_input"),
                       ("target_data.h5", "target")]:
        save_to_h5(theirs[key], str(tmp_path / f"ref_{fname}"), overwrite=True)
        with h5py.File(ours_dir / fname) as a, h5py.File(tmp_path / f"ref_{fname}") as b:
            names_a, names_b = [], []
            a.visit(names_a.append)
            b.visit(names_b.append)
            assert sorted(names_a) == sorted(names_b)
            for n in names_b:
                if isinstance(b[n], h5py.Dataset):
                    assert a[n].dtype == b[n].dtype, n
                    assert a[n].shape == b[n].shape, n
                    assert a[n].compression == b[n].compression, n
        assert_same(load_h5(ours_dir / fname), load_h5(tmp_path / f"ref_{fname}"), fname)


def _move_gaps_next_to_windows(train_file, kern_reach_s=0.15):
    """Shift the recording gaps (obs_intervals, all units) to end just before two trials' PSTH windows,
    inside the smoothing kernel's reach but outside every tensor window."""
    with h5py.File(train_file, "a") as f:
        mo = f["intervals/trials/move_onset_time"][()]
        split = f["intervals/trials/split"][()].astype(str)
        obs = f["units/obs_intervals"]
        per_unit = obs.shape[0] // len(f["units/id"])
        iv = obs[:per_unit]
        picks = [k for k in range(1, len(mo)) if split[k] in ("train", "val") and np.isfinite(mo[k])
                 and iv[0, 0] + 1 < mo[k] - 0.4 < iv[-1, 1] - 1]
        chosen = [picks[len(picks) // 3], picks[2 * len(picks) // 3]][: per_unit - 1]
        bounds = [iv[0, 0]]
        for k in sorted(chosen):
            start = mo[k] - 0.25 - kern_reach_s + 0.0213  # gap [window - 129 ms, window - 85 ms): in reach
            bounds += [start, start + 0.0437]
        bounds.append(iv[-1, 1])
        new = np.array(bounds).reshape(-1, 2)
        assert new.shape == iv.shape and np.all(np.diff(new.ravel()) > 0)
        obs[...] = np.tile(new, (obs.shape[0] // per_unit, 1))
    return chosen


@pytest.mark.parametrize("bin_ms", [5, 20])
def test_psth_windows_near_recording_gaps(synthetic, tmp_path, bin_ms):
    import shutil

    from nlb_suite.datasets.session import load_session
    from nlb_suite.datasets.specs import get_dataset
    from nlb_suite.datasets.windows import trial_rows

    folder = tmp_path / "data"
    shutil.copytree(synthetic("mc_maze_small"), folder)
    assert _move_gaps_next_to_windows(sorted(folder.glob("*train*.nwb"))[0])
    # the exact per-stretch smoothing path must really be taken
    s = load_session(folder)
    spec = get_dataset("mc_maze_small")
    rows = trial_rows(s, spec.psth.window, s.split_mask("train", "val"), bin_ms, allow_nans=True)
    g = s.groups["spikes"]
    width = int(6 * spec.psth.kern_sd_ms)  # kernel samples; it reaches width//2 ms back and forward
    a = rows.bins[rows.offsets[:-1]] * bin_ms - width // 2
    b = rows.bins[rows.offsets[:-1]] * bin_ms + rows.lengths * bin_ms + (width - 1) // 2
    pos = np.searchsorted(g.valid.starts, a, side="right") - 1
    assert np.sum(~((pos >= 0) & (g.valid.ends[np.maximum(pos, 0)] >= b))) >= 2
    assert_same(_ours(folder, "mc_maze_small", bin_ms, "val"),
                nlb_tools_tensors(folder, "mc_maze_small", bin_ms, "val"))
