"""Parity with nlb_tools: every tensor of every dataset shape, at both bins and both phases."""

from __future__ import annotations

import h5py
import numpy as np
import pytest

from nlb_suite.datasets import load
from nlb_suite.datasets.session import load_session
from nlb_suite.datasets.specs import get_dataset
from nlb_suite.datasets.windows import trial_rows
from nlb_suite.h5io import load_h5
from support.nlb_reference import assert_same, nlb_tools_tensors

SHAPES = ["mc_maze_small", "mc_rtt", "area2_bump", "dmfc_rsg"]


def _arrays(t):
    out = {"train_input": t.train_input, "eval_input": t.eval_input}
    if t.target is not None:
        out["target"] = t.target_dict()
    return out


def _ours(folder, name, bin_ms, phase):
    return _arrays(load(name, folder, bin_ms=bin_ms, phase=phase))


def _nan_trials(x) -> int:
    return int(np.isnan(x).any(axis=tuple(range(1, x.ndim))).sum())


def _kernel_reach_crosses_gap(session, spec, bin_ms) -> int:
    """PSTH windows (train + val trials) whose smoothing kernel reaches into a recording gap."""
    rows = trial_rows(session, spec.psth.window, session.split_mask("train", "val"), bin_ms, allow_nans=True)
    g = session.groups["spikes"]
    width = int(6 * spec.psth.kern_sd_ms)  # kernel samples; it reaches width//2 ms back and forward
    first = rows.bins[rows.offsets[:-1]] * bin_ms
    a, b = first - width // 2, first + rows.lengths * bin_ms + (width - 1) // 2
    pos = np.searchsorted(g.valid.starts, a, side="right") - 1
    return int(np.sum(~((pos >= 0) & (g.valid.ends[np.maximum(pos, 0)] >= b))))


def _nan_paths(folder, t) -> dict[str, int]:
    """How often each NaN path of nlb_tools is taken by these tensors (the parity must not be vacuous)."""
    spec, bin_ms, s = get_dataset(t.dataset), t.bin_ms, load_session(folder)
    valid = s.groups["spikes"].valid
    out: dict[str, int] = {}
    if t.phase == "test":  # gaps inside test trials' windows: eval input keeps NaN bins
        out["eval trials with NaN bins"] = _nan_trials(t.eval_input["eval_spikes_heldin"])
        starts = t.extras["eval_bins"].ravel() * bin_ms
        first = valid.contains(starts)
        each = np.stack([valid.contains(starts + k) for k in range(bin_ms)])
        out["eval bins partly observed, counted"] = int(np.sum(first & ~each.all(axis=0)))
        out["eval bins partly observed, NaN"] = int(np.sum(~first & each.any(axis=0)))
    if (spec.lag_ms or 0) < 0:  # behaviour NaN in the lagged window's lead (area2_bump)
        out["train trials with NaN behaviour"] = _nan_trials(t.train_input["train_behavior"])
        if t.target is not None:
            out["target train trials with NaN behaviour"] = _nan_trials(t.target["train_behavior"])
            out["target eval trials with NaN behaviour"] = _nan_trials(t.target["eval_behavior"])
    if t.target is not None and spec.psth is not None and not spec.jitter:
        out["PSTH windows whose kernel reaches a gap"] = _kernel_reach_crosses_gap(s, spec, bin_ms)
    return out


@pytest.mark.parametrize("phase", ["val", "test"])
@pytest.mark.parametrize("bin_ms", [5, 20])
@pytest.mark.parametrize("name", SHAPES)
def test_tensors_identical_to_nlb_tools(synthetic, name, bin_ms, phase):
    """Same arrays, on files whose test windows hold recording gaps (partly observed bins at both
    edges), whose area2_bump behaviour has NaN in the lagged window and whose gaps lie in the PSTH
    kernel's reach (dmfc_rsg's set-go PSTH windows cannot have one: their reach is inside train windows)."""
    folder = synthetic(name)
    t = load(name, folder, bin_ms=bin_ms, phase=phase)
    assert_same(_arrays(t), nlb_tools_tensors(folder, name, bin_ms, phase))
    paths = _nan_paths(folder, t)
    if phase == "test" or name in ("mc_maze_small", "area2_bump"):
        assert paths
    assert all(v > 0 for v in paths.values()), paths


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


