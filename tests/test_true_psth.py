"""The true-PSTH reference: each trial's rates are the condition mean of the true rates over train trials."""

from __future__ import annotations

import numpy as np

from nlb_suite.cli import main
from nlb_suite.datasets import load
from nlb_suite.datasets.session import load_session
from nlb_suite.datasets.truth import truth_rates
from nlb_suite.h5io import load_h5
from nlb_suite.runs import RunSpec, execute


def test_rates_are_condition_means_of_the_truth_over_train_trials(synthetic, tmp_path):
    folder = synthetic("mc_maze_small")
    execute(RunSpec("true_psth", "mc_maze_small", data=folder, out=tmp_path / "run", ci=0), progress=False)
    sub = load_h5(tmp_path / "run" / "submission.h5")["mc_maze_small"]

    t = load("mc_maze_small", folder, bin_ms=5, phase="val")
    session = load_session(folder)
    truth = truth_rates(session, 5)
    ids = np.asarray(session.trials["trial_id"])

    def cond(trial_ids):
        rows = [int(np.flatnonzero(ids == i)[0]) for i in trial_ids]
        return [(session.trials["trial_type"][r], session.trials["trial_version"][r]) for r in rows]

    train_cond, eval_cond = cond(t.train_trial_ids), cond(t.eval_trial_ids)
    seen = [c for c in eval_cond if c in train_cond]
    assert len(set(seen)) > 1 and len(seen) < len(eval_cond)  # both cases occur in this small set
    ex = t.extras
    for name, group, bins in (("eval_rates_heldout", "heldout_spikes", "train_bins"),
                              ("eval_rates_heldin", "spikes", "train_bins"),
                              ("eval_rates_heldout_forward", "heldout_spikes", "train_forward_bins")):
        # a condition without train trials gets the mean over all train trials
        expected = np.stack([
            np.mean([truth[group][ex[bins][j]] for j, c in enumerate(train_cond) if c == ec or ec not in train_cond],
                    axis=0)
            for ec in eval_cond])
        np.testing.assert_allclose(sub[name], np.maximum(expected, 1e-9).astype(np.float32), rtol=1e-6, err_msg=name)
    # trials of one condition share their rates; different conditions differ
    a = eval_cond.index(seen[0])
    b = next(i for i, c in enumerate(eval_cond) if c != seen[0] and c in train_cond)
    assert not np.allclose(sub["eval_rates_heldout"][a], sub["eval_rates_heldout"][b])


def test_not_defined_without_conditions(synthetic, tmp_path, capsys):
    rc = main(["run", "true_psth", "--dataset", "mc_rtt", "--data", str(synthetic("mc_rtt")),
               "--out", str(tmp_path / "r"), "--ci", "0"])
    err = capsys.readouterr().err.strip()
    assert rc == 2 and len(err.splitlines()) == 1 and "Traceback" not in err, err
    assert "mc_rtt has no trial conditions" in err and "not defined" in err
    assert not (tmp_path / "r").exists()


def test_a_corrupt_or_incomplete_ground_truth_file_is_one_line_naming_it(synthetic, tmp_path):
    import shutil

    import h5py
    import pytest

    from nlb_suite.datasets.truth import TRUTH_FILE, find_truth
    from nlb_suite.errors import NLBInputError

    folder = synthetic("mc_maze_small")
    copy = tmp_path / "data"
    shutil.copytree(find_truth(folder).parent, copy)
    nwb_folder = next(copy.glob("**/*.nwb")).parent
    truth, session = find_truth(nwb_folder), load_session(nwb_folder)
    truth.write_text("not hdf5")
    with pytest.raises(NLBInputError, match=rf"^{truth}: not an HDF5 file \(expected the {TRUTH_FILE} written by"):
        truth_rates(session, 5)
    with h5py.File(truth, "w") as f:
        f.create_group("train")  # no rates in it
        f.create_group("test")
    with pytest.raises(NLBInputError, match=rf"^{truth}: (train|test)/rates: missing \(expected 5 ms bins x units: at most "):
        truth_rates(session, 5)
    with h5py.File(truth, "w") as f:
        f["train/rates"] = f["test/rates"] = np.ones(10)  # 1-d
    with pytest.raises(NLBInputError, match=rf"^{truth}: (train|test)/rates: shape \(10,\) \(expected 5 ms bins x units"):
        truth_rates(session, 5)
