"""Targets built by nlb_tools (NWBDataset + make_eval_target_tensors) from generated NWB files, scored twice."""

from __future__ import annotations

import numpy as np

import nlb_suite
from nlb_suite.cli import main
from nlb_suite.submission import write_submission
from support.eval_targets import smooth_bins
from support.nlb_reference import assert_results_equal, nlb_tools_evaluate, nlb_tools_tensors


def _submission(tensors: dict, key: str) -> dict:
    """Smoothed held-in spikes; held-out rates from per-neuron means scaled by held-in activity."""
    tr, ev = tensors["train_input"], tensors["eval_input"]
    tin = smooth_bins(np.nan_to_num(tr["train_spikes_heldin"].astype(float)), 3.0)
    ein = smooth_bins(np.nan_to_num(ev["eval_spikes_heldin"].astype(float)), 3.0)
    mean_out = np.nanmean(tr["train_spikes_heldout"], axis=(0, 1))
    gain = lambda x: (x.mean(axis=2, keepdims=True) / max(tin.mean(), 1e-9))  # noqa: E731
    fwd = tr["train_spikes_heldin_forward"].shape[1]
    n_eval = len(ein)
    return {key: {
        "train_rates_heldin": tin, "train_rates_heldout": gain(tin) * mean_out,
        "eval_rates_heldin": ein, "eval_rates_heldout": gain(ein) * mean_out,
        "eval_rates_heldin_forward": np.tile(tin.mean(axis=(0, 1)), (n_eval, fwd, 1)),
        "eval_rates_heldout_forward": np.tile(mean_out, (n_eval, fwd, 1)),
    }}


def test_nlb_tools_target_from_synthetic_nwb(synthetic, tmp_path, capsys):
    """area2_bump (two decode masks, PSTHs) at 5 ms: target from nlb_tools' NWBDataset, scored by both."""
    name, key = "area2_bump", "area2_bump"
    folder = synthetic(name)
    tensors = nlb_tools_tensors(folder, name, 5, "val", include_psth=True)
    target = tensors["target"]
    assert {"psth", "train_decode_mask"} <= set(target[key])
    sub = _submission(tensors, key)
    ours = nlb_suite.evaluate(target, sub)
    assert_results_equal(ours, nlb_tools_evaluate(target, sub))
    assert list(ours[0]["area2_bump_split"]) == ["co-bps", "vel R2", "psth R2", "fp-bps"]

    # the same submission validates against the dataset folder itself (our data layer's tensors)
    write_submission(sub, tmp_path / "s.h5")
    assert main(["validate", str(tmp_path / "s.h5"), "--data", str(folder), "--phase", "val"]) == 0
    assert capsys.readouterr().out.endswith("valid\n")
    sub[key]["eval_rates_heldout"] = sub[key]["eval_rates_heldout"][:, :-1]
    write_submission(sub, tmp_path / "s.h5")
    assert main(["validate", str(tmp_path / "s.h5"), "--data", str(folder), "--phase", "val"]) == 1


def test_data_layer_dmfc_target_with_jitter(synthetic):
    """dmfc_rsg at 20 ms (jitter, tp corr, front-padded PSTHs): target from nlb_suite.datasets.load."""
    from nlb_suite.datasets import load

    folder = synthetic("dmfc_rsg", 160)  # enough val trials for >= 2 in every tp-corr condition
    t = load("dmfc_rsg", folder, bin_ms=20, phase="val", include_psth=True)
    target = t.target_dict()
    assert "eval_jitter" in target["dmfc_rsg_20"]
    tensors = {"train_input": {k: np.asarray(v, dtype=float) for k, v in t.train_input.items()},
               "eval_input": {k: np.asarray(v, dtype=float) for k, v in t.eval_input.items()}}
    sub = _submission(tensors, "dmfc_rsg_20")
    ours = nlb_suite.evaluate(target, sub)
    assert_results_equal(ours, nlb_tools_evaluate(target, sub))
    assert list(ours[0]["dmfc_rsg_20_split"]) == ["co-bps", "tp corr", "psth R2", "fp-bps"]
