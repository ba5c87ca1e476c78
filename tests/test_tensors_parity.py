"""Parity with nlb_tools: every tensor of every dataset shape, at both bins and both phases."""

from __future__ import annotations

import h5py
import numpy as np
import pytest
from oracle import assert_same, nlb_tools_tensors

from nlb_suite.datasets import load
from nlb_suite.h5io import load_h5

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