def _gap_in_train_window(folder, tmp_path, lo_ms: float, hi_ms: float) -> tuple:
    """Copy of `folder` whose last recording gap is moved to [move + lo, move + hi) of a train trial;
    returns the copy and that trial's id in the joined session (the test file sorts first)."""
    import shutil

    out = tmp_path / "data"
    shutil.copytree(folder, out)
    path = sorted(out.glob("*train*.nwb"))[0]
    with h5py.File(path, "a") as f:
        mo = f["intervals/trials/move_onset_time"][()]
        split = f["intervals/trials/split"][()].astype(str)
        k = [i for i in range(len(mo)) if split[i] == "train" and np.isfinite(mo[i])][3]
        obs = f["units/obs_intervals"]
        per_unit = obs.shape[0] // len(f["units/id"])
        edges = list(obs[:per_unit].ravel())
        inner = sorted(edges[1:-3] + [mo[k] + lo_ms / 1000, mo[k] + hi_ms / 1000])
        new = np.array([edges[0], *inner, edges[-1]]).reshape(-1, 2)
        assert np.all(np.diff(new.ravel()) > 0)
        obs[...] = np.tile(new, (obs.shape[0] // per_unit, 1))
    with h5py.File(sorted(out.glob("*test*.nwb"))[0], "r") as f:
        return out, len(f["intervals/trials/id"]) + k


def _nlb_tools_train_input(folder, name):
    import warnings

    from nlb_tools.make_tensors import make_train_input_tensors
    from nlb_tools.nwb_interface import NWBDataset

    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        ds = NWBDataset(str(folder))
        ds.resample(5)
        return make_train_input_tensors(ds, name, "train", save_file=False, include_behavior=True,
                                        include_forward_pred=True)


def test_gap_inside_a_train_window_is_one_clear_error(synthetic, tmp_path, capsys):
    """nlb_tools drops the NaN bins and then cannot stack the trials; we say why, in one line."""
    from nlb_suite.cli import main
    from nlb_suite.errors import NLBInputError

    folder, k = _gap_in_train_window(synthetic("mc_maze_small"), tmp_path, 100.3, 131.7)
    with pytest.raises(ValueError, match="same shape"):
        _nlb_tools_train_input(folder, "mc_maze_small")
    with pytest.raises(NLBInputError, match=rf"train window: \d+ of the 140 bins of trial {k} \(split train\) hold a NaN"):
        load("mc_maze_small", folder, 5, "val")
    assert main(["tensors", "mc_maze_small", "--data", str(folder), "--out", str(tmp_path / "t")]) == 2
    err = capsys.readouterr().err.strip()
    assert len(err.splitlines()) == 1 and "recording gap" in err
    assert not (tmp_path / "t").exists() or not any((tmp_path / "t").iterdir())


def test_train_window_wholly_in_a_gap_is_refused(synthetic, tmp_path):
    """nlb_tools drops that trial from the spike tensors only (they no longer line up with behaviour and
    forward tensors, and its evaluate fails on them); we refuse with one line naming the trial."""
    from nlb_suite.errors import NLBInputError

    folder, k = _gap_in_train_window(synthetic("mc_maze_small"), tmp_path, -253.7, 448.9)
    theirs = _nlb_tools_train_input(folder, "mc_maze_small")
    n = len(theirs["train_behavior"])
    assert len(theirs["train_spikes_heldin"]) == n - 1 and len(theirs["train_spikes_heldin_forward"]) == n
    with pytest.raises(NLBInputError, match=rf"train window: every bin of trial {k} \(split train\) holds a NaN"):
        load("mc_maze_small", folder, 5, "val")


@pytest.mark.parametrize("bin_ms", [5, 20])
def test_truth_matches_nan_bins(synthetic, bin_ms):
    """Ground truth in gap bins agrees with the tensors: an expected count of zero only where the tensor
    is NaN (nothing observed), a positive one wherever the tensor counts spikes (partly observed too)."""
    from nlb_suite.datasets.truth import truth_rates

    folder = synthetic("mc_maze_small")
    t = load("mc_maze_small", folder, bin_ms, "test")
    truth = truth_rates(load_session(folder), bin_ms)["spikes"][t.extras["eval_bins"]]
    spikes = t.eval_input["eval_spikes_heldin"]
    nan = np.isnan(spikes)
    assert nan.any() and (truth == 0).any()
    assert np.all(nan[truth.sum(axis=-1) == 0]) and np.all(truth[~nan] > 0)
